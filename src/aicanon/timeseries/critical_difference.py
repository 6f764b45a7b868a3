"""Comparing classifiers over many datasets: average ranks, the Friedman test, pairwise Wilcoxon
signed-rank tests with Holm's correction, cliques, and the critical-difference diagram.

The protocol of the TSC review (Ismail Fawaz et al. 2019, Section 4.2, after Demšar 2006 and
Benavoli, Corani and Mangili 2016; the authors' code: github.com/hfawaz/cd-diagram):

1. Rank the classifiers on each dataset (1 = best accuracy; ties get the average rank) and average
   the ranks over datasets: ``R_j = (1/N) sum_i r_ij``.
2. Friedman test of "all classifiers are equivalent" (Demšar's Eq. 1, with the usual correction for
   ties ``C = 1 - sum (t^3 - t) / (N k (k^2 - 1))``)::

       chi2_F = [12 N / (k (k + 1)) (sum_j R_j^2 - k (k + 1)^2 / 4)] / C,   k - 1 degrees of freedom

   If it is not rejected at ``alpha``, no pair is declared different (the code stops there).
3. Otherwise every pair is compared with a two-sided Wilcoxon signed-rank test on the per-dataset
   accuracies (zeros handled by Pratt's method, as the code's ``zero_method='pratt'``), and Holm's
   step-down procedure controls the family-wise error: sort the ``m`` p-values ascending and reject
   ``p_(i)`` while ``p_(i) <= alpha / (m - i + 1)``; stop at the first that is not rejected.
4. Classifiers joined by no significant difference form a graph; its maximal cliques (of two or
   more) are the thick bars of the critical-difference diagram (:func:`plot_critical_difference`).

The Wilcoxon p-value follows scipy's ``method='auto'`` (scipy 1.17): the exact null distribution
when there are at most 50 pairs with neither ties nor zero differences; with ties or zeros, the exact
distribution over all ``2^n`` sign flips when ``n <= 13``; else the normal approximation (variance
corrected for ties and, for Pratt, zeros; no continuity correction). All differences zero gives
p = 1. The chi-square and normal tails come from ``scipy.special``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure
from scipy.special import chdtrc, ndtr

from aicanon.core.checks import check_choice, check_float

__all__ = [
    "CriticalDifference",
    "FriedmanResult",
    "WilcoxonResult",
    "average_ranks",
    "critical_difference",
    "friedman_test",
    "holm",
    "maximal_cliques",
    "plot_critical_difference",
    "rank_rows",
    "wilcoxon_signed_rank",
]


def _scores(scores: object, name: str = "scores", min_columns: int = 1) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64) if not isinstance(scores, np.ndarray) else scores
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a numeric array [datasets, classifiers], got dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < min_columns:
        raise ValueError(
            f"{name} must be a 2-D array [datasets, classifiers] with at least {min_columns} classifiers, "
            f"got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


def _rankdata(values: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Ranks 1..n of a 1-D array (ascending; ties share their average rank) and the tie-group sizes."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_values = values[order]
    groups: list[int] = []
    start = 0
    for end in range(1, values.size + 1):
        if end == values.size or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2.0
            groups.append(end - start)
            start = end
    return ranks, groups


def rank_rows(scores: object, higher_is_better: bool = True) -> np.ndarray:
    """Per-dataset ranks ``[datasets, classifiers]``: 1 for the best score of each row, ties averaged."""
    array = _scores(scores)
    signed = -array if higher_is_better else array
    return np.stack([_rankdata(row)[0] for row in signed])


def average_ranks(scores: object, higher_is_better: bool = True) -> np.ndarray:
    """Each classifier's rank averaged over datasets (``scores`` is ``[datasets, classifiers]``)."""
    return rank_rows(scores, higher_is_better).mean(axis=0)


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    p_value: float


def friedman_test(scores: object) -> FriedmanResult:
    """Friedman's chi-square test (corrected for ties) on ``[datasets, classifiers]``, 3+ classifiers."""
    array = _scores(scores, min_columns=3)
    n, k = array.shape
    ranks = np.empty_like(array)
    ties = 0.0
    for i, row in enumerate(array):
        ranks[i], groups = _rankdata(row)
        ties += sum(t * (t * t - 1) for t in groups)
    correction = 1.0 - ties / (k * (k * k - 1) * n)
    if correction <= 0:  # every row constant: no evidence against equivalence
        return FriedmanResult(0.0, 1.0)
    column_sums = ranks.sum(axis=0)
    statistic = (12.0 / (k * n * (k + 1)) * float((column_sums**2).sum()) - 3.0 * n * (k + 1)) / correction
    return FriedmanResult(float(statistic), float(chdtrc(k - 1, statistic)))


@dataclass(frozen=True)
class WilcoxonResult:
    statistic: float
    """``min(R+, R-)`` for the two-sided test, ``R+`` for a one-sided one (scipy's convention)."""
    p_value: float
    method: str
    """``exact``, ``permutation`` (exact over all sign flips) or ``asymptotic``."""


