"""Reward models from pairwise preferences (InstructGPT, Ouyang et al. 2022, Section 3.5; Llama 2,
Touvron et al. 2023, Section 3.2.2).

A reward model is the language model with its next-token head replaced by a scalar head: the final
normalised hidden state of the *last real token* of ``prompt + completion`` is mapped to one number
``r_theta(x, y)`` (InstructGPT Section 3.5: "the final unembedding layer removed"; Llama 2: "the
classification head for next-token prediction is replaced with a regression head").

It is trained on comparisons: a labeler ranked ``K`` completions of a prompt (InstructGPT: K = 4 to 9),
which gives ``C(K, 2)`` pairs ``(y_w, y_l)``. Because the pairs of one prompt are strongly correlated,
InstructGPT puts *all* ``C(K, 2)`` comparisons of a prompt into one batch element (one forward pass per
completion, not per pair) with the loss

    loss(theta) = -1 / C(K, 2) * E_{(x, y_w, y_l) ~ D} [ log sigma(r_theta(x, y_w) - r_theta(x, y_l)) ]   (1)

(InstructGPT Eq. 1), i.e. the comparisons of each prompt are averaged, and prompts weigh equally.
Llama 2 collects a preference *strength* with every comparison ("significantly better", "better",
"slightly better", "negligibly better / unsure") and subtracts a margin that grows with it:

    L_ranking = -log sigma(r_theta(x, y_c) - r_theta(x, y_r) - m(r))                            (2)

(Llama 2 Eq. 2), with the two margin scales of its Table 27 (:data:`MARGINS`; the "large" scale
3/2/1/0 was checked against a secondary summary of the paper, the "small" 1, 2/3, 1/3, 0 is
unverified here). Before RL, InstructGPT normalises the reward model with a bias so that the labeler
demonstrations score a mean of 0 (Section 3.5; paraphrased, the exact wording unverified here)
(:func:`normalise_reward_model`; scaling to unit standard deviation is an option).

What is here:

* :class:`RewardModel`: a deep copy of an :class:`~aicanon.language.llama.Llama` trunk with the LM
  head dropped, a linear ``score`` head (no bias, as transformers' ``LlamaForSequenceClassification``)
  read at the last position whose attention mask is set, and the normalisation buffers; its weights
  load from and save to ``LlamaForSequenceClassification`` state dicts
  (:func:`from_sequence_classification`, :func:`to_sequence_classification`), which is what trl's
  ``RewardTrainer`` trains;
* :func:`comparisons` (the ``C(K, 2)`` index pairs) and :func:`ranked_comparisons` (winner/loser
  indices, prompt ids and the labeler's score gap from ``K`` scored completions per prompt; ties are
  dropped, as Llama 2 and trl keep only strict preferences);
* :func:`strength_edges`, :func:`strength_levels`, :func:`margins` (Eq. 2's ``m(r)``);
* :func:`pairwise_loss` (Eq. 1 with prompt grouping, Eq. 2 with a margin);
* :func:`train_reward_model` (:class:`RewardTrainConfig`), :func:`score_sequences`,
  :func:`pairwise_accuracy`, :func:`accuracy_by_strength`, :func:`normalise_reward_model`.

Departures from the papers, and why:

* Which token is read: the last non-padding token of each row (trl and transformers read the
  rightmost token that is not the pad id; with a pad id that never occurs inside a sequence the two
  agree, and reading the mask also allows left padding). InstructGPT does not say more than "scalar
  output".
* Head initialisation: ``N(0, 1 / (d_model + 1))`` (variance), which we recall from Stiennon et al.
  2020, whose recipe InstructGPT follows (unverified here); Llama 2 does not state one. trl keeps
  transformers' ``N(0, 0.02)``; parity tests copy the weights, so this choice does not enter them.
* Strength levels: our labeler is a classifier's score, not a person, so the four Llama 2 levels are
  bins of the labeler's score gap (:func:`strength_levels`; the experiment uses the training gaps'
  quartiles). Level 3 is the strongest preference ("significantly better"), 0 the weakest
  ("negligibly better / unsure"), the reverse of Table 27's column order.
* Epochs: InstructGPT trains for a single epoch (more overfits); the number is a config field because
  a small model on a few hundred prompts needs more passes.
* Without ``group``, :func:`pairwise_loss` is the plain mean over comparisons, which is what trl's
  ``RewardTrainer`` computes and what Eq. 1 reduces to when every prompt has the same K.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_token_ids
from aicanon.language.llama import Llama

__all__ = [
    "MARGINS",
    "STRENGTHS",
    "Comparisons",
    "RewardModel",
    "RewardTrainConfig",
    "accuracy_by_strength",
    "comparisons",
    "from_sequence_classification",
    "last_token_index",
    "margins",
    "normalise_reward_model",
    "pairwise_accuracy",
    "pairwise_loss",
    "ranked_comparisons",
    "score_sequences",
    "strength_edges",
    "strength_levels",
    "to_sequence_classification",
    "train_reward_model",
]

STRENGTHS: tuple[str, ...] = (
    "negligibly better / unsure",
    "slightly better",
    "better",
    "significantly better",
)
"""Llama 2's preference-strength ratings (Section 3.2.1), weakest first: level ``i`` is ``STRENGTHS[i]``."""

