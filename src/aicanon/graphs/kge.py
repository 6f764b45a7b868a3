r"""Knowledge-graph embedding models: ComplEx (Trouillon et al., ICML 2016), DistMult, TransE.

A knowledge graph is a set of triples ``(s, r, o)``: subject (head) entity ``s``, relation ``r``,
object (tail) entity ``o``. A model gives every triple a real score ``phi(s, r, o)``; the probability
that the triple holds is ``P(Y_rso = 1) = sigma(phi(s, r, o))`` (Eq. 9–10 of the ComplEx paper).

All three models share one interface (:class:`KGEModel`):

* ``score(heads, relations, tails)`` → ``[B]``: the score of each given triple (``forward`` too);
* ``score_tails(heads, relations)`` → ``[B, N]``: the scores of ``(h, r, e)`` for every entity ``e``;
* ``score_heads(relations, tails)`` → ``[B, N]``: the scores of ``(e, r, t)`` for every entity ``e``;
* ``penalty(heads, relations, tails)``: the L2 term of Eq. (12) for the embeddings the batch uses.

The all-entity scorers are what a ranking evaluation needs (:mod:`aicanon.graphs.ranking`): one
matrix product against the entity table instead of ``N`` separate triple scores.

**ComplEx** (Section 3). Entities and relations are vectors in ``C^K``; the score is the real part
of the trilinear Hermitian product, Eq. (11):

    ``phi(s, r, o) = Re(<w_r, e_s, conj(e_o)>) = Re(sum_k w_rk e_sk conj(e_ok))``
    ``= <Re w_r, Re e_s, Re e_o> + <Re w_r, Im e_s, Im e_o>``
    ``  + <Im w_r, Re e_s, Im e_o> - <Im w_r, Im e_s, Re e_o>``

Because of the conjugate on the object, ``phi(s, r, o) - phi(o, r, s) = 2 (<Im w_r, Re e_s, Im e_o>
- <Im w_r, Im e_s, Re e_o>)``: relations with purely real ``w_r`` are symmetric, purely imaginary
ones antisymmetric, and a general ``w_r`` mixes both (Section 2.3). Each part is stored as its own real table (``*_real``,
``*_imag``), as the paper's code (``e1, e2, r1, r2``) and ``torch_geometric`` do; pykeen stores the
same numbers as one complex tensor (``torch.view_as_complex`` of ``[..., K, 2]``).

With ``imaginary=False`` every imaginary part is a zero buffer that never trains: ComplEx then *is*
DistMult (the ablation of Section 4.1: without imaginary parts no antisymmetric relation can be fit).

**DistMult** (Yang et al., 2015): ``phi(s, r, o) = <w_r, e_s, e_o>``, real vectors; symmetric in
``s, o`` for every relation, which is why it cannot model antisymmetry.

**TransE** (Bordes et al., 2013): ``phi(s, r, o) = -||e_s + w_r - e_o||_p`` with ``p`` 1 or 2.
With ``normalize_entities`` the entity vectors are scaled to unit ``p``-norm before scoring, as
``torch_geometric.nn.kge.TransE`` does (the TransE paper instead projects them onto the unit sphere
after each update, and the ComplEx paper's code before each batch; scoring-time normalisation gives
the same scores without an extra step in the trainer).

Departures and choices, and why:

* Initialisation: every table is drawn from ``N(0, init_std^2)`` with ``init_std = 1`` by default,
  as the paper's code does (``randn``); ``torch_geometric`` uses Xavier-uniform. ``reset_parameters``
  takes a generator so that the same seed gives the same model.
* ``penalty`` returns the mean of the squared entries of each embedding table's rows used by the
  batch, summed over the tables (and over the head and tail roles), as the paper's code computes its
  regulariser; Eq. (12) writes ``lambda ||Theta||_2^2`` over all parameters. The per-batch mean is
  the stochastic form the paper's grid of ``lambda`` values (0.1 ... 0.0001) was validated on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int

__all__ = [
    "MODELS",
    "ComplEx",
    "DistMult",
    "KGEModel",
    "TransE",
    "check_triples",
    "complex_score",
    "distmult_score",
    "make_model",
    "transe_score",
]


def _check_ids(ids: Any, name: str, upper: int, shape: tuple[int, ...] | None = None) -> Tensor:
    """Check an integer id tensor with values in ``[0, upper)``."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer ids, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 (or int32) tensor of ids, got {ids.dtype}")
    if shape is not None and tuple(ids.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(ids.shape)}")
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= upper:
            bad = low if low < 0 else high
            raise ValueError(f"{name} must hold ids in [0, {upper}), got {bad}")
    return ids.long()


