"""GNMT: deep LSTM encoder-decoder with residual connections and attention (Wu et al. 2016, Section 3).

Model (Section 3, Figure 1). The source wordpieces x_1..x_M are encoded by a stack of LSTMs:

* the bottom encoder layer is bi-directional (Section 3.2, Figure 3): a forward LSTM reads
  x_1..x_M, a backward LSTM reads x_M..x_1, and their outputs are concatenated, so every position
  sees the whole sentence;
* the layers above are uni-directional; from the third layer up each has a residual connection
  (Section 3.1, Eq. 6)::

      c_t^i, m_t^i = LSTM_i(c_{t-1}^i, m_{t-1}^i, x_t^{i-1}; W^i)
      x_t^i = m_t^i + x_t^{i-1}                                          (6)

The encoder's top layer gives the memory x_1..x_M. The decoder is a stack of uni-directional LSTMs
(residual from the third layer up as well). Attention is computed from the *bottom* decoder layer's
output at the previous step, y_{i-1}, and its context a_i is fed to every decoder layer (Figure 1,
Eq. 4-5)::

      s_t = AttentionFunction(y_{i-1}, x_t)   for 1 <= t <= M              (4)
      p_t = exp(s_t) / sum_t exp(s_t),   a_i = sum_t p_t x_t              (5)

with AttentionFunction a feed-forward network with one hidden layer
(:class:`aicanon.nn.additive_attention.AdditiveAttention`). The decoder's bottom layer reads
[embedding(y_{i-1}); a_i], each higher layer [output of the layer below; a_i]; a softmax over the
wordpiece vocabulary on the top layer's output gives P(y_i | y_<i, X). Training maximises
sum log P(Y* | X) (Eq. 7, maximum likelihood, teacher forcing): :func:`teacher_forced_loss`.

Quantisable model (Section 6). During training the paper clips the LSTM accumulators to
[-delta, delta] (the cell state c_t and each layer's output x_t, after the residual sum) and the
softmax logits to [-gamma, gamma] (``accumulator_clip``/``logit_clip`` in :class:`GNMTConfig`; as
we recall the paper, delta is annealed from 8.0 to 1.0 and gamma = 25.0 -- unverified, and no
default is set here); at inference the weights are 8-bit
integers with one scale per row (``W = s * W_Q``) and the accumulators 16-bit fixed point in
[-delta, delta]. :func:`quantize_for_inference` returns a copy of a model that simulates this in
floating point ("fake quantisation": every weight matrix rounded to its 8-bit grid, every cell
state and layer output rounded to the 16-bit grid of [-delta, delta]).

Departures from the paper:

* Sizes are parameters (the paper: 8 encoder and 8 decoder layers of 1024 units, 8 GPUs with one
  layer each); the paper's per-layer model parallelism and its choice of a uni-directional stack
  above the bottom layer for that reason are kept, the device placement is not.
* The paper does not state how the decoder's state starts; here it starts at zero (so the first
  attention query is zero: uniform over the source up to the key bias) as in its Figure 1 where
  no encoder state is passed to the decoder.
* With ``accumulator_clip`` set, the LSTMs run step by step in Python (to clip inside the
  recurrence) and are slower than ``torch.nn.LSTM``'s fused kernel used otherwise.
* Only maximum-likelihood training (Eq. 7); the RL refinement (Eq. 8-9) is not implemented.
* Initialisation: uniform in [-0.04, 0.04] for every parameter, as the paper states
  (Section 8.1).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_probability, check_tensor
from aicanon.nn.additive_attention import AdditiveAttention

__all__ = [
    "GNMT",
    "DecoderState",
    "GNMTConfig",
    "fake_quantize_accumulator",
    "fake_quantize_weight",
    "quantize_for_inference",
    "teacher_forced_loss",
]


@dataclass
class GNMTConfig:
    """Sizes and options of :class:`GNMT` (defaults: the paper's model, Section 3 and 8)."""

    source_vocab_size: int = 32000
    target_vocab_size: int = 32000
    hidden_size: int = 1024
    """Units of every LSTM layer (each direction of the bi-directional bottom layer too)."""
    embedding_size: int | None = None
    """Wordpiece embedding size; None: hidden_size."""
    attention_size: int | None = None
    """Hidden units of the attention network; None: hidden_size."""
    encoder_layers: int = 8
    """Encoder layers counting the bi-directional bottom one (at least 2)."""
    decoder_layers: int = 8
    """Decoder layers (at least 1)."""
    residual_start: int = 3
    """First layer (1-based) with a residual connection around it, in both stacks (Section 3.1)."""
    dropout: float = 0.2
    """Dropout on every layer's output during training (the paper: 0.2-0.3, Section 8.1)."""
    init_scale: float = 0.04
    """Parameters are drawn uniformly from [-init_scale, init_scale] (Section 8.1)."""
    pad_id: int = 0
    """Padding id of both vocabularies (its embedding is zero and is masked out of attention)."""
    accumulator_clip: float | None = None
    """delta of Section 6: clip cell states and layer outputs to [-delta, delta]; None: no clipping."""
    logit_clip: float | None = None
    """gamma of Section 6: clip the softmax logits to [-gamma, gamma]; None: no clipping."""

    def __post_init__(self) -> None:
        for name in ("source_vocab_size", "target_vocab_size", "hidden_size", "decoder_layers"):
            check_int(f"GNMTConfig.{name}", getattr(self, name))
        check_int(
            "GNMTConfig.encoder_layers", self.encoder_layers, 2, note="a bi-directional layer and one above"
        )
        for name in ("embedding_size", "attention_size"):
            check_int(f"GNMTConfig.{name}", getattr(self, name), allow_none=True)
        check_int("GNMTConfig.residual_start", self.residual_start, 3, note="layer 2 changes the width")
        check_probability("GNMTConfig.dropout", self.dropout, allow_one=False)
        check_float("GNMTConfig.init_scale", self.init_scale, 0, finite=True)
        check_int("GNMTConfig.pad_id", self.pad_id, 0)
        check_float(
            "GNMTConfig.accumulator_clip", self.accumulator_clip, 0, min_inclusive=False, allow_none=True
        )
        check_float("GNMTConfig.logit_clip", self.logit_clip, 0, min_inclusive=False, allow_none=True)


def fake_quantize_weight(weight: Tensor, bits: int = 8) -> Tensor:
    """Round each row of ``weight`` to a symmetric ``bits``-bit grid with its own scale
    (Section 6: ``W = s * W_Q``, ``s_i = max_j |W_ij| / (2^(bits-1) - 1)``), back in floating point."""
    check_tensor("weight", weight, dim=2, floating=True)
    check_int("bits", bits, 2, 16)
    levels = 2 ** (bits - 1) - 1
    scale = weight.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny) / levels
    return (weight / scale).round().clamp(-levels, levels) * scale


