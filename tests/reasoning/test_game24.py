"""The Game of 24 task: the exact checker and solver on hand-checked puzzles, the paper's prompts,
parsing of proposals and values, the solver-labelled training text, the oracle model, bad input."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.datasets.game24 import TOT_TEST_INDICES, load_game24
from aicanon.language.completion import LanguageModel
from aicanon.reasoning.game24 import (
    COT_PROMPT,
    PROPOSE_PROMPT,
    VALUE_PROMPT,
    Game24Oracle,
    Game24Task,
    answer_expression,
    check_answer,
    current_numbers,
    evaluate_expression,
    is_valid_step,
    next_steps,
    parse_step,
    solutions,
    solvable,
    training_documents,
)

pytestmark = pytest.mark.paper("tree-of-thoughts")


def test_check_answer_is_the_papers_exact_test():
    assert check_answer("4 5 6 10", "Answer: (5 * (10 - 6)) + 4 = 24")
    assert check_answer("4 4 6 8", "Steps:\n...\nAnswer: (4 + 8) * (6 - 4) = 24")
    assert check_answer("1 5 5 5", "Answer: (5 - 1 / 5) * 5 = 24")  # needs a fraction: exact arithmetic
    assert not check_answer("4 4 6 8", "Answer: (4 + 8) * (6 - 4) + 1 = 25")  # an extra number
    assert not check_answer("2 9 10 12", "Answer: 2 * (12 - 10) = 24")  # numbers missing
    assert not check_answer("4 9 10 13", "Answer: (13 - 4) * (10 - 9) = 24")  # evaluates to 9
    assert not check_answer("4 9 10 13", "Answer: (13 - 4) / (10 - 10) = 24")  # wrong multiset
    assert not check_answer("1 1 1 1", "")
    assert not check_answer("1 2 3 4", "Answer: __import__('os') 1 2 3 4 = 24")  # never executed


def test_evaluate_expression_is_exact_and_refuses_anything_else():
    assert evaluate_expression("(5 - 1 / 5) * 5") == 24
    assert evaluate_expression("8 / 3") == Fraction(8, 3)
    for bad in ("2 ** 3", "abs(2)", "1 / 0", "x + 1", "(1 +"):
        with pytest.raises(ValueError):
            evaluate_expression(bad)
    with pytest.raises(TypeError, match="expression"):
        evaluate_expression(24)


def test_solver_on_hand_checked_puzzles():
    assert solvable("4 5 6 10") and solvable([1, 5, 5, 5]) and solvable("24")
    assert not solvable("1 1 1 1") and not solvable("11 12") and not solvable([1, 3, 3])
    assert solvable("4 4 10") and solvable("10 14")  # the value prompt's "sure" exemplars
    chains = solutions("4 4 6 8")
    assert chains and all(len(c) == 3 and c[-1].result == 24 for c in chains)
    for chain in chains:
        assert check_answer("4 4 6 8", f"Answer: {answer_expression('4 4 6 8', chain)} = 24")
    assert solutions("1 5 5 5") == []  # integer steps only; with fractions it is solvable
    assert solutions("1 5 5 5", integer_only=False)


def test_every_test_game_is_solvable():
    assert all(solvable(p.numbers) for p in load_game24(TOT_TEST_INDICES))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 13), min_size=4, max_size=4))
def test_solutions_are_correct_and_exist_iff_solvable_with_integer_steps(numbers):
    chains = solutions(numbers)
    x = " ".join(map(str, numbers))
    for chain in chains[:5]:
        assert all(step.arithmetic_is_correct() for step in chain)
        assert check_answer(x, f"Answer: {answer_expression(x, chain)} = 24")
    if chains:
        assert solvable(numbers)


def test_parse_step_and_current_numbers():
    step = parse_step("14 /  2 = 7 (left: 7 8 8)")  # the paper's exemplar has two spaces
    assert step is not None and step.op == "/" and step.result == 7 and step.remaining == (7, 8, 8)
    assert step.arithmetic_is_correct()
    assert not parse_step("2 + 2 = 5 (left: 5 6)").arithmetic_is_correct()
    assert parse_step("Answer: (4 + 8) * (6 - 4) = 24") is None and parse_step("") is None
    assert current_numbers("4 4 6 8", "") == "4 4 6 8"
    assert current_numbers("4 4 6 8", "4 + 8 = 12 (left: 4 6 12)\n") == "4 6 12"
    assert [s.text for s in next_steps("2 12")] == [
        "12 + 2 = 14 (left: 14)",
        "12 * 2 = 24 (left: 24)",
        "12 - 2 = 10 (left: 10)",
        "12 / 2 = 6 (left: 6)",
    ]
    with pytest.raises(TypeError, match="line"):
        parse_step(None)


def test_is_valid_step_checks_operands_arithmetic_and_what_is_left():
    assert is_valid_step("2 5 8 11", "11 - 2 = 9 (left: 5 8 9)")
    assert not is_valid_step("5 8 9", "8 * 5 = 30")  # no left list
    assert not is_valid_step("3 7 8", "5 + 3 = 8 (left: 7 8)")  # 5 is not left
    assert not is_valid_step("11 12 13", "13 + 11 = 25 (left: 12 25)")  # wrong arithmetic
    assert not is_valid_step("11 12 13", "13 + 11 = 24 (left: 11 24)")  # wrong remainder
    task = Game24Task("zero_shot", validate=True)
    text = "11 - 2 = 9 (left: 5 8 9)\n8 * 5 = 30\n"
    assert task.parse_proposals("2 5 8 11", "", text) == ["11 - 2 = 9 (left: 5 8 9)\n"]
    with pytest.raises(TypeError, match="validate"):
        Game24Task("paper", validate=1)


def test_paper_prompts_are_the_published_templates():
    task = Game24Task("paper")
    assert PROPOSE_PROMPT.count("\n") == 12 and "14 /  2 = 7 (left: 7 8 8)" in PROPOSE_PROMPT
    assert task.propose_prompt("4 5 6 10", "").endswith("Input: 4 5 6 10\nPossible next steps:\n")
    assert task.propose_prompt("4 5 6 10", "5 * 4 = 20 (left: 6 10 20)\n").endswith(
        "Input: 6 10 20\nPossible next steps:\n"
    )
    assert COT_PROMPT.count("Answer:") == 5 and task.cot_prompt("1 2 3 4").endswith("Input: 1 2 3 4\n")
    assert task.standard_prompt("1 2 3 4").count("Answer:") == 5
    assert VALUE_PROMPT.count("\nsure\n") == 3 and task.value_prompt("x", "a (left: 4 6)\n").endswith(
        "\n4 6\n"
    )
    # The last thought: the answer is generated from the CoT prompt and judged with the last-step prompt.
    y = "4 + 8 = 12 (left: 4 6 12)\n6 - 4 = 2 (left: 2 12)\n2 * 12 = 24 (left: 24)\n"
    assert task.propose_prompt("4 4 6 8", y) == task.cot_prompt("4 4 6 8", y)
    last = task.value_prompt("4 4 6 8", y + "Answer: (6 - 4) * (4 + 8) = 24\n")
    assert last.endswith("Input: 4 4 6 8\nAnswer: (6 - 4) * (4 + 8) = 24\nJudge:")
    zero = Game24Task("zero_shot")
    assert (
        "Input: 2 8 8 14" not in zero.propose_prompt("1 2 3 4", "") and len(zero.cot_prompt("1 2 3 4")) < 200
    )


def test_parse_proposals_and_values():
    task = Game24Task("paper")
    ys = task.parse_proposals("4 5 6 10", "", "5 * 4 = 20 (left: 6 10 20)\n\n10 - 6 = 4 (left: 4 4 5)\n")
    assert ys == ["5 * 4 = 20 (left: 6 10 20)\n", "10 - 6 = 4 (left: 4 4 5)\n"]
    y3 = "a (left: 4 20)\nb (left: 24)\nc (left: 24)\n"
    assert task.parse_proposals("x", y3, "Answer: 4 * 6 = 24\nInput: junk") == [y3 + "Answer: 4 * 6 = 24\n"]
    assert task.parse_proposals("x", y3, "nothing useful") == []
    assert task.parse_value("x", "a (left: 4 6)\n", ["4 * 6 = 24\nsure", "likely", "impossible"]) == 21.001
    assert task.parse_value("x", "a (left: 4 6)\n", ["", "maybe"]) == 0.0
    assert task.parse_value("x", y3 + "d (left: 24)\n", ["sure"]) == 0.0  # four steps and no answer
    with pytest.raises(ValueError, match="prompts"):
        Game24Task("few_shot")


def test_training_documents_are_solver_labelled_and_exclude_nothing_they_should_not():
    docs = training_documents(["4 4 6 8", "1 1 1 1"], random.Random(0))
    assert docs and all("1 1 1 1" not in prompt for prompt, _ in docs)  # unsolvable: skipped
    task = Game24Task("zero_shot")
    io = [c for p, c in docs if p == task.standard_prompt("4 4 6 8")]
    assert len(io) == 1 and check_answer("4 4 6 8", io[0])
    cot = [c for p, c in docs if p == task.cot_prompt("4 4 6 8")][0]
    assert cot.startswith("Steps:\n") and check_answer("4 4 6 8", cot)
    for prompt, completion in docs:
        if prompt.endswith("Possible next steps:\n"):
            steps = [parse_step(line) for line in completion.strip().split("\n")]
            assert all(s is not None and s.arithmetic_is_correct() for s in steps)
            flags = [solvable(s.remaining) for s in steps]
            assert flags == sorted(flags, reverse=True)  # steps that keep 24 reachable come first
        elif prompt.endswith("Judge:"):
            answer = prompt.split("Answer: ")[-1].split("\nJudge:")[0]
            assert (completion.strip() == "sure") == check_answer("4 4 6 8", "Answer: " + answer)
        elif prompt.startswith("Evaluate"):
            numbers = prompt.rstrip("\n").split("\n")[-1]
            assert (completion == "sure") == solvable(numbers)


def test_oracle_is_a_language_model_that_solves_with_both_prompt_sets():
    oracle = Game24Oracle()
    assert isinstance(oracle, LanguageModel)
    for prompts in ("paper", "zero_shot"):
        task = Game24Task(prompts)
        (io,), (cot,) = oracle.complete([task.standard_prompt("4 5 6 10"), task.cot_prompt("4 5 6 10")])
        assert check_answer("4 5 6 10", io.text) and check_answer("4 5 6 10", cot.text)
        (value,) = oracle.complete([task.value_prompt("x", "a (left: 1 1 1)\n")], n=1)[0]
        assert value.text == "impossible"
    with pytest.raises(ValueError, match="max_proposals"):
        Game24Oracle(0)
