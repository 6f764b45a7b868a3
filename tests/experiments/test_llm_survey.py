"""The LLM-survey lifecycle: every stage evaluated on every metric; the quick reproduction's claims (slow:
it needs the cached testbed model); the pipeline's mechanics on a tiny testbed model; bad configs."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.experiments import llm_survey
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("llm-survey")

TINY_TESTBED = {
    "size": "small",
    "problems": 200,
    "steps": 3,
    "warmup_steps": 1,
    "batch_size": 4,
    "seq_len": 64,
}


def tiny(tmp_path, **overrides) -> llm_survey.Config:
    settings = dict(
        cache=str(tmp_path),
        testbed=TINY_TESTBED,
        sft_steps=2,
        sft_examples=12,
        sft_batch_size=4,
        dpo_steps=2,
        dpo_batch_size=4,
        dpo_pairs=4,
        ppo_iterations=1,
        ppo_prompts=4,
        eval_items=4,
        max_new_tokens=8,
        ppl_windows=2,
        ppl_seq_len=32,
    )
    settings.update(overrides)
    return llm_survey.Config(**settings)


def test_pipeline_evaluates_every_stage_on_every_metric(tmp_path):
    result = llm_survey.run(tiny(tmp_path))
    table = result.details["table"]
    assert list(table) == list(llm_survey.STAGES)
    for stage in llm_survey.STAGES:
        assert set(table[stage]) == set(llm_survey.METRICS)
        assert table[stage]["perplexity"] > 1.0
        for metric in ("instruction", "reward", "arithmetic"):
            assert 0.0 <= table[stage][metric] <= 100.0
    assert set(result.figures) == {f"stage_{m}" for m in llm_survey.METRICS}
    for claim in llm_survey.CLAIMS:
        assert claim.metric in result.metrics
    assert set(result.details["seconds_per_stage"]) == {"sft", "dpo", "ppo", "evaluation"}


def test_same_seed_gives_the_same_metrics(tmp_path):
    cfg = tiny(tmp_path, seed=3)
    assert llm_survey.run(cfg).metrics == llm_survey.run(dataclasses.replace(cfg)).metrics


def test_the_cached_model_is_copied_not_changed(tmp_path):
    from aicanon.testbeds.arithmetic_lm import ArithmeticLMConfig, pretrain_arithmetic_lm

    cfg = tiny(tmp_path)
    before = {
        k: v.clone()
        for k, v in pretrain_arithmetic_lm(ArithmeticLMConfig(**TINY_TESTBED), tmp_path)[0]
        .state_dict()
        .items()
    }
    llm_survey.run(cfg)
    after = pretrain_arithmetic_lm(ArithmeticLMConfig(**TINY_TESTBED), tmp_path)[0].state_dict()
    assert all((before[k] == after[k]).all() for k in before)


def test_preference_rule_and_instruction_form():
    brief = "Instruction: Answer with the number only. Q\nResponse:"
    explain = "Instruction: Explain step by step. Q\nResponse:"
    assert llm_survey.follows(brief, " The answer is 12.")
    assert not llm_survey.follows(brief, "Mia starts with 3 pens. 3 + 9 = 12. The answer is 12.")
    assert llm_survey.follows(explain, "Mia starts with 3 pens. 3 + 9 = 12. The answer is 12.")
    assert not llm_survey.follows(explain, "The answer is 12.")
    assert llm_survey.preference_reward(brief, "The answer is 12.", 12) == 1.0
    assert llm_survey.preference_reward(brief, "The answer is 13.", 12) == 0.5
    assert llm_survey.preference_reward(explain, "The answer is 12.", 12) == 0.5
    assert llm_survey.preference_reward(explain, "pens", 12) == 0.0


def test_summary_measures_gains_against_the_previous_stage():
    row = {"perplexity": 10.0, "instruction": 50.0, "reward": 50.0, "arithmetic": 50.0}
    table = {s: dict(row) for s in llm_survey.STAGES}
    table["init"]["perplexity"] = 100.0
    table["sft"]["instruction"] = 90.0
    table["dpo"].update(reward=60.0, arithmetic=40.0, instruction=90.0)
    table["ppo"].update(reward=55.0, perplexity=15.0, instruction=90.0)
    summary = llm_survey.summarise(table, llm_survey.Config())
    assert summary["pretrain_ppl_ratio"] == pytest.approx(0.1)
    assert summary["sft_instruction_gain"] == 40.0
    assert summary["dpo_reward_gain"] == 10.0 and summary["ppo_reward_gain"] == 5.0
    assert summary["worst_ppl_increase"] == pytest.approx(50.0)
    assert summary["worst_score_drop"] == 10.0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"sft_steps": -1}, "sft_steps"),
        ({"dpo_lr": 0.0}, "dpo_lr"),
        ({"ppo_beta": -0.1}, "ppo_beta"),
        ({"ablation": "nope"}, "ablation"),
        ({"testbed": {"size": "huge"}}, "size"),
        ({"eval_items": 0}, "eval_items"),
    ],
)
def test_bad_config_is_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        llm_survey.Config(**overrides)


def test_testbed_must_be_a_dict():
    with pytest.raises(TypeError, match="testbed"):
        llm_survey.Config(testbed="small")


def test_configs_follow_the_plan():
    quick, full = llm_survey.Config.quick(), llm_survey.Config.full()
    assert quick.scale == "quick" and quick.testbed == {}
    assert full.scale == "full" and full.testbed["size"] == "large"
    assert full.ppo_beta == 0.02  # InstructGPT's KL coefficient


def test_killed_seed_resumes_at_the_first_unfinished_stage(monkeypatch, tmp_path):
    # Killed as PPO starts: the rerun loads instruction tuning and DPO (neither trains again), trains
    # PPO, and every metric and curve equals the uninterrupted seed's.
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "results"))
    cfg = tiny(tmp_path, ppo_iterations=2)
    reference = llm_survey.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint=True)
    trained: list[str] = []
    for name in ("instruction_tune", "align_dpo"):
        original = getattr(llm_survey, name)
        monkeypatch.setattr(
            llm_survey,
            name,
            lambda *args, _f=original, _n=name, **kwargs: trained.append(_n) or _f(*args, **kwargs),
        )
    resumed, calls = interrupt_and_resume(
        monkeypatch, llm_survey, "align_ppo", lambda: llm_survey.run(cfg), kill_at=1
    )
    assert trained == ["instruction_tune", "align_dpo"]  # in the killed run; the rerun loads them
    assert len(calls) == 1  # the rerun trains PPO
    assert resumed.metrics == reference.metrics
    timing = ("seconds", "seconds_per_stage")
    assert {k: v for k, v in resumed.details.items() if k not in timing} == {
        k: v for k, v in reference.details.items() if k not in timing
    }
    assert not any((tmp_path / "results" / "_checkpoints" / "llm-survey").iterdir())
    assert llm_survey.Config.full().checkpoint


def test_full_config_smoke(monkeypatch, tmp_path):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "results"))  # the full config keeps its stages
    full = llm_survey.Config.full()
    small = tiny(tmp_path, testbed={**TINY_TESTBED, "size": full.testbed["size"]}, max_steps=full.max_steps)
    keep = {"scale", "seeds", "dpo_beta", "ppo_beta", "ppo_ptx"}
    cfg = dataclasses.replace(
        full, **{f.name: getattr(small, f.name) for f in dataclasses.fields(full) if f.name not in keep}
    )
    result = llm_survey.run(cfg)
    assert set(result.details["table"]) == set(llm_survey.STAGES)


def test_ppo_ptx_runs(tmp_path):
    result = llm_survey.run(tiny(tmp_path, ppo_ptx=1.0, ppl_seq_len=32))
    assert "ptx_loss" in result.details["ppo_curve"][0]


def test_sentiment_rule():
    lexicon = llm_survey.sentiment_lexicon()
    assert lexicon["beautiful"] > 0 > lexicon["boring"]
    good = llm_survey.sentiment_reward("a beautiful , moving film", lexicon)
    bad = llm_survey.sentiment_reward("a dull and boring film", lexicon)
    assert 0.0 <= bad < 0.5 < good <= 1.0
    assert llm_survey.sentiment_reward("", lexicon) == 0.5


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim():
    experiment = load_experiment("llm-survey")
    result = reproduce("llm-survey", make_config(experiment, "quick"))
    for claim in result.claims:
        if claim.threshold is not None:
            assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f}, threshold {claim.threshold}"


@pytest.mark.slow
def test_ablation_with_learning_rate_zero_fails():
    experiment = load_experiment("llm-survey")
    result = reproduce("llm-survey", make_config(experiment, "quick", ablation="lr0", seeds=1))
    for metric in ("sft_instruction_gain", "dpo_reward_gain", "ppo_reward_gain"):
        gain = next(c for c in result.claims if c.metric == metric)
        assert gain.passed is False, metric
