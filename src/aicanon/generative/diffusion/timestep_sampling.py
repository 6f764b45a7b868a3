"""Which timesteps a training batch sees: uniform, or importance-sampled for L_vlb (Nichol & Dhariwal
2021, Eq. 18).

L_vlb = E_{t∼p_t}[L_t / p_t] with p_t ∝ √E[L_t²]: the loss's variance is dominated by the first few
timesteps, so they are drawn more often and their terms weighted down. E[L_t²] is the mean of the
last ``history`` (10 in the paper) squared L_t seen at each t; until every t has its full history,
t is drawn uniformly. A small uniform share (``uniform_prob``, 0.001 in the paper's code) keeps every
t in play.

:meth:`TimestepSampler.sample` returns the timesteps and their weights 1 / (T p_t) (1 everywhere for
uniform sampling), so ``(weights * losses).mean()`` is an unbiased estimate of the uniform mean.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aicanon.core.checks import check_int, check_probability

__all__ = ["LossSecondMomentSampler", "TimestepSampler", "UniformSampler"]


class TimestepSampler:
    """Uniform over ``num_timesteps``; subclasses change :meth:`probabilities`."""

    def __init__(self, num_timesteps: int) -> None:
        self.num_timesteps = check_int("num_timesteps", num_timesteps, 1)

    def probabilities(self) -> Tensor:
        return torch.full((self.num_timesteps,), 1.0 / self.num_timesteps, dtype=torch.float64)

    def sample(
        self, batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[Tensor, Tensor]:
        """``batch_size`` timesteps (long) and their importance weights 1/(T p_t) (float32)."""
        check_int("batch_size", batch_size, 1)
        p = self.probabilities()
        t = torch.multinomial(p, batch_size, replacement=True, generator=generator)
        weights = 1.0 / (self.num_timesteps * p[t])
        return t.to(device), weights.float().to(device)

    def update(self, t: Tensor, losses: Tensor) -> None:
        """Record the per-example losses of a batch (no-op for uniform sampling)."""


UniformSampler = TimestepSampler


class LossSecondMomentSampler(TimestepSampler):
    """p_t ∝ √(mean of the last ``history`` L_t²), mixed with ``uniform_prob`` of uniform (Eq. 18)."""

    def __init__(self, num_timesteps: int, history: int = 10, uniform_prob: float = 0.001) -> None:
        super().__init__(num_timesteps)
        self.history = check_int("history", history, 1)
        self.uniform_prob = check_probability("uniform_prob", uniform_prob)
        self._losses = torch.zeros(num_timesteps, history, dtype=torch.float64)
        self._counts = torch.zeros(num_timesteps, dtype=torch.long)

    @property
    def warmed_up(self) -> bool:
        return bool((self._counts == self.history).all())

    def probabilities(self) -> Tensor:
        if not self.warmed_up:
            return super().probabilities()
        weights = (self._losses**2).mean(dim=1).sqrt()
        weights = weights / weights.sum()
        return weights * (1 - self.uniform_prob) + self.uniform_prob / self.num_timesteps

    def update(self, t: Tensor, losses: Tensor) -> None:
        if t.shape != losses.shape or t.dim() != 1:
            raise ValueError(
                f"t and losses must be 1-D of one shape, got {tuple(t.shape)} and {tuple(losses.shape)}"
            )
        for step, loss in zip(t.tolist(), losses.detach().double().cpu().tolist(), strict=True):
            if not 0 <= step < self.num_timesteps:
                raise ValueError(f"t must be in [0, {self.num_timesteps}), got {step}")
            if self._counts[step] == self.history:  # drop the oldest
                self._losses[step, :-1] = self._losses[step, 1:].clone()
                self._losses[step, -1] = loss
            else:
                self._losses[step, self._counts[step]] = loss
                self._counts[step] += 1

    def state_dict(self) -> dict[str, Tensor]:
        return {"losses": self._losses.clone(), "counts": self._counts.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state["losses"].shape != self._losses.shape or state["counts"].shape != self._counts.shape:
            raise ValueError("the saved sampler state is for another num_timesteps or history")
        self._losses, self._counts = state["losses"].clone(), state["counts"].clone()
