"""GAT's headline experiment: the quick reproduction passes its claims; without the graph it fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("gat")

experiment = load_experiment("gat")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("gat", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed, "the quick scale must claim something"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    assert {"training_curves", "attention"} <= set(result.figures)


def test_ablation_without_the_graph_fails_the_cora_claim():
    cfg = make_config(experiment, "quick", use_graph=False, seeds=1)
    result = reproduce("gat", cfg)
    cora = next(c for c in result.claims if c.metric == "cora_test_accuracy")
    assert cora.passed is False
    assert cora.ours < 70.0  # an MLP on Cora: about 55-60 %


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", seeds=1, max_epochs=25, mlp_baseline=True)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.seeds, full.datasets, full.patience, full.max_epochs) == (
        100,
        ("cora", "citeseer"),
        100,
        100_000,
    )
    assert (full.learning_rate, full.weight_decay, full.dropout, full.heads, full.hidden_features) == (
        0.005,
        5e-4,
        0.6,
        8,
        8,
    )
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 3 and quick.datasets == ("cora",)


def test_empty_dataset_list_is_rejected():
    cfg = make_config(experiment, "quick", datasets=(), seeds=1)
    with pytest.raises(ValueError, match="datasets must name at least one Planetoid graph"):
        experiment.run(cfg)