def check_triples(triples: Any, num_entities: int, num_relations: int, name: str = "triples") -> Tensor:
    """Check ``triples`` is an integer ``[T, 3]`` tensor of ``(head, relation, tail)`` ids in range."""
    if not isinstance(triples, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor [T, 3] of (head, relation, tail) ids, got {type(triples).__name__}"
        )
    if triples.dim() != 2 or triples.size(1) != 3:
        raise ValueError(f"{name} must have shape [T, 3] (head, relation, tail), got {tuple(triples.shape)}")
    if triples.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 (or int32) tensor, got {triples.dtype}")
    _check_ids(triples[:, 0], f"{name}[:, 0] (heads)", num_entities)
    _check_ids(triples[:, 1], f"{name}[:, 1] (relations)", num_relations)
    _check_ids(triples[:, 2], f"{name}[:, 2] (tails)", num_entities)
    return triples.long()


# --------------------------------------------------------------------------------------------------
# Interaction functions on embeddings (broadcasting over leading dimensions).


def complex_score(
    head_real: Tensor,
    head_imag: Tensor,
    rel_real: Tensor,
    rel_imag: Tensor,
    tail_real: Tensor,
    tail_imag: Tensor,
) -> Tensor:
    """Eq. (11): ``Re(<w_r, e_s, conj(e_o)>)`` summed over the last dimension (broadcasts)."""
    return (
        (head_real * rel_real * tail_real).sum(-1)
        + (head_imag * rel_real * tail_imag).sum(-1)
        + (head_real * rel_imag * tail_imag).sum(-1)
        - (head_imag * rel_imag * tail_real).sum(-1)
    )


