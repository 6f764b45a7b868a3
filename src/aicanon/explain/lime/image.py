"""LIME for images (Ribeiro et al. 2016, Section 3.1; the authors' ``lime`` package's ``lime_image``,
whose conventions we follow so that the same samples give the same explanation).

The interpretable representation is a set of superpixels (scikit-image's quickshift or SLIC):
``x'_j = 1`` when superpixel ``j`` is shown. A sample hides each superpixel with probability 1/2 by a
fill colour (each superpixel's mean colour by default). The distance ``D`` of the kernel ``pi_x``
(Section 3.3, :mod:`aicanon.explain.lime.kernel`) is the cosine distance of the binary vectors, the
kernel width 0.25 (the package's). ``num_features`` (``K``) defaults to all superpixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_int
from aicanon.explain.explanation import Explanation
from aicanon.explain.lime._checks import (
    Seed,
    as_generator,
    as_matrix,
    check_num_features,
    explained_label,
    model_outputs,
)
from aicanon.explain.lime.kernel import cosine_distances, exponential_kernel
from aicanon.explain.lime.plots import plot_superpixels
from aicanon.explain.lime.surrogate import check_feature_selection, fit_surrogate, surrogate_explanation

__all__ = ["SEGMENTATIONS", "explain_image", "image_samples", "segment_image"]

SEGMENTATIONS = ("quickshift", "slic")


def _check_image(image: Any) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or torch.Tensor, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)  # grey -> RGB, as the package does
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be H x W or H x W x 3, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be at least 2 x 2 pixels, got shape {image.shape}")
    return image


def segment_image(image: Any, method: str = "quickshift", seed: int = 0, **kwargs: Any) -> np.ndarray:
    """Superpixels ``[H, W]`` (labels ``0..d-1``) by scikit-image's quickshift or SLIC.

    Defaults are the package's: quickshift ``kernel_size=4, max_dist=200, ratio=0.2``; SLIC ``n_segments=50``.
    """
    from skimage import segmentation

    image = _check_image(image)
    if method not in SEGMENTATIONS:
        raise ValueError(f"method must be one of {SEGMENTATIONS}, got {method!r}")
    if method == "quickshift":
        params = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2, "rng": seed, **kwargs}
        labels = segmentation.quickshift(image.astype(np.float64), **params)
    else:
        params = {"n_segments": 50, "start_label": 0, **kwargs}
        labels = segmentation.slic(image.astype(np.float64), **params)
    _, labels = np.unique(labels, return_inverse=True)  # labels 0..d-1
    return labels.reshape(image.shape[:2])


def image_samples(num_superpixels: int, num_samples: int = 1000, seed: Seed = None) -> np.ndarray:
    """Binary samples ``[N, d]``: each superpixel on with probability 1/2, row 0 all on."""
    d = check_int("num_superpixels", num_superpixels, 1)
    n = check_int("num_samples", num_samples, 2)
    data = as_generator(seed).integers(0, 2, size=(n, d)).astype(np.float64)
    data[0] = 1.0
    return data


def explain_image(
    image: Any,
    classifier_fn: Callable[[np.ndarray], Any],
    *,
    segments: Any = None,
    segmentation: str = "quickshift",
    label: int | None = None,
    num_features: int | None = None,
    num_samples: int = 1000,
    hide_color: float | Sequence[float] | None = None,
    feature_selection: str = "auto",
    kernel_width: float = 0.25,
    kernel: str = "lime",
    alpha: float = 1.0,
    batch_size: int = 64,
    samples: Any = None,
    seed: Seed = None,
) -> Explanation:
    """Explain ``classifier_fn`` on ``image`` (``H x W x 3`` or ``H x W``) by its superpixels.

    ``classifier_fn``: images ``[B, H, W, 3]`` -> ``[B, classes]`` probabilities. ``segments``: an
    ``[H, W]`` integer map (default: :func:`segment_image` with ``segmentation``). A hidden superpixel
    takes ``hide_color`` (default: the superpixel's mean colour). ``num_features`` defaults to all.
    """
    image = _check_image(image)
    if not callable(classifier_fn):
        raise TypeError(f"classifier_fn must be callable, got {type(classifier_fn).__name__}")
    if segments is None:
        segment_seed = seed if isinstance(seed, int) else 0
        segments = segment_image(image, segmentation, seed=segment_seed)
    segments = np.asarray(segments)
    if segments.shape != image.shape[:2] or not np.issubdtype(segments.dtype, np.integer):
        raise ValueError(f"segments must be an integer map of shape {image.shape[:2]}, got {segments.shape}")
    labels_present, segments = np.unique(segments, return_inverse=True)
    segments = segments.reshape(image.shape[:2])
    d = len(labels_present)
    num_features = d if num_features is None else check_num_features(num_features, d)
    check_feature_selection(feature_selection)
    batch = check_int("batch_size", batch_size, 1)
    if samples is None:
        data = image_samples(d, num_samples, seed)
    else:
        data = as_matrix("samples", samples)
        if data.shape[1] != d or not np.isin(data, (0.0, 1.0)).all():
            raise ValueError(
                f"samples must be a binary [N, {d}] matrix (one column per superpixel), got {data.shape}"
            )
    fill = np.empty_like(image, dtype=np.float64)
    if hide_color is None:
        for s in range(d):
            fill[segments == s] = image[segments == s].mean(axis=0)
    else:
        fill[:] = hide_color
    fill = fill.astype(image.dtype)
    outputs = []
    for start in range(0, data.shape[0], batch):
        rows = data[start : start + batch]
        hidden = rows[:, segments] == 0  # [b, H, W]
        images = np.where(hidden[..., None], fill[None], image[None])
        outputs.append(model_outputs("classifier_fn", classifier_fn(images), rows.shape[0]))
    predictions = np.concatenate(outputs)
    distances = cosine_distances(data, data[0])
    weights = exponential_kernel(distances, kernel_width, kernel)
    label = explained_label(label, predictions)
    surrogate = fit_surrogate(data, predictions[:, label], weights, num_features, feature_selection, alpha)
    return surrogate_explanation(
        surrogate,
        d,
        predictions,
        label,
        "lime_image",
        None,
        image,
        plot_superpixels,
        segments=segments,
        num_samples=int(data.shape[0]),
        kernel_width=float(kernel_width),
    )
