"""The MMLU harness (Hendrycks et al., "Measuring Massive Multitask Language Understanding", ICLR
2021): the paper's few-shot prompt, its two ways of reading a model's answer, and its accuracies.

**Prompt** (Section 3 and Figure 1; the paper's ``evaluate.py``). For a question of subject ``s``
with ``k`` dev examples (k = 5 in the paper)::

    The following are multiple choice questions (with answers) about <format_subject(s)>.\\n\\n
    <dev question 1>\\nA. <a>\\nB. <b>\\nC. <c>\\nD. <d>\\nAnswer: <letter>\\n\\n
    ... (k examples)
    <test question>\\nA. <a>\\nB. <b>\\nC. <c>\\nD. <d>\\nAnswer:

``format_subject("high_school_us_history")`` is ``" high school us history"``: the reference code
joins the words each with a leading space, so the header reads "about  high school…" with two spaces;
we keep it (lm-evaluation-harness writes one space). When the prompt does not fit the model's
context the paper's code drops dev examples (k − 1, k − 2, …) until it fits; so do we, given a
``fits`` predicate.

**Answer** (two ways):

* ``"loglikelihood"`` (the paper's): score the four continuations ``" A"``, ``" B"``, ``" C"``,
  ``" D"`` after the prompt with a :class:`~aicanon.language.completion.ScoringLanguageModel` and
  predict ``argmax_i log P(" <letter_i>" | prompt)`` (ties: the first, as ``np.argmax``). The paper
  read the four letters' log-probabilities from the API's top-100 next-token alternatives (a letter
  outside them got −100); scoring each letter directly gives the same argmax whenever one of the
  letters is in the model's top 100, and a defined one otherwise.
* ``"generate"``: greedy decoding (``complete`` at temperature 0, a few tokens) and the first letter
  A–D that stands alone in the generated text (``"B"``, ``" B. Paris"``, ``"(C)"``); none: no answer,
  counted wrong.

**Accuracies.** Per subject: the fraction correct. Per category (STEM, humanities, social sciences,
other: the mapping of the paper's repository, ``categories.py``): the fraction correct over all the
category's questions (as its ``evaluate_hf.py`` pools them). ``micro``: over all questions;
``macro``: the mean of the per-subject accuracies (each subject weighs the same). Intervals: Wilson
score intervals (:func:`aicanon.evals.intervals.wilson_interval`) for every proportion, a seeded
percentile bootstrap over questions for the macro average. A model at chance scores 25 %;
:attr:`MMLUReport.chance_in_interval` says whether 0.25 lies in the micro interval.

lm-evaluation-harness's formulas for the same requests: ``acc`` = 1 if ``argmax(loglikelihoods)`` is
the gold choice, ``acc_norm`` the same on ``loglikelihood / len(continuation)``;
:func:`harness_accuracies` computes both (for the four one-letter continuations they coincide).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.mmlu import ANSWER_LETTERS, MMLUQuestion
from aicanon.evals.intervals import Interval, bootstrap_interval, chance_interval_contains, wilson_interval

__all__ = [
    "CATEGORIES",
    "CHANCE",
    "CHOICE_CONTINUATIONS",
    "SUBCATEGORIES",
    "MMLUReport",
    "answer_from_generation",
    "evaluate_mmlu",
    "few_shot_prompt",
    "fit_prompt",
    "format_example",
    "format_subject",
    "harness_accuracies",
    "prompt_header",
    "report_from_predictions",
    "subject_category",
]

CHANCE = 0.25
CHOICE_CONTINUATIONS = tuple(f" {letter}" for letter in ANSWER_LETTERS)
METHODS = ("loglikelihood", "generate")

# The paper repository's categories.py: subject -> subcategory, subcategory -> category.
SUBCATEGORIES: dict[str, str] = {
    "abstract_algebra": "math",
    "anatomy": "health",
    "astronomy": "physics",
    "business_ethics": "business",
    "clinical_knowledge": "health",
    "college_biology": "biology",
    "college_chemistry": "chemistry",
    "college_computer_science": "computer science",
    "college_mathematics": "math",
    "college_medicine": "health",
    "college_physics": "physics",
    "computer_security": "computer science",
    "conceptual_physics": "physics",
    "econometrics": "economics",
    "electrical_engineering": "engineering",
    "elementary_mathematics": "math",
    "formal_logic": "philosophy",
    "global_facts": "other",
    "high_school_biology": "biology",
    "high_school_chemistry": "chemistry",
    "high_school_computer_science": "computer science",
    "high_school_european_history": "history",
    "high_school_geography": "geography",
    "high_school_government_and_politics": "politics",
    "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math",
    "high_school_microeconomics": "economics",
    "high_school_physics": "physics",
    "high_school_psychology": "psychology",
    "high_school_statistics": "math",
    "high_school_us_history": "history",
    "high_school_world_history": "history",
    "human_aging": "health",
    "human_sexuality": "culture",
    "international_law": "law",
    "jurisprudence": "law",
    "logical_fallacies": "philosophy",
    "machine_learning": "computer science",
    "management": "business",
    "marketing": "business",
    "medical_genetics": "health",
    "miscellaneous": "other",
    "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy",
    "nutrition": "health",
    "philosophy": "philosophy",
    "prehistory": "history",
    "professional_accounting": "other",
    "professional_law": "law",
    "professional_medicine": "health",
    "professional_psychology": "psychology",
    "public_relations": "politics",
    "security_studies": "politics",
    "sociology": "culture",
    "us_foreign_policy": "politics",
    "virology": "health",
    "world_religions": "philosophy",
}
CATEGORIES: dict[str, tuple[str, ...]] = {
    "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering"),
    "humanities": ("history", "philosophy", "law"),
    "social sciences": ("politics", "culture", "economics", "geography", "psychology"),
    "other": ("other", "business", "health"),
}
_CATEGORY_OF = {sub: category for category, subs in CATEGORIES.items() for sub in subs}


def subject_category(subject: str) -> str:
    """STEM, humanities, social sciences or other (the paper's grouping)."""
    if subject not in SUBCATEGORIES:
        raise ValueError(f"subject must be one of the 57 MMLU subjects, got {subject!r}")
    return _CATEGORY_OF[SUBCATEGORIES[subject]]


def format_subject(subject: str) -> str:
    """``"abstract_algebra"`` → ``" abstract algebra"`` (each word with a leading space, as the
    reference code writes it)."""
    return "".join(f" {word}" for word in subject.split("_"))


def prompt_header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"


def format_example(question: MMLUQuestion, include_answer: bool = True) -> str:
    """``question\\nA. …\\nB. …\\nC. …\\nD. …\\nAnswer:`` (then `` X\\n\\n`` with the answer)."""
    text = question.question
    for letter, choice in zip(ANSWER_LETTERS, question.choices, strict=True):
        text += f"\n{letter}. {choice}"
    text += "\nAnswer:"
    return text + f" {question.answer}\n\n" if include_answer else text


def few_shot_prompt(question: MMLUQuestion, shots: Sequence[MMLUQuestion], k: int = 5) -> str:
    """The paper's prompt: the subject header, the first ``k`` of ``shots`` with answers, then
    ``question`` without its answer (module docstring)."""
    check_int("k", k, 0)
    if k > len(shots):
        raise ValueError(f"k must be <= the {len(shots)} dev examples given, got {k}")
    return (
        prompt_header(question.subject)
        + "".join(format_example(s) for s in shots[:k])
        + format_example(question, include_answer=False)
    )


def fit_prompt(
    question: MMLUQuestion, shots: Sequence[MMLUQuestion], k: int, fits: Callable[[str], bool] | None
) -> tuple[str, int]:
    """The prompt with the most dev examples, at most ``k``, that ``fits`` accepts (the paper drops
    examples until the prompt fits its 2,048-token window), and that number; 0 examples if none fits."""
    prompt = few_shot_prompt(question, shots, k)
    while fits is not None and k > 0 and not fits(prompt):
        k -= 1
        prompt = few_shot_prompt(question, shots, k)
    return prompt, k


_LETTER = re.compile(r"(?<![A-Za-z])([ABCD])(?![A-Za-z])")


def answer_from_generation(text: str) -> str | None:
    """The first of A–D standing alone in generated ``text`` (not inside a word), or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    match = _LETTER.search(text)
    return match.group(1) if match else None


def harness_accuracies(
    loglikelihoods: np.ndarray | Sequence[Sequence[float]],
    gold: Sequence[int] | np.ndarray,
    continuations: Sequence[str] = CHOICE_CONTINUATIONS,
) -> dict[str, float]:
    """lm-evaluation-harness's multiple-choice metrics, averaged over questions: ``acc`` (argmax of
    the choices' log-likelihoods is the gold index) and ``acc_norm`` (the argmax of log-likelihood
    divided by the continuation's length in characters)."""
    scores = np.asarray(loglikelihoods, dtype=np.float64)
    gold = np.asarray(gold)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] != len(continuations):
        raise ValueError(
            f"loglikelihoods must be [questions, {len(continuations)}] (one per continuation), "
            f"got {scores.shape}"
        )
    if gold.shape != (scores.shape[0],) or not np.issubdtype(gold.dtype, np.integer):
        raise ValueError(f"gold must be {scores.shape[0]} integer indices, got {gold.dtype} {gold.shape}")
    if gold.min() < 0 or gold.max() >= scores.shape[1]:
        raise ValueError(f"gold indices must be in [0, {scores.shape[1]}), got [{gold.min()}, {gold.max()}]")
    lengths = np.array([float(len(c)) for c in continuations])
    return {
        "acc": float(np.mean(scores.argmax(1) == gold)),
        "acc_norm": float(np.mean((scores / lengths).argmax(1) == gold)),
    }


