"""The pointer sentinel experiment: the quick reproduction passes its claims; without the pointer it fails."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.data import DataUnavailable, registry
from aicanon.core.experiment import make_config
from aicanon.datasets.wikitext import TRAIN_URL
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("pointer-sentinel")

experiment = load_experiment("pointer-sentinel")

# A few steps on a small vocabulary: enough to exercise every path in a second or two.
TINY = dict(steps=3, max_vocab=300, hidden_size=16, window=10, bptt=10, batch_size=4, eval_tokens=3000)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("pointer-sentinel", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"perplexity_ratio", "rare_minus_frequent_gain"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f}, threshold {claim.threshold}"
    metrics = result.metrics
    assert metrics["pointer_perplexity"] < metrics["lstm_perplexity"]
    assert metrics["rare_gain"] > metrics["frequent_gain"]
    assert {"training_curves", "gain_by_frequency"} <= set(result.figures)


def test_gate_fixed_at_one_fails_the_quick_claims():
    # g = 1 is the softmax LM: from the same seed and batches it is the LSTM-LM, step for step.
    # Fewer steps and tokens than the quick run: the two models coincide at every step, so the ratio
    # is 1 whatever the length of the run.
    cfg = make_config(experiment, "quick", fixed_gate=1.0, steps=20, eval_tokens=8000)
    result = reproduce("pointer-sentinel", cfg)
    claims = {c.metric: c for c in result.claims}
    assert claims["perplexity_ratio"].passed is False
    assert claims["rare_minus_frequent_gain"].passed is False
    assert result.metrics["perplexity_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert result.metrics["rare_minus_frequent_gain"] == pytest.approx(0.0, abs=1e-3)


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_killed_training_resumes_to_the_uninterrupted_run(monkeypatch, tmp_path):
    # A text of 6 segments per epoch, 10 steps, dropout on: the resumed pointer model reads on from
    # its checkpoint at step 4 across the epoch boundary, with the LSTM state, the pointer's window
    # and the dropout RNG as the uninterrupted run had them.
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(
        experiment, "quick", **{**TINY, "steps": 10}, train_fraction=0.001, dropout=0.3, bucket_edges=(1, 3)
    )
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=4)
    resumed, calls = interrupt_and_resume(
        monkeypatch, torch.optim.Adam, "step", lambda: experiment.run(cfg), kill_at=10 + 7
    )
    assert len(calls) == 6  # the pointer model's steps 5-10; the LSTM-LM is restored, not retrained
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    assert not any((tmp_path / "_checkpoints" / "pointer-sentinel").iterdir())
    assert experiment.Config.full().checkpoint_every == 2000


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.training_text, full.window, full.bptt, full.hidden_size, full.num_layers) == (
        "train",
        100,
        100,
        650,
        2,
    )
    assert full.max_vocab is None and full.dropout == 0.5
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.training_text == "valid-head" and quick.window == 100


def test_full_config_runs_a_few_steps_on_cpu():
    # train.txt is not staged: the full run names its URL; with valid.txt standing in for it, the
    # full configuration (2 layers, BPTT 100, window 100, dropout) trains and evaluates.
    if "train.txt" not in registry()["wikitext-2"]:
        with pytest.raises(DataUnavailable, match="train.txt"):
            experiment.run(make_config(experiment, "full", steps=1))
    cfg = make_config(
        experiment,
        "full",
        training_text="valid-head",
        steps=2,
        max_vocab=300,
        hidden_size=16,
        batch_size=4,
        eval_batch_size=2,
        eval_tokens=600,
        device="cpu",
    )
    result = experiment.run(cfg)
    assert result.metrics["pointer_perplexity"] > 1
    assert TRAIN_URL.endswith("wikitext-2/train.txt")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (dict(training_text="wiki103"), "training_text must be 'valid-head' or 'train'"),
        (dict(train_fraction=1.0), r"train_fraction must be in \(0.0, 1.0\)"),
        (dict(window=0), "window must be >= 1"),
        (dict(fixed_gate=0.0), r"fixed_gate must be in \(0.0, 1.0\]"),
        (dict(bucket_edges=(100, 10)), "bucket_edges must be increasing positive ints"),
        (dict(dropout=1.0), r"dropout must be a probability in \[0, 1\)"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)
