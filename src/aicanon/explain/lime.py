"""LIME and SP-LIME (Ribeiro, Singh & Guestrin, "Why Should I Trust You?": Explaining the Predictions
of Any Classifier, KDD 2016, arXiv 1602.04938).

LIME explains one prediction ``f(x)`` by an interpretable model ``g`` fitted on perturbations of ``x``
drawn in an *interpretable representation* ``x' in {0, 1}^d'`` (a word present or removed, a
superpixel shown or hidden, a feature in the instance's quartile bin or not):

    xi(x) = argmin_{g in G} L(f, g, pi_x) + Omega(g)                                   (Eq. 1)

with ``G`` linear models ``g(z') = w_g . z'``, ``Omega`` a cap of ``K`` non-zero weights, the
locality-weighted square loss

    L(f, g, pi_x) = sum_{z, z' in Z} pi_x(z) (f(z) - g(z'))^2                          (Eq. 2)

and an exponential kernel ``pi_x(z) = exp(-D(x, z)^2 / sigma^2)`` on a distance ``D`` (Section 3.3).
Algorithm 1 (sparse linear explanations): draw ``N`` samples ``z'`` around ``x'``, recover ``z`` and
query ``f(z)``, weigh by ``pi_x(z)``, pick ``K`` features (K-LASSO: the regularisation path of the
lasso) and fit the weights by least squares on them.

SP-LIME (Section 4, Algorithm 2) picks ``B`` instances whose explanations cover the important
features. With the explanation matrix ``W`` (``n x d'``, ``W_ij`` = weight of feature ``j`` in the
explanation of instance ``i``) and the global importance ``I_j = sqrt(sum_i |W_ij|)``,

    c(V, W, I) = sum_j 1[exists i in V : |W_ij| > 0] I_j                              (Eq. 3)
    Pick(W, I) = argmax_{V, |V| <= B} c(V, W, I)                                        (Eq. 4)

``c`` is monotone submodular, so the greedy pick of Algorithm 2 (add the instance with the largest
coverage gain) is within ``1 - 1/e`` of the optimum.

Modalities (Section 3.1 and the authors' ``lime`` package, whose conventions we follow so that the
same samples give the same explanation):

* tabular (:class:`TabularExplainer`): continuous features are discretised into quartiles of the
  training data; a sample draws each feature's bin from the training frequencies, the binary
  feature is "same bin as the instance", and the model is queried on a value drawn from a normal
  truncated to the bin with the bin's training mean and standard deviation; the distance is
  Euclidean in that binary space, the kernel width ``0.75 sqrt(d)``. Without discretisation a
  sample is ``N(0, 1)`` scaled by the training standard deviation around the training mean.
* text (:func:`explain_text`): bag of words; a sample removes a uniformly drawn number
  ``1..d`` of the distinct words (every occurrence); the distance is ``100 x`` the cosine distance
  of the binary vectors, the kernel width 25.
* image (:func:`explain_image`): superpixels (scikit-image quickshift or SLIC); a sample hides
  each superpixel with probability 1/2 by a fill colour (each superpixel's mean colour by default);
  cosine distance, kernel width 0.25.

Feature selection (``feature_selection``): ``"lasso_path"`` (K-LASSO, Algorithm 1: the last point
of the lasso path, computed by LARS on the kernel-weighted centred data, with at most ``K``
non-zeros), ``"forward_selection"`` (add the feature that most raises the weighted R^2 of an
unregularised least-squares fit), ``"highest_weights"`` (the ``K`` largest ``|w_j x'_j|`` of a ridge
fit on all features), ``"none"`` and ``"auto"`` (forward selection for ``K <= 6``, else highest
weights). The explanation's weights are then a ridge fit (``alpha = 1``) on the selected features,
and its weighted R^2 on the samples is reported as ``score`` (the local fidelity).

Perturbation samples can be passed in (``samples=``), so that an explanation can be reproduced
exactly or compared with another implementation on the same neighbourhood.

Departures from the paper and why:

* The kernel: the paper writes ``pi_x(z) = exp(-D^2 / sigma^2)``; the authors' package uses its
  square root ``exp(-D^2 / (2 sigma^2))`` with the default widths above. ``kernel="lime"``
  (default) follows the package so that explanations and default widths match it;
  ``kernel="paper"`` gives the paper's form.
* The final weights are a ridge fit with ``alpha = 1`` (the package's choice) rather than plain least
  squares on the ``K`` features (Algorithm 1); ``alpha`` is an argument (``alpha=0`` gives least squares).
* ``values`` hold a weight for every interpretable feature, zero for the unselected ones;
  ``extras["features"]`` lists the selected ones by decreasing ``|weight|``.
* SP-LIME breaks ties in coverage gain by the lowest instance index (the package takes the last).
* ``num_features`` above the number of interpretable features is an error (the package silently
  returns fewer); it defaults to ``min(10, d)`` for tables and text and to all superpixels for images.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_int
from aicanon.explain.explanation import Explanation

__all__ = [
    "DISCRETIZERS",
    "FEATURE_SELECTIONS",
    "KERNELS",
    "SEGMENTATIONS",
    "Surrogate",
    "TabularExplainer",
    "TabularSamples",
    "cosine_distances",
    "coverage",
    "explain_image",
    "explain_text",
    "exponential_kernel",
    "feature_importance",
    "fit_surrogate",
    "image_samples",
    "segment_image",
    "select_features",
    "submodular_pick",
    "text_samples",
    "weighted_r2",
    "weighted_ridge",
]

FEATURE_SELECTIONS = ("auto", "forward_selection", "highest_weights", "lasso_path", "none")
KERNELS = ("lime", "paper")
DISCRETIZERS = ("quartile", "decile")
SEGMENTATIONS = ("quickshift", "slic")
_PERCENTILES = {"quartile": [25, 50, 75], "decile": [10, 20, 30, 40, 50, 60, 70, 80, 90]}
Seed = int | np.random.Generator | None


# =============================================================================== checks
def _matrix(name: str, value: Any) -> np.ndarray:
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


def _vector(name: str, value: Any, length: int) -> np.ndarray:
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


def _check_num_features(num_features: Any, count: int) -> int:
    check_int("num_features", num_features, 1)
    if num_features > count:
        raise ValueError(
            f"num_features must be <= the number of interpretable features ({count}), got {num_features}"
        )
    return num_features


def _check_method(feature_selection: Any) -> str:
    if feature_selection not in FEATURE_SELECTIONS:
        raise ValueError(f"feature_selection must be one of {FEATURE_SELECTIONS}, got {feature_selection!r}")
    return feature_selection


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int >= 0, a numpy Generator or None, got {seed!r}")


def _predictions(name: str, output: Any, rows: int) -> np.ndarray:
    """A classifier's output as a float64 matrix ``[rows, classes]`` (a vector is one regression output)."""
    if isinstance(output, torch.Tensor):
        output = output.detach().cpu().numpy()
    array = np.asarray(output, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"{name} must return [{rows}, classes] predictions, got shape {array.shape}")
    return array


