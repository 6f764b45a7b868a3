"""HotpotQA (Yang et al. 2018) and FEVER (Thorne et al. 2018) as the ReAct repository ships them
(``react-hotpotqa-fever`` through the data registry; ``ysymyth/ReAct`` @ 6bdb3a1, ``data/``):

* ``hotpot_dev_v1_simplified.json``: a JSON list of 7,405 ``{"question", "answer", "type"}``
  (type ``bridge`` or ``comparison``); the supporting contexts are not part of these files;
* ``hotpot_test_v1_simplified.json``: a JSON list of ``{"question"}`` (no answers);
* ``paper_dev.jsonl``: FEVER's paper dev split, one JSON object per line with ``id``, ``claim``,
  ``label`` (SUPPORTS, REFUTES or NOT ENOUGH INFO), ``verifiable`` and ``evidence``.

A record that lacks a field or a line that is not JSON raises ``DataUnavailable`` naming the file:
the file is damaged, not the caller's input. ReAct evaluates 500 random dev questions
(``random.Random(233).shuffle(range(7405))[:500]`` in its notebook): :func:`react_dev_indices`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from aicanon.core.checks import check_choice, check_int
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = [
    "FEVER_LABELS",
    "FeverClaim",
    "HotpotQuestion",
    "load_fever",
    "load_hotpotqa",
    "react_dev_indices",
]

DATASET = "react-hotpotqa-fever"
FEVER_LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
_HOTPOT_FILES = {"dev": "hotpot_dev_v1_simplified.json", "test": "hotpot_test_v1_simplified.json"}


@dataclass(frozen=True)
class HotpotQuestion:
    """One question; ``answer`` and ``type`` are None in the test split (unlabelled)."""

    question: str
    answer: str | None
    type: str | None


@dataclass(frozen=True)
class FeverClaim:
    id: int
    claim: str
    label: str


def _damaged(name: str, why: str) -> DataUnavailable:
    entry = data_file(DATASET, name)
    return DataUnavailable(DATASET, name, entry.url, entry.sha256, why)


def load_hotpotqa(split: str = "dev") -> list[HotpotQuestion]:
    """The questions of ``split`` (``"dev"`` or ``"test"``) in file order."""
    check_choice("split", split, tuple(_HOTPOT_FILES))
    name = _HOTPOT_FILES[split]
    path = fetch(DATASET, name)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise _damaged(name, f"{path} is not JSON ({error})") from error
    if not isinstance(records, list):
        raise _damaged(name, f"{path} is not a JSON list")
    out = []
    for number, record in enumerate(records):
        try:
            question = record["question"]
            answer = record["answer"] if split == "dev" else None
            kind = record["type"] if split == "dev" else None
        except (KeyError, TypeError) as error:
            raise _damaged(name, f"{path} record {number} is not a HotpotQA record ({error!r})") from error
        out.append(HotpotQuestion(question, answer, kind))
    return out


def load_fever(name: str = "paper_dev.jsonl") -> list[FeverClaim]:
    """The claims of FEVER's paper dev split in file order."""
    path = fetch(DATASET, name)
    claims = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                claim = FeverClaim(int(record["id"]), record["claim"], record["label"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise _damaged(name, f"{path} line {number}: not a FEVER record ({error})") from error
            if claim.label not in FEVER_LABELS:
                raise _damaged(name, f"{path} line {number}: label {claim.label!r} not in {FEVER_LABELS}")
            claims.append(claim)
    return claims


def react_dev_indices(size: int, count: int = 500, seed: int = 233) -> list[int]:
    """The evaluation subset of the ReAct notebooks: ``count`` indices of a ``size``-item split
    shuffled by ``random.Random(seed)`` (233 in ``hotpotqa.ipynb``)."""
    check_int("size", size, 1)
    check_int("count", count, 1, size)
    check_int("seed", seed, 0)
    indices = list(range(size))
    random.Random(seed).shuffle(indices)
    return indices[:count]
