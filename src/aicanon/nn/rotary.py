"""Rotary position embedding, RoPE (Su et al. 2021, RoFormer, Section 3.4).

Each pair of dimensions ``(x_{2i}, x_{2i+1})`` of a query or key at position ``m`` is rotated by the
angle ``m * theta_i`` with ``theta_i = base^(-2i/d)`` (Eq. 15; the paper's ``base`` is 10000). Since
rotations compose, ``<R_m q, R_n k> = <q, R_{n-m} k>``: attention scores depend on positions only
through ``m - n`` (Eq. 16), which is what makes RoPE a relative encoding. Eq. 34 is the cheap form
used here: ``R_m x = x * cos(m theta) + rotate(x) * sin(m theta)``.

Two layouts of the same rotation exist in released checkpoints:

* ``interleaved=True``: the paper's pairs of *adjacent* dimensions ``(0, 1), (2, 3), ...`` (RoFormer,
  Meta's original Llama code, which multiplies complex numbers);
* ``interleaved=False`` (default): the *half-split* pairs ``(i, i + d/2)`` of the transformers Llama
  checkpoints. The two are equal up to a fixed permutation of the head dimension
  (:func:`interleaved_to_half_permutation`): permuting the rows of ``W_q`` and ``W_k`` within each head
  turns one model into the other, which is how Meta checkpoints are converted.

Llama 3.1's long-context frequency scaling (``scaling={"rope_type": "llama3", "factor": 8,
"low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}``): wavelengths
longer than ``original / low_freq_factor`` are divided by ``factor``, shorter than
``original / high_freq_factor`` kept, and the band between interpolated smoothly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int

__all__ = [
    "RotaryEmbedding",
    "apply_rotary",
    "interleaved_to_half_permutation",
    "llama3_scaled_frequencies",
    "rope_frequencies",
]


def rope_frequencies(head_dim: int, base: float = 10000.0) -> Tensor:
    """``theta_i = base^(-2i/d)`` for ``i = 0 .. d/2 - 1`` (RoFormer Eq. 15), float32."""
    check_int("head_dim", head_dim, 2)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even (rotations act on pairs), got {head_dim}")
    check_float("base", base, 1, min_inclusive=False)
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu") / head_dim
    return 1.0 / (base**exponents)


def llama3_scaled_frequencies(
    inv_freq: Tensor,
    *,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: int,
) -> Tensor:
    """Llama 3.1's frequency scaling for long context (see the module docstring)."""
    if not factor >= 1 or not high_freq_factor > low_freq_factor > 0:
        raise ValueError(
            "llama3 rope scaling needs factor >= 1 and high_freq_factor > low_freq_factor > 0, got "
            f"factor={factor}, low_freq_factor={low_freq_factor}, high_freq_factor={high_freq_factor}"
        )
    wavelen = 2 * math.pi / inv_freq
    low_wavelen = original_max_position_embeddings / low_freq_factor
    high_wavelen = original_max_position_embeddings / high_freq_factor
    # Long wavelengths (low frequencies) are stretched by `factor`; short ones are kept.
    scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    # Between the two, interpolate linearly in original/wavelen.
    smooth = (original_max_position_embeddings / wavelen - low_freq_factor) / (
        high_freq_factor - low_freq_factor
    )
    blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, blended, scaled)


def interleaved_to_half_permutation(head_dim: int) -> Tensor:
    """Index ``p`` with ``half_layout = interleaved_layout[..., p]``: ``[0, 2, 4, ..., 1, 3, 5, ...]``.

    Applied to the rows of each head of ``W_q``/``W_k`` it converts a model whose RoPE rotates adjacent
    pairs into one with half-split pairs giving the same attention scores.
    """
    rope_frequencies(head_dim)  # validates head_dim
    return torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])


