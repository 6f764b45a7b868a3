"""Swin Transformer (Liu et al. 2021, "Hierarchical Vision Transformer using Shifted Windows").

The image is cut into ``4 x 4`` patches (a stride-4 convolution and LayerNorm); four stages follow,
each a stack of Swin blocks at one resolution, stages 2-4 starting with *patch merging*, which
concatenates each ``2 x 2`` group of neighbouring tokens (``4C`` channels), normalises them and
projects them linearly to ``2C`` (Section 3.1): strides 4, 8, 16, 32, like a CNN's feature pyramid.

Self-attention is computed inside non-overlapping ``M x M`` windows (W-MSA, Section 3.2), so its
cost is linear in the number of tokens (Eq. 1-2: ``Omega(W-MSA) = 4hwC^2 + 2M^2hwC``). Consecutive
blocks alternate regular and *shifted* windows (SW-MSA: the windows move by ``floor(M/2)``)::

    z^_l     = W-MSA(LN(z_{l-1})) + z_{l-1}                                            (3)
    z_l      = MLP(LN(z^_l)) + z^_l
    z^_{l+1} = SW-MSA(LN(z_l)) + z_l
    z_{l+1}  = MLP(LN(z^_{l+1})) + z^_{l+1}

The shift is a *cyclic shift* of the map by ``-floor(M/2)`` along both axes, after which the regular
window partition applies; tokens that ended up in one window but were not neighbours in the image
are kept apart by an attention mask (``-100`` added to their logits, :func:`shifted_window_mask`),
and the shift is undone afterwards (Section 3.2, "Efficient batch computation", Figure 4).

Inside a window, attention carries a relative position bias ``B`` (Eq. 4)::

    Attention(Q, K, V) = SoftMax(Q K^T / sqrt(d) + B) V                                  (4)

where ``B in R^{M^2 x M^2}`` is gathered from a learned table ``B^ in R^{(2M-1) x (2M-1)}`` (one
per head) by the relative offset of the two tokens (:func:`relative_position_index`).

Sizes (Section 3.3) are in :data:`SWIN_SIZES`: Swin-T ``C=96, {2,2,6,2}``, Swin-S ``C=96,
{2,2,18,2}``, Swin-B ``C=128, {2,2,18,2}``, Swin-L ``C=192, {2,2,18,2}``, heads ``C/32`` doubling per
stage, window ``M = 7``, MLP ratio 4. The classifier averages the last stage's tokens after a final
LayerNorm and applies a linear layer.

Layout and parameter names are timm's (``patch_embed.proj/norm``, ``layers.<s>.downsample.norm/
reduction`` at the *start* of stage ``s >= 1``, ``layers.<s>.blocks.<b>.norm1/attn.qkv/attn.proj/
attn.relative_position_bias_table/norm2/mlp.fc1/mlp.fc2``, ``norm``, ``head.fc``), so timm
``swin_*`` state dicts load unchanged; the relative position index and the shift masks are
non-persistent buffers (as in timm), computed here. :func:`from_timm` drops them from checkpoints
that carry them (the original release does): ``load_state_dict_strict(model, from_timm(state_dict))``
(:func:`aicanon.core.state_dict.load_state_dict_strict`).

Departures from the paper and its code, and why:

* Feature maps whose sides are not multiples of the window (and images whose sides are not
  multiples of ``patch_size * 2^(stages-1)``) are rejected with an error instead of padded: padding
  changes which tokens share a window and the official code and timm pad at different points (timm
  after the cyclic shift, the original before), so there is no one right answer to copy silently.
  As in both, a stage whose map is no larger than the window uses one window of the map's size and
  no shift.
* Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with the bias and
  mask added to the logits (equal to Eq. 4 up to float rounding).
* Initialisation is truncated normal (std 0.02) for linear layers and the bias tables, zero biases,
  as the official code; it does not matter for loading weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.core.state_dict import check_state_dict
from aicanon.nn.patch_embed import PatchEmbed
from aicanon.nn.transformer import DropPath, Mlp
from aicanon.vision.backbone import Backbone, build_from_timm, check_images, match_timm_variant

__all__ = [
    "SWIN_SIZES",
    "PatchMerging",
    "SwinBlock",
    "SwinSize",
    "SwinStage",
    "SwinTransformer",
    "WindowAttention",
    "from_timm",
    "relative_position_index",
    "shifted_window_mask",
    "swin",
    "window_partition",
    "window_reverse",
]

# Section 3.2: logits of token pairs that the cyclic shift put in one window get this added, so their
# softmax weight is ~e^-100 (the official code's value; -inf would give NaN for nothing here but is
# kept equal to the reference).
MASK_VALUE = -100.0


@dataclass(frozen=True)
class SwinSize:
    """Stage-1 width ``C``, blocks per stage and heads per stage (Section 3.3)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]


