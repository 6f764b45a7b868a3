"""aicanon.vision.training: the shared classifier loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aicanon.vision.training import ClassifierConfig, accuracy, stratified_subset, train_classifier

pytestmark = pytest.mark.paper("vit")


def blobs(n=400):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centers[y] + torch.randn(n, 2, generator=g), y


def test_trains_a_separable_problem_and_untrained_does_not():
    x, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    before = accuracy(model, x, y)
    losses = train_classifier(
        model,
        x,
        y,
        ClassifierConfig(steps=150, batch_size=64, lr=1e-2, warmup_steps=10),
        torch.Generator().manual_seed(0),
    )
    assert accuracy(model, x, y) > 0.95 > before + 0.3
    assert losses[-1] < losses[0]


def test_custom_loss_is_used():
    x, y = blobs(50)
    model = nn.Linear(2, 3)
    calls = []

    def loss_fn(m, xb, yb):
        calls.append(xb.shape[0])
        return m(xb).sum() * 0.0

    train_classifier(model, x, y, ClassifierConfig(steps=3, batch_size=10, warmup_steps=0), loss_fn=loss_fn)
    assert calls == [10, 10, 10]


def test_stratified_subset_keeps_class_shares():
    y = torch.tensor([0] * 100 + [1] * 50 + [2] * 10)
    idx = stratified_subset(y, 0.2, torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx]).tolist() == [20, 10, 2]
    assert idx.unique().numel() == idx.numel()


def test_bad_input():
    with pytest.raises(ValueError, match="fraction must be in"):
        stratified_subset(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="one label per example"):
        train_classifier(
            nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), ClassifierConfig()
        )
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        ClassifierConfig(steps=0)
    with pytest.raises(ValueError, match="lr must be > 0, got 0.0"):
        ClassifierConfig(lr=0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.0"):
        ClassifierConfig(label_smoothing=1.0)
