"""SP-LIME: the submodular pick of explanations (Ribeiro et al. 2016, Section 4, Algorithm 2).

SP-LIME picks ``B`` instances whose explanations cover the important features, so that a user who
reads only those ``B`` explanations sees how the model behaves globally. With the explanation matrix
``W`` (``n x d'``, ``W_ij`` = weight of feature ``j`` in the explanation of instance ``i``) and the
global importance ``I_j = sqrt(sum_i |W_ij|)``,

    c(V, W, I) = sum_j 1[exists i in V : |W_ij| > 0] I_j                              (Eq. 3)
    Pick(W, I) = argmax_{V, |V| <= B} c(V, W, I)                                        (Eq. 4)

``c`` is monotone submodular, so the greedy pick of Algorithm 2 (add the instance with the largest
coverage gain) is within ``1 - 1/e`` of the optimum.

Departure: SP-LIME breaks ties in coverage gain by the lowest instance index (the authors' ``lime``
package takes the last).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_int
from aicanon.explain.lime._checks import as_vector

__all__ = ["coverage", "feature_importance", "submodular_pick"]


def _explanation_matrix(W: Any) -> np.ndarray:
    if isinstance(W, torch.Tensor):
        W = W.detach().cpu().numpy()
    try:
        matrix = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"W must be a numeric matrix [instances, features], got {type(W).__name__}"
        ) from error
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(f"W must be 2-D [instances, features], got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("W must be finite, got NaN or inf")
    return matrix


def feature_importance(W: Any) -> np.ndarray:
    """Global importance ``I_j = sqrt(sum_i |W_ij|)`` (Section 4, text-domain choice)."""
    return np.sqrt(np.abs(_explanation_matrix(W)).sum(axis=0))


def coverage(W: Any, picked: Sequence[int], importance: Any = None) -> float:
    """Eq. 3: the importance of the features that at least one picked explanation uses."""
    matrix = _explanation_matrix(W)
    importance = (
        feature_importance(matrix)
        if importance is None
        else as_vector("importance", importance, matrix.shape[1])
    )
    picked = [int(i) for i in picked]
    if any(i < 0 or i >= matrix.shape[0] for i in picked):
        raise ValueError(f"picked must be row indices of W in [0, {matrix.shape[0]}), got {picked}")
    if not picked:
        return 0.0
    covered = (np.abs(matrix[picked]) > 0).any(axis=0)
    return float(covered @ importance)


def submodular_pick(W: Any, budget: int, importance: Any = None) -> list[int]:
    """Algorithm 2: greedily add the instance with the largest coverage gain, ``budget`` times (Eq. 4)."""
    matrix = _explanation_matrix(W)
    budget = check_int("budget", budget, 1)
    if budget > matrix.shape[0]:
        raise ValueError(f"budget must be <= the number of explanations ({matrix.shape[0]}), got {budget}")
    importance = (
        feature_importance(matrix)
        if importance is None
        else as_vector("importance", importance, matrix.shape[1])
    )
    used = np.abs(matrix) > 0
    covered = np.zeros(matrix.shape[1], dtype=bool)
    picked: list[int] = []
    for _ in range(budget):
        gains = (used & ~covered) @ importance
        gains[picked] = -np.inf
        best = int(np.argmax(gains))  # the lowest index wins a tie
        picked.append(best)
        covered |= used[best]
    return picked
