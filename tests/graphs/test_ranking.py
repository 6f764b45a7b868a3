"""Filtered ranking protocol: golden ranks with ties, brute-force equality, pykeen parity, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.kge import ComplEx, DistMult
from aicanon.graphs.ranking import (
    KnownTriples,
    evaluate_link_prediction,
    rank_triples,
    ranking_metrics,
    ranks_from_scores,
)

pytestmark = pytest.mark.paper("complex-embeddings")


def test_ranks_with_ties_golden():
    # row 0: true entity 1 scores 0.5; entities 0 and 3 higher (0.9, 0.7), entity 2 ties.
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.7], [0.1, 0.2, 0.3, 0.4]])
    targets = torch.tensor([1, 3])
    ranks = ranks_from_scores(scores, targets)
    assert ranks["optimistic"].tolist() == [3.0, 1.0]
    assert ranks["pessimistic"].tolist() == [4.0, 1.0]
    assert ranks["realistic"].tolist() == [3.5, 1.0]
    # filtering entity 0 of row 0 (a known true triple) removes one better-scored candidate;
    # filtering the target itself is ignored.
    filtered = ranks_from_scores(scores, targets, torch.tensor([0, 0]), torch.tensor([0, 1]))
    assert filtered["realistic"].tolist() == [2.5, 1.0]


def test_all_equal_scores_give_the_middle_rank():
    """A degenerate model (all scores equal): realistic rank (N+1)/2, optimistic 1 (the paper code's rule)."""
    scores = torch.zeros(1, 9)
    ranks = ranks_from_scores(scores, torch.tensor([4]))
    assert (
        ranks["optimistic"].item() == 1
        and ranks["pessimistic"].item() == 9
        and ranks["realistic"].item() == 5
    )


def test_ranking_metrics_golden():
    metrics = ranking_metrics(torch.tensor([1.0, 2.0, 4.0, 10.5]))
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 0.25 + 1 / 10.5) / 4)
    assert metrics["mr"] == pytest.approx(17.5 / 4)
    assert metrics["hits@1"] == 0.25 and metrics["hits@3"] == 0.5 and metrics["hits@10"] == 0.75


