"""Supervised fine-tuning (SFT): stage 1 of InstructGPT (Ouyang et al. 2022, Section 3.5 "Models").

InstructGPT first fine-tunes the pre-trained model on labeler demonstrations, (prompt, response)
pairs, by maximum likelihood of the response given the prompt. With ``x`` the prompt tokens and
``y = (y_1 .. y_m)`` the response tokens (ending with an end token), the loss of a batch ``B`` is the
mean negative log-likelihood over every response token of the batch::

    L_SFT = - (1 / N) * sum_{(x, y) in B} sum_{t=1}^{m} log p(y_t | x, y_<t),     N = sum_{(x, y) in B} m   (1)

(the paper writes no equation for SFT; Eq. (1) is numbered here). Prompt tokens are inputs only:
their labels are ``-100`` (``IGNORE_INDEX``) and they get no loss, so the model is not trained to
write prompts. The mean is over the *tokens of the batch*, not a mean of per-example means: a long
response weighs more than a short one. This is what transformers' ``Trainer`` and trl's
``SFTTrainer`` (``completion_only_loss``) compute, and the parity tests check it against trl.

Labels follow the transformers convention: ``labels`` is aligned with ``input_ids`` and the logits at
position ``t`` predict ``labels[t + 1]``; the first label of every example is always ``-100`` (no
token of the example precedes it), so in a packed row no token predicts the next example's first
token.

Pieces:

* :func:`tokenize_example` (plain prompt + response, the path of the character-level base model: the
  end token is ``"\\n"``, which separates sentences in its pre-training text) and :func:`tokenize_chat`
  (a ``messages`` dialog rendered by the Llama 2 or Llama 3 template of
  :mod:`aicanon.language.chat`; the last, assistant, message is the response);
* :func:`collate` (right padding with an ``attention_mask``) and :func:`pack` (several examples per
  row of ``seq_len`` tokens with ``segment_ids``: a token attends only to its own example and
  positions restart at 0 at each example, so a packed example gives the logits it gives alone);
* :func:`sft_loss` (Eq. 1) and :func:`train_sft` (AdamW, warmup then cosine or linear decay,
  gradient clipping, epochs or a step count, packing on or off).

Any model called ``model(input_ids, attention_mask=..., segment_ids=...)`` (``segment_ids`` only in
packed batches) that returns logits ``[B, T, V]`` (or a tuple starting with them, or an object with
``.logits``) can be trained; :class:`aicanon.language.llama.Llama` is one.

Departures from the paper and why:

* InstructGPT's SFT recipe is not hard-coded: the paper trains 16 epochs (Section 3.5), with a
  cosine learning-rate decay and residual dropout 0.2 (unverified: recalled from Section 3.5 and
  Appendix C.1, whose text was not found); :class:`SFTConfig` holds the optimisation settings and
  each experiment sets them. Its defaults are transformers'/trl's (AdamW betas (0.9, 0.999), eps
  1e-8, lr 2e-5, gradient clipping at norm 1, no weight decay), with a cosine decay to 10 % of the
  peak and no warmup (also unverified as InstructGPT's). No dropout is applied here: the Llama
  models have none.
* A response is tokenised separately from its prompt (``encode(prompt) + encode(response + end)``)
  so that the boundary between prompt and response is exact for any tokenizer; trl tokenises
  ``prompt + completion`` in one call and takes the prompt's length as the boundary. For a character
  tokenizer (and for the parity tests' tokenizer) the two are the same.
* Packing is first-fit in the given order (each example goes to the first row with room for it); trl
  packs best-fit decreasing. Both keep every example that fits whole; the packed rows only differ in which
  examples share a row, which does not change any example's loss (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int
from aicanon.core.device import autocast
from aicanon.core.progress import track
from aicanon.language.chat import encode_llama2_chat, encode_llama3_chat

__all__ = [
    "IGNORE_INDEX",
    "SFTConfig",
    "SFTExample",
    "collate",
    "model_logits",
    "pack",
    "response_token_nll",
    "sft_loss",
    "sft_lr",
    "tokenize_chat",
    "tokenize_example",
    "train_sft",
]

IGNORE_INDEX = -100
"""Label of tokens that get no loss (prompt, padding, the first token of every example); PyTorch's and
transformers' ``ignore_index``."""

_SCHEDULES = ("cosine", "linear", "constant")
_TEMPLATES = ("llama2", "llama3")


