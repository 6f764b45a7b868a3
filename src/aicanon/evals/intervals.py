"""Confidence intervals for benchmark scores, shared by every harness in :mod:`aicanon.evals`.

* :func:`wilson_interval`: the Wilson score interval for a proportion (an accuracy over ``n``
  independent items). Unlike the normal ("Wald") interval it stays inside [0, 1] and keeps close to
  its nominal coverage for small ``n`` and accuracies near 0 or 1:

      centre = (p̂ + z²/2n) / (1 + z²/n),   half-width = z/(1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²)

  with p̂ = successes/n and z the standard normal's (1 + confidence)/2 quantile.
* :func:`bootstrap_interval`: the percentile bootstrap for any statistic of per-item scores (partial
  credit such as ARC's 1/k for ties, macro averages over subjects): resample the items with
  replacement ``resamples`` times and take the (1 − confidence)/2 and (1 + confidence)/2 quantiles of
  the statistic. Seeded: the same call gives the same interval.
* :func:`chance_interval_contains`: whether an interval contains a chance rate (a harness "says so"
  when a model scores at chance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from aicanon.core.checks import check_float, check_int

__all__ = ["Interval", "bootstrap_interval", "chance_interval_contains", "wilson_interval"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided interval at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence}


def _z(confidence: float) -> float:
    check_float("confidence", confidence, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    return NormalDist().inv_cdf((1.0 + confidence) / 2.0)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of ``successes`` out of ``n`` (module docstring). ``successes`` may
    be fractional (partial credit); it must lie in [0, n]."""
    check_int("n", n)
    check_float("successes", successes, 0, n)
    z = _z(confidence)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(max(p * (1.0 - p) / n + z * z / (4 * n * n), 0.0))
    # At p̂ = 0 (1) the lower (upper) bound is exactly 0 (1); rounding would leave ~1e-17.
    low = 0.0 if successes == 0 else max(centre - half, 0.0)
    high = 1.0 if successes == n else min(centre + half, 1.0)
    return Interval(p, low, high, confidence)


def bootstrap_interval(
    scores: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The percentile-bootstrap interval of ``statistic(scores)`` over items (module docstring).

    ``scores``: per-item values (a 1-D array; for a statistic over several arrays, pass item indices
    and close over the arrays in ``statistic``)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D sequence, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite")
    check_int("resamples", resamples)
    check_int("seed", seed, 0)
    _z(confidence)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, values.size, size=(resamples, values.size))
    replicates = np.array([float(statistic(values[row])) for row in indices])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return Interval(float(statistic(values)), float(low), float(high), confidence)


def chance_interval_contains(interval: Interval, chance: float) -> bool:
    """Whether ``chance`` (e.g. 0.25 for four choices) lies inside ``interval``: a score
    indistinguishable from guessing at this confidence."""
    check_float("chance", chance, 0.0, 1.0)
    return chance in interval
