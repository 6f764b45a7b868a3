"""EWC's headline experiment (Figure 2A): the quick reproduction passes its claims; with λ = 0
(EWC reduced to plain training) the EWC-over-SGD claim fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("ewc")

experiment = load_experiment("ewc")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("ewc", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"ewc_minus_sgd_accuracy", "ewc_minus_l2_last_task"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    # Figure 2A's shape: SGD forgets task A, L2 keeps it but learns the last task poorly.
    metrics = result.metrics
    assert metrics["ewc_first_task"] > metrics["sgd_first_task"] + 10
    assert metrics["l2_first_task"] > metrics["sgd_first_task"]
    assert metrics["ewc_bwt"] > metrics["sgd_bwt"]
    assert "figure_2a" in result.figures


def test_ablation_without_the_penalty_fails_the_ewc_claim():
    cfg = make_config(experiment, "quick", ewc_lambda=0.0, seeds=1, learners=("sgd", "ewc"), eval_every=0)
    result = reproduce("ewc", cfg)
    claim = next(c for c in result.claims if c.metric == "ewc_minus_sgd_accuracy")
    assert claim.passed is False
    assert abs(claim.ours) < 1e-9  # λ = 0: EWC trains exactly as SGD


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(
        experiment,
        "quick",
        seeds=1,
        num_tasks=2,
        train_per_task=200,
        test_per_task=200,
        epochs=1,
        eval_every=1,
    )
    first = experiment.run(dataclasses.replace(cfg, seed=4))
    second = experiment.run(dataclasses.replace(cfg, seed=4))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_full_config_runs_for_a_few_steps():
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        num_tasks=2,
        train_per_task=100,
        test_per_task=100,
        epochs=1,
        eval_every=1,
    )
    result = experiment.run(cfg)
    assert {"ewc_minus_sgd_accuracy", "ewc_minus_l2_last_task"} <= set(result.metrics)
    assert len(result.details["ewc"]["curves"]["0"]) == 2  # one point per step, 2 steps of 100 x 2 tasks


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.num_tasks, full.train_per_task, full.test_per_task, full.hidden) == (
        10,
        60_000,
        10_000,
        (400, 400),
    )
    assert (full.optimizer, full.lr, full.epochs, full.fisher) == ("sgd", 1e-3, 20, "true")
    assert full.learners == ("sgd", "l2", "ewc")
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 3 and quick.num_tasks == 3
    assert quick.fisher == "true" and quick.fisher_samples == 200


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"ewc_lambda": -1.0}, "ewc_lambda must be finite and >= 0"),
        ({"fisher_samples": 0}, "fisher_samples must be >= 1"),
        ({"learners": ("sgd", "adam")}, "learners must be a non-empty tuple"),
        ({"hidden": ()}, "hidden must be a non-empty tuple"),
        ({"fisher": "diag"}, "fisher must be one of"),
    ],
)
def test_bad_config_is_rejected(override, match):
    cfg = make_config(experiment, "quick", seeds=1, **override)
    with pytest.raises(ValueError, match=match):
        experiment.run(cfg)
