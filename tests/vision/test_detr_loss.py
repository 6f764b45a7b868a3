"""DETR's Hungarian matcher and set criterion: golden values, invariants, parity with transformers, bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.vision.detr import DetrOutput
from aicanon.vision.detr_loss import (
    HungarianMatcher,
    SequentialMatcher,
    SetCriterion,
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    check_targets,
)

pytestmark = pytest.mark.paper("vision-transformers-survey")


def random_batch(seed: int, batch: int = 2, queries: int = 6, classes: int = 4, counts=(3, 0)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, queries, classes + 1, generator=g)
    boxes = torch.cat([0.2 + 0.6 * torch.rand(batch, queries, 2, generator=g), 0.05 + 0.3 * torch.rand(batch, queries, 2, generator=g)], -1)
    targets = []
    for n in counts:
        tb = torch.cat([0.2 + 0.6 * torch.rand(n, 2, generator=g), 0.05 + 0.3 * torch.rand(n, 2, generator=g)], -1)
        targets.append({"labels": torch.randint(0, classes, (n,), generator=g), "boxes": tb})
    return logits, boxes, targets


# --------------------------------------------------------------------------- golden values and invariants
def test_box_conversions_round_trip():
    b = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    torch.testing.assert_close(box_cxcywh_to_xyxy(b), torch.tensor([[0.4, 0.3, 0.6, 0.7]]))
    torch.testing.assert_close(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(b)), b)


def test_matcher_finds_the_obvious_assignment():
    # Query 2 sits on target 0, query 0 on target 1: the matching must pair them so.
    boxes = torch.tensor([[[0.7, 0.7, 0.2, 0.2], [0.1, 0.9, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2]]])
    logits = torch.zeros(1, 3, 3)
    targets = [{"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]])}]
    (rows, cols), = HungarianMatcher()(logits, boxes, targets)
    assert rows.tolist() == [0, 2] and cols.tolist() == [1, 0]


@given(seed=st.integers(0, 10_000), n=st.integers(1, 4))
@settings(max_examples=25, deadline=None)
def test_matcher_is_optimal_against_brute_force(seed, n):
    logits, boxes, targets = random_batch(seed, batch=1, queries=4, counts=(n,))
    matcher = HungarianMatcher()
    cost = matcher.cost_matrices(logits, boxes, targets)[0]
    (rows, cols), = matcher(logits, boxes, targets)
    assert len(rows) == n and len(set(rows.tolist())) == n
    best = min(sum(cost[p[j], j] for j in range(n)) for p in itertools.permutations(range(4), n))
    torch.testing.assert_close(cost[rows, cols].sum(), torch.as_tensor(best), atol=1e-5, rtol=1e-5)


def test_criterion_golden_value_for_a_perfect_single_match():
    # One query, one target, the box exact: L1 = 0, GIoU loss = 0, CE = -log softmax(logits)[label].
    logits = torch.tensor([[[2.0, 0.0, 0.0]]])
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2]]])
    targets = [{"labels": torch.tensor([0]), "boxes": boxes[0].clone()}]
    total, parts = SetCriterion(2, eps=0.0)(DetrOutput(logits, boxes), targets)
    expected_ce = -torch.log_softmax(logits[0, 0], -1)[0]
    torch.testing.assert_close(parts["loss_ce"], expected_ce)
    assert parts["loss_bbox"].item() == 0.0 and abs(parts["loss_giou"].item()) < 1e-6
    torch.testing.assert_close(total, expected_ce, atol=1e-6, rtol=1e-6)


def test_no_object_weight_is_eos_coef():
    # No targets: every query must predict ∅; CE is a weighted mean so eos_coef cancels for one class only.
    logits = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, -1.0]]])
    boxes = torch.full((1, 2, 4), 0.3)
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
    _, parts = SetCriterion(2)(DetrOutput(logits, boxes), targets)
    torch.testing.assert_close(parts["loss_ce"], -torch.log_softmax(logits[0], -1)[:, 2].mean())
    assert parts["loss_bbox"].item() == 0.0 and parts["loss_giou"].item() == 0.0


def test_loss_is_invariant_to_the_order_of_predictions_and_targets():
    logits, boxes, targets = random_batch(3, counts=(3, 2))
    criterion = SetCriterion(4)
    total, _ = criterion(DetrOutput(logits, boxes), targets)
    perm = torch.tensor([5, 2, 0, 1, 4, 3])
    shuffled = [{"labels": t["labels"].flip(0), "boxes": t["boxes"].flip(0)} for t in targets]
    total_perm, _ = criterion(DetrOutput(logits[:, perm], boxes[:, perm]), shuffled)
    torch.testing.assert_close(total, total_perm)


def test_sequential_matcher_is_fixed_and_depends_on_order():
    logits, boxes, targets = random_batch(4, counts=(3, 0))
    (rows, cols), (r2, c2) = SequentialMatcher()(logits, boxes, targets)
    assert rows.tolist() == cols.tolist() == [0, 1, 2] and len(r2) == 0


def test_aux_losses_add_up():
    logits, boxes, targets = random_batch(5)
    criterion = SetCriterion(4)
    out = DetrOutput(logits, boxes, aux=[(logits.flip(1), boxes.flip(1))])
    total, parts = criterion(out, targets)
    assert set(parts) == {"loss_ce", "loss_bbox", "loss_giou", "loss_ce_0", "loss_bbox_0", "loss_giou_0"}
    expected = sum(w * (parts[k] + parts[k + "_0"]) for k, w in (("loss_ce", 1), ("loss_bbox", 5), ("loss_giou", 2)))
    torch.testing.assert_close(total, expected)


# --------------------------------------------------------------------------- parity with transformers
def _hf_targets(targets):
    return [{"class_labels": t["labels"], "boxes": t["boxes"]} for t in targets]


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_matcher_with_transformers(seed):
    pytest.importorskip("transformers")
    from transformers.loss.loss_for_object_detection import HungarianMatcher as Reference

    logits, boxes, targets = random_batch(seed, batch=3, queries=7, counts=(3, 0, 5))
    ours = HungarianMatcher(1, 5, 2, eps=0.0)(logits, boxes, targets)
    ref = Reference(class_cost=1, bbox_cost=5, giou_cost=2)({"logits": logits, "pred_boxes": boxes}, _hf_targets(targets))
    for (r, c), (rr, rc) in zip(ours, ref):
        assert r.tolist() == rr.tolist() and c.tolist() == rc.tolist()


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1])
def test_parity_loss_values_and_gradients_with_transformers(seed):
    pytest.importorskip("transformers")
    from types import SimpleNamespace

    from transformers.loss.loss_for_object_detection import ForObjectDetectionLoss

    logits, boxes, targets = random_batch(seed, batch=2, queries=6, counts=(3, 2))
    aux_logits, aux_boxes, _ = random_batch(seed + 100, batch=2, queries=6, counts=(0, 0))
    config = SimpleNamespace(
        class_cost=1, bbox_cost=5, giou_cost=2, num_labels=4, eos_coefficient=0.1,
        bbox_loss_coefficient=5, giou_loss_coefficient=2, auxiliary_loss=True, decoder_layers=2,
    )
    leaves = [t.clone().requires_grad_(True) for t in (logits, boxes, aux_logits, aux_boxes)]
    ref_leaves = [t.clone().requires_grad_(True) for t in (logits, boxes, aux_logits, aux_boxes)]
    total, parts = SetCriterion(4, eps=0.0)(DetrOutput(leaves[0], leaves[1], aux=[(leaves[2], leaves[3])]), targets)
    l0, b0, la, ba = ref_leaves
    ref_total, ref_parts, _ = ForObjectDetectionLoss(
        l0, _hf_targets(targets), "cpu", b0, config, torch.stack([la, l0]), torch.stack([ba, b0])
    )
    torch.testing.assert_close(total, ref_total, atol=1e-5, rtol=1e-5)
    for key in parts:
        torch.testing.assert_close(parts[key], ref_parts[key], atol=1e-5, rtol=1e-5, msg=key)
    total.backward()
    ref_total.backward()
    for ours, ref in zip(leaves, ref_leaves):
        torch.testing.assert_close(ours.grad, ref.grad, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- bad input
def test_bad_targets_raise():
    logits, boxes, targets = random_batch(0)
    criterion = SetCriterion(4)
    out = DetrOutput(logits, boxes)
    with pytest.raises(ValueError, match="targets must have one dict per image: expected 2, got 1"):
        criterion(out, targets[:1])
    with pytest.raises(TypeError, match="targets must be a list of dicts"):
        criterion(out, targets[0])
    bad = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[10.0, 20.0, 30.0, 40.0]])}, targets[1]]
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\] must be \(cx, cy, w, h\) normalised to \[0, 1\], got values in \[10, 40\]"):
        criterion(out, bad)
    bad = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.0, 0.1]])}, targets[1]]
    with pytest.raises(ValueError, match="width and height > 0"):
        criterion(out, bad)
    bad = [{"labels": torch.tensor([1.0]), "boxes": torch.tensor([[0.5, 0.5, 0.1, 0.1]])}, targets[1]]
    with pytest.raises(TypeError, match=r"targets\[0\]\['labels'\] must be an int64 tensor \[n\], got torch.float32"):
        criterion(out, bad)
    bad = [{"labels": torch.tensor([7]), "boxes": torch.tensor([[0.5, 0.5, 0.1, 0.1]])}, targets[1]]
    with pytest.raises(ValueError, match=r"must be in \[0, 4\), got \[7\]"):
        criterion(out, bad)
    with pytest.raises(ValueError, match="with keys 'labels' and 'boxes', got \\['boxes'\\]"):
        check_targets([{"boxes": torch.zeros(0, 4)}], 1)


def test_bad_predictions_raise():
    logits, boxes, targets = random_batch(0)
    with pytest.raises(ValueError, match=r"boxes must be \[batch, queries, 4\] = \(2, 6, 4\), got \(2, 5, 4\)"):
        HungarianMatcher()(logits, boxes[:, :5], targets)
    with pytest.raises(ValueError, match="must be finite"):
        HungarianMatcher()(logits * float("nan"), boxes, targets)
    with pytest.raises(TypeError, match="output must be a DetrOutput, got tuple"):
        SetCriterion(4)((logits, boxes), targets)
    with pytest.raises(ValueError, match="logits must have num_classes \\+ 1 = 6 classes, got 5"):
        SetCriterion(5)(DetrOutput(logits, boxes), targets)
    with pytest.raises(ValueError, match="must not all be 0"):
        HungarianMatcher(0, 0, 0)
    with pytest.raises(ValueError, match="eos_coef must be in"):
        SetCriterion(4, eos_coef=2.0)
