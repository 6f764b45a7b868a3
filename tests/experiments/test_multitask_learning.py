"""The overview's comparison: the quick reproduction passes its claims; without sharing and with equal
weighting everywhere (the ablations) it fails them."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("multitask-learning")

experiment = load_experiment("multitask-learning")

TINY = dict(
    seeds=1,
    low_data_per_task=20,
    low_data_steps=3,
    scale_data=40,
    scale_steps=3,
    test_size=50,
    hidden=16,
    batch_size=8,
)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("multitask-learning", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} >= {
        "hard_sharing_gain_related",
        "uncertainty_gain_loud",
        "uncertainty_gain_quiet",
    }
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    assert {"comparison", "task_weights"} <= set(result.figures)


def test_ablations_fail_the_claims():
    """Separate trunks (no sharing) and equal weighting in the adaptive arms: every claim fails."""
    cfg = make_config(experiment, "quick", seeds=1, share_trunk=False, adaptive_weighting=False)
    result = reproduce("multitask-learning", cfg)
    for claim in result.claims:
        if claim.threshold is not None:
            assert claim.passed is False, f"{claim.metric}: the ablation reached {claim.ours:.2f}"


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics


def test_full_config_runs_a_few_steps():
    cfg = make_config(experiment, "full", **TINY)
    result = experiment.run(cfg)
    assert {"hard_sharing_gain_related", "uncertainty_gain_loud", "gradnorm_gain_quiet"} <= set(
        result.metrics
    )


def test_configs_follow_the_setup():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert (quick.seeds, quick.low_data_per_task, quick.loss_scale_exponent) == (2, 200, 3.0)
    assert (full.seeds, full.test_size, full.scale_data) == (5, 10_000, 10_000)
    for cfg in (quick, full):  # the published settings of the methods
        assert (cfg.cross_stitch_self_weight, cfg.gradnorm_alpha) == (0.9, 1.5)
        assert cfg.share_trunk and cfg.adaptive_weighting


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("auxiliary_weight", -1.0, "auxiliary_weight must be finite and >= 0"),
        ("low_data_per_task", 0, "low_data_per_task must be >= 1"),
        ("max_angle_degrees", 120.0, "max_angle_degrees must be in"),
        ("scale_data", 100_000, "must be <= 60000"),
    ],
)
def test_bad_config_is_rejected(field, value, match):
    cfg = make_config(experiment, "quick", **{**TINY, field: value})
    with pytest.raises(ValueError, match=match):
        experiment.run(cfg)
