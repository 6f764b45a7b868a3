"""The lossy JPEG CIFAR-10 loader (registry file cifar10-jpeg/cifar10_jpeg.npz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aicanon.core import DataUnavailable, fetch
from aicanon.datasets.cifar10 import CLASS_NAMES, DATASET, FILE, decode_jpeg_array, load_cifar10_jpeg

pytestmark = pytest.mark.paper("prelu-he-init")


@pytest.fixture(scope="module")
def npz_path():
    try:
        return fetch(DATASET, FILE)
    except DataUnavailable as error:  # pragma: no cover - staged data absent
        pytest.skip(str(error))


def test_test_split_matches_the_documented_statistics(npz_path):
    images, labels = load_cifar10_jpeg("test", path=npz_path)
    assert images.shape == (10000, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and torch.equal(torch.bincount(labels), torch.full((10,), 1000))
    assert 0.0 <= images.min() and images.max() <= 1.0
    # shared/data/SOURCES.md: decoded test means (Pillow) are RGB [125.99, 123.69, 114.85].
    means = images.mean(dim=(0, 2, 3)) * 255
    assert torch.allclose(means, torch.tensor([125.99, 123.69, 114.85]), atol=0.05)


def test_limit_keeps_the_first_images_of_every_class(npz_path):
    images, labels = load_cifar10_jpeg("train", limit=3, path=npz_path)
    assert images.shape == (30, 3, 32, 32)
    assert labels.tolist() == [c for c in range(len(CLASS_NAMES)) for _ in range(3)]
    with np.load(npz_path, allow_pickle=False) as data:
        assert tuple(data["class_names"].tolist()) == CLASS_NAMES
        first = decode_jpeg_array(data["train_jpeg"], data["train_offsets"], np.array([0]))
    assert torch.equal(images[0], torch.from_numpy(first[0]).permute(2, 0, 1).float() / 255)


def test_bad_input(npz_path):
    with pytest.raises(ValueError, match="split must be one of.*'val'"):
        load_cifar10_jpeg("val", path=npz_path)
    with pytest.raises(ValueError, match=r"limit must be >= 1 \(images per class\) or None, got 0"):
        load_cifar10_jpeg("test", limit=0, path=npz_path)
    with pytest.raises(ValueError, match="buffer must be a 1-D uint8 array.*float32"):
        decode_jpeg_array(np.zeros(10, dtype=np.float32), np.array([0, 10]))
