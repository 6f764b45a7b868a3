"""On-policy rollouts and generalised advantage estimation: what REINFORCE, A2C, PPO, TRPO, GAIL and
(later) InstructGPT's PPO share.

:class:`RolloutCollector` steps a vectorised environment (``N`` copies, Gymnasium's same-step
autoreset, :func:`aicanon.rl.envs.make_vector_env`) for ``T`` steps with a policy that maps a batch
of observations to ``(action distribution, value)``, and returns a :class:`Rollout` of ``[T, N]``
tensors. Episodes run across calls: the collector keeps the current observations and the running
episode returns; finished episodes' returns and lengths are in ``Rollout.episodes``.

Time limits are not terminal states (Pardo et al. 2018): a truncated step bootstraps from the value
of the real final observation (Gymnasium's ``final_obs``), a terminated one does not. So every step
carries ``next_values`` = V(s_{t+1}) of its own next state, and :func:`gae` computes
(Schulman et al. 2016, Eq. 16)

    δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
    Â_t = δ_t + γ λ (1 − done_t) Â_{t+1},      done_t = terminated_t or truncated_t,

and the value targets R_t = Â_t + V(s_t). With λ = 1 these are discounted Monte-Carlo returns
bootstrapped at the rollout's end; with λ = 0 one-step TD errors.

Checkpoints: :meth:`RolloutCollector.state_dict` holds where every copy stands in its current
episode (how the episode began and the actions since, recorded by
:class:`aicanon.rl.envs.ReplayableEpisodes`), the current observations and the running episode
returns and lengths; :meth:`RolloutCollector.load_state_dict` replays each copy's episode to put it
back, so an agent resumed from a checkpoint collects exactly what the uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from aicanon.core.checks import check_float, check_int, check_tensor

__all__ = ["Rollout", "RolloutCollector", "gae"]

Policy = Callable[[Tensor], tuple[Distribution, Tensor]]


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[Tensor, Tensor]:
    """Advantages and value targets ``[T, N]`` from per-step tensors ``[T, N]`` (module docstring)."""
    check_tensor("rewards", rewards, dim=2, floating=True)
    for name, tensor in (
        ("values", values),
        ("next_values", next_values),
        ("terminated", terminated),
        ("truncated", truncated),
    ):
        check_tensor(name, tensor, shape=tuple(rewards.shape))
    check_float("gamma", gamma, 0.0, 1.0)
    check_float("lam", lam, 0.0, 1.0)
    terminated, truncated = terminated.to(rewards.dtype), truncated.to(rewards.dtype)
    done = torch.clamp(terminated + truncated, max=1.0)
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * (1.0 - done[t]) * running
        advantages[t] = running
    return advantages, advantages + values


@dataclass
class Rollout:
    """``T`` steps of ``N`` environments (every tensor ``[T, N, ...]``; see the module docstring)."""

    observations: Tensor
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    rewards: Tensor
    terminated: Tensor
    truncated: Tensor
    next_values: Tensor
    episodes: list[tuple[float, int]] = field(default_factory=list)
    """(return, length) of every episode that ended during this rollout."""

    def advantages(self, gamma: float = 0.99, lam: float = 0.95) -> tuple[Tensor, Tensor]:
        """:func:`gae` on this rollout."""
        return gae(self.rewards, self.values, self.next_values, self.terminated, self.truncated, gamma, lam)

    def flat(self) -> dict[str, Tensor]:
        """The per-step tensors with ``T`` and ``N`` merged (for mini-batching)."""
        names = ("observations", "actions", "log_probs", "values", "rewards", "terminated", "truncated")
        return {name: getattr(self, name).flatten(0, 1) for name in names}


class RolloutCollector:
    """Collects rollouts from ``envs`` (a Gymnasium vector environment with same-step autoreset),
    reset once with ``seed`` (module docstring)."""

    def __init__(self, envs, seed: int | None = None, device: str | torch.device = "cpu") -> None:
        from gymnasium.vector import AutoresetMode

        mode = envs.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "envs must use Gymnasium's same-step autoreset (aicanon.rl.envs.make_vector_env builds "
                f"one), got autoreset_mode={mode!r}"
            )
        self.envs = envs
        self.device = torch.device(device)
        self.num_envs = envs.num_envs
        observation, _ = envs.reset(seed=seed)
        self.observation = observation
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(array), dtype=torch.float32, device=self.device)

    # ---------------------------------------------------------------------------- checkpoints
    def _copies(self) -> list[Any]:
        from aicanon.rl.envs import ReplayableEpisodes

        copies = getattr(self.envs.unwrapped, "envs", None)
        if copies is None or not all(isinstance(env, ReplayableEpisodes) for env in copies):
            raise TypeError(
                "checkpointing a collector needs environments whose copies record their episodes "
                "(aicanon.rl.envs.make_vector_env wraps each in ReplayableEpisodes)"
            )
        return list(copies)

    def state_dict(self) -> dict[str, Any]:
        """Every copy's place in its episode, the current observations and the running episode
        returns and lengths (module docstring); copies, unchanged as collection goes on."""
        return {
            "environments": [env.snapshot() for env in self._copies()],
            "observation": torch.tensor(np.array(self.observation, copy=True)),
            "episode_return": torch.tensor(np.array(self.episode_return, copy=True)),
            "episode_length": torch.tensor(np.array(self.episode_length, copy=True)),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, replaying each copy's current episode."""
        keys = {"environments", "observation", "episode_return", "episode_length"}
        if not isinstance(state, Mapping) or set(state) != keys:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"state does not fit a RolloutCollector: keys {got}, expected {sorted(keys)}")
        copies = self._copies()
        if len(state["environments"]) != len(copies):
            raise ValueError(
                f"state holds {len(state['environments'])} environments, this run has {len(copies)}"
            )
        observation = state["observation"].numpy()
        if observation.shape != np.shape(self.observation):
            raise ValueError(
                f"state holds observations of shape {observation.shape}, this run has {np.shape(self.observation)}"
            )
        for env, snapshot in zip(copies, state["environments"], strict=True):
            env.restore(snapshot)
        self.observation = observation.copy()
        self.episode_return = state["episode_return"].numpy().astype(np.float64).copy()
        self.episode_length = state["episode_length"].numpy().astype(np.int64).copy()

    def _env_action(self, action: Tensor) -> np.ndarray:
        from gymnasium import spaces

        array = action.detach().cpu().numpy()
        space = self.envs.single_action_space
        if isinstance(space, spaces.Box):  # the policy's sample may leave the box: clip for the env only
            return np.clip(array, space.low, space.high)
        return array

    @torch.no_grad()
    def collect(self, policy: Policy, steps: int) -> Rollout:
        """``steps`` steps of every environment under ``policy`` (actions sampled)."""
        check_int("steps", steps)
        columns: dict[str, list[Tensor]] = {
            k: []
            for k in ("observations", "actions", "log_probs", "values", "rewards", "terminated", "truncated")
        }
        next_values: list[Tensor | None] = []
        episodes: list[tuple[float, int]] = []
        for _ in range(steps):
            observation = self._tensor(self.observation)
            distribution, value = policy(observation)
            action = distribution.sample()
            log_prob = distribution.log_prob(action)
            if log_prob.dim() > 1:  # independent action dimensions: the joint log-probability
                log_prob = log_prob.sum(-1)
            next_observation, reward, terminated, truncated, info = self.envs.step(self._env_action(action))
            reward = np.asarray(reward, dtype=np.float64)
            if not np.isfinite(reward).all():
                raise ValueError(f"the environment returned non-finite rewards {reward.tolist()}")
            done = np.logical_or(terminated, truncated)
            # V(s_{t+1}) of each env's own next state: the final observation where an episode ended.
            # Where none ended, s_{t+1} is the next step's observation and its value comes with the
            # next step's forward pass (filled in below): one forward pass per step, not two.
            bootstrap = None
            if done.any():
                real_next = np.array(next_observation, copy=True)
                for i in np.flatnonzero(done):
                    real_next[i] = info["final_obs"][i]
                _, bootstrap = policy(self._tensor(real_next))
            columns["observations"].append(observation)
            columns["actions"].append(action)
            columns["log_probs"].append(log_prob)
            columns["values"].append(value.reshape(self.num_envs))
            columns["rewards"].append(self._tensor(reward))
            columns["terminated"].append(self._tensor(terminated))
            columns["truncated"].append(self._tensor(truncated))
            next_values.append(None if bootstrap is None else bootstrap.reshape(self.num_envs))
            self.episode_return += reward
            self.episode_length += 1
            for i in np.flatnonzero(done):
                episodes.append((float(self.episode_return[i]), int(self.episode_length[i])))
                self.episode_return[i], self.episode_length[i] = 0.0, 0
            self.observation = next_observation
        for t in range(steps - 1):
            if next_values[t] is None:
                next_values[t] = columns["values"][t + 1]
        if next_values[-1] is None:
            _, bootstrap = policy(self._tensor(self.observation))
            next_values[-1] = bootstrap.reshape(self.num_envs)
        stacked = {name: torch.stack(values) for name, values in columns.items()}
        return Rollout(**stacked, next_values=torch.stack(next_values), episodes=episodes)
