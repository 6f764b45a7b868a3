"""Detection metrics: hand-computed AP, COCO parity (pycocotools), duplicate rate, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.vision.detection_metrics import (
    average_precision,
    coco_average_precision,
    duplicate_rate,
    mean_average_precision,
)

pytestmark = pytest.mark.paper("vision-transformers-survey")


def pred(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "scores": torch.tensor(scores, dtype=torch.float32), "labels": torch.tensor(labels)}


def gt(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels)}


# --------------------------------------------------------------------------- golden values
def test_perfect_detections_give_ap_one():
    g = [gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])]
    p = [pred([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 1])]
    assert mean_average_precision(p, g) == pytest.approx(1.0)  # pycocotools adds spacing(1) to TP + FP
    assert coco_average_precision(p, g) == pytest.approx(1.0)


def test_hand_computed_ap_with_a_false_positive_first():
    # Class 0, two objects: detections by score: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, .5, 1.
    # Envelope: 2/3 for every recall point in [0, 1]: AP = 2/3 over the 101 points.
    g = [gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    p = [pred([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0])]
    assert average_precision(p, g)[0] == pytest.approx(2 / 3)


def test_hand_computed_ap_with_a_missed_object():
    # One TP then nothing: recall reaches 0.5 with precision 1; points 0..0.5 (51 of 101) score 1.
    g = [gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    p = [pred([[0, 0, 10, 10]], [0.9], [0])]
    assert average_precision(p, g)[0] == pytest.approx(51 / 101)


def test_duplicates_and_wrong_class_are_false_positives():
    g = [gt([[0, 0, 10, 10]], [3])]
    dup = [pred([[0, 0, 10, 10], [0, 0, 10, 9]], [0.9, 0.8], [3, 3])]
    assert average_precision(dup, g)[3] == pytest.approx(1.0)  # the duplicate comes after recall 1: no loss at AP
    assert duplicate_rate(dup) == 0.5
    wrong = [pred([[0, 0, 10, 10]], [0.9], [2])]
    assert mean_average_precision(wrong, g) == 0.0  # class 2 has no ground truth: ignored, class 3 AP 0


def test_iou_threshold_matters():
    g = [gt([[0, 0, 10, 10]], [0])]
    p = [pred([[0, 0, 10, 6]], [0.9], [0])]  # IoU 0.6
    assert mean_average_precision(p, g, 0.5) == pytest.approx(1.0)
    assert mean_average_precision(p, g, 0.7) == 0.0
    assert coco_average_precision(p, g) == pytest.approx(0.3)  # thresholds .5, .55, .6 of ten


def test_duplicate_rate_ignores_other_classes_and_low_scores():
    p = [pred([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8, 0.3], [1, 2, 1])]
    assert duplicate_rate(p, score_threshold=0.5) == 0.0
    assert duplicate_rate(p, score_threshold=0.2) == pytest.approx(1 / 3)
    assert duplicate_rate([pred([], [], [])]) == 0.0


@given(seed=st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_ap_is_in_unit_interval_and_invariant_to_image_order(seed):
    g_, p_ = _random_set(seed, images=4)
    ap = mean_average_precision(p_, g_)
    assert 0.0 <= ap <= 1.0
    assert mean_average_precision(p_[::-1], g_[::-1]) == pytest.approx(ap)
    assert coco_average_precision(p_, g_) <= ap + 1e-12  # stricter thresholds never help


def _random_set(seed: int, images: int):
    g = torch.Generator().manual_seed(seed)
    gts, preds = [], []
    for _ in range(images):
        n = int(torch.randint(1, 4, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 50
        boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 20], 1)
        labels = torch.randint(0, 3, (n,), generator=g)
        gts.append({"boxes": boxes, "labels": labels})
        m = int(torch.randint(0, 6, (1,), generator=g))
        idx = torch.randint(0, n, (m,), generator=g)
        jitter = torch.randn(m, 4, generator=g) * 3
        pb = boxes[idx] + jitter
        pb = torch.cat([torch.minimum(pb[:, :2], pb[:, 2:]), torch.maximum(pb[:, :2], pb[:, 2:]) + 0.5], 1)
        pl = torch.where(torch.rand(m, generator=g) < 0.8, labels[idx], torch.randint(0, 3, (m,), generator=g))
        preds.append({"boxes": pb, "scores": torch.rand(m, generator=g), "labels": pl})
    return gts, preds


# --------------------------------------------------------------------------- parity with pycocotools
@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_pycocotools(seed):
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gts, preds = _random_set(seed, images=30)
    images, annotations, results = [], [], []
    for i, (g, p) in enumerate(zip(gts, preds)):
        images.append({"id": i, "width": 100, "height": 100})
        for box, label in zip(g["boxes"].tolist(), g["labels"].tolist()):
            x1, y1, x2, y2 = box
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": label, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for box, score, label in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
            x1, y1, x2, y2 = box
            results.append({"image_id": i, "category_id": label, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in range(3)]}
        coco.createIndex()
        detections = coco.loadRes(results)
        evaluator = COCOeval(coco, detections, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert coco_average_precision(preds, gts) == pytest.approx(evaluator.stats[0], abs=1e-6)
    assert mean_average_precision(preds, gts, 0.5) == pytest.approx(evaluator.stats[1], abs=1e-6)


# --------------------------------------------------------------------------- bad input
def test_bad_input_raises():
    g = [gt([[0, 0, 10, 10]], [0])]
    p = [pred([[0, 0, 10, 10]], [0.9], [0])]
    with pytest.raises(ValueError, match="one entry per image each, got 1 and 2"):
        mean_average_precision(p, g * 2)
    with pytest.raises(TypeError, match="predictions must be a list of dicts"):
        mean_average_precision(p[0], g)
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a dict with keys \('boxes', 'scores', 'labels'\), got \['boxes', 'labels'\]"):
        mean_average_precision([{"boxes": p[0]["boxes"], "labels": p[0]["labels"]}], g)
    with pytest.raises(ValueError, match=r"ground_truths\[0\]\['boxes'\] must be a floating tensor \[n, 4\]"):
        mean_average_precision(p, [{"boxes": torch.zeros(1, 3), "labels": torch.zeros(1)}])
    with pytest.raises(ValueError, match=r"predictions\[0\]\['scores'\] must be a tensor \[1\]"):
        mean_average_precision([{**p[0], "scores": torch.zeros(2)}], g)
    with pytest.raises(ValueError, match="iou_threshold must be in \\(0, 1\\], got 1.5"):
        mean_average_precision(p, g, 1.5)
    with pytest.raises(ValueError, match="score_threshold must be in \\[0, 1\\], got -1"):
        duplicate_rate(p, score_threshold=-1)
    with pytest.raises(ValueError, match="boxes1 must hold boxes"):
        mean_average_precision([pred([[10, 0, 0, 10]], [0.9], [0])], g)
