"""MATH's final answers (Hendrycks et al., NeurIPS 2021 Datasets and Benchmarks, and the released
``modeling/math_equivalence.py``): the boxed answer of a solution, the paper's answer normalisation,
and its equivalence check, plus a sympy-based equivalence as an option.

MATH scores a model by exact match of its final answer with the reference answer after a
normalisation of the answers' LaTeX (the paper's evaluation; the released code defines it); the
reference answer is the last ``\\boxed{...}`` of the reference solution. The paper has no numbered
equations for this: the rules below are the released code's behaviour, written here from its
description:

* :func:`last_boxed_only_string`: the *last* ``\\boxed`` in the text (only when there is none, the last
  ``\\fbox``), up to the brace that closes its first ``{`` (nested braces counted); ``None`` when the
  braces never close (a truncated generation).
* :func:`remove_boxed`: the content between ``\\boxed{`` and its closing ``}``.
* :func:`strip_string` (the paper's ``_strip_string``), in the paper's order: drop line breaks, ``\\!``;
  ``\\\\`` → ``\\``; ``tfrac``/``dfrac`` → ``frac``; drop ``\\left``/``\\right``, ``^{\\circ}``/``^\\circ``,
  ``\\$``; drop the units, i.e. everything from ``\\text{ `` on (at most one such group, else an error);
  drop ``\\%``; `` .`` → `` 0.`` and ``{.`` → ``{0.`` and a leading ``.`` gets a ``0``; an answer
  ``lhs=rhs`` with a left side of at most 2 characters becomes ``rhs`` (``x = 5`` → ``5``);
  ``\\sqrt3`` → ``\\sqrt{3}``; drop spaces; ``\\frac12`` → ``\\frac{1}{2}`` and ``\\frac1{72}`` →
  ``\\frac{1}{72}`` (``\\frac{72}1`` is left alone); the string ``0.5`` → ``\\frac{1}{2}``; an integer
  ratio ``a/b`` (written canonically) → ``\\frac{a}{b}``.
* :func:`is_equiv` (the paper's): both ``None`` → equal; one ``None`` → not equal; else the two
  normalised strings are compared, and when normalising either fails (two unit groups, ``\\sqrt`` or
  ``\\frac`` at the very end) the raw strings are.

Properties (tested): :func:`is_equiv` is reflexive and symmetric for every ``method``.
:func:`strip_string` is idempotent on every reference answer of the MATH test set and on the answer
forms MATH uses, but not on every string, and we keep the paper's behaviour: its ``lhs =`` and leading
``.`` rules run before spaces are dropped and ``=`` is split, so ``"ab = 3"`` → ``"ab=3"`` → ``"3"``
and ``"x=.5"`` → ``".5"`` → ``"\\frac{1}{2}"`` change again on a second pass (so ``"xy=3"`` matches
``"3"`` while ``"xy = 3"`` does not).

Options beyond the paper (``method`` of :func:`is_equiv`):

* ``"exact"``: plain string equality, the ablation (no normalisation at all);
* ``"sympy"``: equal under the paper's check *or* mathematically equal under :func:`sympy_equiv`,
  which drops units as the paper does (from one ``\\text{ `` on) and parses a small LaTeX subset
  into sympy (:func:`parse_latex_answer`): numbers, single-letter variables, ``+ - * / ^``,
  ``\\cdot \\times \\div``, implicit products, ``\\frac``, ``\\sqrt`` (with an index), ``\\pi``,
  ``\\infty``, ``i`` (the imaginary unit), braces and brackets, tuples and intervals (the bracket
  kinds must agree), one ``=``. It builds sympy objects directly, never ``eval``/
  ``sympify`` of text, and guards its cost: at most :data:`MAX_SYMPY_CHARS` characters and
  :data:`MAX_SYMPY_TOKENS` tokens, a numeric exponent of magnitude at most :data:`MAX_EXPONENT`
  and an exact rational power of at most :data:`MAX_POWER_BITS` bits;
  expressions are compared numerically (30 digits) at fixed points, so no ``simplify`` can run away.

Departures from the released code (each also noted where it occurs):

* ``\\fbox{...}`` answers: the released ``remove_boxed`` only strips ``\\boxed{``, so an ``\\fbox``
  answer became ``None``; here :func:`remove_boxed` strips ``\\fbox{`` too.
* ``\\boxed 5`` (a box without braces, as later harnesses accept): the released code finds no closing
  brace (``None``) or a wrong span; here the answer is the text after the spaces up to the next space
  or ``$`` (a trailing ``.`` or ``,`` dropped).
* Normalisation failures raise :class:`NormalizationError` (a ``ValueError``) from
  :func:`strip_string`; the released code raised ``AssertionError``/``IndexError``. :func:`is_equiv`
  catches it and compares the raw strings, as the released ``is_equiv`` does.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

__all__ = [
    "MAX_EXPONENT",
    "MAX_POWER_BITS",
    "MAX_SYMPY_CHARS",
    "MAX_SYMPY_TOKENS",
    "METHODS",
    "NormalizationError",
    "SympyParseError",
    "extract_boxed_answer",
    "is_equiv",
    "last_boxed_only_string",
    "parse_latex_answer",
    "remove_boxed",
    "strip_string",
    "sympy_equiv",
]

METHODS = ("paper", "exact", "sympy")
MAX_SYMPY_CHARS = 200
MAX_SYMPY_TOKENS = 120
MAX_EXPONENT = 100
MAX_POWER_BITS = 20_000


class NormalizationError(ValueError):
    """The paper's normaliser cannot handle this answer (the released code raised here too)."""


