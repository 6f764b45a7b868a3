"""Series decomposition block and the seasonal-part layer norm of Autoformer (Wu et al., NeurIPS 2021).

Section 3.1, "Series decomposition block": a moving average over time, with the series' two ends
padded by repeating their first and last values so that the output keeps the input's length,
separates the slowly varying trend from the seasonal (periodic) part:

    X_t = AvgPool(Padding(X)),    X_s = X - X_t                                   (Eq. 1)

for ``X`` ``[B, L, d]``. Autoformer applies it to its input (the decoder's initialisation, Eq. 2) and
after every auto-correlation and feed-forward block (Eq. 3-4), keeping only the seasonal part on the
main path and accumulating the trends.

The seasonal part is normalised by :class:`SeasonalLayerNorm` (the official code's ``my_Layernorm``):
a LayerNorm over features followed by subtracting the result's mean over time, so the normalised
seasonal part has zero mean along time, as a seasonal component should.

Departure: the official code pads ``(kernel - 1) // 2`` on each side, so an even kernel shortens the
series by one step and breaks ``X - X_t``; we accept odd kernels only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_tensor

__all__ = ["SeasonalLayerNorm", "SeriesDecomposition", "moving_average"]


def moving_average(x: Tensor, kernel_size: int) -> Tensor:
    """The trend ``AvgPool(Padding(x))`` of ``x`` ``[B, L, d]`` (Eq. 1): the mean of ``kernel_size``
    steps centred on each step, the ends padded with copies of the first and last step."""
    check_tensor("x", x, dim=3, floating=True)
    check_int("kernel_size", kernel_size, 1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (the average is centred), got {kernel_size}")
    pad = (kernel_size - 1) // 2
    if pad == 0:
        return x
    padded = torch.cat([x[:, :1].expand(-1, pad, -1), x, x[:, -1:].expand(-1, pad, -1)], dim=1)
    return F.avg_pool1d(padded.transpose(1, 2), kernel_size, stride=1).transpose(1, 2)


class SeriesDecomposition(nn.Module):
    """``(seasonal, trend)`` of ``x`` ``[B, L, d]`` by a centred moving average (Eq. 1).

    ``enabled=False`` is the ablation without decomposition: the whole input stays on the seasonal
    path and the trend is zero.
    """

    def __init__(self, kernel_size: int = 25, enabled: bool = True) -> None:
        super().__init__()
        check_int("kernel_size", kernel_size, 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the average is centred), got {kernel_size}")
        self.kernel_size = kernel_size
        self.enabled = bool(enabled)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.enabled:
            check_tensor("x", x, dim=3, floating=True)
            return x, torch.zeros_like(x)
        trend = moving_average(x, self.kernel_size)
        return x - trend, trend

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}" + ("" if self.enabled else ", enabled=False")


class SeasonalLayerNorm(nn.Module):
    """``LayerNorm(x) - mean_t LayerNorm(x)`` for ``x`` ``[B, L, d]``: a layer norm whose output has
    zero mean over time (the seasonal part's normalisation, official ``my_Layernorm``)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        check_int("d_model", d_model, 1)
        self.layernorm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        normed = self.layernorm(x)
        return normed - normed.mean(dim=1, keepdim=True)
