"""Llama weights: transformers' LlamaForCausalLM and Meta's consolidated layout against our Llama.

Parity (tiny random configs, float32): logits and gradients equal to transformers' (atol 1e-5);
greedy generation token-identical, with a KV cache and with left padding; Meta's layout computed
the Meta way (complex RoPE on adjacent pairs, written out here from Meta's model.py) gives our
logits after conversion; round trips; safetensors; clear errors on bad checkpoints.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.llama_weights import (
    config_from_meta_params,
    config_from_transformers,
    expected_keys,
    from_meta,
    from_transformers,
    load_safetensors,
    merge_meta_shards,
    save_safetensors,
    split_meta_shards,
    to_meta,
    to_transformers,
)

pytestmark = pytest.mark.paper("llama2")

transformers = pytest.importorskip("transformers")

TINY = dict(vocab_size=97, hidden_size=32, intermediate_size=56, num_layers=2, num_heads=4, max_seq_len=64)


def _reference(cfg: LlamaConfig, seed: int = 0):
    """A random transformers LlamaForCausalLM of ``cfg``'s sizes (eager attention, float32)."""
    rope = {"rope_theta": cfg.rope_theta, "rope_type": "default"}
    if cfg.rope_scaling is not None:
        rope = {"rope_theta": cfg.rope_theta, **cfg.rope_scaling}
    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_seq_len,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters=rope,
        tie_word_embeddings=cfg.tie_embeddings,
        attn_implementation="eager",
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    reference = transformers.LlamaForCausalLM(hf_cfg).eval()
    with torch.no_grad():  # norm gains away from 1, so a swapped norm would show
        for name, p in reference.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return reference


def _pair(**overrides):
    cfg = LlamaConfig(**{**TINY, **overrides})
    reference = _reference(cfg)
    ours = Llama(cfg).eval()
    load_state_dict_strict(ours, from_transformers(reference.state_dict(), cfg))
    return ours, reference


CONFIGS = {
    "mha": dict(),
    "gqa": dict(num_kv_heads=2),
    "mqa-llama3-base": dict(num_kv_heads=1, rope_theta=500000.0),
    "llama31-scaling": dict(
        num_kv_heads=2,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    ),
    "tied": dict(num_kv_heads=2, tie_embeddings=True),
}


@pytest.mark.parity
@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_and_gradients_equal_transformers(name):
    ours, reference = _pair(**CONFIGS[name])
    ids = torch.randint(0, TINY["vocab_size"], (3, 40), generator=torch.Generator().manual_seed(1))
    targets = ids.roll(-1, dims=1)
    logits = ours(ids)
    expected = reference(ids).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    F.cross_entropy(expected.flatten(0, 1), targets.flatten()).backward()
    theirs = {k.removeprefix("model."): p.grad for k, p in reference.named_parameters()}
    for key, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs[key], atol=1e-5, rtol=1e-4, msg=f"gradient of {key}")