def fake_quantize_accumulator(x: Tensor, delta: float, bits: int = 16) -> Tensor:
    """Clip ``x`` to [-delta, delta] and round it to the ``bits``-bit fixed-point grid of that range."""
    levels = 2 ** (bits - 1) - 1
    step = delta / levels
    return (x.clamp(-delta, delta) / step).round() * step


def _layer_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    return F.dropout(x, p, training) if p > 0 else x


class _Accumulators:
    """How the LSTMs treat their accumulators: clip (Section 6, training) and optionally quantise."""

    def __init__(self, clip: float | None, bits: int | None) -> None:
        self.clip, self.bits = clip, bits

    def __call__(self, x: Tensor) -> Tensor:
        if self.clip is None:
            return x
        if self.bits is not None:
            return fake_quantize_accumulator(x, self.clip, self.bits)
        return x.clamp(-self.clip, self.clip)


def _lstm_loop(
    lstm: nn.LSTM,
    x: Tensor,
    state: tuple[Tensor, Tensor],
    acc: _Accumulators,
    reverse: bool = False,
    mask: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One direction of a one-layer ``nn.LSTM`` run step by step over ``x`` [B, T, D], with the cell
    state passed through ``acc`` at every step. ``mask`` [B, T] (False: padding) keeps the state
    unchanged over padded steps, so a reverse pass starts at each sentence's last real token."""
    suffix = "_reverse" if reverse else ""
    w_ih, w_hh = getattr(lstm, f"weight_ih_l0{suffix}"), getattr(lstm, f"weight_hh_l0{suffix}")
    bias = getattr(lstm, f"bias_ih_l0{suffix}") + getattr(lstm, f"bias_hh_l0{suffix}")
    h, c = state
    projected = F.linear(x, w_ih, bias)  # the input part of every step at once
    outputs = [None] * x.size(1)
    steps = range(x.size(1) - 1, -1, -1) if reverse else range(x.size(1))
    for t in steps:
        gates = projected[:, t] + F.linear(h, w_hh)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = acc(torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g))
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        if mask is not None:
            keep = mask[:, t].unsqueeze(1)
            c_new, h_new = torch.where(keep, c_new, c), torch.where(keep, h_new, h)
        h, c = h_new, c_new
        outputs[t] = h
    return torch.stack(outputs, dim=1), (h, c)


