"""Input embedding of multivariate time series (Informer, Appendix B and Figure 6; reused by Autoformer).

A series ``x`` ``[B, L, C]`` with time-stamp features ``marks`` ``[B, L, F]`` becomes ``[B, L, d_model]``:

    embedding = u(x) + PE(position) + SE(time stamp),   then dropout

* ``u``: the "scalar projection", a 1-D convolution over time (kernel 3, circular padding) from the
  ``C`` channels to ``d_model`` (:class:`TokenEmbedding`);
* ``PE``: the fixed sinusoidal local position (Vaswani et al.) (:class:`PositionalEmbedding`);
  Autoformer drops it (``positional=False``): its decomposition and auto-correlation keep order;
* ``SE``: the global time stamp, either embedding tables over calendar fields, fixed sinusoidal or
  learned (:class:`TemporalEmbedding`, marks from
  :func:`aicanon.timeseries.time_features.calendar_fields`), or a linear map of real time features
  (:class:`TimeFeatureEmbedding`, "timeF", marks from
  :func:`aicanon.timeseries.time_features.time_features`).

The official Informer code gives the convolution and the linear time-feature map a bias; Autoformer's
code has none. ``bias`` selects either.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_probability, check_tensor

__all__ = [
    "DataEmbedding",
    "FixedEmbedding",
    "PositionalEmbedding",
    "TemporalEmbedding",
    "TimeFeatureEmbedding",
    "TokenEmbedding",
    "sinusoid_table",
]

EMBEDDINGS = ("timeF", "fixed", "learned")
TIME_FEATURES = {"d": 3, "h": 4, "t": 5}
"""Real time features per frequency (:func:`aicanon.timeseries.time_features.time_features`)."""
CALENDAR_SIZES = {"month": 13, "day": 32, "weekday": 7, "hour": 24, "minute": 4}
"""Table sizes of the calendar fields (month and day are 1-based; minute is ``minute // 15``)."""


def sinusoid_table(length: int, d_model: int) -> Tensor:
    """``[length, d_model]``: sin at even and cos at odd features, wavelengths 2pi .. 10000 * 2pi."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table


class PositionalEmbedding(nn.Module):
    """Fixed sinusoidal position codes ``[1, L, d_model]`` for a ``[B, L, *]`` input."""

    def __init__(self, d_model: int, max_len: int = 5000) -> None:
        super().__init__()
        self.register_buffer("table", sinusoid_table(max_len, d_model).unsqueeze(0), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(1) > self.table.size(1):
            raise ValueError(f"x has {x.size(1)} time steps; the table holds max_len={self.table.size(1)}")
        return self.table[:, : x.size(1)]


class TokenEmbedding(nn.Module):
    """The scalar projection: Conv1d(C -> d_model, kernel 3, circular padding) over time."""

    def __init__(self, channels: int, d_model: int, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=bias)
        # As the official code: Kaiming-normal weights (fan-in, leaky-ReLU gain).
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class FixedEmbedding(nn.Module):
    """An embedding table frozen to sinusoid codes (the "fixed" temporal embedding)."""

    def __init__(self, size: int, d_model: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(size, d_model)
        self.embedding.weight = nn.Parameter(sinusoid_table(size, d_model), requires_grad=False)

    def forward(self, index: Tensor) -> Tensor:
        return self.embedding(index)


class TemporalEmbedding(nn.Module):
    """Sum of per-field tables over ``[month, day, weekday, hour(, minute // 15)]`` integer marks."""

    def __init__(self, d_model: int, kind: str = "fixed", freq: str = "h") -> None:
        super().__init__()
        check_choice("kind", kind, ("fixed", "learned"))
        check_choice("freq", freq, tuple(TIME_FEATURES))
        fields = ["month", "day", "weekday", "hour"] + (["minute"] if freq == "t" else [])
        table = FixedEmbedding if kind == "fixed" else nn.Embedding
        self.fields = tuple(fields)
        self.tables = nn.ModuleDict({name: table(CALENDAR_SIZES[name], d_model) for name in fields})

    def forward(self, marks: Tensor) -> Tensor:
        check_tensor("marks", marks, dim=3, floating=False)
        if marks.size(2) < len(self.fields):
            raise ValueError(
                f"marks must hold the fields {self.fields} on its last axis, got {marks.size(2)}"
            )
        marks = marks.long()
        return sum(self.tables[name](marks[:, :, i]) for i, name in enumerate(self.fields))


class TimeFeatureEmbedding(nn.Module):
    """Linear map of the real time features ("timeF")."""

    def __init__(self, d_model: int, freq: str = "h", bias: bool = True) -> None:
        super().__init__()
        check_choice("freq", freq, tuple(TIME_FEATURES))
        self.linear = nn.Linear(TIME_FEATURES[freq], d_model, bias=bias)

    def forward(self, marks: Tensor) -> Tensor:
        check_tensor("marks", marks, dim=3, floating=True)
        if marks.size(2) != self.linear.in_features:
            raise ValueError(
                f"marks must hold {self.linear.in_features} time features (last axis), got {marks.size(2)}"
            )
        return self.linear(marks)


class DataEmbedding(nn.Module):
    """``dropout(u(x) + PE + SE(marks))``; without ``PE`` when ``positional=False`` (Autoformer)."""

    def __init__(
        self,
        channels: int,
        d_model: int,
        *,
        embed: str = "timeF",
        freq: str = "h",
        dropout: float = 0.05,
        positional: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        check_int("d_model", d_model, 2)
        check_choice("embed", embed, EMBEDDINGS)
        check_choice("freq", freq, tuple(TIME_FEATURES))
        check_probability("dropout", dropout, allow_one=False)
        self.channels = channels
        self.value = TokenEmbedding(channels, d_model, bias=bias)
        self.position = PositionalEmbedding(d_model) if positional else None
        if embed == "timeF":
            self.temporal: nn.Module = TimeFeatureEmbedding(d_model, freq, bias=bias)
        else:
            self.temporal = TemporalEmbedding(d_model, embed, freq)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, marks: Tensor | None) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        if x.size(2) != self.channels:
            raise ValueError(f"x must have {self.channels} channels (last axis), got shape {tuple(x.shape)}")
        out = self.value(x)
        if self.position is not None:
            out = out + self.position(x)
        if marks is not None:
            if marks.shape[:2] != x.shape[:2]:
                raise ValueError(
                    f"marks must match x's batch and time axes {tuple(x.shape[:2])}, got {tuple(marks.shape)}"
                )
            out = out + self.temporal(marks)
        return self.dropout(out)
