"""Deep Q-networks: DQN (Mnih et al. 2015) with experience replay and a target network, Double DQN
(van Hasselt et al. 2016) and the dueling architecture (Wang et al. 2016; in
:class:`aicanon.rl.networks.QNetwork`): the survey's value-based family (Arulkumaran et al. 2017,
Section 4.1).

The loss on a minibatch of transitions (s, a, r, s', terminated) drawn uniformly from the replay
buffer, with θ the online and θ⁻ the target network's weights:

    y     = r + γ (1 − terminated) max_a' Q(s', a'; θ⁻)                           (DQN)
    y     = r + γ (1 − terminated) Q(s', argmax_a' Q(s', a'; θ); θ⁻)               (Double DQN)
    L(θ)  = E[ℓ(Q(s, a; θ) − y)]

with ℓ the Huber loss (Mnih et al. 2015 clip the TD error to [−1, 1], which is the Huber loss's
gradient). Every ``target_update_interval`` environment steps θ⁻ ← θ. Actions are ε-greedy, ε
annealed linearly from 1 to ``exploration_final_eps`` over the first ``exploration_fraction`` of
training.

The agent's whole training state (networks, optimiser, replay buffer, RNGs, counters and the running
episode, restored by replaying its actions) is in :meth:`DQN.state_dict`: a run killed mid-way and
resumed from :func:`aicanon.core.checkpoint.save_checkpoint` ends with the same weights.

Departures from the papers: RMSProp is replaced by Adam with gradient-norm clipping (the maintained
implementations' choice); a time-limit truncation is not terminal (it bootstraps, Pardo et al. 2018);
one environment step is followed by ``gradient_steps`` updates every ``train_freq`` steps (the
papers: one update every 4 frames); low-dimensional observations and an MLP replace Atari frames and
the convolutional network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_probability, check_tensor
from aicanon.rl.buffers import ReplayBuffer
from aicanon.rl.envs import ReplayableEpisodes
from aicanon.rl.networks import QNetwork

__all__ = ["DQN", "DQNConfig", "dqn_loss", "dqn_targets"]


def dqn_targets(
    target_network: Callable[[Tensor], Tensor],
    batch: Mapping[str, Tensor],
    gamma: float,
    online_network: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """The TD targets ``y`` [B] (module docstring): DQN's, or Double DQN's when ``online_network``
    is given (it selects the next action, the target network evaluates it)."""
    check_float("gamma", gamma, 0.0, 1.0)
    rewards = check_tensor("batch['reward']", batch["reward"], dim=1, floating=True)
    terminated = check_tensor("batch['terminated']", batch["terminated"], shape=tuple(rewards.shape))
    with torch.no_grad():
        next_q = target_network(batch["next_observation"])
        if online_network is None:
            next_value = next_q.max(-1).values
        else:
            next_action = online_network(batch["next_observation"]).argmax(-1, keepdim=True)
            next_value = next_q.gather(-1, next_action).squeeze(-1)
        return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_value


def dqn_loss(
    q_network: Callable[[Tensor], Tensor],
    target_network: Callable[[Tensor], Tensor],
    batch: Mapping[str, Tensor],
    gamma: float = 0.99,
    double: bool = False,
) -> Tensor:
    """The Huber loss between Q(s, a; θ) and the (Double) DQN target (module docstring)."""
    missing = [
        k for k in ("observation", "action", "reward", "next_observation", "terminated") if k not in batch
    ]
    if missing:
        raise ValueError(f"batch is missing {missing}")
    actions = check_tensor("batch['action']", batch["action"], dim=1, floating=False)
    targets = dqn_targets(target_network, batch, gamma, q_network if double else None)
    q = q_network(batch["observation"]).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    return F.smooth_l1_loss(q, targets)


@dataclass
class DQNConfig:
    """DQN's settings (defaults: stable-baselines3 zoo's tuned CartPole-v1 values, smaller network)."""

    learning_rate: float = 2.3e-3
    buffer_size: int = 100_000
    learning_starts: int = 1000
    batch_size: int = 64
    gamma: float = 0.99
    train_freq: int = 256
    gradient_steps: int = 128
    target_update_interval: int = 10
    exploration_fraction: float = 0.16
    exploration_final_eps: float = 0.04
    max_grad_norm: float = 10.0
    hidden: Sequence[int] = field(default_factory=lambda: (256, 256))
    double: bool = False
    """Double DQN's target (van Hasselt et al. 2016)."""
    dueling: bool = False
    """The dueling head (Wang et al. 2016)."""

    def __post_init__(self) -> None:
        check_float("learning_rate", self.learning_rate, 0.0, min_inclusive=False, finite=True)
        for name in ("buffer_size", "batch_size", "train_freq", "gradient_steps", "target_update_interval"):
            check_int(name, getattr(self, name))
        check_int("learning_starts", self.learning_starts, 0)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_probability("exploration_fraction", self.exploration_fraction)
        check_probability("exploration_final_eps", self.exploration_final_eps)
        check_float("max_grad_norm", self.max_grad_norm, 0.0, min_inclusive=False)


