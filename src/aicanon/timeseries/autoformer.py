"""Autoformer: decomposition Transformer with Auto-Correlation (Wu et al., NeurIPS 2021, Section 3).

A forecaster of ``pred_len`` future steps from ``seq_len`` past ones, whose encoder-decoder
separates the series into a seasonal part, modelled by Auto-Correlation
(:mod:`aicanon.timeseries.autocorrelation`), and a trend, accumulated step by step from the moving
averages of the series decomposition blocks (:mod:`aicanon.timeseries.decomposition`).

**Decoder initialisation** (Eq. 2). The latter half of the input (``label_len`` steps) is
decomposed; the seasonal initialisation is its seasonal part followed by ``pred_len`` zeros, the
trend initialisation its trend followed by ``pred_len`` copies of the input's mean:

    X_ens, X_ent = SeriesDecomp(X_en[I/2 : I])
    X_des = Concat(X_ens, X_0),    X_det = Concat(X_ent, X_Mean)                      (Eq. 2)

(The official code decomposes the whole input and keeps its last ``label_len`` steps, which is what
we do; the moving average's padding differs only near the cut.)

**Encoder** (Eq. 3), ``N`` layers on the embedded input, keeping only the seasonal part:

    S_en^{l,1}, _ = SeriesDecomp(Auto-Correlation(X_en^{l-1}) + X_en^{l-1})
    S_en^{l,2}, _ = SeriesDecomp(FeedForward(S_en^{l,1}) + S_en^{l,1}),   X_en^l = S_en^{l,2}   (Eq. 3)

**Decoder** (Eq. 4), ``M`` layers on the embedded seasonal initialisation, with auto-correlation
over itself, then over the encoder's output, and a trend that collects the three layers' moving
averages, projected to the output channels:

    S_de^{l,1}, T_de^{l,1} = SeriesDecomp(Auto-Correlation(X_de^{l-1}) + X_de^{l-1})
    S_de^{l,2}, T_de^{l,2} = SeriesDecomp(Auto-Correlation(S_de^{l,1}, X_en^N) + S_de^{l,1})
    S_de^{l,3}, T_de^{l,3} = SeriesDecomp(FeedForward(S_de^{l,2}) + S_de^{l,2})
    T_de^l = T_de^{l-1} + W_{l,1} T_de^{l,1} + W_{l,2} T_de^{l,2} + W_{l,3} T_de^{l,3}         (Eq. 4)

and the forecast is ``W_S X_de^M + T_de^M``. As the official code, the three projections
``W_{l,i}`` are one projection of the summed trends (a circular kernel-3 convolution from
``d_model`` to the output channels, no bias: they are linear, so the sum is the same family), the
seasonal outputs of the encoder and decoder stacks pass through :class:`SeasonalLayerNorm` and
``W_S`` is a linear layer with bias. The feed-forward blocks are two kernel-1 convolutions
(``d_model -> d_ff -> d_model``, no bias, activation and dropout between), the embeddings are
:class:`aicanon.nn.series_embedding.DataEmbedding` without position codes and without biases
(the official ``DataEmbedding_wo_pos``).

Departures and options:

* ``decomposition=False`` is the ablation of Section 4.2 ("Ablation of decomposition"): every
  decomposition block passes its input through whole with a zero trend, and the decoder starts
  from the input's last ``label_len`` steps and zeros (Informer's start token), trend zero.
* ``mechanism="attention"`` swaps Auto-Correlation for full scaled dot-product attention with the
  same projections (Table 5's comparison with the self-attention family).
* ``aggregation`` picks which time-delay aggregation path runs (see
  :mod:`aicanon.timeseries.autocorrelation`): ``"auto"`` (default) is the official code's,
  batch-shared lags in training and per-sample lags in evaluation.
* ``c_out < dec_in`` (features ``MS``): the trend initialisation keeps the last ``c_out`` channels
  (the target); the official code broadcasts the trend over every channel and slices the target
  afterwards, which gives the same forecast.
* :class:`AutoformerEncoderLayer` / :class:`AutoformerDecoderLayer` take ``transformers_layout=True``
  to reproduce ``transformers``' variant (a LayerNorm after each residual sum, a
  :class:`SeasonalLayerNorm` closing every layer, feed-forward biases): for parity tests only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_probability, check_tensor
from aicanon.nn.series_embedding import DataEmbedding
from aicanon.timeseries.autocorrelation import AGGREGATIONS, AutoCorrelation
from aicanon.timeseries.decomposition import SeasonalLayerNorm, SeriesDecomposition

__all__ = [
    "Autoformer",
    "AutoformerDecoder",
    "AutoformerDecoderLayer",
    "AutoformerEncoder",
    "AutoformerEncoderLayer",
    "FullAttention",
    "MECHANISMS",
]

MECHANISMS = ("auto-correlation", "attention")
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


class FullAttention(nn.Module):
    """Multi-head scaled dot-product attention with Auto-Correlation's interface (the ablation of
    Table 5): ``layer(queries [B, L, d], keys [B, S, d], values [B, S, d]) -> [B, L, d]``."""

    def __init__(self, d_model: int, n_heads: int = 8, *, bias: bool = True) -> None:
        super().__init__()
        check_int("d_model", d_model, 1)
        check_int("n_heads", n_heads, 1)
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads={n_heads}, got {d_model}")
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model, bias=bias)
        self.key = nn.Linear(d_model, d_model, bias=bias)
        self.value = nn.Linear(d_model, d_model, bias=bias)
        self.output = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        def heads(x: Tensor) -> Tensor:
            return x.unflatten(2, (self.n_heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.query(queries)), heads(self.key(keys)), heads(self.value(values))
        )
        return self.output(out.transpose(1, 2).flatten(2))


def _mixer(mechanism: str, d_model: int, n_heads: int, factor: float, aggregation: str) -> nn.Module:
    if mechanism == "attention":
        return FullAttention(d_model, n_heads)
    return AutoCorrelation(d_model, n_heads, factor=factor, aggregation=aggregation)


class _FeedForward(nn.Module):
    """``dropout(W_2 dropout(act(W_1 x)))``: the official code's two kernel-1 convolutions."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str, bias: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.dropout(self.activation(self.fc1(x)))))


