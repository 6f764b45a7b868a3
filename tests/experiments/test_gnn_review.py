"""The review's comparison: the quick reproduction passes its claims (GCN and GAT on Cora); without
the graph, or untrained, GCN fails its claim; seeds repeat."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("gnn-review")

experiment = load_experiment("gnn-review")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("gnn-review", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"cora_gcn_test_accuracy", "cora_gat_test_accuracy"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    # The comparison table covers every propagation module of the taxonomy.
    rows = {entry["row"] for entry in result.details["table"]}
    assert rows == {"gcn", "sage", "gat", "ggnn", "gcn_residual", "gcn_jk"}
    for row in rows:  # every module learns from the graph: above a graph-free MLP's ~57 %
        assert result.metrics[f"cora_{row}_test_accuracy"] > 60.0, row
    assert {"comparison", "validation_curves"} <= set(result.figures)


def test_ablation_without_the_graph_fails_the_gcn_claim():
    cfg = make_config(experiment, "quick", use_graph=False, seeds=1, rows=("gcn",))
    result = reproduce("gnn-review", cfg)
    gcn = next(c for c in result.claims if c.metric == "cora_gcn_test_accuracy")
    assert gcn.passed is False
    assert gcn.ours < 70.0  # GCN without edges is a 2-layer MLP: about 55-60 % on Cora


def test_untrained_gcn_fails_the_claim():
    cfg = make_config(experiment, "quick", epochs=0, seeds=1, rows=("gcn",))
    result = reproduce("gnn-review", cfg)
    gcn = next(c for c in result.claims if c.metric == "cora_gcn_test_accuracy")
    assert gcn.passed is False and gcn.ours < 40.0


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", seeds=1, epochs=15, gat_max_epochs=10)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details == second.details
    assert set(first.metrics) == {f"cora_{row}_test_accuracy" for row in experiment.ROWS}


def test_configs_follow_the_papers():
    full = experiment.Config.full()
    assert (full.seeds, full.datasets, full.epochs, full.early_stopping) == (
        100,
        ("cora", "citeseer"),
        200,
        10,
    )
    assert (full.hidden_features, full.dropout, full.learning_rate, full.weight_decay) == (
        16,
        0.5,
        0.01,
        5e-4,
    )
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 3 and quick.datasets == ("cora",)
    assert set(quick.rows) == set(experiment.ROWS)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="rows must be a non-empty tuple of"):
        experiment.run(make_config(experiment, "quick", rows=("chebnet",), seeds=1))
    with pytest.raises(ValueError, match="datasets must name at least one Planetoid graph"):
        experiment.run(make_config(experiment, "quick", datasets=(), seeds=1))