MARGINS: dict[str, tuple[float, ...]] = {
    "small": (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0),
    "large": (0.0, 1.0, 2.0, 3.0),
}
"""Eq. 2's margin m(r) per strength level (weakest first), Llama 2 Table 27's two scales ("large"
checked against a secondary source, "small" unverified)."""


# ----- the model ------------------------------------------------------------------------------------


def _check_ids(input_ids: object, attention_mask: object) -> tuple[Tensor, Tensor]:
    check_token_ids("input_ids", input_ids)
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be non-empty [batch, length], got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        return input_ids, torch.ones_like(input_ids, dtype=torch.bool)
    if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
        got = (
            tuple(attention_mask.shape)
            if isinstance(attention_mask, Tensor)
            else type(attention_mask).__name__
        )
        raise ValueError(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {got}"
        )
    mask = attention_mask.to(torch.bool)
    if not bool(mask.any(dim=1).all()):
        rows = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(
            f"attention_mask must mark at least one real token in every row, rows {rows} have none"
        )
    return input_ids, mask


def last_token_index(attention_mask: Tensor) -> Tensor:
    """Index of the rightmost real token of every row (right or left padding alike)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.to(torch.long)).argmax(dim=1)


class RewardModel(nn.Module):
    """``r_theta(x, y)``: a Llama trunk (its LM head dropped) and a scalar head at the last real token.

    ``backbone`` is deep-copied, so the caller's language model (the SFT policy, say) is left as it is.
    ``forward`` returns ``(score(h_last) - reward_shift) / reward_scale``, shape ``[batch]``; the two
    buffers are 0 and 1 until :func:`normalise_reward_model` sets them.
    """

    def __init__(self, backbone: Llama) -> None:
        super().__init__()
        if not isinstance(backbone, Llama):
            raise TypeError(
                f"backbone must be an aicanon.language.llama.Llama, got {type(backbone).__name__}"
            )
        self.backbone = copy.deepcopy(backbone)
        # The trunk then returns its final normalised hidden states [B, T, H] instead of logits.
        self.backbone.lm_head = nn.Identity()
        hidden = backbone.config.hidden_size
        self.score = nn.Linear(hidden, 1, bias=False)
        # Stiennon et al. 2020 (followed by InstructGPT): head weights from N(0, 1 / (d_model + 1)).
        nn.init.normal_(self.score.weight, std=1.0 / math.sqrt(hidden + 1))
        self.register_buffer("reward_shift", torch.zeros(()))
        self.register_buffer("reward_scale", torch.ones(()))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        input_ids, mask = _check_ids(input_ids, attention_mask)
        hidden = self.backbone(input_ids, attention_mask=mask.to(input_ids.device))
        last = last_token_index(mask).to(hidden.device)
        h_last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        raw = self.score(h_last).squeeze(-1)
        return (raw - self.reward_shift) / self.reward_scale


def from_sequence_classification(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our :class:`RewardModel` keys for a transformers ``LlamaForSequenceClassification`` state dict.

    ``model.X`` becomes ``backbone.X`` and ``score.weight`` stays; a ``lm_head`` (absent from the
    sequence classifier) is refused, and the normalisation buffers are not part of it (load with
    ``strict=False`` and check that only they are missing, or use ``load_state_dict`` of the result
    plus the model's own buffers).
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key == "score.weight":
            out[key] = value
        elif key.startswith("model."):
            out["backbone." + key.removeprefix("model.")] = value
        else:
            raise ValueError(
                f"state_dict must hold only 'model.*' and 'score.weight' keys (LlamaForSequenceClassification), "
                f"got {key!r}"
            )
    if "score.weight" not in out:
        raise ValueError("state_dict must hold 'score.weight' (the reward head), it is missing")
    return out


def to_sequence_classification(model: RewardModel) -> dict[str, Tensor]:
    """transformers ``LlamaForSequenceClassification`` keys for ``model``'s weights (normalisation dropped)."""
    if not isinstance(model, RewardModel):
        raise TypeError(f"model must be a RewardModel, got {type(model).__name__}")
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("backbone."):
            out["model." + key.removeprefix("backbone.")] = value
        elif key == "score.weight":
            out[key] = value
    return out


