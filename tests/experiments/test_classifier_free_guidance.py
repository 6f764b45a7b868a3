"""Classifier-free guidance's headline experiment: fidelity rises with w while recall falls, with a
trade-off comparable to classifier guidance's; w = 0 alone shows no trade-off."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("classifier-free-guidance")

experiment = load_experiment("classifier-free-guidance")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    # One cache per test session (shared with the classifier guidance tests: same models).
    folder = tmp_path_factory.getbasetemp() / "guided-digits-cache"
    folder.mkdir(exist_ok=True)
    return str(folder)


@pytest.fixture(scope="module")
def quick(cache):
    return reproduce("classifier-free-guidance", make_config(experiment, "quick", cache=cache, device="cpu"))


def test_quick_reproduction_meets_every_quick_claim(quick):
    claimed = [c for c in quick.claims if c.threshold is not None]
    assert len(claimed) == 4
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f}, threshold {claim.threshold}"
    m = quick.metrics
    assert m["fidelity_w4"] >= m["fidelity_w0"] and m["recall_w4"] < m["recall_w0"]
    recalls = [m[f"recall_w{w:g}"] for w in experiment.Config.quick().weights]
    assert recalls == sorted(recalls, reverse=True)  # diversity falls at every step of w
    assert {"guidance_tradeoff", "samples"} <= set(quick.figures)


def test_no_guidance_fails_the_tradeoff_claims(cache):
    cfg = make_config(
        experiment, "quick", cache=cache, device="cpu", weights=(0.0,), classifier_scales=(0.0,)
    )
    result = reproduce("classifier-free-guidance", cfg)
    by_metric = {c.metric: c for c in result.claims}
    assert by_metric["recall_drop"].passed is False
    assert result.metrics["fidelity_gain"] == 0.0
    assert result.metrics["fidelity_w0"] < 0.95  # the conditional model alone stays below the target


def test_batched_and_unbatched_guidance_agree(tmp_path):
    tiny = dict(
        cache=str(tmp_path), device="cpu", denoiser_steps=5, samples=20, sampling_steps=3,
        weights=(0.0, 2.0), compare_classifier_guidance=False,
    )  # fmt: skip
    batched = experiment.run(make_config(experiment, "quick", **tiny))
    unbatched = experiment.run(make_config(experiment, "quick", batched=False, **tiny))
    for key, value in batched.metrics.items():
        assert unbatched.metrics[key] == pytest.approx(value, abs=0.02), key


def test_same_seed_gives_the_same_metrics(tmp_path):
    tiny = dict(
        cache=str(tmp_path), device="cpu", denoiser_steps=5, classifier_steps=5, samples=20,
        sampling_steps=3, weights=(0.0, 1.0), classifier_scales=(0.0, 1.0),
    )  # fmt: skip
    cfg = make_config(experiment, "quick", **tiny)
    first = experiment.run(dataclasses.replace(cfg, seed=2))
    second = experiment.run(dataclasses.replace(cfg, seed=2))
    assert first.metrics.keys() == second.metrics.keys()
    for key, value in first.metrics.items():
        assert second.metrics[key] == value or (
            value != value and second.metrics[key] != second.metrics[key]
        ), key


def test_full_config_smoke_runs_with_tiny_overrides(tmp_path):
    cfg = make_config(
        experiment, "full", cache=str(tmp_path), device="cpu", denoiser_steps=2, classifier_steps=2,
        samples=20, sampling_steps=2, batch_size=8, classifier_batch_size=8, seeds=1,
        weights=(0.0, 0.3), classifier_scales=(0.0, 1.0),
    )  # fmt: skip
    result = experiment.run(cfg)
    assert "fidelity_at_max_weight" in result.metrics


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.weights == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 2.0, 3.0, 4.0)  # Table 1's w
    assert full.p_uncond in (0.1, 0.2) and full.sampling_steps == 256
    quick = experiment.Config.quick()
    assert quick.weights == (0.0, 0.5, 1.0, 2.0, 4.0) and quick.p_uncond == 0.2 and quick.batched


def test_bad_config_is_rejected():
    for overrides, match in [
        ({"weights": ()}, "weights must name at least one"),
        ({"weights": (0.0, float("inf"))}, "weights must be finite"),
        ({"weights": (1.0, 0.0)}, "weights must be increasing"),
        ({"matched_fidelity": 1.5}, "matched_fidelity must be in"),
        ({"sampling_steps": 2000}, "sampling_steps"),
    ]:
        with pytest.raises(ValueError, match=match):
            experiment.run(make_config(experiment, "quick", cache="", **overrides))
