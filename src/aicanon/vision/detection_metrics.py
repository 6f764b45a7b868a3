"""Detection metrics: COCO-style average precision and the duplicate rate of a set predictor.

Average precision (AP) of one class at IoU threshold ``t`` (the COCO protocol, Lin et al. 2014,
``pycocotools.cocoeval``): detections of that class from every image are sorted by score (highest
first); within an image each detection, in that order, is matched to the still-unmatched ground
truth box of its class with the highest IoU, provided ``IoU >= t``; a matched detection is a true
positive, any other a false positive. With ``TP_k``/``FP_k`` the cumulative counts over the first
``k`` detections and ``G`` the number of ground-truth boxes::

    precision_k = TP_k / (TP_k + FP_k),   recall_k = TP_k / G
    p_interp(r) = max_{k: recall_k >= r} precision_k                (0 where no such k)
    AP = (1 / 101) Σ_{r ∈ {0, 0.01, ..., 1}} p_interp(r)             (101-point interpolation)

mAP@t is the mean of AP over the classes with at least one ground-truth box (as COCO: a class
absent from the ground truth is ignored, whatever is detected). COCO's AP is the mean of mAP@t
over ``t ∈ {0.50, 0.55, ..., 0.95}``.

The duplicate rate measures what DETR's set loss is meant to remove without non-maximum
suppression (Carion et al. 2020, Section 4.2, "Importance of NMS"): among the *confident*
predictions (score >= ``score_threshold``) of one image, taken by decreasing score, a prediction is
a duplicate when an earlier, non-duplicate prediction of the same class overlaps it with IoU >
``iou_threshold``. The rate is duplicates / confident predictions over the data set (0 when there
are none).

Boxes here are corners ``(x1, y1, x2, y2)`` in any common unit.

Departures from pycocotools: no ``maxDets`` cap (DETR's 100 queries never exceed COCO's 100),
no area ranges, no ``iscrowd`` ground truth; ties in score keep the input order (pycocotools sorts
with a stable mergesort too). The parity test checks our mAP@0.5 and AP against ``COCOeval``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from aicanon.core.checks import check_float
from aicanon.vision.giou import box_iou

__all__ = ["COCO_IOU_THRESHOLDS", "average_precision", "coco_average_precision", "duplicate_rate", "mean_average_precision"]

COCO_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _check_list(name: str, items: object, keys: tuple[str, ...]) -> list[dict[str, Tensor]]:
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{name} must be a list of dicts (one per image) with keys {keys}, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or any(k not in item for k in keys):
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got {got}")
        boxes = item["boxes"]
        if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4 or not boxes.is_floating_point():
            got = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
            raise ValueError(f"{name}[{i}]['boxes'] must be a floating tensor [n, 4] (x1, y1, x2, y2), got {got}")
        n = len(boxes)
        for key in keys[1:]:
            value = item[key]
            if not isinstance(value, Tensor) or value.shape != (n,):
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"{name}[{i}]['{key}'] must be a tensor [{n}] (one per box), got {got}")
    return list(items)


def _check_pair(predictions: object, ground_truths: object) -> tuple[list, list]:
    predictions = _check_list("predictions", predictions, ("boxes", "scores", "labels"))
    ground_truths = _check_list("ground_truths", ground_truths, ("boxes", "labels"))
    if len(predictions) != len(ground_truths):
        raise ValueError(
            f"predictions and ground_truths must have one entry per image each, got {len(predictions)} and {len(ground_truths)}"
        )
    return predictions, ground_truths


def _matches(predictions: list, ground_truths: list, thresholds: tuple[float, ...]) -> tuple[dict, dict]:
    """Greedy COCO matching of every image once per threshold.

    Returns ``records[t][label] = (scores, hits)`` over all images and ``num_gt[label]``.
    """
    records: dict[float, dict[int, tuple[list[float], list[bool]]]] = {t: {} for t in thresholds}
    num_gt: dict[int, int] = {}
    for pred, gt in zip(predictions, ground_truths):
        gt_labels = gt["labels"].cpu().numpy().astype(np.int64)
        for label in gt_labels.tolist():
            num_gt[label] = num_gt.get(label, 0) + 1
        if len(pred["boxes"]) == 0:
            continue
        scores = pred["scores"].detach().float().cpu().numpy()
        labels = pred["labels"].cpu().numpy().astype(np.int64)
        order = np.argsort(-scores, kind="mergesort")  # stable: ties keep the input order
        if len(gt_labels):
            ious = box_iou(pred["boxes"].detach().float().cpu(), gt["boxes"].detach().float().cpu(), eps=0.0).numpy()
        else:
            ious = np.zeros((len(scores), 0))
        same = labels[:, None] == gt_labels[None, :]
        for t in thresholds:
            matched = np.zeros(len(gt_labels), dtype=bool)
            per_class = records[t]
            for k in order:
                hit = False
                candidates = np.where(same[k] & ~matched, ious[k], -1.0)
                if len(candidates):
                    best = int(candidates.argmax())
                    if candidates[best] >= t:
                        matched[best] = True
                        hit = True
                entry = per_class.setdefault(int(labels[k]), ([], []))
                entry[0].append(float(scores[k]))
                entry[1].append(hit)
    return records, num_gt


def _ap(scores: list[float], hits: list[bool], num_gt: int) -> float:
    if not scores:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    tp = np.asarray(hits, dtype=np.float64)[order]
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(1 - tp)
    recall = tp_cum / num_gt
    precision = tp_cum / (tp_cum + fp_cum + np.spacing(1))  # as pycocotools
    # Interpolate: precision envelope from the right, then read it at the 101 recall points.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
    values = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(values.mean())


def _per_class(predictions, ground_truths, thresholds: tuple[float, ...]) -> dict[float, dict[int, float]]:
    records, num_gt = _matches(predictions, ground_truths, thresholds)
    # COCO ignores a class with no ground truth, whatever is detected.
    return {
        t: {label: _ap(*records[t].get(label, ([], [])), num_gt[label]) for label in sorted(num_gt)}
        for t in thresholds
    }


def average_precision(
    predictions: list[dict[str, Tensor]], ground_truths: list[dict[str, Tensor]], iou_threshold: float = 0.5
) -> dict[int, float]:
    """AP of every class present in the ground truth at ``iou_threshold`` (see the module docstring).

    ``predictions[i]``: ``boxes [n, 4]`` (x1, y1, x2, y2), ``scores [n]``, ``labels [n]`` of image
    ``i``; ``ground_truths[i]``: ``boxes [m, 4]``, ``labels [m]``.
    """
    predictions, ground_truths = _check_pair(predictions, ground_truths)
    t = float(check_float("iou_threshold", iou_threshold, 0, 1, min_inclusive=False))
    return _per_class(predictions, ground_truths, (t,))[t]


def mean_average_precision(
    predictions: list[dict[str, Tensor]], ground_truths: list[dict[str, Tensor]], iou_threshold: float = 0.5
) -> float:
    """mAP at one IoU threshold: the mean AP over ground-truth classes (``nan`` with no ground truth)."""
    per_class = average_precision(predictions, ground_truths, iou_threshold)
    return float(np.mean(list(per_class.values()))) if per_class else float("nan")


def coco_average_precision(predictions: list[dict[str, Tensor]], ground_truths: list[dict[str, Tensor]]) -> float:
    """COCO's AP: mAP averaged over IoU thresholds 0.50, 0.55, ..., 0.95 (``nan`` with no ground truth)."""
    predictions, ground_truths = _check_pair(predictions, ground_truths)
    per_threshold = _per_class(predictions, ground_truths, COCO_IOU_THRESHOLDS)
    maps = [np.mean(list(v.values())) for v in per_threshold.values() if v]
    return float(np.mean(maps)) if maps else float("nan")


def duplicate_rate(
    predictions: list[dict[str, Tensor]], score_threshold: float = 0.5, iou_threshold: float = 0.5
) -> float:
    """Fraction of confident predictions that duplicate an earlier one (same class, IoU > ``iou_threshold``)."""
    predictions = _check_list("predictions", predictions, ("boxes", "scores", "labels"))
    for name, value in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold)):
        check_float(name, value, 0, 1)
    confident = duplicates = 0
    for pred in predictions:
        keep = pred["scores"] >= score_threshold
        boxes, scores, labels = pred["boxes"][keep].float(), pred["scores"][keep], pred["labels"][keep]
        order = torch.argsort(scores, descending=True, stable=True)
        boxes, labels = boxes[order], labels[order]
        confident += len(boxes)
        if len(boxes) < 2:
            continue
        ious = box_iou(boxes, boxes, eps=0.0)
        kept: list[int] = []
        for k in range(len(boxes)):
            if any(labels[j] == labels[k] and ious[k, j] > iou_threshold for j in kept):
                duplicates += 1
            else:
                kept.append(k)
    return duplicates / confident if confident else 0.0
