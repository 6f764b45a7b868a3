"""Classifier guidance's headline experiment: fidelity rises with the scale while recall falls; an
untrained classifier or s = 0 gives no gain."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("adm-guided-diffusion")

experiment = load_experiment("adm-guided-diffusion")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    # One cache per test session (shared with the classifier-free guidance tests: same models).
    folder = tmp_path_factory.getbasetemp() / "guided-digits-cache"
    folder.mkdir(exist_ok=True)
    return str(folder)


@pytest.fixture(scope="module")
def quick(cache):
    return reproduce("adm-guided-diffusion", make_config(experiment, "quick", cache=cache, device="cpu"))


def test_quick_reproduction_meets_every_quick_claim(quick):
    claimed = [c for c in quick.claims if c.threshold is not None]
    assert len(claimed) == 4
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f}, threshold {claim.threshold}"
    m = quick.metrics
    # the trade-off in both directions, and the unconditional model at chance without guidance
    assert m["fidelity_s4"] >= m["fidelity_s0"] and m["recall_s4"] < m["recall_s0"]
    assert m["unconditional_fidelity"] < 0.3
    assert {"guidance_tradeoff", "samples"} <= set(quick.figures)


def test_untrained_classifier_gives_no_fidelity_gain(cache):
    cfg = make_config(experiment, "quick", cache=cache, device="cpu", classifier_steps=0, scales=(0.0, 4.0))
    result = reproduce("adm-guided-diffusion", cfg)
    by_metric = {c.metric: c for c in result.claims}
    assert by_metric["unconditional_guided_fidelity"].passed is False
    assert result.metrics["unconditional_guided_fidelity"] < 0.5
    assert result.metrics["fidelity_gain"] < 0.05


def test_scale_zero_leaves_the_unconditional_model_at_chance(cache):
    cfg = make_config(experiment, "quick", cache=cache, device="cpu", scales=(0.0,), unconditional_scale=0.0)
    result = reproduce("adm-guided-diffusion", cfg)
    by_metric = {c.metric: c for c in result.claims}
    assert by_metric["unconditional_guided_fidelity"].passed is False
    assert by_metric["recall_drop"].passed is False
    assert result.metrics["unconditional_guided_fidelity"] < 0.3


def test_same_seed_gives_the_same_metrics(tmp_path):
    tiny = dict(
        cache=str(tmp_path), device="cpu", denoiser_steps=5, classifier_steps=5, samples=20,
        sampling_steps=3, scales=(0.0, 1.0), method="ddim",
    )  # fmt: skip
    cfg = make_config(experiment, "quick", **tiny)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))  # the second loads the cached models
    assert first.metrics == second.metrics


def test_full_config_smoke_runs_with_tiny_overrides(tmp_path):
    full = experiment.Config.full()
    cfg = make_config(
        experiment, "full", cache=str(tmp_path), device="cpu", denoiser_steps=2, classifier_steps=2,
        samples=20, sampling_steps=2, batch_size=8, classifier_batch_size=8, seeds=1,
    )  # fmt: skip
    assert cfg.widths == full.widths and cfg.layers_per_block == 2 and cfg.attention_head_dim == 64
    result = experiment.run(cfg)
    assert "fidelity_at_max_scale" in result.metrics


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (
        full.attention_head_dim == 64 and full.layers_per_block == 2
    )  # Section 3: 64 channels/head, 2 blocks
    assert full.unconditional_scale == 10.0 and 1.0 in full.scales and 10.0 in full.scales  # Table 4
    assert full.sampling_steps == 250 and full.timesteps == 1000
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.method == "ancestral" and quick.scales[0] == 0.0


def test_bad_config_is_rejected():
    for overrides, match in [
        ({"scales": ()}, "scales must name at least one"),
        ({"scales": (2.0, 1.0)}, "scales must be increasing"),
        ({"unconditional_scale": float("nan")}, "scales must be finite"),
        ({"method": "euler"}, "method must be one of"),
        ({"samples": 5}, "samples must be >= 10"),
    ]:
        with pytest.raises(ValueError, match=match):
            experiment.run(make_config(experiment, "quick", cache="", **overrides))
