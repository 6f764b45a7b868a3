"""aicanon.datasets.game24: the staged puzzles, the paper's test range, damaged files, bad input."""

from __future__ import annotations

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import game24
from aicanon.datasets.game24 import TOT_TEST_INDICES, load_game24

pytestmark = pytest.mark.paper("tree-of-thoughts")


def test_all_puzzles_and_the_first_row():
    puzzles = load_game24()
    assert len(puzzles) == 1362
    first = puzzles[0]
    assert first.numbers == (1, 1, 4, 6) and first.rank == 1 and first.text == "1 1 4 6"
    assert first.solve_time == pytest.approx(4.4) and first.solved_rate == pytest.approx(0.992)
    assert [p.rank for p in puzzles] == list(range(1, 1363))


def test_the_papers_test_games_are_ranks_901_to_1000():
    test = load_game24(TOT_TEST_INDICES)
    assert len(test) == 100
    assert test[0].rank == 901 and test[0].numbers == (4, 5, 6, 10)
    assert test[-1].rank == 1000


def test_a_damaged_row_raises_data_unavailable_naming_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "24.csv"
    bad.write_text(
        "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)\n1,1 1 4,4.4,99.20%,4.67,1.48\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(game24, "fetch", lambda dataset, name: bad)
    with pytest.raises(DataUnavailable, match="24.csv.*row 2.*four numbers"):
        load_game24()


@pytest.mark.parametrize("indices", [[1362], [-1], [True]])
def test_bad_indices(indices):
    with pytest.raises(ValueError, match="indices"):
        load_game24(indices)
