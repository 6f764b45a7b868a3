"""Zero-shot chain of thought (Kojima et al. 2022, "Large Language Models are Zero-Shot Reasoners").

No exemplars: one trigger sentence after ``A:`` makes the model write its reasoning, and a second
prompt reads the answer out of it (Section 3, Figure 2: "two-stage prompting"):

1. **Reasoning extraction.** The question ``x`` goes into the template ``"Q: [X]. A: [T]."`` with the
   trigger ``T`` (default ``"Let's think step by step."``)::

       x'  =  "Q: " + x + "\\nA: " + T                                           (1)

   and the model generates the rationale ``z`` from ``x'``.
2. **Answer extraction.** The prompt, the rationale and the dataset's answer trigger ``A``
   (arithmetic: ``"Therefore, the answer (arabic numerals) is"``) are joined::

       x'' =  x' + z + " " + A                                                   (2)

   (the paper's answer triggers start on a new line) and the model generates the answer text ``ŷ``,
   which *answer cleansing* reduces to the answer (arithmetic: the first number of ``ŷ``, commas
   removed, a trailing period dropped; multiple choice: the first capital letter among the choices;
   yes/no: the first "yes" or "no"; last letters: the text without spaces, quotes and periods:
   :func:`clean_answer`, as the authors' code does it).

The baseline is **Zero-shot** (Section 4): one stage, ``"Q: " + x + "\\nA: " + A0`` with the
direct answer trigger ``A0`` (the answer trigger without "Therefore, ", capitalised: ``"The answer
(arabic numerals) is"``), cleansed by the same rules. :data:`ANSWER_TRIGGERS` holds each dataset's
answer trigger, :func:`direct_answer_trigger` the baseline's, :data:`TEMPLATES` the sixteen
reasoning triggers of Table 4 (instructive, misleading, irrelevant) with the paper's MultiArith
accuracy for each.

:func:`zero_shot_cot` and :func:`zero_shot` run the protocol over any
:class:`~aicanon.language.completion.LanguageModel` (HTTP, transformers, ours), greedy and batched:
all stage-1 prompts go to the model in one ``complete`` call, then all stage-2 prompts.

Departures from the paper (each a parameter; the defaults are the paper's):

* The rationale's trailing whitespace is removed before Eq. (2) (a rationale cut at a stop sequence
  often ends in a space; the authors' code joins it as generated).
* ``reasoning_stop``: the paper lets stage 1 run for its full token budget (128 tokens; stage 2: 32
  for arithmetic). A model trained to end its reasoning with its own answer sentence (our arithmetic
  testbed writes "The answer is N.") can be stopped at that phrase so that stage 2 states the answer;
  stop sequences are a backend feature, not part of the method's text.
* ``answer_trigger``: a model that cannot follow the paper's trigger (our 0.1M-parameter model never
  saw "Therefore, the answer (arabic numerals) is" and continues it with film-review text) is given
  the answer phrase it was trained on ("The answer is"); the experiment reports both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aicanon.core.checks import check_choice, check_int
from aicanon.language.completion import LanguageModel

__all__ = [
    "ANSWER_TRIGGERS",
    "DATASETS",
    "REASONING_TRIGGER",
    "TEMPLATES",
    "Template",
    "ZeroShotOutput",
    "answer_prompt",
    "clean_answer",
    "direct_answer_trigger",
    "reasoning_prompt",
    "zero_shot",
    "zero_shot_cot",
]

REASONING_TRIGGER = "Let's think step by step."

_ARITHMETIC = "\nTherefore, the answer (arabic numerals) is"
ANSWER_TRIGGERS: dict[str, str] = {
    "singleeq": _ARITHMETIC,
    "addsub": _ARITHMETIC,
    "multiarith": _ARITHMETIC,
    "gsm8k": _ARITHMETIC,
    "svamp": _ARITHMETIC,
    "aqua": "\nTherefore, among A through E, the answer is",
    "commonsensqa": "\nTherefore, among A through E, the answer is",
    "strategyqa": "\nTherefore, the answer (Yes or No) is",
    "bigbench_date": "\nTherefore, among A through F, the answer is",
    "object_tracking": "\nTherefore, among A through C, the answer is",
    "coin_flip": "\nTherefore, the answer (Yes or No) is",
    "last_letters": "\nTherefore, the answer is",
}
"""Each benchmark's answer trigger for stage 2, on a new line after the rationale as in the authors'
code (``z2 = x + z + " " + "\\nTherefore, ..."``) and the paper's Figure 2."""
DATASETS: tuple[str, ...] = tuple(ANSWER_TRIGGERS)

