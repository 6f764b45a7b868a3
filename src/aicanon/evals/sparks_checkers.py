"""Automatic checkers for the probe families of Bubeck et al. (2023), "Sparks of Artificial General
Intelligence: Early experiments with GPT-4" (arXiv 2303.12712), and the naive checkers they are
compared with.

The paper judges GPT-4's outputs by hand: it runs the code it wrote (Section 3), reads its
mathematics (Section 4), renders the TikZ/SVG it draws (Section 2.2), looks at which tool calls it
makes (Section 5.1) and where it says a character will look for an object (Section 6.1). Each
checker here replaces one of those judgements by a program, and states what it accepts:

* **Code** (:func:`run_python`, :func:`check_code`). The candidate's code runs in a child process:
  ``python -I -S`` (isolated mode: no user site, no ``PYTHON*`` variables, no current folder on
  ``sys.path``; ``-S``: no ``site`` import), an empty temporary working folder that is deleted
  afterwards, a minimal environment, a wall-clock timeout (default 3 s, the process group is
  killed), and POSIX resource limits the script sets on itself before anything else runs: address space
  (``RLIMIT_AS``, default 512 MiB), CPU time (``RLIMIT_CPU``, default 1 s), written file size
  (``RLIMIT_FSIZE``, 1 MiB), open files (``RLIMIT_NOFILE``, 64) and no core dumps. Standard output
  is read up to 1 MiB; the whole process group (anything the code started) is killed when the run
  ends. **Network access is not blocked** (that needs a network namespace or a
  container): the suite assumes the machine it runs on has no network, or that the model is
  trusted not to use it. This is a guard against accidents (an infinite loop, a memory bomb, a
  stray file), not a security boundary against a hostile model: run untrusted models in a
  container. Linux/POSIX only (the ``resource`` module).

  The tests never enter the child: it receives only the *inputs* of the hidden test cases, calls
  the named function on each and reports what came back (as JSON, on a duplicate of its standard
  output taken before the candidate ran, with the candidate's own ``print`` silenced); the
  *expected* outputs stay in this process, which compares them type-strictly (``True`` is not
  ``1``). So code that prints ``PASS``, exits early (``sys.exit``/``os._exit``), returns an
  object whose ``__eq__`` is always true, or patches builtins cannot pass without computing the
  answers; code that hard-codes the prompt's visible example fails the hidden cases.
* **Mathematics** (:func:`stated_answer`, :func:`check_numeric_answer`,
  :func:`check_expression_answer`): the answer the text *states* (``\\boxed{...}``, else the text
  after the last "The answer is", the format of Wei et al.'s exemplars reused by
  :mod:`aicanon.reasoning.answers`) must be exactly one number equal to the expected one (relative
  tolerance 1e-6), or an expression in ``x`` that agrees with the expected one at seven points
  (parsed by a whitelist over Python's ``ast``: numbers, ``x``, ``+ - * / **`` and parentheses;
  ``^`` and implicit products such as ``6x^2`` are accepted; nothing is ever ``eval``-ed). A
  hedge ("6 or 7"), an unstated answer, or a number buried in the working does not pass.
* **Theory of mind** (:func:`check_false_belief`): the location after ``Answer:`` (else in the
  whole text) must name the expected location and not the other one, with no negation.
  Locations are matched as whole words (a folder by its path or its last component).
* **Spatial (SVG)** (:func:`parse_svg`, :func:`rasterize`, :func:`check_svg_relation`): the SVG
  is parsed with the standard library's XML parser (a document declaring a DOCTYPE or an entity is
  refused, and so are more than 500 shapes or groups nested deeper than 32); ``rect``,
  ``circle``, ``ellipse``, ``line`` and ``polygon`` elements (inside ``svg``/``g``, with
  ``translate`` transforms) are rasterised on a 100 x 100 grid over the ``viewBox`` in
  painting order, so a shape hidden under a later one or drawn outside the canvas has no visible
  pixels; the two named shapes (circle, square: a rect within 10 % of square, triangle: a
  3-point polygon) must be visible (>= 20 pixels) in the named colours (nearest of a small
  palette) and in the named relation (centroid displacement mostly along the relation's axis and
  the extents separated, up to 5 % of the canvas).
* **Tool use** (:func:`calculator`, :class:`FakeSearch`, :func:`check_tool_transcript`): the
  transcript's ``SEARCH("query")`` and ``CALC(expression)`` calls (the format of the paper's
  Figure 5.2 prompt) are re-run; a ``RESULT:`` line that differs from the real result (a
  fabricated tool output) fails, the facts the task needs must have been retrieved by a search,
  a required calculation must have been made, and the line ``Answer: ...`` must state exactly one
  number equal to the expected one.

The naive checkers (:func:`naive_check`), the ablation, are what a quick harness often does: the
expected answer as a substring of the output, the required tags present in the SVG, and the
code's assert-based tests followed by ``print("PASS")``, passing when ``PASS`` is printed.

Departures from the paper: the paper's checks are human judgements of single outputs; these are
programs, validated against hand-labelled outputs (precision and recall per family, in
:mod:`aicanon.evals.sparks`). TikZ is not rendered (no TeX here): the spatial family is SVG.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.reasoning.answers import ANSWER_TRIGGER, normalize_number, numbers_in

__all__ = [
    "CheckResult",
    "ExecutionResult",
    "FakeSearch",
    "Shape",
    "calculator",
    "check_code",
    "check_expression_answer",
    "check_false_belief",
    "check_numeric_answer",
    "check_svg_relation",
    "check_tool_transcript",
    "extract_code",
    "naive_code_check",
    "parse_svg",
    "parse_tool_calls",
    "rasterize",
    "run_python",
    "safe_expression",
    "stated_answer",
]


@dataclass(frozen=True)
class CheckResult:
    """A checker's verdict and why (the reason is kept in the report beside the output)."""

    passed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.passed


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


