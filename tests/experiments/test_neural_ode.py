"""Neural ODE's experiment: the quick reproduction meets its claims; ablations fail them."""

import dataclasses

import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("neural-ode")

experiment = load_experiment("neural-ode")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("neural-ode", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert claimed
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"


def test_memory_claim_holds_and_backprop_would_fail_it():
    cfg = make_config(experiment, "quick", parts=("memory",))
    metrics = experiment.run(cfg).metrics
    adjoint = next(c for c in experiment.CLAIMS if c.metric == "adjoint_memory_growth")
    assert adjoint.check(metrics["adjoint_memory_growth"], "quick")
    # The ablation: backprop through the solver's memory, judged by the adjoint's claim, fails it.
    assert not adjoint.check(metrics["backprop_memory_growth"], "quick")


def test_identity_ode_block_fails_the_odenet_accuracy_claim():
    # The ablated ODE-Net (integration time 0: stem and head only), trained exactly as in the quick run.
    from aicanon.generative.ode.odenet import mnist_odenet

    cfg = make_config(experiment, "quick", parts=("mnist",))
    torch.manual_seed(cfg.seed)
    model = mnist_odenet(cfg.mnist_width, method="rk4", step_size=cfg.ode_step_size, integration_time=0.0)
    data = experiment._mnist(cfg, torch.device("cpu"))
    accuracy, _ = experiment.train_classifier(model, data, cfg, torch.Generator().manual_seed(cfg.seed))
    claim = next(c for c in experiment.CLAIMS if c.metric == "odenet_test_accuracy")
    assert not claim.check(accuracy, "quick"), accuracy


def test_constant_latent_fails_the_spiral_claim():
    cfg = make_config(experiment, "quick", parts=("spirals",), constant_latent=True)
    metrics = experiment.run(cfg).metrics
    claim = next(c for c in experiment.CLAIMS if c.metric == "spiral_extrapolation_rmse_ratio")
    assert not claim.check(metrics["spiral_extrapolation_rmse_ratio"], "quick")


@pytest.mark.slow
def test_zero_integration_time_fails_the_mnist_claim():
    cfg = make_config(experiment, "quick", parts=("mnist",), integration_time=0.0)
    result = reproduce("neural-ode", cfg)
    gap = next(c for c in result.claims if c.metric == "odenet_accuracy_gap")
    assert gap.passed is False


def test_untrained_cnf_fails_the_cnf_claim():
    cfg = make_config(experiment, "quick", parts=("cnf",), cnf_steps=0, planar_layers=2, cnf_eval_samples=500)
    metrics = experiment.run(cfg).metrics
    claim = next(c for c in experiment.CLAIMS if c.metric == "cnf_kl")
    assert not claim.check(metrics["cnf_kl"], "quick")


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(
        experiment,
        "quick",
        parts=("memory", "cnf"),
        cnf_steps=3,
        planar_layers=2,
        cnf_eval_samples=200,
        seed=3,
    )
    assert experiment.run(cfg).metrics == experiment.run(dataclasses.replace(cfg)).metrics


def test_full_config_smoke():
    cfg = make_config(
        experiment,
        "full",
        parts=("mnist", "spirals"),
        mnist_train_images=64,
        mnist_test_images=32,
        mnist_steps=1,
        mnist_batch=8,
        spiral_count=8,
        spiral_points=8,
        spiral_observed=3,
        spiral_steps=1,
        spiral_batch=4,
        device="cpu",
    )
    assert set(experiment.run(cfg).metrics) >= {"odenet_accuracy_gap", "spiral_extrapolation_rmse_ratio"}


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    # Spirals: 100 observed time steps plus 100 extrapolated (Section 5.1), 30 observations.
    assert (full.mnist_width, full.spiral_count, full.spiral_points, full.spiral_observed) == (
        64,
        1000,
        200,
        30,
    )
    assert experiment.Config.quick().threads == 1


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(parts=()), "parts must name at least one"),
        (dict(parts=("memory", "gans")), "parts must be one of"),
        (dict(memory_steps=(8,)), "memory_steps must be at least two"),
        (dict(spiral_observed=30, spiral_points=24), "spiral_observed must be <="),
        (dict(mnist_lr=0.0), "mnist_lr must be finite and > 0"),
    ],
)
def test_bad_config_is_rejected(overrides, match):
    cfg = make_config(experiment, "quick", **overrides)
    with pytest.raises(ValueError, match=match):
        experiment.run(cfg)
