"""The diffusion UNet: diffusers' UNet2DModel loads into it (same outputs, gradients); options; bad input."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.generative.diffusion.unet import UNet, UNetConfig, config_from_diffusers, config_to_diffusers

diffusers = pytest.importorskip("diffusers")

DDPM_STYLE = UNetConfig(
    in_channels=1,
    out_channels=1,
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    attention_levels=(False, True, False),
    attention_head_dim=8,
    norm_groups=8,
)
ADM_STYLE = UNetConfig(
    in_channels=1,
    out_channels=2,
    block_out_channels=(16, 32),
    layers_per_block=2,
    attention_levels=(False, True),
    attention_head_dim=8,
    norm_groups=8,
    num_classes=10,
    time_scale_shift=True,
    resample="resnet",
    mid_attention_norm=False,
    dropout=0.0,
)


@pytest.mark.parity
@pytest.mark.parametrize("cfg", [DDPM_STYLE, ADM_STYLE], ids=["ddpm", "adm"])
def test_diffusers_unet_loads_and_matches(cfg):
    torch.manual_seed(0)
    reference = diffusers.UNet2DModel(**config_to_diffusers(cfg, sample_size=8)).eval()
    ours = UNet(config_from_diffusers(dict(reference.config))).eval()
    assert ours.config.block_out_channels == cfg.block_out_channels
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 1, 8, 8)
    t = torch.tensor([0, 17, 999])
    labels = torch.tensor([1, 5, 9]) if cfg.num_classes else None
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    theirs = reference(x1, t, class_labels=labels).sample
    mine = ours(x2, t, class_labels=labels)
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    theirs.square().sum().backward()
    mine.square().sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-4)
    theirs_by_name = dict(reference.named_parameters())
    assert set(theirs_by_name) == {name for name, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs_by_name[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_scale_shift_conditions_on_class_and_time():
    torch.manual_seed(0)
    net = UNet(ADM_STYLE).eval()
    x = torch.randn(2, 1, 8, 8)
    base = net(x, torch.tensor([5, 5]), torch.tensor([1, 1]))
    assert not torch.allclose(base, net(x, torch.tensor([5, 5]), torch.tensor([2, 2])))
    assert not torch.allclose(base, net(x, torch.tensor([6, 6]), torch.tensor([1, 1])))
    assert base.shape == (2, 2, 8, 8)
    # Scalar and fractional timesteps are accepted (respaced chains tell the model original steps).
    assert net(x, 3.5, torch.tensor([1, 1])).shape == base.shape


def test_residual_scale_and_dropout_are_used():
    cfg = UNetConfig(
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 8),
        layers_per_block=1,
        attention_levels=(False, True),
        norm_groups=4,
        residual_scale=math.sqrt(2),
        dropout=0.5,
    )
    net = UNet(cfg)
    x = torch.randn(2, 1, 4, 4)
    net.train()
    assert not torch.equal(
        net(x, torch.tensor([1, 1])), net(x, torch.tensor([1, 1]))
    )  # dropout on in training
    net.eval()
    assert torch.equal(net(x, torch.tensor([1, 1])), net(x, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="residual_scale"):
        config_to_diffusers(cfg)


def test_unsupported_diffusers_options_are_refused():
    config = config_to_diffusers(DDPM_STYLE)
    for key, value in [
        ("time_embedding_type", "fourier"),
        ("center_input_sample", True),
        ("freq_shift", 1),
        ("class_embed_type", "timestep"),
    ]:
        with pytest.raises(ValueError, match=key):
            config_from_diffusers({**config, key: value})
    with pytest.raises(ValueError, match="SkipDownBlock2D"):
        config_from_diffusers(
            {**config, "down_block_types": ["SkipDownBlock2D", "AttnDownBlock2D", "DownBlock2D"]}
        )


def test_bad_input():
    net = UNet(DDPM_STYLE)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.randn(1, 1, 6, 6), torch.tensor([1]))
    with pytest.raises(ValueError, match="channels"):
        net(torch.randn(1, 3, 8, 8), torch.tensor([1]))
    with pytest.raises(ValueError, match="t must be"):
        net(torch.randn(2, 1, 8, 8), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="without num_classes"):
        net(torch.randn(1, 1, 8, 8), torch.tensor([1]), torch.tensor([0]))
    adm = UNet(ADM_STYLE)
    with pytest.raises(ValueError, match="class_labels must be given"):
        adm(torch.randn(1, 1, 8, 8), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"class_labels must be in \[0, 10\)"):
        adm(torch.randn(1, 1, 8, 8), torch.tensor([1]), torch.tensor([10]))
    with pytest.raises(ValueError, match="norm_groups"):
        UNetConfig(block_out_channels=(30,), attention_levels=(False,))
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(block_out_channels=(32, 64), attention_levels=(True,))
