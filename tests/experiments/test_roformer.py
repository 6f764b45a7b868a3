"""The RoFormer experiment (Figure 3): quick reproduction, a broken variant that must fail, determinism."""

from __future__ import annotations

import pytest
import torch

import aicanon.experiments.roformer as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("roformer")

CLAIMS = {claim.metric: claim for claim in experiment.CLAIMS}


@pytest.fixture(scope="module")
def quick_reproduction():
    return reproduce("roformer", make_config(experiment, "quick"))


def test_quick_reproduction_passes_every_quick_claim(quick_reproduction):
    claimed = [c for c in quick_reproduction.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"val_loss_gap"}
    failures = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failures, failures
    # RoPE wins in every seed, not only on average; and both arms really trained
    assert len(quick_reproduction.per_seed) == 3
    for metrics in quick_reproduction.per_seed:
        assert metrics["val_loss_rope"] < metrics["val_loss_learned"]
        assert metrics["val_loss_rope"] < metrics["untrained_val_loss"] - 1.0
    assert set(quick_reproduction.figures) == {"loss_curves"}
    details = quick_reproduction.details
    # equal sizes but for the learned arm's position table (seq_len x hidden)
    cfg = experiment.Config.quick()
    assert (
        details["parameters"]["baseline"] - details["parameters"]["challenger"]
        == cfg.seq_len * cfg.hidden_size
    )
    assert [step for step, _ in details["validation_curves"]["rope"]] == [50, 100, 150]


def test_broken_variant_without_positions_fails_the_claim():
    """No position encoding in the challenger: at this scale it ends level with learned positions."""
    broken = reproduce("roformer", make_config(experiment, "quick", challenger="none", seeds=1))
    gap = broken.metrics["val_loss_gap"]
    assert CLAIMS["val_loss_gap"].check(gap, "quick") is False, gap
    assert not broken.passed


def test_same_seed_gives_identical_metrics():
    threads = torch.get_num_threads()
    short = {"steps": 12, "warmup_steps": 2, "eval_every": 6, "eval_batches": 2, "seeds": 1, "seed": 5}
    first = reproduce("roformer", make_config(experiment, "quick", **short))
    second = reproduce("roformer", make_config(experiment, "quick", **short))
    assert first.per_seed == second.per_seed
    other = reproduce("roformer", make_config(experiment, "quick", **{**short, "seed": 6}))
    assert other.per_seed != first.per_seed
    assert torch.get_num_threads() == threads  # reproduce restores the thread count it changed


def test_configs():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert (quick.scale, quick.seeds, full.scale, full.seeds) == ("quick", 3, "full", 3)
    assert (quick.threads, full.threads) == (1, 0)
    assert full.hidden_size > quick.hidden_size and full.steps > quick.steps
    assert experiment.moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_config_rejects_unknown_position():
    with pytest.raises(
        ValueError, match=r"challenger must be one of \('rope', 'learned', 'none'\), got 'alibi'"
    ):
        experiment.Config(challenger="alibi")
    with pytest.raises(ValueError, match="baseline must be one of"):
        experiment.Config(baseline="sinusoidal")
    with pytest.raises(ValueError, match="threads must be >= 0, got -1"):
        make_config(experiment, "quick", threads=-1)
    with pytest.raises(ValueError, match="has no field 'position'"):
        make_config(experiment, "quick", position="rope")
