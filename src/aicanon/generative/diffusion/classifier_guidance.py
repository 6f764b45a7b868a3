"""Classifier guidance (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs on Image Synthesis",
Section 4): a classifier p_φ(y | x_t, t) trained on noised images steers a diffusion sampler
towards a class.

Conditional reverse process (Section 4.1). For an ancestral step with p_θ(x_t | x_{t+1}) = N(μ, Σ),

    p_θ,φ(x_t | x_{t+1}, y) ≈ N(μ + s Σ ∇_{x_t} log p_φ(y | x_t), Σ)                 (Algorithm 1)

and for DDIM, with ε_θ the model's noise prediction and ᾱ_t as in Ho et al.,

    ε̂(x_t) = ε_θ(x_t) − √(1 − ᾱ_t) s ∇_{x_t} log p_φ(y | x_t)                         (Eq. 14, Algorithm 2)

after which DDIM's update runs with ε̂. ``s`` is the guidance scale (Section 4.3): the gradient of
s · log p(y | x) is that of log p(y | x)^s ∝ a sharper distribution, so larger s trades diversity
(recall) for fidelity (precision, classifier accuracy) (Figure 3, Table 4).

Both updates are in :class:`aicanon.generative.diffusion.gaussian.GaussianDiffusion` already
(``p_sample``/``ddim_sample`` take ``cond_fn``); this module provides what they need:

* :class:`NoisyClassifier`: the paper's classifier (Section 4.1, "the downsampling trunk of the
  UNet model with an attention pool at the 8×8 layer"): the UNet's input convolution, timestep
  embedding, down levels and middle block (:mod:`.unet`, the same ADM options: AdaGN, BigGAN
  resampling, attention with ``attention_head_dim`` channels per head), then GroupNorm → SiLU →
  attention pooling (ADM's ``AttentionPool2d``: the mean position, prepended as a query token,
  attends over all positions with learned positional embeddings; its output is projected to the
  logits);
* :func:`classifier_loss`: its training objective, cross-entropy on x_t = q_sample(x_0, t) with t
  uniform over the chain (the classifier is told t, as it is at sampling time);
* :func:`classifier_cond_fn`: the ``cond_fn`` = s ∇_{x_t} log p_φ(y | x_t, t) the samplers call as
  ``cond_fn(x_t, t, **model_kwargs)`` (t: the original timesteps, also on a respaced chain).

Departures: the attention pool sits at the trunk's lowest resolution (4×4 for 8×8 digits; the paper's
8×8 layer of 64-256 px images); with ``pool="mean"`` a global average pool replaces it (an option,
not the paper's). The classifier is trained with uniform t over the whole chain (the paper's code's
default as well); the paper's data augmentation (random crops) is left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.unet import (
    AttentionBlock,
    DownLevel,
    MidBlock,
    TimestepEmbedding,
    UNetConfig,
    timestep_embedding,
)

__all__ = [
    "AttentionPool2d",
    "NoisyClassifier",
    "NoisyClassifierConfig",
    "classifier_cond_fn",
    "classifier_loss",
]


@dataclass
class NoisyClassifierConfig:
    """Sizes and options of a :class:`NoisyClassifier` (the UNet trunk's options, :class:`UNetConfig`)."""

    in_channels: int = 3
    image_size: int = 64
    """Height and width of the inputs (square); the pool's positional embedding is sized from it."""
    num_classes: int = 1000
    block_out_channels: tuple[int, ...] = (128, 256, 384, 512)
    layers_per_block: int = 2
    attention_levels: tuple[bool, ...] = (False, True, True, True)
    attention_head_dim: int | None = 64
    """Channels per head in the trunk's attention and in the pool (ADM: 64)."""
    time_scale_shift: bool = True
    resample: str = "resnet"
    norm_groups: int = 32
    residual_scale: float = 1.0
    dropout: float = 0.0
    pool: str = "attention"
    """``"attention"`` (the paper's attention pool) or ``"mean"`` (global average pool)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size)
        check_int("num_classes", self.num_classes, 2)
        check_choice("pool", self.pool, ("attention", "mean"))
        self.block_out_channels = tuple(self.block_out_channels)
        factor = 2 ** (len(self.block_out_channels) - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size must be a multiple of 2^(levels - 1) = {factor}, got {self.image_size}"
            )
        width = self.block_out_channels[-1] if self.block_out_channels else 0
        if self.pool == "attention" and self.attention_head_dim and width % self.attention_head_dim:
            raise ValueError(
                f"attention_head_dim={self.attention_head_dim} must divide the last width {width} (the pool)"
            )
        self.trunk()  # validates the shared options

    def trunk(self) -> UNetConfig:
        """The :class:`UNetConfig` whose down path and middle block are the trunk."""
        return UNetConfig(
            in_channels=self.in_channels,
            out_channels=self.in_channels,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            attention_levels=self.attention_levels,
            attention_head_dim=self.attention_head_dim,
            mid_attention=True,
            mid_attention_norm=not self.time_scale_shift,
            time_scale_shift=self.time_scale_shift,
            resample=self.resample,
            norm_groups=self.norm_groups,
            dropout=self.dropout,
            residual_scale=self.residual_scale,
        )


class AttentionPool2d(nn.Module):
    """ADM's attention pooling ``[B, C, H, W] → [B, out_features]``: the mean over positions is
    prepended as a token, learned positional embeddings are added, multi-head attention with the
    mean token as the query reads all H·W + 1 tokens, and a linear layer projects its output."""

    def __init__(self, positions: int, channels: int, head_dim: int | None, out_features: int) -> None:
        super().__init__()
        check_int("positions", positions)
        check_int("channels", channels)
        head_dim = head_dim or channels
        if channels % head_dim:
            raise ValueError(f"head_dim={head_dim} must divide channels={channels}")
        self.heads = channels // head_dim
        self.positional_embedding = nn.Parameter(torch.randn(positions + 1, channels) / math.sqrt(channels))
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, out_features)

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        if height * width + 1 != self.positional_embedding.shape[0]:
            raise ValueError(
                f"the pool was built for {self.positional_embedding.shape[0] - 1} positions, got "
                f"{height}x{width}"
            )
        tokens = x.reshape(b, c, height * width).transpose(1, 2)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1) + self.positional_embedding
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        q = q[:, :1]  # only the mean token's output is used: query with it alone
        q, k, v = (z.reshape(b, z.shape[1], self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        pooled = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c)
        return self.proj(pooled)


class NoisyClassifier(nn.Module):
    """``forward(x_t, t) -> logits [B, num_classes]``: the UNet's downsampling trunk conditioned on
    the timestep, then the attention pool (module docstring)."""

    def __init__(self, config: NoisyClassifierConfig) -> None:
        super().__init__()
        if not isinstance(config, NoisyClassifierConfig):
            raise TypeError(f"config must be a NoisyClassifierConfig, got {type(config).__name__}")
        self.config = config
        trunk = config.trunk()
        widths = trunk.block_out_channels
        self.conv_in = nn.Conv2d(trunk.in_channels, widths[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(widths[0], trunk.time_embed_dim)
        self.down_blocks = nn.ModuleList()
        previous = widths[0]

        def attention(channels: int) -> nn.Module:
            return AttentionBlock(channels, trunk)

        for level, (width, attends) in enumerate(zip(widths, trunk.attention_levels, strict=True)):
            self.down_blocks.append(
                DownLevel(
                    previous,
                    width,
                    trunk,
                    attention=attention if attends else None,
                    last=level == len(widths) - 1,
                    resample=trunk.resample,
                )
            )
            previous = width
        self.mid_block = MidBlock(
            widths[-1], trunk, attention=AttentionBlock(widths[-1], trunk, norm=trunk.mid_attention_norm)
        )
        self.norm_out = nn.GroupNorm(trunk.norm_groups, widths[-1], eps=trunk.norm_eps)
        lowest = config.image_size // 2 ** (len(widths) - 1)
        self.pool = (
            AttentionPool2d(lowest * lowest, widths[-1], config.attention_head_dim, config.num_classes)
            if config.pool == "attention"
            else nn.Linear(widths[-1], config.num_classes)
        )

    def forward(self, x: Tensor, t: Tensor | float | int) -> Tensor:
        cfg = self.config
        check_tensor("x", x, shape=(None, cfg.in_channels, cfg.image_size, cfg.image_size), floating=True)
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or of shape [{x.shape[0]}], got {tuple(t.shape)}")
        emb = self.time_embedding(timestep_embedding(t, cfg.block_out_channels[0]).to(x.dtype))
        h = self.conv_in(x)
        for block in self.down_blocks:
            h, _ = block(h, emb)
        h = F.silu(self.norm_out(self.mid_block(h, emb)))
        if cfg.pool == "attention":
            return self.pool(h)
        return self.pool(h.mean(dim=(2, 3)))


def classifier_loss(
    classifier: Callable[[Tensor, Tensor], Tensor],
    diffusion: GaussianDiffusion,
    x0: Tensor,
    labels: Tensor,
    *,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Per-example cross-entropy ``"loss"`` ``[B]`` (and ``"correct"``, 0/1) of ``classifier`` on
    x_t = q_sample(x0, t, noise): the training objective of a noise-aware classifier. ``t`` is drawn
    uniformly from the chain (and ``noise`` from N(0, I)) with ``generator`` when not given; the
    classifier sees ``diffusion.timestep_map[t]``, the timesteps the samplers pass to ``cond_fn``."""
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    check_tensor("x0", x0, floating=True)
    check_tensor("labels", labels, shape=(x0.shape[0],), dtype=(torch.long, torch.int))
    if t is None:
        t = torch.randint(0, diffusion.num_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    x_t = diffusion.q_sample(x0, t, noise)
    logits = classifier(x_t, diffusion.timestep_map[t])
    if logits.dim() != 2 or logits.shape[0] != x0.shape[0]:
        raise ValueError(f"the classifier must return logits [B, classes], got {tuple(logits.shape)}")
    loss = F.cross_entropy(logits.float(), labels.long(), reduction="none")
    return {"loss": loss, "correct": (logits.argmax(-1) == labels).float()}


def classifier_cond_fn(
    classifier: Callable[[Tensor, Tensor], Tensor],
    scale: float,
    *,
    labels: Tensor | None = None,
    label_key: str = "class_labels",
) -> Callable[..., Tensor]:
    """``cond_fn(x_t, t, **model_kwargs) = scale · ∇_{x_t} log softmax(classifier(x_t, t))[y]``.

    ``y`` is ``labels`` when given (e.g. guiding an unconditional model, whose model_kwargs hold no
    or a null label), else ``model_kwargs[label_key]``. ``scale`` is the paper's s (finite, ≥ 0 is
    the paper's range; negative values push away from y and are allowed). The gradient is taken in
    float32 (float64 for float64 inputs) with the classifier in whatever mode it is in (call
    ``.eval()`` first).
    """
    scale = float(check_float("scale", scale, finite=True))
    if not callable(classifier):
        raise TypeError(f"classifier must be callable, got {type(classifier).__name__}")
    if labels is not None:
        check_tensor("labels", labels, dim=1, dtype=(torch.long, torch.int))

    def cond_fn(x_t: Tensor, t: Tensor, **model_kwargs: Any) -> Tensor:
        y = labels if labels is not None else model_kwargs.get(label_key)
        if y is None:
            raise ValueError(
                f"classifier guidance needs the target classes: pass labels= or model_kwargs[{label_key!r}]"
            )
        check_tensor("labels", y, shape=(x_t.shape[0],), dtype=(torch.long, torch.int))
        if scale == 0.0:
            return torch.zeros_like(x_t, dtype=torch.float32)
        with torch.enable_grad():
            dtype = torch.float64 if x_t.dtype == torch.float64 else torch.float32  # never half precision
            x = x_t.detach().to(dtype).requires_grad_(True)
            log_probs = F.log_softmax(classifier(x, t).to(dtype), dim=-1)
            selected = log_probs.gather(1, y.to(x.device).long()[:, None]).sum()
            (gradient,) = torch.autograd.grad(selected, x)
        return scale * gradient

    return cond_fn
