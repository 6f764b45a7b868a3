"""The probe families of Bubeck et al. (2023), "Sparks of Artificial General Intelligence: Early
experiments with GPT-4" (arXiv 2303.12712), as an automatically checked suite over any
:class:`~aicanon.language.completion.LanguageModel`.

The paper is qualitative: it probes GPT-4 with hand-made tasks and judges the answers itself. We
turn five of its probe families into generated items with programmatic checks
(:mod:`aicanon.evals.sparks_checkers`):

==================  ==========================================================  =====================
family              items (varied by a seeded generator)                        paper
==================  ==========================================================  =====================
``code``            write a named Python function from a description and one     Section 3.1
                    visible example; hidden test cases decide
``math``            a linear equation, a function composition, a rate word       Section 4
                    problem, a remainder, a derivative (symbolic answer)
``theory_of_mind``  false-belief stories: the paper's modernised Sally-Anne      Section 6.1.1,
                    test (a file moved in a shared Dropbox folder), the classic  Figure 6.1
                    basket/box version, and a true-belief control (the agent
                    sees the move)
``spatial``         draw "a red circle above a blue square" as SVG; rendered     Section 2.2 (TikZ
                    and checked                                                 and SVG drawing)
``tool_use``        questions about fictional facts that need ``SEARCH("...")``  Section 5.1,
                    and ``CALC(...)``; the harness runs the tools                Figure 5.2
==================  ==========================================================  =====================

Entry points:

* :func:`build_suite`: the items (``items_per_family`` per family, seeded);
* :func:`run_suite`: a model answers every item (batched ``complete`` calls; the
  tool family line by line: the harness stops the model at each newline, runs any tool call on
  that line and appends ``RESULT: ...``, up to ``tool_turns`` lines or an ``Answer:`` line), each
  output is checked, and a :class:`SuiteReport` holds per family the score, its Wilson interval,
  every prompt, output and verdict;
* :class:`OracleResponder`: a scripted responder that answers every item of a suite correctly
  (a LanguageModel; serve it over HTTP with :mod:`aicanon.language.server` to test the pipeline end
  to end);
* :func:`hand_labelled_candidates` and :func:`validate_checkers`: candidate outputs written and
  labelled by hand (correct, subtly wrong, malformed, adversarial) and each checker's precision
  and recall on them, for the strict checkers or the naive ones (the ablation).

Departures from the paper: GPT-4's outputs were judged by the authors, one by one; here every
family is a generated item set with a program as judge, validated against hand labels instead.
TikZ drawings are not rendered (SVG only). The tool-use prompt adapts the wording of the paper's
Figure 5.2 (``SEARCH("query")``, ``CALC(expression)``) and adds a ``RESULT:`` line and a final
``Answer:`` line so a program can follow it. The facts searched are fictional, so an answer can
only come from the tools.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aicanon.core.checks import check_choice, check_int
from aicanon.evals.intervals import Interval, wilson_interval
from aicanon.evals.sparks_checkers import (
    CheckResult,
    FakeSearch,
    check_code,
    check_expression_answer,
    check_false_belief,
    check_numeric_answer,
    check_svg_relation,
    check_tool_transcript,
    naive_code_check,
    parse_tool_calls,
    run_tool,
)
from aicanon.language.completion import Completion, LanguageModel, check_completion_request, truncate_at_stop
from aicanon.reasoning.answers import normalize_number, numbers_in

__all__ = [
    "CHECKERS",
    "FAMILIES",
    "FamilyReport",
    "Item",
    "Labelled",
    "OracleResponder",
    "SEARCH",
    "SuiteReport",
    "build_suite",
    "check_output",
    "hand_labelled_candidates",
    "run_suite",
    "validate_checkers",
]

FAMILIES = ("code", "math", "theory_of_mind", "spatial", "tool_use")
CHECKERS = ("strict", "naive")
MAX_TOKENS = {"code": 400, "math": 400, "theory_of_mind": 400, "spatial": 400, "tool_use": 64}
"""Tokens per reply (per line for ``tool_use``). Families with the same budget share one batched
``complete`` call."""


@dataclass(frozen=True)
class Item:
    """One probe: its family, id, prompt, what the checker needs (``answer``, JSON values) and a
    correct reply (``reference``; for ``tool_use`` the model's lines, one per turn)."""

    family: str
    id: str
    prompt: str
    answer: dict[str, Any]
    reference: tuple[str, ...]


# ------------------------------------------------------------------------------------------------
# Code (Section 3.1): a function from a description, hidden tests
# ------------------------------------------------------------------------------------------------

# name -> (signature, description, visible example, hidden cases (args, expected), reference code)
CODE_PROBLEMS: dict[str, tuple[str, str, str, list[tuple[list, Any]], str]] = {
    "second_largest": (
        "second_largest(nums)",
        "returns the second largest distinct value of the list of integers nums, or None when "
        "nums has fewer than two distinct values",
        "second_largest([3, 1, 4, 1, 5]) == 4",
        [([[5, 5, 4]], 4), ([[7]], None), ([[2, 2]], None), ([[-1, -3, -2]], -2), ([[10, 20, 20, 30]], 20)],
        "def second_largest(nums):\n    values = sorted(set(nums))\n"
        "    return values[-2] if len(values) > 1 else None\n",
    ),
    "run_length_encode": (
        "run_length_encode(s)",
        "returns the run-length encoding of the string s: each run of a repeated character written "
        "as the character followed by the run's length",
        'run_length_encode("aaab") == "a3b1"',
        [
            (["aabccc"], "a2b1c3"),
            ([""], ""),
            (["z"], "z1"),
            (["abab"], "a1b1a1b1"),
            (["xxxxxxxxxxxx"], "x12"),
        ],
        "def run_length_encode(s):\n    out, i = [], 0\n    while i < len(s):\n        j = i\n"
        "        while j < len(s) and s[j] == s[i]:\n            j += 1\n"
        "        out.append(s[i] + str(j - i))\n        i = j\n    return ''.join(out)\n",
    ),
    "is_balanced": (
        "is_balanced(s)",
        "returns True when every bracket of the kinds (), [] and {} in the string s is closed in "
        "the right order, and False otherwise (other characters are ignored)",
        'is_balanced("(a[b]{c})") == True',
        [(["([)]"], False), ([""], True), (["((("], False), (["{[()()]}x"], True), (["}{"], False)],
        "def is_balanced(s):\n    pairs, stack = {')': '(', ']': '[', '}': '{'}, []\n    for c in s:\n"
        "        if c in '([{':\n            stack.append(c)\n        elif c in pairs:\n"
        "            if not stack or stack.pop() != pairs[c]:\n                return False\n"
        "    return not stack\n",
    ),
    "merge_intervals": (
        "merge_intervals(intervals)",
        "merges overlapping closed intervals given as [start, end] lists and returns them sorted "
        "by start (intervals that touch, like [1, 2] and [2, 3], merge)",
        "merge_intervals([[1, 3], [2, 6], [8, 10]]) == [[1, 6], [8, 10]]",
        [
            ([[[5, 7], [1, 2], [2, 4]]], [[1, 4], [5, 7]]),
            ([[]], []),
            ([[[1, 10], [2, 3]]], [[1, 10]]),
            ([[[4, 4], [0, 1]]], [[0, 1], [4, 4]]),
        ],
        "def merge_intervals(intervals):\n    merged = []\n    for start, end in sorted(intervals):\n"
        "        if merged and start <= merged[-1][1]:\n            merged[-1][1] = max(merged[-1][1], end)\n"
        "        else:\n            merged.append([start, end])\n    return merged\n",
    ),
    "count_primes": (
        "count_primes(n)",
        "returns how many prime numbers are strictly smaller than the integer n",
        "count_primes(10) == 4",
        [([0], 0), ([2], 0), ([3], 1), ([100], 25), ([1000], 168)],
        "def count_primes(n):\n    if n < 3:\n        return 0\n"
        "    sieve = [True] * n\n    sieve[0] = sieve[1] = False\n"
        "    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n"
        "            sieve[i * i :: i] = [False] * len(range(i * i, n, i))\n    return sum(sieve)\n",
    ),
    "edit_distance": (
        "edit_distance(a, b)",
        "returns the Levenshtein distance between the strings a and b (insertions, deletions and "
        "substitutions each cost 1)",
        'edit_distance("kitten", "sitting") == 3',
        [(["", "abc"], 3), (["flaw", "lawn"], 2), (["same", "same"], 0), (["abc", ""], 3), (["ab", "ba"], 2)],
        "def edit_distance(a, b):\n    row = list(range(len(b) + 1))\n    for i, ca in enumerate(a, 1):\n"
        "        previous, row[0] = row[0], i\n        for j, cb in enumerate(b, 1):\n"
        "            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))\n"
        "    return row[-1]\n",
    ),
    "roman_to_int": (
        "roman_to_int(s)",
        "returns the integer value of the Roman numeral s (subtractive notation such as IV and CM included)",
        'roman_to_int("XIV") == 14',
        [(["III"], 3), (["MCMXCIV"], 1994), (["XL"], 40), (["MMXXIII"], 2023), (["CDXLIV"], 444)],
        "def roman_to_int(s):\n"
        "    values = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\n"
        "    total = 0\n    for i, c in enumerate(s):\n"
        "        v = values[c]\n        total += -v if i + 1 < len(s) and values[s[i + 1]] > v else v\n"
        "    return total\n",
    ),
    "rotate_clockwise": (
        "rotate_clockwise(matrix)",
        "returns the matrix (a list of equal-length rows) rotated 90 degrees clockwise, as a new "
        "list of lists",
        "rotate_clockwise([[1, 2], [3, 4]]) == [[3, 1], [4, 2]]",
        [
            ([[[1, 2, 3]]], [[1], [2], [3]]),
            ([[[1], [2], [3]]], [[3, 2, 1]]),
            ([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]], [[7, 4, 1], [8, 5, 2], [9, 6, 3]]),
            ([[]], []),
        ],
        "def rotate_clockwise(matrix):\n    return [list(row) for row in zip(*matrix[::-1])]\n",
    ),
}


