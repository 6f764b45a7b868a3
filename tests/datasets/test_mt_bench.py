"""aicanon.datasets.mt_bench: the staged files, their fields, damaged files, bad input."""

from __future__ import annotations

import collections

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import mt_bench
from aicanon.datasets.mt_bench import (
    CATEGORIES,
    MODELS,
    load_judge_prompts,
    load_model_answers,
    load_questions,
    load_reference_answers,
)

pytestmark = pytest.mark.paper("llm-judge-arena")


def test_eighty_two_turn_questions_ten_per_category():
    questions = load_questions()
    assert [q.question_id for q in questions] == list(range(81, 161))
    assert collections.Counter(q.category for q in questions) == {c: 10 for c in CATEGORIES}
    assert all(len(q.turns) == 2 for q in questions)
    first = questions[0]
    assert first.category == "writing" and first.turns[0].startswith("Compose an engaging travel blog post")
    assert first.turns[1] == "Rewrite your previous response. Start every sentence with the letter A."
    race = next(q for q in questions if q.question_id == 101)
    assert race.reference == ("You are in second place.", "Uncertain.")


def test_judge_prompts_are_the_eight_published_ones():
    prompts = load_judge_prompts()
    assert sorted(prompts) == sorted(
        f"{base}{suffix}"
        for base in ("single-v1", "single-math-v1", "pair-v2", "pair-math-v1")
        for suffix in ("", "-multi-turn")
    )
    single = prompts["single-v1"]
    assert single.type == "single" and single.output_format == "[[rating]]"
    assert single.system_prompt == "You are a helpful assistant."
    assert '"Rating: [[5]]"' in single.prompt_template and "{answer}" in single.prompt_template
    pair = prompts["pair-v2"]
    assert pair.type == "pairwise" and pair.output_format == "[[A]]"
    assert '"[[C]]" for a tie' in pair.system_prompt
    assert [
        p.reference_based for p in (single, pair, prompts["pair-math-v1"], prompts["single-math-v1"])
    ] == [
        False,
        False,
        True,
        True,
    ]
    assert prompts["pair-v2-multi-turn"].multi_turn and not pair.multi_turn


def test_reference_answers_cover_math_reasoning_and_coding():
    references = load_reference_answers()
    categories = {q.question_id: q.category for q in load_questions()}
    assert sorted(references) == list(range(101, 131))
    assert {categories[i] for i in references} == {"reasoning", "math", "coding"}
    assert references[101].model_id == "gpt-4" and len(references[101].turns) == 2
    assert references[101].turns[0].startswith("If you have just overtaken the second person")


@pytest.mark.parametrize("model", MODELS)
def test_model_answers(model):
    answers = load_model_answers(model)
    assert sorted(answers) == list(range(81, 161))
    assert all(a.model_id == model and len(a.turns) == 2 and a.turns[0] for a in answers.values())


@pytest.mark.parametrize(
    "line, match",
    [
        ("not json", "line 1: not JSON"),
        ("[1, 2]", "line 1: not a JSON object"),
        ('{"question_id": 1, "category": "math"}', "line 1: not an MT-Bench question"),
        ('{"question_id": 1, "category": "math", "turns": "one string"}', "not an MT-Bench question"),
    ],
)
def test_a_damaged_question_file_raises_data_unavailable_naming_it(tmp_path, monkeypatch, line, match):
    bad = tmp_path / "question.jsonl"
    bad.write_text(line + "\n", encoding="utf-8")
    monkeypatch.setattr(mt_bench, "fetch", lambda dataset, name: bad)
    with pytest.raises(DataUnavailable, match="question.jsonl") as raised:
        load_questions()
    assert match in str(raised.value)


def test_damaged_answers_and_prompts(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 81, "model_id": "x", "choices": []}\n', encoding="utf-8")
    monkeypatch.setattr(mt_bench, "fetch", lambda dataset, name: bad)
    with pytest.raises(DataUnavailable, match="not an MT-Bench answer"):
        load_model_answers("gpt-4o")
    bad.write_text('{"name": "x", "type": "single"}\n', encoding="utf-8")
    with pytest.raises(DataUnavailable, match="without the text field"):
        load_judge_prompts()


def test_bad_model_name():
    with pytest.raises(ValueError, match="model"):
        load_model_answers("gpt-5")