class SympyParseError(ValueError):
    """The answer is outside the LaTeX subset :func:`parse_latex_answer` reads, or over its guards."""


def _check_text(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        expected = "a str or None" if allow_none else "a str"
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")


# ----------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------


def last_boxed_only_string(text: str) -> str | None:
    """The last ``\\boxed{...}`` of ``text`` with its braces (or, when there is no ``\\boxed``, the last
    ``\\fbox{...}``), nested braces counted; ``\\boxed 5`` gives ``"\\boxed 5"``; ``None`` if absent
    or unclosed."""
    _check_text("text", text)
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    command = "\\boxed" if text.startswith("\\boxed", start) else "\\fbox"
    after = start + len(command)
    rest = text[after:]
    # ``\boxed 5``: no brace after the spaces (departure: the released code has no such case).
    stripped = rest.lstrip(" ")
    if stripped and stripped[0] != "{" and len(stripped) < len(rest):
        token = re.split(r"[\s$]", stripped, maxsplit=1)[0].rstrip(".,")
        return f"{command} {token}" if token else None
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


def remove_boxed(boxed: str | None) -> str | None:
    """``"\\boxed{\\frac{1}{2}}"`` → ``"\\frac{1}{2}"`` (also ``\\fbox{...}`` and ``\\boxed 5``);
    ``None`` for ``None`` or a string that is not one box."""
    _check_text("boxed", boxed, allow_none=True)
    if boxed is None:
        return None
    for command in ("\\boxed", "\\fbox"):
        if not boxed.startswith(command):
            continue
        rest = boxed[len(command) :]
        spaced = rest.startswith(" ")
        rest = rest.lstrip(" ")
        if rest.startswith("{") and rest.endswith("}"):
            return rest[1:-1]
        if spaced and rest:  # \boxed 5
            return rest
    return None


def extract_boxed_answer(text: str) -> str | None:
    """The content of the last box of ``text`` (:func:`last_boxed_only_string` then
    :func:`remove_boxed`): the paper's reference answer of a solution."""
    return remove_boxed(last_boxed_only_string(text))


# ----------------------------------------------------------------------------------------------
# The paper's normalisation
# ----------------------------------------------------------------------------------------------


def _fix_fracs(text: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}``, ``\\frac1{72}`` → ``\\frac{1}{72}``, ``\\frac1b`` →
    ``\\frac{1}{b}``; a ``\\frac`` followed by a single character leaves the whole string as it came."""
    pieces = text.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\frac"
        if not piece:
            raise NormalizationError(f"answer ends in \\frac: {text!r}")
        if piece[0] == "{":
            out += piece
            continue
        if len(piece) < 2:
            return text
        numerator, second, rest = piece[0], piece[1], piece[2:]
        if second != "{":
            out += "{" + numerator + "}{" + second + "}" + rest
        else:
            out += "{" + numerator + "}" + second + rest
    return out


def _canonical_int(text: str) -> bool:
    return re.fullmatch(r"-?[0-9]+", text) is not None and str(int(text)) == text


def _fix_a_slash_b(text: str) -> str:
    """``3/4`` → ``\\frac{3}{4}`` when the answer is exactly two canonically written integers."""
    parts = text.split("/")
    if len(parts) == 2 and all(_canonical_int(p) for p in parts):
        return "\\frac{" + parts[0] + "}{" + parts[1] + "}"
    return text


def _remove_right_units(text: str) -> str:
    """Everything before ``\\text{ `` (the paper: that form "only ever occurs ... when describing
    units"); two such groups are an error, as in the released code."""
    if "\\text{ " not in text:
        return text
    parts = text.split("\\text{ ")
    if len(parts) != 2:
        raise NormalizationError(
            f"answer has {len(parts) - 1} '\\text{{ ' unit groups, expected one: {text!r}"
        )
    return parts[0]


def _fix_sqrt(text: str) -> str:
    """``\\sqrt3`` → ``\\sqrt{3}`` (only the next character is wrapped)."""
    if "\\sqrt" not in text:
        return text
    pieces = text.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise NormalizationError(f"\\sqrt without an argument in {text!r}")
        out += "\\sqrt" + (piece if piece[0] == "{" else "{" + piece[0] + "}" + piece[1:])
    return out


def strip_string(answer: str) -> str:
    """The paper's normal form of an answer (module docstring, in the paper's order). Raises
    :class:`NormalizationError` where the released code failed."""
    _check_text("answer", answer)
    text = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")  # degrees
    text = text.replace("\\$", "")
    text = _remove_right_units(text)
    text = text.replace("\\%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "k = 3" → "3"; the released code's heuristic
        text = sides[1]
    text = _fix_sqrt(text)
    text = text.replace(" ", "")
    text = _fix_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _fix_a_slash_b(text)


def _paper_equiv(first: str | None, second: str | None) -> bool:
    if first is None or second is None:
        return first is None and second is None
    try:
        return strip_string(first) == strip_string(second)
    except NormalizationError:
        return first == second


def is_equiv(first: str | None, second: str | None, method: str = "paper") -> bool:
    """Whether two final answers are the same under ``method`` (``"paper"``: the released
    ``is_equiv``; ``"exact"``: string equality; ``"sympy"``: the paper's check or
    :func:`sympy_equiv`). Symmetric in its two answers; ``None`` is a missing answer."""
    _check_text("first", first, allow_none=True)
    _check_text("second", second, allow_none=True)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "exact":
        return first == second
    if _paper_equiv(first, second):
        return True
    if method == "sympy" and first is not None and second is not None:
        return sympy_equiv(first, second)
    return False


# ----------------------------------------------------------------------------------------------
# The sympy option
# ----------------------------------------------------------------------------------------------

_SPACING = ("\\!", "\\,", "\\;", "\\:", "\\ ", "\\quad", "\\qquad", "~")
_TOKEN = re.compile(
    r"\s*(?:(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)|(?P<command>\\[A-Za-z]+)|(?P<letter>[A-Za-z])"
    r"|(?P<symbol>[-+*/^(){}\[\],=]))"
)
_COMMANDS = {"\\frac", "\\sqrt", "\\pi", "\\infty", "\\cdot", "\\times", "\\div"}
_BINARY = {"*", "/", "\\cdot", "\\times", "\\div"}
_THOUSANDS = re.compile(r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SympyParseError(f"cannot read {text[position : position + 10]!r} in {text!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "command" and value not in _COMMANDS:
            raise SympyParseError(f"unsupported LaTeX command {value}")
        tokens.append((kind, value))
        position = match.end()
        if len(tokens) > MAX_SYMPY_TOKENS:
            raise SympyParseError(f"answer has more than {MAX_SYMPY_TOKENS} tokens")
    return tokens


class _Parser:
    """Recursive descent over the tokens; builds sympy objects directly (no eval, no sympify)."""

    def __init__(self, tokens: list[tuple[str, str]], sympy: Any) -> None:
        self.tokens, self.position, self.sympy = tokens, 0, sympy

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise SympyParseError(f"expected {value or 'more input'}, got {token[1] if token else 'the end'}")
        self.position += 1
        return token

    def expression(self) -> Any:
        value = self.term()
        while (token := self.peek()) is not None and token[1] in "+-" and token[0] == "symbol":
            self.take()
            right = self.term()
            value = value + right if token[1] == "+" else value - right
        return value

    def term(self) -> Any:
        value = self.signed()
        while (token := self.peek()) is not None:
            if token[1] in _BINARY and token[0] in ("symbol", "command"):
                self.take()
                right = self.signed()
                value = value / right if token[1] in ("/", "\\div") else value * right
            elif self.starts_atom(token):
                value = value * self.power()  # implicit product: 2\pi, 3x, (x+1)(x-1)
            else:
                break
        return value

    def signed(self) -> Any:
        token = self.peek()
        if token is not None and token[0] == "symbol" and token[1] in "+-":
            self.take()
            value = self.signed()
            return -value if token[1] == "-" else value
        return self.power()

    def power(self) -> Any:
        base = self.atom()
        token = self.peek()
        if token is not None and token[1] == "^":
            self.take()
            # x^23 is x^2 3 in LaTeX: one character (or a braced group) is the exponent
            negative = self.peek_value() == "-"
            if negative:
                self.take()
            exponent = self.group(single=True)
            exponent = -exponent if negative else exponent
            if exponent.is_number and base.is_number:
                magnitude = abs(complex(exponent.evalf(15)))
                if magnitude > MAX_EXPONENT:
                    raise SympyParseError(f"exponent of magnitude {magnitude:.3g} is over {MAX_EXPONENT}")
                if base.is_Rational:  # sympy computes rational powers exactly: bound their digits
                    bits = max(int(base.p).bit_length(), int(base.q).bit_length())
                    if bits * magnitude > MAX_POWER_BITS:
                        raise SympyParseError(f"exponent gives a power of over {MAX_POWER_BITS} bits")
            return self.sympy.Pow(base, exponent)
        return base

    def peek_value(self) -> str | None:
        token = self.peek()
        return None if token is None else token[1]

    def starts_atom(self, token: tuple[str, str]) -> bool:
        kind, value = token
        return kind in ("number", "letter") or value in ("(", "{", "\\frac", "\\sqrt", "\\pi", "\\infty")

    def group(self, single: bool = False) -> Any:
        """``{expr}``, or one character (``\\frac12``: the digits are split one by one)."""
        token = self.peek()
        if token is None:
            raise SympyParseError("expected an argument, got the end")
        if token[1] == "{":
            self.take()
            value = self.expression()
            self.take("}")
            return value
        if token[0] == "number" and len(token[1]) > 1:
            self.tokens[self.position] = ("number", token[1][1:])
            return self.sympy.Integer(int(token[1][0])) if token[1][0] != "." else self.fail(token)
        if single or token[0] in ("number", "letter") or token[1] in ("\\pi", "\\infty"):
            return self.atom()
        return self.fail(token)

    def fail(self, token: tuple[str, str]) -> Any:
        raise SympyParseError(f"unexpected {token[1]!r}")

    def atom(self) -> Any:
        sympy = self.sympy
        token = self.take()
        kind, value = token
        if kind == "number":
            return sympy.Rational(value) if "." in value else sympy.Integer(int(value))
        if kind == "letter":
            return sympy.I if value == "i" else sympy.Symbol(value)
        if value == "\\pi":
            return sympy.pi
        if value == "\\infty":
            return sympy.oo
        if value == "\\frac":
            numerator = self.group()
            denominator = self.group()
            return numerator / denominator
        if value == "\\sqrt":
            index = sympy.Integer(2)
            if self.peek_value() == "[":
                self.take("[")
                index = self.expression()
                self.take("]")
            return sympy.root(self.group(), index)
        if value in ("(", "{"):
            inner = self.expression()
            self.take(")" if value == "(" else "}")
            return inner
        return self.fail(token)


def _clean_for_sympy(text: str) -> str:
    for spacing in _SPACING:
        text = text.replace(spacing, " ")
    text = (
        text.replace("\\left", "")
        .replace("\\right", "")
        .replace("\\dfrac", "\\frac")
        .replace("\\tfrac", "\\frac")
    )
    text = text.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("\\%", "")
    text = text.replace("$", "")
    if text.count("\\text{ ") == 1:  # units on the right, read as the paper reads them
        text = text.split("\\text{ ")[0]
    text = text.strip()
    if _THOUSANDS.fullmatch(text.replace(" ", "")):
        text = text.replace(",", "").replace(" ", "")
    return text


def _split_top_level(tokens: list[tuple[str, str]], separator: str) -> list[list[tuple[str, str]]]:
    parts: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for token in tokens:
        if token[0] == "symbol" and token[1] in "([{":
            depth += 1
        elif token[0] == "symbol" and token[1] in ")]}":
            depth -= 1
        if depth == 0 and token == ("symbol", separator):
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _parse_tokens(tokens: list[tuple[str, str]], sympy: Any) -> Any:
    if not tokens:
        raise SympyParseError("empty expression")
    parser = _Parser(list(tokens), sympy)
    value = parser.expression()
    if parser.peek() is not None:
        raise SympyParseError(f"unexpected {parser.peek()[1]!r} after the expression")
    return value


def parse_latex_answer(answer: str) -> tuple:
    """``answer`` as ``("expr", e)``, ``("equation", lhs, rhs)`` or ``("tuple", open, close, items)``
    (``open``/``close``: the brackets, ``""`` for a bare list ``1, 2``). Raises
    :class:`SympyParseError` outside the subset or over the guards (module docstring)."""
    _check_text("answer", answer)
    import sympy

    text = _clean_for_sympy(answer)
    if not text:
        raise SympyParseError("empty answer")
    if len(text) > MAX_SYMPY_CHARS:
        raise SympyParseError(f"answer is longer than {MAX_SYMPY_CHARS} characters")
    tokens = _tokenize(text)
    sides = _split_top_level(tokens, "=")
    if len(sides) == 2:
        lhs, rhs = sides
        if len(lhs) == 1 and lhs[0][0] == "letter":  # "x = 5" is the answer 5, as the paper reads it
            return _parse_items(rhs, sympy)
        return ("equation", _parse_tokens(lhs, sympy), _parse_tokens(rhs, sympy))
    if len(sides) > 2:
        raise SympyParseError("more than one '='")
    return _parse_items(tokens, sympy)


def _closes_at_end(tokens: list[tuple[str, str]]) -> bool:
    """Whether the bracket opening ``tokens`` is closed by its last token (``(1, 2)``, ``(0, 1]``) and
    not earlier (``(1)(2)``)."""
    depth = 0
    for index, token in enumerate(tokens):
        if token[0] == "symbol" and token[1] in "([{":
            depth += 1
        elif token[0] == "symbol" and token[1] in ")]}":
            depth -= 1
            if depth == 0:
                return index == len(tokens) - 1
    return False


def _parse_items(tokens: list[tuple[str, str]], sympy: Any) -> tuple:
    bracketed = len(tokens) >= 2 and tokens[0][1] in ("(", "[") and tokens[-1][1] in (")", "]")
    if bracketed and _closes_at_end(tokens):
        inner = _split_top_level(tokens[1:-1], ",")
        if len(inner) > 1:  # a tuple or an interval: its brackets are part of the answer
            return ("tuple", tokens[0][1], tokens[-1][1], [_parse_tokens(part, sympy) for part in inner])
    items = _split_top_level(tokens, ",")
    if len(items) > 1:
        return ("tuple", "", "", [_parse_tokens(part, sympy) for part in items])
    return ("expr", _parse_tokens(tokens, sympy))


def _numbers_equal(first: Any, second: Any, sympy: Any) -> bool:
    """Equal as numbers or as functions: the difference is ~0 at 30 digits, at three fixed points of
    the free symbols when there are any (a polynomial identity test; no simplify)."""
    if first.has(sympy.oo, -sympy.oo, sympy.zoo) or second.has(sympy.oo, -sympy.oo, sympy.zoo):
        return first == second
    symbols = sorted(first.free_symbols | second.free_symbols, key=lambda s: s.name)
    generator = random.Random(20210305)  # fixed points: the same verdict every call
    trials = 3 if symbols else 1
    for _ in range(trials):
        point = {s: sympy.Rational(generator.randint(11, 97), generator.randint(7, 13)) for s in symbols}
        try:
            a = complex(first.subs(point).evalf(30))
            b = complex(second.subs(point).evalf(30))
        except (TypeError, ValueError, ZeroDivisionError):
            return False
        if not all(math.isfinite(v) for v in (a.real, a.imag, b.real, b.imag)):
            return False
        if abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b)):
            return False
    return True


def sympy_equiv(first: str, second: str) -> bool:
    """Whether two answers are mathematically equal within the LaTeX subset of
    :func:`parse_latex_answer` (tuples elementwise, with the same brackets); ``False`` when either
    cannot be parsed or is over the guards."""
    _check_text("first", first)
    _check_text("second", second)
    import sympy

    try:
        a, b = parse_latex_answer(first), parse_latex_answer(second)
    except (SympyParseError, ZeroDivisionError, TypeError, ValueError, OverflowError):
        return False
    if a[0] != b[0]:
        return False
    if a[0] == "expr":
        return _numbers_equal(a[1], b[1], sympy)
    if a[0] == "equation":
        return _numbers_equal(a[1], b[1], sympy) and _numbers_equal(a[2], b[2], sympy)
    if a[1:3] != b[1:3] or len(a[3]) != len(b[3]):
        return False
    return all(_numbers_equal(x, y, sympy) for x, y in zip(a[3], b[3], strict=True))
