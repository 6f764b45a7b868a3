"""Informer (Zhou et al., AAAI 2021): ProbSparse self-attention, self-attention distilling and a
generative-style decoder for long sequence time-series forecasting.

**ProbSparse self-attention** (Section 3.1). Canonical attention (Eq. 1) gives query ``q_i``

    A(q_i, K, V) = sum_j  k(q_i, k_j) / sum_l k(q_i, k_l) * v_j,    k(q, k) = exp(q k^T / sqrt(d))

and most queries' attention is close to uniform ("lazy"). The max-mean *query sparsity measurement*
(Eq. 4) ranks the queries without the full ``L_Q x L_K`` product:

    M_bar(q_i, K) = max_j { q_i k_j^T / sqrt(d) } - 1/L_K * sum_j q_i k_j^T / sqrt(d)

computed on ``U = c * ceil(ln L_K)`` randomly sampled keys per query. Only the top
``u = c * ceil(ln L_Q)`` queries ("active") attend (Eq. 3, ``Q_bar`` holds them):

    A(Q, K, V) = softmax(Q_bar K^T / sqrt(d)) V

and the lazy queries output ``mean(V)`` (the average of the values, what uniform attention gives), or
in the masked decoder self-attention the running sum ``cumsum(V)`` (the official code's choice). The
cost is ``L_Q * U + u * L_K`` dot products per head, ``O(L ln L)``, against ``L_Q * L_K`` for full
attention; :attr:`InformerAttention.dot_products` counts them on every call.

**Self-attention distilling** (Section 3.2, Eq. 5): between encoder layers

    X_{j+1} = MaxPool( ELU( Conv1d( [X_j]_AB ) ) )

with a kernel-3 circular convolution over time, batch normalisation, ELU and a max-pool of kernel 3
and stride 2 that halves the length (:class:`DistillingLayer`). ``[X_j]_AB`` is the attention block
(multi-head ProbSparse self-attention + feed-forward, post-norm).

**Generative-style decoder** (Section 3.3): the decoder reads ``X_de = Concat(X_token, X_0)``, the last
``label_len`` known steps (the start token) followed by ``pred_len`` placeholders (zeros), through a
masked ProbSparse self-attention and a full cross-attention on the encoder's output, and predicts all
``pred_len`` steps in one forward pass (a linear projection of the last ``pred_len`` outputs).

**Input** (Appendix B): ``u(x) + PE + SE(time stamp)``, the shared
:class:`aicanon.nn.series_embedding.DataEmbedding` (positional code and biases on, as the official
code).

**Encoder stack** (Section 3.2, Figure 3; the official ``InformerStack``): :class:`InformerStack`
runs several encoders, the ``i``-th on the last ``L / 2^i`` steps of the embedded input and with
``e_layers[i]`` layers, and concatenates their outputs along time.

Departures from the paper and from the official code (github.com/zhouhaoyi/Informer2020):

* Keys are sampled with replacement for every query separately, as the official code (the paper
  samples ``U = L_K ln L_Q`` pairs in all); the mean term of ``M_bar`` divides the *sampled* sum by
  ``L_K`` (the official code and ``transformers``), not by the number of samples. The scale
  ``1/sqrt(d)`` is left out of the ranking (it does not change it).
* ``ln`` rounds up (``ceil(ln L)``) and at least one key/query is kept, so a length-1 input works.
* The official distilling convolution pads by 2 (a PyTorch version check), which makes the output
  ``floor((L+1)/2) + 1`` long (96 -> 49); we pad by 1 so that it halves (96 -> 48), as Eq. 5 says and
  as ``transformers``' ``InformerConvLayer`` does.
* The official decoder self-attention layer "mixes" heads and time (``mix=True``: a transpose before
  the output reshape); we do not: the heads are concatenated per time step as in every other
  attention layer (and in ``transformers``).
* Attention dropout is applied to the ProbSparse weights too (``transformers`` does; the official
  ProbAttention defines it but never applies it).
* The feed-forward layers are ``nn.Linear`` (the official code uses kernel-1 ``Conv1d``, the same map
  with weights of shape ``[out, in, 1]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_probability, check_tensor
from aicanon.nn.series_embedding import DataEmbedding

__all__ = [
    "DistillingLayer",
    "Informer",
    "InformerAttention",
    "InformerDecoder",
    "InformerDecoderLayer",
    "InformerEncoder",
    "InformerEncoderLayer",
    "InformerStack",
    "ProbSparseOutput",
    "full_attention",
    "probsparse_attention",
    "sample_size",
    "total_dot_products",
]

ATTENTIONS = ("prob", "full")
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def sample_size(length: int, factor: int) -> int:
    """``min(c * ceil(ln L), L)``, at least 1: the sampled keys per query (``U``) and the active
    queries (``u``) of ProbSparse attention (Section 3.1)."""
    check_int("length", length, 1)
    check_int("factor", factor, 1)
    return max(1, min(factor * math.ceil(math.log(length)), length))


class ProbSparseOutput(NamedTuple):
    output: Tensor
    """``[B, H, L_Q, D_v]``: attention outputs of the active queries, ``mean(V)``/``cumsum(V)`` elsewhere."""
    top_queries: Tensor
    """``[B, H, u]`` int64: the active queries (in no particular order)."""
    dot_products: int
    """Query-key dot products computed per (batch, head): ``L_Q * U + u * L_K``."""


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, dim=4, floating=True, note=" [batch, heads, length, head_dim]")
    if k.shape[:2] != q.shape[:2] or v.shape[:3] != k.shape[:3] or k.size(3) != q.size(3):
        raise ValueError(
            "k must be [B, H, L_K, D] and v [B, H, L_K, D_v] with q's B, H and D, got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )


def probsparse_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    factor: int = 5,
    causal: bool = False,
    scale: float | None = None,
    sample_index: Tensor | None = None,
    n_top: int | None = None,
    dropout_p: float = 0.0,
    generator: torch.Generator | None = None,
) -> ProbSparseOutput:
    """ProbSparse attention (Eqs. 3-4) of ``q [B, H, L_Q, D]`` over ``k [B, H, L_K, D]`` and
    ``v [B, H, L_K, D_v]``.

    ``sample_index``: the sampled keys, ``[L_Q, U]`` (per query, the default: drawn uniformly with
    replacement from ``generator`` or torch's global RNG) or ``[U]`` (the same keys for every query,
    as ``transformers`` samples them); shared by the batch and the heads. ``n_top`` overrides
    ``u = c * ceil(ln L_Q)``. ``causal`` masks future keys for the active queries and gives the lazy
    ones ``cumsum(V)`` (it needs ``L_Q == L_K``); otherwise the lazy queries get ``mean(V)``.
    """
    _check_qkv(q, k, v)
    check_int("factor", factor, 1)
    check_probability("dropout_p", dropout_p, allow_one=False)
    batch, heads, query_len, head_dim = q.shape
    key_len = k.size(2)
    if causal and query_len != key_len:
        raise ValueError(f"causal ProbSparse attention needs L_Q == L_K, got {query_len} and {key_len}")
    scale = head_dim**-0.5 if scale is None else scale
    if sample_index is None:
        size = (query_len, sample_size(key_len, factor))
        sample_index = torch.randint(key_len, size, generator=generator).to(q.device)
    check_tensor("sample_index", sample_index, floating=False)
    if sample_index.dim() not in (1, 2) or (sample_index.dim() == 2 and sample_index.size(0) != query_len):
        raise ValueError(
            f"sample_index must be [U] or [L_Q={query_len}, U], got shape {tuple(sample_index.shape)}"
        )
    if sample_index.numel() and (int(sample_index.min()) < 0 or int(sample_index.max()) >= key_len):
        raise ValueError(f"sample_index must lie in [0, L_K={key_len}), got values outside it")
    n_top = sample_size(query_len, factor) if n_top is None else check_int("n_top", n_top, 1, query_len)

    # Eq. 4 on the sampled keys: M_bar = max - sum / L_K (unscaled: the ranking is the same).
    if sample_index.dim() == 1:
        sampled = q @ k[:, :, sample_index].transpose(-2, -1)  # [B, H, L_Q, U]
    else:
        keys = k[:, :, sample_index]  # [B, H, L_Q, U, D]: query i's own keys
        sampled = (q.unsqueeze(-2) @ keys.transpose(-2, -1)).squeeze(-2)
    sparsity = sampled.max(dim=-1).values - sampled.sum(dim=-1) / key_len
    top = sparsity.topk(n_top, dim=-1, sorted=False).indices  # [B, H, u]

    # Eq. 3: only the active queries attend, over every key.
    active = q.gather(2, top.unsqueeze(-1).expand(-1, -1, -1, head_dim))
    scores = (active @ k.transpose(-2, -1)) * scale  # [B, H, u, L_K]
    if causal:
        future = torch.arange(key_len, device=q.device) > top.unsqueeze(-1)
        scores = scores.masked_fill(future, float("-inf"))
    weights = F.dropout(scores.softmax(dim=-1), p=dropout_p, training=dropout_p > 0)
    attended = weights @ v  # [B, H, u, D_v]

    # The lazy queries: the mean of the values, or their running sum under the causal mask.
    if causal:
        context = v.cumsum(dim=-2, dtype=torch.float32).to(v.dtype)
    else:
        context = v.mean(dim=-2, keepdim=True).expand(-1, -1, query_len, -1)
    output = context.scatter(2, top.unsqueeze(-1).expand(-1, -1, -1, v.size(-1)), attended)
    dot_products = query_len * sampled.size(-1) + n_top * key_len
    return ProbSparseOutput(output, top, dot_products)


def full_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, dropout_p: float = 0.0
) -> tuple[Tensor, int]:
    """Canonical attention (Eq. 1), ``(output [B, H, L_Q, D_v], L_Q * L_K dot products per head)``."""
    _check_qkv(q, k, v)
    check_probability("dropout_p", dropout_p, allow_one=False)
    if causal and q.size(2) != k.size(2):
        raise ValueError(f"causal attention needs L_Q == L_K, got {q.size(2)} and {k.size(2)}")
    output = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal)
    return output, q.size(2) * k.size(2)


class InformerAttention(nn.Module):
    """Multi-head attention layer: projections, ProbSparse (``"prob"``) or full (``"full"``) attention
    per head, concatenation and output projection.

    ``dot_products`` holds the query-key dot products of the last call, summed over the heads, per
    batch element (the cost measure of Section 3.1).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        attention: str = "prob",
        factor: int = 5,
        causal: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model, 1)
        check_int("n_heads", n_heads, 1)
        if d_model % n_heads:
            raise ValueError(f"d_model must be a multiple of n_heads={n_heads}, got {d_model}")
        check_choice("attention", attention, ATTENTIONS)
        check_int("factor", factor, 1)
        check_probability("dropout", dropout, allow_one=False)
        self.n_heads, self.attention, self.factor = n_heads, attention, factor
        self.causal, self.dropout = causal, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dot_products = 0

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), x.size(1), self.n_heads, -1).transpose(1, 2)

    def forward(
        self,
        queries: Tensor,
        keys: Tensor | None = None,
        *,
        sample_index: Tensor | None = None,
        n_top: int | None = None,
    ) -> Tensor:
        """``queries [B, L_Q, d_model]`` attend over ``keys [B, L_K, d_model]`` (default: themselves).

        ``sample_index``/``n_top`` fix ProbSparse's sampled keys and active-query count
        (:func:`probsparse_attention`); full attention ignores them.
        """
        check_tensor("queries", queries, dim=3, floating=True)
        keys = queries if keys is None else check_tensor("keys", keys, dim=3, floating=True)
        q, k, v = self._heads(self.query(queries)), self._heads(self.key(keys)), self._heads(self.value(keys))
        dropout_p = self.dropout if self.training else 0.0
        if self.attention == "prob":
            result = probsparse_attention(
                q,
                k,
                v,
                factor=self.factor,
                causal=self.causal,
                sample_index=sample_index,
                n_top=n_top,
                dropout_p=dropout_p,
            )
            output, dot_products = result.output, result.dot_products
        else:
            output, dot_products = full_attention(q, k, v, causal=self.causal, dropout_p=dropout_p)
        self.dot_products = dot_products * self.n_heads
        return self.out(output.transpose(1, 2).reshape(queries.shape[0], queries.shape[1], -1))


