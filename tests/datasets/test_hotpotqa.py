import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets.hotpotqa import FEVER_LABELS, load_fever, load_hotpotqa, react_dev_indices

pytestmark = pytest.mark.paper("react")


def test_hotpotqa_dev_and_test():
    dev = load_hotpotqa("dev")
    assert len(dev) == 7405
    first = dev[0]
    assert first.question == "Were Scott Derrickson and Ed Wood of the same nationality?"
    assert (first.answer, first.type) == ("yes", "comparison")
    assert {q.type for q in dev} == {"bridge", "comparison"}
    test = load_hotpotqa("test")
    assert test and test[0].answer is None and test[0].question.startswith("What position on the Billboard")


def test_fever_paper_dev():
    claims = load_fever()
    assert claims[0].claim.startswith("Colin Kaepernick became a starting quarterback")
    assert claims[0].label == "NOT ENOUGH INFO" and claims[0].id == 91198
    assert {c.label for c in claims} == set(FEVER_LABELS)


def test_react_dev_indices_follow_the_notebook():
    import random

    expected = list(range(7405))
    random.Random(233).shuffle(expected)
    assert react_dev_indices(7405) == expected[:500]
    assert len(set(react_dev_indices(100, 50))) == 50


def test_damaged_file_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "react-hotpotqa-fever"
    folder.mkdir()
    (folder / "paper_dev.jsonl").write_text("not json\n")
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    monkeypatch.setenv("AICANON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AICANON_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="paper_dev.jsonl"):
        load_fever()


def test_bad_input():
    with pytest.raises(ValueError, match="split"):
        load_hotpotqa("train")
    with pytest.raises(ValueError, match="count"):
        react_dev_indices(10, 11)
