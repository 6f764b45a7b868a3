"""Glow's Figure 3 experiment: the 1x1 convolution beats the permutations at quick scale; untrained, the
margin vanishes; the full config is the paper's and runs a few steps."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.data import DataUnavailable
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("glow")

experiment = load_experiment("glow")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("glow", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"conv_margin_over_permutations", "lu_logdet_error"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    # Figure 3's ordering on the means: 1x1 conv best, both permutations behind it.
    metrics = result.metrics
    assert metrics["conv_test_bpd"] < metrics["shuffle_test_bpd"]
    assert metrics["conv_test_bpd"] < metrics["reverse_test_bpd"]
    assert metrics["conv_test_bpd"] < 3.4  # well below the uniform model's log2(17) = 4.09
    assert {"training_curves", "samples"} <= set(result.figures)


def test_conv_frozen_at_the_reversal_fails_the_margin_claim():
    # The conv arm's code path computing the reverse permutation: no margin left over the reverse arm.
    cfg = make_config(
        experiment, "quick", seeds=1, permutations=("conv", "reverse"), conv_ablation="frozen_reverse"
    )
    result = reproduce("glow", cfg)
    margin = next(c for c in result.claims if c.metric == "conv_margin_over_permutations")
    assert margin.passed is False
    assert abs(margin.ours) < 0.01


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", seeds=1, train_steps=5, permutations=("conv", "shuffle"))
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_a_killed_run_resumes_each_arm_from_its_checkpoint(tmp_path, monkeypatch):
    """Killed in the second arm's fourth step (its last checkpoint: step 2), the rerun skips the
    finished first arm's training, retrains the second from step 2, and reports exactly the
    uninterrupted run's metrics and loss curves."""
    import torch

    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(experiment, "quick", seeds=1, train_steps=6, permutations=("conv", "shuffle"))
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=2)
    resumed, calls = interrupt_and_resume(
        monkeypatch, torch.optim.Adam, "step", lambda: experiment.run(cfg), kill_at=6 + 4
    )
    assert len(calls) == 4  # the shuffle arm's steps 3-6 only
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    assert not any((tmp_path / "_checkpoints" / "glow").iterdir())
    assert experiment.Config.full().checkpoint_every == 5000


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.dataset, full.levels, full.steps, full.hidden_channels) == ("cifar10", 3, 32, 512)
    assert (full.learning_rate, full.batch_size, full.seeds, full.coupling) == (1e-3, 64, 3, "affine")
    assert full.permutations == ("conv", "shuffle", "reverse") and full.lu
    quick = experiment.Config.quick()
    assert (quick.scale, quick.seeds, quick.dataset, quick.coupling) == ("quick", 3, "digits", "additive")
    assert quick.permutations == ("conv", "shuffle", "reverse")


def test_full_config_runs_a_few_steps_on_cifar10():
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        steps=1,
        hidden_channels=8,
        train_steps=2,
        batch_size=4,
        train_limit=2,
        test_limit=1,
        device="cpu",
    )
    try:
        result = experiment.run(cfg)
    except DataUnavailable as error:
        pytest.skip(f"CIFAR-10 JPEG copy not staged: {error}")
    assert set(result.metrics) >= {"conv_test_bpd", "shuffle_test_bpd", "reverse_test_bpd", "lu_logdet_error"}
    assert all(v == v for v in result.metrics.values())  # finite, not NaN
    assert any("LOSSY JPEG" in note for note in result.notes)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"dataset": "mnist"}, "dataset must be one of"),
        ({"coupling": "spline"}, "coupling must be one of"),
        ({"permutations": ("conv", "swap")}, r"permutations\[i\] must be one of"),
        ({"permutations": ()}, "permutations must name distinct arms"),
        ({"learning_rate": 0.0}, "learning_rate must be finite and > 0"),
        ({"conv_ablation": "identity"}, "conv_ablation must be one of"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", seeds=1, **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)