@dataclass
class MMLUReport:
    """Accuracies with intervals, and every question's record (see :func:`report_from_predictions`)."""

    records: list[dict[str, Any]]
    per_subject: dict[str, Interval]
    per_category: dict[str, Interval]
    micro: Interval
    macro: Interval
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def chance_in_interval(self) -> bool:
        """Whether chance (25 %) lies in the micro accuracy's interval: indistinguishable from guessing."""
        return chance_interval_contains(self.micro, CHANCE)

    def table(self) -> list[dict[str, Any]]:
        """One row per subject: category, questions, correct, accuracy and its interval."""
        return [
            {
                "subject": subject,
                "category": subject_category(subject),
                "questions": self.counts[subject],
                "correct": int(round(interval.estimate * self.counts[subject])),
                **interval.as_dict(),
            }
            for subject, interval in self.per_subject.items()
        ]

    def to_details(self) -> dict[str, Any]:
        return {
            "per_subject": self.table(),
            "per_category": {name: interval.as_dict() for name, interval in self.per_category.items()},
            "micro": self.micro.as_dict(),
            "macro": self.macro.as_dict(),
            "chance": CHANCE,
            "chance_in_interval": self.chance_in_interval,
        }


def report_from_predictions(
    subjects: Sequence[str],
    answers: Sequence[str],
    predictions: Sequence[str | None],
    records: list[dict[str, Any]] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> MMLUReport:
    """Accuracies of ``predictions`` (a letter or None per question) against ``answers`` (module
    docstring), grouped by ``subjects``; ``records`` are kept as given (default: one per question)."""
    n = len(subjects)
    if n == 0 or len(answers) != n or len(predictions) != n:
        raise ValueError(
            f"subjects, answers and predictions must be equally long and non-empty, got {n}, "
            f"{len(answers)} and {len(predictions)}"
        )
    for name, values in (("answers", answers), ("predictions", predictions)):
        bad = [v for v in values if v not in ANSWER_LETTERS and not (name == "predictions" and v is None)]
        if bad:
            raise ValueError(f"{name} must be letters in {ANSWER_LETTERS}, got {bad[0]!r}")
    check_float("confidence", confidence, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    correct = np.array([p == a for p, a in zip(predictions, answers, strict=True)], dtype=np.float64)
    subject_array = np.array(subjects)
    names = list(dict.fromkeys(subjects))
    per_subject, counts = {}, {}
    for subject in names:
        subject_category(subject)
        mask = subject_array == subject
        counts[subject] = int(mask.sum())
        per_subject[subject] = wilson_interval(float(correct[mask].sum()), counts[subject], confidence)
    per_category = {}
    categories = np.array([subject_category(s) for s in subjects])
    for category in CATEGORIES:
        mask = categories == category
        if mask.any():
            per_category[category] = wilson_interval(float(correct[mask].sum()), int(mask.sum()), confidence)
    micro = wilson_interval(float(correct.sum()), n, confidence)
    codes = np.array([names.index(s) for s in subjects])

    def macro_of(indices: np.ndarray) -> float:
        index = indices.astype(int)
        totals = np.bincount(codes[index], weights=correct[index], minlength=len(names))
        seen = np.bincount(codes[index], minlength=len(names))
        return float(np.mean(totals[seen > 0] / seen[seen > 0]))

    macro = bootstrap_interval(np.arange(n, dtype=np.float64), macro_of, 1000, confidence, seed)
    if records is None:
        records = [
            {"subject": s, "answer": a, "prediction": p, "correct": bool(c)}
            for s, a, p, c in zip(subjects, answers, predictions, correct, strict=True)
        ]
    return MMLUReport(records, per_subject, per_category, micro, macro, counts)


def evaluate_mmlu(
    model: Any,
    test: Mapping[str, Sequence[MMLUQuestion]],
    dev: Mapping[str, Sequence[MMLUQuestion]],
    *,
    shots: int = 5,
    method: str = "loglikelihood",
    fits: Callable[[str], bool] | None = None,
    batch_size: int = 16,
    max_tokens: int = 4,
    confidence: float = 0.95,
    seed: int = 0,
    progress: Callable[[Any], Any] | None = None,
) -> MMLUReport:
    """Evaluate ``model`` on the ``test`` questions of every subject with ``shots`` examples from that
    subject's ``dev`` questions (module docstring).

    ``method="loglikelihood"`` needs ``model.loglikelihood`` (a ScoringLanguageModel); ``"generate"``
    ``model.complete`` (a LanguageModel; ``max_tokens`` generated greedily). Requests go to the model
    ``batch_size`` questions at a time (each question's four continuations together). ``fits``: a
    prompt predicate (e.g. the model's context length); dev examples are dropped until it holds.
    ``progress`` wraps the iterable of batches (a progress bar). Each record keeps the question's
    subject, index, answer, prediction, the number of dev examples used and the four
    log-likelihoods (loglikelihood) or the generated text (generate); ``records[i]["prompt"]`` holds
    the first prompt of every subject."""
    check_choice("method", method, METHODS)
    check_int("shots", shots, 0)
    check_int("batch_size", batch_size, 1)
    check_int("max_tokens", max_tokens, 1)
    needed = "loglikelihood" if method == "loglikelihood" else "complete"
    if not callable(getattr(model, needed, None)):
        raise TypeError(
            f"model must have a {needed}() method for method={method!r}, got {type(model).__name__}"
        )
    if not isinstance(test, Mapping) or not test:
        raise ValueError("test must be a non-empty mapping subject -> questions")
    items: list[tuple[MMLUQuestion, int, str, int]] = []
    for subject, questions in test.items():
        subject_category(subject)
        examples = list(dev.get(subject, ()))
        if len(examples) < shots:
            raise ValueError(f"dev[{subject!r}] has {len(examples)} examples, fewer than shots={shots}")
        for index, question in enumerate(questions):
            if question.subject != subject:
                raise ValueError(f"test[{subject!r}][{index}] is a question of {question.subject!r}")
            prompt, used = fit_prompt(question, examples, shots, fits)
            items.append((question, index, prompt, used))
    if not items:
        raise ValueError("test holds no questions")

    batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
    records, predictions = [], []
    for batch in progress(batches) if progress is not None else batches:
        prompts = [prompt for _, _, prompt, _ in batch]
        if method == "loglikelihood":
            contexts = [p for p in prompts for _ in CHOICE_CONTINUATIONS]
            scored = model.loglikelihood(contexts, list(CHOICE_CONTINUATIONS) * len(prompts))
            values = np.array([float(s[0]) for s in scored]).reshape(len(prompts), len(CHOICE_CONTINUATIONS))
            outputs: list[Any] = [row.tolist() for row in values]
            chosen = [ANSWER_LETTERS[int(np.argmax(row))] for row in values]
        else:
            completions = model.complete(prompts, max_tokens=max_tokens, temperature=0.0)
            outputs = [group[0].text for group in completions]
            chosen = [answer_from_generation(text) for text in outputs]
        for (question, index, prompt, used), output, prediction in zip(batch, outputs, chosen, strict=True):
            record = {
                "subject": question.subject,
                "index": index,
                "answer": question.answer,
                "prediction": prediction,
                "correct": prediction == question.answer,
                "shots": used,
                ("loglikelihoods" if method == "loglikelihood" else "generation"): output,
            }
            if index == 0:
                record["prompt"] = prompt
            records.append(record)
            predictions.append(prediction)
    return report_from_predictions(
        [r["subject"] for r in records],
        [r["answer"] for r in records],
        predictions,
        records,
        confidence,
        seed,
    )