# ------------------------------------------------------------------------------------------------
# Code: a sandboxed child process
# ------------------------------------------------------------------------------------------------

MAX_OUTPUT_BYTES = 1 << 20
_RESULT_MARK = "@@SPARKS-RESULT@@"

# The child: read the inputs, run the candidate with print silenced, call the function on every
# input and write what came back on a duplicate of fd 1 taken before the candidate ran.
_RUNNER = """
import json, os, sys
_dumps, _repr, _type = json.dumps, repr, type
_out = os.fdopen(os.dup(1), "w")
sys.stdout = open(os.devnull, "w")
with open("inputs.json") as f:
    _spec = json.load(f)
def _report(payload):
    _out.write("\\n" + MARK + _dumps(payload) + "\\n")
    _out.flush()
_namespace = {"__name__": "candidate"}
try:
    with open("candidate.py") as f:
        _source = f.read()
    exec(compile(_source, "candidate.py", "exec"), _namespace)
except BaseException as error:
    _report({"error": "while loading: " + _type(error).__name__ + ": " + str(error)[:200]})
    os._exit(0)
_function = _namespace.get(_spec["function"])
if not callable(_function):
    _report({"error": "no function named " + _spec["function"]})
    os._exit(0)
_outputs = []
for _args in _spec["inputs"]:
    try:
        _value = _function(*json.loads(_dumps(_args)))
        try:
            _outputs.append({"value": json.loads(_dumps(_value))})
        except BaseException as error:
            _outputs.append({"error": "unserialisable " + _type(_value).__name__})
    except BaseException as error:
        _outputs.append({"error": _type(error).__name__ + ": " + str(error)[:200]})
_report({"outputs": _outputs})
os._exit(0)
""".replace("MARK", repr(_RESULT_MARK))


