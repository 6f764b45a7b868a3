"""Additive (Bahdanau) attention: a one-hidden-layer network scores each memory position against a query.

Bahdanau, Cho & Bengio (2015), Eq. 6 and Appendix A.1.2:

    e_i = vᵀ tanh(W_q q + W_k k_i)          (score of memory position i)
    α = softmax(e) over the unmasked i,     c = Σ_i α_i m_i   (context; m = k unless values are given)

Used by GNMT (Wu et al. 2016, Section 3: "the attention function ... a feed forward network with
one hidden layer") and by the Attentive Reader (Hermann et al. 2015, Eq. 5–7:
m(t) = tanh(W_ym y_d(t) + W_um u), s(t) ∝ exp(w_msᵀ m(t)), r = y_d s).

The key projection does not depend on the query, so :meth:`AdditiveAttention.project_keys`
computes it once per source sequence and a decoder reuses it at every step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_tensor

__all__ = ["AdditiveAttention"]


class AdditiveAttention(nn.Module):
    """``e_i = vᵀ tanh(W_q q + W_k k_i + b)``; returns the context ``Σ α_i m_i`` and the weights α.

    ``query_size``/``key_size``: the sizes of q and k; ``hidden_size``: that of the hidden layer (the
    papers use the model size). ``bias`` adds ``b`` inside the tanh (on the key projection).
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int, *, bias: bool = True) -> None:
        super().__init__()
        check_int("query_size", query_size)
        check_int("key_size", key_size)
        check_int("hidden_size", hidden_size)
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)
        self.key_proj = nn.Linear(key_size, hidden_size, bias=bias)
        self.score = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        """``W_k k + b`` for keys ``[B, S, key_size]``: compute once, pass as ``projected_keys``."""
        check_tensor("keys", keys, shape=(None, None, self.key_proj.in_features), floating=True)
        return self.key_proj(keys)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` ``[B, query_size]`` (or ``[B, T, query_size]``, T queries at once).

        ``keys`` ``[B, S, key_size]``; ``values`` ``[B, S, D]`` (default: the keys); ``mask``
        bool ``[B, S]``, True where a position may be attended (at least one per row). Returns the
        context ``[B, D]`` (or ``[B, T, D]``) and the weights ``[B, S]`` (or ``[B, T, S]``).
        """
        check_tensor("keys", keys, shape=(None, None, self.key_proj.in_features), floating=True)
        batch, length = keys.shape[:2]
        single = isinstance(query, Tensor) and query.dim() == 2
        query_shape = (batch, None, self.query_proj.in_features)
        check_tensor("query", query, shape=query_shape[::2] if single else query_shape, floating=True)
        values = keys if values is None else values
        check_tensor("values", values, shape=(batch, length, None), floating=True)
        if projected_keys is None:
            projected_keys = self.key_proj(keys)
        q = self.query_proj(query.unsqueeze(1) if single else query)  # [B, T, H]
        scores = self.score(torch.tanh(q.unsqueeze(2) + projected_keys.unsqueeze(1))).squeeze(-1)  # [B, T, S]
        if mask is not None:
            check_tensor("mask", mask, shape=(batch, length), dtype=torch.bool)
            if not bool(mask.any(dim=1).all()):
                raise ValueError("mask must leave at least one position per row to attend to")
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = scores.softmax(dim=-1)
        context = weights @ values
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
