"""Scaled dot-product attention (Vaswani et al. 2017, Eq. 1) with grouped-query heads and masks.

``softmax(Q K^T / sqrt(d) + M) V`` through ``torch.nn.functional.scaled_dot_product_attention`` (a
fused kernel on GPU). What this wrapper adds is the masking every language model here needs:

* grouped-query attention (Ainslie et al. 2023; Llama 2 70B, Llama 3): ``Hq`` query heads share
  ``Hkv`` key/value heads, ``Hq`` a multiple of ``Hkv``; the key/value heads are repeated to the query
  heads (each consecutive group of ``Hq / Hkv`` query heads reads one key/value head, the layout of
  the released checkpoints);
* causal masking aligned to the *end* of the keys: query ``i`` of ``T`` sees key ``j`` of ``S`` iff
  ``j <= i + S - T``, so decoding with a KV cache (``T = 1``, ``S`` = everything so far) is causal;
* a key padding mask ``[B, S]`` (True = real token) for batched, left-padded generation. A query row
  whose every key is masked (a padding position attending to nothing) would give NaN; such rows are
  let through unmasked instead: their outputs are finite and belong to padding, which callers ignore;
* segment ids ``[B, S]`` for packed sequences (several documents concatenated in one row, as in
  supervised fine-tuning with packing): a query sees only keys of its own segment, so no document
  attends across its boundary and each behaves exactly as if it were run alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_token_ids

__all__ = ["attention", "attention_mask"]


def attention_mask(
    query_len: int,
    key_len: int,
    *,
    causal: bool,
    key_padding_mask: Tensor | None = None,
    segment_ids: Tensor | None = None,
    device=None,
) -> Tensor | None:
    """The boolean mask ``[B or 1, 1, T, S]`` (True = may attend) for ``attention``; None if nothing is masked.

    ``segment_ids [B, S]`` are the keys' segments; the queries are the last ``T`` keys.
    """
    if query_len > key_len:
        raise ValueError(
            f"query_len must be <= key_len (keys include the queries), got {query_len} > {key_len}"
        )
    mask = None
    if causal:
        i = torch.arange(query_len, device=device).unsqueeze(1)
        j = torch.arange(key_len, device=device).unsqueeze(0)
        mask = (j <= i + (key_len - query_len)).view(1, 1, query_len, key_len)
    if segment_ids is not None:
        same = segment_ids[:, None, key_len - query_len :, None] == segment_ids[:, None, None, :]
        mask = same if mask is None else mask & same
    if key_padding_mask is not None or segment_ids is not None:
        if key_padding_mask is not None:
            pad = key_padding_mask.to(torch.bool).view(key_padding_mask.shape[0], 1, 1, key_len)
            mask = pad if mask is None else mask & pad
        # Rows with no visible key (padding queries) would be NaN; open them (see module docstring).
        empty = ~mask.any(-1, keepdim=True)
        mask = mask | empty
    return mask


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool,
    key_padding_mask: Tensor | None = None,
    segment_ids: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> Tensor:
    """Attention of ``q [B, Hq, T, D]`` over ``k, v [B, Hkv, S, D]``; returns ``[B, Hq, T, Dv]``.

    ``causal`` masks future keys (aligned to the end, see the module docstring); ``key_padding_mask``
    ``[B, S]`` is True at real tokens; ``segment_ids [B, S]`` (integers) keep each query to the keys of
    its own segment; ``scale`` defaults to ``1/sqrt(D)``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or t.dim() != 4:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 4-D tensor [batch, heads, length, head_dim], got {got}")
    b, hq, t_len, d = q.shape
    if k.shape[0] != b or v.shape[0] != b or k.shape[3] != d or k.shape[:3] != v.shape[:3]:
        raise ValueError(
            f"k and v must be [batch={b}, kv_heads, length, head_dim={d}] with equal shapes, "
            f"got k {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    hkv, s_len = k.shape[1], k.shape[2]
    if hq % hkv:
        raise ValueError(f"query heads must be a multiple of key/value heads, got {hq} and {hkv}")
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (b, s_len):
        raise ValueError(
            f"key_padding_mask must have shape {(b, s_len)}, got {tuple(key_padding_mask.shape)}"
        )
    if segment_ids is not None:
        check_token_ids("segment_ids", segment_ids, (b, s_len))
    if t_len > s_len:
        raise ValueError(f"q must not be longer than k, got {t_len} queries and {s_len} keys")
    if hkv != hq:
        # Grouped-query attention: query head h reads key/value head h // (hq / hkv).
        k = k.repeat_interleave(hq // hkv, dim=1)
        v = v.repeat_interleave(hq // hkv, dim=1)
    if key_padding_mask is None and segment_ids is None and (not causal or t_len == s_len):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal, scale=scale)
    mask = attention_mask(
        t_len,
        s_len,
        causal=causal,
        key_padding_mask=key_padding_mask,
        segment_ids=segment_ids,
        device=q.device,
    )
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
