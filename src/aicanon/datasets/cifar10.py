"""CIFAR-10 from the registry's LOSSY JPEG copy (dataset ``cifar10-jpeg``, file ``cifar10_jpeg.npz``).

This is **not** the original CIFAR-10 pixels: every 32x32 image was stored as a JPEG (quality 75,
4:2:0 chroma subsampling) by the source repository, and the npz packs those JPEG files byte for
byte. Decoded pixels differ from the originals by JPEG noise (channel means agree to about 0.1 of
255); accuracies trained on it are close to, but not the same as, CIFAR-10's. The original batch
order is not recoverable; images are sorted by class, then by their number within the class.

The npz (read with ``allow_pickle=False``) holds, for ``split`` in ``train``/``test``:
``<split>_jpeg`` (uint8, all JPEG files concatenated), ``<split>_offsets`` (int64 ``[n + 1]``;
file ``i`` is ``bytes[off[i]:off[i+1]]``), ``y_<split>`` (uint8 labels), ``<split>_index_in_class``
and ``class_names``. 50,000 training and 10,000 test images, 5,000/1,000 per class.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from aicanon.core.checks import check_int

__all__ = ["CLASS_NAMES", "DATASET", "FILE", "decode_jpeg_array", "load_cifar10_jpeg"]

DATASET = "cifar10-jpeg"
FILE = "cifar10_jpeg.npz"
SPLITS = ("train", "test")
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def decode_jpeg_array(
    buffer: np.ndarray, offsets: np.ndarray, indices: np.ndarray | None = None
) -> np.ndarray:
    """Decode the JPEG files packed in ``buffer`` at ``offsets`` into uint8 ``[n, 32, 32, 3]`` RGB."""
    from PIL import Image

    if buffer.dtype != np.uint8 or buffer.ndim != 1:
        raise ValueError(f"buffer must be a 1-D uint8 array, got {buffer.dtype} with shape {buffer.shape}")
    if offsets.ndim != 1 or offsets.size < 1:
        raise ValueError(f"offsets must be a 1-D array of n + 1 positions, got shape {offsets.shape}")
    if indices is None:
        indices = np.arange(offsets.size - 1)
    out = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
    for row, i in enumerate(indices):
        start, stop = int(offsets[i]), int(offsets[i + 1])
        with Image.open(io.BytesIO(buffer[start:stop].tobytes())) as image:
            pixels = np.asarray(image.convert("RGB"))
        if pixels.shape != (32, 32, 3):
            raise ValueError(f"image {i} decodes to shape {pixels.shape}, expected (32, 32, 3)")
        out[row] = pixels
    return out


def load_cifar10_jpeg(
    split: str = "train", limit: int | None = None, path: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(images, labels)``: float32 ``[N, 3, 32, 32]`` in [0, 1] and int64 ``[N]``.

    Args:
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        limit: keep only the first ``limit`` images *of each class* (the file is sorted by class, so a
            plain prefix would hold one class only); None keeps all.
        path: the npz to read; by default the verified registry file
            ``aicanon.core.data.fetch("cifar10-jpeg", "cifar10_jpeg.npz")``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_int("limit", limit, allow_none=True, note="images per class")
    if path is None:
        from aicanon.core.data import fetch

        path = fetch(DATASET, FILE)
    with np.load(path, allow_pickle=False) as data:
        buffer = data[f"{split}_jpeg"]
        offsets = data[f"{split}_offsets"]
        labels = data[f"y_{split}"].astype(np.int64)
    if offsets.size != labels.size + 1:
        raise ValueError(f"{path}: {split}_offsets has {offsets.size} entries for {labels.size} labels")
    indices = np.arange(labels.size)
    if limit is not None:
        indices = np.concatenate([np.flatnonzero(labels == c)[:limit] for c in range(len(CLASS_NAMES))])
    pixels = decode_jpeg_array(buffer, offsets, indices)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    return images, torch.from_numpy(labels[indices])