# Answer cleansing kind per dataset, and the letters a multiple-choice answer may take.
_KIND = {name: "number" for name in ("singleeq", "addsub", "multiarith", "gsm8k", "svamp")}
_KIND |= {"aqua": "choice", "commonsensqa": "choice", "bigbench_date": "choice", "object_tracking": "choice"}
_KIND |= {"strategyqa": "yes_no", "coin_flip": "yes_no", "last_letters": "letters"}
_CHOICES = {"aqua": "ABCDE", "commonsensqa": "ABCDE", "bigbench_date": "ABCDEF", "object_tracking": "ABC"}


@dataclass(frozen=True)
class Template:
    """One reasoning trigger of Table 4 with its category and the paper's MultiArith accuracy (%)."""

    trigger: str
    category: str
    paper_accuracy: float


TEMPLATES: tuple[Template, ...] = (
    Template("Let's think step by step.", "instructive", 78.7),
    Template("First,", "instructive", 77.3),
    Template("Let's think about this logically.", "instructive", 74.5),
    Template("Let's solve this problem by splitting it into steps.", "instructive", 72.2),
    Template("Let's be realistic and think step by step.", "instructive", 70.8),
    Template("Let's think like a detective step by step.", "instructive", 70.3),
    Template("Let's think", "instructive", 57.5),
    Template("Before we dive into the answer,", "instructive", 55.7),
    Template("The answer is after the proof.", "instructive", 45.7),
    Template("Don't think. Just feel.", "misleading", 18.8),
    Template("Let's think step by step but reach an incorrect answer.", "misleading", 18.7),
    Template('Let\'s count the number of "no" in the question.', "misleading", 16.7),
    Template("By using the fact that the earth is round,", "misleading", 9.3),
    Template("By the way, I found a good restaurant nearby.", "irrelevant", 17.5),
    Template("Abrakadabra!", "irrelevant", 15.5),
    Template("It's a beautiful day.", "irrelevant", 13.1),
)
"""Table 4 (text-davinci-002 on MultiArith; Zero-shot: 17.7 %). The wordings are those of the paper and
of the authors' code; the per-template accuracies are quoted from the paper's Table 4 (unverified here:
only the 17.7 % and 78.7 % of the abstract were confirmed against the paper's text)."""


def _check_dataset(dataset: str) -> str:
    check_choice("dataset", dataset, DATASETS)
    return dataset


