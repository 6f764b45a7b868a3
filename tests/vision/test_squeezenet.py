"""SqueezeNet: Table 1's parameter counts, Fire module by hand, bypasses, backbone interface,
torchvision parity (logits and gradients), initialisation and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.squeezenet import (
    Fire,
    SqueezeNet,
    feature_sizes,
    from_torchvision,
    min_input_size,
    squeezenet1_0,
    squeezenet1_1,
)

pytestmark = pytest.mark.paper("squeezenet")


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- golden values ------------------------------------------------------------------------------


def test_parameter_counts_match_table_1_and_torchvision():
    # Table 1: 1,248,424 parameters for v1.0 (4.8 MB at 32 bits); v1.1: 1,235,496.
    assert count(squeezenet1_0()) == 1_248_424
    assert count(squeezenet1_1()) == 1_235_496
    assert 1_248_424 * 4 / 2**20 == pytest.approx(4.76, abs=0.005)
    # The simple bypass adds no parameters (Table 3: 4.8 MB for both).
    assert count(squeezenet1_0(bypass="simple")) == 1_248_424
    # Complex: 1x1 convs 96->128, 128->256, 256->384, 384->512 with biases.
    extra = (96 * 128 + 128) + (128 * 256 + 256) + (256 * 384 + 384) + (384 * 512 + 512)
    assert extra == 341_248
    assert count(squeezenet1_0(bypass="complex")) == 1_248_424 + extra


def test_fire_module_by_hand():
    fire = Fire(1, 1, 1, 1)
    with torch.no_grad():
        fire.squeeze.weight.fill_(2.0)
        fire.squeeze.bias.fill_(-1.0)  # s = ReLU(2 * 1 - 1) = 1 everywhere
        fire.expand1x1.weight.fill_(3.0)
        fire.expand1x1.bias.zero_()
        fire.expand3x3.weight.fill_(1.0)
        fire.expand3x3.bias.fill_(-5.0)
    out = fire(torch.ones(1, 1, 3, 3))
    assert out.shape == (1, 2, 3, 3)
    assert torch.equal(out[0, 0], torch.full((3, 3), 3.0))
    # 3x3 sums of ones with zero padding (4 at corners, 6 at edges, 9 at the centre) minus 5, ReLU.
    assert torch.equal(out[0, 1], torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]))


def test_fire_module_concatenates_expand_1x1_then_3x3_after_relu():
    torch.manual_seed(0)
    fire = Fire(8, 3, 5, 7)
    x = torch.randn(2, 8, 6, 6)
    s = torch.relu(fire.squeeze(x))
    expected = torch.cat([torch.relu(fire.expand1x1(s)), torch.relu(fire.expand3x3(s))], 1)
    assert torch.allclose(fire(x), expected)
    assert fire(x).shape == (2, 12, 6, 6)


def test_bypasses_add_identity_or_projection():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 5, 5)
    plain = Fire(12, 3, 6, 6)
    simple = Fire(12, 3, 6, 6, bypass="identity")
    simple.load_state_dict(plain.state_dict())
    assert torch.allclose(simple(x), plain(x) + x)
    complex_ = Fire(12, 3, 4, 4, bypass="conv")
    base = Fire(12, 3, 4, 4)
    base.load_state_dict({k: v for k, v in complex_.state_dict().items() if "bypass" not in k})
    assert torch.allclose(complex_(x), base(x) + complex_.bypass_conv(x))


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_bypass_placement_follows_section_6(version):
    simple = SqueezeNet(version, bypass="simple").fire_modules()
    complex_ = SqueezeNet(version, bypass="complex").fire_modules()
    assert list(simple) == [f"fire{i}" for i in range(2, 10)]
    # Channels match around fire3, 5, 7, 9 (128, 256, 384, 512) in both versions.
    assert [n for n, f in simple.items() if f.bypass == "identity"] == ["fire3", "fire5", "fire7", "fire9"]
    assert [n for n, f in simple.items() if f.bypass == "none"] == ["fire2", "fire4", "fire6", "fire8"]
    assert [n for n, f in complex_.items() if f.bypass == "conv"] == ["fire2", "fire4", "fire6", "fire8"]
    assert all(f.bypass == "none" for f in SqueezeNet(version).fire_modules().values())


@pytest.mark.parametrize("version, minimum", [("1_0", 21), ("1_1", 17)])
def test_min_input_size_is_where_the_downsampling_fits(version, minimum):
    assert min_input_size(version) == minimum
    assert min(feature_sizes(version, minimum)) == 1
    assert min(feature_sizes(version, minimum - 1)) == 0
    # 224x224 (Table 1's input; 227 in the Caffe prototxt): 109 -> 54 -> 27 -> 13 for v1.0.
    assert feature_sizes("1_0", 224) == [109, 54, 27, 13]
    assert feature_sizes("1_0", 227) == [111, 55, 27, 13]


# --- invariants ---------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(version=st.sampled_from(["1_0", "1_1"]), height=st.integers(1, 48), width=st.integers(17, 48))
def test_feature_sizes_agree_with_the_layers(version, height, width):
    model = SqueezeNet(version, num_classes=3, in_channels=1).eval()
    fits = min(feature_sizes(version, height)) >= 1 and min(feature_sizes(version, width)) >= 1
    x = torch.randn(1, 1, height, width)
    if not fits:
        with pytest.raises(ValueError, match="at least"):
            model(x)
        return
    with torch.no_grad():
        maps = model.feature_maps(x)
        logits = model(x)
    assert logits.shape == (1, 3)
    assert (logits >= 0).all()  # conv10's ReLU before the average: logits are never negative
    rows = feature_sizes(version, height)
    cols = feature_sizes(version, width)
    for stride, (h, w) in zip(model.feature_strides, zip(rows, cols, strict=True), strict=True):
        assert maps[stride].shape == (1, model.feature_channels[stride], h, w)


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_backbone_interface(version):
    torch.manual_seed(0)
    model = SqueezeNet(version, num_classes=10, in_channels=1).eval()
    x = torch.randn(2, 1, 32, 32)
    features = model.forward_features(x)
    assert features.shape[1] == model.num_features == 512
    assert torch.equal(model(x), model.forward_head(features))
    maps = model.feature_maps(x)
    assert list(maps) == [2, 4, 8, 16]
    assert torch.equal(maps[16], features)
    expected = {"1_0": {2: 96, 4: 256, 8: 512, 16: 512}, "1_1": {2: 64, 4: 128, 8: 256, 16: 512}}
    assert model.feature_channels == expected[version]
    model.reset_classifier(0)
    assert model(x).shape == (2, 512)
    assert torch.allclose(model(x), features.mean(dim=(2, 3)))
    model.reset_classifier(5)
    assert model(x).shape == (2, 5)
    assert model.final_conv.weight.std().item() == pytest.approx(0.01, rel=0.3)


def test_paper_initialisation_is_caffe_xavier_and_gaussian_conv10():
    torch.manual_seed(0)
    model = squeezenet1_0()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        assert torch.all(module.bias == 0), name
        if module is model.final_conv:
            assert module.weight.std().item() == pytest.approx(0.01, rel=0.05)
            continue
        fan_in = module.weight[0].numel()
        bound = math.sqrt(3.0 / fan_in)
        assert module.weight.abs().max().item() <= bound
        if module.weight.numel() > 4000:  # Var of U(-b, b) is b^2 / 3 = 1 / fan_in
            assert module.weight.var().item() == pytest.approx(1.0 / fan_in, rel=0.1), name
    tv_init = squeezenet1_0(init="torchvision")
    fan_in = tv_init.features[0].weight[0].numel()
    assert tv_init.features[0].weight.var().item() == pytest.approx(2.0 / fan_in, rel=0.1)


def test_dropout_is_after_fire9_with_rate_one_half():
    model = squeezenet1_0()
    assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == 0.5
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), model(x))


# --- reference parity: torchvision --------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("version", ["1_0", "1_1"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_parity_with_torchvision_logits_and_gradients(version, mode):
    from torchvision.models.squeezenet import SqueezeNet as TorchvisionSqueezeNet

    torch.manual_seed(0)
    reference = TorchvisionSqueezeNet(version, num_classes=7)
    with torch.no_grad():  # biases are zero at init: perturb every parameter so they matter
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ours = SqueezeNet(version, num_classes=7)
    load_state_dict_strict(ours, from_torchvision(reference.state_dict()))
    reference.train(mode == "train")
    ours.train(mode == "train")
    x = torch.randn(2, 3, 40, 36)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(1)  # the same dropout mask in train mode
    out_ref = reference(x_ref)
    torch.manual_seed(1)
    out_ours = ours(x_ours)
    assert torch.allclose(out_ours, out_ref, atol=1e-5, rtol=0)
    weights = torch.randn_like(out_ref)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    assert torch.allclose(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    ref_params = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, ref_params[name].grad, atol=1e-5, rtol=0), name


@pytest.mark.parity
def test_parity_parameter_names_and_counts_equal_torchvision():
    from torchvision.models import squeezenet1_0 as tv1_0
    from torchvision.models import squeezenet1_1 as tv1_1

    for ours, reference in ((squeezenet1_0(), tv1_0()), (squeezenet1_1(), tv1_1())):
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in reference.state_dict().items()
        }


# --- bad input ----------------------------------------------------------------------------------


def test_rejects_wrong_channel_count():
    model = SqueezeNet("1_1", num_classes=10, in_channels=1)
    with pytest.raises(ValueError, match="x must have 1 channels, got 3"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"x must be images \[batch, 1, height, width\], got \(1, 32, 32\)"):
        model(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="x must have 8 channels"):
        Fire(8, 2, 4, 4)(torch.zeros(1, 3, 5, 5))


def test_rejects_images_too_small_for_the_downsampling():
    with pytest.raises(ValueError, match=r"at least 21x21 for SqueezeNet v1_0.*got 20x32"):
        squeezenet1_0()(torch.zeros(1, 3, 20, 32))
    with pytest.raises(ValueError, match=r"at least 17x17 for SqueezeNet v1_1.*got 32x16"):
        squeezenet1_1().feature_maps(torch.zeros(1, 3, 32, 16))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"version": "1_2"}, ValueError, r"version must be one of \('1_0', '1_1'\), got '1_2'"),
        ({"bypass": "dense"}, ValueError, "bypass must be one of"),
        ({"init": "xavier"}, ValueError, "init must be one of"),
        ({"num_classes": -1}, ValueError, "num_classes must be >= 0, got -1"),
        ({"num_classes": 2.0}, TypeError, "num_classes must be an int, got float"),
        ({"in_channels": 0}, ValueError, "in_channels must be >= 1, got 0"),
        ({"dropout": 1.0}, ValueError, r"dropout must be a probability in \[0, 1\), got 1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        SqueezeNet(**kwargs)


def test_rejects_bad_fire_and_head_arguments():
    with pytest.raises(
        ValueError, match="identity bypass needs in_channels == expand1x1 \\+ expand3x3, got 8 and 6"
    ):
        Fire(8, 2, 3, 3, bypass="identity")
    with pytest.raises(ValueError, match="squeeze must be >= 1, got 0"):
        Fire(8, 0, 3, 3)
    with pytest.raises(
        ValueError, match=r"features must be \[batch, 512, height, width\], got \(2, 256, 1, 1\)"
    ):
        squeezenet1_1().forward_head(torch.zeros(2, 256, 1, 1))
    with pytest.raises(ValueError, match="num_classes must be >= 0, got -3"):
        squeezenet1_1().reset_classifier(-3)


def test_rejects_mismatched_torchvision_state_dicts():
    from torchvision.models.squeezenet import SqueezeNet as TorchvisionSqueezeNet

    reference = TorchvisionSqueezeNet("1_0", num_classes=10).state_dict()
    with pytest.raises(ValueError, match=r"missing keys \[.*'features.3.bypass_conv.bias'"):
        complex_bypass = SqueezeNet("1_0", num_classes=10, bypass="complex")
        load_state_dict_strict(complex_bypass, from_torchvision(reference))
    with pytest.raises(
        ValueError, match=r"classifier.1.weight: expected \(5, 512, 1, 1\), got \(10, 512, 1, 1\)"
    ):
        load_state_dict_strict(SqueezeNet("1_0", num_classes=5), from_torchvision(reference))
    with pytest.raises(ValueError, match=r"features.0.weight: expected \(96, 1, 7, 7\), got \(96, 3, 7, 7\)"):
        load_state_dict_strict(SqueezeNet("1_0", num_classes=10, in_channels=1), from_torchvision(reference))
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_torchvision([1, 2])
