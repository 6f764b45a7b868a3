"""Sparks of AGI's suite: the quick reproduction meets every quick claim (checkers validated against
hand labels, the oracle over HTTP at 100 %, the small random model at ~0); with naive checkers the
precision and adversarial claims fail; seeds repeat; configs; bad config rejected; --full smoke test."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.evals.sparks import FAMILIES, OracleResponder, build_suite
from aicanon.language.server import BackgroundServer, create_app

pytestmark = pytest.mark.paper("sparks-agi")

experiment = load_experiment("sparks-agi")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("sparks-agi", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert len(claimed) == 5
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    assert result.metrics["oracle_score"] == 1.0 and result.metrics["small_model_score"] == 0.0
    assert "sparks_suite" in result.figures
    details = result.details
    assert set(details["oracle"]["families"]) == set(FAMILIES)
    records = details["small_model"]["families"]["code"]["records"]
    assert len(records) == cfg.items_per_family and all(
        {"prompt", "output", "passed", "reason"} <= set(r) for r in records
    )
    assert details["validation"]["families"]["spatial"]["precision_interval"]["low"] > 0.3


def test_naive_checkers_fail_the_precision_claims():
    cfg = make_config(experiment, "quick", checker="naive", items_per_family=1)
    result = reproduce("sparks-agi", cfg)
    outcome = {c.metric: c for c in result.claims}
    assert outcome["checker_precision_min"].passed is False and outcome["checker_precision_min"].ours < 0.5
    assert outcome["adversarial_accepted_fraction"].passed is False
    assert outcome["adversarial_accepted_fraction"].ours > 0.5
    assert outcome["oracle_score"].passed  # the naive checkers still accept correct answers


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", items_per_family=1, validate=False)
    first = experiment.run(dataclasses.replace(cfg, seed=5))
    second = experiment.run(dataclasses.replace(cfg, seed=5))
    assert first.metrics == second.metrics
    assert first.details["small_model"] == second.details["small_model"]


def test_configs_and_full_smoke():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert (quick.items_per_family, quick.checker, quick.threads) == (6, "strict", 1)
    assert (full.items_per_family, full.checker, full.scale) == (40, "strict", "full")
    # the full configuration for a few items: the same code path, larger suite
    cfg = make_config(experiment, "full", items_per_family=1, hidden_size=16, max_seq_len=1024)
    result = experiment.run(cfg)
    assert result.metrics["oracle_score"] == 1.0


def test_a_served_model_is_evaluated_through_model_url():
    cfg = make_config(experiment, "quick", items_per_family=1, validate=False, seed=2)
    items = build_suite(cfg.seed, cfg.items_per_family)
    with BackgroundServer(create_app(OracleResponder(items), "served")) as server:
        served = dataclasses.replace(cfg, model_url=server.base_url, model_name="served")
        result = experiment.run(served)
    assert result.metrics["small_model_score"] == 1.0  # the "model" here is the oracle, over HTTP
    assert result.details["small_model"]["name"] == "served" and result.details["validation"] is None


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="checker"):
        make_config(experiment, "quick", checker="lenient")
    with pytest.raises(ValueError, match="items_per_family"):
        make_config(experiment, "quick", items_per_family=0)
    with pytest.raises(ValueError, match="model_name"):
        make_config(experiment, "quick", model_url="http://127.0.0.1:9/v1")
