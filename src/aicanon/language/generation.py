"""Autoregressive decoding with a KV cache, batched over left-padded prompts.

Works with any causal LM here: ``model(input_ids, attention_mask, past_key_values=None,
use_cache=True) -> (logits, cache)`` for the prompt, then one token per step with the cache.
Prompts of different lengths are left-padded (padding first, ``attention_mask`` 0 there) so every
row's next token sits in the last column; the model derives positions from the mask, so a padded row
decodes exactly as it would alone. Rows that emitted ``eos_token_id`` keep emitting ``pad_token_id``
(default: the EOS id) and decoding stops when every row has finished. ``stop_when`` lets a caller end
rows on other conditions (e.g. a stop string in the decoded text): it gets the tokens generated so
far ``[B, k]`` after every step and returns the rows that are done; they are padded from then on,
exactly like rows that emitted EOS.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.nn.sampling import sample_next

__all__ = ["generate", "left_pad"]


def left_pad(sequences: list[list[int]], pad_token_id: int = 0) -> tuple[Tensor, Tensor]:
    """Stack token lists into ``input_ids [B, T]`` and ``attention_mask [B, T]``, padding on the left."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("sequences must be a non-empty list of non-empty token lists")
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, length - len(seq) :] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, length - len(seq) :] = 1
    return ids, mask


@torch.no_grad()
def generate(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    generator: torch.Generator | None = None,
    stop_when: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Return ``[B, T + n]``: the prompts followed by up to ``max_new_tokens`` generated tokens.

    ``temperature=0`` is greedy decoding; otherwise tokens are sampled after temperature, top-k and
    top-p filtering (:func:`aicanon.nn.sampling.sample_next`), from ``generator`` when given.
    """
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.shape[1] == 0:
        got = tuple(input_ids.shape) if isinstance(input_ids, Tensor) else type(input_ids).__name__
        raise ValueError(f"input_ids must be a non-empty 2-D tensor [batch, length], got {got}")
    check_int("max_new_tokens", max_new_tokens, 0)
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}"
        )
    if pad_token_id is None:
        pad_token_id = eos_token_id if eos_token_id is not None else 0
    was_training = model.training
    model.eval()
    try:
        out = [input_ids]
        if max_new_tokens == 0:
            return input_ids
        logits, cache = model(input_ids, attention_mask=attention_mask, use_cache=True)
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for step in range(max_new_tokens):
            token = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
            token = token.masked_fill(finished, pad_token_id)
            out.append(token.unsqueeze(1))
            if eos_token_id is not None:
                finished |= token == eos_token_id
            if stop_when is not None:
                done = stop_when(torch.cat(out[1:], dim=1))
                if not isinstance(done, Tensor) or done.shape != finished.shape or done.dtype != torch.bool:
                    raise ValueError(
                        f"stop_when must return a bool tensor of shape {tuple(finished.shape)}, got "
                        f"{done.dtype if isinstance(done, Tensor) else type(done).__name__}"
                    )
                finished |= done.to(finished.device)
            if (eos_token_id is not None or stop_when is not None) and bool(finished.all()):
                break
            if step + 1 < max_new_tokens:
                logits, cache = model(token.unsqueeze(1), past_key_values=cache)
        return torch.cat(out, dim=1)
    finally:
        model.train(was_training)
