"""Group Relative Policy Optimization (GRPO; Shao et al. 2024, "DeepSeekMath", Section 4.1).

PPO for language models without a value network: for each question ``q`` the old policy samples a
group of ``G`` outputs ``{o_1, …, o_G}``; the baseline of each output is the group's mean reward,
so no critic is trained. The objective maximised (Eq. 3) is

    J_GRPO(θ) = E[ 1/G Σ_i 1/|o_i| Σ_t { min( ρ_{i,t} Â_{i,t}, clip(ρ_{i,t}, 1-ε, 1+ε) Â_{i,t} )
                                         - β D_KL[π_θ || π_ref] } ],
    ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,<t}) / π_θold(o_{i,t} | q, o_{i,<t}),

with the per-token KL estimated by the unbiased, always-positive estimator (Eq. 4)

    D_KL[π_θ || π_ref] = π_ref/π_θ - log(π_ref/π_θ) - 1,

added to the loss (not folded into the reward as in PPO for RLHF, Eq. 2). Advantages:

* **Outcome supervision** (4.1.2): one reward ``r_i`` per output, normalised over its group,
  ``r̃_i = (r_i - mean(r)) / std(r)``, and ``Â_{i,t} = r̃_i`` for every token of ``o_i``
  (:func:`group_advantages`).
* **Process supervision** (4.1.3): a reward per reasoning step, ``r_i^{index(j)}`` at the token
  ``index(j)`` where step ``j`` ends; all the group's step rewards are normalised together (by the
  mean and std of the set R of every step reward of every output in the group), and
  ``Â_{i,t} = Σ_{index(j) ≥ t} r̃_i^{index(j)}`` (:func:`process_advantages`).
* **Iterative GRPO** (4.1.4): the reward model keeps training on samples of the current policy
  (with a replay of 10 % of older data), and the reference model is reset to the policy at the
  start of each iteration (:func:`iterative_grpo`).

Algorithm 1 as :class:`GRPO`: :meth:`GRPO.rollout` samples ``G`` outputs per prompt in one
left-padded batch with the KV cache (:func:`aicanon.language.generation.generate`), scores them with
the reward function, and records the old and the reference log-probabilities; :meth:`GRPO.step`
then takes ``steps_per_batch`` (the paper's μ) gradient steps of :func:`grpo_loss` on that batch.
Any causal LM with ``model(input_ids, attention_mask=..., use_cache=...) -> logits or (logits,
cache)`` (the Llama family of :mod:`aicanon.language`) works as policy and reference.

Departures from the paper, and why:

* ``std`` is the unbiased (n - 1) standard deviation plus ``eps`` = 1e-4 in the denominator, as trl
  does (the paper does not say which std; without ``eps`` a group whose rewards are all equal
  divides by zero; with it, such a group gets advantage 0, which is also what the paper's formula
  gives in the limit). :func:`grpo_loss` equals trl's ``GRPOTrainer._compute_loss`` with
  ``loss_type="grpo"``, ``importance_sampling_level="token"``, ``beta`` > 0, no entropy mask, no
  vLLM correction (tested on fixed tensors).
* Completions end at the end-of-sequence token or at the first stop string (``stop``); the tokens
  up to and including the stop string are trained (so the model learns to stop), the rest masked.
* The process reward function returns steps by the *character* offset where each step ends in the
  completion; the token that completes that character is ``index(j)``.
* Iterative GRPO's reward model update is the caller's function (any learned reward model fits);
  the 10 % replay keeps a random 10 % of all earlier samples, as the paper describes.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.language.generation import generate, left_pad

__all__ = [
    "GRPO",
    "GRPOConfig",
    "Rollout",
    "completion_logprobs",
    "group_advantages",
    "grpo_loss",
    "iterative_grpo",
    "kl_estimator",
    "process_advantages",
]

RewardFunction = Callable[[list[str], list[str]], Any]
"""``reward_fn(prompts, completions)`` (each prompt repeated G times, in order) -> one reward per
completion (outcome supervision), or per completion a list of ``(end_char, reward)`` steps (process
supervision)."""


# ---------------------------------------------------------------------------------------------------
# Advantages (Sections 4.1.2 and 4.1.3)
# ---------------------------------------------------------------------------------------------------


def _check_rewards(name: str, rewards: Any, count: int | None) -> Tensor:
    if isinstance(rewards, Tensor):
        values = rewards.detach().float()
    else:
        try:
            values = torch.as_tensor(list(rewards), dtype=torch.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a sequence of numbers, got {type(rewards).__name__}") from error
    if values.dim() != 1 or (count is not None and values.numel() != count):
        want = f"{count} rewards (one per completion)" if count is not None else "a 1-D tensor"
        raise ValueError(f"{name} must have {want}, got shape {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} must be finite, got {values.tolist()}")
    return values


def group_advantages(rewards: Tensor | Sequence[float], group_size: int, eps: float = 1e-4) -> Tensor:
    """Outcome-supervised advantages (4.1.2): ``(r_i - mean(r)) / (std(r) + eps)`` within each group.

    ``rewards`` is ``[num_prompts * group_size]`` with each prompt's group consecutive; returns the
    same shape (one advantage per output, used for all its tokens). ``std`` is unbiased (module
    docstring)."""
    check_int("group_size", group_size, 2, note=" (GRPO compares outputs within a group of G >= 2)")
    check_float("eps", eps, 0.0, finite=True)
    values = _check_rewards("rewards", rewards, None)
    if values.numel() % group_size:
        raise ValueError(
            f"rewards must hold a multiple of group_size={group_size} values, got {values.numel()}"
        )
    grouped = values.view(-1, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, keepdim=True)
    return ((grouped - mean) / (std + eps)).reshape(-1)


def process_advantages(
    step_rewards: Sequence[Sequence[float]],
    step_ends: Sequence[Sequence[int]],
    group_size: int,
    length: int,
    eps: float = 1e-4,
) -> Tensor:
    """Process-supervised advantages (4.1.3): ``[num_outputs, length]``.

    ``step_rewards[i][j]`` is the reward of step ``j`` of output ``i`` and ``step_ends[i][j]`` the
    index (0-based, within the completion) of the token where that step ends. Every step reward of a
    group is normalised by the mean and unbiased std of all the group's step rewards; the advantage of
    token ``t`` is the sum of the normalised rewards of the steps ending at or after ``t``."""
    check_int("group_size", group_size, 2, note=" (GRPO compares outputs within a group of G >= 2)")
    check_int("length", length, 1)
    check_float("eps", eps, 0.0, finite=True)
    if len(step_rewards) != len(step_ends) or len(step_rewards) % group_size:
        raise ValueError(
            f"step_rewards and step_ends must have the same number of outputs, a multiple of group_size="
            f"{group_size}; got {len(step_rewards)} and {len(step_ends)}"
        )
    out = torch.zeros(len(step_rewards), length)
    for first in range(0, len(step_rewards), group_size):
        rows = range(first, first + group_size)
        flat = [float(r) for i in rows for r in step_rewards[i]]
        values = _check_rewards(f"step_rewards[{first}:{first + group_size}]", flat, None)
        if values.numel() == 0:
            continue
        mean = values.mean()
        std = values.std() if values.numel() > 1 else torch.tensor(0.0)
        for i in rows:
            if len(step_rewards[i]) != len(step_ends[i]):
                raise ValueError(
                    f"step_rewards[{i}] and step_ends[{i}] must have equal lengths, got "
                    f"{len(step_rewards[i])} and {len(step_ends[i])}"
                )
            for reward, end in zip(step_rewards[i], step_ends[i], strict=True):
                check_int(f"step_ends[{i}]", end, 0, length - 1)
                # Σ_{index(j) >= t}: the step's normalised reward counts for tokens 0..index(j).
                out[i, : end + 1] += (float(reward) - mean) / (std + eps)
    return out


# ---------------------------------------------------------------------------------------------------
# The objective (Eqs. 3 and 4)
# ---------------------------------------------------------------------------------------------------


def kl_estimator(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Eq. 4, per token: ``π_ref/π_θ - log(π_ref/π_θ) - 1`` from log-probabilities (always >= 0)."""
    check_tensor("logprobs", logprobs, floating=True)
    check_tensor("ref_logprobs", ref_logprobs, shape=tuple(logprobs.shape), floating=True)
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1


