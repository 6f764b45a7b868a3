"""A :class:`~aicanon.language.completion.LanguageModel` over a ``transformers`` causal LM.

For users who hold a model in the Hugging Face format (any ``AutoModelForCausalLM``): it is run by
:class:`~aicanon.language.local_backend.LocalLanguageModel` through :class:`TransformersCausalLM`, an
adapter to the call our decoding loop makes. transformers is imported only when this backend is used
(it is not a dependency of the package).

The adapter keeps the attention mask across decoding steps and passes position ids derived from it
(``cumsum(mask) - 1``, as transformers' own ``generate`` does), so left-padded prompts decode
exactly as they would alone. Scoring given continuations (``loglikelihood``, ``prompt_logprobs``)
comes from the local backend unchanged: its right-padded rows need no mask, and the adapter's
positions (``0 … T-1`` from the all-ones mask) are transformers' own.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.language.local_backend import LocalLanguageModel

__all__ = ["TransformersCausalLM", "TransformersTokenizer", "load_transformers_language_model"]


class _Cache:
    """transformers' cache object plus the attention mask of everything it holds."""

    def __init__(self, past: Any, mask: Tensor) -> None:
        self.past, self.mask = past, mask


class TransformersCausalLM(nn.Module):
    """``model(input_ids, attention_mask=None, past_key_values=None, use_cache=False)`` over a
    transformers causal LM: ``(logits, cache)`` with ``use_cache`` or a cache given, else logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a transformers causal LM (an nn.Module), got {type(model).__name__}"
            )
        self.model = model
        self.config = getattr(model, "config", None)
        # transformers 5.x names the cache argument and output `cache`; earlier versions `past_key_values`.
        self._cache_name = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        past_key_values: _Cache | None = None,
        use_cache: bool = False,
    ) -> Tensor | tuple[Tensor, _Cache]:
        step_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.long()
        if past_key_values is not None:
            mask = torch.cat([past_key_values.mask, step_mask], dim=1)
            past = past_key_values.past
        else:
            mask, past = step_mask, None
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        keep = use_cache or past is not None
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=keep,
            **{self._cache_name: past},
        )
        if not keep:
            return out.logits
        return out.logits, _Cache(getattr(out, self._cache_name), mask)


class TransformersTokenizer:
    """A transformers tokenizer with plain ``encode``/``decode`` (no special tokens added or skipped)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def load_transformers_language_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> LocalLanguageModel:
    """A backend over ``AutoModelForCausalLM.from_pretrained(name_or_path)`` and its tokenizer (local
    files only: nothing is downloaded). BOS is added before prompts when the tokenizer would add it;
    EOS ends a completion."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise ImportError("the transformers backend needs `pip install transformers`") from error
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=True, dtype=dtype)
    adds_bos = bool(getattr(tokenizer, "add_bos_token", False))
    return LocalLanguageModel(
        TransformersCausalLM(model),
        TransformersTokenizer(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id if adds_bos else None,
        max_context=getattr(model.config, "max_position_embeddings", None),
        device=device,
        seed=seed,
    )
