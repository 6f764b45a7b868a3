"""The diffusion UNet family: Ho et al. (2020)'s UNet and the ADM options of Dhariwal & Nichol (2021).

A UNet over images ``[B, C, H, W]`` conditioned on the timestep (and optionally a class):

* timestep embedding: sinusoidal features of t (cos first, frequencies 10000^(−i/half), as in ADM's
  code) through Linear → SiLU → Linear to ``4 × block_out_channels[0]``; a class embedding (one
  vector per class) is added to it (ADM Section 3, "class embedding");
* residual blocks: GroupNorm → SiLU → conv → (+ embedding) → GroupNorm → SiLU → dropout → conv, with
  a 1×1 shortcut when the width changes. ``time_scale_shift=True`` is ADM's adaptive group
  normalisation (AdaGN, Section 3): the embedding gives a scale and shift, GroupNorm(h)·(1 + s) + b;
* self-attention blocks at the levels in ``attention_levels`` (ADM: at 32, 16 and 8 pixels) with
  ``attention_head_dim`` channels per head (ADM: 64), GroupNorm before, residual after;
* down/up-sampling between levels by a strided / nearest-upsampled conv (``resample="conv"``, Ho et
  al.) or by a residual block that average-pools / upsamples inside (``resample="resnet"``, BigGAN's
  up/down blocks used by ADM);
* ``residual_scale`` divides every residual sum by it (ADM's "rescale residual connections by 1/√2":
  ``residual_scale=√2``); skip connections from every down-path output into the up path.

The module and parameter names are diffusers' ``UNet2DModel`` (``conv_in``, ``time_embedding``,
``down_blocks.i.resnets.j``, ``…attentions.j.to_q``, ``mid_block``, ``up_blocks``, ``conv_out``), so
a diffusers checkpoint's state dict loads as it is: :func:`config_from_diffusers` and
:func:`config_to_diffusers` translate the configuration both ways (options diffusers' UNet2DModel does
not have are refused there, never dropped). One diffusers convention is kept for that reason: with
``time_scale_shift`` the middle block's attention has no GroupNorm of its own
(``mid_attention_norm=False``, which :func:`config_from_diffusers` sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_probability, check_tensor

__all__ = [
    "UNet",
    "UNetConfig",
    "config_from_diffusers",
    "config_to_diffusers",
    "timestep_embedding",
]


@dataclass
class UNetConfig:
    """Sizes and options of a :class:`UNet` (see the module docstring)."""

    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple[int, ...] = (128, 256, 256, 256)
    layers_per_block: int = 2
    attention_levels: tuple[bool, ...] = (False, True, False, False)
    """Whether each level (by index into ``block_out_channels``) has attention blocks."""
    attention_head_dim: int | None = None
    """Channels per head (ADM: 64); None: one head over all channels of the level."""
    mid_attention: bool = True
    mid_attention_norm: bool = True
    num_classes: int | None = None
    time_scale_shift: bool = False
    resample: str = "conv"
    norm_groups: int = 32
    norm_eps: float = 1e-5
    dropout: float = 0.0
    residual_scale: float = 1.0
    mid_residual_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)
    """Unused by the model; kept so a config round-trips with metadata."""

    def __post_init__(self) -> None:
        check_int("in_channels", self.in_channels)
        check_int("out_channels", self.out_channels)
        self.block_out_channels = tuple(self.block_out_channels)
        self.attention_levels = tuple(bool(a) for a in self.attention_levels)
        if not self.block_out_channels:
            raise ValueError("block_out_channels must name at least one level")
        for width in self.block_out_channels:
            check_int("block_out_channels", width)
            if width % self.norm_groups:
                raise ValueError(
                    f"block_out_channels must be multiples of norm_groups={self.norm_groups}, got {width}"
                )
        if len(self.attention_levels) != len(self.block_out_channels):
            raise ValueError(
                f"attention_levels must have one entry per level ({len(self.block_out_channels)}), "
                f"got {len(self.attention_levels)}"
            )
        check_int("layers_per_block", self.layers_per_block)
        check_int("attention_head_dim", self.attention_head_dim, allow_none=True)
        check_int("num_classes", self.num_classes, allow_none=True)
        check_choice("resample", self.resample, ("conv", "resnet"))
        check_int("norm_groups", self.norm_groups)
        check_float("norm_eps", self.norm_eps, 0.0, min_inclusive=False)
        check_probability("dropout", self.dropout, allow_one=False)
        check_float("residual_scale", self.residual_scale, 0.0, min_inclusive=False, finite=True)
        check_float("mid_residual_scale", self.mid_residual_scale, 0.0, min_inclusive=False, finite=True)
        if self.attention_head_dim is not None:
            for width, attends in zip(self.block_out_channels, self.attention_levels, strict=True):
                if attends and width % self.attention_head_dim:
                    raise ValueError(
                        f"attention_head_dim={self.attention_head_dim} must divide every attending level's "
                        f"width, got {width}"
                    )

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.block_out_channels[0]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features ``[B, dim]`` of (possibly fractional) timesteps: cos then sin of
    t · max_period^(−i/half) for i < half (ADM's order; diffusers' ``flip_sin_to_cos=True``)."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    angles = t.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(embedding, (0, 1)) if dim % 2 else embedding


class TimestepEmbedding(nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, out_features)
        self.linear_2 = nn.Linear(out_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock(nn.Module):
    """A residual block with the embedding added (or AdaGN), optionally resampling inside (BigGAN)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cfg: UNetConfig,
        *,
        resample: str | None = None,
        residual_scale: float | None = None,
    ) -> None:
        super().__init__()
        groups, eps = cfg.norm_groups, cfg.norm_eps
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.scale_shift = cfg.time_scale_shift
        self.time_emb_proj = nn.Linear(cfg.time_embed_dim, out_channels * (2 if self.scale_shift else 1))
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        self.resample = resample  # None, "down" (average pool) or "up" (nearest)
        self.residual_scale = cfg.residual_scale if residual_scale is None else residual_scale

    def _resample(self, x: Tensor) -> Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = F.silu(self.norm1(x))
        h, x = self._resample(h), self._resample(x)
        h = self.conv1(h)
        projected = self.time_emb_proj(F.silu(emb))[:, :, None, None]
        if self.scale_shift:  # AdaGN: GroupNorm(h)(1 + scale) + shift
            scale, shift = projected.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + projected)
        h = self.conv2(self.dropout(F.silu(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.residual_scale


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H·W positions, GroupNorm before, residual after."""

    def __init__(
        self, channels: int, cfg: UNetConfig, *, norm: bool = True, residual_scale: float | None = None
    ):
        super().__init__()
        head_dim = cfg.attention_head_dim or channels
        self.heads = channels // head_dim
        self.group_norm = nn.GroupNorm(cfg.norm_groups, channels, eps=cfg.norm_eps) if norm else None
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])
        self.residual_scale = cfg.residual_scale if residual_scale is None else residual_scale

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        h = self.group_norm(x) if self.group_norm is not None else x
        h = h.reshape(b, c, height * width).transpose(1, 2)
        q, k, v = (
            proj(h).reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)
            for proj in (self.to_q, self.to_k, self.to_v)
        )
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, height * width, c)
        h = self.to_out[0](h).transpose(1, 2).reshape(b, c, height, width)
        return (x + h) / self.residual_scale


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


AttentionFactory = Callable[[int], nn.Module]


class DownLevel(nn.Module):
    """One level of the down path: ``layers_per_block`` residual blocks, each followed by an attention
    block when ``attention`` (a factory ``channels -> module``) is given, then a resampler unless it is
    the last level. Extra arguments of ``forward`` go to the attention blocks (the conditional UNet's
    cross-attention context); every block's output is a skip connection."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cfg: Any,
        *,
        attention: AttentionFactory | None = None,
        last: bool = False,
        resample: str = "conv",
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, cfg)
            for i in range(cfg.layers_per_block)
        )
        if attention is not None:
            self.attentions = nn.ModuleList(attention(out_channels) for _ in range(cfg.layers_per_block))
        if not last:
            sampler = (
                ResnetBlock(out_channels, out_channels, cfg, resample="down")
                if resample == "resnet"
                else Downsample(out_channels)
            )
            self.downsamplers = nn.ModuleList([sampler])

    def forward(self, x: Tensor, emb: Tensor, *context: Tensor) -> tuple[Tensor, list[Tensor]]:
        outputs = []
        attentions = getattr(self, "attentions", None)
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, emb)
            if attentions is not None:
                x = attentions[i](x, *context)
            outputs.append(x)
        if hasattr(self, "downsamplers"):
            sampler = self.downsamplers[0]
            x = sampler(x, emb) if isinstance(sampler, ResnetBlock) else sampler(x)
            outputs.append(x)
        return x, outputs


