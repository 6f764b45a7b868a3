"""MMLU (Hendrycks et al., ICLR 2021): 57 subjects of four-way multiple-choice questions, in the
original format of the paper's repository (hendrycks/test): ``mmlu.zip`` through the data registry,
holding ``data/{dev,val,test}/<subject>_<split>.csv``.

Each CSV is header-less, one question per record: ``question, A, B, C, D, answer`` (the answer a
letter A–D); fields are quoted where they hold commas or line breaks (the standard CSV dialect,
read with :mod:`csv`). ``dev`` holds the 5 few-shot examples of each subject (285), ``val`` the
questions for choosing hyperparameters (1,531 in these files), ``test`` the scored questions (14,042
in these files; the paper's text is quoted elsewhere as 1,540 and 14,079: unverified here).

A record that does not have six fields, has an empty question, or whose answer is not one of A–D
raises ``DataUnavailable`` naming the member file and the line: the file is damaged, not the
caller's input. Subjects are the file names' stems (``abstract_algebra``), as in the paper's code.
"""

from __future__ import annotations

import csv
import functools
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aicanon.core.checks import check_choice
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["ANSWER_LETTERS", "SPLITS", "MMLUQuestion", "load_mmlu", "mmlu_subjects", "parse_mmlu_csv"]

SPLITS = ("dev", "val", "test")
ANSWER_LETTERS = ("A", "B", "C", "D")
_ARCHIVE = "mmlu.zip"


@dataclass(frozen=True)
class MMLUQuestion:
    """One question: its ``subject`` (file stem), the ``question`` text, the four ``choices`` in the
    order A–D, and the correct ``answer`` letter."""

    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: str

    @property
    def answer_index(self) -> int:
        """0–3: the position of the correct choice."""
        return ANSWER_LETTERS.index(self.answer)


def parse_mmlu_csv(text: str, subject: str, source: str) -> list[MMLUQuestion]:
    """The questions of one header-less MMLU CSV (module docstring). ``source`` names the file in
    errors; a damaged record raises ``ValueError`` naming it and the line."""
    questions = []
    reader = csv.reader(io.StringIO(text))
    for record in reader:
        if not record or not any(field.strip() for field in record):
            continue
        where = f"{source} line {reader.line_num}"
        if len(record) != 6:
            raise ValueError(f"{where}: expected 6 fields (question, A, B, C, D, answer), got {len(record)}")
        question, *choices, answer = record
        answer = answer.strip()
        if answer not in ANSWER_LETTERS:
            raise ValueError(f"{where}: the answer must be one of {ANSWER_LETTERS}, got {answer!r}")
        if not question.strip():
            raise ValueError(f"{where}: the question is empty")
        questions.append(MMLUQuestion(subject, question, tuple(choices), answer))
    return questions


@functools.lru_cache(maxsize=2)
def _members(path: str, mtime_ns: int) -> dict[tuple[str, str], str]:
    """``(split, subject) -> CSV text`` of every member of the archive."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) < 2 or not name.endswith(".csv") or parts[-2] not in SPLITS:
                continue
            split, stem = parts[-2], parts[-1][: -len(".csv")]
            if stem.endswith(f"_{split}"):
                out[(split, stem[: -len(split) - 1])] = archive.read(name).decode("utf-8")
    return out


def _archive() -> dict[tuple[str, str], str]:
    path = fetch("mmlu", _ARCHIVE)
    try:
        return _members(str(path), Path(path).stat().st_mtime_ns)
    except (zipfile.BadZipFile, UnicodeDecodeError) as error:
        entry = data_file("mmlu", _ARCHIVE)
        raise DataUnavailable("mmlu", _ARCHIVE, entry.url, entry.sha256, f"{path}: {error}") from error


def mmlu_subjects() -> list[str]:
    """The subjects that have a test file, sorted (the paper's 57)."""
    return sorted(subject for split, subject in _archive() if split == "test")


def load_mmlu(split: str = "test", subjects: Sequence[str] | None = None) -> dict[str, list[MMLUQuestion]]:
    """``subject -> questions`` (file order) of ``split`` for ``subjects`` (default: all, sorted)."""
    check_choice("split", split, SPLITS)
    members = _archive()
    known = sorted(subject for s, subject in members if s == split)
    if subjects is None:
        subjects = known
    elif isinstance(subjects, str) or not isinstance(subjects, Sequence):
        raise TypeError(f"subjects must be a list of subject names or None, got {type(subjects).__name__}")
    out = {}
    for subject in subjects:
        if (split, subject) not in members:
            raise ValueError(f"subjects: {subject!r} is not an MMLU subject; subjects: {known}")
        source = f"mmlu.zip:data/{split}/{subject}_{split}.csv"
        try:
            out[subject] = parse_mmlu_csv(members[(split, subject)], subject, source)
        except ValueError as error:
            entry = data_file("mmlu", _ARCHIVE)
            raise DataUnavailable("mmlu", _ARCHIVE, entry.url, entry.sha256, str(error)) from error
    return out
