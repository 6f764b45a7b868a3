"""The SHAP experiment: quick reproduction, broken variants that must fail, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import aicanon.experiments.shap as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config
from aicanon.explain.shap import DeepExplainer

pytestmark = pytest.mark.paper("shap")

CLAIMS = {claim.metric: claim for claim in experiment.CLAIMS}


def short(**overrides) -> experiment.Config:
    """A seconds-long config: the same code path, fewer budgets, replicates, images and samples."""
    base = {
        "seeds": 1,
        "budgets": (40, 160),
        "replicates": 2,
        "instances": 2,
        "images": 8,
        "lime_samples": 300,
        "cnn_epochs": 6,
        "random_orders": 3,
    }
    base.update(overrides)
    return make_config(experiment, "quick", **base)


@pytest.fixture(scope="module")
def quick_reproduction():
    return reproduce("shap", make_config(experiment, "quick"))


def test_quick_reproduction_passes_every_quick_claim(quick_reproduction):
    claimed = [c for c in quick_reproduction.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {
        "worst_error_ratio_kernel_over_sampling",
        "deep_shap_minus_random",
        "deep_shap_minus_lime",
    }
    failures = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failures, failures
    assert set(quick_reproduction.figures) == {"estimator_convergence", "digit_masking"}
    metrics = quick_reproduction.metrics
    for budget in experiment.Config.quick().budgets:  # Kernel SHAP below sampling at every budget
        assert metrics[f"mae_kernel_at_{budget}"] < metrics[f"mae_sampling_at_{budget}"]
    assert metrics["tabular_test_accuracy"] > 0.9 and metrics["digits_test_accuracy"] > 0.9


def test_ablation_uniform_kernel_fails_the_estimator_claim(quick_reproduction):
    """Uniform coalition weights (Theorem 2's kernel removed), measured in the same run, miss the claim."""
    value = quick_reproduction.metrics["worst_error_ratio_uniform_kernel_over_sampling"]
    assert CLAIMS["worst_error_ratio_kernel_over_sampling"].check(value, "quick") is False


class _ShuffledDeepExplainer(DeepExplainer):
    """Broken variant: Deep SHAP's attributions permuted over the pixels (no information left)."""

    def __call__(self, x, target=None):
        explanation = super().__call__(x, target)
        rng = np.random.default_rng(0)
        flat = explanation.values.reshape(len(explanation.values), -1)
        explanation.values = np.stack([rng.permutation(row) for row in flat]).reshape(
            explanation.values.shape
        )
        return explanation


def test_broken_deep_shap_fails_the_masking_claims(monkeypatch):
    monkeypatch.setattr(experiment, "DeepExplainer", _ShuffledDeepExplainer)
    metrics = experiment.run(short()).metrics
    assert CLAIMS["deep_shap_minus_random"].check(metrics["deep_shap_minus_random"], "quick") is False
    assert CLAIMS["deep_shap_minus_lime"].check(metrics["deep_shap_minus_lime"], "quick") is False


def test_broken_kernel_fails_the_estimator_claim(monkeypatch):
    """Kernel SHAP replaced by its uniform-weight ablation: at 900 coalitions its bias leaves it above half of
    sampling's error (0.63-0.72 on seeds 0-2), so the claim fails."""
    monkeypatch.setattr(experiment, "KernelExplainer", experiment.UniformKernelExplainer)
    metrics = experiment.run(short(budgets=(900,), instances=4, replicates=3, images=2)).metrics
    value = metrics["worst_error_ratio_kernel_over_sampling"]
    assert CLAIMS["worst_error_ratio_kernel_over_sampling"].check(value, "quick") is False


def test_same_seed_gives_the_same_metrics():
    first = experiment.run(short()).metrics
    second = experiment.run(short()).metrics
    assert first == second
    assert experiment.run(short(seed=1)).metrics != first


def test_config_rejects_unknown_fields_and_background_kinds():
    with pytest.raises(ValueError, match="has no field 'budget'"):
        make_config(experiment, "quick", budget=(40,))
    with pytest.raises(ValueError, match="deep_background_kind must be 'black' or 'data', got 'white'"):
        experiment.run(short(deep_background_kind="white"))
