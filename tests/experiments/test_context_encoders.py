"""Context encoders' experiment: the quick reproduction meets its claims; without the adversarial
term the sharpness claim fails, without inpainting training the feature claim fails (the probe on
the untrained encoder is the control); seeds repeat; configs follow the paper; bad configs fail."""

import dataclasses
import math

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("context-encoders")

experiment = load_experiment("context-encoders")

TINY = dict(
    steps=4,
    feature_steps=4,
    train_per_class=20,
    test_per_class=4,
    probe_labels_per_class=4,
    region_shapes=50,
    mask_bank=16,
    seeds=1,
)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("context-encoders", cfg)
    assert len(result.per_seed) == cfg.seeds == 2
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"sharpness_gain", "probe_gain"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} < threshold {claim.threshold}"
    # The direction of the sharpness measure: both fills are blurrier than the truth (ratio < 1),
    # the joint loss's less so.
    assert result.metrics["sharpness_l2"] < result.metrics["sharpness_joint"] < 1.0
    assert {"inpainting", "training_curves"} <= set(result.figures)


def test_l2_alone_fails_the_sharpness_claim():
    # Both arms trained with L2 alone from the same weights and batches: the same model, so the gain
    # is exactly 1 at any number of steps (100 here to keep the test short; the feature run is off).
    cfg = make_config(experiment, "quick", adversarial=False, seeds=1, steps=100, feature_steps=0)
    result = reproduce("context-encoders", cfg)
    sharpness = next(c for c in result.claims if c.metric == "sharpness_gain")
    assert sharpness.passed is False
    assert sharpness.ours == pytest.approx(1.0)


def test_untrained_encoder_fails_the_feature_claim():
    # The honest control: no inpainting training, so the "pre-trained" encoder is its random
    # initialisation and the probe gains nothing.
    cfg = make_config(experiment, "quick", pretrain=False, seeds=1)
    result = reproduce("context-encoders", cfg)
    outcomes = {c.metric: c for c in result.claims}
    assert outcomes["probe_gain"].passed is False and outcomes["probe_gain"].ours == 0.0
    assert outcomes["sharpness_gain"].passed is False
    assert result.metrics["probe_untrained"] > 15.0  # random conv features are far above chance (10 %)


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3, device="cpu"))
    second = experiment.run(dataclasses.replace(cfg, seed=3, device="cpu"))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_full_config_runs_a_few_steps():
    cfg = make_config(experiment, "full", **TINY)
    assert cfg.widths == (64, 128, 256) and cfg.steps == cfg.feature_steps == 4
    result = experiment.run(dataclasses.replace(cfg, device="cpu"))
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_random_block_feature_masks_run():
    cfg = make_config(experiment, "quick", feature_mask="random_block", **TINY)
    result = experiment.run(dataclasses.replace(cfg, device="cpu"))
    assert result.details["mask_coverage_drawn"] >= 0.25


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.lambda_rec, full.lambda_adv) == (0.999, 0.001)  # Eq. (3)
    assert full.overlap_weight == 10.0  # Section 5.1
    assert 0 < full.overlap < full.block_size // 4  # a thin ring (4 px of 64 in the authors' command)
    assert (full.batch_size, full.learning_rate, full.discriminator_learning_rate) == (64, 2e-3, 2e-4)
    assert full.block_size * 2 == full.image_size  # the central block is half the image's side
    assert full.feature_mask == "random_region" and full.mask_coverage == 0.25
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 2
    assert (quick.lambda_rec, quick.lambda_adv, quick.overlap_weight) == (0.999, 0.001, 10.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"overlap": 8}, "overlap must be < block_size / 2"),
        ({"feature_mask": "square"}, "feature_mask must be one of"),
        ({"lambda_adv": -1.0}, "lambda_adv must be"),
        ({"probe_labels_per_class": 600}, "probe_labels_per_class must be in"),
        ({"data": "imagenet"}, "data must be one of"),
    ],
)
def test_bad_config_is_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config(experiment, "quick", **overrides)
