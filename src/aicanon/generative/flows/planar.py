"""Planar and radial flows (Rezende & Mohamed, ICML 2015, Section 4.1 and Appendix A.1).

**Planar flow** (Eq. 10-12): a contraction/expansion of the density along the hyperplane
``wᵀz + b = 0``,

    f(z) = z + u h(wᵀz + b),                                   (10)
    ψ(z) = h'(wᵀz + b) w,                                      (11)
    |det ∂f/∂z| = |1 + uᵀψ(z)|,                                (12)

with ``h = tanh``. ``f`` is invertible iff ``wᵀu ≥ -1`` (Appendix A.1); the paper guarantees it by
replacing ``u`` with

    û(w, u) = u + [m(wᵀu) - wᵀu] w / ‖w‖²,   m(x) = -1 + log(1 + eˣ),

so that ``wᵀû = m(wᵀu) > -1``. :func:`constrained_u` computes ``û``; :func:`planar_transform` applies
Eq. 10 and 12 with per-example parameters (the amortised posterior of Section 4 needs them) and
:class:`Planar` is the layer with its own ``u, w, b``. ``constrain=False`` uses ``u`` as it is and
refuses (:class:`NonInvertibleFlow`, a ``ValueError``) any input whose ``wᵀu < -1``: such a map
folds the space and its "log-determinant" is not that of a density.

**Radial flow** (Eq. 13-14): a contraction/expansion around a reference point ``z0``,

    f(z) = z + β h(α, r)(z - z0),   r = ‖z - z0‖,   h(α, r) = 1 / (α + r),             (13)
    |det ∂f/∂z| = [1 + β h(α, r)]^(d-1) [1 + β h(α, r) + β h'(α, r) r],             (14)

with ``α > 0`` and invertibility guaranteed by ``β ≥ -α`` (Appendix A.2): we use
``β̂ = -α + softplus(β)`` (softplus is the paper's ``m(x) + 1``). Unlike the planar flow, the radial
flow has a closed-form inverse: ``r' = r (1 + β̂ / (α + r))`` is solved for ``r`` (a quadratic),
which :meth:`Radial.inverse` uses.

Both layers follow :class:`aicanon.generative.flows.base.Flow`: ``forward(z) -> (f(z), log|det ∂f/∂z|)``.
In variational inference the forward direction carries a base sample ``z0 ~ q0`` to ``z_K``
(Eq. 7: ``log q_K(z_K) = log q0(z0) - Σ_k log|det ∂f_k/∂z_{k-1}|``); the planar flow's ``inverse``
raises :class:`~aicanon.generative.flows.base.NotInvertible` (it is invertible, but not in closed form).

Departures from the paper:

* ``α`` is stored as ``log α`` (``α = exp``) so that any real parameter gives ``α > 0``; the paper
  states ``α ∈ R+`` without saying how it is kept positive.
* Initialisation is ours (the paper gives none): ``u, w ~ N(0, init_scale²)``, ``b = 0``; radial
  ``z0 ~ N(0, I)``, ``log α = 0``, ``β = 0``.
* normflows' ``Planar``/``Radial`` compute the same maps (tests/generative/test_planar.py checks it);
  their radial ``α`` is ``|alpha|`` where ours is ``exp(log_alpha)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.generative.flows.base import Flow

__all__ = [
    "NonInvertibleFlow",
    "Planar",
    "Radial",
    "constrained_beta",
    "constrained_u",
    "planar_step",
    "planar_transform",
    "radial_transform",
]


class NonInvertibleFlow(ValueError):
    """A planar flow whose ``wᵀu < -1`` (without the û constraint): the map is not a bijection."""


def constrained_u(u: Tensor, w: Tensor) -> Tensor:
    """Appendix A.1: ``û = u + [m(wᵀu) - wᵀu] w / ‖w‖²`` with ``m(x) = -1 + softplus(x)``, over the last
    dimension (``u, w`` of shape ``[..., D]``); then ``wᵀû = m(wᵀu) > -1``."""
    check_tensor("u", u, floating=True)
    check_tensor("w", w, floating=True)
    if u.shape[-1] != w.shape[-1]:
        raise ValueError(
            f"u and w must share their last dimension, got {tuple(u.shape)} and {tuple(w.shape)}"
        )
    wu = (w * u).sum(-1, keepdim=True)
    m = F.softplus(wu) - 1.0
    return u + (m - wu) * w / w.square().sum(-1, keepdim=True)


def constrained_beta(alpha: Tensor, beta: Tensor) -> Tensor:
    """Appendix A.2: ``β̂ = -α + softplus(β) ≥ -α`` makes the radial flow invertible."""
    return F.softplus(beta) - alpha


def _check_batch(z: Tensor) -> int:
    check_tensor("z", z, floating=True)
    if z.dim() < 2:
        raise ValueError(f"z must be [..., B, D] (at least 2-D), got shape {tuple(z.shape)}")
    return z.shape[-1]


def _check_parameter(name: str, value: Tensor, z: Tensor, vector: bool) -> None:
    """A vector parameter (``vector``) must broadcast against ``z`` ``[..., D]`` (``[D]``, ``[B, D]``,
    ``[C, 1, D]`` ...); a scalar one against ``z[..., 0]`` (a scalar, ``[1]``, ``[B]``, ``[C, 1]`` ...)."""
    check_tensor(name, value, floating=True)
    target = tuple(z.shape) if vector else tuple(z.shape[:-1])
    try:
        fits = torch.broadcast_shapes(tuple(value.shape), target) == target
    except RuntimeError:
        fits = False
    if not fits:
        what = "[..., D] broadcastable to z" if vector else "broadcastable to z[..., 0]"
        raise ValueError(f"{name} must be {what} (z has shape {tuple(z.shape)}), got {tuple(value.shape)}")


def planar_step(z: Tensor, u_hat: Tensor, w: Tensor, b: Tensor, wu: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 10 and 12 without checks, for callers that already hold ``û`` and ``wu = wᵀû`` (shapes
    broadcastable as in :func:`planar_transform`): one layer of a fast stack."""
    activation = torch.tanh((z * w).sum(-1) + b)
    # ψ(z)ᵀû = h'(wᵀz + b) wᵀû with h' = 1 - tanh².
    logdet = torch.log((1 + (1 - activation.square()) * wu).abs())
    return z + u_hat * activation.unsqueeze(-1), logdet


