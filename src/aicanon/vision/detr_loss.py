"""DETR's set prediction loss: bipartite (Hungarian) matching, then a loss on the matched pairs.

Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020, Section 3.1.

Let ``y = {y_i}`` be the ground truth padded with ∅ ("no object") to the ``N`` predictions
``ŷ = {ŷ_i}``, each ``y_i = (c_i, b_i)`` with class ``c_i`` and box ``b_i ∈ [0, 1]^4`` as
``(cx, cy, w, h)`` relative to the image. The matching is the permutation of least cost::

    σ̂ = argmin_{σ ∈ S_N} Σ_i L_match(y_i, ŷ_σ(i))                                        (1)
    L_match(y_i, ŷ_σ(i)) = -1{c_i ≠ ∅} p̂_σ(i)(c_i) + 1{c_i ≠ ∅} L_box(b_i, b̂_σ(i))
    L_box(b_i, b̂) = λ_iou L_GIoU(b_i, b̂) + λ_L1 ||b_i - b̂||_1                              (Sec. 3.1)

found with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). The loss is then::

    L_Hungarian(y, ŷ) = Σ_i [ -log p̂_σ̂(i)(c_i) + 1{c_i ≠ ∅} L_box(b_i, b̂_σ̂(i)) ]              (2)

with the log-probability of ∅ down-weighted by 10 (``eos_coef = 0.1``) for class imbalance. As in
the released code, the cross-entropy is the weighted mean over all ``B x N`` predictions, the box
terms are summed over matched pairs and divided by the number of target boxes in the batch, and
the weights are ``λ_cls = 1, λ_L1 = 5, λ_iou = 2`` in both the matching cost and the loss. With
auxiliary decoding losses, the same loss (with its own matching) is added for every decoder layer.

Public API
----------
* :func:`box_cxcywh_to_xyxy`, :func:`box_xyxy_to_cxcywh`;
* :func:`check_targets`: validates a batch of targets (``labels`` int64 ``[n]``, ``boxes`` ``[n, 4]``);
* :class:`HungarianMatcher` (Eq. 1) and :class:`SequentialMatcher` (an ablation: target ``j`` to
  query ``j``, the fixed assignment the paper's set loss replaces);
* :class:`SetCriterion` (Eq. 2 plus auxiliary losses) returning the total and its parts.

Departures
----------
* GIoU comes from :mod:`aicanon.vision.giou`, whose denominators carry ``eps`` (default ``1e-7``);
  ``eps=0`` is the released code's formula exactly (the parity tests use it).
* The matching cost of a NaN/inf entry is not patched (``transformers`` replaces it by the largest
  float): our inputs are checked finite instead, and a non-finite prediction raises ``ValueError``.
* Targets use the keys ``labels`` and ``boxes`` (the original code's); ``transformers`` names the
  first ``class_labels``.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int
from aicanon.vision.detr import DetrOutput
from aicanon.vision.giou import DEFAULT_EPS, generalized_box_iou, generalized_box_iou_elementwise

__all__ = [
    "HungarianMatcher",
    "SequentialMatcher",
    "SetCriterion",
    "box_cxcywh_to_xyxy",
    "box_xyxy_to_cxcywh",
    "check_targets",
]

Target = dict[str, Tensor]
Match = tuple[Tensor, Tensor]


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(cx, cy, w, h) -> (x1, y1, x2, y2)`` on the last dimension."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(x1, y1, x2, y2) -> (cx, cy, w, h)`` on the last dimension."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def check_targets(targets: object, batch_size: int, num_classes: int | None = None) -> list[Target]:
    """Raise a clear error unless ``targets`` is a list of ``batch_size`` dicts of valid objects.

    Each dict holds ``labels`` (int64 ``[n]``, in ``[0, num_classes)`` when given) and ``boxes``
    (floating ``[n, 4]``, ``(cx, cy, w, h)`` with every coordinate in ``[0, 1]`` and ``w, h > 0``).
    """
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"targets must be a list of dicts with 'labels' and 'boxes', got {type(targets).__name__}")
    if len(targets) != batch_size:
        raise ValueError(f"targets must have one dict per image: expected {batch_size}, got {len(targets)}")
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "labels" not in t or "boxes" not in t:
            got = sorted(t) if isinstance(t, dict) else type(t).__name__
            raise ValueError(f"targets[{i}] must be a dict with keys 'labels' and 'boxes', got {got}")
        labels, boxes = t["labels"], t["boxes"]
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
            got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
            raise TypeError(f"targets[{i}]['labels'] must be an int64 tensor [n], got {got}")
        if not isinstance(boxes, Tensor) or not boxes.is_floating_point() or boxes.shape != (len(labels), 4):
            got = f"{boxes.dtype} {tuple(boxes.shape)}" if isinstance(boxes, Tensor) else type(boxes).__name__
            raise ValueError(
                f"targets[{i}]['boxes'] must be a floating tensor [{len(labels)}, 4] (one box per label), got {got}"
            )
    if not targets:
        return []
    # One synchronisation for the whole batch; the per-image loop below only runs to word an error.
    all_boxes = torch.cat([t["boxes"].detach().float().cpu() for t in targets])
    all_labels = torch.cat([t["labels"].detach().cpu() for t in targets])
    bad = not bool(torch.isfinite(all_boxes).all()) or bool((all_boxes < 0).any()) or bool((all_boxes > 1).any())
    bad = bad or bool((all_boxes[:, 2:] <= 0).any())
    if num_classes is not None and all_labels.numel():
        bad = bad or int(all_labels.min()) < 0 or int(all_labels.max()) >= num_classes
    if not bad:
        return list(targets)
    for i, t in enumerate(targets):
        labels, boxes = t["labels"], t["boxes"]
        if boxes.numel():
            if not bool(torch.isfinite(boxes).all()) or bool((boxes < 0).any()) or bool((boxes > 1).any()):
                raise ValueError(
                    f"targets[{i}]['boxes'] must be (cx, cy, w, h) normalised to [0, 1], got values in "
                    f"[{boxes.min().item():.4g}, {boxes.max().item():.4g}]"
                )
            if bool((boxes[:, 2:] <= 0).any()):
                raise ValueError(f"targets[{i}]['boxes'] must have width and height > 0 (cx, cy, w, h), got {boxes.tolist()}")
        if num_classes is not None and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"targets[{i}]['labels'] must be in [0, {num_classes}), got {labels.tolist()}")
    return list(targets)


def _check_predictions(logits: object, boxes: object) -> tuple[Tensor, Tensor]:
    if not isinstance(logits, Tensor) or logits.dim() != 3 or not logits.is_floating_point():
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a floating tensor [batch, queries, classes + 1], got {got}")
    if not isinstance(boxes, Tensor) or boxes.shape != (*logits.shape[:2], 4):
        got = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"boxes must be [batch, queries, 4] = {(*logits.shape[:2], 4)}, got {got}")
    if not bool(torch.isfinite(logits).all()) or not bool(torch.isfinite(boxes).all()):
        raise ValueError("logits and boxes must be finite, got NaN or inf (has training diverged?)")
    return logits, boxes


class Matcher(Protocol):
    def __call__(self, logits: Tensor, boxes: Tensor, targets: list[Target], check: bool = True) -> list[Match]: ...


class HungarianMatcher:
    """The optimal bipartite matching of Eq. 1, per image.

    Cost of prediction ``i`` for target ``j``: ``-class_weight * p̂_i(c_j) + l1_weight * ||b̂_i -
    b_j||_1 - giou_weight * GIoU(b̂_i, b_j)`` (the constant 1 of ``L_GIoU = 1 - GIoU`` does not change
    the argmin). Returns, per image, ``(prediction indices, target indices)`` int64 tensors sorted by
    prediction index, of length ``min(N, n_targets)``.
    """

    def __init__(self, class_weight: float = 1.0, l1_weight: float = 5.0, giou_weight: float = 2.0, eps: float = DEFAULT_EPS) -> None:
        for name, value in (("class_weight", class_weight), ("l1_weight", l1_weight), ("giou_weight", giou_weight)):
            check_float(name, value, 0)
        if class_weight == l1_weight == giou_weight == 0:
            raise ValueError("class_weight, l1_weight and giou_weight must not all be 0, got all 0")
        self.class_weight, self.l1_weight, self.giou_weight, self.eps = class_weight, l1_weight, giou_weight, eps

    @torch.no_grad()
    def cost_matrices(self, logits: Tensor, boxes: Tensor, targets: list[Target], check: bool = True) -> list[Tensor]:
        """The ``[N, n_targets]`` matching cost of every image (Eq. 1's ``L_match``).

        ``check=False`` skips validating the inputs (for a caller that has done it already).
        """
        if check:
            logits, boxes = _check_predictions(logits, boxes)
            targets = check_targets(targets, logits.shape[0], logits.shape[2] - 1)
        batch, queries = logits.shape[:2]
        sizes = [len(t["labels"]) for t in targets]
        if sum(sizes) == 0:
            return [logits.new_zeros(queries, 0) for _ in targets]
        # All images at once (one cdist, one GIoU), then each image's columns.
        prob = logits.flatten(0, 1).softmax(-1)
        flat_boxes = boxes.flatten(0, 1)
        labels = torch.cat([t["labels"] for t in targets]).to(logits.device)
        tgt = torch.cat([t["boxes"] for t in targets]).to(flat_boxes)
        cost_class = -prob[:, labels]
        cost_l1 = torch.cdist(flat_boxes, tgt, p=1)
        cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(flat_boxes), box_cxcywh_to_xyxy(tgt), eps=self.eps)
        cost = self.class_weight * cost_class + self.l1_weight * cost_l1 + self.giou_weight * cost_giou
        cost = cost.view(batch, queries, -1)
        return [c[b] for b, c in enumerate(cost.split(sizes, dim=-1))]

    def __call__(self, logits: Tensor, boxes: Tensor, targets: list[Target], check: bool = True) -> list[Match]:
        costs = [c.cpu().numpy() for c in self.cost_matrices(logits, boxes, targets, check)]
        out = []
        for cost in costs:
            rows, cols = linear_sum_assignment(cost)
            out.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return out


class SequentialMatcher:
    """Ablation: target ``j`` always goes to query ``j`` (a fixed, order-dependent assignment).

    Not in the paper; it stands for the hand-designed assignment that DETR's bipartite matching
    removes. Targets beyond the ``N`` queries are dropped.
    """

    def __call__(self, logits: Tensor, boxes: Tensor, targets: list[Target], check: bool = True) -> list[Match]:
        if check:
            logits, boxes = _check_predictions(logits, boxes)
            targets = check_targets(targets, logits.shape[0], logits.shape[2] - 1)
        n = logits.shape[1]
        out = []
        for t in targets:
            k = min(n, len(t["labels"]))
            idx = torch.arange(k, dtype=torch.int64)
            out.append((idx, idx.clone()))
        return out


class SetCriterion(nn.Module):
    """The Hungarian loss of Eq. 2, summed over the last decoder layer and the auxiliary ones.

    ``forward(output, targets) -> (total, parts)``: ``parts`` holds ``loss_ce``, ``loss_bbox``,
    ``loss_giou`` (last layer) and ``loss_ce_i`` ... for auxiliary layer ``i`` (first to last but
    one), unweighted; ``total`` is their sum weighted by ``ce_weight``, ``l1_weight``, ``giou_weight``.
    """

    def __init__(
        self,
        num_classes: int,
        matcher: Matcher | None = None,
        *,
        eos_coef: float = 0.1,
        ce_weight: float = 1.0,
        l1_weight: float = 5.0,
        giou_weight: float = 2.0,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        check_int("num_classes", num_classes)
        check_float("eos_coef", eos_coef, 0, 1)
        self.num_classes = num_classes
        self.matcher = matcher if matcher is not None else HungarianMatcher(ce_weight, l1_weight, giou_weight, eps)
        self.ce_weight, self.l1_weight, self.giou_weight, self.eps = ce_weight, l1_weight, giou_weight, eps
        weight = torch.ones(num_classes + 1)
        weight[-1] = eos_coef  # Section 3.1: the ∅ class's log-probability is down-weighted by 10
        self.register_buffer("class_weight", weight)

    def layer_loss(self, logits: Tensor, boxes: Tensor, targets: list[Target], num_boxes: float) -> dict[str, Tensor]:
        """Eq. 2 for one decoder layer's predictions (its own matching)."""
        if logits.shape[-1] != self.num_classes + 1:
            raise ValueError(f"logits must have num_classes + 1 = {self.num_classes + 1} classes, got {logits.shape[-1]}")
        indices = self.matcher(logits, boxes, targets, check=False)  # forward() has checked the inputs
        batch_idx = torch.cat([torch.full_like(src, b) for b, (src, _) in enumerate(indices)]).to(logits.device)
        src_idx = torch.cat([src for src, _ in indices]).to(logits.device)
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        matched_labels = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)]).to(logits.device)
        target_classes[batch_idx, src_idx] = matched_labels
        loss_ce = F.cross_entropy(logits.transpose(1, 2), target_classes, self.class_weight.to(logits.dtype))
        pred = boxes[batch_idx, src_idx]
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)]).to(pred)
        loss_bbox = (pred - tgt).abs().sum() / num_boxes
        if len(pred):
            giou = generalized_box_iou_elementwise(box_cxcywh_to_xyxy(pred), box_cxcywh_to_xyxy(tgt), eps=self.eps)
            loss_giou = (1 - giou).sum() / num_boxes
        else:
            loss_giou = boxes.sum() * 0.0
        return {"loss_ce": loss_ce, "loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def forward(self, output: DetrOutput, targets: list[Target]) -> tuple[Tensor, dict[str, Tensor]]:
        if not isinstance(output, DetrOutput):
            raise TypeError(f"output must be a DetrOutput, got {type(output).__name__}")
        _check_predictions(output.logits, output.boxes)
        targets = check_targets(targets, output.logits.shape[0], self.num_classes)
        # Normalise the box losses by the number of target boxes in the batch (at least 1).
        num_boxes = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        parts = self.layer_loss(output.logits, output.boxes, targets, num_boxes)
        for i, (logits, boxes) in enumerate(output.aux):
            for name, value in self.layer_loss(logits, boxes, targets, num_boxes).items():
                parts[f"{name}_{i}"] = value
        weights = {"loss_ce": self.ce_weight, "loss_bbox": self.l1_weight, "loss_giou": self.giou_weight}
        total = sum(weights[name.rsplit("_", 1)[0] if name[-1].isdigit() else name] * v for name, v in parts.items())
        return total, parts
