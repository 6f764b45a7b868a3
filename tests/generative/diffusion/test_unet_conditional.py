"""The conditional UNet: diffusers' UNet2DConditionModel loads into it (SD-style and SDXL-style), the
ControlNet residual inputs act as in diffusers, bad input is refused."""

from __future__ import annotations

import pytest
import torch

from aicanon.generative.diffusion.unet_conditional import (
    ConditionalUNet,
    ConditionalUNetConfig,
    config_from_diffusers,
    config_to_diffusers,
)

diffusers = pytest.importorskip("diffusers")

SD_STYLE = ConditionalUNetConfig(
    in_channels=4,
    out_channels=4,
    block_out_channels=(16, 32),
    layers_per_block=1,
    cross_attention_levels=(True, True),
    heads=4,
    cross_attention_dim=12,
    norm_groups=8,
)
SDXL_STYLE = ConditionalUNetConfig(
    in_channels=4,
    out_channels=4,
    block_out_channels=(16, 32, 32),
    layers_per_block=2,
    cross_attention_levels=(False, True, True),
    heads=2,
    cross_attention_dim=12,
    transformer_layers=2,
    linear_projection=True,
    norm_groups=8,
    addition_time_embed_dim=4,
    addition_input_dim=10 + 6 * 4,
)


def _pair(cfg):
    torch.manual_seed(0)
    reference = diffusers.UNet2DConditionModel(**config_to_diffusers(cfg, sample_size=8)).eval()
    ours = ConditionalUNet(config_from_diffusers(dict(reference.config))).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


def _inputs(cfg):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g)
    context = torch.randn(2, 5, 12, generator=g)
    extra = {}
    if cfg.addition_time_embed_dim:
        extra = {
            "text_embeds": torch.randn(2, 10, generator=g),
            "time_ids": torch.tensor(
                [[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [32.0, 48.0, 4.0, 8.0, 64.0, 64.0]]
            ),
        }
    return x, torch.tensor([3, 900]), context, extra


@pytest.mark.parity
@pytest.mark.parametrize("cfg", [SD_STYLE, SDXL_STYLE], ids=["sd", "sdxl"])
def test_diffusers_conditional_unet_loads_and_matches(cfg):
    ours, reference = _pair(cfg)
    x, t, context, extra = _inputs(cfg)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    theirs = reference(x1, t, encoder_hidden_states=context, added_cond_kwargs=extra or None).sample
    mine = ours(x2, t, context, **extra)
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    theirs.square().sum().backward()
    mine.square().sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-4)
    reference_parameters = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, reference_parameters[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parity
def test_controlnet_residuals_enter_as_in_diffusers():
    ours, reference = _pair(SD_STYLE)
    x, t, context, _ = _inputs(SD_STYLE)
    g = torch.Generator().manual_seed(2)
    shapes = [(2, 16, 8, 8), (2, 16, 8, 8), (2, 16, 4, 4), (2, 32, 4, 4)]
    assert len(ours.skip_channels) == len(shapes)
    down = [torch.randn(s, generator=g) for s in shapes]
    mid = torch.randn(2, 32, 4, 4, generator=g)
    theirs = reference(
        x,
        t,
        encoder_hidden_states=context,
        down_block_additional_residuals=tuple(down),
        mid_block_additional_residual=mid,
    ).sample
    torch.testing.assert_close(
        ours(x, t, context, down_residuals=down, mid_residual=mid), theirs, atol=1e-5, rtol=1e-5
    )
    zeros = [torch.zeros(s) for s in shapes]
    torch.testing.assert_close(
        ours(x, t, context, down_residuals=zeros, mid_residual=torch.zeros_like(mid)), ours(x, t, context)
    )


def test_micro_conditioning_changes_the_output():
    ours, _ = _pair(SDXL_STYLE)
    x, t, context, extra = _inputs(SDXL_STYLE)
    moved = dict(extra, time_ids=extra["time_ids"] + 16)
    assert not torch.allclose(ours(x, t, context, **extra), ours(x, t, context, **moved))


def test_bad_input_and_unsupported_options():
    ours, _ = _pair(SDXL_STYLE)
    x, t, context, extra = _inputs(SDXL_STYLE)
    with pytest.raises(ValueError, match="text_embeds and time_ids"):
        ours(x, t, context)
    with pytest.raises(ValueError, match="addition_input_dim"):
        ours(x, t, context, text_embeds=extra["text_embeds"], time_ids=extra["time_ids"][:, :4])
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        ours(x, t, context[..., :8], **extra)
    plain, _ = _pair(SD_STYLE)
    with pytest.raises(ValueError, match="down_residuals must hold 4"):
        plain(x, t, context, down_residuals=[torch.zeros(2, 16, 8, 8)])
    config = config_to_diffusers(SD_STYLE)
    for key, value in [
        ("upcast_attention", True),
        ("class_embed_type", "projection"),
        ("time_cond_proj_dim", 8),
    ]:
        with pytest.raises(ValueError, match=key):
            config_from_diffusers({**config, key: value})
    with pytest.raises(ValueError, match="addition_embed_type"):
        config_from_diffusers({**config, "addition_embed_type": "text"})
    with pytest.raises(ValueError, match="varies by level"):
        config_from_diffusers({**config, "attention_head_dim": [4, 8]})
    with pytest.raises(ValueError, match="heads"):
        ConditionalUNetConfig(
            block_out_channels=(24,), cross_attention_levels=(True,), heads=5, norm_groups=8
        )
