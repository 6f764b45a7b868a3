"""Mask2Former's training loss: Hungarian matching and point-sampled mask losses (Section 3.3).

Cheng et al., CVPR 2022, Sections 3.3 and 4. Each of the ``N`` predictions ``(p_i, m_i)`` is matched
one-to-one to a ground-truth segment ``(c_j, g_j)`` (or to ∅) by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on the cost::

    C_ij = -λ_cls p_i(c_j) + λ_ce BCE(m_i, g_j) + λ_dice Dice(m_i, g_j)

where the mask terms are evaluated on the same ``K`` points drawn uniformly in the image for all
pairs (``K = 12544 = 112 x 112``). The loss of the matched pairs is::

    L = λ_ce L_ce + λ_dice L_dice + λ_cls L_cls,   λ_ce = 5, λ_dice = 5, λ_cls = 2

with ``L_cls`` the cross-entropy over ``K + 1`` labels (∅'s weight 0.1, averaged over all queries),
and the mask losses (sigmoid BCE averaged over points, Dice ``1 - (2 Σ p g + 1)/(Σ p + Σ g + 1)``)
summed over matched pairs and divided by the number of ground-truth segments in the batch. The mask
losses use ``K`` points chosen by importance sampling (PointRend): draw ``3K`` uniform points, keep the
``0.75 K`` most uncertain (smallest ``|logit|``) and add ``0.25 K`` uniform points. Predictions and
targets are sampled with ``grid_sample`` (bilinear, ``align_corners=False``) at the same normalised
coordinates, so masks of different resolutions need no resizing. Deep supervision: the same loss,
with its own matching, on the prediction before the first decoder layer and after every layer.

Public API
----------
* :func:`point_sample`, :func:`uncertainty_points`;
* :func:`dice_loss`, :func:`sigmoid_ce_loss`, :func:`pairwise_dice_cost`, :func:`pairwise_sigmoid_ce_cost`;
* :class:`MaskHungarianMatcher`, :class:`Mask2FormerCriterion`.

Departures
----------
* Targets are dicts with ``labels`` (int64 ``[n]``) and ``masks`` (``[n, H, W]``, 0/1); an image
  without segments is allowed (all its queries are trained towards ∅).
* Random points come from ``torch.rand`` in the same order as the released code (final prediction
  first, then the auxiliary ones in order; per image the matcher's points, then the loss's), so a
  fixed ``torch`` seed gives ``transformers``' loss exactly; ``generator`` makes the draws private.
* A non-finite cost raises ``ValueError`` instead of being replaced by the largest float.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int
from aicanon.nn.mask_losses import dice_loss as mask_dice_loss
from aicanon.vision.mask2former import Mask2FormerOutput

__all__ = [
    "Mask2FormerCriterion",
    "MaskHungarianMatcher",
    "check_mask_targets",
    "dice_loss",
    "pairwise_dice_cost",
    "pairwise_sigmoid_ce_cost",
    "point_sample",
    "sigmoid_ce_loss",
    "uncertainty_points",
]

Target = dict[str, Tensor]


def point_sample(maps: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of ``maps`` ``[R, C, H, W]`` at ``points`` ``[R, P, 2]`` (``(x, y)`` in
    ``[0, 1]``): ``[R, C, P]``."""
    return F.grid_sample(maps, 2.0 * points.unsqueeze(2) - 1.0, align_corners=False).squeeze(3)


def _rand(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, device=like.device, dtype=like.dtype, generator=generator)


def uncertainty_points(
    logits: Tensor,
    num_points: int,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
    generator: torch.Generator | None = None,
) -> Tensor:
    """PointRend's importance sampling of ``num_points`` points per mask of ``logits`` ``[R, 1, H, W]``.

    Uncertainty is ``-|logit|``; returns ``[R, num_points, 2]``.
    """
    count = logits.shape[0]
    oversampled = int(num_points * oversample_ratio)
    candidates = _rand((count, oversampled, 2), logits, generator)
    uncertainty = -point_sample(logits, candidates).abs()
    num_uncertain = int(importance_sample_ratio * num_points)
    index = torch.topk(uncertainty[:, 0, :], k=num_uncertain, dim=1)[1]
    chosen = torch.gather(candidates, 1, index.unsqueeze(-1).expand(-1, -1, 2))
    if num_points - num_uncertain > 0:
        chosen = torch.cat([chosen, _rand((count, num_points - num_uncertain, 2), logits, generator)], 1)
    return chosen


