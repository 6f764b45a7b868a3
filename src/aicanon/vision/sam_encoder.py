"""Segment Anything's image encoder (Kirillov et al. 2023, arXiv 2304.02643, Section 3 and Appendix A).

A plain ViT (ViT-B/L/H, MAE pre-trained in the paper) on a 1024 x 1024 image with 16 x 16 patches, so
a 64 x 64 token grid. Most blocks attend inside non-overlapping 14 x 14 windows; four evenly spaced
blocks attend globally (the ViTDet recipe the paper cites, Li et al. 2022). Every attention adds
decomposed relative position embeddings (MViTv2, Li et al. 2022):

    A = softmax(q k^T / sqrt(d) + R_h[q_y - k_y] q + R_w[q_x - k_x] q)          (rel. position)

where ``R_h``, ``R_w`` are learned tables of ``2 S - 1`` rows (``S`` = window or grid side). An absolute
position embedding is added to the patch embedding. The neck (Appendix A, "Image encoder") maps the
ViT's width to 256 channels with a 1 x 1 convolution and a 3 x 3 convolution, each followed by a
channel-wise LayerNorm, giving the 256 x 64 x 64 image embedding the mask decoder reads.

Parameter names are ours (:mod:`aicanon.vision.sam_weights` converts the original
``segment_anything`` and ``transformers.SamModel`` layouts). Departures: none in the computation.
The attention uses :func:`torch.nn.functional.scaled_dot_product_attention` with the relative
position term as an additive bias, which is the same function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_tensor

__all__ = ["LayerNorm2d", "SamImageEncoder", "window_partition", "window_unpartition", "relative_positions"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` map (the neck's and the decoder's norm)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


def window_partition(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """Split ``(B, H, W, C)`` into ``(B * nWin, window, window, C)`` windows, zero-padding H and W up
    to multiples of ``window``; returns the windows and the padded size."""
    batch, height, width, channels = x.shape
    pad_h, pad_w = (-height) % window, (-width) % window
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    x = x.view(batch, hp // window, window, wp // window, window, channels).transpose(2, 3)
    return x.reshape(-1, window, window, channels), (hp, wp)


def window_unpartition(
    windows: Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]
) -> Tensor:
    """Inverse of :func:`window_partition`: back to ``(B, H, W, C)`` with the padding removed."""
    hp, wp = padded
    batch = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.view(batch, hp // window, wp // window, window, window, -1).transpose(2, 3)
    return x.reshape(batch, hp, wp, -1)[:, : size[0], : size[1]]


def relative_positions(q_size: int, k_size: int, table: Tensor) -> Tensor:
    """Rows of ``table`` (``(L, d)``) for every (query, key) offset: ``(q_size, k_size, d)``.

    A table whose length is not ``2 max(q, k) - 1`` is linearly resampled first (as the original does
    when the input size differs from the pre-training size); unequal q and k sizes are rescaled."""
    length = 2 * max(q_size, k_size) - 1
    if table.shape[0] != length:
        table = F.interpolate(table.t().unsqueeze(0), size=length, mode="linear").squeeze(0).t()
    q_coords = torch.arange(q_size, device=table.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=table.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[offsets.long()]


class EncoderAttention(nn.Module):
    """Multi-head self-attention over a ``(B, H, W, C)`` grid with decomposed relative positions."""

    def __init__(
        self, dim: int, heads: int, grid: int, qkv_bias: bool = True, use_rel_pos: bool = True
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads must divide dim, got dim={dim}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, dim // heads))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, dim // heads))

    def forward(self, x: Tensor) -> Tensor:
        batch, height, width, dim = x.shape
        qkv = self.qkv(x).view(batch, height * width, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, HW, d)
        bias = None
        if self.use_rel_pos:
            rh = relative_positions(height, height, self.rel_pos_h)  # (H, H, d)
            rw = relative_positions(width, width, self.rel_pos_w)  # (W, W, d)
            grid_q = q.reshape(batch, self.heads, height, width, -1)
            term_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, rh)
            term_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, rw)
            bias = (term_h[..., :, None] + term_w[..., None, :]).reshape(
                batch, self.heads, height * width, height * width
            )
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(batch, height, width, dim)
        return self.proj(out)


class EncoderMLP(nn.Module):
    """``fc2(gelu(fc1(x)))``."""

    def __init__(self, dim: int, hidden: int, activation: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = activation()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderBlock(nn.Module):
    """Pre-norm ViT block; ``window > 0`` restricts attention to windows of that side, 0 is global."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_dim: int,
        window: int,
        grid: int,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = EncoderAttention(dim, heads, window if window > 0 else grid, qkv_bias, use_rel_pos)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = EncoderMLP(dim, mlp_dim)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window > 0:
            size = (x.shape[1], x.shape[2])
            x, padded = window_partition(x, self.window)
            x = window_unpartition(self.attn(x), self.window, padded, size)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class SamNeck(nn.Module):
    """1x1 conv -> LayerNorm2d -> 3x3 conv -> LayerNorm2d, no biases (Appendix A)."""

    def __init__(self, dim: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, out_channels, 1, bias=False)
        self.norm1 = LayerNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = LayerNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm2(self.conv2(self.norm1(self.conv1(x))))


class SamImageEncoder(nn.Module):
    """ViT with windowed + global attention and a neck: ``(B, 3, S, S)`` -> ``(B, out, S/p, S/p)``."""

    def __init__(
        self,
        image_size: int = 1024,
        patch_size: int = 16,
        in_channels: int = 3,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        out_channels: int = 256,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
        qkv_bias: bool = True,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        for name, value in (("image_size", image_size), ("patch_size", patch_size), ("dim", dim)):
            check_int(name, value, 1)
        check_int("depth", depth, 1)
        check_int("window_size", window_size, 0)
        if image_size % patch_size:
            raise ValueError(f"patch_size must divide image_size, got {patch_size} and {image_size}")
        if any(not 0 <= i < depth for i in global_attn_indexes):
            raise ValueError(f"global_attn_indexes must lie in [0, {depth}), got {global_attn_indexes}")
        self.image_size = image_size
        self.in_channels = in_channels
        self.grid = image_size // patch_size
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid, self.grid, dim)) if use_abs_pos else None
        self.blocks = nn.ModuleList(
            EncoderBlock(
                dim,
                heads,
                mlp_dim,
                0 if i in global_attn_indexes else window_size,
                self.grid,
                qkv_bias,
                use_rel_pos,
                eps,
            )
            for i in range(depth)
        )
        self.neck = SamNeck(dim, out_channels)

    def forward(self, images: Tensor) -> Tensor:
        check_tensor("images", images, shape=(None, self.in_channels, self.image_size, self.image_size))
        x = self.patch_embed(images).permute(0, 2, 3, 1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
