"""Self-consistency's experiment: the quick reproduction on the cached arithmetic model (slow: the
calibrated model is trained once per machine), the random-vote ablation, determinism, configs."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("self-consistency")

experiment = load_experiment("self-consistency")

TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}
SMALL_RUN = {"problems": 3, "k_values": (1, 2, 4), "subsets": 2, "max_tokens": 6, "shots": 2}


@pytest.mark.slow
def test_quick_reproduction_meets_the_mechanism_claims_and_reports_the_greedy_gap():
    cfg = make_config(experiment, "quick")
    result = reproduce("self-consistency", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claims = {c.metric: c for c in result.claims}
    # The vote over 20 paths beats a single sampled path, and the curve over k does not fall.
    assert claims["sc_minus_single_path"].passed, claims["sc_minus_single_path"]
    assert claims["curve_min_step"].passed, claims["curve_min_step"]
    # Against greedy CoT the 0.1M model reaches no clear margin (its errors are systematic): a gap
    # kept at the target, reported, not asserted away (see the experiment's docstring).
    gap = claims["sc_minus_greedy"]
    assert gap.threshold == 0.05 and gap.ours is not None
    assert "accuracy_vs_paths" in result.figures


@pytest.mark.slow
def test_ablation_a_random_vote_fails_the_quick_claims():
    cfg = make_config(experiment, "quick", vote="random", seeds=1)
    result = reproduce("self-consistency", cfg)
    claims = {c.metric: c for c in result.claims}
    assert claims["sc_minus_single_path"].passed is False
    assert claims["sc_minus_greedy"].passed is False


def test_same_seed_gives_the_same_metrics(tmp_path):
    cfg = make_config(experiment, "quick", model=TINY, cache=str(tmp_path), **SMALL_RUN)
    first = experiment.run(dataclasses.replace(cfg, seed=2))
    second = experiment.run(dataclasses.replace(cfg, seed=2))
    assert first.metrics == second.metrics and first.details == second.details
    assert set(first.metrics) >= {"greedy_accuracy", "sc_accuracy_k4", "sc_minus_greedy", "curve_min_step"}
    assert {f"table1_{rule}" for rule in experiment.AGGREGATIONS} <= set(first.metrics)


def test_full_config_smoke_runs_with_tiny_overrides(tmp_path):
    cfg = make_config(experiment, "full", model={**TINY, "size": "medium"}, cache=str(tmp_path), **SMALL_RUN)
    result = experiment.run(cfg)
    assert 0.0 <= result.metrics["sc_accuracy_k4"] <= 1.0


def test_configs_follow_the_paper():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert (
        quick.seeds == 2
        and quick.k_values == (1, 5, 10, 20)
        and quick.vote == "majority_vote"
        and quick.shots == 4
    )
    assert 0.5 <= quick.temperature <= 0.7  # the paper's range (Section 3.1)
    assert full.k_values[-1] == 40  # Figure 2 goes to 40 sampled paths
    assert full.model == {"size": "medium"} and full.seeds == 3


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="vote must be one of"):
        make_config(experiment, "quick", vote="mode")
    with pytest.raises(ValueError, match="strictly increasing"):
        make_config(experiment, "quick", k_values=(5, 1))
    with pytest.raises(ValueError, match="temperature must be"):
        make_config(experiment, "quick", temperature=0.0)
    with pytest.raises(ValueError, match="max_steps must be"):
        make_config(experiment, "quick", min_steps=3, max_steps=2)
