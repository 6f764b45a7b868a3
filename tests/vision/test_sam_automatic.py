"""Automatic mask generation: point grid, stability score, boxes, NMS, the generator end to end."""

import pytest
import torch

from aicanon.vision.sam import Sam, SamConfig
from aicanon.vision.sam_automatic import (
    SamAutomaticMaskGenerator,
    box_nms,
    masks_to_boxes,
    point_grid,
    stability_score,
)

pytestmark = pytest.mark.paper("segment-anything")


def test_point_grid_cell_centres():
    grid = point_grid(2)
    assert torch.equal(grid, torch.tensor([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]))
    assert point_grid(32).shape == (1024, 2)


def test_stability_score_is_an_area_ratio():
    logits = torch.tensor([[[2.0, 0.5], [-0.5, -2.0]]])
    # > +1: one pixel; > -1: three pixels
    assert stability_score(logits).item() == pytest.approx(1 / 3)
    assert stability_score(torch.full((1, 2, 2), 5.0)).item() == 1.0
    assert stability_score(torch.full((1, 2, 2), -5.0)).item() == 0.0
    # a larger offset can only lower it
    wide = torch.randn(4, 8, 8) * 3
    assert (stability_score(wide, offset=2.0) <= stability_score(wide, offset=1.0) + 1e-6).all()


def test_masks_to_boxes_and_nms():
    masks = torch.zeros(3, 6, 6, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 1:3, 2:4] = True
    boxes = masks_to_boxes(masks)
    assert boxes.tolist() == [[2, 1, 5, 3], [2, 1, 4, 3], [0, 0, 0, 0]]
    kept = box_nms(boxes[:2], torch.tensor([0.5, 0.9]), 0.5)  # IoU 2/3 > 0.5: the weaker goes
    assert kept.tolist() == [1]
    kept = box_nms(boxes[:2], torch.tensor([0.5, 0.9]), 0.7)
    assert kept.tolist() == [1, 0]


def test_generator_end_to_end_filters_and_deduplicates():
    torch.manual_seed(0)
    model = Sam(
        SamConfig(
            image_size=32,
            patch_size=8,
            encoder_dim=16,
            encoder_depth=1,
            encoder_heads=2,
            encoder_mlp_dim=32,
            window_size=0,
            global_attn_indexes=(),
            prompt_dim=16,
            decoder_heads=2,
            decoder_mlp_dim=32,
            iou_head_hidden_dim=16,
        )  # fmt: skip
    ).eval()
    image = torch.randn(3, 32, 32)
    # nothing passes an impossible IoU threshold
    assert SamAutomaticMaskGenerator(model, points_per_side=4, pred_iou_thresh=1e9).generate(image) == []
    everything = SamAutomaticMaskGenerator(
        model, points_per_side=4, points_per_batch=5, pred_iou_thresh=-1e9, stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        max_area_fraction=1.0,
    ).generate(image)  # fmt: skip
    deduplicated = SamAutomaticMaskGenerator(
        model,
        points_per_side=4,
        pred_iou_thresh=-1e9,
        stability_score_thresh=0.0,
        box_nms_thresh=0.1,
        max_area_fraction=1.0,
    ).generate(image)
    assert 0 < len(deduplicated) <= len(everything) <= 16 * 3
    record = everything[0]
    assert record.segmentation.shape == (32, 32) and record.segmentation.dtype == torch.bool
    assert record.area == int(record.segmentation.sum()) > 0
    scores = [r.predicted_iou for r in everything]
    assert scores == sorted(scores, reverse=True)


def test_bad_inputs_are_rejected():
    with pytest.raises(TypeError, match="model must be an aicanon Sam"):
        SamAutomaticMaskGenerator(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="points_per_side must be >= 1"):
        point_grid(0)
    with pytest.raises(ValueError, match="boxes must be a tensor of shape"):
        box_nms(torch.zeros(2, 3), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="iou_threshold must be in"):
        box_nms(torch.zeros(2, 4), torch.zeros(2), 1.5)
    with pytest.raises(ValueError, match="logits must have at least 2 dimensions"):
        stability_score(torch.zeros(3))
    model = Sam(SamConfig(image_size=32, patch_size=8, encoder_dim=16, encoder_depth=1, encoder_heads=2,
                          encoder_mlp_dim=32, window_size=0, global_attn_indexes=(), prompt_dim=16,
                          decoder_heads=2))  # fmt: skip
    with pytest.raises(ValueError, match="image must be a tensor of shape"):
        SamAutomaticMaskGenerator(model).generate(torch.zeros(3, 16, 16))
