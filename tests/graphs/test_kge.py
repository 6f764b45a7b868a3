"""ComplEx / DistMult / TransE scoring and the Eq. (12) trainer: golden values, invariants, parity, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.kge import ComplEx, DistMult, TransE, check_triples, complex_score, make_model
from aicanon.graphs.kge_training import corrupt, logistic_loss, margin_loss, train_kge

pytestmark = pytest.mark.paper("complex-embeddings")

ATOL = 1e-5


def _ids(n: int, upper: int, seed: int) -> torch.Tensor:
    return torch.randint(upper, (n,), generator=torch.Generator().manual_seed(seed))


def _models(n: int = 7, r: int = 3, d: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        ComplEx(n, r, d, generator=g),
        DistMult(n, r, d, generator=g),
        TransE(n, r, d, p=1, generator=g),
        TransE(n, r, d, p=2, normalize_entities=False, generator=g),
    ]


# ------------------------------------------------------------------------------------------------
# Golden values and invariants


def test_complex_score_is_real_part_of_hermitian_product():
    """Eq. (11) against torch's complex arithmetic: Re(sum_k w_k e_s,k conj(e_o,k))."""
    model = ComplEx(6, 2, 4, generator=torch.Generator().manual_seed(1))
    h, r, t = torch.tensor([0, 3, 5]), torch.tensor([1, 0, 1]), torch.tensor([2, 3, 0])
    e = torch.complex(model.entity_real, model.entity_imag).detach().to(torch.complex128)
    w = torch.complex(model.relation_real, model.relation_imag).detach().to(torch.complex128)
    expected = torch.real((w[r] * e[h] * torch.conj(e[t])).sum(-1))
    torch.testing.assert_close(model.score(h, r, t).double(), expected, atol=ATOL, rtol=0)


def test_complex_hand_computed_value():
    """One entity pair, rank 1: e_s = 1 + 2i, w = 3 - i, e_o = -1 + i -> Re(w e_s conj(e_o))."""
    model = ComplEx(2, 1, 1)
    with torch.no_grad():
        model.entity_real.copy_(torch.tensor([[1.0], [-1.0]]))
        model.entity_imag.copy_(torch.tensor([[2.0], [1.0]]))
        model.relation_real.fill_(3.0)
        model.relation_imag.fill_(-1.0)
    # (3 - i)(1 + 2i) = 5 + 5i; times conj(-1 + i) = -1 - i: (5 + 5i)(-1 - i) = -5 - 10i + 5 = 0 - 10i
    value = model.score(torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    assert value.item() == pytest.approx(0.0, abs=1e-6)
    # reversed: (5 - 5i)... compute with Python complex numbers
    expected = ((3 - 1j) * (-1 + 1j) * (1 - 2j)).real
    assert model.score(torch.tensor([1]), torch.tensor([0]), torch.tensor([0])).item() == pytest.approx(
        expected
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(1, 6))
def test_symmetry_properties(seed, dim):
    """DistMult is symmetric; ComplEx with real w_r symmetric, with imaginary w_r antisymmetric."""
    g = torch.Generator().manual_seed(seed)
    h, t = _ids(8, 9, seed), _ids(8, 9, seed + 1)
    r = torch.zeros(8, dtype=torch.long)
    distmult = DistMult(9, 1, dim, generator=g)
    torch.testing.assert_close(distmult.score(h, r, t), distmult.score(t, r, h), atol=ATOL, rtol=1e-5)
    complex_model = ComplEx(9, 1, dim, generator=g)
    with torch.no_grad():
        complex_model.relation_imag.zero_()
    torch.testing.assert_close(
        complex_model.score(h, r, t), complex_model.score(t, r, h), atol=ATOL, rtol=1e-5
    )
    with torch.no_grad():
        complex_model.relation_imag.normal_(generator=g)
        complex_model.relation_real.zero_()
    torch.testing.assert_close(
        complex_model.score(h, r, t), -complex_model.score(t, r, h), atol=ATOL, rtol=1e-5
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_all_entity_scores_match_triple_scores(seed):
    """score_tails / score_heads (matrix products) equal score() on every (h, r, e) and (e, r, t)."""
    for model in _models(seed=seed):
        n = model.num_entities
        h, r, t = _ids(4, n, seed), _ids(4, model.num_relations, seed + 1), _ids(4, n, seed + 2)
        tails = model.score_tails(h, r)
        heads = model.score_heads(r, t)
        assert tails.shape == heads.shape == (4, n)
        every = torch.arange(n)
        for i in range(4):
            simple_t = model.score(h[i].repeat(n), r[i].repeat(n), every)
            simple_h = model.score(every, r[i].repeat(n), t[i].repeat(n))
            torch.testing.assert_close(tails[i], simple_t, atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(heads[i], simple_h, atol=1e-4, rtol=1e-5)


def test_complex_without_imaginary_parts_is_distmult():
    """The ablation: imaginary parts fixed at zero give DistMult's scores and train nothing imaginary."""
    ablated = ComplEx(5, 2, 3, imaginary=False, generator=torch.Generator().manual_seed(0))
    distmult = DistMult(5, 2, 3)
    with torch.no_grad():
        distmult.entity.copy_(ablated.entity_real)
        distmult.relation.copy_(ablated.relation_real)
    h, r, t = torch.tensor([0, 1, 4]), torch.tensor([1, 0, 1]), torch.tensor([2, 2, 3])
    torch.testing.assert_close(ablated.score(h, r, t), distmult.score(h, r, t))
    names = {n for n, _ in ablated.named_parameters()}
    assert names == {"entity_real", "relation_real"}


def test_penalty_is_batch_mean_of_squares():
    model = DistMult(3, 1, 2)
    with torch.no_grad():
        model.entity.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]))
        model.relation.fill_(2.0)
    value = model.penalty(torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([2, 2]))
    # heads rows 0,1: mean(1,1,4,0) = 1.5; tails rows 2,2: mean(0,9,0,9) = 4.5; relation: 4
    assert value.item() == pytest.approx(1.5 + 4.5 + 4.0)


