"""Omniglot (Lake et al., 2015): 1,623 handwritten characters of 50 alphabets, 20 drawers each, 105x105.

Read through the data registry (dataset ``omniglot``, file ``omniglot.npz``): a lossless conversion of
the official ``images_background`` (964 characters) and ``images_evaluation`` (659) sets, bit-packed.
Its arrays (``allow_pickle=False``):

* ``images_packed`` uint8 ``[32460, 105, 14]``: ``np.packbits(axis=-1)`` of the boolean images, in
  which ``True`` is the white background and ``False`` ink;
* per image: ``char_id`` (1-1623, the official file id; characters in id order), ``drawer`` (1-20),
  ``split`` (0 background, 1 evaluation), ``alphabet`` (index into ``alphabet_names``), ``character``
  (the N of the folder ``characterNN``); and ``alphabet_names``, ``split_names``.

:func:`load_omniglot` returns an :class:`Omniglot` whose ``images`` are float32 ``[1623, 20, size,
size]`` (character, drawer) with **ink = 1** and background 0 (MAML's code inverts the PNGs the same
way), resized once from 105x105 (``size=28`` is the few-shot convention of Vinyals et al. and MAML;
``size=None`` keeps 105). The resize is an antialiased bilinear one (the MAML code used PIL's Lanczos
filter). Results are cached in memory per size: callers must not modify the tensors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_int
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["NUM_CHARACTERS", "NUM_DRAWERS", "Omniglot", "load_omniglot", "unpack_images"]

NUM_CHARACTERS = 1623
NUM_DRAWERS = 20
IMAGE_SIDE = 105


@dataclass(frozen=True)
class Omniglot:
    """All of Omniglot, one row per character (in official id order), one column per drawer."""

    images: Tensor
    """float32 ``[1623, 20, size, size]``, ink 1, background 0."""
    alphabet: Tensor
    """int64 ``[1623]``: each character's alphabet, an index into ``alphabet_names``."""
    character: Tensor
    """int64 ``[1623]``: the character's number within its alphabet (1-based, as in the folder names)."""
    split: Tensor
    """int64 ``[1623]``: 0 for images_background, 1 for images_evaluation."""
    alphabet_names: tuple[str, ...]

    @property
    def num_characters(self) -> int:
        return self.images.shape[0]


def unpack_images(packed: np.ndarray) -> np.ndarray:
    """Bit-packed ``[N, 105, 14]`` uint8 to float32 ``[N, 105, 105]`` with ink = 1."""
    if packed.dtype != np.uint8 or packed.ndim != 3 or packed.shape[1:] != (IMAGE_SIDE, 14):
        raise ValueError(f"packed must be uint8 [N, 105, 14], got {packed.dtype} {packed.shape}")
    background = np.unpackbits(packed, axis=-1, count=IMAGE_SIDE)
    return (1 - background).astype(np.float32)


def _corrupt(reason: str) -> DataUnavailable:
    entry = data_file("omniglot", "omniglot.npz")
    return DataUnavailable("omniglot", entry.name, entry.url, entry.sha256, reason)


@functools.lru_cache(maxsize=2)
def _load(size: int | None) -> Omniglot:
    path = fetch("omniglot", "omniglot.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    char_id = arrays["char_id"].astype(np.int64)
    drawer = arrays["drawer"].astype(np.int64)
    n = NUM_CHARACTERS * NUM_DRAWERS
    if char_id.shape != (n,) or arrays["images_packed"].shape[0] != n:
        raise _corrupt(f"expected {n} images, got {arrays['images_packed'].shape[0]}")
    # Row (character, drawer) of the result; the file is in that order, but do not rely on it.
    order = np.lexsort((drawer, char_id))
    if not (
        np.array_equal(char_id[order], np.repeat(np.arange(1, NUM_CHARACTERS + 1), NUM_DRAWERS))
        and np.array_equal(drawer[order], np.tile(np.arange(1, NUM_DRAWERS + 1), NUM_CHARACTERS))
    ):
        raise _corrupt("its (char_id, drawer) pairs are not every character x drawer exactly once")
    chunks = []
    side = IMAGE_SIDE if size is None else size
    # Unpack and resize in chunks: all 32,460 images at 105x105 float would be 1.4 GB at once.
    for start in range(0, n, 4096):
        block = torch.from_numpy(unpack_images(arrays["images_packed"][order[start : start + 4096]]))
        if size is not None and size != IMAGE_SIDE:
            block = F.interpolate(
                block.unsqueeze(1), size=(size, size), mode="bilinear", antialias=True, align_corners=False
            ).squeeze(1)
        chunks.append(block)
    images = torch.cat(chunks).view(NUM_CHARACTERS, NUM_DRAWERS, side, side).contiguous()
    first = order[::NUM_DRAWERS]
    return Omniglot(
        images=images,
        alphabet=torch.from_numpy(arrays["alphabet"][first].astype(np.int64)),
        character=torch.from_numpy(arrays["character"][first].astype(np.int64)),
        split=torch.from_numpy(arrays["split"][first].astype(np.int64)),
        alphabet_names=tuple(str(name) for name in arrays["alphabet_names"]),
    )


def load_omniglot(size: int | None = 28) -> Omniglot:
    """All 1,623 characters x 20 drawers, resized to ``size`` x ``size`` (None: the original 105)."""
    check_int("size", size, 1, IMAGE_SIDE, allow_none=True)
    return _load(size)
