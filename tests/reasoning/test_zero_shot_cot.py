"""Tests of aicanon.reasoning.zero_shot_cot: the two-stage prompts, answer cleansing per dataset,
Table 4's templates, the protocol on a scripted model, and bad input."""

from __future__ import annotations

import pytest

from aicanon.language.completion import Completion, check_completion_request, truncate_at_stop
from aicanon.reasoning.zero_shot_cot import (
    ANSWER_TRIGGERS,
    DATASETS,
    TEMPLATES,
    answer_prompt,
    clean_answer,
    direct_answer_trigger,
    reasoning_prompt,
    zero_shot,
    zero_shot_cot,
)

pytestmark = pytest.mark.paper("zero-shot-cot")


class ScriptedModel:
    """A LanguageModel that answers each prompt with a scripted text (by the prompt's ending),
    honouring stop sequences, and records every request."""

    def __init__(self, script: dict[str, str]) -> None:
        self.script = script
        self.requests: list[tuple[list[str], int, list[str]]] = []

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        prompts, stops = check_completion_request(prompts, max_tokens, temperature, n, stop)
        self.requests.append((prompts, max_tokens, stops))
        out = []
        for prompt in prompts:
            text = next((t for end, t in self.script.items() if prompt.endswith(end)), "")
            text, stopped = truncate_at_stop(text, stops)
            out.append([Completion(text, "stop" if stopped else "length")] * n)
        return out


def test_prompts_follow_the_paper_template():
    first = reasoning_prompt("Ann has 3 pens. How many?")
    assert first == "Q: Ann has 3 pens. How many?\nA: Let's think step by step."
    assert reasoning_prompt("Q?", "") == "Q: Q?\nA:"
    second = answer_prompt(first, " 3 pens.\n", ANSWER_TRIGGERS["gsm8k"])
    assert second == first + " 3 pens. \nTherefore, the answer (arabic numerals) is"  # as the authors' code
    assert answer_prompt(first, " 3 pens. ", "The answer is") == first + " 3 pens. The answer is"


def test_direct_answer_triggers():
    assert direct_answer_trigger("gsm8k") == "The answer (arabic numerals) is"
    assert direct_answer_trigger("aqua") == "Among A through E, the answer is"
    assert direct_answer_trigger("last_letters") == "The answer is"
    assert set(DATASETS) >= {"multiarith", "gsm8k", "aqua", "svamp", "strategyqa", "coin_flip"}


@pytest.mark.parametrize(
    ("text", "dataset", "expected"),
    [
        (" 1,200 apples, then 3 more.", "gsm8k", "1200"),
        (" -3.", "multiarith", "-3"),
        (" 18.5 dollars", "svamp", "18.5"),
        (" 12.", "gsm8k", "12"),
        (" nothing here", "gsm8k", None),
        (" (C) 12 then E", "aqua", "C"),
        (" F.", "bigbench_date", "F"),
        (" F.", "object_tracking", None),
        (' "Yes", of course.', "strategyqa", "yes"),
        (" no.", "coin_flip", "no"),
        (' "ky ab".', "last_letters", "kyab"),
        ("", "last_letters", None),
    ],
)
def test_answer_cleansing(text, dataset, expected):
    assert clean_answer(text, dataset) == expected


def test_table4_templates():
    assert len(TEMPLATES) == 16
    assert TEMPLATES[0].trigger == "Let's think step by step." and TEMPLATES[0].paper_accuracy == 78.7
    counts = {c: sum(t.category == c for t in TEMPLATES) for c in ("instructive", "misleading", "irrelevant")}
    assert counts == {"instructive": 9, "misleading": 4, "irrelevant": 3}
    # within a category the table is sorted by accuracy; every instructive beats every other
    assert min(t.paper_accuracy for t in TEMPLATES if t.category == "instructive") > max(
        t.paper_accuracy for t in TEMPLATES if t.category != "instructive"
    )


def test_two_stage_protocol_on_a_scripted_model():
    model = ScriptedModel(
        {
            "step by step.": " Ann starts with 3. 3 + 4 = 7. The answer is 7.\n\nQ: next",
            "(arabic numerals) is": " 7, I think 8.",
        }
    )
    outputs = zero_shot_cot(model, ["Ann has 3 pens. She buys 4. How many?"], max_reasoning_tokens=50)
    (first, stage1_tokens, stops1), (second, stage2_tokens, stops2) = model.requests
    assert first == ["Q: Ann has 3 pens. She buys 4. How many?\nA: Let's think step by step."]
    assert (stage1_tokens, stage2_tokens, stops1, stops2) == (50, 32, ["\n\nQ:"], ["\n\nQ:"])
    out = outputs[0]
    assert out.rationale == " Ann starts with 3. 3 + 4 = 7. The answer is 7."
    assert out.answer_prompt == first[0] + out.rationale + " \nTherefore, the answer (arabic numerals) is"
    assert out.answer_text == " 7, I think 8." and out.answer == "7"  # the first number (zero-shot rule)


def test_reasoning_stop_and_adapted_answer_trigger():
    model = ScriptedModel({"step by step.": " 3 + 4 = 7. The answer is 7.", "The answer is": " 7."})
    out = zero_shot_cot(model, ["Q?"], answer_trigger="The answer is", reasoning_stop=["The answer is"])[0]
    assert model.requests[0][2] == ["\n\nQ:", "The answer is"] and model.requests[1][2] == ["\n\nQ:"]
    assert out.rationale == " 3 + 4 = 7. "
    assert out.answer_prompt == "Q: Q?\nA: Let's think step by step. 3 + 4 = 7. The answer is"
    assert out.answer == "7"


def test_zero_shot_baseline_is_one_stage():
    model = ScriptedModel({"(arabic numerals) is": " 12 apples."})
    outputs = zero_shot(model, ["A?", "B?"])
    assert len(model.requests) == 1 and model.requests[0][1] == 32
    assert [o.answer_prompt for o in outputs] == [
        "Q: A?\nA: The answer (arabic numerals) is",
        "Q: B?\nA: The answer (arabic numerals) is",
    ]
    assert [o.answer for o in outputs] == ["12", "12"] and outputs[0].rationale == ""


def test_batched_equals_per_question():
    model = ScriptedModel({"step by step.": " 2 + 2 = 4.", "is": " 4."})
    questions = ["A?", "B?", "C?"]
    batched = zero_shot_cot(model, questions)
    single = [zero_shot_cot(model, [q])[0] for q in questions]
    assert batched == single


def test_bad_input():
    model = ScriptedModel({})
    with pytest.raises(ValueError, match="dataset"):
        clean_answer("1", "imagenet")
    with pytest.raises(TypeError, match="text"):
        clean_answer(3, "gsm8k")
    with pytest.raises(ValueError, match="question"):
        reasoning_prompt("  ")
    with pytest.raises(TypeError, match="model"):
        zero_shot_cot(object(), ["Q?"])
    with pytest.raises(ValueError, match="questions"):
        zero_shot_cot(model, "Q?")
    with pytest.raises(ValueError, match="questions"):
        zero_shot(model, [])
    with pytest.raises(ValueError, match="max_reasoning_tokens"):
        zero_shot_cot(model, ["Q?"], max_reasoning_tokens=0)
    with pytest.raises(ValueError, match="answer_trigger"):
        zero_shot_cot(model, ["Q?"], answer_trigger=" ")
    with pytest.raises(ValueError, match="dataset"):
        direct_answer_trigger("mnist")
