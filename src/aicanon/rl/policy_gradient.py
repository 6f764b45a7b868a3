"""Policy-gradient agents: REINFORCE with a learned baseline (Williams 1992) and advantage
actor-critic, A2C (the synchronous variant of Mnih et al. 2016's A3C) with generalised advantage
estimation (Schulman et al. 2016): the survey's policy-search and actor-critic families
(Arulkumaran et al. 2017, Sections 5.2 and 5.4).

Both ascend the policy gradient with a baseline b(s_t) = V(s_t) (Williams 1992; the survey, Section 5.2)

    ∇_θ J = E[Σ_t ∇_θ log π_θ(a_t | s_t) Â_t]

and fit the critic by regression; as one loss to minimise over a batch of steps

    L = −E[log π_θ(a_t|s_t) Â_t] + c_v E[(V_φ(s_t) − R_t)²] − c_e E[H(π_θ(·|s_t))]

* REINFORCE: Â_t = G_t − V(s_t), G_t the discounted return (GAE with λ = 1), V a baseline only
  (it does not bootstrap inside an episode); long rollouts, Adam.
* A2C: N parallel environments, short rollouts of ``n_steps``, Â_t from GAE(γ, λ)
  (:func:`aicanon.rl.rollout.gae`), R_t = Â_t + V(s_t), one RMSProp step per rollout.

Departures: REINFORCE's "episodes" are rollouts of ``n_steps`` steps per environment, bootstrapped
from V at the rollout's end when an episode is still running (with ``n_steps`` at least the
episode limit this only touches the running tail); A3C's asynchronous workers are replaced by
synchronous vectorised environments (A2C, as in OpenAI baselines and stable-baselines3); time-limit
truncations bootstrap (Pardo et al. 2018).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.rl.on_policy import OnPolicyAgent

__all__ = ["A2C", "A2CConfig", "REINFORCE", "actor_critic_loss"]


def _sum_last(tensor: Tensor) -> Tensor:
    return tensor.sum(-1) if tensor.dim() > 1 else tensor


def actor_critic_loss(
    policy: Callable[[Tensor], tuple[Distribution, Tensor]],
    batch: Mapping[str, Tensor],
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
    normalize_advantages: bool = False,
) -> tuple[Tensor, dict[str, float]]:
    """L of the module docstring on a flat batch (``observations``, ``actions``, ``advantages``,
    ``returns``) and its parts."""
    for key in ("observations", "actions", "advantages", "returns"):
        if key not in batch:
            raise ValueError(f"batch is missing {key!r}; it needs observations, actions, advantages, returns")
    advantages = check_tensor("batch['advantages']", batch["advantages"], dim=1, floating=True)
    check_tensor("batch['returns']", batch["returns"], shape=tuple(advantages.shape))
    check_float("value_coef", value_coef, 0.0, finite=True)
    check_float("entropy_coef", entropy_coef, 0.0, finite=True)
    distribution, values = policy(batch["observations"])
    log_probs = _sum_last(distribution.log_prob(batch["actions"]))
    if normalize_advantages and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -(advantages.detach() * log_probs).mean()
    value_loss = (values.reshape(-1) - batch["returns"]).square().mean()
    entropy = _sum_last(distribution.entropy()).mean()
    total = policy_loss + value_coef * value_loss - entropy_coef * entropy
    stats = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}
    return total, {key: float(value.detach()) for key, value in stats.items()}


@dataclass
class A2CConfig:
    """A2C's settings (defaults: Mnih et al. 2016 / stable-baselines3's A2C, GAE with λ = 1)."""

    num_envs: int = 8
    n_steps: int = 5
    gamma: float = 0.99
    gae_lambda: float = 1.0
    learning_rate: float = 7e-4
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float | None = 0.5
    normalize_advantages: bool = False
    optimizer: str = "rmsprop"
    """``rmsprop`` (α = 0.99, ε = 1e-5: A3C's shared RMSProp as the references use it) or ``adam``."""
    hidden: Sequence[int] = field(default_factory=lambda: (64, 64))

    def __post_init__(self) -> None:
        check_int("num_envs", self.num_envs)
        check_int("n_steps", self.n_steps)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_float("learning_rate", self.learning_rate, 0.0, min_inclusive=False, finite=True)
        check_float("value_coef", self.value_coef, 0.0, finite=True)
        check_float("entropy_coef", self.entropy_coef, 0.0, finite=True)
        check_float("max_grad_norm", self.max_grad_norm, 0.0, min_inclusive=False, allow_none=True)
        check_choice("optimizer", self.optimizer, ("rmsprop", "adam"))


class A2C(OnPolicyAgent):
    """A2C on ``num_envs`` copies of the Gymnasium environment ``env_id`` (module docstring).

    ``learn(steps)`` trains for at least ``steps`` environment steps (all copies together);
    ``policy.act`` is the deterministic policy for :func:`aicanon.rl.evaluation.evaluate_policy`;
    set-up, loop and checkpoints: :class:`aicanon.rl.on_policy.OnPolicyAgent`."""

    name = "A2C"
    config_type = A2CConfig

    def _setup(self) -> None:
        cfg = self.cfg
        if cfg.optimizer == "rmsprop":
            self.optimizer = torch.optim.RMSprop(
                self.policy.parameters(), lr=cfg.learning_rate, alpha=0.99, eps=1e-5
            )
        else:
            self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.learning_rate, eps=1e-5)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"policy": self.optimizer}

    def update(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        """One gradient step of L on a flat batch."""
        cfg = self.cfg
        loss, stats = actor_critic_loss(
            self.policy, batch, cfg.value_coef, cfg.entropy_coef, cfg.normalize_advantages
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return stats


class REINFORCE(A2C):
    """REINFORCE with a learned state-value baseline: Monte-Carlo returns (GAE with λ = 1) over long
    rollouts (``n_steps`` = 500, CartPole's episode limit), Adam (module docstring)."""

    name = "REINFORCE"

    def _default_config(self) -> A2CConfig:
        return A2CConfig(
            num_envs=4,
            n_steps=500,
            gae_lambda=1.0,
            learning_rate=1e-3,
            optimizer="adam",
            normalize_advantages=True,
            max_grad_norm=None,
        )
