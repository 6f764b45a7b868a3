"""Soft Actor-Critic (Haarnoja et al. 2018a, arXiv 1801.01290; with the automatic temperature of
"Soft Actor-Critic Algorithms and Applications", Haarnoja et al. 2018b, arXiv 1812.05905).

SAC maximises the entropy-augmented return (2018b, Eq. 1)

    J(π) = Σ_t E_{(s_t, a_t) ~ ρ_π} [ r(s_t, a_t) + α H(π(·|s_t)) ]

off-policy, from a replay buffer, with a stochastic actor and soft Q-functions.

**Actor** (2018a, Eq. 11 and Appendix C). A diagonal Gaussian over an unbounded u, squashed by tanh:
u = μ_φ(s) + σ_φ(s) ⊙ ε with ε ~ N(0, I) (the reparameterisation a_t = f_φ(ε_t; s_t)), a = tanh(u).
Its log-likelihood by the change of variables (Appendix C, Eqs. 20-21):

    π(a|s) = μ(u|s) |det(da/du)|^{-1}                                               (20)
    log π(a|s) = log μ(u|s) − Σ_i log(1 − tanh²(u_i))                               (21)

computed here with the exact identity log(1 − tanh²(u)) = 2 (log 2 − u − softplus(−2u)), stable for
any u. ``log σ`` is clamped to [−20, 2] (the authors' code and SB3).

**Critics** (2018b, Eqs. 3, 5; two Q-functions as in 2018a Section 4.2 and 2018b Section 5).
Twin soft Q-functions Q_θ1, Q_θ2 with target copies θ̄_i; the soft value of the next state uses the
minimum of the two target critics and a fresh action from the current policy:

    V̄(s') = min_i Q_θ̄i(s', a') − α log π(a'|s'),   a' ~ π(·|s')                   (3)
    y = r + γ (1 − terminated) V̄(s')
    J_Q(θ_i) = E [ ½ (Q_θi(s, a) − y)² ]                                            (5)

and after every update the targets follow θ̄_i ← τ θ_i + (1 − τ) θ̄_i (Algorithm 1).

**Policy** (2018b, Eq. 7; 2018a, Eq. 12), with the minimum of the two critics (2018a, Section 4.2):

    J_π(φ) = E_{s ~ D, ε ~ N} [ α log π_φ(f_φ(ε; s)|s) − min_i Q_θi(s, f_φ(ε; s)) ]   (7)

**Temperature** (2018b, Section 5, Eq. 18), the dual of a minimum-entropy constraint
E[−log π] ≥ H̄ with H̄ = −dim(A) (2018b, Appendix D):

    J(α) = E_{a ~ π} [ −α log π(a|s) − α H̄ ]                                        (18)

**The original variant** (2018a, Algorithm 1; ``SACConfig(value_network=True)``): a state-value
network V_ψ with a target V_ψ̄ replaces the target critics:

    J_V(ψ) = E_s [ ½ (V_ψ(s) − E_{a ~ π} [ min_i Q_θi(s, a) − α log π(a|s) ])² ]     (5 of 2018a)
    Q̂(s, a) = r + γ (1 − terminated) V_ψ̄(s')                                         (8 of 2018a)
    J_Q(θ_i) = E [ ½ (Q_θi(s, a) − Q̂(s, a))² ]                                       (7 of 2018a)

and ψ̄ ← τ ψ + (1 − τ) ψ̄. The 2018a paper fixes α = 1 and scales the rewards instead (reward
scale 5 for Hopper and HalfCheetah, Appendix D): the same optimum as α = 1/5 on unscaled rewards.

Departures from the papers, all as in stable-baselines3's SAC (the reference of the parity tests):

* The temperature is learned through log α (J = −E[log α (log π + H̄)], gradient taken through log α
  only), as the authors' softlearning code does; Eq. 18 is written in α. Same fixed point.
* Order within one gradient step: the actor's samples and log-probabilities are drawn first; the
  temperature loss uses them and steps; the critic target and the actor loss use α *before* that
  step; the critics step, then the actor's loss is taken through the critics just updated, then the
  targets move. The papers' Algorithm 1 lists critic, actor, temperature and target updates.
* Time limits are not terminal: a transition truncated by a time limit bootstraps (Pardo et al. 2018);
  only ``terminated`` stops the bootstrap (the papers' code treats every episode end as terminal).
* ``log_prob_epsilon`` > 0 replaces Eq. 21's correction by log(1 − a² + ε), the authors' original
  code's and SB3's form (ε = 1e-6), used by the parity tests; the default 0 is Eq. 21 exactly.

Usage::

    agent = SAC(env.observation_space, env.action_space, SACConfig(), seed=0)
    action = agent.act(observation)                    # env units, sampled
    agent.observe(observation, action, reward, next_observation, terminated)
    if len(agent.buffer) >= agent.cfg.batch_size:
        agent.update()                                 # one gradient step of each loss

The whole agent (networks, targets, optimisers, temperature, buffer, generator, counters) is in
:meth:`SAC.state_dict`, for :func:`aicanon.core.checkpoint.save_checkpoint`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.rl.buffers import ReplayBuffer
from aicanon.rl.networks import mlp

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "SAC",
    "SACConfig",
    "SoftValue",
    "SquashedGaussianActor",
    "TwinQ",
    "actor_loss",
    "critic_loss",
    "soft_q_target",
    "squashed_log_prob",
    "temperature_loss",
    "value_target",
]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def squashed_log_prob(noise: Tensor, log_std: Tensor, pre_tanh: Tensor, epsilon: float = 0.0) -> Tensor:
    """log π(a|s) of a = tanh(u), u = μ + σ ε (Eq. 21), summed over the action dimensions.

    ``noise`` is ε, ``pre_tanh`` is u; with ``epsilon`` > 0 the correction is log(1 − tanh²(u) + ε)
    (the authors' code and SB3) instead of the exact one."""
    gaussian = (-0.5 * noise.square() - log_std - _LOG_SQRT_2PI).sum(-1)
    if epsilon > 0.0:
        correction = torch.log(1.0 - torch.tanh(pre_tanh).square() + epsilon)
    else:
        correction = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
    return gaussian - correction.sum(-1)


class SquashedGaussianActor(nn.Module):
    """π_φ(a|s): an MLP trunk, then a mean and a log-std head; a = tanh(μ + σ ε) (module docstring)."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256),
        log_prob_epsilon: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("action_dim", action_dim)
        check_float("log_prob_epsilon", log_prob_epsilon, 0.0, finite=True)
        self.observation_dim, self.action_dim = observation_dim, action_dim
        if not hidden:
            raise ValueError(f"hidden must name at least one layer width, got {hidden!r}")
        layers: list[nn.Module] = []
        width = observation_dim
        for size in hidden:  # the trunk ends in a ReLU: both heads read its features
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.mean = nn.Linear(width, action_dim)
        self.log_std = nn.Linear(width, action_dim)
        self.log_prob_epsilon = float(log_prob_epsilon)

    def forward(self, observations: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and clamped log-std of u."""
        features = self.trunk(observations)
        return self.mean(features), self.log_std(features).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, observations: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A reparameterised action a = tanh(μ + σ ε) in (−1, 1) and its log π(a|s) (Eq. 21)."""
        check_tensor("observations", observations, shape=(None, self.observation_dim), floating=True)
        # ε is drawn on the CPU (the generator's device) and moved: the same numbers on any device.
        noise = torch.randn(
            (observations.shape[0], self.action_dim), generator=generator, dtype=observations.dtype
        )
        return self.squash(observations, noise.to(observations.device))

    def squash(self, observations: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """tanh(μ(s) + σ(s) ε) for given noise ε ``[B, action_dim]``, and its log π(a|s) (Eq. 21)."""
        mean, log_std = self(observations)
        pre_tanh = mean + log_std.exp() * noise
        return torch.tanh(pre_tanh), squashed_log_prob(noise, log_std, pre_tanh, self.log_prob_epsilon)

    def deterministic(self, observations: Tensor) -> Tensor:
        """tanh(μ(s)): the action the evaluation protocol uses (2018a Section 5.1)."""
        return torch.tanh(self(observations)[0])


class TwinQ(nn.Module):
    """Two soft Q-functions Q_θ1, Q_θ2 on the concatenation (s, a); each returns ``[B]``."""

    def __init__(self, observation_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.q1 = mlp([observation_dim + action_dim, *hidden, 1], nn.ReLU, orthogonal=False)
        self.q2 = mlp([observation_dim + action_dim, *hidden, 1], nn.ReLU, orthogonal=False)

    def forward(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        inputs = torch.cat([observations, actions], dim=-1)
        return self.q1(inputs).squeeze(-1), self.q2(inputs).squeeze(-1)


class SoftValue(nn.Module):
    """V_ψ(s) of the original variant (2018a Algorithm 1); returns ``[B]``."""

    def __init__(self, observation_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.v = mlp([observation_dim, *hidden, 1], nn.ReLU, orthogonal=False)

    def forward(self, observations: Tensor) -> Tensor:
        return self.v(observations).squeeze(-1)


# ------------------------------------------------------------------------------------------- losses
def soft_q_target(
    rewards: Tensor, terminated: Tensor, next_value: Tensor, gamma: float, reward_scale: float = 1.0
) -> Tensor:
    """y = reward_scale · r + γ (1 − terminated) V̄(s') (2018b Eq. 5's target; 2018a Eq. 8)."""
    check_tensor("rewards", rewards, dim=1, floating=True)
    check_tensor("terminated", terminated, shape=tuple(rewards.shape))
    check_tensor("next_value", next_value, shape=tuple(rewards.shape))
    return reward_scale * rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_value


def value_target(q_values: Tensor, log_probs: Tensor, alpha: float | Tensor) -> Tensor:
    """min_i Q_i(s, a) − α log π(a|s) with a ~ π (2018b Eq. 3; 2018a Eq. 5's regression target).
    ``q_values`` is ``[B]`` (already the minimum) or ``[k, B]`` (the minimum is taken)."""
    q = q_values.min(0).values if q_values.dim() == 2 else q_values
    return q - alpha * log_probs


def critic_loss(q_values: Sequence[Tensor], target: Tensor) -> Tensor:
    """Σ_i ½ mean (Q_θi(s, a) − y)² (Eq. 5 summed over the twin critics; 2018a Eq. 7)."""
    return sum(0.5 * F.mse_loss(q, target) for q in q_values)  # type: ignore[return-value]


def actor_loss(log_probs: Tensor, q_values: Tensor, alpha: float | Tensor) -> Tensor:
    """mean(α log π(a|s) − Q(s, a)) over reparameterised actions (2018b Eq. 7; 2018a Eq. 12)."""
    return (alpha * log_probs - q_values).mean()


def temperature_loss(log_alpha: Tensor, log_probs: Tensor, target_entropy: float) -> Tensor:
    """−mean(log α · (log π(a|s) + H̄)) (Eq. 18 through log α; module docstring)."""
    return -(log_alpha * (log_probs + target_entropy).detach()).mean()


# -------------------------------------------------------------------------------------------- agent
@dataclass
class SACConfig:
    """The agent's settings; defaults are the papers' (2018a Table 1 / 2018b Table 1, Appendix D)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of every network (2 x 256, ReLU)."""
    lr: float = 3e-4
    """Adam learning rate of the actor, the critics, the value network and the temperature."""
    gamma: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Target smoothing coefficient τ."""
    batch_size: int = 256
    """Transitions per gradient step."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity."""
    alpha: float | None = None
    """A fixed temperature α; None learns it (2018b, Eq. 18)."""
    initial_alpha: float = 1.0
    """α before learning (log α = 0, as softlearning and SB3)."""
    target_entropy: float | None = None
    """H̄ of Eq. 18; None: −dim(A) (2018b Appendix D)."""
    reward_scale: float = 1.0
    """Multiplies the rewards in the critic targets (2018a's temperature knob: 5 for Hopper, HalfCheetah)."""
    value_network: bool = False
    """True: the original variant with a state-value network V_ψ and target V_ψ̄ (2018a Algorithm 1)."""
    target_update_interval: int = 1
    """Gradient steps between target updates (1)."""
    log_prob_epsilon: float = 0.0
    """0: Eq. 21 exactly; 1e-6: the authors' code's and SB3's log(1 − a² + ε)."""

    def __post_init__(self) -> None:
        if not isinstance(self.hidden, (tuple, list)) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty tuple of layer widths, got {self.hidden!r}")
        for width in self.hidden:
            check_int("hidden width", width)
        self.hidden = tuple(self.hidden)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("tau", self.tau, 0.0, 1.0, min_inclusive=False)
        check_int("batch_size", self.batch_size)
        check_int("buffer_size", self.buffer_size)
        check_float("alpha", self.alpha, 0.0, finite=True, allow_none=True)
        check_float("initial_alpha", self.initial_alpha, 0.0, min_inclusive=False, finite=True)
        check_float("target_entropy", self.target_entropy, finite=True, allow_none=True)
        check_float("reward_scale", self.reward_scale, 0.0, min_inclusive=False, finite=True)
        check_int("target_update_interval", self.target_update_interval)
        check_float("log_prob_epsilon", self.log_prob_epsilon, 0.0, finite=True)


def _adam(parameters: list[Tensor], lr: float) -> torch.optim.Adam:
    # One fused kernel per step instead of a Python loop over the parameters (a third of an update's
    # time with small networks on a CPU); the parity tests hold it to SB3's plain Adam.
    return torch.optim.Adam(parameters, lr=lr, fused=True)


def _check_batch(batch: Mapping[str, Tensor], observation_dim: int, action_dim: int) -> None:
    required = ("observation", "action", "reward", "next_observation", "terminated")
    missing = [name for name in required if name not in batch]
    if missing:
        raise ValueError(f"batch is missing {missing}; it needs {list(required)}")
    check_tensor("batch['reward']", batch["reward"], dim=1, floating=True)
    size = batch["reward"].shape[0]
    check_tensor("batch['terminated']", batch["terminated"], shape=(size,))
    check_tensor("batch['observation']", batch["observation"], shape=(size, observation_dim), floating=True)
    check_tensor("batch['next_observation']", batch["next_observation"], shape=(size, observation_dim))
    check_tensor("batch['action']", batch["action"], shape=(size, action_dim), floating=True)
    for name in required:
        if not torch.isfinite(batch[name].float()).all():
            raise ValueError(f"batch[{name!r}] holds non-finite values")


def _check_spaces(observation_space: Any, action_space: Any) -> tuple[int, int]:
    from gymnasium import spaces

    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(
            "SAC needs a one-dimensional Box action space (continuous actions), "
            f"got action_space={action_space!r}"
        )
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        raise ValueError(
            f"SAC squashes actions into a bounded box; action_space={action_space!r} is unbounded"
        )
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(
            "SAC's MLPs need a one-dimensional Box observation space, "
            f"got observation_space={observation_space!r} "
            f"(with action_space={action_space!r})"
        )
    return int(observation_space.shape[0]), int(action_space.shape[0])


class SAC:
    """The agent (module docstring): networks, optimisers, temperature and replay buffer.

    ``seed`` seeds the network initialisation and the agent's own generator (exploration noise,
    warm-up actions, minibatch draws). Actions cross the boundary in the environment's units; inside,
    the agent works in (−1, 1) (the buffer stores the squashed action), mapped affinely to the box.
    """

    def __init__(
        self,
        observation_space: Any,
        action_space: Any,
        cfg: SACConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cfg = SACConfig() if cfg is None else cfg
        if not isinstance(self.cfg, SACConfig):
            raise TypeError(f"cfg must be a SACConfig, got {type(self.cfg).__name__}")
        check_int("seed", seed, 0)
        observation_dim, action_dim = _check_spaces(observation_space, action_space)
        cfg, self.device = self.cfg, torch.device(device)
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.action_low = np.asarray(action_space.low, dtype=np.float64)
        self.action_high = np.asarray(action_space.high, dtype=np.float64)
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = SquashedGaussianActor(observation_dim, action_dim, cfg.hidden, cfg.log_prob_epsilon)
            self.critic = TwinQ(observation_dim, action_dim, cfg.hidden)
            self.value = SoftValue(observation_dim, cfg.hidden) if cfg.value_network else None
        self.actor.to(self.device)
        self.critic.to(self.device)
        # The original variant bootstraps from the target value network, the 2018b one from target critics.
        if self.value is not None:
            self.value.to(self.device)
            self.target: nn.Module = copy.deepcopy(self.value).requires_grad_(False)
        else:
            self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_parameters = list(self.actor.parameters())
        self.critic_parameters = list(self.critic.parameters())
        self.value_parameters = list(self.value.parameters()) if self.value is not None else []
        online = self.value if self.value is not None else self.critic
        self.online_target_parameters = list(online.parameters())
        self.target_parameters = list(self.target.parameters())
        self.actor_optimizer = _adam(self.actor_parameters, cfg.lr)
        self.critic_optimizer = _adam(self.critic_parameters, cfg.lr)
        self.value_optimizer = _adam(self.value_parameters, cfg.lr) if self.value is not None else None
        self.learn_alpha = cfg.alpha is None
        initial = cfg.initial_alpha if self.learn_alpha else max(cfg.alpha, 1e-30)  # type: ignore[type-var]
        self.log_alpha = torch.tensor(math.log(initial), device=self.device, requires_grad=self.learn_alpha)
        self.alpha_optimizer = _adam([self.log_alpha], cfg.lr) if self.learn_alpha else None
        self.target_entropy = float(-action_dim if cfg.target_entropy is None else cfg.target_entropy)
        from gymnasium import spaces

        unit_box = spaces.Box(-1.0, 1.0, shape=(action_dim,), dtype=np.float32)
        self.buffer = ReplayBuffer.for_spaces(
            observation_space, unit_box, cfg.buffer_size, device=self.device
        )
        self.updates = 0

    # ------------------------------------------------------------------ acting
    @property
    def alpha(self) -> float:
        """The current temperature (0 when fixed at 0)."""
        if not self.learn_alpha:
            return float(self.cfg.alpha)  # type: ignore[arg-type]
        return float(self.log_alpha.detach().exp())

    def _alpha_tensor(self) -> Tensor | float:
        return self.log_alpha.detach().exp() if self.learn_alpha else float(self.cfg.alpha)  # type: ignore[arg-type]

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """An action in (−1, 1) mapped affinely onto the environment's box."""
        return (
            self.action_low
            + 0.5 * (np.asarray(action, dtype=np.float64) + 1.0) * (self.action_high - self.action_low)
        ).astype(np.float32)

    def from_env(self, action: np.ndarray) -> np.ndarray:
        """An action of the environment's box mapped back to [−1, 1]."""
        scaled = (
            2.0
            * (np.asarray(action, dtype=np.float64) - self.action_low)
            / (self.action_high - self.action_low)
            - 1.0
        )
        return np.clip(scaled, -1.0, 1.0).astype(np.float32)

    def _observation_tensor(self, observation: Any) -> Tensor:
        array = np.asarray(observation, dtype=np.float32)
        if array.shape[-1:] != (self.observation_dim,) or array.ndim > 2:
            raise ValueError(
                f"observation must have shape ({self.observation_dim},) or [n, {self.observation_dim}], "
                f"got {array.shape}"
            )
        return torch.as_tensor(array, device=self.device)

    @torch.no_grad()
    def act(self, observation: Any, deterministic: bool = False) -> np.ndarray:
        """The action for one observation (or a batch ``[n, obs_dim]``), in the environment's units:
        sampled from π (exploration, 2018a Algorithm 1) or tanh(μ(s)) when ``deterministic``."""
        observations = self._observation_tensor(observation)
        single = observations.dim() == 1
        if single:
            observations = observations[None]
        if deterministic:
            action = self.actor.deterministic(observations)
        else:
            action, _ = self.actor.sample(observations, self.generator)
        action = action.cpu().numpy()
        return self.to_env(action[0] if single else action)

    def random_action(self) -> np.ndarray:
        """A uniform action of the box from the agent's generator (warm-up before learning starts)."""
        unit = torch.rand(self.action_dim, generator=self.generator, dtype=torch.float64).numpy() * 2.0 - 1.0
        return self.to_env(unit)

    def observe(
        self, observation: Any, action: Any, reward: float, next_observation: Any, terminated: bool
    ) -> None:
        """Store one transition (``action`` in the environment's units); a non-finite reward is refused."""
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(
                f"reward must be finite, got {reward} (a non-finite reward would poison every target)"
            )
        self.buffer.add(
            observation=np.asarray(observation, dtype=np.float32),
            action=self.from_env(action),
            reward=np.float32(reward),
            next_observation=np.asarray(next_observation, dtype=np.float32),
            terminated=np.float32(bool(terminated)),
        )

    # ---------------------------------------------------------------- learning
    def sample_batch(self) -> dict[str, Tensor]:
        """A uniform minibatch of ``batch_size`` transitions from the buffer (the agent's generator)."""
        return self.buffer.sample(self.cfg.batch_size, self.generator)

    def update(
        self, batch: Mapping[str, Tensor] | None = None, generator: torch.Generator | None = None
    ) -> dict[str, float]:
        """One gradient step of every loss on ``batch`` (default: :meth:`sample_batch`); returns the
        losses, the critic target's mean and α. Exploration noise comes from ``generator`` (default:
        the agent's own; the parity tests pass the global one)."""
        if batch is None:  # the buffer refused non-finite values already
            batch = self.sample_batch()
            generator = self.generator if generator is None else generator
        else:
            _check_batch(batch, self.observation_dim, self.action_dim)
        observations, actions = batch["observation"], batch["action"]
        rewards, terminated = batch["reward"], batch["terminated"]
        next_observations = batch["next_observation"]
        cfg = self.cfg
        size = observations.shape[0]

        # ε for the current states first, then for the next states (SB3's order: the parity tests
        # reproduce its draws); one pass of the actor over both halves.
        noise = torch.randn((size, self.action_dim), generator=generator, dtype=observations.dtype)
        if self.value is None:
            next_noise = torch.randn((size, self.action_dim), generator=generator, dtype=observations.dtype)
            both_actions, both_log_probs = self.actor.squash(
                torch.cat([observations, next_observations]), torch.cat([noise, next_noise]).to(self.device)
            )
            new_actions, next_actions = both_actions[:size], both_actions[size:].detach()
            log_probs, next_log_probs = both_log_probs[:size], both_log_probs[size:].detach()
        else:
            new_actions, log_probs = self.actor.squash(observations, noise.to(self.device))
        stats: dict[str, float] = {}
        alpha = self._alpha_tensor()
        if self.learn_alpha:
            loss_alpha = temperature_loss(self.log_alpha, log_probs, self.target_entropy)
            self.log_alpha.grad = torch.autograd.grad(loss_alpha, self.log_alpha)[0]
            self.alpha_optimizer.step()  # type: ignore[union-attr]
            stats["temperature_loss"] = float(loss_alpha.detach())

        with torch.no_grad():
            if self.value is None:  # 2018b: target critics and a fresh next action (Eq. 3)
                next_q = torch.minimum(*self.target(next_observations, next_actions))
                next_value = value_target(next_q, next_log_probs, alpha)
            else:  # 2018a: the target value network (Eq. 8)
                next_value = self.target(next_observations)
            target = soft_q_target(rewards, terminated, next_value, cfg.gamma, cfg.reward_scale)
        q1, q2 = self.critic(observations, actions)
        loss_q = critic_loss((q1, q2), target)
        gradients = torch.autograd.grad(loss_q, self.critic_parameters)
        for parameter, gradient in zip(self.critic_parameters, gradients, strict=True):
            parameter.grad = gradient
        self.critic_optimizer.step()

        q_new = torch.minimum(*self.critic(observations, new_actions))
        if self.value is not None:  # Eq. 5 of 2018a, with the critics as they are now
            with torch.no_grad():
                v_target = value_target(q_new.detach(), log_probs.detach(), alpha)
            loss_v = 0.5 * F.mse_loss(self.value(observations), v_target)
            gradients = torch.autograd.grad(loss_v, self.value_parameters)
            for parameter, gradient in zip(self.value_parameters, gradients, strict=True):
                parameter.grad = gradient
            self.value_optimizer.step()  # type: ignore[union-attr]
            stats["value_loss"] = float(loss_v.detach())
        loss_pi = actor_loss(log_probs, q_new, alpha)
        # Gradients of the actor's loss for the actor only: the critics' stay untouched.
        gradients = torch.autograd.grad(loss_pi, self.actor_parameters)
        for parameter, gradient in zip(self.actor_parameters, gradients, strict=True):
            parameter.grad = gradient
        self.actor_optimizer.step()

        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            with torch.no_grad():  # θ̄ ← τ θ + (1 − τ) θ̄
                torch._foreach_mul_(self.target_parameters, 1.0 - cfg.tau)
                torch._foreach_add_(self.target_parameters, self.online_target_parameters, alpha=cfg.tau)
        stats.update(
            critic_loss=float(loss_q.detach()),
            actor_loss=float(loss_pi.detach()),
            alpha=float(alpha),
            q_target=float(target.mean()),
            entropy=float(-log_probs.detach().mean()),
        )
        return stats

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks, targets, optimisers, temperature, buffer, generator.
        The optimisers' states are copies (torch's load_state_dict would otherwise share them)."""
        state: dict[str, Any] = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target": self.target.state_dict(),
            "actor_optimizer": copy.deepcopy(self.actor_optimizer.state_dict()),
            "critic_optimizer": copy.deepcopy(self.critic_optimizer.state_dict()),
            "log_alpha": self.log_alpha.detach().clone(),
            "buffer": self.buffer.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }
        if self.alpha_optimizer is not None:
            state["alpha_optimizer"] = copy.deepcopy(self.alpha_optimizer.state_dict())
        if self.value is not None:
            state["value"] = self.value.state_dict()
            state["value_optimizer"] = copy.deepcopy(self.value_optimizer.state_dict())  # type: ignore[union-attr]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(
                f"state does not fit this agent: keys {sorted(state)}, expected {sorted(expected)}"
            )
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.target.load_state_dict(state["target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])
            self.value_optimizer.load_state_dict(state["value_optimizer"])  # type: ignore[union-attr]
        self.buffer.load_state_dict(state["buffer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
