"""MATH (Hendrycks et al., 2021): competition mathematics problems with step-by-step solutions, seven
subjects and difficulty levels 1-5, in the two JSON-lines files of the data registry ("MATH"):

* ``math/test.jsonl``: the full test set, 5,000 problems. Fields ``problem``, ``solution``,
  ``type`` (the subject), ``level`` (``"Level 3"``) and ``idx`` (the line's index).
* ``math_oai/test.jsonl``: MATH-500, the 500-problem subset of the test set that PRM800K (Lightman et
  al., 2023) held out. Fields ``problem``, ``solution``, ``answer`` (the final answer, as written
  in the solution's last ``\\boxed{}``), ``subject``, ``level`` (an int) and ``unique_id``
  (``test/<subject>/<n>.json``, the path in the original release).

:func:`load_math` reads either into :class:`MathProblem` records with one shape: the subject under
its paper name, the level as an int (``None`` for the original release's ``"Level ?"``), the given
answer where the file has one (MATH-500) and an identifier (``unique_id``, or ``math/<idx>`` for the
full file). The reference answer of a full-file problem is the last box of its solution
(:func:`aicanon.evals.math_answers.extract_boxed_answer`), as the paper scores it; it is not stored
here, since extracting it is part of what the harness tests.

A line that is not JSON, lacks a field, or has a subject or level outside the paper's raises
``DataUnavailable`` naming the file and the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aicanon.core.checks import check_choice
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["LEVELS", "SUBJECTS", "SUBSETS", "MathProblem", "load_math"]

SUBJECTS = (
    "Prealgebra",
    "Algebra",
    "Number Theory",
    "Counting & Probability",
    "Geometry",
    "Intermediate Algebra",
    "Precalculus",
)
"""The seven subjects, in the order of the paper's tables."""
LEVELS = (1, 2, 3, 4, 5)
SUBSETS = {"full": "math/test.jsonl", "math500": "math_oai/test.jsonl"}


@dataclass(frozen=True)
class MathProblem:
    """One problem: ``problem`` and ``solution`` (LaTeX text), ``subject`` (one of :data:`SUBJECTS`),
    ``level`` (1-5, or None when unrated), ``answer`` (the file's final answer; None in the full
    file) and ``identifier``."""

    problem: str
    solution: str
    subject: str
    level: int | None
    answer: str | None
    identifier: str


def _level(value: object) -> int | None:
    if isinstance(value, bool):
        raise ValueError(f"level {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.startswith("Level "):
        text = value.removeprefix("Level ")
        if text == "?":
            return None
        number = int(text)
    else:
        raise ValueError(f"level {value!r}")
    if number not in LEVELS:
        raise ValueError(f"level {value!r} outside 1-5")
    return number


def load_math(subset: str = "full") -> list[MathProblem]:
    """The problems of ``subset`` (``"full"``: the 5,000 test problems; ``"math500"``: MATH-500) in
    file order."""
    check_choice("subset", subset, tuple(SUBSETS))
    name = SUBSETS[subset]
    path = fetch("MATH", name)

    def damaged(number: int, why: str) -> DataUnavailable:
        entry = data_file("MATH", name)
        return DataUnavailable("MATH", name, entry.url, entry.sha256, f"{path} line {number}: {why}")

    problems = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if subset == "full":
                    subject, identifier, answer = record["type"], f"math/{record['idx']}", None
                else:
                    subject, identifier, answer = record["subject"], record["unique_id"], record["answer"]
                problem, solution, level = record["problem"], record["solution"], _level(record["level"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise damaged(number, f"not a MATH record ({error})") from error
            if subject not in SUBJECTS:
                raise damaged(number, f"subject {subject!r} is not one of the paper's {SUBJECTS}")
            if not all(isinstance(text, str) for text in (problem, solution)) or not (
                answer is None or isinstance(answer, str)
            ):
                raise damaged(number, "problem, solution and answer must be strings")
            problems.append(MathProblem(problem, solution, subject, level, answer, identifier))
    return problems