@dataclass(frozen=True)
class ExecutionResult:
    """What a sandboxed run produced: exit status (None after a timeout), output, whether it timed out."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool


def _limits_prelude(memory_mb: int, cpu_seconds: int) -> str:
    """The first lines of every sandboxed script: the process lowers its own limits before any
    other code runs (no ``preexec_fn``, which is unsafe with threads, so checks can run in a pool)."""
    memory = memory_mb * 1024 * 1024
    return (
        "import resource as _resource\n"
        f"_resource.setrlimit(_resource.RLIMIT_AS, ({memory}, {memory}))\n"
        f"_resource.setrlimit(_resource.RLIMIT_CPU, ({cpu_seconds}, {cpu_seconds + 1}))\n"
        f"_resource.setrlimit(_resource.RLIMIT_FSIZE, ({MAX_OUTPUT_BYTES}, {MAX_OUTPUT_BYTES}))\n"
        "_resource.setrlimit(_resource.RLIMIT_NOFILE, (64, 64))\n"
        "_resource.setrlimit(_resource.RLIMIT_CORE, (0, 0))\n"
        "del _resource\n"
    )


def run_python(
    source: str,
    files: dict[str, str] | None = None,
    *,
    timeout: float = 3.0,
    memory_mb: int = 512,
    cpu_seconds: int = 1,
) -> ExecutionResult:
    """Run ``source`` with ``python -I -S`` in a fresh temporary folder holding ``files``
    (name -> text), under the module docstring's limits; the folder is removed afterwards."""
    _text("source", source)
    check_float("timeout", timeout, 0.0, min_inclusive=False, finite=True)
    check_int("memory_mb", memory_mb, 16)
    check_int("cpu_seconds", cpu_seconds, 1)
    if os.name != "posix":
        raise RuntimeError("run_python needs a POSIX system (resource limits)")
    with tempfile.TemporaryDirectory(prefix="sparks-") as folder:
        for name, text in (files or {}).items():
            if os.path.basename(name) != name or name in ("", ".", ".."):
                raise ValueError(f"files keys must be plain file names, got {name!r}")
            with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
                handle.write(_text(f"files[{name!r}]", text))
        script = os.path.join(folder, "main.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(_limits_prelude(memory_mb, cpu_seconds) + source)
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", script],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"},
            start_new_session=True,  # its own process group, killed whole on a timeout
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = process.communicate()
            timed_out = True
        try:  # whatever the code started in its process group goes too
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    decode = lambda data: data[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace")  # noqa: E731
    return ExecutionResult(
        None if timed_out else process.returncode, decode(stdout), decode(stderr), timed_out
    )


_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The code of a reply: its fenced blocks joined (```python ... ```), else the whole text."""
    blocks = _FENCE.findall(_text("text", text))
    return "\n\n".join(blocks) if blocks else text


def _same(a: Any, b: Any) -> bool:
    """Type-strict equality of JSON values (True is not 1; 1 and 1.0 are the same number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def check_code(
    text: str,
    function: str,
    cases: Sequence[tuple[Sequence[Any], Any]],
    *,
    timeout: float = 3.0,
    memory_mb: int = 512,
    cpu_seconds: int = 1,
) -> CheckResult:
    """Whether the code in ``text`` defines ``function`` that returns each case's expected output
    (``cases``: (arguments, expected) pairs of JSON values); see the module docstring."""
    _text("function", function)
    if not cases:
        raise ValueError("cases must hold at least one (arguments, expected) pair")
    code = extract_code(text)
    spec = {"function": function, "inputs": [list(args) for args, _ in cases]}
    outcome = run_python(
        _RUNNER,
        {"candidate.py": code, "inputs.json": json.dumps(spec)},
        timeout=timeout,
        memory_mb=memory_mb,
        cpu_seconds=cpu_seconds,
    )
    if outcome.timed_out:
        return CheckResult(False, f"timed out after {timeout} s")
    lines = [line for line in outcome.stdout.splitlines() if line.startswith(_RESULT_MARK)]
    if not lines:
        return CheckResult(False, f"no result (exit status {outcome.returncode}; {outcome.stderr[-200:]!r})")
    try:
        report = json.loads(lines[-1][len(_RESULT_MARK) :])
    except ValueError:
        return CheckResult(False, "unreadable result line")
    if not isinstance(report, dict):
        return CheckResult(False, "unreadable result line")
    if "error" in report:
        return CheckResult(False, str(report["error"]))
    outputs = report.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != len(cases):
        return CheckResult(False, "result has the wrong number of outputs")
    for index, (output, (args, expected)) in enumerate(zip(outputs, cases, strict=True)):
        if not isinstance(output, dict) or "value" not in output:
            error = output.get("error") if isinstance(output, dict) else output
            return CheckResult(False, f"case {index} {list(args)!r}: {error}")
        if not _same(output["value"], json.loads(json.dumps(expected))):
            return CheckResult(
                False, f"case {index} {list(args)!r}: got {output['value']!r}, expected {expected!r}"
            )
    return CheckResult(True, f"all {len(cases)} cases pass")


def naive_code_check(text: str, function: str, cases: Sequence[tuple[Sequence[Any], Any]]) -> CheckResult:
    """The ablation: the candidate's code, then ``assert f(*args) == expected`` per case, then
    ``print("PASS")``, in one process (sandboxed as :func:`run_python`); passes when ``PASS`` is printed."""
    asserts = "\n".join(f"assert {function}(*{list(args)!r}) == {expected!r}" for args, expected in cases)
    outcome = run_python(extract_code(text) + "\n\n" + asserts + '\nprint("PASS")\n')
    return CheckResult("PASS" in outcome.stdout, "PASS printed" if "PASS" in outcome.stdout else "no PASS")


# ------------------------------------------------------------------------------------------------
# Mathematics
# ------------------------------------------------------------------------------------------------


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (nested braces allowed), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, position = 0, start + len("\\boxed")
    for index in range(position, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[position + 1 : index]
    return None


def stated_answer(text: str) -> str | None:
    """The answer a text states: the last ``\\boxed{}``, else what follows the last "The answer
    is" up to the end of its line (a final period and surrounding ``$`` removed); None if neither."""
    _text("text", text)
    boxed = _boxed(text)
    if boxed is not None:
        return boxed.strip()
    position = text.lower().rfind(ANSWER_TRIGGER.lower())
    if position < 0:
        return None
    rest = text[position + len(ANSWER_TRIGGER) :].split("\n", 1)[0].strip()
    rest = rest[1:].strip() if rest.startswith(":") else rest
    return rest.rstrip(".").strip().strip("$").strip()


def check_numeric_answer(text: str, expected: float, rel_tol: float = 1e-6) -> CheckResult:
    """The stated answer (:func:`stated_answer`) is exactly one number, equal to ``expected``."""
    check_float("expected", expected, finite=True)
    answer = stated_answer(text)
    if answer is None:
        return CheckResult(False, "no stated answer")
    numbers = set(numbers_in(answer.replace("\\frac", "")))
    if len(numbers) != 1:
        return CheckResult(False, f"the stated answer {answer!r} holds {len(numbers)} numbers")
    (value,) = numbers
    if math.isclose(float(value), float(expected), rel_tol=rel_tol, abs_tol=1e-9):
        return CheckResult(True, f"stated {value}")
    return CheckResult(False, f"stated {value}, expected {normalize_number(str(expected))}")


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load)
_ALLOWED_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.UAdd, ast.USub)


def safe_expression(text: str, variables: Sequence[str] = ("x",)) -> ast.Expression:
    """Parse a arithmetic expression in ``variables`` (``^`` for powers and implicit products like
    ``6x^2`` or ``2(x+1)`` accepted) into a whitelisted ``ast``; ``ValueError`` for anything else."""
    _text("text", text)
    cleaned = text.strip().replace("^", "**").replace("\\cdot", "*").replace("\\times", "*")
    cleaned = re.sub(r"(\d)\s*([a-zA-Z(])", r"\1*\2", cleaned)  # 6x -> 6*x, 2(x) -> 2*(x)
    cleaned = re.sub(r"\)\s*([a-zA-Z0-9(])", r")*\1", cleaned)  # (x+1)(x-1), (x)2
    cleaned = re.sub(r"\b([a-zA-Z])\s*\(", r"\1*(", cleaned)  # x(x+1)
    if len(cleaned) > 200:
        raise ValueError("expression is longer than 200 characters")
    try:
        tree = ast.parse(cleaned, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not an expression: {text!r} ({error.msg})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.operator | ast.unaryop):
            if not isinstance(node, _ALLOWED_OPERATORS):
                raise ValueError(f"operator {type(node).__name__} is not allowed in {text!r}")
        elif not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"{type(node).__name__} is not allowed in {text!r}")
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, (int, float))
        ):
            raise ValueError(f"constant {node.value!r} is not a number in {text!r}")
        if isinstance(node, ast.Name) and node.id not in variables:
            raise ValueError(f"unknown name {node.id!r} in {text!r} (allowed: {list(variables)})")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if not isinstance(node.right, ast.Constant) or abs(node.right.value) > 12:
                raise ValueError(f"powers must be constants of at most 12 in {text!r}")
    return tree


