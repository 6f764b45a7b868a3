"""DeepSeekMath GRPO's experiment: the quick reproduction on the cached testbed model (slow: a clean
machine pre-trains it first), its ablations (no RL, zero advantages) failing the claim; the mechanics
(determinism, configs, the full config's smoke test on GSM8K) on a tiny model trained here."""

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.testbeds.arithmetic_lm import ArithmeticLMConfig, pretrain_arithmetic_lm
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("deepseekmath-grpo")

experiment = load_experiment("deepseekmath-grpo")
TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}
MECHANICS = {
    "seeds": 1,
    "rl_steps": 2,
    "prompts_per_step": 2,
    "group_size": 2,
    "max_new_tokens": 8,
    "test_problems": 3,
    "eval_samples": 2,
}


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """Route the experiment to a tiny, barely trained testbed model (mechanics only)."""
    cfg = ArithmeticLMConfig(**TINY)
    monkeypatch.setattr(
        experiment, "pretrain_arithmetic_lm", lambda _cfg, cache: pretrain_arithmetic_lm(cfg, tmp_path)
    )


def _claim(result, metric):
    return next(c for c in result.claims if c.metric == metric)


@pytest.mark.slow
def test_quick_reproduction():
    cfg = make_config(experiment, "quick")
    result = reproduce("deepseekmath-grpo", cfg)
    for metric in ("gain_over_control", "memory_ratio"):
        claim = _claim(result, metric)
        assert claim.passed, f"{metric}: ours {claim.ours:.2f}, threshold {claim.threshold}"
    assert result.metrics["final_kl"] > 0
    assert "grpo_training" in result.figures


@pytest.mark.slow
@pytest.mark.parametrize("ablation", ["no_rl", "zero_advantages"])
def test_ablations_fail_the_claim(ablation):
    result = reproduce("deepseekmath-grpo", make_config(experiment, "quick", ablation=ablation))
    gain = _claim(result, "gain_over_control")
    assert gain.passed is False and gain.ours < 8.0


def test_same_seed_gives_the_same_metrics(tiny_model):
    cfg = make_config(experiment, "quick", **MECHANICS)
    first, second = experiment.run(cfg), experiment.run(cfg)
    assert first.metrics == second.metrics
    assert 0 < first.metrics["memory_ratio"] < 1  # no critic: less memory than PPO


def test_zero_advantages_leave_the_policy_where_it_started(tiny_model):
    cfg = make_config(experiment, "quick", ablation="zero_advantages", **MECHANICS)
    assert experiment.run(cfg).metrics["final_kl"] == 0.0


def test_iterative_option_resets_the_reference(tiny_model):
    cfg = make_config(experiment, "quick", **(MECHANICS | {"rl_steps": 4, "iterations": 2}))
    result = experiment.run(cfg)
    assert len(result.details["curve"]) == 4
    assert result.details["curve"][2]["kl"] == 0.0  # first step after the reset: policy == reference


def test_a_killed_run_resumes_the_rl_from_its_checkpoint(tiny_model, tmp_path, monkeypatch):
    """Killed after the fourth GRPO step of iterative GRPO (the reference was reset at step 3) and
    before its checkpoint, the rerun resumes from step 3 with the reset reference and ends with the
    uninterrupted run's curve and metrics."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "results"))
    # A reward the tiny model earns on some samples and not others: non-zero advantages, so every
    # step moves the policy away from its reference (with the real one nothing would move).
    monkeypatch.setattr(experiment, "_correct", lambda completion, answer: len(completion) % 2 == 0)
    cfg = make_config(experiment, "quick", **(MECHANICS | {"rl_steps": 4, "iterations": 2}))
    reference = experiment.run(cfg)
    assert reference.details["curve"][3]["kl"] > 0  # the policy moved: the test can see a lost state
    cfg = make_config(
        experiment, "quick", **(MECHANICS | {"rl_steps": 4, "iterations": 2, "checkpoint_every": 1})
    )
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment.LoopCheckpoints,
        "done",
        lambda: experiment.run(cfg),
        kill_at=4,
        record=lambda self, step, total: step,
    )
    assert calls == [4]
    assert resumed.details["curve"] == reference.details["curve"]
    assert resumed.metrics == reference.metrics
    assert not any((tmp_path / "results" / "_checkpoints" / "deepseekmath-grpo").iterdir())


def test_full_config_smoke_on_gsm8k(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "results"))  # full runs checkpoint there
    full = make_config(experiment, "full")
    assert full.checkpoint_every == 25
    assert full.dataset == "gsm8k" and full.group_size == 64 and full.beta == 0.04
    assert full.max_new_tokens == 1024 and full.steps_per_batch == 1
    cfg = make_config(experiment, "full", model_size="small", **MECHANICS)
    result = experiment.run(cfg)
    assert len(result.details["curve"]) == 2


def test_configs_follow_the_paper_and_bad_config_is_rejected():
    quick = make_config(experiment, "quick")
    assert quick.beta == 0.04 and quick.steps_per_batch == 1 and quick.dataset == "arithmetic"
    with pytest.raises(ValueError, match="group_size"):
        make_config(experiment, "quick", group_size=1)
    with pytest.raises(ValueError, match="beta"):
        make_config(experiment, "quick", beta=-0.1)
    with pytest.raises(ValueError, match="ablation"):
        make_config(experiment, "quick", ablation="no_kl")
    with pytest.raises(ValueError, match="dataset"):
        make_config(experiment, "quick", dataset="math")
