"""Chatbot Arena ratings (Zheng et al., 2023, Section 2.3 and Appendix; the LMSYS leaderboard
notebook): online Elo, the Bradley-Terry maximum-likelihood fit, and bootstrap intervals.

A battle is one vote between two anonymous models ``a`` and ``b``: ``a`` wins (score ``s = 1``),
``b`` wins (``s = 0``) or a tie (``s = 1/2``; the arena's ``"tie"`` and ``"tie (bothbad)"``).
Ratings are on the Elo scale: with ``scale = 400``, ``base = 10``, a model rated ``R_a`` beats one
rated ``R_b`` with probability

    (1)  E_a = P(a beats b) = 1 / (1 + base^((R_b - R_a) / scale)).

**Online Elo** (the paper's and the May 2023 blog's rating): start every model at ``initial = 1000``
and, battle after battle in order,

    (2)  R_a <- R_a + K (s - E_a),   R_b <- R_b + K ((1 - s) - E_b),   K = 4.

It depends on the order of the battles (shown in the experiment).

**Bradley-Terry** (the leaderboard's rating since December 2023): the maximum-likelihood ``R`` under
model (1), i.e. a logistic regression without intercept or penalty on the design row
``x = ln(base) (e_a - e_b)`` with coefficients ``beta = (R - initial) / scale``:

    (3)  max_beta  sum_i w_i [ s_i log sigma(x_i . beta) + (1 - s_i) log sigma(-x_i . beta) ].

Ties: counted as half a win for each side (``ties="half"``, what the notebook does by writing every
battle twice, a tie once as an ``a`` win and once as a ``b`` win: the same objective as (3) with
``s = 1/2``, doubled); ``ties="drop"`` removes them instead. Online Elo always scores a tie as 1/2, as
the notebook does. The likelihood is invariant to adding a constant to every coefficient; like
scikit-learn's solver started at zero (whose iterates never leave the subspace ``sum beta = 0``, as every
design row sums to zero) we return the solution with ``sum beta = 0``, i.e. the ratings average
``initial``; ``anchor=(model, rating)`` shifts them to pin one model (the notebook pins Mixtral at
1114). Solved by Newton's method on the per-pair win totals (the Hessian is a weighted graph
Laplacian; steps by least squares, which keeps them orthogonal to its null space).

**Bootstrap intervals** (the notebook's ``get_bootstrap_result``): resample the battles with
replacement ``rounds`` times, refit, and take the ``(1 - confidence)/2`` and ``(1 + confidence)/2``
quantiles of each model's rating; the point estimate is the fit on all battles.

Departures: the notebook's scikit-learn fit stops at ``tol = 1e-8`` (L-BFGS); ours stops when a
Newton step moves no coefficient more than ``tol`` (the two agree to ~1e-6 Elo, tested). Where the
maximum-likelihood estimate does not exist (a model that won or lost every battle, so its rating runs
off to infinity) both methods return a large finite value; we warn (``RuntimeWarning``) when Newton's
method has not converged after ``max_iterations``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.evals.intervals import Interval

__all__ = [
    "WINNERS",
    "Battles",
    "bootstrap_ratings",
    "bradley_terry",
    "expected_score",
    "kendall_tau",
    "online_elo",
    "simulate_battles",
]

WINNERS = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
"""The arena's ``winner`` field and the score of ``model_a`` it means."""