def _signed_rank_sums(d: np.ndarray, zero_method: str) -> tuple[float, float, np.ndarray, list[int], int]:
    """R+ and R- of the differences ``d``, the ranks, the tie groups and the number of zeros."""
    zeros = d == 0
    if zero_method == "wilcox":
        d = d[~zeros]
    ranks, groups = _rankdata(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    r_minus = float(ranks[d < 0].sum())
    if zero_method == "zsplit":
        half = float(ranks[d == 0].sum()) / 2
        r_plus, r_minus = r_plus + half, r_minus + half
    return r_plus, r_minus, ranks, groups, int(zeros.sum())


def _exact_counts(n: int) -> np.ndarray:
    """Number of subsets of {1..n} with each sum 0..n(n+1)/2: the signed-rank null distribution."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1
    for value in range(1, n + 1):
        counts[value:] = counts[value:] + counts[:-value].copy()
    return counts


def wilcoxon_signed_rank(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    zero_method: str = "pratt",
    alternative: str = "two-sided",
) -> WilcoxonResult:
    """Wilcoxon's signed-rank test of the paired samples ``x`` and ``y`` (``greater``: x tends to be
    larger). ``zero_method`` is ``pratt`` (the review's), ``wilcox`` or ``zsplit``; see the module
    docstring for how the p-value is computed."""
    check_choice("zero_method", zero_method, ("pratt", "wilcox", "zsplit"))
    check_choice("alternative", alternative, ("two-sided", "greater", "less"))
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"x and y must be non-empty 1-D arrays of one length, got shapes {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("x and y must be finite (no NaN or inf)")
    d = a - b
    n_all = d.size
    r_plus, r_minus, _, groups, n_zero = _signed_rank_sums(d, zero_method)
    statistic = min(r_plus, r_minus) if alternative == "two-sided" else r_plus
    if np.all(d == 0):
        return WilcoxonResult(statistic, 1.0, "exact")
    has_ties = any(g > 1 for g in groups)
    count = n_all - (n_zero if zero_method == "wilcox" else 0)

    if n_all <= 50 and not has_ties and n_zero == 0:
        counts = _exact_counts(count)
        total = counts.sum()
        cdf = lambda k: counts[: int(k) + 1].sum() / total  # noqa: E731  P(T <= k)
        sf = lambda k: counts[int(k) :].sum() / total  # noqa: E731  P(T >= k)
        if alternative == "greater":
            p = sf(math.floor(r_plus))
        elif alternative == "less":
            p = cdf(math.ceil(r_plus))
        else:
            p = min(1.0, 2 * min(sf(math.floor(r_plus)), cdf(math.ceil(r_plus))))
        return WilcoxonResult(statistic, float(p), "exact")

    if n_all <= 13:
        # Every sign flip of the differences (zeros stay zero): the exact permutation distribution.
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n_all)))
        null = np.array([_signed_rank_sums(d * s, zero_method)[0] for s in signs])
        gamma = abs(np.finfo(np.float64).eps * 100 * r_plus)
        less = float((null <= r_plus + gamma).mean())
        greater = float((null >= r_plus - gamma).mean())
        p = {"less": less, "greater": greater, "two-sided": min(1.0, 2 * min(less, greater))}[alternative]
        return WilcoxonResult(statistic, p, "permutation")

    mean = count * (count + 1) / 4.0
    variance = count * (count + 1) * (2 * count + 1)
    tie_groups = list(groups)
    if zero_method == "pratt" and n_zero:
        mean -= n_zero * (n_zero + 1) / 4.0
        variance -= n_zero * (n_zero + 1) * (2 * n_zero + 1)
        tie_groups.remove(n_zero)  # the zeros' own tie group is not part of the tie correction
    variance -= sum(t**3 - t for t in tie_groups) / 2.0
    z = (r_plus - mean) / math.sqrt(variance / 24.0)
    if alternative == "greater":
        p = float(ndtr(-z))
    elif alternative == "less":
        p = float(ndtr(z))
    else:
        p = float(2 * ndtr(-abs(z)))
    return WilcoxonResult(statistic, min(1.0, p), "asymptotic")


def holm(p_values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down procedure: which hypotheses are rejected (a bool array in the input order)."""
    check_float("alpha", alpha, 0, 1, min_inclusive=False, max_inclusive=False)
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values must be a 1-D array of probabilities, got {p_values!r}")
    rejected = np.zeros(p.size, dtype=bool)
    for step, index in enumerate(np.argsort(p, kind="mergesort")):
        if p[index] > alpha / (p.size - step):
            break
        rejected[index] = True
    return rejected


def maximal_cliques(connected: np.ndarray) -> list[list[int]]:
    """Maximal cliques of the undirected graph with adjacency ``connected`` (Bron–Kerbosch with a
    pivot), each sorted, listed by their first member."""
    adjacency = np.asarray(connected, dtype=bool)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"connected must be a square matrix, got shape {adjacency.shape}")
    neighbours = [set(np.flatnonzero(adjacency[i])) - {i} for i in range(adjacency.shape[0])]
    found: list[list[int]] = []

    def expand(clique: set[int], candidates: set[int], excluded: set[int]) -> None:
        if not candidates and not excluded:
            found.append(sorted(clique))
            return
        pivot = max(candidates | excluded, key=lambda v: len(neighbours[v] & candidates))
        for vertex in list(candidates - neighbours[pivot]):
            expand(clique | {vertex}, candidates & neighbours[vertex], excluded & neighbours[vertex])
            candidates = candidates - {vertex}
            excluded = excluded | {vertex}

    expand(set(), set(range(adjacency.shape[0])), set())
    return sorted(found)


