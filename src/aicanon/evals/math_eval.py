"""The MATH harness (Hendrycks et al., 2021, and the released ``modeling/evaluate_gpt3.py``): prompt a
:class:`~aicanon.language.completion.LanguageModel`, read its final answer, judge it against the
reference answer (:mod:`aicanon.evals.math_answers`) and report accuracy overall, per subject, per
level and per subject × level, each with its Wilson interval
(:func:`aicanon.evals.intervals.wilson_interval`).

The paper's few-shot protocol (GPT-3), reproduced by :func:`paper_prompt` and ``answer_format="dollar"``:

* the prompt is the instruction ``"Given a mathematics problem, determine the answer. Simplify your
  answer as much as possible."``, then the eight worked examples of the released code, each
  ``"Problem: <problem>\\nAnswer: $<answer>$"``, separated by ``"\\n###\\n"`` and closed by ``"\\n###"``,
  then ``"\\n<problem>\\nAnswer: $"``. (The released code puts no ``"Problem: "`` before the test
  problem, and its sixth example lacks a closing ``$`` after the problem's LaTeX: both kept.)
* greedy decoding of at most 20 tokens; the answer is the generated text up to the first ``$``,
  ``###`` or line break (the released code stops at those *tokens*; here at those characters).

A consequence of the paper's protocol kept here: an answer containing ``\\$`` (money) cannot be
written verbatim, since reading stops at its ``$``; written without the sign it matches, because the
normaliser drops ``\\$`` (3 of MATH-500's answers).

``answer_format="boxed"`` reads the last ``\\boxed{}`` of a generated solution instead (the paper's
fine-tuned GPT-2 protocol, and how most models are scored on MATH today).

The reference answer is the last box of the reference solution (the paper's ``remove_boxed(
last_boxed_only_string(solution))``); a problem whose solution has no box is kept and counts as
wrong, as in the released code. Equivalence is the paper's :func:`~aicanon.evals.math_answers.is_equiv`
unless ``method`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.math import LEVELS, SUBJECTS, MathProblem
from aicanon.evals.intervals import wilson_interval
from aicanon.evals.math_answers import METHODS, extract_boxed_answer, is_equiv
from aicanon.language.completion import LanguageModel

__all__ = [
    "ANSWER_FORMATS",
    "PAPER_INSTRUCTION",
    "PAPER_MAX_TOKENS",
    "PAPER_SHOTS",
    "PAPER_STOPS",
    "MathRecord",
    "MathReport",
    "accuracy_tables",
    "answer_from_generation",
    "evaluate_math",
    "paper_prompt",
    "score_answers",
]

ANSWER_FORMATS = ("dollar", "boxed")
PAPER_INSTRUCTION = (
    "Given a mathematics problem, determine the answer. Simplify your answer as much as possible."
)
PAPER_MAX_TOKENS = 20
PAPER_STOPS = ("$", "###", "\n")

# The eight examples of the released evaluate_gpt3.py (problem, answer), as data.
PAPER_SHOTS: tuple[tuple[str, str], ...] = (
    ("What is $\\left(\\frac{7}{8}\\right)^3 \\cdot \\left(\\frac{7}{8}\\right)^{-3}$?", "1"),
    (
        "In how many ways can 4 books be selected from a shelf of 6 books if the order in which the "
        "books are selected does not matter?",
        "15",
    ),
    ("Find the distance between the points $(2,1,-4)$ and $(5,8,-3).$", "\\sqrt{59}"),
    (
        "The faces of an octahedral die are labeled with digits $1$ through $8$. What is the "
        "probability, expressed as a common fraction, of rolling a sum of $15$ with a pair of such "
        "octahedral dice?",
        "\\frac{1}{32}",
    ),
    (
        "The first three terms of an arithmetic sequence are 1, 10 and 19, respectively. What is the "
        "value of the 21st term?",
        "181",
    ),
    ("Calculate $6 \\cdot 8\\frac{1}{3}", "50"),
    (
        "When the binary number $100101110010_2$ is divided by 4, what is the remainder (give your "
        "answer in base 10)?",
        "2",
    ),
    ("How many zeros are at the end of the product 25 $\\times$ 240?", "3"),
)


def paper_prompt(problem: str, shots: Sequence[tuple[str, str]] = PAPER_SHOTS) -> str:
    """The paper's few-shot prompt for ``problem`` (module docstring); ``shots=()`` keeps only the
    instruction."""
    if not isinstance(problem, str):
        raise TypeError(f"problem must be a str, got {type(problem).__name__}")
    blocks = [f"Problem: {question}\nAnswer: ${answer}$" for question, answer in shots]
    header = PAPER_INSTRUCTION + ("\n" + "\n###\n".join(blocks) + "\n###" if blocks else "")
    return f"{header}\n{problem}\nAnswer: $"


def answer_from_generation(text: str, answer_format: str = "dollar") -> str | None:
    """The final answer in a generation: up to the first ``$``, ``###`` or line break (``"dollar"``),
    or the content of its last box (``"boxed"``; ``None`` when there is none)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    check_choice("answer_format", answer_format, ANSWER_FORMATS)
    if answer_format == "boxed":
        return extract_boxed_answer(text)
    cut = min((i for i in (text.find(stop) for stop in PAPER_STOPS) if i >= 0), default=len(text))
    return text[:cut].strip()


@dataclass(frozen=True)
class MathRecord:
    """One scored problem: what was asked, generated, read and judged."""

    identifier: str
    subject: str
    level: int | None
    prompt: str
    generation: str
    predicted: str | None
    reference: str | None
    correct: bool


