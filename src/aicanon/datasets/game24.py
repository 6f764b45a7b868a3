"""The Game of 24 puzzles of Tree of Thoughts (Yao et al., 2023): 1,362 sets of four numbers from
4nums.com, sorted by human solving time (``game24/24.csv`` through the data registry, the file of the
paper's repository).

Each row: ``Rank``, ``Puzzles`` (four numbers separated by spaces), ``AMT (s)`` (mean human solving
time), ``Solved rate`` (a percentage), and the 1-sigma mean and standard deviation of the time. The
paper evaluates on the rows at 0-based indices 900–999 (:data:`TOT_TEST_INDICES`, "relatively hard
games"; ranks 901–1000).

A row that does not parse raises ``DataUnavailable`` naming the file and the row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["TOT_TEST_INDICES", "Game24Puzzle", "load_game24"]

TOT_TEST_INDICES = range(900, 1000)
"""The 100 test games of the paper (0-based row indices, as its code's ``task_start_index``)."""


@dataclass(frozen=True)
class Game24Puzzle:
    """``numbers`` (four ints), ``rank`` (1 = fastest solved by people), ``solve_time`` (mean seconds)
    and ``solved_rate`` (fraction of people who solved it)."""

    numbers: tuple[int, int, int, int]
    rank: int
    solve_time: float
    solved_rate: float

    @property
    def text(self) -> str:
        """The input as the paper's prompts show it: ``"4 5 6 10"``."""
        return " ".join(str(n) for n in self.numbers)


def load_game24(indices: range | list[int] | None = None) -> list[Game24Puzzle]:
    """All puzzles in file order, or those at the given 0-based ``indices``."""
    name = "24.csv"
    path = fetch("game24", name)
    puzzles = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                values = tuple(int(v) for v in row["Puzzles"].split())
                if len(values) != 4:
                    raise ValueError(f"expected four numbers, got {row['Puzzles']!r}")
                puzzles.append(
                    Game24Puzzle(
                        numbers=values,  # type: ignore[arg-type]
                        rank=int(row["Rank"]),
                        solve_time=float(row["AMT (s)"]),
                        solved_rate=float(row["Solved rate"].rstrip("%")) / 100,
                    )
                )
            except (KeyError, ValueError, AttributeError) as error:
                entry = data_file("game24", name)
                raise DataUnavailable(
                    "game24", name, entry.url, entry.sha256, f"{path} row {number} does not parse: {error}"
                ) from error
    if indices is None:
        return puzzles
    chosen = list(indices)
    for index in chosen:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(puzzles):
            raise ValueError(f"indices must be ints in [0, {len(puzzles)}), got {index!r}")
    return [puzzles[i] for i in chosen]
