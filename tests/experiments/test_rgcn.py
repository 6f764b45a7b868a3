"""R-GCN experiment: the quick reproduction (AIFB), the graph-free ablation, seeds, link-prediction path."""

from __future__ import annotations

import math

import pytest

import aicanon.experiments.rgcn as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("rgcn")

SLUG = "rgcn"


def _aifb(reproduction):
    return next(c for c in reproduction.claims if c.metric == "aifb_test_accuracy")


def test_quick_reproduction_passes_every_quick_claim():
    cfg = make_config(experiment, "quick")
    assert cfg.seeds == 3 and cfg.datasets == ("aifb",) and cfg.epochs == 50 and cfg.aifb_num_bases == 0
    assert cfg.self_loop == "relation"  # the paper's code
    result = reproduce(SLUG, cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert [c.metric for c in claimed] == ["aifb_test_accuracy"]
    failed = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failed, failed
    assert result.details["aifb"]["removed_leaking_triples"] == 0


def test_graph_free_ablation_fails_the_quick_claim():
    # Without edges only the self-connection remains: a test entity's input row never trained.
    result = reproduce(SLUG, make_config(experiment, "quick", use_graph=False))
    claim = _aifb(result)
    assert claim.passed is False and claim.ours < 60.0


def test_same_seed_same_metrics():
    first = experiment.run(make_config(experiment, "quick", epochs=8, seeds=1, seed=4))
    second = experiment.run(make_config(experiment, "quick", epochs=8, seeds=1, seed=4))
    other = experiment.run(make_config(experiment, "quick", epochs=8, seeds=1, seed=5))
    assert first.metrics == second.metrics
    assert first.details["aifb"]["train_accuracy"] == second.details["aifb"]["train_accuracy"]
    assert first.details["aifb"]["final_loss"] != other.details["aifb"]["final_loss"]


def test_link_prediction_path_smoke():
    """Section 5.2's path (R-GCN encoder with blocks, edge and self-loop dropout, DistMult, negative
    sampling, filtered ranking) on the first 300 FB15k-237 training triples."""
    cfg = make_config(
        experiment,
        "full",
        datasets=(),
        seeds=1,
        lp_max_train_triples=300,
        lp_steps=30,
        lp_dim=20,
        lp_num_blocks=4,
        device="cpu",
    )
    result = experiment.run(cfg)
    metrics = result.metrics
    assert set(metrics) >= {"fb15k237_filtered_mrr", "fb15k237_hits@1", "fb15k237_hits@3", "fb15k237_hits@10"}
    assert 0.0 < metrics["fb15k237_filtered_mrr"] <= 1.0 and math.isfinite(metrics["fb15k237_filtered_mr"])
    assert metrics["fb15k237_hits@1"] <= metrics["fb15k237_hits@3"] <= metrics["fb15k237_hits@10"]


def test_bad_config():
    with pytest.raises(ValueError, match="datasets must hold 'aifb' and/or 'mutag', got 'am'"):
        experiment.run(make_config(experiment, "quick", datasets=("am",)))
    with pytest.raises(ValueError, match=r"relations must be one of \('typed', 'collapsed'\), got 'none'"):
        experiment.run(make_config(experiment, "quick", relations="none"))
    with pytest.raises(
        ValueError, match=r"self_loop must be one of \('separate', 'relation', 'none'\), got 'x'"
    ):
        experiment.run(make_config(experiment, "quick", self_loop="x"))
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        experiment.run(make_config(experiment, "quick", epochs=0))
