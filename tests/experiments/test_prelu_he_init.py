"""The quick reproduction of He et al. 2015 (Figures 2/3, Tables 1/2), its ablations and the full code path."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aicanon.catalog import load_experiment, reproduce
from aicanon.core import DataUnavailable
from aicanon.core.experiment import make_config
from aicanon.experiments import prelu_he_init as experiment
from aicanon.vision.rectifiers import PReLU

pytestmark = pytest.mark.paper("prelu-he-init")

SLUG = "prelu-he-init"
CLAIMS = {c.metric: c for c in experiment.CLAIMS}


def _short(**overrides):
    """Only the 30-layer Figure 3 pair, one seed: what the ablations need."""
    fields = {"seeds": 1, "mid_depth": 0, "compare_depth": 0}
    fields.update(overrides)
    return make_config(load_experiment(SLUG), "quick", **fields)


def test_quick_reproduction_passes_every_quick_claim():
    cfg = make_config(load_experiment(SLUG), "quick")
    result = reproduce(SLUG, cfg)
    for claim in experiment.CLAIMS:
        assert claim.metric in result.metrics, claim.metric
        assert math.isfinite(result.metrics[claim.metric]), claim.metric
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"he_30_final_train_loss", "xavier_30_final_train_loss"}
    failed = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failed, failed
    assert result.passed
    # Figure 3's shape: He far below chance, Xavier at chance (ln 10) to within 0.01.
    assert result.metrics["he_30_final_train_loss"] < 0.5
    assert abs(result.metrics["xavier_30_final_train_loss"] - math.log(10)) < 0.01
    assert set(result.figures) == {"training_loss", "prelu_coefficients"}
    assert len(result.details["coefficients"]["ours_channel_shared"]) == 13  # 14 weight layers


def test_untrained_he_net_fails_the_convergence_claim():
    # No training steps: the He net's loss is that of a random net, >= ln 10, far above 1.0.
    result = reproduce(SLUG, _short(steps=0))
    assert result.metrics["he_30_final_train_loss"] > 2.0
    outcome = {c.metric: c for c in result.claims}["he_30_final_train_loss"]
    assert outcome.passed is False


def test_stall_claim_is_not_met_by_he_init_and_convergence_not_by_xavier():
    # Swap the initialisations: the "xavier" arm given He init converges, so the stall claim fails;
    # the "he" arm given Xavier init stalls, so the convergence claim fails.
    result = reproduce(SLUG, _short(init="xavier", baseline_init="he"))
    outcome = {c.metric: c for c in result.claims}
    assert outcome["xavier_30_final_train_loss"].passed is False
    assert outcome["he_30_final_train_loss"].passed is False
    assert any("ABLATION" in note for note in result.notes)


def test_same_seed_gives_identical_metrics():
    cfg = _short(steps=40, depth=8, compare_depth=4)
    first = experiment.run(cfg).metrics
    second = experiment.run(cfg).metrics
    assert first == second
    other = experiment.run(_short(steps=40, depth=8, compare_depth=4, seed=1)).metrics
    assert other != first


def test_claims_quote_the_paper():
    assert CLAIMS["relu_test_error"].paper == 33.82
    assert CLAIMS["prelu_shared_test_error"].paper == 32.71
    assert CLAIMS["prelu_channelwise_test_error"].paper == 32.64
    assert CLAIMS["prelu_gain"].paper == pytest.approx(1.18)
    assert CLAIMS["prelu_first_layer_coefficient"].paper == 0.681
    assert len(experiment.PAPER_TABLE1_SHARED) == len(experiment.PAPER_TABLE1_CHANNELWISE) == 13
    assert CLAIMS["prelu_gain"].quick is None  # only claimed where the paper's scale can show it


def test_full_config_is_the_cifar10_conv_setting():
    cfg = experiment.Config.full()
    assert (cfg.scale, cfg.dataset, cfg.architecture, cfg.depth, cfg.mid_depth, cfg.compare_depth) == (
        "full", "cifar10", "conv", 30, 22, 14,
    )  # fmt: skip
    assert (cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.prelu_init) == (
        128,
        0.01,
        0.9,
        5e-4,
        0.25,
    )


@pytest.mark.parametrize("depth, convs", [(30, 27), (22, 19), (14, 11)])
def test_plain_conv_net_has_the_papers_layer_counts(depth, convs):
    net = experiment.PlainConvNet(3, 10, depth, 8, 32, "prelu_channelwise", 0.25)
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == convs
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 3
    assert sum(isinstance(m, PReLU) for m in net.modules()) == depth - 1
    if depth == 14:  # Table 1's layout: conv1, four convs at 2x width, six at 4x width
        widths = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert widths == [8] + [16] * 4 + [32] * 6
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_full_code_path_runs_on_a_tiny_cifar10_slice():
    cfg = make_config(
        load_experiment(SLUG), "full",
        train_per_class=6, test_per_class=2, steps=2, width=4, fc_width=8, depth=6, mid_depth=5,
        compare_depth=4, smooth=1, eval_samples=20, device="cpu",
    )  # fmt: skip
    try:
        result = experiment.run(cfg)
    except DataUnavailable as error:  # pragma: no cover - the staged data is absent
        pytest.skip(str(error))
    for claim in experiment.CLAIMS:
        assert math.isfinite(result.metrics[claim.metric]), claim.metric
    assert any("LOSSY JPEG" in note for note in result.notes)


def test_bad_config_is_rejected_with_the_field_name():
    module = load_experiment(SLUG)
    with pytest.raises(ValueError, match="depth must be >= 2.*got 1"):
        experiment.run(make_config(module, "quick", depth=1))
    with pytest.raises(ValueError, match="init must be 'he' or 'xavier'.*'kaiming'"):
        experiment.run(make_config(module, "quick", init="kaiming"))
    with pytest.raises(ValueError, match="activation must be one of.*'tanh'"):
        experiment.run(make_config(module, "quick", activation="tanh"))
    with pytest.raises(ValueError, match="init_mode must be 'fan_in' or 'fan_out'.*'fan_avg'"):
        experiment.run(make_config(module, "quick", init_mode="fan_avg"))
    with pytest.raises(ValueError, match="lr must be > 0.*0.0"):
        experiment.run(make_config(module, "quick", lr=0.0))
    with pytest.raises(ValueError, match="dataset must be 'digits' or 'cifar10'.*'mnist'"):
        experiment.run(make_config(module, "quick", dataset="mnist", seeds=1))
