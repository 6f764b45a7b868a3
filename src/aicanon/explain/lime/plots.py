"""LIME's figures (Ribeiro et al. 2016, Figure 4's kinds): the explainers attach these as an
:class:`~aicanon.explain.explanation.Explanation`'s ``plotter``; ``Explanation.plot`` supplies the axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from aicanon.explain.explanation import Explanation

__all__ = ["plot_bars", "plot_superpixels"]


def plot_bars(explanation: Explanation, ax: Any) -> None:
    """Figure 4 kind: the selected features' weights, green for the explained class and red against."""
    features = explanation.extras["features"][::-1]
    weights = np.asarray(explanation.extras["weights"][::-1])
    names = explanation.feature_names or [str(i) for i in range(len(explanation.values))]
    ax.barh([names[i] for i in features], weights, color=np.where(weights > 0, "tab:green", "tab:red"))
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"weight for class {explanation.extras['label']}")
    ax.set_title(f"{explanation.method} (local R^2 {explanation.extras['score']:.2f})")


def plot_superpixels(explanation: Explanation, ax: Any) -> None:
    """Figure 4 kind for images: the superpixels with positive weight shown, the rest greyed out."""
    image = np.asarray(explanation.data, dtype=np.float64)
    segments = np.asarray(explanation.extras["segments"])
    shown = [f for f, w in zip(explanation.extras["features"], explanation.extras["weights"]) if w > 0][:5]
    low, high = image.min(), image.max()
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    keep = np.isin(segments, shown)
    ax.imshow(np.where(keep[..., None], image, 0.3 + 0.2 * image.mean(-1, keepdims=True)))
    ax.set_title(f"{explanation.method}: top superpixels for class {explanation.extras['label']}")
    ax.set_axis_off()
