"""MT-Bench (Zheng et al., 2023): 80 two-turn questions in eight categories, the judge prompts, the
GPT-4 reference answers and a few models' answers, in FastChat's JSON-lines format (``mt-bench``
through the data registry).

* ``mt_bench/question.jsonl``: ``{"question_id", "category", "turns": [turn 1, turn 2]}`` and, for
  some questions, ``"reference": [...]`` (short reference answers written by the authors);
* ``judge_prompts.jsonl``: the eight judge prompts (``single-v1``, ``single-math-v1``, their
  ``-multi-turn`` versions, ``pair-v2``, ``pair-math-v1`` and their ``-multi-turn`` versions), each
  ``{"name", "type", "system_prompt", "prompt_template", "description", "category",
  "output_format"}``;
* ``mt_bench/reference_answer/gpt-4.jsonl`` and ``mt_bench/model_answer/<model>.jsonl``: answers as
  ``{"question_id", "model_id", "choices": [{"index": 0, "turns": [answer 1, answer 2]}]}``; the first
  choice is the answer (FastChat reads ``choices[0]`` too).

A line that is not JSON or lacks a field raises ``DataUnavailable`` naming the file and the line: the
file is damaged, not the caller's input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicanon.core.checks import check_choice
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = [
    "CATEGORIES",
    "DATASET",
    "MODELS",
    "JudgePrompt",
    "ModelAnswer",
    "MTBenchQuestion",
    "load_judge_prompts",
    "load_model_answers",
    "load_questions",
    "load_reference_answers",
]

DATASET = "mt-bench"
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
"""The eight categories, ten questions each, in file order."""
MODELS = ("llama-2-chat7b", "llama-2-chat13b", "gpt-4o")
"""The model answer sets staged with the data."""


@dataclass(frozen=True)
class MTBenchQuestion:
    """One question: ``turns`` holds the two user turns; ``reference`` the authors' short reference
    answers where the file gives them (empty otherwise)."""

    question_id: int
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgePrompt:
    """One judge prompt of ``judge_prompts.jsonl``: ``type`` is ``"single"`` or ``"pairwise"``;
    ``prompt_template`` is a ``str.format`` template (fields such as ``{question}``, ``{answer_a}``,
    ``{ref_answer_1}``); ``output_format`` is ``"[[rating]]"`` or ``"[[A]]"``."""

    name: str
    type: str
    system_prompt: str
    prompt_template: str
    description: str
    category: str
    output_format: str

    @property
    def multi_turn(self) -> bool:
        return self.name.endswith("-multi-turn")

    @property
    def reference_based(self) -> bool:
        return "{ref_answer_1}" in self.prompt_template


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answers to one question's turns."""

    question_id: int
    model_id: str
    turns: tuple[str, ...]


def _records(name: str) -> list[tuple[int, dict[str, Any], Path]]:
    path = fetch(DATASET, name)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise _damaged(name, path, number, f"not JSON ({error})") from error
            if not isinstance(record, dict):
                raise _damaged(name, path, number, f"not a JSON object (a {type(record).__name__})")
            rows.append((number, record, path))
    return rows


def _damaged(name: str, path: Path, number: int, why: str) -> DataUnavailable:
    entry = data_file(DATASET, name)
    return DataUnavailable(DATASET, name, entry.url, entry.sha256, f"{path} line {number}: {why}")


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a non-empty list of str")
    return tuple(value)


def load_questions() -> list[MTBenchQuestion]:
    """The 80 questions in file order (ids 81-160)."""
    name = "mt_bench/question.jsonl"
    questions = []
    for number, record, path in _records(name):
        try:
            question = MTBenchQuestion(
                question_id=int(record["question_id"]),
                category=str(record["category"]),
                turns=_strings(record["turns"]),
                reference=_strings(record["reference"]) if "reference" in record else (),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise _damaged(name, path, number, f"not an MT-Bench question ({error!r})") from error
        questions.append(question)
    return questions


def load_judge_prompts() -> dict[str, JudgePrompt]:
    """The judge prompts by name (``"single-v1"``, ``"pair-math-v1-multi-turn"``, ...)."""
    name = "judge_prompts.jsonl"
    prompts = {}
    fields = ("name", "type", "system_prompt", "prompt_template", "description", "category", "output_format")
    for number, record, path in _records(name):
        missing = [f for f in fields if not isinstance(record.get(f), str)]
        if missing:
            raise _damaged(name, path, number, f"a judge prompt without the text field(s) {missing}")
        prompts[record["name"]] = JudgePrompt(**{f: record[f] for f in fields})
    return prompts


def _answers(name: str) -> dict[int, ModelAnswer]:
    answers = {}
    for number, record, path in _records(name):
        try:
            answer = ModelAnswer(
                question_id=int(record["question_id"]),
                model_id=str(record["model_id"]),
                turns=_strings(record["choices"][0]["turns"]),
            )
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise _damaged(name, path, number, f"not an MT-Bench answer ({error!r})") from error
        answers[answer.question_id] = answer
    return answers


def load_reference_answers() -> dict[int, ModelAnswer]:
    """GPT-4's reference answers by question id (the 30 math, reasoning and coding questions)."""
    return _answers("mt_bench/reference_answer/gpt-4.jsonl")


def load_model_answers(model: str) -> dict[int, ModelAnswer]:
    """A staged model's answers by question id; ``model`` is one of :data:`MODELS`."""
    check_choice("model", model, MODELS)
    return _answers(f"mt_bench/model_answer/{model}.jsonl")
