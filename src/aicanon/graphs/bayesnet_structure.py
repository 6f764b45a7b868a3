r"""Structure learning for discrete Bayesian networks: BDe/BDeu and BIC scores, hill climbing.

After D. Heckerman, *A Tutorial on Learning With Bayesian Networks* (arXiv 2002.00269), with the
network representation of :mod:`aicanon.graphs.bayesnet`. A structure is a boolean adjacency
matrix ``A`` ``[n, n]`` with ``A[u, v]`` meaning the edge ``u -> v``.

* Section 9, the marginal likelihood with complete data and Dirichlet priors (the tutorial's
  Eq. 35, first given by Cooper & Herskovits 1992)::

      log p(D | S^h) = sum_i sum_j [ log Gamma(alpha_ij) - log Gamma(alpha_ij + N_ij)
                                     + sum_k log Gamma(alpha_ijk + N_ijk) - log Gamma(alpha_ijk) ]

  It is a sum of one term per family ``(X_i, Pa_i)``: the score is *decomposable*, so a search move
  that changes one family's parents re-scores that family alone (:class:`FamilyScorer` caches them).
* Section 10.1, the BDe prior: ``alpha_ijk = alpha * p(x_i^k, pa_i^j | S_c^h)`` for a prior network
  ``S_c`` and equivalent sample size ``alpha``; with it, Markov-equivalent structures get equal
  marginal likelihoods (likelihood equivalence). :func:`bde_hyperparameters` computes it by exact
  inference in the prior network; with a uniform prior network it is BDeu,
  ``alpha_ijk = alpha / (r_i q_i)`` (Buntine 1991), :func:`bdeu_local_score`.
* Section 9 (large-sample approximation), BIC::

      log p(D | S^h) ~ log p(D | theta_hat, S^h) - d/2 log N,   d = sum_i q_i (r_i - 1)

  with ``theta_hat`` the ML parameters; :func:`bic_local_score`.
* Section 11, search: greedy hill climbing over structures with the add, delete and reverse edge
  operators, keeping the graph acyclic, and random restarts (perturb the best graph by a few random
  moves, climb again, keep the best). A tabu list forbids undoing the last few moves.

Also: structural Hamming distances between DAGs, their skeletons and their CPDAGs (Markov
equivalence classes, via v-structures and Meek's orientation rules) to score recovered structures.

Departures from the tutorial, and why:

* The tutorial scores ``log p(D | S^h) + log p(S^h)``; we take the structure prior uniform (the
  constant drops out of the search), as pgmpy's default does.
* The tutorial's Section 11 describes local search with the same operators but does not fix a
  restart or tabu scheme; ours (perturb-by-random-moves restarts, a tabu search that may take
  worsening moves) is one common choice and is documented on :func:`hill_climb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import gammaln

from aicanon.core.checks import check_float, check_int
from aicanon.graphs.bayesnet import BayesianNetwork, _family_counts, as_data

__all__ = [
    "FamilyScorer",
    "bde_hyperparameters",
    "bde_local_score",
    "bdeu_local_score",
    "bic_local_score",
    "cpdag",
    "hill_climb",
    "network_score",
    "structural_hamming_distance",
]

SCORES = ("bdeu", "bic", "bde")


def _check_counts(counts: Any) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim < 1 or counts.size == 0 or not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(
            f"counts must be a non-empty array [.., r_i] of finite counts >= 0, got shape {counts.shape}"
        )
    return counts


def bde_local_score(counts: Any, alpha: Any) -> float:
    """Eq. 35 for one family: ``counts`` and ``alpha`` shaped ``[.., r_i]`` (parents first)."""
    counts = _check_counts(counts)
    alpha = np.asarray(alpha, dtype=np.float64)
    try:
        alpha = np.broadcast_to(alpha, counts.shape)
    except ValueError:
        raise ValueError(f"alpha must broadcast to counts' shape {counts.shape}, got {alpha.shape}") from None
    if not (alpha > 0).all():
        raise ValueError("alpha must be > 0 (Dirichlet hyperparameters)")
    n_ij, a_ij = counts.sum(axis=-1), alpha.sum(axis=-1)
    return float(
        (gammaln(a_ij) - gammaln(a_ij + n_ij)).sum() + (gammaln(alpha + counts) - gammaln(alpha)).sum()
    )


def bdeu_local_score(counts: Any, equivalent_sample_size: float) -> float:
    """BDeu for one family: Eq. 35 with ``alpha_ijk = ess / (r_i q_i)``."""
    counts = _check_counts(counts)
    check_float("equivalent_sample_size", equivalent_sample_size, 0, min_inclusive=False)
    return bde_local_score(counts, np.full(counts.shape, equivalent_sample_size / counts.size))


def bic_local_score(counts: Any) -> float:
    """BIC for one family: ``sum_jk N_ijk log(N_ijk / N_ij) - q_i (r_i - 1) / 2 * log N``."""
    counts = _check_counts(counts)
    rows = counts.reshape(-1, counts.shape[-1])
    n_ij = rows.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_likelihood = np.where(rows > 0, rows * np.log(rows / n_ij), 0.0).sum()
    n = rows.sum()
    if n <= 0:
        raise ValueError("counts must hold at least one case for BIC (log N)")
    return float(log_likelihood - 0.5 * np.log(n) * rows.shape[0] * (rows.shape[1] - 1))


def bde_hyperparameters(
    prior_network: BayesianNetwork, child: int, parents: Sequence[int], equivalent_sample_size: float
) -> np.ndarray:
    """BDe's ``alpha_ijk = ess * p(x_i^k, pa_i^j | S_c)`` by exact inference in ``prior_network``."""
    names = [prior_network.names[v] for v in (*parents, child)]
    return equivalent_sample_size * prior_network.query(names)