def _evaluate(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    op = node.op
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right if right != 0 else math.nan
    return left**right


EXPRESSION_POINTS = (-2.5, -1.0, -0.3, 0.5, 1.25, 2.0, 3.7)


def check_expression_answer(text: str, expected: str) -> CheckResult:
    """The stated answer is an expression in ``x`` equal to ``expected`` (also such an expression)
    at every point of :data:`EXPRESSION_POINTS` (relative tolerance 1e-6). A stated ``f'(x) = ...``
    is read after its last ``=``."""
    reference = safe_expression(expected)
    answer = stated_answer(text)
    if answer is None:
        return CheckResult(False, "no stated answer")
    answer = answer.rsplit("=", 1)[-1]
    try:
        tree = safe_expression(answer)
    except ValueError as error:
        return CheckResult(False, f"unparseable: {error}")
    for point in EXPRESSION_POINTS:
        got, want = _evaluate(tree, {"x": point}), _evaluate(reference, {"x": point})
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            return CheckResult(False, f"{answer!r} differs from {expected!r} at x = {point}")
    return CheckResult(True, f"{answer!r} equals {expected!r}")


# ------------------------------------------------------------------------------------------------
# Theory of mind
# ------------------------------------------------------------------------------------------------

_NEGATION = re.compile(
    r"\b(?:not|never|no longer|isn't|won't|wouldn't|doesn't|cannot|can't)\b", re.IGNORECASE
)


def _location_pattern(location: str) -> re.Pattern:
    """A whole-word pattern for ``location``; a path also matches by its last component."""
    names = {location.strip()}
    if "/" in location:
        names.add(location.rstrip("/").rsplit("/", 1)[-1])
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w/.-])(?:{alternatives})(?![\w/-])", re.IGNORECASE)


def _answer_line(text: str) -> str | None:
    matches = re.findall(r"^\s*\**answer\**\s*:\s*(.*)$", text, re.IGNORECASE | re.MULTILINE)
    return matches[-1] if matches else None