@dataclass
class CriticalDifference:
    """Everything a critical-difference diagram shows, classifiers ordered by average rank (best first)."""

    names: list[str]
    average_ranks: np.ndarray
    friedman: FriedmanResult
    p_values: np.ndarray
    """Pairwise Wilcoxon p-values (symmetric, 1 on the diagonal), in ``names`` order."""
    significant: np.ndarray
    """Pairwise differences significant after Holm (and only if Friedman rejects)."""
    cliques: list[list[str]] = field(default_factory=list)
    """Maximal groups (2+) of classifiers with no significant difference between any two."""
    alpha: float = 0.05
    num_datasets: int = 0


def critical_difference(
    scores: object,
    names: Sequence[str],
    alpha: float = 0.05,
    higher_is_better: bool = True,
    zero_method: str = "pratt",
) -> CriticalDifference:
    """The review's statistics for ``scores`` ``[datasets, classifiers]`` (accuracies by default)."""
    array = _scores(scores, min_columns=3)
    names = list(names)
    if len(names) != array.shape[1] or len(set(names)) != len(names):
        raise ValueError(f"names must be {array.shape[1]} distinct names (one per column), got {names!r}")
    check_float("alpha", alpha, 0, 1, min_inclusive=False, max_inclusive=False)
    ranks = average_ranks(array, higher_is_better)
    order = np.argsort(ranks, kind="mergesort")
    array, ranks = array[:, order], ranks[order]
    names = [names[i] for i in order]
    friedman = friedman_test(array)
    k = len(names)
    p_values = np.ones((k, k))
    pairs = list(itertools.combinations(range(k), 2))
    for i, j in pairs:
        p_values[i, j] = p_values[j, i] = wilcoxon_signed_rank(array[:, i], array[:, j], zero_method).p_value
    significant = np.zeros((k, k), dtype=bool)
    if friedman.p_value < alpha:
        rejected = holm([p_values[i, j] for i, j in pairs], alpha)
        for (i, j), reject in zip(pairs, rejected):
            significant[i, j] = significant[j, i] = reject
    groups = [c for c in maximal_cliques(~significant) if len(c) > 1]
    return CriticalDifference(
        names=names,
        average_ranks=ranks,
        friedman=friedman,
        p_values=p_values,
        significant=significant,
        cliques=[[names[i] for i in c] for c in groups],
        alpha=alpha,
        num_datasets=array.shape[0],
    )


def plot_critical_difference(result: CriticalDifference, title: str | None = None) -> Figure:
    """The critical-difference diagram: the rank axis (worst on the left, best on the right, as in the
    review's figures), each classifier at its average rank, and a thick bar under every clique."""
    if not isinstance(result, CriticalDifference):
        raise TypeError(f"result must be a CriticalDifference, got {type(result).__name__}")
    k = len(result.names)
    figure = Figure(
        figsize=(max(6.0, 1.1 * k + 3), 1.2 + 0.35 * k + 0.25 * len(result.cliques)), layout="constrained"
    )
    axis = figure.subplots()
    axis.set_axis_off()
    low, high = 1, max(k, 2)
    axis.set_xlim(high + 1.6, low - 1.6)  # reversed: rank 1 on the right
    rows = (k + 1) // 2
    axis.set_ylim(-(rows + 1.5 + 0.5 * len(result.cliques)), 1.2)
    axis.hlines(0, high, low, color="black", linewidth=1)
    for tick in range(low, high + 1):
        axis.vlines(tick, 0, 0.15, color="black", linewidth=1)
        axis.text(tick, 0.3, str(tick), ha="center", va="bottom")
    # The better half is labelled on the right, the worse half on the left, outermost first.
    for position, (name, rank) in enumerate(zip(result.names, result.average_ranks)):
        right = position < rows
        row = position if right else k - 1 - position
        y = -(row + 1) * 0.9
        x_text = low - 0.4 if right else high + 0.4
        axis.plot([rank, rank, x_text], [0, y, y], color="black", linewidth=0.8)
        axis.text(
            x_text - 0.05 if right else x_text + 0.05,
            y,
            f"{name} ({rank:.2f})",
            ha="left" if right else "right",
            va="center",
        )
    for index, clique in enumerate(result.cliques):
        members = [result.names.index(n) for n in clique]
        first, last = result.average_ranks[min(members)], result.average_ranks[max(members)]
        y = -0.35 - 0.25 * index
        axis.hlines(y, first - 0.03, last + 0.03, color="black", linewidth=4)
    caption = f"Friedman p = {result.friedman.p_value:.3g}; Wilcoxon-Holm at alpha = {result.alpha}"
    caption += f"; {result.num_datasets} datasets"
    axis.set_title(f"{title}\n{caption}" if title else caption, fontsize="small")
    return figure
