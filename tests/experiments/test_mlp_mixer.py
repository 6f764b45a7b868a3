"""The quick reproduction of MLP-Mixer's data-scaling trend (Mixer gains more from data than the
ResNet, on one plot with ViT), its broken variants, seeding and bad configurations."""

from __future__ import annotations

import dataclasses
import math

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core import torch_threads
from aicanon.core.experiment import make_config
from aicanon.experiments import mlp_mixer as experiment
from aicanon.experiments import vit as vit_experiment
from aicanon.testbeds import data_fraction

pytestmark = pytest.mark.paper("mlp-mixer")

SLUG = "mlp-mixer"
CLAIMS = {c.metric: c for c in experiment.CLAIMS}


def _short(**overrides):
    fields = {
        "steps": 30,
        "warmup_steps": 5,
        "fractions": (0.01, 0.05),
        "test_examples": 300,
        "probe_examples": 200,
    }
    fields.update(overrides)
    return make_config(load_experiment(SLUG), "quick", **fields)


def test_quick_reproduction_passes_every_quick_claim():
    # One torch thread, as each CI worker runs it (~35 s on an idle core).
    with torch_threads(1):
        result = reproduce(SLUG, make_config(load_experiment(SLUG), "quick"))
    for claim in experiment.CLAIMS:
        assert math.isfinite(result.metrics[claim.metric]), claim.metric
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"mixer_gain_minus_resnet_gain", "mixer_accuracy"}
    failed = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failed, failed
    assert {"mixer_accuracy", "vit_accuracy", "resnet_accuracy"} <= set(result.metrics)
    assert set(result.figures) == {"fraction_curve"}


def test_untrained_mixer_fails_the_claims():
    result = reproduce(SLUG, _short(steps=1, warmup_steps=0, lr=1e-6))
    assert CLAIMS["mixer_accuracy"].check(result.metrics["mixer_accuracy"], "quick") is False
    assert result.metrics["mixer_accuracy"] < 0.3


def test_mixer_against_itself_fails_the_gain_claim():
    cfg = _short()
    result, _ = data_fraction.run_curves(
        cfg, {"mixer": experiment.make_mixer, "resnet": experiment.make_mixer}, seed_value=cfg.seed
    )
    gain = result.metrics["mixer_gain"] - result.metrics["resnet_gain"]
    assert gain == 0.0
    assert CLAIMS["mixer_gain_minus_resnet_gain"].check(gain, "quick") is False


def test_same_seed_gives_identical_metrics():
    cfg = _short(steps=5, warmup_steps=1)
    assert experiment.run(cfg).metrics == experiment.run(cfg).metrics


def test_configs_and_bad_input():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert quick.fractions == (0.01, 1.0) and quick.scale == "quick"
    # The ViT experiment's quick protocol (every field of the shared data-fraction protocol) at a
    # budget of 250 steps per arm, without the ViT experiment's separate headline ViT.
    vit_quick = vit_experiment.Config.quick()
    protocol = {f.name for f in dataclasses.fields(data_fraction.FractionProtocol)}
    differing = {name for name in protocol if getattr(quick, name) != getattr(vit_quick, name)}
    assert differing == {"steps"} and quick.steps == 250
    assert not hasattr(quick, "headline_steps")
    assert full.scale == "full" and full.dataset == "cifar10" and full.mixer_hidden_dim == 512
    with pytest.raises(TypeError, match="cfg must be an mlp_mixer Config"):
        experiment.run(vit_experiment.Config.quick())
