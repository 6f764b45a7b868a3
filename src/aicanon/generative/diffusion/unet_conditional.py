"""The conditional diffusion UNet: cross-attention to a sequence of condition embeddings (text or
class tokens), SDXL's added conditioning, and the residual inputs ControlNet attaches through.

The latent-diffusion UNet (Rombach et al. 2022) that ControlNet and SDXL build on: the residual
blocks, resampling and timestep embedding of :mod:`.unet`, with a spatial transformer at the chosen
levels instead of plain self-attention: GroupNorm → projection in → ``transformer_layers`` blocks of
[LayerNorm → self-attention, LayerNorm → cross-attention to ``encoder_hidden_states``, LayerNorm →
GEGLU feed-forward (4× width)], each with a residual → projection out, plus the block's residual.

Conditioning, all summed into the timestep embedding:

* ``class_labels`` with ``num_classes`` (a learned vector per class);
* SDXL's micro-conditioning (Podell et al. 2023, Section 2.2, ``addition_time_embed_dim``): every
  scalar of ``time_ids`` (original size, crop coordinates, target size, …) gets its own sinusoidal
  embedding of ``addition_time_embed_dim`` features; they are concatenated with the pooled
  ``text_embeds`` and mapped by Linear → SiLU → Linear to the embedding width.

ControlNet (Zhang et al. 2023, Section 3.2) adds its outputs to the skip connections and to the
middle block's output: ``down_residuals`` (one tensor per skip, in order) and ``mid_residual``.

The module and parameter names are those of diffusers' ``UNet2DConditionModel``, so its state dict
loads as it is (:func:`config_from_diffusers` translates its config and refuses options not
implemented here). Note diffusers' naming: its ``attention_head_dim`` counts *heads*; ours is
``heads``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_probability, check_tensor
from aicanon.generative.diffusion.unet import (
    DownLevel,
    MidBlock,
    TimestepEmbedding,
    UpLevel,
    timestep_embedding,
)

__all__ = ["ConditionalUNet", "ConditionalUNetConfig", "config_from_diffusers", "config_to_diffusers"]


@dataclass
class ConditionalUNetConfig:
    """Sizes and options of a :class:`ConditionalUNet` (module docstring)."""

    in_channels: int = 4
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    cross_attention_levels: tuple[bool, ...] = (True, True, True, False)
    heads: int = 8
    cross_attention_dim: int = 768
    transformer_layers: int = 1
    linear_projection: bool = False
    norm_groups: int = 32
    norm_eps: float = 1e-5
    dropout: float = 0.0
    num_classes: int | None = None
    addition_time_embed_dim: int | None = None
    """SDXL: features per micro-conditioning scalar; None: no added conditioning."""
    addition_input_dim: int | None = None
    """SDXL: pooled text width + number of time_ids × addition_time_embed_dim."""

    # What the shared residual blocks read (no AdaGN, no rescaled residuals in this family).
    time_scale_shift: bool = False
    residual_scale: float = 1.0

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(self.block_out_channels)
        self.cross_attention_levels = tuple(bool(a) for a in self.cross_attention_levels)
        if len(self.cross_attention_levels) != len(self.block_out_channels):
            raise ValueError("cross_attention_levels must have one entry per level of block_out_channels")
        for width in self.block_out_channels:
            check_int("block_out_channels", width)
            if width % self.norm_groups or width % self.heads:
                raise ValueError(
                    f"block_out_channels must be multiples of norm_groups={self.norm_groups} "
                    f"and heads={self.heads}, "
                    f"got {width}"
                )
        for name in (
            "in_channels",
            "out_channels",
            "layers_per_block",
            "heads",
            "cross_attention_dim",
            "transformer_layers",
        ):
            check_int(name, getattr(self, name))
        check_int("num_classes", self.num_classes, allow_none=True)
        check_int("addition_time_embed_dim", self.addition_time_embed_dim, allow_none=True)
        check_int("addition_input_dim", self.addition_input_dim, allow_none=True)
        if (self.addition_time_embed_dim is None) != (self.addition_input_dim is None):
            raise ValueError("addition_time_embed_dim and addition_input_dim must be given together")
        check_probability("dropout", self.dropout, allow_one=False)

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.block_out_channels[0]


class Attention(nn.Module):
    """Multi-head attention from ``x`` to ``context`` (``x`` itself when None); projections without bias."""

    def __init__(self, query_dim: int, context_dim: int | None, heads: int) -> None:
        super().__init__()
        context_dim = context_dim or query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, query_dim, bias=False)
        self.to_k = nn.Linear(context_dim, query_dim, bias=False)
        self.to_v = nn.Linear(context_dim, query_dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(query_dim, query_dim), nn.Dropout(0.0)])

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        context = x if context is None else context
        b, n, d = x.shape

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2)

        h = F.scaled_dot_product_attention(
            split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        )
        return self.to_out[0](h.transpose(1, 2).reshape(b, n, d))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x: Tensor) -> Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Dropout(dropout), nn.Linear(4 * dim, dim)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, None, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, context_dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    """The spatial transformer: image positions as tokens, cross-attending to ``context``."""

    def __init__(self, channels: int, cfg: ConditionalUNetConfig) -> None:
        super().__init__()
        self.linear = cfg.linear_projection
        self.norm = nn.GroupNorm(cfg.norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels) if self.linear else nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(channels, cfg.heads, cfg.cross_attention_dim)
            for _ in range(cfg.transformer_layers)
        )
        self.proj_out = nn.Linear(channels, channels) if self.linear else nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, height, width = x.shape
        h = self.norm(x)
        if not self.linear:
            h = self.proj_in(h)
        h = h.permute(0, 2, 3, 1).reshape(b, height * width, c)
        if self.linear:
            h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, context)
        if self.linear:
            h = self.proj_out(h)
        h = h.reshape(b, height, width, c).permute(0, 3, 1, 2)
        if not self.linear:
            h = self.proj_out(h)
        return h + x


class ConditionalUNet(nn.Module):
    """``forward(x, t, encoder_hidden_states, …) -> [B, out_channels, H, W]`` (module docstring)."""

    def __init__(self, config: ConditionalUNetConfig) -> None:
        super().__init__()
        if not isinstance(config, ConditionalUNetConfig):
            raise TypeError(f"config must be a ConditionalUNetConfig, got {type(config).__name__}")
        self.config = cfg = config
        widths = cfg.block_out_channels
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(widths[0], cfg.time_embed_dim)
        self.class_embedding = nn.Embedding(cfg.num_classes, cfg.time_embed_dim) if cfg.num_classes else None
        self.add_embedding = (
            TimestepEmbedding(cfg.addition_input_dim, cfg.time_embed_dim) if cfg.addition_input_dim else None
        )
        self.down_blocks = nn.ModuleList()
        skip_channels, previous = [widths[0]], widths[0]

        def attention(channels: int) -> nn.Module:
            return Transformer2D(channels, cfg)

        for level, (width, attends) in enumerate(zip(widths, cfg.cross_attention_levels, strict=True)):
            last = level == len(widths) - 1
            self.down_blocks.append(
                DownLevel(previous, width, cfg, attention=attention if attends else None, last=last)
            )
            skip_channels += [width] * (cfg.layers_per_block + (0 if last else 1))
            previous = width
        self.skip_channels = tuple(skip_channels)
        self.mid_block = MidBlock(widths[-1], cfg, attention=Transformer2D(widths[-1], cfg))
        self.up_blocks = nn.ModuleList()
        for level, (width, attends) in enumerate(
            zip(reversed(widths), reversed(cfg.cross_attention_levels), strict=True)
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
                )
            )
            previous = width
        self.conv_norm_out = nn.GroupNorm(cfg.norm_groups, widths[0], eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(widths[0], cfg.out_channels, 3, padding=1)

    def embed(
        self,
        t: Tensor | float | int,
        batch: int,
        device: torch.device,
        dtype: torch.dtype,
        class_labels: Tensor | None = None,
        text_embeds: Tensor | None = None,
        time_ids: Tensor | None = None,
    ) -> Tensor:
        """The summed embedding of the timestep and every condition ``[B, time_embed_dim]``."""
        cfg = self.config
        t = torch.as_tensor(t, device=device)
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must be a scalar or of shape [{batch}], got {tuple(t.shape)}")
        emb = self.time_embedding(timestep_embedding(t, cfg.block_out_channels[0]).to(dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("this UNet is class-conditional: class_labels must be given")
            check_tensor("class_labels", class_labels, shape=(batch,), dtype=(torch.long, torch.int))
            emb = emb + self.class_embedding(class_labels).to(emb.dtype)
        elif class_labels is not None:
            raise ValueError("class_labels given to a UNet without num_classes")
        if self.add_embedding is not None:
            if text_embeds is None or time_ids is None:
                raise ValueError(
                    "this UNet has SDXL's added conditioning: text_embeds and time_ids must be given"
                )
            check_tensor("text_embeds", text_embeds, dim=2, floating=True)
            check_tensor("time_ids", time_ids, dim=2)
            features = timestep_embedding(time_ids.flatten(), cfg.addition_time_embed_dim).reshape(batch, -1)
            added = torch.cat([text_embeds, features.to(text_embeds.dtype)], dim=-1)
            if added.shape[1] != cfg.addition_input_dim:
                raise ValueError(
                    f"text_embeds ({text_embeds.shape[1]}) + time_ids ({time_ids.shape[1]} x "
                    f"{cfg.addition_time_embed_dim}) must give addition_input_dim={cfg.addition_input_dim} "
                    "features, "
                    f"got {added.shape[1]}"
                )
            emb = emb + self.add_embedding(added.to(emb.dtype))
        return emb

    def forward(
        self,
        x: Tensor,
        t: Tensor | float | int,
        encoder_hidden_states: Tensor,
        *,
        class_labels: Tensor | None = None,
        text_embeds: Tensor | None = None,
        time_ids: Tensor | None = None,
        down_residuals: list[Tensor] | tuple[Tensor, ...] | None = None,
        mid_residual: Tensor | None = None,
    ) -> Tensor:
        cfg = self.config
        check_tensor("x", x, dim=4, floating=True)
        if x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must have {cfg.in_channels} channels, got {x.shape[1]}")
        factor = 2 ** (len(cfg.block_out_channels) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"x's height and width must be multiples of {factor}, got {tuple(x.shape[2:])}")
        check_tensor(
            "encoder_hidden_states",
            encoder_hidden_states,
            shape=(x.shape[0], None, cfg.cross_attention_dim),
            floating=True,
        )
        emb = self.embed(t, x.shape[0], x.device, x.dtype, class_labels, text_embeds, time_ids)
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h, outputs = block(h, emb, encoder_hidden_states)
            skips += outputs
        if down_residuals is not None:
            if len(down_residuals) != len(skips):
                raise ValueError(
                    f"down_residuals must hold {len(skips)} tensors (one per skip), got {len(down_residuals)}"
                )
            for i, (skip, residual) in enumerate(zip(skips, down_residuals, strict=True)):
                if residual.shape != skip.shape:
                    raise ValueError(
                        f"down_residuals[{i}] must have shape {tuple(skip.shape)}, "
                        f"got {tuple(residual.shape)}"
                    )
            skips = [s + r for s, r in zip(skips, down_residuals, strict=True)]
        h = self.mid_block(h, emb, encoder_hidden_states)
        if mid_residual is not None:
            check_tensor("mid_residual", mid_residual, shape=tuple(h.shape))
            h = h + mid_residual
        for block in self.up_blocks:
            h = block(h, skips, emb, encoder_hidden_states)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


_SUPPORTED = {
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "only_cross_attention": False,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "reverse_transformer_layers_per_block": None,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "num_attention_heads": None,
    "dual_cross_attention": False,
    "class_embed_type": None,
    "upcast_attention": False,
    "resnet_time_scale_shift": "default",
    "resnet_skip_time_act": False,
    "resnet_out_scale_factor": 1.0,
    "time_embedding_type": "positional",
    "time_embedding_dim": None,
    "time_embedding_act_fn": None,
    "timestep_post_act": None,
    "time_cond_proj_dim": None,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "attention_type": "default",
    "class_embeddings_concat": False,
    "mid_block_only_cross_attention": None,
    "cross_attention_norm": None,
}


def _one(value: Any, name: str) -> int:
    """diffusers allows per-level lists for some options; we support one value for all levels."""
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"diffusers option {name}={value!r} varies by level, which is not supported")
        return value[0]
    return value


def config_from_diffusers(config: dict[str, Any]) -> ConditionalUNetConfig:
    """Our config of a diffusers ``UNet2DConditionModel`` config; unsupported options are refused."""
    config = dict(config)
    for key, allowed in _SUPPORTED.items():
        if key in config and config[key] != allowed:
            raise ValueError(
                f"diffusers option {key}={config[key]!r} is not supported (supported: {allowed!r})"
            )
    down, up = list(config["down_block_types"]), list(config["up_block_types"])
    allowed_down, allowed_up = {"DownBlock2D", "CrossAttnDownBlock2D"}, {"UpBlock2D", "CrossAttnUpBlock2D"}
    if not set(down) <= allowed_down or not set(up) <= allowed_up:
        raise ValueError(
            f"block types {down} / {up} are not supported (supported: {sorted(allowed_down | allowed_up)})"
        )
    levels = [name == "CrossAttnDownBlock2D" for name in down]
    if [name == "CrossAttnUpBlock2D" for name in reversed(up)] != levels:
        raise ValueError("up_block_types must mirror down_block_types")
    addition = config.get("addition_embed_type")
    if addition not in (None, "text_time"):
        raise ValueError(
            f"diffusers option addition_embed_type={addition!r} is not supported (None or 'text_time')"
        )
    return ConditionalUNetConfig(
        in_channels=config.get("in_channels", 4),
        out_channels=config.get("out_channels", 4),
        block_out_channels=tuple(config["block_out_channels"]),
        layers_per_block=_one(config.get("layers_per_block", 2), "layers_per_block"),
        cross_attention_levels=tuple(levels),
        heads=_one(config.get("attention_head_dim", 8), "attention_head_dim"),
        cross_attention_dim=_one(config.get("cross_attention_dim", 1280), "cross_attention_dim"),
        transformer_layers=_one(
            config.get("transformer_layers_per_block", 1), "transformer_layers_per_block"
        ),
        linear_projection=bool(config.get("use_linear_projection", False)),
        norm_groups=config.get("norm_num_groups", 32),
        norm_eps=config.get("norm_eps", 1e-5),
        dropout=config.get("dropout", 0.0),
        num_classes=config.get("num_class_embeds"),
        addition_time_embed_dim=config.get("addition_time_embed_dim") if addition else None,
        addition_input_dim=config.get("projection_class_embeddings_input_dim") if addition else None,
    )


def config_to_diffusers(cfg: ConditionalUNetConfig, sample_size: int | None = None) -> dict[str, Any]:
    """The ``UNet2DConditionModel`` config of the same network."""
    levels = cfg.cross_attention_levels
    return {
        "sample_size": sample_size,
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "block_out_channels": list(cfg.block_out_channels),
        "layers_per_block": cfg.layers_per_block,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in levels],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels)],
        "attention_head_dim": cfg.heads,
        "cross_attention_dim": cfg.cross_attention_dim,
        "transformer_layers_per_block": cfg.transformer_layers,
        "use_linear_projection": cfg.linear_projection,
        "norm_num_groups": cfg.norm_groups,
        "norm_eps": cfg.norm_eps,
        "dropout": cfg.dropout,
        "num_class_embeds": cfg.num_classes,
        "addition_embed_type": "text_time" if cfg.addition_time_embed_dim else None,
        "addition_time_embed_dim": cfg.addition_time_embed_dim,
        "projection_class_embeddings_input_dim": cfg.addition_input_dim,
    }