@dataclass(frozen=True, eq=False)
class SFTExample:
    """One tokenised (prompt, response) pair: ``input_ids [L]`` and ``labels [L]`` (int64), the labels
    equal to the ids on response tokens and ``IGNORE_INDEX`` on prompt tokens."""

    input_ids: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        for name in ("input_ids", "labels"):
            value = getattr(self, name)
            if not isinstance(value, Tensor) or value.dim() != 1 or value.dtype != torch.long:
                got = (
                    f"{tuple(value.shape)} {value.dtype}"
                    if isinstance(value, Tensor)
                    else type(value).__name__
                )
                raise TypeError(f"SFTExample.{name} must be a 1-D int64 tensor, got {got}")
        if self.input_ids.shape != self.labels.shape:
            raise ValueError(
                "SFTExample.input_ids and labels must have the same length, got "
                f"{self.input_ids.numel()} and {self.labels.numel()}"
            )
        if self.input_ids.numel() == 0:
            raise ValueError("SFTExample.input_ids must hold at least one token, got none")
        if not bool((self.labels[1:] != IGNORE_INDEX).any()):
            raise ValueError(
                "SFTExample.labels must mark at least one response token after the first position, got none"
            )

    def __len__(self) -> int:
        return self.input_ids.numel()

    @property
    def num_response_tokens(self) -> int:
        """Tokens that get a loss (Eq. 1's ``m``)."""
        return int((self.labels != IGNORE_INDEX).sum())


# ----- tokenising ------------------------------------------------------------------------------------


def _ids(value: Any, argument: str) -> list[int]:
    """``value`` (a list of ints or a 1-D integer tensor) as a list of ints."""
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.dtype.is_floating_point or value.dtype == torch.bool:
            raise TypeError(
                f"{argument} must be a 1-D integer tensor or list of ints, got {tuple(value.shape)} {value.dtype}"
            )
        return [int(i) for i in value.tolist()]
    if isinstance(value, (list, tuple)) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        return list(value)
    raise TypeError(f"{argument} must be a list of ints or a 1-D integer tensor, got {type(value).__name__}")


def _check_encode(encode: Any) -> None:
    if not callable(encode):
        raise TypeError(f"encode must be a callable str -> token ids, got {type(encode).__name__}")


def _check_length_options(max_length: Any, truncate: Any) -> None:
    check_int("max_length", max_length, 2, allow_none=True, note="a prompt token and a response token")
    if not isinstance(truncate, bool):
        raise TypeError(f"truncate must be a bool, got {type(truncate).__name__}")


def _example(
    prompt_ids: list[int], response_ids: list[int], max_length: int | None, truncate: bool
) -> SFTExample:
    """Concatenate, mask the prompt (and the first token), and fit into ``max_length``."""
    if not response_ids:
        raise ValueError("response must encode to at least one token, got none")
    if max_length is not None:
        if len(prompt_ids) >= max_length:
            raise ValueError(
                f"prompt must be shorter than the context max_length={max_length} (room for a response "
                f"token), got a prompt of {len(prompt_ids)} tokens"
            )
        total = len(prompt_ids) + len(response_ids)
        if total > max_length:
            if not truncate:
                raise ValueError(
                    f"prompt + response must fit in max_length={max_length} tokens, got {total} "
                    f"({len(prompt_ids)} + {len(response_ids)}); pass truncate=True to cut the response"
                )
            # Truncation keeps the whole prompt and cuts the response's tail (its end token too),
            # as trl's max_length truncation does.
            response_ids = response_ids[: max_length - len(prompt_ids)]
    ids = torch.tensor(prompt_ids + response_ids, dtype=torch.long)
    labels = ids.clone()
    labels[: len(prompt_ids)] = IGNORE_INDEX
    # Nothing in the example precedes its first token, so it is never a target (matters with an
    # empty prompt, and in packed rows where the previous example's last token comes before it).
    labels[0] = IGNORE_INDEX
    if not bool((labels != IGNORE_INDEX).any()):
        raise ValueError(
            "an example with an empty prompt needs a response of at least two tokens (its first token "
            "has nothing to be predicted from), got one"
        )
    return SFTExample(ids, labels)


