"""Released Llama 2 / Llama 3 sizes: built on the meta device, parameter counts equal the checkpoints'."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.language.configs import (
    CONFIGS,
    LLAMA2_70B,
    LLAMA3_8B,
    LLAMA31_405B,
    PARAMETER_COUNTS,
    get_config,
)
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("llama3")


def _count_formula(cfg: LlamaConfig) -> int:
    """Embeddings, per block 4 attention and 3 MLP matrices and 2 norms, final norm, untied head."""
    h, kv = cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim
    block = 2 * h * h + 2 * h * kv + 3 * h * cfg.intermediate_size + 2 * h
    head = 0 if cfg.tie_embeddings else cfg.vocab_size * h
    return cfg.vocab_size * h + cfg.num_layers * block + h + head


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parameter_count_on_meta_device_equals_the_release(name):
    with torch.device("meta"):
        model = Llama(CONFIGS[name])
    assert model.num_parameters() == PARAMETER_COUNTS[name] == _count_formula(CONFIGS[name])
    assert next(model.parameters()).device.type == "meta"


def test_headline_sizes_and_table3_shapes():
    billions = {k: round(v / 1e9, 2) for k, v in PARAMETER_COUNTS.items()}
    assert billions["llama2-7b"] == 6.74 and billions["llama3-8b"] == 8.03
    assert billions["llama3-70b"] == 70.55 and billions["llama3.1-405b"] == 405.85
    # Llama 3 Table 3: layers, model dim, FFN dim, heads, KV heads, vocabulary, RoPE base.
    assert (LLAMA3_8B.num_layers, LLAMA3_8B.hidden_size, LLAMA3_8B.intermediate_size) == (32, 4096, 14336)
    assert (LLAMA31_405B.num_layers, LLAMA31_405B.hidden_size, LLAMA31_405B.intermediate_size) == (
        126,
        16384,
        53248,
    )
    assert (
        LLAMA31_405B.num_heads == 128 and LLAMA31_405B.num_kv_heads == 8 and LLAMA31_405B.vocab_size == 128256
    )
    assert LLAMA3_8B.rope_theta == 500000.0 and LLAMA31_405B.rope_scaling["factor"] == 8.0
    # Llama 2 Table 1: GQA only in the 70B release; context 4k.
    assert LLAMA2_70B.num_kv_heads == 8 and CONFIGS["llama2-13b"].num_kv_heads == 40
    assert all(c.max_seq_len == 4096 for k, c in CONFIGS.items() if k.startswith("llama2"))


@settings(max_examples=30, deadline=None)
@given(
    hidden_heads=st.sampled_from([(8, 2), (16, 4), (24, 4), (32, 8)]),
    kv_divisor=st.sampled_from([1, 2]),
    layers=st.integers(1, 3),
    ffn=st.integers(1, 40),
    vocab=st.integers(2, 50),
    tie=st.booleans(),
)
def test_parameter_count_formula_holds_for_any_config(hidden_heads, kv_divisor, layers, ffn, vocab, tie):
    hidden, heads = hidden_heads
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=heads // kv_divisor,
        tie_embeddings=tie,
    )
    with torch.device("meta"):
        assert Llama(cfg).num_parameters() == _count_formula(cfg)


def test_get_config_copies_and_rejects_unknown_names():
    cfg = get_config("llama3.1-8b", num_layers=2)
    assert cfg.num_layers == 2 and CONFIGS["llama3.1-8b"].num_layers == 32
    cfg.rope_scaling["factor"] = 1.0
    assert CONFIGS["llama3.1-8b"].rope_scaling["factor"] == 8.0
    with pytest.raises(ValueError, match=r"name must be one of .* got 'llama4'"):
        get_config("llama4")
    with pytest.raises(ValueError, match="overrides must be LlamaConfig fields"):
        get_config("llama2-7b", layers=3)
