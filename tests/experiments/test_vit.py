"""The quick reproduction of ViT's Figures 3-4 trend (ResNet vs ViT over data fractions), its broken
variants (an untrained ViT fails the accuracy claim; a ViT with the ResNet's advantage removed fails
the small-data claim), seeding, the shared fraction_curve protocol and bad configurations."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.core.experiment import load_experiment, make_config, reproduce
from aicanon.experiments import vit as experiment

pytestmark = pytest.mark.paper("vit")

SLUG = "vit"
CLAIMS = {c.metric: c for c in experiment.CLAIMS}


def _short(**overrides):
    fields = {
        "steps": 40,
        "warmup_steps": 5,
        "fractions": (0.01, 0.05),
        "test_examples": 300,
        "probe_examples": 200,
    }
    fields.update(overrides)
    return make_config(load_experiment(SLUG), "quick", **fields)


@pytest.mark.slow
def test_quick_reproduction_passes_every_quick_claim():
    result = reproduce(SLUG, make_config(load_experiment(SLUG), "quick"))
    for claim in experiment.CLAIMS:
        assert math.isfinite(result.metrics[claim.metric]), claim.metric
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"vit_accuracy", "resnet_minus_vit_smallest", "vit_catch_up"}
    failed = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failed, failed
    assert set(result.figures) == {"fraction_curve"}


def test_untrained_vit_fails_the_accuracy_claim():
    # One step at a tiny learning rate leaves the zero-initialised head near chance.
    result = reproduce(SLUG, _short(steps=1, warmup_steps=0, lr=1e-6))
    assert result.metrics["vit_accuracy"] < 0.3
    assert CLAIMS["vit_accuracy"].check(result.metrics["vit_accuracy"], "quick") is False


def test_trend_claims_fail_when_both_arms_are_the_same_architecture():
    # A ViT against a second ViT (same seed, same data): the gap and the catch-up are exactly zero,
    # so the claims measure a difference between architectures, and a null variant fails them.
    result = experiment.run_curves(_short(), {"vit": experiment.make_vit, "resnet": experiment.make_vit})
    for metric in ("resnet_minus_vit_smallest", "vit_catch_up"):
        assert result.metrics[metric] == 0.0
        assert CLAIMS[metric].check(result.metrics[metric], "quick") is False


def test_same_seed_gives_identical_metrics():
    cfg = _short(steps=10, warmup_steps=2)
    first = experiment.run(cfg).metrics
    second = experiment.run(cfg).metrics
    assert first == second


def test_fraction_curve_uses_balanced_subsets_and_fresh_models():
    cfg = _short(steps=3, warmup_steps=1)
    data = experiment.load_fraction_data("mnist", 28, 100)
    built = []

    def factory():
        model = experiment.make_resnet(cfg, data)
        built.append(model)
        return model

    curve = experiment.fraction_curve(factory, (0.001, 0.01), cfg, 0, data, "resnet")
    # round(fraction * class size) per class: about 6 and 60 of each of the 10 classes.
    assert curve["train_sizes"][0] == 60 and abs(curve["train_sizes"][1] - 600) <= 5
    assert len(built) == 2 and built[0] is not built[1]
    assert all(0 <= a <= 1 for a in curve["accuracy"])


def test_rejects_bad_configurations():
    cfg = _short()
    with pytest.raises(ValueError, match="fractions must be"):
        experiment.fraction_curve(lambda: torch.nn.Linear(1, 1), (0.0, 2.0), cfg, 0)
    with pytest.raises(TypeError, match="make_model must be a callable"):
        experiment.fraction_curve(None, (0.1,), cfg, 0)
    with pytest.raises(ValueError, match="img_size must be a multiple of patch_size"):
        experiment.run(_short(img_size=30))
    with pytest.raises(ValueError, match="at least two fractions"):
        experiment.run(_short(fractions=(0.1,)))
    with pytest.raises(ValueError, match="dataset must be"):
        experiment.load_fraction_data("imagenet", 28)
    with pytest.raises(TypeError, match="cfg must be a vit Config"):
        experiment.check(object())


def test_full_config_is_the_cifar_vit_ti_4_setting():
    full = experiment.Config.full()
    assert (full.dataset, full.img_size, full.patch_size, full.vit_embed_dim, full.vit_depth) == (
        "cifar10",
        32,
        4,
        192,
        12,
    )
    assert full.scale == "full" and full.seeds == 3
