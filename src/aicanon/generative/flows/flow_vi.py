"""Variational inference with normalizing flows (Rezende & Mohamed, ICML 2015, Sections 3-4).

A sample of a simple density ``z0 ~ q0`` is pushed through K flows ``z_K = f_K o ... o f_1(z0)``; its
density follows by the change of variables (Eq. 7),

    log q_K(z_K) = log q0(z0) - Σ_k log|det ∂f_k/∂z_{k-1}|.

**Unnormalised targets** ``p(z) = exp(-U(z)) / Z`` (Section 6.1, Figure 3): :class:`FlowDensity` holds
``q0 = N(μ, diag σ²)`` and the flows, and :func:`free_energy` is Eq. 15 with ``-log p(x, z)`` replaced by
the energy ``U``:

    F = E_q0[log q0(z0) - Σ_k log|det ∂f_k/∂z_{k-1}| + β U(z_K)] = KL(q_K ‖ p) - log Z   (β = 1)

so ``F ≥ -log Z``, with equality iff ``q_K = p``. ``β < 1`` is the paper's annealed free energy
(Section 6.2: ``β_t = min(1, 0.01 + t/10000)``), used early in training.

**Amortised inference** (Section 4.2, Eq. 15, Figure 2): :class:`FlowVAE` is a deep latent Gaussian
model with a flow posterior: an encoder gives, for each example, ``μ(x)``, ``σ(x)`` and the K planar
flows' parameters ``(u_k, w_k, b_k)(x)``; a decoder gives Bernoulli logits of ``p(x | z)``; the prior
is ``N(0, I)``. The per-example free energy (Eq. 15) is

    F(x) = E_q0[log q0(z0 | x) - Σ_k log|1 + û_kᵀψ_k(z_{k-1})| - β (log p(x | z_K) + log p(z_K))],

an upper bound on ``-log p(x)`` (Table 2 reports its test average). :meth:`FlowVAE.importance_nll`
estimates ``-log p(x)`` itself by importance sampling with ``q_K`` as the proposal.

Departures from the paper:

* The encoder and decoder are one-hidden-layer ReLU MLPs; the paper's exact deterministic layers
  (400 hidden units, its nonlinearity) are stated in its Section 6.2 and are not verified here.
* ``q0`` of :class:`FlowDensity` is a learnt diagonal Gaussian (for the 2-D targets the paper does
  not say whether ``q0`` was learnt).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.generative.flows.base import Flow, FlowSequence
from aicanon.generative.flows.planar import Planar, Radial, constrained_u, planar_transform

__all__ = [
    "FlowDensity",
    "FlowVAE",
    "PlanarDensity",
    "diagonal_gaussian_log_prob",
    "free_energy",
    "make_flows",
]

_LOG_2PI = math.log(2 * math.pi)


def diagonal_gaussian_log_prob(z: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """``log N(z; mean, diag exp(log_std)²)`` summed over the last dimension."""
    return (-0.5 * ((z - mean) / log_std.exp()).square() - log_std - 0.5 * _LOG_2PI).sum(-1)


def make_flows(dim: int, length: int, kind: str = "planar", constrain: bool = True) -> FlowSequence:
    """``length`` planar or radial layers on ``dim`` dimensions (``length = 0``: the identity)."""
    check_int("dim", dim, 1)
    check_int("length", length, 0)
    check_choice("kind", kind, ("planar", "radial"))
    layers: list[Flow] = [
        Planar(dim, constrain=constrain) if kind == "planar" else Radial(dim) for _ in range(length)
    ]
    return FlowSequence(layers)


class FlowDensity(nn.Module):
    """``q_K``: a learnt diagonal Gaussian ``q0`` followed by ``flows`` (Eq. 7)."""

    def __init__(self, flows: FlowSequence, dim: int) -> None:
        super().__init__()
        check_int("dim", dim, 1)
        if not isinstance(flows, FlowSequence):
            raise TypeError(f"flows must be a FlowSequence, got {type(flows).__name__}")
        self.dim = dim
        self.flows = flows
        self.mean = nn.Parameter(torch.zeros(dim))
        self.log_std = nn.Parameter(torch.zeros(dim))

    def sample(self, count: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``count`` samples ``z_K`` ``[count, dim]`` and their ``log q_K(z_K)`` ``[count]``
        (reparameterised: differentiable in every parameter)."""
        check_int("count", count, 1)
        noise = torch.randn(count, self.dim, generator=generator, dtype=self.mean.dtype)
        noise = noise.to(self.mean.device)
        z0 = self.mean + self.log_std.exp() * noise
        log_q0 = diagonal_gaussian_log_prob(z0, self.mean, self.log_std)
        z, logdet = self.flows(z0)
        return z, log_q0 - logdet


