"""aicanon.nn.attention: the masked, grouped-query attention every language model here uses."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.nn.attention import attention, attention_mask

pytestmark = pytest.mark.paper("llama2")


def naive(q, k, v, mask=None):
    """Vaswani et al. Eq. 1 written out: softmax(QK^T/sqrt(d) + M) V, heads already matched."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def test_golden_single_key_returns_its_value():
    q = torch.randn(1, 1, 1, 4)
    k = torch.randn(1, 1, 1, 4)
    v = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    assert torch.equal(attention(q, k, v, causal=True), v)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 6), extra=st.integers(0, 5), groups=st.sampled_from([1, 2, 4]), causal=st.booleans())
def test_matches_written_out_attention_with_cache_offset_and_gqa(t, extra, groups, causal):
    g = torch.Generator().manual_seed(t * 100 + extra)
    s, hkv, d = t + extra, 2, 8
    q = torch.randn(2, hkv * groups, t, d, generator=g)
    k = torch.randn(2, hkv, s, d, generator=g)
    v = torch.randn(2, hkv, s, d, generator=g)
    ours = attention(q, k, v, causal=causal)
    # Query head h reads key/value head h // groups (the released checkpoints' layout).
    k_full, v_full = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    mask = None
    if causal:
        mask = torch.tensor([[j <= i + s - t for j in range(s)] for i in range(t)])
    torch.testing.assert_close(ours, naive(q, k_full, v_full, mask), atol=1e-5, rtol=1e-5)


def test_causal_with_cache_equals_full_causal_rows():
    """Decoding the last query against all keys equals the last row of full causal attention."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 7, 8, generator=g) for _ in range(3))
    full = attention(q, k, v, causal=True)
    last = attention(q[:, :, -1:], k, v, causal=True)
    torch.testing.assert_close(last, full[:, :, -1:], atol=1e-6, rtol=1e-6)


def test_padding_mask_hides_keys_and_padded_rows_stay_finite():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 5, 4, generator=g) for _ in range(3))
    pad = torch.tensor([[False, False, True, True, True], [True] * 5])
    out = attention(q, k, v, causal=True, key_padding_mask=pad)
    assert torch.isfinite(out).all()
    # Row 0's real queries (positions 2..4) see only keys 2..4: equal to attention on the unpadded part.
    alone = attention(q[:1, :, 2:], k[:1, :, 2:], v[:1, :, 2:], causal=True)
    torch.testing.assert_close(out[:1, :, 2:], alone, atol=1e-6, rtol=1e-6)
    # Row 1 has no padding: the same as no mask.
    torch.testing.assert_close(out[1:], attention(q[1:], k[1:], v[1:], causal=True), atol=1e-6, rtol=1e-6)


def test_gradients_match_written_out_attention():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(1, 4, 3, 8, generator=g, requires_grad=True)
    k = torch.randn(1, 2, 5, 8, generator=g, requires_grad=True)
    v = torch.randn(1, 2, 5, 8, generator=g, requires_grad=True)
    attention(q, k, v, causal=True).square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    mask = torch.tensor([[j <= i + 2 for j in range(5)] for i in range(3)])
    naive(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), mask).square().sum().backward()
    for ours, ref in zip(grads, (q.grad, k.grad, v.grad), strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_grouped_heads_match_transformers_repeat_kv():
    from transformers.models.llama.modeling_llama import repeat_kv

    k = torch.randn(2, 2, 5, 4)
    assert torch.equal(k.repeat_interleave(3, dim=1), repeat_kv(k, 3))


def test_segments_attend_only_within_their_own_segment():
    # Packing: three documents of lengths 2, 3, 1 in one row behave as if each ran alone.
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 6, 4).unbind(0)
    segments = torch.tensor([[0, 0, 1, 1, 1, 2]])
    out = attention(q, k, v, causal=True, segment_ids=segments)
    for lo, hi in ((0, 2), (2, 5), (5, 6)):
        alone = attention(q[:, :, lo:hi], k[:, :, lo:hi], v[:, :, lo:hi], causal=True)
        torch.testing.assert_close(out[:, :, lo:hi], alone, atol=1e-6, rtol=0)
    mask = attention_mask(6, 6, causal=True, segment_ids=segments)
    torch.testing.assert_close(out, naive(q, k, v, mask), atol=1e-6, rtol=0)
    assert not mask[0, 0, 2, :2].any() and mask[0, 0, 4, 2:5].all()


def test_bad_input():
    q = torch.randn(1, 3, 2, 4)
    k = torch.randn(1, 2, 2, 4)
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        attention(q, k, k, causal=True)
    with pytest.raises(ValueError, match="q must be a 4-D tensor"):
        attention(torch.randn(3, 2, 4), k, k, causal=True)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        attention(
            torch.randn(1, 2, 2, 4), k, k, causal=True, key_padding_mask=torch.ones(1, 3, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match="q must not be longer than k"):
        attention(torch.randn(1, 2, 3, 4), k, k, causal=True)
    with pytest.raises(ValueError, match="head_dim"):
        attention(torch.randn(1, 2, 2, 5), k, k, causal=True)
    with pytest.raises(ValueError, match="query_len must be <= key_len"):
        attention_mask(3, 2, causal=True)
    with pytest.raises(ValueError, match="segment_ids must be an integer tensor of shape"):
        attention(torch.randn(1, 2, 2, 4), k, k, causal=True, segment_ids=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="segment_ids must be an integer tensor of shape"):
        attention(torch.randn(1, 2, 2, 4), k, k, causal=True, segment_ids=torch.zeros(1, 3, dtype=torch.long))
