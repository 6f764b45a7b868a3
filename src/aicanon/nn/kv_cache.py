"""A key/value cache for autoregressive decoding.

At each decoding step a causal transformer needs the keys and values of every earlier position; the
cache keeps them per layer so a step costs one position's projections instead of the whole prefix.
Keys are stored after RoPE (positions are absolute, so rotated keys stay valid) and with the model's
own number of key/value heads, which is where grouped-query attention saves memory: the cache holds
``2 * layers * batch * kv_heads * length * head_dim`` numbers (:meth:`KVCache.nbytes`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from aicanon.core.checks import check_int

__all__ = ["KVCache"]


class KVCache:
    """Per-layer key/value tensors ``[B, Hkv, S, D]`` grown by :meth:`update`, plus the attention mask so far."""

    def __init__(self, num_layers: int) -> None:
        check_int("num_layers", num_layers)
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers
        self.mask: Tensor | None = None
        """``[B, S]`` bool, True at real tokens: kept here so decoding steps need not pass it again."""

    @property
    def num_layers(self) -> int:
        return len(self.keys)

    @property
    def length(self) -> int:
        """Positions cached so far (0 when empty)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``k, v [B, Hkv, T, D]`` to ``layer`` and return all of that layer's keys and values."""
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in [0, {self.num_layers}), got {layer}")
        if self.keys[layer] is not None:
            k = torch.cat((self.keys[layer], k), dim=2)
            v = torch.cat((self.values[layer], v), dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values if t is not None)