@pytest.mark.parity
def test_logits_equal_transformers_with_left_padding():
    ours, reference = _pair(num_kv_heads=2)
    ids = torch.randint(3, TINY["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :5] = 0
    ids[1, :5] = 0
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    expected = reference(ids, attention_mask=mask, position_ids=position_ids).logits
    got = ours(ids, attention_mask=mask)
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("name", ["mha", "gqa"])
def test_greedy_generation_is_token_identical(name):
    ours, reference = _pair(**CONFIGS[name])
    ids = torch.randint(3, TINY["vocab_size"], (1, 7), generator=torch.Generator().manual_seed(3))
    expected = reference.generate(ids, max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert torch.equal(ours.generate(ids, max_new_tokens=20), expected)


@pytest.mark.parity
def test_batched_left_padded_greedy_generation_is_token_identical():
    from aicanon.language.generation import left_pad

    ours, reference = _pair(num_kv_heads=2)
    prompts = [[5, 9, 11, 40, 7, 3, 88], [17, 23], [60, 61, 62, 63]]
    ids, mask = left_pad(prompts, pad_token_id=0)
    expected = reference.generate(
        ids, attention_mask=mask, max_new_tokens=15, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    got = ours.generate(ids, mask, max_new_tokens=15)
    assert torch.equal(got, expected)
    # And each row as it would decode alone (no padding).
    for row, prompt in enumerate(prompts):
        alone = ours.generate(torch.tensor([prompt]), max_new_tokens=15)
        assert got[row, -15:].tolist() == alone[0, -15:].tolist()


@pytest.mark.parity
def test_round_trip_with_transformers_keys_loads_into_transformers():
    ours, reference = _pair(num_kv_heads=2)
    keys = to_transformers(ours.state_dict())
    assert set(keys) == set(reference.state_dict())
    reference.load_state_dict(keys, strict=True)
    assert from_transformers(keys).keys() == ours.state_dict().keys()


def test_config_from_transformers():
    reference = _reference(LlamaConfig(**{**TINY, "num_kv_heads": 2, "rope_theta": 500000.0}))
    cfg = config_from_transformers(reference.config)
    assert (cfg.num_kv_heads, cfg.rope_theta, cfg.hidden_size, cfg.num_layers) == (2, 500000.0, 32, 2)
    assert cfg.rope_scaling is None


# ---------------------------------------------------------------- Meta's layout


def _meta_forward(sd: dict, cfg: LlamaConfig, ids: torch.Tensor) -> torch.Tensor:
    """Meta's model.py forward written out: complex RoPE on adjacent pairs (precompute_freqs_cis,
    apply_rotary_emb), repeat_kv for GQA, RMSNorm, SwiGLU w2(silu(w1 x) * w3 x)."""

    def rms(x, w):
        return w * (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + cfg.norm_eps))

    b, t = ids.shape
    d = cfg.head_dim
    freqs = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2).float() / d))
    freqs_cis = torch.polar(torch.ones(t, d // 2), torch.outer(torch.arange(t).float(), freqs))
    mask = torch.full((t, t), float("-inf")).triu(1)
    h = sd["tok_embeddings.weight"][ids]
    for i in range(cfg.num_layers):
        p = f"layers.{i}."
        x = rms(h, sd[p + "attention_norm.weight"])
        q = (x @ sd[p + "attention.wq.weight"].T).view(b, t, cfg.num_heads, d)
        k = (x @ sd[p + "attention.wk.weight"].T).view(b, t, cfg.num_kv_heads, d)
        v = (x @ sd[p + "attention.wv.weight"].T).view(b, t, cfg.num_kv_heads, d)
        rot = freqs_cis.view(1, t, 1, d // 2)
        q = torch.view_as_real(torch.view_as_complex(q.float().reshape(b, t, -1, d // 2, 2)) * rot).flatten(3)
        k = torch.view_as_real(torch.view_as_complex(k.float().reshape(b, t, -1, d // 2, 2)) * rot).flatten(3)
        rep = cfg.num_heads // cfg.num_kv_heads
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        scores = torch.softmax(q @ k.transpose(2, 3) / d**0.5 + mask, dim=-1)
        out = (scores @ v).transpose(1, 2).reshape(b, t, -1)
        h = h + out @ sd[p + "attention.wo.weight"].T
        x = rms(h, sd[p + "ffn_norm.weight"])
        gate = F.silu(x @ sd[p + "feed_forward.w1.weight"].T)
        h = h + (gate * (x @ sd[p + "feed_forward.w3.weight"].T)) @ sd[p + "feed_forward.w2.weight"].T
    return rms(h, sd["norm.weight"]) @ sd["output.weight"].T


@pytest.mark.parity
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_meta_layout_with_interleaved_rope_gives_our_logits_after_conversion(kv_heads):
    cfg = LlamaConfig(**{**TINY, "num_kv_heads": kv_heads})
    torch.manual_seed(4)
    meta = {k: torch.randn_like(v) * 0.2 for k, v in to_meta(Llama(cfg).state_dict(), cfg).items()}
    meta = {k: (v.abs() + 0.5 if "norm" in k else v) for k, v in meta.items()}
    ids = torch.randint(0, cfg.vocab_size, (2, 24), generator=torch.Generator().manual_seed(5))
    expected = _meta_forward(meta, cfg, ids)
    ours = Llama(cfg).eval()
    load_state_dict_strict(ours, from_meta(meta, cfg))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), expected, atol=1e-5, rtol=1e-5)
    # Without the q/k permutation the logits differ: the permutation is what makes them equal.
    unpermuted = {ours_key: meta[meta_key] for meta_key, ours_key in zip(meta, from_meta(meta, cfg))}
    assert set(unpermuted) == set(ours.state_dict())
    wrong = Llama(cfg).eval()
    wrong.load_state_dict(unpermuted)
    with torch.no_grad():
        assert (wrong(ids) - expected).abs().max() > 1e-2


def test_meta_round_trip_is_identical():
    cfg = LlamaConfig(**{**TINY, "num_kv_heads": 2})
    state = Llama(cfg).state_dict()
    meta = to_meta(state, cfg)
    assert "layers.1.feed_forward.w3.weight" in meta and "output.weight" in meta
    back = from_meta(meta, cfg)
    assert back.keys() == state.keys()
    for key in state:
        assert torch.equal(back[key], state[key]), key
    # The permutation moves rows: q differs between layouts, v does not.
    assert not torch.equal(meta["layers.0.attention.wq.weight"], state["layers.0.self_attn.q_proj.weight"])
    assert torch.equal(meta["layers.0.attention.wv.weight"], state["layers.0.self_attn.v_proj.weight"])


def test_golden_permutation_of_one_head():
    cfg = LlamaConfig(vocab_size=5, hidden_size=6, intermediate_size=4, num_layers=1, num_heads=1)
    state = {k: torch.zeros_like(v) for k, v in Llama(cfg).state_dict().items()}
    state["layers.0.self_attn.q_proj.weight"] = torch.arange(6.0).unsqueeze(1).repeat(1, 6)
    meta = to_meta(state, cfg)
    # half-split rows (r0, r1, r2 | i0, i1, i2) become adjacent pairs (r0, i0, r1, i1, r2, i2).
    assert meta["layers.0.attention.wq.weight"][:, 0].tolist() == [0, 3, 1, 4, 2, 5]


def test_meta_shards_merge_to_the_consolidated_dict():
    cfg = LlamaConfig(**{**TINY, "num_kv_heads": 2, "vocab_size": 98})
    meta = to_meta(Llama(cfg).state_dict(), cfg)
    shards = split_meta_shards(meta, 2)
    assert shards[0]["layers.0.attention.wo.weight"].shape == (32, 16)  # row-parallel: split inputs
    assert shards[0]["tok_embeddings.weight"].shape == (98, 16)  # ParallelEmbedding splits the width
    merged = merge_meta_shards(shards)
    assert all(torch.equal(merged[k], meta[k]) for k in meta)


def test_config_from_meta_params_derives_the_released_ffn_widths():
    from aicanon.language.configs import LLAMA2_7B, LLAMA2_70B, LLAMA3_8B, LLAMA31_405B

    llama2_7b = {
        "dim": 4096,
        "multiple_of": 256,
        "n_heads": 32,
        "n_layers": 32,
        "norm_eps": 1e-05,
        "vocab_size": -1,
    }
    assert config_from_meta_params(llama2_7b, vocab_size=32000) == LLAMA2_7B
    llama2_70b = {
        "dim": 8192,
        "multiple_of": 4096,
        "ffn_dim_multiplier": 1.3,
        "n_heads": 64,
        "n_kv_heads": 8,
        "n_layers": 80,
        "norm_eps": 1e-05,
        "vocab_size": -1,
    }
    assert config_from_meta_params(llama2_70b, vocab_size=32000) == LLAMA2_70B
    llama3_8b = {
        "dim": 4096,
        "n_layers": 32,
        "n_heads": 32,
        "n_kv_heads": 8,
        "vocab_size": 128256,
        "multiple_of": 1024,
        "ffn_dim_multiplier": 1.3,
        "norm_eps": 1e-05,
        "rope_theta": 500000.0,
    }
    assert config_from_meta_params(llama3_8b) == LLAMA3_8B
    llama31_405b = {
        "dim": 16384,
        "n_layers": 126,
        "n_heads": 128,
        "n_kv_heads": 8,
        "vocab_size": 128256,
        "ffn_dim_multiplier": 1.2,
        "multiple_of": 4096,
        "norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "use_scaled_rope": True,
    }
    assert config_from_meta_params(llama31_405b, max_seq_len=131072) == LLAMA31_405B


# ---------------------------------------------------------------- files and bad input


def test_safetensors_round_trip(tmp_path):
    for tie in (False, True):
        cfg = LlamaConfig(**{**TINY, "tie_embeddings": tie})
        model = Llama(cfg)
        save_safetensors(model, tmp_path / f"m{tie}.safetensors", {"format": "pt"})
        loaded = load_safetensors(tmp_path / f"m{tie}.safetensors")
        assert ("lm_head.weight" in loaded) is not tie
        fresh = Llama(cfg)
        load_state_dict_strict(fresh, loaded)
        ids = torch.randint(0, 97, (1, 9))
        with torch.no_grad():
            assert torch.equal(fresh(ids), model(ids))
        if tie:
            assert fresh.lm_head.weight is fresh.embed_tokens.weight


def test_sharded_transformers_folder_loads(tmp_path):
    import json

    cfg = LlamaConfig(**TINY)
    state = to_transformers(Llama(cfg).state_dict())
    keys = sorted(state)
    half = len(keys) // 2
    save_safetensors({k: state[k] for k in keys[:half]}, tmp_path / "model-00001-of-00002.safetensors")
    save_safetensors({k: state[k] for k in keys[half:]}, tmp_path / "model-00002-of-00002.safetensors")
    weight_map = {k: f"model-0000{1 + (i >= half)}-of-00002.safetensors" for i, k in enumerate(keys)}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    loaded = from_transformers(load_safetensors(tmp_path), cfg)
    assert sorted(loaded) == sorted(expected_keys(cfg))


def test_bad_checkpoints_are_rejected_with_the_keys_listed(tmp_path):
    cfg = LlamaConfig(**TINY)
    state = Llama(cfg).state_dict()
    broken = dict(state)
    broken.pop("layers.1.mlp.up_proj.weight")
    broken["layers.1.mlp.extra.weight"] = torch.zeros(1)
    with pytest.raises(
        ValueError,
        match=r"missing keys \['layers.1.mlp.up_proj.weight'\].*unexpected keys \['layers.1.mlp.extra.weight'\]",
    ):
        load_state_dict_strict(Llama(cfg), broken)
    with pytest.raises(ValueError, match=r"missing keys \['layers.1.mlp.up_proj.weight'\]"):
        from_transformers(to_transformers({k: v for k, v in broken.items() if "extra" not in k}), cfg)
    meta = to_meta(state, cfg)
    meta.pop("output.weight")
    with pytest.raises(
        ValueError, match=r"state_dict \(Meta layout\) does not match.*missing keys \['output.weight'\]"
    ):
        from_meta(meta, cfg)
    wrong = dict(state)
    wrong["norm.weight"] = torch.ones(7)
    with pytest.raises(ValueError, match=r"wrong shapes \['norm.weight: expected \(32,\), got \(7,\)'\]"):
        load_state_dict_strict(Llama(cfg), wrong)
    with pytest.raises(TypeError, match=r"state_dict\['x'\] must be a tensor, got int"):
        from_transformers({"x": 1})
    with pytest.raises(TypeError, match="cfg must be a LlamaConfig"):
        to_meta(state, {"hidden_size": 32})
    with pytest.raises(ValueError, match="vocab_size must be given"):
        config_from_meta_params({"dim": 64, "n_layers": 1, "n_heads": 4, "multiple_of": 32, "vocab_size": -1})
    with pytest.raises(ValueError, match="path must name an existing safetensors file"):
        load_safetensors(tmp_path / "nothing.safetensors")
    with pytest.raises(ValueError, match="shards\\[1\\] must hold the keys of shards\\[0\\]"):
        merge_meta_shards([to_meta(state, cfg), {"norm.weight": torch.ones(32)}])


def test_model_rejects_bad_input():
    cfg = LlamaConfig(**TINY)
    model = Llama(cfg)
    with pytest.raises(ValueError, match=r"input_ids must be in \[0, 97\), got values in \[0, 97\]"):
        model(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="sequence length must be <= max_seq_len=64, got 65"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(
        ValueError, match="num_heads must be a multiple of num_kv_heads, got num_heads=4, num_kv_heads=3"
    ):
        LlamaConfig(**{**TINY, "num_kv_heads": 3})


def test_attention_mask_must_be_zero_one():
    cfg = LlamaConfig(**TINY)
    model = Llama(cfg).eval()
    ids = torch.randint(0, 97, (2, 5), generator=torch.Generator().manual_seed(0))
    keep = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        expected = model(ids, attention_mask=keep.bool())
        # bool, integer and floating 0/1 masks are the same mask
        for mask in (keep, keep.int(), keep.float(), keep.double()):
            assert torch.equal(model(ids, attention_mask=mask), expected)
    half = keep.float()
    half[0, 0] = 0.5
    with pytest.raises(
        ValueError, match=r"attention_mask must hold only 0 and 1.*torch.float32 values \[0.5\]"
    ):
        model(ids, attention_mask=half)
    additive = torch.zeros(2, 5)
    additive[0, 0] = float("-inf")  # a transformers-style additive mask is not a keep/drop mask
    with pytest.raises(ValueError, match=r"attention_mask must hold only 0 and 1.*\[-inf\]"):
        model(ids, attention_mask=additive)


def test_learned_positions_out_of_range_are_rejected():
    cfg = LlamaConfig(**{**TINY, "position": "learned", "max_seq_len": 8})
    model = Llama(cfg).eval()
    ids = torch.zeros(1, 3, dtype=torch.long)
    with torch.no_grad():
        model(ids, position_ids=torch.tensor([[0, 4, 7]]))  # in range: runs
        with pytest.raises(
            ValueError, match=r"position_ids must be in \[0, 8\).*got out-of-range values \[8, 9\]"
        ):
            model(ids, position_ids=torch.tensor([[0, 8, 9]]))
        with pytest.raises(ValueError, match=r"position_ids must be in \[0, 8\).*values \[-1\]"):
            model(ids, position_ids=torch.tensor([[-1, 0, 1]]))
        with pytest.raises(ValueError, match=r"position_ids must be an integer tensor, got torch.float32"):
            model(ids, position_ids=torch.tensor([[0.0, 1.0, 2.0]]))