def _label(label: Any, predictions: np.ndarray) -> int:
    """The class explained: ``label``, or the class the model predicts for the instance (row 0)."""
    classes = predictions.shape[1]
    if label is None:
        return int(np.argmax(predictions[0]))
    check_int("label", label, 0)
    if label >= classes:
        raise ValueError(f"label must be a class index in [0, {classes}), got {label}")
    return label


# =============================================================================== kernel and distances
def exponential_kernel(distances: Any, width: float, kernel: str = "lime") -> np.ndarray:
    """Section 3.3: ``pi = exp(-D^2 / sigma^2)`` (``"paper"``) or its square root (``"lime"``, the package's)."""
    width = _check_positive("width", width)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    d = np.asarray(distances, dtype=np.float64)
    if (d < 0).any() or not np.isfinite(d).all():
        raise ValueError("distances must be finite and >= 0")
    scale = 2.0 if kernel == "lime" else 1.0  # sqrt(exp(-D^2/s^2)) = exp(-D^2/(2 s^2))
    return np.exp(-(d**2) / (scale * width**2))


def cosine_distances(data: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``1 - cos(z', x')`` for every row; a zero row is at distance 1 (its cosine is taken as 0)."""
    norms = np.linalg.norm(data, axis=1) * np.linalg.norm(reference)
    dots = data @ reference
    similarity = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return np.clip(1.0 - similarity, 0.0, 2.0)


# =============================================================================== the surrogate (Algorithm 1)
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
    data = _matrix("data", data)
    targets = _vector("targets", targets, data.shape[0])
    weights = _vector("weights", weights, data.shape[0])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    k = _check_num_features(num_features, data.shape[1])
    method = _check_method(feature_selection)
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
    data = _matrix("data", data)
    targets = _vector("targets", targets, data.shape[0])
    weights = _vector("weights", weights, data.shape[0])
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


def _explanation(
    surrogate: Surrogate,
    count: int,
    predictions: np.ndarray,
    label: int,
    method: str,
    names: Sequence[str] | None,
    data: Any,
    plotter: Any,
    **extras: Any,
) -> Explanation:
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


# =============================================================================== plots
def _plot_bars(explanation: Explanation, ax: Any) -> None:
    """Figure 4 kind: the selected features' weights, green for the explained class and red against."""
    features = explanation.extras["features"][::-1]
    weights = np.asarray(explanation.extras["weights"][::-1])
    names = explanation.feature_names or [str(i) for i in range(len(explanation.values))]
    ax.barh([names[i] for i in features], weights, color=np.where(weights > 0, "tab:green", "tab:red"))
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"weight for class {explanation.extras['label']}")
    ax.set_title(f"{explanation.method} (local R^2 {explanation.extras['score']:.2f})")


