"""The digit judge: accurate on real digits, unconvinced by noise, cached, and its features separate
real from fake in precision/recall."""

from __future__ import annotations

import pytest
import torch

from aicanon.generative.sample_metrics import frechet_distance, precision_recall
from aicanon.testbeds.digit_judge import JudgeConfig, digit_images, digit_judge


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    return digit_judge("digits8", cache=tmp_path_factory.mktemp("judge"))


def test_real_digits_are_recognised_and_noise_is_not(judge):
    x, y = digit_images("digits8", "test")
    assert x.shape[1:] == (1, 8, 8) and -1 <= x.min() and x.max() <= 1
    assert judge.test_accuracy > 0.95
    real = judge.fidelity(x, y)
    assert real["accuracy"] == pytest.approx(judge.test_accuracy) and real["confidence"] > 0.9
    noise = torch.rand(len(x), 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert judge.fidelity(noise, y)["accuracy"] < 0.3


def test_features_tell_real_from_fake(judge):
    train, _ = digit_images("digits8", "train")
    test, _ = digit_images("digits8", "test")
    real_a, real_b = judge.features(train[:400]), judge.features(test[:400])
    precision, recall = precision_recall(real_a, real_b)
    assert precision > 0.8 and recall > 0.8
    blurred = torch.nn.functional.avg_pool2d(test[:400], 3, stride=1, padding=1)
    noisy = judge.features(blurred + 0.5 * torch.randn_like(blurred))
    assert precision_recall(real_a, noisy)[0] < precision
    assert frechet_distance(real_a, noisy) > 3 * frechet_distance(real_a, real_b)


def test_cache_returns_the_same_judge(tmp_path):
    # Trained or loaded, the judge is the same, and the caller's global RNG is left as it was either
    # way (experiments call the judge between trainings that draw from it).
    cfg = JudgeConfig(dataset="digits8", epochs=2)
    torch.manual_seed(7)
    first = digit_judge(cfg, cache=tmp_path)
    after_training = torch.rand(3)
    torch.manual_seed(7)
    again = digit_judge(cfg, cache=tmp_path)
    after_loading = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after_training, torch.rand(3)) and torch.equal(after_loading, after_training)
    x, _ = digit_images("digits8", "test")
    torch.testing.assert_close(first.features(x), again.features(x))
    assert any(tmp_path.iterdir())


def test_bad_input(judge):
    with pytest.raises(ValueError, match="images"):
        judge.features(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="dataset"):
        JudgeConfig(dataset="cifar")
    with pytest.raises(ValueError, match="labels"):
        judge.fidelity(torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.long))


@pytest.mark.slow
def test_mnist_judge(tmp_path):
    judge = digit_judge("mnist", cache=tmp_path)
    assert judge.test_accuracy > 0.98
