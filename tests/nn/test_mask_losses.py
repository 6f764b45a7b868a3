"""aicanon.nn.mask_losses: golden values and shape errors (SAM and Mask2Former test them in use)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aicanon.nn.mask_losses import dice_loss, sigmoid_focal_loss

pytestmark = pytest.mark.paper("segment-anything")


def test_dice_and_focal_golden_values():
    logits = torch.tensor([[0.0, 2.0, -1.0], [3.0, -3.0, 0.5]])
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    p = logits.sigmoid()
    expected = 1 - (2 * (p * targets).sum(-1) + 1) / (p.sum(-1) + targets.sum(-1) + 1)
    torch.testing.assert_close(dice_loss(logits, targets), expected)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = torch.where(targets > 0, p, 1 - p)
    alpha_t = torch.where(targets > 0, 0.25, 0.75)
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets), alpha_t * (1 - p_t) ** 2 * ce)
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, alpha=-1), (1 - p_t) ** 2 * ce)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="targets must have the logits' shape"):
        dice_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="targets must have the logits' shape"):
        sigmoid_focal_loss(torch.zeros(2, 3), torch.zeros(3))
