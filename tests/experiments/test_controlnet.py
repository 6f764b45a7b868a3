"""ControlNet's headline experiment: after training, samples follow the edge map they are generated
from (edge IoU well above chance); the untrained ControlNet (zero convolutions: the base model) does
not; the curve over training starts exactly at the base model."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("controlnet")

experiment = load_experiment("controlnet")


@pytest.fixture(scope="module")
def quick():
    cfg = make_config(experiment, "quick")
    return cfg, reproduce("controlnet", cfg)


def test_quick_reproduction_meets_every_quick_claim(quick):
    cfg, result = quick
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} >= {"edge_iou"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} < threshold {claim.threshold}"
    metrics = result.metrics
    # The control is followed, the base model is at chance level.
    assert metrics["edge_iou"] > metrics["base_edge_iou"] + 0.2
    assert abs(metrics["base_edge_iou"] - metrics["chance_edge_iou"]) < 0.06
    assert metrics["base_label_agreement"] < 0.3
    assert {"agreement_over_training", "samples"} <= set(result.figures)


def test_the_curve_starts_exactly_at_the_base_model_and_rises(quick):
    """Zero convolutions: at step 0 the controlled model's samples are the base model's, bit for bit
    (the same noise gives the same IoU); training then lifts the agreement."""
    cfg, result = quick
    curve = result.details["curve"]
    assert curve["step"][0] == 0 and curve["step"][-1] == cfg.control_steps
    assert curve["edge_iou"][0] == result.per_seed[0]["base_edge_iou"]
    assert curve["edge_iou"][-1] > curve["edge_iou"][0] + 0.2


def test_the_untrained_controlnet_fails_the_claim():
    cfg = make_config(experiment, "quick", control_steps=0, seeds=1)
    result = reproduce("controlnet", cfg)
    claim = next(c for c in result.claims if c.metric == "edge_iou")
    assert claim.passed is False
    assert claim.ours == result.metrics["base_edge_iou"]
    assert claim.ours < 0.25


def test_same_seed_gives_the_same_metrics():
    # The base model is the quick one (cached by the fixture's run); a short ControlNet run.
    cfg = make_config(experiment, "quick", control_steps=3, eval_every=2, eval_conditions=8, sample_steps=3)
    first = experiment.run(dataclasses.replace(cfg, seed=5))
    second = experiment.run(dataclasses.replace(cfg, seed=5))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.control_lr, full.control_steps, full.zero_init) == (1e-5, 10_000, True)
    assert full.dataset == "mnist" and full.condition_scale == 2
    quick = experiment.Config.quick()
    assert quick.zero_init and quick.dataset == "digits8" and quick.condition_scale == 2


def test_full_config_runs_a_few_steps(tmp_path, monkeypatch):
    """The full configuration at its resolution (MNIST 28x28, edge maps 56x56, the full UNet) with
    tiny step counts; the base model's cache goes to a temporary folder, the digit judge is stubbed
    (an MNIST judge would take ~20 s to train here)."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))

    class Judge:
        def fidelity(self, images, labels):
            assert images.shape[1:] == (1, 28, 28)
            return {"accuracy": 0.0, "confidence": 0.0}

    monkeypatch.setattr(experiment, "digit_judge", lambda dataset: Judge())
    cfg = make_config(
        experiment,
        "full",
        train_images=64,
        base_steps=2,
        base_batch_size=4,
        control_steps=2,
        control_batch_size=4,
        eval_every=1,
        eval_conditions=4,
        sample_steps=2,
    )
    result = experiment.run(cfg)
    assert result.details["curve"]["step"] == [0, 1, 2]
    assert 0.0 <= result.metrics["edge_iou"] <= 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        ({"condition_scale": 3}, "condition_scale must be a power of 2"),
        ({"dataset": "cifar10"}, "dataset must be one of"),
        ({"control_lr": float("nan")}, "control_lr must be"),
        ({"eval_conditions": 1}, "eval_conditions must be"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)