class DistillingLayer(nn.Module):
    """Eq. 5: ``MaxPool(ELU(BatchNorm(Conv1d(x))))`` over time, halving ``[B, L, d]`` to
    ``[B, ceil(L/2), d]``."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        check_int("d_model", d_model, 1)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size=3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm1d(d_model)
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        return self.pool(F.elu(self.norm(self.conv(x.transpose(1, 2))))).transpose(1, 2)


def _activation(name: str):
    return ACTIVATIONS[check_choice("activation", name, tuple(ACTIVATIONS))]


class InformerEncoderLayer(nn.Module):
    """The attention block ``[X]_AB``: self-attention and a feed-forward net, each residual and post-norm."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        attention: str = "prob",
        factor: int = 5,
        dropout: float = 0.05,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        check_int("d_ff", d_ff, 1)
        self.attention = InformerAttention(
            d_model, n_heads, attention=attention, factor=factor, dropout=dropout
        )
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, x: Tensor, *, sample_index: Tensor | None = None, n_top: int | None = None) -> Tensor:
        """``x [B, L, d_model]``; ``sample_index``/``n_top`` as :meth:`InformerAttention.forward`."""
        x = self.norm1(x + self.dropout(self.attention(x, sample_index=sample_index, n_top=n_top)))
        y = self.dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return self.norm2(x + y)


