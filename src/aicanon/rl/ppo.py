"""Proximal policy optimisation (Schulman et al. 2017), generic over the policy: the clipped
surrogate objective, the value loss, the entropy bonus and the epoch/mini-batch update, as separate
functions so that every user (the survey's agents, GAIL, InstructGPT's RL fine-tuning of a language
model) composes them.

The policy is any ``nn.Module`` (or callable) mapping a batch of observations to
``(action distribution, value)``; the update re-evaluates the stored actions under it. Losses
(Eq. 7 and 9 of the paper, as minimised):

    r_t(θ) = exp(log π_θ(a_t|s_t) − log π_old(a_t|s_t))
    L^CLIP = −E[min(r_t Â_t, clip(r_t, 1 − ε, 1 + ε) Â_t)]                                  (Eq. 7)
    L^VF   = E[(V_θ(s_t) − R_t)²]   or, with ``clip_range_value`` (OpenAI baselines' and InstructGPT's
             variant, not in the paper), E[max((V_θ − R)², (V_old + clip(V_θ − V_old, ±ε_v) − R)²)]
    L      = L^CLIP + c₁ L^VF − c₂ E[entropy]                                                 (Eq. 9)

(stable-baselines3 halves nothing and averages; so do we: ``value_coef`` multiplies the plain mean
squared error.) Advantages are normalised per mini-batch (``normalize_advantages``, as the reference
implementations do; not in the paper). An update runs ``epochs`` passes over the rollout in shuffled
mini-batches, clips the gradient norm, and stops early when the approximate KL
E[(r − 1) − log r] exceeds 1.5 × ``target_kl`` (optional; stable-baselines3's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from aicanon.core.checks import check_float, check_int, check_tensor

__all__ = ["PPO", "PPOConfig", "clipped_surrogate_loss", "value_loss"]


def clipped_surrogate_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, clip_range: float
) -> tuple[Tensor, dict[str, float]]:
    """L^CLIP (Eq. 7, as a loss to minimise) and diagnostics: the fraction of clipped ratios and the
    approximate KL E[(r − 1) − log r]."""
    check_tensor("log_probs", log_probs, floating=True)
    check_tensor("old_log_probs", old_log_probs, shape=tuple(log_probs.shape))
    check_tensor("advantages", advantages, shape=tuple(log_probs.shape))
    check_float("clip_range", clip_range, 0.0, min_inclusive=False, finite=True)
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        stats = {
            "clip_fraction": float(((ratio - 1.0).abs() > clip_range).float().mean()),
            "approx_kl": float(((ratio - 1.0) - log_ratio).mean()),
        }
    return loss, stats


def value_loss(
    values: Tensor, returns: Tensor, old_values: Tensor | None = None, clip_range_value: float | None = None
) -> Tensor:
    """L^VF: the mean squared error to the returns, or its clipped variant (module docstring)."""
    check_tensor("values", values, floating=True)
    check_tensor("returns", returns, shape=tuple(values.shape))
    unclipped = (values - returns).square()
    if clip_range_value is None:
        return unclipped.mean()
    check_float("clip_range_value", clip_range_value, 0.0, min_inclusive=False, finite=True)
    if old_values is None:
        raise ValueError("old_values must be given with clip_range_value")
    check_tensor("old_values", old_values, shape=tuple(values.shape))
    clipped = old_values + (values - old_values).clamp(-clip_range_value, clip_range_value)
    return torch.max(unclipped, (clipped - returns).square()).mean()


@dataclass
class PPOConfig:
    """The update's settings (defaults: the paper's MuJoCo settings, Table 3, where it has one)."""

    clip_range: float = 0.2
    clip_range_value: float | None = None
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    epochs: int = 10
    minibatch_size: int = 64
    lr: float = 3e-4
    max_grad_norm: float | None = 0.5
    normalize_advantages: bool = True
    target_kl: float | None = None

    def __post_init__(self) -> None:
        check_float("clip_range", self.clip_range, 0.0, min_inclusive=False, finite=True)
        check_float("clip_range_value", self.clip_range_value, 0.0, min_inclusive=False, allow_none=True)
        check_float("value_coef", self.value_coef, 0.0, finite=True)
        check_float("entropy_coef", self.entropy_coef, 0.0, finite=True)
        check_int("epochs", self.epochs)
        check_int("minibatch_size", self.minibatch_size)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_float("max_grad_norm", self.max_grad_norm, 0.0, min_inclusive=False, allow_none=True)
        check_float("target_kl", self.target_kl, 0.0, min_inclusive=False, allow_none=True)


def _joint_log_prob(distribution: Distribution, actions: Tensor) -> Tensor:
    log_prob = distribution.log_prob(actions)
    return log_prob.sum(-1) if log_prob.dim() > 1 else log_prob


def _entropy(distribution: Distribution) -> Tensor:
    entropy = distribution.entropy()
    return entropy.sum(-1) if entropy.dim() > 1 else entropy


class PPO:
    """The update of Algorithm 1 over a policy ``policy(observations) -> (distribution, value)``.

    ``update(batch)`` takes a flat batch (``observations``, ``actions``, ``log_probs`` of the
    behaviour policy, ``values`` it predicted, ``advantages`` and ``returns``; e.g.
    :meth:`aicanon.rl.rollout.Rollout.flat` plus :func:`~aicanon.rl.rollout.gae`'s outputs) and
    returns the mean losses and diagnostics. ``optimizer`` defaults to Adam with ``eps=1e-5`` (the
    reference implementations').
    """

    def __init__(
        self,
        policy: nn.Module | Callable[[Tensor], tuple[Distribution, Tensor]],
        cfg: PPOConfig | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        parameters: list[nn.Parameter] | None = None,
    ) -> None:
        self.policy = policy
        self.cfg = PPOConfig() if cfg is None else cfg
        if not isinstance(self.cfg, PPOConfig):
            raise TypeError(f"cfg must be a PPOConfig, got {type(self.cfg).__name__}")
        if parameters is None:
            if not isinstance(policy, nn.Module):
                raise TypeError("parameters must be given when policy is not an nn.Module")
            parameters = [p for p in policy.parameters() if p.requires_grad]
        self.parameters = list(parameters)
        self.optimizer = optimizer or torch.optim.Adam(self.parameters, lr=self.cfg.lr, eps=1e-5)

    def losses(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The total loss of one mini-batch and its parts."""
        cfg = self.cfg
        distribution, values = self.policy(batch["observations"])
        values = values.reshape(-1)
        log_probs = _joint_log_prob(distribution, batch["actions"])
        advantages = batch["advantages"]
        if cfg.normalize_advantages and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss, stats = clipped_surrogate_loss(log_probs, batch["log_probs"], advantages, cfg.clip_range)
        critic_loss = value_loss(values, batch["returns"], batch.get("values"), cfg.clip_range_value)
        entropy = _entropy(distribution).mean()
        total = policy_loss + cfg.value_coef * critic_loss - cfg.entropy_coef * entropy
        stats.update(
            policy_loss=float(policy_loss.detach()),
            value_loss=float(critic_loss.detach()),
            entropy=float(entropy.detach()),
        )
        return total, stats

    def update(
        self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, float]:
        """``epochs`` passes of shuffled mini-batches over ``batch`` (class docstring)."""
        required = ("observations", "actions", "log_probs", "advantages", "returns")
        missing = [k for k in required if k not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; it needs {list(required)} (and 'values' to clip)")
        size = batch["log_probs"].shape[0]
        for name, tensor in batch.items():
            if tensor.shape[0] != size:
                raise ValueError(f"batch[{name!r}] has {tensor.shape[0]} rows, batch['log_probs'] has {size}")
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise ValueError(f"batch[{name!r}] holds non-finite values")
        cfg = self.cfg
        totals: dict[str, float] = {}
        count, stopped = 0, False
        for _ in range(cfg.epochs):
            order = torch.randperm(size, generator=generator)
            for start in range(0, size, cfg.minibatch_size):
                index = order[start : start + cfg.minibatch_size]
                loss, stats = self.losses({k: v[index] for k, v in batch.items()})
                if cfg.target_kl is not None and stats["approx_kl"] > 1.5 * cfg.target_kl:
                    stopped = True
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(self.parameters, cfg.max_grad_norm)
                self.optimizer.step()
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
            if stopped:
                break
        result = {key: value / max(count, 1) for key, value in totals.items()}
        result.update(updates=float(count), stopped_early=float(stopped))
        return result
