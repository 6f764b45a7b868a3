"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p) sampling.

Top-p is Holtzman et al. (2020): keep the smallest set of most likely tokens whose probability
reaches ``p`` (the token that crosses ``p`` is kept, so the set is never empty). Filters apply in the
order temperature, top-k, top-p, as in common practice (and in transformers' default processors).
"""

from __future__ import annotations

import torch
from torch import Tensor

from aicanon.core.checks import check_float, check_int

__all__ = ["filter_logits", "sample_next"]


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set logits outside the top-k and outside the nucleus of mass ``top_p`` to ``-inf`` (last axis)."""
    if top_k is not None:
        check_int("top_k", top_k, allow_none=True)
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        check_float("top_p", top_p, 0, 1, min_inclusive=False)
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the mass *before* it already reaches p: the crossing token stays.
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token id per row of ``logits [B, V]``; ``temperature == 0`` is greedy (argmax)."""
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a 2-D tensor [batch, vocab], got {got}")
    check_float("temperature", temperature, 0)
    if temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