def tokenize_example(
    prompt: str,
    response: str,
    encode: Callable[[str], Any],
    end: str | int,
    *,
    max_length: int | None = None,
    truncate: bool = False,
) -> SFTExample:
    """Token ids and labels of one (prompt, response) demonstration (Eq. 1's ``x`` and ``y``).

    ``encode`` maps text to token ids (a list of ints or a 1-D tensor, e.g. ``CharTokenizer.encode``).
    ``end`` closes the response, so the model learns where to stop: a string appended to the response
    text before encoding (``"\\n"`` for the character base model, an EOS token's text for a tokenizer
    that maps it to its id) or a token id appended after it. ``max_length`` is the context length:
    a prompt that leaves no room for a response raises; a too long example raises, or with
    ``truncate`` loses the tail of its response.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    if not response:
        raise ValueError("response must be a non-empty str, got ''")
    _check_encode(encode)
    if isinstance(end, bool) or not isinstance(end, (str, int)):
        raise TypeError(f"end must be the end token's text (str) or id (int), got {type(end).__name__}")
    if isinstance(end, int) and end < 0:
        raise ValueError(f"end must be a token id >= 0, got {end}")
    _check_length_options(max_length, truncate)
    prompt_ids = _ids(encode(prompt), "encode(prompt)") if prompt else []
    if isinstance(end, str):
        response_ids = _ids(encode(response + end), "encode(response + end)")
    else:
        response_ids = [*_ids(encode(response), "encode(response)"), end]
    return _example(prompt_ids, response_ids, max_length, truncate)


def tokenize_chat(
    messages: Sequence[Mapping[str, str]],
    encode: Callable[[str], Any],
    template: str = "llama3",
    *,
    special_tokens: Mapping[str, int] | None = None,
    bos_id: int | None = None,
    eos_id: int | None = None,
    max_length: int | None = None,
    truncate: bool = False,
) -> SFTExample:
    """Token ids and labels of a dialog whose last message is the assistant's response.

    ``template`` is ``"llama3"`` (:func:`aicanon.language.chat.encode_llama3_chat`, needs
    ``special_tokens``; the response ends with ``<|eot_id|>``) or ``"llama2"``
    (:func:`aicanon.language.chat.encode_llama2_chat`, needs ``bos_id`` and ``eos_id``; the response
    ends with EOS). The prompt is the dialog before the last message with the template's generation
    prompt (what the model sees at inference); earlier assistant turns are part of the prompt and get
    no loss. For a model without the templates' special tokens (the character base), render the
    prompt with ``format_llama3_chat``/``format_llama2_chat`` and use :func:`tokenize_example`.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or len(messages) < 2:
        got = f"{len(messages)} message(s)" if isinstance(messages, Sequence) else type(messages).__name__
        raise ValueError(
            f"messages must be a dialog of at least two messages ending with the assistant's, got {got}"
        )
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") != "assistant":
        raise ValueError(f"messages[-1] must be the assistant's response, got {last!r}")
    if not isinstance(last.get("content"), str) or not last["content"].strip():
        raise ValueError(
            f"messages[-1]['content'] (the response) must be a non-empty str, got {last.get('content')!r}"
        )
    _check_encode(encode)
    if template not in _TEMPLATES:
        raise ValueError(f"template must be one of {_TEMPLATES}, got {template!r}")
    _check_length_options(max_length, truncate)
    if template == "llama3":
        if special_tokens is None:
            raise ValueError("special_tokens (name -> id) must be given for template='llama3', got None")
        prompt = _ids(
            encode_llama3_chat(messages[:-1], encode, special_tokens, add_generation_prompt=True), "prompt"
        )
        full = _ids(
            encode_llama3_chat(messages, encode, special_tokens, add_generation_prompt=False), "dialog"
        )
    else:
        if bos_id is None or eos_id is None:
            raise ValueError(
                f"bos_id and eos_id must be given for template='llama2', got {bos_id!r} and {eos_id!r}"
            )
        prompt = _ids(encode_llama2_chat(messages[:-1], encode, bos_id, eos_id), "prompt")
        full = _ids(encode_llama2_chat(messages, encode, bos_id, eos_id), "dialog")
    if full[: len(prompt)] != prompt:
        # Llama 2 encodes "[INST] user [/INST] answer" in one call: a tokenizer that merges across
        # the "[/INST] answer" boundary would make the prompt of training differ from inference.
        raise ValueError(
            f"the {template} prompt's tokens must be a prefix of the whole dialog's tokens; this encode "
            "merges tokens across the prompt/response boundary"
        )
    return _example(prompt, full[len(prompt) :], max_length, truncate)


