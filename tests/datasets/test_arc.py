"""aicanon.datasets.arc: the staged ARC files (Table 1's counts), the record fields, damaged files,
bad input."""

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import arc
from aicanon.datasets.arc import SPLITS, SUBSETS, arc_file_name, load_arc

pytestmark = pytest.mark.paper("arc")

# Table 1 of the paper: questions per partition.
TABLE_1 = {
    ("Challenge", "train"): 1119,
    ("Challenge", "dev"): 299,
    ("Challenge", "test"): 1172,
    ("Easy", "train"): 2251,
    ("Easy", "dev"): 570,
    ("Easy", "test"): 2376,
}


@pytest.mark.parametrize("subset", SUBSETS)
@pytest.mark.parametrize("split", SPLITS)
def test_partition_sizes_match_table_1(subset, split):
    questions = load_arc(subset, split)
    assert len(questions) == TABLE_1[subset, split]
    assert len({q.id for q in questions}) == len(questions)
    assert all(q.subset == subset and q.answer_key in q.labels for q in questions)
    # Table 3: 3 to 5 answer options.
    assert {q.num_choices for q in questions} <= {3, 4, 5}
    # Grades come from the CSV file for every question (Table 2: grades 3 to 9).
    assert {q.grade for q in questions} <= set(range(3, 10))


def test_the_first_challenge_test_question():
    first = load_arc("Challenge", "test")[0]
    assert first.id == "Mercury_7175875"
    assert first.stem.startswith("An astronomer observes that a planet rotates faster")
    assert first.labels == ("A", "B", "C", "D")
    assert first.answer_key == "C"
    assert first.answer == "Planetary days will become shorter."
    assert first.exam == "Mercury"


def test_numbered_labels_are_kept_as_written():
    numbered = [q for q in load_arc("Easy", "test") if q.labels[0] == "1"]
    assert numbered, "the Easy test set has questions labelled 1-4"
    assert all(q.answer_key in ("1", "2", "3", "4", "5") for q in numbered)


def test_file_names():
    assert arc_file_name("Easy", "dev") == "ARC-Easy/ARC-Easy-Dev.jsonl"
    assert arc_file_name("Challenge", "train", "csv") == "ARC-Challenge/ARC-Challenge-Train.csv"


GOOD_CHOICES = '[{"text": "x", "label": "A"}, {"text": "y", "label": "B"}]'


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("not json", "not an ARC record"),
        ('{"id": "q1", "answerKey": "A"}', "not an ARC record"),
        (
            '{"id": "q1", "question": {"stem": " ", "choices": ' + GOOD_CHOICES + '}, "answerKey": "A"}',
            "stem",
        ),
        (
            '{"id": "q1", "question": {"stem": "s", "choices": [{"text": "x", "label": "A"}]}, '
            '"answerKey": "A"}',
            "fewer than two or repeated",
        ),
        (
            '{"id": "q1", "question": {"stem": "s", "choices": ' + GOOD_CHOICES + '}, "answerKey": "C"}',
            "answer key",
        ),
    ],
)
def test_a_damaged_file_raises_data_unavailable_naming_it(tmp_path, monkeypatch, line, match):
    bad = tmp_path / "ARC-Easy-Test.jsonl"
    bad.write_text(line + "\n", encoding="utf-8")
    real_fetch = arc.fetch
    monkeypatch.setattr(
        arc, "fetch", lambda dataset, name: bad if name.endswith(".jsonl") else real_fetch(dataset, name)
    )
    with pytest.raises(DataUnavailable, match="ARC-Easy-Test.jsonl") as raised:
        load_arc("Easy", "test")
    assert match in str(raised.value)
    assert "line 1" in str(raised.value)


def test_a_damaged_csv_raises_data_unavailable(tmp_path, monkeypatch):
    bad = tmp_path / "ARC-Easy-Test.csv"
    bad.write_text("questionID,schoolGrade,examName,year\nq1,eight,X,2000\n", encoding="utf-8")
    real_fetch = arc.fetch
    monkeypatch.setattr(
        arc, "fetch", lambda dataset, name: bad if name.endswith(".csv") else real_fetch(dataset, name)
    )
    with pytest.raises(DataUnavailable, match="line 2"):
        load_arc("Easy", "test")


@pytest.mark.parametrize(("subset", "split"), [("hard", "test"), ("Easy", "validation"), ("easy", "test")])
def test_bad_subset_or_split(subset, split):
    with pytest.raises(ValueError, match="subset|split"):
        load_arc(subset, split)