def dice_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """``Σ_i [1 - (2 Σ p g + 1) / (Σ p + Σ g + 1)] / num_masks`` over rows of ``[R, P]``."""
    return mask_dice_loss(logits, targets).sum() / num_masks


def sigmoid_ce_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Binary cross-entropy averaged over points, summed over rows, divided by ``num_masks``."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum() / num_masks


def pairwise_dice_cost(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice loss between every prediction ``[N, P]`` and target ``[M, P]``: ``[N, M]``."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def pairwise_sigmoid_ce_cost(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean binary cross-entropy between every prediction ``[N, P]`` and target ``[M, P]``: ``[N, M]``."""
    points = logits.shape[1]
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
    positive, negative = F.softplus(-logits), F.softplus(logits)
    return (positive @ targets.T + negative @ (1 - targets).T) / points


def check_mask_targets(targets: object, batch_size: int, num_classes: int) -> list[Target]:
    """Raise a clear error unless ``targets`` is ``batch_size`` dicts with ``labels`` and ``masks``."""
    if not isinstance(targets, (list, tuple)) or len(targets) != batch_size:
        got = (
            f"{type(targets).__name__} of length {len(targets)}"
            if isinstance(targets, (list, tuple))
            else type(targets).__name__
        )
        raise ValueError(f"targets must be a list of {batch_size} dicts (one per image), got {got}")
    for i, target in enumerate(targets):
        if not isinstance(target, dict) or "labels" not in target or "masks" not in target:
            raise ValueError(
                f"targets[{i}] must be a dict with keys 'labels' and 'masks', got {target!r:.80}"
            )
        labels, masks = target["labels"], target["masks"]
        if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
            raise ValueError(
                f"targets[{i}]['labels'] must be int64 [n], got {getattr(labels, 'dtype', type(labels))}"
            )
        if not isinstance(masks, Tensor) or masks.dim() != 3 or masks.shape[0] != labels.shape[0]:
            got = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
            raise ValueError(f"targets[{i}]['masks'] must be [{labels.shape[0]}, H, W], got {got}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"targets[{i}]['labels'] must lie in [0, {num_classes}), got {labels.tolist()}")
    return list(targets)


class MaskHungarianMatcher:
    """One-to-one matching of predictions to segments on the cost of Section 3.3 (module docstring)."""

    def __init__(
        self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0, num_points: int = 12544
    ) -> None:
        for name, value in (("cost_class", cost_class), ("cost_mask", cost_mask), ("cost_dice", cost_dice)):
            check_float(name, value, minimum=0.0)
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("cost_class, cost_mask and cost_dice must not all be 0")
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.num_points = check_int("num_points", num_points)

    @torch.no_grad()
    def __call__(
        self,
        class_logits: Tensor,
        mask_logits: Tensor,
        targets: Sequence[Target],
        generator: torch.Generator | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        matches = []
        for b, target in enumerate(targets):
            probs = class_logits[b].softmax(-1)
            labels = target["labels"]
            gt = target["masks"].to(mask_logits)[:, None]
            pred = mask_logits[b][:, None]
            points = _rand((1, self.num_points, 2), pred, generator)
            gt_points = point_sample(gt, points.repeat(gt.shape[0], 1, 1)).squeeze(1)
            pred_points = point_sample(pred, points.repeat(pred.shape[0], 1, 1)).squeeze(1)
            cost = (
                self.cost_mask * pairwise_sigmoid_ce_cost(pred_points, gt_points)
                - self.cost_class * probs[:, labels]
                + self.cost_dice * pairwise_dice_cost(pred_points, gt_points)
            )
            if not torch.isfinite(cost).all():
                raise ValueError("the matching cost is not finite: check the predictions for NaN/inf")
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append(
                (torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64))
            )
        return matches


class Mask2FormerCriterion(nn.Module):
    """Section 3.3's loss with deep supervision; returns a dict with ``loss`` (the weighted total)
    and each weighted part (``loss_cls``, ``loss_mask``, ``loss_dice``, suffixed ``_<i>`` for the
    auxiliary predictions ``0 .. L - 1``)."""

    def __init__(
        self,
        num_classes: int,
        class_weight: float = 2.0,
        mask_weight: float = 5.0,
        dice_weight: float = 5.0,
        no_object_weight: float = 0.1,
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
        deep_supervision: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes)
        check_float("no_object_weight", no_object_weight, minimum=0.0)
        check_float("oversample_ratio", oversample_ratio, minimum=1.0)
        check_float("importance_sample_ratio", importance_sample_ratio, minimum=0.0, maximum=1.0)
        self.weights = {"loss_cls": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
        self.num_points = check_int("num_points", num_points)
        self.oversample_ratio, self.importance_sample_ratio = oversample_ratio, importance_sample_ratio
        self.deep_supervision = deep_supervision
        self.matcher = MaskHungarianMatcher(class_weight, mask_weight, dice_weight, num_points)
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = no_object_weight
        self.register_buffer("empty_weight", empty_weight, persistent=False)

    def single(
        self,
        class_logits: Tensor,
        mask_logits: Tensor,
        targets: Sequence[Target],
        num_masks: float,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The unweighted losses of one prediction stage (its own matching)."""
        matches = self.matcher(class_logits, mask_logits, targets, generator)
        batch_index = torch.cat([torch.full_like(rows, b) for b, (rows, _) in enumerate(matches)]).to(
            class_logits.device
        )
        query_index = torch.cat([rows for rows, _ in matches]).to(class_logits.device)
        classes = torch.full(
            class_logits.shape[:2], self.num_classes, dtype=torch.int64, device=class_logits.device
        )
        classes[batch_index, query_index] = torch.cat(
            [t["labels"][cols] for t, (_, cols) in zip(targets, matches)]
        )
        loss_cls = F.cross_entropy(
            class_logits.transpose(1, 2), classes, weight=self.empty_weight.to(class_logits)
        )
        predicted = mask_logits[batch_index, query_index][:, None]
        if predicted.shape[0] == 0:
            zero = mask_logits.sum() * 0.0
            return {"loss_cls": loss_cls, "loss_mask": zero, "loss_dice": zero}
        gt = torch.cat([t["masks"][cols].to(mask_logits) for t, (_, cols) in zip(targets, matches)])[:, None]
        with torch.no_grad():
            points = uncertainty_points(
                predicted, self.num_points, self.oversample_ratio, self.importance_sample_ratio, generator
            )
            gt_points = point_sample(gt, points).squeeze(1)
        pred_points = point_sample(predicted, points).squeeze(1)
        return {
            "loss_cls": loss_cls,
            "loss_mask": sigmoid_ce_loss(pred_points, gt_points, num_masks),
            "loss_dice": dice_loss(pred_points, gt_points, num_masks),
        }

    def forward(
        self, outputs: Mask2FormerOutput, targets: Sequence[Target], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        batch = outputs.pred_logits.shape[0]
        targets = check_mask_targets(targets, batch, self.num_classes)
        num_masks = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        stages = [(len(outputs.class_logits) - 1, "")]
        if self.deep_supervision:
            stages += [(i, f"_{i}") for i in range(len(outputs.class_logits) - 1)]
        losses: dict[str, Tensor] = {}
        for stage, suffix in stages:
            parts = self.single(
                outputs.class_logits[stage], outputs.mask_logits[stage], targets, num_masks, generator
            )
            for name, value in parts.items():
                losses[name + suffix] = self.weights[name] * value
        losses["loss"] = sum(losses.values())
        return losses