def test_same_generator_same_embeddings():
    a = ComplEx(4, 2, 3, generator=torch.Generator().manual_seed(5))
    b = ComplEx(4, 2, 3, generator=torch.Generator().manual_seed(5))
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), na


# ------------------------------------------------------------------------------------------------
# Training: negative sampling, losses, AdaGrad trainer


def test_corrupt_changes_exactly_one_side():
    triples = torch.tensor([[0, 1, 2], [3, 0, 4], [5, 1, 6]])
    negatives = corrupt(triples, 1000, 50, torch.Generator().manual_seed(0))
    assert negatives.shape == (150, 3)
    originals = triples.repeat(50, 1)
    assert torch.equal(negatives[:, 1], originals[:, 1])
    head_kept = negatives[:, 0] == originals[:, 0]
    tail_kept = negatives[:, 2] == originals[:, 2]
    assert bool((head_kept | tail_kept).all())
    # both sides get corrupted (probability 1/2 each)
    assert 40 < int((~head_kept).sum()) < 110 and 40 < int((~tail_kept).sum()) < 110


def test_logistic_loss_golden():
    scores = torch.tensor([0.0, 2.0, -1.0])
    labels = torch.tensor([1.0, -1.0, -1.0])
    expected = (
        torch.log(torch.tensor(2.0))
        + torch.log1p(torch.exp(torch.tensor(2.0)))
        + torch.log1p(torch.exp(torch.tensor(-1.0)))
    ) / 3
    assert logistic_loss(scores, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_margin_loss_golden():
    positive = torch.tensor([1.0, -2.0])
    negative = torch.tensor([[0.0, 1.0], [-3.0, -5.0]])
    # max(0, 1 - 1 + 0.5) = 0.5; max(0, 1 + 2 - 4) = 0
    assert margin_loss(positive, negative, 1.0).item() == pytest.approx(0.25)


def _tiny_graph(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(12, (60,), generator=g)
    r = torch.randint(2, (60,), generator=g)
    t = torch.randint(12, (60,), generator=g)
    return torch.stack([h, r, t], 1)


def test_trainer_reduces_the_objective_and_separates_positives():
    triples = _tiny_graph()
    model = ComplEx(12, 2, 8, init_std=0.1, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    history = train_kge(
        model, triples, epochs=80, batches_per_epoch=3, num_negatives=2, regularization=0.001, generator=g
    )
    assert history.losses[-1] < 0.5 * history.losses[0]
    negatives = corrupt(triples, 12, 1, torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert model.score_triples(triples).mean() > model.score_triples(negatives).mean() + 1.0


def test_trainer_same_seed_same_parameters():
    triples = _tiny_graph()
    out = []
    for _ in range(2):
        model = DistMult(12, 2, 4, generator=torch.Generator().manual_seed(3))
        train_kge(
            model,
            triples,
            epochs=5,
            batch_size=16,
            num_negatives=1,
            generator=torch.Generator().manual_seed(4),
        )
        out.append(model.entity.detach().clone())
    assert torch.equal(out[0], out[1])


def test_trainer_early_stopping_restores_best():
    triples = _tiny_graph()
    model = DistMult(12, 2, 4, generator=torch.Generator().manual_seed(3))
    values = iter([0.5, 0.9, 0.2, 0.1])
    snapshots = []

    def validate(m):
        snapshots.append(m.entity.detach().clone())
        return next(values)

    history = train_kge(
        model,
        triples,
        epochs=10,
        batch_size=30,
        generator=torch.Generator().manual_seed(0),
        validate=validate,
        validate_every=2,
        patience=2,
    )
    assert history.best_epoch == 4 and history.best_value == 0.9 and history.stopped_early
    assert [e for e, _ in history.validation] == [2, 4, 6, 8]
    assert torch.equal(model.entity.detach(), snapshots[1])


def test_trainer_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path):
    from aicanon.core.checkpoint import CheckpointMismatch

    triples = _tiny_graph()

    def train(folder=None, stop_after=None, epochs=9, seed=0):
        model = ComplEx(12, 2, 4, generator=torch.Generator().manual_seed(5))
        history = train_kge(
            model,
            triples,
            epochs=epochs,
            batch_size=16,
            generator=torch.Generator().manual_seed(seed),
            validate=lambda m: float(sum(p.detach().sum() for p in m.parameters())),  # a function of the state
            validate_every=2,
            patience=100,
            checkpoint_dir=folder,
            checkpoint_every=2 if folder else 0,
            stop_after=stop_after,
        )
        return model, history

    reference, reference_history = train()
    partial, _ = train(tmp_path, stop_after=5)  # killed after epoch 5: the last checkpoint is epoch 4
    assert len(list(tmp_path.iterdir())) == 2
    resumed, history = train(tmp_path)
    assert history.losses == reference_history.losses
    assert history.best_epoch == reference_history.best_epoch
    assert history.validation == reference_history.validation and len(history.validation) == 5
    for mine, theirs in zip(resumed.parameters(), reference.parameters()):
        assert torch.equal(mine, theirs)
    again, history_again = train(tmp_path)  # a finished run's rerun trains no further
    assert history_again.losses == reference_history.losses
    with pytest.raises(CheckpointMismatch, match="generator_seed"):
        train(tmp_path, seed=1)
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint_dir"):
        train_kge(partial, triples, epochs=1, batch_size=8, checkpoint_every=1)


def test_trainer_margin_loss_for_transe():
    triples = _tiny_graph()
    model = TransE(12, 2, 8, p=1, generator=torch.Generator().manual_seed(0))
    history = train_kge(
        model,
        triples,
        epochs=40,
        batches_per_epoch=2,
        num_negatives=4,
        loss="margin",
        margin=1.0,
        learning_rate=0.1,
        generator=torch.Generator().manual_seed(0),
    )
    assert history.losses[-1] < history.losses[0]


# ------------------------------------------------------------------------------------------------
# Reference parity: pykeen interactions and torch_geometric.nn.kge models, outputs and gradients


def _tables(n=9, r=4, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(size, generator=g)
        for k, size in (("er", (n, d)), ("ei", (n, d)), ("rr", (r, d)), ("ri", (r, d)))
    }


@pytest.mark.parity
def test_parity_pykeen_complex_interaction():
    from pykeen.nn.modules import ComplExInteraction

    t = _tables()
    h, r, o = _ids(16, 9, 0), _ids(16, 4, 1), _ids(16, 9, 2)
    ours = {k: v.clone().requires_grad_(True) for k, v in t.items()}
    theirs = {k: v.clone().requires_grad_(True) for k, v in t.items()}
    s_ours = complex_score(
        ours["er"][h], ours["ei"][h], ours["rr"][r], ours["ri"][r], ours["er"][o], ours["ei"][o]
    )
    # pykeen's layout: complex tensors (view_as_complex of [..., d, 2], real and imaginary interleaved)
    ent = torch.view_as_complex(torch.stack([theirs["er"], theirs["ei"]], -1))
    rel = torch.view_as_complex(torch.stack([theirs["rr"], theirs["ri"]], -1))
    s_theirs = ComplExInteraction()(ent[h], rel[r], ent[o])
    torch.testing.assert_close(s_ours, s_theirs, atol=ATOL, rtol=0)
    weights = torch.randn(16, generator=torch.Generator().manual_seed(9))
    (s_ours * weights).sum().backward()
    (s_theirs * weights).sum().backward()
    for k in t:
        torch.testing.assert_close(ours[k].grad, theirs[k].grad, atol=ATOL, rtol=0)


@pytest.mark.parity
def test_parity_pykeen_complex_model_scores_all_tails_and_heads():
    """Our ComplEx tables loaded into pykeen's ComplEx model: score_t / score_h equal ours."""
    from pykeen.datasets import Nations
    from pykeen.models import ComplEx as PykeenComplEx

    dataset = Nations()
    n, r = dataset.training.num_entities, dataset.training.num_relations
    ours = ComplEx(n, r, 5, generator=torch.Generator().manual_seed(0))
    theirs = PykeenComplEx(triples_factory=dataset.training, embedding_dim=5, random_seed=0)
    _load_complex_into_pykeen(ours, theirs)
    hr = dataset.testing.mapped_triples[:20]
    torch.testing.assert_close(
        theirs.score_t(hr[:, :2]), ours.score_tails(hr[:, 0], hr[:, 1]), atol=ATOL, rtol=0
    )
    torch.testing.assert_close(
        theirs.score_h(hr[:, 1:]), ours.score_heads(hr[:, 1], hr[:, 2]), atol=ATOL, rtol=0
    )
    torch.testing.assert_close(
        theirs.score_hrt(hr).squeeze(-1), ours.score(hr[:, 0], hr[:, 1], hr[:, 2]), atol=ATOL, rtol=0
    )


def _load_complex_into_pykeen(ours: ComplEx, theirs) -> None:
    with torch.no_grad():
        entity = torch.stack([ours.entity_real, ours.entity_imag], -1).reshape(ours.num_entities, -1)
        relation = torch.stack([ours.relation_real, ours.relation_imag], -1).reshape(ours.num_relations, -1)
        theirs.entity_representations[0]._embeddings.weight.copy_(entity)
        theirs.relation_representations[0]._embeddings.weight.copy_(relation)


@pytest.mark.parity
@pytest.mark.parametrize("p", [1, 2])
def test_parity_pykeen_distmult_and_transe_interactions(p):
    from pykeen.nn.modules import DistMultInteraction, TransEInteraction

    t = _tables()
    h, r, o = _ids(16, 9, 3), _ids(16, 4, 4), _ids(16, 9, 5)
    dm = DistMult(9, 4, 6)
    te = TransE(9, 4, 6, p=p, normalize_entities=False)
    with torch.no_grad():
        dm.entity.copy_(t["er"])
        dm.relation.copy_(t["rr"])
        te.entity.copy_(t["er"])
        te.relation.copy_(t["rr"])
    e = t["er"].clone().requires_grad_(True)
    w = t["rr"].clone().requires_grad_(True)
    for ours, interaction in ((dm, DistMultInteraction()), (te, TransEInteraction(p=p))):
        e.grad = w.grad = None
        ours.zero_grad()
        s_ours = ours.score(h, r, o)
        s_theirs = interaction(e[h], w[r], e[o])
        torch.testing.assert_close(s_ours, s_theirs, atol=ATOL, rtol=0)
        s_ours.sum().backward()
        s_theirs.sum().backward()
        torch.testing.assert_close(ours.entity.grad, e.grad, atol=ATOL, rtol=0)
        torch.testing.assert_close(ours.relation.grad, w.grad, atol=ATOL, rtol=0)


@pytest.mark.parity
def test_parity_torch_geometric_models():
    """Same tables in torch_geometric.nn.kge ComplEx, DistMult, TransE: scores and gradients equal."""
    from torch_geometric.nn import kge

    n, r, d = 9, 4, 6
    h, rel, t = _ids(20, n, 6), _ids(20, r, 7), _ids(20, n, 8)
    g = torch.Generator().manual_seed(11)
    pairs = []
    ours = ComplEx(n, r, d, generator=g)
    theirs = kge.ComplEx(n, r, d)
    with torch.no_grad():
        theirs.node_emb.weight.copy_(ours.entity_real)
        theirs.node_emb_im.weight.copy_(ours.entity_imag)
        theirs.rel_emb.weight.copy_(ours.relation_real)
        theirs.rel_emb_im.weight.copy_(ours.relation_imag)
    pairs.append(
        (
            ours,
            theirs,
            [
                ("entity_real", "node_emb"),
                ("entity_imag", "node_emb_im"),
                ("relation_real", "rel_emb"),
                ("relation_imag", "rel_emb_im"),
            ],
        )
    )
    ours = DistMult(n, r, d, generator=g)
    theirs = kge.DistMult(n, r, d)
    with torch.no_grad():
        theirs.node_emb.weight.copy_(ours.entity)
        theirs.rel_emb.weight.copy_(ours.relation)
    pairs.append((ours, theirs, [("entity", "node_emb"), ("relation", "rel_emb")]))
    for p in (1, 2):
        ours = TransE(n, r, d, p=p, normalize_entities=True, generator=g)
        theirs = kge.TransE(n, r, d, p_norm=float(p))
        with torch.no_grad():
            theirs.node_emb.weight.copy_(ours.entity)
            theirs.rel_emb.weight.copy_(ours.relation)
        pairs.append((ours, theirs, [("entity", "node_emb"), ("relation", "rel_emb")]))
    for ours, theirs, names in pairs:
        s_ours, s_theirs = ours.score(h, rel, t), theirs(h, rel, t)
        torch.testing.assert_close(s_ours, s_theirs, atol=ATOL, rtol=0)
        weights = torch.randn(20, generator=g)
        (s_ours * weights).sum().backward()
        (s_theirs * weights).sum().backward()
        for mine, pyg in names:
            torch.testing.assert_close(
                getattr(ours, mine).grad, getattr(theirs, pyg).weight.grad, atol=ATOL, rtol=0
            )


# ------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_bad_ids_are_rejected(model):
    ok = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="heads must hold ids in \\[0, 7\\), got -1"):
        model.score(torch.tensor([-1, 0]), ok, ok)
    with pytest.raises(ValueError, match="tails must hold ids in \\[0, 7\\), got 7"):
        model.score(ok, ok, torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="relations must hold ids in \\[0, 3\\), got 3"):
        model.score_tails(ok, torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="relations must have shape \\(2,\\), got \\(3,\\)"):
        model.score(ok, torch.tensor([0, 0, 0]), ok)
    with pytest.raises(TypeError, match="heads must be an int64 .* got torch.float32"):
        model.score(torch.tensor([0.0, 1.0]), ok, ok)
    with pytest.raises(TypeError, match="tails must be a torch.Tensor .* got list"):
        model.score_heads(ok, [0, 1])
    with pytest.raises(ValueError, match="heads must be 1-D"):
        model.score(ok[None], ok[None], ok[None])


def test_bad_constructor_and_triples():
    with pytest.raises(ValueError, match="num_entities must be >= 1, got 0"):
        ComplEx(0, 1, 2)
    with pytest.raises(TypeError, match="dim must be an int, got float"):
        DistMult(3, 1, 2.0)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        TransE(3, 1, 2, p=3)
    with pytest.raises(ValueError, match="name must be one of .* got 'rescal'"):
        make_model("rescal", 3, 1, 2)
    with pytest.raises(ValueError, match="triples must have shape \\[T, 3\\].* got \\(4, 2\\)"):
        check_triples(torch.zeros(4, 2, dtype=torch.long), 3, 1)
    with pytest.raises(ValueError, match="relations\\) must hold ids in \\[0, 1\\), got 1"):
        check_triples(torch.tensor([[0, 1, 2]]), 3, 1)


def test_bad_training_arguments():
    model = DistMult(12, 2, 4)
    triples = _tiny_graph()
    with pytest.raises(ValueError, match="give exactly one of batches_per_epoch and batch_size"):
        train_kge(model, triples, epochs=1)
    with pytest.raises(ValueError, match="loss must be one of .* got 'hinge'"):
        train_kge(model, triples, epochs=1, batch_size=8, loss="hinge")
    with pytest.raises(ValueError, match="labels must all be -1 or \\+1"):
        train_kge(model, triples, torch.zeros(60), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="num_negatives must be >= 1, got 0"):
        train_kge(model, triples, epochs=1, batch_size=8, num_negatives=0)
    with pytest.raises(ValueError, match="regularization must be finite and >= 0, got -1"):
        train_kge(model, triples, epochs=1, batch_size=8, regularization=-1.0)
    with pytest.raises(
        ValueError, match="triples\\[:, 0\\] \\(heads\\) must hold ids in \\[0, 12\\), got 12"
    ):
        train_kge(model, torch.tensor([[12, 0, 0]]), epochs=1, batch_size=8)
    with pytest.raises(TypeError, match="model must be an aicanon.graphs.kge.KGEModel"):
        train_kge(torch.nn.Linear(2, 2), triples, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="num_negatives must be >= 0, got -1"):
        corrupt(triples, 12, -1)
    with pytest.raises(ValueError, match="labels must have the shape of scores"):
        logistic_loss(torch.zeros(3), torch.zeros(2))