class PlanarDensity(nn.Module):
    """``copies`` independent planar-flow densities ``q_K`` in one module, their parameters stacked
    (``u, w``: ``[K, copies, D]``, ``b``: ``[K, copies]``, ``q0``: ``[copies, D]``).

    Copy ``c`` is the same map as ``FlowDensity(make_flows(D, K))`` holding the ``c``-th slices (tested):
    stacking lets several targets train side by side with one tensor operation per layer, and û is
    computed once per step for all layers.
    """

    def __init__(self, dim: int, length: int, copies: int = 1, init_scale: float = 0.1) -> None:
        super().__init__()
        check_int("dim", dim, 1)
        check_int("length", length, 0)
        check_int("copies", copies, 1)
        check_float("init_scale", init_scale, 0.0, min_inclusive=False, finite=True)
        self.dim, self.length, self.copies = dim, length, copies
        self.u = nn.Parameter(torch.randn(length, copies, dim) * init_scale)
        self.w = nn.Parameter(torch.randn(length, copies, dim) * init_scale)
        self.b = nn.Parameter(torch.zeros(length, copies))
        self.mean = nn.Parameter(torch.zeros(copies, dim))
        self.log_std = nn.Parameter(torch.zeros(copies, dim))

    def flow(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Apply the K layers to ``z`` ``[copies, N, D]``: ``(z_K, Σ log|det|)``, the sum ``[copies, N]``.

        Eq. 10 and 12 in six tensor operations per layer (the per-operation overhead, not arithmetic,
        bounds small 2-D batches): ``wᵀz + b`` and ``z + û a`` are batched matrix products, and
        ``log|1 + (1 - a²) wᵀû| = log1p(wᵀû - wᵀû a²)`` needs no ``abs`` since û keeps ``wᵀû > -1``.
        """
        check_tensor("z", z, shape=(self.copies, None, self.dim), floating=True)
        u_hat = constrained_u(self.u, self.w)  # [K, C, D]
        wu = (self.w * u_hat).sum(-1)[..., None, None]  # [K, C, 1, 1]
        w, b, u_row = self.w.unsqueeze(-1), self.b[..., None, None], u_hat.unsqueeze(2)
        logdets = []
        for k in range(self.length):
            activation = torch.tanh(torch.baddbmm(b[k], z, w[k]))  # [C, N, 1]
            logdets.append(torch.log1p(torch.addcmul(wu[k], wu[k], activation.square(), value=-1.0)))
            z = torch.baddbmm(z, activation, u_row[k])
        if not logdets:
            return z, z.new_zeros(z.shape[:-1])
        return z, torch.cat(logdets, -1).sum(-1)

    def select(self, index: Tensor | list[int]) -> PlanarDensity:
        """A new density holding copies ``index`` (in that order), their parameters copied."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.mean.device)
        if index.dim() != 1 or index.numel() == 0:
            raise ValueError(f"index must be a non-empty 1-D list of copies, got shape {tuple(index.shape)}")
        if bool(((index < 0) | (index >= self.copies)).any()):
            raise ValueError(f"index must lie in [0, {self.copies}), got {index.tolist()}")
        out = PlanarDensity(self.dim, self.length, index.numel()).to(self.mean)
        with torch.no_grad():
            for name in ("u", "w", "b"):
                getattr(out, name).copy_(getattr(self, name)[:, index])
            out.mean.copy_(self.mean[index])
            out.log_std.copy_(self.log_std[index])
        return out

    def sample(self, count: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``count`` samples per copy: ``z_K`` ``[copies, count, D]``, ``log q_K(z_K)``
        ``[copies, count]``."""
        check_int("count", count, 1)
        noise = torch.randn(self.copies, count, self.dim, generator=generator, dtype=self.mean.dtype)
        mean, log_std = self.mean.unsqueeze(1), self.log_std.unsqueeze(1)
        z0 = mean + log_std.exp() * noise.to(self.mean.device)
        log_q0 = diagonal_gaussian_log_prob(z0, mean, log_std)
        z, logdet = self.flow(z0)
        return z, log_q0 - logdet


def free_energy(
    density: FlowDensity | PlanarDensity,
    energy: Callable[[Tensor], Tensor],
    count: int,
    inverse_temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Monte Carlo ``F = E[log q_K(z_K) + β U(z_K)]`` over ``count`` samples: a scalar for a
    :class:`FlowDensity`, ``[copies]`` for a :class:`PlanarDensity` (whose ``energy`` gets and returns
    ``[copies, count, D]`` -> ``[copies, count]``)."""
    check_float("inverse_temperature", inverse_temperature, 0.0, finite=True)
    z, log_q = density.sample(count, generator)
    u = energy(z)
    if u.shape != log_q.shape:
        raise ValueError(
            f"energy must return one value per sample {tuple(log_q.shape)}, got {tuple(u.shape)}"
        )
    return (log_q + inverse_temperature * u).mean(-1)


class FlowVAE(nn.Module):
    """Deep latent Gaussian model with an amortised planar-flow posterior (Section 4.2, Figure 2).

    ``flow_length = 0`` is the plain diagonal-Gaussian VAE (Table 2's "DLGM diagonal covariance").
    """

    def __init__(
        self, data_dim: int = 784, latent_dim: int = 40, hidden_units: int = 400, flow_length: int = 10
    ) -> None:
        super().__init__()
        check_int("data_dim", data_dim, 1)
        check_int("latent_dim", latent_dim, 1)
        check_int("hidden_units", hidden_units, 1)
        check_int("flow_length", flow_length, 0)
        self.data_dim, self.latent_dim, self.flow_length = data_dim, latent_dim, flow_length
        self.encoder = nn.Sequential(nn.Linear(data_dim, hidden_units), nn.ReLU())
        self.mean_head = nn.Linear(hidden_units, latent_dim)
        self.log_std_head = nn.Linear(hidden_units, latent_dim)
        # Per example and layer: u (D), w (D), b (1).
        self.flow_head = nn.Linear(hidden_units, flow_length * (2 * latent_dim + 1)) if flow_length else None
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_units), nn.ReLU(), nn.Linear(hidden_units, data_dim)
        )

    def _check_x(self, x: Tensor) -> None:
        check_tensor("x", x, shape=(None, self.data_dim), floating=True)

    def posterior(self, x: Tensor, samples: int = 1) -> tuple[Tensor, Tensor]:
        """``samples`` draws per example from ``q_K(z | x)``: ``z_K`` ``[samples, B, D]`` and
        ``log q_K(z_K | x)`` ``[samples, B]``."""
        self._check_x(x)
        check_int("samples", samples, 1)
        hidden = self.encoder(x)
        mean, log_std = self.mean_head(hidden), self.log_std_head(hidden)
        batch, dim = x.shape[0], self.latent_dim
        z = mean + log_std.exp() * torch.randn(samples, batch, dim, dtype=mean.dtype, device=mean.device)
        log_q = diagonal_gaussian_log_prob(z, mean, log_std)
        if self.flow_head is not None:
            params = self.flow_head(hidden).view(batch, self.flow_length, 2 * dim + 1)
            # Each flow's parameters belong to one example: repeat them for that example's samples.
            params = params.expand(samples, -1, -1, -1).reshape(samples * batch, self.flow_length, -1)
            flat = z.reshape(samples * batch, dim)
            for k in range(self.flow_length):
                u, w, b = params[:, k, :dim], params[:, k, dim : 2 * dim], params[:, k, 2 * dim]
                flat, logdet = planar_transform(flat, u, w, b)
                log_q = log_q - logdet.view(samples, batch)
            z = flat.view(samples, batch, dim)
        return z, log_q

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """``log p(x | z) + log p(z)`` for ``z`` ``[S, B, D]``: ``[S, B]`` (Bernoulli decoder,
        N(0, I) prior)."""
        logits = self.decoder(z)
        log_likelihood = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
        log_prior = (-0.5 * z.square() - 0.5 * _LOG_2PI).sum(-1)
        return log_likelihood + log_prior

    def free_energy(self, x: Tensor, inverse_temperature: float = 1.0) -> Tensor:
        """Eq. 15 (one sample, annealed by ``β``): ``[B]`` nats, an upper bound on ``-log p(x)`` at β = 1."""
        check_float("inverse_temperature", inverse_temperature, 0.0, finite=True)
        z, log_q = self.posterior(x)
        return (log_q - inverse_temperature * self.log_joint(x, z)).squeeze(0)

    @torch.no_grad()
    def importance_nll(self, x: Tensor, samples: int = 100) -> Tensor:
        """``-log p(x) ≈ -log (1/S) Σ_s p(x, z_s) / q_K(z_s | x)``, ``z_s ~ q_K(· | x)``: ``[B]`` nats."""
        z, log_q = self.posterior(x, samples)
        weights = self.log_joint(x, z) - log_q
        return -(torch.logsumexp(weights, dim=0) - math.log(samples))
