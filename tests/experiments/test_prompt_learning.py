"""Prompt-based learning's experiment: the quick reproduction with its claims, the untrained-LM
ablation, seeding, the configs, a smoke run of the full config, bad config."""

from __future__ import annotations

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("prompt-learning")

experiment = load_experiment("prompt-learning")


@pytest.fixture(scope="module")
def mlm_cache(tmp_path_factory) -> str:
    """One masked-LM cache for this module: the quick MLM is pre-trained once, then loaded."""
    return str(tmp_path_factory.mktemp("masked-lm"))


# A small masked LM (pre-trained in a second) for the tests that check the experiment's mechanics.
SMALL = {"mlm_layers": 1, "mlm_hidden": 32, "mlm_steps": 30}


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim(mlm_cache):
    cfg = make_config(experiment, "quick", cache=mlm_cache)
    result = reproduce("prompt-learning", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed, "the quick scale must claim something"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    assert "strategies" in result.figures
    for key in (
        "zero_shot_accuracy",
        "prompt_few_shot_accuracy",
        "head_few_shot_accuracy",
        "soft_prompt_gap_closed",
    ):
        assert key in result.metrics


def test_untrained_lm_ablation_fails_the_quick_claim():
    # No pre-training: nothing is pre-trained or cached, only the vocabulary is built.
    cfg = make_config(experiment, "quick", pretrained=False, sweep_shots=())
    result = reproduce("prompt-learning", cfg)
    claim = next(c for c in result.claims if c.metric == "prompt_minus_head")
    assert claim.passed is False and claim.ours < -1.0  # about -2.5 points (PET 48.7, head 51.2)
    # An untrained LM has nothing for a prompt to read: tuning-free prompting is a guess.
    assert 45.0 <= result.metrics["zero_shot_accuracy"] <= 55.0
    assert any(n.startswith("pretrained=False") for n in result.notes)


def test_same_seed_gives_the_same_metrics(mlm_cache):
    cfg = make_config(
        experiment,
        "quick",
        cache=mlm_cache,
        **SMALL,
        seeds=1,
        steps=4,
        shots=4,
        sweep_shots=(4, 8),
        soft_prompt_length=2,
        eval_examples=64,
    )
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert {"soft_prompt_gap_4", "soft_prompt_gap_8", "soft_prompt_gap_closed"} <= set(first.metrics)


def test_configs_follow_the_papers():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert quick.template == full.template == "[X] it was [Z] ."  # LM-BFF's SST-2 template
    assert quick.answers == ("bad", "good") and quick.shots == full.shots == 16  # LM-BFF's K = 16
    assert full.sweep_shots[0] == 16 and full.sweep_shots[-1] >= 1024 and full.causal_lm
    assert full.mlm_steps > quick.mlm_steps and full.seeds >= 5


def test_full_config_smoke_with_tiny_overrides(tmp_path):
    cfg = make_config(
        experiment,
        "full",
        cache=str(tmp_path),
        seeds=1,
        mlm_layers=1,
        mlm_hidden=32,
        mlm_steps=3,
        steps=2,
        sweep_shots=(2, 4),
        soft_prompt_length=2,
        causal_lm_steps=2,
        eval_examples=16,
    )
    result = experiment.run(cfg)
    assert {"causal_lm_zero_shot_accuracy", "soft_prompt_gap_closed", "prompt_minus_head"} <= set(
        result.metrics
    )


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"shots": 0}, "shots must be a positive int"),
        ({"template": "[X] it was"}, "exactly once"),
        ({"answers": ("good",)}, "two answer words"),
        ({"sweep_shots": (0,)}, "sweep_shots must be positive"),
        ({"reduction": "max"}, "reduction must be one of"),
    ],
)
def test_bad_config_is_rejected(overrides, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_config(experiment, "quick", **overrides)
