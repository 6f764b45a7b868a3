"""Llama.from_pretrained / save_pretrained against transformers' LlamaForCausalLM folders.

Round trips on tiny random configs (float32, atol 1e-5): transformers' save_pretrained (one file and
sharded) -> ours; ours (one file and sharded) -> transformers' from_pretrained; tied embeddings both
ways; config options we do not implement are refused on load, pickled folders are refused.
"""

from __future__ import annotations

import json

import pytest
import torch

from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("llama2")

transformers = pytest.importorskip("transformers")

VOCAB = 100
LLAMA31_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}


def _reference(tie: bool = False, **overrides):
    """A random transformers LlamaForCausalLM: hidden 32, 2 layers, 4 heads, 2 kv heads, vocab 100."""
    options = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        tie_word_embeddings=tie,
        attn_implementation="eager",
    )
    options.update(overrides)
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(transformers.LlamaConfig(**options)).eval()
    with torch.no_grad():  # norm gains away from 1, so a swapped or dropped norm would show
        for name, p in reference.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return reference


def _ids():
    return torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))


def _assert_same_logits(ours: Llama, reference) -> None:
    ids = _ids()
    with torch.no_grad():
        expected = reference(ids).logits
        got = ours.eval()(ids)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parity
@pytest.mark.parametrize("shard", [None, "20KB"], ids=["single", "sharded"])
@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_transformers_folder_loads_into_ours(tmp_path, shard, tie):
    reference = _reference(tie=tie)
    kwargs = {"max_shard_size": shard} if shard else {}
    reference.save_pretrained(tmp_path, safe_serialization=True, **kwargs)
    sharded = (tmp_path / "model.safetensors.index.json").exists()
    assert sharded is (shard is not None)
    if sharded:
        assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    ours = Llama.from_pretrained(tmp_path)
    assert ours.config.tie_embeddings is tie
    assert ours.config.num_kv_heads == 2 and ours.config.norm_eps == 1e-6
    if tie:
        assert ours.lm_head.weight is ours.embed_tokens.weight
    _assert_same_logits(ours, reference)


@pytest.mark.parity
@pytest.mark.parametrize("shard", [None, 20_000, "10KiB"], ids=["single", "sharded-int", "sharded-str"])
@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_our_folder_loads_into_transformers(tmp_path, shard, tie):
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        max_seq_len=64,
        norm_eps=1e-6,
        tie_embeddings=tie,
    )
    torch.manual_seed(0)
    ours = Llama(cfg).eval()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    ours.save_pretrained(tmp_path, max_shard_size=shard)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    if shard is None:
        assert (tmp_path / "model.safetensors").exists()
        assert not (tmp_path / "model.safetensors.index.json").exists()
    else:
        index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
        files = sorted(set(index["weight_map"].values()))
        assert len(files) > 1 and sorted(p.name for p in tmp_path.glob("model-*.safetensors")) == files
        assert ("lm_head.weight" in index["weight_map"]) is not tie
    reference = transformers.LlamaForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert reference.config.tie_word_embeddings is tie
    assert reference.dtype == torch.float32
    if tie:
        assert reference.lm_head.weight.data_ptr() == reference.model.embed_tokens.weight.data_ptr()
    _assert_same_logits(ours, reference)
    # and back: our own folder loads into ours unchanged
    again = Llama.from_pretrained(tmp_path)
    ids = _ids()
    with torch.no_grad():
        assert torch.equal(again.eval()(ids), ours(ids))


@pytest.mark.parity
def test_llama31_rope_scaling_round_trips_both_ways(tmp_path):
    reference = _reference(rope_parameters={"rope_theta": 500000.0, **LLAMA31_SCALING})
    reference.save_pretrained(tmp_path / "theirs")
    ours = Llama.from_pretrained(tmp_path / "theirs")
    assert ours.config.rope_scaling["rope_type"] == "llama3" and ours.config.rope_theta == 500000.0
    ids = torch.randint(0, VOCAB, (1, 60), generator=torch.Generator().manual_seed(2))  # past 16: scaled
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(ids), reference(ids).logits, atol=1e-5, rtol=0)
    ours.save_pretrained(tmp_path / "ours", max_shard_size="30KB")
    back = transformers.LlamaForCausalLM.from_pretrained(
        tmp_path / "ours", attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, reference(ids).logits, atol=1e-5, rtol=0)


def test_saving_again_removes_stale_shards(tmp_path):
    model = Llama(
        LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4)
    )
    model.save_pretrained(tmp_path, max_shard_size="10KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attention_bias": True}, r"attention_bias=True \(only False"),
        ({"mlp_bias": True}, r"mlp_bias=True \(only False"),
        ({"head_dim": 16}, r"head_dim=16 \(only hidden_size / num_attention_heads = 8\)"),
        ({"hidden_act": "gelu"}, r"hidden_act='gelu' \(only 'silu'"),
        (
            {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}},
            r"rope type 'linear' \(only 'default' and 'llama3'\)",
        ),
        ({"rope_scaling": {"type": "dynamic", "factor": 2.0}}, r"rope type 'dynamic'"),
        ({"model_type": "mistral"}, r"model_type='mistral' \(only 'llama'\)"),
    ],
)
def test_unsupported_config_options_are_refused(tmp_path, change, message):
    _reference().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match="config must describe a model our Llama computes exactly.*" + message
    ):
        Llama.from_pretrained(tmp_path)


def test_bad_folders_are_refused(tmp_path):
    reference = _reference()
    pickled = tmp_path / "pickled"
    # transformers 5 no longer writes pickles: the old layout is made by hand (config + .bin).
    reference.save_pretrained(pickled)
    (pickled / "model.safetensors").unlink()
    torch.save(reference.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"got only pickled \['pytorch_model.bin'\].*never unpickle"):
        Llama.from_pretrained(pickled)
    with pytest.raises(ValueError, match="path must be a folder holding config.json"):
        Llama.from_pretrained(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="path must hold config.json"):
        Llama.from_pretrained(empty)
    sharded = tmp_path / "sharded"
    reference.save_pretrained(sharded, max_shard_size="20KB")
    next(iter(sorted(sharded.glob("model-*.safetensors")))).unlink()
    with pytest.raises(ValueError, match=r"lists shards that are not in .*model-00001-of-"):
        Llama.from_pretrained(sharded)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        Llama.from_pretrained(3)


def test_save_refuses_what_transformers_cannot_load(tmp_path):
    small = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=4)
    with pytest.raises(ValueError, match="cfg.position must be 'rope'.*got 'learned'"):
        Llama(LlamaConfig(**small, position="learned")).save_pretrained(tmp_path)
    model = Llama(LlamaConfig(**small))
    model.layers[0].mlp = torch.nn.Sequential(torch.nn.Linear(32, 32))  # a replaced MLP
    with pytest.raises(ValueError, match=r"model.state_dict\(\) does not match.*missing keys"):
        model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="max_shard_size must look like"):
        Llama(LlamaConfig(**small)).save_pretrained(tmp_path, max_shard_size="lots")
    assert not (tmp_path / "config.json").exists()
