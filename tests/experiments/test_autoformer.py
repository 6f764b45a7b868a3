"""Autoformer's experiment: the quick reproduction beats Informer on ETTh1; without decomposition it fails."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("autoformer")

experiment = load_experiment("autoformer")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("autoformer", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"autoformer_mse_96", "mse_ratio_96"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} > threshold {claim.threshold}"
    # Autoformer below Informer for every seed, not only on average.
    assert all(seed["autoformer_mse_96"] < seed["informer_mse_96"] for seed in result.per_seed)
    assert {"training_curves", "forecast"} <= set(result.figures)


def test_ablation_without_decomposition_fails_the_mse_claim():
    cfg = make_config(experiment, "quick", decomposition=False, informer=False, seeds=1)
    result = reproduce("autoformer", cfg)
    mse = next(c for c in result.claims if c.metric == "autoformer_mse_96")
    assert mse.passed is False and mse.ours > 0.7  # about 0.80-0.94 over seeds 0-2
    ratio = next(c for c in result.claims if c.metric == "mse_ratio_96")
    assert ratio.passed is False  # no Informer run: the claimed ratio is missing, so it fails


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", seeds=1, max_steps_per_epoch=3, epochs=1, eval_stride=64)
    first = experiment.run(dataclasses.replace(cfg, seed=4))
    second = experiment.run(dataclasses.replace(cfg, seed=4))
    assert first.metrics == second.metrics


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.d_model, full.n_heads, full.e_layers, full.d_layers, full.d_ff) == (512, 8, 2, 1, 2048)
    assert (full.moving_avg, full.factor, full.dropout, full.activation) == (25, 1.0, 0.05, "gelu")
    assert (full.seq_len, full.label_len, full.horizons) == (96, 48, (96, 192, 336, 720))
    assert (full.learning_rate, full.batch_size, full.epochs, full.patience) == (1e-4, 32, 10, 3)
    assert (full.dataset, full.features, full.embed, full.train_stride, full.eval_stride) == (
        "ETTh1",
        "M",
        "timeF",
        1,
        1,
    )
    assert full.max_steps_per_epoch == 0 and full.decomposition and full.mechanism == "auto-correlation"
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 3 and quick.pred_len == 96 and quick.informer


def test_a_killed_run_resumes_every_training_from_its_epoch_checkpoints(tmp_path, monkeypatch):
    """Killed at the end of the Informer baseline's second epoch (before it is saved), the rerun
    skips the finished Autoformer training, redoes the Informer's epochs 2-3 from the checkpoint of
    epoch 1 (with the shuffling generator the two trainings share), and reports the uninterrupted
    metrics and curves."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(
        experiment, "quick", seeds=1, max_steps_per_epoch=3, epochs=3, patience=3, eval_stride=64
    )
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint=True)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        LoopCheckpoints,
        "done",
        lambda: experiment.run(cfg),
        kill_at=5,
        record=lambda self, step, total: step,
    )
    assert calls == [2, 3]
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details  # the per-epoch curves too
    assert not any((tmp_path / "_checkpoints" / "autoformer").iterdir())
    assert experiment.Config.full().checkpoint


def test_full_config_runs_a_few_steps(tmp_path, monkeypatch):
    # The paper's configuration with tiny overrides (width, steps, windows): every horizon's models build
    # and train through the same code path as --full.
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # full runs checkpoint there
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        d_model=8,
        n_heads=8,
        d_ff=16,
        epochs=1,
        max_steps_per_epoch=1,
        eval_stride=512,
        horizons=(96, 720),
    )
    result = experiment.run(cfg)
    assert {"autoformer_mse_96", "autoformer_mse_720", "informer_mse_720", "mse_ratio_720"} <= set(
        result.metrics
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ({"moving_avg": 24}, "moving_avg must be odd"),
        ({"mechanism": "prob"}, "mechanism must be one of"),
        ({"aggregation": "mean"}, "aggregation must be one of"),
        ({"d_model": 30, "n_heads": 4}, "d_model must be divisible by n_heads"),
        ({"dataset": "ETTm1"}, "dataset must be one of"),
        ({"factor": 0.0}, "factor must be"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", seeds=1, **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)
