"""RL fine-tuning of a language model against a reward model: InstructGPT's stage 3 (Ouyang et al. 2022,
Section 3.5 and Appendix C.4), PPO (Schulman et al. 2017) with a per-token KL penalty to the SFT model,
and PPO-ptx, which mixes the pre-training gradient in.

The objective InstructGPT maximises (Eq. 2)::

    objective(phi) = E_{(x, y) ~ D_pi_phi^RL} [ r_theta(x, y) - beta log(pi_phi^RL(y | x) / pi^SFT(y | x)) ]
                     + gamma E_{x ~ D_pretrain} [ log pi_phi^RL(x) ]

PPO optimises the first term as an episodic RL problem whose actions are the response tokens. As in
Stiennon et al. (2020) and Ziegler et al. (2019), which InstructGPT follows, the KL term is spread over
the tokens: response token ``t`` (of ``L``) earns

    r_t = - beta (log pi(y_t | x, y_<t) - log pi^SFT(y_t | x, y_<t)) + [t = L - 1] r_theta(x, y)

(the reward model's score at the last token; summed over ``t`` it is the bracket of Eq. 2 for one
sample). The states are the prefixes ``(x, y_<t)``; a value model ``V(x, y_<t)`` gives the baseline,
and generalised advantage estimation (Schulman et al. 2016, Eq. 16)

    delta_t = r_t + g V_{t+1} - V_t,   A_t = sum_l (g lambda)^l delta_{t+l},   R_t = A_t + V_t

(``V_L = 0``: the episode ends with the response) gives the advantages, computed by
:func:`aicanon.rl.rollout.gae` on the ``[L, B]`` transposed tensors, with the last real token of each
response marked terminal. Advantages are whitened over the batch's response tokens (mean 0, variance
1), then PPO's clipped surrogate (Eq. 7 of the PPO paper) and the clipped value loss
(:func:`aicanon.rl.ppo.clipped_surrogate_loss`, :func:`aicanon.rl.ppo.value_loss`) are applied to
every response token of a mini-batch, padding left out. PPO-ptx adds ``gamma`` times the next-token
cross-entropy of a batch of pre-training text to each mini-batch's loss (the gradient of Eq. 2's last
term).

The pieces, each usable on its own:

* :func:`response_mask`: which generated tokens belong to the response (up to and including the first
  end-of-sequence token);
* :func:`token_logprobs`, :class:`ValueModel`: per-token ``log pi`` and ``V`` over the response;
* :func:`kl_penalised_rewards`, :func:`advantages_and_returns`, :func:`whiten`: the equations above;
* :class:`RLHFTrainer`: rollouts by batched generation with the KV cache
  (:func:`aicanon.language.generation.generate` through ``policy.generate``), the PPO update, PPO-ptx,
  and checkpoint/resume of the whole state (policy, value model, optimiser, reference, RNG).

Value model: a separate network initialised from the reward model, as the paper does (Appendix C.4:
"we initialize the value function from the RM"): :meth:`ValueModel.from_reward_model` copies the reward
model's trunk and scalar head and reads the head at every position instead of the last one.

Departures from the paper, and why:

* The optimiser is Adam over the policy and the value model together (one loss: the two networks share
  no parameters, so this equals two optimisers with the same settings); gradients are clipped by their
  global norm. The paper's Adam settings for RL are not all given in the text we could check.
* No exponential moving average of the policy weights (InstructGPT evaluates an EMA with decay 0.992):
  the experiments here evaluate the last policy.
* The default discount is 1 and lambda 0.95 (Stiennon et al.'s and trl's defaults; InstructGPT does not
  state its own in the text we could check).
* Advantages are whitened over the whole rollout batch (trl's ``masked_whiten``); the paper does not say
  where it normalises.
* Sampling uses the policy's temperature (default 1, as the paper); log-probabilities are of the
  tempered distribution the tokens were sampled from.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from aicanon.align.reward_model import RewardModel
from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.checks import check_float, check_int, check_tensor, check_token_ids
from aicanon.rl.ppo import clipped_surrogate_loss, value_loss
from aicanon.rl.rollout import gae

__all__ = [
    "RLHFConfig",
    "RLHFTrainer",
    "ValueModel",
    "advantages_and_returns",
    "kl_penalised_rewards",
    "lm_loss",
    "response_mask",
    "token_logprobs",
    "whiten",
]

RewardFunction = Callable[[Tensor, Tensor], Tensor]
"""``reward_fn(sequences [B, T], attention_mask [B, T]) -> scores [B]``: the reward model's score of
each prompt + response (left-padded prompt, response, padding after its end masked out)."""


# ----- the equations -------------------------------------------------------------------------------


def response_mask(response_ids: Tensor, eos_token_id: int | None) -> Tensor:
    """1 for the tokens of each generated response up to and including its first ``eos_token_id``,
    0 after it (what generation pads with once a row finished); all ones when ``eos_token_id`` is None."""
    check_token_ids("response_ids", response_ids)
    if response_ids.dim() != 2:
        raise ValueError(f"response_ids must be 2-D [batch, length], got {tuple(response_ids.shape)}")
    if eos_token_id is None:
        return torch.ones_like(response_ids)
    is_eos = (response_ids == eos_token_id).long()
    return ((is_eos.cumsum(1) - is_eos) == 0).long()


def _check_masked(name: str, tensor: Tensor, mask: Tensor) -> None:
    check_tensor(name, tensor, shape=tuple(mask.shape), floating=True)


def token_logprobs(
    model: nn.Module, sequences: Tensor, attention_mask: Tensor, response_start: int, temperature: float = 1.0
) -> Tensor:
    """``log pi(y_t | x, y_<t)`` of every response token ``[B, L]`` (``L = T - response_start``), from one
    forward pass of ``model`` (logits ``[B, T, V]``) over the prompt + response; logits are divided by
    ``temperature`` (the distribution the tokens were sampled from)."""
    check_token_ids("sequences", sequences)
    check_int("response_start", response_start, 1, sequences.shape[1] - 1)
    check_float("temperature", temperature, 0.0, min_inclusive=False, finite=True)
    logits = model(sequences, attention_mask=attention_mask)
    logits = getattr(logits, "logits", logits)
    # Token t is predicted from position t - 1.
    logits = logits[:, response_start - 1 : -1].float() / temperature
    targets = sequences[:, response_start:].unsqueeze(-1)
    return logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def kl_penalised_rewards(
    scores: Tensor, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor, beta: float
) -> tuple[Tensor, Tensor]:
    """Per-token rewards ``r_t = -beta (log pi - log pi^SFT) + [t last] r_theta`` ``[B, L]`` (module
    docstring) and the per-token log-ratio ``log pi - log pi^SFT`` (0 on padding)."""
    check_tensor("mask", mask, dim=2)
    check_tensor("scores", scores, shape=(mask.shape[0],), floating=True)
    _check_masked("logprobs", logprobs, mask)
    _check_masked("ref_logprobs", ref_logprobs, mask)
    check_float("beta", beta, 0.0, finite=True, note="the KL coefficient")
    if not bool(mask[:, 0].all()):
        raise ValueError(
            "mask must be 1 on the first response token of every row (a response is never empty)"
        )
    m = mask.to(logprobs.dtype)
    log_ratio = (logprobs - ref_logprobs) * m
    rewards = -beta * log_ratio
    last = mask.long().sum(1) - 1
    rewards[torch.arange(mask.shape[0]), last] += scores.to(rewards.dtype)
    return rewards, log_ratio


def advantages_and_returns(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """GAE advantages and value targets ``[B, L]`` over each response (0 on padding), with
    :func:`aicanon.rl.rollout.gae`: the last real token is terminal, ``V`` after it is 0."""
    check_tensor("mask", mask, dim=2)
    _check_masked("rewards", rewards, mask)
    _check_masked("values", values, mask)
    m = mask.to(rewards.dtype)
    values = values * m
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1) * torch.cat(
        [m[:, 1:], torch.zeros_like(m[:, :1])], dim=1
    )
    # Terminal at the last real token and on every padding position: padding then adds nothing
    # (its reward, value and next value are 0) and the recursion restarts at each response's end.
    terminated = 1.0 - torch.cat([m[:, 1:], torch.zeros_like(m[:, :1])], dim=1)
    advantages, returns = gae(
        (rewards * m).T, values.T, next_values.T, terminated.T, torch.zeros_like(terminated).T, gamma, lam
    )
    return advantages.T * m, returns.T * m


def whiten(values: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """``(x - mean) / sqrt(var + 1e-8)`` over the entries where ``mask`` is 1 (unbiased variance, as trl's
    ``masked_whiten``); with ``shift_mean=False`` the mean is added back. Padding stays 0."""
    check_tensor("mask", mask)
    _check_masked("values", values, mask)
    m = mask.to(values.dtype)
    count = m.sum()
    if count < 2:
        raise ValueError(f"mask must select at least 2 entries to whiten, got {int(count)}")
    mean = (values * m).sum() / count
    var = ((values - mean).square() * m).sum() / (count - 1)
    out = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * m


def lm_loss(model: nn.Module, ids: Tensor) -> Tensor:
    """Mean next-token cross-entropy of ``model`` on ``[B, T]`` token windows: minus the per-token mean
    of Eq. 2's ``log pi(x)`` over pre-training text."""
    check_token_ids("ids", ids)
    if ids.dim() != 2 or ids.shape[1] < 2:
        raise ValueError(f"ids must be [batch, length >= 2] token windows, got {tuple(ids.shape)}")
    logits = model(ids)
    logits = getattr(logits, "logits", logits)
    return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())