class UpLevel(nn.Module):
    """One level of the up path: a residual block per skip it consumes (the skip concatenated to its
    input), each followed by an attention block when ``attention`` is given, then a resampler unless
    it is the last level (:class:`DownLevel` for the arguments)."""

    def __init__(
        self,
        skip_channels: list[int],
        previous: int,
        out_channels: int,
        cfg: Any,
        *,
        attention: AttentionFactory | None = None,
        last: bool = False,
        resample: str = "conv",
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock((previous if i == 0 else out_channels) + skip, out_channels, cfg)
            for i, skip in enumerate(skip_channels)
        )
        if attention is not None:
            self.attentions = nn.ModuleList(attention(out_channels) for _ in skip_channels)
        if not last:
            sampler = (
                ResnetBlock(out_channels, out_channels, cfg, resample="up")
                if resample == "resnet"
                else Upsample(out_channels)
            )
            self.upsamplers = nn.ModuleList([sampler])

    def forward(self, x: Tensor, skips: list[Tensor], emb: Tensor, *context: Tensor) -> Tensor:
        attentions = getattr(self, "attentions", None)
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), emb)
            if attentions is not None:
                x = attentions[i](x, *context)
        if hasattr(self, "upsamplers"):
            sampler = self.upsamplers[0]
            x = sampler(x, emb) if isinstance(sampler, ResnetBlock) else sampler(x)
        return x


