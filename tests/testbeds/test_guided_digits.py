"""The guided-digits testbed: cached joint denoiser and noise-aware classifier, the judge's metrics,
the matched-fidelity interpolation; bad configs."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.testbeds.digit_judge import digit_images
from aicanon.testbeds.guided_digits import (
    NULL_LABEL,
    ClassifierConfig,
    DenoiserConfig,
    SampleJudge,
    joint_denoiser,
    noise_aware_classifier,
    recall_at_fidelity,
    sample_digits,
    sample_figure,
)

pytestmark = pytest.mark.paper("adm-guided-diffusion")  # shared with classifier-free-guidance

TINY_DENOISER = DenoiserConfig(widths=(8, 16), attention_head_dim=8, steps=3, batch_size=8, timesteps=50)
TINY_CLASSIFIER = ClassifierConfig(widths=(8, 16), attention_head_dim=8, steps=3, batch_size=8, timesteps=50)


def test_models_train_once_and_load_from_the_cache(tmp_path):
    first = joint_denoiser(TINY_DENOISER, cache=str(tmp_path))
    assert len(first.losses) == 3 and first.model.config.num_classes == 11
    again = joint_denoiser(TINY_DENOISER, cache=str(tmp_path))
    for (name, a), b in zip(first.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert again.losses == first.losses
    other = joint_denoiser(DenoiserConfig(**{**TINY_DENOISER.__dict__, "seed": 1}), cache=str(tmp_path))
    assert not torch.equal(other.model.conv_in.weight, first.model.conv_in.weight)
    c1 = noise_aware_classifier(TINY_CLASSIFIER, cache=str(tmp_path))
    c2 = noise_aware_classifier(TINY_CLASSIFIER, cache=str(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(c1.state_dict().values(), c2.state_dict().values()))
    assert not c1.training
    assert len(list((tmp_path / "denoiser").iterdir())) == 2 and (tmp_path / "classifier").is_dir()


def test_sampling_and_the_judge(tmp_path):
    denoiser = joint_denoiser(TINY_DENOISER, cache="")
    labels = torch.arange(20) % 10
    images = sample_digits(
        denoiser.model,
        denoiser.diffusion,
        labels,
        steps=3,
        model_kwargs={"class_labels": torch.full_like(labels, NULL_LABEL)},
        generator=torch.Generator().manual_seed(0),
    )
    assert images.shape == (20, 1, 8, 8) and images.abs().max() <= 1
    judge = SampleJudge(cache=str(tmp_path))
    real, real_labels = digit_images("digits8", "test")
    scores = judge(real[:200], real_labels[:200])
    assert set(scores) == {"fidelity", "confidence", "precision", "recall", "fd"}
    assert scores["fidelity"] > 0.9 and scores["precision"] > 0.9  # real digits score as real
    noise = judge(torch.rand(200, 1, 8, 8) * 2 - 1, real_labels[:200])
    assert noise["fidelity"] < 0.5 and noise["fd"] > scores["fd"]
    figure = sample_figure({"real": real[:10], "noise": images[:10]}, per_row=10)
    assert len(figure.axes) == 2


def test_recall_at_fidelity_interpolates():
    assert recall_at_fidelity([0.9, 0.99, 1.0], [0.8, 0.6, 0.4], 0.95) == pytest.approx(0.8 - 0.2 * 5 / 9)
    assert recall_at_fidelity([0.96, 1.0], [0.7, 0.5], 0.95) == 0.7  # already there at the first point
    assert math.isnan(recall_at_fidelity([0.5, 0.6], [0.9, 0.8], 0.95))  # never reached
    with pytest.raises(ValueError, match="same length"):
        recall_at_fidelity([0.5], [0.9, 0.8], 0.95)


def test_bad_configs():
    with pytest.raises(ValueError, match="p_uncond must be a probability"):
        DenoiserConfig(p_uncond=1.5)
    with pytest.raises(ValueError, match="resample must be one of"):
        DenoiserConfig(resample="pixelshuffle")
    with pytest.raises(ValueError, match="steps must be >= 0"):
        ClassifierConfig(steps=-1)
    with pytest.raises(ValueError, match="attention_head_dim"):
        ClassifierConfig(widths=(16, 48), attention_head_dim=32)
    with pytest.raises(TypeError, match="cfg must be a DenoiserConfig"):
        joint_denoiser(TINY_CLASSIFIER, cache="")
    with pytest.raises(TypeError, match="cfg must be a ClassifierConfig"):
        noise_aware_classifier(TINY_DENOISER, cache="")