# ----- comparisons, strengths, margins -------------------------------------------------------------


def comparisons(k: int) -> Tensor:
    """The ``C(k, 2)`` index pairs ``(i, j)``, ``i < j``, of ``k`` completions: ``[C(k, 2), 2]``."""
    check_int("k", k, 2, note="a prompt needs two completions to compare")
    return torch.combinations(torch.arange(k), r=2)


@dataclass
class Comparisons:
    """Pairs over a flat list of completions (prompt after prompt, ``K_p`` each).

    ``chosen[c]``/``rejected[c]`` index the completions, ``group[c]`` is the prompt of comparison ``c``
    and ``gap[c] > 0`` the labeler's score difference (chosen minus rejected).
    """

    chosen: Tensor
    rejected: Tensor
    group: Tensor
    gap: Tensor

    def __len__(self) -> int:
        return int(self.chosen.numel())

    def select(self, index: Tensor) -> Comparisons:
        return Comparisons(self.chosen[index], self.rejected[index], self.group[index], self.gap[index])


def ranked_comparisons(scores: Sequence[Sequence[float]]) -> Comparisons:
    """All ``C(K_p, 2)`` comparisons of every prompt from the labeler's scores of its ``K_p`` completions.

    ``scores[p][i]`` is the score of completion ``i`` of prompt ``p``; completions are numbered
    ``0 .. sum(K_p) - 1`` in that order. The higher score wins; tied pairs are dropped.
    """
    if not isinstance(scores, Sequence) or isinstance(scores, (str, bytes)) or len(scores) == 0:
        raise ValueError(
            f"scores must be a non-empty list (one list of K scores per prompt), got {scores!r:.80}"
        )
    chosen, rejected, group, gap = [], [], [], []
    offset = 0
    for p, row in enumerate(scores):
        values = (
            torch.as_tensor(row, dtype=torch.float64).flatten()
            if not isinstance(row, Tensor)
            else row.double().flatten()
        )
        if values.numel() < 2:
            raise ValueError(f"scores[{p}] must hold K >= 2 scores to compare, got {values.numel()}")
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"scores[{p}] must be finite, got {values.tolist()}")
        for i, j in comparisons(values.numel()).tolist():
            difference = float(values[i] - values[j])
            if difference == 0.0:
                continue
            win, lose = (i, j) if difference > 0 else (j, i)
            chosen.append(offset + win)
            rejected.append(offset + lose)
            group.append(p)
            gap.append(abs(difference))
        offset += values.numel()
    return Comparisons(
        torch.tensor(chosen, dtype=torch.long),
        torch.tensor(rejected, dtype=torch.long),
        torch.tensor(group, dtype=torch.long),
        torch.tensor(gap, dtype=torch.float32),
    )


def strength_edges(gaps: Tensor, levels: int = 4) -> Tensor:
    """The ``levels - 1`` quantiles of ``gaps`` that split them into ``levels`` equally full bins."""
    if not isinstance(gaps, Tensor) or gaps.dim() != 1 or gaps.numel() == 0 or not gaps.is_floating_point():
        got = f"{tuple(gaps.shape)} {gaps.dtype}" if isinstance(gaps, Tensor) else type(gaps).__name__
        raise ValueError(f"gaps must be a non-empty 1-D float tensor, got {got}")
    check_int("levels", levels, 2)
    q = torch.arange(1, levels, dtype=torch.float64) / levels
    return torch.quantile(gaps.double(), q).float()