def grpo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float = 0.2,
    beta: float = 0.04,
) -> tuple[Tensor, dict[str, float]]:
    """The negated GRPO objective of Eq. 3 (a loss to minimise) and its statistics.

    ``logprobs``, ``old_logprobs``, ``ref_logprobs`` and ``mask`` are ``[B, T]`` (completion tokens;
    ``mask`` 1 on real tokens); ``advantages`` is ``[B]`` (outcome) or ``[B, T]`` (process).
    Per token ``-min(ρÂ, clip(ρ, 1-ε, 1+ε)Â) + β·KL`` (Eq. 4), averaged over each output's tokens
    (1/|o_i|), then over the outputs (1/G and the batch of questions). ``ref_logprobs`` may be None
    when ``beta`` is 0."""
    check_tensor("logprobs", logprobs, dim=2, floating=True)
    shape = tuple(logprobs.shape)
    check_tensor("old_logprobs", old_logprobs, shape=shape, floating=True)
    check_tensor("mask", mask, shape=shape)
    check_float("clip_eps", clip_eps, 0.0, min_inclusive=False, finite=True)
    check_float("beta", beta, 0.0, finite=True, note=" (the KL coefficient)")
    check_tensor("advantages", advantages, floating=True)
    if tuple(advantages.shape) not in ((shape[0],), shape):
        raise ValueError(
            f"advantages must have shape {(shape[0],)} or {shape}, got {tuple(advantages.shape)}"
        )
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    mask = mask.to(logprobs.dtype)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    kl = torch.zeros_like(logprobs)
    if beta != 0.0:
        if ref_logprobs is None:
            raise ValueError("ref_logprobs must be given when beta > 0")
        kl = kl_estimator(logprobs, ref_logprobs)
        per_token = per_token + beta * kl
    lengths = mask.sum(-1).clamp(min=1.0)
    loss = ((per_token * mask).sum(-1) / lengths).mean()
    with torch.no_grad():
        tokens = mask.sum().clamp(min=1.0)
        clipped_share = ((ratio != clipped).to(mask.dtype) * mask).sum() / tokens
        stats = {
            "loss": float(loss),
            "kl": float((kl * mask).sum() / tokens),
            "clip_fraction": float(clipped_share),
        }
    return loss, stats