def _plot_superpixels(explanation: Explanation, ax: Any) -> None:
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


# =============================================================================== tabular
@dataclass
class TabularSamples:
    """A tabular neighbourhood: ``data`` in the interpretable representation (row 0 the instance) and
    ``inverse``, the same samples in the original feature space (what the model is queried on)."""

    data: np.ndarray
    inverse: np.ndarray


class TabularExplainer:
    """LIME for tabular data; holds the training statistics that samples are drawn from (Section 3.1).

    ``training_data``: ``[n, d]``. ``categorical_features``: columns holding integer categories
    (a binary feature "same category as the instance", categories drawn by training frequency).
    ``discretize``: ``"quartile"`` (default), ``"decile"`` or None (continuous features sampled from a
    normal with the training mean and standard deviation, or around the instance with
    ``sample_around_instance``). ``kernel_width``: default ``0.75 sqrt(d)``.
    """

    def __init__(
        self,
        training_data: Any,
        *,
        categorical_features: Sequence[int] = (),
        feature_names: Sequence[str] | None = None,
        discretize: str | None = "quartile",
        kernel_width: float | None = None,
        kernel: str = "lime",
        sample_around_instance: bool = False,
    ) -> None:
        train = _matrix("training_data", training_data)
        d = train.shape[1]
        categorical = [int(c) for c in categorical_features]
        if any(c < 0 or c >= d for c in categorical):
            raise ValueError(f"categorical_features must be column indices in [0, {d}), got {categorical}")
        if feature_names is not None and len(feature_names) != d:
            raise ValueError(f"feature_names must have one name per column ({d}), got {len(feature_names)}")
        if discretize is not None and discretize not in DISCRETIZERS:
            raise ValueError(f"discretize must be one of {DISCRETIZERS} or None, got {discretize!r}")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.dimension = d
        self.feature_names = list(feature_names) if feature_names is not None else [str(i) for i in range(d)]
        self.kernel = kernel
        self.kernel_width = (
            0.75 * float(np.sqrt(d))
            if kernel_width is None
            else _check_positive("kernel_width", kernel_width)
        )
        self.sample_around_instance = bool(sample_around_instance)
        self.discretize = discretize
        # Continuous columns are discretised into percentile bins: bin b holds x with edge[b-1] < x <= edge[b].
        self.edges: dict[int, np.ndarray] = {}
        self.bin_stats: dict[int, dict[str, np.ndarray]] = {}
        if discretize is not None:
            for column in range(d):
                if column in categorical:
                    continue
                values = train[:, column]
                edges = np.unique(np.percentile(values, _PERCENTILES[discretize]))
                bins = np.searchsorted(edges, values)
                count = len(edges) + 1
                means, stds = np.zeros(count), np.zeros(count)
                for b in range(count):
                    inside = values[bins == b]
                    if len(inside):
                        means[b], stds[b] = inside.mean(), inside.std()
                self.edges[column] = edges
                self.bin_stats[column] = {
                    "mean": means,
                    "std": stds + 1e-11,  # the package's floor: a one-valued bin still has a width
                    "low": np.concatenate([[values.min()], edges]),
                    "high": np.concatenate([edges, [values.max()]]),
                }
            categorical = list(range(d))  # every column is a category (a bin) from here on
        self.categorical = categorical
        # Frequencies of each category (or bin) in the training data: the sampling distribution.
        encoded = self.encode(train) if discretize is not None else train
        self.values: dict[int, np.ndarray] = {}
        self.frequencies: dict[int, np.ndarray] = {}
        for column in categorical:
            values, counts = np.unique(encoded[:, column], return_counts=True)
            self.values[column], self.frequencies[column] = values, counts / counts.sum()
        # Continuous columns are scaled by their training std (1 where constant); categorical ones not.
        self.mean = train.mean(axis=0)
        std = train.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        self.mean[categorical] = 0.0
        self.scale[categorical] = 1.0

    def encode(self, data: np.ndarray) -> np.ndarray:
        """Replace every discretised column by its bin index."""
        out = np.array(data, dtype=np.float64, copy=True)
        for column, edges in self.edges.items():
            out[..., column] = np.searchsorted(edges, out[..., column])
        return out

    def bin_names(self, instance: np.ndarray) -> list[str]:
        """Feature names of the interpretable representation: ``"x <= 0.50"``, ``"0.50 < x <= 1.20"`` ..."""
        names = []
        for column, name in enumerate(self.feature_names):
            if column not in self.edges:
                names.append(f"{name}={instance[column]:g}")
                continue
            edges = self.edges[column]
            b = int(np.searchsorted(edges, instance[column]))
            if b == 0:
                names.append(f"{name} <= {edges[0]:.2f}")
            elif b == len(edges):
                names.append(f"{name} > {edges[-1]:.2f}")
            else:
                names.append(f"{edges[b - 1]:.2f} < {name} <= {edges[b]:.2f}")
        return names

    def _instance(self, instance: Any) -> np.ndarray:
        if isinstance(instance, torch.Tensor):
            instance = instance.detach().cpu().numpy()
        row = np.asarray(instance, dtype=np.float64)
        if row.shape != (self.dimension,):
            raise ValueError(f"instance must have shape ({self.dimension},), got {row.shape}")
        if not np.isfinite(row).all():
            raise ValueError("instance must be finite, got NaN or inf")
        return row

    def sample(self, instance: Any, num_samples: int = 5000, seed: Seed = None) -> TabularSamples:
        """Draw the neighbourhood of ``instance`` from the training statistics (row 0 is the instance)."""
        from scipy.stats import truncnorm

        row = self._instance(instance)
        n = check_int("num_samples", num_samples, 2)
        rng = _rng(seed)
        d = self.dimension
        continuous = [c for c in range(d) if c not in self.categorical]
        data = np.zeros((n, d))
        if continuous:
            centre = row[continuous] if self.sample_around_instance else self.mean[continuous]
            data[:, continuous] = rng.standard_normal((n, len(continuous))) * self.scale[continuous] + centre
        inverse = data.copy()
        first = self.encode(row)
        for column in self.categorical:
            drawn = rng.choice(self.values[column], size=n, p=self.frequencies[column])
            data[:, column] = drawn == first[column]
            inverse[:, column] = drawn
        for column, stats in self.bin_stats.items():
            bins = inverse[1:, column].astype(np.int64)
            mean, std = stats["mean"][bins], stats["std"][bins]
            low, high = (stats["low"][bins] - mean) / std, (stats["high"][bins] - mean) / std
            values = low.copy()  # a bin of zero width holds one value
            wide = low != high
            if wide.any():
                values[wide] = truncnorm.rvs(
                    low[wide], high[wide], loc=mean[wide], scale=std[wide], random_state=rng
                )
            inverse[1:, column] = values
        data[0] = row
        data[0, self.categorical] = 1.0  # the instance is in its own bin / category
        inverse[0] = row
        return TabularSamples(data=data, inverse=inverse)

    def explain(
        self,
        instance: Any,
        predict_fn: Callable[[np.ndarray], Any],
        *,
        label: int | None = None,
        num_features: int | None = None,
        num_samples: int = 5000,
        feature_selection: str = "auto",
        alpha: float = 1.0,
        samples: TabularSamples | None = None,
        seed: Seed = None,
    ) -> Explanation:
        """Explain ``predict_fn(instance)`` (``predict_fn``: ``[N, d]`` -> ``[N, classes]`` probabilities or ``[N]``).

        ``samples``: a neighbourhood to use instead of drawing one (see :meth:`sample`).
        ``label``: the class explained (default: the predicted one). ``num_features``: ``K``
        (default ``min(10, d)``, the paper's ``K = 10`` of Section 5).
        """
        row = self._instance(instance)
        if not callable(predict_fn):
            raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
        num_features = min(10, self.dimension) if num_features is None else num_features
        _check_num_features(num_features, self.dimension)
        _check_method(feature_selection)
        if samples is None:
            samples = self.sample(row, num_samples, seed)
        elif not isinstance(samples, TabularSamples):
            raise TypeError(f"samples must be TabularSamples (from sample()), got {type(samples).__name__}")
        data = _matrix("samples.data", samples.data)
        if data.shape[1] != self.dimension or samples.inverse.shape != data.shape:
            raise ValueError(
                f"samples must be [N, {self.dimension}] in both representations, got "
                f"{data.shape} and {np.shape(samples.inverse)}"
            )
        scaled = (data - self.mean) / self.scale
        distances = np.linalg.norm(scaled - scaled[0], axis=1)  # Euclidean D (Section 3.3)
        weights = exponential_kernel(distances, self.kernel_width, self.kernel)
        predictions = _predictions("predict_fn", predict_fn(samples.inverse), data.shape[0])
        label = _label(label, predictions)
        surrogate = fit_surrogate(
            scaled, predictions[:, label], weights, num_features, feature_selection, alpha
        )
        names = self.bin_names(row) if self.discretize is not None else self.feature_names
        return _explanation(
            surrogate,
            self.dimension,
            predictions,
            label,
            "lime_tabular",
            names,
            row,
            _plot_bars,
            num_samples=int(data.shape[0]),
            kernel_width=self.kernel_width,
        )