def strength_levels(gaps: Tensor, edges: Tensor) -> Tensor:
    """Level of each gap: the number of ``edges`` it exceeds (0 = weakest ... len(edges) = strongest)."""
    if not isinstance(gaps, Tensor) or gaps.dim() != 1 or not gaps.is_floating_point():
        got = f"{tuple(gaps.shape)} {gaps.dtype}" if isinstance(gaps, Tensor) else type(gaps).__name__
        raise ValueError(f"gaps must be a 1-D float tensor, got {got}")
    if not isinstance(edges, Tensor) or edges.dim() != 1 or edges.numel() == 0:
        raise ValueError(f"edges must be a non-empty 1-D tensor of increasing thresholds, got {edges!r:.80}")
    if edges.numel() > 1 and not bool((edges[1:] >= edges[:-1]).all()):
        raise ValueError(f"edges must be non-decreasing, got {edges.tolist()}")
    return torch.bucketize(gaps, edges.to(gaps.dtype), right=True)


def margins(levels: Tensor, scale: str = "small") -> Tensor:
    """Eq. 2's ``m(r)`` for each comparison's strength level, on Table 27's ``small`` or ``large`` scale."""
    if scale not in MARGINS:
        raise ValueError(f"scale must be one of {tuple(MARGINS)}, got {scale!r}")
    if not isinstance(levels, Tensor) or levels.dtype not in (torch.long, torch.int) or levels.dim() != 1:
        got = f"{tuple(levels.shape)} {levels.dtype}" if isinstance(levels, Tensor) else type(levels).__name__
        raise ValueError(f"levels must be a 1-D integer tensor, got {got}")
    table = torch.tensor(MARGINS[scale], dtype=torch.float32, device=levels.device)
    if levels.numel() and (int(levels.min()) < 0 or int(levels.max()) >= len(table)):
        raise ValueError(
            f"levels must be in [0, {len(table) - 1}], got values in [{int(levels.min())}, {int(levels.max())}]"
        )
    return table[levels]


# ----- the loss and metrics ------------------------------------------------------------------------


def _check_pair(r_chosen: object, r_rejected: object) -> None:
    for name, value in (("r_chosen", r_chosen), ("r_rejected", r_rejected)):
        if not isinstance(value, Tensor) or value.dim() != 1 or not value.is_floating_point():
            got = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a 1-D float tensor [comparisons], got {got}")
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(
            f"r_chosen and r_rejected must have the same number of comparisons, got {r_chosen.shape[0]} "
            f"and {r_rejected.shape[0]}"
        )
    if r_chosen.numel() == 0:
        raise ValueError("r_chosen must hold at least one comparison, got 0")


def pairwise_loss(
    r_chosen: Tensor,
    r_rejected: Tensor,
    margin: Tensor | float | None = None,
    group: Tensor | None = None,
) -> Tensor:
    """Eq. 1 / Eq. 2: ``-log sigma(r_w - r_l - m)``, averaged within each prompt, then over prompts.

    ``margin``: Eq. 2's ``m(r)`` per comparison (or one number); None = Eq. 1 (no margin).
    ``group``: the prompt of each comparison; each prompt's ``C(K, 2)`` comparisons are averaged
    (InstructGPT's ``1 / C(K, 2)``) and prompts weigh equally. None: the plain mean over comparisons
    (trl's RewardTrainer; equal to the grouped loss when every prompt has the same number of pairs).
    """
    _check_pair(r_chosen, r_rejected)
    difference = r_chosen - r_rejected
    if margin is not None:
        if isinstance(margin, Tensor):
            if margin.shape not in (difference.shape, ()):
                raise ValueError(
                    f"margin must be a scalar or have one value per comparison {tuple(difference.shape)}, "
                    f"got shape {tuple(margin.shape)}"
                )
            margin = margin.to(difference)
        elif isinstance(margin, bool) or not isinstance(margin, (int, float)):
            raise TypeError(f"margin must be a tensor, a number or None, got {type(margin).__name__}")
        difference = difference - margin
    losses = -F.logsigmoid(difference)
    if group is None:
        return losses.mean()
    if (
        not isinstance(group, Tensor)
        or group.shape != difference.shape
        or group.dtype not in (torch.long, torch.int)
    ):
        got = f"{tuple(group.shape)} {group.dtype}" if isinstance(group, Tensor) else type(group).__name__
        raise ValueError(
            f"group must be an integer tensor with one prompt id per comparison {tuple(difference.shape)}, got {got}"
        )
    _, inverse = torch.unique(group, return_inverse=True)
    prompts = int(inverse.max()) + 1
    sums = losses.new_zeros(prompts).index_add(0, inverse, losses)
    counts = losses.new_zeros(prompts).index_add(0, inverse, torch.ones_like(losses))
    return (sums / counts).mean()