@dataclass
class DecoderState:
    """What the decoder carries from one step to the next, for a batch of N hypotheses."""

    memory: Tensor
    """Encoder top-layer outputs x_1..x_M, [N, M, H]."""
    memory_mask: Tensor
    """True at real source positions, [N, M]."""
    projected_keys: Tensor
    """The attention network's key projection of the memory (computed once per sentence), [N, M, A]."""
    hidden: list[tuple[Tensor, Tensor]]
    """(m, c) of every decoder layer, bottom first, each [N, H]."""

    def index_select(self, index: Tensor) -> DecoderState:
        """The state of hypotheses ``index`` (a long tensor of rows): for beam search's reordering."""
        return DecoderState(
            self.memory.index_select(0, index),
            self.memory_mask.index_select(0, index),
            self.projected_keys.index_select(0, index),
            [(h.index_select(0, index), c.index_select(0, index)) for h, c in self.hidden],
        )


class GNMT(nn.Module):
    """The GNMT encoder-decoder (module docstring). ``forward(source, decoder_input)`` gives the
    logits ``[B, T, V]`` of teacher forcing; :meth:`encode` and :meth:`decode_step` drive search."""

    def __init__(self, config: GNMTConfig) -> None:
        super().__init__()
        if not isinstance(config, GNMTConfig):
            raise TypeError(f"config must be a GNMTConfig, got {type(config).__name__}")
        self.config = config
        hidden = config.hidden_size
        embedding = config.embedding_size or hidden
        self.source_embedding = nn.Embedding(config.source_vocab_size, embedding, padding_idx=config.pad_id)
        self.target_embedding = nn.Embedding(config.target_vocab_size, embedding, padding_idx=config.pad_id)
        # Encoder: bi-directional bottom layer (outputs concatenated: 2H), then uni-directional layers.
        self.encoder_bottom = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.encoder_layers = nn.ModuleList(
            nn.LSTM(2 * hidden if i == 0 else hidden, hidden, batch_first=True)
            for i in range(config.encoder_layers - 1)
        )
        self.attention = AdditiveAttention(hidden, hidden, config.attention_size or hidden)
        # Decoder: every layer also reads the attention context a_i (Figure 1).
        self.decoder_bottom = nn.LSTM(embedding + hidden, hidden, batch_first=True)
        self.decoder_layers = nn.ModuleList(
            nn.LSTM(2 * hidden, hidden, batch_first=True) for _ in range(config.decoder_layers - 1)
        )
        self.output = nn.Linear(hidden, config.target_vocab_size)
        self.accumulator_bits: int | None = None
        """Set by :func:`quantize_for_inference`: accumulators on a fixed-point grid of this many bits."""
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in [-init_scale, init_scale] (Section 8.1); padding embeddings zero."""
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -self.config.init_scale, self.config.init_scale)
        with torch.no_grad():
            self.source_embedding.weight[self.config.pad_id].zero_()
            self.target_embedding.weight[self.config.pad_id].zero_()

    # -- helpers -------------------------------------------------------------------------------
    def _accumulators(self) -> _Accumulators:
        return _Accumulators(self.config.accumulator_clip, self.accumulator_bits)

    def _run(
        self, lstm: nn.LSTM, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """A uni-directional one-layer LSTM over [B, T, D] from ``state`` (None: zeros)."""
        if state is None:
            zeros = x.new_zeros(x.size(0), lstm.hidden_size)
            state = (zeros, zeros)
        if self.config.accumulator_clip is None:
            out, (h, c) = lstm(x, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
            return out, (h.squeeze(0), c.squeeze(0))
        return _lstm_loop(lstm, x, state, self._accumulators())

    def _residual(self, index: int, output: Tensor, layer_input: Tensor) -> Tensor:
        """Eq. 6 for layer ``index`` (1-based) at or above ``residual_start``; then clip (Section 6)."""
        if index >= self.config.residual_start:
            output = output + layer_input
        return self._accumulators()(output)

    def _logits(self, top: Tensor) -> Tensor:
        logits = self.output(top)
        if self.config.logit_clip is not None:
            logits = logits.clamp(-self.config.logit_clip, self.config.logit_clip)
        return logits

    def _check_source(self, source: Tensor) -> Tensor:
        check_tensor("source", source, dim=2, dtype=(torch.long, torch.int))
        mask = source != self.config.pad_id
        if source.numel() == 0 or not bool(mask.any(dim=1).all()):
            raise ValueError("source must hold at least one non-padding token in every row")
        if bool((source < 0).any()) or bool((source >= self.config.source_vocab_size).any()):
            raise ValueError(
                f"source ids must be in [0, {self.config.source_vocab_size}), "
                f"got values {int(source.min())}..{int(source.max())}"
            )
        return mask

    # -- encoder -------------------------------------------------------------------------------
    def encode_source(self, source: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder outputs ``[B, M, H]`` (top layer) and the source mask ``[B, M]`` for ``source``
        ``[B, M]`` (padded at the end with ``pad_id``)."""
        mask = self._check_source(source)
        p, training = self.config.dropout, self.training
        x = _layer_dropout(self.source_embedding(source), p, training)
        lengths = mask.sum(dim=1)
        if self.config.accumulator_clip is None:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            out, _ = self.encoder_bottom(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=source.size(1))
        else:
            zeros = x.new_zeros(x.size(0), self.config.hidden_size)
            acc = self._accumulators()
            forward, _ = _lstm_loop(self.encoder_bottom, x, (zeros, zeros), acc, mask=mask)
            backward, _ = _lstm_loop(self.encoder_bottom, x, (zeros, zeros), acc, reverse=True, mask=mask)
            out = torch.cat([forward, backward], dim=2)
        x = _layer_dropout(self._accumulators()(out), p, training)
        for index, lstm in enumerate(self.encoder_layers, start=2):
            out, _ = self._run(lstm, x)
            x = _layer_dropout(self._residual(index, out, x), p, training)
        return x, mask

    def encode(self, source: Tensor) -> DecoderState:
        """Encode ``source`` and return the decoder's initial state (zero LSTM states)."""
        memory, mask = self.encode_source(source)
        zeros = memory.new_zeros(memory.size(0), self.config.hidden_size)
        hidden = [(zeros, zeros) for _ in range(self.config.decoder_layers)]
        return DecoderState(memory, mask, self.attention.project_keys(memory), hidden)

    # -- decoder -------------------------------------------------------------------------------
    def _decode(self, state: DecoderState, embedded: Tensor) -> tuple[Tensor, Tensor, DecoderState]:
        """Run the decoder over ``embedded`` [N, T, E] from ``state``: top outputs [N, T, H],
        attention weights [N, T, M] and the final state."""
        p, training = self.config.dropout, self.training
        h, c = state.hidden[0]
        acc = self._accumulators()
        contexts, weights, bottom = [], [], []
        # The bottom layer runs step by step: its previous output is the attention query (Eq. 4).
        for t in range(embedded.size(1)):
            context, alpha = self.attention(
                h, state.memory, mask=state.memory_mask, projected_keys=state.projected_keys
            )
            step_input = torch.cat([embedded[:, t], context], dim=1).unsqueeze(1)
            out, (h, c) = self._run(self.decoder_bottom, step_input, (h, c))
            contexts.append(context)
            weights.append(alpha)
            bottom.append(out[:, 0])
        context = torch.stack(contexts, dim=1)
        x = _layer_dropout(acc(torch.stack(bottom, dim=1)), p, training)
        hidden = [(h, c)]
        # Layers above see the whole sequence of contexts at once (Figure 1: a_i fed to every layer).
        for index, lstm in enumerate(self.decoder_layers, start=2):
            out, layer_state = self._run(lstm, torch.cat([x, context], dim=2), state.hidden[index - 1])
            x = _layer_dropout(self._residual(index, out, x), p, training)
            hidden.append(layer_state)
        new_state = DecoderState(state.memory, state.memory_mask, state.projected_keys, hidden)
        return x, torch.stack(weights, dim=1), new_state

    def forward(self, source: Tensor, decoder_input: Tensor, return_attention: bool = False):
        """Teacher forcing: logits ``[B, T, V]`` of y_1..y_T given ``decoder_input`` ``[B, T]``
        (``[BOS] y_1 .. y_{T-1}``); with ``return_attention`` also the weights ``[B, T, M]``."""
        check_tensor("decoder_input", decoder_input, dim=2, dtype=(torch.long, torch.int))
        if decoder_input.size(0) != source.size(0) or decoder_input.size(1) == 0:
            raise ValueError(
                f"decoder_input must be [{source.size(0)}, T>=1] (source's batch), "
                f"got {tuple(decoder_input.shape)}"
            )
        state = self.encode(source)
        embedded = _layer_dropout(self.target_embedding(decoder_input), self.config.dropout, self.training)
        top, weights, _ = self._decode(state, embedded)
        logits = self._logits(top)
        return (logits, weights) if return_attention else logits

    def decode_step(self, state: DecoderState, tokens: Tensor) -> tuple[Tensor, Tensor, DecoderState]:
        """One decoder step for N hypotheses: ``tokens`` [N] (the previous outputs) -> log-probabilities
        [N, V] of the next token, the attention weights [N, M] it used and the new state."""
        check_tensor("tokens", tokens, shape=(state.memory.size(0),), dtype=(torch.long, torch.int))
        top, weights, new_state = self._decode(state, self.target_embedding(tokens).unsqueeze(1))
        return self._logits(top[:, 0]).log_softmax(dim=-1), weights[:, 0], new_state