class InformerDecoderLayer(nn.Module):
    """Masked self-attention (ProbSparse or full), full cross-attention on the encoder's output and a
    feed-forward net, each residual and post-norm."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        attention: str = "prob",
        factor: int = 5,
        dropout: float = 0.05,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        check_int("d_ff", d_ff, 1)
        self.self_attention = InformerAttention(
            d_model, n_heads, attention=attention, factor=factor, causal=True, dropout=dropout
        )
        self.cross_attention = InformerAttention(d_model, n_heads, attention="full", dropout=dropout)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)
        self.activation = _activation(activation)

    def forward(
        self, x: Tensor, memory: Tensor, *, sample_index: Tensor | None = None, n_top: int | None = None
    ) -> Tensor:
        """``x [B, L, d_model]`` attends to itself (masked), then to ``memory [B, S, d_model]``."""
        x = self.norm1(x + self.dropout(self.self_attention(x, sample_index=sample_index, n_top=n_top)))
        x = self.norm2(x + self.dropout(self.cross_attention(x, memory)))
        y = self.dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return self.norm3(x + y)


class InformerEncoder(nn.Module):
    """``e_layers`` attention blocks with a distilling layer between consecutive ones, then LayerNorm."""

    def __init__(self, e_layers: int, d_model: int, distil: bool = True, **layer_kwargs) -> None:
        super().__init__()
        check_int("e_layers", e_layers, 1)
        self.layers = nn.ModuleList(InformerEncoderLayer(d_model, **layer_kwargs) for _ in range(e_layers))
        self.distilling = (
            nn.ModuleList(DistillingLayer(d_model) for _ in range(e_layers - 1)) if distil else None
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.distilling is not None and i < len(self.distilling):
                x = self.distilling[i](x)
        return self.norm(x)


class InformerEncoderStack(nn.Module):
    """Encoders on the last ``L / 2^i`` steps, their outputs concatenated along time (Figure 3)."""

    def __init__(self, encoders: Sequence[InformerEncoder]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for i, encoder in enumerate(self.encoders):
            length = x.size(1) // 2**i
            if length < 1:
                raise ValueError(
                    f"the encoder stack's replica {i} gets no step of an input of length {x.size(1)}"
                )
            outputs.append(encoder(x[:, -length:]))
        return torch.cat(outputs, dim=1)


class InformerDecoder(nn.Module):
    """``d_layers`` decoder layers, then LayerNorm."""

    def __init__(self, d_layers: int, d_model: int, **layer_kwargs) -> None:
        super().__init__()
        check_int("d_layers", d_layers, 1)
        self.layers = nn.ModuleList(InformerDecoderLayer(d_model, **layer_kwargs) for _ in range(d_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory)
        return self.norm(x)


class Informer(nn.Module):
    """The Informer forecaster: ``model(x, x_marks, decoder_input, decoder_marks) -> [B, pred_len, c_out]``.

    ``x [B, seq_len, enc_in]`` with its time features ``x_marks [B, seq_len, F]`` (or None);
    ``decoder_input [B, label_len + pred_len, dec_in]``: the start token then zeros (Section 3.3),
    with ``decoder_marks``. ``attention`` is ``"prob"`` (ProbSparse in the encoder and in the decoder's
    self-attention) or ``"full"`` (canonical attention, the paper's "Informer‡" ablation of Table 3).
    ``distil`` toggles the distilling layers between encoder layers.
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
        factor: int = 5,
        dropout: float = 0.05,
        attention: str = "prob",
        embed: str = "timeF",
        freq: str = "h",
        activation: str = "gelu",
        distil: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("enc_in", enc_in), ("dec_in", dec_in), ("c_out", c_out), ("pred_len", pred_len)):
            check_int(name, value, 1)
        check_int("label_len", label_len, 0)
        check_int("n_heads", n_heads, 1)
        check_int("d_model", d_model, 2)
        if d_model % n_heads:
            raise ValueError(f"d_model must be a multiple of n_heads={n_heads}, got {d_model}")
        check_choice("attention", attention, ATTENTIONS)
        check_choice("activation", activation, tuple(ACTIVATIONS))
        self.pred_len, self.label_len = pred_len, label_len
        layer_kwargs = dict(
            n_heads=n_heads,
            d_ff=d_ff,
            attention=attention,
            factor=factor,
            dropout=dropout,
            activation=activation,
        )
        self.encoder_embedding = DataEmbedding(enc_in, d_model, embed=embed, freq=freq, dropout=dropout)
        self.decoder_embedding = DataEmbedding(dec_in, d_model, embed=embed, freq=freq, dropout=dropout)
        self.encoder = self._encoder(e_layers, d_model, distil, layer_kwargs)
        self.decoder = InformerDecoder(d_layers, d_model, **layer_kwargs)
        self.projection = nn.Linear(d_model, c_out)

    def _encoder(self, e_layers, d_model: int, distil: bool, layer_kwargs: dict) -> nn.Module:
        return InformerEncoder(e_layers, d_model, distil, **layer_kwargs)

    def forward(
        self, x: Tensor, x_marks: Tensor | None, decoder_input: Tensor, decoder_marks: Tensor | None
    ) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        check_tensor("decoder_input", decoder_input, dim=3, floating=True)
        expected = self.label_len + self.pred_len
        if decoder_input.size(1) != expected:
            raise ValueError(
                f"decoder_input must hold label_len + pred_len = {expected} steps (axis 1), "
                f"got shape {tuple(decoder_input.shape)}"
            )
        if decoder_input.size(0) != x.size(0):
            raise ValueError(
                f"x and decoder_input must share the batch size, got {x.size(0)} and {decoder_input.size(0)}"
            )
        memory = self.encoder(self.encoder_embedding(x, x_marks))
        out = self.decoder(self.decoder_embedding(decoder_input, decoder_marks), memory)
        return self.projection(out[:, -self.pred_len :])


class InformerStack(Informer):
    """Informer with the encoder stack: replica ``i`` has ``e_layers[i]`` layers and reads the last
    ``seq_len / 2^i`` steps (the official default ``e_layers = (3, 2, 1)``). Other arguments as
    :class:`Informer`."""

    def __init__(
        self, enc_in: int, dec_in: int, c_out: int, *, e_layers: Sequence[int] = (3, 2, 1), **kwargs
    ) -> None:
        if isinstance(e_layers, (str, bytes)) or not isinstance(e_layers, Sequence) or not e_layers:
            raise TypeError(f"e_layers must be a non-empty sequence of ints, got {e_layers!r}")
        super().__init__(enc_in, dec_in, c_out, e_layers=tuple(e_layers), **kwargs)

    def _encoder(self, e_layers, d_model: int, distil: bool, layer_kwargs: dict) -> nn.Module:
        return InformerEncoderStack([InformerEncoder(n, d_model, distil, **layer_kwargs) for n in e_layers])


def total_dot_products(model: nn.Module) -> int:
    """Query-key dot products of every :class:`InformerAttention` in ``model`` during its last call,
    per batch element (summed over heads and layers)."""
    return sum(m.dot_products for m in model.modules() if isinstance(m, InformerAttention))
