"""The small pre-trained base model of the align experiments (aicanon.align.base)."""

from __future__ import annotations

import warnings

import pytest
import torch

from aicanon.align.base import BaseConfig, base_corpus, pretrain_base
from aicanon.datasets.sst import load_sst_binary
from aicanon.language.training import evaluate_lm

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
    cfg = BaseConfig(**TINY)
    model, tokenizer = pretrain_base(cfg, tmp_path)
    assert (tmp_path / cfg.key() / "tensors.safetensors").is_file()
    text, _ = base_corpus()
    ids = tokenizer.encode(text)
    untrained = type(model)(model.config)
    torch.manual_seed(0)
    assert evaluate_lm(model, ids, 32, n_batches=2) < evaluate_lm(untrained, ids, 32, n_batches=2) - 0.5
    again, tokenizer_again = pretrain_base(cfg, tmp_path)
    assert tokenizer_again.chars == tokenizer.chars
    for (k, v), (_, w) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    # Every SST sentence (dev and test included) encodes with the base's alphabet.
    for sentence in load_sst_binary("test")[0][:200]:
        tokenizer.encode(sentence)


def test_cache_key_depends_on_config():
    assert BaseConfig(**TINY).key() == BaseConfig(**TINY).key()
    assert BaseConfig(**TINY).key() != BaseConfig(**{**TINY, "steps": 21}).key()


def test_corrupt_cache_is_retrained_with_a_warning(tmp_path):
    cfg = BaseConfig(**{**TINY, "steps": 3})
    model, _ = pretrain_base(cfg, tmp_path)
    (tmp_path / cfg.key() / "tensors.safetensors").write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="could not be used"):
        again, _ = pretrain_base(cfg, tmp_path)
    for v, w in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(v, w)  # seeded: retraining gives the same weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pretrain_base(cfg, tmp_path)  # the rewritten cache loads without a warning


def test_bad_input():
    with pytest.raises(TypeError, match="cfg must be a BaseConfig, got dict"):
        pretrain_base({"steps": 1})
    with pytest.raises(TypeError, match="cache must be a folder path"):
        pretrain_base(BaseConfig(**TINY), cache=3)
    with pytest.raises(ValueError, match="BaseConfig.steps must be a positive int, got 0"):
        BaseConfig(steps=0)
    with pytest.raises(ValueError, match="seq_len must be <= max_seq_len=256, got 300"):
        BaseConfig(seq_len=300)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        BaseConfig(seed=-1)


def test_device_argument_trains_there_and_returns_the_model_on_the_cpu():
    cfg = BaseConfig(**{**TINY, "steps": 3})
    default, _ = pretrain_base(cfg)
    explicit, _ = pretrain_base(cfg, device="cpu")
    assert next(explicit.parameters()).device.type == "cpu" and not explicit.training
    for v, w in zip(default.state_dict().values(), explicit.state_dict().values(), strict=True):
        assert torch.equal(v, w)
