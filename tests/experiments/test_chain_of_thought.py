"""Chain of thought's headline experiment: on the calibrated arithmetic model chain of thought beats
standard prompting by the claimed margin; the Section 3.3 ablations (reasoning after the answer,
dots in place of the rationale) do not; the run is deterministic; configs follow the paper."""

from __future__ import annotations

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.testbeds import arithmetic_lm

pytestmark = pytest.mark.paper("chain-of-thought")

experiment = load_experiment("chain-of-thought")

TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}


@pytest.fixture
def tiny_model(monkeypatch, tmp_path):
    """Replace the calibrated model by a tiny, barely trained one (mechanics only, seconds)."""

    def build(cfg=None, cache=None, *, seed=0):
        return arithmetic_lm.arithmetic_language_model(
            arithmetic_lm.ArithmeticLMConfig(**TINY), tmp_path, seed=seed
        )

    monkeypatch.setattr(experiment, "arithmetic_language_model", build)


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("chain-of-thought", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert [c.metric for c in claimed] == ["gain_over_direct"]
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.1f} < threshold {claim.threshold}"
    assert "accuracy_by_style" in result.figures


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["reasoning_after_answer", "variable_compute"])
def test_ablations_without_the_reasoning_before_the_answer_fail_the_claim(arm):
    cfg = make_config(experiment, "quick", reasoning=arm, seeds=1)
    result = reproduce("chain-of-thought", cfg)
    gain = next(c for c in result.claims if c.metric == "gain_over_direct")
    assert gain.passed is False
    assert gain.ours < 20.0  # about standard prompting's accuracy (Figure 5)


def test_same_seed_gives_the_same_metrics(tiny_model):
    cfg = make_config(experiment, "quick", seeds=1, problems=6, shots=2, max_tokens=8)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details["per_size"] == second.details["per_size"]
    assert set(first.metrics) >= {f"{s}_accuracy" for s in experiment.STYLES} | {"gain_over_direct"}
    assert all(0.0 <= first.metrics[f"{s}_accuracy"] <= 100.0 for s in experiment.STYLES)


def test_full_config_smoke_runs_the_size_sweep_with_tiny_overrides(tiny_model):
    cfg = dataclasses.replace(experiment.Config.full(), seeds=1, problems=4, shots=2, max_tokens=6)
    result = experiment.run(cfg)
    assert {"small_gain_over_direct", "large_gain_over_direct", "gain_growth_with_scale"} <= set(
        result.metrics
    )


def test_exemplars_from_the_testbed_drop_the_answer_sentence():
    problem = arithmetic_lm.arithmetic_problems(1, seed=0, min_steps=2, max_steps=2)[0]
    exemplar = experiment.exemplar_of(problem)
    assert exemplar.answer == str(problem.answer)
    assert f"{exemplar.rationale} The answer is {problem.answer}." == problem.rationale
    assert "The answer is" not in exemplar.rationale


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.sizes == ("small", "medium", "large") and full.shots == 8  # Figure 4 sweep; 8 exemplars
    quick = experiment.Config.quick()
    assert (quick.scale, quick.seeds, quick.sizes, quick.reasoning) == (
        "quick",
        3,
        ("small",),
        "chain_of_thought",
    )
    assert (quick.min_steps, quick.max_steps) == (2, 3)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="reasoning"):
        make_config(experiment, "quick", reasoning="standard")
    with pytest.raises(ValueError, match="sizes"):
        make_config(experiment, "quick", sizes=("huge",))
    with pytest.raises(ValueError, match="max_steps"):
        make_config(experiment, "quick", min_steps=3, max_steps=2)
    with pytest.raises(ValueError, match="problems"):
        make_config(experiment, "quick", problems=0)
