"""Mask-classification inference (semantic, instance, panoptic) and panoptic quality.

Mask2Former inference, Cheng et al. CVPR 2022, Section 4 ("Post-processing", following MaskFormer):
with class probabilities ``p_i`` over ``K + 1`` labels (last: ∅) and mask probabilities
``m_i = sigmoid(mask logits)`` of ``N`` queries,

* semantic: the per-pixel class scores ``Σ_i p_i(c) m_i[h, w]`` (∅ dropped), arg-max over ``c``;
* panoptic: keep queries whose best non-∅ label scores above ``object_threshold``; each pixel goes
  to ``argmax_i p_i(c_i) m_i[h, w]``; a kept query's segment survives if it is non-empty and covers at
  least ``overlap_threshold`` of its own binary mask (``m_i ≥ 0.5``); segments of one *stuff* class
  merge into one;
* instance: the top ``k`` (query, class) pairs by ``p_i(c)``, each scored by ``p_i(c)`` times the mean
  mask probability inside its binary mask.

Panoptic quality (Kirillov et al., "Panoptic Segmentation", CVPR 2019, Eq. 1): per class, a predicted
and a ground-truth segment *match* when their IoU exceeds 0.5 (unique by construction); with TP the
matched pairs, FP the unmatched predictions and FN the unmatched ground truth::

    PQ = Σ_{(p, g) ∈ TP} IoU(p, g) / (|TP| + |FP|/2 + |FN|/2) = SQ x RQ
    SQ = Σ_TP IoU / |TP|,  RQ = |TP| / (|TP| + |FP|/2 + |FN|/2)

averaged over the classes that occur in the ground truth or the predictions. As in the COCO
panoptic API, pixels labelled void (``void_label``) are removed from the union of a pair, and an
unmatched prediction lying more than half on void is not counted as FP.

Departures: no crowd regions (our data has none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_float, check_int

__all__ = [
    "PanopticQuality",
    "instance_inference",
    "panoptic_inference",
    "panoptic_quality",
    "semantic_inference",
]


def _check_outputs(class_logits: Tensor, mask_logits: Tensor) -> None:
    if not isinstance(class_logits, Tensor) or class_logits.dim() != 2 or class_logits.shape[1] < 2:
        got = tuple(class_logits.shape) if isinstance(class_logits, Tensor) else type(class_logits).__name__
        raise ValueError(f"class_logits must be [N, K + 1] with K >= 1 (one image), got {got}")
    if (
        not isinstance(mask_logits, Tensor)
        or mask_logits.dim() != 3
        or mask_logits.shape[0] != class_logits.shape[0]
    ):
        got = tuple(mask_logits.shape) if isinstance(mask_logits, Tensor) else type(mask_logits).__name__
        raise ValueError(f"mask_logits must be [{class_logits.shape[0]}, H, W], got {got}")


def _resize(mask_logits: Tensor, size: tuple[int, int] | None) -> Tensor:
    if size is None or tuple(mask_logits.shape[-2:]) == tuple(size):
        return mask_logits
    return F.interpolate(mask_logits[None], size=size, mode="bilinear", align_corners=False)[0]


def semantic_inference(
    class_logits: Tensor, mask_logits: Tensor, size: tuple[int, int] | None = None
) -> Tensor:
    """Per-pixel class ``[H, W]`` (int64) of one image from ``[N, K + 1]`` and ``[N, h, w]``."""
    _check_outputs(class_logits, mask_logits)
    probs = class_logits.softmax(-1)[:, :-1]
    masks = _resize(mask_logits, size).sigmoid()
    return torch.einsum("qc,qhw->chw", probs, masks).argmax(0)


def panoptic_inference(
    class_logits: Tensor,
    mask_logits: Tensor,
    thing_classes: set[int] | frozenset[int],
    object_threshold: float = 0.8,
    overlap_threshold: float = 0.8,
    size: tuple[int, int] | None = None,
) -> tuple[Tensor, list[dict]]:
    """Panoptic map of one image: ``(segment ids [H, W] (0 = none), segments)``.

    ``segments[i] = {"id": i + 1, "label": class, "isthing": bool, "score": float}``.
    """
    _check_outputs(class_logits, mask_logits)
    check_float("object_threshold", object_threshold, minimum=0.0, maximum=1.0)
    check_float("overlap_threshold", overlap_threshold, minimum=0.0, maximum=1.0)
    scores, labels = class_logits.softmax(-1)[:, :-1].max(-1)
    masks = _resize(mask_logits, size).sigmoid()
    keep = scores > object_threshold
    scores, labels, masks = scores[keep], labels[keep], masks[keep]
    height, width = masks.shape[-2:]
    panoptic = torch.zeros((height, width), dtype=torch.int64, device=masks.device)
    segments: list[dict] = []
    if masks.shape[0] == 0:
        return panoptic, segments
    owner = (scores[:, None, None] * masks).argmax(0)
    stuff_ids: dict[int, int] = {}
    for k in range(masks.shape[0]):
        label = int(labels[k])
        region = (owner == k) & (masks[k] >= 0.5)
        area, own_area = int(region.sum()), int((masks[k] >= 0.5).sum())
        if area == 0 or own_area == 0 or area / own_area < overlap_threshold:
            continue
        is_thing = label in thing_classes
        if not is_thing and label in stuff_ids:
            panoptic[region] = stuff_ids[label]
            continue
        segment_id = len(segments) + 1
        if not is_thing:
            stuff_ids[label] = segment_id
        panoptic[region] = segment_id
        segments.append({"id": segment_id, "label": label, "isthing": is_thing, "score": float(scores[k])})
    return panoptic, segments


def instance_inference(
    class_logits: Tensor, mask_logits: Tensor, top_k: int = 100, size: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Top ``top_k`` instances of one image: ``(scores [k], labels [k], binary masks [k, H, W])``."""
    _check_outputs(class_logits, mask_logits)
    check_int("top_k", top_k)
    num_queries, num_labels = class_logits.shape[0], class_logits.shape[1] - 1
    probs = class_logits.softmax(-1)[:, :-1].flatten()
    top_scores, index = probs.topk(min(top_k, probs.numel()))
    labels = index % num_labels
    masks = _resize(mask_logits, size)[index // num_labels]
    binary = masks > 0
    mask_scores = (masks.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    del num_queries
    return top_scores * mask_scores, labels, binary


@dataclass
class PanopticQuality:
    """Per-class sums; :meth:`update` with one image at a time, then read :meth:`compute`."""

    void_label: int | None = None
    iou_sum: dict[int, float] = field(default_factory=dict)
    tp: dict[int, int] = field(default_factory=dict)
    fp: dict[int, int] = field(default_factory=dict)
    fn: dict[int, int] = field(default_factory=dict)

    def update(
        self, pred_ids: Tensor, pred_labels: dict[int, int], gt_ids: Tensor, gt_labels: dict[int, int]
    ) -> None:
        """One image: segment-id maps ``[H, W]`` (0 = no segment) and ``{segment id: class}`` for each.

        A ground-truth segment whose class is ``void_label`` marks void pixels.
        """
        if (
            not isinstance(pred_ids, Tensor)
            or not isinstance(gt_ids, Tensor)
            or pred_ids.shape != gt_ids.shape
        ):
            raise ValueError(
                "pred_ids and gt_ids must be segment-id tensors of one shape, got "
                f"{getattr(pred_ids, 'shape', type(pred_ids))} and {getattr(gt_ids, 'shape', type(gt_ids))}"
            )
        pred = pred_ids.flatten().long().cpu()
        gt = gt_ids.flatten().long().cpu()
        void = torch.zeros_like(gt, dtype=torch.bool)
        if self.void_label is not None:
            for segment, label in gt_labels.items():
                if label == self.void_label:
                    void |= gt == segment
        pred_area = {s: int((pred == s).sum()) for s in pred_labels}
        gt_area = {s: int((gt == s).sum()) for s, label in gt_labels.items() if label != self.void_label}
        matched_pred: set[int] = set()
        matched_gt: set[int] = set()
        for g, g_area in gt_area.items():
            g_mask = gt == g
            for p, p_area in pred_area.items():
                if pred_labels[p] != gt_labels[g]:
                    continue
                p_mask = pred == p
                intersection = int((g_mask & p_mask).sum())
                if intersection == 0:
                    continue
                union = p_area + g_area - intersection - int((p_mask & void).sum())
                iou = intersection / union
                if iou > 0.5:
                    label = gt_labels[g]
                    self.tp[label] = self.tp.get(label, 0) + 1
                    self.iou_sum[label] = self.iou_sum.get(label, 0.0) + iou
                    matched_pred.add(p)
                    matched_gt.add(g)
        for g in gt_area:
            if g not in matched_gt:
                label = gt_labels[g]
                self.fn[label] = self.fn.get(label, 0) + 1
        for p, p_area in pred_area.items():
            if p in matched_pred:
                continue
            if p_area > 0 and int(((pred == p) & void).sum()) / p_area > 0.5:
                continue
            label = pred_labels[p]
            self.fp[label] = self.fp.get(label, 0) + 1

    def compute(self, classes: set[int] | None = None) -> dict[str, float]:
        """``pq``, ``sq``, ``rq`` (fractions, averaged over classes seen) and ``per_class`` PQ."""
        seen = set(self.tp) | set(self.fp) | set(self.fn)
        if classes is not None:
            seen &= set(classes)
        per_class: dict[int, tuple[float, float, float]] = {}
        for c in sorted(seen):
            tp, fp, fn = self.tp.get(c, 0), self.fp.get(c, 0), self.fn.get(c, 0)
            denominator = tp + 0.5 * fp + 0.5 * fn
            if denominator == 0:
                continue
            sq = self.iou_sum.get(c, 0.0) / tp if tp else 0.0
            rq = tp / denominator
            per_class[c] = (sq * rq, sq, rq)
        if not per_class:
            return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "per_class": {}}
        n = len(per_class)
        return {
            "pq": sum(v[0] for v in per_class.values()) / n,
            "sq": sum(v[1] for v in per_class.values()) / n,
            "rq": sum(v[2] for v in per_class.values()) / n,
            "per_class": {c: v[0] for c, v in per_class.items()},
        }


def panoptic_quality(
    pred_ids: Tensor,
    pred_labels: dict[int, int],
    gt_ids: Tensor,
    gt_labels: dict[int, int],
    void_label: int | None = None,
) -> dict[str, float]:
    """PQ, SQ, RQ of one image (see :class:`PanopticQuality`)."""
    metric = PanopticQuality(void_label=void_label)
    metric.update(pred_ids, pred_labels, gt_ids, gt_labels)
    return metric.compute()
