"""A :class:`~aicanon.language.completion.LanguageModel` over a causal LM in this process.

Any causal LM with the call of :func:`aicanon.language.generation.generate`
(``model(input_ids, attention_mask=..., use_cache=True) -> (logits, cache)``; the Llama family of
``aicanon.language`` and models built on it) and a tokenizer with ``encode(text)`` (a list or tensor
of ids) and ``decode(ids) -> str``.

A call decodes every prompt ``n`` times in one left-padded batch (greedy at temperature 0, sampled
otherwise), cuts each row at the end-of-sequence token and at the first stop sequence, and scores the
generated tokens in one more forward pass for their log-probabilities under the unmodified
distribution (temperature 1), as the OpenAI API reports them. Stop sequences are applied after
decoding (``max_tokens`` tokens are generated per row unless all rows end first); the returned text
and tokens end before the stop sequence.
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
from aicanon.language.completion import Completion, check_completion_request, truncate_at_stop
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
    ) -> list[list[Completion]]:
        prompts, stops = check_completion_request(prompts, max_tokens, temperature, n, stop)
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
            eos_token_id=self.eos_token_id,
            generator=self.generator if temperature > 0 else None,
        )
        new = out[:, input_ids.shape[1] :]
        logprobs = self._score(out, mask, new.shape[1])
        completions = [
            self._completion(new[r].tolist(), logprobs[r].tolist(), stops) for r in range(len(rows))
        ]
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]

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