def check_false_belief(text: str, expected: str, other: str) -> CheckResult:
    """Where the answer says the character will look: the text after the last ``Answer:`` line
    (else the whole text) must name ``expected``, not ``other``, and hold no negation."""
    _text("text", text)
    segment = _answer_line(text)
    where = "the answer line" if segment is not None else "the text"
    segment = text if segment is None else segment
    has_expected = bool(_location_pattern(expected).search(segment))
    has_other = bool(_location_pattern(other).search(segment))
    if not has_expected:
        return CheckResult(False, f"{where} does not name {expected!r}")
    if has_other:
        return CheckResult(False, f"{where} names both {expected!r} and {other!r}")
    if _NEGATION.search(segment):
        return CheckResult(False, f"{where} holds a negation")
    return CheckResult(True, f"{where} names {expected!r}")


# ------------------------------------------------------------------------------------------------
# Spatial: SVG parsed and rasterised here
# ------------------------------------------------------------------------------------------------

GRID = 100
MIN_VISIBLE_PIXELS = 20
MAX_SHAPES = 500
"""More shapes than this are refused (each costs a grid-sized mask)."""
MAX_DEPTH = 32
"""Deepest ``<g>`` nesting read."""
PALETTE = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
_CSS = {**PALETTE, "lime": (0, 255, 0), "grey": (128, 128, 128), "navy": (0, 0, 128), "maroon": (128, 0, 0)}


@dataclass
class Shape:
    """One drawn element: its kind (``circle``, ``square``, ``rectangle``, ``triangle``, ``line``,
    ``polygon``, ``ellipse``), colour name (nearest palette colour of its fill, else its stroke),
    its painted mask on the grid and, once :func:`rasterize` has run, its visible mask."""

    kind: str
    colour: str | None
    mask: np.ndarray
    visible: np.ndarray | None = field(default=None, repr=False)


class SvgError(ValueError):
    """An SVG this checker cannot read (not XML, a DOCTYPE, units or transforms it does not support)."""


def _number(element: ElementTree.Element, name: str, default: float | None = None) -> float:
    raw = element.get(name)
    if raw is None:
        if default is None:
            raise SvgError(f"<{_tag(element)}> lacks {name}")
        return default
    raw = raw.strip()
    if raw.endswith("px"):
        raw = raw[:-2]
    try:
        value = float(raw)
    except ValueError:
        raise SvgError(f"<{_tag(element)}> {name}={raw!r} is not a plain number") from None
    if not math.isfinite(value):
        raise SvgError(f"<{_tag(element)}> {name} is not finite")
    return value


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _colour(value: str | None) -> tuple[int, int, int] | None:
    """RGB of a CSS colour (names of :data:`_CSS`, #rgb, #rrggbb, rgb(r,g,b)); None for none/unknown."""
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("none", "transparent", ""):
        return None
    if value in _CSS:
        return _CSS[value]
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        return tuple(int(c * 2, 16) for c in value[1:])  # type: ignore[return-value]
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    match = re.fullmatch(r"rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", value)
    if match:
        return tuple(min(int(g), 255) for g in match.groups())  # type: ignore[return-value]
    return None


def _nearest(rgb: tuple[int, int, int] | None) -> str | None:
    if rgb is None:
        return None
    return min(PALETTE, key=lambda name: sum((a - b) ** 2 for a, b in zip(PALETTE[name], rgb, strict=True)))


def _style(element: ElementTree.Element, name: str, inherited: dict[str, str]) -> str | None:
    style = dict(
        (part.split(":", 1)[0].strip().lower(), part.split(":", 1)[1].strip())
        for part in (element.get("style") or "").split(";")
        if ":" in part
    )
    return style.get(name, element.get(name, inherited.get(name)))


def _translate(element: ElementTree.Element) -> tuple[float, float]:
    transform = element.get("transform")
    if transform is None or not transform.strip():
        return 0.0, 0.0
    match = re.fullmatch(r"\s*translate\(\s*([-\d.eE+]+)(?:[\s,]+([-\d.eE+]+))?\s*\)\s*", transform)
    if not match:
        raise SvgError(f"transform {transform!r} is not supported (only translate)")
    return float(match.group(1)), float(match.group(2) or 0.0)


