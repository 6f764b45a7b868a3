"""The latent ODE for irregularly sampled time series (Chen et al. 2018, Section 5).

Generative model (Eq. 11-13): a latent initial state ``z_{t_0} ~ p(z_{t_0}) = N(0, I)``; its path
``z_{t_1}, ..., z_{t_N} = ODESolve(z_{t_0}, f, theta_f, t_0, ..., t_N)``; each observation
``x_{t_i} ~ p(x | z_{t_i}, theta_x)`` (here Gaussian with fixed ``noise_std`` around a decoder MLP).

Recognition model (Figure 6): an RNN reads the observations *backwards in time*, each step taking
``[x_{t_i}, t_{i+1} - t_i]`` (the gap to the previously read, later observation), and its final
hidden state gives ``q(z_{t_0} | x) = N(mu, sigma^2)``. Training maximises the ELBO

    ELBO = E_q[ sum_i log p(x_{t_i} | z_{t_i}) ] - KL( q(z_{t_0} | x) || N(0, I) )

with one reparameterised sample. Predictions at any times, inside or beyond the observed window,
solve the same ODE from ``z_{t_0}``.

Irregular sampling: every sequence of a batch lives on one shared time grid ``t`` ``[T]`` with a
``mask`` ``[B, T]`` of the points it observed; the encoder's state changes only at observed points and
its time gap is measured from the last observed point, so each sequence is read exactly as if only
its own observations existed. :class:`RecurrentBaseline` is the paper's RNN comparison (Figure 8,
Table 2: "an RNN with the time gaps as input"): an autoregressive GRU that reads each observation with
the gap to the next time, predicts the value there, and extrapolates by feeding back its predictions.

Departures: a GRU cell for the baseline (the paper does not name its RNN cell); the ODE is solved by any
of :mod:`~aicanon.generative.ode.solvers`'s methods on the shared grid (RK4 on the grid in our quick
experiment; the paper used dopri5); ``constant_latent=True`` (an ablation) replaces the ODE with
``z(t) = z_{t_0}``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.generative.ode.adjoint import odeint_adjoint
from aicanon.generative.ode.solvers import METHODS, check_time_grid, odeint

__all__ = ["LatentODE", "RecurrentBaseline", "gaussian_kl"]


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """``KL(N(mean, exp(log_var)) || N(0, I))`` summed over the last dimension."""
    return 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(-1)


def _check_series(x: Tensor, t: Tensor, mask: Tensor | None, dim: int) -> Tensor:
    check_tensor("x", x, dim=3, floating=True)
    if x.shape[2] != dim:
        raise ValueError(f"x must be [B, T, {dim}], got {tuple(x.shape)}")
    if check_time_grid(t) < 0:
        raise ValueError(f"t must be increasing, got {t.tolist()}")
    if t.numel() != x.shape[1]:
        raise ValueError(f"t must have one time per step of x ({x.shape[1]}), got {t.numel()}")
    if mask is None:
        return x.new_ones(x.shape[:2])
    check_tensor("mask", mask, shape=tuple(x.shape[:2]))
    if ((mask != 0) & (mask != 1)).any():
        raise ValueError("mask must hold only 0 and 1")
    if (mask.sum(1) == 0).any():
        raise ValueError("mask must mark at least one observation in every sequence")
    return mask.to(x.dtype)


def _read(cell: nn.GRUCell, x: Tensor, t: Tensor, mask: Tensor, backwards: bool) -> Tensor:
    """Run ``cell`` over the observed points of each sequence, input ``[x_i, |gap|]``."""
    batch, steps, _ = x.shape
    hidden = x.new_zeros(batch, cell.hidden_size)
    order = range(steps - 1, -1, -1) if backwards else range(steps)
    last = torch.full((batch,), float(t[-1] if backwards else t[0]), dtype=x.dtype, device=x.device)
    for i in order:
        gap = (last - t[i]).abs().unsqueeze(1)
        updated = cell(torch.cat([x[:, i], gap], dim=1), hidden)
        observed = mask[:, i].unsqueeze(1)
        hidden = observed * updated + (1 - observed) * hidden
        last = torch.where(mask[:, i] > 0, t[i].to(x.dtype), last)
    return hidden


class _LatentDynamics(nn.Module):
    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ELU(),
            nn.Linear(hidden, hidden),
            nn.ELU(),
            nn.Linear(hidden, latent_dim),
        )

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.net(z)


class LatentODE(nn.Module):
    """Latent ODE (Section 5): backwards GRU encoder, latent ODE, MLP decoder, Gaussian ELBO."""

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int = 4,
        rnn_hidden: int = 25,
        ode_hidden: int = 20,
        decoder_hidden: int = 20,
        noise_std: float = 0.3,
        method: str = "rk4",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        adjoint: bool = False,
        constant_latent: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("obs_dim", obs_dim),
            ("latent_dim", latent_dim),
            ("rnn_hidden", rnn_hidden),
            ("ode_hidden", ode_hidden),
            ("decoder_hidden", decoder_hidden),
        ):
            check_int(name, value, 1)
        check_float("noise_std", noise_std, 0, min_inclusive=False, finite=True)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.obs_dim, self.latent_dim, self.noise_std = obs_dim, latent_dim, float(noise_std)
        self.encoder = nn.GRUCell(obs_dim + 1, rnn_hidden)
        self.to_posterior = nn.Linear(rnn_hidden, 2 * latent_dim)
        self.dynamics = _LatentDynamics(latent_dim, ode_hidden)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, decoder_hidden), nn.ReLU(), nn.Linear(decoder_hidden, obs_dim)
        )
        self.options = dict(method=method, rtol=rtol, atol=atol)
        self.adjoint, self.constant_latent = bool(adjoint), bool(constant_latent)

    def encode(self, x: Tensor, t: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``q(z_{t_0} | x)``: ``(mean, log_var)``, each ``[B, latent_dim]``; ``t_0 = t[0]``."""
        mask = _check_series(x, t, mask, self.obs_dim)
        hidden = _read(self.encoder, x * mask.unsqueeze(-1), t, mask, backwards=True)
        mean, log_var = self.to_posterior(hidden).chunk(2, dim=-1)
        return mean, log_var

    def latent_path(self, z0: Tensor, t: Tensor) -> Tensor:
        """``z`` at the times ``t`` (``t[0]`` is ``z0``'s time): ``[B, len(t), latent_dim]``."""
        check_tensor("z0", z0, shape=(None, self.latent_dim), floating=True)
        check_time_grid(t)
        if self.constant_latent:
            return z0.unsqueeze(1).expand(-1, t.numel(), -1)
        solve = odeint_adjoint if self.adjoint else odeint
        return solve(self.dynamics, z0, t.to(z0.dtype), **self.options).transpose(0, 1)

    def predict(
        self, x: Tensor, t: Tensor, mask: Tensor | None, t_out: Tensor, sample: bool = False
    ) -> Tensor:
        """Decoded means ``[B, len(t_out), obs_dim]`` at ``t_out`` (which must start at ``t[0]``)."""
        mean, log_var = self.encode(x, t, mask)
        z0 = mean + torch.randn_like(mean) * (0.5 * log_var).exp() if sample else mean
        return self.decoder(self.latent_path(z0, t_out))

    def elbo(
        self,
        x: Tensor,
        t: Tensor,
        mask: Tensor | None,
        x_target: Tensor,
        t_target: Tensor,
        target_mask: Tensor | None = None,
    ) -> Tensor:
        """Per-sequence ELBO ``[B]`` (nats) of ``x_target`` at ``t_target`` given the observations
        ``x`` at ``t`` (masked); one reparameterised sample of ``z_{t_0}``."""
        target_mask = _check_series(x_target, t_target, target_mask, self.obs_dim)
        if t_target[0] != t[0]:
            raise ValueError(f"t_target must start at t[0] = {float(t[0])}, got {float(t_target[0])}")
        mean, log_var = self.encode(x, t, mask)
        z0 = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        prediction = self.decoder(self.latent_path(z0, t_target))
        log_lik = -0.5 * (
            ((x_target - prediction) / self.noise_std).square() + math.log(2 * math.pi * self.noise_std**2)
        )
        log_lik = (log_lik.sum(-1) * target_mask).sum(1)
        return log_lik - gaussian_kl(mean, log_var)


