"""ShapeNet's pipeline experiment: the quick reproduction classifies held-out models read from
ShapeNetCore's layout; trained on shuffled labels (or untrained) it fails; seeds repeat."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("shapenet")

experiment = load_experiment("shapenet")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("shapenet", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"test_accuracy", "shuffled_label_test_accuracy"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} vs threshold {claim.threshold}"
    assert result.metrics["untrained_test_accuracy"] < 0.4  # the claim is not met before training
    assert result.metrics["models_read"] == 6 * (30 + 15) and result.metrics["categories_read"] == 6
    assert {"confusion", "training_curves", "point_clouds"} <= set(result.figures)


def test_shuffled_labels_fail_the_accuracy_claim():
    cfg = make_config(experiment, "quick", seeds=1, shuffle_labels=True, label_control=False)
    result = reproduce("shapenet", cfg)
    accuracy = next(c for c in result.claims if c.metric == "test_accuracy")
    assert accuracy.passed is False and accuracy.ours < 0.4


def test_untrained_network_fails_the_accuracy_claim():
    cfg = make_config(
        experiment,
        "quick",
        seeds=1,
        epochs=0,
        label_control=False,
        train_per_category=4,
        test_per_category=10,
    )
    result = reproduce("shapenet", cfg)
    assert next(c for c in result.claims if c.metric == "test_accuracy").passed is False


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(
        experiment, "quick", seeds=1, epochs=2, train_per_category=3, test_per_category=2, num_points=32
    )
    first = experiment.run(dataclasses.replace(cfg, seed=4))
    second = experiment.run(dataclasses.replace(cfg, seed=4))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_full_config_runs_a_few_steps():
    # the full network (both T-nets, 1024 channels) on a tiny set: a smoke test of the --full path
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        epochs=1,
        train_per_category=2,
        test_per_category=1,
        num_points=64,
        categories=("can", "chair"),
        label_control=False,
        device="cpu",
    )
    result = experiment.run(cfg)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.num_points, full.widths, full.head, full.batch_size, full.dropout) == (
        1024,
        (64, 64, 64, 128, 1024),
        (512, 256),
        32,
        0.3,
    )
    assert full.input_transform and full.feature_transform and full.regularizer_weight == 0.001
    assert full.learning_rate == 0.001 and full.pooling == "max"
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 2 and len(quick.categories) == 6


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"categories": ("can",)}, ValueError, "at least 2 categories"),
        ({"categories": ("can", "sofa")}, ValueError, "categories must be among"),
        ({"pooling": "sum"}, ValueError, "pooling must be one of"),
        ({"num_points": 0}, ValueError, "num_points must be >= 1"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction must be in"),
    ],
)
def test_bad_config_is_rejected(overrides, error, message):
    with pytest.raises(error, match=message):
        make_config(experiment, "quick", **overrides)


def test_missing_data_root_names_the_folder(tmp_path):
    cfg = make_config(experiment, "quick", seeds=1, data_root=str(tmp_path / "ShapeNetCore.v2"))
    with pytest.raises(FileNotFoundError, match="ShapeNetCore.v2"):
        experiment.run(cfg)