def code_item(name: str) -> Item:
    """The code probe ``name`` of :data:`CODE_PROBLEMS`."""
    check_choice("name", name, tuple(CODE_PROBLEMS))
    signature, description, example, cases, reference = CODE_PROBLEMS[name]
    prompt = (
        f"Write a Python function `{signature}` that {description}.\n"
        f"Example: {example}\n"
        "Use only the standard library. Reply with the code in one ```python block.\n"
    )
    answer = {"function": signature.split("(")[0], "cases": [[list(args), out] for args, out in cases]}
    return Item("code", f"code/{name}", prompt, answer, (f"```python\n{reference}```\n",))


# ------------------------------------------------------------------------------------------------
# Mathematics (Section 4): answers a program can check
# ------------------------------------------------------------------------------------------------

MATH_SUFFIX = "End your reply with 'The answer is X.' where X is the answer.\n"


def _signed(value: int) -> str:
    return f"+ {value}" if value >= 0 else f"- {-value}"


def math_linear(a: int, b: int, x: int) -> Item:
    c = a * x + b
    prompt = f"Solve for x: {a}x {_signed(b)} = {c}.\n{MATH_SUFFIX}"
    return Item(
        "math", f"math/linear/{a}/{b}/{x}", prompt, {"kind": "number", "value": x}, (f"The answer is {x}.",)
    )


def math_composition(a: int, b: int, c: int, d: int) -> Item:
    value = a * (d * d - c) + b
    prompt = f"Let f(x) = {a}x {_signed(b)} and g(x) = x^2 - {c}. What is f(g({d}))?\n{MATH_SUFFIX}"
    reference = f"g({d}) = {d * d - c}, so f(g({d})) = {value}. The answer is {value}."
    return Item(
        "math", f"math/composition/{a}/{b}/{c}/{d}", prompt, {"kind": "number", "value": value}, (reference,)
    )


def math_rate(v1: int, t1: int, v2: int, t2: int) -> Item:
    value = v1 * t1 + v2 * t2
    prompt = (
        f"A train travels at {v1} km per hour for {t1} hours and then at {v2} km per hour for {t2} "
        f"hours. How many kilometres does it travel in total?\n{MATH_SUFFIX}"
    )
    reference = f"{v1} * {t1} + {v2} * {t2} = {value}. The answer is {value}."
    return Item(
        "math", f"math/rate/{v1}/{t1}/{v2}/{t2}", prompt, {"kind": "number", "value": value}, (reference,)
    )


def math_remainder(a: int, b: int) -> Item:
    prompt = f"What is the remainder when {a} is divided by {b}?\n{MATH_SUFFIX}"
    return Item(
        "math",
        f"math/remainder/{a}/{b}",
        prompt,
        {"kind": "number", "value": a % b},
        (f"The answer is {a % b}.",),
    )


