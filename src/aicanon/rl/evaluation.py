"""One evaluation protocol for every agent (the Gym paper's point: comparable, reproducible results):
``episodes`` episodes of a separate environment, episode ``i`` reset with seed ``seed + i``, the
agent's deterministic policy unless asked otherwise, the undiscounted return and length of each
episode recorded with its seed.

The policy is any callable from one observation (a NumPy array, as the environment gives it) to one
action; ``observation_transform`` applies frozen normalisation statistics where the agent trained
with them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aicanon.core.checks import check_int

__all__ = ["Evaluation", "evaluate_policy"]


@dataclass
class Evaluation:
    """Per-episode returns, lengths and reset seeds."""

    returns: list[float]
    lengths: list[int]
    seeds: list[int]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.returns)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.returns) if len(self.returns) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "std": self.std}


def evaluate_policy(
    policy: Callable[[np.ndarray], Any],
    env: Any,
    episodes: int = 10,
    seed: int = 0,
    *,
    max_steps: int | None = None,
    observation_transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Evaluation:
    """Run ``episodes`` episodes of ``env`` (a Gymnasium environment, or a callable making one) under
    ``policy`` (module docstring); ``max_steps`` caps an episode beyond the environment's own limit."""
    check_int("episodes", episodes)
    check_int("seed", seed, 0)
    check_int("max_steps", max_steps, allow_none=True)
    if not callable(policy):
        raise TypeError(f"policy must be a callable observation -> action, got {type(policy).__name__}")
    if callable(env) and not hasattr(env, "step"):
        env = env()
    if not hasattr(env, "step") or not hasattr(env, "reset"):
        raise TypeError(f"env must be a gymnasium.Env or a callable making one, got {type(env).__name__}")
    returns, lengths, seeds = [], [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, length, done = 0.0, 0, False
        while not done:
            if observation_transform is not None:
                observation = observation_transform(observation)
            observation, reward, terminated, truncated, _ = env.step(policy(observation))
            if not math.isfinite(float(reward)):
                raise ValueError(
                    f"the environment returned a non-finite reward {reward} in episode {episode}"
                )
            total += float(reward)
            length += 1
            done = terminated or truncated or (max_steps is not None and length >= max_steps)
        returns.append(total)
        lengths.append(length)
        seeds.append(seed + episode)
    return Evaluation(returns, lengths, seeds)
