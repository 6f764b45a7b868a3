"""The shared denoiser training loop: it learns, it is seeded, it resumes to the identical result."""

from __future__ import annotations

import pytest
import torch

from aicanon.core.checkpoint import CheckpointMismatch
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.schedules import cosine_betas
from aicanon.generative.diffusion.unet import UNet, UNetConfig
from aicanon.testbeds.diffusion_training import DenoiserTraining, train_denoiser
from aicanon.testbeds.digit_judge import digit_images

CFG = UNetConfig(
    in_channels=1,
    out_channels=2,
    block_out_channels=(16, 32),
    layers_per_block=1,
    attention_levels=(False, True),
    norm_groups=8,
    num_classes=10,
    dropout=0.1,
)


def _data():
    x, y = digit_images("digits8", "train")
    return {"x0": x[:256], "class_labels": y[:256]}


def _run(steps: int, checkpoint=None, transform=None, **overrides):
    torch.manual_seed(0)
    model = UNet(CFG)
    diffusion = GaussianDiffusion(cosine_betas(100), variance="learned_range")
    settings = {"batch_size": 16, "lr": 2e-3, "loss": "hybrid", "checkpoint_every": 5, **overrides}
    cfg = DenoiserTraining(steps=steps, **settings)
    return train_denoiser(
        model,
        diffusion,
        _data(),
        cfg,
        generator=torch.Generator().manual_seed(1),
        kwargs_transform=transform,
        checkpoint=checkpoint,
    )


def test_loss_falls_and_ema_trails():
    trained = _run(60)
    first, last = sum(trained.losses[:10]) / 10, sum(trained.losses[-10:]) / 10
    assert last < 0.7 * first
    difference = sum(
        (p - q).abs().sum()
        for p, q in zip(trained.model.parameters(), trained.ema.average.parameters(), strict=True)
    )
    assert difference > 0


def test_same_seed_same_run():
    assert _run(8).losses == _run(8).losses


def test_a_killed_run_resumes_to_the_identical_result(tmp_path):
    reference = _run(12)

    class Killed(RuntimeError):
        pass

    calls = {"n": 0}

    def dies_at_step_8(kwargs, generator):
        calls["n"] += 1
        if calls["n"] == 8:
            raise Killed
        return kwargs

    with pytest.raises(Killed):
        _run(12, checkpoint=tmp_path, transform=dies_at_step_8)
    resumed = _run(12, checkpoint=tmp_path)
    assert resumed.resumed_from == 5
    assert resumed.losses == reference.losses
    for p, q in zip(resumed.model.parameters(), reference.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=0, rtol=0)
    with pytest.raises(CheckpointMismatch, match="lr"):
        _run(12, checkpoint=tmp_path, lr=1e-2)


def test_bad_input():
    with pytest.raises(ValueError, match="loss"):
        DenoiserTraining(loss="l1")
    model, diffusion = UNet(CFG), GaussianDiffusion(cosine_betas(100), variance="learned_range")
    with pytest.raises(ValueError, match="x0"):
        train_denoiser(
            model,
            diffusion,
            {"images": torch.zeros(2, 1, 8, 8)},
            DenoiserTraining(steps=1),
            generator=torch.Generator(),
        )
    with pytest.raises(ValueError, match="rows"):
        train_denoiser(
            model,
            diffusion,
            {"x0": torch.zeros(2, 1, 8, 8), "class_labels": torch.zeros(3).long()},
            DenoiserTraining(steps=1),
            generator=torch.Generator(),
        )
