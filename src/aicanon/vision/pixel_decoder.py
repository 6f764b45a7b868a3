"""Mask2Former's multi-scale pixel decoder: MSDeformAttn encoder over three scales plus an FPN level.

Cheng et al., "Masked-attention Mask Transformer for Universal Image Segmentation", CVPR 2022,
Section 3.2.1 and 4 ("Pixel decoder"); the deformable attention is Zhu et al.'s (Deformable DETR,
ICLR 2021, Eq. 3)::

    MSDeformAttn(z_q, p̂_q, {x^l}) = Σ_m W_m [ Σ_l Σ_k A_mlqk · W'_m x^l(φ_l(p̂_q) + Δp_mlqk) ]      (3)

with ``M`` heads, ``L = 3`` levels, ``K = 4`` sampling points, attention weights ``A`` (softmax over
the ``L K`` points of a head) and offsets ``Δp`` both linear in the query ``z_q`` (its feature plus
positional and level embeddings); ``x^l(·)`` is bilinear sampling of level ``l`` at normalised
coordinates, here ``torch.nn.functional.grid_sample`` (the pure-PyTorch form of the CUDA kernel).

The pixel decoder (Section 4): the backbone's 1/32, 1/16 and 1/8 features are projected to ``d``
channels (1x1 conv + GroupNorm), given sine positional and learnable level embeddings, and refined
jointly by ``num_layers`` deformable-attention encoder layers (post-norm, ReLU FFN); an FPN step adds
the 1/4 feature (lateral 1x1 conv + bilinear upsampling of the 1/8 output, then a 3x3 conv) and a 1x1
conv gives the per-pixel embeddings ``E_pixel`` at 1/4 resolution. The 1/32, 1/16, 1/8 outputs feed
the transformer decoder round robin (Section 3.2.2).

Public API
----------
* :func:`sine_position_embedding` (DETR's 2-D sine embedding, normalised);
* :func:`multi_scale_deformable_attention` (Eq. 3's sampling-and-sum, grid_sample form);
* :class:`MultiScaleDeformableAttention`, :class:`DeformableEncoderLayer`;
* :class:`MSDeformAttnPixelDecoder` returning ``(mask_features, multi_scale_features)``.

Departures
----------
* No padding masks: every image in a batch has the same size, so the valid ratios are all 1.
* GroupNorm's group count is a parameter (``norm_groups``, 32 in the paper's code) so tiny models
  with fewer than 32 channels can be built.
* Parameter names follow ``transformers``' ``Mask2FormerPixelDecoder`` (one converter in
  :mod:`aicanon.vision.mask2former` maps them); the FPN convs are ``lateral_convs``/``output_convs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int

__all__ = [
    "DeformableEncoderLayer",
    "MSDeformAttnPixelDecoder",
    "MultiScaleDeformableAttention",
    "multi_scale_deformable_attention",
    "sine_position_embedding",
]


def sine_position_embedding(
    batch: int,
    height: int,
    width: int,
    num_features: int,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    temperature: float = 10000.0,
) -> Tensor:
    """DETR's normalised 2-D sine embedding ``[batch, 2 * num_features, height, width]``.

    Rows then columns: channel ``2i`` is ``sin(y / T^(2i/F))`` and ``2i + 1`` the cosine, with ``y``
    the 1-based row index scaled to ``(0, 2π]``; then the same for ``x``.
    """
    scale = 2 * math.pi
    eps = 1e-6
    y = torch.arange(1, height + 1, dtype=dtype, device=device)
    x = torch.arange(1, width + 1, dtype=dtype, device=device)
    y = y / (height + eps) * scale
    x = x / (width + eps) * scale
    dim_t = torch.arange(num_features, device=device).to(dtype)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_features)
    pos_y = y[:, None] / dim_t  # [H, F]
    pos_x = x[:, None] / dim_t  # [W, F]
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
    pos = torch.cat(
        (pos_y[:, None, :].expand(height, width, -1), pos_x[None, :, :].expand(height, width, -1)), dim=2
    )
    return pos.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1)


def multi_scale_deformable_attention(
    value: Tensor, spatial_shapes: Sequence[tuple[int, int]], locations: Tensor, weights: Tensor
) -> Tensor:
    """Eq. 3's inner sum: bilinear samples of every level, weighted by ``A`` and summed.

    ``value`` ``[B, S, M, D]`` (``S = Σ_l H_l W_l``), ``locations`` ``[B, Q, M, L, K, 2]`` as ``(x, y)``
    in ``[0, 1]``, ``weights`` ``[B, Q, M, L, K]``; returns ``[B, Q, M * D]``. Samples outside the map
    read zeros (``grid_sample``'s zero padding, as the CUDA kernel).
    """
    batch, _, heads, head_dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for level, (height, width) in enumerate(spatial_shapes):
        level_value = values[level].permute(0, 2, 3, 1).reshape(batch * heads, head_dim, height, width)
        level_grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # [B M, Q, K, 2]
        sampled.append(
            F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    stacked = torch.stack(sampled, dim=-2).flatten(-2)  # [B M, D, Q, L K]
    weights = weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    out = (stacked * weights).sum(-1).view(batch, heads * head_dim, queries)
    return out.transpose(1, 2)


class MultiScaleDeformableAttention(nn.Module):
    """Eq. 3 with ``num_heads`` heads, ``num_levels`` levels and ``num_points`` points per level."""

    def __init__(self, dim: int, num_heads: int, num_levels: int = 3, num_points: int = 4) -> None:
        super().__init__()
        check_int("dim", dim)
        check_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"dim must be divisible by num_heads, got dim={dim}, num_heads={num_heads}")
        self.dim, self.num_heads, self.num_levels, self.num_points = dim, num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Deformable DETR's init: zero offset weights, biases pointing each head in its own direction
        # at distances 1..K; uniform attention at the start.
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        """``query`` ``[B, Q, d]`` (positions already added), ``reference_points`` ``[B, Q, L, 2]``,
        ``value`` ``[B, S, d]``; returns ``[B, Q, d]``."""
        batch, queries, _ = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        v = self.value_proj(value).view(batch, value.shape[1], heads, self.dim // heads)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points).softmax(-1)
        weights = weights.view(batch, queries, heads, levels, points)
        # Offsets are in pixels of each level: normalise by (W_l, H_l).
        normaliser = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device)
        locations = (
            reference_points[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
        )
        return self.output_proj(multi_scale_deformable_attention(v, spatial_shapes, locations, weights))


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: MSDeformAttn self-attention over all levels, then a ReLU FFN."""

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, num_levels: int = 3, num_points: int = 4
    ) -> None:
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(dim, num_heads, num_levels, num_points)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(
        self, x: Tensor, pos: Tensor, reference_points: Tensor, spatial_shapes: Sequence[tuple[int, int]]
    ) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x + pos, reference_points, x, spatial_shapes))
        return self.final_layer_norm(x + self.fc2(F.relu(self.fc1(x))))


