"""The adjoint sensitivity method: gradients of an ODE solution in O(1) memory (Chen et al. 2018, Section 2).

For a loss ``L(z(t_1))`` of the solution of ``dz/dt = f(z(t), t, theta)``, the adjoint
``a(t) = dL/dz(t)`` obeys

    da(t)/dt = -a(t)^T df(z(t), t, theta)/dz                                           (Eq. 4)

and the parameter gradient is

    dL/dtheta = -int_{t_1}^{t_0} a(t)^T df(z(t), t, theta)/dtheta dt                   (Eq. 5)

Algorithm 1 solves one augmented ODE backwards in time, from ``t_1`` to ``t_0``, on the state
``[z(t), a(t), a_theta(t)]`` with dynamics ``[f, -a^T df/dz, -a^T df/dtheta]`` (both vector-Jacobian
products come from one reverse-mode pass through ``f``), starting at
``[z(t_1), dL/dz(t_1), 0]``; it returns ``a(t_0) = dL/dz(t_0)`` and ``a_theta(t_0) = dL/dtheta``.
``z`` is recomputed backwards alongside ``a`` rather than stored, so the memory used does not
depend on how many steps the solver takes: only the outputs ``z(t_i)`` are kept.

For a loss of the solution at several times ``t_0 < ... < t_N`` (Section 2, "the adjoint sensitivity
method... multiple observation times"), the backward solve is broken at every ``t_i``: ``dL/dz(t_i)``
is added to ``a``, and ``z`` is reset to the stored forward value ``z(t_i)`` (which also stops
numerical drift of the backwards reconstruction).

:func:`odeint_adjoint` has :func:`aicanon.generative.ode.solvers.odeint`'s interface and returns
the same values; only its backward pass differs.

Departures: no gradient with respect to the time grid ``t`` (the paper's ``dL/dt_0``, ``dL/dt_1``;
a grid that requires grad is rejected); the backward solve uses the forward method and tolerances
(``adjoint_rtol``/``adjoint_atol`` override them) and measures the error over the whole augmented
state, as torchdiffeq's default does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float
from aicanon.generative.ode.solvers import SolverStats, check_time_grid, odeint

__all__ = ["odeint_adjoint"]


class _AdjointSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y0: Tensor, t: Tensor, settings: dict, *params: Tensor) -> Tensor:
        with torch.no_grad():
            solution = odeint(settings["func"], y0, t, **settings["forward"])
        # Only the outputs are saved: their size is fixed by len(t), not by the solver's steps.
        ctx.save_for_backward(t, solution)
        ctx.settings = settings
        ctx.params = params
        return solution

    @staticmethod
    def backward(ctx, grad_solution: Tensor):
        t, solution = ctx.saved_tensors
        settings, params = ctx.settings, ctx.params
        func = settings["func"]
        shape = solution.shape[1:]
        size = solution[0].numel()
        dtype = solution.dtype
        wanted = [p for p in params if p.requires_grad]

        def augmented(time: Tensor, state: Tensor) -> Tensor:
            # Algorithm 1's aug_dynamics: [f, -a^T df/dz, -a^T df/dtheta] from one backward pass.
            z = state[:size].view(shape)
            a = state[size : 2 * size].view(shape)
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                f = func(time, z)
                vjps = torch.autograd.grad(f, (z, *wanted), a, allow_unused=True)
            flat = [
                (-v if v is not None else torch.zeros_like(x)).reshape(-1).to(dtype)
                for v, x in zip(vjps, (z, *wanted))
            ]
            return torch.cat([f.detach().reshape(-1), *flat])

        adjoint = grad_solution[-1].reshape(-1)
        parameter_adjoint = solution.new_zeros(sum(p.numel() for p in wanted))
        for i in range(len(t) - 1, 0, -1):
            state = torch.cat([solution[i].reshape(-1), adjoint, parameter_adjoint])
            state = odeint(augmented, state, t[i - 1 : i + 1].flip(0), **settings["backward"])[1]
            adjoint = state[size : 2 * size] + grad_solution[i - 1].reshape(-1)
            parameter_adjoint = state[2 * size :]

        grads: list[Tensor | None] = []
        offset = 0
        for p in params:
            if p.requires_grad:
                grads.append(parameter_adjoint[offset : offset + p.numel()].view_as(p).to(p.dtype))
                offset += p.numel()
            else:
                grads.append(None)
        return (adjoint.view(shape), None, None, *grads)


def odeint_adjoint(
    func: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    *,
    step_size: float | None = None,
    max_steps: int = 100_000,
    adjoint_params: Sequence[Tensor] | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    stats: SolverStats | None = None,
    adjoint_stats: SolverStats | None = None,
) -> Tensor:
    """:func:`odeint` whose backward pass is the adjoint method (Algorithm 1).

    ``func`` is an ``nn.Module`` (its parameters get gradients) or any callable with its learnable
    tensors in ``adjoint_params``. ``stats`` counts the forward solve, ``adjoint_stats`` the
    backward ones. The other arguments are :func:`odeint`'s.
    """
    if adjoint_params is None:
        if not isinstance(func, nn.Module):
            raise TypeError(
                "func must be an nn.Module, or its learnable tensors must be given as adjoint_params; "
                f"got {type(func).__name__} without adjoint_params"
            )
        adjoint_params = tuple(func.parameters())
    params = tuple(adjoint_params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"adjoint_params[{i}] must be a torch.Tensor, got {type(p).__name__}")
    check_time_grid(t)
    if t.requires_grad:
        raise ValueError("t must not require grad: odeint_adjoint gives no gradient for the time grid")
    check_float("adjoint_rtol", adjoint_rtol, 0, min_inclusive=False, finite=True, allow_none=True)
    check_float("adjoint_atol", adjoint_atol, 0, min_inclusive=False, finite=True, allow_none=True)
    forward = dict(method=method, rtol=rtol, atol=atol, step_size=step_size, max_steps=max_steps, stats=stats)
    backward = dict(
        forward,
        rtol=rtol if adjoint_rtol is None else adjoint_rtol,
        atol=atol if adjoint_atol is None else adjoint_atol,
        stats=adjoint_stats,
    )
    # Argument errors surface here, before any solve, exactly as odeint would raise them.
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    settings = {"func": func, "forward": forward, "backward": backward}
    return _AdjointSolve.apply(y0, t, settings, *params)
