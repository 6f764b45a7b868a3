"""The result every explainer in :mod:`aicanon.explain` returns.

An :class:`Explanation` holds attribution ``values`` (one per input feature, pixel, token or
training point), the ``base_value`` they are measured from where the method defines one (SHAP's
expected model output; ``None`` otherwise), optional ``feature_names`` and the explained ``data``.
``plot()`` draws the paper's own kind of figure through the ``plotter`` the explainer attached
(a bar chart of attributions by default), so each method keeps its figure with its own code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Plotter = Callable[["Explanation", Any], Any]


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as error:
        raise TypeError(f"{name} must be array-like or a torch.Tensor, got {type(value).__name__}") from error


@dataclass
class Explanation:
    values: np.ndarray
    """Attributions: shape ``[..., n_features]`` (tabular), ``[..., H, W]`` (maps) or ``[n_points]``."""
    base_value: float | np.ndarray | None = None
    """The reference the values add up from (SHAP: E[f(x)] over the background); None where undefined."""
    feature_names: Sequence[str] | None = None
    """One name per entry of the last axis of ``values``, when features have names."""
    data: np.ndarray | None = None
    """The explained input(s), for plots that draw the attribution over the input."""
    method: str = ""
    """The explainer that made it, e.g. ``"kernel_shap"``, ``"grad_cam"``."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Method-specific outputs (LIME's local R^2, the surrogate's intercept, the target class ...)."""
    plotter: Plotter | None = field(default=None, repr=False, compare=False)
    """Draws the paper's kind of figure; set by the explainer."""

    def __post_init__(self) -> None:
        self.values = _as_numpy("values", self.values)
        if self.data is not None:
            self.data = _as_numpy("data", self.data)
        if self.base_value is not None and not np.isscalar(self.base_value):
            self.base_value = _as_numpy("base_value", self.base_value)
        if self.feature_names is not None:
            names = list(self.feature_names)
            if self.values.ndim == 0 or len(names) != self.values.shape[-1]:
                raise ValueError(
                    f"feature_names must have one name per feature ({self.values.shape[-1:] or 'scalar'}), "
                    f"got {len(names)}"
                )
            self.feature_names = names

    def plot(self, ax: Any = None) -> Any:
        """Draw the explanation on ``ax`` (a new figure when None); return the matplotlib Figure."""
        from matplotlib.figure import Figure

        if ax is None:
            ax = Figure(figsize=(6, 4)).add_subplot()
        if self.plotter is not None:
            self.plotter(self, ax)
        else:
            values = np.atleast_1d(self.values).reshape(-1, np.atleast_1d(self.values).shape[-1])[0]
            names = self.feature_names or [str(i) for i in range(values.shape[0])]
            order = np.argsort(np.abs(values))[::-1][:20]
            ax.barh([names[i] for i in order][::-1], values[order][::-1])
            ax.set_xlabel(f"attribution ({self.method or 'explanation'})")
        return ax.figure
