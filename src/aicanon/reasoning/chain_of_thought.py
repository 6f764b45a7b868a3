"""Chain-of-thought prompting (Wei et al., NeurIPS 2022, arXiv 2201.11903): few-shot prompts whose
exemplars are ``<input, chain of thought, output>`` triples, so the model writes intermediate steps
before its answer.

The paper has no equations; its method is the prompt. With exemplars ``(q_i, c_i, a_i)`` (question,
rationale, answer) and a test question ``q``, the prompts of Section 2/3.1 are

    standard (Brown et al.):  Q: q_1\\nA: The answer is a_1.\\n\\n ... Q: q\\nA:
    chain of thought:         Q: q_1\\nA: c_1 The answer is a_1.\\n\\n ... Q: q\\nA:

and the prediction is the number after ``The answer is`` in the greedy completion (Section 3.1:
greedy decoding; the exemplars end in "The answer is N."). The ablations of Section 3.3 (Figure 5)
change only the exemplars' answers:

* ``equation_only``: only the equations of the rationale before the answer ("5 * 4 = 20. 9 + 20 is
  29. The answer is 29.");
* ``variable_compute``: as many dots as the equations have characters in place of the rationale
  (the model spends the same number of tokens without reasoning);
* ``reasoning_after_answer``: the answer first, the rationale after it ("The answer is 29. There
  were originally 9 computers. ..."); the prediction is the first stated answer.

:class:`Exemplar` is the generic record (question, rationale without the answer sentence, answer);
:data:`GSM8K_EXEMPLARS` holds the paper's eight GSM8K exemplars (Table 20, also used for SVAMP,
ASDiv, MAWPS). :func:`build_prompt` formats any record set in any :data:`STYLES`;
:func:`prompt_answers` runs the prompts through any
:class:`~aicanon.language.completion.LanguageModel`; :func:`gsm8k_accuracy` is the GSM8K metric
(exact match of the extracted number with the ``####`` answer, as normalised numbers).

Departures from the paper:

* ``response_prefix`` (:func:`response_prefix`, ``enforce_format=True``): the query's ``A:`` can be
  followed by the start the style dictates (``The answer is`` for standard prompting and
  reasoning-after-answer, the dots then ``The answer is`` for variable compute). The paper's 100B+
  models follow an exemplar format at once; our 0.1M-parameter testbed model follows only formats it
  saw in pre-training (it writes its rationale first whatever the exemplars say), so without the
  prefix the "reasoning after answer" and "variable compute" arms would silently be chain of thought.
  With a large model set ``enforce_format=False`` for the paper's protocol.
* Equations for ``equation_only`` and the dot count for ``variable_compute`` are read from the
  rationale with a pattern (``<numbers and operators> = <number>`` or ``... is <number>``); the paper
  wrote them by hand and did not publish them.
* Other benchmarks' exemplar sets (AQuA, CSQA, StrategyQA, ...) are not stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aicanon.core.checks import check_choice, check_int
from aicanon.language.completion import LanguageModel
from aicanon.reasoning.answers import ANSWER_TRIGGER, extract_number, normalize_number, numbers_in

__all__ = [
    "GSM8K_EXEMPLARS",
    "GSM8K_EXEMPLARS_SOURCE",
    "STYLES",
    "Exemplar",
    "build_prompt",
    "equations_of",
    "extract_answer",
    "format_exemplar",
    "gsm8k_accuracy",
    "prompt_answers",
    "response_prefix",
]

STYLES = ("standard", "chain_of_thought", "equation_only", "variable_compute", "reasoning_after_answer")
"""Prompt styles: standard (direct answer), chain of thought, and the three ablations of Section 3.3."""

# An equation in a rationale: numbers joined by operators, then "=" or "is", then a number.
_EQUATION = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?(?:\s*[-+*/x×]\s*\d+(?:\.\d+)?)+\s*(?:=|is)\s*\$?\d+(?:\.\d+)?(?![\w])"
)


@dataclass(frozen=True)
class Exemplar:
    """One few-shot exemplar: ``question``, ``rationale`` (the chain of thought without the answer
    sentence) and ``answer`` (as written after "The answer is")."""

    question: str
    rationale: str
    answer: str

    def __post_init__(self) -> None:
        for name in ("question", "rationale", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Exemplar.{name} must be a str, got {type(value).__name__}")
        if not self.question.strip() or not self.answer.strip():
            raise ValueError("Exemplar.question and Exemplar.answer must be non-empty")


GSM8K_EXEMPLARS_SOURCE = (
    "Wei et al. 2022, Appendix Table 20 (the eight math word problem exemplars, used for GSM8K, SVAMP, "
    "ASDiv and MAWPS); text cross-checked against Kojima et al.'s zero-shot-CoT code (create_demo_text)"
)
GSM8K_EXEMPLARS: tuple[Exemplar, ...] = (
    Exemplar(
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are "
        "done, there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there "
        "must have been 21 - 15 = 6.",
        "6",
    ),
    Exemplar(
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking "
        "lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5.",
        "5",
    ),
    Exemplar(
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left "
        "in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
        "eating 35, they had 74 - 35 = 39.",
        "39",
    ),
    Exemplar(
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many "
        "lollipops did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny "
        "20 - 12 = 8.",
        "8",
    ),
    Exemplar(
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does "
        "he have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
        "5 + 4 = 9.",
        "9",
    ),
    Exemplar(
        "There were nine computers in the server room. Five more computers were installed each day, from "
        "monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
        "computers were added. 9 + 20 is 29.",
        "29",
    ),
    Exemplar(
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How "
        "many golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing "
        "2 more, he had 35 - 2 = 33 golf balls.",
        "33",
    ),
    Exemplar(
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 "
        "dollars left. 23 - 15 is 8.",
        "8",
    ),
)


def equations_of(rationale: str) -> str:
    """The equations of a rationale, each ending in a period ("32 + 42 = 74. 74 - 35 = 39.");
    empty when it has none."""
    if not isinstance(rationale, str):
        raise TypeError(f"rationale must be a str, got {type(rationale).__name__}")
    return " ".join(f"{m.group(0)}." for m in _EQUATION.finditer(rationale))


def _answer_sentence(answer: str) -> str:
    return f"{ANSWER_TRIGGER} {answer}."


def format_exemplar(exemplar: Exemplar, style: str) -> str:
    """``Q: <question>\\nA: <answer in the style>`` (module docstring)."""
    if not isinstance(exemplar, Exemplar):
        raise TypeError(f"exemplar must be an Exemplar, got {type(exemplar).__name__}")
    check_choice("style", style, STYLES)
    answer = _answer_sentence(exemplar.answer)
    rationale = exemplar.rationale.strip()
    if style == "standard":
        body = answer
    elif style == "chain_of_thought":
        body = f"{rationale} {answer}" if rationale else answer
    elif style == "equation_only":
        equations = equations_of(rationale)
        body = f"{equations} {answer}" if equations else answer
    elif style == "variable_compute":
        # Section 3.3: "a sequence of dots (...) equal to the number of characters in the equation"
        dots = "." * len(equations_of(rationale))
        body = f"{dots} {answer}" if dots else answer
    else:  # reasoning_after_answer
        body = f"{answer} {rationale}" if rationale else answer
    return f"Q: {exemplar.question.strip()}\nA: {body}"


def response_prefix(exemplars: Sequence[Exemplar], style: str) -> str:
    """The start of the answer a style dictates, written after the query's ``A:`` when the format is
    enforced (module docstring): ``""`` for chain of thought and equation only, ``"The answer is"``
    for standard and reasoning-after-answer, the exemplars' mean dot count then ``"The answer is"``
    for variable compute."""
    check_choice("style", style, STYLES)
    if style in ("chain_of_thought", "equation_only"):
        return ""
    if style == "variable_compute":
        lengths = [len(equations_of(e.rationale)) for e in exemplars]
        dots = round(sum(lengths) / len(lengths)) if lengths else 0
        return f"{'.' * dots} {ANSWER_TRIGGER}" if dots else ANSWER_TRIGGER
    return ANSWER_TRIGGER


def _check_exemplars(exemplars: Sequence[Exemplar]) -> list[Exemplar]:
    if isinstance(exemplars, (str, Exemplar)) or not isinstance(exemplars, Sequence):
        raise TypeError(f"exemplars must be a sequence of Exemplar, got {type(exemplars).__name__}")
    exemplars = list(exemplars)
    for i, exemplar in enumerate(exemplars):
        if not isinstance(exemplar, Exemplar):
            raise TypeError(f"exemplars[{i}] must be an Exemplar, got {type(exemplar).__name__}")
    return exemplars


def build_prompt(
    exemplars: Sequence[Exemplar],
    question: str,
    style: str = "chain_of_thought",
    *,
    enforce_format: bool = False,
) -> str:
    """The few-shot prompt: the exemplars in ``style`` joined by blank lines, then
    ``Q: <question>\\nA:`` (plus :func:`response_prefix` when ``enforce_format``)."""
    exemplars = _check_exemplars(exemplars)
    check_choice("style", style, STYLES)
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty str, got {question!r}")
    shots = [format_exemplar(e, style) for e in exemplars]
    query = f"Q: {question.strip()}\nA:"
    prefix = response_prefix(exemplars, style) if enforce_format else ""
    if prefix:
        query += f" {prefix}"
    return "\n\n".join(shots + [query])


def extract_answer(text: str, style: str = "chain_of_thought") -> str | None:
    """The predicted answer in a completion (prompt's prefix included, if any): the number after the
    last "The answer is" (the first one for reasoning-after-answer, where the answer comes first);
    None when no "The answer is" is followed by a number (the paper's strict format)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    check_choice("style", style, STYLES)
    if style == "reasoning_after_answer":
        position = text.find(ANSWER_TRIGGER)
        if position < 0:
            return None
        text = (
            text[: position + len(ANSWER_TRIGGER)]
            + re.split(r"\.(?:\s|$)|\n", text[position + len(ANSWER_TRIGGER) :], maxsplit=1)[0]
        )
    return extract_number(text, ANSWER_TRIGGER, fallback="none")


def prompt_answers(
    model: LanguageModel,
    exemplars: Sequence[Exemplar],
    questions: Sequence[str],
    style: str = "chain_of_thought",
    *,
    max_tokens: int = 128,
    stop: Sequence[str] | None = ("\n\n", "\nQ:"),
    enforce_format: bool = False,
) -> tuple[list[str], list[str | None]]:
    """Greedy completions of every question's prompt (one batched ``complete`` call) and the answers
    extracted from them (with the enforced prefix in front, so the extraction sees the whole answer)."""
    if not hasattr(model, "complete"):
        raise TypeError(f"model must be a LanguageModel (with complete()), got {type(model).__name__}")
    if isinstance(questions, str) or not isinstance(questions, Sequence) or not questions:
        raise ValueError("questions must be a non-empty list of str")
    check_int("max_tokens", max_tokens, 1)
    exemplars = _check_exemplars(exemplars)
    prompts = [build_prompt(exemplars, q, style, enforce_format=enforce_format) for q in questions]
    prefix = response_prefix(exemplars, style) if enforce_format else ""
    outputs = model.complete(prompts, max_tokens=max_tokens, temperature=0.0, n=1, stop=list(stop or []))
    texts = [(f" {prefix}" if prefix else "") + out[0].text for out in outputs]
    return texts, [extract_answer(t, style) for t in texts]


def gsm8k_accuracy(predictions: Sequence[str | None], references: Sequence[str]) -> float:
    """Fraction of predictions equal to the reference answer as numbers (``"18.0"`` = ``"18"``,
    ``"1,000"`` = ``"1000"``); a None prediction (nothing extracted) is wrong."""
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("predictions and references must be sequences, not a single str")
    if len(predictions) != len(references):
        raise ValueError(
            "predictions and references must have the same length, got "
            f"{len(predictions)} and {len(references)}"
        )
    if not references:
        raise ValueError("references must be non-empty")
    correct = 0
    for predicted, reference in zip(predictions, references, strict=True):
        gold = normalize_number(str(reference))
        if gold is None:
            raise ValueError(f"references must be numbers, got {reference!r}")
        if predicted is not None:
            found = numbers_in(str(predicted))
            correct += bool(found) and found[0] == gold
    return correct / len(references)