# ----- batches ---------------------------------------------------------------------------------------


def _check_examples(examples: Any) -> list[SFTExample]:
    if isinstance(examples, SFTExample) or not isinstance(examples, Sequence):
        raise TypeError(f"examples must be a sequence of SFTExample, got {type(examples).__name__}")
    if len(examples) == 0:
        raise ValueError("examples must hold at least one SFTExample, got an empty sequence")
    for i, example in enumerate(examples):
        if not isinstance(example, SFTExample):
            raise TypeError(f"examples[{i}] must be an SFTExample, got {type(example).__name__}")
    return list(examples)


def collate(examples: Sequence[SFTExample], pad_id: int = 0) -> dict[str, Tensor]:
    """One padded batch: ``input_ids``, ``attention_mask`` (1 on real tokens) and ``labels``, each
    ``[B, T]`` with ``T`` the longest example; right padding with ``pad_id`` (label ``IGNORE_INDEX``)."""
    examples = _check_examples(examples)
    check_int("pad_id", pad_id, 0, note="a token id")
    length = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        input_ids[row, :n], labels[row, :n], attention_mask[row, :n] = example.input_ids, example.labels, 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pack(
    examples: Sequence[SFTExample], seq_len: int, pad_id: int = 0, truncate: bool = False
) -> dict[str, Tensor]:
    """Examples packed into rows of ``seq_len`` tokens: ``input_ids``, ``attention_mask``, ``labels``
    and ``segment_ids``, each ``[R, seq_len]``.

    Rows are filled first-fit in the order given. ``segment_ids`` number the examples of a row from 1;
    the padding at a row's end is segment 0 (and ``attention_mask`` 0, label ``IGNORE_INDEX``). The
    first label of every example is ``IGNORE_INDEX``, so no token is trained to predict the next
    example's first token. An example longer than ``seq_len`` raises, or with ``truncate`` is cut to
    ``seq_len`` (its response's tail; an example left without a response token still raises).
    """
    examples = _check_examples(examples)
    check_int("seq_len", seq_len)
    check_int("pad_id", pad_id, 0, note="a token id")
    if not isinstance(truncate, bool):
        raise TypeError(f"truncate must be a bool, got {type(truncate).__name__}")
    pieces: list[tuple[Tensor, Tensor]] = []
    for i, example in enumerate(examples):
        ids, labels = example.input_ids, example.labels
        if len(example) > seq_len:
            if not truncate:
                raise ValueError(
                    f"examples[{i}] must fit in seq_len={seq_len} tokens, got {len(example)}; pass "
                    "truncate=True to cut it"
                )
            ids, labels = ids[:seq_len], labels[:seq_len]
            if not bool((labels != IGNORE_INDEX).any()):
                raise ValueError(
                    f"examples[{i}] has no response token within seq_len={seq_len} (its prompt is "
                    f"{int((example.labels == IGNORE_INDEX).sum())} tokens); raise seq_len"
                )
        pieces.append((ids, labels))
    rows: list[list[int]] = []  # indices of the pieces in each row
    room: list[int] = []
    for index, (ids, _) in enumerate(pieces):
        for r, free in enumerate(room):
            if free >= ids.numel():
                rows[r].append(index)
                room[r] -= ids.numel()
                break
        else:
            rows.append([index])
            room.append(seq_len - ids.numel())
    shape = (len(rows), seq_len)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    segment_ids = torch.zeros(shape, dtype=torch.long)
    for r, members in enumerate(rows):
        start = 0
        for segment, index in enumerate(members, start=1):
            ids, piece_labels = pieces[index]
            end = start + ids.numel()
            input_ids[r, start:end] = ids
            labels[r, start:end] = piece_labels
            labels[r, start] = IGNORE_INDEX  # the boundary: no prediction across examples
            segment_ids[r, start:end] = segment
            start = end
    attention_mask = (segment_ids > 0).long()
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "segment_ids": segment_ids,
    }


# ----- loss ------------------------------------------------------------------------------------------


