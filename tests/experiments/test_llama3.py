"""Llama 3 Section 3.2 at small scale: trained at 256, evaluated at 1024; the larger RoPE base and
Llama 3.1's scaling extrapolate better; untrained models fail both claims."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("llama3")

experiment = load_experiment("llama3")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("llama3", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {
        "larger_base_extrapolation_gain",
        "llama31_scaling_perplexity_gain",
    }
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.4f} vs threshold {claim.threshold}"
    m = result.metrics
    # The problem the claims address: plain RoPE at base 10,000 degrades past its training context.
    assert m["base10000_beyond_over_inside"] > 1.03
    assert m["base10000_loss_inside"] < 2.6  # trained (uniform: 4.17 nats)
    assert len(result.details["position_loss"]["base10000"]) == 1024
    assert "loss_by_position" in result.figures


def test_untrained_models_fail_both_claims():
    cfg = make_config(experiment, "quick", train=False, eval_windows=2)
    result = reproduce("llama3", cfg)
    for claim in result.claims:
        if claim.threshold is not None:
            assert claim.passed is False, claim.metric


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", steps=3, warmup_steps=1, eval_windows=1, eval_len=512)
    first = experiment.run(dataclasses.replace(cfg, seed=2))
    second = experiment.run(dataclasses.replace(cfg, seed=2))
    assert first.metrics == second.metrics


def test_configs_and_bad_input():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert (quick.train_len, quick.eval_len, quick.bases) == (256, 1024, (10000.0, 500000.0))
    assert full.scale == "full" and full.seeds == 3
    with pytest.raises(ValueError, match="eval_len must exceed train_len, got 256 <= 256"):
        experiment.run(make_config(experiment, "quick", eval_len=256))
    with pytest.raises(ValueError, match="bases must name at least one RoPE base"):
        experiment.run(make_config(experiment, "quick", bases=()))
