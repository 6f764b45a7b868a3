"""TD3: Twin Delayed Deep Deterministic policy gradient (Fujimoto, van Hoof & Meger, ICML 2018,
"Addressing Function Approximation Error in Actor-Critic Methods"), with DDPG (Lillicrap et al.
2015, as re-tuned in the paper: "Our DDPG") as the same code with TD3's three changes switched off.

A deterministic actor π_φ(s) ∈ [−1, 1]^k (tanh output) and critics Q_θ(s, a) on the concatenated
state and action. TD3 adds to DDPG:

* **Clipped double Q-learning** (Section 4.2): two critics Q_θ1, Q_θ2 with target networks, both
  regressed onto the smaller of the two target values::

      y₁ = r + γ min_{i=1,2} Q_θ'ᵢ(s', π_φ1(s'))                                         (Eq. 10)

* **Target policy smoothing** (Section 5.3): the target action is perturbed by clipped noise::

      y = r + γ Q_θ'(s', π_φ'(s') + ε),   ε ~ clip(N(0, σ̃), −c, c)                     (Eq. 14)

  with σ̃ = 0.2, c = 0.5; the perturbed action is clipped to the action bounds (the authors' code).
  Together, the target of both critics (Eq. 15, Algorithm 1)::

      y = r + γ (1 − terminated) min_{i=1,2} Q_θ'ᵢ(s', clip(π_φ'(s') + ε, −1, 1))        (Eq. 15)

  and each critic minimises N⁻¹ Σ (y − Q_θᵢ(s, a))² (the two losses are summed and stepped by one
  Adam over both critics' parameters: the same as two Adams, the parameters being disjoint).
* **Delayed policy updates** (Section 5.2): every d = 2 critic updates, the actor takes one step
  of the deterministic policy gradient on Q_θ1 (Algorithm 1)::

      ∇_φ J(φ) = N⁻¹ Σ ∇_a Q_θ1(s, a)|_{a=π_φ(s)} ∇_φ π_φ(s)

  and only then the target networks move: θ'ᵢ ← τ θᵢ + (1 − τ) θ'ᵢ, φ' ← τ φ + (1 − τ) φ'.

:meth:`TD3Config.ddpg` is "Our DDPG" of Table 1 (the paper's architecture, hyper-parameters and
exploration, "AHE" of Table 2): one critic, no smoothing, d = 1. The three switches
(``twin_critics``, ``target_noise``, ``policy_delay``) give every row of Table 2's ablation.

Exploration (Section 6.1): uniform random actions for the first ``learning_starts`` steps (1000;
10000 on HalfCheetah and Ant), then π_φ(s) + N(0, 0.1), clipped to the bounds. One update per
environment step, mini-batches of 100 from a replay buffer that keeps the whole history, Adam with
learning rate 10⁻³ for actor and critics, τ = 0.005, networks 400-300 with ReLU.

Actions live in [−1, 1] (make the environment with ``aicanon.rl.envs.make_env(...,
rescale_actions=True)``): the noise scales σ = 0.1, σ̃ = 0.2, c = 0.5 are then fractions of the
action range, as the authors' code multiplies them by ``max_action``.

Departures from the paper
-------------------------
* Time limits: a transition cut by the time limit bootstraps (``terminated = 0``); the paper's code
  does the same (``done_bool = 0`` at the time limit), its equations do not say.
* Updates start at ``learning_starts`` (the authors' code and stable-baselines3), not from step 1
  of Algorithm 1 with a buffer that cannot yet fill a batch.
* The delay counter counts critic updates (as stable-baselines3's ``_n_updates``), Algorithm 1
  counts environment steps ("if t mod d"): the same thing with one update per step.

:func:`train_off_policy` is the loop: act, step, store, update, with checkpoints of the whole state
(networks, optimisers, buffer, RNGs, counters, the environment's RNG) taken at episode ends, so a
run killed mid-way and resumed ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.rl.buffers import ReplayBuffer
from aicanon.rl.networks import mlp

__all__ = [
    "Critic",
    "DeterministicActor",
    "TD3",
    "TD3Config",
    "TrainingLog",
    "clipped_double_q_target",
    "smoothed_target_action",
    "soft_update",
    "train_off_policy",
]


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    if not isinstance(hidden, (tuple, list)) or not hidden:
        raise ValueError(f"hidden must be a non-empty tuple of layer widths, got {hidden!r}")
    for width in hidden:
        check_int("hidden width", width)
    return tuple(hidden)


class DeterministicActor(nn.Module):
    """π_φ(s) = tanh(MLP(s)) ∈ [−1, 1]^action_dim (Section 6.1: 400-300 ReLU layers, a tanh output)."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (400, 300)) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("action_dim", action_dim)
        self.observation_dim, self.action_dim = observation_dim, action_dim
        sizes = [observation_dim, *_check_hidden(hidden), action_dim]
        self.net = nn.Sequential(*mlp(sizes, nn.ReLU, orthogonal=False), nn.Tanh())

    def forward(self, observation: Tensor) -> Tensor:
        check_tensor("observation", observation, shape=(None, self.observation_dim), floating=True)
        return self.net(observation)


