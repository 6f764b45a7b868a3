"""Losses on predicted masks given as logits, shared by the segmentation models (Segment Anything,
Mask2Former).

* :func:`dice_loss` (Milletari et al. 2016, with the +1 smoothing of the released SAM and
  Mask2Former code): per mask over its last dimension (pixels or sampled points),
  ``1 - (2 Σ p g + 1) / (Σ p + Σ g + 1)`` with ``p = sigmoid(logits)``.
* :func:`sigmoid_focal_loss` (Lin et al. 2017, Eq. 5): per element,
  ``α_t (1 - p_t)^γ · BCE(logits, g)``; ``alpha < 0`` drops the α weighting.

Reductions over masks are the caller's (SAM averages pixels; Mask2Former sums masks and divides by
their number).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["dice_loss", "sigmoid_focal_loss"]


def _check_shapes(logits: Tensor, targets: Tensor) -> None:
    if logits.shape != targets.shape:
        raise ValueError(
            f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )


def dice_loss(logits: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """Dice loss per mask over the last dimension: ``[..., P] -> [...]`` (module docstring)."""
    if logits.shape != targets.shape:
        raise ValueError(
            f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    probability = logits.sigmoid()
    numerator = 2 * (probability * targets).sum(-1) + smooth
    return 1 - numerator / (probability.sum(-1) + targets.sum(-1) + smooth)


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Focal loss per element, the shape of ``logits`` (module docstring)."""
    if logits.shape != targets.shape:
        raise ValueError(
            f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    probability = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probability * targets + (1 - probability) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss
