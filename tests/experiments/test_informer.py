"""Informer's experiment: the quick reproduction passes its claims; untrained, or with full
attention's quadratic cost, it fails them; seeds repeat; the configs follow the paper."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("informer")

experiment = load_experiment("informer")

TINY = dict(
    seeds=1,
    d_model=16,
    n_heads=2,
    d_ff=16,
    epochs=1,
    max_steps_per_epoch=3,
    eval_stride=96,
    cost_lengths=(96, 192),
)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("informer", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert len(claimed) >= 5, "the quick scale must claim accuracy, the baselines and the cost"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    assert {"training_curves", "attention_cost", "forecast"} <= set(result.figures)
    assert result.details["cases"]["M_h24"]["seq_len"] == 48  # the paper's input length at M/24


def test_untrained_informer_fails_the_accuracy_claims():
    cfg = make_config(experiment, "quick", train_model=False, full_attention_baseline=False)
    result = reproduce("informer", cfg)
    outcome = {c.metric: c for c in result.claims}
    assert outcome["M_h24_test_mse"].passed is False
    assert outcome["M_h24_over_persistence"].passed is False
    assert outcome["M_h24_test_mse"].ours > 1.0


def test_full_attention_cost_fails_the_probsparse_cost_claim():
    lengths = experiment.Config.quick().cost_lengths
    counts = experiment.count_dot_products(experiment.Config.quick(), lengths)
    claim = next(c for c in experiment.CLAIMS if c.metric == "probsparse_cost_exponent")
    full = experiment.growth_exponent(lengths, counts["full"])
    assert full == pytest.approx(2.0)
    assert claim.check(full, "quick") is False
    assert claim.check(experiment.growth_exponent(lengths, counts["prob"]), "quick") is True


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics


def test_full_config_runs_a_few_steps_with_tiny_overrides(tmp_path, monkeypatch):
    """The paper's --full config end to end (univariate, input 720, start token 168, the encoder
    stack) with a tiny width and three steps: a smoke test of the path the GPU run takes, whose
    per-epoch checkpoints are removed once the seed is done."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(
        experiment,
        "full",
        feature_sets=("S",),
        horizons=(24,),
        encoder_stack=(2, 1),
        full_attention_baseline=False,
        device="cpu",
        **{**TINY, "eval_stride": 480},
    )
    result = experiment.run(cfg)
    assert result.details["cases"]["S_h24"]["seq_len"] == 720
    assert result.details["cases"]["S_h24"]["steps"] == 3
    assert {"S_h24_test_mse", "S_h24_over_persistence", "probsparse_cost_exponent"} <= set(result.metrics)
    assert cfg.checkpoint and not any((tmp_path / "_checkpoints" / "informer").iterdir())


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.d_model, full.n_heads, full.e_layers, full.d_layers, full.d_ff) == (512, 8, 2, 1, 2048)
    assert (full.factor, full.dropout, full.batch_size, full.learning_rate) == (5, 0.05, 32, 1e-4)
    assert (full.epochs, full.patience, full.lr_decay, full.embed) == (6, 3, 0.5, "timeF")
    assert full.horizons == (24, 48, 168, 336, 720) and full.feature_sets == ("M", "S")
    assert (full.train_stride, full.eval_stride, full.max_steps_per_epoch) == (1, 1, 0)
    assert experiment.PAPER_LENGTHS[("M", 720)] == (336, 336, 5)
    assert experiment.PAPER_LENGTHS[("S", 24)] == (720, 168, 5)
    quick = experiment.Config.quick()
    assert quick.feature_sets == ("M",) and quick.horizons == (24,) and quick.batch_size == 32
    paper = {c.metric: c.paper for c in experiment.CLAIMS}
    assert paper["M_h24_test_mse"] == 0.577 and paper["S_h720_test_mae"] == 0.435


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(feature_sets=()), "feature_sets and horizons must be non-empty"),
        (dict(feature_sets=("X",)), "feature_sets\\[i\\] must be one of"),
        (dict(d_model=30, n_heads=4), "d_model must be a multiple of n_heads=4"),
        (dict(dropout=1.0), "dropout must be a probability"),
        (dict(cost_lengths=(96,)), "cost_lengths must hold at least two lengths"),
        (dict(dataset="ETTm1"), "dataset must be one of"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)
