"""The MMLU reader: the original header-less CSVs in mmlu.zip (counts, a golden record, quoted
fields), damaged records named by file and line, bad arguments."""

from __future__ import annotations

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import mmlu as mmlu_module
from aicanon.datasets.mmlu import MMLUQuestion, load_mmlu, mmlu_subjects, parse_mmlu_csv
from aicanon.evals.mmlu import SUBCATEGORIES

pytestmark = pytest.mark.paper("mmlu")


def test_splits_have_the_published_sizes():
    subjects = mmlu_subjects()
    assert len(subjects) == 57 and set(subjects) == set(SUBCATEGORIES)
    test = load_mmlu("test")
    assert sum(len(q) for q in test.values()) == 14042
    dev = load_mmlu("dev")
    assert all(len(q) == 5 for q in dev.values())
    assert sum(len(q) for q in load_mmlu("val").values()) == 1531
    assert len(test["professional_law"]) == 1534 and len(test["abstract_algebra"]) == 100


def test_a_golden_record():
    first = load_mmlu("dev", ["abstract_algebra"])["abstract_algebra"][0]
    assert first == MMLUQuestion(
        "abstract_algebra",
        "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.",
        ("0", "1", "2", "3"),
        "B",
    )
    assert first.answer_index == 1
    # A record whose fields are quoted (they hold commas):
    second = load_mmlu("dev", ["abstract_algebra"])["abstract_algebra"][1]
    assert second.choices == ("True, True", "False, False", "True, False", "False, True")
    assert second.question.startswith("Statement 1 | If aH is an element of a factor group")


def test_parse_handles_quotes_and_line_breaks():
    text = 'plain?,a,b,c,d,A\n"two\nlines, one ""quote""",x,"y, z",w,v,D\n\n'
    questions = parse_mmlu_csv(text, "anatomy", "file.csv")
    assert [q.answer for q in questions] == ["A", "D"]
    assert questions[1].question == 'two\nlines, one "quote"' and questions[1].choices[1] == "y, z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q?,a,b,c,d,A\nq?,a,b,c,A\n", "file.csv line 2: expected 6 fields"),
        ("q?,a,b,c,d,E\n", "file.csv line 1: the answer must be one of"),
        (" ,a,b,c,d,A\n", "file.csv line 1: the question is empty"),
    ],
)
def test_damaged_records_name_the_file_and_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_mmlu_csv(text, "anatomy", "file.csv")


def test_a_damaged_member_raises_data_unavailable(monkeypatch):
    def damaged(path, mtime_ns):
        return {("test", "anatomy"): "q?,a,b,c,d,A\nbroken,row\n"}

    monkeypatch.setattr(mmlu_module, "_members", damaged)
    with pytest.raises(DataUnavailable, match="anatomy_test.csv line 2: expected 6 fields"):
        load_mmlu("test", ["anatomy"])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mmlu("train")
    with pytest.raises(ValueError, match="'cooking' is not an MMLU subject"):
        load_mmlu("test", ["cooking"])
    with pytest.raises(TypeError, match="subjects must be a list"):
        load_mmlu("test", "anatomy")
