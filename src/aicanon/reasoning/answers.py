"""Reading answers out of model text, and voting over them: what chain-of-thought prompting (Wei et
al. 2022), zero-shot CoT (Kojima et al. 2022) and self-consistency (Wang et al. 2023) share.

* :func:`numbers_in`: every number written in a text (``-3``, ``1,200``, ``$18.50``, ``.5``), as
  normalised strings; :func:`normalize_number` makes ``"18.0"``, ``"18"`` and ``"1,8"``-free forms
  compare equal (``"18.0" → "18"``, ``"0.50" → "0.5"``, ``"-0" → "0"``).
* :func:`answer_after`: the text after the last occurrence of a trigger phrase (``"The answer is"``,
  the answer format of Wei et al.'s exemplars), up to the end of its sentence; None if absent.
* :func:`extract_number`: the number a text states as its answer: the first number after the
  trigger when there is one, else the first or last number of the text (``fallback``).
* :func:`majority_vote`: the most frequent answer among sampled reasoning paths (self-consistency's
  marginalisation, Eq. 1 with uniform weights) or the weighted variants (Table 1: the sum of each
  path's (normalised) probability); ties go to the answer seen first, so the vote is deterministic;
  None answers (nothing extracted) do not vote.

Per-dataset rules of a paper (Kojima et al.'s answer cleansing per benchmark) live in that paper's
module and build on these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from aicanon.core.checks import check_choice

__all__ = [
    "ANSWER_TRIGGER",
    "answer_after",
    "extract_number",
    "majority_vote",
    "normalize_number",
    "numbers_in",
]

ANSWER_TRIGGER = "The answer is"
# A number: optional sign, digits with optional thousands separators, optional decimals; or .5
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w)|(?<![\w\d])-?\.\d+")


def normalize_number(text: str) -> str | None:
    """``text`` as a canonical number string (no separators, no trailing zeros, no ``.``; ``-0`` is
    ``0``), or None when it is not a number."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def numbers_in(text: str) -> list[str]:
    """Every number in ``text``, in order, normalised (:func:`normalize_number`)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    found = (normalize_number(m.group(0)) for m in _NUMBER.finditer(text))
    return [n for n in found if n is not None]


def answer_after(text: str, trigger: str = ANSWER_TRIGGER) -> str | None:
    """The text after the last ``trigger`` up to the end of that sentence (a period followed by a
    space or the end, or a newline), stripped; None when ``trigger`` does not occur."""
    if not isinstance(text, str) or not isinstance(trigger, str) or not trigger:
        raise TypeError("text and trigger must be strings (trigger non-empty)")
    position = text.rfind(trigger)
    if position < 0:
        return None
    rest = text[position + len(trigger) :]
    end = re.search(r"\.(?:\s|$)|\n", rest)
    return (rest[: end.start()] if end else rest).strip()


def extract_number(text: str, trigger: str | None = ANSWER_TRIGGER, fallback: str = "last") -> str | None:
    """The answer a text states (module docstring); ``fallback`` is ``"first"``, ``"last"`` or
    ``"none"`` (only the trigger counts)."""
    check_choice("fallback", fallback, ("first", "last", "none"))
    if trigger is not None:
        stated = answer_after(text, trigger)
        if stated is not None:
            numbers = numbers_in(stated)
            if numbers:
                return numbers[0]
    if fallback == "none":
        return None
    numbers = numbers_in(text)
    if not numbers:
        return None
    return numbers[0] if fallback == "first" else numbers[-1]


def majority_vote(
    answers: Sequence[str | None], weights: Sequence[float] | None = None
) -> tuple[str | None, dict[str, float]]:
    """The answer with the largest total weight (1 per path by default) and every answer's total.
    Ties go to the answer that appeared first; with no extracted answer the result is None."""
    if weights is not None:
        if len(weights) != len(answers):
            raise ValueError(f"weights must have one entry per answer ({len(answers)}), got {len(weights)}")
        for w in weights:
            if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"weights must be finite and >= 0, got {w!r}")
    totals: dict[str, float] = {}
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        totals[answer] = totals.get(answer, 0.0) + (1.0 if weights is None else float(weights[i]))
    if not totals:
        return None, totals
    best = max(totals.values())
    winner = next(answer for answer, total in totals.items() if total == best)  # first seen wins ties
    return winner, totals