def _rotate(x: Tensor, interleaved: bool) -> Tensor:
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((-x2, x1), dim=-1).flatten(-2)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool = False) -> Tensor:
    """Rotate ``x [B, H, T, D]`` by ``cos, sin [B or 1, T, D]`` (from :meth:`RotaryEmbedding.cos_sin`), Eq. 34."""
    if x.shape[-1] != cos.shape[-1] or cos.shape != sin.shape:
        raise ValueError(
            f"cos and sin must have the head dimension of x ({x.shape[-1]}), got {tuple(cos.shape)}, {tuple(sin.shape)}"
        )
    if cos.dim() == x.dim() - 1:
        cos, sin = cos.unsqueeze(-3), sin.unsqueeze(-3)  # broadcast over heads
    out = x.float() * cos + _rotate(x.float(), interleaved) * sin
    return out.to(x.dtype)


class RotaryEmbedding(nn.Module):
    """cos/sin tables of RoPE for a head dimension, base and optional scaling, cached per device.

    ``cos_sin(positions)`` takes integer positions ``[T]`` or ``[B, T]`` and returns float32 ``cos, sin``
    of shape ``positions.shape + (head_dim,)`` in the chosen layout; :func:`apply_rotary` applies them.
    """

    def __init__(
        self,
        head_dim: int,
        base: float = 10000.0,
        scaling: Mapping[str, Any] | None = None,
        interleaved: bool = False,
    ) -> None:
        super().__init__()
        inv_freq = rope_frequencies(head_dim, base)
        if scaling is not None:
            kind = scaling.get("rope_type", scaling.get("type"))
            if kind != "llama3":
                raise ValueError(f"scaling rope_type must be 'llama3' (or scaling None), got {kind!r}")
            keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
            missing = [key for key in keys if key not in scaling]
            if missing:
                raise ValueError(f"scaling is missing {missing}")
            inv_freq = llama3_scaled_frequencies(inv_freq, **{key: scaling[key] for key in keys})
        self.head_dim = head_dim
        self.base = float(base)
        self.scaling = dict(scaling) if scaling is not None else None
        self.interleaved = bool(interleaved)
        # A plain float32 CPU tensor, not a buffer: ``model.to(torch.bfloat16)`` must not round the
        # frequencies (angles at position 3000 would be off by ~1 rad), and ``with
        # torch.device("meta")`` must not leave them without values. Tables move to the device of use.
        self._inv_freq = inv_freq
        self._cache: tuple[Tensor, Tensor] | None = None

    @property
    def inv_freq(self) -> Tensor:
        """The float32 frequencies ``theta_i`` (after any scaling), on the CPU."""
        return self._inv_freq

    def _table(self, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        cached = self._cache
        if cached is None or cached[0].shape[0] < length or cached[0].device != device:
            size = max(length, 2 * cached[0].shape[0] if cached is not None else 0, 256)
            angles = torch.outer(
                torch.arange(size, device=device, dtype=torch.float32), self.inv_freq.to(device)
            )
            if self.interleaved:
                angles = angles.repeat_interleave(2, dim=-1)  # (theta_0, theta_0, theta_1, theta_1, ...)
            else:
                angles = torch.cat((angles, angles), dim=-1)  # (theta_0 .. theta_{d/2-1}, same again)
            self._cache = (angles.cos(), angles.sin())
        return self._cache

    def cos_sin(self, positions: Tensor, max_length: int | None = None) -> tuple[Tensor, Tensor]:
        """``cos, sin`` at ``positions``. ``max_length`` (a bound the caller guarantees, such as the
        model's context) sizes the table without reading the positions back from the device: no
        host-device sync and no graph break under ``torch.compile``; the range check is then left
        to indexing."""
        if (
            not isinstance(positions, Tensor)
            or positions.dtype.is_floating_point
            or positions.dim() not in (1, 2)
        ):
            raise ValueError(f"positions must be an integer tensor [T] or [B, T], got {positions!r:.80}")
        if max_length is None:
            if positions.numel() and int(positions.min()) < 0:
                raise ValueError(f"positions must be >= 0, got minimum {int(positions.min())}")
            length = int(positions.max()) + 1 if positions.numel() else 1
        else:
            length = max_length
        cos, sin = self._table(length, positions.device)
        return cos[positions], sin[positions]

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}, scaling={self.scaling}, interleaved={self.interleaved}"
