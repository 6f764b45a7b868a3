"""MAML's headline experiment: the quick reproduction meets its claims; without meta-training it fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("maml")

experiment = load_experiment("maml")

# A few meta-iterations only: enough to exercise every path of run() in seconds.
TINY = dict(
    seeds=1,
    sine_iterations=3,
    sine_eval_tasks=5,
    sine_eval_steps=2,
    iterations=2,
    meta_batch=2,
    eval_tasks=4,
    filters=4,
)


def test_quick_reproduction_meets_every_quick_claim():  # about 35-40 s of CPU on one thread
    cfg = make_config(experiment, "quick")
    result = reproduce("maml", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} >= {"sine_mse_ratio", "omniglot_5way_1shot_accuracy"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} vs threshold {claim.threshold}"
    # The first-order run has no quick threshold; the quick scale leaves it to the full scale.
    assert "omniglot_5way_1shot_accuracy_first_order" not in result.metrics
    assert {"sinusoid", "omniglot_training"} <= set(result.figures)


def test_without_meta_training_the_claims_fail():
    """Zero meta-iterations: the MAML sinusoid regressor is a random net and fits no better after one
    step than the (also untrained) baseline; the Omniglot net adapts from a random initialisation."""
    cfg = make_config(
        experiment, "quick", sine_iterations=0, iterations=0, eval_tasks=100, orders=("second",)
    )
    result = reproduce("maml", cfg)
    outcome = {c.metric: c for c in result.claims}
    assert outcome["sine_mse_ratio"].passed is False
    assert outcome["omniglot_5way_1shot_accuracy"].passed is False
    assert outcome["omniglot_5way_1shot_accuracy"].ours < 80.0


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics


def test_a_killed_run_resumes_each_omniglot_run_from_its_checkpoint(tmp_path, monkeypatch):
    """Killed in the first-order run's third meta-iteration (last checkpoint: 2), the rerun skips the
    finished second-order run's training, redoes iterations 3-4 of the other, and reports the
    uninterrupted metrics and training curves."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    settings = {**TINY, "iterations": 4, "orders": ("second", "first"), "curve_every": 2, "curve_tasks": 2}
    cfg = make_config(experiment, "quick", **settings)
    train, losses = experiment.train_omniglot, []

    def recorded(*args):
        outcome = train(*args)
        losses.append(outcome["losses"])
        return outcome

    monkeypatch.setattr(experiment, "train_omniglot", recorded)
    reference = experiment.run(cfg)
    reference_losses = list(losses)
    cfg = dataclasses.replace(cfg, checkpoint_every=2)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment.LoopCheckpoints,
        "done",
        lambda: losses.clear() or experiment.run(cfg),  # each run's own losses
        kill_at=7,
        record=lambda self, step, total: step,
    )
    assert calls == [3, 4]  # only the first-order run's last two meta-iterations ran again
    assert losses == reference_losses  # every meta-iteration's loss, the resumed ones included
    assert resumed.metrics == reference.metrics
    curves = {k: v for k, v in resumed.details.items() if k.endswith("_curve")}
    assert curves and curves == {k: v for k, v in reference.details.items() if k.endswith("_curve")}
    assert not (tmp_path / "_checkpoints" / "maml").exists() or not any(
        (tmp_path / "_checkpoints" / "maml").iterdir()
    )
    assert experiment.Config.full().checkpoint_every == 1000


def test_full_config_smoke_runs_all_four_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # full runs checkpoint there
    cfg = make_config(experiment, "full", **TINY, curve_every=1, curve_tasks=2)
    result = experiment.run(cfg)
    for ways, shots in ((5, 1), (5, 5), (20, 1), (20, 5)):
        assert f"omniglot_{ways}way_{shots}shot_accuracy" in result.metrics
        assert f"omniglot_{ways}way_{shots}shot_accuracy_first_order" in result.metrics
    assert len(result.details["omniglot_20way_5shot_accuracy_curve"]) == 2


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (
        full.sine_shots,
        full.sine_meta_batch,
        full.sine_iterations,
        full.sine_inner_lr,
        full.sine_meta_lr,
    ) == (
        10,
        25,
        70_000,
        0.01,
        0.001,
    )
    assert (full.filters, full.image_size, full.train_characters, full.iterations, full.meta_lr) == (
        64,
        28,
        1200,
        40_000,
        0.001,
    )
    assert full.settings == ((5, 1), (5, 5), (20, 1), (20, 5)) and full.orders == ("second", "first")
    assert full.eval_tasks == 600 and full.meta_batch == 0 and full.inner_lr == 0.0
    five, twenty = experiment.PAPER_SETTINGS[(5, 1)], experiment.PAPER_SETTINGS[(20, 1)]
    assert (five.inner_lr, five.train_steps, five.test_steps, five.meta_batch) == (0.4, 1, 3, 32)
    assert (twenty.inner_lr, twenty.train_steps, twenty.test_steps, twenty.meta_batch) == (0.1, 5, 5, 16)
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.settings == ((5, 1),) and quick.image_size == 28


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(settings=((3, 1),)), "settings must be drawn from"),
        (dict(orders=("third",)), "orders must be one of"),
        (dict(orders=()), "orders must name at least one"),
        (dict(iterations=-1), "iterations must be >= 0"),
        (dict(train_characters=1623), "train_characters must be in \\[1, 1622\\]"),
        (dict(meta_lr=0.0), "meta_lr must be finite and > 0"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)
