"""LIME for tables (Ribeiro et al. 2016, Section 3.1; the authors' ``lime`` package's ``lime_tabular``,
whose conventions we follow so that the same samples give the same explanation).

The interpretable representation of an instance ``x`` is one binary feature per column: with
discretisation (default), continuous columns are cut into quartiles (or deciles) of the training data
and ``x'_j = 1`` when a sample's column ``j`` falls in the same bin as the instance's (categorical
columns: the same category). A sample draws each column's bin or category from its training
frequencies, and the model is queried on a value drawn from a normal truncated to the bin with the
bin's training mean and standard deviation. Without discretisation a continuous column is drawn from
``N(0, 1)`` scaled by the training standard deviation around the training mean (or around the
instance, ``sample_around_instance``).

The distance ``D`` of the kernel ``pi_x`` (Section 3.3, :mod:`aicanon.explain.lime.kernel`) is
Euclidean in that representation (continuous columns scaled by their training standard deviation);
the default kernel width is ``0.75 sqrt(d)``, the package's. ``num_features`` (``K``) defaults to
``min(10, d)``, the paper's ``K = 10`` of Section 5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_float, check_int
from aicanon.explain.explanation import Explanation
from aicanon.explain.lime._checks import (
    Seed,
    as_generator,
    as_matrix,
    check_num_features,
    explained_label,
    model_outputs,
)
from aicanon.explain.lime.kernel import KERNELS, exponential_kernel
from aicanon.explain.lime.plots import plot_bars
from aicanon.explain.lime.surrogate import check_feature_selection, fit_surrogate, surrogate_explanation

__all__ = ["DISCRETIZERS", "TabularExplainer", "TabularSamples"]

DISCRETIZERS = ("quartile", "decile")
_PERCENTILES = {"quartile": [25, 50, 75], "decile": [10, 20, 30, 40, 50, 60, 70, 80, 90]}


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
        train = as_matrix("training_data", training_data)
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
            else float(check_float("kernel_width", kernel_width, 0, min_inclusive=False, finite=True))
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
        rng = as_generator(seed)
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
        check_num_features(num_features, self.dimension)
        check_feature_selection(feature_selection)
        if samples is None:
            samples = self.sample(row, num_samples, seed)
        elif not isinstance(samples, TabularSamples):
            raise TypeError(f"samples must be TabularSamples (from sample()), got {type(samples).__name__}")
        data = as_matrix("samples.data", samples.data)
        if data.shape[1] != self.dimension or samples.inverse.shape != data.shape:
            raise ValueError(
                f"samples must be [N, {self.dimension}] in both representations, got "
                f"{data.shape} and {np.shape(samples.inverse)}"
            )
        scaled = (data - self.mean) / self.scale
        distances = np.linalg.norm(scaled - scaled[0], axis=1)  # Euclidean D (Section 3.3)
        weights = exponential_kernel(distances, self.kernel_width, self.kernel)
        predictions = model_outputs("predict_fn", predict_fn(samples.inverse), data.shape[0])
        label = explained_label(label, predictions)
        surrogate = fit_surrogate(
            scaled, predictions[:, label], weights, num_features, feature_selection, alpha
        )
        names = self.bin_names(row) if self.discretize is not None else self.feature_names
        return surrogate_explanation(
            surrogate,
            self.dimension,
            predictions,
            label,
            "lime_tabular",
            names,
            row,
            plot_bars,
            num_samples=int(data.shape[0]),
            kernel_width=self.kernel_width,
        )