def response_token_nll(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-token negative log-likelihood of the next token: ``(nll [B, T-1], mask [B, T-1])``.

    ``logits [B, T, V]`` at position ``t`` are scored against ``labels[:, t + 1]``; ``nll`` is float32
    and 0 where the label is ``IGNORE_INDEX`` (``mask`` False there).
    """
    if not isinstance(logits, Tensor) or logits.dim() != 3 or not logits.dtype.is_floating_point:
        got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a float tensor [batch, length, vocab], got {got}")
    if (
        not isinstance(labels, Tensor)
        or labels.dtype != torch.long
        or tuple(labels.shape) != tuple(logits.shape[:2])
    ):
        got = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an int64 tensor of shape {tuple(logits.shape[:2])}, got {got}")
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    nll = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(targets.shape)
    return nll, mask


def _logits(output: Any) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return output[0]
    if isinstance(getattr(output, "logits", None), Tensor):
        return output.logits
    raise TypeError(
        f"model must return logits (a tensor, a tuple starting with one, or .logits), got {type(output).__name__}"
    )


def _check_batch(batch: Any) -> None:
    if not isinstance(batch, Mapping):
        raise TypeError(f"batch must be a mapping from collate or pack, got {type(batch).__name__}")
    missing = [k for k in ("input_ids", "labels") if k not in batch]
    if missing:
        raise ValueError(f"batch must hold 'input_ids' and 'labels', missing {missing}")
    ids = batch["input_ids"]
    if not isinstance(ids, Tensor) or ids.dim() != 2:
        got = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"batch['input_ids'] must be a [batch, length] tensor, got {got}")
    for key in ("labels", "attention_mask", "segment_ids"):
        value = batch.get(key)
        if value is not None and (not isinstance(value, Tensor) or value.shape != ids.shape):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"batch['{key}'] must have the shape of input_ids {tuple(ids.shape)}, got {got}")


def model_logits(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    """``model``'s logits on a batch from :func:`collate` or :func:`pack` (``segment_ids`` passed only
    when the batch has them)."""
    _check_batch(batch)
    kwargs = {}
    if batch.get("attention_mask") is not None:
        kwargs["attention_mask"] = batch["attention_mask"]
    if batch.get("segment_ids") is not None:
        kwargs["segment_ids"] = batch["segment_ids"]
    return _logits(model(batch["input_ids"], **kwargs))


def sft_loss(model: nn.Module, batch: Mapping[str, Tensor], num_tokens: int | None = None) -> Tensor:
    """Eq. (1): the summed response-token NLL of ``batch`` divided by its number of response tokens.

    ``num_tokens`` replaces that count (trl's ``num_items_in_batch``): with gradient accumulation over
    micro-batches, pass the response tokens of the whole accumulated batch so the summed gradients are
    those of Eq. (1) on it.
    """
    if not isinstance(model, nn.Module) and not callable(model):
        raise TypeError(f"model must be a callable nn.Module returning logits, got {type(model).__name__}")
    logits = model_logits(model, batch)
    nll, mask = response_token_nll(logits, batch["labels"].to(logits.device))
    count = int(mask.sum()) if num_tokens is None else num_tokens
    what = "the batch's response tokens" if num_tokens is None else "num_tokens"
    check_int(what, count, note="Eq. 1 averages over them")
    return nll.sum() / count


# ----- training --------------------------------------------------------------------------------------


@dataclass
class SFTConfig:
    """Optimisation of :func:`train_sft` (defaults: transformers'/trl's; see the module docstring)."""

    epochs: int = 1
    """Passes over the examples (InstructGPT: 16); ignored when ``steps`` is set."""
    steps: int | None = None
    """Optimiser steps to take (cycling through reshuffled epochs), or None to train ``epochs``."""
    batch_size: int = 8
    """Examples per step (packed rows per step with ``packing``)."""
    lr: float = 2e-5
    """Peak learning rate (InstructGPT 1.3B/6B: 9.65e-6, unverified)."""
    warmup_steps: int = 0
    """Linear warmup steps (InstructGPT: none, unverified)."""
    schedule: str = "cosine"
    """After warmup: "cosine" or "linear" decay to ``min_lr_ratio * lr``, or "constant"."""
    min_lr_ratio: float = 0.1
    """Where the decay ends, as a fraction of the peak (InstructGPT: 10 %, unverified)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay (matrices and embeddings only)."""
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    """Clip the gradients' global norm to this (0 = no clipping)."""
    packing: bool = False
    """Pack examples into rows of ``seq_len`` tokens (:func:`pack`) instead of padding each batch."""
    seq_len: int | None = None
    """Row length when packing (required then; at most the model's context)."""
    truncate: bool = False
    """When packing, cut an example longer than ``seq_len`` instead of raising."""
    pad_id: int = 0
    """Token id of the padding (it gets no loss and is masked from attention)."""
    shuffle: bool = True
    """Reshuffle the examples (or packed rows) every epoch with the trainer's generator."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_int(f"SFTConfig.{name}", getattr(self, name))
        check_int("SFTConfig.steps", self.steps, allow_none=True)
        check_int("SFTConfig.warmup_steps", self.warmup_steps, 0)
        check_float("SFTConfig.lr", self.lr, 0, min_inclusive=False)
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"SFTConfig.schedule must be one of {_SCHEDULES}, got {self.schedule!r}")
        check_float("SFTConfig.min_lr_ratio", self.min_lr_ratio, 0, 1)
        if self.weight_decay < 0 or self.grad_clip < 0 or self.eps <= 0:
            raise ValueError(
                "SFTConfig.weight_decay and grad_clip must be >= 0 and eps > 0, got "
                f"{self.weight_decay}, {self.grad_clip} and {self.eps}"
            )
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"SFTConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.packing:
            check_int("SFTConfig.seq_len", self.seq_len, note="packing needs it")
        check_int("pad_id", self.pad_id, 0, note="a token id")


def sft_lr(step: int, total_steps: int, cfg: SFTConfig) -> float:
    """Learning rate at ``step`` (0-based) of ``total_steps``: linear warmup to ``cfg.lr``, then the
    schedule's decay to ``cfg.min_lr_ratio * cfg.lr`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps - 1))
    floor = cfg.min_lr_ratio * cfg.lr
    if cfg.schedule == "linear":
        return cfg.lr - (cfg.lr - floor) * progress
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def _optimizer(model: nn.Module, cfg: SFTConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters (requires_grad=True), got none")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def train_sft(
    model: nn.Module,
    examples: Sequence[SFTExample],
    cfg: SFTConfig,
    generator: torch.Generator | None = None,
    description: str = "supervised fine-tuning",
) -> dict:
    """Fine-tune ``model`` on ``examples`` by Eq. (1); returns the history.

    Each epoch the examples (or, with packing, the rows packed once from the examples in a shuffled
    order) are shuffled with ``generator`` and cut into batches of ``cfg.batch_size`` (the last one
    may be smaller). History: ``loss`` and ``lr`` per step, ``tokens`` (response tokens per step),
    ``steps`` and ``epochs`` (passes made, fractional when ``cfg.steps`` ends inside one). The model is
    left in the train/eval mode it came in.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(cfg, SFTConfig):
        raise TypeError(f"cfg must be an SFTConfig, got {type(cfg).__name__}")
    examples = _check_examples(examples)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    device = next(model.parameters()).device

    def order(n: int) -> list[int]:
        return torch.randperm(n, generator=generator).tolist() if cfg.shuffle else list(range(n))

    if cfg.packing:
        packed = pack([examples[i] for i in order(len(examples))], cfg.seq_len, cfg.pad_id, cfg.truncate)
        units = packed["input_ids"].shape[0]

        def batch_of(indices: list[int]) -> dict[str, Tensor]:
            return {k: v[indices] for k, v in packed.items()}
    else:
        units = len(examples)

        def batch_of(indices: list[int]) -> dict[str, Tensor]:
            return collate([examples[i] for i in indices], cfg.pad_id)

    per_epoch = math.ceil(units / cfg.batch_size)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    optimizer = _optimizer(model, cfg)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    history: dict = {"loss": [], "lr": [], "tokens": [], "steps": total, "epochs": total / per_epoch}
    was_training = model.training
    model.train()
    batches: list[list[int]] = []
    try:
        for step in track(range(total), description, total=total):
            if not batches:  # a new epoch
                perm = order(units)
                batches = [perm[i : i + cfg.batch_size] for i in range(0, units, cfg.batch_size)]
            batch = {k: v.to(device) for k, v in batch_of(batches.pop(0)).items()}
            lr = sft_lr(step, total, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device):
                loss = sft_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            history["loss"].append(float(loss.detach()))
            history["lr"].append(lr)
            history["tokens"].append(int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()))
    finally:
        model.train(was_training)
    return history
