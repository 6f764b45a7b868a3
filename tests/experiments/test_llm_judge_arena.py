"""The LLM-as-a-judge / Chatbot Arena experiment: the quick reproduction passes its claims; shuffled
winners fail the arena claims; judging in one order fails the swap claim."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("llm-judge-arena")

experiment = load_experiment("llm-judge-arena")

# A smaller arena for the ablations and the repeatability test (the claims are still checked at the
# quick thresholds); the judge in process (the quick run goes through HTTP).
SMALL = dict(arena_replicates=3, bootstrap_rounds=50, elo_orderings=5, judge_transport="in-process")


def _claim(result, metric):
    return next(c for c in result.claims if c.metric == metric)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("llm-judge-arena", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert len(claimed) == 5
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    assert {"arena", "mt_bench", "position_bias"} <= set(result.figures)
    details = result.details["mt_bench"]
    assert len(details["single_judgments"]) == 3 * 80 * 2 and len(details["pairwise_judgments"]) == 3 * 80 * 2
    assert set(details["sample_prompts"]) == {
        "single-v1",
        "single-math-v1",
        "single-v1-multi-turn",
        "single-math-v1-multi-turn",
        "pair-v2",
        "pair-math-v1",
        "pair-v2-multi-turn",
        "pair-math-v1-multi-turn",
    }
    assert "over http" in details["judge"]


def test_shuffled_winners_fail_the_arena_claims():
    result = reproduce("llm-judge-arena", make_config(experiment, "quick", shuffle_winners=True, **SMALL))
    for metric in ("bt_kendall_tau", "bt_interval_coverage"):
        assert _claim(result, metric).passed is False
    assert result.metrics["bt_kendall_tau"] < 0.6


def test_judging_in_one_order_fails_the_swap_claim():
    result = reproduce("llm-judge-arena", make_config(experiment, "quick", swap=False, **SMALL))
    assert _claim(result, "swap_agreement_s2").passed is False
    assert result.metrics["swap_agreement_s2"] < 0.97
    assert "position_consistency" not in result.metrics  # needs both orders


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **SMALL)
    first = experiment.run(dataclasses.replace(cfg, seed=4))
    second = experiment.run(dataclasses.replace(cfg, seed=4))
    assert first.metrics == second.metrics


def test_full_config_runs_with_tiny_overrides():
    cfg = make_config(
        experiment,
        "full",
        arena_battles=400,
        arena_replicates=2,
        bootstrap_rounds=10,
        elo_orderings=2,
        judge_transport="in-process",
    )
    assert set(experiment.run(cfg).metrics) >= {"bt_kendall_tau", "swap_agreement_s2", "position_consistency"}


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.elo_k, full.bootstrap_rounds, full.arena_battles, full.confidence) == (
        4.0,
        1000,
        30_000,
        0.95,
    )
    assert full.swap and full.models == ("llama-2-chat7b", "llama-2-chat13b", "gpt-4o")
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.judge_transport == "http" and quick.swap


@pytest.mark.parametrize(
    "override, match",
    [
        (dict(arena_models=1), "arena_models"),
        (dict(models=("gpt-4o",)), "models must name at least two"),
        (dict(models=("gpt-4o", "gpt-5")), "models"),
        (dict(judge_transport="carrier-pigeon"), "judge_transport"),
        (dict(confidence=1.0), "confidence"),
        (dict(arena_tie_rate=-0.1), "arena_tie_rate"),
    ],
)
def test_bad_config_is_rejected(override, match):
    with pytest.raises(ValueError, match=match):
        make_config(experiment, "quick", **override)
