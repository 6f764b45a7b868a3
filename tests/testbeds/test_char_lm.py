"""The small pre-trained base model of the align experiments (aicanon.testbeds.char_lm)."""

from __future__ import annotations

import warnings

import pytest
import torch

from aicanon.datasets.sst import load_sst_binary
from aicanon.language.training import evaluate_lm
from aicanon.testbeds.char_lm import CharLMConfig, char_lm_corpus, pretrain_char_lm

pytestmark = pytest.mark.paper("lora")

TINY = {
    "hidden_size": 16,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 32,
    "steps": 20,
    "batch_size": 8,
    "seq_len": 32,
    "warmup_steps": 2,
}


def test_pretraining_lowers_the_loss_and_cache_reloads_identically(tmp_path):
    cfg = CharLMConfig(**TINY)
    model, tokenizer = pretrain_char_lm(cfg, tmp_path)
    assert len(list((tmp_path / cfg.key()).glob("*/tensors.safetensors"))) == 1  # one checkpoint version
    text, _ = char_lm_corpus()
    ids = tokenizer.encode(text)
    untrained = type(model)(model.config)
    torch.manual_seed(0)
    assert evaluate_lm(model, ids, 32, n_batches=2) < evaluate_lm(untrained, ids, 32, n_batches=2) - 0.5
    again, tokenizer_again = pretrain_char_lm(cfg, tmp_path)
    assert tokenizer_again.chars == tokenizer.chars
    for (k, v), (_, w) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    # Every SST sentence (dev and test included) encodes with the base's alphabet.
    for sentence in load_sst_binary("test")[0][:200]:
        tokenizer.encode(sentence)


def test_cache_key_depends_on_config():
    assert CharLMConfig(**TINY).key() == CharLMConfig(**TINY).key()
    assert CharLMConfig(**TINY).key() != CharLMConfig(**{**TINY, "steps": 21}).key()


def test_corrupt_cache_is_retrained_with_a_warning(tmp_path):
    cfg = CharLMConfig(**{**TINY, "steps": 3})
    model, _ = pretrain_char_lm(cfg, tmp_path)
    (newest,) = (tmp_path / cfg.key()).glob("*/tensors.safetensors")
    newest.write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="could not be used"):
        again, _ = pretrain_char_lm(cfg, tmp_path)
    for v, w in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(v, w)  # seeded: retraining gives the same weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pretrain_char_lm(cfg, tmp_path)  # the rewritten cache loads without a warning


def test_bad_input():
    with pytest.raises(TypeError, match="cfg must be a CharLMConfig, got dict"):
        pretrain_char_lm({"steps": 1})
    with pytest.raises(TypeError, match="cache must be a folder path"):
        pretrain_char_lm(CharLMConfig(**TINY), cache=3)
    with pytest.raises(ValueError, match="CharLMConfig.steps must be a positive int, got 0"):
        CharLMConfig(steps=0)
    with pytest.raises(ValueError, match="seq_len must be <= max_seq_len=256, got 300"):
        CharLMConfig(seq_len=300)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        CharLMConfig(seed=-1)


def test_device_argument_trains_there_and_returns_the_model_on_the_cpu():
    cfg = CharLMConfig(**{**TINY, "steps": 3})
    default, _ = pretrain_char_lm(cfg)
    explicit, _ = pretrain_char_lm(cfg, device="cpu")
    assert next(explicit.parameters()).device.type == "cpu" and not explicit.training
    for v, w in zip(default.state_dict().values(), explicit.state_dict().values(), strict=True):
        assert torch.equal(v, w)


def test_cache_folder_follows_the_results_folder(monkeypatch, tmp_path):
    from aicanon.testbeds.char_lm import cache_folder

    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "out"))
    assert cache_folder(None) == tmp_path / "out" / "_cache" / "char_lm"
    assert cache_folder("") is None and cache_folder(str(tmp_path)) == tmp_path
