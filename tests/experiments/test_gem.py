"""GEM's headline experiment: the quick reproduction passes its claims; GEM that never projects fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("gem")

experiment = load_experiment("gem")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("gem", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claimed = [c for c in result.claims if c.threshold is not None]
    assert len(claimed) == 4
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.2f} < threshold {claim.threshold}"
    assert {"metrics", "first_task"} <= set(result.figures)


def test_ablation_without_projection_fails_the_claims():
    cfg = make_config(experiment, "quick", use_projection=False, seeds=1, eval_every=0)
    result = reproduce("gem", cfg)
    outcome = {c.metric: c for c in result.claims}
    assert outcome["gem_minus_finetune_bwt"].passed is False
    assert outcome["gem_minus_ewc_bwt"].passed is False
    assert outcome["gem_minus_ewc_acc"].passed is False


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", seeds=1, num_tasks=2, train_per_task=60, test_per_task=50)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    first.details.pop("seconds"), second.details.pop("seconds")  # wall-clock times differ
    assert first.details == second.details


def test_full_config_runs_a_few_steps_with_a_gem():
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        num_tasks=3,
        train_per_task=40,
        test_per_task=30,
        memory_size=8,
        eval_every=2,
    )
    assert cfg.agem
    result = experiment.run(cfg)
    assert {"gem_acc", "agem_acc", "ewc_bwt", "finetune_fwt"} <= set(result.metrics)
    assert result.details["gem"]["steps"] == 12


@pytest.mark.slow
def test_split_cifar10_stand_in_runs():
    cfg = make_config(
        experiment,
        "quick",
        stream="split_cifar10",
        seeds=1,
        train_per_task=20,
        test_per_task=10,
        memory_size=4,
        eval_every=0,
        ewc_fisher_samples=8,
    )
    result = experiment.run(cfg)
    assert len(result.details["tasks"]) == 5
    assert any("CIFAR-100 is not staged" in note for note in result.notes)


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.num_tasks, full.train_per_task, full.test_per_task, full.batch_size) == (
        20,
        1000,
        10_000,
        10,
    )
    assert (full.gem_lr, full.memory_size, full.margin, full.hidden) == (0.1, 256, 0.5, 100)
    assert full.stream == "permuted" and full.agem
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.num_tasks == 5 and quick.seeds == 2
    assert (quick.train_per_task, quick.batch_size, quick.memory_size, quick.margin) == (1000, 10, 256, 0.5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"memory_size": 0}, "memory_size must be >= 1"),
        ({"margin": -0.5}, "margin must be finite and >= 0"),
        ({"stream": "cifar100"}, "stream must be one of"),
        ({"num_tasks": 1}, "num_tasks must be >= 2"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", seeds=1, **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)


def test_a_task_id_not_in_the_stream_is_rejected():
    from aicanon.testbeds.task_streams import permuted_mnist

    stream = permuted_mnist(2, train_per_task=10, test_per_task=10)
    with pytest.raises(KeyError, match="task id 7 is not in the stream"):
        stream.task(7)
