"""DeepSeek-R1's experiment: the quick (mechanics) reproduction passes; pure R1-Zero at 0.1M fails it.

Tests that need the cached arithmetic testbed model are ``slow`` (a clean CI machine has no cache)."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("deepseek-r1")

experiment = load_experiment("deepseek-r1")

TINY = dict(
    cold_start_examples=32,
    cold_start_steps=2,
    rl_steps=2,
    prompts_per_step=2,
    group_size=2,
    max_new_tokens=12,
    test_problems=2,
    eval_samples=2,
    distill_prompts=2,
    distill_samples=2,
    distill_steps=1,
    student_rl_steps=1,
)


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("deepseek-r1", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed, "the quick scale must claim something"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} vs threshold {claim.threshold}"
    assert "r1_training" in result.figures


@pytest.mark.slow
def test_pure_r1_zero_without_cold_start_fails_the_format_claim():
    cfg = make_config(experiment, "quick", cold_start_examples=0, rl_steps=4)
    result = reproduce("deepseek-r1", cfg)
    claim = next(c for c in result.claims if c.metric == "format_rate")
    assert claim.passed is False
    assert claim.ours < 0.1


@pytest.mark.slow
def test_same_seed_gives_the_same_metrics():
    cfg = dataclasses.replace(make_config(experiment, "quick"), **TINY)
    first, second = experiment.run(cfg), experiment.run(cfg)
    assert first.metrics == second.metrics


@pytest.mark.slow
def test_a_killed_run_resumes_each_rl_phase_from_its_checkpoint(tmp_path, monkeypatch):
    """Killed after the student's second RL step (before its checkpoint), the rerun repeats the short
    cold start and distillation, takes the teacher's RL from its final checkpoint, redoes only the
    student's second step, and reports the uninterrupted metrics and curves."""
    # Checkpoints go to tmp_path; the results folder (and its cached testbed model) stays as it is.
    monkeypatch.setattr(experiment, "checkpoint_folder", lambda slug, config: tmp_path / slug)
    cfg = dataclasses.replace(make_config(experiment, "quick"), **{**TINY, "student_rl_steps": 2})
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=1)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment.LoopCheckpoints,
        "done",
        lambda: experiment.run(cfg),
        kill_at=4,
        record=lambda self, step, total: step,
    )
    assert calls == [2]
    assert resumed.metrics == reference.metrics
    timing = {"seconds"}
    assert {k: v for k, v in resumed.details.items() if k not in timing} == {
        k: v for k, v in reference.details.items() if k not in timing
    }
    assert not (tmp_path / "deepseek-r1").exists()  # removed once the seed is done


@pytest.mark.slow
def test_full_config_runs_a_few_steps_with_tiny_overrides(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "checkpoint_folder", lambda slug, config: tmp_path / slug)  # full: on
    cfg = dataclasses.replace(experiment.Config.full(), teacher_size="small", seeds=1, **TINY)
    result = experiment.run(cfg)
    assert set(result.metrics) >= {"format_rate", "accuracy_rise", "length_rise", "distill_gain"}
    assert len(result.details["curve"]) == 2


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.teacher_size == "large" and full.student_size == "small"  # Table 6: a smaller student
    assert full.group_size == 16  # the paper's G for R1 (Section 2.2.1 / 2.3)
    assert full.beta == 0.04 and full.clip_eps == 0.2
    assert full.temperature == 0.6  # the paper's evaluation temperature
    quick = experiment.Config.quick()
    assert quick.cold_start_examples > 0 and quick.seeds == 1 and quick.threads == 1
    metrics = {c.metric: c for c in experiment.CLAIMS}
    assert metrics["format_rate"].full == 0.95
    assert {"accuracy_rise", "length_rise", "distill_gain"} <= set(metrics)


@pytest.mark.parametrize(
    "override, match",
    [
        ({"group_size": 1}, "group_size"),
        ({"beta": -0.1}, "beta"),
        ({"cold_start_long": 1.5}, "cold_start_long"),
        ({"ablation": "bogus"}, "ablation"),
        ({"teacher_size": "huge"}, "size"),
        ({"cold_start_examples": 10, "cold_start_steps": 0}, "cold_start_steps"),
        ({"train_min_steps": 3, "train_max_steps": 2}, "train_max_steps"),
    ],
)
def test_bad_config_is_rejected(override, match):
    with pytest.raises((ValueError, TypeError), match=match):
        experiment.Config(**override)
