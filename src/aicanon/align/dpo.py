"""Direct Preference Optimization (Rafailov et al. 2023, "Direct Preference Optimization: Your Language
Model is Secretly a Reward Model").

RLHF maximises a learned reward under a KL leash to a reference policy (Section 3, Eq. 3),

    max_pi  E_{x, y ~ pi} [ r(x, y) ]  -  beta KL[ pi(y | x) || pi_ref(y | x) ],               (3)

whose optimum is ``pi_r(y | x) = pi_ref(y | x) exp(r(x, y) / beta) / Z(x)`` (Eq. 4). Solving it for
the reward, ``r(x, y) = beta log pi_r(y | x) / pi_ref(y | x) + beta log Z(x)`` (Eq. 5), and putting that
into the Bradley-Terry preference model (Eq. 1), the partition function cancels and the policy itself is
fitted to preferences ``y_w > y_l`` by maximum likelihood (Section 4):

    L_DPO(pi_theta; pi_ref) = - E_{(x, y_w, y_l) ~ D} [ log sigma( beta log pi_theta(y_w | x) / pi_ref(y_w | x)
                                                         - beta log pi_theta(y_l | x) / pi_ref(y_l | x) ) ].   (7)

The *implicit reward* of a completion is ``r_hat(x, y) = beta log pi_theta(y | x) / pi_ref(y | x)``
(Section 4, "What does the DPO update do?", and Section 5); its gradient weighs each pair by
``sigma(r_hat(x, y_l) - r_hat(x, y_w))``, how wrongly the implicit reward orders it. The metrics here
follow: reward accuracy (the fraction of pairs whose chosen completion has the higher implicit reward)
and margin (the mean of ``r_hat(x, y_w) - r_hat(x, y_l)``).

What is here:

* :func:`collate_preferences`: (prompt, chosen, rejected) token ids into one right-padded batch of
  ``2B`` rows, chosen first then rejected, with a ``loss_mask`` on the response tokens (trl's
  ``DataCollatorForPreference`` layout), so that one forward pass of each model scores both;
* :func:`sequence_logprobs`: ``log pi(y | x)``, the sum over response tokens of the next-token
  log-probabilities, prompt and padding masked out (optionally the per-token mean);
* :func:`dpo_loss`: Eq. 7 with ``beta``, the conservative variant with label smoothing ``epsilon``
  (Mitchell 2023, "A note on DPO with noisy preferences": the labels are flipped with probability
  ``epsilon``, ``L = -(1 - epsilon) log sigma(beta h) - epsilon log sigma(-beta h)``), and IPO
  (Azar et al. 2023, Eq. 17: ``(h - 1 / (2 beta))^2``), where
  ``h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l)``; it returns the loss and the implicit rewards;
* :func:`preference_metrics`, :func:`log_ratios` (``log pi(y|x) - log pi_ref(y|x)``, whose mean over
  samples ``y ~ pi`` estimates the sequence-level KL of Eq. 3);
* :func:`train_dpo`: the trainer over (prompt, chosen, rejected) data with a frozen reference model;
  options (:class:`DPOConfig`) keep all pairs of a prompt in one batch, scoring each distinct
  completion once (with K samples per prompt its K(K-1)/2 pairs cost K rows, not K(K-1)), and score
  the reference once before training instead of at every step (trl's ``precompute_ref_log_probs``).

Departures from the paper, and why:

* Optimiser: the paper uses RMSprop, learning rate 1e-6, batch 64, a linear warm-up over 150 steps
  (Appendix B); :class:`DPOConfig` offers ``optimizer="rmsprop"`` with those numbers, but defaults to
  AdamW (what trl and most later work use), and the small models of our experiments need far larger
  learning rates than 1e-6 and far fewer warm-up steps.
* Gradient clipping (``max_grad_norm``) is not in the paper; off by default (None).
* The conservative (label-smoothed) loss and IPO are not in the DPO paper: they are the cheap variants
  named above, off by default. IPO is written on whatever log-probabilities it is given; trl averages
  them per token for IPO (``sequence_logprobs(..., average=True)`` gives that form).
* The chosen and rejected completions go through the model in one concatenated batch (trl's and the
  authors' released code's choice, not the paper's text): same result, one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor, check_token_ids
from aicanon.core.device import autocast

__all__ = [
    "LOSS_TYPES",
    "OPTIMIZERS",
    "DPOConfig",
    "PreferenceBatch",
    "collate_preferences",
    "dpo_loss",
    "log_ratios",
    "preference_metrics",
    "sequence_logprobs",
    "train_dpo",
]

LOSS_TYPES = ("sigmoid", "ipo")
OPTIMIZERS = ("adamw", "rmsprop")


# ----- batching --------------------------------------------------------------------------------------


@dataclass
class PreferenceBatch:
    """``B`` preference pairs as one batch of ``2B`` right-padded rows: chosen rows first, then rejected.

    ``input_ids[i] = prompt_i + chosen_i`` and ``input_ids[B + i] = prompt_i + rejected_i``;
    ``attention_mask`` is 1 on real tokens, ``loss_mask`` 1 on the response tokens only.
    """

    input_ids: Tensor
    attention_mask: Tensor
    loss_mask: Tensor

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device: torch.device | str) -> PreferenceBatch:
        return PreferenceBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.loss_mask.to(device)
        )


def _as_id_list(value, argument: str) -> list[int]:
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.dtype.is_floating_point or value.dtype == torch.bool:
            raise ValueError(
                f"{argument} must be a 1-D integer tensor or a list of ints, got a tensor "
                f"{tuple(value.shape)} {value.dtype}"
            )
        return [int(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    raise TypeError(f"{argument} must be a 1-D integer tensor or a list of ints, got {type(value).__name__}")


def collate_preferences(
    prompts: Sequence[Sequence[int] | Tensor],
    chosen: Sequence[Sequence[int] | Tensor],
    rejected: Sequence[Sequence[int] | Tensor],
    pad_token_id: int = 0,
    max_length: int | None = None,
) -> PreferenceBatch:
    """Token ids of ``B`` (prompt, chosen, rejected) triples into one :class:`PreferenceBatch`.

    Every prompt and completion must be non-empty (the first response token is predicted from the last
    prompt token). With ``max_length`` (the model's context), a prompt + completion longer than it is an
    error rather than silently truncated.
    """
    for name, value in (("prompts", prompts), ("chosen", chosen), ("rejected", rejected)):
        if isinstance(value, (str, bytes, Tensor)) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a sequence of token-id sequences, got {type(value).__name__}")
    if not (len(prompts) == len(chosen) == len(rejected)) or len(prompts) == 0:
        raise ValueError(
            "prompts, chosen and rejected must hold the same number (>= 1) of sequences, got "
            f"{len(prompts)}, {len(chosen)} and {len(rejected)}"
        )
    check_int("pad_token_id", pad_token_id, 0)
    check_int("max_length", max_length, 2, allow_none=True)
    rows: list[tuple[list[int], int]] = []  # (ids, prompt length)
    for side, completions in (("chosen", chosen), ("rejected", rejected)):
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            p, c = _check_sequence(prompt, completion, f"prompts[{i}]", f"{side}[{i}]", max_length)
            rows.append((p + c, len(p)))
    return PreferenceBatch(*_pad_rows(rows, pad_token_id))


def _check_sequence(
    prompt: Sequence[int] | Tensor,
    completion: Sequence[int] | Tensor,
    prompt_name: str,
    completion_name: str,
    max_length: int | None,
) -> tuple[list[int], list[int]]:
    """A prompt and one of its completions as lists of token ids: both non-empty (the first response
    token is predicted from the last prompt token) and together within ``max_length`` when given."""
    p = _as_id_list(prompt, prompt_name)
    c = _as_id_list(completion, completion_name)
    if not p:
        raise ValueError(f"{prompt_name} must hold at least one token, got none")
    if not c:
        raise ValueError(f"{completion_name} must hold at least one token, got none")
    if max_length is not None and len(p) + len(c) > max_length:
        raise ValueError(
            f"{prompt_name} + {completion_name} must fit max_length={max_length} tokens, got "
            f"{len(p)} + {len(c)} = {len(p) + len(c)}"
        )
    return p, c


def _pad_rows(rows: Sequence[tuple[Sequence[int], int]], pad_token_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``loss_mask`` of (ids, prompt length) rows."""
    length = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    loss_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for row, (ids, prompt_length) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
        loss_mask[row, prompt_length : len(ids)] = 1
    return input_ids, attention_mask, loss_mask


# ----- log-probabilities -----------------------------------------------------------------------------


def _logits_of(output) -> Tensor:
    """Our causal LMs return logits; transformers' return an object with ``.logits``."""
    return output.logits if hasattr(output, "logits") else output


def sequence_logprobs(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    loss_mask: Tensor,
    average: bool = False,
) -> Tensor:
    """``log pi(y | x)`` per row: the sum (``average``: the mean) over response tokens of
    ``log softmax(logits[t-1])[token_t]``; tokens where ``loss_mask`` is 0 (prompt, padding) are left out.

    ``model(input_ids, attention_mask=...)`` must return logits ``[B, T, V]`` (or an object with
    ``.logits``, as transformers' models do). Returns float32 ``[B]`` with the model's gradient.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_token_ids("input_ids", input_ids)
    if input_ids.shape[1] < 2:
        raise ValueError(
            f"input_ids must hold at least 2 tokens per row (a prompt and a response), got {input_ids.shape[1]}"
        )
    for name, mask in (("attention_mask", attention_mask), ("loss_mask", loss_mask)):
        if mask is None and name == "attention_mask":
            continue
        if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(input_ids.shape):
            got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(
                f"{name} must be a tensor of input_ids' shape {tuple(input_ids.shape)}, got {got}"
            )
    if bool(loss_mask[:, 0].any()):
        raise ValueError(
            "loss_mask must be 0 in the first column (the first token has no prediction), got 1 there"
        )
    if attention_mask is not None and bool((loss_mask.bool() & ~attention_mask.bool()).any()):
        raise ValueError("loss_mask must be 0 wherever attention_mask is 0 (padding), got 1 on padding")
    logits = _logits_of(model(input_ids, attention_mask=attention_mask))
    if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(input_ids.shape):
        raise ValueError(
            f"model must return logits [batch, length, vocab] for input_ids {tuple(input_ids.shape)}, "
            f"got {tuple(logits.shape)}"
        )
    # Token t is predicted from positions < t: logits[:, t-1] scores input_ids[:, t].
    logits = logits[:, :-1].float()
    targets = input_ids[:, 1:].unsqueeze(-1)
    token_logps = logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    mask = loss_mask[:, 1:].to(token_logps.dtype)
    total = (token_logps * mask).sum(-1)
    if average:
        total = total / mask.sum(-1).clamp(min=1.0)
    return total


def log_ratios(
    policy: nn.Module,
    reference: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    loss_mask: Tensor,
) -> Tensor:
    """``log pi(y|x) - log pi_ref(y|x)`` per row, without gradients.

    Over completions ``y`` sampled from ``policy`` its mean is the Monte-Carlo estimate of the
    sequence-level ``KL[pi(.|x) || pi_ref(.|x)]`` of Eq. 3 (the x-axis of Figure 2).
    """
    with torch.no_grad():
        return sequence_logprobs(policy, input_ids, attention_mask, loss_mask) - sequence_logprobs(
            reference, input_ids, attention_mask, loss_mask
        )


# ----- the loss --------------------------------------------------------------------------------------


def _check_logps(tensors: dict[str, Tensor]) -> None:
    """One value per pair: 1-D floating tensors ``[batch]`` of one shape, not empty."""
    shape = None
    for name, value in tensors.items():
        check_tensor(name, value, dim=1, floating=True)
        if shape is None:
            shape = value.shape
        elif value.shape != shape:
            raise ValueError(
                f"{name} must have the shape of policy_chosen_logps {tuple(shape)}, got {tuple(value.shape)}"
            )
    if shape[0] == 0:
        raise ValueError("the log-probability tensors must hold at least one pair, got an empty batch")


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    loss_type: str = "sigmoid",
) -> tuple[Tensor, Tensor, Tensor]:
    """Eq. 7 (``loss_type="sigmoid"``), its conservative form (``label_smoothing > 0``) or IPO
    (``loss_type="ipo"``), averaged over the batch; and the implicit rewards (Section 5)
    ``beta (log pi(y_w|x) - log pi_ref(y_w|x))`` and the same for ``y_l``, detached.

    ``label_smoothing`` (epsilon, in [0, 0.5)) is the assumed probability that a label is flipped; it
    applies to the sigmoid loss only.
    """
    _check_logps(
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
        }
    )
    check_float("beta", beta, 0, min_inclusive=False, finite=True)
    check_float("label_smoothing", label_smoothing, 0, 0.5, max_inclusive=False)
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if loss_type == "ipo" and label_smoothing:
        raise ValueError(
            f"label_smoothing applies to loss_type='sigmoid' only, got {label_smoothing} with 'ipo'"
        )
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios  # the difference of log-ratios inside Eq. 7
    if loss_type == "sigmoid":
        # Eq. 7: -log sigma(beta h); conservative DPO mixes in the flipped label with weight epsilon.
        losses = -F.logsigmoid(beta * h)
        if label_smoothing:
            losses = (1.0 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-beta * h)
    else:
        # IPO (Azar et al. 2023, Eq. 17): regress h onto 1 / (2 tau), with tau = beta.
        losses = (h - 1.0 / (2.0 * beta)) ** 2
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return losses.mean(), chosen_rewards, rejected_rewards


def preference_metrics(chosen_rewards: Tensor, rejected_rewards: Tensor) -> dict[str, float]:
    """Reward accuracy (fraction with ``r_hat(y_w) > r_hat(y_l)``, ties counting as wrong, as trl),
    mean margin ``r_hat(y_w) - r_hat(y_l)``, and the mean implicit rewards of each side."""
    _check_logps({"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards})
    margin = (chosen_rewards - rejected_rewards).detach().float()
    return {
        "accuracy": float((margin > 0).float().mean()),
        "margin": float(margin.mean()),
        "chosen_reward": float(chosen_rewards.detach().float().mean()),
        "rejected_reward": float(rejected_rewards.detach().float().mean()),
    }


# ----- the trainer -----------------------------------------------------------------------------------


@dataclass
class DPOConfig:
    """Hyperparameters of :func:`train_dpo` (defaults: the paper's Appendix B, with AdamW; see the
    module docstring for the departures)."""

    beta: float = 0.1
    """KL strength beta of Eq. 3 / Eq. 7 (Appendix B: 0.1; 0.5 for TL;DR summarisation)."""
    loss_type: str = "sigmoid"
    """"sigmoid" (Eq. 7) or "ipo"."""
    label_smoothing: float = 0.0
    """Conservative DPO's flip probability epsilon (0: plain Eq. 7)."""
    lr: float = 1e-6
    """Peak learning rate (Appendix B: 1e-6)."""
    batch_size: int = 64
    """Pairs per step (Appendix B: 64)."""
    epochs: int = 1
    """Passes over the pairs."""
    warmup_steps: int = 150
    """Linear warm-up from 0 to ``lr`` (Appendix B: 150 steps), constant afterwards."""
    optimizer: str = "adamw"
    """"adamw" or "rmsprop" (the paper's)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    max_grad_norm: float | None = None
    """Clip the gradient's global norm to this (None: no clipping, as the paper)."""
    average_logprobs: bool = False
    """Use the per-token mean of the response log-probabilities instead of the sum (trl's IPO form)."""
    group_by_prompt: bool = False
    """Keep the pairs of one prompt in the same batch (InstructGPT's K-choose-2 batching, Section 3.5):
    with K completions a prompt's K(K-1)/2 pairs need only K forward rows, since every distinct
    (prompt, completion) is scored once per step."""
    precompute_reference: bool = False
    """Score every pair with the reference once before training (trl's ``precompute_ref_log_probs``):
    the same numbers, one reference pass in all instead of one per epoch."""

    def __post_init__(self) -> None:
        check_float("DPOConfig.beta", self.beta, 0, min_inclusive=False)
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"DPOConfig.loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        check_float("DPOConfig.label_smoothing", self.label_smoothing, 0, 0.5, max_inclusive=False)
        check_float("DPOConfig.lr", self.lr, 0)
        check_int("DPOConfig.batch_size", self.batch_size)
        check_int("DPOConfig.epochs", self.epochs)
        check_int("DPOConfig.warmup_steps", self.warmup_steps, 0)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"DPOConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check_float("DPOConfig.max_grad_norm", self.max_grad_norm, 0, min_inclusive=False, allow_none=True)


Pair = tuple[Sequence[int] | Tensor, Sequence[int] | Tensor, Sequence[int] | Tensor]


def train_dpo(
    policy: nn.Module,
    reference: nn.Module,
    pairs: Sequence[Pair],
    cfg: DPOConfig | None = None,
    *,
    pad_token_id: int = 0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, list[float]]:
    """Fine-tune ``policy`` in place with Eq. 7 on ``pairs`` of (prompt, chosen, rejected) token ids.

    ``reference`` is frozen: it runs in eval mode under ``torch.no_grad`` and is never stepped (its
    parameters' ``requires_grad`` flags are left as they were). Each epoch visits the pairs in an order
    drawn from ``generator`` (whole prompts at a time with ``cfg.group_by_prompt``); each step scores
    ``batch_size`` pairs in one concatenated forward pass per model, every distinct (prompt, completion)
    row once. Returns per-step lists: ``loss``, ``accuracy``, ``margin``, ``chosen_reward``,
    ``rejected_reward``, ``lr``. ``on_step(step, record)`` is called after every step.
    """
    cfg, triples, params = _validate_training(policy, reference, pairs, cfg, pad_token_id)
    device = torch.device(params[0].device if device is None else device)
    rows, pair_rows, groups = _distinct_rows(triples)

    if cfg.optimizer == "adamw":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.RMSprop(params, lr=cfg.lr)
    # Appendix B: the learning rate rises linearly from 0 to lr over the warm-up steps, then stays.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / (cfg.warmup_steps + 1))
    )
    log: dict[str, list[float]] = {
        k: [] for k in ("loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "lr")
    }

    def score(model: nn.Module, indices: list[int]) -> Tensor:
        """``log pi(y | x)`` of the given rows (Eq. 7's sequence log-probabilities)."""
        ids, mask, loss_mask = (t.to(device) for t in _pad_rows([rows[r] for r in indices], pad_token_id))
        with autocast(device):
            return sequence_logprobs(model, ids, mask, loss_mask, cfg.average_logprobs)

    was_training, reference_was_training = policy.training, reference.training
    policy.train()
    reference.eval()
    stored = None  # the reference's log-probability of every row
    step = 0
    try:
        if cfg.precompute_reference:
            chunk = 2 * cfg.batch_size
            with torch.no_grad():  # the frozen reference of Eq. 7
                stored = torch.cat(
                    [
                        score(reference, list(range(i, min(i + chunk, len(rows)))))
                        for i in range(0, len(rows), chunk)
                    ]
                )
        for _ in range(cfg.epochs):
            for indices in _batches(len(triples), groups, cfg, generator):
                # The rows this step needs, each scored once, and where each pair's two rows sit among them.
                needed = sorted({r for i in indices for r in pair_rows[i]})
                position = {r: k for k, r in enumerate(needed)}
                chosen_at = torch.tensor([position[pair_rows[i][0]] for i in indices], device=device)
                rejected_at = torch.tensor([position[pair_rows[i][1]] for i in indices], device=device)
                logps = score(policy, needed)
                if stored is None:
                    with torch.no_grad():
                        ref_logps = score(reference, needed)
                else:
                    ref_logps = stored[torch.tensor(needed, device=device)]
                loss, chosen_rewards, rejected_rewards = dpo_loss(
                    logps[chosen_at],
                    logps[rejected_at],
                    ref_logps[chosen_at],
                    ref_logps[rejected_at],
                    cfg.beta,
                    cfg.label_smoothing,
                    cfg.loss_type,
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                record = {
                    "loss": float(loss.detach()),
                    **preference_metrics(chosen_rewards, rejected_rewards),
                    "lr": optimizer.param_groups[0]["lr"],
                }
                optimizer.step()
                schedule.step()
                for key, value in record.items():
                    log[key].append(value)
                if on_step is not None:
                    on_step(step, record)
                step += 1
    finally:
        policy.train(was_training)
        reference.train(reference_was_training)
    return log


def _validate_training(
    policy: nn.Module, reference: nn.Module, pairs: Sequence[Pair], cfg: DPOConfig | None, pad_token_id: int
) -> tuple[DPOConfig, list[tuple[list[int], list[int], list[int]]], list[nn.Parameter]]:
    """:func:`train_dpo`'s arguments checked once: the config (the default when None), every pair as
    (prompt, chosen, rejected) lists of token ids that fit the policy's context (``config.max_seq_len``
    when it has one), and the policy's trainable parameters."""
    cfg = DPOConfig() if cfg is None else cfg
    if not isinstance(cfg, DPOConfig):
        raise TypeError(f"cfg must be a DPOConfig, got {type(cfg).__name__}")
    for name, model in (("policy", policy), ("reference", reference)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    if policy is reference:
        raise ValueError("reference must be a separate, frozen copy of the policy, got the policy itself")
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or len(pairs) == 0:
        raise ValueError(
            f"pairs must be a non-empty sequence of (prompt, chosen, rejected), got {pairs!r:.80}"
        )
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 3:
            raise ValueError(f"pairs[{i}] must be a (prompt, chosen, rejected) triple, got {pair!r:.80}")
    check_int("pad_token_id", pad_token_id, 0)
    params = [p for p in policy.parameters() if p.requires_grad]
    if not params:
        raise ValueError("policy must have trainable parameters (requires_grad=True), got none")
    max_length = getattr(getattr(policy, "config", None), "max_seq_len", None)
    triples = []
    for i, (prompt, chosen, rejected) in enumerate(pairs):
        name = f"pairs[{i}][0] (prompt)"
        p, c = _check_sequence(prompt, chosen, name, f"pairs[{i}][1] (chosen)", max_length)
        _, r = _check_sequence(prompt, rejected, name, f"pairs[{i}][2] (rejected)", max_length)
        triples.append((p, c, r))
    return cfg, triples, params


def _distinct_rows(
    triples: Sequence[tuple[list[int], list[int], list[int]]],
) -> tuple[list[tuple[list[int], int]], list[tuple[int, int]], dict[tuple[int, ...], list[int]]]:
    """Every distinct (prompt, completion) as one row ``(ids, prompt length)``; each pair as its two row
    indices (chosen, rejected); and the pairs of each prompt. With K completions per prompt a row serves
    up to K - 1 pairs, and a step scores it once."""
    row_index: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    rows: list[tuple[list[int], int]] = []
    pair_rows: list[tuple[int, int]] = []
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (prompt, chosen, rejected) in enumerate(triples):
        p = tuple(prompt)
        ends = []
        for completion in (chosen, rejected):
            c = tuple(completion)
            if (p, c) not in row_index:
                row_index[p, c] = len(rows)
                rows.append((list(p + c), len(p)))
            ends.append(row_index[p, c])
        pair_rows.append((ends[0], ends[1]))
        groups.setdefault(p, []).append(i)
    return rows, pair_rows, groups


def _batches(
    num_pairs: int,
    groups: dict[tuple[int, ...], list[int]],
    cfg: DPOConfig,
    generator: torch.Generator | None,
) -> list[list[int]]:
    """One epoch's batches of pair indices, in an order drawn from ``generator``: ``cfg.batch_size``
    pairs each, or (``cfg.group_by_prompt``) whole prompts packed while they fit in ``cfg.batch_size``."""
    if not cfg.group_by_prompt:
        order = torch.randperm(num_pairs, generator=generator).tolist()
        return [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    keys = list(groups)
    out: list[list[int]] = []
    for k in torch.randperm(len(keys), generator=generator).tolist():
        group = groups[keys[k]]
        if out and len(out[-1]) + len(group) <= cfg.batch_size:
            out[-1].extend(group)
        else:
            out.append(list(group))
    return out
