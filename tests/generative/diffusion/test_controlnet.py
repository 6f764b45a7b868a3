"""ControlNet: at initialisation the controlled model is the base model exactly; diffusers'
ControlNetModel loads into ours and gives the same residuals and gradients; configs translate both
ways (unsupported options refused); a checkpoint round-trips through diffusers' file format; bad
input is refused."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from aicanon.generative.diffusion.controlnet import (
    ConditioningEmbedding,
    ControlledUNet,
    ControlNet,
    ControlNetConfig,
    config_from_diffusers,
    config_to_diffusers,
    zero_conv,
)
from aicanon.generative.diffusion.unet_conditional import ConditionalUNet, ConditionalUNetConfig
from aicanon.generative.diffusion.unet_conditional import config_to_diffusers as unet_to_diffusers

pytestmark = pytest.mark.paper("controlnet")

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
CLASS_STYLE = ConditionalUNetConfig(
    in_channels=1,
    out_channels=1,
    block_out_channels=(16, 32),
    layers_per_block=1,
    cross_attention_levels=(False, True),
    heads=4,
    cross_attention_dim=8,
    norm_groups=8,
    num_classes=10,
)
E_WIDTHS = (8, 16)  # one stride-2 conv: the condition is 2x the size of x


def _inputs(cfg: ConditionalUNetConfig, batch: int = 2, size: int = 8, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "x": torch.randn(batch, cfg.in_channels, size, size, generator=g),
        "t": torch.tensor([3, 900][:batch]),
        "context": torch.randn(batch, 5, cfg.cross_attention_dim, generator=g),
        "condition": torch.rand(batch, 3, 2 * size, 2 * size, generator=g),
        "extra": {},
    }
    if cfg.addition_time_embed_dim:
        inputs["extra"] = {
            "text_embeds": torch.randn(batch, 10, generator=g),
            "time_ids": torch.tensor(
                [[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [32.0, 48.0, 4.0, 8.0, 64.0, 64.0]]
            ),
        }
    if cfg.num_classes:
        inputs["extra"] = {"class_labels": torch.tensor([1, 7][:batch])}
    return inputs


def _base(cfg: ConditionalUNetConfig) -> ConditionalUNet:
    torch.manual_seed(0)
    return ConditionalUNet(cfg).eval()


def _randomise(module: torch.nn.Module, scale: float = 0.2) -> None:
    """Give the zero-initialised parameters random values, so a parity test can fail."""
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.normal_(0.0, scale)


# -- the zero-convolution property (Section 3.1) --------------------------------------------------


@pytest.mark.parametrize("cfg", [SD_STYLE, CLASS_STYLE], ids=["sd", "class"])
def test_at_initialisation_the_controlled_model_is_the_base_model_exactly(cfg):
    base = _base(cfg)
    controlnet = ControlNet.from_unet(
        base, conditioning_channels=3, conditioning_embedding_out_channels=E_WIDTHS
    )
    controlled = ControlledUNet(base, controlnet).eval()
    inputs = _inputs(cfg)
    with torch.no_grad():
        expected = base(inputs["x"], inputs["t"], inputs["context"], **inputs["extra"])
        for scale in (1.0, 3.5):
            got = controlled(
                inputs["x"], inputs["t"], inputs["context"], inputs["condition"],
                conditioning_scale=scale, **inputs["extra"],
            )  # fmt: skip
            assert torch.equal(got, expected)
        down, mid = controlnet(
            inputs["x"], inputs["t"], inputs["context"], inputs["condition"], **inputs["extra"]
        )
    assert len(down) == len(base.skip_channels)
    assert all(not r.any() for r in down) and not mid.any()


def test_at_initialisation_only_the_zero_convolutions_get_gradients():
    """Eq. 2 with Z = 0: ∂L/∂W_z = input ≠ 0, so the zero convs learn first; everything behind them
    (the trainable copy, E) gets zero gradient on the first step."""
    base = _base(SD_STYLE)
    controlnet = ControlNet.from_unet(base, conditioning_embedding_out_channels=E_WIDTHS)
    controlled = ControlledUNet(base, controlnet)
    inputs = _inputs(SD_STYLE)
    controlled(inputs["x"], inputs["t"], inputs["context"], inputs["condition"]).square().sum().backward()
    assert all(p.grad is None for p in base.parameters())  # frozen
    for name, p in controlnet.named_parameters():
        zero_conv_weight = name.startswith(("controlnet_down_blocks", "controlnet_mid_block"))
        if zero_conv_weight:
            assert p.grad.abs().sum() > 0, name
        else:
            assert not p.grad.any(), name


def test_from_unet_copies_the_encoder_and_zero_initialises_the_connections():
    base = _base(CLASS_STYLE)
    controlnet = ControlNet.from_unet(
        base, conditioning_channels=1, conditioning_embedding_out_channels=(16,)
    )
    ours = controlnet.state_dict()
    for name, value in base.state_dict().items():
        if name.startswith(("up_blocks", "conv_norm_out", "conv_out")):
            assert name not in ours
        else:
            assert torch.equal(ours[name], value), name
    assert controlnet.config.condition_downscale == 1
    for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
        assert conv.kernel_size == (1, 1) and not conv.weight.any() and not conv.bias.any()
    assert not controlnet.controlnet_cond_embedding.conv_out.weight.any()
    assert [c.out_channels for c in controlnet.controlnet_down_blocks] == list(base.skip_channels)


def test_conditioning_scale_scales_every_residual():
    base = _base(SD_STYLE)
    controlnet = ControlNet.from_unet(base, conditioning_embedding_out_channels=E_WIDTHS).eval()
    _randomise(controlnet)
    inputs = _inputs(SD_STYLE)
    with torch.no_grad():
        down1, mid1 = controlnet(inputs["x"], inputs["t"], inputs["context"], inputs["condition"])
        down2, mid2 = controlnet(
            inputs["x"], inputs["t"], inputs["context"], inputs["condition"], conditioning_scale=-0.5
        )
        controlled = ControlledUNet(base, controlnet)
        off = controlled(
            inputs["x"], inputs["t"], inputs["context"], inputs["condition"], conditioning_scale=0.0
        )
        on = controlled(inputs["x"], inputs["t"], inputs["context"], inputs["condition"])
    for a, b in zip(down1, down2, strict=True):
        torch.testing.assert_close(b, -0.5 * a)
    torch.testing.assert_close(mid2, -0.5 * mid1)
    plain = base(inputs["x"], inputs["t"], inputs["context"])
    torch.testing.assert_close(off, plain, atol=0, rtol=0)
    assert not torch.allclose(on, plain)


def test_building_blocks():
    conv = zero_conv(5)
    assert not conv.weight.any() and not conv.bias.any() and conv.kernel_size == (1, 1)
    embedding = ConditioningEmbedding(12, 3, (16, 32, 96, 256))
    assert embedding(torch.rand(1, 3, 64, 64)).shape == (1, 12, 8, 8)  # 8x down, as 512 -> 64
    assert sum(1 for b in embedding.blocks if b.stride == (2, 2)) == 3


# -- parity with diffusers --------------------------------------------------------------------------

diffusers = pytest.importorskip("diffusers")


def _diffusers_pair(cfg: ConditionalUNetConfig):
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(**unet_to_diffusers(cfg, sample_size=8)).eval()
    reference = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=E_WIDTHS).eval()
    _randomise(reference)
    ours = ControlNet(config_from_diffusers(dict(reference.config))).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    base = ConditionalUNet(cfg).eval()
    base.load_state_dict(unet.state_dict(), strict=True)
    return ours, reference, base, unet


@pytest.mark.parity
@pytest.mark.parametrize("cfg", [SD_STYLE, SDXL_STYLE], ids=["sd", "sdxl"])
def test_diffusers_controlnet_loads_and_gives_the_same_residuals_and_gradients(cfg):
    ours, reference, _, _ = _diffusers_pair(cfg)
    inputs = _inputs(cfg)
    x1, x2 = inputs["x"].clone().requires_grad_(), inputs["x"].clone().requires_grad_()
    c1, c2 = inputs["condition"].clone().requires_grad_(), inputs["condition"].clone().requires_grad_()
    theirs = reference(
        x1, inputs["t"], encoder_hidden_states=inputs["context"], controlnet_cond=c1,
        conditioning_scale=0.7, added_cond_kwargs=inputs["extra"] or None,
    )  # fmt: skip
    down, mid = ours(x2, inputs["t"], inputs["context"], c2, conditioning_scale=0.7, **inputs["extra"])
    assert len(down) == len(theirs.down_block_res_samples)
    for i, (a, b) in enumerate(zip(down, theirs.down_block_res_samples, strict=True)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=f"down residual {i}")
    torch.testing.assert_close(mid, theirs.mid_block_res_sample, atol=1e-5, rtol=1e-5)
    # Means, not sums: gradients of order one, so float32 rounding stays within the tolerance.
    loss_theirs = (
        sum(r.square().mean() for r in theirs.down_block_res_samples) + theirs.mid_block_res_sample.mean()
    )
    loss_ours = sum(r.square().mean() for r in down) + mid.mean()
    loss_theirs.backward()
    loss_ours.backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(c2.grad, c1.grad, atol=1e-5, rtol=1e-4)
    reference_parameters = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, reference_parameters[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parity
def test_controlled_unet_matches_the_diffusers_pipeline_step():
    """What a diffusers ControlNet pipeline computes per step: unet(…, residuals of the controlnet)."""
    ours, reference, base, unet = _diffusers_pair(SD_STYLE)
    inputs = _inputs(SD_STYLE)
    with torch.no_grad():
        down, mid = reference(
            inputs["x"], inputs["t"], encoder_hidden_states=inputs["context"],
            controlnet_cond=inputs["condition"], conditioning_scale=1.3, return_dict=False,
        )  # fmt: skip
        theirs = unet(
            inputs["x"], inputs["t"], encoder_hidden_states=inputs["context"],
            down_block_additional_residuals=down, mid_block_additional_residual=mid,
        ).sample  # fmt: skip
        mine = ControlledUNet(base, ours)(
            inputs["x"], inputs["t"], inputs["context"], inputs["condition"], conditioning_scale=1.3
        )
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_from_unet_gives_diffusers_from_unet_weights():
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(**unet_to_diffusers(SDXL_STYLE, sample_size=8))
    reference = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=E_WIDTHS)
    base = ConditionalUNet(SDXL_STYLE)
    base.load_state_dict(unet.state_dict())
    ours = ControlNet.from_unet(base, conditioning_embedding_out_channels=E_WIDTHS)
    theirs = reference.state_dict()
    assert ours.state_dict().keys() == theirs.keys()
    for name, value in ours.state_dict().items():
        if name.startswith("controlnet_cond_embedding.") and not name.startswith(
            "controlnet_cond_embedding.conv_out"
        ):
            assert value.shape == theirs[name].shape, name  # E's hidden layers: random in both
        else:
            assert torch.equal(value, theirs[name]), name


@pytest.mark.parity
@pytest.mark.parametrize("unet_cfg", [SD_STYLE, SDXL_STYLE, CLASS_STYLE], ids=["sd", "sdxl", "class"])
def test_config_translation_round_trips(unet_cfg):
    cfg = ControlNetConfig(
        **{**unet_cfg.__dict__}, conditioning_channels=1, conditioning_embedding_out_channels=(8, 16)
    )
    assert config_from_diffusers(config_to_diffusers(cfg)) == cfg
    reference = diffusers.ControlNetModel(**config_to_diffusers(cfg))
    assert config_from_diffusers(dict(reference.config)) == cfg
    ControlNet(cfg).load_state_dict(reference.state_dict(), strict=True)


@pytest.mark.parity
def test_checkpoint_round_trips_through_diffusers_files(tmp_path):
    ours, reference, _, _ = _diffusers_pair(SD_STYLE)
    inputs = _inputs(SD_STYLE)
    args = (inputs["x"], inputs["t"], inputs["context"], inputs["condition"])
    # diffusers -> files -> ours
    reference.save_pretrained(tmp_path / "theirs", safe_serialization=True)
    config = json.loads((tmp_path / "theirs" / "config.json").read_text())
    loaded = ControlNet(config_from_diffusers(config)).eval()
    loaded.load_state_dict(
        load_file(tmp_path / "theirs" / "diffusion_pytorch_model.safetensors"), strict=True
    )
    # ours -> files -> diffusers
    folder = tmp_path / "ours"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"_class_name": "ControlNetModel", **config_to_diffusers(loaded.config)})
    )
    save_file(
        {k: v.contiguous() for k, v in loaded.state_dict().items()},
        folder / "diffusion_pytorch_model.safetensors",
    )
    back = diffusers.ControlNetModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected_down, expected_mid = ours(*args)
        for down, mid in (
            loaded(*args),
            back(args[0], args[1], encoder_hidden_states=args[2], controlnet_cond=args[3], return_dict=False),
        ):
            for a, b in zip(down, expected_down, strict=True):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(mid, expected_mid, atol=1e-5, rtol=1e-5)


def test_unsupported_diffusers_options_are_refused():
    config = config_to_diffusers(ControlNetConfig(**SD_STYLE.__dict__))
    for key, value in [
        ("controlnet_conditioning_channel_order", "bgr"),
        ("global_pool_conditions", True),
        ("mid_block_type", "UNetMidBlock2D"),
        ("upcast_attention", True),
        ("class_embed_type", "projection"),
    ]:
        with pytest.raises(ValueError, match=key):
            config_from_diffusers({**config, key: value})
    with pytest.raises(ValueError, match="conditioning_embedding_out_channels"):
        config_from_diffusers({**config, "conditioning_embedding_out_channels": None})
    with pytest.raises(ValueError, match="dropout"):
        config_to_diffusers(ControlNetConfig(**{**SD_STYLE.__dict__, "dropout": 0.1}))


# -- bad input ----------------------------------------------------------------------------------------


def test_bad_input_is_refused():
    base = _base(SD_STYLE)
    controlnet = ControlNet.from_unet(base, conditioning_embedding_out_channels=E_WIDTHS)
    inputs = _inputs(SD_STYLE)
    x, t, context, condition = inputs["x"], inputs["t"], inputs["context"], inputs["condition"]
    with pytest.raises(ValueError, match=r"condition must be a tensor of shape \[2, 3, 16, 16\]"):
        controlnet(x, t, context, condition[..., :8, :8])  # the size of x, not 2x
    with pytest.raises(ValueError, match="condition must be a tensor of shape"):
        controlnet(x, t, context, condition[:, :1])
    with pytest.raises(ValueError, match="condition must be a tensor of shape"):
        controlnet(x, t, context, condition[:1])
    with pytest.raises(TypeError, match="condition must be a floating-point tensor"):
        controlnet(x, t, context, (condition > 0.5).long())
    with pytest.raises(ValueError, match="conditioning_scale must be a finite number"):
        controlnet(x, t, context, condition, conditioning_scale=float("nan"))
    with pytest.raises(ValueError, match="conditioning_scale must be a finite number"):
        ControlledUNet(base, controlnet)(x, t, context, condition, conditioning_scale=float("inf"))
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        controlnet(x, t, context[..., :4], condition)
    with pytest.raises(ValueError, match="x must have 4 channels"):
        controlnet(x[:, :2], t, context, condition)
    with pytest.raises(TypeError, match="config must be a ControlNetConfig"):
        ControlNet(SD_STYLE)
    with pytest.raises(TypeError, match="unet must be a ConditionalUNet"):
        ControlNet.from_unet(controlnet)
    other = ControlNet.from_unet(_base(SDXL_STYLE), conditioning_embedding_out_channels=E_WIDTHS)
    with pytest.raises(ValueError, match="do not match"):
        ControlledUNet(base, other)
    with pytest.raises(TypeError, match="controlnet must be a ControlNet"):
        ControlledUNet(base, base)
    with pytest.raises(ValueError, match="conditioning_embedding_out_channels must be a non-empty"):
        ControlNetConfig(**{**SD_STYLE.__dict__, "conditioning_embedding_out_channels": ()})
