"""The LoRA quick reproduction: Table 2's point at small scale, the broken variant, seeds, config."""

from __future__ import annotations

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import ExperimentConfig, make_config
from aicanon.experiments import lora

pytestmark = pytest.mark.paper("lora")


def test_quick_reproduction_meets_every_quick_claim(base_cache):
    cfg = make_config(lora, "quick", cache=base_cache, device="cpu")
    result = reproduce("lora", cfg)
    failed = [(c.metric, c.ours, c.threshold) for c in result.claims if c.passed is False]
    assert not failed, failed
    assert result.metrics["phi_top1"] > result.metrics["phi_top1_random"]
    assert result.metrics["trainable_head"] == 2 * cfg.base_hidden + 2
    assert "subspace_similarity" in result.figures


def test_untrained_lora_arm_fails_the_accuracy_claim(base_cache):
    cfg = make_config(lora, "quick", cache=base_cache, device="cpu", train_lora=False)
    result = lora.run(cfg)
    claim = next(c for c in lora.CLAIMS if c.metric == "accuracy_ratio")
    assert claim.check(result.metrics["accuracy_ratio"], "quick") is False
    assert result.metrics["accuracy_ratio"] < 0.9


def test_same_seed_same_metrics(tmp_path):
    short = {
        "cache": str(tmp_path),
        "device": "cpu",
        "base_steps": 10,
        "base_seq_len": 32,
        "base_batch": 8,
        "train_sentences": 64,
        "max_chars": 32,
        "rank_high": 16,
    }
    first = lora.run(make_config(lora, "quick", **short)).metrics
    second = lora.run(make_config(lora, "quick", **short)).metrics
    assert first == second


def test_config_protocol():
    module = load_experiment("lora")
    quick, full = module.Config.quick(), module.Config.full()
    assert isinstance(quick, ExperimentConfig) and (quick.scale, full.scale) == ("quick", "full")
    assert quick.seeds >= 1 and full.seeds >= 1
    assert full.rank_high == 64 and full.train_sentences == 0
    names = {f.name for f in dataclasses.fields(quick)}
    metrics = [c.metric for c in lora.CLAIMS]
    assert len(metrics) == len(set(metrics)) and all(c.source for c in lora.CLAIMS)
    assert {"accuracy_ratio", "trainable_fraction", "optimizer_state_ratio", "phi_top1"} <= set(metrics)
    assert "rank" in names
    with pytest.raises(ValueError, match="has no field 'ranks'"):
        make_config(lora, "quick", ranks=3)


def test_a_killed_run_resumes_from_its_checkpoints_to_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "results"))  # checkpoints live under it
    short = {
        "cache": str(tmp_path / "cache"),
        "device": "cpu",
        "base_steps": 10,
        "base_seq_len": 32,
        "base_batch": 8,
        "train_sentences": 160,
        "max_chars": 32,
        "epochs": 1,
        "rank_high": 16,
        "checkpoint_every": 2,
    }
    cfg = make_config(lora, "quick", **short)
    reference = lora.run(cfg).metrics
    folder = tmp_path / "results" / "_checkpoints" / "lora"
    assert not any(folder.rglob("*.json"))  # a finished run leaves no checkpoints behind

    real_track = lora.track

    def killed_in_the_lora_arm(iterable, description, total=None):
        for i, item in enumerate(real_track(iterable, description, total=total)):
            if description == "fine-tuning: LoRA r=8" and i == 3:
                raise KeyboardInterrupt  # the kill, after 3 of 5 steps (a checkpoint at step 2)
            yield item

    monkeypatch.setattr(lora, "track", killed_in_the_lora_arm)
    with pytest.raises(KeyboardInterrupt):
        lora.run(cfg)
    arms = {p.name for p in next(folder.iterdir()).iterdir()}
    assert arms == {"full", "lora_r8"}

    steps_run = []

    def counting(iterable, description, total=None):
        steps_run.append((description, total))
        return real_track(iterable, description, total=total)

    monkeypatch.setattr(lora, "track", counting)
    resumed = lora.run(cfg).metrics
    assert resumed == reference
    # the finished arm is not retrained; the killed arm runs only its remaining 3 steps
    assert ("fine-tuning: full", 0) in steps_run and ("fine-tuning: LoRA r=8", 3) in steps_run