def pairwise_accuracy(r_chosen: Tensor, r_rejected: Tensor) -> float:
    """Share of comparisons the reward model orders as the labeler did (a tie counts as wrong)."""
    _check_pair(r_chosen, r_rejected)
    return float((r_chosen > r_rejected).float().mean())


def accuracy_by_strength(
    r_chosen: Tensor, r_rejected: Tensor, levels: Tensor, num_levels: int = 4
) -> list[float]:
    """Pairwise accuracy per strength level (Llama 2 Table 8's breakdown); NaN for an empty level."""
    _check_pair(r_chosen, r_rejected)
    if (
        not isinstance(levels, Tensor)
        or levels.shape != r_chosen.shape
        or levels.dtype not in (torch.long, torch.int)
    ):
        got = f"{tuple(levels.shape)} {levels.dtype}" if isinstance(levels, Tensor) else type(levels).__name__
        raise ValueError(
            f"levels must be an integer tensor with one level per comparison {tuple(r_chosen.shape)}, got {got}"
        )
    correct = (r_chosen > r_rejected).float()
    out = []
    for level in range(num_levels):
        pick = levels == level
        out.append(float(correct[pick].mean()) if bool(pick.any()) else float("nan"))
    return out


# ----- training, scoring, normalisation ------------------------------------------------------------


@dataclass
class RewardTrainConfig:
    """Optimisation of :func:`train_reward_model`."""

    epochs: int = 1
    """Passes over the prompts (InstructGPT: 1; a small model on few prompts needs more)."""
    prompts_per_batch: int = 8
    """Prompts per step; each brings all its completions and all its C(K, 2) comparisons."""
    lr: float = 1e-4
    """Peak AdamW learning rate (cosine decay to 10 % of it; InstructGPT's RM schedule, unverified)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float | None = 1.0
    """Gradient clipping (None = off)."""
    margin_scale: str | None = None
    """None: Eq. 1; "small"/"large": Eq. 2 with Table 27's margins of the comparisons' levels."""

    def __post_init__(self) -> None:
        for name in ("epochs", "prompts_per_batch"):
            check_int(f"RewardTrainConfig.{name}", getattr(self, name))
        check_float("RewardTrainConfig.lr", self.lr, 0, min_inclusive=False)
        if self.margin_scale is not None and self.margin_scale not in MARGINS:
            raise ValueError(
                f"RewardTrainConfig.margin_scale must be None or one of {tuple(MARGINS)}, got {self.margin_scale!r}"
            )


def _trim(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the columns no row uses (padding on either side)."""
    used = mask.any(dim=0).nonzero().flatten()
    start, stop = int(used[0]), int(used[-1]) + 1
    return ids[:, start:stop], mask[:, start:stop]