def planar_transform(
    z: Tensor, u: Tensor, w: Tensor, b: Tensor, constrain: bool = True
) -> tuple[Tensor, Tensor]:
    """Eq. 10 and 12: ``(z + û tanh(wᵀz + b), log|1 + ûᵀw tanh'(wᵀz + b)|)`` for ``z`` ``[..., B, D]``.

    ``u, w``: ``[D]`` (shared) or per example (``[B, D]``, as the amortised posterior gives them), any
    shape broadcastable to ``z``; ``b``: broadcastable to ``z[..., 0]`` (a scalar, ``[1]``, ``[B]``).
    ``constrain``: use û (Appendix A.1); without it ``u`` is used as given and an input with
    ``wᵀu < -1`` raises :class:`NonInvertibleFlow`. Returns ``f(z)`` (shape of ``z``) and the
    log-determinant (shape ``z.shape[:-1]``).
    """
    _check_batch(z)
    _check_parameter("u", u, z, True)
    _check_parameter("w", w, z, True)
    _check_parameter("b", b, z, False)
    if constrain:
        u = constrained_u(u, w)
    wu = (w * u).sum(-1)
    if not constrain and bool((wu < -1).any()):
        raise NonInvertibleFlow(
            "planar flow is not invertible: w.u must be >= -1 (Appendix A.1), got "
            f"min w.u = {float(wu.detach().min()):.4g}; use constrain=True (the û reparameterisation)"
        )
    return planar_step(z, u, w, b, wu)


