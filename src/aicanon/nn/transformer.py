"""The pre-norm transformer encoder block of ViT, DeiT and their relatives (Dosovitskiy et al. 2021,
Eq. 2-3), with the MLP, multi-head self-attention, stochastic depth and LayerScale it is made of.

``z' = z + DropPath(LS1(MSA(LN(z))))``, ``z'' = z' + DropPath(LS2(MLP(LN(z'))))`` with a two-layer
GELU MLP (ViT Section 3.1). Submodule names follow timm (``norm1, attn.qkv, attn.proj, norm2,
mlp.fc1, mlp.fc2``, LayerScale's ``gamma``), so timm state dicts of these blocks load unchanged.

* :class:`DropPath`: stochastic depth (Huang et al. 2016), dropping a residual branch per sample
  during training and rescaling the kept ones by ``1 / (1 - p)`` (DeiT, Swin, Mixer train with it).
* :class:`LayerScale`: a learned per-channel scale of each branch (CaiT, Touvron et al. 2021b);
  off unless ``init_values`` is given (ViT and DeiT-I have none).
* :class:`Mlp`: ``fc2(drop(act(fc1(x))))``; MLP-Mixer's token- and channel-mixing MLPs are this too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.nn.attention import attention

__all__ = ["Attention", "Block", "DropPath", "LayerScale", "Mlp"]


class DropPath(nn.Module):
    """Drop the whole input per sample with probability ``p`` in training; identity in evaluation."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerScale(nn.Module):
    """``x * gamma`` with ``gamma`` a per-channel vector initialised to ``init_values``."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Two linear layers with an activation between (GELU by default) and dropout after each."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_int("in_features", in_features)
        check_int("hidden_features", hidden_features)
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention over tokens ``[B, N, C]`` with one fused ``qkv`` projection (ViT Eq. 5-8)."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
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
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        drop = self.attn_drop if self.training else 0.0
        out = attention(q, k, v, causal=False, key_padding_mask=key_padding_mask, dropout_p=drop)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class Block(nn.Module):
    """Pre-norm encoder block (ViT Eq. 2-3) with optional LayerScale and stochastic depth."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float | None = None,
        norm_eps: float = 1e-6,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), key_padding_mask)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
