"""The neural readers of Hermann et al. 2015 (Section 4.2): Deep LSTM, Attentive and Impatient Reader.

Each reader estimates ``p(a | d, q)`` for an anonymised cloze example (see :mod:`aicanon.language.cloze`):
a document ``d``, a query ``q`` holding ``@placeholder``, and an answer ``a`` among the entity
markers ``@entity0 .. @entity{E-1}``. Every reader ends in

    p(a | d, q) ∝ exp(W(a) g(d, q)),   a restricted to the entities that occur in the document

(the paper's output layer W(a) over the entity markers; the prediction is restricted to the entities
that occur in the document, the candidates, by giving the others probability zero).

**Deep LSTM Reader** (Section 4.2, Figure 1c). The document, a delimiter ``|||`` and the query are
read as one sequence by a K-layer LSTM with skip connections from the input to every layer and
from every layer to the output:

    x'(t, k) = x(t) || y'(t, k - 1),   y(t) = y'(t, 1) || ... || y'(t, K),   g^LSTM(d, q) = y(|d| + |q|)

(the gates of each layer are the standard LSTM's, Eq. 1-4 of the paper's Section 4.2).

**Attentive Reader** (Eq. 5-7). A bidirectional LSTM encodes the document, y_d(t) = →y(t) || ←y(t),
and the query, u = →y_q(|q|) || ←y_q(1). Then

    m(t) = tanh(W_ym y_d(t) + W_um u)                                  (5)
    s(t) ∝ exp(w_msᵀ m(t)),   r = y_d s                                 (6)
    g^AR(d, q) = tanh(W_rg r + W_ug u)                                  (7)

Eq. 5-6 are additive attention with query u and keys y_d:
:class:`aicanon.nn.additive_attention.AdditiveAttention` (without its bias, as Eq. 5 has none).

**Impatient Reader** (Eq. 8-10). The document is re-read at every query token i = 1 .. |q|, with
y_q(i) = →y_q(i) || ←y_q(i) the query's bidirectional encoding at token i:

    m(i, t) = tanh(W_dm y_d(t) + W_rm r(i - 1) + W_qm y_q(i))          (8)
    s(i, t) ∝ exp(w_msᵀ m(i, t)),   r(0) = r_0,
    r(i) = y_dᵀ s(i) + tanh(W_rr r(i - 1))                              (9)
    g^IR(d, q) = tanh(W_rg r(|q|) + W_qg u)                             (10)

(``W_rm r + W_qm y_q`` is one linear map of ``r || y_q``: the attention's query projection).

The **Uniform Reader** of Table 5 is the Attentive Reader with s(t) = 1/|d| (``attention="uniform"``).

Departures from the paper, and why:

* Sizes, dropout, initialisation and the optimiser are the caller's (PyTorch's default
  initialisation here); word embeddings are shared by document and query.
* The Deep LSTM Reader reads ``document ||| query`` (the paper tried both orders and reports one).
* Padding: sequences are right-padded; the backward LSTMs read each sequence reversed within its
  own length, so padding never changes a result (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_probability, check_tensor
from aicanon.nn.additive_attention import AdditiveAttention

__all__ = ["AttentiveReader", "DeepLSTMReader", "ImpatientReader", "reverse_padded"]


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row of ``x`` ``[B, L, ...]`` within its first ``lengths[b]`` positions; the padding
    after them stays where it is. Its own inverse."""
    length = x.size(1)
    positions = torch.arange(length, device=x.device).unsqueeze(0)  # [1, L]
    lengths = lengths.to(x.device).unsqueeze(1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # [B, L]
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def _check_batch(
    document: Tensor,
    document_lengths: Tensor,
    query: Tensor,
    query_lengths: Tensor,
    candidates: Tensor,
    entities: int,
) -> None:
    check_tensor("document", document, dim=2, dtype=torch.long)
    batch = document.size(0)
    check_tensor("document_lengths", document_lengths, shape=(batch,), dtype=torch.long)
    check_tensor("query", query, shape=(batch, None), dtype=torch.long)
    check_tensor("query_lengths", query_lengths, shape=(batch,), dtype=torch.long)
    check_tensor("candidates", candidates, shape=(batch, entities), dtype=torch.bool)
    for name, lengths, tokens in (
        ("document_lengths", document_lengths, document),
        ("query_lengths", query_lengths, query),
    ):
        if bool((lengths < 1).any()) or bool((lengths > tokens.size(1)).any()):
            raise ValueError(
                f"{name} must be in [1, {tokens.size(1)}] (the padded length), got {lengths.tolist()}"
            )
    if not bool(candidates.any(dim=1).all()):
        raise ValueError("candidates must mark at least one entity per example")


class _Reader(nn.Module):
    """Embeddings, the output layer W(a) over the entity markers and the candidate restriction."""

    def __init__(
        self, vocab_size: int, num_entities: int, embedding_size: int, dropout: float, padding_idx: int
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size, 2)
        check_int("num_entities", num_entities, 2)
        check_int("embedding_size", embedding_size)
        check_probability("dropout", dropout, allow_one=False)
        check_int("padding_idx", padding_idx, 0, vocab_size - 1)
        self.num_entities = num_entities
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        self.dropout = nn.Dropout(dropout)

    def _embed(self, tokens: Tensor) -> Tensor:
        if bool((tokens < 0).any()) or bool((tokens >= self.embedding.num_embeddings).any()):
            raise ValueError(f"token ids must be in [0, {self.embedding.num_embeddings}), got ids outside")
        return self.dropout(self.embedding(tokens))

    def _restrict(self, logits: Tensor, candidates: Tensor) -> Tensor:
        # p(a|d,q) ∝ exp(W(a) g) over the entities of the document only.
        return logits.masked_fill(~candidates, float("-inf"))


class _BidirectionalLSTM(nn.Module):
    """Two one-layer LSTMs, the second reading each sequence backwards within its length."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Outputs ``→y(t) || ←y(t)`` ``[B, L, 2H]`` (zero at padding); ``→y(|x|)`` and ``←y(1)``
        ``[B, H]``."""
        forward_out, _ = self.forward_lstm(x)
        backward_out, _ = self.backward_lstm(reverse_padded(x, lengths))
        backward_out = reverse_padded(backward_out, lengths)
        last = (lengths - 1).to(x.device)
        rows = torch.arange(x.size(0), device=x.device)
        valid = (
            torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.to(x.device).unsqueeze(1)
        ).unsqueeze(-1)
        outputs = torch.cat([forward_out, backward_out], dim=-1) * valid
        return outputs, forward_out[rows, last], backward_out[:, 0]


class DeepLSTMReader(_Reader):
    """Reads ``document ||| query`` with a ``num_layers``-deep LSTM with skip connections (Section 4.2).

    ``delimiter_id``: the vocabulary id of ``|||``; ``hidden_size``: per layer. ``forward`` returns
    the restricted logits ``[B, num_entities]`` (``-inf`` off the candidates).
    """

    def __init__(
        self,
        vocab_size: int,
        num_entities: int,
        *,
        delimiter_id: int,
        embedding_size: int = 64,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        padding_idx: int = 0,
    ) -> None:
        super().__init__(vocab_size, num_entities, embedding_size, dropout, padding_idx)
        check_int("delimiter_id", delimiter_id, 0, vocab_size - 1)
        check_int("hidden_size", hidden_size)
        check_int("num_layers", num_layers)
        self.delimiter_id, self.padding_idx = delimiter_id, padding_idx
        # x'(t, k) = x(t) || y'(t, k-1): every layer past the first also sees the input (skip connection).
        self.layers = nn.ModuleList(
            nn.LSTM(embedding_size + (hidden_size if k else 0), hidden_size, batch_first=True)
            for k in range(num_layers)
        )
        self.output = nn.Linear(num_layers * hidden_size, num_entities)

    def concatenate(
        self, document: Tensor, document_lengths: Tensor, query: Tensor, query_lengths: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``document ||| query`` per example, right-padded ``[B, Ld + 1 + Lq]``, and its lengths."""
        batch = document.size(0)
        total = document.size(1) + 1 + query.size(1)
        joined = torch.full((batch, total), self.padding_idx, dtype=torch.long, device=document.device)
        joined[:, : document.size(1)] = document.masked_fill(
            torch.arange(document.size(1), device=document.device) >= document_lengths.unsqueeze(1),
            self.padding_idx,
        )
        joined.scatter_(1, document_lengths.unsqueeze(1), self.delimiter_id)
        positions = document_lengths.unsqueeze(1) + 1 + torch.arange(query.size(1), device=query.device)
        query = query.masked_fill(
            torch.arange(query.size(1), device=query.device) >= query_lengths.unsqueeze(1), self.padding_idx
        )
        joined.scatter_(1, positions, query)
        return joined, document_lengths + 1 + query_lengths

    def forward(
        self,
        document: Tensor,
        document_lengths: Tensor,
        query: Tensor,
        query_lengths: Tensor,
        candidates: Tensor,
    ) -> Tensor:
        _check_batch(document, document_lengths, query, query_lengths, candidates, self.num_entities)
        joined, lengths = self.concatenate(document, document_lengths, query, query_lengths)
        x = self._embed(joined)
        outputs, layer_input = [], x
        for k, layer in enumerate(self.layers):
            y, _ = layer(layer_input)
            outputs.append(y)
            layer_input = self.dropout(torch.cat([x, y], dim=-1))
        y = torch.cat(outputs, dim=-1)  # y(t) = y'(t,1) || ... || y'(t,K): every layer to the output
        g = y[
            torch.arange(y.size(0), device=y.device), lengths - 1
        ]  # g = y(|d| + |q| + 1), after the last token
        return self._restrict(self.output(self.dropout(g)), candidates)


class AttentiveReader(_Reader):
    """Eq. 5-7: attention over the bidirectional document encoding, guided by the query encoding u.

    ``hidden_size``: per LSTM direction; ``attention_size``: that of m(t); ``attention``:
    ``"additive"`` (the paper's) or ``"uniform"`` (the Uniform Reader, s(t) = 1/|d|). ``forward``
    returns the restricted logits ``[B, num_entities]``; with ``return_attention=True`` also s ``[B, Ld]``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_entities: int,
        *,
        embedding_size: int = 64,
        hidden_size: int = 64,
        attention_size: int = 64,
        dropout: float = 0.0,
        padding_idx: int = 0,
        attention: str = "additive",
    ) -> None:
        super().__init__(vocab_size, num_entities, embedding_size, dropout, padding_idx)
        check_int("hidden_size", hidden_size)
        check_int("attention_size", attention_size)
        self.attention_kind = check_choice("attention", attention, ("additive", "uniform"))
        self.document_encoder = _BidirectionalLSTM(embedding_size, hidden_size)
        self.query_encoder = _BidirectionalLSTM(embedding_size, hidden_size)
        # m(t) = tanh(W_ym y_d(t) + W_um u), s(t) ∝ exp(w_msᵀ m(t)): Eq. 5-6 (no bias in Eq. 5).
        self.attention = AdditiveAttention(2 * hidden_size, 2 * hidden_size, attention_size, bias=False)
        self.read_gate = nn.Linear(2 * hidden_size, 2 * hidden_size, bias=False)  # W_rg
        self.query_gate = nn.Linear(2 * hidden_size, 2 * hidden_size, bias=False)  # W_ug
        self.output = nn.Linear(2 * hidden_size, num_entities)  # W(a)

    def forward(
        self,
        document: Tensor,
        document_lengths: Tensor,
        query: Tensor,
        query_lengths: Tensor,
        candidates: Tensor,
        *,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        _check_batch(document, document_lengths, query, query_lengths, candidates, self.num_entities)
        y_d, _, _ = self.document_encoder(self._embed(document), document_lengths)
        _, query_forward, query_backward = self.query_encoder(self._embed(query), query_lengths)
        u = torch.cat([query_forward, query_backward], dim=-1)  # u = →y_q(|q|) || ←y_q(1)
        mask = torch.arange(document.size(1), device=document.device) < document_lengths.unsqueeze(1)
        if self.attention_kind == "additive":
            r, s = self.attention(u, y_d, mask=mask)  # Eq. 5-6: r = y_d s
        else:
            s = mask.float() / document_lengths.unsqueeze(1).float()
            r = (s.unsqueeze(1) @ y_d).squeeze(1)
        g = torch.tanh(self.read_gate(r) + self.query_gate(u))  # Eq. 7
        logits = self._restrict(self.output(self.dropout(g)), candidates)
        return (logits, s) if return_attention else logits


class ImpatientReader(_Reader):
    """Eq. 8-10: the document is re-read at every query token, accumulating r(i).

    ``hidden_size``: per LSTM direction; ``attention_size``: that of m(i, t). ``forward`` returns the
    restricted logits ``[B, num_entities]``; with ``return_attention=True`` also s ``[B, Lq, Ld]``
    (rows past a query's length repeat nothing: they are zero).
    """

    def __init__(
        self,
        vocab_size: int,
        num_entities: int,
        *,
        embedding_size: int = 64,
        hidden_size: int = 64,
        attention_size: int = 64,
        dropout: float = 0.0,
        padding_idx: int = 0,
    ) -> None:
        super().__init__(vocab_size, num_entities, embedding_size, dropout, padding_idx)
        check_int("hidden_size", hidden_size)
        check_int("attention_size", attention_size)
        size = 2 * hidden_size
        self.document_encoder = _BidirectionalLSTM(embedding_size, hidden_size)
        self.query_encoder = _BidirectionalLSTM(embedding_size, hidden_size)
        # W_rm r(i-1) + W_qm y_q(i) is the attention's query projection of r(i-1) || y_q(i) (Eq. 8).
        self.attention = AdditiveAttention(2 * size, size, attention_size, bias=False)
        self.initial_read = nn.Parameter(torch.zeros(size))  # r(0) = r_0, learned
        self.recurrence = nn.Linear(size, size, bias=False)  # W_rr (Eq. 9)
        self.read_gate = nn.Linear(size, size, bias=False)  # W_rg
        self.query_gate = nn.Linear(size, size, bias=False)  # W_qg
        self.output = nn.Linear(size, num_entities)

    def forward(
        self,
        document: Tensor,
        document_lengths: Tensor,
        query: Tensor,
        query_lengths: Tensor,
        candidates: Tensor,
        *,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        _check_batch(document, document_lengths, query, query_lengths, candidates, self.num_entities)
        y_d, _, _ = self.document_encoder(self._embed(document), document_lengths)
        y_q, query_forward, query_backward = self.query_encoder(self._embed(query), query_lengths)
        u = torch.cat([query_forward, query_backward], dim=-1)
        mask = torch.arange(document.size(1), device=document.device) < document_lengths.unsqueeze(1)
        keys = self.attention.project_keys(y_d)  # W_dm y_d(t), once for every query token
        r = self.initial_read.expand(document.size(0), -1)
        weights = []
        for i in range(query.size(1)):
            read, s = self.attention(torch.cat([r, y_q[:, i]], dim=-1), y_d, mask=mask, projected_keys=keys)
            updated = read + torch.tanh(self.recurrence(r))  # Eq. 9
            active = (i < query_lengths).unsqueeze(1)  # past the query's end r stays r(|q|)
            r = torch.where(active, updated, r)
            weights.append(s * active)
        g = torch.tanh(self.read_gate(r) + self.query_gate(u))  # Eq. 10
        logits = self._restrict(self.output(self.dropout(g)), candidates)
        return (logits, torch.stack(weights, dim=1)) if return_attention else logits