def distmult_score(head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
    """DistMult: ``<e_s, w_r, e_o>`` over the last dimension (broadcasts)."""
    return (head * rel * tail).sum(-1)


def transe_score(head: Tensor, rel: Tensor, tail: Tensor, p: int = 1) -> Tensor:
    """TransE: ``-||e_s + w_r - e_o||_p`` over the last dimension (broadcasts)."""
    return -torch.linalg.vector_norm(head + rel - tail, ord=p, dim=-1)


# --------------------------------------------------------------------------------------------------


class KGEModel(nn.Module):
    """Common interface: ``score``, ``score_tails``, ``score_heads`` and ``penalty`` on id tensors."""

    def __init__(self, num_entities: int, num_relations: int, dim: int):
        super().__init__()
        self.num_entities = check_int("num_entities", num_entities)
        self.num_relations = check_int("num_relations", num_relations)
        self.dim = check_int("dim", dim)

    # Subclasses implement the four _methods on checked long ids.
    def _score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_tails(self, h: Tensor, r: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_heads(self, r: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _penalty(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_batch(self, h: Any, r: Any, t: Any) -> tuple[Tensor, Tensor, Tensor]:
        h = _check_ids(h, "heads", self.num_entities)
        if h.dim() != 1:
            raise ValueError(f"heads must be 1-D [B], got shape {tuple(h.shape)}")
        r = _check_ids(r, "relations", self.num_relations, tuple(h.shape))
        t = _check_ids(t, "tails", self.num_entities, tuple(h.shape))
        return h, r, t

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """``phi(s, r, o)`` for each triple: ids ``[B]`` each → scores ``[B]``."""
        return self._score(*self._check_batch(heads, relations, tails))

    def forward(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        return self.score(heads, relations, tails)

    def score_triples(self, triples: Tensor) -> Tensor:
        """Scores ``[T]`` of an integer ``[T, 3]`` tensor of ``(head, relation, tail)`` ids."""
        triples = check_triples(triples, self.num_entities, self.num_relations)
        return self._score(triples[:, 0], triples[:, 1], triples[:, 2])

    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor:
        """``phi(h, r, e)`` for every entity ``e``: ids ``[B]`` each → ``[B, num_entities]``."""
        h = _check_ids(heads, "heads", self.num_entities)
        if h.dim() != 1:
            raise ValueError(f"heads must be 1-D [B], got shape {tuple(h.shape)}")
        r = _check_ids(relations, "relations", self.num_relations, tuple(h.shape))
        return self._score_tails(h, r)

    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor:
        """``phi(e, r, t)`` for every entity ``e``: ids ``[B]`` each → ``[B, num_entities]``."""
        t = _check_ids(tails, "tails", self.num_entities)
        if t.dim() != 1:
            raise ValueError(f"tails must be 1-D [B], got shape {tuple(t.shape)}")
        r = _check_ids(relations, "relations", self.num_relations, tuple(t.shape))
        return self._score_heads(r, t)

    def penalty(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """The batch's L2 regulariser (Eq. 12's ``||Theta||^2`` in the paper code's per-batch form)."""
        return self._penalty(*self._check_batch(heads, relations, tails))


def _init_normal(tensor: Tensor, std: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        sample = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) * std
        tensor.copy_(sample.to(tensor.device))


class ComplEx(KGEModel):
    """ComplEx, Eq. (11): ``phi(s, r, o) = Re(<w_r, e_s, conj(e_o)>)`` with ``e, w`` in ``C^dim``.

    Args:
        num_entities: number of entities ``N``.
        num_relations: number of relations ``R``.
        dim: the complex rank ``K`` (each embedding has ``K`` real and ``K`` imaginary parts).
        imaginary: ``False`` fixes every imaginary part at zero (ComplEx reduced to DistMult, the
            ablation); the zero parts are buffers, not parameters.
        init_std: standard deviation of the normal initialisation (the paper code: 1).
        generator: optional ``torch.Generator`` for the initialisation.
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        imaginary: bool = True,
        init_std: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(num_entities, num_relations, dim)
        self.imaginary = bool(imaginary)
        self.init_std = float(init_std)
        self.entity_real = nn.Parameter(torch.empty(num_entities, dim))
        self.relation_real = nn.Parameter(torch.empty(num_relations, dim))
        if self.imaginary:
            self.entity_imag = nn.Parameter(torch.empty(num_entities, dim))
            self.relation_imag = nn.Parameter(torch.empty(num_relations, dim))
        else:
            self.register_buffer("entity_imag", torch.zeros(num_entities, dim))
            self.register_buffer("relation_imag", torch.zeros(num_relations, dim))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        tables = [self.entity_real, self.relation_real]
        if self.imaginary:
            tables += [self.entity_imag, self.relation_imag]
        for table in tables:
            _init_normal(table, self.init_std, generator)

    def _score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return complex_score(
            self.entity_real[h],
            self.entity_imag[h],
            self.relation_real[r],
            self.relation_imag[r],
            self.entity_real[t],
            self.entity_imag[t],
        )

    def _score_tails(self, h: Tensor, r: Tensor) -> Tensor:
        # Eq. (11) is linear in e_o: phi = <a, Re e_o> + <b, Im e_o> with
        # a = Re(w_r e_s), b = Im(w_r e_s) (the product with conj(e_o) taken real part).
        hr, hi = self.entity_real[h], self.entity_imag[h]
        rr, ri = self.relation_real[r], self.relation_imag[r]
        a = hr * rr - hi * ri
        b = hi * rr + hr * ri
        return a @ self.entity_real.T + b @ self.entity_imag.T

    def _score_heads(self, r: Tensor, t: Tensor) -> Tensor:
        # Linear in e_s: with u = w_r conj(e_o), Re(e_s u) = <Re e_s, Re u> - <Im e_s, Im u>,
        # so phi = <c, Re e_s> + <d, Im e_s> with c = Re u and d = -Im u.
        tr, ti = self.entity_real[t], self.entity_imag[t]
        rr, ri = self.relation_real[r], self.relation_imag[r]
        c = rr * tr + ri * ti
        d = rr * ti - ri * tr
        return c @ self.entity_real.T + d @ self.entity_imag.T

    def _penalty(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        total = (
            self.entity_real[h].pow(2).mean()
            + self.entity_real[t].pow(2).mean()
            + self.relation_real[r].pow(2).mean()
        )
        if self.imaginary:
            total = total + self.entity_imag[h].pow(2).mean() + self.entity_imag[t].pow(2).mean()
            total = total + self.relation_imag[r].pow(2).mean()
        return total


class DistMult(KGEModel):
    """DistMult: ``phi(s, r, o) = <e_s, w_r, e_o>`` with real ``dim``-vectors (symmetric in ``s, o``)."""

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        init_std: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(num_entities, num_relations, dim)
        self.init_std = float(init_std)
        self.entity = nn.Parameter(torch.empty(num_entities, dim))
        self.relation = nn.Parameter(torch.empty(num_relations, dim))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        _init_normal(self.entity, self.init_std, generator)
        _init_normal(self.relation, self.init_std, generator)

    def _score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return distmult_score(self.entity[h], self.relation[r], self.entity[t])

    def _score_tails(self, h: Tensor, r: Tensor) -> Tensor:
        return (self.entity[h] * self.relation[r]) @ self.entity.T

    def _score_heads(self, r: Tensor, t: Tensor) -> Tensor:
        return (self.relation[r] * self.entity[t]) @ self.entity.T

    def _penalty(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.entity[h].pow(2).mean() + self.entity[t].pow(2).mean() + self.relation[r].pow(2).mean()


class TransE(KGEModel):
    """TransE: ``phi(s, r, o) = -||e_s + w_r - e_o||_p``.

    Args:
        p: the norm, 1 or 2.
        normalize_entities: scale entity vectors to unit ``p``-norm before scoring (as
            ``torch_geometric``'s TransE; the TransE paper's unit-norm constraint on entities).
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        p: int = 1,
        normalize_entities: bool = True,
        init_std: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(num_entities, num_relations, dim)
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2 (the TransE norm), got {p!r}")
        self.p = p
        self.normalize_entities = bool(normalize_entities)
        self.init_std = float(init_std)
        self.entity = nn.Parameter(torch.empty(num_entities, dim))
        self.relation = nn.Parameter(torch.empty(num_relations, dim))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        _init_normal(self.entity, self.init_std, generator)
        _init_normal(self.relation, self.init_std, generator)

    def _entities(self, ids: Tensor | None = None) -> Tensor:
        table = self.entity if ids is None else self.entity[ids]
        if self.normalize_entities:
            table = torch.nn.functional.normalize(table, p=self.p, dim=-1)
        return table

    def _score(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return transe_score(self._entities(h), self.relation[r], self._entities(t), self.p)

    def _score_tails(self, h: Tensor, r: Tensor) -> Tensor:
        query = self._entities(h) + self.relation[r]
        # Exact differences (no |x|^2 + |y|^2 - 2xy expansion) so ranks match the triple scores.
        return -torch.cdist(
            query, self._entities(), p=float(self.p), compute_mode="donot_use_mm_for_euclid_dist"
        )

    def _score_heads(self, r: Tensor, t: Tensor) -> Tensor:
        # -||e + w_r - e_o|| = -||e - (e_o - w_r)||
        query = self._entities(t) - self.relation[r]
        return -torch.cdist(
            query, self._entities(), p=float(self.p), compute_mode="donot_use_mm_for_euclid_dist"
        )

    def _penalty(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.entity[h].pow(2).mean() + self.entity[t].pow(2).mean() + self.relation[r].pow(2).mean()


MODELS: dict[str, type[KGEModel]] = {"complex": ComplEx, "distmult": DistMult, "transe": TransE}


def make_model(name: str, num_entities: int, num_relations: int, dim: int, **kwargs: Any) -> KGEModel:
    """Build a model by name: ``complex``, ``distmult`` or ``transe`` (keyword arguments passed on)."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](num_entities, num_relations, dim, **kwargs)
