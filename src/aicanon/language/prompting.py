"""Prompt-based learning (Liu et al. 2021, "Pre-train, Prompt, and Predict", arXiv 2107.13586): the
survey's framework as working code, for a masked LM (our ALBERT/BERT, :mod:`aicanon.language.albert`)
and a causal LM (our Llama, or any module mapping ids ``[B, T]`` to logits ``[B, T, V]``).

The survey's formulation (Section 2.2, Table 2). An input ``x`` becomes a prompt ``x'`` through a
template with an input slot ``[X]`` and an answer slot ``[Z]``:

    x' = f_prompt(x)                                   "[X] It was [Z] ."           (Section 2.2.1)

*cloze* prompts have ``[Z]`` inside the text (masked LMs fill it), *prefix* prompts end with ``[Z]``
(left-to-right LMs continue them) (Section 3.1, "prompt shape"). The answer space ``Z`` holds the
words that may fill the slot and the verbaliser maps each label ``y`` to its answers ``Z_y``
(Section 2.2.3, "answer mapping"; Section 4). The filled prompt ``f_fill(x', z)`` is scored by the
pre-trained LM, and the prediction is the highest-scoring answer's label:

    z_hat = search_{z in Z} P(f_fill(x', z); theta)                                  (Eq. 1)
    y_hat = the label whose answers score highest

Here a label's score is ``log sum_{z in Z_y} P(z | x')`` (the probability that the answer falls in
``Z_y``; with one answer per label it is that answer's log-probability). A multi-token answer
``z = (z_1 .. z_m)`` is scored with ``m`` ``[MASK]`` slots of a masked LM, each predicted
independently, as PET does (Schick & Schütze 2021):

    log P(z | x') = sum_{j=1}^{m} log P([MASK]_j = z_j | x')        (``reduction="sum"``)
    or the mean over j                                              (``reduction="mean"``, length-normalised)

and by a causal LM as the teacher-forced log-probability of the answer's tokens (and of the text after
the slot, for a cloze template) given the text before it.

Tuning strategies (Section 7.2, Table 6), served by :func:`trainable_parameters`:

=================================  ============  ===========  ===================================
strategy                           LM params     prompt       example
=================================  ============  ===========  ===================================
``promptless``                     tuned         none         BERT fine-tuning with a head
``tuning_free``                    frozen        discrete     GPT-3 zero-shot / LAMA
``fixed_lm_prompt``                frozen        soft, tuned  prompt tuning (Lester et al. 2021)
``fixed_prompt_lm``                tuned         discrete     PET (Schick & Schütze 2021)
``prompt_lm``                      tuned         soft, tuned  P-tuning / PADA
=================================  ============  ===========  ===================================

Soft prompts (Section 3.2.2, "continuous prompts"): ``n`` trainable vectors in the LM's input-embedding
space, inserted after ``[CLS]`` before the discrete template, with the LM frozen in the fixed-LM
strategy; they start from the embeddings of given words (Lester et al.'s vocabulary init) or from
N(0, 0.02^2)-scaled noise. :func:`encode_with_soft_prompt` runs the encoder on the concatenated
embeddings.

Departures, and why:

* Text is tokenised by a caller-given ``tokenize: str -> list[int]`` (word-level here); the template's
  pieces and the input are tokenised separately and concatenated, so the input alone is truncated
  (from its end) when the prompt exceeds ``max_length``.
* Multi-token answers use the independent-mask approximation of PET (all ``m`` slots predicted in
  one pass) rather than PET's autoregressive slot-by-slot decoding (Schick & Schütze 2021b).
* Soft prompts are placed after ``[CLS]`` (the survey lists both prefix and interleaved placements);
  Lester et al. prepend to the input of an encoder-decoder T5.
* :func:`encode_with_soft_prompt` re-runs :class:`~aicanon.language.albert.AlbertEncoder`'s layers
  on embeddings (our encoder takes ids only); a test checks it equals the encoder without a prompt
  and the encoder whose vocabulary holds the prompt vectors as extra rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int
from aicanon.language.albert import AlbertEncoder, AlbertForPreTraining

__all__ = [
    "INPUT_SLOT",
    "ANSWER_SLOT",
    "REDUCTIONS",
    "STRATEGIES",
    "CausalLMPromptClassifier",
    "MaskedLMPromptClassifier",
    "PromptTemplate",
    "SequenceClassifier",
    "SoftPrompt",
    "Verbalizer",
    "answer_log_probs",
    "causal_lm_continuation_log_probs",
    "encode_with_soft_prompt",
    "fit_classifier",
    "predict",
    "trainable_parameters",
]

INPUT_SLOT = "[X]"
ANSWER_SLOT = "[Z]"
REDUCTIONS = ("sum", "mean")
STRATEGIES = ("promptless", "tuning_free", "fixed_lm_prompt", "fixed_prompt_lm", "prompt_lm")
Tokenize = Callable[[str], Sequence[int]]


# ------------------------------------------------------------------------------------- templates
class PromptTemplate:
    """A template with one input slot ``[X]`` and one answer slot ``[Z]`` (Section 2.2.1).

    ``kind`` is ``"prefix"`` when ``[Z]`` ends the template (after stripping white space) and
    ``"cloze"`` otherwise (Section 3.1).
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str template, got {type(text).__name__}")
        for slot in (INPUT_SLOT, ANSWER_SLOT):
            if text.count(slot) != 1:
                raise ValueError(f"text must hold {slot} exactly once, got {text.count(slot)} in {text!r}")
        self.text = text

    @property
    def kind(self) -> str:
        return "prefix" if self.text.rstrip().endswith(ANSWER_SLOT) else "cloze"

    def fill(self, x: str, z: str | None = None) -> str:
        """``f_prompt(x)`` (``z=None``: the answer slot stays ``[Z]``) or ``f_fill(x', z)``."""
        if not isinstance(x, str):
            raise TypeError(f"x must be a str, got {type(x).__name__}")
        out = self.text.replace(INPUT_SLOT, x)
        return out if z is None else out.replace(ANSWER_SLOT, z)

    def pieces(self) -> list[str]:
        """The template cut at its slots: a list of plain text and the two slot markers, in order."""
        out: list[str] = []
        rest = self.text
        while rest:
            cuts = [(rest.find(s), s) for s in (INPUT_SLOT, ANSWER_SLOT) if s in rest]
            if not cuts:
                out.append(rest)
                break
            at, slot = min(cuts)
            if at:
                out.append(rest[:at])
            out.append(slot)
            rest = rest[at + len(slot) :]
        return out

    def __repr__(self) -> str:
        return f"PromptTemplate({self.text!r})"


