"""Segment Anything's automatic mask generation (Kirillov et al. 2023, Section 4 "Data engine, fully
automatic stage" and Appendix B), used to build SA-1B and for zero-shot "segment everything".

1. Prompt SAM with a regular ``n x n`` grid of foreground points (32 x 32 in the paper); each point
   gives the 3 multi-mask outputs (whole, part, subpart).
2. Keep a mask if its predicted IoU is above ``pred_iou_thresh`` (0.88) and its *stability score*
   above ``stability_score_thresh`` (0.95). Stability (Section 4): threshold the logits at
   ``t - delta`` and ``t + delta`` (``t = 0``, ``delta = 1``); the score is their IoU, which, since the
   higher threshold's mask lies inside the lower's, is an area ratio:

       stability = |{logit > t + delta}| / |{logit > t - delta}|                    (stability)

   Masks covering more than 95 % of the image are dropped too (Appendix B, "whole-image" filter).
3. Remove duplicates by non-maximum suppression on the masks' bounding boxes (IoU 0.7), ranked by
   predicted IoU.

Departures: no multi-scale crops (the paper also prompts zoomed-in crops and merges them) and no
small-region post-processing; masks are upsampled from the decoder's ``4h x 4w`` logits to the input
size by bilinear interpolation (the original also crops away the letterbox padding first; we take
square inputs with none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.vision.giou import box_iou
from aicanon.vision.sam import Sam

__all__ = [
    "point_grid",
    "stability_score",
    "masks_to_boxes",
    "box_nms",
    "SamAutomaticMaskGenerator",
    "MaskRecord",
]


def point_grid(points_per_side: int) -> Tensor:
    """``n^2`` cell centres of an ``n x n`` grid in ``[0, 1]^2`` as (x, y): ``(n^2, 2)``."""
    check_int("points_per_side", points_per_side, 1)
    centres = (torch.arange(points_per_side, dtype=torch.float32) + 0.5) / points_per_side
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=-1)


def stability_score(logits: Tensor, threshold: float = 0.0, offset: float = 1.0) -> Tensor:
    """Eq. (stability) per mask over the last two dimensions; an empty low-threshold mask scores 0."""
    check_tensor("logits", logits, floating=True)
    if logits.dim() < 2:
        raise ValueError(f"logits must have at least 2 dimensions (H, W), got shape {tuple(logits.shape)}")
    check_float("offset", offset, 0)
    high = (logits > threshold + offset).flatten(-2).sum(-1).float()
    low = (logits > threshold - offset).flatten(-2).sum(-1).float()
    return torch.where(low > 0, high / low.clamp(min=1), torch.zeros_like(low))


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight ``(x0, y0, x1, y1)`` boxes (pixel edges, exclusive end) of boolean ``(N, H, W)`` masks;
    an empty mask gives ``(0, 0, 0, 0)``."""
    check_tensor("masks", masks, dim=3)
    masks = masks.bool()
    n, height, width = masks.shape
    if n == 0:
        return masks.new_zeros((0, 4), dtype=torch.float32)
    rows, cols = masks.any(2), masks.any(1)
    ys = torch.arange(height, device=masks.device)
    xs = torch.arange(width, device=masks.device)
    y0 = torch.where(rows, ys, height).min(1).values
    y1 = torch.where(rows, ys, -1).max(1).values + 1
    x0 = torch.where(cols, xs, width).min(1).values
    x1 = torch.where(cols, xs, -1).max(1).values + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return torch.where(masks.flatten(1).any(1, keepdim=True), boxes, torch.zeros_like(boxes))


def box_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS: indices of kept boxes, highest score first (a box is dropped when its IoU with a
    kept, higher-scoring box exceeds ``iou_threshold``)."""
    check_tensor("boxes", boxes, shape=(None, 4), floating=True)
    check_tensor("scores", scores, shape=(boxes.shape[0],), floating=True)
    check_float("iou_threshold", iou_threshold, 0, 1)
    order = scores.argsort(descending=True)
    if order.numel() == 0:
        return order
    overlaps = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(order.numel(), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(order.numel()):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


@dataclass
class MaskRecord:
    """One generated mask, with the numbers that selected it."""

    segmentation: Tensor
    """Boolean ``(H, W)`` at the input size."""
    area: int
    bbox: tuple[float, float, float, float]
    """(x0, y0, x1, y1) in pixels."""
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]
    """The grid point (x, y), in pixels, that prompted it."""


class SamAutomaticMaskGenerator:
    """Segment everything in an image with a grid of point prompts (the paper's defaults)."""

    def __init__(
        self,
        model: Sam,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        mask_threshold: float = 0.0,
        max_area_fraction: float = 0.95,
    ) -> None:
        if not isinstance(model, Sam):
            raise TypeError(f"model must be an aicanon Sam, got {type(model).__name__}")
        check_int("points_per_side", points_per_side, 1)
        check_int("points_per_batch", points_per_batch, 1)
        check_float("pred_iou_thresh", pred_iou_thresh)
        check_float("stability_score_thresh", stability_score_thresh, 0, 1)
        check_float("stability_score_offset", stability_score_offset, 0)
        check_float("box_nms_thresh", box_nms_thresh, 0, 1)
        check_float("max_area_fraction", max_area_fraction, 0, 1)
        self.max_area_fraction = max_area_fraction
        self.model = model
        self.points_per_side = points_per_side
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.mask_threshold = mask_threshold

    @torch.no_grad()
    def generate(self, image: Tensor) -> list[MaskRecord]:
        """``image``: one normalised ``(C, S, S)`` tensor at the model's input size."""
        size = self.model.config.image_size
        check_tensor("image", image, shape=(self.model.config.in_channels, size, size), floating=True)
        embedding = self.model.image_encoder(image.unsqueeze(0))
        grid = point_grid(self.points_per_side).to(image.device) * size
        logits, ious, scores, points = [], [], [], []
        for start in range(0, grid.shape[0], self.points_per_batch):
            batch = grid[start : start + self.points_per_batch]
            pts = batch.view(1, -1, 1, 2)
            labels = torch.ones(1, batch.shape[0], 1, dtype=torch.long, device=image.device)
            masks, iou = self.model(
                image_embeddings=embedding, points=pts, labels=labels, multimask_output=True
            )
            masks, iou = masks[0].flatten(0, 1), iou[0].flatten()
            masks = F.interpolate(
                masks.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False
            )[:, 0]
            stability = stability_score(masks, self.mask_threshold, self.stability_score_offset)
            keep = (iou > self.pred_iou_thresh) & (stability >= self.stability_score_thresh)
            logits.append(masks[keep])
            ious.append(iou[keep])
            scores.append(stability[keep])
            points.append(batch.repeat_interleave(masks.shape[0] // batch.shape[0], 0)[keep])
        masks = torch.cat(logits) > self.mask_threshold
        iou, stability, point = torch.cat(ious), torch.cat(scores), torch.cat(points)
        area = masks.flatten(1).float().mean(1)
        nonempty = (area > 0) & (area <= self.max_area_fraction)
        masks, iou, stability, point = masks[nonempty], iou[nonempty], stability[nonempty], point[nonempty]
        boxes = masks_to_boxes(masks)
        kept = box_nms(boxes, iou, self.box_nms_thresh)
        return [
            MaskRecord(
                segmentation=masks[i],
                area=int(masks[i].sum()),
                bbox=tuple(boxes[i].tolist()),
                predicted_iou=float(iou[i]),
                stability_score=float(stability[i]),
                point=tuple(point[i].tolist()),
            )
            for i in kept.tolist()
        ]
