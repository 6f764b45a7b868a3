"""The quick reproduction of the GPT-4 report's predictable scaling (Section 3), its broken variants and
the family's one methodology."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core import select_device
from aicanon.core.experiment import make_config
from aicanon.datasets.text import char_splits, load_tinyshakespeare
from aicanon.experiments import gpt4_scaling as experiment
from aicanon.language.llama import Llama
from aicanon.language.scaling import llama_non_embedding_parameters, llama_training_flops

pytestmark = pytest.mark.paper("gpt4-scaling")

SLUG = "gpt4-scaling"
CLAIMS = {c.metric: c for c in experiment.CLAIMS}
CLAIMED = {"loss_relative_error_pct", "irreducible_term_advantage_pct", "compute_span"}


def _tiny(**overrides):
    """A family of five very small, very short runs: for repeatability and code-path tests."""
    fields = {
        "widths": (8, 12, 16, 20, 24), "tokens_per_parameter": 0.25, "batch_size": 4, "seq_len": 32,
        "eval_batches": 2, "capability_problems": 16, "bootstrap_resamples": 20, "device": "cpu",
    }  # fmt: skip
    fields.update(overrides)
    return make_config(load_experiment(SLUG), "quick", **fields)


def _outcomes(metrics, scale="quick"):
    return {name: claim.check(metrics[name], scale) for name, claim in CLAIMS.items()}


def test_quick_reproduction_passes_and_an_inconsistent_largest_run_fails():
    cfg = make_config(load_experiment(SLUG), "quick")
    result = reproduce(SLUG, cfg)
    for claim in experiment.CLAIMS:
        assert math.isfinite(result.metrics[claim.metric]), claim.metric
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == CLAIMED
    failed = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failed, failed
    assert set(result.figures) == {"loss_prediction", "capability_prediction"}
    runs = result.details["runs"]
    assert len(runs) == len(cfg.widths) and all(r["loss"] < math.log(65) for r in runs)
    assert [r["loss"] for r in runs] == sorted(
        (r["loss"] for r in runs), reverse=True
    )  # more compute, lower loss

    # Broken methodology: the largest run alone gets a 10x lower peak learning rate. Same small runs,
    # same seed; its loss leaves the law and the prediction misses by far more than 3 %.
    broken_cfg = dataclasses.replace(cfg, largest_lr_multiplier=0.1)
    data = experiment.load_data(broken_cfg)
    broken_run = experiment.train_member(broken_cfg, cfg.widths[-1], data, select_device("cpu"), largest=True)
    assert broken_run["loss"] > runs[-1]["loss"]
    metrics, _ = experiment.analyse(broken_cfg, runs[:-1] + [broken_run])
    assert metrics["predicted_loss"] == pytest.approx(result.metrics["predicted_loss"])
    assert _outcomes(metrics)["loss_relative_error_pct"] is False


@pytest.mark.slow
def test_whole_quick_family_with_an_inconsistent_largest_run_fails():
    result = reproduce(SLUG, make_config(load_experiment(SLUG), "quick", largest_lr_multiplier=0.1))
    assert {c.metric: c for c in result.claims}["loss_relative_error_pct"].passed is False
    assert any("ABLATION" in note for note in result.notes)


def _synthetic_runs(widths=(16, 20, 24, 28, 32, 36, 48), noise=0.0, seed=0):
    """Runs that follow L = 30 C^-0.12 + 1.3 exactly (or with relative noise)."""
    rng = np.random.default_rng(seed)
    runs = []
    for width in widths:
        compute = 1e7 * width**4
        loss = (30.0 * compute**-0.12 + 1.3) * math.exp(noise * rng.normal())
        runs.append({"width": width, "compute": compute, "loss": loss, "capability": 5.0 * compute**-0.1})
    return runs


def test_analysis_of_runs_on_the_law_passes_and_shuffled_losses_fail():
    cfg = dataclasses.replace(experiment.Config.quick(), bootstrap_resamples=100)
    metrics, details = experiment.analyse(cfg, _synthetic_runs())
    assert metrics["loss_relative_error_pct"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["capability_relative_error_pct"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["irreducible_loss_c"] == pytest.approx(1.3, rel=1e-6)
    assert metrics["actual_in_bootstrap_interval"] == 1.0
    assert metrics["extrapolation_ratio"] == pytest.approx((48 / 36) ** 4)
    assert details["capability_fit"]["k"] == pytest.approx(0.1)
    assert all(_outcomes(metrics)[name] for name in CLAIMED)
    # Broken fit: the same losses shuffled across compute.
    shuffled, _ = experiment.analyse(dataclasses.replace(cfg, shuffle_fit_losses=True), _synthetic_runs())
    assert _outcomes(shuffled)["loss_relative_error_pct"] is False


def test_a_law_without_irreducible_term_loses_its_advantage_claim():
    # Runs on a pure power law: the offset fit finds c = 0 and is no better than the pure fit, so
    # the "irreducible term helps" claim cannot pass on data that does not have one.
    runs = _synthetic_runs()
    for r in runs:
        r["loss"] = 30.0 * r["compute"] ** -0.12
    metrics, _ = experiment.analyse(
        dataclasses.replace(experiment.Config.quick(), bootstrap_resamples=20), runs
    )
    assert metrics["irreducible_loss_c"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["irreducible_term_advantage_pct"] == pytest.approx(0.0, abs=1e-4)


def test_same_seed_gives_identical_metrics():
    threads = torch.get_num_threads()
    first = experiment.run(_tiny(threads=1)).metrics
    assert torch.get_num_threads() == threads  # restored after the run
    second = experiment.run(_tiny()).metrics
    assert first == second
    assert experiment.run(_tiny(seed=1)).metrics != first


def test_killed_family_restores_finished_members_and_resumes_the_interrupted_one(monkeypatch, tmp_path):
    # Five members, a checkpoint every 2 steps; killed in the third member's fourth step: the first two
    # are loaded from their final checkpoints (not retrained), the third resumes after its step 2, and
    # the fit and every metric equal the uninterrupted run's.
    from tests.interruption import interrupt_and_resume

    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = _tiny()
    reference = experiment.run(cfg)
    steps = [experiment.family_member(cfg, w, 65, i == 4)[1].steps for i, w in enumerate(cfg.widths)]
    cfg = dataclasses.replace(cfg, checkpoint_every=2)
    resumed, calls = interrupt_and_resume(
        monkeypatch, torch.optim.AdamW, "step", lambda: experiment.run(cfg), kill_at=steps[0] + steps[1] + 4
    )
    assert len(calls) == (steps[2] - 2) + steps[3] + steps[4]
    assert resumed.metrics == reference.metrics
    assert not any((tmp_path / "_checkpoints" / "gpt4-scaling").iterdir())
    assert experiment.Config.full().checkpoint_every == 500


def test_family_follows_one_methodology():
    cfg = experiment.Config.quick()
    members = [experiment.family_member(cfg, w, 65, largest=w == cfg.widths[-1]) for w in cfg.widths]
    ratios = []
    for model_cfg, train_cfg in members:
        n = llama_non_embedding_parameters(model_cfg)
        assert n == Llama(model_cfg).num_parameters(exclude_embeddings=True)
        ratios.append(train_cfg.steps * train_cfg.batch_size * train_cfg.seq_len / n)
        assert train_cfg.lr == cfg.lr  # lr_width_exponent 0: one rate for all
        assert (model_cfg.num_layers, model_cfg.num_heads) == (cfg.num_layers, cfg.num_heads)
        assert model_cfg.intermediate_size % 4 == 0
        assert model_cfg.intermediate_size >= 8 / 3 * model_cfg.hidden_size
        assert train_cfg.warmup_steps == max(1, round(0.1 * train_cfg.steps))
    assert np.allclose(ratios, cfg.tokens_per_parameter, rtol=0.05)  # D = 8 N up to whole steps
    scaled = dataclasses.replace(cfg, lr_width_exponent=1.0)
    assert experiment.family_member(scaled, 64, 65)[1].lr == pytest.approx(cfg.lr / 2)
    ablated = dataclasses.replace(cfg, largest_lr_multiplier=0.1)
    assert experiment.family_member(ablated, 48, 65, largest=True)[1].lr == pytest.approx(cfg.lr * 0.1)


@pytest.mark.parametrize("scale, span", [("quick", 20.0), ("full", 100.0)])
def test_each_scale_spans_the_compute_its_claim_asks(scale, span):
    cfg = experiment.Config.quick() if scale == "quick" else experiment.Config.full()
    assert cfg.scale == scale
    compute = []
    for width in cfg.widths:
        model_cfg, train_cfg = experiment.family_member(cfg, width, 65)
        compute.append(
            llama_training_flops(model_cfg, train_cfg.batch_size, train_cfg.seq_len, train_cfg.steps)
        )
    assert compute == sorted(compute)
    assert compute[-1] / compute[0] >= span
    assert CLAIMS["compute_span"].threshold(scale) == span


def test_capability_problems_are_whole_validation_words():
    cfg = experiment.Config.quick()
    _, val, tokenizer = char_splits(load_tinyshakespeare())
    windows, targets, masks = experiment.capability_problems(val, tokenizer.decode(val.tolist()), cfg)
    assert windows.shape == targets.shape == masks.shape == (cfg.capability_problems, cfg.seq_len)
    assert torch.equal(windows[:, 1:], targets[:, :-1])
    for i in range(0, cfg.capability_problems, 37):
        positions = masks[i].nonzero().flatten()
        word = tokenizer.decode(targets[i, positions].tolist())
        assert word.isalpha() and 3 <= len(word) <= 8
        assert tokenizer.decode([int(windows[i, positions[0]])]) == " "  # the word starts after a space
        follower = (
            tokenizer.decode([int(targets[i, positions[-1] + 1])]) if positions[-1] + 1 < cfg.seq_len else " "
        )
        assert not follower.isalpha()  # and it is the whole word


def test_full_code_path_runs_on_a_tiny_family():
    cfg = make_config(
        load_experiment(SLUG), "full",
        widths=(8, 16, 24, 32, 40), tokens_per_parameter=0.05, batch_size=4, seq_len=32, eval_batches=1,
        capability_problems=8, bootstrap_resamples=10, seeds=1, device="cpu",
    )  # fmt: skip
    result = experiment.run(cfg)
    for claim in experiment.CLAIMS:
        assert math.isfinite(result.metrics[claim.metric]), claim.metric
    assert cfg.num_layers == 4 and result.details["fit"]["n_runs"] == 4


def test_claims_quote_the_paper():
    assert CLAIMS["extrapolation_ratio"].paper == 10000.0
    assert (
        CLAIMS["loss_relative_error_pct"].quick == 3.0
        and not CLAIMS["loss_relative_error_pct"].higher_is_better
    )
    assert CLAIMS["actual_in_bootstrap_interval"].quick is None  # reported, not claimed
    assert CLAIMS["capability_relative_error_pct"].quick is None


def test_bad_config_is_rejected_with_the_field_name():
    with pytest.raises(ValueError, match=r"widths must hold at least 5 ints.*\(8, 12, 16, 20\)"):
        experiment.run(_tiny(widths=(8, 12, 16, 20)))
    with pytest.raises(ValueError, match=r"widths must increase, got \(8, 16, 12, 20, 24\)"):
        experiment.run(_tiny(widths=(8, 16, 12, 20, 24)))
    with pytest.raises(
        ValueError, match=r"widths must split into num_heads=2 heads of even size, got \[10\]"
    ):
        experiment.run(_tiny(widths=(8, 10, 12, 16, 20)))
    with pytest.raises(ValueError, match="tokens_per_parameter must be > 0, got 0"):
        experiment.run(_tiny(tokens_per_parameter=0))
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        experiment.run(_tiny(num_layers=0))
    with pytest.raises(ValueError, match=r"bootstrap_level must be in \(0, 1\), got 1.0"):
        experiment.run(_tiny(bootstrap_level=1.0))
    with pytest.raises(ValueError, match=r"warmup_fraction must be in \[0, 1\), got 1.5"):
        experiment.run(_tiny(warmup_fraction=1.5))
    with pytest.raises(ValueError, match="capability_problems must be at most"):
        experiment.run(_tiny(capability_problems=10**6))
