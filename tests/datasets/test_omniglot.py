"""The Omniglot reader: shapes, ink convention, the official split sizes, metadata, bad input."""

import numpy as np
import pytest
import torch

from aicanon.core.data import DataUnavailable
from aicanon.datasets.omniglot import NUM_CHARACTERS, NUM_DRAWERS, load_omniglot, unpack_images

pytestmark = pytest.mark.paper("maml")


def _load(size):
    try:
        return load_omniglot(size)
    except DataUnavailable as error:
        pytest.skip(f"omniglot.npz is not staged: {error}")


def test_unpack_images_inverts_packbits_with_ink_one():
    background = np.random.default_rng(0).random((3, 105, 105)) > 0.2  # True = white background
    packed = np.packbits(background, axis=-1)
    images = unpack_images(packed)
    assert images.dtype == np.float32 and images.shape == (3, 105, 105)
    np.testing.assert_array_equal(images, (~background).astype(np.float32))


def test_unpack_images_rejects_other_shapes():
    with pytest.raises(ValueError, match="packed must be uint8 \\[N, 105, 14\\]"):
        unpack_images(np.zeros((2, 105, 13), dtype=np.uint8))


def test_omniglot_at_28_pixels():
    data = _load(28)
    assert data.images.shape == (NUM_CHARACTERS, NUM_DRAWERS, 28, 28) and data.images.dtype == torch.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    # Mostly background (0): ink covers a small fraction of each image, in every image.
    ink = data.images.mean(dim=(2, 3))
    assert 0.03 < float(ink.mean()) < 0.15 and float(ink.min()) > 0.0
    # images_background has 964 characters of 30 alphabets, images_evaluation 659 of 20.
    assert int((data.split == 0).sum()) == 964 and int((data.split == 1).sum()) == 659
    assert len(data.alphabet_names) == 50 and data.alphabet.unique().numel() == 50
    assert data.alphabet_names[int(data.alphabet[0])] == "Arcadian" and int(data.character[0]) == 1
    assert load_omniglot(28) is data  # resized once, cached


def test_omniglot_at_full_size_is_binary():
    data = _load(None)
    assert data.images.shape == (NUM_CHARACTERS, NUM_DRAWERS, 105, 105)
    assert set(data.images[:5].unique().tolist()) == {0.0, 1.0}


def test_bad_size_is_rejected():
    with pytest.raises(ValueError, match="size must be in \\[1, 105\\]"):
        load_omniglot(0)
    with pytest.raises(TypeError, match="size must be an int"):
        load_omniglot(28.0)