class Verbalizer:
    """The answer mapping: label ``y`` -> answers ``Z_y`` (Section 4), and how an answer's tokens
    combine (``reduction``: ``"sum"`` of log-probabilities, or their ``"mean"``).

    ``answers`` is a sequence indexed by label (each a word or a list of words or phrases) or a
    mapping ``{0: [...], 1: [...], ...}`` whose keys are ``0..C-1``.
    """

    def __init__(
        self,
        answers: Sequence[str | Sequence[str]] | Mapping[int, str | Sequence[str]],
        reduction: str = "sum",
    ) -> None:
        if isinstance(answers, Mapping):
            keys = sorted(answers)
            if keys != list(range(len(keys))):
                raise ValueError(f"answers keys must be the labels 0..C-1, got {keys}")
            answers = [answers[k] for k in keys]
        if isinstance(answers, str) or not isinstance(answers, Sequence) or len(answers) < 2:
            raise ValueError(f"answers must give the answers of at least 2 labels, got {answers!r}")
        table: list[list[str]] = []
        for label, words in enumerate(answers):
            words = [words] if isinstance(words, str) else list(words)
            if not words or not all(isinstance(w, str) and w.strip() for w in words):
                raise ValueError(f"answers[{label}] must be non-empty strings, got {words!r}")
            table.append(words)
        flat = [w for words in table for w in words]
        if len(set(flat)) != len(flat):
            raise ValueError(f"answers must be distinct across labels, got {table}")
        self.answers = table
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    @property
    def num_labels(self) -> int:
        return len(self.answers)

    def label_scores(self, answer_scores: Tensor) -> Tensor:
        """Answer scores ``[B, A]`` (answers in label order, flattened) -> label scores ``[B, C]``:
        ``logsumexp`` over each label's answers."""
        sizes = [len(a) for a in self.answers]
        if answer_scores.dim() != 2 or answer_scores.shape[1] != sum(sizes):
            raise ValueError(
                f"answer_scores must be [batch, {sum(sizes)}] (one column per answer), "
                f"got {tuple(answer_scores.shape)}"
            )
        return torch.stack([s.logsumexp(-1) for s in answer_scores.split(sizes, dim=1)], dim=1)

    def __repr__(self) -> str:
        return f"Verbalizer({self.answers!r}, reduction={self.reduction!r})"


