"""Continuous normalising flows (Chen et al. 2018, Section 4).

If ``z(t)`` follows ``dz/dt = f(z(t), t)`` with ``f`` uniformly Lipschitz in ``z``, its log-density
changes by the instantaneous change of variables (Theorem 1):

    d log p(z(t)) / dt = -tr( df/dz(t) )                                             (Eq. 8)

so a sample is drawn by solving the ODE from ``z(t_0) ~ p_0`` to ``t_1`` and its log-density is
``log p(z(t_1)) = log p(z(t_0)) - int_{t_0}^{t_1} tr(df/dz) dt``. Unlike a discrete flow the trace
costs ``D`` backward passes at most (exact, :func:`exact_trace`), and no restriction is put on
``f``. For large ``D``, Hutchinson's estimator ``tr(J) = E[eps^T J eps]`` (``eps`` Rademacher or
Gaussian, drawn once per solve; one vector-Jacobian product, :func:`hutchinson_trace`) is an
unbiased option (this estimator is FFJORD's, Grathwohl et al. 2019; the paper itself uses the exact
trace).

:class:`CNF` follows :class:`aicanon.generative.flows.base.Flow`, with the base at ``t = 0`` and the
data at ``t = T``: ``forward(x)`` solves from ``T`` back to ``0`` and returns ``(z, log|det dz/dx|)``
with ``log|det dz/dx| = -int_0^T tr(df/dz) dt``; ``inverse(z)`` solves from ``0`` to ``T`` and returns
``(x, +int_0^T tr dt)``. Both integrate the augmented state ``[z, Delta]`` with
``dDelta/dt = tr(df/dz)`` (Eq. 8) in one solve, through the solver or by the adjoint method.

:class:`PlanarDynamics` is the paper's continuous planar flow with ``M`` hidden units
(Section 4.1, "Using multiple hidden units with linear cost"):

    dz/dt = sum_m u_m(t) h(w_m(t)^T z + b_m(t)),   tr(df/dz) = sum_m h'(w_m^T z + b_m) u_m^T w_m  (Eq. 10)

whose parameters depend on ``t``: through a small hypernetwork (the paper's "gating"
``u_m sigmoid(g_m)`` included) or, with ``hidden=None``, affinely (``u_m(t) = u_m + t u'_m``), the
cheap variant our quick experiment uses to match a planar flow's parameter count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.generative.flows.base import Flow
from aicanon.generative.ode.adjoint import odeint_adjoint
from aicanon.generative.ode.solvers import METHODS, SolverStats, odeint

__all__ = ["CNF", "PlanarDynamics", "exact_trace", "hutchinson_trace"]

TRACES = ("exact", "hutchinson")
NOISES = ("rademacher", "gaussian")


def exact_trace(f: Tensor, z: Tensor, create_graph: bool) -> Tensor:
    """``tr(df/dz)`` per example, ``[B]``, from ``D`` backward passes (``f``, ``z``: ``[B, D]``)."""
    total = f.new_zeros(f.shape[0])
    last = z.shape[1] - 1
    for i in range(z.shape[1]):
        retain = create_graph or i < last
        (column,) = torch.autograd.grad(f[:, i].sum(), z, create_graph=create_graph, retain_graph=retain)
        total = total + column[:, i]
    return total


def hutchinson_trace(f: Tensor, z: Tensor, noise: Tensor, create_graph: bool) -> Tensor:
    """``eps^T (df/dz) eps`` per example, ``[B]``: an unbiased estimate of the trace."""
    (vjp,) = torch.autograd.grad(f, z, noise, create_graph=create_graph)
    return (vjp * noise).sum(1)


class _Augmented(nn.Module):
    """``[z, Delta] -> [f(z, t), tr(df/dz)]`` for one solve (fixed Hutchinson noise)."""

    def __init__(self, dynamics: nn.Module, trace: str, noise: Tensor | None) -> None:
        super().__init__()
        self.dynamics, self.trace, self.noise = dynamics, trace, noise

    def forward(self, t: Tensor, state: Tensor) -> Tensor:
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            z = state[:, :-1]
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            f = self.dynamics(t, z)
            if self.trace == "exact":
                trace = exact_trace(f, z, create_graph)
            else:
                trace = hutchinson_trace(f, z, self.noise, create_graph)
        if not create_graph:
            f, trace = f.detach(), trace.detach()
        return torch.cat([f, trace.unsqueeze(1)], dim=1)


class CNF(Flow):
    """A continuous normalising flow on ``[B, dim]`` data (see the module docstring)."""

    def __init__(
        self,
        dynamics: nn.Module,
        dim: int,
        integration_time: float = 1.0,
        method: str = "dopri5",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        step_size: float | None = None,
        trace: str = "exact",
        noise: str = "rademacher",
        adjoint: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(dynamics, nn.Module):
            raise TypeError(f"dynamics must be an nn.Module f(t, z), got {type(dynamics).__name__}")
        check_int("dim", dim, 1)
        check_float("integration_time", integration_time, 0, min_inclusive=False, finite=True)
        check_choice("method", method, METHODS)
        check_float("rtol", rtol, 0, min_inclusive=False, finite=True)
        check_float("atol", atol, 0, min_inclusive=False, finite=True)
        check_float("step_size", step_size, 0, min_inclusive=False, finite=True, allow_none=True)
        check_choice("trace", trace, TRACES)
        check_choice("noise", noise, NOISES)
        self.dynamics, self.dim = dynamics, dim
        self.integration_time = float(integration_time)
        self.options = dict(method=method, rtol=rtol, atol=atol, step_size=step_size)
        self.trace, self.noise, self.adjoint = trace, noise, bool(adjoint)
        self.stats = SolverStats()

    def _solve(self, y: Tensor, start: float, end: float) -> tuple[Tensor, Tensor]:
        check_tensor("x", y, shape=(None, self.dim), floating=True)
        noise = None
        if self.trace == "hutchinson":
            noise = torch.randn_like(y)
            if self.noise == "rademacher":
                noise = torch.sign(noise)
        func = _Augmented(self.dynamics, self.trace, noise)
        state = torch.cat([y, y.new_zeros(y.shape[0], 1)], dim=1)
        t = torch.tensor([start, end], dtype=y.dtype, device=y.device)
        self.stats = SolverStats()
        if self.adjoint:
            params = tuple(p for p in self.dynamics.parameters() if p.requires_grad)
            out = odeint_adjoint(func, state, t, adjoint_params=params, stats=self.stats, **self.options)[-1]
        else:
            out = odeint(func, state, t, stats=self.stats, **self.options)[-1]
        return out[:, :-1], out[:, -1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data to latent: solve from ``T`` to ``0``; ``Delta`` accumulates ``-int_0^T tr dt``."""
        return self._solve(x, self.integration_time, 0.0)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent to data: solve from ``0`` to ``T``; the log-determinant is ``int_0^T tr dt``."""
        return self._solve(z, 0.0, self.integration_time)


class PlanarDynamics(nn.Module):
    """``dz/dt = sum_m u_m(t) tanh(w_m(t)^T z + b_m(t))`` with ``width`` hidden units (Eq. 10).

    ``hidden``: width of the hypernetwork ``t -> (u, w, b, g)`` (two tanh layers; ``u`` is gated by
    ``sigmoid(g)``), or ``None`` for parameters affine in ``t``.
    """

    def __init__(self, dim: int, width: int, hidden: int | None = 32, init_scale: float = 0.1) -> None:
        super().__init__()
        check_int("dim", dim, 1)
        check_int("width", width, 1)
        check_int("hidden", hidden, 1, allow_none=True)
        check_float("init_scale", init_scale, 0, finite=True)
        self.dim, self.width = dim, width
        size = width * (2 * dim + 2)  # u, w, b, gate per unit
        if hidden is None:
            self.base = nn.Parameter(torch.randn(size) * init_scale)
            self.slope = nn.Parameter(torch.randn(size) * init_scale)
            self.hypernet = None
        else:
            self.hypernet = nn.Sequential(
                nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, size)
            )

    def parameters_at(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(u [M, D], w [M, D], b [M])`` at time ``t`` (``u`` gated)."""
        if self.hypernet is None:
            flat = self.base + t * self.slope
        else:
            flat = self.hypernet(t.reshape(1, 1).to(self.hypernet[0].weight.dtype)).reshape(-1)
        m, d = self.width, self.dim
        u = flat[: m * d].view(m, d)
        w = flat[m * d : 2 * m * d].view(m, d)
        b = flat[2 * m * d : 2 * m * d + m]
        gate = flat[2 * m * d + m :]
        return u * torch.sigmoid(gate).unsqueeze(1), w, b

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        u, w, b = self.parameters_at(t)
        return torch.tanh(z @ w.T + b) @ u

    def trace(self, t: Tensor, z: Tensor) -> Tensor:
        """Closed-form ``tr(df/dz)`` ``[B]`` (Eq. 10's right-hand side), for tests."""
        u, w, b = self.parameters_at(t)
        derivative = 1 - torch.tanh(z @ w.T + b).square()
        return derivative @ (u * w).sum(1)
