"""The synthetic digit-detection set: boxes cover the ink, determinism, bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.testbeds.digit_detection import load_digit_detection, make_digit_detection
from aicanon.vision.detr_loss import check_targets

pytestmark = pytest.mark.paper("vision-transformers-survey")


def pool():
    g = torch.Generator().manual_seed(0)
    digits = torch.zeros(10, 28, 28, dtype=torch.uint8)
    for i in range(10):  # a filled rectangle per "digit", at a random place in its 28x28 tile
        top, left = torch.randint(2, 10, (2,), generator=g).tolist()
        digits[i, top : top + 14, left : left + 10] = 255
    return digits, torch.arange(10)


def test_boxes_are_the_tight_ink_boxes_and_valid_targets():
    digits, labels = pool()
    images, targets = make_digit_detection(digits, labels, 20, canvas=48, min_digits=1, max_digits=3, min_size=14, max_size=22)
    assert images.shape == (20, 1, 48, 48) and 0 <= images.min() and images.max() <= 1
    check_targets(targets, 20, 10)
    ink_total = 0
    for image, target in zip(images, targets):
        assert 1 <= len(target["labels"]) <= 3
        covered = torch.zeros(48, 48, dtype=torch.bool)
        for cx, cy, w, h in (target["boxes"] * 48).tolist():
            x1, y1, x2, y2 = round(cx - w / 2), round(cy - h / 2), round(cx + w / 2), round(cy + h / 2)
            covered[y1:y2, x1:x2] = True
            assert image[0, y1:y2, x1:x2].max() > 0.1  # each box holds ink
        ink = image[0] > 0.1
        assert not bool((ink & ~covered).any())  # all ink lies in some box
        ink_total += int(ink.sum())
    assert ink_total > 0


def test_boxes_do_not_overlap_by_default():
    digits, labels = pool()
    _, targets = make_digit_detection(digits, labels, 30, canvas=48, max_digits=4, min_size=14, max_size=20)
    from aicanon.vision.detr_loss import box_cxcywh_to_xyxy
    from aicanon.vision.giou import box_iou

    for t in targets:
        xyxy = box_cxcywh_to_xyxy(t["boxes"])
        iou = box_iou(xyxy, xyxy) - torch.eye(len(xyxy))
        assert float(iou.max()) <= 1e-6


def test_same_seed_same_data_and_other_seed_differs():
    digits, labels = pool()
    a = make_digit_detection(digits, labels, 5, canvas=32, min_size=8, max_size=16, seed=3)
    b = make_digit_detection(digits, labels, 5, canvas=32, min_size=8, max_size=16, seed=3)
    c = make_digit_detection(digits, labels, 5, canvas=32, min_size=8, max_size=16, seed=4)
    assert torch.equal(a[0], b[0]) and all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(a[1], b[1]))
    assert not torch.equal(a[0], c[0])


def test_load_from_mnist_classes_are_digits():
    images, targets = load_digit_detection("test", 8, canvas=48, max_digits=3, min_size=14, max_size=22, seed=0)
    assert images.shape == (8, 1, 48, 48)
    labels = torch.cat([t["labels"] for t in targets])
    assert labels.min() >= 0 and labels.max() <= 9


def test_bad_input_raises():
    digits, labels = pool()
    with pytest.raises(ValueError, match=r"digits must be uint8 images \[N, H, W\], got torch.float32"):
        make_digit_detection(digits.float(), labels, 2)
    with pytest.raises(ValueError, match=r"labels must be a tensor \[10\]"):
        make_digit_detection(digits, labels[:3], 2)
    with pytest.raises(ValueError, match="max_size must be <= canvas \\(32\\), got 40"):
        make_digit_detection(digits, labels, 2, canvas=32, min_size=16, max_size=40)
    with pytest.raises(ValueError, match="max_digits must be .*>= 3, got 2"):
        make_digit_detection(digits, labels, 2, min_digits=3, max_digits=2)
    with pytest.raises(TypeError, match="num_images must be an int.*got float"):
        make_digit_detection(digits, labels, 2.0)
    with pytest.raises(ValueError, match="split must be one of"):
        load_digit_detection("val", 2)