def _check_text(name: str, value: object, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not empty and not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def direct_answer_trigger(dataset: str) -> str:
    """The Zero-shot baseline's trigger: the answer trigger without ``"Therefore, "``, capitalised
    (``"The answer (arabic numerals) is"``)."""
    trigger = ANSWER_TRIGGERS[_check_dataset(dataset)].replace("\nTherefore, ", "")
    return trigger[0].upper() + trigger[1:]


def reasoning_prompt(question: str, trigger: str = REASONING_TRIGGER) -> str:
    """Eq. (1): ``"Q: <question>\\nA: <trigger>"`` (``"Q: <question>\\nA:"`` for an empty trigger)."""
    question = _check_text("question", question, empty=False).strip()
    trigger = _check_text("trigger", trigger).strip()
    return f"Q: {question}\nA:" + (f" {trigger}" if trigger else "")


def answer_prompt(first_prompt: str, rationale: str, answer_trigger: str) -> str:
    """Eq. (2): the stage-1 prompt, the rationale (trailing whitespace removed) and, after one space,
    the answer trigger as given (the paper's start with a newline: :data:`ANSWER_TRIGGERS`)."""
    _check_text("first_prompt", first_prompt, empty=False)
    _check_text("rationale", rationale)
    _check_text("answer_trigger", answer_trigger, empty=False)
    return f"{first_prompt}{rationale.rstrip()} {answer_trigger}"


def clean_answer(text: str, dataset: str) -> str | None:
    """Answer cleansing (module docstring): the answer ``text`` states for ``dataset``, or None when
    it states none. Numbers keep the form written (``"18.5"``, ``"-3"``), without commas or a
    trailing period; choices are capital letters, yes/no lower case."""
    _check_text("text", text)
    kind = _KIND[_check_dataset(dataset)]
    if kind == "number":
        found = re.findall(r"-?\d+\.?\d*", text.replace(",", ""))
    elif kind == "choice":
        found = re.findall("|".join(_CHOICES[dataset]), text)
    elif kind == "yes_no":
        words = re.sub(r"[\"'\n.\s:,]", " ", text.lower()).split(" ")
        found = [w for w in words if w in ("yes", "no")]
    else:
        found = [re.sub(r"[\"'\n.\s]", "", text)]
    if not found or not found[0]:
        return None
    answer = found[0]
    return answer[:-1] if answer.endswith(".") else answer


@dataclass(frozen=True)
class ZeroShotOutput:
    """One question's run: the stage-1 prompt and rationale (empty for Zero-shot), the stage-2 (or
    only) prompt, the answer text the model wrote after it, and the cleansed answer."""

    reasoning_prompt: str
    rationale: str
    answer_prompt: str
    answer_text: str
    answer: str | None


def _check_request(model: object, questions: Sequence[str], max_tokens: dict[str, int]) -> list[str]:
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must implement LanguageModel.complete, got {type(model).__name__}")
    if isinstance(questions, str) or not isinstance(questions, Sequence) or not questions:
        raise ValueError("questions must be a non-empty list of str (one question: [question])")
    for name, value in max_tokens.items():
        check_int(name, value)
    return [_check_text(f"questions[{i}]", q, empty=False) for i, q in enumerate(questions)]


def zero_shot_cot(
    model: LanguageModel,
    questions: Sequence[str],
    *,
    dataset: str = "gsm8k",
    trigger: str = REASONING_TRIGGER,
    answer_trigger: str | None = None,
    max_reasoning_tokens: int = 128,
    max_answer_tokens: int = 32,
    stop: Sequence[str] | None = ("\n\nQ:",),
    reasoning_stop: Sequence[str] = (),
) -> list[ZeroShotOutput]:
    """Zero-shot-CoT (module docstring) for every question, greedy: stage 1 with ``trigger``, stage 2
    with ``answer_trigger`` (the dataset's by default), cleansed by the dataset's rules. ``stop``
    ends both stages' completions; ``reasoning_stop`` adds stop sequences to stage 1 only."""
    questions = _check_request(
        model,
        questions,
        {"max_reasoning_tokens": max_reasoning_tokens, "max_answer_tokens": max_answer_tokens},
    )
    answer_trigger = ANSWER_TRIGGERS[_check_dataset(dataset)] if answer_trigger is None else answer_trigger
    _check_text("answer_trigger", answer_trigger, empty=False)
    stops = list(stop or [])
    firsts = [reasoning_prompt(q, trigger) for q in questions]
    stage1 = model.complete(
        firsts, max_tokens=max_reasoning_tokens, temperature=0.0, stop=stops + list(reasoning_stop)
    )
    rationales = [c[0].text for c in stage1]
    seconds = [answer_prompt(p, z, answer_trigger) for p, z in zip(firsts, rationales, strict=True)]
    stage2 = model.complete(seconds, max_tokens=max_answer_tokens, temperature=0.0, stop=stops or None)
    return [
        ZeroShotOutput(p, z, s, c[0].text, clean_answer(c[0].text, dataset))
        for p, z, s, c in zip(firsts, rationales, seconds, stage2, strict=True)
    ]


def zero_shot(
    model: LanguageModel,
    questions: Sequence[str],
    *,
    dataset: str = "gsm8k",
    answer_trigger: str | None = None,
    max_answer_tokens: int = 32,
    stop: Sequence[str] | None = ("\n\nQ:",),
) -> list[ZeroShotOutput]:
    """The Zero-shot baseline: ``"Q: <question>\\nA: <direct answer trigger>"``, one greedy stage,
    the same answer cleansing."""
    questions = _check_request(model, questions, {"max_answer_tokens": max_answer_tokens})
    answer_trigger = direct_answer_trigger(dataset) if answer_trigger is None else answer_trigger
    _check_text("answer_trigger", answer_trigger, empty=False)
    prompts = [reasoning_prompt(q, answer_trigger) for q in questions]
    completions = model.complete(
        prompts, max_tokens=max_answer_tokens, temperature=0.0, stop=list(stop or []) or None
    )
    return [
        ZeroShotOutput(p, "", p, c[0].text, clean_answer(c[0].text, dataset))
        for p, c in zip(prompts, completions, strict=True)
    ]