class Critic(nn.Module):
    """Q_θ(s, a) = MLP([s, a]) (Section 6.1: state and action both enter the first layer), shape [N]."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (400, 300)) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("action_dim", action_dim)
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.net = mlp([observation_dim + action_dim, *_check_hidden(hidden), 1], nn.ReLU, orthogonal=False)

    def forward(self, observation: Tensor, action: Tensor) -> Tensor:
        check_tensor("observation", observation, shape=(None, self.observation_dim), floating=True)
        check_tensor("action", action, shape=(observation.shape[0], self.action_dim), floating=True)
        return self.net(torch.cat([observation, action], dim=1)).squeeze(1)


def smoothed_target_action(
    target_action: Tensor, noise_std: float, noise_clip: float, generator: torch.Generator | None = None
) -> Tensor:
    """clip(π_φ'(s') + clip(N(0, σ̃), −c, c), −1, 1) (Eq. 14); ``noise_std = 0`` returns the action."""
    check_tensor("target_action", target_action, floating=True)
    check_float("noise_std", noise_std, 0.0, finite=True)
    check_float("noise_clip", noise_clip, 0.0, finite=True)
    if noise_std == 0.0:
        return target_action
    noise = torch.empty_like(target_action).normal_(0.0, noise_std, generator=generator)
    return (target_action + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def clipped_double_q_target(
    reward: Tensor, terminated: Tensor, next_q_values: Sequence[Tensor], gamma: float
) -> Tensor:
    """y = r + γ (1 − terminated) min_i Q'_i (Eq. 10/15); one critic gives DDPG's target."""
    check_tensor("reward", reward, dim=1, floating=True)
    check_tensor("terminated", terminated, shape=tuple(reward.shape), floating=True)
    check_float("gamma", gamma, 0.0, 1.0, finite=True)
    if not next_q_values:
        raise ValueError("next_q_values must hold at least one critic's values, got none")
    for index, values in enumerate(next_q_values):
        check_tensor(f"next_q_values[{index}]", values, shape=tuple(reward.shape), floating=True)
    next_value = torch.stack(list(next_q_values)).min(dim=0).values
    return reward + gamma * (1.0 - terminated) * next_value


@torch.no_grad()
def soft_update(network: nn.Module, target: nn.Module, tau: float) -> None:
    """θ' ← τ θ + (1 − τ) θ' (Algorithm 1), parameter by parameter, in place."""
    check_float("tau", tau, 0.0, 1.0, min_inclusive=False, finite=True)
    parameters, target_parameters = list(network.parameters()), list(target.parameters())
    if len(parameters) != len(target_parameters):
        raise ValueError(f"target has {len(target_parameters)} parameters, network {len(parameters)}")
    # θ' + τ (θ − θ') = τ θ + (1 − τ) θ': one fused call over all parameters.
    torch._foreach_lerp_(target_parameters, parameters, tau)


@dataclass
class TD3Config:
    """TD3's hyper-parameters (Section 6.1; defaults are the paper's)."""

    gamma: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Target network rate τ."""
    actor_learning_rate: float = 1e-3
    """Adam learning rate of the actor."""
    critic_learning_rate: float = 1e-3
    """Adam learning rate of the critics."""
    batch_size: int = 100
    """Transitions per update, sampled uniformly from the replay buffer."""
    hidden: tuple[int, ...] = (400, 300)
    """Hidden widths of actor and critics."""
    twin_critics: bool = True
    """Clipped double Q-learning (Eq. 10); False: one critic (DDPG)."""
    policy_delay: int = 2
    """d: one actor and target update per d critic updates (Section 5.2); 1: DDPG."""
    target_noise: float = 0.2
    """σ̃ of target policy smoothing (Eq. 14); 0: none (DDPG)."""
    target_noise_clip: float = 0.5
    """c: the smoothing noise is clipped to [−c, c]."""
    exploration_noise: float = 0.1
    """σ of the Gaussian exploration noise N(0, σ) added to π_φ(s) when acting."""
    learning_starts: int = 1000
    """Steps of uniformly random actions before learning (1000; the paper uses 10000 on HalfCheetah, Ant)."""
    buffer_size: int = 1_000_000
    """Replay capacity (the paper keeps the whole history of its 10⁶ steps)."""

    @classmethod
    def ddpg(cls, **overrides: Any) -> TD3Config:
        """ "Our DDPG" (Table 1) / AHE (Table 2): TD3's architecture and hyper-parameters without
        clipped double Q, target smoothing or delayed updates."""
        return cls(**{"twin_critics": False, "policy_delay": 1, "target_noise": 0.0, **overrides})

    def validate(self) -> TD3Config:
        check_float("gamma", self.gamma, 0.0, 1.0, finite=True)
        check_float("tau", self.tau, 0.0, 1.0, min_inclusive=False, finite=True)
        check_float("actor_learning_rate", self.actor_learning_rate, 0.0, min_inclusive=False, finite=True)
        check_float("critic_learning_rate", self.critic_learning_rate, 0.0, min_inclusive=False, finite=True)
        check_int("batch_size", self.batch_size)
        _check_hidden(self.hidden)
        if not isinstance(self.twin_critics, bool):
            raise TypeError(f"twin_critics must be a bool, got {type(self.twin_critics).__name__}")
        check_int("policy_delay", self.policy_delay)
        check_float("target_noise", self.target_noise, 0.0, finite=True)
        check_float("target_noise_clip", self.target_noise_clip, 0.0, finite=True)
        check_float("exploration_noise", self.exploration_noise, 0.0, finite=True)
        check_int("learning_starts", self.learning_starts, 0)
        check_int("buffer_size", self.buffer_size)
        return self