def math_derivative(a: int, b: int, c: int) -> Item:
    prompt = (
        f"What is the derivative of {a}x^3 + {b}x^2 - {c}x with respect to x? Give it as an "
        f"expression in x.\n{MATH_SUFFIX}"
    )
    expression = f"{3 * a}*x**2 + {2 * b}*x - {c}"
    display = f"{3 * a}x^2 + {2 * b}x - {c}"
    answer = {"kind": "expression", "value": expression, "display": display}
    return Item("math", f"math/derivative/{a}/{b}/{c}", prompt, answer, (f"The answer is {display}.",))


def _math_items(rng: random.Random, count: int) -> list[Item]:
    makers = [
        lambda: math_linear(rng.randint(2, 9), rng.randint(-20, 20), rng.randint(-9, 12)),
        lambda: math_composition(rng.randint(2, 6), rng.randint(-9, 9), rng.randint(1, 9), rng.randint(2, 7)),
        lambda: math_rate(rng.randint(40, 120), rng.randint(1, 5), rng.randint(40, 120), rng.randint(1, 5)),
        lambda: math_remainder(rng.randint(100, 999), rng.randint(7, 29)),
        lambda: math_derivative(rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)),
    ]
    return [makers[i % len(makers)]() for i in range(count)]


# ------------------------------------------------------------------------------------------------
# Theory of mind (Section 6.1.1, Figure 6.1): false-belief stories
# ------------------------------------------------------------------------------------------------

TOM_INTRO = (
    "We will read about a scenario, and then have a question and answer session about it.\n--\nScenario:\n"
)
TOM_SUFFIX = "End your reply with a line 'Answer: <location>'.\n"
NAMES = (
    "Alice",
    "Bob",
    "Carmen",
    "Deepak",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Liam",
)
FILES = ("photo.png", "report.pdf", "budget.xlsx", "notes.txt", "song.mp3", "slides.pptx")
FOLDERS = ("photos", "tmp", "archive", "drafts", "backup", "inbox", "shared_docs", "old")
CONTAINERS = ("basket", "box", "drawer", "cupboard", "backpack", "suitcase", "toolbox", "jar")
OBJECTS = ("marble", "key", "coin", "ring", "whistle", "ticket")


def tom_dropbox(agent: str, mover: str, filename: str, origin: str, target: str) -> Item:
    """The paper's Figure 6.1: a file moved in a shared Dropbox folder while its owner is unaware."""
    origin, target = f"/shared_folder/{origin}", f"/shared_folder/{target}"
    story = (
        f"{agent} and {mover} have a shared Dropbox folder. {agent} puts a file called '{filename}' inside "
        f"{origin}. {mover} notices {agent} put the file there, and moves the file to {target}. {mover} "
        f"says nothing about this to {agent}, and Dropbox also does not notify {agent}.\n--\n"
    )
    question = (
        f"Q: After a phone call, {agent} wants to open '{filename}'. "
        f"In which folder will {agent} look for it first?\n"
    )
    answer = {"expected": origin, "other": target}
    reference = (
        f"{agent} does not know the file was moved, so {agent} will look where it was put.\nAnswer: {origin}"
    )
    key = f"theory_of_mind/dropbox/{agent}/{mover}/{filename}/{origin}/{target}"
    return Item("theory_of_mind", key, TOM_INTRO + story + question + TOM_SUFFIX, answer, (reference,))


def tom_containers(agent: str, mover: str, thing: str, first: str, second: str, sees_move: bool) -> Item:
    """The classic Sally-Anne story (false belief), or its true-belief control (``sees_move``)."""
    if sees_move:
        watch = f"{agent} stays in the room and watches {mover} do this."
    else:
        watch = f"{agent} is out for a walk and does not see this. Then {agent} comes back."
    story = (
        f"{agent} has a {first} and {mover} has a {second}. {agent} puts a {thing} in the {first}. "
        f"{mover} takes the {thing} out of the {first} and puts it in the {second}. {watch}\n--\n"
    )
    question = f"Q: {agent} wants the {thing}. Where will {agent} look for it first?\n"
    expected, other = (second, first) if sees_move else (first, second)
    reason = "saw it moved" if sees_move else "did not see it moved"
    reference = f"{agent} {reason}.\nAnswer: the {expected}"
    kind = "true_belief" if sees_move else "false_belief"
    key = f"theory_of_mind/{kind}/{agent}/{mover}/{thing}/{first}/{second}"
    return Item(
        "theory_of_mind",
        key,
        TOM_INTRO + story + question + TOM_SUFFIX,
        {"expected": expected, "other": other},
        (reference,),
    )


def _tom_items(rng: random.Random, count: int) -> list[Item]:
    items = []
    for i in range(count):
        agent, mover = rng.sample(NAMES, 2)
        if i % 3 == 0:
            items.append(tom_dropbox(agent, mover, rng.choice(FILES), *rng.sample(FOLDERS, 2)))
        else:
            first, second = rng.sample(CONTAINERS, 2)
            items.append(
                tom_containers(agent, mover, rng.choice(OBJECTS), first, second, sees_move=i % 3 == 2)
            )
    return items


# ------------------------------------------------------------------------------------------------
# Spatial (Section 2.2): drawing as SVG
# ------------------------------------------------------------------------------------------------

SHAPE_KINDS = ("circle", "square", "triangle")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange")
_OFFSETS = {
    "above": ((50, 25), (50, 75)),
    "below": ((50, 75), (50, 25)),
    "left of": ((25, 50), (75, 50)),
    "right of": ((75, 50), (25, 50)),
}


def svg_element(kind: str, colour: str, centre: tuple[float, float], size: float = 15) -> str:
    """One ``kind`` (circle, square, triangle) of half-size ``size`` at ``centre``, filled ``colour``."""
    x, y = centre
    if kind == "circle":
        return f'<circle cx="{x}" cy="{y}" r="{size}" fill="{colour}"/>'
    if kind == "square":
        return f'<rect x="{x - size}" y="{y - size}" width="{2 * size}" height="{2 * size}" fill="{colour}"/>'
    return f'<polygon points="{x},{y - size} {x - size},{y + size} {x + size},{y + size}" fill="{colour}"/>'


def draw_svg(first: tuple[str, str], relation: str, second: tuple[str, str]) -> str:
    """A correct drawing of ``first`` (colour, kind) in ``relation`` to ``second``."""
    a, b = _OFFSETS[relation]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        f"{svg_element(first[1], first[0], a)}{svg_element(second[1], second[0], b)}</svg>"
    )


