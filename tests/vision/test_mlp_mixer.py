"""MLP-Mixer: Table 1's parameter counts (equal to timm's), token mixing by hand, the token/channel
symmetry of Eq. 1, timm parity of logits and gradients, backbone interface and bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.mlp_mixer import MIXER_SIZES, MixerBlock, MlpMixer, from_timm, mixer

pytestmark = pytest.mark.paper("mlp-mixer")


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(**kwargs) -> MlpMixer:
    base = {
        "img_size": 16,
        "patch_size": 4,
        "in_chans": 3,
        "num_classes": 5,
        "hidden_dim": 24,
        "depth": 2,
        "tokens_mlp_dim": 12,
        "channels_mlp_dim": 48,
    }
    base.update(kwargs)
    return MlpMixer(**base)


@pytest.mark.parametrize(
    "name, expected, table_1_millions",
    [
        ("S/16", 18_528_264, 18),
        ("S/32", 19_104_624, 19),
        ("B/16", 59_880_472, 59),
        ("L/16", 208_196_168, 207),
    ],
)
def test_parameter_counts_equal_timm_and_table_1(name, expected, table_1_millions):
    # timm's mixer_*_224 at 1000 classes; Table 1 quotes millions (L/16: 207 M, timm 208.2 M).
    params = count(mixer(name))
    assert params == expected
    assert abs(params / 1e6 - table_1_millions) < 1.5
    assert MIXER_SIZES["H"].tokens_mlp_dim == 640 and MIXER_SIZES["B"].channels_mlp_dim == 3072


def test_token_mixing_by_hand():
    torch.manual_seed(0)
    block = MixerBlock(dim=3, seq_len=4, tokens_dim=5, channels_dim=6).eval()
    x = torch.randn(2, 4, 3)
    normed = nn.functional.layer_norm(x, (3,), block.norm1.weight, block.norm1.bias, eps=1e-6)
    w1, b1 = block.mlp_tokens.fc1.weight, block.mlp_tokens.fc1.bias
    w2, b2 = block.mlp_tokens.fc2.weight, block.mlp_tokens.fc2.bias
    u = x.clone()
    for channel in range(3):  # Eq. 1: the same token MLP on each column X_{*,i}
        column = normed[:, :, channel]
        u[:, :, channel] += nn.functional.gelu(column @ w1.T + b1) @ w2.T + b2
    y = u + block.mlp_channels(block.norm2(u))
    torch.testing.assert_close(block(x), y, atol=1e-6, rtol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_channel_mixing_is_token_equivariant_and_token_mixing_is_channel_equivariant(seed):
    generator = torch.Generator().manual_seed(seed)
    block = MixerBlock(dim=6, seq_len=5, tokens_dim=4, channels_dim=8)
    x = torch.randn(2, 5, 6, generator=generator)
    # Permuting channels commutes with token mixing (shared across channels), given a norm with
    # shared weights: LayerNorm's affine parameters are 1/0 at init.
    perm = torch.randperm(6, generator=generator)
    mixed = x + block.mlp_tokens(block.norm1(x).transpose(1, 2)).transpose(1, 2)
    mixed_perm = x[..., perm] + block.mlp_tokens(block.norm1(x[..., perm]).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(mixed_perm, mixed[..., perm], atol=1e-5, rtol=1e-5)
    # Channel mixing acts on each token alone.
    tokens = torch.randperm(5, generator=generator)
    channel = block.mlp_channels(block.norm2(x))
    torch.testing.assert_close(block.mlp_channels(block.norm2(x[:, tokens])), channel[:, tokens])


def test_backbone_interface_and_zero_head():
    model = tiny()
    assert torch.count_nonzero(model(torch.randn(2, 3, 16, 16))) == 0
    maps = model.feature_maps(torch.randn(2, 3, 16, 16))
    assert maps[4].shape == (2, 24, 4, 4) and model.feature_channels == {4: 24}
    model.reset_classifier(0)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 24)


@pytest.mark.parity
def test_parity_with_timm_logits_and_gradients():
    timm_mixer = pytest.importorskip("timm.models.mlp_mixer")
    torch.manual_seed(0)
    reference = timm_mixer.MlpMixer(
        num_classes=5, img_size=16, in_chans=3, patch_size=4, num_blocks=2, embed_dim=24, mlp_ratio=(0.5, 2.0)
    ).eval()
    ours = tiny().eval()
    load_state_dict_strict(ours, from_timm(reference.state_dict()))
    x = torch.randn(3, 3, 16, 16)
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ref, out_ours = reference(x_ref), ours(x_ours)
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out_ref)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    ref_params = dict(reference.named_parameters())
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, ref_params[name].grad, atol=1e-5, rtol=1e-5, msg=name)


def test_rejects_bad_input():
    model = tiny()
    with pytest.raises(ValueError, match="16x16 images .*got 20x20"):
        model(torch.randn(1, 3, 20, 20))
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="features must be tokens"):
        model.forward_head(torch.randn(2, 24))
    with pytest.raises(ValueError, match="multiple of patch_size=4"):
        tiny(img_size=18)
    with pytest.raises(ValueError, match="name must be"):
        mixer("Q/16")
    with pytest.raises(TypeError, match="name must be a str"):
        mixer(None)
    with pytest.raises(TypeError, match="img_size must be"):
        tiny(img_size="16")
