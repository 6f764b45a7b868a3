"""The influence-functions experiment: quick reproduction, ablations that must fail, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aicanon.experiments.influence_functions as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config
from aicanon.explain.influence import InfluenceFunction

pytestmark = pytest.mark.paper("influence-functions")

CLAIMS = {claim.metric: claim for claim in experiment.CLAIMS}


def short(**overrides) -> experiment.Config:
    """A seconds-long config: the same code path, fewer retrainings and LiSSA steps."""
    base = {"seeds": 1, "top_k": 30, "lissa_depth": 100}
    base.update(overrides)
    return make_config(experiment, "quick", **base)


@pytest.fixture(scope="module")
def quick_reproduction():
    return reproduce("influence-functions", make_config(experiment, "quick"))


def test_quick_reproduction_passes_every_quick_claim(quick_reproduction):
    claimed = [c for c in quick_reproduction.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {
        "loo_pearson_exact",
        "loo_pearson_cg",
        "flip_margin_influence_vs_random_at_10",
    }
    failures = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failures, failures
    assert set(quick_reproduction.figures) == {"loo_scatter", "mislabel_recovery"}
    assert len(quick_reproduction.details["leave_one_out"]["test_points"][0]["actual"]) == 100


def test_ablation_identity_hessian_fails_the_correlation_claim(quick_reproduction):
    """Gradient dot products (H replaced by I), measured in the same run, miss the R >= 0.95 claim."""
    value = quick_reproduction.metrics["loo_pearson_identity_hessian"]
    assert CLAIMS["loo_pearson_exact"].check(value, "quick") is False
    assert CLAIMS["loo_pearson_cg"].check(value, "quick") is False


class _IdentityHessian(InfluenceFunction):
    """Broken variant: every solver returns v for H⁻¹v."""

    def inverse_hvp(self, v):
        return v


class _ShuffledSelfInfluence(InfluenceFunction):
    """Broken variant: self-influence values permuted at random (no information about the labels)."""

    def self_influence(self, indices=None):
        explanation = super().self_influence(indices)
        explanation.values = np.random.default_rng(0).permutation(explanation.values)
        return explanation


def test_broken_variants_fail_the_quick_claims(monkeypatch):
    monkeypatch.setattr(experiment, "InfluenceFunction", _IdentityHessian)
    metrics = experiment.run(short()).metrics
    assert CLAIMS["loo_pearson_exact"].check(metrics["loo_pearson_exact"], "quick") is False
    assert CLAIMS["loo_pearson_cg"].check(metrics["loo_pearson_cg"], "quick") is False
    monkeypatch.setattr(experiment, "InfluenceFunction", _ShuffledSelfInfluence)
    metrics = experiment.run(short()).metrics
    margin = metrics["flip_margin_influence_vs_random_at_10"]
    assert CLAIMS["flip_margin_influence_vs_random_at_10"].check(margin, "quick") is False


def test_same_seed_gives_the_same_metrics():
    first = experiment.run(short()).metrics
    second = experiment.run(short()).metrics
    assert first == second
    assert experiment.run(short(seed=1)).metrics != first


def test_newton_reaches_the_minimiser_and_matches_the_influence_hessian():
    split = experiment.load_digits_split(0.25, seed=0)
    keep = (split.y_train == 1) | (split.y_train == 7)
    x, y = split.x_train[keep].double(), (split.y_train[keep] == 7).double()
    theta = experiment.newton_logistic(x, y, 0.01)
    model = experiment._linear_from(theta)
    inf = InfluenceFunction(model, experiment.binary_loss, x, y, l2=0.01)
    risk_gradient = inf.train_gradients().mean(0) + 0.01 * inf.theta
    assert float(torch.linalg.vector_norm(risk_gradient)) < 1e-12
    # leave-one-out from a warm start lands where a cold start does
    warm = experiment.newton_logistic(x[1:], y[1:], 0.01, theta=theta)
    cold = experiment.newton_logistic(x[1:], y[1:], 0.01)
    torch.testing.assert_close(warm, cold, atol=1e-10, rtol=0)
    # the 1-vs-7 model is accurate (sanity of the task)
    accuracy = ((x @ theta[:-1] + theta[-1] > 0).double() == y).double().mean()
    assert accuracy > 0.98


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="has no field 'topk'"):
        make_config(experiment, "quick", topk=5)
