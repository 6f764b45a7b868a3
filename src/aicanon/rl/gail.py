"""Generative adversarial imitation learning (Ho & Ermon 2016, arXiv 1606.03476).

GAIL finds a policy whose occupancy measure ρ_π (the discounted distribution of its state-action
pairs) matches the expert's ρ_πE, by the saddle point of (Eq. 16)

    min_π max_{D ∈ (0,1)^{S×A}}  E_π[log D(s, a)] + E_πE[log(1 − D(s, a))] − λ H(π)          (16)

where **D(s, a) is the probability that (s, a) came from the policy** (not from the expert: the
paper's convention, kept here) and H(π) = E_π[−log π(a|s)] is the γ-discounted causal entropy.
At the inner optimum the objective is the Jensen-Shannon divergence D_JS(ρ_π, ρ_πE) (up to
constants, Eq. 15), so the policy imitates the expert's state-action distribution rather than
its actions one state at a time (behavioural cloning, :mod:`aicanon.rl.behavior_cloning`).

**Algorithm 1.** Given expert trajectories τ_E and initial θ_0, w_0, for i = 0, 1, 2, ...

1. sample trajectories τ_i ~ π_θi (:class:`aicanon.rl.rollout.RolloutCollector`);
2. update the discriminator from w_i to w_{i+1} with the gradient (Eq. 17; ascent)

       Ê_τi[∇_w log D_w(s, a)] + Ê_τE[∇_w log(1 − D_w(s, a))]                                (17)

   by Adam: :func:`discriminator_loss` is its negation, the binary cross-entropy with the policy's
   pairs labelled 1 and the expert's 0, on the logits ℓ = logit D;
3. take a policy step from θ_i to θ_{i+1} by the TRPO rule (a KL-constrained natural-gradient step,
   :func:`aicanon.rl.trpo.trpo_step`) with the cost function log D_{w_{i+1}}(s, a) (Eq. 18):

       Ê_τi[∇_θ log π_θ(a|s) Q(s, a)] − λ ∇_θ H(π_θ),                                           (18)
       Q(s̄, ā) = Ê_τi[log D_{w_{i+1}}(s, a) | s_0 = s̄, a_0 = ā]

**Rewards** (:func:`gail_reward`; the RL step maximises reward = −cost). ``reward_form``:

* ``"neg_log_d"`` (the paper): r = −log D(s, a) = softplus(−ℓ) ∈ [0, ∞): the cost log D negated.
  In the convention where a discriminator outputs the *expert's* probability D_E = 1 − D this is
  the common "−log(1 − D_E)" reward. It is positive everywhere, so it also pays for surviving:
  on tasks that end early when failing (CartPole, Hopper) that bias helps, on tasks that should end
  early (reach a goal) it hurts (Kostrikov et al. 2019).
* ``"log_one_minus_d"``: r = log(1 − D(s, a)) = −softplus(ℓ) ∈ (−∞, 0], the "log D_E" reward of the
  minimax GAN generator; negative everywhere (a bias towards ending episodes).
* ``"logit"``: r = log(1 − D) − log D = −ℓ, the sum of the two (AIRL's form; without a sign bias).

**Causal entropy** (the λ H(π) term). The paper's gradient of H(π_θ) is a policy gradient with the
cost log π_θ(a|s) (Appendix A: ∇_θ H = Ê[∇_θ log π_θ(a|s) Q_log(s, a)] with Q_log built from
−log π_θ), so the entropy term enters as a per-step reward bonus −λ log π_θ(a_t|s_t) before the
advantages are estimated: r_t ← r_t − λ log π_θ(a_t|s_t) (``entropy_coef`` = λ).

**Policy step.** ``policy_step="trpo"`` (the paper): GAE advantages of the rewards above, one
:func:`~aicanon.rl.trpo.trpo_step`, then the value function fitted by Adam; ``"ppo"`` (option): the
clipped-surrogate update of :class:`aicanon.rl.ppo.PPO` on the same advantages.

**Checkpoints.** :meth:`GAIL.state_dict` holds the whole run: policy, value function,
discriminator, every optimiser, the generator and torch's global RNG (which samples the actions),
counters and history, and the position of every environment within its current episode (the
collector's :meth:`~aicanon.rl.rollout.RolloutCollector.state_dict`: how the episode began and the
actions since, which :meth:`GAIL.load_state_dict` replays to put the environments back exactly where
they were): a run killed after a checkpoint resumes to the same result (tested).

Departures from the paper:

* Advantages by GAE(γ, λ) with a learned value baseline (the paper's Eq. 18 writes a Monte-Carlo
  Q; its experiments' TRPO used GAE as we recall: unverified); time limits bootstrap (Pardo et al.
  2018).
* Advantages are normalised and the value function is fitted by Adam (rl.trpo's choices).
* The discriminator's observation inputs may be standardised with the expert data's mean and
  standard deviation (``normalize_observations``, default on; fixed statistics, so the reward does
  not drift): not in the paper, common in its reimplementations, and harmless.
* ``discriminator_steps`` Adam steps per iteration (the paper's Algorithm 1 takes one), each on
  all policy pairs of the rollout and as many expert pairs drawn with replacement.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.rl.demonstrations import Demonstrations
from aicanon.rl.envs import make_vector_env
from aicanon.rl.networks import ActorCritic, mlp, space_dims
from aicanon.rl.ppo import PPO, PPOConfig
from aicanon.rl.rollout import RolloutCollector, gae
from aicanon.rl.trpo import trpo_step

__all__ = [
    "GAIL",
    "POLICY_STEPS",
    "REWARD_FORMS",
    "Discriminator",
    "GAILConfig",
    "discriminator_loss",
    "gail_reward",
]

REWARD_FORMS = ("neg_log_d", "log_one_minus_d", "logit")
POLICY_STEPS = ("trpo", "ppo")


# ----------------------------------------------------------------------------- the discriminator
class Discriminator(nn.Module):
    """D_w(s, a) over state-action pairs: an MLP on [s, a] (a one-hot for ``n_actions`` discrete
    actions) returning the logit ℓ of D = σ(ℓ), the probability that (s, a) is the *policy's*.
    Default: two hidden layers of 100 tanh units (the paper's Section 6)."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        continuous: bool,
        hidden: Sequence[int] = (100, 100),
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        check_int("observation_dim", observation_dim)
        check_int("action_dim", action_dim)
        self.observation_dim, self.action_dim, self.continuous = observation_dim, action_dim, bool(continuous)
        self.net = mlp([observation_dim + action_dim, *hidden, 1], activation, output_gain=1.0)
        # Fixed standardisation of the observations (module docstring); identity until set.
        self.register_buffer("observation_mean", torch.zeros(observation_dim))
        self.register_buffer("observation_std", torch.ones(observation_dim))

    @classmethod
    def for_spaces(cls, observation_space: Any, action_space: Any, **kwargs: Any) -> Discriminator:
        observation_dim, action_dim, continuous = space_dims(observation_space, action_space, "GAIL")
        return cls(observation_dim, action_dim, continuous, **kwargs)

    def set_observation_statistics(self, mean: Tensor, std: Tensor) -> None:
        check_tensor("mean", mean, shape=(self.observation_dim,), floating=True)
        check_tensor("std", std, shape=(self.observation_dim,), floating=True)
        self.observation_mean.copy_(mean)
        self.observation_std.copy_(std.clamp_min(1e-6))

    def inputs(self, observations: Tensor, actions: Tensor) -> Tensor:
        """[standardised s, a] (``actions``: int64 ``[B]`` indices, or float ``[B, A]``)."""
        check_tensor("observations", observations, shape=(None, self.observation_dim), floating=True)
        size = observations.shape[0]
        if self.continuous:
            check_tensor("actions", actions, shape=(size, self.action_dim), floating=True)
            encoded = actions.to(observations.dtype)
        else:
            check_tensor("actions", actions, shape=(size,))
            if actions.is_floating_point():
                raise TypeError(f"actions of a discrete action space must be integers, got {actions.dtype}")
            if size and (int(actions.min()) < 0 or int(actions.max()) >= self.action_dim):
                raise ValueError(
                    f"actions must be in [0, {self.action_dim}), got values in "
                    f"[{int(actions.min())}, {int(actions.max())}]"
                )
            encoded = F.one_hot(actions.long(), self.action_dim).to(observations.dtype)
        standardised = (observations - self.observation_mean) / self.observation_std
        return torch.cat([standardised, encoded], dim=-1)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """The logits ℓ ``[B]`` (D = σ(ℓ) = P(policy | s, a))."""
        return self.net(self.inputs(observations, actions)).squeeze(-1)


def discriminator_loss(policy_logits: Tensor, expert_logits: Tensor) -> Tensor:
    """The negated objective of Eq. 17: −Ê_π[log D] − Ê_E[log(1 − D)] with D = σ(ℓ), i.e. the
    binary cross-entropy with policy pairs labelled 1 and expert pairs 0 (computed stably:
    −log σ(ℓ) = softplus(−ℓ), −log(1 − σ(ℓ)) = softplus(ℓ))."""
    check_tensor("policy_logits", policy_logits, dim=1, floating=True)
    check_tensor("expert_logits", expert_logits, dim=1, floating=True)
    return F.softplus(-policy_logits).mean() + F.softplus(expert_logits).mean()


def gail_reward(logits: Tensor, form: str = "neg_log_d") -> Tensor:
    """The policy's reward from the discriminator's logits (module docstring): ``"neg_log_d"``
    −log D (the paper's cost log D, negated), ``"log_one_minus_d"`` log(1 − D), ``"logit"``
    log(1 − D) − log D."""
    check_tensor("logits", logits, floating=True)
    check_choice("form", form, REWARD_FORMS)
    if form == "neg_log_d":
        return F.softplus(-logits)
    if form == "log_one_minus_d":
        return -F.softplus(logits)
    return -logits


# ------------------------------------------------------------------------------------- the agent
@dataclass
class GAILConfig:
    """GAIL's settings. Defaults follow the paper's Section 6 and appendix as we recall them (two
    hidden layers of 100 tanh units for policy and discriminator, TRPO with max KL 0.01, GAE
    γ = 0.995, λ = 0.97; not re-read from the paper's text here: unverified). ``entropy_coef``
    defaults to 0 (λ of the experiments unverified)."""

    num_envs: int = 8
    n_steps: int = 625
    """Steps per environment per iteration (8 x 625 = 5000 state-action pairs: the paper's batch
    for the classic-control tasks, 50 000 for MuJoCo, as we recall its appendix: unverified)."""
    gamma: float = 0.995
    gae_lambda: float = 0.97
    hidden: Sequence[int] = (100, 100)
    """The policy's (and value function's) hidden layers."""
    policy_step: str = "trpo"
    """``"trpo"`` (the paper) or ``"ppo"``."""
    max_kl: float = 0.01
    damping: float = 0.1
    cg_iterations: int = 10
    backtrack_iterations: int = 10
    backtrack_coef: float = 0.8
    value_lr: float = 1e-3
    value_epochs: int = 5
    value_minibatch_size: int = 256
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(epochs=10, minibatch_size=256, lr=3e-4))
    """The clipped update's settings with ``policy_step="ppo"``."""
    entropy_coef: float = 0.0
    """λ, the causal-entropy weight (a reward bonus −λ log π(a|s); module docstring)."""
    reward_form: str = "neg_log_d"
    """``"neg_log_d"`` (the paper), ``"log_one_minus_d"`` or ``"logit"`` (:func:`gail_reward`)."""
    discriminator_hidden: Sequence[int] = (100, 100)
    discriminator_lr: float = 3e-4
    discriminator_steps: int = 1
    """Adam steps of the discriminator per iteration (Algorithm 1: one)."""
    normalize_observations: bool = True
    """Standardise the discriminator's observation inputs by the expert data's statistics."""
    freeze_discriminator: bool = False
    """Ablation: the discriminator keeps its initial weights (the reward carries no imitation signal)."""
    discriminator_reward: bool = True
    """False: ablation: the discriminator's reward is replaced by 0 (only the entropy bonus remains)."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "cg_iterations", "backtrack_iterations", "value_epochs"):
            check_int(name, getattr(self, name))
        check_int("value_minibatch_size", self.value_minibatch_size)
        check_int("discriminator_steps", self.discriminator_steps)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_float("max_kl", self.max_kl, 0.0, min_inclusive=False, finite=True)
        check_float("damping", self.damping, 0.0, finite=True)
        check_float("backtrack_coef", self.backtrack_coef, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
        check_float("value_lr", self.value_lr, 0.0, min_inclusive=False, finite=True)
        check_float("discriminator_lr", self.discriminator_lr, 0.0, min_inclusive=False, finite=True)
        check_float("entropy_coef", self.entropy_coef, 0.0, finite=True)
        check_choice("policy_step", self.policy_step, POLICY_STEPS)
        check_choice("reward_form", self.reward_form, REWARD_FORMS)
        if not isinstance(self.ppo, PPOConfig):
            raise TypeError(f"ppo must be a PPOConfig, got {type(self.ppo).__name__}")

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["hidden"] = list(self.hidden)
        record["discriminator_hidden"] = list(self.discriminator_hidden)
        return record


class GAIL:
    """GAIL (Algorithm 1) on ``num_envs`` copies of ``env_id``, imitating ``demonstrations``
    (module docstring). ``iterate()`` runs one iteration; ``learn(steps)`` runs iterations until
    ``steps`` more environment steps are done; ``state_dict``/``load_state_dict`` checkpoint it."""

    def __init__(
        self,
        env_id: str,
        demonstrations: Demonstrations,
        cfg: GAILConfig | None = None,
        seed: int = 0,
        **env_kwargs: Any,
    ) -> None:
        self.cfg = GAILConfig() if cfg is None else cfg
        if not isinstance(self.cfg, GAILConfig):
            raise TypeError(f"cfg must be a GAILConfig, got {type(self.cfg).__name__}")
        if not isinstance(demonstrations, Demonstrations):
            raise TypeError(f"demonstrations must be a Demonstrations, got {type(demonstrations).__name__}")
        check_int("seed", seed, 0)
        cfg = self.cfg
        self.env_id, self.seed = env_id, seed
        self.envs = make_vector_env(env_id, cfg.num_envs, seed=seed, **env_kwargs)
        observation_space = self.envs.single_observation_space
        action_space = self.envs.single_action_space
        try:
            space_dims(observation_space, action_space, "GAIL")
        except TypeError as error:
            self.envs.close()
            raise TypeError(f"GAIL cannot act in {env_id}: {error}") from None
        try:
            demonstrations.check_compatible(observation_space, action_space, env_id)
        except ValueError:
            self.envs.close()
            raise
        self.action_space = action_space
        torch.manual_seed(seed)
        self.policy = ActorCritic.for_spaces(observation_space, action_space, hidden=cfg.hidden)
        self.discriminator = Discriminator.for_spaces(
            observation_space, action_space, hidden=cfg.discriminator_hidden
        )
        self.expert_observations, self.expert_actions = demonstrations.tensors()
        if cfg.normalize_observations:
            self.discriminator.set_observation_statistics(
                self.expert_observations.mean(0), self.expert_observations.std(0, unbiased=False)
            )
        self.discriminator_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=cfg.discriminator_lr
        )
        if cfg.policy_step == "ppo":
            self.ppo: PPO | None = PPO(self.policy, PPOConfig(**vars(cfg.ppo)))
            self.value_optimizer = None
        else:
            self.ppo = None
            self.value_optimizer = torch.optim.Adam(self.policy.value_net.parameters(), lr=cfg.value_lr)
        self.collector = RolloutCollector(self.envs, seed=seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0
        self.iterations = 0
        self.episodes: list[tuple[float, int]] = []
        """(environment return, length) of every finished training episode (the env's reward:
        reported, never used for learning)."""
        self.history: list[dict[str, float]] = []

    # -------------------------------------------------------------------------- acting
    def act(self, observation: np.ndarray) -> Any:
        """The deterministic action for one observation (the evaluation protocol's policy)."""
        return self.policy.act(observation, deterministic=True)

    def _env_actions(self, actions: Tensor) -> Tensor:
        """Actions as the environment executed them (a Box's samples clipped, as the collector does)."""
        if self.policy.continuous:
            low = torch.as_tensor(self.action_space.low, dtype=actions.dtype)
            high = torch.as_tensor(self.action_space.high, dtype=actions.dtype)
            return torch.maximum(torch.minimum(actions, high), low)
        return actions.long()

    # ------------------------------------------------------------------------ learning
    def discriminator_update(self, policy_observations: Tensor, policy_actions: Tensor) -> dict[str, float]:
        """Step 2 of Algorithm 1: ``discriminator_steps`` Adam steps on Eq. 17 (negated), each with
        all policy pairs and as many expert pairs drawn uniformly with replacement."""
        stats: dict[str, float] = {}
        size = policy_observations.shape[0]
        for _ in range(self.cfg.discriminator_steps):
            index = torch.randint(self.expert_observations.shape[0], (size,), generator=self.generator)
            policy_logits = self.discriminator(policy_observations, policy_actions)
            expert_logits = self.discriminator(self.expert_observations[index], self.expert_actions[index])
            loss = discriminator_loss(policy_logits, expert_logits)
            if not self.cfg.freeze_discriminator:
                self.discriminator_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.discriminator_optimizer.step()
            with torch.no_grad():
                stats = {
                    "discriminator_loss": float(loss.detach()),
                    # Mean D = P(policy) on each side: 0.5/0.5 when D cannot tell them apart.
                    "d_policy": float(torch.sigmoid(policy_logits).mean()),
                    "d_expert": float(torch.sigmoid(expert_logits).mean()),
                }
        return stats

    def rewards(self, observations: Tensor, actions: Tensor, log_probs: Tensor) -> Tensor:
        """r = gail_reward(D(s, a)) − λ log π(a|s) (module docstring), in the shape of ``log_probs``
        (``observations``/``actions`` with the same leading dimensions)."""
        shape = log_probs.shape
        with torch.no_grad():
            flat_actions = (
                actions.reshape(shape.numel(), -1) if self.policy.continuous else actions.reshape(-1)
            )
            logits = self.discriminator(observations.reshape(shape.numel(), -1), flat_actions)
            reward = gail_reward(logits, self.cfg.reward_form).reshape(shape)
            if not self.cfg.discriminator_reward:
                reward = torch.zeros_like(reward)
            if self.cfg.entropy_coef:
                reward = reward - self.cfg.entropy_coef * log_probs
        if not torch.isfinite(reward).all():
            raise ValueError("the discriminator produced non-finite rewards (its logits overflowed)")
        return reward

    def _fit_value(self, observations: Tensor, returns: Tensor) -> float:
        cfg, size, loss = self.cfg, observations.shape[0], torch.zeros(())
        for _ in range(cfg.value_epochs):
            order = torch.randperm(size, generator=self.generator)
            for start in range(0, size, cfg.value_minibatch_size):
                index = order[start : start + cfg.value_minibatch_size]
                loss = (self.policy.value(observations[index]) - returns[index]).square().mean()
                self.value_optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
                loss.backward()
                self.value_optimizer.step()  # type: ignore[union-attr]
        return float(loss.detach())

    def iterate(self) -> dict[str, float]:
        """One iteration of Algorithm 1 (module docstring); returns its statistics."""
        cfg = self.cfg
        rollout = self.collector.collect(self.policy, cfg.n_steps)
        env_actions = self._env_actions(rollout.actions)
        flat_observations = rollout.observations.flatten(0, 1)
        flat_actions = env_actions.flatten(0, 1)
        stats = self.discriminator_update(flat_observations, flat_actions)
        rewards = self.rewards(rollout.observations, env_actions, rollout.log_probs)
        advantages, returns = gae(
            rewards,
            rollout.values,
            rollout.next_values,
            rollout.terminated,
            rollout.truncated,
            cfg.gamma,
            cfg.gae_lambda,
        )
        batch = rollout.flat() | {"advantages": advantages.flatten(), "returns": returns.flatten()}
        if self.ppo is not None:
            stats.update(self.ppo.update(batch, self.generator))
        else:
            normalised = (batch["advantages"] - batch["advantages"].mean()) / (
                batch["advantages"].std() + 1e-8
            )
            stats.update(
                trpo_step(
                    self.policy,
                    batch["observations"],
                    batch["actions"],
                    normalised,
                    cfg.max_kl,
                    cfg.damping,
                    cfg.cg_iterations,
                    cfg.backtrack_iterations,
                    cfg.backtrack_coef,
                )
            )
            stats["value_loss"] = self._fit_value(batch["observations"], batch["returns"])
        self.steps += cfg.n_steps * cfg.num_envs
        self.iterations += 1
        self.episodes.extend(rollout.episodes)
        stats.update(
            iteration=float(self.iterations),
            steps=float(self.steps),
            gail_reward=float(rewards.mean()),
            env_return=float(np.mean([r for r, _ in rollout.episodes])) if rollout.episodes else math.nan,
        )
        self.history.append(stats)
        return stats

    def learn(self, steps: int) -> list[dict[str, float]]:
        """Iterations until at least ``steps`` more environment steps are done; their statistics."""
        check_int("steps", steps)
        target, done = self.steps + steps, []
        while self.steps < target:
            done.append(self.iterate())
        return done

    # ---------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The whole run (module docstring), for :func:`aicanon.core.checkpoint.save_checkpoint`.
        Optimiser states are copies (torch's load_state_dict would otherwise share them)."""
        return {
            "policy": self.policy.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "discriminator_optimizer": copy.deepcopy(self.discriminator_optimizer.state_dict()),
            "policy_optimizer": copy.deepcopy(
                (self.ppo.optimizer if self.ppo is not None else self.value_optimizer).state_dict()  # type: ignore[union-attr]
            ),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "counters": {"steps": self.steps, "iterations": self.iterations},
            "episodes": [list(e) for e in self.episodes],
            "history": [dict(h) for h in self.history],
            "collector": self.collector.state_dict(),  # every environment's place in its episode
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, replaying each environment's current episode."""
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"state does not fit GAIL: keys {sorted(state)}, expected {sorted(expected)}")
        self.policy.load_state_dict(state["policy"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        optimizer = self.ppo.optimizer if self.ppo is not None else self.value_optimizer
        optimizer.load_state_dict(state["policy_optimizer"])  # type: ignore[union-attr]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.steps = int(state["counters"]["steps"])
        self.iterations = int(state["counters"]["iterations"])
        self.episodes = [(float(r), int(n)) for r, n in state["episodes"]]
        self.history = [dict(h) for h in state["history"]]
        self.collector.load_state_dict(state["collector"])
