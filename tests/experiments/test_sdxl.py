"""SDXL's quick reproduction: the size condition controls sharpness, the crop condition centres the
digit, the refiner sharpens blurry samples; without micro-conditioning both micro-conditioning
claims fail."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("sdxl")

experiment = load_experiment("sdxl")

# A few steps of everything: for determinism and the ablation's structural failure.
TINY = {"steps": 6, "refiner_steps": 4, "samples_per_class": 2, "sampling_steps": 3, "copies": 1}


@pytest.fixture(scope="module")
def quick():
    return reproduce("sdxl", make_config(experiment, "quick"))


def test_quick_reproduction_meets_every_quick_claim(quick):
    claimed = [c for c in quick.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {
        "sharpness_ratio",
        "crop_shift",
        "centre_offset",
        "refiner_sharpness_gain",
    }
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} vs threshold {claim.threshold}"
    # The real data's own effects bound what the model can show.
    assert quick.metrics["real_sharpness_ratio"] > quick.metrics["sharpness_ratio"]
    assert quick.metrics["crop_shift"] < quick.metrics["real_crop_shift"] + 0.5
    assert "samples" in quick.figures


def test_without_micro_conditioning_the_conditions_change_nothing():
    """time_ids zeroed: the three sampling conditions give the same samples (ratio 1, shift 0), so
    both micro-conditioning claims fail whatever the training length."""
    cfg = make_config(experiment, "quick", micro_conditioning=False, **TINY)
    result = reproduce("sdxl", cfg)
    outcomes = {c.metric: c for c in result.claims}
    assert outcomes["sharpness_ratio"].passed is False and outcomes["crop_shift"].passed is False
    assert result.metrics["sharpness_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert result.metrics["crop_shift"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_ablations_at_quick_scale_fail():
    """Trained as long as the quick run: without micro-conditioning the crop-(0, 0) samples are the
    mixture of cropped and uncropped digits (off centre), and a refiner trained on blurry digits
    removes high frequencies instead of adding them."""
    cfg = make_config(experiment, "quick", micro_conditioning=False, refiner_data="blurry")
    outcomes = {c.metric: c for c in reproduce("sdxl", cfg).claims}
    for metric in ("sharpness_ratio", "crop_shift", "centre_offset", "refiner_sharpness_gain"):
        assert outcomes[metric].passed is False, metric


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=4))
    second = experiment.run(dataclasses.replace(cfg, seed=4))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_killed_seed_resumes_to_the_uninterrupted_run(monkeypatch, tmp_path):
    # Base model 6 steps, refiner 4, a checkpoint every 2; killed in the refiner's third step: the base
    # model comes back from its last checkpoint (not retrained), the samples draw the same noise from the
    # shared generator, the refiner resumes after its step 2, and the metrics equal the uninterrupted run's.
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(experiment, "quick", **TINY)
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=2)
    resumed, calls = interrupt_and_resume(
        monkeypatch, torch.optim.AdamW, "step", lambda: experiment.run(cfg), kill_at=6 + 3
    )
    assert len(calls) == 2  # the refiner's steps 3 and 4
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    assert not any((tmp_path / "_checkpoints" / "sdxl").iterdir())
    assert experiment.Config.full().checkpoint_every == 5000


def test_configs_follow_the_paper():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    for cfg in (quick, full):
        # Section 2.5: the refiner is specialised on the first 200 of 1000 noise scales.
        assert (cfg.timesteps, cfg.refiner_timesteps) == (1000, 200)
        assert cfg.refine_strength * cfg.timesteps <= cfg.refiner_timesteps
        assert cfg.micro_conditioning
    assert quick.scale == "quick" and quick.dataset == "digits8" and quick.low_resolution_sizes == (4,)
    assert full.scale == "full" and full.dataset == "mnist" and full.seeds == 3
    assert full.ema_decay == 0.9999  # SDXL's EMA decay


def test_full_config_runs_a_few_steps_on_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # the full config checkpoints under the results
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        device="cpu",
        train_images=64,
        steps=2,
        batch_size=2,
        refiner_steps=2,
        sampling_steps=1,
        samples_per_class=1,
        refine_steps=5,
    )
    result = experiment.run(cfg)
    for name in ("sharpness_ratio", "crop_shift", "refiner_sharpness_gain", "real_crop_shift"):
        assert torch.isfinite(torch.tensor(result.metrics[name])), name


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="refiner's refiner_timesteps=200"):
        experiment.run(make_config(experiment, "quick", refine_strength=0.5))
    with pytest.raises(ValueError, match="below the canvas size 8"):
        experiment.run(make_config(experiment, "quick", low_resolution_sizes=(8,)))
    with pytest.raises(ValueError, match="dataset must be one of"):
        experiment.Config(dataset="cifar10")
    with pytest.raises(ValueError, match="low_resolution_fraction must be a probability"):
        experiment.Config(low_resolution_fraction=1.5)
    with pytest.raises(ValueError, match="refiner_timesteps must be <= timesteps"):
        experiment.Config(timesteps=100, refiner_timesteps=200, refine_strength=0.1)
