"""The scikit-learn digits loader: scaling, stratified split, seeding, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aicanon.datasets.digits import load_digits_split

pytestmark = pytest.mark.paper("prelu-he-init")


def test_shapes_dtypes_and_range():
    split = load_digits_split(0.25, seed=0)
    assert split.x_train.shape == (1347, 64) and split.x_test.shape == (450, 64)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert split.x_train.min() >= 0 and split.x_train.max() == 1.0  # pixel counts 0..16 divided by 16
    assert set(split.y_train.tolist()) == set(range(10))
    images = load_digits_split(0.25, seed=0, as_images=True)
    assert images.x_train.shape == (1347, 1, 8, 8)
    assert torch.equal(images.x_train.flatten(1), split.x_train)


def test_split_is_stratified_and_disjoint():
    split = load_digits_split(0.3, seed=4)
    total = np.bincount(np.concatenate([split.y_train.numpy(), split.y_test.numpy()]), minlength=10)
    test_counts = np.bincount(split.y_test.numpy(), minlength=10)
    assert total.sum() == 1797
    # Each class keeps its share of the test split to within one sample.
    assert np.all(np.abs(test_counts - 0.3 * total) <= 1)
    train_rows = {tuple(row) for row in split.x_train.numpy().round(4).tolist()}
    test_rows = [tuple(row) for row in split.x_test.numpy().round(4).tolist()]
    assert sum(row in train_rows for row in test_rows) < len(test_rows)  # not the same images


def test_seed_repeats_and_differs():
    a, b, c = load_digits_split(0.25, 1), load_digits_split(0.25, 1), load_digits_split(0.25, 2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.y_test, c.y_test)


def test_standardize_uses_training_statistics():
    raw = load_digits_split(0.25, seed=0)
    std = load_digits_split(0.25, seed=0, standardize=True)
    assert torch.allclose(std.x_train.mean(0), torch.zeros(64), atol=1e-5)
    active = raw.x_train.std(0) > 0
    assert torch.allclose(
        std.x_train.std(0, unbiased=False)[active], torch.ones(int(active.sum())), atol=1e-4
    )
    mean, scale = raw.x_train.mean(0), raw.x_train.std(0, unbiased=False)
    scale[scale == 0] = 1
    assert torch.allclose(std.x_test, (raw.x_test - mean) / scale, rtol=1e-4, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.5"):
        load_digits_split(1.5)
    with pytest.raises(ValueError, match="test_fraction must leave at least 10 samples.*0.001"):
        load_digits_split(0.001)
    with pytest.raises(TypeError, match="test_fraction must be a number, got str"):
        load_digits_split("0.2")
    with pytest.raises(ValueError, match="seed must be >= 0.*-1"):
        load_digits_split(0.2, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int.*float"):
        load_digits_split(0.2, seed=1.0)
