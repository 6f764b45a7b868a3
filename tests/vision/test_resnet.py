"""ResNet baseline: ResNet-18's parameter count, torchvision parity (logits and gradients), the
small-input stem, feature maps by stride, the hybrid-ViT stem, and bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.resnet import ResNet, from_torchvision, resnet18, resnet_stem
from aicanon.vision.vit import HybridEmbed, VisionTransformer

pytestmark = pytest.mark.paper("vit")


def test_resnet18_parameter_count_equals_torchvision():
    assert sum(p.numel() for p in resnet18().parameters()) == 11_689_512


@settings(max_examples=8, deadline=None)
@given(size=st.sampled_from([8, 12, 16, 28]), layers=st.sampled_from([(1,), (1, 1), (1, 1, 1)]))
def test_small_input_stem_keeps_resolution_and_strides(size, layers):
    model = ResNet(
        layers=layers,
        widths=tuple(4 * 2**i for i in range(len(layers))),
        in_chans=1,
        num_classes=3,
        small_inputs=True,
    )
    maps = model.feature_maps(torch.randn(2, 1, size, size))
    for stride, feature in maps.items():
        assert feature.shape[1] == model.feature_channels[stride]
        assert feature.shape[-1] == -(-size // stride)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 3)


@pytest.mark.parity
def test_parity_with_torchvision_resnet18_logits_and_gradients():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=7)
    ours = resnet18(num_classes=7)
    load_state_dict_strict(ours, from_torchvision(reference.state_dict()))
    x = torch.randn(2, 3, 64, 64)
    for mode in ("train", "eval"):
        getattr(reference, mode)()
        getattr(ours, mode)()
        reference.zero_grad()
        ours.zero_grad()
        out_ref, out_ours = reference(x), ours(x)
        torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=1e-5)
        out_ref.square().sum().backward()
        out_ours.square().sum().backward()
        ref_params = dict(reference.named_parameters())
        for name, parameter in ours.named_parameters():
            torch.testing.assert_close(parameter.grad, ref_params[name].grad, atol=1e-4, rtol=1e-4, msg=name)


def test_hybrid_vit_on_a_resnet_stem():
    cnn = ResNet(layers=(1, 1), widths=(8, 16), in_chans=1, num_classes=0, small_inputs=True)
    stem, channels, stride = resnet_stem(cnn, 2)
    assert (channels, stride) == (16, 2)
    embed = HybridEmbed(stem, channels, stride, in_chans=1, embed_dim=24)
    model = VisionTransformer(
        img_size=16, in_chans=1, num_classes=4, embed_dim=24, depth=1, num_heads=2, embed_layer=embed
    )
    assert model.grid_size == (8, 8) and model(torch.randn(2, 1, 16, 16)).shape == (2, 4)


def test_rejects_bad_input():
    model = ResNet(layers=(1,), widths=(4,), in_chans=1, num_classes=2, small_inputs=True)
    with pytest.raises(ValueError, match="1 channels, got 3"):
        model(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="features must be a map"):
        model.forward_head(torch.randn(1, 4))
    with pytest.raises(ValueError, match="same length"):
        ResNet(layers=(1, 1), widths=(4,))
    with pytest.raises(TypeError, match="model must be a ResNet"):
        resnet_stem(torch.nn.Linear(2, 2), 1)
    with pytest.raises(ValueError, match="num_stages must be in"):
        resnet_stem(model, 2)