# ----- the value model -----------------------------------------------------------------------------


class ValueModel(nn.Module):
    """``V(x, y_<t)`` at every position: a Llama trunk (LM head dropped) and a scalar head.

    :meth:`from_reward_model` initialises it from a reward model (InstructGPT, Appendix C.4).
    ``forward(ids, attention_mask) -> [B, T]``; the value of the state before response token ``t`` is
    read at position ``response_start + t - 1``.
    """

    def __init__(self, trunk: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        if not isinstance(head, nn.Linear) or head.out_features != 1:
            raise ValueError(f"head must be an nn.Linear with one output, got {head!r}")
        self.trunk = trunk
        self.head = head

    @classmethod
    def from_reward_model(cls, reward_model: RewardModel) -> ValueModel:
        if not isinstance(reward_model, RewardModel):
            raise TypeError(f"reward_model must be a RewardModel, got {type(reward_model).__name__}")
        return cls(copy.deepcopy(reward_model.backbone), copy.deepcopy(reward_model.score))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.head(self.trunk(input_ids, attention_mask=attention_mask)).squeeze(-1).float()


# ----- the trainer ---------------------------------------------------------------------------------


@dataclass
class RLHFConfig:
    """PPO(-ptx) settings (defaults: InstructGPT Appendix C.4 where it gives one)."""

    beta: float = 0.02
    """KL reward coefficient (Appendix C.4: 0.02)."""
    ptx_coef: float = 0.0
    """Pre-training loss coefficient gamma of Eq. 2 (0: PPO; PPO-ptx: 27.8 in the paper)."""
    gamma: float = 1.0
    """Discount over response tokens (see the module docstring)."""
    lam: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO's epsilon of the policy ratio (Appendix C.4: 0.2)."""
    clip_range_value: float | None = 0.2
    """Clip of the value change (None: the plain squared error)."""
    value_coef: float = 0.1
    """Weight of the value loss (trl's default; the paper gives none)."""
    epochs: int = 1
    """PPO passes over each rollout batch (Appendix C.4: a single inner epoch)."""
    minibatch_size: int = 64
    """Episodes per update (Appendix C.4: batch 512 split into minibatches of 64)."""
    lr: float = 1e-5
    """Adam learning rate (Appendix C.4: about 1e-5, it varies with model size)."""
    max_grad_norm: float | None = 1.0
    """Global gradient-norm clip (None: no clipping)."""
    max_new_tokens: int = 32
    """Response tokens generated per prompt."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts (the paper: 1)."""
    whiten_advantages: bool = True
    """Whiten advantages over the batch's response tokens."""
    ptx_batch_size: int = 16
    """Pre-training windows per mini-batch for PPO-ptx."""
    ptx_seq_len: int = 64
    """Tokens per pre-training window."""

    def __post_init__(self) -> None:
        check_float("RLHFConfig.beta", self.beta, 0.0, finite=True, note="the KL coefficient")
        check_float("RLHFConfig.ptx_coef", self.ptx_coef, 0.0, finite=True)
        check_float("RLHFConfig.gamma", self.gamma, 0.0, 1.0)
        check_float("RLHFConfig.lam", self.lam, 0.0, 1.0)
        check_float("RLHFConfig.clip_range", self.clip_range, 0.0, min_inclusive=False, finite=True)
        check_float(
            "RLHFConfig.clip_range_value", self.clip_range_value, 0.0, min_inclusive=False, allow_none=True
        )
        check_float("RLHFConfig.value_coef", self.value_coef, 0.0, finite=True)
        check_int("RLHFConfig.epochs", self.epochs)
        check_int("RLHFConfig.minibatch_size", self.minibatch_size)
        check_float("RLHFConfig.lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_float("RLHFConfig.max_grad_norm", self.max_grad_norm, 0.0, min_inclusive=False, allow_none=True)
        check_int("RLHFConfig.max_new_tokens", self.max_new_tokens)
        check_float("RLHFConfig.temperature", self.temperature, 0.0, min_inclusive=False, finite=True)
        check_int("RLHFConfig.ptx_batch_size", self.ptx_batch_size)
        check_int("RLHFConfig.ptx_seq_len", self.ptx_seq_len, 2)


class RLHFTrainer:
    """PPO(-ptx) on a causal LM ``policy`` against ``reward_fn``, KL-penalised to the frozen ``reference``
    (the SFT model), with a separate ``value_model`` (module docstring).

    ``policy`` and ``reference`` map ``(ids, attention_mask=...)`` to logits and have ``generate`` (as
    :class:`aicanon.language.llama.Llama`); ``reward_fn`` is :data:`RewardFunction`. ``ptx_data`` is a
    1-D tensor of pre-training token ids, required when ``cfg.ptx_coef > 0``. ``seed`` seeds the
    trainer's own generators (sampling, mini-batch order, pre-training windows), which checkpoints keep.
    :meth:`step` = :meth:`rollout` + :meth:`update`.
    """

    def __init__(
        self,
        policy: nn.Module,
        reference: nn.Module,
        value_model: nn.Module,
        reward_fn: RewardFunction,
        cfg: RLHFConfig | None = None,
        *,
        eos_token_id: int | None = None,
        pad_token_id: int = 0,
        ptx_data: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.cfg = RLHFConfig() if cfg is None else cfg
        if not isinstance(self.cfg, RLHFConfig):
            raise TypeError(f"cfg must be an RLHFConfig, got {type(self.cfg).__name__}")
        for name, module in (("policy", policy), ("reference", reference), ("value_model", value_model)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        if not hasattr(policy, "generate"):
            raise TypeError("policy must have a generate(ids, mask, **kwargs) method (e.g. a Llama)")
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable, got {type(reward_fn).__name__}")
        if self.cfg.ptx_coef > 0:
            if ptx_data is None:
                raise ValueError("ptx_data (1-D pre-training token ids) must be given when cfg.ptx_coef > 0")
            check_tensor("ptx_data", ptx_data, dim=1, dtype=(torch.long, torch.int))
            if ptx_data.numel() <= self.cfg.ptx_seq_len:
                raise ValueError(
                    f"ptx_data must be 1-D and longer than ptx_seq_len={self.cfg.ptx_seq_len}, "
                    f"got shape {tuple(ptx_data.shape)}"
                )
        check_int("seed", seed, 0)
        self.policy, self.reference, self.value_model = policy, reference, value_model
        self.reward_fn = reward_fn
        self.eos_token_id, self.pad_token_id = eos_token_id, pad_token_id
        self.ptx_data = ptx_data
        # The reference runs in eval mode under no_grad; its requires_grad flags are left as they are
        # (it may be the SFT model that later policies are copied from).
        self.reference.eval()
        self.device = next(policy.parameters()).device
        self.parameters = [p for p in (*policy.parameters(), *value_model.parameters()) if p.requires_grad]
        if any(p is q for p in policy.parameters() for q in reference.parameters()):
            raise ValueError(
                "policy and reference must be separate models (copy the SFT model for the policy)"
            )
        self.optimizer = torch.optim.Adam(self.parameters, lr=self.cfg.lr, eps=1e-5)
        self.sampler = torch.Generator(device=self.device).manual_seed(seed)
        self.shuffler = torch.Generator().manual_seed(seed)
        self.steps_done = 0

    # -- rollouts ---------------------------------------------------------------------------------

    def _reward(self, sequences: Tensor, mask: Tensor) -> Tensor:
        scores = self.reward_fn(sequences, mask)
        if not isinstance(scores, Tensor) or tuple(scores.shape) != (sequences.shape[0],):
            got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ValueError(f"reward_fn must return a tensor of shape ({sequences.shape[0]},), got {got}")
        if not bool(torch.isfinite(scores).all()):
            raise ValueError(f"reward_fn returned non-finite scores: {scores.tolist()}")
        return scores.detach().float().to(self.device)

    @torch.no_grad()
    def rollout(self, prompt_ids: Tensor, prompt_mask: Tensor) -> dict[str, Tensor]:
        """Sample one response per (left-padded) prompt with the KV cache, score it, and compute the
        per-token rewards, advantages and returns (module docstring)."""
        check_token_ids("prompt_ids", prompt_ids)
        if prompt_ids.dim() != 2:
            raise ValueError(f"prompt_ids must be 2-D [batch, length], got {tuple(prompt_ids.shape)}")
        check_tensor("prompt_mask", prompt_mask, shape=tuple(prompt_ids.shape))
        if not bool(prompt_mask[:, -1].all()):
            raise ValueError("prompt_mask must be 1 in the last column: prompts are left-padded")
        cfg = self.cfg
        prompt_ids, prompt_mask = prompt_ids.to(self.device), prompt_mask.to(self.device)
        start = prompt_ids.shape[1]
        sequences = self.policy.generate(
            prompt_ids,
            prompt_mask,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            generator=self.sampler,
        )
        mask = response_mask(sequences[:, start:], self.eos_token_id)
        attention = torch.cat([prompt_mask.long(), mask], dim=1)
        self.policy.eval()
        logprobs = token_logprobs(self.policy, sequences, attention, start, cfg.temperature)
        ref_logprobs = token_logprobs(self.reference, sequences, attention, start, cfg.temperature)
        self.value_model.eval()
        values = self.value_model(sequences, attention)[:, start - 1 : -1] * mask
        scores = self._reward(sequences, attention)
        rewards, log_ratio = kl_penalised_rewards(scores, logprobs, ref_logprobs, mask, cfg.beta)
        advantages, returns = advantages_and_returns(rewards, values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            advantages = whiten(advantages, mask)
        return {
            "sequences": sequences,
            "attention_mask": attention,
            "mask": mask,
            "logprobs": logprobs * mask,
            "values": values,
            "advantages": advantages,
            "returns": returns,
            "scores": scores,
            "kl": log_ratio.sum(1),
            "response_start": torch.tensor(start),
        }

    # -- the update -------------------------------------------------------------------------------

    def _ptx_batch(self) -> Tensor:
        cfg = self.cfg
        assert self.ptx_data is not None
        starts = torch.randint(
            0, self.ptx_data.numel() - cfg.ptx_seq_len, (cfg.ptx_batch_size,), generator=self.shuffler
        )
        return torch.stack([self.ptx_data[s : s + cfg.ptx_seq_len] for s in starts.tolist()]).to(self.device)

    def losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The PPO(-ptx) loss of one mini-batch of a :meth:`rollout` and its parts."""
        cfg = self.cfg
        start = int(batch["response_start"])
        mask = batch["mask"].bool()
        logprobs = token_logprobs(
            self.policy, batch["sequences"], batch["attention_mask"], start, cfg.temperature
        )
        values = self.value_model(batch["sequences"], batch["attention_mask"])[:, start - 1 : -1]
        # Every response token of the mini-batch counts once (padding left out): the losses are the
        # token means of rl.ppo's per-step losses.
        policy_loss, stats = clipped_surrogate_loss(
            logprobs[mask], batch["logprobs"][mask], batch["advantages"][mask], cfg.clip_range
        )
        critic_loss = value_loss(
            values[mask], batch["returns"][mask], batch["values"][mask], cfg.clip_range_value
        )
        total = policy_loss + cfg.value_coef * critic_loss
        stats.update(policy_loss=float(policy_loss.detach()), value_loss=float(critic_loss.detach()))
        if cfg.ptx_coef > 0:
            pretrain = lm_loss(self.policy, self._ptx_batch())
            total = total + cfg.ptx_coef * pretrain
            stats["ptx_loss"] = float(pretrain.detach())
        return total, stats

    def update(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """``cfg.epochs`` passes of shuffled mini-batches of episodes over a :meth:`rollout`."""
        cfg = self.cfg
        size = batch["sequences"].shape[0]
        self.policy.train()
        self.value_model.train()
        totals: dict[str, float] = {}
        count = 0
        for _ in range(cfg.epochs):
            order = torch.randperm(size, generator=self.shuffler)
            for begin in range(0, size, cfg.minibatch_size):
                index = order[begin : begin + cfg.minibatch_size].to(self.device)
                part = {k: (v if v.dim() == 0 else v[index]) for k, v in batch.items()}
                loss, stats = self.losses(part)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(self.parameters, cfg.max_grad_norm)
                self.optimizer.step()
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
        self.policy.eval()
        self.value_model.eval()
        return {key: value / max(count, 1) for key, value in totals.items()}

    def step(self, prompt_ids: Tensor, prompt_mask: Tensor) -> dict[str, float]:
        """One PPO iteration: a rollout on the prompts, then the update. Returns the mean score, the
        mean sequence KL to the reference, response length and the update's losses."""
        batch = self.rollout(prompt_ids, prompt_mask)
        stats = self.update(batch)
        self.steps_done += 1
        stats.update(
            score=float(batch["scores"].mean()),
            kl=float(batch["kl"].mean()),
            length=float(batch["mask"].float().sum(1).mean()),
        )
        return stats

    # -- checkpoints ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything a resumed run needs: policy, value model, optimiser, reference, generators, the
        global RNG and the step count."""
        return {
            "policy": self.policy.state_dict(),
            "value_model": self.value_model.state_dict(),
            "reference": self.reference.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.get_state(),
            "shuffler": self.shuffler.get_state(),
            "rng": rng_state(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.value_model.load_state_dict(state["value_model"])
        self.reference.load_state_dict(state["reference"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.set_state(state["sampler"])
        self.shuffler.set_state(state["shuffler"])
        set_rng_state(state["rng"])
        self.steps_done = int(state["steps_done"])

    def save(self, path: str | Path, config: dict | None = None) -> Path:
        """An atomic, checksummed checkpoint (:func:`aicanon.core.checkpoint.save_checkpoint`); ``config``
        (default: this trainer's :class:`RLHFConfig`) must match on :meth:`resume`."""
        return save_checkpoint(path, self.state_dict(), config=asdict(self.cfg) if config is None else config)

    def resume(self, path: str | Path, config: dict | None = None) -> bool:
        """Load the newest good checkpoint at ``path`` if there is one (True), refusing one saved with
        another config (:class:`aicanon.core.checkpoint.CheckpointMismatch`)."""
        state = load_checkpoint(path, config=asdict(self.cfg) if config is None else config)
        if state is None:
            return False
        self.load_state_dict(state)
        return True