class RecurrentBaseline(nn.Module):
    """The paper's RNN baseline (Figure 8a, Table 2): an autoregressive RNN given the time gaps.

    Reading the observed points in order, each step takes ``[x_i, t_next - t_i]`` (the observation
    and the gap to the time it must predict) and its read-out predicts the value at ``t_next``:

        h_i = GRU([x_i, t_next - t_i], h_{i-1}),      x_hat(t_next) = W h_i + b.

    :meth:`loss` trains it by one-step-ahead prediction of each observed point from the earlier ones
    (teacher forcing): it sees the same observations as the latent ODE's ELBO, nothing beyond them.
    :meth:`predict` reads all observations and then runs freely, feeding back its own predictions
    with the gaps between the requested times (extrapolation).
    """

    def __init__(self, obs_dim: int, hidden: int = 25) -> None:
        super().__init__()
        check_int("obs_dim", obs_dim, 1)
        check_int("hidden", hidden, 1)
        self.obs_dim = obs_dim
        self.cell = nn.GRUCell(obs_dim + 1, hidden)
        self.readout = nn.Linear(hidden, obs_dim)

    def _read(self, x: Tensor, t: Tensor, mask: Tensor, after: Tensor) -> tuple[Tensor, Tensor]:
        """Hidden states after each step ``[B, T, H]`` and the index of the next observed point of
        each step ``[B, T]`` (``T`` where none follows: the gap then runs to ``after``)."""
        batch, steps, _ = x.shape
        following = torch.full((batch,), steps, dtype=torch.long, device=x.device)
        next_index = torch.empty(batch, steps, dtype=torch.long, device=x.device)
        for i in range(steps - 1, -1, -1):
            next_index[:, i] = following
            following = torch.where(mask[:, i] > 0, torch.full_like(following, i), following)
        times = torch.cat([t, after.reshape(1)]).to(x.dtype)
        hidden = x.new_zeros(batch, self.cell.hidden_size)
        states = []
        for i in range(steps):
            gap = (times[next_index[:, i]] - times[i]).unsqueeze(1)
            updated = self.cell(torch.cat([x[:, i], gap], dim=1), hidden)
            observed = mask[:, i].unsqueeze(1)
            hidden = observed * updated + (1 - observed) * hidden
            states.append(hidden)
        return torch.stack(states, dim=1), next_index

    def loss(self, x: Tensor, t: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mean squared error (per coordinate) of the one-step-ahead predictions of every observed
        point but each sequence's first (teacher forcing)."""
        mask = _check_series(x, t, mask, self.obs_dim)
        states, next_index = self._read(x, t, mask, t[-1])
        has_next = (next_index < x.shape[1]).to(x.dtype) * mask
        target = torch.gather(x, 1, next_index.clamp(max=x.shape[1] - 1).unsqueeze(-1).expand_as(x))
        error = (self.readout(states) - target).square().sum(-1) * has_next
        return error.sum() / (has_next.sum().clamp(min=1) * self.obs_dim)

    def predict(self, x: Tensor, t: Tensor, mask: Tensor | None, t_out: Tensor) -> Tensor:
        """Predictions ``[B, len(t_out), obs_dim]`` at the increasing times ``t_out`` (after
        ``t[-1]``): the first from the observations, each later one from the previous prediction."""
        mask = _check_series(x, t, mask, self.obs_dim)
        check_time_grid(t_out)
        if t_out.numel() == 0 or t_out[0] < t[-1]:
            raise ValueError(f"t_out must be non-empty and start at or after t[-1] = {float(t[-1])}")
        t_out = t_out.to(x.dtype)
        states, _ = self._read(x, t, mask, t_out[0])
        hidden = states[:, -1]
        prediction = self.readout(hidden)
        outputs = [prediction]
        for previous, time in zip(t_out[:-1], t_out[1:]):
            gap = (time - previous).expand(x.shape[0], 1)
            hidden = self.cell(torch.cat([prediction, gap], dim=1), hidden)
            prediction = self.readout(hidden)
            outputs.append(prediction)
        return torch.stack(outputs, dim=1)