def answer_log_probs(log_probs: Tensor, answers: Sequence[Sequence[int]], reduction: str = "sum") -> Tensor:
    """Scores of multi-token answers from the LM's log-probabilities at ``m`` answer slots.

    ``log_probs [B, m, V]``; ``answers``: ``A`` answers of ``m`` token ids each -> ``[B, A]``, the
    sum (or mean) over ``j`` of ``log_probs[:, j, answer[j]]`` (the formula in the module docstring).
    """
    check_choice("reduction", reduction, REDUCTIONS)
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 3:
        got = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs).__name__
        raise ValueError(f"log_probs must be a [batch, slots, vocab] tensor, got {got}")
    m, vocab = log_probs.shape[1], log_probs.shape[2]
    if not answers or any(len(a) != m for a in answers):
        raise ValueError(f"answers must be a non-empty list of {m}-token answers, got {list(answers)}")
    ids = torch.tensor([list(a) for a in answers], dtype=torch.long, device=log_probs.device)  # [A, m]
    if int(ids.min()) < 0 or int(ids.max()) >= vocab:
        raise ValueError(f"answers must be token ids in [0, {vocab}), got {ids.tolist()}")
    slots = torch.arange(m, device=log_probs.device)
    picked = log_probs[:, slots[None, :], ids]  # [B, A, m]
    return picked.sum(-1) if reduction == "sum" else picked.mean(-1)


def _tokenize_answers(tokenize: Tokenize, verbalizer: Verbalizer) -> list[list[int]]:
    out = []
    for words in verbalizer.answers:
        for word in words:
            ids = list(tokenize(word))
            if not ids:
                raise ValueError(f"verbalizer answer {word!r} tokenises to no tokens")
            out.append(ids)
    return out


# ----------------------------------------------------------------------------------- soft prompts
class SoftPrompt(nn.Module):
    """``n`` trainable vectors in the input-embedding space (Section 3.2.2; Lester et al. 2021).

    ``init``: a ``[n, E]`` tensor to start from (e.g. the embeddings of the template's words,
    Lester et al.'s vocabulary initialisation), or ``None`` for N(0, ``std``^2).
    """

    def __init__(self, length: int, width: int, init: Tensor | None = None, std: float = 0.02) -> None:
        super().__init__()
        check_int("length", length)
        check_int("width", width)
        if init is not None:
            if not isinstance(init, Tensor) or tuple(init.shape) != (length, width):
                got = tuple(init.shape) if isinstance(init, Tensor) else type(init).__name__
                raise ValueError(f"init must be a [{length}, {width}] tensor, got {got}")
            value = init.detach().clone().float()
        else:
            value = torch.randn(length, width) * std
        self.embeddings = nn.Parameter(value)

    def forward(self) -> Tensor:
        return self.embeddings


