"""ReAct's experiment: the quick reproduction (slow: three models are trained once per machine and
seed, then cached), the untrained ablation, determinism, the synthetic world, configs."""

import dataclasses
import random

import pytest
import torch

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.reasoning.react import COT_SC_SAMPLES, COT_SC_TEMPERATURE
from aicanon.reasoning.wiki_env import WikiEnvironment
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("react")

experiment = load_experiment("react")

TINY = {
    "train_questions": 12,
    "steps": 2,
    "batch_size": 2,
    "questions": 4,
    "claims": 2,
    "cot_samples": 3,
    "max_tokens": 8,
    "hidden_size": 16,
    "num_layers": 1,
    "vocab_size": 300,
    "seeds": 1,
    "checkpoint_every": 0,
}


@pytest.mark.slow
def test_quick_reproduction_react_beats_act_and_cot():
    cfg = make_config(experiment, "quick")
    result = reproduce("react", cfg)
    assert len(result.per_seed) == cfg.seeds == 1
    claims = {c.metric: c for c in result.claims}
    assert claims["react_minus_act_em"].threshold == 0.10 and claims["react_minus_cot_em"].threshold == 0.30
    for claim in result.claims:
        if claim.threshold is not None:
            assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    # Where the gain comes from: the thoughts make the comparisons (two ages) right.
    metrics = result.metrics
    assert metrics["react_comparison_em"] > metrics["act_comparison_em"] + 0.2
    assert "exact_match" in result.figures


def test_untrained_model_fails_the_quick_claims():
    cfg = make_config(
        experiment,
        "quick",
        ablation="untrained",
        seeds=1,
        questions=10,
        claims=4,
        cot_samples=3,
        max_tokens=16,
    )
    result = experiment.run(cfg)
    for claim in experiment.CLAIMS:
        if claim.quick is not None:
            assert claim.check(result.metrics[claim.metric], "quick") is False, claim.metric


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", cache="", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=1))
    second = experiment.run(dataclasses.replace(cfg, seed=1))
    assert first.metrics == second.metrics and first.details == second.details
    assert {
        "react_em",
        "act_em",
        "cot_em",
        "cot_sc_em",
        "react_to_cot_sc_em",
        "cot_sc_to_react_em",
        "react_fever_accuracy",
    } <= set(first.metrics)


def test_killed_training_resumes_to_the_uninterrupted_models(monkeypatch, tmp_path):
    # Three models of 6 steps, a checkpoint every 2; killed in the Act model's 4th step: the ReAct model
    # is restored (not retrained), the Act model resumes after its step 2 with AdamW and the shared
    # batch generator as they were, and the metrics equal the uninterrupted run's.
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    weights: dict[str, dict] = {}  # the trained models' weights, by format (tiny models' answers are coarse)
    train_model = experiment.train_model

    def keep_weights(cfg, fmt, *args, **kwargs):
        model = train_model(cfg, fmt, *args, **kwargs)
        weights[fmt] = {k: v.clone() for k, v in model.state_dict().items()}
        return model

    monkeypatch.setattr(experiment, "train_model", keep_weights)
    cfg = make_config(experiment, "quick", cache="", **{**TINY, "steps": 6})
    reference = experiment.run(cfg)
    reference_weights = dict(weights)
    cfg = dataclasses.replace(cfg, checkpoint_every=2)
    resumed, calls = interrupt_and_resume(
        monkeypatch, torch.optim.AdamW, "step", lambda: experiment.run(cfg), kill_at=6 + 4
    )
    assert len(calls) == 4 + 6  # the Act model's steps 3-6 and the CoT model's 6
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    for fmt in experiment.FORMATS:
        for name, value in reference_weights[fmt].items():
            assert torch.equal(weights[fmt][name], value), (fmt, name)
    assert not any((tmp_path / "_checkpoints" / "react").iterdir())
    assert experiment.Config.quick().checkpoint_every == 1000


def test_full_config_smoke_runs_with_tiny_overrides():
    cfg = make_config(experiment, "full", cache="", **{**TINY, "hidden_size": 32, "num_layers": 2})
    result = experiment.run(cfg)
    assert 0.0 <= result.metrics["react_em"] <= 1.0


def test_world_holds_out_people_and_the_oracle_answers_every_question():
    people, train, test = experiment.make_world(0, 0.25)
    assert not set(train) & set(test) and len(test) == len(people) // 4
    assert all((people[n].partner in test) == (n in test) for n in people)  # partners within a split
    env = WikiEnvironment(experiment.make_pages(people, 0))
    questions = experiment.make_questions(people, test, 30, experiment.KINDS, random.Random(0))
    for question in questions:
        steps = experiment.oracle(question, people, env)
        assert steps[-1][1] == f"finish[{question.answer}]"
        for _, action, observation in steps[:-1]:
            assert not observation.startswith("Could not find"), action
    # the bridge question's second search is the name the first observation gives
    bridge = next(q for q in questions if q.kind == "bridge")
    first, second, _ = experiment.oracle(bridge, people, env)
    assert second[1][len("search[") : -1] in first[2]


def test_training_text_trains_all_but_the_question():
    people, train, _ = experiment.make_world(0, 0.25)
    env = WikiEnvironment(experiment.make_pages(people, 0))
    [question] = experiment.make_questions(people, train, 1, ("bridge",), random.Random(0))
    steps = experiment.oracle(question, people, env)
    react = experiment.training_text(question, steps, "react")
    assert react[0] == (f"Question: {question.text}\n", False)
    assert all(trained for _, trained in react[1:])
    act = "".join(t for t, _ in experiment.training_text(question, steps, "act"))
    assert "Thought" not in act and "Observation 1:" in act
    cot = "".join(t for t, _ in experiment.training_text(question, steps, "cot"))
    assert "Thought: Let's think step by step." in cot and "I need" not in cot and "search[" not in cot


def test_configs_follow_the_paper():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert quick.seeds == 1 and quick.cot_samples == COT_SC_SAMPLES == 21
    assert quick.cot_temperature == COT_SC_TEMPERATURE == 0.7
    assert full.questions == 500  # the paper evaluates 500 HotpotQA dev questions
    assert full.train_questions > quick.train_questions and full.hidden_size > quick.hidden_size


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="ablation must be one of"):
        make_config(experiment, "quick", ablation="no-thoughts")
    with pytest.raises(ValueError, match="test_fraction"):
        make_config(experiment, "quick", test_fraction=0.0)
    with pytest.raises(ValueError, match="steps must be"):
        make_config(experiment, "quick", steps=0)