# =============================================================================== text
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
    rng = _rng(seed)
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
    _check_num_features(num_features, len(words))
    _check_method(feature_selection)
    if samples is None:
        data = text_samples(len(words), num_samples, seed)
    else:
        data = _matrix("samples", samples)
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
    predictions = _predictions("classifier_fn", classifier_fn(documents), data.shape[0])
    label = _label(label, predictions)
    surrogate = fit_surrogate(data, predictions[:, label], weights, num_features, feature_selection, alpha)
    return _explanation(
        surrogate,
        len(words),
        predictions,
        label,
        "lime_text",
        words,
        None,
        _plot_bars,
        num_samples=int(data.shape[0]),
        kernel_width=float(kernel_width),
    )


# =============================================================================== image
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
    data = _rng(seed).integers(0, 2, size=(n, d)).astype(np.float64)
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
    num_features = d if num_features is None else _check_num_features(num_features, d)
    _check_method(feature_selection)
    batch = check_int("batch_size", batch_size, 1)
    if samples is None:
        data = image_samples(d, num_samples, seed)
    else:
        data = _matrix("samples", samples)
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
        outputs.append(_predictions("classifier_fn", classifier_fn(images), rows.shape[0]))
    predictions = np.concatenate(outputs)
    distances = cosine_distances(data, data[0])
    weights = exponential_kernel(distances, kernel_width, kernel)
    label = _label(label, predictions)
    surrogate = fit_surrogate(data, predictions[:, label], weights, num_features, feature_selection, alpha)
    return _explanation(
        surrogate,
        d,
        predictions,
        label,
        "lime_image",
        None,
        image,
        _plot_superpixels,
        segments=segments,
        num_samples=int(data.shape[0]),
        kernel_width=float(kernel_width),
    )


# =============================================================================== SP-LIME (Section 4)
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
        else _vector("importance", importance, matrix.shape[1])
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
        else _vector("importance", importance, matrix.shape[1])
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
