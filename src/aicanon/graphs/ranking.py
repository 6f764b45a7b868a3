r"""The filtered ranking protocol for link prediction (Bordes et al., 2013; ComplEx paper, Section 4.2).

For each test triple ``(s, r, o)`` the model scores every corruption of its tail, ``(s, r, e)`` for
all entities ``e``, and of its head, ``(e, r, o)``. The rank of the true entity among these is its
*raw* rank. The *filtered* rank first removes every corruption that is itself a known true triple
(in train, valid or test: the ``known`` triples) — except the test triple itself — so that a model
is not penalised for ranking another correct answer above it. Both sides are ranked; the metrics
average over the ``2 T`` ranks:

* ``MRR = mean(1 / rank)``, the mean reciprocal rank;
* ``Hits@k = mean(rank <= k)`` for ``k`` in 1, 3, 10;
* ``MR = mean(rank)``, the mean rank.

**Ties.** With ``g`` the number of (unfiltered) candidates scoring strictly higher than the true
entity and ``q`` those scoring the same (the true entity excluded):

* optimistic rank ``1 + g`` — what the ComplEx paper's code computes
  (``1 + sum(scores > score_true)`` after filtering), so ties are won;
* pessimistic rank ``1 + g + q`` — ties lost;
* realistic rank ``1 + g + q / 2`` — the mean of the two, the expected rank when ties are broken
  uniformly at random; this is pykeen's default (``RankBasedEvaluator``, rank type "realistic") and
  ours (``tie="realistic"``).

With continuous scores ties have probability zero and the three coincide; they differ for
degenerate models (an untrained or collapsed model scoring everything alike would get rank 1 under
the optimistic rule). We report the realistic rank by default and keep the optimistic one available
to compare with the paper's code.

Filtering is exact: :class:`KnownTriples` indexes every known triple by ``(head, relation)`` and by
``(relation, tail)`` in sorted order, and a batch's filter is found by binary search, so no
``N x N`` structure is ever formed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from aicanon.core.checks import check_int

__all__ = [
    "TIES",
    "KnownTriples",
    "Ranks",
    "evaluate_link_prediction",
    "rank_triples",
    "ranking_metrics",
    "ranks_from_scores",
]

TIES = ("optimistic", "realistic", "pessimistic")


class AllEntityScorer(Protocol):
    num_entities: int
    num_relations: int

    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor: ...

    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor: ...


def _check_triples(
    triples: Any, name: str, num_entities: int | None = None, num_relations: int | None = None
) -> Tensor:
    if not isinstance(triples, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor [T, 3] of (head, relation, tail) ids, got {type(triples).__name__}"
        )
    if triples.dim() != 2 or triples.size(1) != 3:
        raise ValueError(f"{name} must have shape [T, 3] (head, relation, tail), got {tuple(triples.shape)}")
    if triples.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 (or int32) tensor, got {triples.dtype}")
    if triples.numel():
        if int(triples.min()) < 0:
            raise ValueError(f"{name} must hold non-negative ids, got {int(triples.min())}")
        for column, upper, what in (
            (0, num_entities, "head"),
            (2, num_entities, "tail"),
            (1, num_relations, "relation"),
        ):
            if upper is not None and int(triples[:, column].max()) >= upper:
                raise ValueError(f"{name} {what} ids must be < {upper}, got {int(triples[:, column].max())}")
    return triples.long()


@dataclass
class KnownTriples:
    """All known true triples, indexed for filtering both tails and heads.

    Build with :meth:`build` from any number of ``[T, 3]`` tensors (train, valid, test).
    """

    num_entities: int
    num_relations: int
    tail_keys: Tensor
    """Sorted ``head * R + relation`` keys, one per known triple."""
    tail_values: Tensor
    """The tails, in the order of ``tail_keys``."""
    head_keys: Tensor
    """Sorted ``tail * R + relation`` keys."""
    head_values: Tensor
    """The heads, in the order of ``head_keys``."""

    @classmethod
    def build(cls, *triple_sets: Tensor, num_entities: int, num_relations: int) -> KnownTriples:
        if not triple_sets:
            raise ValueError("triple_sets must hold at least one [T, 3] tensor of known triples, got none")
        check_int("num_entities", num_entities)
        check_int("num_relations", num_relations)
        checked = [
            _check_triples(t, f"triple_sets[{i}]", num_entities, num_relations)
            for i, t in enumerate(triple_sets)
        ]
        device = checked[0].device
        triples = torch.unique(torch.cat([t.to(device) for t in checked]), dim=0)
        h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
        tail_keys, order = torch.sort(h * num_relations + r, stable=True)
        head_keys, order_h = torch.sort(t * num_relations + r, stable=True)
        return cls(num_entities, num_relations, tail_keys, t[order], head_keys, h[order_h])

    def to(self, device: torch.device | str) -> KnownTriples:
        return KnownTriples(
            self.num_entities,
            self.num_relations,
            self.tail_keys.to(device),
            self.tail_values.to(device),
            self.head_keys.to(device),
            self.head_values.to(device),
        )

    @staticmethod
    def _lookup(keys: Tensor, values: Tensor, queries: Tensor) -> tuple[Tensor, Tensor]:
        start = torch.searchsorted(keys, queries, right=False)
        end = torch.searchsorted(keys, queries, right=True)
        counts = end - start
        rows = torch.repeat_interleave(torch.arange(queries.numel(), device=queries.device), counts)
        # Position j of row i's run is start_i + j: offset by the run's first flat index.
        first = torch.cumsum(counts, 0) - counts
        flat = torch.arange(int(counts.sum()), device=queries.device)
        positions = flat - torch.repeat_interleave(first, counts) + torch.repeat_interleave(start, counts)
        return rows, values[positions]

    def tails_of(self, heads: Tensor, relations: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows, entities)``: every known tail of ``(heads[i], relations[i])``, as sparse indices."""
        return self._lookup(self.tail_keys, self.tail_values, heads * self.num_relations + relations)

    def heads_of(self, relations: Tensor, tails: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows, entities)``: every known head of ``(relations[i], tails[i])``, as sparse indices."""
        return self._lookup(self.head_keys, self.head_values, tails * self.num_relations + relations)


@dataclass
class Ranks:
    """Ranks of the true entities: one per test triple and side, ``[T]`` tensors (float)."""

    tail: dict[str, Tensor]
    """Tie rule name → ranks of the true tails."""
    head: dict[str, Tensor]
    """Tie rule name → ranks of the true heads."""

    def both(self, tie: str = "realistic") -> Tensor:
        if tie not in TIES:
            raise ValueError(f"tie must be one of {TIES}, got {tie!r}")
        return torch.cat([self.head[tie], self.tail[tie]])


def ranks_from_scores(
    scores: Tensor, targets: Tensor, filter_rows: Tensor | None = None, filter_entities: Tensor | None = None
) -> dict[str, Tensor]:
    """Ranks of ``targets`` in each row of ``scores`` ``[B, N]``, after removing filtered entries.

    ``filter_rows``/``filter_entities`` list the ``(row, entity)`` pairs to remove (known true
    triples); the target of each row is never removed. Returns the optimistic, pessimistic and
    realistic ranks, ``[B]`` float tensors.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be 2-D [B, N], got shape {tuple(scores.shape)}")
    if targets.shape != (scores.size(0),):
        raise ValueError(f"targets must have shape ({scores.size(0)},), got {tuple(targets.shape)}")
    rows = torch.arange(scores.size(0), device=scores.device)
    true = scores[rows, targets]
    greater = scores > true[:, None]
    equal = scores == true[:, None]
    if filter_rows is not None and filter_entities is not None and filter_rows.numel():
        keep_mask = torch.ones_like(greater)
        keep_mask[filter_rows, filter_entities] = False
        greater &= keep_mask
        equal &= keep_mask
    equal[rows, targets] = False  # the true entity does not tie with itself
    g = greater.sum(1).to(torch.float64)
    q = equal.sum(1).to(torch.float64)
    return {"optimistic": 1 + g, "pessimistic": 1 + g + q, "realistic": 1 + g + q / 2}


