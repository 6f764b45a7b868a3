r"""Pointer sentinel mixture models (Merity, Xiong, Bradbury & Socher, 2016; arXiv 1609.07843).

A language model that, at every position, mixes a softmax over the vocabulary with a pointer over
the ``L`` most recent input words, the mixture weight coming from a *sentinel* that competes with
the window's words inside one attention softmax (Section 2). With the LSTM's outputs ``h_i``
(``H`` features) for the inputs ``x_1 .. x_{N-1}`` and the target ``y = x_N``:

* softmax RNN component (Section 2.1): ``p_vocab(w) = softmax(U h_{N-1})``, ``U`` a ``V x H`` matrix;
* pointer query, Eq. (2): ``q = tanh(W h_{N-1} + b)``, ``W`` an ``H x H`` matrix;
* attention scores, Eq. (3): ``z_i = q^T h_i`` for the ``L`` most recent positions ``i``;
* the sentinel, Eq. (7): ``a = softmax([r; q^T s])``, ``r`` the window's scores ``z`` and ``s`` a
  learned ``H``-vector; the gate is the sentinel's share, ``g = a[L+1]`` (``a[-1]`` here);
* the pointer distribution, Eq. (8): ``p_ptr(w) = 1/(1-g) sum_{i in I(w, x)} a_i``, ``I(w, x)`` the
  window positions whose input is ``w`` (a word repeated in the window collects all its mass);
* the mixture, Eq. (9) (Eq. 6 with Eq. 7-8): ``p(y) = g p_vocab(y) + (1-g) p_ptr(y)``
  ``= g p_vocab(y) + sum_{i in I(y, x)} a_i``;
* the loss, Section 2.4 (Eq. 11-12 as the issue numbers them):
  ``L = -log p(y) - log(g + sum_{i in I(y, x)} a_i)``: the second term supervises the pointer and
  the gate together, pushing mass onto the target's positions in the window or, when the target is
  not there, onto the sentinel (no penalty for how the pointer splits mass between copies of ``y``).

Everything is computed in log space from one ``log_softmax`` over ``[r; q^T s]``: ``log p(y)`` is a
``logsumexp`` over ``{log g + log p_vocab(y)} u {log a_i : x_i = y}``, whose first term is always
finite, so no ``log 0`` (and no NaN gradient) appears when ``y`` is not in the window. The full
distribution (:meth:`PointerSentinelOutput.log_probs`) scatter-adds the window's attention mass
onto token ids (``index`` = the window's inputs) and adds it to ``g p_vocab``.

BPTT and the window (Sections 2.4 and 4.2): training runs on consecutive segments of ``T`` tokens
(truncated BPTT). The window of position ``t`` is the ``L`` most recent inputs, ``x_t`` itself
included, so it reaches back across the segment boundary: the model returns a
:class:`PointerMemory` with the last ``L - 1`` outputs ``h_i`` and their input ids, which the next
segment's pointer attends over. The carried outputs are detached (constants for the next segment's
gradient), as the LSTM state is at a truncated-BPTT boundary.

:class:`LSTMLanguageModel` is the plain softmax LSTM-LM the paper compares against; the pointer
sentinel-LSTM is the same network (:class:`PointerSentinelLSTM` derives from it) plus ``W``, ``b``
and ``s``: ``H^2 + 2H`` parameters.

Departures from the paper, and why:

* Equation numbers for Eq. (8)-(12) are those the aicanon issue cites; the formulas are the
  paper's Section 2.
* The paper trains with BPTT over 100 steps and a window of ``L = 100`` (Section 4.2) and, to keep
  the pointer's window fully differentiable, backpropagates through the whole window; here the
  window's part from the previous segment carries no gradient (its ``h_i`` are constants). With
  ``T >= L`` only the first ``L - 1`` positions of a segment see any constants.
* Dropout: one standard dropout on the embeddings and on the LSTM outputs (the outputs feed the
  softmax and the pointer alike); the paper's medium model uses variational (per-sequence) dropout
  as in Gal & Ghahramani (2016).
* ``fixed_gate``: an ablation the paper does not have. ``g`` is then a constant, ``a`` the pointer
  softmax of Eq. (4) over the window alone, and the loss the cross-entropy of the mixture (Eq. 6)
  without the pointer-supervision term; ``fixed_gate=1`` is exactly the softmax LSTM-LM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_probability, check_tensor

__all__ = [
    "LSTMLanguageModel",
    "LanguageModelOutput",
    "PointerMemory",
    "PointerSentinelLSTM",
    "PointerSentinelOutput",
    "detach_state",
]

State = tuple[Tensor, Tensor]


@dataclass
class PointerMemory:
    """The window carried across segments: the last LSTM outputs and the inputs they read."""

    hidden: Tensor
    """``[B, M, H]`` outputs ``h_i`` of the ``M <= L - 1`` most recent positions (oldest first), detached."""
    tokens: Tensor
    """``[B, M]`` the input ids ``x_i`` at those positions."""


def detach_state(state: State | None) -> State | None:
    """The LSTM state ``(h, c)`` cut from the graph: the truncated-BPTT boundary between segments."""
    return None if state is None else (state[0].detach(), state[1].detach())


@dataclass
class LanguageModelOutput:
    """What :class:`LSTMLanguageModel` returns for a segment."""

    logits: Tensor
    """``[B, T, V]`` the softmax component's logits ``U h``."""
    state: State
    """The LSTM state after the segment (not detached: see :func:`detach_state`)."""
    memory: PointerMemory | None = None

    def log_probs(self) -> Tensor:
        """``[B, T, V]`` log-probabilities of the next token."""
        return F.log_softmax(self.logits, dim=-1)

    def target_log_prob(self, targets: Tensor) -> Tensor:
        """``[B, T]`` ``log p(y_t)`` of the given next tokens."""
        _check_targets(targets, self.logits)
        return F.log_softmax(self.logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def loss(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Mean training loss over the tokens and the per-token ``-log p(y)`` ``[B, T]``."""
        nll = -self.target_log_prob(targets)
        return nll.mean(), nll.detach()


@dataclass
class PointerSentinelOutput(LanguageModelOutput):
    """What :class:`PointerSentinelLSTM` returns: the two components and the attention, in log space."""

    log_gate: Tensor | None = None
    """``[B, T]`` ``log g`` (Eq. 7), or ``log`` of the fixed gate."""
    log_pointer: Tensor | None = None
    """``[B, T, K]`` log attention mass of each key position (``-inf`` outside a query's window):
    ``log a_i`` of Eq. (7), which already carries the factor ``1 - g`` of Eq. (9)."""
    pointer_tokens: Tensor | None = None
    """``[B, K]`` the input id at each key position (the carried memory's, then this segment's)."""
    supervised: bool = True
    """Whether :meth:`loss` adds the pointer-supervision term (False for a fixed gate)."""

    @property
    def gate(self) -> Tensor:
        """``[B, T]`` the gate ``g``: the probability given to the softmax component."""
        return self.log_gate.exp()

    def _matches(self, targets: Tensor) -> Tensor:
        # [B, T, K]: key position i holds the target's id, i.e. i is in I(y, x).
        return self.pointer_tokens.unsqueeze(1) == targets.unsqueeze(-1)

    def target_log_prob(self, targets: Tensor) -> Tensor:
        """``[B, T]`` ``log p(y) = log(g p_vocab(y) + sum_{i in I(y, x)} a_i)`` (Eq. 9), in log space."""
        _check_targets(targets, self.logits)
        log_vocab = F.log_softmax(self.logits, dim=-1).gather(-1, targets.unsqueeze(-1))
        copied = self.log_pointer.masked_fill(~self._matches(targets), -math.inf)
        # The first term is finite, so the logsumexp and its gradient are too.
        terms = torch.cat([self.log_gate.unsqueeze(-1) + log_vocab, copied], dim=-1)
        return torch.logsumexp(terms, dim=-1)

    def pointer_supervision(self, targets: Tensor) -> Tensor:
        """``[B, T]`` the pointer loss ``-log(g + sum_{i in I(y, x)} a_i)`` (Section 2.4)."""
        _check_targets(targets, self.logits)
        copied = self.log_pointer.masked_fill(~self._matches(targets), -math.inf)
        return -torch.logsumexp(torch.cat([self.log_gate.unsqueeze(-1), copied], dim=-1), dim=-1)

    def loss(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Mean of ``-log p(y) - log(g + sum_{i in I(y, x)} a_i)`` over the tokens (the second term
        only with a learned gate), and the per-token ``-log p(y)`` ``[B, T]``."""
        nll = -self.target_log_prob(targets)
        total = nll + self.pointer_supervision(targets) if self.supervised else nll
        return total.mean(), nll.detach()

    def log_probs(self) -> Tensor:
        """``[B, T, V]`` ``log p(w)`` for every word: ``g p_vocab`` plus the window's attention mass
        scatter-added onto the ids it points at (repeats of a word add up)."""
        batch, length, vocab = self.logits.shape
        mixture = self.log_gate.exp().unsqueeze(-1) * F.softmax(self.logits, dim=-1)
        index = self.pointer_tokens.unsqueeze(1).expand(batch, length, -1)
        mixture = mixture.scatter_add(-1, index, self.log_pointer.exp())
        return mixture.clamp_min(torch.finfo(mixture.dtype).tiny).log()


def _check_targets(targets: Tensor, logits: Tensor) -> None:
    check_tensor("targets", targets, shape=tuple(logits.shape[:2]), dtype=torch.long)
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.size(-1)):
        raise ValueError(
            f"targets must be token ids in [0, {logits.size(-1)}), "
            f"got values in [{int(targets.min())}, {int(targets.max())}]"
        )


class LSTMLanguageModel(nn.Module):
    """The softmax LSTM-LM (Section 2.1): embedding, LSTM, dropout, ``p_vocab = softmax(U h)``.

    ``forward(inputs [B, T] long, state=None)`` returns a :class:`LanguageModelOutput`.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 650,
        *,
        embedding_size: int | None = None,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size, 2)
        check_int("hidden_size", hidden_size)
        check_int("embedding_size", embedding_size, allow_none=True)
        check_int("num_layers", num_layers)
        check_probability("dropout", dropout, allow_one=False)
        self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
        embedding_size = embedding_size or hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.lstm = nn.LSTM(
            embedding_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)  # U (with a bias, as usual)

    def _check_inputs(self, inputs: Tensor, state: State | None) -> None:
        check_tensor("inputs", inputs, dim=2, dtype=torch.long)
        if inputs.size(1) < 1:
            raise ValueError(f"inputs must hold at least one position, got shape {tuple(inputs.shape)}")
        if int(inputs.min()) < 0 or int(inputs.max()) >= self.vocab_size:
            raise ValueError(
                f"inputs must be token ids in [0, {self.vocab_size}), "
                f"got values in [{int(inputs.min())}, {int(inputs.max())}]"
            )
        if state is not None:
            if not (isinstance(state, tuple) and len(state) == 2):
                raise TypeError(f"state must be a tuple (h, c) or None, got {type(state).__name__}")
            shape = (self.num_layers, inputs.size(0), self.hidden_size)
            for name, part in zip(("state[0]", "state[1]"), state):
                check_tensor(name, part, shape=shape, floating=True)

    def encode(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The LSTM outputs after dropout ``[B, T, H]`` and the new state."""
        self._check_inputs(inputs, state)
        hidden, state = self.lstm(self.dropout(self.embedding(inputs)), state)
        return self.dropout(hidden), state

    def forward(self, inputs: Tensor, state: State | None = None) -> LanguageModelOutput:
        hidden, state = self.encode(inputs, state)
        return LanguageModelOutput(self.decoder(hidden), state)


class PointerSentinelLSTM(LSTMLanguageModel):
    """The pointer sentinel-LSTM (Section 2): :class:`LSTMLanguageModel` plus a pointer over the
    ``window`` most recent inputs and the sentinel gate.

    ``forward(inputs [B, T] long, state=None, memory=None)`` returns a
    :class:`PointerSentinelOutput` whose ``memory`` is the next segment's window.

    ``fixed_gate``: ``None`` (the paper: the gate comes from the sentinel) or a constant ``g`` in
    ``(0, 1]`` (ablation; ``1`` is the softmax LM).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 650,
        *,
        window: int = 100,
        embedding_size: int | None = None,
        num_layers: int = 1,
        dropout: float = 0.0,
        fixed_gate: float | None = None,
    ) -> None:
        super().__init__(
            vocab_size, hidden_size, embedding_size=embedding_size, num_layers=num_layers, dropout=dropout
        )
        self.window = check_int("window", window)
        # g = 0 would be a pure pointer: p(y) = 0 for every target outside the window.
        check_float("fixed_gate", fixed_gate, 0.0, 1.0, min_inclusive=False, allow_none=True)
        self.fixed_gate = None if fixed_gate is None else float(fixed_gate)
        self.query = nn.Linear(hidden_size, hidden_size)  # W, b of Eq. (2)
        self.sentinel = nn.Parameter(torch.zeros(hidden_size))  # s of Eq. (7)

    def _check_memory(self, memory: PointerMemory | None, inputs: Tensor) -> None:
        if memory is None:
            return
        if not isinstance(memory, PointerMemory):
            raise TypeError(f"memory must be a PointerMemory or None, got {type(memory).__name__}")
        batch = inputs.size(0)
        check_tensor("memory.hidden", memory.hidden, shape=(batch, None, self.hidden_size), floating=True)
        check_tensor("memory.tokens", memory.tokens, shape=(batch, memory.hidden.size(1)), dtype=torch.long)

    def forward(
        self, inputs: Tensor, state: State | None = None, memory: PointerMemory | None = None
    ) -> PointerSentinelOutput:
        hidden, state = self.encode(inputs, state)
        self._check_memory(memory, inputs)
        batch, length, _ = hidden.shape
        if memory is None:
            keys, tokens = hidden, inputs
        else:
            keys = torch.cat([memory.hidden.to(hidden.dtype), hidden], dim=1)
            tokens = torch.cat([memory.tokens, inputs], dim=1)
        carried = keys.size(1) - length

        query = torch.tanh(self.query(hidden))  # Eq. (2)
        scores = query @ keys.transpose(1, 2)  # Eq. (3): z_i = q^T h_i, [B, T, K]
        # Query t sits at key position carried + t; its window is the L positions ending there.
        query_position = carried + torch.arange(length, device=inputs.device).unsqueeze(1)
        key_position = torch.arange(keys.size(1), device=inputs.device).unsqueeze(0)
        visible = (key_position <= query_position) & (key_position > query_position - self.window)
        scores = scores.masked_fill(~visible, -math.inf)

        if self.fixed_gate is None:
            sentinel = (query @ self.sentinel).unsqueeze(-1)  # q^T s
            log_attention = F.log_softmax(torch.cat([scores, sentinel], dim=-1), dim=-1)  # Eq. (7)
            log_pointer, log_gate = log_attention[..., :-1], log_attention[..., -1]
        else:
            # Eq. (4) over the window alone, weighted by 1 - g (log 0 = -inf for g = 1: no copying).
            log_gate = hidden.new_full((batch, length), math.log(self.fixed_gate))
            log_rest = math.log1p(-self.fixed_gate) if self.fixed_gate < 1 else -math.inf
            log_pointer = F.log_softmax(scores, dim=-1) + log_rest

        start = max(0, keys.size(1) - (self.window - 1))  # the next segment's window needs L - 1 of them
        memory_out = PointerMemory(keys[:, start:].detach(), tokens[:, start:])
        return PointerSentinelOutput(
            logits=self.decoder(hidden),
            state=state,
            memory=memory_out,
            log_gate=log_gate,
            log_pointer=log_pointer,
            pointer_tokens=tokens,
            supervised=self.fixed_gate is None,
        )
