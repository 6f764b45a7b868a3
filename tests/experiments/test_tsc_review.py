"""The TSC review's comparison: the quick reproduction ranks the MLP behind FCN and ResNet; with the
convolutional networks untrained (the ablation) it does not."""

import dataclasses

import numpy as np
import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("tsc-review")

experiment = load_experiment("tsc-review")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("tsc-review", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed, "the quick scale must claim something"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} < threshold {claim.threshold}"
    assert "critical_difference" in result.figures
    assert set(result.details["accuracy"]) == set(cfg.datasets)


def test_ablation_untrained_convolutional_networks_fail_the_rank_claim():
    cfg = make_config(experiment, "quick", untrained_networks=("fcn", "resnet"))
    result = reproduce("tsc-review", cfg)
    gap = next(c for c in result.claims if c.metric == "mlp_rank_gap")
    assert gap.passed is False
    assert gap.ours < 0  # the trained MLP now ranks first


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(
        experiment, "quick", datasets=("ItalyPowerDemand", "GunPoint"), epoch_fraction=0.001, max_length=16
    )
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details["accuracy"] == second.details["accuracy"]


def test_a_killed_seed_reruns_only_its_unfinished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # finished runs are kept under it
    cfg = make_config(
        experiment, "quick", datasets=("ItalyPowerDemand", "GunPoint"), epoch_fraction=0.001, max_length=16
    )
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint=True)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment,
        "train_classifier",
        lambda: experiment.run(cfg),
        kill_at=4,  # the first network on the second problem
    )
    assert len(calls) == 3  # GunPoint's three networks; ItalyPowerDemand's came from the folder
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    assert not any((tmp_path / "_checkpoints" / "tsc-review").iterdir())


def test_full_config_smoke_runs_for_one_epoch(tmp_path, monkeypatch):
    """The full configuration, cut to one epoch on the smallest problem, runs end to end."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # full runs keep finished runs there
    cfg = make_config(experiment, "full", datasets=("ItalyPowerDemand",), epoch_fraction=1e-4, seeds=1)
    result = experiment.run(cfg)
    assert set(result.details["epochs"].values()) == {1}
    for network in ("mlp", "fcn", "resnet"):
        assert 0.0 <= result.metrics[f"ItalyPowerDemand_{network}_accuracy"] <= 100.0
    assert result.metrics["mlp_average_rank"] + result.metrics["fcn_average_rank"] + result.metrics[
        "resnet_average_rank"
    ] == pytest.approx(6.0)


def test_shorten_averages_windows_without_dropping_points():
    from aicanon.experiments.tsc_review import shorten

    x = np.arange(10, dtype=np.float32).reshape(1, 1, 10)
    np.testing.assert_allclose(shorten(x, 5), [[[0.5, 2.5, 4.5, 6.5, 8.5]]])
    assert shorten(x, 4).shape == (1, 1, 4)  # windows of 3, 3, 2, 2
    assert shorten(x, None) is x and shorten(x, 10) is x


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.seeds == 10 and full.epoch_fraction == 1.0 and full.max_length is None
    assert full.batchnorm_momentum == 0.01 and full.alpha == 0.05 and full.normalize
    assert set(full.datasets) == {
        "ACSF1",
        "ArrowHead",
        "BasicMotions",
        "GunPoint",
        "ItalyPowerDemand",
        "JapaneseVowels",
        "OSULeaf",
        "PickupGestureWiimoteZ",
    }
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 1 and quick.max_length == 48
    # The quick problems are those where the review shows a clear MLP gap (module docstring).
    assert set(quick.datasets) == {"GunPoint", "OSULeaf", "ACSF1"}


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="datasets must name at least one"):
        experiment.run(make_config(experiment, "quick", datasets=()))
    with pytest.raises(ValueError, match="networks must be 3 distinct"):
        experiment.run(make_config(experiment, "quick", networks=("mlp", "fcn")))
    with pytest.raises(ValueError, match="networks must be one of"):
        experiment.run(make_config(experiment, "quick", networks=("mlp", "fcn", "lstm")))
    with pytest.raises(ValueError, match="epoch_fraction"):
        experiment.run(make_config(experiment, "quick", epoch_fraction=0.0))
    with pytest.raises(ValueError, match="untrained_networks must be one of"):
        experiment.run(make_config(experiment, "quick", untrained_networks=("lstm",)))
    with pytest.raises(ValueError, match="max_length"):
        experiment.run(make_config(experiment, "quick", max_length=2))
