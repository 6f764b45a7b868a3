"""Squeezing and the multi-scale architecture with factored-out variables (Real NVP 3.6; Glow 3).

* :class:`Squeeze`: each 2x2 spatial block of a ``[B, C, H, W]`` tensor becomes 4 channels,
  ``[B, 4C, H/2, W/2]`` (Real NVP Figure 3); volume-preserving (log-determinant 0). Channel
  ``4c + 2i + j`` holds input channel ``c`` at offset ``(i, j)`` of the block (``pixel_unshuffle``'s
  layout).
* :class:`MultiScaleFlow`: at each level a flow ``f_i`` transforms the current tensor, then half of
  its channels are *factored out* (Real NVP Eq. 13-14: ``z_i``, modelled directly by the base
  density) and the other half ``h_i`` goes on to the next level; the last level's output is kept
  whole. ``forward`` returns every factored-out part and the final output flattened and concatenated
  into one ``[B, D]`` latent (in level order), so the composite is one :class:`Flow` over the data and
  :class:`~aicanon.generative.flows.base.StandardNormal` ``(D)`` is its base.

  Glow (Section 3, "split") models a factored-out part with a Gaussian whose mean and log-scale are
  predicted from the kept half (a zero-initialised convolution). With ``split_priors``, each
  factored-out ``z_i`` is standardised by the prior of its level, ``(z_i - mu(h_i)) exp(-log s(h_i))``
  with log-determinant ``-sum log s``, which gives exactly that conditional likelihood under the
  standard normal base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_tensor
from aicanon.generative.flows.base import Flow

__all__ = ["MultiScaleFlow", "Squeeze"]


class Squeeze(Flow):
    """``[B, C, H, W] -> [B, 4C, H/2, W/2]``; H and W must be even."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("x", x, dim=4, floating=True)
        if x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"x must have even height and width to squeeze, got {tuple(x.shape)}")
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("z", z, dim=4, floating=True)
        if z.shape[1] % 4:
            raise ValueError(f"z must have a multiple of 4 channels to unsqueeze, got {tuple(z.shape)}")
        return F.pixel_shuffle(z, 2), z.new_zeros(z.shape[0])


class MultiScaleFlow(Flow):
    """``levels[i]`` then factor out half the channels, for every level; ``final`` on what remains.

    ``split_priors[i]`` (optional, one per level) maps the kept half ``h_i`` to ``(mean, log_scale)``
    of the factored-out half (Glow's learned prior); ``None`` models it with the base density alone.
    """

    def __init__(
        self,
        levels: Sequence[Flow],
        final: Flow,
        split_priors: Sequence[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        for i, level in enumerate(levels):
            if not isinstance(level, Flow):
                raise TypeError(f"levels[{i}] must be an aicanon Flow, got {type(level).__name__}")
        if not isinstance(final, Flow):
            raise TypeError(f"final must be an aicanon Flow, got {type(final).__name__}")
        if split_priors is not None and len(split_priors) != len(levels):
            raise ValueError(
                f"split_priors must hold one module per level ({len(levels)}), got {len(split_priors)}"
            )
        self.levels = nn.ModuleList(levels)
        self.final = final
        self.split_priors = None if split_priors is None else nn.ModuleList(split_priors)
        self._shapes: list[tuple[int, ...]] = []  # factored-out and final shapes, set by forward

    def _standardise(self, i: int, z: Tensor, h: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        if self.split_priors is None:
            return z, z.new_zeros(z.shape[0])
        mean, log_scale = self.split_priors[i](h)
        logdet = log_scale.flatten(1).sum(1)
        if inverse:
            return z * log_scale.exp() + mean, logdet
        return (z - mean) * (-log_scale).exp(), -logdet

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        parts, shapes = [], []
        for i, level in enumerate(self.levels):
            x, logdet = level(x)
            total = total + logdet
            if x.shape[1] < 2:
                raise ValueError(
                    f"level {i} must output at least 2 channels to factor half out, got {tuple(x.shape)}"
                )
            z, x = x.chunk(2, dim=1)  # the first half is factored out, the second goes on
            z, logdet = self._standardise(i, z, x, inverse=False)
            total = total + logdet
            parts.append(z.flatten(1))
            shapes.append(tuple(z.shape[1:]))
        x, logdet = self.final(x)
        parts.append(x.flatten(1))
        shapes.append(tuple(x.shape[1:]))
        self._shapes = shapes
        return torch.cat(parts, dim=1), total + logdet

    def latent_shapes(self) -> list[tuple[int, ...]]:
        """The shapes (without batch) of each factored-out part and of the final output, as the last
        ``forward`` saw them; ``inverse`` needs them (call ``forward`` once on a data batch first)."""
        if not self._shapes:
            raise RuntimeError("latent_shapes are set by forward: call the flow on one batch of data first")
        return list(self._shapes)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("z", z, dim=2, floating=True)
        shapes = self.latent_shapes()
        sizes = [math.prod(shape) for shape in shapes]
        if z.shape[1] != sum(sizes):
            raise ValueError(f"z must be [B, {sum(sizes)}] (the flattened latents), got {tuple(z.shape)}")
        chunks = [c.reshape(z.shape[0], *shape) for c, shape in zip(z.split(sizes, dim=1), shapes)]
        x, total = self.final.inverse(chunks[-1])
        for i in reversed(range(len(self.levels))):
            factored, logdet = self._standardise(i, chunks[i], x, inverse=True)
            total = total + logdet
            x, logdet = self.levels[i].inverse(torch.cat([factored, x], dim=1))
            total = total + logdet
        return x, total