def _check_layer_args(
    d_model: int,
    n_heads: int,
    d_ff: int,
    factor: float,
    dropout: float,
    activation: str,
    mechanism: str,
    aggregation: str,
) -> None:
    check_int("d_model", d_model, 1)
    check_int("n_heads", n_heads, 1)
    check_int("d_ff", d_ff, 1)
    check_float("factor", factor, 0.0, min_inclusive=False, finite=True)
    check_probability("dropout", dropout, allow_one=False)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_choice("mechanism", mechanism, MECHANISMS)
    check_choice("aggregation", aggregation, AGGREGATIONS)


class AutoformerEncoderLayer(nn.Module):
    """One encoder layer (Eq. 3): ``x [B, L, d_model] -> seasonal part [B, L, d_model]``."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 8,
        d_ff: int = 2048,
        *,
        moving_avg: int = 25,
        factor: float = 1.0,
        dropout: float = 0.05,
        activation: str = "gelu",
        decomposition: bool = True,
        mechanism: str = "auto-correlation",
        aggregation: str = "auto",
        transformers_layout: bool = False,
    ) -> None:
        super().__init__()
        _check_layer_args(d_model, n_heads, d_ff, factor, dropout, activation, mechanism, aggregation)
        self.d_model = d_model
        self.self_correlation = _mixer(mechanism, d_model, n_heads, factor, aggregation)
        self.feed_forward = _FeedForward(d_model, d_ff, dropout, activation, bias=transformers_layout)
        self.decomposition1 = SeriesDecomposition(moving_avg, decomposition)
        self.decomposition2 = SeriesDecomposition(moving_avg, decomposition)
        self.dropout = nn.Dropout(dropout)
        self.transformers_layout = transformers_layout
        if transformers_layout:
            self.correlation_norm = nn.LayerNorm(d_model)
            self.final_norm = SeasonalLayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        if x.size(2) != self.d_model:
            raise ValueError(f"x must have d_model={self.d_model} features, got shape {tuple(x.shape)}")
        x = x + self.dropout(self.self_correlation(x, x, x))
        if self.transformers_layout:
            x = self.correlation_norm(x)
        x, _ = self.decomposition1(x)
        x, _ = self.decomposition2(x + self.feed_forward(x))
        if self.transformers_layout:
            x = self.final_norm(x)
        return x


class AutoformerDecoderLayer(nn.Module):
    """One decoder layer (Eq. 4): ``(x [B, L, d_model], cross [B, S, d_model]) -> (seasonal
    [B, L, d_model], projected trend [B, L, c_out])``."""

    def __init__(
        self,
        d_model: int,
        c_out: int,
        n_heads: int = 8,
        d_ff: int = 2048,
        *,
        moving_avg: int = 25,
        factor: float = 1.0,
        dropout: float = 0.05,
        activation: str = "gelu",
        decomposition: bool = True,
        mechanism: str = "auto-correlation",
        aggregation: str = "auto",
        transformers_layout: bool = False,
    ) -> None:
        super().__init__()
        _check_layer_args(d_model, n_heads, d_ff, factor, dropout, activation, mechanism, aggregation)
        check_int("c_out", c_out, 1)
        self.d_model = d_model
        self.self_correlation = _mixer(mechanism, d_model, n_heads, factor, aggregation)
        self.cross_correlation = _mixer(mechanism, d_model, n_heads, factor, aggregation)
        self.feed_forward = _FeedForward(d_model, d_ff, dropout, activation, bias=transformers_layout)
        self.decomposition1 = SeriesDecomposition(moving_avg, decomposition)
        self.decomposition2 = SeriesDecomposition(moving_avg, decomposition)
        self.decomposition3 = SeriesDecomposition(moving_avg, decomposition)
        self.dropout = nn.Dropout(dropout)
        # W_{l,1..3} of Eq. 4 as one map of the summed trends (they are linear).
        self.trend_projection = nn.Conv1d(
            d_model, c_out, kernel_size=3, padding=1, padding_mode="circular", bias=False
        )
        self.transformers_layout = transformers_layout
        if transformers_layout:
            self.self_norm = nn.LayerNorm(d_model)
            self.cross_norm = nn.LayerNorm(d_model)
            self.final_norm = SeasonalLayerNorm(d_model)

    def forward(self, x: Tensor, cross: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("x", x, dim=3, floating=True)
        check_tensor("cross", cross, dim=3, floating=True)
        for name, t in (("x", x), ("cross", cross)):
            if t.size(2) != self.d_model or t.size(0) != x.size(0):
                raise ValueError(
                    f"{name} must be [batch={x.size(0)}, length, d_model={self.d_model}], "
                    f"got {tuple(t.shape)}"
                )
        x, trend1 = self.decomposition1(x + self.dropout(self.self_correlation(x, x, x)))
        if self.transformers_layout:
            x = self.self_norm(x)
        x, trend2 = self.decomposition2(x + self.dropout(self.cross_correlation(x, cross, cross)))
        if self.transformers_layout:
            x = self.cross_norm(x)
        x, trend3 = self.decomposition3(x + self.feed_forward(x))
        if self.transformers_layout:
            x = self.final_norm(x)
        trend = self.trend_projection((trend1 + trend2 + trend3).transpose(1, 2)).transpose(1, 2)
        return x, trend


class AutoformerEncoder(nn.Module):
    """``N`` encoder layers and the seasonal layer norm."""

    def __init__(self, layers: list[AutoformerEncoderLayer], d_model: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = SeasonalLayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class AutoformerDecoder(nn.Module):
    """``M`` decoder layers accumulating the trend (Eq. 4), the seasonal layer norm and ``W_S``."""

    def __init__(self, layers: list[AutoformerDecoderLayer], d_model: int, c_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = SeasonalLayerNorm(d_model)
        self.projection = nn.Linear(d_model, c_out)

    def forward(self, x: Tensor, cross: Tensor, trend: Tensor) -> tuple[Tensor, Tensor]:
        for layer in self.layers:
            x, residual_trend = layer(x, cross)
            trend = trend + residual_trend
        return self.projection(self.norm(x)), trend


class Autoformer(nn.Module):
    """The Autoformer forecaster: ``model(x, x_marks, decoder_input, decoder_marks) -> [B, pred_len, c_out]``.

    ``x`` ``[B, seq_len, enc_in]`` is the input series with its time marks ``x_marks``
    ``[B, seq_len, F]``; ``decoder_marks`` ``[B, label_len + pred_len, F]`` are the marks of the
    decoder's span. ``decoder_input`` (Informer's start token + zeros) is accepted for the shared
    call convention and only its shape is checked: Autoformer builds its own seasonal and trend
    initialisation from ``x`` (Eq. 2), so ``enc_in`` must equal ``dec_in``.
    """

    def __init__(
        self,
        enc_in: int,
        dec_in: int,
        c_out: int,
        *,
        pred_len: int,
        label_len: int,
        d_model: int = 512,
        n_heads: int = 8,
        e_layers: int = 2,
        d_layers: int = 1,
        d_ff: int = 2048,
        moving_avg: int = 25,
        factor: float = 1,
        dropout: float = 0.05,
        embed: str = "timeF",
        freq: str = "h",
        activation: str = "gelu",
        decomposition: bool = True,
        mechanism: str = "auto-correlation",
        aggregation: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("enc_in", enc_in), ("dec_in", dec_in), ("c_out", c_out), ("pred_len", pred_len)):
            check_int(name, value, 1)
        check_int("label_len", label_len, 0)
        check_int("e_layers", e_layers, 1)
        check_int("d_layers", d_layers, 1)
        check_int("moving_avg", moving_avg, 1)
        if moving_avg % 2 == 0:
            raise ValueError(f"moving_avg must be odd (the average is centred), got {moving_avg}")
        if enc_in != dec_in:
            raise ValueError(
                f"dec_in must equal enc_in (the decoder starts from the decomposed input), "
                f"got {dec_in} and {enc_in}"
            )
        if c_out > dec_in:
            raise ValueError(
                f"c_out must be at most dec_in={dec_in} (the trend starts from the input), got {c_out}"
            )
        _check_layer_args(d_model, n_heads, d_ff, factor, dropout, activation, mechanism, aggregation)
        self.enc_in, self.c_out, self.pred_len, self.label_len = enc_in, c_out, pred_len, label_len
        self.decomposition = SeriesDecomposition(moving_avg, decomposition)
        self.encoder_embedding = DataEmbedding(
            enc_in, d_model, embed=embed, freq=freq, dropout=dropout, positional=False, bias=False
        )
        self.decoder_embedding = DataEmbedding(
            dec_in, d_model, embed=embed, freq=freq, dropout=dropout, positional=False, bias=False
        )
        common = dict(
            moving_avg=moving_avg,
            factor=factor,
            dropout=dropout,
            activation=activation,
            decomposition=decomposition,
            mechanism=mechanism,
            aggregation=aggregation,
        )
        self.encoder = AutoformerEncoder(
            [AutoformerEncoderLayer(d_model, n_heads, d_ff, **common) for _ in range(e_layers)], d_model
        )
        self.decoder = AutoformerDecoder(
            [AutoformerDecoderLayer(d_model, c_out, n_heads, d_ff, **common) for _ in range(d_layers)],
            d_model,
            c_out,
        )

    def initialisation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The decoder's ``(seasonal, trend)`` initialisation ``[B, label_len + pred_len, C]`` (Eq. 2)."""
        seasonal, trend = self.decomposition(x)
        batch, _, channels = x.shape
        future_seasonal = x.new_zeros(batch, self.pred_len, channels)
        if self.decomposition.enabled:
            future_trend = x.mean(dim=1, keepdim=True).expand(-1, self.pred_len, -1)
        else:
            future_trend = x.new_zeros(batch, self.pred_len, channels)
        start = x.size(1) - self.label_len
        return (
            torch.cat([seasonal[:, start:], future_seasonal], dim=1),
            torch.cat([trend[:, start:], future_trend], dim=1),
        )

    def forward(
        self, x: Tensor, x_marks: Tensor | None, decoder_input: Tensor | None, decoder_marks: Tensor | None
    ) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        if x.size(2) != self.enc_in:
            raise ValueError(f"x must have enc_in={self.enc_in} channels, got shape {tuple(x.shape)}")
        if x.size(1) < self.label_len:
            raise ValueError(
                f"x must hold at least label_len={self.label_len} steps, got shape {tuple(x.shape)}"
            )
        span = self.label_len + self.pred_len
        if decoder_input is not None:
            check_tensor("decoder_input", decoder_input, dim=3, floating=True)
            if decoder_input.shape != (x.size(0), span, self.enc_in):
                raise ValueError(
                    f"decoder_input must have shape {(x.size(0), span, self.enc_in)} "
                    f"(batch, label_len + pred_len, dec_in), got {tuple(decoder_input.shape)}"
                )
        if decoder_marks is not None and decoder_marks.shape[:2] != (x.size(0), span):
            raise ValueError(
                f"decoder_marks must be [batch={x.size(0)}, label_len + pred_len={span}, F], "
                f"got {tuple(decoder_marks.shape)}"
            )
        seasonal, trend = self.initialisation(x)
        encoded = self.encoder(self.encoder_embedding(x, x_marks))
        seasonal_out, trend_out = self.decoder(
            self.decoder_embedding(seasonal, decoder_marks), encoded, trend[..., -self.c_out :]
        )
        return (seasonal_out + trend_out)[:, -self.pred_len :]