def train_reward_model(
    model: RewardModel,
    input_ids: Tensor,
    attention_mask: Tensor,
    pairs: Comparisons,
    cfg: RewardTrainConfig | None = None,
    levels: Tensor | None = None,
    generator: torch.Generator | None = None,
    progress=None,
) -> dict[str, list[float]]:
    """Train ``model`` on ``pairs`` over the completions ``input_ids``/``attention_mask`` ``[N, T]``.

    Each step takes ``cfg.prompts_per_batch`` prompts in a seeded order, runs the reward model once on
    each of their completions, and applies :func:`pairwise_loss` to all their comparisons, grouped by
    prompt (InstructGPT Section 3.5). With ``cfg.margin_scale``, ``levels`` (one strength level per
    comparison) give Eq. 2's margins. ``progress(iterable, description, total)`` wraps the step loop
    (``aicanon.core.track``). Returns the per-step loss and accuracy on the batch.
    """
    cfg = RewardTrainConfig() if cfg is None else cfg
    if not isinstance(model, RewardModel):
        raise TypeError(f"model must be a RewardModel, got {type(model).__name__}")
    if not isinstance(cfg, RewardTrainConfig):
        raise TypeError(f"cfg must be a RewardTrainConfig, got {type(cfg).__name__}")
    input_ids, mask = _check_ids(input_ids, attention_mask)
    if not isinstance(pairs, Comparisons) or len(pairs) == 0:
        raise ValueError(f"pairs must be a non-empty Comparisons, got {pairs!r:.80}")
    highest = int(torch.maximum(pairs.chosen, pairs.rejected).max())
    if highest >= input_ids.shape[0]:
        raise ValueError(
            f"pairs index completion {highest}, but input_ids holds {input_ids.shape[0]} completions"
        )
    if cfg.margin_scale is not None:
        if levels is None or not isinstance(levels, Tensor) or levels.shape != pairs.chosen.shape:
            got = tuple(levels.shape) if isinstance(levels, Tensor) else levels
            raise ValueError(
                f"levels must give one strength level per comparison ({len(pairs)}) when margin_scale is set, got {got}"
            )
        margin_all = margins(levels, cfg.margin_scale)
    else:
        margin_all = None
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    prompts = torch.unique(pairs.group)
    per_epoch = math.ceil(len(prompts) / cfg.prompts_per_batch)
    total = cfg.epochs * per_epoch
    # Cosine learning-rate decay to 10 % of the peak: our reading of InstructGPT's RM recipe
    # (Appendix C.2, not verified here); the schedule is not part of Eq. 1.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, total) / max(1, total)))
    )
    batches = []
    for _ in range(cfg.epochs):
        order = prompts[torch.randperm(len(prompts), generator=generator)]
        batches += [order[i : i + cfg.prompts_per_batch] for i in range(0, len(order), cfg.prompts_per_batch)]
    iterator = progress(batches, "training the reward model", len(batches)) if progress else batches
    log: dict[str, list[float]] = {"loss": [], "accuracy": []}
    model.train()
    for batch in iterator:
        pick = torch.isin(pairs.group, batch).nonzero().flatten()
        chosen, rejected = pairs.chosen[pick], pairs.rejected[pick]
        # One forward pass per completion, however many comparisons it enters (Section 3.5).
        needed, inverse = torch.unique(torch.cat((chosen, rejected)), return_inverse=True)
        ids, m = _trim(input_ids[needed], mask[needed])
        rewards = model(ids.to(device), m.to(device))
        r_c, r_r = rewards[inverse[: len(pick)]], rewards[inverse[len(pick) :]]
        margin = margin_all[pick].to(device) if margin_all is not None else None
        loss = pairwise_loss(r_c, r_r, margin, pairs.group[pick].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        schedule.step()
        log["loss"].append(float(loss.detach()))
        log["accuracy"].append(float((r_c > r_r).float().mean()))
    model.eval()
    return log


@torch.no_grad()
def score_sequences(
    model: RewardModel, input_ids: Tensor, attention_mask: Tensor, batch_size: int = 128
) -> Tensor:
    """Rewards of ``[N, T]`` sequences in batches (eval mode, no gradients), on the CPU."""
    if not isinstance(model, RewardModel):
        raise TypeError(f"model must be a RewardModel, got {type(model).__name__}")
    input_ids, mask = _check_ids(input_ids, attention_mask)
    check_int("batch_size", batch_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, input_ids.shape[0], batch_size):
        ids, m = _trim(input_ids[i : i + batch_size], mask[i : i + batch_size])
        out.append(model(ids.to(device), m.to(device)).float().cpu())
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def normalise_reward_model(
    model: RewardModel,
    input_ids: Tensor,
    attention_mask: Tensor,
    unit_std: bool = False,
    batch_size: int = 128,
) -> tuple[float, float]:
    """Shift (and optionally scale) ``model``'s rewards so the reference sequences score mean 0 (std 1).

    InstructGPT Section 3.5: "we normalize the reward model using a bias so that the labeler
    demonstrations achieve a mean score of 0 before doing RL". Returns the new ``(shift, scale)``.
    Orderings, and so pairwise accuracy, are unchanged.
    """
    if not isinstance(model, RewardModel):
        raise TypeError(f"model must be a RewardModel, got {type(model).__name__}")
    input_ids, mask = _check_ids(input_ids, attention_mask)
    if unit_std and input_ids.shape[0] < 2:
        raise ValueError(
            f"input_ids must hold >= 2 reference sequences to scale to unit std, got {input_ids.shape[0]}"
        )
    model.reward_shift.zero_()
    model.reward_scale.fill_(1.0)
    raw = score_sequences(model, input_ids, mask, batch_size).double()
    shift = float(raw.mean())
    scale = float(raw.std()) if unit_std else 1.0
    if not scale > 0:
        raise ValueError(f"the reference rewards have std {scale}: cannot scale to unit std")
    model.reward_shift.fill_(shift)
    model.reward_scale.fill_(scale)
    return shift, scale
