"""aicanon.reasoning.answers: numbers, the answer trigger, extraction fallbacks, voting."""

from __future__ import annotations

import pytest

from aicanon.reasoning.answers import (
    answer_after,
    extract_number,
    majority_vote,
    normalize_number,
    numbers_in,
)

pytestmark = pytest.mark.paper("chain-of-thought")


@pytest.mark.parametrize(
    "text, expected",
    [("18", "18"), ("18.0", "18"), ("0.50", "0.5"), ("1,200", "1200"), ("-0", "0"), ("$18.", "18"),
     ("-3.25", "-3.25"), ("abc", None), ("", None), ("inf", None)],
)  # fmt: skip
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


def test_numbers_in_reads_signs_separators_money_and_decimals():
    text = "She sells 16 - 3 - 4 = 9 eggs for $2 each, so 1,234.50 and -7 and .5 but not x2 or 3rd."
    assert numbers_in(text) == ["16", "3", "4", "9", "2", "1234.5", "-7", "0.5"]
    assert numbers_in("no numbers") == []


def test_answer_after_takes_the_last_trigger_up_to_its_sentence_end():
    text = "The answer is 3. Wait. 7 + 5 = 12. The answer is 12.5. Done"
    assert answer_after(text) == "12.5"
    assert answer_after("The answer is 1,000\nQ: next") == "1,000"
    assert answer_after("no trigger here") is None
    assert (
        answer_after("Therefore, the answer (arabic numerals) is 42", "the answer (arabic numerals) is")
        == "42"
    )


def test_extract_number_prefers_the_trigger_then_falls_back():
    assert extract_number("7 + 5 = 12. 12 - 3 = 9. The answer is 9.") == "9"
    assert extract_number("12 apples, then 9") == "9"
    assert extract_number("12 apples, then 9", fallback="first") == "12"
    assert extract_number("12 apples, then 9", fallback="none") is None
    assert extract_number("The answer is nine. 4 left") == "4"  # the trigger has no number: fall back
    assert extract_number("nothing") is None
    with pytest.raises(ValueError, match="fallback"):
        extract_number("1", fallback="middle")


def test_majority_vote_counts_breaks_ties_by_first_seen_and_weights():
    assert majority_vote(["18", "17", "18", None, "17"]) == ("18", {"18": 2.0, "17": 2.0})
    assert majority_vote(["17", "18", "18"])[0] == "18"
    assert majority_vote([None, None]) == (None, {})
    winner, totals = majority_vote(["1", "2", "2"], weights=[0.9, 0.2, 0.3])
    assert winner == "1" and totals == pytest.approx({"1": 0.9, "2": 0.5})
    with pytest.raises(ValueError, match="one entry per answer"):
        majority_vote(["1"], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        majority_vote(["1"], weights=[float("nan")])


def test_gsm8k_final_answers_are_read_back_exactly():
    from aicanon.datasets.gsm8k import load_gsm8k

    for problem in load_gsm8k("test")[:200]:
        assert extract_number(f"{problem.rationale} The answer is {problem.answer}.") == normalize_number(
            problem.answer
        )
