"""Gated feed-forward blocks: SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer"), Llama's MLP.

``SwiGLU(x) = W_down (silu(W_gate x) * W_up x)``, no biases (Llama 2 Section 2.1 / Llama 3 Table 3).
The projection names follow the released Llama checkpoints (``gate_proj``, ``up_proj``, ``down_proj``)
so their state dicts load without renaming.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int

__all__ = ["SwiGLU"]


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` from ``dim`` to ``hidden`` and back."""

    def __init__(self, dim: int, hidden: int, bias: bool = False) -> None:
        super().__init__()
        check_int("dim", dim)
        check_int("hidden", hidden)
        self.gate_proj = nn.Linear(dim, hidden, bias=bias)
        self.up_proj = nn.Linear(dim, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
