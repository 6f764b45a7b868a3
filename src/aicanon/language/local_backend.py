"""A :class:`~aicanon.language.completion.LanguageModel` over a causal LM in this process.

Any causal LM with the call of :func:`aicanon.language.generation.generate`
(``model(input_ids, attention_mask=..., use_cache=True) -> (logits, cache)``; the Llama family of
``aicanon.language`` and models built on it) and a tokenizer with ``encode(text)`` (a list or tensor
of ids) and ``decode(ids) -> str``.

A call decodes every prompt ``n`` times in one left-padded batch (greedy at temperature 0, sampled
otherwise, among the ``top_k`` most likely tokens when given), cuts each row at the end-of-sequence
token and at the first stop sequence, and scores the generated tokens in one more forward pass for
their log-probabilities under the unmodified distribution (temperature 1), as the OpenAI API reports
them. Stop sequences are applied after decoding (``max_tokens`` tokens are generated per row unless
all rows end first); the returned text and tokens end before the stop sequence.

``loglikelihood(contexts, continuations)`` (the :class:`~aicanon.language.completion.ScoringLanguageModel`
protocol) scores given continuations in one batched forward pass. Tokenisation as
lm-evaluation-harness does it: the context's trailing whitespace moves to the continuation; the
continuation's tokens are ``encode(context + continuation)[len(encode(context)):]`` (BOS, when the
backend has one, before both); a sequence longer than ``max_context`` + 1 tokens keeps its last
``max_context`` + 1 (the harness's left truncation: the start of the context is dropped). Requests whose
model inputs are identical (a multiple-choice question's one-token answers " A" … " D" after the same
prompt) share one row of the batch. Rows are right-padded: in a causal model padding after a sequence
never reaches it, so no attention mask is needed and positions start at 0 as when run alone.
``prompt_logprobs(prompts, top)`` scores prompts' own tokens (the server's ``echo``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.language.completion import (
    Completion,
    Loglikelihood,
    PromptLogprobs,
    check_completion_request,
    check_loglikelihood_request,
    split_trailing_whitespace,
    truncate_at_stop,
)
from aicanon.language.generation import generate, left_pad

__all__ = ["LocalLanguageModel", "TokenizersAdapter", "load_local_language_model"]


class LocalLanguageModel:
    """Complete prompts with ``model`` and ``tokenizer`` (see the module docstring).

    ``eos_token_id`` ends a completion (finish reason ``"stop"``); ``bos_token_id`` is put before
    every prompt; ``max_context`` (default ``model.config.max_seq_len`` when the model has one)
    bounds prompt + completion, and a longer request is refused. ``seed`` seeds the sampler, so a
    fresh backend with the same seed repeats its samples.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        eos_token_id: int | None = None,
        bos_token_id: int | None = None,
        max_context: int | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for method in ("encode", "decode"):
            if not callable(getattr(tokenizer, method, None)):
                raise TypeError(f"tokenizer must have an {method}() method, got {type(tokenizer).__name__}")
        check_int("eos_token_id", eos_token_id, 0, allow_none=True)
        check_int("bos_token_id", bos_token_id, 0, allow_none=True)
        if max_context is None:
            max_context = getattr(getattr(model, "config", None), "max_seq_len", None)
        check_int("max_context", max_context, 1, allow_none=True)
        check_int("seed", seed, 0)
        self.model, self.tokenizer = model.to(device).eval(), tokenizer
        self.eos_token_id, self.bos_token_id, self.max_context = eos_token_id, bos_token_id, max_context
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def _encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return ([self.bos_token_id] if self.bos_token_id is not None else []) + ids

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def complete(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        n: int = 1,
        stop: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> list[list[Completion]]:
        prompts, stops = check_completion_request(prompts, max_tokens, temperature, n, stop, top_k)
        encoded = [self._encode(p) for p in prompts]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(
                    f"prompts[{i}] encodes to no tokens (give a bos_token_id or a non-empty prompt)"
                )
            if self.max_context is not None and len(ids) + max_tokens > self.max_context:
                raise ValueError(
                    f"prompts[{i}] has {len(ids)} tokens; with max_tokens={max_tokens} that exceeds the "
                    f"model's context of {self.max_context}"
                )
        rows = [ids for ids in encoded for _ in range(n)]
        input_ids, mask = left_pad(rows, pad_token_id=0)
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        out = generate(
            self.model,
            input_ids,
            mask,
            max_new_tokens=max_tokens,
            temperature=float(temperature),
            top_k=top_k if temperature > 0 else None,
            eos_token_id=self.eos_token_id,
            generator=self.generator if temperature > 0 else None,
            stop_when=self._stop_check(stops, len(rows)) if stops else None,
        )
        new = out[:, input_ids.shape[1] :]
        logprobs = self._score(out, mask, new.shape[1])
        completions = [
            self._completion(new[r].tolist(), logprobs[r].tolist(), stops) for r in range(len(rows))
        ]
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _stop_check(self, stops: list[str], rows: int):
        """``generate``'s ``stop_when``: rows whose decoded text so far holds a stop string end early
        (what follows a stop string is cut from the completion anyway; this saves decoding it)."""
        done = torch.zeros(rows, dtype=torch.bool)

        def stop_when(new: Tensor) -> Tensor:
            for r, ids in enumerate(new.tolist()):
                if done[r]:
                    continue
                if self.eos_token_id is not None and self.eos_token_id in ids:
                    ids = ids[: ids.index(self.eos_token_id)]
                text = self._decode(ids)
                done[r] = any(s in text for s in stops)
            return done.clone()

        return stop_when

    @torch.no_grad()
    def _score(self, sequences: Tensor, prompt_mask: Tensor, generated: int) -> Tensor:
        """Log-probabilities ``[rows, generated]`` of the generated tokens at temperature 1."""
        if generated == 0:
            return torch.zeros(sequences.shape[0], 0)
        ones = torch.ones(sequences.shape[0], generated, dtype=prompt_mask.dtype, device=sequences.device)
        out = self.model(sequences, attention_mask=torch.cat([prompt_mask, ones], dim=1), use_cache=False)
        logits = out[0] if isinstance(out, tuple) else out  # models return (logits, cache) or logits
        start = sequences.shape[1] - generated
        predicted = logits[:, start - 1 : -1].float().log_softmax(-1)
        return predicted.gather(-1, sequences[:, start:].unsqueeze(-1)).squeeze(-1).cpu()

    def _completion(self, ids: list[int], logprobs: list[float], stops: list[str]) -> Completion:
        finish = "length"
        if self.eos_token_id is not None and self.eos_token_id in ids:
            cut = ids.index(self.eos_token_id)
            ids, logprobs, finish = ids[:cut], logprobs[:cut], "stop"
        # Each token's text piece: the growth of the decoded prefix (so multi-token characters and
        # tokenizers that merge across tokens still concatenate to the decoded text).
        pieces, previous = [], ""
        for k in range(len(ids)):
            text = self._decode(ids[: k + 1])
            pieces.append(text[len(previous) :] if text.startswith(previous) else text)
            previous = text
        text = "".join(pieces)
        kept, hit = truncate_at_stop(text, stops)
        if hit:
            finish = "stop"
            tokens, token_logprobs, length = [], [], 0
            for piece, logprob in zip(pieces, logprobs, strict=True):
                if length >= len(kept):
                    break
                tokens.append(piece[: len(kept) - length])
                token_logprobs.append(logprob)
                length += len(piece)
            pieces, logprobs, text = tokens, token_logprobs, kept
        return Completion(text, finish, tuple(pieces), tuple(float(x) for x in logprobs))

    # -- scoring given text (ScoringLanguageModel and the server's echo) ------------------------------

    @torch.no_grad()
    def _forward_rows(self, rows: list[list[int]]) -> Tensor:
        """Logits ``[rows, longest, vocab]`` of right-padded rows in one forward pass (module docstring)."""
        longest = max(len(row) for row in rows)
        batch = torch.zeros(len(rows), longest, dtype=torch.long)
        for r, row in enumerate(rows):
            batch[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        out = self.model(batch.to(self.device), use_cache=False)
        return out[0] if isinstance(out, tuple) else out  # models return (logits, cache) or logits

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[Loglikelihood]:
        """log P(continuation | context) and whether it is the greedy continuation, per request (module
        docstring: tokenisation, truncation, shared rows). One forward pass per call: chunk long request
        lists (an MMLU subject) into calls of a size that fits memory."""
        contexts, continuations = check_loglikelihood_request(contexts, continuations)
        row_of: dict[tuple[int, ...], int] = {}
        requests: list[tuple[int, list[int]]] = []
        for i, pair in enumerate(zip(contexts, continuations, strict=True)):
            context, continuation = split_trailing_whitespace(*pair)
            context_ids = self._encode(context)
            whole = self._encode(context + continuation)
            targets = whole[len(context_ids) :]
            if not context_ids:
                raise ValueError(
                    f"contexts[{i}] encodes to no tokens and the backend has no bos_token_id: the first "
                    "continuation token has nothing to be predicted from"
                )
            if not targets:
                raise ValueError(f"continuations[{i}] encodes to no tokens after its context")
            if self.max_context is not None and len(whole) > self.max_context + 1:
                if len(targets) > self.max_context:
                    raise ValueError(
                        f"continuations[{i}] has {len(targets)} tokens, more than the model's context of "
                        f"{self.max_context}"
                    )
                whole = whole[-(self.max_context + 1) :]
            inputs = tuple(whole[:-1])
            requests.append((row_of.setdefault(inputs, len(row_of)), targets))
        logits = self._forward_rows([list(inputs) for inputs in row_of])
        lengths = {row: len(inputs) for inputs, row in row_of.items()}
        results = []
        for row, targets in requests:
            end = lengths[row]
            predicted = logits[row, end - len(targets) : end].float().log_softmax(-1)
            target = torch.tensor(targets, device=predicted.device)
            logprob = predicted.gather(-1, target.unsqueeze(-1)).sum()
            greedy = bool((predicted.argmax(-1) == target).all())
            results.append(Loglikelihood(float(logprob), greedy))
        return results

    def prompt_logprobs(self, prompts: Sequence[str], top: int = 1) -> list[PromptLogprobs]:
        """Every prompt token's log-probability given the tokens before it, and the ``top`` most likely
        tokens at each position, in one forward pass (the ``echo`` of ``/v1/completions``). The first
        token has a log-probability only when the backend puts BOS before prompts."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise TypeError(
                f"prompts must be a list of str (one prompt: [prompt]), got {type(prompts).__name__}"
            )
        prompts = list(prompts)
        if not prompts or not all(isinstance(p, str) and p for p in prompts):
            raise ValueError("prompts must be a non-empty list of non-empty str")
        check_int("top", top, 0)
        offset = 0 if self.bos_token_id is None else 1
        rows = [self._encode(p) for p in prompts]
        for i, row in enumerate(rows):
            if len(row) == offset:
                raise ValueError(f"prompts[{i}] encodes to no tokens")
            if self.max_context is not None and len(row) > self.max_context:
                raise ValueError(
                    f"prompts[{i}] has {len(row)} tokens, more than the model's context of {self.max_context}"
                )
        logits = self._forward_rows(rows)
        results = []
        for r, row in enumerate(rows):
            ids = row[offset:]
            scores = logits[r, : len(row) - 1].float().log_softmax(-1)  # position t predicts token t + 1
            chosen = scores.gather(-1, torch.tensor(row[1:], device=scores.device).unsqueeze(-1)).squeeze(-1)
            best = scores.topk(min(top, scores.shape[-1]), dim=-1) if top else None
            logprobs: list[float | None] = [None] * (1 - offset)
            tops: list[dict[str, float] | None] = [None] * (1 - offset)
            for t in range(len(row) - 1):
                logprobs.append(float(chosen[t]))
                alternatives = {}
                if best is not None:
                    for value, index in zip(best.values[t].tolist(), best.indices[t].tolist(), strict=True):
                        alternatives.setdefault(self._decode([index]), value)
                tops.append(alternatives)
            pieces, previous = [], ""
            for k in range(len(ids)):
                text = self._decode(ids[: k + 1])
                pieces.append(text[len(previous) :] if text.startswith(previous) else text)
                previous = text
            results.append(PromptLogprobs(tuple(pieces), tuple(logprobs), tuple(tops)))
        return results


class TokenizersAdapter:
    """A ``tokenizers.Tokenizer`` (a ``tokenizer.json``) with the ``encode``/``decode`` used here:
    no special tokens added on encoding (the backend adds BOS itself), none skipped on decoding."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TokenizersAdapter:
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # tokenizers raises its own Exception type on a bad file
            raise ValueError(f"{path} is not a readable tokenizers tokenizer.json: {error}") from error

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def load_local_language_model(
    folder: str | os.PathLike, *, device: str | torch.device = "cpu", seed: int = 0
) -> LocalLanguageModel:
    """A :class:`LocalLanguageModel` from a transformers-format Llama folder: ``config.json`` and
    safetensors weights (:func:`aicanon.language.llama_weights.load_pretrained`), ``tokenizer.json``
    (the ``tokenizers`` format), and the BOS/EOS ids from ``generation_config.json`` or
    ``config.json`` when present (a list of EOS ids: the first is used)."""
    from aicanon.language.llama_weights import load_pretrained

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist or is not a folder")
    tokenizer_file = folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(
            f"{str(tokenizer_file)!r} is missing: the folder needs a tokenizers tokenizer.json"
        )
    ids: dict[str, Any] = {}
    for name in ("config.json", "generation_config.json"):
        if (folder / name).is_file():
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            ids.update({k: data[k] for k in ("bos_token_id", "eos_token_id") if data.get(k) is not None})
    eos = ids.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) and eos else eos
    model = load_pretrained(folder)
    return LocalLanguageModel(
        model,
        TokenizersAdapter.from_file(tokenizer_file),
        eos_token_id=eos,
        bos_token_id=ids.get("bos_token_id"),
        device=device,
        seed=seed,
    )
