"""DeiT: the distillation losses by hand and their invariants (hypothesis), the token layout and the
joint classifier, Table 1 sizes (timm's parameter counts), timm parity of logits and gradients (eval
and distilled training) on tiny random models, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.deit import (
    DistilledVisionTransformer,
    deit,
    from_timm,
    hard_distillation_loss,
    soft_distillation_loss,
)
from aicanon.vision.vit import VisionTransformer

pytestmark = pytest.mark.paper("visual-transformer-survey")

TINY = {
    "img_size": 32,
    "patch_size": 8,
    "in_chans": 3,
    "num_classes": 5,
    "embed_dim": 24,
    "depth": 2,
    "num_heads": 3,
}


def tiny(**kwargs) -> DistilledVisionTransformer:
    return DistilledVisionTransformer(**{**TINY, **kwargs})


# --- golden values -------------------------------------------------------------------------------


def test_hard_distillation_loss_by_hand():
    cls, dist = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([0])
    # teacher says class 1: both heads agree with their targets, CE = log(1 + e^-2) each.
    assert math.isclose(
        hard_distillation_loss(cls, dist, labels, torch.tensor([[0.0, 5.0]])).item(),
        math.log1p(math.exp(-2)),
        rel_tol=1e-6,
    )
    # teacher says class 0: the distillation head is wrong, CE = log(1 + e^2).
    expected = 0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(2)))
    assert math.isclose(
        hard_distillation_loss(cls, dist, labels, torch.tensor([[5.0, 0.0]])).item(), expected, rel_tol=1e-6
    )


def test_soft_distillation_loss_by_hand():
    cls, dist, labels = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([0])
    teacher = torch.tensor([[math.log(3.0), 0.0]])  # tempered at tau=1: (3/4, 1/4)
    ce = math.log1p(math.exp(-1))
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    value = soft_distillation_loss(cls, dist, labels, teacher, temperature=1.0, alpha=0.5).item()
    assert math.isclose(value, 0.5 * ce + 0.5 * kl, rel_tol=1e-6)
    # tau^2 scaling: at tau = 2 the teacher tempers to softmax([log 3 / 2, 0]).
    p = 1 / (1 + 3**-0.5)
    kl2 = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    value = soft_distillation_loss(cls, dist, labels, teacher, temperature=2.0, alpha=0.5).item()
    assert math.isclose(value, 0.5 * ce + 0.5 * 4 * kl2, rel_tol=1e-6)


@pytest.mark.parametrize(
    "name, distilled, params", [("Ti", True, 5_910_800), ("Ti", False, 5_717_416), ("S", True, 22_436_432)]
)
def test_table_1_sizes_parameter_counts(name, distilled, params):
    # built on CPU: ViT's stochastic-depth schedule reads floats from a tensor, which the meta device cannot
    model = deit(name, distilled=distilled)
    assert isinstance(model, DistilledVisionTransformer) == distilled
    assert isinstance(model, VisionTransformer)
    assert sum(p.numel() for p in model.parameters()) == params


# --- invariants ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 10.0),
    shift=st.floats(-5.0, 5.0),
    classes=st.integers(2, 6),
)
def test_hard_loss_depends_on_the_teacher_only_through_its_argmax(seed, scale, shift, classes):
    g = torch.Generator().manual_seed(seed)
    cls, dist, teacher = (torch.randn(4, classes, generator=g) for _ in range(3))
    labels = torch.randint(0, classes, (4,), generator=g)
    a = hard_distillation_loss(cls, dist, labels, teacher)
    b = hard_distillation_loss(cls, dist, labels, teacher * scale + shift)
    assert torch.allclose(a, b)
    # when the teacher agrees with the labels the two heads are trained alike
    agree = F.one_hot(labels, classes).float()
    both = hard_distillation_loss(cls, dist, labels, agree)
    assert torch.allclose(both, 0.5 * (F.cross_entropy(cls, labels) + F.cross_entropy(dist, labels)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 1.0), tau=st.floats(0.5, 5.0))
def test_soft_loss_kl_is_nonnegative_and_vanishes_when_matching_the_teacher(seed, alpha, tau):
    g = torch.Generator().manual_seed(seed)
    cls, dist, teacher = (torch.randn(3, 4, generator=g) for _ in range(3))
    labels = torch.randint(0, 4, (3,), generator=g)
    ce = (1 - alpha) * F.cross_entropy(cls, labels)
    assert soft_distillation_loss(cls, dist, labels, teacher, tau, alpha) >= ce - 1e-5
    torch.testing.assert_close(
        soft_distillation_loss(cls, teacher, labels, teacher, tau, alpha), ce, atol=1e-5, rtol=0
    )


def test_teacher_gets_no_gradient():
    teacher = torch.randn(2, 3, requires_grad=True)
    cls, dist = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3, requires_grad=True)
    labels = torch.tensor([0, 2])
    (
        hard_distillation_loss(cls, dist, labels, teacher)
        + soft_distillation_loss(cls, dist, labels, teacher)
    ).backward()
    assert teacher.grad is None and cls.grad is not None and dist.grad is not None


def test_token_layout_and_joint_classifier():
    torch.manual_seed(0)
    model = tiny().eval()
    with torch.no_grad():
        for head in (model.head, model.head_dist):
            head.weight.normal_()
    x = torch.randn(3, 3, 32, 32)
    tokens = model.embed(x)
    assert tokens.shape == (3, 2 + 16, 24)
    patches = model.patch_embed(x)
    torch.testing.assert_close(tokens[:, 0], (model.cls_token + model.pos_embed[:, 0]).expand(3, 1, 24)[:, 0])
    torch.testing.assert_close(
        tokens[:, 1], (model.dist_token + model.pos_embed[:, 1]).expand(3, 1, 24)[:, 0]
    )
    torch.testing.assert_close(tokens[:, 2:], patches + model.pos_embed[:, 2:])
    cls, dist = model.forward_heads(x)
    assert not torch.allclose(cls, dist)  # two heads on two tokens
    torch.testing.assert_close(model(x), (cls + dist) / 2)
    proba = model.predict_proba(x)
    torch.testing.assert_close(proba, (cls.softmax(-1) + dist.softmax(-1)) / 2)
    torch.testing.assert_close(proba.sum(-1), torch.ones(3))
    assert model.feature_maps(x)[8].shape == (3, 24, 4, 4)


def test_distillation_token_learns_the_teacher():
    # Trained with hard distillation toward a teacher that contradicts the labels, the distillation
    # head follows the teacher and the class head the labels (Section 4).
    torch.manual_seed(0)
    model = tiny(num_classes=2, img_size=16)
    x = torch.randn(16, 3, 16, 16)
    labels = (x[:, 0].mean((1, 2)) > 0).long()
    teacher = F.one_hot(1 - labels, 2).float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        cls, dist = model.forward_heads(x)
        loss = hard_distillation_loss(cls, dist, labels, teacher)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    cls, dist = model.forward_heads(x)
    assert (cls.argmax(-1) == labels).float().mean() > 0.9
    assert (dist.argmax(-1) == 1 - labels).float().mean() > 0.9


# --- reference parity ----------------------------------------------------------------------------


def _timm_pair(**kwargs):
    timm = pytest.importorskip("timm")
    cfg = {**TINY, **kwargs}
    ref = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, **cfg)
    ours = DistilledVisionTransformer(**cfg)
    with torch.no_grad():  # timm zero-initialises nothing here, but make every tensor non-trivial
        for p in ref.parameters():
            p.normal_(std=0.2)
    load_state_dict_strict(ours, from_timm(ref.state_dict()), source="timm deit_tiny_distilled state dict")
    return ref, ours


@pytest.mark.parity
def test_parity_with_timm_logits_and_gradients():
    torch.manual_seed(0)
    ref, ours = _timm_pair()
    ref.eval(), ours.eval()
    x = torch.randn(2, 3, 32, 32)
    out_ref, out = ref(x), ours(x)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    (out_ref.square().sum() + out_ref.sum()).backward()
    (out.square().sum() + out.sum()).backward()
    grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parity
def test_parity_with_timm_distilled_training_heads():
    torch.manual_seed(1)
    ref, ours = _timm_pair()
    ref.set_distilled_training(True)
    ref.train(), ours.train()  # no dropout configured: deterministic
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 4])
    teacher = torch.randn(2, 5)
    cls_ref, dist_ref = ref(x)
    cls, dist = ours.forward_heads(x)
    torch.testing.assert_close(cls, cls_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(dist, dist_ref, atol=1e-5, rtol=0)
    hard_distillation_loss(cls_ref, dist_ref, labels, teacher).backward()
    hard_distillation_loss(cls, dist, labels, teacher).backward()
    grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-5, rtol=1e-5, msg=name)


# --- bad input -----------------------------------------------------------------------------------


def test_rejects_wrong_images():
    model = tiny()
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="multiples of patch_size=8, got 30x30"):
        model(torch.randn(1, 3, 30, 30))
    with pytest.raises(ValueError, match=r"features must be tokens \[batch, tokens, 24\]"):
        model.heads(torch.randn(2, 24))


def test_rejects_bad_configs():
    with pytest.raises(ValueError, match="global_pool must be 'token' for DeiT"):
        tiny(global_pool="avg")
    with pytest.raises(ValueError, match="representation_size must be None"):
        tiny(representation_size=8)
    with pytest.raises(ValueError, match="name must be one of"):
        deit("L")
    with pytest.raises(ValueError, match="depth is set by the name"):
        deit("Ti", depth=3)


def test_losses_reject_bad_arguments():
    cls, labels = torch.randn(2, 3), torch.tensor([0, 1])
    with pytest.raises(
        ValueError, match=r"dist_logits must have the shape of class_logits \(2, 3\), got \(2, 4\)"
    ):
        hard_distillation_loss(cls, torch.randn(2, 4), labels, cls)
    with pytest.raises(ValueError, match="labels must be int64 class indices of shape"):
        hard_distillation_loss(cls, cls, labels.float(), cls)
    with pytest.raises(ValueError, match=r"teacher_logits must be float logits \[batch, classes\]"):
        soft_distillation_loss(cls, cls, labels, torch.randn(6))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        soft_distillation_loss(cls, cls, labels, cls, temperature=0)
    with pytest.raises(ValueError, match="alpha must be in"):
        soft_distillation_loss(cls, cls, labels, cls, alpha=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        hard_distillation_loss(cls, cls, labels, cls, label_smoothing=1.0)


def test_loading_lists_missing_and_unexpected_keys():
    model = tiny()
    state = dict(model.state_dict())
    state.pop("dist_token")
    state["head_distill.weight"] = torch.zeros(5, 24)
    with pytest.raises(
        ValueError,
        match=r"DistilledVisionTransformer: missing keys \['dist_token'\], unexpected keys \['head_distill.weight'\]",
    ):
        load_state_dict_strict(model, from_timm(state))
    state = dict(model.state_dict())
    state["pos_embed"] = torch.zeros(1, 17, 24)  # a non-distilled ViT's position embeddings
    with pytest.raises(ValueError, match=r"pos_embed: expected \(1, 18, 24\), got \(1, 17, 24\)"):
        load_state_dict_strict(model, from_timm(state))
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_timm(None)