def _check_spaces(observation_space: Any, action_space: Any) -> tuple[int, int]:
    from gymnasium import spaces

    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise TypeError(
            "TD3/DDPG act in a continuous space: action_space must be a 1-D gymnasium Box, "
            f"got {action_space!r} (observation space {observation_space!r})"
        )
    if not (np.all(action_space.low == -1.0) and np.all(action_space.high == 1.0)):
        raise ValueError(
            f"action_space must be bounded by [-1, 1] (the actor's tanh range), got low {action_space.low} "
            f"high {action_space.high}: make the environment with make_env(..., rescale_actions=True)"
        )
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise TypeError(
            f"observation_space must be a 1-D gymnasium Box (a state vector), got {observation_space!r} "
            f"(action space {action_space!r})"
        )
    return int(observation_space.shape[0]), int(action_space.shape[0])


class TD3:
    """The TD3 (or DDPG) agent: actor, critics, their targets and optimisers, and its RNG.

    ``act`` picks actions (random before ``learning_starts``, then π + exploration noise); ``update``
    takes one gradient step of the critics on a batch and, every ``policy_delay`` of them, one of the
    actor followed by the target updates. ``generator`` (seeded by ``seed``) draws all of the agent's
    noise, so a run repeats and resumes exactly.
    """

    def __init__(
        self, observation_space: Any, action_space: Any, config: TD3Config | None = None, seed: int = 0
    ):
        self.config = (config or TD3Config()).validate()
        check_int("seed", seed, 0)
        self.observation_space, self.action_space = observation_space, action_space
        self.observation_dim, self.action_dim = _check_spaces(observation_space, action_space)
        cfg = self.config
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, torch's global RNG untouched
            torch.manual_seed(seed)
            self.actor = DeterministicActor(self.observation_dim, self.action_dim, cfg.hidden)
            critics = 2 if cfg.twin_critics else 1
            self.critics = nn.ModuleList(
                [Critic(self.observation_dim, self.action_dim, cfg.hidden) for _ in range(critics)]
            )
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        # foreach: one call per Adam step for all tensors (the same arithmetic, fewer dispatches).
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=cfg.actor_learning_rate, foreach=True
        )
        self.critic_optimizer = torch.optim.Adam(
            self.critics.parameters(), lr=cfg.critic_learning_rate, foreach=True
        )
        self.updates = 0
        self.steps = 0

    # -- acting ------------------------------------------------------------------------------------
    @torch.no_grad()
    def policy(self, observation: np.ndarray | Tensor) -> np.ndarray:
        """π_φ(s) for one observation (no noise): the evaluation policy."""
        observation = torch.as_tensor(np.asarray(observation, dtype=np.float32)).reshape(1, -1)
        if observation.shape[1] != self.observation_dim:
            raise ValueError(
                f"observation must hold {self.observation_dim} numbers, got shape {tuple(observation.shape)}"
            )
        return self.actor.net(observation)[0].numpy()

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> np.ndarray:
        """The behaviour policy at the agent's current step: uniform in [−1, 1] before
        ``learning_starts``, then clip(π_φ(s) + N(0, σ), −1, 1) (Algorithm 1)."""
        if self.steps < self.config.learning_starts:
            return (torch.rand(self.action_dim, generator=self.generator) * 2.0 - 1.0).numpy()
        action = torch.as_tensor(self.policy(observation))
        noise = torch.randn(self.action_dim, generator=self.generator) * self.config.exploration_noise
        return (action + noise).clamp(-1.0, 1.0).numpy()

    # -- learning ----------------------------------------------------------------------------------
    def target(self, batch: dict[str, Tensor]) -> Tensor:
        """The critics' regression target y of Eq. 15 (Eq. 10 without smoothing, DDPG's with one critic)."""
        with torch.no_grad():
            next_action = smoothed_target_action(
                self.actor_target.net(batch["next_observation"]),
                self.config.target_noise,
                self.config.target_noise_clip,
                self.generator,
            )
            next_input = torch.cat([batch["next_observation"], next_action], dim=1)
            next_q = [critic.net(next_input).squeeze(1) for critic in self.critics_target]
            return clipped_double_q_target(batch["reward"], batch["terminated"], next_q, self.config.gamma)

    def critic_loss(self, batch: dict[str, Tensor], target: Tensor) -> Tensor:
        """Σ_i N⁻¹ Σ (y − Q_θi(s, a))²."""
        inputs = torch.cat([batch["observation"], batch["action"]], dim=1)
        return sum(
            torch.nn.functional.mse_loss(critic.net(inputs).squeeze(1), target) for critic in self.critics
        )  # type: ignore[return-value]

    def actor_loss(self, observation: Tensor) -> Tensor:
        """−N⁻¹ Σ Q_θ1(s, π_φ(s)): its gradient is the deterministic policy gradient of Algorithm 1."""
        action = self.actor.net(observation)
        return -self.critics[0].net(torch.cat([observation, action], dim=1)).mean()

    def update(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One critic step and, every ``policy_delay`` calls, one actor step and the target updates."""
        for name in ("observation", "action", "reward", "next_observation", "terminated"):
            if name not in batch:
                raise ValueError(
                    f"batch must hold {name!r} (a ReplayBuffer sample), got keys {sorted(batch)}"
                )
        target = self.target(batch)
        loss = self.critic_loss(batch, target)
        self.critic_optimizer.zero_grad()
        loss.backward()
        self.critic_optimizer.step()
        self.updates += 1
        stats = {"critic_loss": loss.item(), "target_mean": target.mean().item()}
        if self.updates % self.config.policy_delay == 0:
            actor_loss = self.actor_loss(batch["observation"])
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            soft_update(self.critics, self.critics_target, self.config.tau)
            soft_update(self.actor, self.actor_target, self.config.tau)
            stats["actor_loss"] = actor_loss.item()
        return stats

    @torch.no_grad()
    def value(self, observation: Tensor) -> Tensor:
        """Q_θ1(s, π_φ(s)): the critic's estimate of the current policy's value (Figure 1)."""
        return self.critics[0](observation, self.actor(observation))

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critics": self.critics.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critics_target": self.critics_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
            "steps": self.steps,
            "config": dataclasses.asdict(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = {k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()}
        if saved != dataclasses.asdict(self.config):
            raise ValueError(f"state was saved by an agent with config {saved}, this one has {self.config}")
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"])
        self.updates, self.steps = int(state["updates"]), int(state["steps"])


@dataclass
class TrainingLog:
    """Returns and lengths of the finished training episodes, with the step each ended at."""

    episode_returns: list[float] = dataclasses.field(default_factory=list)
    episode_lengths: list[int] = dataclasses.field(default_factory=list)
    episode_end_steps: list[int] = dataclasses.field(default_factory=list)


def _generator_state_to_json(env: Any) -> Any:
    return copy.deepcopy(env.unwrapped.np_random.bit_generator.state)


def train_off_policy(
    agent: TD3,
    env: Any,
    steps: int,
    *,
    buffer: ReplayBuffer | None = None,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    checkpoint_config: Any = None,
    callback: Callable[[TD3, ReplayBuffer, TrainingLog], None] | None = None,
    callback_state: dict | None = None,
) -> tuple[ReplayBuffer, TrainingLog]:
    """Train ``agent`` on ``env`` until it has taken ``steps`` environment steps in all.

    Each step: act, step the environment, store the transition (``terminated`` kept apart from
    truncation), then, from ``learning_starts`` on, one :meth:`TD3.update` on a batch sampled from
    the buffer. ``callback(agent, buffer, log)`` runs after every step (measurements; it may raise
    to stop the run).

    With ``checkpoint_dir``, the whole state (agent, buffer, log, the environment's RNG) is saved
    with :func:`aicanon.core.checkpoint.save_checkpoint` at the first episode end after every
    ``checkpoint_every`` steps, and a checkpoint found there on entry (saved with the same
    ``checkpoint_config``) is resumed: the run then ends with exactly the weights an uninterrupted
    run ends with (episode ends are where the environment's whole state is its RNG).
    ``callback_state`` is a dict in which the callback keeps what it measures: it is saved with each
    checkpoint (after that step's callback ran) and restored in place on resume.
    """
    from aicanon.core.checkpoint import load_checkpoint, save_checkpoint

    if not isinstance(agent, TD3):
        raise TypeError(f"agent must be a TD3 agent, got {type(agent).__name__}")
    check_int("steps", steps)
    check_int("seed", seed, 0)
    check_int("checkpoint_every", checkpoint_every, 0)
    _check_spaces(env.observation_space, env.action_space)
    if (env.observation_space.shape[0], env.action_space.shape[0]) != (
        agent.observation_dim,
        agent.action_dim,
    ):
        raise ValueError(
            f"env has observations of {env.observation_space.shape[0]} and actions of "
            f"{env.action_space.shape[0]} dimensions, the agent was built for {agent.observation_dim} "
            f"and {agent.action_dim}"
        )
    if buffer is None:
        buffer = ReplayBuffer.for_spaces(
            env.observation_space, env.action_space, min(agent.config.buffer_size, max(steps, 1))
        )
    log = TrainingLog()
    resumed = None
    if checkpoint_dir is not None:
        resumed = load_checkpoint(checkpoint_dir, config=checkpoint_config)
    if resumed is not None:
        agent.load_state_dict(resumed["agent"])
        buffer.load_state_dict(resumed["buffer"])
        log = TrainingLog(**{k: list(v) for k, v in resumed["log"].items()})
        env.unwrapped.np_random.bit_generator.state = resumed["env_rng"]
        if callback_state is not None:
            callback_state.clear()
            callback_state.update(resumed.get("callback", {}))
        observation, _ = env.reset()
    else:
        observation, _ = env.reset(seed=seed)
    episode_return, episode_length, last_checkpoint = 0.0, 0, agent.steps
    env_rng = None  # the environment's RNG at an episode end due for a checkpoint
    while agent.steps < steps:
        action = agent.act(observation)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        if not math.isfinite(float(reward)):
            raise ValueError(f"the environment returned a non-finite reward {reward} at step {agent.steps}")
        buffer.add(
            observation=observation,
            action=action,
            reward=np.float32(reward),
            next_observation=next_observation,
            terminated=np.float32(terminated),
        )
        agent.steps += 1
        episode_return += float(reward)
        episode_length += 1
        observation = next_observation
        if agent.steps > agent.config.learning_starts and len(buffer) >= agent.config.batch_size:
            agent.update(buffer.sample(agent.config.batch_size, agent.generator))
        if terminated or truncated:
            log.episode_returns.append(episode_return)
            log.episode_lengths.append(episode_length)
            log.episode_end_steps.append(agent.steps)
            episode_return, episode_length = 0.0, 0
            due = checkpoint_every and agent.steps - last_checkpoint >= checkpoint_every
            if checkpoint_dir is not None and due and agent.steps < steps:
                env_rng = _generator_state_to_json(env)  # before reset: a resumed run resets from it
            observation, _ = env.reset()
        if callback is not None:
            callback(agent, buffer, log)
        if env_rng is not None:  # saved after the callback, so that this step's measurement is in it
            state = {
                "agent": agent.state_dict(),
                "buffer": buffer.state_dict(),
                "log": dataclasses.asdict(log),
                "env_rng": env_rng,
                "callback": {} if callback_state is None else callback_state,
            }
            save_checkpoint(checkpoint_dir, state, config=checkpoint_config)
            last_checkpoint, env_rng = agent.steps, None
    return buffer, log
