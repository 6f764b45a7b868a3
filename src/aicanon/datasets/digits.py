"""scikit-learn's bundled handwritten digits (UCI "optdigits" test set): 1,797 images of 8x8 pixels.

The data ships inside scikit-learn (``sklearn.datasets.load_digits``), so no download or registry
entry is needed. Pixels are integer counts 0..16 (each 8x8 pixel counts the set pixels of a 4x4
block of the 32x32 original); :func:`load_digits_split` divides them by 16 so they lie in [0, 1]
and, optionally, standardises every pixel with the *training* split's mean and std (so no test
statistic leaks into training). The split is stratified: each class keeps its share in both parts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from aicanon.core.checks import check_float, check_int

__all__ = ["IMAGE_SIZE", "NUM_CLASSES", "DigitsSplit", "load_digits_split"]

NUM_CLASSES = 10
IMAGE_SIZE = 8
PIXEL_MAX = 16.0


class DigitsSplit(NamedTuple):
    """Train and test tensors: ``x`` float32 ``[N, 64]`` (or ``[N, 1, 8, 8]``), ``y`` int64 ``[N]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(
    test_fraction: float = 0.25,
    seed: int = 0,
    standardize: bool = False,
    as_images: bool = False,
) -> DigitsSplit:
    """Load the digits, scale pixels to [0, 1] and split them, stratified by class.

    Args:
        test_fraction: the share of samples held out for testing, in (0, 1).
        seed: seeds the shuffle of the split (the same seed gives the same split).
        standardize: subtract the training split's per-pixel mean and divide by its per-pixel std
            (pixels that are constant in training get std 1), instead of leaving them in [0, 1].
        as_images: return ``x`` as ``[N, 1, 8, 8]`` images instead of ``[N, 64]`` vectors.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    check_float("test_fraction", test_fraction, 0, 1, min_inclusive=False, max_inclusive=False)
    check_int("seed", seed, 0)
    data = load_digits()
    x = (data.data / PIXEL_MAX).astype(np.float32)
    y = data.target.astype(np.int64)
    n_test = round(test_fraction * len(y))
    if n_test < NUM_CLASSES or len(y) - n_test < NUM_CLASSES:
        raise ValueError(
            f"test_fraction must leave at least {NUM_CLASSES} samples (one per class) on each side of "
            f"the split, got {test_fraction} ({n_test} of {len(y)} for testing)"
        )
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y, shuffle=True
    )
    if standardize:
        mean = x_train.mean(axis=0, keepdims=True)
        std = x_train.std(axis=0, keepdims=True)
        std[std == 0] = 1.0  # border pixels that are always blank in training
        x_train = (x_train - mean) / std
        x_test = (x_test - mean) / std
    shape = (-1, 1, IMAGE_SIZE, IMAGE_SIZE) if as_images else (-1, IMAGE_SIZE * IMAGE_SIZE)
    return DigitsSplit(
        torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)).reshape(shape),
        torch.from_numpy(np.ascontiguousarray(y_train)),
        torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32)).reshape(shape),
        torch.from_numpy(np.ascontiguousarray(y_test)),
    )
