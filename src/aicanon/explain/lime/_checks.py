"""Argument checks shared by the LIME modules: the arrays, counts, seeds, model outputs and labels that
every explainer (tabular, text, image) and the surrogate fit take. Messages name the argument, what
was expected and what came (DESIGN: bad input gets a clear error)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_int

Seed = int | np.random.Generator | None


def as_matrix(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite float64 matrix ``[samples, features]`` with at least 2 rows and 1 column."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D [samples, features], got shape {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must have at least 2 rows and 1 column, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return array


def as_vector(name: str, value: Any, length: int) -> np.ndarray:
    """``value`` as a finite float64 vector of shape ``(length,)``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return array


def check_num_features(num_features: Any, count: int) -> int:
    """``K`` of Eq. 1's ``Omega``: an int in ``[1, count]``. Above ``count`` is an error, where the
    package silently returns fewer features (a departure, listed in the package docstring)."""
    check_int("num_features", num_features, 1)
    if num_features > count:
        raise ValueError(
            f"num_features must be <= the number of interpretable features ({count}), got {num_features}"
        )
    return num_features


def as_generator(seed: Seed) -> np.random.Generator:
    """The generator that draws the perturbation samples: ``seed`` itself when it is one (so a caller's
    stream is consumed in place), else ``np.random.default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int >= 0, a numpy Generator or None, got {seed!r}")


def model_outputs(name: str, output: Any, rows: int) -> np.ndarray:
    """The model's outputs ``f(z)`` as a float64 matrix ``[rows, classes]`` (a vector: one output)."""
    if isinstance(output, torch.Tensor):
        output = output.detach().cpu().numpy()
    array = np.asarray(output, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"{name} must return [{rows}, classes] predictions, got shape {array.shape}")
    return array


def explained_label(label: Any, predictions: np.ndarray) -> int:
    """The class explained: ``label``, or the class the model predicts for the instance (row 0)."""
    classes = predictions.shape[1]
    if label is None:
        return int(np.argmax(predictions[0]))
    check_int("label", label, 0)
    if label >= classes:
        raise ValueError(f"label must be a class index in [0, {classes}), got {label}")
    return label
