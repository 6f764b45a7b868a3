"""Chain-of-thought prompting: the paper's exemplars, prompt formats of every style, answer
extraction, GSM8K accuracy against a hand-checked reference, bad input."""

from __future__ import annotations

import re

import pytest

from aicanon.datasets.gsm8k import load_gsm8k
from aicanon.language.completion import Completion
from aicanon.reasoning.chain_of_thought import (
    GSM8K_EXEMPLARS,
    STYLES,
    Exemplar,
    build_prompt,
    equations_of,
    extract_answer,
    format_exemplar,
    gsm8k_accuracy,
    prompt_answers,
    response_prefix,
)

pytestmark = pytest.mark.paper("chain-of-thought")

SHAWN = GSM8K_EXEMPLARS[4]


class ScriptedModel:
    """A LanguageModel that answers each prompt with a scripted text and records the calls."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls: list[dict] = []

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        self.calls.append(
            {"prompts": list(prompts), "max_tokens": max_tokens, "stop": stop, "t": temperature}
        )
        return [[Completion(self.answers[i], "stop")] for i in range(len(prompts))]


def test_the_papers_eight_gsm8k_exemplars_are_stored_and_their_arithmetic_is_right():
    assert len(GSM8K_EXEMPLARS) == 8
    assert [e.answer for e in GSM8K_EXEMPLARS] == ["6", "5", "39", "8", "9", "29", "33", "8"]
    assert GSM8K_EXEMPLARS[0].question.startswith("There are 15 trees in the grove.")
    for exemplar in GSM8K_EXEMPLARS:
        equations = re.findall(r"(\d+) ([-+*x]) (\d+) (?:=|is) (\d+)", exemplar.rationale)
        assert equations, exemplar.question
        for a, op, b, c in equations:
            assert eval(f"{a} {op.replace('x', '*')} {b}") == int(c)  # noqa: S307 (digits only)
        assert equations[-1][3] == exemplar.answer  # the last equation gives the answer


def test_every_style_formats_an_exemplar_as_section_3_3_describes():
    expected = {
        "standard": "A: The answer is 9.",
        "chain_of_thought": "A: Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then "
        "that is 4 more toys. 5 + 4 = 9. The answer is 9.",
        "equation_only": "A: 5 + 4 = 9. The answer is 9.",
        "variable_compute": "A: " + "." * len("5 + 4 = 9.") + " The answer is 9.",
        "reasoning_after_answer": "A: The answer is 9. Shawn started with 5 toys. If he got 2 toys each from "
        "his mom and dad, then that is 4 more toys. 5 + 4 = 9.",
    }
    assert set(expected) == set(STYLES)
    for style, answer in expected.items():
        assert format_exemplar(SHAWN, style) == f"Q: {SHAWN.question}\n{answer}"


def test_equations_are_read_from_rationales_with_equals_and_is():
    assert equations_of(GSM8K_EXEMPLARS[2].rationale) == "32 + 42 = 74. 74 - 35 = 39."
    assert equations_of(GSM8K_EXEMPLARS[5].rationale) == "5 * 4 = 20. 9 + 20 is 29."
    assert equations_of(GSM8K_EXEMPLARS[7].rationale) == "5 x 3 = 15. 23 - 15 is 8."
    assert equations_of("No numbers here.") == ""


def test_prompt_joins_exemplars_with_blank_lines_and_ends_with_the_query():
    prompt = build_prompt(GSM8K_EXEMPLARS[:2], "How many?", "chain_of_thought")
    assert prompt == (
        f"Q: {GSM8K_EXEMPLARS[0].question}\nA: {GSM8K_EXEMPLARS[0].rationale} The answer is 6.\n\n"
        f"Q: {GSM8K_EXEMPLARS[1].question}\nA: {GSM8K_EXEMPLARS[1].rationale} The answer is 5.\n\n"
        "Q: How many?\nA:"
    )
    assert build_prompt(GSM8K_EXEMPLARS[:1], "How many?", "standard", enforce_format=True).endswith(
        "Q: How many?\nA: The answer is"
    )
    dots = build_prompt([SHAWN], "How many?", "variable_compute", enforce_format=True)
    assert dots.endswith("A: .......... The answer is")  # "5 + 4 = 9." has 10 characters
    assert response_prefix(GSM8K_EXEMPLARS, "chain_of_thought") == ""
    assert response_prefix(GSM8K_EXEMPLARS, "reasoning_after_answer") == "The answer is"


def test_answer_extraction_follows_the_answer_sentence():
    assert extract_answer("3 + 4 = 7. The answer is 7.") == "7"
    assert extract_answer("The answer is 5. Then 5 + 2 = 7. The answer is 7.") == "7"  # the last one
    assert (
        extract_answer("The answer is 5. Then 5 + 2 = 7. The answer is 7.", "reasoning_after_answer") == "5"
    )
    assert extract_answer("The answer is $1,200.") == "1200"
    assert extract_answer("3 + 4 = 7.") is None  # strict: no answer sentence, no prediction
    assert extract_answer("The answer is seven.") is None
    assert extract_answer(" The answer is 12. 3 * 4 = 12.", "reasoning_after_answer") == "12"


@pytest.mark.parity
def test_gsm8k_accuracy_equals_a_hand_checked_reference_on_fixed_outputs():
    problems = load_gsm8k("test")[:6]
    assert [p.answer for p in problems] == ["18", "3", "70000", "540", "20", "64"]
    # Fixed model outputs for the first six GSM8K test problems, judged by hand:
    outputs = [
        "She has 16 - 3 - 4 = 9 eggs. 9 * 2 = 18. The answer is 18.",  # right
        "2 / 2 = 1. 2 + 1 = 3. The answer is 3.0.",  # right (3.0 = 3)
        "The profit is 200,000 - 130,000 = 70,000. The answer is $70,000.",  # right (commas, dollar)
        "3 * 3 = 9 sprints. 9 * 60 = 540 meters.",  # wrong: no answer sentence (strict extraction)
        "15 + 25 = 40. 60 - 40 = 20. The answer is 20 cups.",  # right
        "16 / 2 = 8. 8 * 5 = 40, 8 * 3 = 24. The answer is 62. So 64 in total.",  # wrong: states 62
    ]
    predictions = [extract_answer(o) for o in outputs]
    assert predictions == ["18", "3", "70000", None, "20", "62"]
    assert gsm8k_accuracy(predictions, [p.answer for p in problems]) == pytest.approx(4 / 6)


def test_prompt_answers_sends_one_batched_greedy_request_and_restores_the_prefix():
    model = ScriptedModel([" 9. Shawn had 5 toys.", " 4."])
    texts, answers = prompt_answers(
        model, GSM8K_EXEMPLARS, ["Q1?", "Q2?"], "reasoning_after_answer", max_tokens=20, enforce_format=True
    )
    assert len(model.calls) == 1 and model.calls[0]["t"] == 0.0 and model.calls[0]["max_tokens"] == 20
    assert all(p.endswith("A: The answer is") for p in model.calls[0]["prompts"])
    assert texts == [" The answer is 9. Shawn had 5 toys.", " The answer is 4."]
    assert answers == ["9", "4"]
    model = ScriptedModel([" 5 + 4 = 9. The answer is 9."])
    assert prompt_answers(model, [SHAWN], ["Q?"], "chain_of_thought")[1] == ["9"]
    assert model.calls[0]["prompts"][0].endswith("Q: Q?\nA:")


def test_bad_input_is_rejected_with_clear_messages():
    with pytest.raises(ValueError, match="style"):
        format_exemplar(SHAWN, "cot")
    with pytest.raises(TypeError, match="exemplar must be an Exemplar"):
        format_exemplar(("q", "r", "a"), "standard")
    with pytest.raises(TypeError, match=r"exemplars\[0\] must be an Exemplar"):
        build_prompt([("q", "r", "a")], "Q?")
    with pytest.raises(ValueError, match="question must be a non-empty str"):
        build_prompt(GSM8K_EXEMPLARS, "  ")
    with pytest.raises(ValueError, match="Exemplar.question"):
        Exemplar("", "r", "1")
    with pytest.raises(TypeError, match="Exemplar.answer must be a str"):
        Exemplar("q", "r", 1)
    with pytest.raises(ValueError, match="same length"):
        gsm8k_accuracy(["1"], ["1", "2"])
    with pytest.raises(ValueError, match="references must be numbers"):
        gsm8k_accuracy(["1"], ["one"])
    with pytest.raises(TypeError, match="LanguageModel"):
        prompt_answers(object(), GSM8K_EXEMPLARS, ["Q?"])
    with pytest.raises(ValueError, match="questions"):
        prompt_answers(ScriptedModel([]), GSM8K_EXEMPLARS, [])