def completion_logprobs(
    model: nn.Module, input_ids: Tensor, attention_mask: Tensor, completion_length: int
) -> Tensor:
    """Log-probabilities ``[B, completion_length]`` of the last ``completion_length`` tokens of
    ``input_ids`` (left-padded prompts followed by completions) under ``model``, in one forward pass."""
    check_int("completion_length", completion_length, 1)
    out = model(input_ids, attention_mask=attention_mask)
    logits = out[0] if isinstance(out, tuple) else out
    start = input_ids.shape[1] - completion_length
    predicted = logits[:, start - 1 : -1].float().log_softmax(-1)
    return predicted.gather(-1, input_ids[:, start:].unsqueeze(-1)).squeeze(-1)


# ---------------------------------------------------------------------------------------------------
# The trainer (Algorithm 1)
# ---------------------------------------------------------------------------------------------------


@dataclass
class GRPOConfig:
    """Hyperparameters of :class:`GRPO` (the paper's values, Section 4.2, in the comments)."""

    group_size: int = 64
    """G, outputs sampled per question (the paper: 64)."""
    beta: float = 0.04
    """KL coefficient β (the paper: 0.04)."""
    clip_eps: float = 0.2
    """Clipping ε of Eq. 3 (PPO's usual 0.2)."""
    lr: float = 1e-6
    """Policy learning rate (the paper: 1e-6)."""
    steps_per_batch: int = 1
    """μ, gradient steps on each sampled batch (the paper: a single update per exploration stage)."""
    max_new_tokens: int = 1024
    """Longest completion (the paper: 1024)."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts."""
    stop: tuple[str, ...] = ()
    """Strings that end a completion (besides the end-of-sequence token)."""
    supervision: str = "outcome"
    """``"outcome"`` (4.1.2) or ``"process"`` (4.1.3): what the reward function returns."""
    max_grad_norm: float | None = 1.0
    """Gradient-norm clipping (None: off; not in the paper)."""
    eps: float = 1e-4
    """Added to the group std (module docstring)."""
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_int("group_size", self.group_size, 2, note=" (GRPO compares outputs within a group of G >= 2)")
        check_float("beta", self.beta, 0.0, finite=True, note=" (the KL coefficient)")
        check_float("clip_eps", self.clip_eps, 0.0, min_inclusive=False, finite=True)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_int("steps_per_batch", self.steps_per_batch, 1)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_float("temperature", self.temperature, 0.0, min_inclusive=False, finite=True)
        check_choice("supervision", self.supervision, ("outcome", "process"))
        check_float("max_grad_norm", self.max_grad_norm, 0.0, min_inclusive=False, allow_none=True)
        check_float("eps", self.eps, 0.0, finite=True)
        check_float("weight_decay", self.weight_decay, 0.0, finite=True)
        if not isinstance(self.stop, tuple) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"stop must be a tuple of non-empty strings, got {self.stop!r}")


