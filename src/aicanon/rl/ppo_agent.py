"""The PPO agent (Schulman et al. 2017, Algorithm 1): an MLP actor-critic
(:class:`aicanon.rl.networks.ActorCritic`), N parallel environments stepped for T steps by
:class:`aicanon.rl.rollout.RolloutCollector`, advantages by GAE (Eq. 11-12,
:func:`aicanon.rl.rollout.gae`) and K epochs of mini-batch updates of the clipped objective
(Eq. 7, 9; :class:`aicanon.rl.ppo.PPO`). The survey's trust-region family
(Arulkumaran et al. 2017, Section 5.3), with :mod:`aicanon.rl.trpo`.

Algorithm 1, per iteration: run π_old for T steps in each of N environments; compute Â_1..Â_T;
optimise L^{CLIP+VF+S} w.r.t. θ for K epochs with mini-batches of size M ≤ NT; θ_old ← θ.

Departures: the learning rate and the clip range may decay linearly to 0 over training
(``anneal``; the paper anneals both on Atari, not on MuJoCo); advantages are normalised per
mini-batch and gradients clipped (rl.ppo, as the reference implementations do); time-limit
truncations bootstrap (Pardo et al. 2018).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from aicanon.core.checks import check_float, check_int
from aicanon.rl.on_policy import OnPolicyAgent
from aicanon.rl.ppo import PPO, PPOConfig

__all__ = ["PPOAgent", "PPOAgentConfig"]


@dataclass
class PPOAgentConfig:
    """The agent loop's settings; ``update`` holds the clipped update's (:class:`PPOConfig`).
    Defaults: stable-baselines3 zoo's tuned CartPole-v1 values."""

    num_envs: int = 8
    n_steps: int = 32
    gamma: float = 0.98
    gae_lambda: float = 0.8
    update: PPOConfig = field(
        default_factory=lambda: PPOConfig(epochs=20, minibatch_size=256, lr=1e-3, entropy_coef=0.0)
    )
    anneal: bool = True
    """Linear decay of the learning rate and the clip range to 0 over ``learn``'s ``total_steps``."""
    hidden: Sequence[int] = field(default_factory=lambda: (64, 64))

    def __post_init__(self) -> None:
        check_int("num_envs", self.num_envs)
        check_int("n_steps", self.n_steps)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        if not isinstance(self.update, PPOConfig):
            raise TypeError(f"update must be a PPOConfig, got {type(self.update).__name__}")


class PPOAgent(OnPolicyAgent):
    """PPO on ``num_envs`` copies of the Gymnasium environment ``env_id`` (module docstring);
    set-up, loop and checkpoints: :class:`aicanon.rl.on_policy.OnPolicyAgent`."""

    name = "PPO"
    config_type = PPOAgentConfig

    def _setup(self) -> None:
        # A copy of the update's settings: annealing changes the clip range as training goes.
        self.ppo = PPO(self.policy, PPOConfig(**vars(self.cfg.update)))
        self._total_steps: int | None = None

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ppo": self.ppo.optimizer}

    def _before_rollout(self, target: int) -> None:
        cfg = self.cfg
        if cfg.anneal:
            remaining = max(1.0 - self.steps / (self._total_steps or target), 0.0)
            for group in self.ppo.optimizer.param_groups:
                group["lr"] = cfg.update.lr * remaining
            self.ppo.cfg.clip_range = max(cfg.update.clip_range * remaining, 1e-8)

    def update(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        """K epochs of mini-batch steps of L^{CLIP+VF+S} on a flat batch."""
        return self.ppo.update(batch, self.generator)

    def learn(
        self, steps: int, total_steps: int | None = None, **checkpointing: Any
    ) -> list[tuple[float, int]]:
        """Train for at least ``steps`` environment steps (all copies together); ``total_steps`` is
        the horizon of the annealing (default: this call's end); ``checkpointing``:
        :meth:`OnPolicyAgent.learn`'s ``checkpoint_dir`` and ``checkpoint_every``."""
        check_int("total_steps", total_steps, allow_none=True)
        self._total_steps = total_steps
        return super().learn(steps, **checkpointing)
