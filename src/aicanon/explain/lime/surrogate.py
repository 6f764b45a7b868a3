"""LIME's local surrogate: Algorithm 1 of Ribeiro et al. 2016 once the samples are drawn.

The explanation is the interpretable model ``g`` that solves

    xi(x) = argmin_{g in G} L(f, g, pi_x) + Omega(g)                                   (Eq. 1)

with ``G`` linear models ``g(z') = w_g . z'``, ``Omega`` a cap of ``K`` non-zero weights and the
locality-weighted square loss

    L(f, g, pi_x) = sum_{z, z' in Z} pi_x(z) (f(z) - g(z'))^2                          (Eq. 2)

over the samples ``z'`` (the explained instance as row 0), the model's outputs ``f(z)`` for the
explained class and the kernel weights ``pi_x(z)`` (:mod:`aicanon.explain.lime.kernel`). Algorithm 1
picks ``K`` features (K-LASSO: the regularisation path of the lasso) and fits their weights by least
squares.

Feature selection (``feature_selection``, the authors' ``lime`` package's choices): ``"lasso_path"``
(K-LASSO, Algorithm 1: the last point of the lasso path, computed by LARS on the kernel-weighted
centred data, with at most ``K`` non-zeros), ``"forward_selection"`` (add the feature that most raises
the weighted R^2 of an unregularised least-squares fit), ``"highest_weights"`` (the ``K`` largest
``|w_j x'_j|`` of a ridge fit on all features), ``"none"`` and ``"auto"`` (forward selection for
``K <= 6``, else highest weights). The explanation's weights are then a ridge fit on the selected
features, and its weighted R^2 on the samples is reported as ``score`` (the local fidelity).

Departures from the paper and why:

* The final weights are a ridge fit with ``alpha = 1`` (the package's choice) rather than plain least
  squares on the ``K`` features (Algorithm 1); ``alpha`` is an argument (``alpha=0`` gives least squares).
* An explanation's ``values`` hold a weight for every interpretable feature, zero for the unselected
  ones; ``extras["features"]`` lists the selected ones by decreasing ``|weight|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicanon.explain.explanation import Explanation, Plotter
from aicanon.explain.lime._checks import as_matrix, as_vector, check_num_features

__all__ = [
    "FEATURE_SELECTIONS",
    "Surrogate",
    "fit_surrogate",
    "select_features",
    "weighted_r2",
    "weighted_ridge",
]

FEATURE_SELECTIONS = ("auto", "forward_selection", "highest_weights", "lasso_path", "none")


def check_feature_selection(feature_selection: Any) -> str:
    """``feature_selection`` if it is one of :data:`FEATURE_SELECTIONS`; a ValueError naming them if not."""
    if feature_selection not in FEATURE_SELECTIONS:
        raise ValueError(f"feature_selection must be one of {FEATURE_SELECTIONS}, got {feature_selection!r}")
    return feature_selection


def weighted_ridge(
    data: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float
) -> tuple[np.ndarray, float]:
    """argmin_{w, b} sum_i pi_i (y_i - b - w.x_i)^2 + alpha |w|^2 (Eq. 2 with a ridge penalty); (w, b).

    The intercept is not penalised: the data are centred by their weighted means first.
    ``alpha = 0`` gives weighted least squares (the minimum-norm solution when it is not unique).
    """
    total = weights.sum()
    mean_x = weights @ data / total
    mean_y = weights @ targets / total
    root = np.sqrt(weights)[:, None]
    x = (data - mean_x) * root
    y = (targets - mean_y) * root[:, 0]
    if alpha > 0:
        coef = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)
    else:
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
    return coef, float(mean_y - mean_x @ coef)


def weighted_r2(targets: np.ndarray, fitted: np.ndarray, weights: np.ndarray) -> float:
    """The kernel-weighted coefficient of determination (1 for a perfect fit; 1 or 0 for a constant target)."""
    mean = weights @ targets / weights.sum()
    residual = weights @ (targets - fitted) ** 2
    total = weights @ (targets - mean) ** 2
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1.0 - residual / total)


def _forward_selection(data: np.ndarray, targets: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    chosen: list[int] = []
    for _ in range(k):
        best, best_score = -1, -np.inf
        for feature in range(data.shape[1]):
            if feature in chosen:
                continue
            columns = data[:, chosen + [feature]]
            coef, intercept = weighted_ridge(columns, targets, weights, 0.0)
            score = weighted_r2(targets, columns @ coef + intercept, weights)
            if score > best_score:  # strict: the lowest index wins a tie
                best, best_score = feature, score
        chosen.append(best)
    return np.array(chosen, dtype=np.int64)


def _lasso_path(data: np.ndarray, targets: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """K-LASSO (Algorithm 1): the features of the last point on the lasso path with at most ``k`` non-zeros."""
    from sklearn.linear_model import lars_path

    root = np.sqrt(weights)
    x = (data - np.average(data, axis=0, weights=weights)) * root[:, None]
    y = (targets - np.average(targets, weights=weights)) * root
    _, _, coefs = lars_path(x, y, method="lasso")
    # walk back from the least regularised end of the path to the first point with <= k features
    nonzero = np.arange(data.shape[1])
    for step in range(coefs.shape[1] - 1, 0, -1):
        nonzero = np.flatnonzero(coefs[:, step])
        if len(nonzero) <= k:
            break
    return nonzero.astype(np.int64)


def select_features(
    data: Any, targets: Any, weights: Any, num_features: int, feature_selection: str = "auto"
) -> np.ndarray:
    """The ``K`` interpretable features the explanation keeps (``Omega`` of Eq. 1); see the module docstring."""
    data = as_matrix("data", data)
    targets = as_vector("targets", targets, data.shape[0])
    weights = as_vector("weights", weights, data.shape[0])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    k = check_num_features(num_features, data.shape[1])
    method = check_feature_selection(feature_selection)
    if method == "auto":
        method = "forward_selection" if k <= 6 else "highest_weights"
    if method == "none":
        return np.arange(data.shape[1], dtype=np.int64)
    if method == "forward_selection":
        return _forward_selection(data, targets, weights, k)
    if method == "highest_weights":
        coef, _ = weighted_ridge(data, targets, weights, 0.01)
        contribution = np.abs(coef * data[0])  # w_j x'_j at the explained instance (row 0)
        return np.argsort(-contribution, kind="stable")[:k].astype(np.int64)
    return _lasso_path(data, targets, weights, k)


@dataclass
class Surrogate:
    """The fitted interpretable model ``g`` of one explanation."""

    features: np.ndarray
    """Selected interpretable features, by decreasing ``|weight|``."""
    weights: np.ndarray
    """Their weights ``w_g`` (same order)."""
    intercept: float
    score: float
    """Kernel-weighted R^2 of ``g`` on the samples: the local fidelity."""
    local_prediction: float
    """``g(x')`` at the explained instance (row 0 of the samples)."""

    def dense(self, count: int) -> np.ndarray:
        out = np.zeros(count)
        out[self.features] = self.weights
        return out


def fit_surrogate(
    data: Any,
    targets: Any,
    weights: Any,
    num_features: int,
    feature_selection: str = "auto",
    alpha: float = 1.0,
) -> Surrogate:
    """Algorithm 1 after sampling: select ``K`` features, then a weighted ridge fit on them (Eq. 2).

    ``data``: interpretable samples ``[N, d']`` with the explained instance as row 0; ``targets``:
    ``f(z)`` for the explained class ``[N]``; ``weights``: ``pi_x(z)`` ``[N]``.
    """
    data = as_matrix("data", data)
    targets = as_vector("targets", targets, data.shape[0])
    weights = as_vector("weights", weights, data.shape[0])
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
        raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
    features = select_features(data, targets, weights, num_features, feature_selection)
    columns = data[:, features]
    coef, intercept = weighted_ridge(columns, targets, weights, float(alpha))
    score = weighted_r2(targets, columns @ coef + intercept, weights)
    order = np.argsort(-np.abs(coef), kind="stable")
    return Surrogate(
        features=features[order],
        weights=coef[order],
        intercept=intercept,
        score=score,
        local_prediction=float(columns[0] @ coef + intercept),
    )


def surrogate_explanation(
    surrogate: Surrogate,
    count: int,
    predictions: np.ndarray,
    label: int,
    method: str,
    names: Sequence[str] | None,
    data: Any,
    plotter: Plotter,
    **extras: Any,
) -> Explanation:
    """The :class:`Explanation` of one instance: ``g``'s weights over all ``count`` interpretable features
    (zero where unselected), its intercept as the base value, and the fit's details in ``extras``."""
    return Explanation(
        values=surrogate.dense(count),
        base_value=surrogate.intercept,
        feature_names=names,
        data=data,
        method=method,
        extras={
            "label": label,
            "features": surrogate.features.tolist(),
            "weights": surrogate.weights.tolist(),
            "intercept": surrogate.intercept,
            "score": surrogate.score,
            "local_prediction": surrogate.local_prediction,
            "prediction": float(predictions[0, label]),
            **extras,
        },
        plotter=plotter,
    )