def spatial_item(first: tuple[str, str], relation: str, second: tuple[str, str]) -> Item:
    prompt = (
        f"Draw a {first[0]} {first[1]} {relation} a {second[0]} {second[1]} as an SVG image "
        'with viewBox="0 0 100 100". '
        "Use only <rect>, <circle>, <line> and <polygon> elements. Reply with the SVG only.\n"
    )
    answer = {"first": list(first), "relation": relation, "second": list(second)}
    key = f"spatial/{'-'.join(first)}/{relation.replace(' ', '_')}/{'-'.join(second)}"
    return Item("spatial", key, prompt, answer, (draw_svg(first, relation, second),))


def _spatial_items(rng: random.Random, count: int) -> list[Item]:
    items = []
    for i in range(count):
        kinds = rng.sample(SHAPE_KINDS, 2)
        colours = rng.sample(COLOURS, 2)
        relation = ("above", "below", "left of", "right of")[i % 4]
        items.append(spatial_item((colours[0], kinds[0]), relation, (colours[1], kinds[1])))
    return items


# ------------------------------------------------------------------------------------------------
# Tool use (Section 5.1, Figure 5.2): SEARCH and CALC over fictional facts
# ------------------------------------------------------------------------------------------------

TOWNS = {
    "Velmora": (48213, 1682),
    "Quillbridge": (12907, 1531),
    "Ashcombe": (30544, 1764),
    "Dunmarrow": (7731, 1903),
}
MOUNTAINS = {"Mount Tarrow": 3417, "Mount Elsk": 2968, "Mount Pirrin": 4102}
FACTS: dict[str, str] = {
    **{
        f"{town} population inhabitants": f"{town} is a town of {people} inhabitants."
        for town, (people, _) in TOWNS.items()
    },
    **{
        f"{town} founded founding year": f"{town} was founded in {year}." for town, (_, year) in TOWNS.items()
    },
    **{
        f"{mountain} height metres high": f"{mountain} is {height} metres high."
        for mountain, height in MOUNTAINS.items()
    },
}
SEARCH = FakeSearch(FACTS)
"""The fake search engine of the tool-use family (fictional facts, so only a search can know them)."""

TOOL_PROMPT = (
    "The computer is answering questions. If the computer needs any information to answer the "
    'question, it searches by writing SEARCH("query") on a line of its own, and the search result '
    "appears on the next line, after RESULT:. If it needs to run any calculation, it writes "
    "CALC(expression) on a line of its own, and the result appears on the next line, after RESULT:. "
    "When it knows the answer, it writes a last line 'Answer: <number>'.\n"
)


def _tool_item(key: str, question: str, value: int, lines: list[str], facts: list[str], calc: bool) -> Item:
    answer = {"value": value, "facts": facts, "needs_calculation": calc}
    return Item("tool_use", f"tool_use/{key}", f"{TOOL_PROMPT}Q: {question}\n", answer, tuple(lines))


def tool_population_times(town: str, factor: int) -> Item:
    people = TOWNS[town][0]
    lines = [f'SEARCH("population of {town}")', f"CALC({people} * {factor})", f"Answer: {people * factor}"]
    fact = SEARCH(f"population of {town}")
    question = f"What is the population of {town} multiplied by {factor}?"
    return _tool_item(f"population/{town}/{factor}", question, people * factor, lines, [fact], True)


def tool_years_since(town: str, year: int) -> Item:
    founded = TOWNS[town][1]
    lines = [f'SEARCH("when was {town} founded")', f"CALC({year} - {founded})", f"Answer: {year - founded}"]
    fact = SEARCH(f"{town} founded")
    question = f"How many years passed between the founding of {town} and the year {year}?"
    return _tool_item(f"years/{town}/{year}", question, year - founded, lines, [fact], True)


def tool_height(mountain: str) -> Item:
    height = MOUNTAINS[mountain]
    lines = [f'SEARCH("height of {mountain}")', f"Answer: {height}"]
    fact = SEARCH(f"{mountain} height")
    return _tool_item(
        f"height/{mountain}", f"How high is {mountain}, in metres?", height, lines, [fact], False
    )


def tool_arithmetic(a: int, b: int, c: int) -> Item:
    value = a * b + c
    lines = [f"CALC({a} * {b} + {c})", f"Answer: {value}"]
    return _tool_item(f"arithmetic/{a}/{b}/{c}", f"What is {a} times {b} plus {c}?", value, lines, [], True)


def _tool_items(rng: random.Random, count: int) -> list[Item]:
    makers = [
        lambda: tool_population_times(rng.choice(sorted(TOWNS)), rng.randint(2, 9)),
        lambda: tool_years_since(rng.choice(sorted(TOWNS)), rng.randint(1950, 2030)),
        lambda: tool_height(rng.choice(sorted(MOUNTAINS))),
        lambda: tool_arithmetic(rng.randint(1000, 9999), rng.randint(100, 999), rng.randint(10, 99)),
    ]
    return [makers[i % len(makers)]() for i in range(count)]


# ------------------------------------------------------------------------------------------------
# The suite
# ------------------------------------------------------------------------------------------------


def build_suite(seed: int = 0, items_per_family: int = 8, families: Sequence[str] = FAMILIES) -> list[Item]:
    """``items_per_family`` items of each family in ``families`` (seeded; code probes are taken in
    a seeded order from :data:`CODE_PROBLEMS`, so at most ``len(CODE_PROBLEMS)`` of them)."""
    check_int("seed", seed, 0)
    check_int("items_per_family", items_per_family)
    families = list(families)
    if not families:
        raise ValueError("families must name at least one family")
    for family in families:
        check_choice("families", family, FAMILIES)
    rng = random.Random(seed)
    items: list[Item] = []
    for family in FAMILIES:
        if family not in families:
            continue
        if family == "code":
            names = sorted(CODE_PROBLEMS)
            rng.shuffle(names)
            items += [code_item(name) for name in names[:items_per_family]]
        elif family == "math":
            items += _math_items(rng, items_per_family)
        elif family == "theory_of_mind":
            items += _tom_items(rng, items_per_family)
        elif family == "spatial":
            items += _spatial_items(rng, items_per_family)
        else:
            items += _tool_items(rng, items_per_family)
    return items


