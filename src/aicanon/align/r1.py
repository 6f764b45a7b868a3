"""DeepSeek-R1's rule-based rewards, template and distillation data (DeepSeek-AI 2025, arXiv 2501.12948).

**R1-Zero (Section 2.2).** GRPO (:mod:`aicanon.align.grpo`, Section 2.2.1's Eqs. 1-3) is applied to
the *base* model with no supervised data; the reward is a rule, not a learned model (Section 2.2.2):

* an **accuracy reward**: 1 when the final answer, given "in a specified format", equals the truth
  (for math: checked deterministically; here: the number inside ``<answer> … </answer>``);
* a **format reward**: 1 when the model puts its thinking between ``<think>`` and ``</think>`` and
  its answer between ``<answer>`` and ``</answer>``.

The total reward is their sum (the paper gives no weights; :func:`r1_reward` takes them, default 1
and 1). The prompt is the paper's template (Table 1, :data:`R1_ZERO_TEMPLATE`), with the question in
place of ``prompt``; the template constrains the *structure* only, not the content.

**R1 (Section 2.3.1, cold start).** A few thousand long chain-of-thought examples in the readable
output format fine-tune the base model before RL; :func:`format_trace` writes a worked solution in
that format.

**Distillation (Section 2.4).** A smaller model is fine-tuned (SFT only, no RL) on reasoning traces
the stronger model wrote; the traces are *rejection-sampled* (Section 2.3.3): for each prompt
several responses are sampled and only the correct ones (and here: well-formatted ones) are kept
(:func:`rejection_sample`); :func:`distillation_examples` turns them into SFT examples
(:func:`aicanon.align.sft.tokenize_example`).

Departures from the paper, and why:

* A response is well-formatted when it is exactly ``<think> … </think>`` then ``<answer> … </answer>``
  (whitespace around and between the blocks allowed; nothing else; no nested or repeated tags).
  The paper states the requirement but not its checker.
* The accuracy reward checks the answer block's number (:func:`aicanon.reasoning.answers.
  normalize_number`), our tasks' answers being numbers; the paper checks a boxed answer (math) or
  compiles and tests code. A badly formatted response earns no accuracy reward (the answer must be
  "in a specified format").
* Rejection sampling keeps at most ``max_per_prompt`` distinct correct traces per prompt; the paper
  gives no number (it keeps ~600k reasoning samples in total and filters mixed languages, long
  paragraphs and code blocks, which do not arise here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aicanon.align.sft import SFTExample, tokenize_example
from aicanon.core.checks import check_float, check_int
from aicanon.reasoning.answers import normalize_number

__all__ = [
    "R1_ZERO_TEMPLATE",
    "ParsedResponse",
    "Trace",
    "accuracy_reward",
    "distillation_examples",
    "format_reward",
    "format_trace",
    "parse_response",
    "r1_prompt",
    "r1_reward",
    "rejection_sample",
]

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {prompt}. Assistant:"
)
"""Table 1 of the paper, the template of DeepSeek-R1-Zero; ``{prompt}`` is replaced by the question."""

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_RESPONSE = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _check_texts(name: str, values: Any, count: int | None = None) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of str, got {type(values).__name__}")
    for i, value in enumerate(values):
        _check_text(f"{name}[{i}]", value)
    if count is not None and len(values) != count:
        raise ValueError(f"{name} must hold {count} items (one per completion), got {len(values)}")
    return list(values)


def r1_prompt(question: str, template: str = R1_ZERO_TEMPLATE) -> str:
    """The template with ``question`` in place of ``{prompt}`` (a trailing period of the question is
    dropped: the template adds its own)."""
    _check_text("question", question)
    _check_text("template", template)
    if "{prompt}" not in template:
        raise ValueError("template must contain the placeholder '{prompt}'")
    question = question.strip()
    if not question:
        raise ValueError("question must be a non-empty str, got only whitespace")
    return template.replace("{prompt}", question.rstrip("."))


@dataclass(frozen=True)
class ParsedResponse:
    """A well-formatted response's two blocks, stripped."""

    think: str
    answer: str


def parse_response(text: str) -> ParsedResponse | None:
    """The ``think`` and ``answer`` blocks of ``text``, or None when it is not exactly
    ``<think> … </think> <answer> … </answer>`` (module docstring)."""
    _check_text("text", text)
    match = _RESPONSE.fullmatch(text)
    if match is None:
        return None
    think, answer = match.group(1), match.group(2)
    if any(tag in think or tag in answer for tag in _TAGS):
        return None
    return ParsedResponse(think.strip(), answer.strip())


def format_reward(completions: Sequence[str]) -> list[float]:
    """Section 2.2.2's format reward: 1.0 per well-formatted completion, else 0.0."""
    texts = _check_texts("completions", completions)
    return [float(parse_response(text) is not None) for text in texts]