def encode_with_soft_prompt(
    encoder: AlbertEncoder, input_ids: Tensor, attention_mask: Tensor | None, prompt: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The encoder's hidden states with ``prompt [n, E]`` inserted after the first token (``[CLS]``).

    Returns ``(hidden [B, n + T, H], attention_mask [B, n + T])``. The prompt vectors take the place
    of word embeddings: the position and segment embeddings, LayerNorm and projection are applied to
    them as to any token (as if they were extra vocabulary rows).
    """
    if not isinstance(encoder, AlbertEncoder):
        raise TypeError(f"encoder must be an AlbertEncoder, got {type(encoder).__name__}")
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        got = (tuple(input_ids.shape), input_ids.dtype) if isinstance(input_ids, Tensor) else type(input_ids)
        raise ValueError(f"input_ids must be a [batch, length] int64 tensor, got {got}")
    batch = input_ids.shape[0]
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    if prompt is None:
        hidden, _ = encoder(input_ids, attention_mask=attention_mask)
        return hidden, attention_mask.bool()
    cfg = encoder.cfg
    if not isinstance(prompt, Tensor) or prompt.dim() != 2 or prompt.shape[1] != cfg.embedding_size:
        got = tuple(prompt.shape) if isinstance(prompt, Tensor) else type(prompt).__name__
        raise ValueError(f"prompt must be a [length, {cfg.embedding_size}] tensor (E wide), got {got}")
    n = prompt.shape[0]
    total = n + input_ids.shape[1]
    if total > cfg.max_position_embeddings:
        raise ValueError(
            f"prompt length + input length must be <= max_position_embeddings="
            f"{cfg.max_position_embeddings}, got {total}"
        )
    embeddings = encoder.embeddings
    word = embeddings.word(input_ids)
    word = torch.cat([word[:, :1], prompt.to(word.dtype).expand(batch, n, -1), word[:, 1:]], dim=1)
    mask = attention_mask.bool()
    mask = torch.cat([mask[:, :1], mask.new_ones(batch, n), mask[:, 1:]], dim=1)
    positions = torch.arange(total, device=input_ids.device)
    x = (
        word
        + embeddings.position(positions)
        + embeddings.token_type(torch.zeros_like(mask, dtype=torch.long))
    )
    return encoder.transform(embeddings.dropout(embeddings.norm(x)), mask), mask


# ------------------------------------------------------------------------- inputs and batching
def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise ValueError(f"texts must be a non-empty list of str, got {type(texts).__name__}")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must hold only str")
    return list(texts)


def _pad(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = True
    return ids, mask


# ---------------------------------------------------------------------------- masked-LM prompts
class MaskedLMPromptClassifier(nn.Module):
    """Prompt-based classification with a masked LM: ``forward(texts) -> label scores [B, C]``.

    Each text fills the template's ``[X]``; ``[Z]`` becomes ``m`` ``[MASK]`` tokens for the
    ``m``-token answers (one pass per answer length); the MLM head's log-probabilities at those
    slots score every answer (:func:`answer_log_probs`) and the verbaliser turns answer scores into
    label scores (:meth:`Verbalizer.label_scores`). The input is ``[CLS] prompt [SEP]``.

    ``soft_prompt_length > 0`` adds a :class:`SoftPrompt` after ``[CLS]`` (initialised from the
    embeddings of ``soft_prompt_init``'s tokens, cycled to the length, when given). The scores are
    log-probabilities, so ``F.cross_entropy(scores, labels)`` is PET's training loss.
    """

    def __init__(
        self,
        model: AlbertForPreTraining,
        tokenize: Tokenize,
        template: PromptTemplate,
        verbalizer: Verbalizer,
        *,
        cls_id: int,
        sep_id: int,
        mask_id: int,
        pad_id: int = 0,
        max_length: int = 64,
        soft_prompt_length: int = 0,
        soft_prompt_init: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, AlbertForPreTraining):
            raise TypeError(
                f"model must be an AlbertForPreTraining (encoder + MLM head), got {type(model).__name__}"
            )
        if not callable(tokenize):
            raise TypeError(f"tokenize must be a callable str -> list[int], got {type(tokenize).__name__}")
        if not isinstance(template, PromptTemplate):
            raise TypeError(f"template must be a PromptTemplate, got {type(template).__name__}")
        if not isinstance(verbalizer, Verbalizer):
            raise TypeError(f"verbalizer must be a Verbalizer, got {type(verbalizer).__name__}")
        vocab = model.cfg.vocab_size
        for name, value in (("cls_id", cls_id), ("sep_id", sep_id), ("mask_id", mask_id), ("pad_id", pad_id)):
            check_int(name, value, 0, vocab - 1)
        check_int("max_length", max_length, 4)
        check_int("soft_prompt_length", soft_prompt_length, 0)
        self.model = model
        self.tokenize = tokenize
        self.template = template
        self.verbalizer = verbalizer
        self.cls_id, self.sep_id, self.mask_id, self.pad_id = cls_id, sep_id, mask_id, pad_id
        self.max_length = max_length
        self.answer_ids = _tokenize_answers(tokenize, verbalizer)
        bad = [a for a in self.answer_ids if max(a) >= vocab or min(a) < 0]
        if bad:
            raise ValueError(f"tokenize must give ids in [0, {vocab}) for the answers, got {bad}")
        self.pieces = [p if p in (INPUT_SLOT, ANSWER_SLOT) else list(tokenize(p)) for p in template.pieces()]
        self.soft_prompt: SoftPrompt | None = None
        if soft_prompt_length:
            init = None
            if soft_prompt_init is not None:
                seed_ids = list(tokenize(soft_prompt_init))
                if not seed_ids:
                    raise ValueError(f"soft_prompt_init {soft_prompt_init!r} tokenises to no tokens")
                ids = torch.tensor([seed_ids[i % len(seed_ids)] for i in range(soft_prompt_length)])
                init = model.albert.embeddings.word.weight[ids]
            self.soft_prompt = SoftPrompt(soft_prompt_length, model.cfg.embedding_size, init)

    def encode(self, texts: Sequence[str], num_masks: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids [B, T], attention_mask [B, T], slot_positions [B, m])`` for the prompts with
        ``num_masks`` answer slots (positions counted without the soft prompt)."""
        texts = _check_texts(texts)
        check_int("num_masks", num_masks)
        fixed = 2 + num_masks + sum(len(p) for p in self.pieces if isinstance(p, list))
        budget = self.max_length - fixed
        if budget < 1:
            raise ValueError(f"max_length={self.max_length} leaves no room for the input in {self.template}")
        rows, slots = [], []
        for text in texts:
            row = [self.cls_id]
            for piece in self.pieces:
                if piece == INPUT_SLOT:
                    row += list(self.tokenize(text))[:budget]
                elif piece == ANSWER_SLOT:
                    slots.append(list(range(len(row), len(row) + num_masks)))
                    row += [self.mask_id] * num_masks
                else:
                    row += piece
            rows.append(row + [self.sep_id])
        ids, mask = _pad(rows, self.pad_id)
        return ids, mask, torch.tensor(slots, dtype=torch.long)

    def slot_log_probs(self, texts: Sequence[str], num_masks: int) -> Tensor:
        """The MLM's log-probabilities at the ``num_masks`` answer slots: ``[B, m, V]``."""
        ids, mask, slots = self.encode(texts, num_masks)
        device = self.model.mlm_bias.device
        ids, mask, slots = ids.to(device), mask.to(device), slots.to(device)
        prompt = self.soft_prompt() if self.soft_prompt is not None else None
        hidden, _ = encode_with_soft_prompt(self.model.albert, ids, mask, prompt)
        shift = 0 if prompt is None else prompt.shape[0]  # the slots move right past the soft prompt
        picked = hidden[torch.arange(ids.shape[0], device=device)[:, None], slots + shift]  # [B, m, H]
        return F.log_softmax(self.model.mlm_logits(picked), dim=-1)

    def answer_scores(self, texts: Sequence[str]) -> Tensor:
        """Every answer's score ``[B, A]`` (answers in the verbaliser's order, flattened)."""
        columns: dict[int, Tensor] = {}
        lengths = sorted({len(a) for a in self.answer_ids})
        for m in lengths:
            index = [i for i, a in enumerate(self.answer_ids) if len(a) == m]
            scores = answer_log_probs(
                self.slot_log_probs(texts, m), [self.answer_ids[i] for i in index], self.verbalizer.reduction
            )
            columns.update({i: scores[:, k] for k, i in enumerate(index)})
        return torch.stack([columns[i] for i in range(len(self.answer_ids))], dim=1)

    def forward(self, texts: Sequence[str]) -> Tensor:
        return self.verbalizer.label_scores(self.answer_scores(texts))


# ---------------------------------------------------------------------------- causal-LM prompts
def causal_lm_continuation_log_probs(
    model: nn.Module,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    reduction: str = "sum",
) -> Tensor:
    """``log P(continuation | context)`` under a causal LM (``model(ids, attention_mask) -> [B, T, V]``),
    teacher-forced, summed (or averaged) over the continuation's tokens: ``[B]``."""
    check_choice("reduction", reduction, REDUCTIONS)
    if len(contexts) != len(continuations) or not contexts:
        raise ValueError(
            f"contexts and continuations must be non-empty and of equal length, got {len(contexts)} and "
            f"{len(continuations)}"
        )
    if any(len(c) == 0 for c in contexts) or any(len(c) == 0 for c in continuations):
        raise ValueError("every context and continuation must hold at least one token")
    rows = [list(a) + list(b) for a, b in zip(contexts, continuations, strict=True)]
    ids, mask = _pad(rows, 0)
    device = next(model.parameters()).device
    logits = model(ids.to(device), attention_mask=mask.to(device))
    log_probs = F.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = ids[:, 1:].to(device)
    token = log_probs.gather(-1, targets[..., None]).squeeze(-1)  # log P(ids[t+1] | ids[:t+1])
    scored = torch.zeros_like(targets, dtype=torch.bool)
    for i, (a, b) in enumerate(zip(contexts, continuations, strict=True)):
        scored[i, len(a) - 1 : len(a) + len(b) - 1] = True
    total = (token * scored).sum(-1)
    return total if reduction == "sum" else total / scored.sum(-1)


class CausalLMPromptClassifier(nn.Module):
    """Prompt-based classification with a causal LM: each label's answers are scored as the
    continuation of the text before ``[Z]`` (for a cloze template the text after ``[Z]`` is part of
    the continuation: the filled prompt is scored from the slot on); ``bos`` ids start every context."""

    def __init__(
        self,
        model: nn.Module,
        tokenize: Tokenize,
        template: PromptTemplate,
        verbalizer: Verbalizer,
        bos: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module causal LM, got {type(model).__name__}")
        if not callable(tokenize):
            raise TypeError(f"tokenize must be a callable str -> list[int], got {type(tokenize).__name__}")
        if not isinstance(template, PromptTemplate) or not isinstance(verbalizer, Verbalizer):
            raise TypeError("template must be a PromptTemplate and verbalizer a Verbalizer")
        self.model, self.tokenize, self.template, self.verbalizer = model, tokenize, template, verbalizer
        self.bos = list(bos)
        self.answers = [w for words in verbalizer.answers for w in words]

    def forward(self, texts: Sequence[str]) -> Tensor:
        texts = _check_texts(texts)
        before_after = [self.template.fill(t).split(ANSWER_SLOT) for t in texts]
        contexts = [self.bos + list(self.tokenize(before)) for before, _ in before_after]
        columns = []
        for answer in self.answers:
            continuations = [list(self.tokenize(answer + after)) for _, after in before_after]
            columns.append(
                causal_lm_continuation_log_probs(
                    self.model, contexts, continuations, self.verbalizer.reduction
                )
            )
        return self.verbalizer.label_scores(torch.stack(columns, dim=1))


# ---------------------------------------------------------------------------- promptless baseline
class SequenceClassifier(nn.Module):
    """Promptless fine-tuning (Section 7.2.1): a linear head on the encoder's pooled ``[CLS]`` vector
    (BERT's classification head) over ``[CLS] x [SEP]``."""

    def __init__(
        self,
        encoder: AlbertEncoder,
        tokenize: Tokenize,
        num_labels: int,
        *,
        cls_id: int,
        sep_id: int,
        pad_id: int = 0,
        max_length: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, AlbertEncoder) or encoder.pooler is None:
            raise TypeError("encoder must be an AlbertEncoder with its pooler")
        check_int("num_labels", num_labels, 2)
        check_int("max_length", max_length, 3)
        self.encoder, self.tokenize = encoder, tokenize
        self.cls_id, self.sep_id, self.pad_id, self.max_length = cls_id, sep_id, pad_id, max_length
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.cfg.hidden_size, num_labels)
        nn.init.normal_(self.head.weight, std=encoder.cfg.initializer_range)
        nn.init.zeros_(self.head.bias)

    def forward(self, texts: Sequence[str]) -> Tensor:
        texts = _check_texts(texts)
        rows = [[self.cls_id, *list(self.tokenize(t))[: self.max_length - 2], self.sep_id] for t in texts]
        ids, mask = _pad(rows, self.pad_id)
        device = self.head.weight.device
        _, pooled = self.encoder(ids.to(device), attention_mask=mask.to(device))
        return self.head(self.dropout(pooled))


# ------------------------------------------------------------------------------ tuning strategies
def trainable_parameters(classifier: nn.Module, strategy: str) -> list[nn.Parameter]:
    """The parameters a tuning strategy trains (Section 7.2, Table 6; module docstring).

    ``promptless`` (a :class:`SequenceClassifier`): all. ``tuning_free``: none. ``fixed_lm_prompt``:
    the soft prompt only. ``fixed_prompt_lm``: the LM only (the discrete prompt is fixed; a soft
    prompt, if any, stays frozen). ``prompt_lm``: the LM and the soft prompt. The LM's sentence-order
    head, which prompting never reads, is left out.
    """
    check_choice("strategy", strategy, STRATEGIES)
    if strategy == "promptless":
        if not isinstance(classifier, SequenceClassifier):
            raise TypeError(
                f"strategy 'promptless' needs a SequenceClassifier, got {type(classifier).__name__}"
            )
        return list(classifier.parameters())
    if not isinstance(classifier, MaskedLMPromptClassifier):
        raise TypeError(
            f"strategy {strategy!r} needs a MaskedLMPromptClassifier, got {type(classifier).__name__}"
        )
    soft = list(classifier.soft_prompt.parameters()) if classifier.soft_prompt is not None else []
    if strategy in ("fixed_lm_prompt", "prompt_lm") and not soft:
        raise ValueError(f"strategy {strategy!r} needs a soft prompt (soft_prompt_length > 0)")
    lm = [p for n, p in classifier.model.named_parameters() if not n.startswith(("sop_", "albert.pooler"))]
    return {"tuning_free": [], "fixed_lm_prompt": soft, "fixed_prompt_lm": lm, "prompt_lm": lm + soft}[
        strategy
    ]


def fit_classifier(
    classifier: nn.Module,
    texts: Sequence[str],
    labels: Tensor,
    parameters: Sequence[nn.Parameter],
    *,
    steps: int,
    lr: float,
    batch_size: int = 16,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train ``parameters`` (the rest frozen) with cross-entropy of ``classifier(texts)`` (label
    scores) against ``labels`` by AdamW with a linear decay; returns the losses. Dropout is on."""
    texts = _check_texts(texts)
    if not isinstance(labels, Tensor) or labels.shape != (len(texts),):
        raise ValueError(f"labels must be a [{len(texts)}] tensor, got {getattr(labels, 'shape', labels)}")
    check_int("steps", steps, 0)
    check_int("batch_size", batch_size)
    parameters = list(parameters)
    if steps == 0 or not parameters:
        return []
    chosen = {id(p) for p in parameters}
    saved = {p: p.requires_grad for p in classifier.parameters()}
    for p in classifier.parameters():
        p.requires_grad_(id(p) in chosen)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / steps)
    device = parameters[0].device
    losses: list[float] = []
    classifier.train()
    try:
        for _ in range(steps):
            index = torch.randperm(len(texts), generator=generator)[:batch_size]
            scores = classifier([texts[i] for i in index.tolist()])
            loss = F.cross_entropy(scores, labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    finally:
        for p, flag in saved.items():
            p.requires_grad_(flag)
        classifier.eval()
    return losses


@torch.no_grad()
def predict(classifier: nn.Module, texts: Sequence[str], batch_size: int = 256) -> Tensor:
    """Predicted labels ``[N]`` (argmax of the label scores), in eval mode, in batches."""
    texts = _check_texts(texts)
    check_int("batch_size", batch_size)
    was_training = classifier.training
    classifier.eval()
    out = [classifier(texts[i : i + batch_size]).argmax(-1).cpu() for i in range(0, len(texts), batch_size)]
    classifier.train(was_training)
    return torch.cat(out)
