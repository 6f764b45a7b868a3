"""aicanon.datasets.gsm8k: the staged files, the final-answer parsing, damaged files, bad input."""

from __future__ import annotations

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import gsm8k
from aicanon.datasets.gsm8k import load_gsm8k, strip_calculator_annotations

pytestmark = pytest.mark.paper("chain-of-thought")


def test_split_sizes_and_the_first_test_problem():
    test = load_gsm8k("test")
    assert [len(test), len(load_gsm8k("train"))] == [1319, 7473]
    first = test[0]
    assert first.question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert first.answer == "18"
    assert first.solution.startswith("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.")
    assert first.rationale.startswith("Janet sells 16 - 3 - 4 = 9 duck eggs a day.")
    assert "####" not in first.solution and "<<" not in first.rationale


def test_every_final_answer_is_a_plain_number():
    for problem in load_gsm8k("test"):
        float(problem.answer)  # commas removed, no units
        assert "," not in problem.answer and problem.answer == problem.answer.strip()


def test_calculator_annotations_are_removed():
    assert strip_calculator_annotations("48/2 = <<48/2=24>>24 clips") == "48/2 = 24 clips"
    assert strip_calculator_annotations("no annotation") == "no annotation"


@pytest.mark.parametrize(
    "line, match",
    [
        ("not json", "line 1: not a GSM8K record"),
        ('{"question": "q"}', "line 1: not a GSM8K record"),
        ('{"question": "q", "answer": "no final line"}', "no '#### <final answer>' line"),
    ],
)
def test_a_damaged_file_raises_data_unavailable_naming_it(tmp_path, monkeypatch, line, match):
    bad = tmp_path / "test.jsonl"
    bad.write_text(line + "\n", encoding="utf-8")
    monkeypatch.setattr(gsm8k, "fetch", lambda dataset, name: bad)
    with pytest.raises(DataUnavailable, match="test.jsonl") as raised:
        load_gsm8k("test")
    assert match in str(raised.value)


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_gsm8k("dev")