SWIN_SIZES: dict[str, SwinSize] = {
    "T": SwinSize(96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "S": SwinSize(96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "B": SwinSize(128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "L": SwinSize(192, (2, 2, 18, 2), (6, 12, 24, 48)),
}


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int(name, value), value
    if isinstance(value, Sequence) and len(value) == 2:
        return check_int(name, value[0]), check_int(name, value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def window_partition(x: Tensor, window: tuple[int, int]) -> Tensor:
    """``[B, H, W, C] -> [B * nW, Mh * Mw, C]``: the non-overlapping windows, row-major (Section 3.2)."""
    b, h, w, c = x.shape
    mh, mw = window
    if h % mh or w % mw:
        raise ValueError(f"window {mh}x{mw} must divide the feature map, got a {h}x{w} map")
    x = x.view(b, h // mh, mh, w // mw, mw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, mh * mw, c)


def window_reverse(windows: Tensor, window: tuple[int, int], height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, Mh * Mw, C] -> [B, H, W, C]``."""
    mh, mw = window
    c = windows.shape[-1]
    x = windows.view(-1, height // mh, width // mw, mh, mw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, height, width, c)


def relative_position_index(window: tuple[int, int]) -> Tensor:
    """``[Mh*Mw, Mh*Mw]`` indices into the ``(2Mh-1)(2Mw-1)`` bias table (Eq. 4).

    Tokens ``i`` and ``j`` at ``(y_i, x_i)``, ``(y_j, x_j)`` in the window have offsets
    ``dy = y_i - y_j in [-(Mh-1), Mh-1]`` and ``dx``; the table is indexed row-major by
    ``(dy + Mh - 1, dx + Mw - 1)``.
    """
    mh, mw = window
    ys, xs = torch.meshgrid(torch.arange(mh), torch.arange(mw), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + mh - 1
    dx = xs[:, None] - xs[None, :] + mw - 1
    return dy * (2 * mw - 1) + dx


def shifted_window_mask(height: int, width: int, window: tuple[int, int], shift: tuple[int, int]) -> Tensor:
    """``[nW, M^2, M^2]`` additive mask for SW-MSA on a ``height x width`` map (Section 3.2, Figure 4).

    After the cyclic shift by ``-shift``, the map splits along each axis into the part that did not
    wrap (``[0, H - M)``), the last window's unwrapped part (``[H - M, H - s)``) and the wrapped-around
    part (``[H - s, H)``); tokens of different parts were not neighbours, so their pair gets
    :data:`MASK_VALUE`, pairs in the same part 0.
    """
    label = torch.zeros(1, height, width, 1)
    count = 0
    mh, mw = window
    sh, sw = shift
    for rows in (slice(0, height - mh), slice(height - mh, height - sh), slice(height - sh, height)):
        for cols in (slice(0, width - mw), slice(width - mw, width - sw), slice(width - sw, width)):
            label[:, rows, cols, :] = count
            count += 1
    labels = window_partition(label, window).squeeze(-1)  # [nW, M^2]
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a relative position bias (Eq. 4)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: tuple[int, int],
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("dim", dim)
        check_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"dim must be divisible by num_heads, got dim={dim}, num_heads={num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.window = window
        mh, mw = window
        # B^ of Eq. 4: one (2M-1) x (2M-1) table per head, stored flat as timm and the official code.
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * mh - 1) * (2 * mw - 1), num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def position_bias(self) -> Tensor:
        """``B`` of Eq. 4 as ``[heads, M^2, M^2]``."""
        area = self.window[0] * self.window[1]
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        return bias.view(area, area, self.num_heads).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x``: windows ``[B * nW, M^2, C]``; ``mask``: ``[nW, M^2, M^2]`` additive (SW-MSA) or None."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        bias = self.position_bias().unsqueeze(0).to(q.dtype)  # [1, heads, N, N]
        if mask is not None:
            windows = mask.shape[0]
            # windows of one image are consecutive in the batch (window_partition), so the mask repeats
            # every nW windows.
            bias = (bias.unsqueeze(1) + mask.to(q.dtype)[None, :, None]).expand(bw // windows, -1, -1, -1, -1)
            bias = bias.reshape(bw, self.num_heads, n, n)
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))


class SwinBlock(nn.Module):
    """One Swin block (Eq. 3): (S)W-MSA and an MLP, each pre-norm with a residual.

    ``resolution`` is the ``H x W`` map the block sees; ``shift`` is 0 (W-MSA) or ``M // 2`` (SW-MSA).
    Where the map is no larger than the window along an axis, the window shrinks to the map and the
    shift is dropped along it (one window covers everything, so shifting would change nothing).
    """

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        num_heads: int,
        window_size: int | tuple[int, int] = 7,
        shift_size: int | tuple[int, int] = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        window = _pair(window_size, "window_size")
        shift = (shift_size, shift_size) if isinstance(shift_size, int) else tuple(shift_size)
        self.resolution = tuple(resolution)
        self.window = tuple(min(r, m) for r, m in zip(self.resolution, window))
        self.shift = tuple(0 if r <= m else s for r, m, s in zip(self.resolution, window, shift))
        for side, m, s in zip(self.resolution, self.window, self.shift):
            if side % m:
                raise ValueError(
                    f"window_size {window} must divide the feature map {self.resolution[0]}x{self.resolution[1]} "
                    "(choose an image size that gives maps divisible by the window at every stage)"
                )
            if not 0 <= s < m:
                raise ValueError(
                    f"shift_size must be in [0, window_size), got {shift_size} for window {window}"
                )
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, self.window, qkv_bias, attn_drop, drop)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path2 = DropPath(drop_path)
        mask = shifted_window_mask(*self.resolution, self.window, self.shift) if any(self.shift) else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def _window_attention(self, x: Tensor) -> Tensor:
        h, w = x.shape[1:3]
        shifted = any(self.shift)
        if shifted:  # Section 3.2: cyclic shift toward the top-left
            x = torch.roll(x, shifts=(-self.shift[0], -self.shift[1]), dims=(1, 2))
        windows = self.attn(window_partition(x, self.window), self.attn_mask)
        x = window_reverse(windows, self.window, h, w)
        if shifted:  # ... and back
            x = torch.roll(x, shifts=self.shift, dims=(1, 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        """``[B, H, W, C] -> [B, H, W, C]``."""
        if x.dim() != 4 or tuple(x.shape[1:3]) != self.resolution:
            raise ValueError(
                f"x must be a [batch, {self.resolution[0]}, {self.resolution[1]}, channels] map, got {tuple(x.shape)}"
            )
        x = x + self.drop_path1(self._window_attention(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """``[B, H, W, C] -> [B, H/2, W/2, 2C]``: concatenate each 2x2 group, LayerNorm, linear (Section 3.1).

    The concatenation order is (top-left, bottom-left, top-right, bottom-right), the official code's
    ``x0, x1, x2, x3``, which the weights of ``reduction`` depend on.
    """

    def __init__(self, dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        check_int("dim", dim)
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim or 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"patch merging needs an even feature map, got {h}x{w}")
        # [B, H/2, 2(dy), W/2, 2(dx), C] -> [B, H/2, W/2, dx, dy, C]: dy varies fastest, as x0, x1, x2, x3.
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """Patch merging (stages after the first) and ``depth`` blocks alternating W-MSA and SW-MSA."""

    def __init__(
        self,
        dim: int,
        out_dim: int,
        resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: tuple[int, int],
        downsample: bool,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: Sequence[float] = (),
    ) -> None:
        super().__init__()
        self.downsample = PatchMerging(dim, out_dim) if downsample else nn.Identity()
        out_res = (resolution[0] // 2, resolution[1] // 2) if downsample else tuple(resolution)
        self.resolution = out_res
        rates = list(drop_path) or [0.0] * depth
        self.blocks = nn.Sequential(
            *[
                SwinBlock(
                    out_dim,
                    out_res,
                    num_heads,
                    window_size,
                    # Eq. 3: every second block shifts by floor(M / 2).
                    0 if i % 2 == 0 else (window_size[0] // 2, window_size[1] // 2),
                    mlp_ratio,
                    qkv_bias,
                    drop,
                    attn_drop,
                    rates[i],
                )
                for i in range(depth)
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class _Head(nn.Module):
    """Linear classifier named ``head.fc`` as timm's ``ClassifierHead``."""

    def __init__(self, dim: int, num_classes: int, drop: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(dim, num_classes) if num_classes else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.drop(x))


class SwinTransformer(Backbone):
    """Swin Transformer (Section 3): patch embedding, four stages, average pool, linear head.

    Args:
        img_size: training resolution (int or (H, W)); fixes each stage's map and the shift masks.
        patch_size: side of the patches (4 in the paper).
        in_chans: image channels.
        num_classes: classes of the head (0: none; ``forward`` returns pooled features).
        embed_dim: ``C`` of stage 1 (doubles per stage).
        depths, num_heads: blocks and heads per stage.
        window_size: ``M`` (int or (Mh, Mw)).
        mlp_ratio, qkv_bias: MLP width / dim, biases of q, k, v.
        drop_rate, attn_drop_rate, drop_path_rate: dropout, attention dropout, stochastic depth
            (linear over all blocks, 0.2/0.3/0.5 for T/S/B in the paper's ImageNet training).
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int | Sequence[int] = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.img_size = _pair(img_size, "img_size")
        self.patch_size = check_int("patch_size", patch_size)
        self.in_chans = check_int("in_chans", in_chans)
        check_int("num_classes", num_classes, minimum=0)
        check_int("embed_dim", embed_dim)
        depths, num_heads = tuple(depths), tuple(num_heads)
        if not depths or len(depths) != len(num_heads):
            raise ValueError(
                f"depths and num_heads must have one entry per stage, got depths={depths}, num_heads={num_heads}"
            )
        for i, (d, h) in enumerate(zip(depths, num_heads)):
            check_int(f"depths[{i}]", d)
            check_int(f"num_heads[{i}]", h)
        window = _pair(window_size, "window_size")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        stages = len(depths)
        # Every stage halves the map after the first: the image must split evenly all the way down.
        total_stride = self.patch_size * 2 ** (stages - 1)
        if self.img_size[0] % total_stride or self.img_size[1] % total_stride:
            raise ValueError(
                f"img_size must be a multiple of patch_size * 2^(stages-1) = {total_stride}, got {self.img_size}"
            )
        self.window = window
        self.embed_dims = [embed_dim * 2**i for i in range(stages)]
        self.num_features = self.embed_dims[-1]
        self.num_classes = num_classes
        self.feature_strides = tuple(self.patch_size * 2**i for i in range(stages))
        self.feature_channels = dict(zip(self.feature_strides, self.embed_dims))

        # Swin's LayerNorm after the patch projection (eps 1e-5, as every norm here)
        self.patch_embed = PatchEmbed(self.patch_size, in_chans, embed_dim, norm=True, norm_eps=1e-5)
        grid = (self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size)
        self.grid_size = grid
        total = sum(depths)
        rates = [drop_path_rate * i / max(1, total - 1) for i in range(total)]  # linear, as torch.linspace
        layers, resolution, start = [], grid, 0
        for i in range(stages):
            stage = SwinStage(
                self.embed_dims[max(i - 1, 0)],
                self.embed_dims[i],
                resolution,
                depths[i],
                num_heads[i],
                window,
                downsample=i > 0,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rates[start : start + depths[i]],
            )
            layers.append(stage)
            resolution, start = stage.resolution, start + depths[i]
        self.layers = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = _Head(self.num_features, num_classes, drop_rate)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal (std 0.02) linear weights and bias tables, zero biases, unit norms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, WindowAttention):
                nn.init.trunc_normal_(module.relative_position_bias_table, std=0.02)

    def _check_input(self, x: Tensor) -> None:
        check_images(x, self.in_chans)
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"x must be {self.img_size[0]}x{self.img_size[1]} images (the shift masks and windows are "
                f"built for img_size), got {x.shape[-2]}x{x.shape[-1]}"
            )

    def _stages(self, x: Tensor) -> list[Tensor]:
        self._check_input(x)
        h, w = self.grid_size
        x = self.patch_embed(x).reshape(x.shape[0], h, w, -1)
        outs = []
        for stage in self.layers:
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's map after the final LayerNorm, channels last ``[B, h, w, 8C]``."""
        return self.norm(self._stages(x)[-1])

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Average the tokens of ``[B, h, w, C]`` features, then the linear classifier."""
        if not isinstance(features, Tensor) or features.dim() != 4 or features.shape[-1] != self.num_features:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be a [batch, h, w, {self.num_features}] map, got {got}")
        pooled = features.mean(dim=(1, 2))
        return pooled if pre_logits else self.head(pooled)

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        """Each stage's output ``[B, C_s, H/s, W/s]`` keyed by its stride (the last one normalised)."""
        outs = self._stages(x)
        outs[-1] = self.norm(outs[-1])
        return {s: o.permute(0, 3, 1, 2) for s, o in zip(self.feature_strides, outs)}

    def reset_classifier(self, num_classes: int) -> None:
        """A new linear head (truncated normal init); 0 removes it."""
        check_int("num_classes", num_classes, minimum=0)
        device = self.norm.weight.device
        self.head = _Head(self.num_features, num_classes, self.head.drop.p).to(device)
        if num_classes:
            nn.init.trunc_normal_(self.head.fc.weight, std=0.02)
            nn.init.zeros_(self.head.fc.bias)
        self.num_classes = num_classes

    # -- released weights ----------------------------------------------------------------------
    @classmethod
    def timm_variant_kwargs(cls, variant: str) -> dict:
        """Constructor arguments of a timm ``swin_<tiny|small|base|large>_patch4_window<M>_<res>`` model."""
        match = match_timm_variant(
            variant,
            r"swin_(tiny|small|base|large)_patch(4)_window(\d+)_(\d+)",
            "Swin",
            "'swin_tiny_patch4_window7_224' or 'swin_base_patch4_window12_384'",
        )
        size = SWIN_SIZES[match.group(1)[0].upper()]  # tiny -> T, small -> S, base -> B, large -> L
        return {
            "img_size": int(match.group(4)),
            "patch_size": int(match.group(2)),
            "window_size": int(match.group(3)),
            "embed_dim": size.embed_dim,
            "depths": size.depths,
            "num_heads": size.num_heads,
        }

    @classmethod
    def from_timm(cls, state_dict_or_file, variant: str, **overrides) -> SwinTransformer:
        """The model of a timm checkpoint in one call: ``SwinTransformer.from_timm(path_or_state_dict,
        "swin_tiny_patch4_window7_224", num_classes=10)``.

        ``state_dict_or_file``: timm's (or the original release's) state dict or a path to its
        ``.safetensors`` file; ``variant``: the timm model name (a pretrained tag after ``.`` is
        ignored); ``overrides``: other constructor arguments (``num_classes`` defaults to the
        checkpoint head's width). A different ``img_size`` is refused by the strict loader when it
        changes the relative-position tables' or masks' shapes only through the window, which the
        variant fixes; the bias tables themselves do not depend on the image size. The names are
        timm's, so ``model.state_dict()`` is the way back.
        """
        from aicanon.core.pretrained import read_state_dict

        return build_from_timm(
            cls,
            cls.timm_variant_kwargs(variant),
            overrides,
            read_state_dict(state_dict_or_file),
            lambda model, state: from_timm(state),
            "head.fc.weight",
            variant,
        )


# Buffers that some checkpoints carry (the original release) and that are computed here.
_COMPUTED_BUFFERS = ("relative_position_index", "attn_mask")


def from_timm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict from a timm (or original-release) ``swin_*`` one: the names are ours; the
    relative position indices and shift masks some checkpoints carry are dropped (computed here)."""
    state = check_state_dict(state_dict)
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in _COMPUTED_BUFFERS}


def swin(name: str, **kwargs) -> SwinTransformer:
    """A Swin of a named size: ``swin("T", num_classes=10)`` (Section 3.3; "Swin-T" also accepted)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'T', got {type(name).__name__}")
    key = name.removeprefix("Swin-")
    if key not in SWIN_SIZES:
        raise ValueError(
            f"name must be one of {sorted(SWIN_SIZES)} (optionally 'Swin-' prefixed), got {name!r}"
        )
    size = SWIN_SIZES[key]
    for field in ("embed_dim", "depths", "num_heads"):
        if field in kwargs:
            raise ValueError(
                f"{field} is set by the name {name!r}; build SwinTransformer directly to change it"
            )
    return SwinTransformer(embed_dim=size.embed_dim, depths=size.depths, num_heads=size.num_heads, **kwargs)
