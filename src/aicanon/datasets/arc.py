"""ARC, the AI2 Reasoning Challenge (Clark et al., 2018): 7,787 grade-school science questions,
multiple choice, split into a Challenge Set (2,590 questions that both the paper's retrieval solver
and its word co-occurrence solver answered wrongly) and an Easy Set (the other 5,197), each with
train/dev/test partitions (Table 1: Challenge 1119/299/1172, Easy 2251/570/2376).

The official release ships every partition twice; both are read here, through the data registry
(``arc/ARC-<Subset>/ARC-<Subset>-<Split>.{jsonl,csv}``):

* the JSON-lines file, one question a line::

      {"id": "Mercury_7175875",
       "question": {"stem": "An astronomer observes ...",
                    "choices": [{"text": "Planetary density will decrease.", "label": "A"}, ...]},
       "answerKey": "C"}

  Labels are ``A``-``E`` or ``1``-``5`` (a few New York Regents questions are numbered); most
  questions have four choices, a few three or five (Table 3);
* the CSV file (``questionID, originalQuestionID, totalPossiblePoint, AnswerKey,
  isMultipleChoiceQuestion, includesDiagram, examName, schoolGrade, year, question, subject,
  category``), from which :func:`load_arc` takes each question's school grade, exam and year (the
  paper's Table 2 breaks the sets down by grade), joined on the question id.

A line that is not a question record (no stem, fewer than two choices, repeated labels, an answer
key that is not one of the labels) raises :class:`~aicanon.core.data.DataUnavailable` naming the
file and line: the file is damaged, not the caller's input.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

from aicanon.core.checks import check_choice
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["SPLITS", "SUBSETS", "ArcQuestion", "arc_file_name", "load_arc"]

SUBSETS = ("Challenge", "Easy")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class ArcQuestion:
    """One ARC question.

    ``labels``/``choices``: the answer options' labels and texts in file order; ``answer_key``: the
    correct label; ``subset``: ``"Challenge"`` or ``"Easy"``; ``grade``/``exam``/``year``: from the
    CSV file (``grade`` is ``None`` where the CSV gives none)."""

    id: str
    stem: str
    labels: tuple[str, ...]
    choices: tuple[str, ...]
    answer_key: str
    subset: str
    grade: int | None = None
    exam: str = ""
    year: str = ""

    @property
    def answer(self) -> str:
        """The correct option's text."""
        return self.choices[self.labels.index(self.answer_key)]

    @property
    def num_choices(self) -> int:
        return len(self.labels)


def arc_file_name(subset: str, split: str, extension: str = "jsonl") -> str:
    """The registry name of a partition's file: ``ARC-Challenge/ARC-Challenge-Test.jsonl``."""
    check_choice("subset", subset, SUBSETS)
    check_choice("split", split, SPLITS)
    check_choice("extension", extension, ("jsonl", "csv"))
    return f"ARC-{subset}/ARC-{subset}-{split.capitalize()}.{extension}"


def _damaged(name: str, where: str, why: str) -> DataUnavailable:
    entry = data_file("arc", name)
    return DataUnavailable("arc", name, entry.url, entry.sha256, f"{where}: {why}")


def _metadata(subset: str, split: str) -> dict[str, tuple[int | None, str, str]]:
    """question id -> (school grade, exam name, year) from the partition's CSV file."""
    name = arc_file_name(subset, split, "csv")
    path = fetch("arc", name)
    metadata = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                grade_text = row["schoolGrade"].strip()
                grade = int(grade_text) if grade_text else None
                metadata[row["questionID"]] = (grade, row["examName"], row["year"])
            except (KeyError, ValueError, AttributeError) as error:
                raise _damaged(name, f"{path} line {number}", f"not an ARC CSV row ({error!r})") from error
    return metadata


def load_arc(subset: str = "Challenge", split: str = "test") -> list[ArcQuestion]:
    """The questions of ``subset`` (``"Challenge"`` or ``"Easy"``) and ``split`` (``"train"``,
    ``"dev"`` or ``"test"``) in file order, with grade/exam/year from the CSV file."""
    name = arc_file_name(subset, split)
    path = fetch("arc", name)
    metadata = _metadata(subset, split)
    questions = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
                identifier, key = record["id"], record["answerKey"]
                stem = record["question"]["stem"]
                labels = tuple(str(choice["label"]) for choice in record["question"]["choices"])
                choices = tuple(str(choice["text"]) for choice in record["question"]["choices"])
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise _damaged(name, where, f"not an ARC record ({error!r})") from error
            if not isinstance(stem, str) or not stem.strip():
                raise _damaged(name, where, "the question stem is empty")
            if len(labels) < 2 or len(set(labels)) != len(labels):
                raise _damaged(name, where, f"the choices' labels {labels} are fewer than two or repeated")
            if key not in labels:
                raise _damaged(name, where, f"the answer key {key!r} is not one of the labels {labels}")
            grade, exam, year = metadata.get(identifier, (None, "", ""))
            questions.append(
                ArcQuestion(identifier, stem.strip(), labels, choices, key, subset, grade, exam, year)
            )
    return questions
