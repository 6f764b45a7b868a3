"""The DPO quick reproduction: Section 6.1's controlled sentiment generation at small scale, the
no-training control, seeds, the frontier plot, config."""

from __future__ import annotations

import dataclasses
import math

import pytest
from matplotlib.figure import Figure

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import ExperimentConfig, make_config
from aicanon.experiments import dpo

pytestmark = pytest.mark.paper("dpo")

GAINS = ("reward_gain_sampled", "reward_gain_greedy", "kl_ratio_smallest_to_largest_beta")


def test_quick_reproduction_meets_every_quick_claim(base_cache):
    cfg = make_config(dpo, "quick", cache=base_cache, device="cpu")
    result = reproduce("dpo", cfg)
    failed = [(c.metric, c.ours, c.threshold) for c in result.claims if c.passed is False]
    assert not failed, failed
    metrics = result.metrics
    # the frontier: a smaller beta buys more reward with more KL (Figure 2's trade-off)
    kls = [metrics[f"kl_sampled_beta_{b:g}"] for b in cfg.betas]
    assert kls == sorted(kls, reverse=True) and kls[-1] > 0
    assert (
        metrics["reward_sampled_beta_0.05"]
        > metrics["reward_sampled_beta_0.5"]
        > metrics["reward_reference_sampled"]
    )
    assert metrics["preference_pairs"] > 1000 and metrics["preference_reward_gap"] > 0
    assert "reward_kl_frontier" in result.figures
    assert set(result.details["frontier"]) == {f"{b:g}" for b in cfg.betas}


def test_no_training_control_fails_the_reward_claims(base_cache):
    cfg = make_config(dpo, "quick", cache=base_cache, device="cpu", train=False)
    result = dpo.run(cfg)
    for claim in dpo.CLAIMS:
        if claim.metric in GAINS:
            assert claim.check(result.metrics[claim.metric], "quick") is False, claim.metric
    assert result.metrics["reward_gain_sampled"] == 0.0 and result.metrics["kl_sampled"] == pytest.approx(0.0)


def test_same_seed_same_metrics(tmp_path):
    short = {
        "cache": str(tmp_path),
        "device": "cpu",
        "base_steps": 10,
        "base_seq_len": 32,
        "base_batch": 8,
        "train_prompts": 8,
        "max_new_tokens": 8,
        "betas": (0.1,),
        "epochs": 1,
        "eval_prompts": 4,
        "eval_samples": 2,
    }
    first = dpo.run(make_config(dpo, "quick", **short)).metrics
    second = dpo.run(make_config(dpo, "quick", **short)).metrics
    assert repr(first) == repr(second)  # repr: a nan (one beta gives no KL ratio) equals itself


def test_plot_frontier_draws_several_methods():
    figure = dpo.plot_frontier(
        {"DPO": [(5.0, 0.5), (15.0, 0.9)], "PPO": [(10.0, 0.4), (2.0, 0.1)]},
        reference=(0.0, 0.0),
        labels={"DPO": ["beta=0.5", "beta=0.1"]},
    )
    assert isinstance(figure, Figure)
    lines = figure.axes[0].get_lines()
    assert [list(line.get_xdata()) for line in lines[:2]] == [[5.0, 15.0], [2.0, 10.0]]  # sorted by KL
    with pytest.raises(ValueError, match="points must be a non-empty dict"):
        dpo.plot_frontier({})
    with pytest.raises(ValueError, match=r"points\['PPO'\] must be a non-empty list of \(kl, reward\) pairs"):
        dpo.plot_frontier({"PPO": [(1.0, 2.0, 3.0)]})


def test_config_protocol_and_bad_input():
    module = load_experiment("dpo")
    quick, full = module.Config.quick(), module.Config.full()
    assert isinstance(quick, ExperimentConfig) and (quick.scale, full.scale) == ("quick", "full")
    assert quick.seeds >= 1 and full.seeds >= 1
    assert quick.claim_beta in quick.betas and full.claim_beta in full.betas and len(quick.betas) == 3
    assert full.batch_size == 64 and full.warmup_steps == 150  # Appendix B
    metrics = [c.metric for c in dpo.CLAIMS]
    assert len(metrics) == len(set(metrics)) and all(c.source for c in dpo.CLAIMS)
    assert set(GAINS) | {"kl_sampled"} <= set(metrics)
    assert all(math.isfinite(c.quick) for c in dpo.CLAIMS if c.quick is not None)
    names = {f.name for f in dataclasses.fields(quick)}
    assert {"betas", "claim_beta", "train", "cache"} <= names
    with pytest.raises(ValueError, match="has no field 'beta'"):
        make_config(dpo, "quick", beta=0.1)
    with pytest.raises(ValueError, match=r"claim_beta must be one of betas \(0.5,\), got 0.1"):
        dpo.run(make_config(dpo, "quick", betas=(0.5,), device="cpu"))
