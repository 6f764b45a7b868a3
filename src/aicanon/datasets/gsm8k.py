"""GSM8K (Cobbe et al., 2021): 8,792 grade-school math word problems, 7,473 train and 1,319 test, in
the original JSON-lines format (``gsm8k/train.jsonl``, ``gsm8k/test.jsonl`` through the data
registry).

Each line is ``{"question": ..., "answer": ...}``; the answer is the worked solution, whose
calculator annotations ``<<48/2=24>>`` the dataset's authors inserted for their calculator, and whose
last line is ``#### <final answer>``. :func:`load_gsm8k` keeps the question, the solution with and
without the annotations, and the final answer as a string exactly as written after ``####``
(commas removed, as the reference evaluations do: ``1,000`` → ``1000``).

A line that is not JSON, lacks a field, or has no ``####`` line raises ``DataUnavailable`` naming the
file and the line: the file is damaged, not the caller's input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from aicanon.core.checks import check_choice
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["SPLITS", "GSM8KProblem", "load_gsm8k", "strip_calculator_annotations"]

SPLITS = ("train", "test")
_ANNOTATION = re.compile(r"<<[^>]*>>")


@dataclass(frozen=True)
class GSM8KProblem:
    """One problem: ``question``; ``solution`` (the annotated worked answer without the ``####``
    line); ``rationale`` (the solution without calculator annotations); ``answer`` (the final answer
    as a string, commas removed)."""

    question: str
    solution: str
    rationale: str
    answer: str


def strip_calculator_annotations(text: str) -> str:
    """``"48/2 = <<48/2=24>>24 clips"`` → ``"48/2 = 24 clips"``."""
    return _ANNOTATION.sub("", text)


def load_gsm8k(split: str = "test") -> list[GSM8KProblem]:
    """The problems of ``split`` (``"train"`` or ``"test"``) in file order."""
    check_choice("split", split, SPLITS)
    name = f"{split}.jsonl"
    path = fetch("gsm8k", name)

    def damaged(number: int, why: str) -> DataUnavailable:
        entry = data_file("gsm8k", name)
        return DataUnavailable("gsm8k", name, entry.url, entry.sha256, f"{path} line {number}: {why}")

    problems = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                question, answer = record["question"], record["answer"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise damaged(number, f"not a GSM8K record ({error})") from error
            if "####" not in answer:
                raise damaged(number, "the answer has no '#### <final answer>' line")
            solution, final = answer.rsplit("####", 1)
            solution = solution.rstrip()
            problems.append(
                GSM8KProblem(
                    question=question.strip(),
                    solution=solution,
                    rationale=strip_calculator_annotations(solution),
                    answer=final.strip().replace(",", ""),
                )
            )
    return problems
