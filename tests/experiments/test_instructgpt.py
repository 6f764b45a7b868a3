"""InstructGPT stages 1-2 quick reproduction: the reward model's held-out accuracy claims, the
untrained variant failing them, seeds repeating, and the config protocol.

The catalog keeps ``instructgpt`` planned (stage 3 is missing), so the tests call
``aicanon.core.experiment.reproduce`` directly rather than the CLI.
"""

from __future__ import annotations

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import ExperimentConfig, make_config
from aicanon.experiments import instructgpt

pytestmark = pytest.mark.paper("instructgpt")


def test_quick_reproduction_meets_every_quick_claim(base_cache):
    cfg = make_config(instructgpt, "quick", cache=base_cache, device="cpu")
    result = reproduce("instructgpt", cfg)
    failed = [(c.metric, c.ours, c.threshold) for c in result.claims if c.passed is False]
    assert not failed, failed
    metrics = result.metrics
    # Llama 2 Table 8's pattern: clearly separated pairs are ordered better than the weakest ones.
    assert metrics["accuracy_separated"] > metrics["accuracy_weakest"]
    # Section 3.5's normalisation: the demonstrations score 0 on average.
    assert abs(metrics["demonstration_mean_reward"]) < 1e-4
    assert metrics["pairs_heldout"] > 1000 and "accuracy_by_strength" in result.figures
    assert any("Stages 1-2 only" in note for note in result.notes)


def test_untrained_reward_model_fails_the_accuracy_claims(base_cache):
    cfg = make_config(instructgpt, "quick", cache=base_cache, device="cpu", train_rm=False)
    metrics = instructgpt.run(cfg).metrics
    for metric in ("accuracy_heldout", "accuracy_separated"):
        claim = next(c for c in instructgpt.CLAIMS if c.metric == metric)
        assert claim.check(metrics[metric], "quick") is False, (metric, metrics[metric])
    assert 0.35 < metrics["accuracy_heldout"] < 0.6


def test_same_seed_same_metrics(tmp_path):
    short = {
        "cache": str(tmp_path),
        "device": "cpu",
        "base_steps": 10,
        "base_seq_len": 32,
        "base_batch": 8,
        "demonstrations": 16,
        "train_prompts": 8,
        "heldout_prompts": 8,
        "k": 4,
        "max_new_tokens": 12,
        "rm_epochs": 1,
    }
    first = instructgpt.run(make_config(instructgpt, "quick", **short)).metrics
    second = instructgpt.run(make_config(instructgpt, "quick", **short)).metrics
    assert first == pytest.approx(second, nan_ok=True, rel=0, abs=0)


def test_config_protocol():
    module = load_experiment("instructgpt")
    quick, full = module.Config.quick(), module.Config.full()
    assert isinstance(quick, ExperimentConfig) and (quick.scale, full.scale) == ("quick", "full")
    assert quick.seeds >= 1 and full.seeds >= 1
    assert 4 <= quick.k <= 9 and 4 <= full.k <= 9  # InstructGPT's K
    assert quick.margin_scale in ("small", "large")
    names = {f.name for f in dataclasses.fields(quick)}
    metrics = [c.metric for c in instructgpt.CLAIMS]
    assert len(metrics) == len(set(metrics)) and all(c.source for c in instructgpt.CLAIMS)
    assert {"accuracy_heldout", "accuracy_separated", "margin_gain_separated"} <= set(metrics)
    assert {"train_rm", "cache", "rm_epochs"} <= names
    with pytest.raises(ValueError, match="has no field 'epochs'"):
        make_config(instructgpt, "quick", epochs=3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("k", 1, r"Config.k must be >= 2 \(completions to compare per prompt\), got 1"),
        ("margin_scale", "huge", r"Config.margin_scale must be one of \('small', 'large'\), got 'huge'"),
        ("rm_epochs", 0, "Config.rm_epochs must be >= 1, got 0"),
        ("temperature", 0.0, r"Config.temperature must be > 0 \(completions are sampled\), got 0.0"),
    ],
)
def test_bad_config_is_rejected_before_any_work(field, value, message):
    cfg = make_config(instructgpt, "quick", cache="", device="cpu", **{field: value})
    with pytest.raises(ValueError, match=message):
        instructgpt.run(cfg)
    with pytest.raises(TypeError, match="cfg must be an instructgpt.Config, got dict"):
        instructgpt.check_config({})