@torch.no_grad()
def rank_triples(
    model: AllEntityScorer,
    triples: Tensor,
    known: KnownTriples | None = None,
    batch_size: int = 256,
) -> Ranks:
    """Head and tail ranks of ``triples`` ``[T, 3]`` under ``model``; filtered when ``known`` is given.

    ``model`` needs ``score_tails(heads, relations)`` and ``score_heads(relations, tails)`` returning
    ``[B, num_entities]`` (every :class:`aicanon.graphs.kge.KGEModel` has them). ``known=None`` gives
    the raw ranks.
    """
    for attribute in ("score_tails", "score_heads", "num_entities", "num_relations"):
        if not hasattr(model, attribute):
            raise TypeError(
                f"model must have {attribute} (see aicanon.graphs.kge.KGEModel), got {type(model).__name__}"
            )
    triples = _check_triples(triples, "triples", model.num_entities, model.num_relations)
    check_int("batch_size", batch_size)
    if known is not None:
        if not isinstance(known, KnownTriples):
            raise TypeError(
                f"known must be a KnownTriples (or None for raw ranks), got {type(known).__name__}"
            )
        if known.num_entities != model.num_entities or known.num_relations != model.num_relations:
            raise ValueError(
                f"known triples index {known.num_entities} entities and {known.num_relations} relations, "
                f"the model has {model.num_entities} and {model.num_relations}"
            )
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    tail: dict[str, list[Tensor]] = {k: [] for k in TIES}
    head: dict[str, list[Tensor]] = {k: [] for k in TIES}
    device = _device_of(model, triples.device)
    kt = known.to(device) if known is not None else None
    try:
        for start in range(0, triples.size(0), batch_size):
            batch = triples[start : start + batch_size].to(device)
            h, r, t = batch[:, 0], batch[:, 1], batch[:, 2]
            scores = model.score_tails(h, r)
            rows, ents = kt.tails_of(h, r) if kt is not None else (None, None)
            for k, v in ranks_from_scores(scores, t, rows, ents).items():
                tail[k].append(v.cpu())
            scores = model.score_heads(r, t)
            rows, ents = kt.heads_of(r, t) if kt is not None else (None, None)
            for k, v in ranks_from_scores(scores, h, rows, ents).items():
                head[k].append(v.cpu())
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    empty = torch.zeros(0, dtype=torch.float64)
    return Ranks(
        tail={k: torch.cat(v) if v else empty for k, v in tail.items()},
        head={k: torch.cat(v) if v else empty for k, v in head.items()},
    )


