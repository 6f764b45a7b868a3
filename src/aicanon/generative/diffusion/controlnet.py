"""ControlNet: spatial conditions (edges, depth, pose …) added to a frozen diffusion UNet through a
trainable copy of its encoder and zero-initialised convolutions (Zhang, Rao & Agrawala 2023).

A neural block ``F(·; Θ)`` maps a feature map ``x`` to ``y`` (Eq. 1):

    y = F(x; Θ).

ControlNet locks Θ and clones the block into a *trainable copy* with parameters Θ_c that reads the
condition ``c``; the copy is joined to the locked block by two *zero convolutions* Z(·; Θ_z1),
Z(·; Θ_z2), 1×1 convolutions whose weight and bias start at zero (Eq. 2):

    y_c = F(x; Θ) + Z(F(x + Z(c; Θ_z1); Θ_c); Θ_z2).

At initialisation both zero convolutions output zero, so ``y_c = y``: the controlled model *is* the
base model, no harmful noise reaches its deep features, and training starts from its quality.
Gradients still reach the zero convolutions' weights (∂Z/∂W = input ≠ 0), so after one step they are
no longer zero and the copy starts to learn (Section 3.1).

Applied to the latent-diffusion UNet (Section 3.2, Fig. 3): the trainable copy is the encoder (the
``conv_in`` stem, the timestep/class/added embeddings, the 12 down-path blocks and the middle block
of Stable Diffusion); its inputs are the noisy latent and the condition image c_i, which a small
convolutional encoder maps to the stem's feature size, c_f = E(c_i), added after ``conv_in`` (the
first zero convolution Z(c; Θ_z1) is E's last, zero-initialised, layer); each of its skip outputs and
its middle-block output goes through its own zero convolution and is *added* to the locked UNet's
skip connection / middle-block output. Training (Section 3.3) is the ordinary denoising objective
with the condition as an extra input,

    L = E_{z_0, t, c_t, c_f, ε ~ N(0, 1)} ‖ε − ε_θ(z_t, t, c_t, c_f)‖²,

with only the ControlNet's parameters updated. At sampling a ``conditioning_scale`` (diffusers' name
for the strength of the control) multiplies every residual.

The parameter names are diffusers' ``ControlNetModel`` (``controlnet_cond_embedding.conv_in/blocks.i/
conv_out``, ``controlnet_down_blocks.i``, ``controlnet_mid_block`` beside the copied ``conv_in``,
``time_embedding``, ``down_blocks``, ``mid_block``), so a diffusers ControlNet state dict loads as it
is; :func:`config_from_diffusers` / :func:`config_to_diffusers` translate the configuration and
refuse options not implemented here.

Departures from the paper (all as in the released code and diffusers, whose checkpoints we load):

* The condition encoder E. The paper describes four 4×4 convolutions with stride 2 (16, 32, 64, 128
  channels, ReLU, Gaussian init) taking 512 px to 64 px. The released code and diffusers use
  ``conv_in`` (3×3) then, for each consecutive pair of ``conditioning_embedding_out_channels``
  (16, 32, 96, 256), a 3×3 conv and a 3×3 stride-2 conv, SiLU after each, and a zero-initialised
  3×3 ``conv_out`` to the stem's width: three stride-2 convs, 8× down (512 → 64). We follow
  diffusers. The down factor is ``2 ** (len(conditioning_embedding_out_channels) − 1)``: a condition
  must be that many times larger than ``x``. Scaling for small images: with pixel-space diffusion on
  8×8 digits and a 16×16 condition image, ``(16, 32)`` gives one stride-2 conv (2× down); a
  condition at ``x``'s own size needs a single entry (no stride-2 conv).
* E's last layer is zero-initialised (the paper's Z(c; Θ_z1)); there is no separate 1×1 zero conv on
  the condition.
* diffusers' ``guess_mode`` (residuals scaled from 0.1 to 1 by depth), ``global_pool_conditions``
  and BGR channel order are not implemented (refused when translating a config).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.generative.diffusion import unet_conditional
from aicanon.generative.diffusion.unet_conditional import ConditionalUNet, ConditionalUNetConfig

__all__ = [
    "ConditioningEmbedding",
    "ControlNet",
    "ControlNetConfig",
    "ControlledUNet",
    "config_from_diffusers",
    "config_to_diffusers",
    "zero_conv",
]


@dataclass
class ControlNetConfig(ConditionalUNetConfig):
    """The controlled UNet's config (the trainable copy has the same encoder) and the condition encoder.

    ``out_channels`` is unused by the ControlNet (it has no decoder) and kept only so the UNet's
    config can be read back from it.
    """

    conditioning_channels: int = 3
    """Channels of the condition image (3 for RGB edge/depth maps, 1 for a grey edge map)."""
    conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256)
    """Widths of the condition encoder E; its down factor is 2 ** (len − 1) (module docstring)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("conditioning_channels", self.conditioning_channels)
        if not isinstance(self.conditioning_embedding_out_channels, (tuple, list)) or not (
            self.conditioning_embedding_out_channels
        ):
            raise ValueError(
                "conditioning_embedding_out_channels must be a non-empty tuple of widths, "
                f"got {self.conditioning_embedding_out_channels!r}"
            )
        self.conditioning_embedding_out_channels = tuple(self.conditioning_embedding_out_channels)
        for width in self.conditioning_embedding_out_channels:
            check_int("conditioning_embedding_out_channels", width)

    @property
    def condition_downscale(self) -> int:
        """How many times larger than ``x`` the condition image is (E's stride-2 convs)."""
        return 2 ** (len(self.conditioning_embedding_out_channels) - 1)

    def unet_config(self) -> ConditionalUNetConfig:
        """The config of the (locked) UNet this ControlNet controls."""
        names = {f.name for f in dataclasses.fields(ConditionalUNetConfig)}
        return ConditionalUNetConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


