"""aicanon.datasets.math: the staged MATH and MATH-500 files, their subjects and levels, damaged files,
bad input."""

from __future__ import annotations

from collections import Counter

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import math as math_dataset
from aicanon.datasets.math import SUBJECTS, load_math

pytestmark = pytest.mark.paper("math-dataset")


def test_full_test_set_sizes_subjects_and_levels():
    problems = load_math("full")
    assert len(problems) == 5000
    assert Counter(p.subject for p in problems) == {
        "Algebra": 1187,
        "Intermediate Algebra": 903,
        "Prealgebra": 871,
        "Precalculus": 546,
        "Number Theory": 540,
        "Geometry": 479,
        "Counting & Probability": 474,
    }
    assert Counter(p.level for p in problems) == {5: 1324, 4: 1214, 3: 1131, 2: 894, 1: 437}
    first = problems[0]
    assert first.problem == "How many vertical asymptotes does the graph of $y=\\frac{2}{x^2+x-6}$ have?"
    assert first.solution.endswith("the graph has $\\boxed{2}$ vertical asymptotes.")
    assert (first.subject, first.level, first.answer, first.identifier) == ("Algebra", 3, None, "math/0")


def test_math500_is_a_subset_of_the_full_test_set_with_answers():
    subset = load_math("math500")
    assert len(subset) == 500 and all(p.answer is not None for p in subset)
    assert Counter(p.level for p in subset) == {5: 134, 4: 128, 3: 105, 2: 90, 1: 43}
    assert set(p.subject for p in subset) == set(SUBJECTS)
    assert subset[0].identifier == "test/precalculus/807.json"
    assert subset[0].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    full_problems = {p.problem for p in load_math("full")}
    assert sum(p.problem in full_problems for p in subset) >= 495  # the same problems (text as released)


@pytest.mark.parametrize(
    "subset, line, match",
    [
        ("full", "not json", "line 1: not a MATH record"),
        ("full", '{"problem": "p", "solution": "s", "type": "Algebra", "idx": 0}', "not a MATH record"),
        (
            "full",
            '{"problem": "p", "solution": "s", "type": "Algebra", "level": "Level 9", "idx": 0}',
            "outside 1-5",
        ),
        (
            "full",
            '{"problem": "p", "solution": "s", "type": "Calculus", "level": "Level 1", "idx": 0}',
            "subject",
        ),
        (
            "math500",
            '{"problem": "p", "solution": "s", "subject": "Algebra", "level": 2, "unique_id": "u"}',
            "answer",
        ),
        (
            "math500",
            '{"problem": 1, "solution": "s", "answer": "1", "subject": "Algebra", "level": 2, '
            '"unique_id": "u"}',
            "strings",
        ),
    ],
)
def test_a_damaged_file_raises_data_unavailable_naming_it(tmp_path, monkeypatch, subset, line, match):
    bad = tmp_path / "test.jsonl"
    bad.write_text(line + "\n", encoding="utf-8")
    monkeypatch.setattr(math_dataset, "fetch", lambda dataset, name: bad)
    with pytest.raises(DataUnavailable, match="test.jsonl") as raised:
        load_math(subset)
    assert match in str(raised.value)


def test_an_unrated_level_is_none(tmp_path, monkeypatch):
    good = tmp_path / "test.jsonl"
    good.write_text('{"problem": "p", "solution": "s", "type": "Geometry", "level": "Level ?", "idx": 7}\n')
    monkeypatch.setattr(math_dataset, "fetch", lambda dataset, name: good)
    (problem,) = load_math("full")
    assert problem.level is None and problem.identifier == "math/7"


def test_bad_subset():
    with pytest.raises(ValueError, match="subset must be one of"):
        load_math("train")
