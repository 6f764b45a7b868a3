"""ViT: Table 1 parameter counts (equal to timm's), Eq. 1's token layout, permutation equivariance,
position-embedding resampling (timm parity), timm parity of logits and gradients, the pre-training
tanh head, avg-pool readout, hybrid stem, backbone interface and bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.vit import (
    VIT_SIZES,
    HybridEmbed,
    VisionTransformer,
    parse_vit_name,
    resample_pos_embed,
    vit,
)
from aicanon.vision.vit_weights import from_timm

pytestmark = pytest.mark.paper("vit")


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(**kwargs) -> VisionTransformer:
    base = {
        "img_size": 16,
        "patch_size": 4,
        "in_chans": 3,
        "num_classes": 5,
        "embed_dim": 24,
        "depth": 2,
        "num_heads": 3,
    }
    base.update(kwargs)
    return VisionTransformer(**base)


# --- golden values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("B/16", 86_567_656), ("S/16", 22_050_664), ("Ti/16", 5_717_416), ("B/32", 88_224_232)],
)
def test_parameter_counts_equal_timm(name, expected):
    # timm's vit_base_patch16_224 and friends at 224x224 with 1000 classes (86.6 M for ViT-B/16).
    assert count(vit(name)) == expected


def test_table_1_sizes():
    assert VIT_SIZES["B"].embed_dim == 768 and VIT_SIZES["B"].depth == 12 and VIT_SIZES["B"].num_heads == 12
    assert VIT_SIZES["L"].mlp_dim == 4096 and VIT_SIZES["L"].depth == 24
    assert VIT_SIZES["H"].embed_dim == 1280 and VIT_SIZES["H"].depth == 32
    size, patch = parse_vit_name("ViT-L/14")
    assert size == VIT_SIZES["L"] and patch == 14


def test_token_layout_of_equation_1():
    model = tiny().eval()
    x = torch.randn(2, 3, 16, 16)
    z0 = model.embed(x)
    assert z0.shape == (2, 1 + 16, 24)
    # Class token is x_class + E_pos[0]; patch i is x_p^i E + E_pos[i] in row-major order.
    torch.testing.assert_close(z0[:, 0], (model.cls_token[0] + model.pos_embed[:, 0]).expand(2, -1))
    patch = x[:, :, 4:8, 8:12]  # row 1, column 2 -> index 1 * 4 + 2 = 6
    expected = (
        torch.einsum("bchw,dchw->bd", patch, model.patch_embed.proj.weight) + model.patch_embed.proj.bias
    )
    torch.testing.assert_close(z0[:, 1 + 6], expected + model.pos_embed[0, 1 + 6], atol=1e-5, rtol=1e-5)


def test_initialisation_follows_jax_code():
    model = tiny()
    assert torch.count_nonzero(model.head.weight) == 0 and torch.count_nonzero(model.cls_token) == 0
    assert model.pos_embed.std().item() == pytest.approx(0.02, rel=0.3)
    # A zero head: every class gets logit 0 before training.
    assert torch.count_nonzero(model(torch.randn(2, 3, 16, 16))) == 0


# --- invariants ---------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_permuting_patches_and_position_embeddings_leaves_the_class_token_unchanged(seed):
    # Self-attention is permutation-equivariant: the only order information is E_pos (Section 3.1).
    generator = torch.Generator().manual_seed(seed)
    model = tiny(num_classes=3).eval()
    nn.init.normal_(model.head.weight)
    x = torch.randn(2, 3, 16, 16, generator=generator)
    perm = torch.randperm(16, generator=generator)
    patches = x.reshape(2, 3, 4, 4, 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(2, 16, 3, 4, 4)
    shuffled = patches[:, perm].reshape(2, 4, 4, 3, 4, 4).permute(0, 3, 1, 4, 2, 5).reshape(2, 3, 16, 16)
    reference = model(x)
    with torch.no_grad():
        model.pos_embed[:, 1:] = model.pos_embed[:, 1:][:, perm]
    torch.testing.assert_close(model(shuffled), reference, atol=1e-5, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), dim=st.integers(1, 8), value=st.floats(-3, 3))
def test_resampling_keeps_constants_and_class_token(h, w, dim, value):
    pos = torch.full((1, 1 + 3 * 3, dim), value)
    pos[:, 0] = 7.0
    out = resample_pos_embed(pos, (h, w), num_prefix_tokens=1)
    assert out.shape == (1, 1 + h * w, dim)
    torch.testing.assert_close(out[:, 0], pos[:, 0])
    torch.testing.assert_close(out[:, 1:], torch.full_like(out[:, 1:], value), atol=1e-5, rtol=1e-5)


def test_avg_pool_readout_uses_fc_norm_on_the_mean():
    model = tiny(global_pool="avg", class_token=False).eval()
    assert isinstance(model.norm, nn.Identity) and isinstance(model.fc_norm, nn.LayerNorm)
    tokens = model.forward_features(torch.randn(2, 3, 16, 16))
    assert tokens.shape == (2, 16, 24)
    torch.testing.assert_close(model.forward_head(tokens, pre_logits=True), model.fc_norm(tokens.mean(1)))


def test_pre_training_head_has_a_tanh_hidden_layer_and_fine_tuning_drops_it():
    model = tiny(representation_size=10).eval()
    features = model.forward_features(torch.randn(2, 3, 16, 16))
    hidden = model.forward_head(features, pre_logits=True)
    assert hidden.shape == (2, 10) and hidden.abs().max() <= 1
    model.reset_classifier(7)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7) and isinstance(model.pre_logits, nn.Identity)
    model.reset_classifier(0)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 24)


def test_new_resolution_interpolates_position_embeddings():
    model = tiny().eval()
    x = torch.randn(1, 3, 24, 24)
    dynamic = tiny(dynamic_img_size=True).eval()
    dynamic.load_state_dict(model.state_dict())
    out_dynamic = dynamic(x)
    model.set_image_size(24)
    assert model.pos_embed.shape == (1, 1 + 36, 24) and model.grid_size == (6, 6)
    torch.testing.assert_close(model(x), out_dynamic)


def test_feature_maps_and_backbone_interface():
    model = tiny()
    maps = model.feature_maps(torch.randn(2, 3, 16, 16))
    assert list(maps) == [4] and maps[4].shape == (2, 24, 4, 4)
    assert model.num_features == 24 and model.feature_channels == {4: 24}


def test_hybrid_embedding_reads_a_cnn_feature_map():
    stem = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1)
    )
    embed = HybridEmbed(stem, feature_dim=16, feature_stride=4, in_chans=3, embed_dim=24)
    model = tiny(embed_layer=embed)
    assert model.patch_size == 4 and model.grid_size == (4, 4)
    out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert stem[0].weight.grad is not None


# --- reference parity ---------------------------------------------------------------------------


def _timm_model(**kwargs):
    timm = pytest.importorskip("timm")
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, **kwargs)


@pytest.mark.parity
@pytest.mark.parametrize("pool", ["token", "avg"])
def test_parity_with_timm_logits_and_gradients(pool):
    torch.manual_seed(0)
    args = {
        "img_size": 16,
        "patch_size": 4,
        "in_chans": 3,
        "num_classes": 5,
        "embed_dim": 24,
        "depth": 2,
        "num_heads": 3,
    }
    reference = _timm_model(global_pool=pool, class_token=pool == "token", **args).eval()
    ours = VisionTransformer(global_pool=pool, class_token=pool == "token", **args).eval()
    load_state_dict_strict(ours, from_timm(reference.state_dict()))
    x = torch.randn(3, 3, 16, 16)
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    out_ref, out_ours = reference(x_ref), ours(x_ours)
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out_ref)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    ref_params = dict(reference.named_parameters())
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, ref_params[name].grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parity
@pytest.mark.parametrize("new_grid", [(7, 7), (3, 5), (4, 4)])
def test_parity_with_timm_position_embedding_resampling(new_grid):
    pos_embed_module = pytest.importorskip("timm.layers")
    pos = torch.randn(1, 1 + 16, 12)
    expected = pos_embed_module.resample_abs_pos_embed(pos, list(new_grid), num_prefix_tokens=1)
    torch.testing.assert_close(resample_pos_embed(pos, new_grid), expected)


@pytest.mark.parity
def test_parity_with_timm_dynamic_image_size():
    torch.manual_seed(1)
    args = {"img_size": 16, "patch_size": 4, "num_classes": 5, "embed_dim": 24, "depth": 2, "num_heads": 3}
    reference = _timm_model(dynamic_img_size=True, **args).eval()
    ours = VisionTransformer(dynamic_img_size=True, **args).eval()
    load_state_dict_strict(ours, from_timm(reference.state_dict()))
    x = torch.randn(2, 3, 24, 20)
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


# --- bad input ----------------------------------------------------------------------------------


def test_rejects_bad_images():
    model = tiny()
    with pytest.raises(ValueError, match="multiples of patch_size=4, got 18x16"):
        model(torch.randn(1, 3, 18, 16))
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="16x16 images, got 24x24.*set_image_size"):
        model(torch.randn(1, 3, 24, 24))
    with pytest.raises(ValueError, match="images"):
        model(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match="features must be tokens"):
        model.forward_head(torch.randn(2, 24))


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="img_size must be a multiple of patch_size=4"):
        tiny(img_size=18)
    with pytest.raises(ValueError, match="global_pool must be"):
        tiny(global_pool="max")
    with pytest.raises(ValueError, match="needs class_token=True"):
        tiny(class_token=False)
    with pytest.raises(ValueError, match="name must be"):
        vit("X/16")
    with pytest.raises(TypeError, match="name must be a str"):
        vit(16)
    with pytest.raises(ValueError, match="embed_dim is set by the name"):
        vit("B/16", embed_dim=10)
    with pytest.raises(TypeError, match="patch_size must be an int"):
        tiny(patch_size=4.0)
    with pytest.raises(ValueError, match="not a square grid"):
        resample_pos_embed(torch.randn(1, 1 + 6, 4), (3, 3))
    with pytest.raises(ValueError, match="pos_embed must be"):
        resample_pos_embed(torch.randn(7, 4), (3, 3))
    with pytest.raises(TypeError, match="backbone must be an nn.Module"):
        HybridEmbed("resnet", 16, 4, 3, 24)
