"""Weight initialisations shared by several papers."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["glorot_uniform_"]


def glorot_uniform_(
    tensor: Tensor,
    fan_in: int | None = None,
    fan_out: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Glorot & Bengio (2010) uniform initialisation in place: ``U(-b, b)``, ``b = sqrt(6 / (fan_in + fan_out))``.

    The initialisation of the GAT, GCN and R-GCN reference code (and of PyG's ``glorot``). Without
    explicit fans a ``[fan_out, fan_in]`` weight matrix is assumed (``nn.Linear``'s layout); layers
    whose weights are laid out otherwise (per relation, per head, ``[in, out]``) pass them.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if fan_in is None or fan_out is None:
        if tensor.dim() < 2:
            raise ValueError(
                f"tensor must be at least 2-D when fans are not given, got shape {tuple(tensor.shape)}"
            )
        fan_out = tensor.shape[0] if fan_out is None else fan_out
        fan_in = tensor.shape[1] if fan_in is None else fan_in
    if fan_in + fan_out <= 0:
        raise ValueError(f"fan_in + fan_out must be positive, got {fan_in} + {fan_out}")
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)
