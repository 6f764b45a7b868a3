"""The Auto-Correlation mechanism of Autoformer (Wu et al., NeurIPS 2021, Section 3.2).

It replaces self-attention's point-wise dot products by dependencies between *sub-series*: the
series is compared with delayed copies of itself, and the most similar delays (the likely periods)
are rolled onto each other.

**Period-based dependencies.** For a discrete series, the auto-correlation at lag ``tau`` is
``R_XX(tau) = lim_{L->inf} 1/L sum_t X_t X_{t-tau}``. By the Wiener-Khinchin theorem it is the inverse
Fourier transform of the power spectrum, so all ``L`` lags cost ``O(L log L)``:

    S_XX(f) = F(X_t) F*(X_t),    R_XX(tau) = F^{-1}(S_XX(f))                         (Eq. 5)

With queries and keys in place of ``X`` (``R_{Q,K}``), computed per channel and averaged over the
heads and channels.

**Time-delay aggregation.** The ``k = floor(c * ln L)`` lags with the largest auto-correlation are
kept, their correlations normalised by a softmax, and the values rolled by each lag are summed with
those weights:

    tau_1..tau_k = argTopk_tau R_{Q,K}(tau)
    R^_{Q,K}(tau_1..tau_k) = SoftMax(R_{Q,K}(tau_1), ..., R_{Q,K}(tau_k))
    Auto-Correlation(Q, K, V) = sum_i Roll(V, tau_i) R^_{Q,K}(tau_i)                 (Eq. 6)

``Roll(V, tau)`` moves the series ``tau`` steps earlier, circularly (``V_{(t + tau) mod L}``). The
multi-head version (Eq. 7) projects Q, K, V with learned maps, applies Eq. 6 and projects back.

**Which lags.** The official code has two paths and chooses by ``self.training``: in training the
``k`` lags are chosen once for the whole batch from the batch-mean correlation (each sample keeps its
own weights at those lags, ``time_delay_agg_training``); in evaluation every sample chooses its own
lags (``time_delay_agg_inference``). transformers' ``AutoformerAttention`` does the same.
``aggregation="auto"`` (the default) follows them; ``"batch"`` or ``"sample"`` fixes one path in
both modes. The paper's Eq. 6 is per series, i.e. the per-sample path.

Departures, all shared with the official code unless said: the mean over heads and channels makes
the lags (and weights) shared by every head, so the ``H`` heads compute the same thing as one head
over all ``d_model`` channels and ``n_heads`` only checks divisibility. When the keys are shorter
than the queries they are zero-padded to the query length, when longer they are truncated (the
decoder's cross-correlation). ``k`` is at least 1 (the official code would take zero lags for
``c ln L < 1``) and at most ``L``. The Fourier transforms run in float32 under autocast.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor

__all__ = [
    "AGGREGATIONS",
    "AutoCorrelation",
    "auto_correlation",
    "correlation_scores",
    "number_of_lags",
    "time_delay_aggregation",
]

AGGREGATIONS = ("auto", "batch", "sample")
"""``auto``: batch-shared lags in training, per-sample lags in evaluation (official); or one of the two."""


def number_of_lags(factor: float, length: int) -> int:
    """``k = floor(c ln L)`` (Eq. 6), clamped to ``[1, L]``."""
    return min(max(int(factor * math.log(length)), 1), length)


def _match_length(x: Tensor, length: int) -> Tensor:
    """Truncate ``x`` ``[B, S, C]`` to ``length`` steps, or zero-pad it at the end to ``length``."""
    if x.size(1) >= length:
        return x[:, :length]
    return torch.cat([x, x.new_zeros(x.size(0), length - x.size(1), x.size(2))], dim=1)


def correlation_scores(queries: Tensor, keys: Tensor) -> Tensor:
    """``R_{Q,K}(tau)`` for every lag ``tau`` in ``0..L-1`` (Eq. 5), per channel: ``[B, L, C]``.

    ``R[b, tau, c] = sum_t Q[b, (t + tau) mod L, c] K[b, t, c]``; keys of another length are padded
    or truncated to the queries' ``L``.
    """
    length = queries.size(1)
    keys = _match_length(keys, length)
    spectrum = torch.fft.rfft(queries.float(), dim=1) * torch.conj(torch.fft.rfft(keys.float(), dim=1))
    return torch.fft.irfft(spectrum, n=length, dim=1)


def time_delay_aggregation(
    values: Tensor, scores: Tensor, top_k: int, *, shared: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Eq. 6: roll ``values`` ``[B, L, C]`` by the ``top_k`` lags of the channel-mean ``scores``
    ``[B, L, C]`` and sum them with softmax weights.

    ``shared``: one set of lags for the batch, from the batch-mean correlation (the official
    training path); otherwise each sample's own. Returns ``(output [B, L, C], lags [B, k],
    weights [B, k])``.
    """
    batch, length, _ = values.shape
    mean = scores.mean(dim=2)  # [B, L]: averaged over heads and channels
    if shared:
        lags = torch.topk(mean.mean(dim=0), top_k).indices  # [k]
        weights = mean[:, lags]
        lags = lags.unsqueeze(0).expand(batch, -1)
    else:
        weights, lags = torch.topk(mean, top_k, dim=1)
    weights = torch.softmax(weights, dim=1).to(values.dtype)
    steps = torch.arange(length, device=values.device)
    output = torch.zeros_like(values)
    for i in range(top_k):
        # Roll(V, tau_i): step t reads t + tau_i (mod L). One index for the batch when the lags are
        # shared (index_select: a cheaper backward than a per-sample gather).
        if shared:
            rolled = values.index_select(1, (steps + lags[0, i]) % length)
        else:
            index = (steps + lags[:, i : i + 1]) % length
            rolled = values.gather(1, index.unsqueeze(2).expand(-1, -1, values.size(2)))
        output = output + rolled * weights[:, i, None, None]
    return output, lags, weights


