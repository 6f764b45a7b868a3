"""The masked-LM testbed: BERT masking, the corpus and vocabulary, pre-training that lowers the MLM
loss, and the cache by configuration hash (a hit loads the same weights, a damaged one retrains)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from aicanon.testbeds.masked_lm import (
    CLS,
    MASK,
    SEP,
    SPECIALS,
    MaskedLMConfig,
    cache_folder,
    mask_tokens,
    masked_lm_corpus,
    pretrain_masked_lm,
)

pytestmark = pytest.mark.paper("prompt-learning")

TINY = dict(
    vocab_size=800,
    embedding_size=16,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    intermediate_size=64,
    steps=60,
    batch_size=32,
    wikitext=False,
    warmup_steps=10,
)


def test_mask_tokens_targets_only_maskable_tokens_and_every_row():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (64, 30), generator=generator)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False
    maskable[3] = False
    maskable[3, 7] = True  # a row with a single maskable token still gets its target
    inputs, labels = mask_tokens(ids, 100, 4, maskable, 0.15, generator)
    chosen = labels != -100
    assert not (chosen & ~maskable).any()
    assert chosen.any(dim=1).all() and chosen[3, 7]
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    share = chosen.float().sum() / maskable.float().sum()
    assert 0.12 < share < 0.2
    replaced = (inputs[chosen] == 4).float().mean()
    assert 0.7 < replaced < 0.9  # BERT's 80 % [MASK]


def test_corpus_and_vocabulary():
    cfg = MaskedLMConfig(**TINY)
    sequences, vocab = masked_lm_corpus(cfg)
    assert len(sequences) == 8544  # SST train sentences only
    assert vocab.tokens[: len(SPECIALS)] == list(SPECIALS) and len(vocab) == 800
    assert {"good", "bad", "it", "was"} <= set(vocab.tokens)
    with_wiki, _ = masked_lm_corpus(MaskedLMConfig(**{**TINY, "wikitext": True}))
    assert len(with_wiki) > len(sequences) and max(len(s) for s in with_wiki[8544:]) <= cfg.seq_len - 2


def test_pretraining_lowers_the_loss_and_the_cache_returns_the_same_model(tmp_path):
    cfg = MaskedLMConfig(**TINY)
    model, vocab = pretrain_masked_lm(cfg, cache=tmp_path)
    assert model.pretraining["final_mlm_loss"] < math.log(cfg.vocab_size) - 0.5
    assert not model.training
    again, vocab_again = pretrain_masked_lm(cfg, cache=str(tmp_path))
    assert again.pretraining["cached"] and vocab_again.tokens == vocab.tokens
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    ids = vocab.encode([CLS, "a", MASK, "film", SEP])
    logits, _ = again(ids[None])
    assert logits.shape == (1, 5, cfg.vocab_size)
    # A damaged cache is not fatal: it is retrained (with a warning) and overwritten.
    folder = tmp_path / cfg.key()
    for path in folder.rglob("*.safetensors"):
        path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="could not be used"):
        retrained, _ = pretrain_masked_lm(cfg, cache=tmp_path)
    assert not retrained.pretraining["cached"]


def test_config_hash_and_bad_config():
    assert MaskedLMConfig().key() == MaskedLMConfig().key() != MaskedLMConfig(steps=5).key()
    assert cache_folder("") is None and cache_folder("x") == Path("x")
    assert cache_folder(None).parts[-2:] == ("_cache", "masked_lm")
    with pytest.raises(ValueError, match="MaskedLMConfig.steps must be a positive int"):
        MaskedLMConfig(steps=0)
    with pytest.raises(ValueError, match="vocab_size must be > 5"):
        MaskedLMConfig(vocab_size=5)
    with pytest.raises(ValueError, match="mask_prob must be in"):
        MaskedLMConfig(mask_prob=1.0)
    with pytest.raises(ValueError, match="hidden_size must be a multiple of num_heads"):
        MaskedLMConfig(hidden_size=30, num_heads=4, embedding_size=16)
    with pytest.raises(TypeError, match="cfg must be a MaskedLMConfig"):
        pretrain_masked_lm({"steps": 1})
