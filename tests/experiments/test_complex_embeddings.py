"""The ComplEx experiment: quick reproduction, its ablation failing, seeds repeating, the synthetic KB, a WN18RR smoke run."""

from __future__ import annotations

import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.core.results import results_dir
from aicanon.experiments import complex_embeddings as experiment

pytestmark = pytest.mark.paper("complex-embeddings")

SLUG = "complex-embeddings"


def test_quick_reproduction_passes_every_quick_claim():
    module = load_experiment(SLUG)
    result = reproduce(SLUG, make_config(module, "quick"))
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {
        "complex_ap_antisymmetric",
        "complex_ap_symmetric",
        "distmult_ap_antisymmetric",
    }
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    assert "synthetic_ap" in result.figures


def test_ablation_without_imaginary_parts_fails_the_complex_claim():
    """ComplEx with its imaginary parts fixed at zero is DistMult: it cannot fit antisymmetry."""
    module = load_experiment(SLUG)
    cfg = make_config(module, "quick", complex_imaginary=False, seeds=2, synthetic_models=("complex",))
    result = reproduce(SLUG, cfg)
    outcome = {c.metric: c for c in result.claims}["complex_ap_antisymmetric"]
    assert outcome.passed is False and outcome.ours < 0.6
    assert not result.passed


def test_same_seed_same_metrics():
    module = load_experiment(SLUG)
    short = {"seeds": 1, "synthetic_epochs": 20, "synthetic_regularizations": (0.01,), "synthetic_dims": (8,)}
    first = reproduce(SLUG, make_config(module, "quick", **short)).metrics
    second = reproduce(SLUG, make_config(module, "quick", **short)).metrics
    assert first == second
    third = reproduce(SLUG, make_config(module, "quick", seed=1, **short)).metrics
    assert first != third


def test_synthetic_kb_matches_section_4_1():
    kb = experiment.make_synthetic_kb(30, torch.Generator().manual_seed(0))
    assert (kb.train[0].size(0), kb.valid[0].size(0), kb.test[0].size(0)) == (1392, 174, 174)
    triples = torch.cat([kb.train[0], kb.valid[0], kb.test[0]])
    labels = torch.cat([kb.train[1], kb.valid[1], kb.test[1]])
    assert triples.size(0) == len({tuple(x) for x in triples.tolist()}) == 2 * 30 * 29
    assert bool((triples[:, 0] != triples[:, 2]).all())  # diagonal unobserved
    label = {tuple(x): int(y) for x, y in zip(triples.tolist(), labels.tolist())}
    for (s, r, o), y in label.items():
        assert label[(o, r, s)] == (y if r == 0 else -y)
    with pytest.raises(ValueError, match="num_entities must be >= 3, got 2"):
        experiment.make_synthetic_kb(2, torch.Generator())


@pytest.mark.slow
def test_wn18rr_smoke_run():
    """The full-scale benchmark path on a few epochs and triples (real data, CPU)."""
    module = load_experiment(SLUG)
    cfg = make_config(
        module,
        "quick",
        seeds=1,
        synthetic_models=("complex",),
        synthetic_epochs=5,
        synthetic_regularizations=(0.01,),
        datasets=("WN18RR",),
        kg_epochs=2,
        kg_validate_every=1,
        kg_max_validation=200,
        kg_max_test=300,
        kg_checkpoint_every=1,
    )
    result = reproduce(SLUG, cfg)
    for key in ("wn18rr_mrr", "wn18rr_hits@1", "wn18rr_hits@3", "wn18rr_hits@10", "wn18rr_mr"):
        assert key in result.metrics
    assert 0 < result.metrics["wn18rr_mrr"] <= 1
    details = result.details["wn18rr"]
    assert len(details["validation"]) >= 1 and details["test_triples"] == 300
    assert not (results_dir() / "_checkpoints" / SLUG).exists() or not any(
        (results_dir() / "_checkpoints" / SLUG).iterdir()
    )  # the seed's checkpoints are removed once it is done