class MidBlock(nn.Module):
    """Residual block → attention (when given; extra ``forward`` arguments go to it) → residual block."""

    def __init__(
        self,
        channels: int,
        cfg: Any,
        *,
        attention: nn.Module | None = None,
        residual_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(channels, channels, cfg, residual_scale=residual_scale) for _ in range(2)
        )
        if attention is not None:
            self.attentions = nn.ModuleList([attention])

    def forward(self, x: Tensor, emb: Tensor, *context: Tensor) -> Tensor:
        x = self.resnets[0](x, emb)
        if hasattr(self, "attentions"):
            x = self.attentions[0](x, *context)
        return self.resnets[1](x, emb)


class UNet(nn.Module):
    """``forward(x, t, class_labels=None) -> [B, out_channels, H, W]``; H and W divisible by
    2^(levels − 1). ``t`` is ``[B]`` (or a scalar) of timesteps, integer or fractional."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = cfg = config
        widths = cfg.block_out_channels
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(widths[0], cfg.time_embed_dim)
        self.class_embedding = nn.Embedding(cfg.num_classes, cfg.time_embed_dim) if cfg.num_classes else None
        self.down_blocks = nn.ModuleList()
        skip_channels = [widths[0]]
        previous = widths[0]

        def attention(channels: int) -> nn.Module:
            return AttentionBlock(channels, cfg)

        for level, (width, attends) in enumerate(zip(widths, cfg.attention_levels, strict=True)):
            last = level == len(widths) - 1
            self.down_blocks.append(
                DownLevel(
                    previous,
                    width,
                    cfg,
                    attention=attention if attends else None,
                    last=last,
                    resample=cfg.resample,
                )
            )
            skip_channels += [width] * (cfg.layers_per_block + (0 if last else 1))
            previous = width
        mid_attention = (
            AttentionBlock(
                widths[-1], cfg, norm=cfg.mid_attention_norm, residual_scale=cfg.mid_residual_scale
            )
            if cfg.mid_attention
            else None
        )
        self.mid_block = MidBlock(
            widths[-1], cfg, attention=mid_attention, residual_scale=cfg.mid_residual_scale
        )
        self.up_blocks = nn.ModuleList()
        for level, (width, attends) in enumerate(
            zip(reversed(widths), reversed(cfg.attention_levels), strict=True)
        ):
            skips = [skip_channels.pop() for _ in range(cfg.layers_per_block + 1)]
            self.up_blocks.append(
                UpLevel(
                    skips,
                    previous,
                    width,
                    cfg,
                    attention=attention if attends else None,
                    last=level == len(widths) - 1,
                    resample=cfg.resample,
                )
            )
            previous = width
        self.conv_norm_out = nn.GroupNorm(cfg.norm_groups, widths[0], eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(widths[0], cfg.out_channels, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor | float | int, class_labels: Tensor | None = None) -> Tensor:
        cfg = self.config
        check_tensor("x", x, dim=4, floating=True)
        if x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must have {cfg.in_channels} channels, got {x.shape[1]}")
        factor = 2 ** (len(cfg.block_out_channels) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"x's height and width must be multiples of {factor}, got {tuple(x.shape[2:])}")
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or of shape [{x.shape[0]}], got {tuple(t.shape)}")
        emb = self.time_embedding(timestep_embedding(t, cfg.block_out_channels[0]).to(x.dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("this UNet is class-conditional: class_labels must be given")
            check_tensor("class_labels", class_labels, shape=(x.shape[0],), dtype=(torch.long, torch.int))
            if int(class_labels.min()) < 0 or int(class_labels.max()) >= cfg.num_classes:
                raise ValueError(
                    f"class_labels must be in [0, {cfg.num_classes}), got {class_labels.tolist()[:8]}"
                )
            emb = emb + self.class_embedding(class_labels).to(emb.dtype)
        elif class_labels is not None:
            raise ValueError("class_labels given to a UNet without num_classes")
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h, outputs = block(h, emb)
            skips += outputs
        h = self.mid_block(h, emb)
        for block in self.up_blocks:
            h = block(h, skips, emb)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def config_to_diffusers(cfg: UNetConfig, sample_size: int | None = None) -> dict[str, Any]:
    """The ``UNet2DModel`` config of the same network (its state dict then loads as ours).
    ``residual_scale`` != 1 has no UNet2DModel counterpart and is refused."""
    if cfg.residual_scale != 1.0:
        raise ValueError("residual_scale != 1 has no diffusers UNet2DModel option")
    if cfg.time_scale_shift and cfg.mid_attention and cfg.mid_attention_norm:
        raise ValueError(
            "diffusers' scale-shift UNet2DModel has no GroupNorm in the middle attention: "
            "set mid_attention_norm=False"
        )
    if not cfg.time_scale_shift and not cfg.mid_attention_norm:
        raise ValueError("diffusers' UNet2DModel always normalises the middle attention without scale-shift")
    down, up = [], []
    for attends in cfg.attention_levels:
        if attends:
            down.append("AttnDownBlock2D")
        else:
            down.append("ResnetDownsampleBlock2D" if cfg.resample == "resnet" else "DownBlock2D")
    for attends in reversed(cfg.attention_levels):
        if attends:
            up.append("AttnUpBlock2D")
        else:
            up.append("ResnetUpsampleBlock2D" if cfg.resample == "resnet" else "UpBlock2D")
    return {
        "sample_size": sample_size,
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "block_out_channels": list(cfg.block_out_channels),
        "layers_per_block": cfg.layers_per_block,
        "down_block_types": down,
        "up_block_types": up,
        "attention_head_dim": cfg.attention_head_dim,
        "norm_num_groups": cfg.norm_groups,
        "norm_eps": cfg.norm_eps,
        "dropout": cfg.dropout,
        "num_class_embeds": cfg.num_classes,
        "resnet_time_scale_shift": "scale_shift" if cfg.time_scale_shift else "default",
        "downsample_type": cfg.resample,
        "upsample_type": cfg.resample,
        "add_attention": cfg.mid_attention,
        "mid_block_scale_factor": cfg.mid_residual_scale,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "time_embedding_type": "positional",
        "act_fn": "silu",
        "center_input_sample": False,
    }


_SUPPORTED_DIFFUSERS = {
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "time_embedding_type": "positional",
    "act_fn": "silu",
    "center_input_sample": False,
    "class_embed_type": None,
    "downsample_padding": 1,
    "resnet_time_scale_shift": ("default", "scale_shift"),
    "attn_norm_num_groups": None,
    "num_train_timesteps": None,
}


def config_from_diffusers(config: dict[str, Any]) -> UNetConfig:
    """Our config of a diffusers ``UNet2DModel`` config (a dict, e.g. its ``config.json``). Any option
    that changes the function and is not implemented here is refused with its name."""
    if not isinstance(config, dict):
        config = dict(config)
    for key, allowed in _SUPPORTED_DIFFUSERS.items():
        if key in config:
            value = config[key]
            ok = value in allowed if isinstance(allowed, tuple) else value == allowed
            if not ok:
                raise ValueError(
                    f"diffusers option {key}={value!r} is not supported (supported: {allowed!r})"
                )
    down, up = list(config["down_block_types"]), list(config["up_block_types"])
    known_down = {"DownBlock2D": "conv", "AttnDownBlock2D": None, "ResnetDownsampleBlock2D": "resnet"}
    known_up = {"UpBlock2D": "conv", "AttnUpBlock2D": None, "ResnetUpsampleBlock2D": "resnet"}
    for name in down:
        if name not in known_down:
            raise ValueError(
                f"diffusers down block {name!r} is not supported (supported: {sorted(known_down)})"
            )
    for name in up:
        if name not in known_up:
            raise ValueError(f"diffusers up block {name!r} is not supported (supported: {sorted(known_up)})")
    attention = [name == "AttnDownBlock2D" for name in down]
    if [name == "AttnUpBlock2D" for name in reversed(up)] != attention:
        raise ValueError("up_block_types must mirror down_block_types (attention at the same levels)")
    resample = config.get("downsample_type", "conv")
    implied = {known_down[n] for n in down if known_down[n]} | {known_up[n] for n in up if known_up[n]}
    if config.get("upsample_type", "conv") != resample or (implied and implied != {resample}):
        raise ValueError("mixed resampling (conv and resnet) across levels is not supported")
    scale_shift = config.get("resnet_time_scale_shift", "default") == "scale_shift"
    return UNetConfig(
        in_channels=config.get("in_channels", 3),
        out_channels=config.get("out_channels", 3),
        block_out_channels=tuple(config["block_out_channels"]),
        layers_per_block=config.get("layers_per_block", 2),
        attention_levels=tuple(attention),
        attention_head_dim=config.get("attention_head_dim", 8),
        mid_attention=config.get("add_attention", True),
        mid_attention_norm=not scale_shift,
        num_classes=config.get("num_class_embeds"),
        time_scale_shift=scale_shift,
        resample=resample,
        norm_groups=config.get("norm_num_groups", 32),
        norm_eps=config.get("norm_eps", 1e-5),
        dropout=config.get("dropout", 0.0),
        mid_residual_scale=config.get("mid_block_scale_factor", 1.0),
    )
