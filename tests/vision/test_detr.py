"""DETR model: positional encoding golden values, invariants, parity with transformers, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.backbone import Backbone
from aicanon.vision.detr import (
    Detr,
    SinePositionEmbedding,
    SmallResNet,
    from_transformers,
)

pytestmark = pytest.mark.paper("vision-transformers-survey")


def tiny_detr(aux_loss: bool = True, **overrides) -> Detr:
    kwargs = dict(num_queries=5, d_model=16, num_heads=2, encoder_layers=2, decoder_layers=2, ffn_dim=32, dropout=0.0)
    kwargs.update(overrides)
    return Detr(SmallResNet(1, (8, 16)), 3, aux_loss=aux_loss, **kwargs)


# --------------------------------------------------------------------------- golden values
def test_sine_encoding_golden_values():
    pe = SinePositionEmbedding(num_features=4, normalize=True)
    out = pe(1, 2, 3)
    assert out.shape == (1, 8, 2, 3)
    # Row y=1 of H=2 normalises to 1 / (2 + 1e-6) * 2π ≈ π; channel 0 = sin(y), 1 = cos(y),
    # 2 = sin(y / 10000^(2/4)) = sin(y / 100), 3 = cos(y / 100).
    y = 1 / (2 + 1e-6) * 2 * math.pi
    expected = torch.tensor([math.sin(y), math.cos(y), math.sin(y / 100), math.cos(y / 100)])
    torch.testing.assert_close(out[0, :4, 0, 0], expected)
    # Column x=3 of W=3 normalises to just under 2π; column channels follow the row channels.
    x = 3 / (3 + 1e-6) * 2 * math.pi
    torch.testing.assert_close(out[0, 4:, 1, 2], torch.tensor([math.sin(x), math.cos(x), math.sin(x / 100), math.cos(x / 100)]))


@given(h=st.integers(1, 6), w=st.integers(1, 6))
@settings(max_examples=20, deadline=None)
def test_sine_encoding_rows_and_columns_separate(h, w):
    out = SinePositionEmbedding(num_features=8)(2, h, w)
    # Row channels do not vary along a row; column channels do not vary down a column.
    torch.testing.assert_close(out[:, :8], out[:, :8, :, :1].expand(-1, -1, h, w))
    torch.testing.assert_close(out[:, 8:], out[:, 8:, :1, :].expand(-1, -1, h, w))
    assert out.abs().max() <= 1.0


def test_shapes_boxes_in_unit_interval_and_aux_outputs():
    torch.manual_seed(0)
    model = tiny_detr().eval()
    out = model(torch.rand(2, 1, 16, 16))
    assert out.logits.shape == (2, 5, 4) and out.boxes.shape == (2, 5, 4)
    assert len(out.aux) == 1 and out.aux[0][0].shape == (2, 5, 4)
    assert bool(((out.boxes > 0) & (out.boxes < 1)).all())
    assert tiny_detr(aux_loss=False)(torch.rand(1, 1, 16, 16)).aux == []


def test_queries_are_permutation_equivariant():
    """Permuting the learned object queries permutes the predictions (no order among the set)."""
    torch.manual_seed(0)
    model = tiny_detr().eval()
    x = torch.rand(2, 1, 16, 16)
    out = model(x)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        model.query_embed.weight.copy_(model.query_embed.weight[perm])
    out_perm = model(x)
    torch.testing.assert_close(out_perm.logits, out.logits[:, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_perm.boxes, out.boxes[:, perm], atol=1e-5, rtol=1e-5)


def test_images_are_independent_in_a_batch():
    torch.manual_seed(0)
    model = tiny_detr().eval()
    x = torch.rand(3, 1, 16, 16)
    together = model(x).logits
    alone = torch.cat([model(x[i : i + 1]).logits for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_small_resnet_is_a_backbone():
    net = SmallResNet(3, (8, 16, 32), num_classes=5)
    assert isinstance(net, Backbone)
    maps = net.feature_maps(torch.rand(2, 3, 32, 32))
    assert {s: tuple(m.shape) for s, m in maps.items()} == {2: (2, 8, 16, 16), 4: (2, 16, 8, 8), 8: (2, 32, 4, 4)}
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    net.reset_classifier(0)
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 32)


# --------------------------------------------------------------------------- parity with transformers
def _reference(aux_loss: bool = False):
    transformers = pytest.importorskip("transformers")
    backbone = transformers.ResNetConfig(
        num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], out_features=["stage2"], layer_type="basic"
    )
    config = transformers.DetrConfig(
        backbone_config=backbone,
        num_channels=1,
        num_queries=5,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_labels=3,
        dropout=0.0,
        auxiliary_loss=aux_loss,
    )
    torch.manual_seed(1)
    reference = transformers.DetrForObjectDetection(config).eval()
    with torch.no_grad():  # random, non-trivial values everywhere (HF initialises some to 0 or 1)
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return reference


@pytest.mark.parity
def test_parity_forward_and_gradients_with_transformers():
    reference = _reference()
    ours = tiny_detr(aux_loss=False).eval()
    backbone = {k: v.clone() for k, v in ours.backbone.state_dict().items()}
    load_state_dict_strict(ours, from_transformers(reference.state_dict()), allow_missing=("backbone.",))
    for key, value in ours.backbone.state_dict().items():  # the backbone is ours, left as it was
        assert torch.equal(value, backbone[key]), key
    torch.manual_seed(2)
    feature_map = torch.randn(2, 16, 3, 3)
    # transformers takes the projected tokens when bypassing its backbone (inputs_embeds, square maps).
    tokens = torch.nn.functional.conv2d(feature_map, ours.input_projection.weight, ours.input_projection.bias)
    tokens = tokens.flatten(2).transpose(1, 2).detach()
    x_ours = tokens.clone().requires_grad_(True)
    x_ref = tokens.clone().requires_grad_(True)
    out = ours.forward_tokens(x_ours, 3, 3)
    ref = reference(pixel_values=None, inputs_embeds=x_ref)
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.boxes, ref.pred_boxes, atol=1e-5, rtol=1e-5)
    # The full path from a feature map agrees too.
    torch.testing.assert_close(ours.forward_feature_map(feature_map).logits, ref.logits, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out.logits)
    ((out.logits * weights).sum() + out.boxes.pow(2).sum()).backward()
    ((ref.logits * weights).sum() + ref.pred_boxes.pow(2).sum()).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    ref_grads = from_transformers({k: p.grad for k, p in reference.named_parameters() if p.grad is not None})
    our_grads = {k: p.grad for k, p in ours.named_parameters() if not k.startswith("backbone.")}
    assert set(our_grads) - {"input_projection.weight", "input_projection.bias"} == set(ref_grads) - {
        "input_projection.weight",
        "input_projection.bias",
    }
    for key, grad in ref_grads.items():
        if key.startswith("input_projection"):
            continue
        torch.testing.assert_close(our_grads[key], grad, atol=1e-5, rtol=1e-5, msg=key)


@pytest.mark.parity
def test_parity_sine_encoding_with_transformers():
    transformers = pytest.importorskip("transformers")
    from transformers.models.detr.modeling_detr import DetrSinePositionEmbedding

    reference = DetrSinePositionEmbedding(8, normalize=True)
    expected = reference(shape=torch.Size([2, 16, 3, 5]), device="cpu", dtype=torch.float32)
    torch.testing.assert_close(SinePositionEmbedding(8)(2, 3, 5), expected, atol=1e-6, rtol=1e-6)
    assert transformers is not None


# --------------------------------------------------------------------------- bad input
def test_bad_images_raise():
    model = tiny_detr()
    with pytest.raises(ValueError, match="images must have 1 channels, got 3"):
        model(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"images must be images \[batch, 1, height, width\]"):
        model(torch.rand(1, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.rand(1, 1, 15, 16))


def test_bad_feature_map_and_tokens_raise():
    model = tiny_detr()
    with pytest.raises(ValueError, match=r"feature_map must be \[batch, 16, h, w\], got \(1, 8, 3, 3\)"):
        model.forward_feature_map(torch.rand(1, 8, 3, 3))
    with pytest.raises(ValueError, match=r"tokens must be \[batch, 3\*3, 16\]"):
        model.forward_tokens(torch.rand(1, 8, 16), 3, 3)


def test_bad_constructor_arguments_raise():
    with pytest.raises(TypeError, match="backbone must be an aicanon.vision.backbone.Backbone, got Linear"):
        Detr(torch.nn.Linear(2, 2), 3)
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        Detr(SmallResNet(), 0)
    with pytest.raises(ValueError, match="d_model must be divisible by num_heads|d_model must be a multiple of 4"):
        Detr(SmallResNet(), 3, d_model=18, num_heads=4)
    with pytest.raises(ValueError, match="dropout must be in"):
        Detr(SmallResNet(), 3, dropout=1.5)
    with pytest.raises(ValueError, match="num_features must be even"):
        SinePositionEmbedding(3)


def test_bad_checkpoint_lists_keys():
    model = tiny_detr()
    sd = from_transformers(
        {"model.decoder.layernorm.weight": torch.ones(16), "class_labels_classifier.weight": torch.ones(9, 16)}
    )
    assert set(sd) == {"decoder_norm.weight", "class_head.weight"}
    detector = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    del detector["class_head.bias"]
    # only the detector's key is named: the backbone may be left out
    with pytest.raises(ValueError, match=r"Detr: missing keys \['class_head.bias'\]$"):
        load_state_dict_strict(model, detector, allow_missing=("backbone.",))
    with pytest.raises(ValueError, match="not DETR's detector: \\['foo.bar'\\]"):
        from_transformers({"foo.bar": torch.ones(1)})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_transformers([1])
