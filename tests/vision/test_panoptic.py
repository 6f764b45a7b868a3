"""Panoptic quality (hand-checked cases) and mask-classification inference."""

from __future__ import annotations

import pytest
import torch

from aicanon.vision.panoptic import (
    PanopticQuality,
    instance_inference,
    panoptic_inference,
    panoptic_quality,
    semantic_inference,
)

pytestmark = pytest.mark.paper("mask2former")


def _ids(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[int(c) for c in row] for row in rows])


def test_pq_perfect_prediction_is_one():
    gt = _ids(["1122", "1122", "3333"])
    result = panoptic_quality(gt, {1: 0, 2: 1, 3: 2}, gt, {1: 0, 2: 1, 3: 2})
    assert result["pq"] == result["sq"] == result["rq"] == 1.0


def test_pq_hand_checked_case():
    # class 0: gt segment of 4 pixels; prediction covers 3 of them plus 1 extra -> IoU 3/5 = 0.6 (TP)
    # class 1: gt segment of 4 pixels, predicted segment overlaps 2 -> IoU 2/6 < 0.5: one FP and one FN
    gt = _ids(["1100", "1100", "2200", "2200"])
    pred = _ids(["1110", "1000", "0000", "0022"])
    pred[3, 0] = 2
    pred[2, 0] = 2  # class-1 prediction: (2,0), (3,0), (3,2), (3,3); overlap with gt 2 is 2 pixels
    result = panoptic_quality(pred, {1: 0, 2: 1}, gt, {1: 0, 2: 1})
    # class 0: PQ = 0.6 / (1 + 0 + 0) = 0.6; class 1: PQ = 0 / (0 + 0.5 + 0.5) = 0
    assert result["per_class"] == pytest.approx({0: 0.6, 1: 0.0})
    assert result["pq"] == pytest.approx(0.3)
    assert result["sq"] == pytest.approx(0.3)  # class 0 SQ 0.6, class 1 SQ 0 (no TP)
    assert result["rq"] == pytest.approx(0.5)


def test_pq_is_sq_times_rq_per_class_and_counts_fp_fn():
    metric = PanopticQuality()
    gt = _ids(["1122", "1122"])
    # two predictions of class 0: one matches gt 1 exactly, one is a spurious segment over gt 2
    pred = _ids(["1133", "1133"])
    metric.update(pred, {1: 0, 3: 0}, gt, {1: 0, 2: 1})
    assert metric.tp == {0: 1} and metric.fp == {0: 1} and metric.fn == {1: 1}
    result = metric.compute()
    # class 0: SQ 1, RQ 1/(1 + 0.5) -> PQ 2/3; class 1: 0
    assert result["per_class"][0] == pytest.approx(2 / 3)
    assert result["pq"] == pytest.approx(1 / 3)


def test_iou_exactly_half_is_not_a_match():
    gt = _ids(["11", "00"])
    pred = _ids(["10", "00"])  # IoU = 1/2, not > 0.5
    result = panoptic_quality(pred, {1: 0}, gt, {1: 0})
    assert result["pq"] == 0.0


def test_void_pixels_are_ignored():
    # gt: segment 1 (class 0) and void (segment 2, label 255); prediction spills onto void
    gt = _ids(["1122"])
    pred = _ids(["1111"])
    result = panoptic_quality(pred, {1: 0}, gt, {1: 0, 2: 255}, void_label=255)
    assert result["pq"] == 1.0  # union excludes the void pixels the prediction covers
    # an unmatched prediction mostly on void is not a false positive
    pred = _ids(["0033"])
    result = panoptic_quality(pred, {3: 0}, gt, {1: 0, 2: 255}, void_label=255)
    assert result["per_class"][0] == 0.0
    metric = PanopticQuality(void_label=255)
    metric.update(pred, {3: 0}, gt, {1: 0, 2: 255})
    assert metric.fp == {} and metric.fn == {0: 1}


def test_semantic_inference_combines_class_and_mask_scores():
    class_logits = torch.tensor([[10.0, -10.0, -10.0], [-10.0, 10.0, -10.0]])  # query 0 -> class 0, 1 -> 1
    mask_logits = torch.tensor([[[10.0, -10.0]], [[-10.0, 10.0]]])
    assert semantic_inference(class_logits, mask_logits).tolist() == [[0, 1]]
    assert semantic_inference(class_logits, mask_logits, size=(2, 4)).shape == (2, 4)


def test_panoptic_inference_merges_stuff_and_separates_things():
    # 4 queries: two of stuff class 0 (left half split in two), two things of class 1 (right columns)
    class_logits = torch.full((5, 3), -10.0)
    class_logits[0, 0] = class_logits[1, 0] = 10.0
    class_logits[2, 1] = class_logits[3, 1] = 10.0
    class_logits[4, 2] = 10.0  # ∅
    masks = torch.full((5, 2, 4), -10.0)
    masks[0, 0, :2] = 10
    masks[1, 1, :2] = 10
    masks[2, :, 2] = 10
    masks[3, :, 3] = 10
    masks[4] = 10  # the ∅ query is dropped even though its mask covers everything
    ids, segments = panoptic_inference(class_logits, masks, thing_classes={1})
    assert [(s["label"], s["isthing"]) for s in segments] == [(0, False), (1, True), (1, True)]
    assert ids.tolist() == [[1, 1, 2, 3], [1, 1, 2, 3]]


def test_panoptic_inference_drops_low_scores_and_overlapped_masks():
    class_logits = torch.tensor([[0.0, 0.0, 0.0], [10.0, -10.0, -10.0], [-10.0, 10.0, -10.0]])
    masks = torch.full((3, 2, 2), -10.0)
    masks[0] = 10.0  # low score (1/3): dropped
    masks[1] = 10.0
    masks[2, 0, 0] = 5.0  # mostly covered by query 1 (higher score x mask): fails the overlap test
    ids, segments = panoptic_inference(class_logits, masks, thing_classes={1})
    assert [s["label"] for s in segments] == [0]
    assert (ids == 1).all()


def test_instance_inference_ranks_by_class_times_mask_score():
    class_logits = torch.tensor([[5.0, -5.0, -5.0], [-5.0, 2.0, -5.0]])
    masks = torch.tensor([[[8.0, -8.0]], [[-8.0, 1.0]]])
    scores, labels, binary = instance_inference(class_logits, masks, top_k=2)
    assert labels.tolist() == [0, 1]
    assert scores[0] > scores[1]
    assert binary[0].tolist() == [[True, False]]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="class_logits"):
        semantic_inference(torch.zeros(3), torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="mask_logits"):
        semantic_inference(torch.zeros(3, 4), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="object_threshold"):
        panoptic_inference(torch.zeros(3, 4), torch.zeros(3, 2, 2), {1}, object_threshold=2.0)
    with pytest.raises(ValueError, match="top_k"):
        instance_inference(torch.zeros(3, 4), torch.zeros(3, 2, 2), top_k=0)
    with pytest.raises(ValueError, match="pred_ids"):
        panoptic_quality(torch.zeros(2, 2), {}, torch.zeros(3, 3), {})