def zero_conv(channels: int) -> nn.Conv2d:
    """A 1×1 convolution whose weight and bias are zero (Eq. 2's Z(·; Θ_z))."""
    conv = nn.Conv2d(channels, channels, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ConditioningEmbedding(nn.Module):
    """The condition encoder E: condition image ``[B, C_c, H·f, W·f]`` → ``[B, width, H, W]``.

    conv_in (3×3) → SiLU → [3×3 conv → SiLU → 3×3 stride-2 conv → SiLU] per pair of widths →
    zero-initialised 3×3 conv_out (module docstring: diffusers' layout, not the paper's 4×4 convs).
    """

    def __init__(self, out_channels: int, conditioning_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            self.blocks.append(nn.Conv2d(width_in, width_in, 3, padding=1))
            self.blocks.append(nn.Conv2d(width_in, width_out, 3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(widths[-1], out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, condition: Tensor) -> Tensor:
        h = F.silu(self.conv_in(condition))
        for conv in self.blocks:
            h = F.silu(conv(h))
        return self.conv_out(h)


class ControlNet(ConditionalUNet):
    """The trainable copy of a :class:`ConditionalUNet`'s encoder with zero convolutions.

    ``forward(x, t, encoder_hidden_states, condition, …) -> (down_residuals, mid_residual)``: one
    residual per skip connection of the UNet (in order) and one for its middle block, to be passed to
    ``ConditionalUNet.forward(…, down_residuals=…, mid_residual=…)`` (or use :class:`ControlledUNet`).

    It shares the UNet's encoder code, embeddings and parameter names (the class derives from
    :class:`ConditionalUNet` for that) and drops its decoder. Build it with :meth:`from_unet` to copy
    a trained UNet's weights, as the paper does.
    """

    def __init__(self, config: ControlNetConfig) -> None:
        if not isinstance(config, ControlNetConfig):
            raise TypeError(f"config must be a ControlNetConfig, got {type(config).__name__}")
        super().__init__(config)
        del self.up_blocks, self.conv_norm_out, self.conv_out  # the copy is the encoder only
        widths = config.block_out_channels
        self.controlnet_cond_embedding = ConditioningEmbedding(
            widths[0], config.conditioning_channels, config.conditioning_embedding_out_channels
        )
        self.controlnet_down_blocks = nn.ModuleList(zero_conv(c) for c in self.skip_channels)
        self.controlnet_mid_block = zero_conv(widths[-1])

    @classmethod
    def from_unet(
        cls,
        unet: ConditionalUNet,
        conditioning_channels: int = 3,
        conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        copy_weights: bool = True,
    ) -> ControlNet:
        """A ControlNet for ``unet``: same encoder config, and (``copy_weights``) its encoder's
        weights as the trainable copy's initial weights (Section 3.1); E and the zero convs start
        as described in the module docstring."""
        if not isinstance(unet, ConditionalUNet) or isinstance(unet, ControlNet):
            raise TypeError(f"unet must be a ConditionalUNet, got {type(unet).__name__}")
        config = ControlNetConfig(
            **dataclasses.asdict(unet.config),
            conditioning_channels=conditioning_channels,
            conditioning_embedding_out_channels=tuple(conditioning_embedding_out_channels),
        )
        controlnet = cls(config)
        if copy_weights:
            for name in ("conv_in", "time_embedding", "class_embedding", "add_embedding", "down_blocks"):
                module = getattr(unet, name)
                if module is not None:
                    getattr(controlnet, name).load_state_dict(module.state_dict())
            controlnet.mid_block.load_state_dict(unet.mid_block.state_dict())
        parameter = next(unet.parameters())
        return controlnet.to(device=parameter.device, dtype=parameter.dtype)

    def check_condition(self, condition: Tensor, x: Tensor) -> Tensor:
        """Refuse a condition whose shape does not fit ``x`` (module docstring: the down factor)."""
        cfg = self.config
        f = cfg.condition_downscale
        expected = (x.shape[0], cfg.conditioning_channels, x.shape[2] * f, x.shape[3] * f)
        check_tensor(
            "condition",
            condition,
            shape=expected,
            floating=True,
            note=f" (x is {tuple(x.shape)}; E downsamples {f}x)",
        )
        return condition

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        t: Tensor | float | int,
        encoder_hidden_states: Tensor,
        condition: Tensor,
        *,
        conditioning_scale: float = 1.0,
        class_labels: Tensor | None = None,
        text_embeds: Tensor | None = None,
        time_ids: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        cfg = self.config
        check_tensor("x", x, dim=4, floating=True)
        if x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must have {cfg.in_channels} channels, got {x.shape[1]}")
        factor = 2 ** (len(cfg.block_out_channels) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"x's height and width must be multiples of {factor}, got {tuple(x.shape[2:])}")
        self.check_condition(condition, x)
        check_tensor(
            "encoder_hidden_states",
            encoder_hidden_states,
            shape=(x.shape[0], None, cfg.cross_attention_dim),
            floating=True,
        )
        check_float("conditioning_scale", conditioning_scale, finite=True)
        emb = self.embed(t, x.shape[0], x.device, x.dtype, class_labels, text_embeds, time_ids)
        # x + Z(c; Θ_z1) of Eq. 2, at the stem: E's zero-initialised output added after conv_in.
        h = self.conv_in(x) + self.controlnet_cond_embedding(condition.to(x.dtype))
        skips = [h]
        for block in self.down_blocks:
            h, outputs = block(h, emb, encoder_hidden_states)
            skips += outputs
        h = self.mid_block(h, emb, encoder_hidden_states)
        # Z(F(…; Θ_c); Θ_z2) of Eq. 2: one zero conv per skip and one for the middle block.
        down = [
            conv(s) * conditioning_scale for conv, s in zip(self.controlnet_down_blocks, skips, strict=True)
        ]
        return down, self.controlnet_mid_block(h) * conditioning_scale


class ControlledUNet(nn.Module):
    """A locked :class:`ConditionalUNet` with a :class:`ControlNet` attached (Fig. 3).

    ``forward(x, t, encoder_hidden_states, condition, conditioning_scale=1.0, **embedding_inputs)``
    returns the base UNet's output with the ControlNet's residuals added; the base UNet's parameters
    are frozen (``requires_grad=False``), so an optimiser over ``parameters()`` that skip frozen ones
    trains the ControlNet only. A condition of ``None`` (or ``conditioning_scale=0``) gives the base
    model.
    """

    def __init__(self, unet: ConditionalUNet, controlnet: ControlNet) -> None:
        super().__init__()
        if not isinstance(unet, ConditionalUNet) or isinstance(unet, ControlNet):
            raise TypeError(f"unet must be a ConditionalUNet, got {type(unet).__name__}")
        if not isinstance(controlnet, ControlNet):
            raise TypeError(f"controlnet must be a ControlNet, got {type(controlnet).__name__}")
        if controlnet.skip_channels != unet.skip_channels:
            raise ValueError(
                f"controlnet's skips {controlnet.skip_channels} do not match unet's {unet.skip_channels}"
            )
        self.unet = unet.requires_grad_(False)
        self.controlnet = controlnet

    def forward(
        self,
        x: Tensor,
        t: Tensor | float | int,
        encoder_hidden_states: Tensor,
        condition: Tensor | None = None,
        *,
        conditioning_scale: float = 1.0,
        **embedding_inputs: Tensor | None,
    ) -> Tensor:
        if condition is None:
            return self.unet(x, t, encoder_hidden_states, **embedding_inputs)
        down, mid = self.controlnet(
            x, t, encoder_hidden_states, condition, conditioning_scale=conditioning_scale, **embedding_inputs
        )
        return self.unet(
            x, t, encoder_hidden_states, down_residuals=down, mid_residual=mid, **embedding_inputs
        )


_CONTROLNET_SUPPORTED = {"controlnet_conditioning_channel_order": "rgb", "global_pool_conditions": False}


def config_from_diffusers(config: dict[str, Any]) -> ControlNetConfig:
    """Our config of a diffusers ``ControlNetModel`` config; unsupported options are refused."""
    config = dict(config)
    for key, allowed in _CONTROLNET_SUPPORTED.items():
        if key in config and config[key] != allowed:
            raise ValueError(
                f"diffusers option {key}={config[key]!r} is not supported (supported: {allowed!r})"
            )
    widths = config.get("conditioning_embedding_out_channels", (16, 32, 96, 256))
    if not widths:
        raise ValueError(
            f"diffusers option conditioning_embedding_out_channels={widths!r} is not supported "
            "(a non-empty list of widths)"
        )
    down = list(config.get("down_block_types", ()))
    # A ControlNet has no decoder: give the UNet translation the mirror of the encoder.
    mirror = [name.replace("Down", "Up") for name in reversed(down)]
    in_channels = config.get("in_channels", 4)
    unet = unet_conditional.config_from_diffusers(
        {**config, "up_block_types": mirror, "out_channels": in_channels}
    )
    fields = dataclasses.asdict(unet)
    return ControlNetConfig(
        **fields,
        conditioning_channels=config.get("conditioning_channels", 3),
        conditioning_embedding_out_channels=tuple(widths),
    )


def config_to_diffusers(cfg: ControlNetConfig) -> dict[str, Any]:
    """The ``ControlNetModel`` keyword arguments of the same network."""
    if not isinstance(cfg, ControlNetConfig):
        raise TypeError(f"cfg must be a ControlNetConfig, got {type(cfg).__name__}")
    if cfg.dropout:
        raise ValueError(
            f"diffusers' ControlNetModel has no dropout option: dropout must be 0, got {cfg.dropout}"
        )
    config = unet_conditional.config_to_diffusers(cfg)
    for key in ("sample_size", "out_channels", "up_block_types", "dropout"):
        config.pop(key)
    config["conditioning_channels"] = cfg.conditioning_channels
    config["conditioning_embedding_out_channels"] = list(cfg.conditioning_embedding_out_channels)
    return config
