"""aicanon.datasets.mnist: the staged MNIST and Fashion-MNIST files."""

from __future__ import annotations

import gzip

import pytest
import torch

from aicanon.core.data import DataUnavailable
from aicanon.datasets.mnist import load_fashion_mnist, load_mnist, parse_idx, read_idx, to_float_images

pytestmark = pytest.mark.paper("vit")


def test_mnist_counts_and_known_pixels():
    x, y = load_mnist("train")
    assert x.shape == (60000, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert x[0, 14, 13:18].tolist() == [81, 240, 253, 253, 119]  # SOURCES.md's spot check
    xt, yt = load_mnist("test")
    assert xt.shape == (10000, 28, 28)
    assert torch.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_counts_and_mean():
    x, y = load_fashion_mnist("train")
    assert x.shape == (60000, 28, 28) and torch.bincount(y).tolist() == [6000] * 10
    assert float(x.float().mean() / 255) == pytest.approx(0.28604, abs=1e-4)
    _, yt = load_fashion_mnist("test")
    assert torch.bincount(yt).tolist() == [1000] * 10


def test_to_float_images_scales_and_resizes():
    x = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    out = to_float_images(x, size=32)
    assert out.shape == (2, 1, 32, 32) and torch.allclose(out, torch.ones_like(out))


def test_bad_input():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("valid")
    with pytest.raises(ValueError, match="x must be uint8"):
        to_float_images(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        parse_idx(gzip.compress(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00"))
    with pytest.raises(ValueError, match="header says shape"):
        parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x05\x00")


def test_corrupt_staged_file_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    with pytest.raises(DataUnavailable, match="t10k-labels-idx1-ubyte.gz"):
        read_idx("mnist", "t10k-labels-idx1-ubyte.gz")