def _device_of(model: Any, default: torch.device) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
        for b in model.buffers():
            return b.device
    return default


def ranking_metrics(ranks: Tensor, ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """``mrr``, ``mr`` and ``hits@k`` of a 1-D tensor of (1-based) ranks."""
    if not isinstance(ranks, Tensor) or ranks.dim() != 1:
        raise ValueError(
            f"ranks must be a 1-D tensor, got {type(ranks).__name__} {getattr(ranks, 'shape', '')}"
        )
    if ranks.numel() == 0:
        raise ValueError("ranks must not be empty, got 0 ranks")
    if bool((ranks < 1).any()):
        raise ValueError(f"ranks must be >= 1, got {float(ranks.min())}")
    ranks = ranks.to(torch.float64)
    out = {"mrr": float((1.0 / ranks).mean()), "mr": float(ranks.mean())}
    for k in ks:
        out[f"hits@{k}"] = float((ranks <= k).to(torch.float64).mean())
    return out


def evaluate_link_prediction(
    model: AllEntityScorer,
    triples: Tensor,
    known: KnownTriples | None = None,
    tie: str = "realistic",
    batch_size: int = 256,
    ks: Sequence[int] = (1, 3, 10),
) -> dict[str, float]:
    """Filtered (``known`` given) or raw MRR, MR and Hits@k over head and tail prediction of ``triples``."""
    if tie not in TIES:
        raise ValueError(f"tie must be one of {TIES}, got {tie!r}")
    ranks = rank_triples(model, triples, known, batch_size)
    return ranking_metrics(ranks.both(tie), ks)