@dataclass(frozen=True)
class Battles:
    """Battles between ``models``: ``model_a[i]``, ``model_b[i]`` index ``models``; ``score[i]`` is
    ``model_a``'s score (1 win, 0 loss, 0.5 tie)."""

    models: tuple[str, ...]
    model_a: np.ndarray
    model_b: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be distinct names, at least one, got {self.models!r}")
        a, b, s = (np.asarray(v) for v in (self.model_a, self.model_b, self.score))
        if not (a.ndim == b.ndim == s.ndim == 1 and len(a) == len(b) == len(s)):
            raise ValueError(
                "model_a, model_b and score must be 1-D of one length, "
                f"got shapes {a.shape}, {b.shape}, {s.shape}"
            )
        if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
            raise TypeError(f"model_a and model_b must hold integer indices, got {a.dtype} and {b.dtype}")
        if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= len(self.models)):
            raise ValueError(f"model indices must lie in [0, {len(self.models) - 1}]")
        if np.any(a == b):
            raise ValueError(f"a model cannot battle itself (battle {int(np.argmax(a == b))})")
        if not np.all(np.isin(s, (0.0, 0.5, 1.0))):
            raise ValueError("score must hold only 1 (model_a wins), 0 (model_b wins) and 0.5 (tie)")
        object.__setattr__(self, "model_a", a.astype(np.int64))
        object.__setattr__(self, "model_b", b.astype(np.int64))
        object.__setattr__(self, "score", s.astype(np.float64))

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def from_records(
        cls, records: Sequence[tuple[str, str, str]], models: Sequence[str] | None = None
    ) -> Battles:
        """From ``(model_a, model_b, winner)`` triples, ``winner`` one of :data:`WINNERS`. ``models``
        fixes the order of the models (default: order of first appearance)."""
        if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
            raise TypeError(
                f"records must be a sequence of (model_a, model_b, winner), got {type(records).__name__}"
            )
        names = list(models) if models is not None else []
        if models is None:
            for record in records:
                for name in record[:2]:
                    if name not in names:
                        names.append(name)
        index = {name: i for i, name in enumerate(names)}
        a, b, s = [], [], []
        for number, record in enumerate(records):
            if len(record) != 3:
                raise ValueError(f"records[{number}] must be (model_a, model_b, winner), got {record!r}")
            first, second, winner = record
            for name in (first, second):
                if name not in index:
                    raise ValueError(f"records[{number}] names {name!r}, not one of models {tuple(names)}")
            if winner not in WINNERS:
                raise ValueError(f"records[{number}] winner must be one of {sorted(WINNERS)}, got {winner!r}")
            a.append(index[first])
            b.append(index[second])
            s.append(WINNERS[winner])
        return cls(tuple(names), np.array(a, dtype=np.int64), np.array(b, dtype=np.int64), np.array(s))

    def take(self, indices: np.ndarray) -> Battles:
        """The battles at ``indices``, in that order (a bootstrap resample, a permutation)."""
        return Battles(self.models, self.model_a[indices], self.model_b[indices], self.score[indices])

    def without_ties(self) -> Battles:
        return self.take(np.flatnonzero(self.score != 0.5))


def _check_scale(scale: float, base: float, initial: float) -> None:
    check_float("scale", scale, 0.0, min_inclusive=False, finite=True)
    check_float("base", base, 1.0, min_inclusive=False, finite=True)
    check_float("initial", initial, finite=True)


def _check_battles(battles: Battles) -> None:
    if not isinstance(battles, Battles):
        raise TypeError(f"battles must be a Battles (Battles.from_records), got {type(battles).__name__}")


def expected_score(rating_a: float, rating_b: float, scale: float = 400.0, base: float = 10.0) -> float:
    """Equation (1): the probability that a model rated ``rating_a`` beats one rated ``rating_b``."""
    check_float("rating_a", rating_a, finite=True)
    check_float("rating_b", rating_b, finite=True)
    _check_scale(scale, base, 0.0)
    return 1.0 / (1.0 + base ** ((rating_b - rating_a) / scale))


def online_elo(
    battles: Battles, k: float = 4.0, scale: float = 400.0, base: float = 10.0, initial: float = 1000.0
) -> dict[str, float]:
    """Equation (2) over the battles in their order; every model starts at ``initial``."""
    _check_battles(battles)
    check_float("k", k, 0.0, min_inclusive=False, finite=True)
    _check_scale(scale, base, initial)
    ratings = [float(initial)] * len(battles.models)
    for a, b, s in zip(battles.model_a.tolist(), battles.model_b.tolist(), battles.score.tolist()):
        expected_a = 1.0 / (1.0 + base ** ((ratings[b] - ratings[a]) / scale))
        ratings[a] += k * (s - expected_a)
        ratings[b] += k * ((1.0 - s) - (1.0 - expected_a))
    return dict(zip(battles.models, ratings))


