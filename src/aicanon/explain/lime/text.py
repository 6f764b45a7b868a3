"""LIME for text (Ribeiro et al. 2016, Section 3.1; the authors' ``lime`` package's ``lime_text``,
whose conventions we follow so that the same samples give the same explanation).

The interpretable representation is a bag of words: ``x'_j = 1`` when the ``j``-th distinct word of
the text is present. A sample removes a uniformly drawn number ``1..d`` of the distinct words, every
occurrence of each. The distance ``D`` of the kernel ``pi_x`` (Section 3.3,
:mod:`aicanon.explain.lime.kernel`) is ``100 x`` the cosine distance of the binary vectors, the
kernel width 25 (the package's). ``num_features`` (``K``) defaults to ``min(10, d)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

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
from aicanon.explain.lime.plots import plot_bars
from aicanon.explain.lime.surrogate import check_feature_selection, fit_surrogate, surrogate_explanation

__all__ = ["explain_text", "text_samples"]

_WORD = re.compile(r"\w+")


def _split_text(text: str) -> tuple[list[str], list[str], list[list[int]]]:
    """Pieces of ``text`` (words and the separators between them), its distinct words and where each occurs."""
    pieces = [piece for piece in re.split(r"(\W+)", text) if piece]
    words: list[str] = []
    positions: list[list[int]] = []
    index: dict[str, int] = {}
    for position, piece in enumerate(pieces):
        if not _WORD.fullmatch(piece):
            continue
        if piece not in index:
            index[piece] = len(words)
            words.append(piece)
            positions.append([])
        positions[index[piece]].append(position)
    return pieces, words, positions


def text_samples(num_words: int, num_samples: int = 5000, seed: Seed = None) -> np.ndarray:
    """Binary bag-of-words samples ``[N, num_words]``: row 0 all ones, each other row removes a uniformly
    drawn number ``1..num_words`` of distinct words (Section 3.1, the package's scheme)."""
    d = check_int("num_words", num_words, 1)
    n = check_int("num_samples", num_samples, 2)
    rng = as_generator(seed)
    data = np.ones((n, d))
    sizes = rng.integers(1, d + 1, size=n - 1)
    for i, size in enumerate(sizes, start=1):
        data[i, rng.choice(d, size=size, replace=False)] = 0.0
    return data


def explain_text(
    text: str,
    classifier_fn: Callable[[list[str]], Any],
    *,
    label: int | None = None,
    num_features: int | None = None,
    num_samples: int = 5000,
    feature_selection: str = "auto",
    kernel_width: float = 25.0,
    kernel: str = "lime",
    alpha: float = 1.0,
    samples: Any = None,
    seed: Seed = None,
) -> Explanation:
    """Explain ``classifier_fn([text])`` by the words of ``text`` (bag of words; a removed word loses every occurrence).

    ``classifier_fn``: a list of strings -> ``[N, classes]`` probabilities. ``samples``: a binary
    ``[N, d]`` matrix over the distinct words (row 0 all ones) to use instead of drawing one.
    ``num_features``: ``K`` (default ``min(10, d)``).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not callable(classifier_fn):
        raise TypeError(f"classifier_fn must be callable, got {type(classifier_fn).__name__}")
    pieces, words, positions = _split_text(text)
    if not words:
        raise ValueError(f"text must contain at least one word, got {text!r}")
    num_features = min(10, len(words)) if num_features is None else num_features
    check_num_features(num_features, len(words))
    check_feature_selection(feature_selection)
    if samples is None:
        data = text_samples(len(words), num_samples, seed)
    else:
        data = as_matrix("samples", samples)
        if data.shape[1] != len(words) or not np.isin(data, (0.0, 1.0)).all():
            raise ValueError(
                f"samples must be a binary [N, {len(words)}] matrix (one column per distinct word), "
                f"got shape {data.shape}"
            )
    documents = []
    for row in data:
        removed = {p for j in np.flatnonzero(row == 0) for p in positions[j]}
        documents.append("".join(piece for p, piece in enumerate(pieces) if p not in removed))
    distances = 100.0 * cosine_distances(data, data[0])
    weights = exponential_kernel(distances, kernel_width, kernel)
    predictions = model_outputs("classifier_fn", classifier_fn(documents), data.shape[0])
    label = explained_label(label, predictions)
    surrogate = fit_surrogate(data, predictions[:, label], weights, num_features, feature_selection, alpha)
    return surrogate_explanation(
        surrogate,
        len(words),
        predictions,
        label,
        "lime_text",
        words,
        None,
        plot_bars,
        num_samples=int(data.shape[0]),
        kernel_width=float(kernel_width),
    )
