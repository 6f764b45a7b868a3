"""Tests of aicanon.vision.giou: golden values, invariants, torchvision parity, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.vision.giou import (
    box_area,
    box_iou,
    box_iou_elementwise,
    generalized_box_iou,
    generalized_box_iou_elementwise,
    giou_loss,
    iou_loss,
)

pytestmark = pytest.mark.paper("giou")


def boxes(rows, dtype=torch.float64, requires_grad=False):
    return torch.tensor(rows, dtype=dtype, requires_grad=requires_grad)


# --------------------------------------------------------------------------- golden values
# (A, B, IoU, GIoU), all by hand: I = intersection, U = union, C = enclosing-box area.
GOLDEN = [
    # identical unit squares
    ([0, 0, 1, 1], [0, 0, 1, 1], 1.0, 1.0),
    # unit squares offset by 0.5 in x: I = 0.5, U = 1.5, C = 1.5
    ([0, 0, 1, 1], [0.5, 0, 1.5, 1], 1 / 3, 1 / 3),
    # offset by (0.5, 0.5): I = 0.25, U = 1.75, C = 2.25 -> GIoU = 1/7 - 0.5/2.25 = -5/63
    ([0, 0, 1, 1], [0.5, 0.5, 1.5, 1.5], 1 / 7, -5 / 63),
    # disjoint side by side, gap 1: I = 0, U = 2, C = 3 -> GIoU = -1/3
    ([0, 0, 1, 1], [2, 0, 3, 1], 0.0, -1 / 3),
    # disjoint diagonally: U = 2, C = 9 -> GIoU = -7/9
    ([0, 0, 1, 1], [2, 2, 3, 3], 0.0, -7 / 9),
    # touching edges: I = 0, U = 2, C = 2 -> GIoU = 0
    ([0, 0, 1, 1], [1, 0, 2, 1], 0.0, 0.0),
    # containment: I = 1, U = 4, C = 4 -> GIoU = IoU = 1/4
    ([0, 0, 2, 2], [0.5, 0.5, 1.5, 1.5], 0.25, 0.25),
    # rectangles: A 4x2, B 2x4 crossing at a 2x2 square: I = 4, U = 12, C = 16 -> 1/3 - 4/16
    ([0, 1, 4, 3], [1, 0, 3, 4], 1 / 3, 1 / 3 - 0.25),
]


@pytest.mark.parametrize(("a", "b", "iou", "giou"), GOLDEN)
def test_golden_values_exact_without_eps(a, b, iou, giou):
    a_t, b_t = boxes([a]), boxes([b])
    assert box_iou(a_t, b_t, eps=0.0).item() == pytest.approx(iou, abs=1e-15)
    assert generalized_box_iou(a_t, b_t, eps=0.0).item() == pytest.approx(giou, abs=1e-15)
    assert iou_loss(a_t, b_t, eps=0.0).item() == pytest.approx(1 - iou, abs=1e-15)
    assert giou_loss(a_t, b_t, eps=0.0).item() == pytest.approx(1 - giou, abs=1e-15)


@pytest.mark.parametrize(("a", "b", "iou", "giou"), GOLDEN)
def test_golden_values_with_default_eps(a, b, iou, giou):
    # eps = 1e-7 moves values by at most eps / area, 1e-7 here.
    a_t, b_t = boxes([a]), boxes([b])
    assert box_iou_elementwise(a_t, b_t).item() == pytest.approx(iou, abs=2e-7)
    assert generalized_box_iou_elementwise(a_t, b_t).item() == pytest.approx(giou, abs=2e-7)


def test_pairwise_matches_elementwise_and_shapes():
    a = boxes([[0, 0, 1, 1], [0, 0, 2, 2], [3, 3, 4, 5]])
    b = boxes([[0.5, 0, 1.5, 1], [2, 2, 3, 3]])
    pair_iou, pair_giou = box_iou(a, b), generalized_box_iou(a, b)
    assert pair_iou.shape == pair_giou.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            assert pair_iou[i, j] == box_iou_elementwise(a[i : i + 1], b[j : j + 1])[0]
            assert pair_giou[i, j] == generalized_box_iou_elementwise(a[i], b[j])
    assert box_iou(a, b[:0]).shape == (3, 0)


def test_box_area():
    assert box_area(boxes([[0, 0, 2, 3], [1, 1, 1, 4]])).tolist() == [6.0, 0.0]


def test_elementwise_accepts_leading_batch_dimensions():
    a = torch.rand(2, 3, 2, dtype=torch.float64)
    a = torch.cat([a, a + 1], dim=-1)
    assert generalized_box_iou_elementwise(a, a).shape == (2, 3)
    assert giou_loss(a, a, reduction="none").shape == (2, 3)


# --------------------------------------------------------------------------- degenerate boxes
@pytest.mark.parametrize(
    ("a", "b", "iou", "giou"),
    [
        ([1, 1, 1, 1], [1, 1, 1, 1], 0.0, 0.0),  # two identical points: 0/0 defined as 0
        ([1, 1, 1, 1], [2, 3, 2, 3], 0.0, 0.0),  # two points: U = 0, C = 2 -> GIoU = -C/(C+eps) ~ -1
        ([0, 0, 0, 2], [0, 0, 0, 2], 0.0, 0.0),  # identical zero-width segments
        ([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], 0.0, 0.0),  # a point inside a box: I = 0, U = 1 = C
    ],
)
def test_degenerate_boxes_are_finite_values_and_gradients(a, b, iou, giou):
    a_t = boxes([a], requires_grad=True)
    b_t = boxes([b], requires_grad=True)
    value_iou = box_iou(a_t, b_t)
    value_giou = generalized_box_iou(a_t, b_t)
    assert torch.isfinite(value_iou).all() and torch.isfinite(value_giou).all()
    assert value_iou.item() == pytest.approx(iou, abs=1e-12)
    if a == [1, 1, 1, 1] and b == [2, 3, 2, 3]:
        assert value_giou.item() == pytest.approx(-1.0, abs=1e-6)  # C = 2, so -2/(2 + eps)
    else:
        assert value_giou.item() == pytest.approx(giou, abs=1e-12)
    loss = giou_loss(a_t, b_t) + iou_loss(a_t, b_t)
    loss.backward()
    assert torch.isfinite(a_t.grad).all() and torch.isfinite(b_t.grad).all()


def test_identical_points_loss_is_one_in_float32_too():
    point = torch.tensor([[3.0, 3.0, 3.0, 3.0]], requires_grad=True)
    loss = giou_loss(point, point.detach())
    loss.backward()
    assert loss.item() == 1.0
    assert torch.isfinite(point.grad).all()


def test_eps_zero_gives_nan_for_identical_points():
    point = boxes([[1, 1, 1, 1]])
    assert torch.isnan(box_iou(point, point, eps=0.0)).all()


# --------------------------------------------------------------------------- the paper's point
def test_iou_loss_has_zero_gradient_for_disjoint_boxes_giou_does_not():
    target = boxes([[2, 0, 3, 1]])
    for pred_rows in ([[0, 0, 1, 1]], [[-5, -5, -4, -3]], [[0, 2, 1, 3]]):
        pred = boxes(pred_rows, requires_grad=True)
        iou_loss(pred, target).backward()
        assert torch.equal(pred.grad, torch.zeros_like(pred))
        pred.grad = None
        giou_loss(pred, target).backward()
        assert pred.grad.abs().sum() > 0


def test_giou_gradient_pulls_disjoint_prediction_towards_target():
    # Prediction left of the target. By hand: GIoU = U/C - 1 with U = (x2 - x1) + 1, C = 3 - x1,
    # so d L_GIoU / d x2 = -1/C = -1/3 (the right edge grows towards the target) and
    # d L_GIoU / d x1 = (C - U)/C^2 = 1/9 (the box first grows to cover the gap).
    pred = boxes([[0, 0, 1, 1]], requires_grad=True)
    giou_loss(pred, boxes([[2, 0, 3, 1]])).backward()
    assert pred.grad[0, 2].item() == pytest.approx(-1 / 3)
    assert pred.grad[0, 0].item() == pytest.approx(1 / 9)
    # and a step reduces the loss
    with torch.no_grad():
        stepped = pred - 0.1 * pred.grad
    assert giou_loss(stepped, boxes([[2, 0, 3, 1]])) < giou_loss(pred.detach(), boxes([[2, 0, 3, 1]]))


def test_loss_orders_swapped_prediction_corners_algorithm_2_step_1():
    target = boxes([[0, 0, 2, 2]])
    ordered = boxes([[0.5, 0.2, 1.7, 2.5]])
    swapped = boxes([[1.7, 2.5, 0.5, 0.2]])
    x_swapped = boxes([[1.7, 0.2, 0.5, 2.5]])
    for loss in (giou_loss, iou_loss):
        expected = loss(ordered, target)
        assert loss(swapped, target) == expected
        assert loss(x_swapped, target) == expected


def test_l2_distance_does_not_determine_iou_figure_1():
    # Paper Figure 1: the same l2 distance between corner vectors, different IoU and GIoU.
    target = boxes([[0, 0, 4, 4]])
    shifted = boxes([[2, 0, 6, 4]])  # corners moved by (2, 0, 2, 0): ||.||_2 = sqrt(8)
    grown = boxes([[0, 0, 6, 6]])  # corners moved by (0, 0, 2, 2): ||.||_2 = sqrt(8)
    assert torch.linalg.norm(shifted - target) == torch.linalg.norm(grown - target)
    assert box_iou(target, shifted).item() != pytest.approx(box_iou(target, grown).item())


# --------------------------------------------------------------------------- properties (hypothesis)
coordinate = st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False)
side = st.floats(0.5, 100.0, allow_nan=False, allow_infinity=False)


@st.composite
def box_lists(draw, min_size=1, max_size=6):
    n = draw(st.integers(min_size, max_size))
    rows = []
    for _ in range(n):
        x, y, w, h = draw(coordinate), draw(coordinate), draw(side), draw(side)
        rows.append([x, y, x + w, y + h])
    return boxes(rows)


@settings(max_examples=200, deadline=None)
@given(box_lists(), box_lists())
def test_property_range_and_order(a, b):
    iou, giou = box_iou(a, b), generalized_box_iou(a, b)
    assert (giou > -1).all()
    assert (giou <= iou + 1e-12).all()
    assert (iou <= 1).all() and (iou >= 0).all()


@settings(max_examples=200, deadline=None)
@given(box_lists())
def test_property_identity(a):
    # GIoU(A, A) = IoU(A, A) = 1 (up to eps / area <= 4e-7 here)
    assert torch.allclose(generalized_box_iou_elementwise(a, a), torch.ones(len(a), dtype=a.dtype), atol=1e-6)
    assert torch.allclose(generalized_box_iou(a, a, eps=0.0).diagonal(), torch.ones(len(a), dtype=a.dtype))
    assert giou_loss(a, a, reduction="none").abs().max() < 1e-6


@settings(max_examples=200, deadline=None)
@given(box_lists(), box_lists())
def test_property_symmetry(a, b):
    assert torch.equal(box_iou(a, b), box_iou(b, a).T)
    assert torch.equal(generalized_box_iou(a, b), generalized_box_iou(b, a).T)


@settings(max_examples=200, deadline=None)
@given(box_lists(), box_lists(), st.floats(-50, 50), st.floats(-50, 50))
def test_property_translation_invariance(a, b, dx, dy):
    shift = boxes([[dx, dy, dx, dy]])
    assert torch.allclose(generalized_box_iou(a + shift, b + shift), generalized_box_iou(a, b), atol=1e-9)
    assert torch.allclose(box_iou(a + shift, b + shift), box_iou(a, b), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(box_lists(), box_lists(), st.floats(0.05, 20.0))
def test_property_scale_invariance(a, b, scale):
    # Exact in the paper's formula (eps = 0); eps > 0 breaks it only by eps / area.
    assert torch.allclose(
        generalized_box_iou(a * scale, b * scale, eps=0.0), generalized_box_iou(a, b, eps=0.0), atol=1e-9
    )
    assert torch.allclose(box_iou(a * scale, b * scale, eps=0.0), box_iou(a, b, eps=0.0), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(box_lists(min_size=3, max_size=3), box_lists(min_size=3, max_size=3))
def test_property_loss_range_and_relation_to_metric(pred, target):
    loss = giou_loss(pred, target, reduction="none")
    assert (loss >= 0).all() and (loss < 2).all()
    assert torch.allclose(loss, 1 - generalized_box_iou_elementwise(pred, target))
    assert torch.allclose(iou_loss(pred, target, reduction="none"), 1 - box_iou_elementwise(pred, target))
    assert (iou_loss(pred, target, reduction="none") <= loss + 1e-12).all()


@settings(max_examples=100, deadline=None)
@given(box_lists(min_size=2, max_size=2), box_lists(min_size=2, max_size=2))
def test_property_gradient_finite(pred, target):
    pred = pred.clone().requires_grad_(True)
    giou_loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all()


def test_reductions():
    pred = boxes([[0, 0, 1, 1], [0, 0, 2, 2]])
    target = boxes([[0.5, 0, 1.5, 1], [3, 3, 4, 4]])
    per_pair = giou_loss(pred, target, reduction="none")
    assert giou_loss(pred, target, reduction="sum") == per_pair.sum()
    assert giou_loss(pred, target) == per_pair.mean()
    empty = boxes([[0, 0, 1, 1]])[:0]
    assert giou_loss(empty, empty).item() == 0.0
    assert giou_loss(empty, empty, reduction="none").shape == (0,)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_dtypes(dtype):
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=dtype)
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0]], dtype=dtype)
    assert generalized_box_iou(a, b).dtype == dtype
    assert float(generalized_box_iou(a, b)) == pytest.approx(1 / 3, abs=1e-2)


# --------------------------------------------------------------------------- torchvision parity
torchvision_ops = pytest.importorskip("torchvision.ops")


def random_boxes(n, generator, dtype, scale=100.0):
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale / 2 + 1.0
    return torch.cat([xy, xy + wh], dim=1).to(dtype)


PARITY_DTYPES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]


@pytest.mark.parity
@pytest.mark.parametrize(("dtype", "atol"), PARITY_DTYPES)
def test_parity_box_iou_and_generalized_box_iou(dtype, atol):
    g = torch.Generator().manual_seed(0)
    a, b = random_boxes(64, g, dtype), random_boxes(48, g, dtype)
    # eps = 0 is torchvision's formula op for op
    assert torch.equal(box_iou(a, b, eps=0.0), torchvision_ops.box_iou(a, b))
    assert torch.equal(generalized_box_iou(a, b, eps=0.0), torchvision_ops.generalized_box_iou(a, b))
    # default eps = 1e-7 moves values by at most eps / union <= 1e-7 for boxes of at least unit area
    atol = max(atol, 1e-7)
    torch.testing.assert_close(box_iou(a, b), torchvision_ops.box_iou(a, b), atol=atol, rtol=0)
    torch.testing.assert_close(
        generalized_box_iou(a, b), torchvision_ops.generalized_box_iou(a, b), atol=atol, rtol=0
    )


@pytest.mark.parity
@pytest.mark.parametrize(("dtype", "atol"), PARITY_DTYPES)
def test_parity_metric_gradients(dtype, atol):
    g = torch.Generator().manual_seed(1)
    a0, b0 = random_boxes(16, g, dtype), random_boxes(12, g, dtype)
    weights = torch.rand(16, 12, generator=g, dtype=torch.float64).to(dtype)
    grads = []
    for fn in (generalized_box_iou, torchvision_ops.generalized_box_iou, box_iou, torchvision_ops.box_iou):
        a, b = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        value = fn(a, b, eps=0.0) if fn in (generalized_box_iou, box_iou) else fn(a, b)
        (value * weights).sum().backward()
        grads.append((a.grad, b.grad))
    for ours, reference in ((grads[0], grads[1]), (grads[2], grads[3])):
        torch.testing.assert_close(ours[0], reference[0], atol=atol, rtol=0)
        torch.testing.assert_close(ours[1], reference[1], atol=atol, rtol=0)


@pytest.mark.parity
@pytest.mark.parametrize(("dtype", "atol"), PARITY_DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("eps", [1e-7, 1e-3])
def test_parity_giou_loss_values_and_gradients(dtype, atol, reduction, eps):
    g = torch.Generator().manual_seed(2)
    pred0 = random_boxes(256, g, dtype)
    target0 = random_boxes(256, g, dtype)
    # include disjoint, nested and identical pairs
    pred0[:8] = target0[:8]
    pred0[8:16] = target0[8:16] + 300.0
    results = []
    for fn in (giou_loss, torchvision_ops.generalized_box_iou_loss):
        pred, target = pred0.clone().requires_grad_(True), target0.clone().requires_grad_(True)
        loss = fn(pred, target, reduction=reduction, eps=eps)
        (loss * torch.linspace(0.5, 1.5, loss.numel(), dtype=dtype).reshape(loss.shape)).sum().backward()
        results.append((loss.detach(), pred.grad, target.grad))
    for ours, reference in zip(results[0], results[1]):
        torch.testing.assert_close(ours, reference, atol=atol, rtol=0)


# Pixel-coordinate boxes (from the bug report): every area is ~6e5, beyond float16's 65,504.
PIXEL_BOXES = [[285.35, 185.58, 1193.51, 851.46], [279.24, 197.98, 1189.47, 849.20]]
# float16 keeps 11 significant bits, bfloat16 8; the results, in [-1, 1], are compared at that resolution.
HALF_DTYPES = [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)]


@pytest.mark.parity
@pytest.mark.parametrize(("dtype", "atol"), HALF_DTYPES)
def test_parity_half_precision_pixel_boxes_computed_in_float32(dtype, atol):
    # Areas overflow float16 unless computed in float32, as torchvision does: no NaN, torchvision's
    # values, returned in the input dtype (torchvision returns float32 for these inputs).
    g = torch.Generator().manual_seed(3)
    a = torch.cat(
        [torch.tensor(PIXEL_BOXES, dtype=torch.float64), random_boxes(30, g, torch.float64, 1000.0)]
    )
    b = torch.cat(
        [torch.tensor(PIXEL_BOXES[::-1], dtype=torch.float64), random_boxes(30, g, torch.float64, 1000.0)]
    )
    a, b = a.to(dtype), b.to(dtype)
    pairs = (
        (box_iou(a, b), torchvision_ops.box_iou(a, b)),
        (generalized_box_iou(a, b), torchvision_ops.generalized_box_iou(a, b)),
        (giou_loss(a, b, reduction="none"), torchvision_ops.generalized_box_iou_loss(a, b)),
        (giou_loss(a, b), torchvision_ops.generalized_box_iou_loss(a, b, reduction="mean")),
    )
    for ours, reference in pairs:
        assert ours.dtype == dtype
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours.float(), reference.float(), atol=atol, rtol=0)
    # the two boxes of the report overlap closely: IoU ~ 0.966 (float32: torchvision's value)
    assert float(box_iou(a[:1], b[:1])) == pytest.approx(0.966, abs=atol)
    # Predictions near their targets (a trained detector's case): the loss is a small difference
    # of large areas, where bfloat16 arithmetic (8 significant bits) is off by ~2e-2.
    target = random_boxes(2000, g, torch.float64, 1000.0)
    pred = target + torch.randn(target.shape, generator=g, dtype=torch.float64) * 5
    # valid boxes (torchvision does not re-order a prediction's corners, Algorithm 2 step 1)
    pred = torch.cat(
        [torch.minimum(pred[:, :2], pred[:, 2:]), torch.maximum(pred[:, :2], pred[:, 2:])], dim=1
    )
    pred, target = pred.to(dtype), target.to(dtype)
    torch.testing.assert_close(
        giou_loss(pred, target, reduction="none").float(),
        torchvision_ops.generalized_box_iou_loss(pred, target).float(),
        atol=atol / 2,
        rtol=0,
    )
    # gradients flow back in the input dtype and are finite
    pred = a.clone().requires_grad_(True)
    giou_loss(pred, b).backward()
    assert pred.grad.dtype == dtype and torch.isfinite(pred.grad).all()


@pytest.mark.parity
def test_parity_giou_loss_empty_and_single_box():
    empty = torch.zeros(0, 4)
    assert (
        giou_loss(empty, empty).item()
        == torchvision_ops.generalized_box_iou_loss(empty, empty, reduction="mean").item()
    )
    a = torch.tensor([1.0, 2.0, 5.0, 7.0])
    b = torch.tensor([0.0, 3.0, 4.0, 9.0])
    torch.testing.assert_close(
        giou_loss(a, b, reduction="none"), torchvision_ops.generalized_box_iou_loss(a, b)
    )


# --------------------------------------------------------------------------- bad input
VALID = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
PAIRWISE = [box_iou, generalized_box_iou]
ELEMENTWISE = [box_iou_elementwise, generalized_box_iou_elementwise]
LOSSES = [iou_loss, giou_loss]
ALL = PAIRWISE + ELEMENTWISE + LOSSES


def names(fn):
    return ("pred", "target") if fn in LOSSES else ("boxes1", "boxes2")


@pytest.mark.parametrize("fn", ALL)
def test_rejects_non_tensor(fn):
    first, second = names(fn)
    with pytest.raises(TypeError, match=f"{first} must be a torch.Tensor.*got list"):
        fn([[0, 0, 1, 1]], VALID)
    with pytest.raises(TypeError, match=f"{second} must be a torch.Tensor.*got ndarray"):
        fn(VALID, VALID.numpy())


@pytest.mark.parametrize("fn", ALL)
def test_rejects_integer_dtype(fn):
    first, _ = names(fn)
    with pytest.raises(TypeError, match=f"{first} must be a floating-point tensor.*torch.int64"):
        fn(VALID.long(), VALID)


@pytest.mark.parametrize("fn", ALL)
def test_rejects_mixed_dtypes(fn):
    with pytest.raises(TypeError, match="must share a dtype.*float32 and torch.float64"):
        fn(VALID, VALID.double())


@pytest.mark.parametrize("fn", ALL)
def test_rejects_wrong_last_dimension(fn):
    first, _ = names(fn)
    with pytest.raises(ValueError, match=rf"{first} must have a last dimension of size 4.*\(1, 5\)"):
        fn(torch.zeros(1, 5), VALID)


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_rejects_non_matrix(fn):
    with pytest.raises(ValueError, match=r"boxes2 must have shape \[N, 4\], got shape \(2, 1, 4\)"):
        fn(VALID, torch.zeros(2, 1, 4))


@pytest.mark.parametrize("fn", ELEMENTWISE + LOSSES)
def test_elementwise_rejects_shape_mismatch(fn):
    with pytest.raises(ValueError, match=r"must have the same shape.*\(1, 4\) and \(2, 4\)"):
        fn(VALID, VALID.repeat(2, 1))


@pytest.mark.parametrize("fn", PAIRWISE + ELEMENTWISE)
def test_metrics_reject_reversed_boxes_naming_argument(fn):
    bad = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]])
    good = VALID.repeat(2, 1)
    with pytest.raises(
        ValueError, match=r"boxes1 must hold boxes .* x1 <= x2 .*got \[2.0, 0.0, 1.0, 1.0\] at index 1"
    ):
        fn(bad, good)
    with pytest.raises(ValueError, match="boxes2 must hold boxes"):
        fn(good, torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_reject_non_finite(fn, value):
    first, second = names(fn)
    bad = torch.tensor([[0.0, 0.0, value, 1.0]])
    with pytest.raises(ValueError, match=f"{first} must have finite coordinates.*index 0"):
        fn(bad, VALID)
    with pytest.raises(ValueError, match=f"{second} must have finite coordinates"):
        fn(VALID, bad)


@pytest.mark.parametrize("fn", LOSSES)
def test_losses_reject_reversed_target_but_accept_reversed_pred(fn):
    reversed_box = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="target must hold boxes"):
        fn(VALID, reversed_box)
    assert fn(reversed_box, VALID).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize(
    ("eps", "error"),
    [
        (-1e-7, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("1e-7", TypeError),
        (True, TypeError),
    ],
)
def test_rejects_bad_eps(fn, eps, error):
    with pytest.raises(error, match="eps must be"):
        fn(VALID, VALID, eps=eps)


@pytest.mark.parametrize("fn", LOSSES)
def test_losses_reject_bad_reduction(fn):
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        fn(VALID, VALID, reduction="avg")


def test_box_area_rejects_bad_input():
    with pytest.raises(TypeError, match="boxes must be a torch.Tensor"):
        box_area([0, 0, 1, 1])
    with pytest.raises(ValueError, match="boxes must hold boxes"):
        box_area(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
