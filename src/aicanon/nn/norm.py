"""Root-mean-square layer normalisation (Zhang & Sennrich 2019), the norm of Llama 2/3 and T5.

``RMSNorm(x) = x / sqrt(mean(x^2) + eps) * g``: no mean subtraction and no bias. The statistic is
computed in float32 whatever the input dtype (bf16's 8-bit mantissa loses the mean of squares of
wide hidden states) and the result is cast back before the gain, as Meta's and transformers' Llama do,
so bf16 outputs match checkpoints trained that way.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int

__all__ = ["RMSNorm"]


class RMSNorm(nn.Module):
    """RMS normalisation over the last dimension with a learned gain ``weight`` (initialised to 1)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        check_int("dim", dim)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.dim = dim
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension {self.dim}, got shape {tuple(x.shape)}")
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