def _truths(answers: Any, count: int) -> list[str]:
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise TypeError(f"answers must be a sequence of numbers or str, got {type(answers).__name__}")
    if len(answers) != count:
        raise ValueError(f"answers must hold {count} items (one per completion), got {len(answers)}")
    truths = []
    for i, answer in enumerate(answers):
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise TypeError(f"answers[{i}] must be a number or str, got {type(answer).__name__}")
        truth = normalize_number(str(answer))
        if truth is None:
            raise ValueError(f"answers[{i}] must be a number, got {answer!r}")
        truths.append(truth)
    return truths


def _scores(texts: list[str], truths: list[str]) -> list[tuple[float, float]]:
    """(accuracy, format) of each text, each text parsed once."""
    scores = []
    for text, truth in zip(texts, truths, strict=True):
        parsed = parse_response(text)
        if parsed is None:
            scores.append((0.0, 0.0))
        else:
            scores.append((float(normalize_number(parsed.answer) == truth), 1.0))
    return scores


def accuracy_reward(completions: Sequence[str], answers: Sequence[str | int | float]) -> list[float]:
    """Section 2.2.2's accuracy reward: 1.0 when a well-formatted completion's answer block holds the
    number ``answers[i]`` (numbers compared normalised: ``"12.0"`` == ``"12"``), else 0.0."""
    texts = _check_texts("completions", completions)
    return [accuracy for accuracy, _ in _scores(texts, _truths(answers, len(texts)))]


def r1_reward(
    completions: Sequence[str],
    answers: Sequence[str | int | float],
    *,
    accuracy_weight: float = 1.0,
    format_weight: float = 1.0,
) -> list[float]:
    """The rule-based reward of R1-Zero: ``accuracy_weight * accuracy + format_weight * format``."""
    check_float("accuracy_weight", accuracy_weight, 0.0, finite=True)
    check_float("format_weight", format_weight, 0.0, finite=True)
    texts = _check_texts("completions", completions)
    scores = _scores(texts, _truths(answers, len(texts)))
    return [accuracy_weight * a + format_weight * f for a, f in scores]


def format_trace(reasoning: str, answer: str | int | float) -> str:
    """A response in R1's format: ``<think> reasoning </think> <answer> answer </answer>`` (the cold
    start data's shape, Section 2.3.1)."""
    _check_text("reasoning", reasoning)
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise TypeError(f"answer must be a number or str, got {type(answer).__name__}")
    answer = str(answer).strip()
    if not answer:
        raise ValueError("answer must be non-empty")
    for tag in _TAGS:
        if tag in reasoning or tag in answer:
            raise ValueError(f"reasoning and answer must not contain the tag {tag!r}")
    think = f" {reasoning.strip()} " if reasoning.strip() else " "
    return f"<think>{think}</think> <answer> {answer} </answer>"


@dataclass(frozen=True)
class Trace:
    """One rejection-sampled trace: the prompt and the (correct, well-formatted) completion."""

    prompt: str
    completion: str


def rejection_sample(
    prompts: Sequence[str],
    completions: Sequence[str],
    answers: Sequence[str | int | float],
    *,
    max_per_prompt: int | None = None,
) -> list[Trace]:
    """Keep the completions that are well-formatted and correct (Sections 2.3.3 and 2.4), at most
    ``max_per_prompt`` distinct ones per prompt (None: all distinct ones), in the given order."""
    texts = _check_texts("completions", completions)
    prompts = _check_texts("prompts", prompts, len(texts))
    check_int("max_per_prompt", max_per_prompt, 1, allow_none=True)
    correct = accuracy_reward(texts, answers)
    kept: list[Trace] = []
    seen: dict[str, set[str]] = {}
    for prompt, text, ok in zip(prompts, texts, correct, strict=True):
        chosen = seen.setdefault(prompt, set())
        if not ok or text.strip() in chosen:
            continue
        if max_per_prompt is not None and len(chosen) >= max_per_prompt:
            continue
        chosen.add(text.strip())
        kept.append(Trace(prompt, text.strip()))
    return kept


def distillation_examples(
    traces: Sequence[Trace],
    encode: Callable[[str], Any],
    end: str | int,
    *,
    max_length: int | None = None,
) -> list[SFTExample]:
    """SFT examples (prompt tokens unlabelled, the trace then ``end`` labelled) of ``traces``: the
    distillation data of Section 2.4."""
    if isinstance(traces, (str, Trace)) or not isinstance(traces, Sequence):
        raise TypeError(f"traces must be a sequence of Trace, got {type(traces).__name__}")
    if not traces:
        raise ValueError("traces must hold at least one Trace, got none (did rejection sampling keep any?)")
    examples = []
    for i, trace in enumerate(traces):
        if not isinstance(trace, Trace):
            raise TypeError(f"traces[{i}] must be a Trace, got {type(trace).__name__}")
        examples.append(
            tokenize_example(trace.prompt, " " + trace.completion, encode, end, max_length=max_length)
        )
    return examples
