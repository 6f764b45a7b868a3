r"""Discrete Bayesian networks: DAG + CPTs, exact inference, parameter learning and EM.

After D. Heckerman, *A Tutorial on Learning With Bayesian Networks* (MSR-TR-95-06, 1995; arXiv
2002.00269). Notation follows the tutorial: variables ``X_1..X_n``, ``X_i`` has ``r_i`` states, its
parents ``Pa_i`` have ``q_i`` joint configurations ``pa_i^j``, and the network's parameters are
``theta_ijk = p(x_i^k | pa_i^j)``. Structure scores and structure search are in
:mod:`aicanon.graphs.bayesnet_structure`.

* Section 3, the joint of a Bayesian network: ``p(x) = prod_i p(x_i | pa_i)``.
  :class:`BayesianNetwork` holds it; :meth:`BayesianNetwork.sample` draws from it by forward
  (ancestral) sampling, each variable after its parents in a topological order.
* Section 4, probabilistic inference: ``p(Q | e)`` by variable elimination (the "sum-product"
  factorisation the section describes), with evidence entered by slicing the CPTs, barren nodes
  (non-ancestors of the query and evidence) pruned, and the elimination order chosen greedily
  (min-fill or min-degree on the interaction graph; finding the best order is NP-hard, Section 4).
* Section 5, learning probabilities with complete data: under parameter independence each
  ``theta_ij`` has a Dirichlet prior ``Dir(alpha_ij1..alpha_ijr_i)`` and the posterior is
  ``Dir(alpha_ij1 + N_ij1, ..., alpha_ijr_i + N_ijr_i)`` where ``N_ijk`` counts the cases with
  ``X_i = x_i^k`` and ``Pa_i = pa_i^j``; the predictive probability of a new case is
  ``prod_i (alpha_ijk + N_ijk) / (alpha_ij + N_ij)`` with ``alpha_ij = sum_k alpha_ijk``.
  :class:`DirichletPosterior` updates one case at a time (the tutorial's sequential updating)
  or in a batch; both give the same posterior because the counts are sufficient statistics.
  :func:`maximum_likelihood_cpts` gives ``theta_ijk = N_ijk / N_ij``.
* Section 6, incomplete data: :func:`expectation_maximization` alternates the E step (the
  expected sufficient statistics ``E[N_ijk] = sum_l p(x_i^k, pa_i^j | y_l, theta)``, each computed by
  exact inference given the observed part ``y_l`` of case ``l``) and the M step
  (``theta_ijk = E[N_ijk] / sum_k E[N_ijk]`` for ML, or the MAP value
  ``(alpha_ijk + E[N_ijk] - 1) / sum_k (alpha_ijk + E[N_ijk] - 1)``).

Data are integer arrays ``[n_samples, n_vars]`` (numpy or torch); missing values are ``-1`` or a
boolean ``mask`` (``True`` = missing). A CPT of ``X_i`` with parents ``(p_1, .., p_m)`` (in that
order) is an array of shape ``[r_p1, .., r_pm, r_i]`` whose last axis sums to 1.

Departures from the tutorial, and why:

* The tutorial treats inference algorithmically without fixing one; we use variable elimination
  (the method pgmpy, our reference, uses too) rather than the junction-tree algorithm of
  Lauritzen & Spiegelhalter (1988) it cites: both are exact, VE is simpler to check.
* The E step computes, for each distinct (observed values, missing pattern) row, the posterior joint
  of that row's missing variables by one VE call and marginalises it onto every family; the
  tutorial's per-family posteriors ``p(x_i^k, pa_i^j | y_l)`` are exactly these marginals. The cost
  is exponential in the number of missing values in one row, fine for the networks here.
* When a parent configuration never occurs, ML is undefined (0/0); we return the uniform
  distribution for that row, as pgmpy does.
* Numerics are float64 numpy (probability tables, not neural networks): inputs may be torch
  tensors and sampling accepts a ``torch.Generator``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aicanon.core.checks import check_float, check_int

__all__ = [
    "BayesianNetwork",
    "DirichletPosterior",
    "EMResult",
    "as_data",
    "expectation_maximization",
    "family_counts",
    "maximum_likelihood_cpts",
    "topological_order",
]

_SUM_TOL = 1e-8  # CPT rows must sum to 1 within this (renormalise rounded tables first)


# ----------------------------------------------------------------------------------------------
# Graph helpers
# ----------------------------------------------------------------------------------------------
def topological_order(parents: Sequence[Sequence[int]], argument: str = "parents") -> list[int]:
    """A topological order of the DAG given as parent-index lists; ``ValueError`` on a cycle."""
    n = len(parents)
    indegree = [len(p) for p in parents]
    children: list[list[int]] = [[] for _ in range(n)]
    for child, pa in enumerate(parents):
        for p in pa:
            children[p].append(child)
    ready = [i for i in range(n) if indegree[i] == 0]
    order: list[int] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for c in children[node]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if len(order) != n:
        cyclic = sorted(set(range(n)) - set(order))
        raise ValueError(f"{argument} must describe a DAG, got a cycle through variables {cyclic}")
    return order


def _check_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"names must be a sequence of strings, got {type(names).__name__}")
    names = list(names)
    if not names or not all(isinstance(v, str) for v in names):
        raise TypeError(f"names must be a non-empty sequence of strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"names must be unique, got {names!r}")
    return names


def _check_cardinalities(cardinalities: Sequence[int], n: int) -> tuple[int, ...]:
    cards = tuple(int(c) for c in np.asarray(cardinalities).reshape(-1))
    if len(cards) != n:
        raise ValueError(f"cardinalities must have one entry per variable ({n}), got {len(cards)}")
    if any(c < 1 for c in cards):
        raise ValueError(f"cardinalities must all be >= 1, got {cards}")
    return cards


def as_data(
    data: Any,
    cardinalities: Sequence[int],
    *,
    mask: Any = None,
    allow_missing: bool = False,
    argument: str = "data",
) -> np.ndarray:
    """Check ``data`` (``[n_samples, n_vars]`` integers) and return it as int64 numpy, ``-1`` = missing.

    ``mask`` (boolean, same shape, ``True`` = missing) is folded into the ``-1`` encoding.
    """
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{argument} must be a numpy array or torch tensor, got {type(data).__name__}")
    if data.dtype.kind not in "iub":
        raise TypeError(f"{argument} must hold integers (states 0..r-1), got dtype {data.dtype}")
    if data.ndim != 2 or data.shape[1] != len(cardinalities):
        raise ValueError(
            f"{argument} must have shape [n_samples, {len(cardinalities)}], got {tuple(data.shape)}"
        )
    values = data.astype(np.int64, copy=True)
    if mask is not None:
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != values.shape:
            raise ValueError(
                f"mask must be a boolean array of shape {values.shape}, got {mask.dtype} {mask.shape}"
            )
        values[mask] = -1
    missing = values < 0
    if missing.any() and not allow_missing:
        raise ValueError(
            f"{argument} must be complete here (no -1/masked values); use expectation_maximization"
        )
    if (values < -1).any():
        raise ValueError(f"{argument} holds negative states other than -1 (missing): min {values.min()}")
    cards = np.asarray(cardinalities, dtype=np.int64)
    too_big = values >= cards[None, :]
    if too_big.any():
        col = int(np.nonzero(too_big.any(axis=0))[0][0])
        raise ValueError(
            f"{argument} column {col} holds state {int(values[:, col].max())}, "
            f"out of range for cardinality {int(cards[col])}"
        )
    return values


def family_counts(data: Any, child: int, parents: Sequence[int], cardinalities: Sequence[int]) -> np.ndarray:
    """``N_ijk`` for one family as an array ``[r_p1, .., r_pm, r_child]`` (complete data)."""
    cards = tuple(int(c) for c in cardinalities)
    x = as_data(data, cards)
    for name, value in (("child", child), *(("parents", p) for p in parents)):
        if not isinstance(value, (int, np.integer)) or not 0 <= int(value) < len(cards):
            raise ValueError(f"{name} must be variable indices in 0..{len(cards) - 1}, got {value!r}")
    if len({int(p) for p in parents} | {int(child)}) != len(parents) + 1:
        raise ValueError(f"parents must be distinct and exclude child {child}, got {list(parents)}")
    return _family_counts(x, int(child), [int(p) for p in parents], cards)


def _family_counts(
    data: np.ndarray, child: int, parents: Sequence[int], cardinalities: Sequence[int]
) -> np.ndarray:
    columns = [*parents, child]
    shape = tuple(cardinalities[c] for c in columns)
    index = np.zeros(data.shape[0], dtype=np.int64)
    for c in columns:  # mixed-radix index of (pa_i^j, x_i^k), parents most significant
        index = index * cardinalities[c] + data[:, c]
    return np.bincount(index, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)


def _normalise_rows(table: np.ndarray) -> np.ndarray:
    total = table.sum(axis=-1, keepdims=True)
    r = table.shape[-1]
    # ML is 0/0 for an unseen parent configuration: uniform there (pgmpy does the same).
    return np.where(total > 0, table / np.where(total > 0, total, 1.0), 1.0 / r)


# ----------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------
class BayesianNetwork:
    """A discrete Bayesian network: variable names, cardinalities, parents and CPTs.

    Args:
        names: the variables' names, in column order of the data.
        cardinalities: ``r_i`` for each variable.
        parents: ``{name: [parent names]}``; variables not listed have no parents.
        cpts: ``{name: array [r_p1, .., r_pm, r_i]}``, rows summing to 1. ``None``: uniform CPTs.
    """

    def __init__(
        self,
        names: Sequence[str],
        cardinalities: Sequence[int],
        parents: Mapping[str, Sequence[str]] | None = None,
        cpts: Mapping[str, Any] | None = None,
    ) -> None:
        self.names = _check_names(names)
        self.cardinalities = _check_cardinalities(cardinalities, len(self.names))
        self._index = {v: i for i, v in enumerate(self.names)}
        parents = {} if parents is None else parents
        if not isinstance(parents, Mapping):
            raise TypeError(f"parents must be a mapping name -> parent names, got {type(parents).__name__}")
        parent_index: list[tuple[int, ...]] = [() for _ in self.names]
        for child, pa in parents.items():
            if child not in self._index:
                raise ValueError(f"parents names unknown variable {child!r}; variables: {self.names}")
            if isinstance(pa, str):
                raise TypeError(f"parents[{child!r}] must be a sequence of names, got the string {pa!r}")
            unknown = [p for p in pa if p not in self._index]
            if unknown:
                raise ValueError(f"parents[{child!r}] names unknown variables {unknown}")
            if len(set(pa)) != len(pa) or child in pa:
                raise ValueError(
                    f"parents[{child!r}] must be distinct variables other than itself, got {list(pa)}"
                )
            parent_index[self._index[child]] = tuple(self._index[p] for p in pa)
        self.parents = parent_index
        self.order = topological_order(self.parents, "parents")
        self.cpts: list[np.ndarray] = []
        cpts = {} if cpts is None else cpts
        if not isinstance(cpts, Mapping):
            raise TypeError(f"cpts must be a mapping name -> array, got {type(cpts).__name__}")
        unknown = [v for v in cpts if v not in self._index]
        if unknown:
            raise ValueError(f"cpts names unknown variables {unknown}")
        for i, v in enumerate(self.names):
            shape = self.family_shape(i)
            if v not in cpts:
                self.cpts.append(np.full(shape, 1.0 / shape[-1]))
                continue
            table = cpts[v]
            if isinstance(table, torch.Tensor):
                table = table.detach().cpu().double().numpy()
            table = np.array(table, dtype=np.float64)
            if table.shape != shape:
                raise ValueError(f"cpts[{v!r}] must have shape {shape} (parents..., {v}), got {table.shape}")
            if not np.isfinite(table).all() or (table < 0).any():
                raise ValueError(f"cpts[{v!r}] must hold finite non-negative probabilities")
            sums = table.sum(axis=-1)
            if np.abs(sums - 1.0).max() > _SUM_TOL:
                raise ValueError(
                    f"cpts[{v!r}] rows must sum to 1 over the last axis, got sums in "
                    f"[{sums.min():.12g}, {sums.max():.12g}]"
                )
            self.cpts.append(table)

    # -- structure -------------------------------------------------------------------------------
    @property
    def n_vars(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        if name not in self._index:
            raise ValueError(f"unknown variable {name!r}; variables: {self.names}")
        return self._index[name]

    def family_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.cardinalities[p] for p in self.parents[i]) + (self.cardinalities[i],)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(self.names[p], self.names[c]) for c in range(self.n_vars) for p in self.parents[c]]

    def adjacency(self) -> np.ndarray:
        """Boolean ``[n, n]`` with ``A[u, v]`` meaning the edge ``u -> v``."""
        a = np.zeros((self.n_vars, self.n_vars), dtype=bool)
        for c, pa in enumerate(self.parents):
            a[list(pa), c] = True
        return a

    @classmethod
    def from_adjacency(
        cls,
        names: Sequence[str],
        cardinalities: Sequence[int],
        adjacency: Any,
        cpts: Mapping[str, Any] | None = None,
    ) -> BayesianNetwork:
        a = np.asarray(adjacency, dtype=bool)
        if a.shape != (len(names), len(names)):
            raise ValueError(f"adjacency must have shape {(len(names), len(names))}, got {a.shape}")
        parents = {names[c]: [names[p] for p in np.nonzero(a[:, c])[0]] for c in range(len(names))}
        return cls(names, cardinalities, parents, cpts)

    def with_cpts(self, cpts: Sequence[np.ndarray]) -> BayesianNetwork:
        return BayesianNetwork(
            self.names,
            self.cardinalities,
            {self.names[c]: [self.names[p] for p in pa] for c, pa in enumerate(self.parents)},
            dict(zip(self.names, cpts)),
        )

    # -- sampling and likelihood -----------------------------------------------------------------
    def sample(
        self, n_samples: int, generator: np.random.Generator | torch.Generator | None = None
    ) -> np.ndarray:
        """Forward (ancestral) sampling: ``[n_samples, n_vars]`` int64, parents drawn first."""
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 0:
            raise ValueError(f"n_samples must be a non-negative int, got {n_samples!r}")
        shape = (int(n_samples), self.n_vars)
        if isinstance(generator, torch.Generator):
            uniforms = torch.rand(shape, generator=generator, dtype=torch.float64).numpy()
        elif generator is None or isinstance(generator, np.random.Generator):
            uniforms = (generator or np.random.default_rng()).random(shape)
        else:
            raise TypeError(
                f"generator must be a numpy Generator or torch.Generator, got {type(generator).__name__}"
            )
        out = np.zeros(shape, dtype=np.int64)
        for i in self.order:
            rows = self.cpts[i][tuple(out[:, p] for p in self.parents[i])]  # [n, r_i]
            rows = np.broadcast_to(rows, (shape[0], self.cardinalities[i]))  # root nodes: one row
            cumulative = np.cumsum(rows, axis=1)
            # the state is the number of cumulative probabilities <= u (inverse-CDF draw)
            state = (cumulative[:, :-1] <= uniforms[:, i : i + 1]).sum(axis=1)
            out[:, i] = state
        return out

    def log_likelihood(self, data: Any) -> float:
        """``sum_l log p(x_l)`` of complete cases under the network."""
        x = as_data(data, self.cardinalities)
        total = 0.0
        for i in range(self.n_vars):
            probs = self.cpts[i][tuple(x[:, p] for p in (*self.parents[i], i))]
            total += float(np.log(probs).sum())
        return total

    def joint(self) -> np.ndarray:
        """The full joint table ``[r_1, .., r_n]`` by enumeration (small networks; tests)."""
        if int(np.prod(self.cardinalities)) > 2**22:
            raise ValueError(f"joint of {self.n_vars} variables is too large to enumerate")
        table = np.ones(self.cardinalities)
        for i in range(self.n_vars):
            table = table * _expand(self.cpts[i], (*self.parents[i], i), tuple(range(self.n_vars)))
        return table

    # -- inference -------------------------------------------------------------------------------
    def _evidence_index(self, evidence: Mapping[str, int] | None) -> dict[int, int]:
        if evidence is None:
            return {}
        if not isinstance(evidence, Mapping):
            raise TypeError(f"evidence must be a mapping name -> state, got {type(evidence).__name__}")
        out = {}
        for name, state in evidence.items():
            i = self.index(name)
            if not isinstance(state, (int, np.integer)) or not 0 <= int(state) < self.cardinalities[i]:
                raise ValueError(
                    f"evidence[{name!r}] must be a state in 0..{self.cardinalities[i] - 1}, got {state!r}"
                )
            out[i] = int(state)
        return out

    def _unnormalised(
        self, query: Sequence[int], evidence: dict[int, int], elimination_order: str | Sequence[str]
    ) -> np.ndarray:
        """``p(Q = q, e)`` as a table over ``query`` (in that order), by variable elimination."""
        # Barren nodes (neither query, evidence nor their ancestors) sum out to 1: drop them.
        relevant = set(query) | set(evidence)
        stack = list(relevant)
        while stack:
            for p in self.parents[stack.pop()]:
                if p not in relevant:
                    relevant.add(p)
                    stack.append(p)
        factors: list[tuple[tuple[int, ...], np.ndarray]] = []
        for i in sorted(relevant):
            scope = (*self.parents[i], i)
            table = self.cpts[i]
            # enter evidence by slicing the observed axes out of the CPT
            index = tuple(evidence.get(v, slice(None)) for v in scope)
            factors.append((tuple(v for v in scope if v not in evidence), table[index]))
        hidden = [v for v in sorted(relevant) if v not in evidence and v not in query]
        for v in self._elimination_order(hidden, factors, elimination_order):
            touching = [f for f in factors if v in f[0]]
            factors = [f for f in factors if v not in f[0]]
            scope, table = _product(touching)
            axis = scope.index(v)
            factors.append((scope[:axis] + scope[axis + 1 :], table.sum(axis=axis)))
        scope, table = _product(factors)
        # scalar factors (all-evidence families) were multiplied in; order the query axes
        return _expand(table, scope, tuple(query)) * np.ones([self.cardinalities[q] for q in query])

    def _elimination_order(
        self, hidden: list[int], factors: list[tuple[tuple[int, ...], np.ndarray]], order: str | Sequence[str]
    ) -> list[int]:
        if not isinstance(order, str):
            given = [self.index(v) for v in order]
            missing = [self.names[v] for v in hidden if v not in given]
            if missing:
                raise ValueError(f"elimination_order must include every hidden variable, missing {missing}")
            return [v for v in given if v in hidden]
        if order not in ("min_fill", "min_degree"):
            raise ValueError(f"elimination_order must be 'min_fill', 'min_degree' or a list, got {order!r}")
        neighbours: dict[int, set[int]] = {v: set() for v in hidden}
        for scope, _ in factors:
            for a in scope:
                neighbours.setdefault(a, set()).update(b for b in scope if b != a)
        remaining, result = set(hidden), []
        while remaining:

            def cost(v: int) -> tuple[int, int]:
                nb = list(neighbours[v])
                fill = sum(1 for a, b in itertools.combinations(nb, 2) if b not in neighbours[a])
                return (fill, len(nb)) if order == "min_fill" else (len(nb), fill)

            v = min(sorted(remaining), key=cost)  # greedy; ties to the lowest index (deterministic)
            for a in neighbours[v]:  # eliminating v connects its neighbours (the fill-in edges)
                neighbours[a].update(b for b in neighbours[v] if b != a)
                neighbours[a].discard(v)
            remaining.discard(v)
            result.append(v)
        return result

    def query(
        self,
        variables: Sequence[str],
        evidence: Mapping[str, int] | None = None,
        elimination_order: str | Sequence[str] = "min_fill",
    ) -> np.ndarray:
        """The posterior joint ``p(Q | e)`` as an array over ``variables`` (in that order)."""
        if isinstance(variables, str) or not isinstance(variables, Sequence) or not variables:
            raise TypeError(f"variables must be a non-empty sequence of names, got {variables!r}")
        query = [self.index(v) for v in variables]
        if len(set(query)) != len(query):
            raise ValueError(f"variables must be distinct, got {list(variables)}")
        ev = self._evidence_index(evidence)
        clash = [self.names[q] for q in query if q in ev]
        if clash:
            raise ValueError(f"variables {clash} are also in evidence")
        table = self._unnormalised(query, ev, elimination_order)
        total = table.sum()
        if total <= 0:
            raise ValueError(f"evidence {dict(evidence or {})} has probability zero under the network")
        return table / total

    def marginals(self, evidence: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        """``p(X_i | e)`` for every unobserved variable."""
        ev = set(self._evidence_index(evidence))
        return {v: self.query([v], evidence) for i, v in enumerate(self.names) if i not in ev}

    def probability_of_evidence(self, evidence: Mapping[str, int]) -> float:
        ev = self._evidence_index(evidence)
        if not ev:
            return 1.0
        return float(self._unnormalised([], ev, "min_fill").sum())


def _expand(table: np.ndarray, scope: Sequence[int], target: Sequence[int]) -> np.ndarray:
    """View ``table`` (axes ``scope``) broadcastable against axes ``target`` (a superset)."""
    present = [v for v in target if v in scope]
    table = np.transpose(table, [list(scope).index(v) for v in present])
    return table.reshape([table.shape[present.index(v)] if v in scope else 1 for v in target])


def _product(factors: list[tuple[tuple[int, ...], np.ndarray]]) -> tuple[tuple[int, ...], np.ndarray]:
    scope: tuple[int, ...] = tuple(sorted({v for s, _ in factors for v in s}))
    table = np.ones([1] * len(scope))
    for s, t in factors:
        table = table * _expand(t, s, scope)
    return scope, table


# ----------------------------------------------------------------------------------------------
# Parameter learning (Section 5)
# ----------------------------------------------------------------------------------------------
def maximum_likelihood_cpts(data: np.ndarray, network: BayesianNetwork) -> list[np.ndarray]:
    """``theta_ijk = N_ijk / N_ij`` for every family of ``network`` (complete data)."""
    if not isinstance(network, BayesianNetwork):
        raise TypeError(f"network must be a BayesianNetwork, got {type(network).__name__}")
    x = as_data(data, network.cardinalities)
    return [
        _normalise_rows(_family_counts(x, i, network.parents[i], network.cardinalities))
        for i in range(network.n_vars)
    ]


class DirichletPosterior:
    """The posterior ``prod_ij Dir(theta_ij | alpha_ij + N_ij)`` of a network's parameters (Section 5).

    Args:
        network: supplies the structure (its CPT values are ignored).
        alpha: the prior hyperparameters ``alpha_ijk``, one array per variable shaped like its CPT;
            see :meth:`bdeu` for the BDeu choice ``alpha_ijk = ess / (r_i q_i)``.
    """

    def __init__(self, network: BayesianNetwork, alpha: Sequence[Any]) -> None:
        if not isinstance(network, BayesianNetwork):
            raise TypeError(f"network must be a BayesianNetwork, got {type(network).__name__}")
        if len(alpha) != network.n_vars:
            raise ValueError(f"alpha must have one array per variable ({network.n_vars}), got {len(alpha)}")
        self.network = network
        self.alpha: list[np.ndarray] = []
        for i, a in enumerate(alpha):
            a = np.array(a, dtype=np.float64)
            if a.shape != network.family_shape(i):
                raise ValueError(f"alpha[{i}] must have shape {network.family_shape(i)}, got {a.shape}")
            if not (a > 0).all():
                raise ValueError(f"alpha[{i}] must be > 0 (Dirichlet hyperparameters)")
            self.alpha.append(a)

    @classmethod
    def bdeu(cls, network: BayesianNetwork, equivalent_sample_size: float = 1.0) -> DirichletPosterior:
        """The uniform BDe prior (BDeu): ``alpha_ijk = ess / (r_i q_i)`` (Section 10.1 of the tutorial)."""
        check_float("equivalent_sample_size", equivalent_sample_size, 0, min_inclusive=False)
        shapes = [network.family_shape(i) for i in range(network.n_vars)]
        return cls(network, [np.full(s, equivalent_sample_size / np.prod(s)) for s in shapes])

    def copy(self) -> DirichletPosterior:
        return DirichletPosterior(self.network, [a.copy() for a in self.alpha])

    def update(self, case: Any) -> float:
        """Sequential updating with one complete case; returns its log predictive probability.

        ``p(x_{N+1} | D) = prod_i (alpha_ijk + N_ijk) / (alpha_ij + N_ij)`` is taken before the case's
        counts are added, so summing the returned values over a data set gives ``log p(D)`` by the
        chain rule.
        """
        x = as_data(
            np.asarray(case).reshape(1, -1) if not isinstance(case, torch.Tensor) else case.reshape(1, -1),
            self.network.cardinalities,
            argument="case",
        )[0]
        log_predictive = 0.0
        for i, a in enumerate(self.alpha):
            row = tuple(int(x[p]) for p in self.network.parents[i])
            log_predictive += float(np.log(a[row][x[i]] / a[row].sum()))
            a[row + (int(x[i]),)] += 1.0
        return log_predictive

    def update_batch(self, data: Any) -> DirichletPosterior:
        """Batch updating: ``alpha_ijk += N_ijk`` over all cases at once."""
        x = as_data(data, self.network.cardinalities)
        for i, a in enumerate(self.alpha):
            a += _family_counts(x, i, self.network.parents[i], self.network.cardinalities)
        return self

    def mean(self) -> list[np.ndarray]:
        """The posterior mean ``E[theta_ijk] = alpha_ijk / alpha_ij`` (pgmpy's BayesianEstimator)."""
        return [a / a.sum(axis=-1, keepdims=True) for a in self.alpha]

    def network_mean(self) -> BayesianNetwork:
        return self.network.with_cpts(self.mean())


# ----------------------------------------------------------------------------------------------
# EM for missing data (Section 6)
# ----------------------------------------------------------------------------------------------
@dataclass
class EMResult:
    network: BayesianNetwork
    """The network with the final parameters."""
    log_likelihoods: list[float] = field(default_factory=list)
    """``log p(y | theta)`` of the observed data, before each iteration's M step and after the last."""
    iterations: int = 0
    converged: bool = False


def _expected_counts(x: np.ndarray, net: BayesianNetwork) -> tuple[list[np.ndarray], float]:
    """E step: ``E[N_ijk]`` given the observed parts of the cases, and ``log p(y | theta)``."""
    counts = [np.zeros(net.family_shape(i)) for i in range(net.n_vars)]
    complete = (x >= 0).all(axis=1)
    log_likelihood = 0.0
    if complete.any():
        xc = x[complete]
        for i in range(net.n_vars):
            counts[i] += _family_counts(xc, i, net.parents[i], net.cardinalities)
        log_likelihood += net.log_likelihood(xc)
    rows, multiplicity = np.unique(x[~complete], axis=0, return_counts=True)
    for row, weight in zip(rows, multiplicity):
        missing = [int(v) for v in np.nonzero(row < 0)[0]]
        evidence = {int(v): int(row[v]) for v in np.nonzero(row >= 0)[0]}
        joint = net._unnormalised(missing, evidence, "min_fill")  # p(missing, y_l)
        evidence_probability = joint.sum()
        if evidence_probability <= 0:
            raise ValueError(
                f"data holds a case of probability zero under the current parameters: {row.tolist()}"
            )
        log_likelihood += weight * float(np.log(evidence_probability))
        posterior = weight * joint / evidence_probability
        for i in range(net.n_vars):
            scope = (*net.parents[i], i)
            hidden = [v for v in missing if v in scope]
            # marginal of the family's missing variables, placed at the observed values of the rest
            marginal = posterior.sum(axis=tuple(k for k, v in enumerate(missing) if v not in scope))
            index = tuple(slice(None) if v in hidden else evidence[v] for v in scope)
            counts[i][index] += _expand(
                marginal, [v for v in missing if v in scope], [v for v in scope if v in hidden]
            )
    return counts, log_likelihood


def expectation_maximization(
    data: Any,
    network: BayesianNetwork,
    *,
    mask: Any = None,
    alpha: Sequence[Any] | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-8,
    init: str = "network",
    generator: np.random.Generator | None = None,
) -> EMResult:
    """EM for the parameters of ``network``'s structure from data with missing values (Section 6).

    Args:
        data: ``[n_samples, n_vars]`` ints, ``-1`` = missing (or give ``mask``).
        network: the structure, and the starting parameters when ``init="network"``.
        alpha: Dirichlet hyperparameters (as :class:`DirichletPosterior`); given, the M step gives the
            MAP parameters and needs ``alpha_ijk >= 1``; ``None`` gives maximum likelihood.
        max_iterations: iterations at most.
        tolerance: stop when the observed-data log likelihood rises by less than this.
        init: ``"network"`` (its CPTs) or ``"random"`` (Dirichlet(1) draws from ``generator``).
    """
    if not isinstance(network, BayesianNetwork):
        raise TypeError(f"network must be a BayesianNetwork, got {type(network).__name__}")
    x = as_data(data, network.cardinalities, mask=mask, allow_missing=True)
    check_int("max_iterations", max_iterations)
    check_float("tolerance", tolerance, 0)
    if alpha is not None:
        prior = DirichletPosterior(network, alpha).alpha
        if any((a < 1).any() for a in prior):
            raise ValueError("alpha must be >= 1 everywhere for the MAP M step (the Dirichlet mode)")
    if init == "network":
        net = network
    elif init == "random":
        rng = generator or np.random.default_rng()
        net = network.with_cpts(
            [
                rng.dirichlet(np.ones(s[-1]), size=s[:-1])
                for s in (network.family_shape(i) for i in range(network.n_vars))
            ]
        )
    else:
        raise ValueError(f"init must be 'network' or 'random', got {init!r}")
    result = EMResult(network=net)
    for iteration in range(max_iterations):
        counts, log_likelihood = _expected_counts(x, net)
        result.log_likelihoods.append(log_likelihood)
        if alpha is not None:  # MAP: the mode of Dir(alpha + E[N])
            counts = [c + a - 1.0 for c, a in zip(counts, prior)]
        net = net.with_cpts([_normalise_rows(c) for c in counts])
        result.iterations = iteration + 1
        if iteration > 0 and abs(log_likelihood - result.log_likelihoods[-2]) < tolerance:
            result.converged = True
            break
    result.log_likelihoods.append(_expected_counts(x, net)[1])
    result.network = net
    return result