def teacher_forced_loss(model: GNMT, source: Tensor, target: Tensor, bos_id: int) -> Tensor:
    """Mean negative log-likelihood per target token (Eq. 7): ``target`` [B, T] holds y_1..y_n [EOS]
    padded with ``pad_id``; the decoder reads [BOS] y_1..y_{T-1}."""
    if not isinstance(model, GNMT):
        raise TypeError(f"model must be a GNMT, got {type(model).__name__}")
    check_tensor("target", target, dim=2, dtype=(torch.long, torch.int))
    check_int("bos_id", bos_id, 0)
    pad = model.config.pad_id
    if not bool((target != pad).any()):
        raise ValueError("target must hold at least one non-padding token")
    decoder_input = torch.cat([target.new_full((target.size(0), 1), bos_id), target[:, :-1]], dim=1)
    logits = model(source, decoder_input)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=pad)


def quantize_for_inference(model: GNMT, weight_bits: int = 8, accumulator_bits: int = 16) -> GNMT:
    """A copy of ``model`` that simulates Section 6's quantised inference: every LSTM, attention and
    softmax weight matrix rounded to ``weight_bits`` bits per row, the accumulators (cell states and
    layer outputs) to ``accumulator_bits``-bit fixed point in [-delta, delta]. The model must have
    been trained with ``accumulator_clip`` (delta) set, as the paper's quantisable models are."""
    if not isinstance(model, GNMT):
        raise TypeError(f"model must be a GNMT, got {type(model).__name__}")
    if model.config.accumulator_clip is None:
        raise ValueError(
            "model.config.accumulator_clip must be set (delta of Section 6) to quantise, got None"
        )
    check_int("weight_bits", weight_bits, 2, 16)
    check_int("accumulator_bits", accumulator_bits, 2, 32)
    quantized = copy.deepcopy(model).eval()
    embeddings = {id(quantized.source_embedding.weight), id(quantized.target_embedding.weight)}
    with torch.no_grad():
        for name, parameter in quantized.named_parameters():
            if parameter.dim() == 2 and id(parameter) not in embeddings:
                parameter.copy_(fake_quantize_weight(parameter, weight_bits))
    quantized.accumulator_bits = accumulator_bits
    return quantized