def _reference_points(
    spatial_shapes: Sequence[tuple[int, int]], batch: int, levels: int, like: Tensor
) -> Tensor:
    """Pixel centres of every level, normalised to ``[0, 1]``: ``[B, S, L, 2]`` as ``(x, y)``."""
    points = []
    for height, width in spatial_shapes:
        ys = torch.linspace(0.5, height - 0.5, height, dtype=like.dtype, device=like.device) / height
        xs = torch.linspace(0.5, width - 0.5, width, dtype=like.dtype, device=like.device) / width
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.flatten(), grid_y.flatten()), -1))
    reference = torch.cat(points, 0)
    return reference[None, :, None, :].expand(batch, -1, levels, -1)


class MSDeformAttnPixelDecoder(nn.Module):
    """The pixel decoder of Section 4 (see the module docstring).

    ``in_channels``: channels of the backbone features at strides 4, 8, 16, 32 (highest resolution
    first); ``forward`` takes those four maps and returns ``(mask_features [B, mask_dim, H/4, W/4],
    [f_1/32, f_1/16, f_1/8])``.
    """

    num_levels = 3

    def __init__(
        self,
        in_channels: Sequence[int],
        dim: int = 256,
        mask_dim: int = 256,
        num_heads: int = 8,
        num_layers: int = 6,
        ffn_dim: int = 1024,
        num_points: int = 4,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(
                f"in_channels must list 4 backbone widths (strides 4..32), got {list(in_channels)}"
            )
        for name, value in (("dim", dim), ("mask_dim", mask_dim), ("num_layers", num_layers)):
            check_int(name, value, minimum=0 if name == "num_layers" else 1)
        if dim % norm_groups:
            raise ValueError(
                f"dim must be divisible by norm_groups, got dim={dim}, norm_groups={norm_groups}"
            )
        self.in_channels = tuple(in_channels)
        self.dim = dim
        # Lowest resolution first (1/32, 1/16, 1/8), as the encoder's levels.
        self.input_projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, dim, kernel_size=1), nn.GroupNorm(norm_groups, dim))
            for c in self.in_channels[1:][::-1]
        )
        self.level_embed = nn.Parameter(torch.randn(self.num_levels, dim))
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(dim, num_heads, ffn_dim, self.num_levels, num_points)
            for _ in range(num_layers)
        )
        self.lateral_convs = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(self.in_channels[0], dim, 1, bias=False), nn.GroupNorm(norm_groups, dim)
                )
            ]
        )
        self.output_convs = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.GroupNorm(norm_groups, dim), nn.ReLU()
                )
            ]
        )
        self.mask_projection = nn.Conv2d(dim, mask_dim, kernel_size=1)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        if len(features) != 4:
            raise ValueError(f"features must be 4 maps (strides 4, 8, 16, 32), got {len(features)}")
        for i, (feature, channels) in enumerate(zip(features, self.in_channels)):
            if not isinstance(feature, Tensor) or feature.dim() != 4 or feature.shape[1] != channels:
                got = tuple(feature.shape) if isinstance(feature, Tensor) else type(feature).__name__
                raise ValueError(f"features[{i}] must be [B, {channels}, H, W], got {got}")
        levels = features[1:][::-1]
        projected = [projection(x) for projection, x in zip(self.input_projections, levels)]
        shapes = [(int(x.shape[2]), int(x.shape[3])) for x in projected]
        batch = projected[0].shape[0]
        tokens = torch.cat([x.flatten(2).transpose(1, 2) for x in projected], 1)
        pos = torch.cat(
            [
                sine_position_embedding(batch, h, w, self.dim // 2, tokens.device, tokens.dtype)
                .flatten(2)
                .transpose(1, 2)
                + self.level_embed[i].view(1, 1, -1)
                for i, (h, w) in enumerate(shapes)
            ],
            1,
        )
        reference = _reference_points(shapes, batch, self.num_levels, tokens)
        for layer in self.layers:
            tokens = layer(tokens, pos, reference, shapes)
        outputs = [
            x.transpose(1, 2).reshape(batch, self.dim, h, w)
            for x, (h, w) in zip(tokens.split([h * w for h, w in shapes], 1), shapes)
        ]
        # FPN step to 1/4 (bilinear upsampling, as the released code).
        lateral = self.lateral_convs[0](features[0])
        fine = lateral + F.interpolate(
            outputs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False
        )
        fine = self.output_convs[0](fine)
        return self.mask_projection(fine), outputs