@dataclass
class MathReport:
    """Records and accuracy tables (:func:`accuracy_tables`) of one evaluation."""

    records: list[MathRecord]
    tables: dict
    settings: dict

    @property
    def accuracy(self) -> float:
        return self.tables["overall"]["accuracy"]

    def to_json(self, max_records: int | None = None) -> dict:
        """A JSON-ready dict; ``max_records`` keeps the first records only (the counts stay)."""
        records = self.records if max_records is None else self.records[:max_records]
        return {
            "settings": self.settings,
            "tables": self.tables,
            "records_kept": len(records),
            "records_total": len(self.records),
            "records": [asdict(record) for record in records],
        }


def _cell(correct: int, total: int, confidence: float) -> dict:
    if total == 0:
        return {"correct": 0, "total": 0, "accuracy": None, "low": None, "high": None}
    interval = wilson_interval(correct, total, confidence)
    return {
        "correct": correct,
        "total": total,
        "accuracy": interval.estimate,
        "low": interval.low,
        "high": interval.high,
    }


def accuracy_tables(records: Sequence[MathRecord], confidence: float = 0.95) -> dict:
    """Accuracy with its Wilson interval overall, per subject (:data:`SUBJECTS` order), per level
    (1-5; unrated problems count only overall and per subject, as in the released code) and per
    subject × level; a subject or level without problems has ``accuracy`` None."""
    if not records:
        raise ValueError("records must hold at least one scored problem, got none")
    check_float("confidence", confidence, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    extra = sorted({r.subject for r in records} - set(SUBJECTS))
    subjects = list(SUBJECTS) + extra

    def tally(selected: list[MathRecord]) -> dict:
        return _cell(sum(r.correct for r in selected), len(selected), confidence)

    return {
        "confidence": confidence,
        "overall": tally(list(records)),
        "by_subject": {s: tally([r for r in records if r.subject == s]) for s in subjects},
        "by_level": {str(level): tally([r for r in records if r.level == level]) for level in LEVELS},
        "by_subject_level": {
            s: {
                str(level): tally([r for r in records if r.subject == s and r.level == level])
                for level in LEVELS
            }
            for s in subjects
        },
    }


def score_answers(
    problems: Sequence[MathProblem],
    predictions: Sequence[str | None],
    *,
    prompts: Sequence[str] | None = None,
    generations: Sequence[str] | None = None,
    method: str = "paper",
    confidence: float = 0.95,
) -> MathReport:
    """Judge ``predictions`` (final answers, ``None`` for none) against the reference answers of
    ``problems`` (the last box of each solution) and tabulate them."""
    problems, predictions = list(problems), list(predictions)
    if len(problems) != len(predictions):
        raise ValueError(
            f"predictions must have one entry per problem ({len(problems)}), got {len(predictions)}"
        )
    if not problems:
        raise ValueError("problems must not be empty")
    check_choice("method", method, METHODS)
    prompts = [""] * len(problems) if prompts is None else list(prompts)
    generations = [p or "" for p in predictions] if generations is None else list(generations)
    records = []
    for problem, predicted, prompt, generation in zip(
        problems, predictions, prompts, generations, strict=True
    ):
        if not isinstance(problem, MathProblem):
            raise TypeError(f"problems must hold MathProblem records, got {type(problem).__name__}")
        reference = extract_boxed_answer(problem.solution)
        correct = reference is not None and predicted is not None and is_equiv(predicted, reference, method)
        records.append(
            MathRecord(
                problem.identifier,
                problem.subject,
                problem.level,
                prompt,
                generation,
                predicted,
                reference,
                correct,
            )
        )
    return MathReport(records, accuracy_tables(records, confidence), {"method": method})


def evaluate_math(
    model: LanguageModel,
    problems: Sequence[MathProblem],
    *,
    shots: Sequence[tuple[str, str]] = PAPER_SHOTS,
    answer_format: str = "dollar",
    max_tokens: int = PAPER_MAX_TOKENS,
    method: str = "paper",
    batch_size: int = 32,
    confidence: float = 0.95,
) -> MathReport:
    """Prompt ``model`` with every problem (:func:`paper_prompt`; greedy, ``max_tokens``), read the
    answers (:func:`answer_from_generation`) and score them (:func:`score_answers`)."""
    if not callable(getattr(model, "complete", None)):
        raise TypeError(f"model must be a LanguageModel (with complete()), got {type(model).__name__}")
    check_choice("answer_format", answer_format, ANSWER_FORMATS)
    check_int("max_tokens", max_tokens)
    check_int("batch_size", batch_size)
    problems = list(problems)
    if not problems:
        raise ValueError("problems must not be empty")
    prompts = [paper_prompt(p.problem, shots) for p in problems]
    # The paper stops at "$", "###" or a line break; a boxed solution runs to max_tokens.
    stop = list(PAPER_STOPS) if answer_format == "dollar" else None
    # Batches of similar length (a local backend pads every prompt of a call to the longest); the
    # generations go back to problem order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    generations: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        completions = model.complete(
            [prompts[i] for i in indices], max_tokens=max_tokens, temperature=0.0, n=1, stop=stop
        )
        for index, choices in zip(indices, completions, strict=True):
            generations[index] = choices[0].text
    predictions = [answer_from_generation(text, answer_format) for text in generations]
    report = score_answers(
        problems, predictions, prompts=prompts, generations=generations, method=method, confidence=confidence
    )
    report.settings.update(
        {
            "answer_format": answer_format,
            "max_tokens": max_tokens,
            "shots": len(shots),
            "temperature": 0.0,
            "stop": stop,
        }
    )
    return report