def check_output(item: Item, output: str, checker: str = "strict") -> CheckResult:
    """The verdict on ``output`` (for ``tool_use``: the whole transcript) of ``item``'s checker:
    ``"strict"`` (:mod:`aicanon.evals.sparks_checkers`) or ``"naive"`` (the ablation: substring
    and tag matches, the assert-then-print-PASS harness)."""
    if not isinstance(item, Item):
        raise TypeError(f"item must be an Item, got {type(item).__name__}")
    if not isinstance(output, str):
        raise TypeError(f"output must be a str, got {type(output).__name__}")
    check_choice("checker", checker, CHECKERS)
    answer = item.answer
    if checker == "naive":
        return _naive(item, output)
    if item.family == "code":
        return check_code(output, answer["function"], [(args, out) for args, out in answer["cases"]])
    if item.family == "math":
        if answer["kind"] == "number":
            return check_numeric_answer(output, answer["value"])
        return check_expression_answer(output, answer["value"])
    if item.family == "theory_of_mind":
        return check_false_belief(output, answer["expected"], answer["other"])
    if item.family == "spatial":
        return check_svg_relation(output, tuple(answer["first"]), answer["relation"], tuple(answer["second"]))
    return check_tool_transcript(
        output, answer["value"], SEARCH, answer["facts"], answer["needs_calculation"]
    )


def _naive(item: Item, output: str) -> CheckResult:
    answer = item.answer
    if item.family == "code":
        return naive_code_check(output, answer["function"], [(args, out) for args, out in answer["cases"]])
    if item.family == "spatial":
        tags = {"circle": "<circle", "square": "<rect", "triangle": "<polygon"}
        wanted = [
            tags[answer["first"][1]],
            tags[answer["second"][1]],
            answer["first"][0],
            answer["second"][0],
        ]
        passed = all(w in output.lower() for w in wanted)
        return CheckResult(passed, "tags and colours present" if passed else "a tag or colour is missing")
    if item.family == "theory_of_mind":
        passed = answer["expected"].lower() in output.lower()
    elif item.family == "math" and answer["kind"] == "expression":
        passed = answer["display"].replace(" ", "") in output.replace(" ", "")
    else:  # numbers: the expected value among the numbers of the text
        passed = normalize_number(str(answer["value"])) in numbers_in(output)
    return CheckResult(
        passed, "expected answer found in the text" if passed else "expected answer not in the text"
    )


@dataclass
class FamilyReport:
    """One family's result: items, passes, the score with its Wilson interval, and every record
    (item id, prompt, output, verdict, reason)."""

    family: str
    n: int
    passed: int
    interval: Interval
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.passed / self.n

    def as_dict(self, records: bool = True) -> dict[str, Any]:
        data = {
            "family": self.family,
            "n": self.n,
            "passed": self.passed,
            "score": self.score,
            "interval": self.interval.as_dict(),
        }
        if records:
            data["records"] = self.records
        return data


@dataclass
class SuiteReport:
    """Per-family reports; ``score`` is the mean of the family scores (each family weighs the same)."""

    families: dict[str, FamilyReport]

    @property
    def score(self) -> float:
        return sum(r.score for r in self.families.values()) / len(self.families)

    def as_dict(self, records: bool = True) -> dict[str, Any]:
        return {"score": self.score, "families": {k: r.as_dict(records) for k, r in self.families.items()}}


def _complete_texts(
    model: LanguageModel, prompts: list[str], max_tokens: int, stop: list[str] | None
) -> list[str]:
    groups = model.complete(prompts, max_tokens=max_tokens, temperature=0.0, n=1, stop=stop)
    if len(groups) != len(prompts):
        raise ValueError(f"the model returned {len(groups)} completions for {len(prompts)} prompts")
    return [group[0].text for group in groups]


def _run_tools(model: LanguageModel, items: list[Item], turns: int, max_tokens: int) -> list[str]:
    """The tool-use harness: one line per turn for every unfinished item, tools run between turns."""
    transcripts = ["" for _ in items]
    active = list(range(len(items)))
    for _ in range(turns):
        if not active:
            break
        lines = _complete_texts(model, [items[i].prompt + transcripts[i] for i in active], max_tokens, ["\n"])
        still = []
        for i, line in zip(active, lines, strict=True):
            line = line.split("\n", 1)[0]
            transcripts[i] += line + "\n"
            if line.strip().lower().startswith("answer"):
                continue
            call = parse_tool_calls(line)
            if call is not None:
                transcripts[i] += f"RESULT: {run_tool(call, SEARCH)}\n"
            still.append(i)
        active = still
    return transcripts


def run_suite(
    model: LanguageModel,
    items: Sequence[Item],
    *,
    checker: str = "strict",
    tool_turns: int = 5,
    max_tokens: dict[str, int] | None = None,
) -> SuiteReport:
    """Ask ``model`` every item (greedy decoding; module docstring), check every output with
    ``checker`` and report per family."""
    if not callable(getattr(model, "complete", None)):
        raise TypeError(f"model must be a LanguageModel (with complete()), got {type(model).__name__}")
    items = list(items)
    if not items or not all(isinstance(i, Item) for i in items):
        raise ValueError("items must be a non-empty list of Item (see build_suite)")
    check_choice("checker", checker, CHECKERS)
    check_int("tool_turns", tool_turns)
    budgets = {**MAX_TOKENS, **(max_tokens or {})}
    for family, budget in budgets.items():
        check_choice("max_tokens keys", family, FAMILIES)
        check_int(f"max_tokens[{family!r}]", budget)
    # One call per distinct budget for the single-reply families (a batch decodes as long as its
    # longest reply anyway); the tool family goes line by line.
    outputs_of: dict[int, str] = {}
    single = [i for i in items if i.family != "tool_use"]
    for budget in sorted({budgets[i.family] for i in single}):
        group = [i for i in single if budgets[i.family] == budget]
        texts = _complete_texts(model, [i.prompt for i in group], budget, None)
        outputs_of.update({id(i): text for i, text in zip(group, texts, strict=True)})
    tools = [i for i in items if i.family == "tool_use"]
    if tools:
        texts = _run_tools(model, tools, tool_turns, budgets["tool_use"])
        outputs_of.update({id(i): text for i, text in zip(tools, texts, strict=True)})
    reports: dict[str, FamilyReport] = {}
    for family in FAMILIES:
        members = [i for i in items if i.family == family]
        if not members:
            continue
        outputs = [outputs_of[id(i)] for i in members]
        records = []
        verdicts = _check_all(
            [(item, output) for item, output in zip(members, outputs, strict=True)], checker
        )
        for item, output, verdict in zip(members, outputs, verdicts, strict=True):
            records.append(
                {
                    "id": item.id,
                    "prompt": item.prompt,
                    "output": output,
                    "passed": verdict.passed,
                    "reason": verdict.reason,
                }
            )
        passed = sum(r["passed"] for r in records)
        reports[family] = FamilyReport(
            family, len(members), passed, wilson_interval(passed, len(members)), records
        )
    return SuiteReport(reports)