def radial_transform(
    z: Tensor, z0: Tensor, alpha: Tensor, beta: Tensor, constrain: bool = True
) -> tuple[Tensor, Tensor]:
    """Eq. 13-14 for ``z`` ``[..., B, D]``: ``(z + β h(α, r)(z - z0), log|det|)``.

    ``z0``: broadcastable to ``z`` (``[D]`` or ``[B, D]``); ``alpha`` (> 0) and ``beta``: broadcastable
    to ``z[..., 0]``. ``constrain``: ``β̂ = -α + softplus(β)`` (Appendix A.2); otherwise ``β`` as
    given, and ``β < -α`` raises :class:`NonInvertibleFlow`.
    """
    dim = _check_batch(z)
    _check_parameter("z0", z0, z, True)
    _check_parameter("alpha", alpha, z, False)
    _check_parameter("beta", beta, z, False)
    if bool((alpha <= 0).any()):
        raise ValueError(f"alpha must be > 0 (Eq. 13), got min {float(alpha.min()):.4g}")
    beta = constrained_beta(alpha, beta) if constrain else beta
    if not constrain and bool((beta < -alpha).any()):
        raise NonInvertibleFlow("radial flow is not invertible: beta must be >= -alpha (Appendix A.2)")
    offset = z - z0
    r = offset.norm(dim=-1)
    h = 1.0 / (alpha + r)
    z_next = z + (beta * h).unsqueeze(-1) * offset
    # h'(α, r) r = -r / (α + r)², so the second factor of Eq. 14 is 1 + β α / (α + r)².
    logdet = (dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h.square())
    return z_next, logdet


class Planar(Flow):
    """One planar layer ``f(z) = z + û tanh(wᵀz + b)`` on ``[B, dim]`` (Eq. 10, Appendix A.1)."""

    def __init__(self, dim: int, constrain: bool = True, init_scale: float = 0.1) -> None:
        super().__init__()
        check_int("dim", dim, 1)
        check_float("init_scale", init_scale, 0.0, min_inclusive=False, finite=True)
        self.dim = dim
        self.constrain = bool(constrain)
        self.u = nn.Parameter(torch.randn(dim) * init_scale)
        self.w = nn.Parameter(torch.randn(dim) * init_scale)
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self) -> Tensor:
        """The û actually used (``u`` itself when ``constrain`` is off)."""
        return constrained_u(self.u, self.w) if self.constrain else self.u

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if _check_batch(z) != self.dim:
            raise ValueError(f"z must be [..., B, {self.dim}], got {tuple(z.shape)}")
        return planar_transform(z, self.u, self.w, self.b, constrain=self.constrain)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, constrain={self.constrain}"


class Radial(Flow):
    """One radial layer ``f(z) = z + β̂ (z - z0) / (α + ‖z - z0‖)`` on ``[B, dim]`` (Eq. 13-14), with a
    closed-form inverse."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        check_int("dim", dim, 1)
        self.dim = dim
        self.z0 = nn.Parameter(torch.randn(dim))
        self.log_alpha = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if _check_batch(z) != self.dim:
            raise ValueError(f"z must be [..., B, {self.dim}], got {tuple(z.shape)}")
        return radial_transform(z, self.z0, self.log_alpha.exp(), self.beta)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``f⁻¹``: with ``y = f(x)`` and ``s = ‖y - z0‖``, ``r = ‖x - z0‖`` solves
        ``r² + (α + β̂ - s) r - α s = 0`` (its non-negative root), and
        ``x - z0 = (y - z0) / (1 + β̂/(α + r))``."""
        if _check_batch(z) != self.dim:
            raise ValueError(f"z must be [..., B, {self.dim}], got {tuple(z.shape)}")
        alpha = self.log_alpha.exp()
        beta = constrained_beta(alpha, self.beta)
        offset = z - self.z0
        s = offset.norm(dim=-1)
        c = alpha + beta - s
        # The positive root, written to avoid cancellation when c > 0.
        disc = torch.sqrt(c.square() + 4 * alpha * s)
        r = torch.where(c > 0, 2 * alpha * s / (c + disc), (disc - c) / 2)
        x = self.z0 + offset / (1 + beta / (alpha + r)).unsqueeze(-1)
        _, logdet = radial_transform(x, self.z0, alpha, self.beta)
        return x, -logdet

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
