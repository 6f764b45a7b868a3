"""Llama 2 Table 18 at small scale: GQA within 2 % of MHA with a 4x smaller KV cache; an untrained GQA model fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("llama2")

experiment = load_experiment("llama2")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("llama2", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"gqa_val_loss_ratio", "kv_cache_reduction"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.4f} vs threshold {claim.threshold}"
    assert result.metrics["kv_cache_reduction"] == 4.0  # 8 query heads, 2 KV heads, measured bytes
    assert result.metrics["mha_val_loss"] < 2.5  # trained: uniform over 65 characters is 4.17
    details = result.details
    assert details["parameters"]["gqa"] == details["parameters"]["mha"]  # FFN widened to match
    assert "gqa_vs_mha" in result.figures


def test_untrained_gqa_fails_the_quality_claim():
    cfg = make_config(experiment, "quick", train_gqa=False, seeds=1, steps=60, warmup_steps=6, eval_every=0)
    result = reproduce("llama2", cfg)
    claim = next(c for c in result.claims if c.metric == "gqa_val_loss_ratio")
    assert claim.passed is False and claim.ours > 1.3


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", seeds=1, steps=8, warmup_steps=2, eval_every=0, eval_batches=2)
    first = experiment.run(dataclasses.replace(cfg, seed=5))
    second = experiment.run(dataclasses.replace(cfg, seed=5))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_configs_and_bad_input():
    full = experiment.Config.full()
    assert full.scale == "full" and full.seeds == 3 and full.extra_kv_heads == (1,)
    assert experiment.Config.quick().num_heads // experiment.Config.quick().gqa_kv_heads == 4
    with pytest.raises(ValueError, match="num_heads must be a multiple of gqa_kv_heads, got 8 and 3"):
        experiment.run(make_config(experiment, "quick", gqa_kv_heads=3))
