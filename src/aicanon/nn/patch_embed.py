"""Patch embedding (ViT Section 3.1, Eq. 1): cut an image into P x P patches and project each linearly.

A convolution with kernel and stride ``P`` is exactly the linear projection ``E`` of the flattened
patches. Output tokens ``[B, N, D]`` with ``N = HW / P^2`` in row-major patch order. The layer is
named ``proj`` as in timm (ViT, DeiT, Mixer's stem), so their weights load unchanged.
Images whose sides are not multiples of ``P`` are rejected (a silent crop would drop pixels).
"""

from __future__ import annotations

from torch import Tensor, nn

from aicanon.core.checks import check_int

__all__ = ["PatchEmbed"]


class PatchEmbed(nn.Module):
    """``[B, C, H, W] -> [B, (H/P)(W/P), D]`` by a stride-``P`` convolution, with an optional norm."""

    def __init__(
        self,
        patch_size: int,
        in_chans: int,
        embed_dim: int,
        norm: bool = False,
        bias: bool = True,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.patch_size = check_int("patch_size", patch_size)
        self.in_chans = check_int("in_chans", in_chans)
        check_int("embed_dim", embed_dim)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)
        # LayerNorm after the projection when asked: eps 1e-6 as ViT's norms, 1e-5 in Swin.
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if norm else nn.Identity()

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patches along each side for an image of ``height x width``."""
        return height // self.patch_size, width // self.patch_size

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be images [batch, {self.in_chans}, height, width], got {got}")
        p = self.patch_size
        if x.shape[2] % p or x.shape[3] % p:
            raise ValueError(
                f"image height and width must be multiples of patch_size={p}, got {x.shape[2]}x{x.shape[3]} "
                "(resize or pad the images, or interpolate the position embeddings for a new size)"
            )
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))
