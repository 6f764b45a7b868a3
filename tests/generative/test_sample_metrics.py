"""Precision/recall and the Fréchet distance: hand cases, scipy's sqrtm, invariants, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from aicanon.generative.sample_metrics import frechet_distance, knn_radii, precision_recall


def test_precision_recall_by_hand():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    assert knn_radii(real, k=1).tolist() == [1.0, 1.0, 1.0, 1.0]
    # Fakes: one inside the real manifold, one far away; the fakes cover only the reals near 1.5.
    fake = torch.tensor([[1.5], [10.0], [11.0]])
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(1 / 3)
    # Fake radii (k=1): 8.5, 1, 1 -> the ball around 1.5 (radius 8.5) covers every real.
    assert recall == 1.0


def test_mode_collapse_keeps_precision_and_loses_recall():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 2, generator=g)
    collapsed = 0.1 * torch.randn(500, 2, generator=g)  # all samples near one mode: high fidelity
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.5
    precision, recall = precision_recall(real, torch.randn(500, 2, generator=g))
    assert precision > 0.8 and recall > 0.8


def test_frechet_distance_equals_the_scipy_formula():
    g = np.random.default_rng(0)
    a, b = g.normal(size=(200, 5)), g.normal(1.0, 2.0, size=(300, 5)) @ g.normal(size=(5, 5))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real
    )
    assert frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == pytest.approx(
        expected, rel=1e-4
    )
    same = torch.from_numpy(a).float()
    assert abs(frechet_distance(same, same)) < 1e-6


def test_bad_input():
    with pytest.raises(ValueError, match="feature size"):
        precision_recall(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="more than k"):
        knn_radii(torch.zeros(3, 2), k=3)
    with pytest.raises(ValueError, match="two samples"):
        frechet_distance(torch.zeros(1, 2), torch.zeros(4, 2))
    with pytest.raises(TypeError, match="real"):
        precision_recall(torch.zeros(5, 2, dtype=torch.long), torch.zeros(5, 2))
