"""Mask2Former's experiment: MNIST panoptic canvases, masked vs standard cross-attention."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("mask2former")

experiment = load_experiment("mask2former")

TINY = dict(train_canvases=16, test_canvases=8, steps=2, batch_size=4, num_points=64, seeds=1)


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("mask2former", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed, "the quick scale must claim something"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} vs threshold {claim.threshold}"
    assert "training" in result.figures


def test_untrained_model_fails_the_quick_claims():
    cfg = make_config(experiment, "quick", **{**TINY, "steps": 0, "test_canvases": 32})
    result = reproduce("mask2former", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed
    masked = next(c for c in result.claims if c.metric == "pq_masked")
    assert masked.passed is False
    assert masked.ours < 5.0


def test_canvases_are_disjoint_complete_panoptic_segmentations():
    from aicanon.datasets.mnist import load_mnist

    images, labels = load_mnist("test")
    cfg = experiment.Config.quick()
    canvases, targets = experiment.make_canvases(
        images[:500], labels[:500], 12, cfg, torch.Generator().manual_seed(0)
    )
    assert canvases.shape == (12, 1, cfg.canvas, cfg.canvas)
    assert 0.0 <= float(canvases.min()) and float(canvases.max()) <= 1.0
    for target in targets:
        masks = target["masks"]
        assert torch.equal(masks.sum(0), torch.ones(cfg.canvas, cfg.canvas, dtype=torch.long))
        things = target["labels"][target["isthing"]]
        assert 1 <= len(things) <= cfg.max_digits
        assert (things >= 2).all() and (things < 2 + len(cfg.digits)).all()
        assert not (target["labels"][~target["isthing"]] >= 2).any()


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics


def test_a_killed_run_resumes_each_variant_from_its_checkpoint(tmp_path, monkeypatch):
    """Killed in the second variant's fourth step (last checkpoint: step 2), the rerun skips the first
    variant's training, retrains the second from step 2, and reports the uninterrupted metrics."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(experiment, "quick", **{**TINY, "steps": 4})
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=2)
    resumed, calls = interrupt_and_resume(
        monkeypatch, torch.optim.AdamW, "step", lambda: experiment.run(cfg), kill_at=4 + 4
    )
    assert len(calls) == 2  # the cross-attention variant's steps 3-4 only
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details  # the loss curves too
    assert not any((tmp_path / "_checkpoints" / "mask2former").iterdir())
    assert experiment.Config.full().checkpoint_every == 1000


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.dim, full.num_queries, full.num_heads, full.decoder_layers, full.encoder_layers) == (
        256,
        100,
        8,
        9,
        6,
    )
    assert (full.decoder_ffn_dim, full.encoder_ffn_dim, full.num_points) == (2048, 1024, 12544)
    assert (full.learning_rate, full.weight_decay) == (1e-4, 0.05)
    assert (full.object_threshold, full.overlap_threshold) == (0.8, 0.8)
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.masked_attention and quick.train_cross_attention


def test_full_config_smoke():
    cfg = dataclasses.replace(
        experiment.Config.full(),
        train_canvases=4,
        test_canvases=2,
        steps=1,
        batch_size=2,
        seeds=1,
        device="cpu",
    )
    result = experiment.run(cfg)
    assert 0.0 <= result.metrics["pq_masked"] <= 100.0
    assert "pq_gain_over_cross_attention" in result.metrics


def test_bad_config_is_rejected():
    cfg = make_config(experiment, "quick", **TINY)
    with pytest.raises(ValueError, match="canvas"):
        experiment.run(dataclasses.replace(cfg, canvas=48))
    with pytest.raises(ValueError, match="digits"):
        experiment.run(dataclasses.replace(cfg, digits=(1, 1)))
    with pytest.raises(ValueError, match="learning_rate"):
        experiment.run(dataclasses.replace(cfg, learning_rate=0.0))
