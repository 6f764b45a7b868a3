"""RMSNorm, SwiGLU, the KV cache and sampling: golden values and parity with transformers' Llama."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.nn.kv_cache import KVCache
from aicanon.nn.mlp import SwiGLU
from aicanon.nn.norm import RMSNorm
from aicanon.nn.sampling import filter_logits, sample_next

pytestmark = pytest.mark.paper("llama2")


def test_rmsnorm_golden():
    norm = RMSNorm(2, eps=0.0 + 1e-12)
    x = torch.tensor([[3.0, 4.0]])  # rms = sqrt((9 + 16) / 2)
    expected = x / torch.sqrt(torch.tensor(12.5))
    torch.testing.assert_close(norm(x), expected)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.01, 100.0))
def test_rmsnorm_is_scale_invariant(scale):
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    norm = RMSNorm(16, eps=1e-12)
    torch.testing.assert_close(norm(x * scale), norm(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_rmsnorm_and_swiglu_match_transformers_llama():
    from transformers import LlamaConfig as HFConfig
    from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

    cfg = HFConfig(hidden_size=16, intermediate_size=40, num_attention_heads=2, rms_norm_eps=1e-6)
    ref_norm, ref_mlp = LlamaRMSNorm(16, eps=1e-6), LlamaMLP(cfg)
    with torch.no_grad():
        ref_norm.weight.normal_()
    ours_norm, ours_mlp = RMSNorm(16, eps=1e-6), SwiGLU(16, 40)
    ours_norm.load_state_dict(ref_norm.state_dict())
    ours_mlp.load_state_dict(ref_mlp.state_dict())
    x = torch.randn(2, 5, 16, requires_grad=True)
    for ours, ref in ((ours_norm, ref_norm), (ours_mlp, ref_mlp)):
        a, b = ours(x), ref(x)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        (ga,) = torch.autograd.grad(a.square().sum(), x)
        (gb,) = torch.autograd.grad(b.square().sum(), x)
        torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-5)


def test_rmsnorm_keeps_bf16_and_computes_in_float32():
    x = torch.randn(4, 32).to(torch.bfloat16) * 1000
    out = RMSNorm(32).to(torch.bfloat16)(x)  # a model cast to bf16, as trained
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), RMSNorm(32)(x.float()), atol=2e-2, rtol=2e-2)


def test_kv_cache_grows_and_counts_bytes():
    cache = KVCache(2)
    assert cache.length == 0 and cache.nbytes() == 0
    k = torch.zeros(1, 2, 3, 4)
    k_all, _ = cache.update(0, k, k)
    cache.update(1, k, k)
    k_all, _ = cache.update(0, torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))
    assert k_all.shape == (1, 2, 4, 4) and cache.keys[0].shape[2] == 4
    assert cache.nbytes() == 4 * (2 * 2 * 4 * 4 + 2 * 2 * 3 * 4)
    with pytest.raises(ValueError, match="layer must be in"):
        cache.update(2, k, k)
    with pytest.raises(ValueError, match="num_layers"):
        KVCache(0)


def test_sampling_greedy_top_k_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert sample_next(logits, temperature=0).item() == 0
    kept = filter_logits(logits, top_k=2)
    assert torch.isinf(kept[0, 2:]).all() and torch.isfinite(kept[0, :2]).all()
    # Nucleus 0.7: 0.5 < 0.7 so the crossing token (0.3) stays; 0.15 and 0.05 go.
    kept = filter_logits(logits, top_p=0.7)
    assert torch.isfinite(kept[0, :2]).all() and torch.isinf(kept[0, 2:]).all()
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, 1.0, top_k=2, generator=g) for _ in range(200)])
    assert set(draws.flatten().tolist()) == {0, 1}


@pytest.mark.parity
@settings(max_examples=20, deadline=None)
@given(top_p=st.floats(0.05, 1.0), top_k=st.integers(1, 12), seed=st.integers(0, 1000))
def test_filters_match_transformers_warpers(top_p, top_k, seed):
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(3, 12, generator=torch.Generator().manual_seed(seed))
    ids = torch.zeros(3, 1, dtype=torch.long)
    ref_k = TopKLogitsWarper(top_k)(ids, logits.clone())
    assert torch.equal(torch.isinf(filter_logits(logits, top_k=top_k)), torch.isinf(ref_k))
    ref_p = TopPLogitsWarper(top_p)(ids, logits.clone())
    assert torch.equal(torch.isinf(filter_logits(logits, top_p=top_p)), torch.isinf(ref_p))


def test_sampling_bad_input():
    with pytest.raises(ValueError, match="logits must be a 2-D"):
        sample_next(torch.randn(4))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sample_next(torch.randn(1, 4), temperature=-1)
    with pytest.raises(ValueError, match="top_k must be >= 1 or None, got 0"):
        filter_logits(torch.randn(1, 4), top_k=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        filter_logits(torch.randn(1, 4), top_p=1.5)
    with pytest.raises(ValueError, match="dim must be"):
        RMSNorm(0)
    with pytest.raises(ValueError, match="x must have last dimension 8"):
        RMSNorm(8)(torch.randn(2, 4))