CHECK_WORKERS = 4
"""Checks run concurrently (code checks wait on their sandboxed child processes)."""


def _check_all(pairs: list[tuple[Item, str]], checker: str) -> list[CheckResult]:
    with ThreadPoolExecutor(max_workers=CHECK_WORKERS) as pool:
        return list(pool.map(lambda pair: check_output(pair[0], pair[1], checker), pairs))


class OracleResponder:
    """A scripted LanguageModel that answers every item of ``items`` correctly: the item's
    reference reply for its prompt (for ``tool_use``, the next scripted line, chosen by how many
    ``RESULT:`` lines the prompt already holds). Any other prompt gets an empty reply."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = {item.prompt: item for item in items}
        self.tool_items = [item for item in items if item.family == "tool_use"]

    def _reply(self, prompt: str) -> str:
        if prompt in self.items and self.items[prompt].family != "tool_use":
            return self.items[prompt].reference[0]
        for item in self.tool_items:
            if prompt.startswith(item.prompt):
                done = sum(line.startswith("RESULT:") for line in prompt[len(item.prompt) :].splitlines())
                return item.reference[min(done, len(item.reference) - 1)] + "\n"
        return ""

    def complete(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        n: int = 1,
        stop: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> list[list[Completion]]:
        prompts, stops = check_completion_request(prompts, max_tokens, temperature, n, stop, top_k)
        out = []
        for prompt in prompts:
            text, _ = truncate_at_stop(self._reply(prompt), stops)
            out.append([Completion(text, "stop") for _ in range(n)])
        return out


# ------------------------------------------------------------------------------------------------
# Hand-labelled candidate outputs: what validates the checkers
# ------------------------------------------------------------------------------------------------

KINDS = ("correct", "subtly wrong", "malformed", "adversarial")


@dataclass(frozen=True)
class Labelled:
    """A candidate output for ``item``, labelled by hand: ``correct`` (the label), ``kind`` (one of
    :data:`KINDS`) and why."""

    item: Item
    output: str
    correct: bool
    kind: str
    note: str


def _code_candidates() -> list[Labelled]:
    item = code_item("second_largest")
    ok = lambda body, note: Labelled(item, body, True, "correct", note)  # noqa: E731
    wrong = lambda body, kind, note: Labelled(item, body, False, kind, note)  # noqa: E731
    return [
        ok(item.reference[0], "the reference solution"),
        ok(
            "Here is a solution.\n```python\ndef second_largest(nums):\n"
            "    best = second = None\n    for v in nums:\n"
            "        if best is None or v > best:\n            best, second = v, best\n"
            "        elif v != best and (second is None or v > second):\n"
            "            second = v\n    return second\n```\n"
            "It runs in one pass.",
            "a one-pass solution with prose around the block",
        ),
        ok(
            "```python\nimport heapq\n\ndef second_largest(nums):\n    print('debug', nums)\n"
            "    top = heapq.nlargest(2, set(nums))\n"
            "    return top[1] if len(top) == 2 else None\n```",
            "a different algorithm that also prints",
        ),
        wrong(
            "```python\ndef second_largest(nums):\n    nums = sorted(nums)\n"
            "    return nums[-2] if len(nums) > 1 else None\n```",
            "subtly wrong",
            "ignores duplicates ([5, 5, 4] gives 5)",
        ),
        wrong(
            "```python\ndef second_largest(nums):\n    values = sorted(set(nums))\n"
            "    return values[-2]\n```",
            "subtly wrong",
            "fails on a single distinct value (IndexError)",
        ),
        wrong(
            "```python\ndef second_largest(nums)\n    return sorted(set(nums))[-2]\n```",
            "malformed",
            "syntax error",
        ),
        wrong("The second largest value is found by sorting the list.", "malformed", "no code"),
        wrong(
            "```python\ndef second_max(nums):\n    return sorted(set(nums))[-2]\n```",
            "malformed",
            "wrong function name",
        ),
        wrong(
            '```python\nimport os\nprint("PASS", flush=True)\nos._exit(0)\n```',
            "adversarial",
            "prints PASS and exits before any test",
        ),
        wrong(
            "```python\nclass Anything:\n    def __eq__(self, other):\n        return True\n\n"
            "def second_largest(nums):\n    return Anything()\n```",
            "adversarial",
            "returns an object equal to everything",
        ),
        wrong(
            "```python\ndef second_largest(nums):\n    return {(3, 1, 4, 1, 5): 4}.get(tuple(nums), 0)\n```",
            "adversarial",
            "hard-codes the visible example",
        ),
        wrong(
            "```python\nimport sys\ndef second_largest(nums):\n    return None\nsys.exit(0)\n```",
            "adversarial",
            "exits with status 0 while loading",
        ),
        wrong(
            "```python\ndef second_largest(nums):\n    while True:\n        pass\n```",
            "adversarial",
            "never returns (the timeout ends it)",
        ),
    ]


def _math_candidates() -> list[Labelled]:
    linear = math_linear(3, 7, 6)  # 3x + 7 = 25
    derivative = math_derivative(4, 3, 5)  # 12x^2 + 6x - 5
    rate = math_rate(60, 2, 80, 3)  # 360
    L = Labelled
    return [
        L(linear, "3x = 25 - 7 = 18, so x = 6. The answer is 6.", True, "correct", "plain"),
        L(linear, "Subtract 7 and divide by 3: $x = \\boxed{6}$.", True, "correct", "boxed"),
        L(linear, "The answer is 6.0.", True, "correct", "a decimal form"),
        L(
            derivative,
            "Differentiate term by term. The answer is 12x^2 + 6x - 5.",
            True,
            "correct",
            "expanded",
        ),
        L(derivative, "The answer is f'(x) = 6x(2x + 1) - 5.", True, "correct", "factored, with f'(x) ="),
        L(rate, "60*2 = 120 and 80*3 = 240. The answer is 360.", True, "correct", "word problem"),
        L(linear, "3x = 25 + 7 = 32 ... The answer is 10.667.", False, "subtly wrong", "sign error"),
        L(derivative, "The answer is 12x^2 + 6x + 5.", False, "subtly wrong", "sign of the constant"),
        L(
            rate,
            "60 + 80 = 140 km per hour for 5 hours. The answer is 700.",
            False,
            "subtly wrong",
            "wrong method",
        ),
        L(linear, "x must be small and positive.", False, "malformed", "no stated answer"),
        L(derivative, "The answer is the derivative of the polynomial.", False, "malformed", "no expression"),
        L(linear, "The answer is 6 or 7.", False, "adversarial", "a hedge"),
        L(
            linear,
            "25 - 7 = 18 and 18 / 3 = 6, but checking again, the answer is 7.",
            False,
            "adversarial",
            "6 in the working, 7 stated",
        ),
        L(
            linear,
            "Candidates: 0 1 2 3 4 5 6 7 8 9 10 11 12.",
            False,
            "adversarial",
            "every number listed, none stated",
        ),
        L(rate, "The answer is 360 or 700.", False, "adversarial", "a hedge"),
        L(
            derivative,
            "Not 12x^2 + 6x - 5. The answer is 12x^2 + 6x.",
            False,
            "adversarial",
            "the right expression, disowned",
        ),
    ]


def _tom_candidates() -> list[Labelled]:
    paper = tom_dropbox("Alice", "Bob", "photo.png", "photos", "tmp")  # Figure 6.1's story
    marble = tom_containers("Sally", "Anne", "marble", "basket", "box", sees_move=False)
    control = tom_containers("Sally", "Anne", "marble", "basket", "box", sees_move=True)
    L = Labelled
    return [
        L(paper, "Answer: /shared_folder/photos", True, "correct", "the answer line only"),
        L(
            paper,
            "Alice will most likely look in /shared_folder/photos, the folder where she put it. She does not "
            "know that Bob moved it to /shared_folder/tmp.\nAnswer: /shared_folder/photos",
            True,
            "correct",
            "the paper's style of answer, naming both folders in the reasoning",
        ),
        L(
            paper,
            "She will look in the photos folder.\nAnswer: photos",
            True,
            "correct",
            "the folder by its last component",
        ),
        L(marble, "Sally did not see the move.\nAnswer: the basket", True, "correct", "classic false belief"),
        L(control, "Sally watched Anne.\nAnswer: in the box", True, "correct", "true-belief control"),
        L(marble, "Sally will look in her basket.", True, "correct", "no answer line, one location named"),
        L(
            paper,
            "The file is now in /shared_folder/tmp.\nAnswer: /shared_folder/tmp",
            False,
            "subtly wrong",
            "reality, not belief",
        ),
        L(marble, "Answer: the box", False, "subtly wrong", "reality, not belief"),
        L(
            control,
            "Sally did not see it moved.\nAnswer: the basket",
            False,
            "subtly wrong",
            "false belief applied to the control",
        ),
        L(paper, "Answer: I don't know", False, "malformed", "no location"),
        L(marble, "", False, "malformed", "empty"),
        L(
            paper,
            "Answer: /shared_folder/photos or /shared_folder/tmp",
            False,
            "adversarial",
            "a hedge naming both",
        ),
        L(
            paper,
            "She would not look in /shared_folder/photos.\nAnswer: /shared_folder/tmp",
            False,
            "adversarial",
            "expected folder in the text, wrong answer",
        ),
        L(marble, "Answer: not the basket", False, "adversarial", "negated"),
        L(
            marble,
            "It could be the basket or the box.",
            False,
            "adversarial",
            "a hedge without an answer line",
        ),
    ]


def _svg(*elements: str, view: str = "0 0 100 100") -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view}">{"".join(elements)}</svg>'


def _spatial_candidates() -> list[Labelled]:
    item = spatial_item(("red", "circle"), "above", ("blue", "square"))
    tri = spatial_item(("green", "triangle"), "left of", ("yellow", "circle"))
    L = Labelled
    return [
        L(item, item.reference[0], True, "correct", "the reference drawing"),
        L(
            item,
            "Here it is:\n```svg\n"
            + _svg(
                '<rect x="0" y="0" width="100" height="100" fill="white"/>',
                '<g transform="translate(10, 0)"><circle cx="40" cy="20" r="12" fill="#f00"/></g>',
                '<rect x="30" y="50" width="40" height="40" '
                'style="fill: #0000ff; stroke: black; stroke-width: 2"/>',
            )
            + "\n```",
            True,
            "correct",
            "background, a group with a translation, hex colours, a style attribute",
        ),
        L(
            item,
            _svg(
                '<circle cx="70" cy="20" r="10" fill="red"/>',
                '<rect x="20" y="60" width="30" height="30" fill="blue"/>',
            ),
            True,
            "correct",
            "above and to one side",
        ),
        L(tri, tri.reference[0], True, "correct", "a triangle left of a circle"),
        L(
            item,
            _svg(
                '<circle cx="50" cy="75" r="15" fill="red"/>',
                '<rect x="35" y="10" width="30" height="30" fill="blue"/>',
            ),
            False,
            "subtly wrong",
            "swapped: circle below",
        ),
        L(
            item,
            _svg(
                '<circle cx="50" cy="25" r="15" fill="blue"/>',
                '<rect x="35" y="60" width="30" height="30" fill="red"/>',
            ),
            False,
            "subtly wrong",
            "colours swapped",
        ),
        L(
            item,
            _svg(
                '<circle cx="50" cy="25" r="15" fill="red"/>',
                '<rect x="10" y="60" width="80" height="20" fill="blue"/>',
            ),
            False,
            "subtly wrong",
            "a rectangle, not a square",
        ),
        L(
            tri,
            _svg(
                '<polygon points="75,35 60,65 90,65" fill="green"/>',
                '<circle cx="25" cy="50" r="15" fill="yellow"/>',
            ),
            False,
            "subtly wrong",
            "triangle right of the circle",
        ),
        L(
            item,
            "<svg viewBox='0 0 100 100'><circle cx='50' cy='25' r='15' fill='red'></svg>",
            False,
            "malformed",
            "not well-formed XML",
        ),
        L(item, "I would draw a red circle above a blue square.", False, "malformed", "no SVG"),
        L(
            item,
            '<!DOCTYPE svg [<!ENTITY a "aaaaaaaa">]>'
            + _svg(
                '<circle cx="50" cy="25" r="15" fill="red"/>',
                '<rect x="35" y="60" width="30" height="30" fill="blue"/>',
            ),
            False,
            "malformed",
            "a DOCTYPE with an entity (refused)",
        ),
        L(
            item,
            _svg(
                '<rect x="35" y="35" width="30" height="30" fill="blue"/>',
                '<circle cx="50" cy="50" r="15" fill="red"/>',
            ),
            False,
            "adversarial",
            "right shapes and colours, same place",
        ),
        L(
            item,
            _svg(
                '<circle cx="50" cy="25" r="15" fill="red"/>',
                '<rect x="35" y="60" width="30" height="30" fill="blue"/>',
                '<rect x="0" y="0" width="100" height="50" fill="white"/>',
            ),
            False,
            "adversarial",
            "the circle painted over by a white rectangle",
        ),
        L(
            item,
            _svg(
                '<circle cx="50" cy="-200" r="15" fill="red"/>',
                '<rect x="35" y="60" width="30" height="30" fill="blue"/>',
            ),
            False,
            "adversarial",
            "the circle outside the canvas",
        ),
        L(
            item,
            _svg(
                '<circle cx="50" cy="25" r="0" fill="red"/>',
                '<rect x="35" y="60" width="30" height="30" fill="blue"/>',
            ),
            False,
            "adversarial",
            "a circle of radius 0",
        ),
        L(
            item,
            _svg(
                "<!-- a red circle above a blue square -->",
                '<circle cx="25" cy="50" r="15" fill="red"/>',
                '<rect x="60" y="35" width="30" height="30" fill="blue"/>',
            ),
            False,
            "adversarial",
            "side by side, with the task in a comment",
        ),
        L(
            item,
            _svg(
                '<circle cx="50" cy="25" r="15" fill="none" stroke="none"/>',
                '<rect x="35" y="60" width="30" height="30" fill="blue"/>',
            ),
            False,
            "adversarial",
            "an invisible circle",
        ),
    ]


def _tool_candidates() -> list[Labelled]:
    item = tool_population_times("Velmora", 3)  # 48213 * 3 = 144639
    height = tool_height("Mount Tarrow")  # 3417
    fact = SEARCH("population of Velmora")
    searched = f'SEARCH("population of Velmora")\nRESULT: {fact}\n'
    L = Labelled
    good = searched + "CALC(48213 * 3)\nRESULT: 144639\nAnswer: 144639\n"
    return [
        L(item, good, True, "correct", "the scripted transcript"),
        L(
            item,
            f'I need the population.\nSEARCH("How many inhabitants does Velmora have?")\nRESULT: {fact}\n'
            "CALC(3*48213)\nRESULT: 144639\nAnswer: 144,639\n",
            True,
            "correct",
            "other wording, thousands separator",
        ),
        L(
            height,
            f'SEARCH("Mount Tarrow height")\nRESULT: {SEARCH("Mount Tarrow height")}\nAnswer: 3417 metres\n',
            True,
            "correct",
            "search only",
        ),
        L(
            item,
            searched + "CALC(48213 * 4)\nRESULT: 192852\nAnswer: 192852\n",
            False,
            "subtly wrong",
            "wrong factor",
        ),
        L(
            item,
            searched + "Answer: 144649\n",
            False,
            "subtly wrong",
            "mental arithmetic slip",
        ),
        L(
            height,
            'SEARCH("height of Mount Elsk")\nRESULT: Mount Elsk is 2968 metres high.\nAnswer: 2968\n',
            False,
            "subtly wrong",
            "the wrong mountain",
        ),
        L(
            item,
            "SEARCH(population of Velmora\nthe population is large\n",
            False,
            "malformed",
            "broken call, no answer",
        ),
        L(
            item,
            searched + "CALC(48213 * 3)\nRESULT: 144639\n",
            False,
            "malformed",
            "no answer line",
        ),
        L(
            item,
            "Answer: 144639\n",
            False,
            "adversarial",
            "right number, no tool call (the fact is fictional)",
        ),
        L(
            item,
            'SEARCH("population of Velmora")\nRESULT: Velmora is a town of 50000 inhabitants.\n'
            "CALC(50000 * 3)\nRESULT: 150000\nAnswer: 150000\n",
            False,
            "adversarial",
            "fabricated tool output",
        ),
        L(
            item,
            searched + "CALC(48213 * 3)\nRESULT: 144639\nAnswer: 144640\n",
            False,
            "adversarial",
            "the right number computed, another answered",
        ),
        L(
            item,
            searched + "CALC(48213 * 3)\nRESULT: 144639\nAnswer: 144639 or 150000\n",
            False,
            "adversarial",
            "a hedge",
        ),
    ]


def hand_labelled_candidates() -> list[Labelled]:
    """Candidate outputs for fixed items of every family, written and labelled by hand: correct
    replies in several styles, subtly wrong ones, malformed ones and adversarial ones (outputs
    built to fool a checker: code that prints PASS, an SVG with the right shapes in the wrong
    places, a hedge, a fabricated tool result)."""
    return (
        _code_candidates()
        + _math_candidates()
        + _tom_candidates()
        + _spatial_candidates()
        + _tool_candidates()
    )


def validate_checkers(candidates: Sequence[Labelled], checker: str = "strict") -> dict[str, dict[str, Any]]:
    """Each family's checker against the hand labels: true/false positives and negatives,
    precision (accepted outputs that are correct; 0 when nothing is accepted), recall (correct
    outputs accepted), precision on the adversarial items' family slice, and every verdict."""
    check_choice("checker", checker, CHECKERS)
    if not candidates:
        raise ValueError("candidates must not be empty")
    for candidate in candidates:
        if not isinstance(candidate, Labelled):
            raise TypeError(f"candidates must be Labelled, got {type(candidate).__name__}")
    verdicts = _check_all([(c.item, c.output) for c in candidates], checker)
    table: dict[str, dict[str, Any]] = {}
    for candidate, verdict in zip(candidates, verdicts, strict=True):
        row = table.setdefault(candidate.item.family, {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "verdicts": []})
        key = ("tp" if verdict.passed else "fn") if candidate.correct else ("fp" if verdict.passed else "tn")
        row[key] += 1
        row["verdicts"].append(
            {
                "item": candidate.item.id,
                "kind": candidate.kind,
                "note": candidate.note,
                "label": candidate.correct,
                "accepted": verdict.passed,
                "reason": verdict.reason,
            }
        )
    for row in table.values():
        accepted = row["tp"] + row["fp"]
        row["precision"] = row["tp"] / accepted if accepted else 0.0
        row["recall"] = row["tp"] / (row["tp"] + row["fn"]) if row["tp"] + row["fn"] else math.nan
        adversarial = [v for v in row["verdicts"] if v["kind"] == "adversarial"]
        row["adversarial_accepted"] = sum(v["accepted"] for v in adversarial)
        row["adversarial"] = len(adversarial)
        row["precision_interval"] = wilson_interval(row["tp"], accepted).as_dict() if accepted else None
    return table
