"""MNIST and Fashion-MNIST: 28x28 grey images of 10 classes, 60,000 for training and 10,000 for test.

Read through the data registry. MNIST's test images and all labels are the original IDX files
(``t10k-images-idx3-ubyte.gz`` ...); its 60,000 training images are a lossless conversion
(``mnist_train.npz``, ``x_train``/``y_train``) because the original file is not staged. Fashion-MNIST
is one lossless npz (``fashion_mnist.npz``: ``x_train, y_train, x_test, y_test``); its label files are
checked against it. Every array is read with ``allow_pickle=False``.

:func:`load_mnist` returns uint8 images ``[N, 28, 28]`` and int64 labels; :func:`to_float_images`
scales them to ``[N, 1, H, W]`` floats in [0, 1], optionally resized (ViT/SqueezeNet want 32x32).
"""

from __future__ import annotations

import gzip

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["NUM_CLASSES", "load_fashion_mnist", "load_mnist", "parse_idx", "read_idx", "to_float_images"]

NUM_CLASSES = 10
_SPLITS = ("train", "test")


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse IDX bytes (gzip or plain): the big-endian format of LeCun's MNIST distribution."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{data.size} bytes of data where the header says shape {shape}")
    return data.reshape(shape).copy()


def read_idx(dataset: str, name: str) -> np.ndarray:
    """A registered IDX file as an array; a corrupt file raises ``DataUnavailable`` naming it."""
    path = fetch(dataset, name)
    try:
        return parse_idx(path.read_bytes())
    except ValueError as error:
        entry = data_file(dataset, name)
        raise DataUnavailable(
            dataset, name, entry.url, entry.sha256, f"{path} is corrupt: {error}"
        ) from error


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")


def _npz(dataset: str, name: str) -> dict[str, np.ndarray]:
    path = fetch(dataset, name)
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def load_mnist(split: str = "train") -> tuple[Tensor, Tensor]:
    """MNIST ``split``: images uint8 ``[N, 28, 28]`` and labels int64 ``[N]``."""
    _check_split(split)
    if split == "train":
        arrays = _npz("mnist", "mnist_train.npz")
        x, y = arrays["x_train"], arrays["y_train"]
        labels = read_idx("mnist", "train-labels-idx1-ubyte.gz")
        if not np.array_equal(labels, y):
            entry = data_file("mnist", "mnist_train.npz")
            raise DataUnavailable(
                "mnist", entry.name, entry.url, entry.sha256, "its labels differ from the label IDX file"
            )
    else:
        x = read_idx("mnist", "t10k-images-idx3-ubyte.gz")
        y = read_idx("mnist", "t10k-labels-idx1-ubyte.gz")
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


def load_fashion_mnist(split: str = "train") -> tuple[Tensor, Tensor]:
    """Fashion-MNIST ``split``: images uint8 ``[N, 28, 28]`` and labels int64 ``[N]``."""
    _check_split(split)
    arrays = _npz("fashion-mnist", "fashion_mnist.npz")
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    name = f"{'t10k' if split == 'test' else 'train'}-labels-idx1-ubyte.gz"
    if not np.array_equal(read_idx("fashion-mnist", name), y):
        entry = data_file("fashion-mnist", "fashion_mnist.npz")
        raise DataUnavailable(
            "fashion-mnist", entry.name, entry.url, entry.sha256, f"its {split} labels differ from {name}"
        )
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


def to_float_images(x: Tensor, size: int | None = None) -> Tensor:
    """uint8 ``[N, H, W]`` to float ``[N, 1, size, size]`` in [0, 1] (bilinear resize when ``size`` is set)."""
    if x.dtype != torch.uint8 or x.dim() != 3:
        raise ValueError(f"x must be uint8 [N, H, W], got {x.dtype} with shape {tuple(x.shape)}")
    out = x.unsqueeze(1).float() / 255.0
    if size is not None and size != x.shape[-1]:
        out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)
    return out