def auto_correlation(
    queries: Tensor, keys: Tensor, values: Tensor, *, factor: float = 1.0, shared: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Auto-Correlation(Q, K, V) (Eq. 5-6) on ``[B, L, C]`` queries and ``[B, S, C]`` keys/values
    (padded or truncated to ``L``). Returns ``(output [B, L, C], lags [B, k], weights [B, k])``."""
    check_tensor("queries", queries, dim=3, floating=True)
    check_tensor("keys", keys, dim=3, floating=True)
    check_tensor("values", values, dim=3, floating=True)
    if keys.shape != values.shape:
        raise ValueError(
            f"keys and values must have the same shape, got {tuple(keys.shape)} and {tuple(values.shape)}"
        )
    if keys.size(0) != queries.size(0) or keys.size(2) != queries.size(2):
        raise ValueError(
            f"keys must match the queries' batch and channels {queries.size(0), queries.size(2)}, "
            f"got shape {tuple(keys.shape)}"
        )
    check_float("factor", factor, 0.0, min_inclusive=False, finite=True)
    scores = correlation_scores(queries, keys)
    top_k = number_of_lags(factor, queries.size(1))
    return time_delay_aggregation(_match_length(values, queries.size(1)), scores, top_k, shared=shared)


class AutoCorrelation(nn.Module):
    """The multi-head Auto-Correlation layer (Eq. 7): ``W_o AutoCorrelation(W_q q, W_k k, W_v v)``.

    Called as ``layer(queries [B, L, d], keys [B, S, d], values [B, S, d]) -> [B, L, d]``; self
    auto-correlation passes the same tensor three times.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 8,
        *,
        factor: float = 1.0,
        aggregation: str = "auto",
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model, 1)
        check_int("n_heads", n_heads, 1)
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads={n_heads}, got {d_model}")
        check_float("factor", factor, 0.0, min_inclusive=False, finite=True)
        check_choice("aggregation", aggregation, AGGREGATIONS)
        self.d_model, self.n_heads, self.factor, self.aggregation = d_model, n_heads, factor, aggregation
        self.query = nn.Linear(d_model, d_model, bias=bias)
        self.key = nn.Linear(d_model, d_model, bias=bias)
        self.value = nn.Linear(d_model, d_model, bias=bias)
        self.output = nn.Linear(d_model, d_model, bias=bias)

    def shared_lags(self) -> bool:
        """Whether the lags are chosen once per batch (the official training path) right now."""
        return self.aggregation == "batch" or (self.aggregation == "auto" and self.training)

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        for name, x in (("queries", queries), ("keys", keys), ("values", values)):
            check_tensor(name, x, dim=3, floating=True)
            if x.size(2) != self.d_model:
                raise ValueError(
                    f"{name} must have d_model={self.d_model} features, got shape {tuple(x.shape)}"
                )
        out, _, _ = auto_correlation(
            self.query(queries),
            self.key(keys),
            self.value(values),
            factor=self.factor,
            shared=self.shared_lags(),
        )
        return self.output(out)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, factor={self.factor}, "
            f"aggregation={self.aggregation!r}"
        )