class FamilyScorer:
    """Decomposable scores of complete discrete data, with a cache of local (family) scores.

    Args:
        data: ``[n_samples, n_vars]`` ints (numpy or torch), complete.
        cardinalities: ``r_i`` per variable.
        score: ``"bdeu"``, ``"bic"`` or ``"bde"`` (needs ``prior_network``).
        equivalent_sample_size: the BDe/BDeu ``alpha``.
        prior_network: the BDe prior network ``S_c``.
    """

    def __init__(
        self,
        data: Any,
        cardinalities: Sequence[int],
        score: str = "bdeu",
        equivalent_sample_size: float = 1.0,
        prior_network: BayesianNetwork | None = None,
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        check_float("equivalent_sample_size", equivalent_sample_size, 0, min_inclusive=False)
        if score == "bde" and not isinstance(prior_network, BayesianNetwork):
            raise ValueError("prior_network must be a BayesianNetwork when score='bde'")
        self.cardinalities = tuple(int(c) for c in cardinalities)
        if any(c < 1 for c in self.cardinalities):
            raise ValueError(f"cardinalities must all be >= 1, got {self.cardinalities}")
        self.data = as_data(data, self.cardinalities)
        if self.data.shape[0] == 0:
            raise ValueError("data must hold at least one sample")
        if prior_network is not None and prior_network.cardinalities != self.cardinalities:
            raise ValueError("prior_network cardinalities must match cardinalities")
        self.score, self.ess, self.prior_network = score, float(equivalent_sample_size), prior_network
        self.n_vars = len(self.cardinalities)
        self._cache: dict[tuple[int, tuple[int, ...]], float] = {}
        self.evaluations = 0
        """How many local scores were computed (cache misses): the cost of a search."""

    def local(self, child: int, parents: Sequence[int]) -> float:
        """The family score of ``child`` with ``parents`` (order-free; cached)."""
        key = (int(child), tuple(sorted(int(p) for p in parents)))
        if key not in self._cache and (
            not all(0 <= v < self.n_vars for v in (key[0], *key[1]))
            or len(set(key[1]) | {key[0]}) != len(key[1]) + 1
        ):
            raise ValueError(
                f"child and parents must be distinct variable indices in 0..{self.n_vars - 1}, got {child}, {parents}"
            )
        if key not in self._cache:
            counts = _family_counts(self.data, key[0], key[1], self.cardinalities)
            if self.score == "bdeu":
                value = bdeu_local_score(counts, self.ess)
            elif self.score == "bic":
                value = bic_local_score(counts)
            else:
                value = bde_local_score(
                    counts, bde_hyperparameters(self.prior_network, key[0], key[1], self.ess)
                )
            self._cache[key] = value
            self.evaluations += 1
        return self._cache[key]

    def total(self, adjacency: Any) -> float:
        """The network score: the sum of its family scores."""
        a = _check_adjacency(adjacency, self.n_vars)
        return float(sum(self.local(c, np.nonzero(a[:, c])[0]) for c in range(self.n_vars)))


def network_score(
    data: Any,
    network: BayesianNetwork,
    score: str = "bdeu",
    equivalent_sample_size: float = 1.0,
    prior_network: BayesianNetwork | None = None,
) -> float:
    """The score of ``network``'s structure on ``data`` (see :class:`FamilyScorer`)."""
    if not isinstance(network, BayesianNetwork):
        raise TypeError(f"network must be a BayesianNetwork, got {type(network).__name__}")
    scorer = FamilyScorer(data, network.cardinalities, score, equivalent_sample_size, prior_network)
    return scorer.total(network.adjacency())


def _check_adjacency(adjacency: Any, n: int, argument: str = "adjacency") -> np.ndarray:
    if isinstance(adjacency, torch.Tensor):
        adjacency = adjacency.detach().cpu().numpy()
    a = np.asarray(adjacency)
    if a.shape != (n, n):
        raise ValueError(f"{argument} must have shape {(n, n)}, got {a.shape}")
    a = a.astype(bool)
    if np.diag(a).any():
        raise ValueError(f"{argument} must have no self loops")
    if _has_cycle(a):
        raise ValueError(f"{argument} must be acyclic (a DAG), got a cycle")
    return a


def _has_cycle(a: np.ndarray) -> bool:
    indegree = a.sum(axis=0).astype(int)
    ready = list(np.nonzero(indegree == 0)[0])
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for v in np.nonzero(a[u])[0]:
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    return seen != a.shape[0]


def _reaches(a: np.ndarray, source: int, target: int) -> bool:
    """Is there a directed path ``source -> .. -> target``?"""
    stack, seen = [source], {source}
    while stack:
        u = stack.pop()
        if u == target:
            return True
        for v in np.nonzero(a[u])[0]:
            if v not in seen:
                seen.add(int(v))
                stack.append(int(v))
    return False


def _legal_moves(a: np.ndarray, max_parents: int | None):
    """Every (operator, u, v) that keeps ``a`` acyclic (and within ``max_parents``)."""
    n = a.shape[0]
    n_parents = a.sum(axis=0)
    for u in range(n):
        for v in range(n):
            if u == v:
                continue
            if a[u, v]:
                yield ("delete", u, v)
                # reversing u->v makes a cycle iff another path u ~> v exists
                if max_parents is None or n_parents[u] < max_parents:
                    a[u, v] = False
                    cyclic = _reaches(a, u, v)
                    a[u, v] = True
                    if not cyclic:
                        yield ("reverse", u, v)
            elif (
                not a[v, u]
                and (max_parents is None or n_parents[v] < max_parents)
                and not _reaches(a, v, u)  # adding u->v makes a cycle iff v ~> u already
            ):
                yield ("add", u, v)


def _delta(scorer: FamilyScorer, a: np.ndarray, move: tuple[str, int, int]) -> float:
    """Score change of ``move``: only the families whose parents change are re-scored."""
    op, u, v = move
    pa_v = set(np.nonzero(a[:, v])[0].tolist())
    if op == "add":
        return scorer.local(v, pa_v | {u}) - scorer.local(v, pa_v)
    if op == "delete":
        return scorer.local(v, pa_v - {u}) - scorer.local(v, pa_v)
    pa_u = set(np.nonzero(a[:, u])[0].tolist())
    return (
        scorer.local(v, pa_v - {u})
        - scorer.local(v, pa_v)
        + scorer.local(u, pa_u | {v})
        - scorer.local(u, pa_u)
    )


def _apply(a: np.ndarray, move: tuple[str, int, int]) -> None:
    op, u, v = move
    a[u, v] = op == "add"
    if op == "reverse":
        a[v, u] = True


def _climb(
    scorer: FamilyScorer,
    a: np.ndarray,
    max_parents: int | None,
    tabu_length: int,
    max_iterations: int,
    epsilon: float,
) -> tuple[np.ndarray, int]:
    """Greedy ascent; with ``tabu_length > 0``, tabu search: at a local optimum keep taking the best
    move that is not tabu (even a worsening one) for up to ``tabu_length`` steps without a new best,
    and return the best graph seen."""
    tabu: list[tuple[str, int, int]] = []
    current = best_value = scorer.total(a)
    best_graph, stale, steps = a.copy(), 0, 0
    for steps in range(1, max_iterations + 1):
        move, gain = None, -np.inf if tabu_length > 0 else epsilon
        for candidate in _legal_moves(a, max_parents):
            if candidate in tabu:
                continue
            d = _delta(scorer, a, candidate)
            if d > gain:
                move, gain = candidate, d
        if move is None:
            break
        _apply(a, move)
        current += gain
        if current > best_value + epsilon:
            best_graph, best_value, stale = a.copy(), current, 0
        else:
            stale += 1
            if stale > tabu_length:
                break
        op, u, v = move
        # forbid undoing this move for the next tabu_length steps
        undo = {"add": ("delete", u, v), "delete": ("add", u, v), "reverse": ("reverse", v, u)}[op]
        tabu = (tabu + [undo])[-tabu_length:] if tabu_length > 0 else []
    return best_graph, steps


def hill_climb(
    data: Any,
    cardinalities: Sequence[int],
    *,
    score: str = "bdeu",
    equivalent_sample_size: float = 1.0,
    prior_network: BayesianNetwork | None = None,
    start: Any = None,
    max_parents: int | None = None,
    restarts: int = 0,
    perturbation: int = 3,
    tabu_length: int = 0,
    max_iterations: int = 10_000,
    epsilon: float = 1e-8,
    generator: np.random.Generator | None = None,
    scorer: FamilyScorer | None = None,
) -> tuple[np.ndarray, float]:
    """Greedy hill climbing over DAGs (Section 11): returns the best adjacency found and its score.

    Each step applies the add/delete/reverse move of largest score gain that keeps the graph
    acyclic, until no move gains more than ``epsilon``. Then, ``restarts`` times: copy the best
    graph, apply ``perturbation`` random legal moves (from ``generator``), climb again, and keep the
    result if it scores higher. With ``tabu_length > 0`` the climb is a tabu search: a move that
    undoes one of the last ``tabu_length`` moves is not allowed, and at a local optimum the best
    allowed move is taken even if it lowers the score, until ``tabu_length`` steps pass without a
    new best; the best graph seen is kept.
    """
    if scorer is None:
        scorer = FamilyScorer(data, cardinalities, score, equivalent_sample_size, prior_network)
    n = scorer.n_vars
    a = np.zeros((n, n), dtype=bool) if start is None else _check_adjacency(start, n, "start").copy()
    for name, value, low in (
        ("restarts", restarts, 0),
        ("perturbation", perturbation, 0),
        ("tabu_length", tabu_length, 0),
        ("max_iterations", max_iterations, 1),
    ):
        check_int(name, value, low)
    check_int("max_parents", max_parents, 0, allow_none=True)
    if start is not None and max_parents is not None and a.sum(axis=0).max() > max_parents:
        raise ValueError(f"start has a node with more than max_parents={max_parents} parents")
    rng = generator or np.random.default_rng()
    best, _ = _climb(scorer, a, max_parents, tabu_length, max_iterations, epsilon)
    best_score = scorer.total(best)
    for _ in range(restarts):
        a = best.copy()
        for _ in range(perturbation):
            moves = list(_legal_moves(a, max_parents))
            if not moves:
                break
            _apply(a, moves[int(rng.integers(len(moves)))])
        a, _ = _climb(scorer, a, max_parents, tabu_length, max_iterations, epsilon)
        value = scorer.total(a)
        if value > best_score + epsilon:
            best, best_score = a, value
    return best, best_score


# ----------------------------------------------------------------------------------------------
# Comparing structures
# ----------------------------------------------------------------------------------------------
def cpdag(adjacency: Any) -> np.ndarray:
    """The CPDAG (essential graph) of a DAG: ``C[u, v] and C[v, u]`` marks an undirected edge.

    Edges in v-structures ``a -> c <- b`` (``a``, ``b`` not adjacent) are compelled; then Meek's rules
    R1-R3 orient what acyclicity and the absence of new v-structures force (Meek 1995); the rest of
    the DAG's edges are reversible within its Markov equivalence class and become undirected.
    """
    a = _check_adjacency(adjacency, np.asarray(adjacency).shape[0])
    n = a.shape[0]
    adjacent = a | a.T
    directed = np.zeros_like(a)
    for c in range(n):
        pa = np.nonzero(a[:, c])[0]
        for i, p in enumerate(pa):
            for q in pa[i + 1 :]:
                if not adjacent[p, q]:
                    directed[p, c] = directed[q, c] = True
    undirected = adjacent & ~directed & ~directed.T
    changed = True
    while changed:
        changed = False
        for u in range(n):
            for v in range(n):
                if not undirected[u, v]:
                    continue
                # R1: w -> u - v, w not adjacent to v  =>  u -> v
                r1 = any(directed[w, u] and not adjacent[w, v] for w in range(n) if w != v)
                # R2: u -> w -> v  =>  u -> v
                r2 = any(directed[u, w] and directed[w, v] for w in range(n))
                # R3: u - w1 -> v, u - w2 -> v, w1 and w2 not adjacent  =>  u -> v
                ws = [w for w in range(n) if undirected[u, w] and directed[w, v]]
                r3 = any(not adjacent[w1, w2] for i, w1 in enumerate(ws) for w2 in ws[i + 1 :])
                if r1 or r2 or r3:
                    directed[u, v] = True
                    undirected[u, v] = undirected[v, u] = False
                    changed = True
    return directed | undirected


def structural_hamming_distance(learned: Any, true: Any, kind: str = "cpdag") -> int:
    """Edge insertions, deletions and (for ``dag``/``cpdag``) orientation changes between graphs.

    ``kind``: ``"skeleton"`` (undirected edges only), ``"dag"`` (a reversed edge counts 1) or
    ``"cpdag"`` (compare the Markov equivalence classes, Tsamardinos et al. 2006: a pair of
    nodes counts 1 when its mark differs: absent, ``->``, ``<-`` or undirected).
    """
    if kind not in ("skeleton", "dag", "cpdag"):
        raise ValueError(f"kind must be 'skeleton', 'dag' or 'cpdag', got {kind!r}")
    n = np.asarray(true).shape[0]
    a = _check_adjacency(learned, n, "learned")
    b = _check_adjacency(true, n, "true")
    if kind == "cpdag":
        a, b = cpdag(a), cpdag(b)
    if kind == "skeleton":
        a, b = a | a.T, b | b.T
    iu = np.triu_indices(n, 1)
    marks_a = a[iu].astype(int) + 2 * a.T[iu].astype(int)
    marks_b = b[iu].astype(int) + 2 * b.T[iu].astype(int)
    return int((marks_a != marks_b).sum())