class DQN:
    """A DQN agent on one Gymnasium environment with a ``Discrete`` action space (module docstring).

    ``learn(steps)`` continues training for ``steps`` environment steps; ``act(observation)`` is the
    greedy policy (the evaluation protocol's)."""

    def __init__(self, env: Any, cfg: DQNConfig | None = None, seed: int = 0) -> None:
        from gymnasium import spaces

        self.cfg = DQNConfig() if cfg is None else cfg
        if not isinstance(self.cfg, DQNConfig):
            raise TypeError(f"cfg must be a DQNConfig, got {type(self.cfg).__name__}")
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"DQN needs a Discrete action space, the environment has {env.action_space!r}")
        if not isinstance(env.observation_space, spaces.Box) or len(env.observation_space.shape) != 1:
            raise TypeError(f"DQN needs a flat Box observation space, got {env.observation_space!r}")
        check_int("seed", seed, 0)
        # Records how each episode began and its actions, so a checkpoint can replay the current one.
        self.env = env if isinstance(env, ReplayableEpisodes) else ReplayableEpisodes(env)
        env = self.env
        cfg = self.cfg
        dim, n = int(env.observation_space.shape[0]), int(env.action_space.n)
        torch.manual_seed(seed)
        self.q_network = QNetwork(dim, n, cfg.hidden, cfg.dueling)
        self.target_network = QNetwork(dim, n, cfg.hidden, cfg.dueling)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=cfg.learning_rate)
        self.buffer = ReplayBuffer.for_spaces(env.observation_space, env.action_space, cfg.buffer_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.steps = 0
        self.updates = 0
        self.total_steps = 0  # the horizon the exploration schedule anneals over (set by learn)
        self.episodes: list[tuple[float, int]] = []
        self.observation, _ = env.reset(seed=seed)
        self._return, self._length = 0.0, 0

    def epsilon(self) -> float:
        """ε of the linear schedule at the current step."""
        horizon = self.cfg.exploration_fraction * max(self.total_steps, 1)
        progress = min(self.steps / horizon, 1.0) if horizon > 0 else 1.0
        return 1.0 + progress * (self.cfg.exploration_final_eps - 1.0)

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> int:
        q = self.q_network(torch.as_tensor(np.asarray(observation), dtype=torch.float32).reshape(1, -1))
        return int(q.argmax(-1))

    def update(self, batch: Mapping[str, Tensor]) -> float:
        """One gradient step on ``batch``; returns the loss."""
        loss = dqn_loss(self.q_network, self.target_network, batch, self.cfg.gamma, self.cfg.double)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_network.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        return float(loss.detach())

    def learn(self, steps: int, total_steps: int | None = None) -> list[tuple[float, int]]:
        """Train for ``steps`` environment steps (``total_steps``: the horizon of the exploration
        schedule, default ``steps``); returns the (return, length) of the episodes that ended."""
        check_int("steps", steps)
        self.total_steps = check_int("total_steps", total_steps, allow_none=True) or max(
            self.total_steps, steps
        )
        cfg, env = self.cfg, self.env
        finished = []
        for _ in range(steps):
            if self.rng.random() < self.epsilon():
                action = int(self.rng.integers(env.action_space.n))
            else:
                action = self.act(self.observation)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            if not np.isfinite(reward):
                raise ValueError(f"the environment returned a non-finite reward {reward}")
            self.buffer.add(
                observation=self.observation,
                action=action,
                reward=float(reward),
                next_observation=next_observation,
                terminated=float(terminated),
            )
            self._return += float(reward)
            self._length += 1
            self.steps += 1
            if terminated or truncated:
                finished.append((self._return, self._length))
                self._return, self._length = 0.0, 0
                next_observation, _ = env.reset()
            self.observation = next_observation
            if self.steps > cfg.learning_starts and self.steps % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    self.update(self.buffer.sample(cfg.batch_size, self.generator))
            if self.steps % cfg.target_update_interval == 0:
                self.target_network.load_state_dict(self.q_network.state_dict())
        self.episodes.extend(finished)
        return finished

    def state_dict(self) -> dict[str, Any]:
        """The whole training state (networks, optimiser, replay buffer, RNGs, counters, the running
        episode) for :func:`aicanon.core.checkpoint.save_checkpoint`."""
        return {
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": _rng_to_plain(self.rng.bit_generator.state),
            "env_rng": _rng_to_plain(self.env.unwrapped.np_random.bit_generator.state),
            "counters": {"steps": self.steps, "updates": self.updates, "total_steps": self.total_steps},
            "episodes": [list(e) for e in self.episodes],
            "episode": {
                "return": self._return,
                "length": self._length,
                "environment": self.env.snapshot(),  # how it began and its actions, replayed on load
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state; the environment is brought back to the same point of
        its current episode by replaying the episode's actions from its reset (the environment must
        be deterministic given its reset seed and RNG, as Gymnasium's are)."""
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = _rng_from_plain(state["rng"])
        counters = state["counters"]
        self.steps, self.updates, self.total_steps = (
            counters["steps"],
            counters["updates"],
            counters["total_steps"],
        )
        self.episodes = [(float(r), int(n)) for r, n in state["episodes"]]
        episode = state["episode"]
        self._return, self._length = float(episode["return"]), int(episode["length"])
        observation = self.env.restore(episode["environment"])  # refuses an episode it cannot replay
        self.env.unwrapped.np_random.bit_generator.state = _rng_from_plain(state["env_rng"])
        self.observation = np.asarray(observation)


def _rng_to_plain(state: Mapping[str, Any]) -> dict[str, Any]:
    """A NumPy bit generator's state with its 128-bit integers as decimal strings (JSON-safe)."""
    return {
        k: (_rng_to_plain(v) if isinstance(v, Mapping) else str(v) if isinstance(v, int) else v)
        for k, v in state.items()
    }


def _rng_from_plain(state: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (_rng_from_plain(v) if isinstance(v, Mapping) else int(v) if k != "bit_generator" else v)
        for k, v in state.items()
    }