def _segment_distance(
    px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float]
) -> np.ndarray:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = np.zeros_like(px) if length == 0 else np.clip(((px - ax) * dx + (py - ay) * dy) / length, 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _polygon_inside(px: np.ndarray, py: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule: a ray to +x crosses the boundary an odd number of times."""
    inside = np.zeros(px.shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        if y1 == y2:
            continue
        crosses = (y1 > py) != (y2 > py)
        x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < x_at)
    return inside


def parse_svg(text: str) -> tuple[tuple[float, float, float, float], list[ElementTree.Element]]:
    """The ``viewBox`` (x, y, width, height) and the root of an SVG document; :class:`SvgError` if
    it is not one this checker reads. The SVG may sit inside a fenced block or other text."""
    _text("text", text)
    match = re.search(r"<svg\b.*?</svg\s*>", text, re.DOTALL | re.IGNORECASE)
    if match is None:
        raise SvgError("no <svg>...</svg> element")
    if re.search(r"<!(?:DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise SvgError("DOCTYPE and ENTITY declarations are refused")
    try:
        root = ElementTree.fromstring(match.group(0))
    except ElementTree.ParseError as error:
        raise SvgError(f"not well-formed XML: {error}") from None
    box = root.get("viewBox")
    if box is not None:
        parts = re.split(r"[\s,]+", box.strip())
        try:
            view = tuple(float(p) for p in parts)
        except ValueError:
            raise SvgError(f"viewBox {box!r} is not four numbers") from None
        if len(view) != 4 or view[2] <= 0 or view[3] <= 0:
            raise SvgError(f"viewBox {box!r} must be four numbers with a positive size")
    else:
        view = (0.0, 0.0, _number(root, "width", 100.0), _number(root, "height", 100.0))
        if view[2] <= 0 or view[3] <= 0:
            raise SvgError("width and height must be positive")
    return view, [root]  # type: ignore[return-value]


def rasterize(text: str, grid: int = GRID) -> list[Shape]:
    """Every drawn shape of the SVG ``text`` with its mask on a ``grid`` x ``grid`` raster of the
    viewBox (pixel centres), in painting order, each with its visible mask (not covered by a later
    shape). Unknown elements are skipped; ``<g>`` groups are entered (with their styles and translations)."""
    check_int("grid", grid, 8)
    (vx, vy, vw, vh), (root,) = parse_svg(text)
    centres = (np.arange(grid) + 0.5) / grid
    px, py = np.meshgrid(vx + centres * vw, vy + centres * vh)
    pixel = max(vw, vh) / grid
    shapes: list[Shape] = []

    def walk(
        element: ElementTree.Element, inherited: dict[str, str], dx: float, dy: float, depth: int
    ) -> None:
        if depth > MAX_DEPTH:
            raise SvgError(f"groups nested deeper than {MAX_DEPTH}")
        for child in element:
            if len(shapes) >= MAX_SHAPES:
                raise SvgError(f"more than {MAX_SHAPES} shapes")
            tag = _tag(child)
            tx, ty = _translate(child)
            style = {
                k: v
                for k in ("fill", "stroke", "stroke-width")
                if (v := _style(child, k, inherited)) is not None
            }
            if tag == "g":
                walk(child, style, dx + tx, dy + ty, depth + 1)
                continue
            shape = _shape(child, tag, style, px - dx - tx, py - dy - ty, pixel)
            if shape is not None:
                shapes.append(shape)

    walk(root, {}, 0.0, 0.0, 0)
    covered = np.zeros((grid, grid), dtype=bool)
    for shape in reversed(shapes):
        shape.visible = shape.mask & ~covered
        covered |= shape.mask
    return shapes


def _shape(
    element: ElementTree.Element,
    tag: str,
    style: dict[str, str],
    px: np.ndarray,
    py: np.ndarray,
    pixel: float,
) -> Shape | None:
    fill = _colour(style.get("fill", "black"))  # SVG's default fill is black, default stroke none
    stroke = _colour(style.get("stroke"))
    width = float(style.get("stroke-width", "1").rstrip("px") or 1) if stroke is not None else 0.0
    half = max(width / 2, pixel / 2)
    if tag == "rect":
        x, y, w, h = (
            _number(element, "x", 0.0),
            _number(element, "y", 0.0),
            _number(element, "width"),
            _number(element, "height"),
        )
        if w <= 0 or h <= 0:
            return Shape("rectangle", None, np.zeros(px.shape, dtype=bool))
        body = (px >= x) & (px < x + w) & (py >= y) & (py < y + h)
        grown = (px >= x - half) & (px < x + w + half) & (py >= y - half) & (py < y + h + half)
        shrunk = (px >= x + half) & (px < x + w - half) & (py >= y + half) & (py < y + h - half)
        kind = "square" if abs(w - h) <= 0.1 * max(w, h) else "rectangle"
    elif tag in ("circle", "ellipse"):
        cx, cy = _number(element, "cx", 0.0), _number(element, "cy", 0.0)
        if tag == "circle":
            rx = ry = _number(element, "r")
        else:
            rx, ry = _number(element, "rx"), _number(element, "ry")
        if rx <= 0 or ry <= 0:
            return Shape("circle", None, np.zeros(px.shape, dtype=bool))
        radius = np.hypot((px - cx) / rx, (py - cy) / ry)
        body = radius <= 1.0
        scale = min(rx, ry)
        grown, shrunk = radius <= 1.0 + half / scale, radius <= max(1.0 - half / scale, 0.0)
        kind = "circle" if abs(rx - ry) <= 0.1 * max(rx, ry) else "ellipse"
    elif tag == "line":
        a = (_number(element, "x1", 0.0), _number(element, "y1", 0.0))
        b = (_number(element, "x2", 0.0), _number(element, "y2", 0.0))
        mask = (
            _segment_distance(px, py, a, b) <= half if stroke is not None else np.zeros(px.shape, dtype=bool)
        )
        return Shape("line", _nearest(stroke), mask)
    elif tag == "polygon":
        numbers = re.split(r"[\s,]+", (element.get("points") or "").strip())
        try:
            values = [float(v) for v in numbers if v]
        except ValueError:
            raise SvgError("polygon points must be numbers") from None
        if len(values) % 2 or len(values) < 6:
            raise SvgError("polygon needs at least three x,y points")
        points = list(zip(values[::2], values[1::2], strict=True))
        body = _polygon_inside(px, py, points)
        edge = np.full(px.shape, np.inf)
        for a, b in zip(points, points[1:] + points[:1], strict=True):
            edge = np.minimum(edge, _segment_distance(px, py, a, b))
        grown, shrunk = body | (edge <= half), body & (edge > half)
        kind = "triangle" if len(points) == 3 else "polygon"
    else:
        return None
    if fill is not None:
        mask = body | (grown & ~shrunk) if stroke is not None else body
        colour = _nearest(fill)
    elif stroke is not None:
        mask, colour = grown & ~shrunk, _nearest(stroke)
    else:
        mask, colour = np.zeros(px.shape, dtype=bool), None
    return Shape(kind, colour, mask)


RELATIONS = ("above", "below", "left of", "right of")


def _relation_holds(a: np.ndarray, b: np.ndarray, relation: str, tolerance: float) -> bool:
    ay, ax = np.nonzero(a)
    by, bx = np.nonzero(b)
    dx, dy = bx.mean() - ax.mean(), by.mean() - ay.mean()  # from a to b, y grows downward
    if relation == "above":  # a above b
        return dy > 0 and abs(dy) > abs(dx) and ay.max() <= by.min() + tolerance
    if relation == "below":
        return dy < 0 and abs(dy) > abs(dx) and by.max() <= ay.min() + tolerance
    if relation == "left of":
        return dx > 0 and abs(dx) > abs(dy) and ax.max() <= bx.min() + tolerance
    return dx < 0 and abs(dx) > abs(dy) and bx.max() <= ax.min() + tolerance


def check_svg_relation(
    text: str, first: tuple[str, str], relation: str, second: tuple[str, str], grid: int = GRID
) -> CheckResult:
    """Whether the SVG shows a visible ``first`` = (colour, kind) in ``relation`` to a visible
    ``second`` (module docstring), e.g. ``(("red", "circle"), "above", ("blue", "square"))``."""
    check_choice("relation", relation, RELATIONS)
    for name, (colour, kind) in (("first", first), ("second", second)):
        check_choice(f"{name} colour", colour, tuple(PALETTE))
        check_choice(f"{name} kind", kind, ("circle", "square", "rectangle", "triangle"))
    try:
        shapes = rasterize(text, grid)
    except ValueError as error:  # SvgError, or a value numpy or float() refuses
        return CheckResult(False, f"unreadable SVG: {error}")
    visible = [s for s in shapes if s.visible is not None and s.visible.sum() >= MIN_VISIBLE_PIXELS]

    def matching(colour: str, kind: str) -> list[Shape]:
        return [s for s in visible if s.colour == colour and s.kind == kind]

    firsts, seconds = matching(*first), matching(*second)
    if not firsts or not seconds:
        missing = " ".join(first) if not firsts else " ".join(second)
        return CheckResult(False, f"no visible {missing}")
    tolerance = 0.05 * grid
    for a in firsts:
        for b in seconds:
            if a is not b and _relation_holds(a.visible, b.visible, relation, tolerance):
                return CheckResult(True, f"{' '.join(first)} {relation} {' '.join(second)}")
    return CheckResult(False, f"the {' '.join(first)} is not {relation} the {' '.join(second)}")


# ------------------------------------------------------------------------------------------------
# Tool use: a calculator, a search over a local dictionary, and the transcript checker
# ------------------------------------------------------------------------------------------------

_CALC_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.UAdd, ast.USub)


def calculator(expression: str) -> str:
    """Evaluate an arithmetic ``expression`` (numbers, ``+ - * / // % **``, parentheses; powers up
    to 64, magnitudes up to 1e30); the result as text (an integral value without a decimal point)
    or ``"error: ..."``. Parsed with ``ast``, never ``eval``-ed."""
    _text("expression", expression)
    source = expression.strip().replace(",", "").replace("^", "**").replace("x", "*").replace("\u00d7", "*")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return f"error: cannot parse {expression!r}"

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, _CALC_OPERATORS):
            operand = value(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, _CALC_OPERATORS):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ValueError("power too large")
            operations = {
                ast.Add: lambda: left + right,
                ast.Sub: lambda: left - right,
                ast.Mult: lambda: left * right,
                ast.Div: lambda: left / right,
                ast.FloorDiv: lambda: left // right,
                ast.Mod: lambda: left % right,
                ast.Pow: lambda: left**right,
            }
            result = operations[type(node.op)]()
            if abs(result) > 1e30:
                raise ValueError("result too large")
            return result
        raise ValueError(f"{type(node).__name__} is not allowed")

    try:
        result = value(tree)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError) as error:
        return f"error: {error}"
    if isinstance(result, complex) or not math.isfinite(result):
        return "error: not a real number"
    if float(result).is_integer():
        return str(int(result))
    return repr(round(float(result), 10))


_STOPWORDS = frozenset(
    "a an the of in on at to is was what how many much by for and or with from does do".split()
)


class FakeSearch:
    """A search engine over a local dictionary (query key -> snippet): the entry sharing the most
    words with the query (stop words ignored; ties to the first entry), or ``"No results."``."""

    def __init__(self, entries: dict[str, str]) -> None:
        if not isinstance(entries, dict) or not entries:
            raise ValueError("entries must be a non-empty dict of query -> snippet")
        self.entries = dict(entries)

    @staticmethod
    def _words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS}

    def __call__(self, query: str) -> str:
        words = self._words(_text("query", query))
        best, best_score = None, 0
        for key in self.entries:
            score = len(words & self._words(key))
            if score > best_score:
                best, best_score = key, score
        return self.entries[best] if best is not None else "No results."


_TOOL_CALL = re.compile(r"\b(SEARCH|CALC)\((.*)\)")


def parse_tool_calls(line: str) -> tuple[str, str] | None:
    """The tool call of a transcript line: ``("SEARCH", query)`` for ``SEARCH("query")`` (quotes
    required), ``("CALC", expression)`` for ``CALC(expression)``; None when the line makes none."""
    match = _TOOL_CALL.search(_text("line", line))
    if match is None:
        return None
    tool, argument = match.group(1), match.group(2).strip()
    if tool == "SEARCH":
        quoted = re.fullmatch(r"\"([^\"]*)\"|'([^']*)'", argument)
        if quoted is None:
            return None
        return tool, quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    return tool, argument


def run_tool(call: tuple[str, str], search: FakeSearch) -> str:
    """The result of one parsed call with our tool set (calculator, ``search``)."""
    tool, argument = call
    return search(argument) if tool == "SEARCH" else calculator(argument)


def check_tool_transcript(
    text: str,
    expected: float,
    search: FakeSearch,
    required_facts: Sequence[str] = (),
    needs_calculation: bool = False,
) -> CheckResult:
    """Replay the transcript's tool calls (module docstring) and check its ``Answer:`` line.

    ``required_facts``: snippets of ``search`` some SEARCH call must have returned;
    ``needs_calculation``: some CALC call must have returned the expected answer."""
    check_float("expected", expected, finite=True)
    lines = _text("text", text).splitlines()
    retrieved: set[str] = set()
    calculated: list[str] = []
    answer: str | None = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.upper().startswith("RESULT:"):
            continue
        answer_match = re.match(r"\**answer\**\s*:\s*(.*)$", stripped, re.IGNORECASE)
        if answer_match:
            answer = answer_match.group(1)
            break
        call = parse_tool_calls(stripped)
        if call is None:
            continue
        result = run_tool(call, search)
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if following.upper().startswith("RESULT:") and following[7:].strip() != result:
            return CheckResult(
                False, f"fabricated tool output after {stripped!r}: {following!r} (real: {result!r})"
            )
        (retrieved.add(result) if call[0] == "SEARCH" else calculated.append(result))
    if answer is None:
        return CheckResult(False, "no 'Answer:' line")
    numbers = set(numbers_in(answer))
    if len(numbers) != 1:
        return CheckResult(False, f"the answer {answer!r} holds {len(numbers)} numbers")
    (value,) = numbers
    if not math.isclose(float(value), float(expected), rel_tol=1e-6, abs_tol=1e-9):
        return CheckResult(False, f"answered {value}, expected {normalize_number(str(expected))}")
    missing = [fact for fact in required_facts if fact not in retrieved]
    if missing:
        return CheckResult(False, f"the answer is right but no SEARCH retrieved {missing[0]!r}")
    if needs_calculation and not any(
        normalize_number(r) is not None
        and math.isclose(float(normalize_number(r)), float(expected), rel_tol=1e-6)
        for r in calculated
    ):
        return CheckResult(False, "the answer is right but no CALC computed it")
    return CheckResult(True, f"answered {value} with the required tool calls")