@dataclass
class Rollout:
    """One sampled batch: ``B = len(prompts) * G`` rows, prompts left-padded, then completions."""

    prompts: list[str]
    completions: list[str]
    input_ids: Tensor
    attention_mask: Tensor
    completion_mask: Tensor
    rewards: Tensor
    """[B] outcome rewards (process supervision: the sum of each output's step rewards)."""
    advantages: Tensor
    """[B] (outcome) or [B, T] (process)."""
    old_logprobs: Tensor
    ref_logprobs: Tensor
    extra: dict[str, Any] = field(default_factory=dict)


class GRPO:
    """GRPO on ``policy`` with frozen ``reference`` (default: a copy of the policy at construction),
    ``tokenizer`` (``encode``/``decode``) and ``reward_fn`` (:data:`RewardFunction`).

    ``step(prompts)`` samples ``G`` outputs per prompt, computes advantages and takes
    ``steps_per_batch`` optimiser steps; it returns the batch's statistics. ``state_dict()`` /
    ``load_state_dict()`` hold the whole RL state (policy, reference, optimiser, sampler RNG, step)
    for :func:`aicanon.core.save_checkpoint`."""

    def __init__(
        self,
        policy: nn.Module,
        tokenizer: Any,
        reward_fn: RewardFunction,
        config: GRPOConfig | None = None,
        *,
        reference: nn.Module | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(policy, nn.Module):
            raise TypeError(f"policy must be a torch.nn.Module, got {type(policy).__name__}")
        if reference is not None and not isinstance(reference, nn.Module):
            raise TypeError(f"reference must be a torch.nn.Module or None, got {type(reference).__name__}")
        for method in ("encode", "decode"):
            if not callable(getattr(tokenizer, method, None)):
                raise TypeError(f"tokenizer must have an {method}() method, got {type(tokenizer).__name__}")
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable, got {type(reward_fn).__name__}")
        self.config = GRPOConfig() if config is None else config
        if not isinstance(self.config, GRPOConfig):
            raise TypeError(f"config must be a GRPOConfig, got {type(self.config).__name__}")
        check_int("eos_token_id", eos_token_id, 0, allow_none=True)
        check_int("pad_token_id", pad_token_id, 0)
        self.policy, self.tokenizer, self.reward_fn = policy, tokenizer, reward_fn
        self.reference = copy.deepcopy(policy) if reference is None else reference
        self.reference.requires_grad_(False).eval()
        self.eos_token_id, self.pad_token_id = eos_token_id, pad_token_id
        self.device = next(policy.parameters()).device
        self.optimizer = optimizer or torch.optim.AdamW(
            [p for p in policy.parameters() if p.requires_grad],
            lr=self.config.lr,
            weight_decay=self.config.weight_decay,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.steps = 0

    # -- rollouts ------------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        ids = ids.tolist() if isinstance(ids, Tensor) else list(getattr(ids, "ids", ids))
        if not ids:
            raise ValueError(f"prompt {text!r} encodes to no tokens")
        return ids

    def _cut(self, ids: list[int]) -> tuple[int, str, list[int]]:
        """Tokens kept (through EOS or the end of the first stop string), the text before the stop,
        and each kept token's end offset in the text."""
        limit = len(ids)
        if self.eos_token_id is not None and self.eos_token_id in ids:
            limit = ids.index(self.eos_token_id) + 1
        offsets, text = [], ""
        for k in range(limit):
            if ids[k] == self.eos_token_id:
                offsets.append(len(text))
                continue
            text = self.tokenizer.decode(ids[: k + 1])
            offsets.append(len(text))
            for stop in self.config.stop:
                at = text.find(stop)
                if at >= 0:
                    return k + 1, text[:at], offsets
        return limit, text.replace("\ufffd", ""), offsets

    @torch.no_grad()
    def sample(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor, list[str], list[list[int]]]:
        """G sampled completions per prompt: ``input_ids``, ``attention_mask`` and ``completion_mask``
        ``[B, T]`` (B = len(prompts)·G), the completion texts and their token end offsets."""
        if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompts must be a non-empty list of str")
        cfg = self.config
        rows = [self._encode(p) for p in prompts for _ in range(cfg.group_size)]
        ids, mask = left_pad(rows, pad_token_id=self.pad_token_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        out = generate(
            self.policy,
            ids,
            mask,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            generator=self.generator,
        )
        new = out[:, ids.shape[1] :]
        completion_mask = torch.zeros_like(new)
        texts, offsets = [], []
        for r in range(new.shape[0]):
            kept, text, ends = self._cut(new[r].tolist())
            completion_mask[r, :kept] = 1
            texts.append(text)
            offsets.append(ends)
        # Tokens after the cut are padding: masked out of the loss and of attention.
        input_ids = torch.cat([ids, new.masked_fill(completion_mask == 0, self.pad_token_id)], dim=1)
        attention_mask = torch.cat([mask, completion_mask], dim=1)
        return input_ids, attention_mask, completion_mask, texts, offsets

    def _advantages(self, prompts: list[str], texts: list[str], offsets: list[list[int]], length: int):
        cfg = self.config
        result = self.reward_fn(prompts, texts)
        if cfg.supervision == "outcome":
            rewards = _check_rewards("reward_fn's result", result, len(texts))
            return rewards, group_advantages(rewards, cfg.group_size, cfg.eps)
        if not isinstance(result, Sequence) or len(result) != len(texts):
            raise ValueError(
                f"reward_fn's result must hold one list of (end_char, reward) steps per completion "
                f"({len(texts)}), got {type(result).__name__}"
            )
        step_rewards, step_ends = [], []
        for i, steps in enumerate(result):
            ends = offsets[i]
            rewards_i, ends_i = [], []
            for end_char, reward in steps:
                # index(j): the first token whose text reaches the step's end character.
                token = next((k for k, e in enumerate(ends) if e >= end_char), max(len(ends) - 1, 0))
                rewards_i.append(float(reward))
                ends_i.append(min(token, length - 1))
            step_rewards.append(rewards_i)
            step_ends.append(ends_i)
        totals = _check_rewards("reward_fn's step rewards", [sum(r) for r in step_rewards], len(texts))
        return totals, process_advantages(step_rewards, step_ends, cfg.group_size, length, cfg.eps)

    @torch.no_grad()
    def rollout(self, prompts: Sequence[str]) -> Rollout:
        """Sample, score, and record the old and reference log-probabilities (Algorithm 1, lines 5-9)."""
        input_ids, attention_mask, completion_mask, texts, offsets = self.sample(prompts)
        repeated = [p for p in prompts for _ in range(self.config.group_size)]
        length = completion_mask.shape[1]
        rewards, advantages = self._advantages(repeated, texts, offsets, length)
        was_training = self.policy.training
        self.policy.eval()
        old = completion_logprobs(self.policy, input_ids, attention_mask, length)
        self.policy.train(was_training)
        ref = completion_logprobs(self.reference, input_ids, attention_mask, length)
        return Rollout(
            repeated,
            texts,
            input_ids,
            attention_mask,
            completion_mask,
            rewards.to(self.device),
            advantages.to(self.device),
            old,
            ref,
        )

    # -- optimisation --------------------------------------------------------------------------------

    def loss(self, batch: Rollout) -> tuple[Tensor, dict[str, float]]:
        """:func:`grpo_loss` of the current policy on ``batch``."""
        length = batch.completion_mask.shape[1]
        logprobs = completion_logprobs(self.policy, batch.input_ids, batch.attention_mask, length)
        return grpo_loss(
            logprobs,
            batch.old_logprobs,
            batch.ref_logprobs,
            batch.advantages,
            batch.completion_mask,
            clip_eps=self.config.clip_eps,
            beta=self.config.beta,
        )

    def optimise(self, batch: Rollout) -> dict[str, float]:
        """``steps_per_batch`` gradient steps on ``batch`` (Algorithm 1, line 10)."""
        self.policy.train()
        stats: dict[str, float] = {}
        for _ in range(self.config.steps_per_batch):
            loss, stats = self.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
        self.steps += 1
        return stats

    def step(self, prompts: Sequence[str]) -> dict[str, float]:
        """One GRPO step: :meth:`rollout` then :meth:`optimise`; returns the reward, length and loss
        statistics."""
        batch = self.rollout(prompts)
        stats = self.optimise(batch)
        stats["reward"] = float(batch.rewards.mean())
        stats["length"] = float(batch.completion_mask.sum(-1).float().mean())
        return stats

    def reset_reference(self) -> None:
        """π_ref ← π_θ (the start of each iteration of iterative GRPO, Algorithm 1 line 3)."""
        self.reference.load_state_dict(self.policy.state_dict())

    # -- checkpointing -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "reference": self.reference.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "steps": self.steps,
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("config") is not None:
            saved = dict(state["config"])
            saved["stop"] = tuple(saved.get("stop", ()))
            if saved != asdict(self.config):
                raise ValueError("state was saved with a different GRPOConfig; refusing to resume")
        self.policy.load_state_dict(state["policy"])
        self.reference.load_state_dict(state["reference"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.steps = int(state["steps"])


def iterative_grpo(
    trainer: GRPO,
    prompts: Callable[[int, int], Sequence[str]],
    *,
    iterations: int,
    steps_per_iteration: int,
    update_reward_model: Callable[[list[tuple[str, str, float]]], None] | None = None,
    replay_fraction: float = 0.1,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Iterative GRPO (Section 4.1.4, Algorithm 1's outer loop).

    Each iteration resets the reference model to the policy, runs ``steps_per_iteration`` GRPO steps
    on ``prompts(iteration, step)``, then (when ``update_reward_model`` is given) trains the reward
    model on this iteration's ``(prompt, completion, reward)`` samples plus a replay of
    ``replay_fraction`` of all earlier samples. Returns every step's statistics."""
    check_int("iterations", iterations, 1)
    check_int("steps_per_iteration", steps_per_iteration, 1)
    check_float("replay_fraction", replay_fraction, 0.0, 1.0)
    if not isinstance(trainer, GRPO):
        raise TypeError(f"trainer must be a GRPO, got {type(trainer).__name__}")
    rng = random.Random(seed)
    history: list[tuple[str, str, float]] = []
    log: list[dict[str, float]] = []
    for iteration in range(iterations):
        trainer.reset_reference()
        fresh: list[tuple[str, str, float]] = []
        for step in range(steps_per_iteration):
            batch = trainer.rollout(list(prompts(iteration, step)))
            stats = trainer.optimise(batch)
            stats.update(iteration=float(iteration), reward=float(batch.rewards.mean()))
            log.append(stats)
            fresh += list(zip(batch.prompts, batch.completions, batch.rewards.tolist(), strict=True))
        if update_reward_model is not None:
            replay = rng.sample(history, round(len(history) * replay_fraction)) if history else []
            update_reward_model(fresh + replay)
        history += fresh
    return log
