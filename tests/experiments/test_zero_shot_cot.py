"""Zero-shot-CoT's experiment: the quick reproduction passes its claims on the cached testbed model
(slow: a clean machine pre-trains it first); a misleading or irrelevant trigger fails them; the
mechanics (determinism, configs, the full config's smoke test) on a tiny model trained here."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.reasoning.zero_shot_cot import TEMPLATES
from aicanon.testbeds.arithmetic_lm import ArithmeticLMConfig, arithmetic_language_model

pytestmark = pytest.mark.paper("zero-shot-cot")

experiment = load_experiment("zero-shot-cot")
TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """Route the experiment to a tiny, barely trained testbed model (mechanics only)."""
    cfg = ArithmeticLMConfig(**TINY)

    def load(_cfg=None, cache=None, *, seed=0):
        return arithmetic_language_model(cfg, cache=tmp_path, seed=seed)

    monkeypatch.setattr(experiment, "arithmetic_language_model", load)


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("zero-shot-cot", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"gain_over_zero_shot", "instructive_minus_best_other"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    assert "trigger_table" in result.figures


@pytest.mark.slow
@pytest.mark.parametrize("trigger", ["Abrakadabra!", "Don't think. Just feel."])
def test_ablation_misleading_or_irrelevant_trigger_fails_the_claim(trigger):
    cfg = make_config(experiment, "quick", trigger=trigger, seeds=1)
    result = reproduce("zero-shot-cot", cfg)
    gain = next(c for c in result.claims if c.metric == "gain_over_zero_shot")
    assert gain.passed is False and gain.ours < 20.0
    table = next(c for c in result.claims if c.metric == "instructive_minus_best_other")
    assert table.passed is False


def test_same_seed_gives_the_same_metrics(tiny_model):
    cfg = make_config(
        experiment,
        "quick",
        seeds=1,
        problems=4,
        triggers=("Abrakadabra!", ""),
        max_reasoning_tokens=6,
        max_answer_tokens=3,
    )
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details["trigger_table"] == second.details["trigger_table"]
    # the claimed trigger is added to the table when missing
    assert list(first.details["trigger_table"]) == ["Let's think step by step.", "Abrakadabra!", ""]


def test_full_config_smoke(tiny_model):
    cfg = make_config(experiment, "full", seeds=1, problems=2, max_reasoning_tokens=4, max_answer_tokens=2)
    result = experiment.run(cfg)
    assert len(result.details["trigger_table"]) == 17
    for name in ("gain_over_zero_shot", "zero_shot_cot_paper_trigger_accuracy", "instructive_mean_accuracy"):
        assert 0 <= abs(result.metrics[name]) <= 100


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.triggers[:16] == tuple(t.trigger for t in TEMPLATES) and full.triggers[16] == ""
    assert (full.max_reasoning_tokens, full.max_answer_tokens, full.trigger) == (
        128,
        32,
        "Let's think step by step.",
    )
    quick = experiment.Config.quick()
    assert (quick.scale, quick.seeds, quick.problems, quick.threads) == ("quick", 2, 60, 1)
    categories = {t.category for t in TEMPLATES if t.trigger in quick.triggers}
    assert categories == {"instructive", "misleading", "irrelevant"}
    paper = {c.metric: c.paper for c in experiment.CLAIMS}
    assert paper["gain_over_zero_shot"] == pytest.approx(78.7 - 17.7)
    assert paper["instructive_minus_best_other"] == pytest.approx(78.7 - 18.8)


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"problems": 0}, ValueError),
        ({"max_steps": 1, "min_steps": 2}, ValueError),
        ({"answer_trigger": " "}, ValueError),
        ({"triggers": ("a", "a")}, ValueError),
        ({"triggers": ["a"]}, ValueError),
        ({"model_size": "huge"}, ValueError),
        ({"trigger": 3}, TypeError),
    ],
)
def test_bad_config_is_rejected(override, error):
    with pytest.raises(error):
        experiment.Config(**override)
