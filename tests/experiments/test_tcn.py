"""TCN's experiment: the quick reproduction passes its claims; without dilation, or untrained, it fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("tcn")

experiment = load_experiment("tcn")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("tcn", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert len(claimed) == 5, "the quick scale claims the adding problem and copy memory"
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    assert "training_curves" in result.figures
    details = result.details
    # Same size (within 10 %) and the TCN sees the whole sequence.
    sizes = details["copy_memory"]["parameters"]
    assert abs(sizes["lstm"] - sizes["tcn"]) < 0.1 * sizes["tcn"]
    assert abs(sizes["gru"] - sizes["tcn"]) < 0.1 * sizes["tcn"]
    for key in ("adding", "copy_memory"):
        assert details[key]["tcn_receptive_field"] >= details[key]["length"]


def test_ablation_without_dilation_fails_the_quick_claims():
    cfg = make_config(experiment, "quick", ablation="no_dilation", models=("tcn",))
    result = reproduce("tcn", cfg)
    by_metric = {c.metric: c for c in result.claims}
    assert result.details["adding"]["tcn_receptive_field"] < cfg.adding_length
    assert by_metric["adding_tcn_mse"].passed is False
    assert by_metric["copy_tcn_loss"].passed is False
    assert by_metric["copy_tcn_recall_accuracy"].passed is False


def test_untrained_models_fail_the_quick_claims():
    cfg = make_config(experiment, "quick", ablation="untrained")
    result = reproduce("tcn", cfg)
    assert all(c.passed is False for c in result.claims if c.threshold is not None)
    assert result.metrics["adding_tcn_mse"] > 0.5  # an untrained net outputs ~0: MSE E[target^2] ~ 1.17


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", adding_steps=5, copy_steps=5, eval_batches=1, eval_batch_size=16)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_full_config_smoke_runs_every_arm_for_a_few_steps():
    # The full arms (MNIST over 784 steps, Tiny Shakespeare) with tiny sizes and two steps each.
    cfg = make_config(
        experiment,
        "full",
        adding_length=30,
        adding_channels=4,
        adding_levels=2,
        adding_steps=2,
        copy_blank=10,
        copy_channels=4,
        copy_levels=2,
        copy_steps=2,
        mnist_channels=4,
        mnist_levels=2,
        mnist_steps=2,
        mnist_batch_size=4,
        mnist_train_limit=64,
        mnist_test_limit=16,
        char_channels=8,
        char_levels=2,
        char_embedding_size=8,
        char_seq_len=40,
        char_scored_len=30,
        char_steps=2,
        char_batch_size=4,
        char_eval_batches=1,
        eval_batches=1,
        eval_batch_size=8,
    )
    result = experiment.run(cfg)
    for metric in (
        "adding_tcn_mse",
        "copy_gru_over_tcn_loss",
        "sequential_mnist_tcn_minus_best_recurrent",
        "permuted_mnist_lstm_accuracy",
        "char_lm_lstm_minus_tcn_bpc",
    ):
        assert metric in result.metrics
    assert 0.0 <= result.metrics["sequential_mnist_tcn_accuracy"] <= 100.0
    assert result.metrics["char_lm_tcn_bpc"] > 0


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert set(full.tasks) == {"adding", "copy_memory", "sequential_mnist", "permuted_mnist", "char_lm"}
    # Figure 2(b): 8 x 24, k = 8 at T = 600; Figure 4(b): 8 x 10, k = 8 at T = 1000; Figure 3: 8 x 25, k = 7.
    assert (full.adding_length, full.adding_levels, full.adding_channels, full.adding_kernel_size) == (
        600,
        8,
        24,
        8,
    )
    assert (full.copy_blank, full.copy_levels, full.copy_channels, full.copy_kernel_size) == (1000, 8, 10, 8)
    assert (full.mnist_levels, full.mnist_channels, full.mnist_kernel_size, full.mnist_batch_size) == (
        8,
        25,
        7,
        64,
    )
    assert full.mnist_steps == 10 * -(-60_000 // 64)  # 10 epochs of 938 batches
    assert (full.char_levels, full.char_channels, full.char_kernel_size, full.char_embedding_size) == (
        3,
        450,
        3,
        100,
    )
    assert (full.char_seq_len, full.char_scored_len, full.char_dropout, full.char_grad_clip) == (
        400,
        320,
        0.1,
        0.15,
    )
    assert full.adding_lr == full.copy_lr == full.mnist_lr == 0.002  # Section 5: Adam, lr 0.002
    assert set(full.baseline_tasks) == set(full.tasks)  # every arm compares against LSTM and GRU
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and set(quick.tasks) == {"adding", "copy_memory"}
    assert 100 <= quick.adding_length <= 200 and 50 <= quick.copy_blank <= 100


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"tasks": ()}, "tasks must name at least one arm"),
        ({"tasks": ("adding", "music")}, "tasks must be one of"),
        ({"models": ("lstm", "gru")}, "models must include 'tcn'"),
        ({"models": ("tcn", "rnn")}, "models must be one of"),
        ({"ablation": "no_residual"}, "ablation must be one of"),
        ({"baseline_tasks": ("music",)}, "baseline_tasks must be one of"),
        ({"adding_steps": 0}, "adding_steps must be >= 1"),
        ({"copy_lr": 0.0}, "copy_lr must be > 0"),
        ({"copy_dropout": 1.0}, "copy_dropout must be a probability"),
        ({"char_scored_len": 500}, "char_scored_len must be in"),
    ],
)
def test_bad_config_is_rejected(overrides, match):
    cfg = make_config(experiment, "quick", **overrides)
    with pytest.raises(ValueError, match=match):
        experiment.run(cfg)