def _pair_totals(battles: Battles, ties: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ordered pair (a, b) present: the number of battles and the summed score of a."""
    keep = battles.score != 0.5 if ties == "drop" else np.ones(len(battles), dtype=bool)
    p = len(battles.models)
    key = battles.model_a[keep] * p + battles.model_b[keep]
    counts = np.bincount(key, minlength=p * p).astype(np.float64)
    wins = np.bincount(key, weights=battles.score[keep], minlength=p * p)
    present = np.flatnonzero(counts)
    return present // p, present % p, counts[present], wins[present]


def bradley_terry(
    battles: Battles,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    ties: str = "half",
    anchor: tuple[str, float] | None = None,
    tol: float = 1e-10,
    max_iterations: int = 100,
) -> dict[str, float]:
    """The maximum-likelihood ratings of equation (3) (module docstring): they average ``initial``
    unless ``anchor=(model, rating)`` pins one model; ``ties`` is ``"half"`` or ``"drop"``."""
    _check_battles(battles)
    _check_scale(scale, base, initial)
    check_choice("ties", ties, ("half", "drop"))
    check_float("tol", tol, 0.0, min_inclusive=False, finite=True)
    check_int("max_iterations", max_iterations)
    if anchor is not None and (
        not isinstance(anchor, tuple) or len(anchor) != 2 or anchor[0] not in battles.models
    ):
        raise ValueError(f"anchor must be (a model of {battles.models}, its rating) or None, got {anchor!r}")
    a, b, n, wins = _pair_totals(battles, ties)
    p = len(battles.models)
    log_base = math.log(base)
    beta = np.zeros(p)
    converged = len(n) == 0
    for _ in range(max_iterations if len(n) else 0):
        z = log_base * (beta[a] - beta[b])
        prob = 1.0 / (1.0 + np.exp(-z))
        residual = wins - n * prob  # d loglik / d z per pair, summed over its battles
        gradient = log_base * (np.bincount(a, residual, p) - np.bincount(b, residual, p))
        curvature = log_base**2 * n * prob * (1.0 - prob)
        # Negative Hessian: the Laplacian of the comparison graph weighted by the curvature.
        laplacian = np.zeros((p, p))
        np.add.at(laplacian, (a, b), -curvature)
        np.add.at(laplacian, (b, a), -curvature)
        laplacian[np.diag_indices(p)] -= laplacian.sum(axis=1)
        step = np.linalg.lstsq(laplacian, gradient, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            "bradley_terry: Newton's method did not converge (a model may have won or lost every battle, "
            "so its maximum-likelihood rating is infinite); the ratings are the last iterate",
            RuntimeWarning,
            stacklevel=2,
        )
    beta -= beta.mean()
    ratings = scale * beta + initial
    if anchor is not None:
        ratings += anchor[1] - ratings[battles.models.index(anchor[0])]
    return dict(zip(battles.models, ratings.tolist()))


def bootstrap_ratings(
    battles: Battles,
    method: Callable[[Battles], Mapping[str, float]] = bradley_terry,
    rounds: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Percentile-bootstrap intervals of ``method``'s ratings (module docstring): per model, an
    :class:`Interval` whose estimate is ``method(battles)``. Seeded."""
    _check_battles(battles)
    if len(battles) == 0:
        raise ValueError("battles must hold at least one battle")
    check_int("rounds", rounds)
    check_float("confidence", confidence, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    estimate = method(battles)
    replicates = np.empty((rounds, len(battles.models)))
    with warnings.catch_warnings():
        # A resample where some model won every battle has no finite MLE: keep its large rating,
        # as the notebook's resampling does, without a warning per round.
        warnings.simplefilter("ignore", RuntimeWarning)
        for r in range(rounds):
            ratings = method(battles.take(rng.integers(0, len(battles), len(battles))))
            replicates[r] = [ratings[m] for m in battles.models]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail], axis=0)
    return {
        m: Interval(float(estimate[m]), float(low[i]), float(high[i]), confidence)
        for i, m in enumerate(battles.models)
    }


def simulate_battles(
    ratings: Mapping[str, float],
    battles: int,
    tie_rate: float = 0.0,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 10.0,
) -> Battles:
    """Battles between uniformly drawn pairs of models whose true ratings are ``ratings``.

    Model ``a`` beats ``b`` with probability ``p`` of equation (1). Ties: with probability
    ``t = tie_rate * 2 min(p, 1 - p)`` a battle is a tie, otherwise ``a`` wins with probability
    ``p - t/2``; so ``a``'s expected score stays ``p`` (a tie is worth half a win, as both rating
    methods count it) and the Bradley-Terry fit of :func:`bradley_terry` stays consistent."""
    if not isinstance(ratings, Mapping) or len(ratings) < 2:
        raise ValueError(f"ratings must map at least two model names to ratings, got {ratings!r}")
    for name, value in ratings.items():
        check_float(f"ratings[{name!r}]", value, finite=True)
    check_int("battles", battles)
    check_float("tie_rate", tie_rate, 0.0, 1.0)
    check_int("seed", seed, 0)
    _check_scale(scale, base, 0.0)
    models = tuple(ratings)
    strength = np.array([ratings[m] for m in models], dtype=np.float64)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(models), battles)
    b = (a + rng.integers(1, len(models), battles)) % len(models)  # uniform over the other models
    p = 1.0 / (1.0 + base ** ((strength[b] - strength[a]) / scale))
    tie = tie_rate * 2.0 * np.minimum(p, 1.0 - p)
    u = rng.random(battles)
    score = np.where(u < p - tie / 2.0, 1.0, np.where(u < p + tie / 2.0, 0.5, 0.0))
    return Battles(models, a, b, score)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two rankings' scores (1: same order, -1: reversed); ties in either
    count as neither concordant nor discordant, normalised as tau-b."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"x and y must be 1-D of one length >= 2, got shapes {x.shape} and {y.shape}")
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)
    dx, dy = dx[upper], dy[upper]
    denominator = math.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float(np.sum(dx * dy) / denominator) if denominator else float("nan")