def _random_graph(seed: int, n: int, r: int, t: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            torch.randint(n, (t,), generator=g),
            torch.randint(r, (t,), generator=g),
            torch.randint(n, (t,), generator=g),
        ],
        1,
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12), r=st.integers(1, 4), t=st.integers(1, 60))
def test_known_triples_lookup_matches_sets(seed, n, r, t):
    triples = _random_graph(seed, n, r, t)
    known = KnownTriples.build(triples[: t // 2 + 1], triples[t // 2 :], num_entities=n, num_relations=r)
    truth = {tuple(x) for x in triples.tolist()}
    queries = _random_graph(seed + 1, n, r, 10)
    rows, ents = known.tails_of(queries[:, 0], queries[:, 1])
    got = {(int(i), int(e)) for i, e in zip(rows, ents)}
    want = {(i, e) for i, (h, rr, _) in enumerate(queries.tolist()) for e in range(n) if (h, rr, e) in truth}
    assert got == want
    rows, ents = known.heads_of(queries[:, 1], queries[:, 2])
    got = {(int(i), int(e)) for i, e in zip(rows, ents)}
    want = {
        (i, e) for i, (_, rr, tt) in enumerate(queries.tolist()) for e in range(n) if (e, rr, tt) in truth
    }
    assert got == want


def _brute_force_ranks(model, triples, known_set):
    """The protocol written out: one loop per test triple and side, Python sets for the filter."""
    out = {"head": [], "tail": []}
    n = model.num_entities
    with torch.no_grad():
        for h, r, t in triples.tolist():
            every = torch.arange(n)
            tail_scores = model.score(torch.full((n,), h), torch.full((n,), r), every)
            head_scores = model.score(every, torch.full((n,), r), torch.full((n,), t))
            for side, scores, true in (("tail", tail_scores, t), ("head", head_scores, h)):
                better = ties = 0
                for e in range(n):
                    if e == true:
                        continue
                    candidate = (h, r, e) if side == "tail" else (e, r, t)
                    if candidate in known_set:
                        continue
                    better += int(scores[e] > scores[true])
                    ties += int(scores[e] == scores[true])
                out[side].append(1 + better + ties / 2)
    return out


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_rank_triples_matches_brute_force(seed):
    n, r = 10, 3
    triples = _random_graph(seed, n, r, 40)
    known = KnownTriples.build(triples, num_entities=n, num_relations=r)
    model = DistMult(n, r, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():  # make ties common: round the embeddings coarsely, zero two entities
        model.entity.copy_(model.entity.round())
        model.relation.copy_(model.relation.round())
        model.entity[:2] = 0
    test = triples[:15]
    ranks = rank_triples(model, test, known, batch_size=4)
    expected = _brute_force_ranks(model, test, {tuple(x) for x in triples.tolist()})
    assert ranks.tail["realistic"].tolist() == expected["tail"]
    assert ranks.head["realistic"].tolist() == expected["head"]
    raw = rank_triples(model, test, None)
    assert bool((raw.both() >= ranks.both()).all())  # filtering never worsens a rank


def test_evaluation_keeps_training_mode():
    model = ComplEx(5, 1, 2)
    model.train()
    evaluate_link_prediction(model, torch.tensor([[0, 0, 1]]))
    assert model.training


# ------------------------------------------------------------------------------------------------
# Parity: pykeen's RankBasedEvaluator on Nations with the same ComplEx embeddings


def _pykeen_setup(zero_entities: int):
    from pykeen.datasets import Nations
    from pykeen.models import ComplEx as PykeenComplEx

    dataset = Nations()
    n, r = dataset.training.num_entities, dataset.training.num_relations
    ours = ComplEx(n, r, 8, init_std=0.5, generator=torch.Generator().manual_seed(0))
    if zero_entities:
        with torch.no_grad():  # all-zero entities score 0 with everything: many exact ties
            ours.entity_real[:zero_entities] = 0
            ours.entity_imag[:zero_entities] = 0
    theirs = PykeenComplEx(triples_factory=dataset.training, embedding_dim=8, random_seed=0)
    with torch.no_grad():
        theirs.entity_representations[0]._embeddings.weight.copy_(
            torch.stack([ours.entity_real, ours.entity_imag], -1).reshape(n, -1)
        )
        theirs.relation_representations[0]._embeddings.weight.copy_(
            torch.stack([ours.relation_real, ours.relation_imag], -1).reshape(r, -1)
        )
    return dataset, ours, theirs


@pytest.mark.parity
@pytest.mark.parametrize("zero_entities", [0, 5], ids=["continuous", "with-ties"])
def test_parity_pykeen_rank_based_evaluator_on_nations(zero_entities):
    """Filtered MRR/Hits@1,3,10/MR (realistic, optimistic, pessimistic; head, tail, both) equal pykeen's."""
    from pykeen.evaluation import RankBasedEvaluator

    dataset, ours, theirs = _pykeen_setup(zero_entities)
    train, valid, test = (x.mapped_triples for x in (dataset.training, dataset.validation, dataset.testing))
    evaluator = RankBasedEvaluator(filtered=True)
    result = evaluator.evaluate(
        theirs, test, additional_filter_triples=[train, valid], batch_size=64, use_tqdm=False
    )
    known = KnownTriples.build(
        train, valid, test, num_entities=ours.num_entities, num_relations=ours.num_relations
    )
    ranks = rank_triples(ours, test, known)
    for tie in ("realistic", "optimistic", "pessimistic"):
        for side, values in (("head", ranks.head[tie]), ("tail", ranks.tail[tie]), ("both", ranks.both(tie))):
            metrics = ranking_metrics(values)
            for ours_name, their_name in (
                ("mrr", "inverse_harmonic_mean_rank"),
                ("mr", "arithmetic_mean_rank"),
                ("hits@1", "hits_at_1"),
                ("hits@3", "hits_at_3"),
                ("hits@10", "hits_at_10"),
            ):
                expected = result.get_metric(f"{side}.{tie}.{their_name}")
                assert metrics[ours_name] == pytest.approx(expected, abs=1e-6), (side, tie, ours_name)
    if zero_entities:  # the tie case really has ties
        assert bool((ranks.both("pessimistic") > ranks.both("optimistic")).any())


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_input():
    model = ComplEx(5, 2, 2)
    with pytest.raises(ValueError, match="triples must have shape \\[T, 3\\].* got \\(3,\\)"):
        rank_triples(model, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="triples must hold non-negative ids, got -1"):
        rank_triples(model, torch.tensor([[0, 0, -1]]))
    with pytest.raises(ValueError, match="triples tail ids must be < 5, got 5"):
        rank_triples(model, torch.tensor([[0, 0, 5]]))
    with pytest.raises(ValueError, match="triples relation ids must be < 2, got 2"):
        rank_triples(model, torch.tensor([[0, 2, 1]]))
    with pytest.raises(TypeError, match="triples must be an int64 .* got torch.float32"):
        rank_triples(model, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="model must have score_tails"):
        rank_triples(torch.nn.Linear(2, 2), torch.tensor([[0, 0, 1]]))
    with pytest.raises(
        ValueError, match="known triples index 6 entities and 2 relations, the model has 5 and 2"
    ):
        rank_triples(
            model,
            torch.tensor([[0, 0, 1]]),
            KnownTriples.build(torch.tensor([[0, 0, 1]]), num_entities=6, num_relations=2),
        )
    with pytest.raises(TypeError, match="known must be a KnownTriples"):
        rank_triples(model, torch.tensor([[0, 0, 1]]), known={(0, 0, 1)})
    with pytest.raises(ValueError, match="tie must be one of .* got 'average'"):
        evaluate_link_prediction(model, torch.tensor([[0, 0, 1]]), tie="average")
    with pytest.raises(ValueError, match="triple_sets must hold at least one"):
        KnownTriples.build(num_entities=5, num_relations=2)
    with pytest.raises(ValueError, match="triple_sets\\[0\\] head ids must be < 5, got 7"):
        KnownTriples.build(torch.tensor([[7, 0, 1]]), num_entities=5, num_relations=2)
    with pytest.raises(ValueError, match="ranks must be >= 1, got 0"):
        ranking_metrics(torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match="ranks must not be empty"):
        ranking_metrics(torch.tensor([]))
