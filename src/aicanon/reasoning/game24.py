"""The Game of 24 task of Tree of Thoughts (Yao et al. 2023, Section 4.1): prompts, parsing of
thoughts, the exact checker and an exact solver.

Given four numbers, combine them with ``+ - * /`` (each used exactly once) into 24. ToT decomposes a
solution into three thoughts, each an intermediate equation ``a op b = c (left: <remaining numbers>)``,
then one answer line ``Answer: <expression> = 24``. A state is the input ``x`` and the thoughts so far
``y`` (newline-terminated lines), as in the paper's code; the numbers still to combine are those after
``left:`` on the last line (the input's before any thought).

Prompts (the paper's repository, ``prompts/game24.py``): ``standard_prompt`` (IO, 5 exemplars),
``cot_prompt`` (5 exemplars of 3 steps + answer), ``propose_prompt`` (one exemplar listing 8 possible
next steps), ``value_prompt`` (8 exemplars judging ``sure/likely/impossible``) and
``value_last_step_prompt`` (6 exemplars judging an answer ``sure/impossible``). :class:`Game24Task` with
``prompts="paper"`` sends them with the published exemplars (the exact protocol, for a capable model
behind any backend); ``prompts="zero_shot"`` sends the same templates with the exemplars removed
(the instruction and the query format only): the small model trained here learns the format from its
training data, not in context (its context and capacity cannot hold eight exemplars).

Values (the paper's ``value_outputs_unwrap``): each sampled judgement's last line is mapped
``sure`` -> 20, ``likely`` -> 1, ``impossible`` -> 0.001 and the values summed over the samples.

Exact checking (:func:`check_answer`, the paper's ``test_output``): the last line's expression before
``=`` must use exactly the four input numbers (as a multiset) and evaluate to 24; we evaluate it with
exact rational arithmetic (a restricted AST walk over :class:`fractions.Fraction`) instead of sympy:
the same verdict for every expression of numbers, ``+ - * /`` and parentheses, and no code execution.

The solver (:func:`solvable`, :func:`solutions`) enumerates all ways of combining two numbers at a
time, exactly (fractions). It labels training data and is the oracle of the tests.

Departures: proposals are the non-empty lines of a completion (the paper keeps empty lines too);
the paper shows fractional intermediates as decimals chosen by the model, our solver's training text
uses only steps with integer results (``a - b`` with ``a >= b``, exact division), which covers all but
a few puzzles of 24.csv; the value judgement's "likely" is never a training label (the solver's truth
is binary: sure or impossible).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from aicanon.core.checks import check_int
from aicanon.language.completion import Completion, check_completion_request

__all__ = [
    "COT_PROMPT",
    "PROPOSE_PROMPT",
    "STANDARD_PROMPT",
    "VALUE_LAST_STEP_PROMPT",
    "VALUE_MAP",
    "VALUE_PROMPT",
    "Game24Oracle",
    "Game24Task",
    "Step",
    "answer_expression",
    "check_answer",
    "current_numbers",
    "is_valid_step",
    "evaluate_expression",
    "format_number",
    "next_steps",
    "parse_step",
    "solutions",
    "solvable",
    "training_documents",
]

TARGET = 24

# The paper's prompts (repository princeton-nlp/tree-of-thought-llm, src/tot/prompts/game24.py; equal to it
# character for character at commit ab400345c5ea, checked by the lead against a fetched copy).
STANDARD_INSTRUCTION = "Use numbers and basic arithmetic operations (+ - * /) to obtain 24."
STANDARD_PROMPT = (
    STANDARD_INSTRUCTION
    + """
Input: 4 4 6 8
Answer: (4 + 8) * (6 - 4) = 24
Input: 2 9 10 12
Answer: 2 * 12 * (10 - 9) = 24
Input: 4 9 10 13
Answer: (13 - 9) * (10 - 4) = 24
Input: 1 4 8 8
Answer: (8 / 4 + 1) * 8 = 24
Input: 5 5 5 9
Answer: 5 + 5 + 5 + 9 = 24
Input: {input}
"""
)
COT_INSTRUCTION = (
    "Use numbers and basic arithmetic operations (+ - * /) to obtain 24. Each step, you are only allowed "
    "to choose two of the remaining numbers to obtain a new number."
)
COT_PROMPT = (
    COT_INSTRUCTION
    + """
Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
6 - 4 = 2 (left: 2 12)
2 * 12 = 24 (left: 24)
Answer: (6 - 4) * (4 + 8) = 24
Input: 2 9 10 12
Steps:
12 * 2 = 24 (left: 9 10 24)
10 - 9 = 1 (left: 1 24)
24 * 1 = 24 (left: 24)
Answer: (12 * 2) * (10 - 9) = 24
Input: 4 9 10 13
Steps:
13 - 10 = 3 (left: 3 4 9)
9 - 3 = 6 (left: 4 6)
4 * 6 = 24 (left: 24)
Answer: 4 * (9 - (13 - 10)) = 24
Input: 1 4 8 8
Steps:
8 / 4 = 2 (left: 1 2 8)
1 + 2 = 3 (left: 3 8)
3 * 8 = 24 (left: 24)
Answer: (1 + 8 / 4) * 8 = 24
Input: 5 5 5 9
Steps:
5 + 5 = 10 (left: 5 9 10)
10 + 5 = 15 (left: 9 15)
15 + 9 = 24 (left: 24)
Answer: ((5 + 5) + 5) + 9 = 24
Input: {input}
"""
)
PROPOSE_PROMPT = """Input: 2 8 8 14
Possible next steps:
2 + 8 = 10 (left: 8 10 14)
8 / 2 = 4 (left: 4 8 14)
14 + 2 = 16 (left: 8 8 16)
2 * 8 = 16 (left: 8 14 16)
8 - 2 = 6 (left: 6 8 14)
14 - 8 = 6 (left: 2 6 8)
14 /  2 = 7 (left: 7 8 8)
14 - 2 = 12 (left: 8 8 12)
Input: {input}
Possible next steps:
"""
VALUE_INSTRUCTION = "Evaluate if given numbers can reach 24 (sure/likely/impossible)"
VALUE_PROMPT = (
    VALUE_INSTRUCTION
    + """
10 14
10 + 14 = 24
sure
11 12
11 + 12 = 23
12 - 11 = 1
11 * 12 = 132
11 / 12 = 0.91
impossible
4 4 10
4 + 4 + 10 = 8 + 10 = 18
4 * 10 - 4 = 40 - 4 = 36
(10 - 4) * 4 = 6 * 4 = 24
sure
4 9 11
9 + 11 + 4 = 20 + 4 = 24
sure
5 7 8
5 + 7 + 8 = 12 + 8 = 20
(8 - 5) * 7 = 3 * 7 = 21
I cannot obtain 24 now, but numbers are within a reasonable range
likely
5 6 6
5 + 6 + 6 = 17
(6 - 5) * 6 = 1 * 6 = 6
I cannot obtain 24 now, but numbers are within a reasonable range
likely
10 10 11
10 + 10 + 11 = 31
(11 - 10) * 10 = 10
10 10 10 are all too big
impossible
1 3 3
1 * 3 * 3 = 9
(1 + 3) * 3 = 12
1 3 3 are all too small
impossible
{input}
"""
)
LAST_STEP_INSTRUCTION = (
    "Use numbers and basic arithmetic operations (+ - * /) to obtain 24. Given an input and an answer, "
    "give a judgement (sure/impossible) if the answer is correct, i.e. it uses each input exactly once "
    "and no other numbers, and reach 24."
)
VALUE_LAST_STEP_PROMPT = (
    LAST_STEP_INSTRUCTION
    + """
Input: 4 4 6 8
Answer: (4 + 8) * (6 - 4) = 24
Judge: 
sure
Input: 2 9 10 12
Answer: 2 * 12 * (10 - 9) = 24
Judge: 
sure
Input: 4 9 10 13
Answer: (13 - 9) * (10 - 4) = 24
Judge: 
sure
Input: 4 4 6 8
Answer: (4 + 8) * (6 - 4) + 1 = 25
Judge: 
impossible
Input: 2 9 10 12
Answer: 2 * (12 - 10) = 24
Judge: 
impossible
Input: 4 9 10 13
Answer: (13 - 4) * (10 - 9) = 24
Judge: 
impossible
Input: {input}
Answer: {answer}
Judge:"""
)
# Zero-shot versions: the same templates without exemplars (module docstring).
ZERO_SHOT = {
    "standard": STANDARD_INSTRUCTION + "\nInput: {input}\n",
    "cot": COT_INSTRUCTION + "\nInput: {input}\n",
    "propose": "Input: {input}\nPossible next steps:\n",
    "value": VALUE_INSTRUCTION + "\n{input}\n",
    "value_last_step": LAST_STEP_INSTRUCTION + "\nInput: {input}\nAnswer: {answer}\nJudge:",
}
PAPER = {
    "standard": STANDARD_PROMPT,
    "cot": COT_PROMPT,
    "propose": PROPOSE_PROMPT,
    "value": VALUE_PROMPT,
    "value_last_step": VALUE_LAST_STEP_PROMPT,
}
VALUE_MAP = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}
"""The paper's ``value_outputs_unwrap``: a judgement's last line -> its value."""

_NUMBER = r"-?\d+(?:\.\d+)?(?:/\d+)?"
_STEP = re.compile(rf"^\s*({_NUMBER})\s*([-+*/])\s*({_NUMBER})\s*=\s*({_NUMBER})\s*\(left:\s*([^)]*)\)\s*$")


def format_number(value: Fraction | int) -> str:
    """An integer as ``"12"``, a fraction as ``"8/3"`` (exact; the paper's models write decimals)."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _parse_number(text: str) -> Fraction:
    return Fraction(text)


@dataclass(frozen=True)
class Step:
    """One thought ``left op right = result (left: remaining...)`` as numbers."""

    left: Fraction
    op: str
    right: Fraction
    result: Fraction
    remaining: tuple[Fraction, ...]

    @property
    def text(self) -> str:
        rest = " ".join(format_number(v) for v in self.remaining)
        return (
            f"{format_number(self.left)} {self.op} {format_number(self.right)} = "
            f"{format_number(self.result)} (left: {rest})"
        )

    def arithmetic_is_correct(self) -> bool:
        """Whether ``left op right`` equals ``result`` exactly."""
        value = _apply(self.left, self.op, self.right)
        return value is not None and value == self.result


def parse_step(line: str) -> Step | None:
    """A proposal line as a :class:`Step`, or None when it is not of the form ``a op b = c (left: ...)``."""
    if not isinstance(line, str):
        raise TypeError(f"line must be a str, got {type(line).__name__}")
    match = _STEP.match(line)
    if match is None:
        return None
    try:
        a, op, b, c, rest = match.groups()
        remaining = tuple(_parse_number(t) for t in rest.split())
        return Step(_parse_number(a), op, _parse_number(b), _parse_number(c), remaining)
    except (ValueError, ZeroDivisionError):
        return None


def is_valid_step(numbers: str, line: str) -> bool:
    """Whether ``line`` is a well-formed step from ``numbers``: its operands are among them, its
    arithmetic is exact and its ``left:`` list is what remains (a rule-based filter; not in the paper)."""
    step = parse_step(line)
    if step is None or not step.arithmetic_is_correct():
        return False
    try:
        pool = Counter(_as_numbers(numbers))
    except ValueError:
        return False
    need = Counter([step.left, step.right])
    if any(pool[v] < k for v, k in need.items()):
        return False
    return sorted((pool - need + Counter([step.result])).elements()) == sorted(step.remaining)


def current_numbers(x: str, y: str) -> str:
    """The numbers still to combine in state ``(x, y)`` (the paper's ``get_current_numbers``): the
    text after ``left:`` on the last line of ``y``, or the input ``x`` when ``y`` is empty."""
    lines = y.strip().split("\n")
    last = lines[-1] if y.strip() else ""
    if "left: " not in last:
        return x.strip()
    return last.split("left: ")[-1].split(")")[0].strip()


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return None if b == 0 else a / b
    raise ValueError(f"op must be one of + - * /, got {op!r}")


def _combinations(
    numbers: tuple[Fraction, ...],
) -> Iterable[tuple[Fraction, str, Fraction, Fraction, int, int]]:
    """Every (a, op, b, result, i, j) combining numbers i and j (both orders for - and /)."""
    for i in range(len(numbers)):
        for j in range(len(numbers)):
            if i == j:
                continue
            a, b = numbers[i], numbers[j]
            for op in "+-*/":
                if op in "+*" and i > j:  # commutative: one order is enough
                    continue
                value = _apply(a, op, b)
                if value is not None:
                    yield a, op, b, value, i, j


@lru_cache(maxsize=None)
def _solvable(numbers: tuple[Fraction, ...]) -> bool:
    if len(numbers) == 1:
        return numbers[0] == TARGET
    for _, _, _, value, i, j in _combinations(numbers):
        rest = tuple(sorted([n for k, n in enumerate(numbers) if k not in (i, j)] + [value]))
        if _solvable(rest):
            return True
    return False


def _as_numbers(numbers: Sequence[int | Fraction | str]) -> tuple[Fraction, ...]:
    if isinstance(numbers, str):
        numbers = numbers.split()
    if not isinstance(numbers, Sequence) or len(numbers) == 0:
        raise ValueError(f"numbers must be a non-empty sequence of numbers, got {numbers!r}")
    try:
        return tuple(sorted(Fraction(n) for n in numbers))
    except (ValueError, TypeError, ZeroDivisionError) as error:
        raise ValueError(f"numbers must be numbers, got {numbers!r}") from error


def solvable(numbers: Sequence[int | Fraction | str]) -> bool:
    """Whether the numbers (a list, or text ``"4 5 6 10"``) can be combined into 24, exactly."""
    return _solvable(_as_numbers(numbers))


def next_steps(numbers: Sequence[int | Fraction | str], integer_only: bool = True) -> list[Step]:
    """All distinct one-step thoughts from ``numbers`` (remaining numbers sorted ascending, as the
    paper's exemplars write them); ``integer_only`` keeps steps with a non-negative integer result."""
    values = _as_numbers(numbers)
    seen, steps = set(), []
    for a, op, b, value, i, j in _combinations(values):
        if integer_only and (value.denominator != 1 or value < 0):
            continue
        rest = tuple(sorted([n for k, n in enumerate(values) if k not in (i, j)] + [value]))
        left, right = (a, b) if op not in "+*" else (max(a, b), min(a, b))
        step = Step(left, op, right, value, rest)
        if step.text not in seen:
            seen.add(step.text)
            steps.append(step)
    return steps


def solutions(numbers: Sequence[int | Fraction | str], integer_only: bool = True) -> list[list[Step]]:
    """Every chain of steps from ``numbers`` to ``(left: 24)`` (with ``integer_only`` steps)."""
    chains: list[list[Step]] = []

    def walk(values: tuple[Fraction, ...], chain: list[Step]) -> None:
        if len(values) == 1:
            if values[0] == TARGET:
                chains.append(list(chain))
            return
        for step in next_steps(values, integer_only):
            if _solvable(step.remaining):
                walk(step.remaining, chain + [step])

    walk(_as_numbers(numbers), [])
    return chains


@lru_cache(maxsize=4096)
def _integer_solutions(numbers: tuple[Fraction, ...]) -> list[list[Step]]:
    return solutions(numbers)


def answer_expression(numbers: Sequence[int | Fraction | str], steps: Sequence[Step]) -> str:
    """The single expression that a chain of steps computes (``"(5 * (10 - 6)) + 4"``): each step's
    operands are replaced by the expressions that produced them."""
    pool = [(v, format_number(v)) for v in _as_numbers(numbers)]
    for step in steps:
        parts = []
        for operand in (step.left, step.right):
            index = next((k for k, (v, _) in enumerate(pool) if v == operand), None)
            if index is None:
                raise ValueError(
                    f"steps must use the remaining numbers; {format_number(operand)} is not left"
                )
            parts.append(pool.pop(index)[1])
        pool.append((step.result, f"({parts[0]} {step.op} {parts[1]})"))
    if len(pool) != 1:
        raise ValueError(f"steps must combine all numbers into one, {len(pool)} are left")
    text = pool[0][1]
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


class _Evaluator(ast.NodeVisitor):
    def visit_Expression(self, node: ast.Expression) -> Fraction:
        return self.visit(node.body)

    def visit_BinOp(self, node: ast.BinOp) -> Fraction:
        ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
        if type(node.op) not in ops:
            raise ValueError("only + - * / are allowed")
        value = _apply(self.visit(node.left), ops[type(node.op)], self.visit(node.right))
        if value is None:
            raise ValueError("division by zero")
        return value

    def visit_Constant(self, node: ast.Constant) -> Fraction:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError("only numbers are allowed")
        return Fraction(str(node.value))

    def generic_visit(self, node: ast.AST) -> Fraction:
        raise ValueError(f"{type(node).__name__} is not allowed")


def evaluate_expression(expression: str) -> Fraction:
    """The exact value of an expression of numbers, ``+ - * /`` and parentheses (ValueError otherwise)."""
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a str, got {type(expression).__name__}")
    if len(expression) > 200:
        raise ValueError(f"expression must be at most 200 characters, got {len(expression)}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"expression does not parse: {expression!r}") from error
    return _Evaluator().visit(tree)


def check_answer(x: str, output: str) -> bool:
    """The paper's ``test_output``: the last line of ``output`` (after ``Answer:``) up to ``=`` uses
    exactly the numbers of ``x`` and evaluates to 24 (exactly)."""
    if not isinstance(x, str) or not isinstance(output, str):
        raise TypeError(f"x and output must be str, got {type(x).__name__} and {type(output).__name__}")
    line = output.strip().split("\n")[-1].lower().replace("answer: ", "").replace("answer:", "")
    expression = line.split("=")[0]
    if Counter(re.findall(r"\d+", expression)) != Counter(re.findall(r"\d+", x)):
        return False
    try:
        return evaluate_expression(expression) == TARGET
    except ValueError:
        return False


class Game24Task:
    """The task object the search of :mod:`aicanon.reasoning.tree_of_thoughts` runs over.

    ``prompts``: ``"paper"`` (the published exemplars) or ``"zero_shot"`` (module docstring). Four
    thought steps: three equations and the answer line (the paper's ``steps = 4``).
    """

    steps = 4
    stops: tuple[str, ...] = ()
    propose_max_tokens = 160
    value_max_tokens = 64
    answer_max_tokens = 48

    def __init__(self, prompts: str = "paper", validate: bool = False) -> None:
        if prompts not in ("paper", "zero_shot"):
            raise ValueError(f"prompts must be 'paper' or 'zero_shot', got {prompts!r}")
        if not isinstance(validate, bool):
            raise TypeError(f"validate must be a bool, got {type(validate).__name__}")
        self.prompts, self.validate = prompts, validate
        self.templates = PAPER if prompts == "paper" else ZERO_SHOT

    # Input-output and chain-of-thought prompting (the baselines of Table 2).
    def standard_prompt(self, x: str) -> str:
        return self.templates["standard"].format(input=x)

    def cot_prompt(self, x: str, y: str = "") -> str:
        return self.templates["cot"].format(input=x) + ("Steps:\n" + y if y else "")

    # Thought generation: propose (Section 3, "propose prompt").
    def propose_prompt(self, x: str, y: str) -> str:
        numbers = current_numbers(x, y)
        if numbers == str(TARGET):  # all combined: the last thought is the answer (the paper's code)
            return self.cot_prompt(x, y)
        return self.templates["propose"].format(input=numbers)

    def propose_max_tokens_for(self, x: str, y: str) -> int:
        return self.answer_max_tokens if current_numbers(x, y) == str(TARGET) else self.propose_max_tokens

    def parse_proposals(self, x: str, y: str, text: str) -> list[str]:
        """New partial outputs: ``y`` plus one proposal line each (the answer: its first line)."""
        lines = [line for line in text.split("\n") if line.strip()]
        if current_numbers(x, y) == str(TARGET):
            answer = next((line for line in lines if "answer" in line.lower()), None)
            return [] if answer is None else [y + answer.strip() + "\n"]
        if self.validate:
            lines = [line for line in lines if is_valid_step(current_numbers(x, y), line)]
        return [y + line.strip() + "\n" for line in lines]

    # State evaluation: value (Section 3, "value each state independently").
    def value_prompt(self, x: str, y: str) -> str:
        last = y.strip().split("\n")[-1] if y.strip() else ""
        if "left: " not in last and last:  # an answer line: judge it (value_last_step_prompt)
            return self.value_last_step_prompt(x, last)
        return self.templates["value"].format(input=current_numbers(x, y))

    def value_last_step_prompt(self, x: str, answer_line: str) -> str:
        """The judgement prompt of a final answer line (the paper's ``value_last_step_prompt``)."""
        answer = answer_line.strip().lower().replace("answer: ", "")
        return self.templates["value_last_step"].format(input=x, answer=answer)

    def parse_value(self, x: str, y: str, outputs: Sequence[str]) -> float:
        """The paper's ``value_outputs_unwrap`` (an answer missing from a finished state scores 0)."""
        if len(y.strip().split("\n")) == self.steps and "answer" not in y.lower():
            return 0.0
        names = [o.strip().split("\n")[-1].strip().lower() if o.strip() else "" for o in outputs]
        return float(sum(VALUE_MAP.get(n, 0.0) for n in names))

    def is_correct(self, x: str, y: str) -> bool:
        return check_answer(x, y)


def training_documents(
    puzzles: Sequence[str], rng: random.Random, max_proposals: int = 8
) -> list[tuple[str, str]]:
    """(prompt, completion) pairs in the zero-shot format, labelled by the solver, for training a model
    that plays every role of the protocol (IO, CoT, propose, value, value of the last step).

    Per solvable puzzle: an IO answer and a CoT chain (a random solution); a propose list for the
    input and for two intermediate states (up to ``max_proposals`` steps, those that keep 24 reachable
    first, then others); value judgements (sure/impossible, the solver's truth) for three-number and
    two-number states; and two last-step judgements (the right answer: sure; a wrong one: impossible).
    """
    task = Game24Task("zero_shot")
    documents: list[tuple[str, str]] = []
    for x in puzzles:
        chains = _integer_solutions(_as_numbers(x))
        if not chains:
            continue
        chain = rng.choice(chains)
        answer = f"Answer: {answer_expression(x, chain)} = 24"
        steps_text = "".join(step.text + "\n" for step in chain[:3])
        documents.append((task.standard_prompt(x), answer))
        documents.append((task.cot_prompt(x), "Steps:\n" + steps_text + answer))
        # propose: the input, a state on the solution chain, and an arbitrary state
        states = [x, " ".join(format_number(v) for v in chain[0].remaining)]
        wander = rng.choice(next_steps(x))
        states.append(" ".join(format_number(v) for v in wander.remaining))
        for numbers in states:
            candidates = next_steps(numbers)
            good = [s for s in candidates if _solvable(s.remaining)]
            bad = [s for s in candidates if not _solvable(s.remaining)]
            rng.shuffle(good)
            rng.shuffle(bad)
            listed = (good + bad)[:max_proposals]
            documents.append((task.propose_prompt(numbers, ""), "".join(s.text + "\n" for s in listed)))
        # value: three- and two-number states, both verdicts
        for numbers in (chain[0].remaining, chain[1].remaining, wander.remaining):
            text = " ".join(format_number(v) for v in numbers)
            documents.append((task.value_prompt(text, ""), "sure" if _solvable(numbers) else "impossible"))
        two = rng.choice(next_steps(wander.remaining)).remaining
        text = " ".join(format_number(v) for v in two)
        documents.append((task.value_prompt(text, ""), "sure" if _solvable(two) else "impossible"))
        # value of the last step
        documents.append((task.value_last_step_prompt(x, answer), "\nsure"))
        wrong = _wrong_answer(x, rng)
        documents.append((task.value_last_step_prompt(x, wrong), "\nimpossible"))
    return documents


def _wrong_answer(x: str, rng: random.Random) -> str:
    """An answer line that fails :func:`check_answer`: a random chain's expression (not 24)."""
    for _ in range(20):
        values = _as_numbers(x)
        chain = []
        while len(values) > 1:
            step = rng.choice(next_steps(values))
            chain.append(step)
            values = step.remaining
        expression = answer_expression(x, chain)
        if not check_answer(x, f"Answer: {expression} = 24"):
            return f"Answer: {expression} = 24"
    return "Answer: " + " + ".join(x.split()) + " = 24"


class Game24Oracle:
    """A :class:`~aicanon.language.completion.LanguageModel` that answers the task's prompts (paper or
    zero-shot) with the solver: an upper bound for the search and a scripted responder for tests and
    servers. Proposals list up to ``max_proposals`` steps that keep 24 reachable first; values and
    last-step judgements are the solver's truth; IO/CoT answers are a solution (when one exists)."""

    def __init__(self, max_proposals: int = 8) -> None:
        check_int("max_proposals", max_proposals, 1)
        self.max_proposals = max_proposals

    def complete(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        n: int = 1,
        stop: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> list[list[Completion]]:
        prompts, _ = check_completion_request(prompts, max_tokens, temperature, n, stop, top_k)
        return [[Completion(self._answer(p), "stop")] * n for p in prompts]

    def _answer(self, prompt: str) -> str:
        if prompt.endswith("Judge:"):
            x, answer = re.findall(r"Input: (.*)\nAnswer: (.*)\nJudge:$", prompt)[0]
            return "\nsure" if check_answer(x, "Answer: " + answer) else "\nimpossible"
        if prompt.endswith("Possible next steps:\n"):
            numbers = re.findall(r"Input: (.*)\nPossible next steps:\n$", prompt)[0]
            steps = next_steps(numbers)
            steps = [s for s in steps if _solvable(s.remaining)] + [
                s for s in steps if not _solvable(s.remaining)
            ]
            return "".join(s.text + "\n" for s in steps[: self.max_proposals])
        if prompt.startswith(VALUE_INSTRUCTION):
            numbers = prompt.rstrip("\n").split("\n")[-1]
            return "sure" if solvable(numbers) else "impossible"
        head, _, tail = prompt.rpartition("Input: ")
        x, _, rest = tail.partition("\n")
        given = [parse_step(line) for line in rest.removeprefix("Steps:\n").split("\n") if line.strip()]
        given = [s for s in given if s is not None]
        chain = self._complete_chain(x, given)
        answer = (
            f"Answer: {answer_expression(x, chain)} = 24"
            if chain
            else "Answer: " + " + ".join(x.split()) + " = 24"
        )
        if not prompt.startswith(COT_INSTRUCTION):
            return answer
        new = "".join(s.text + "\n" for s in chain[len(given) :]) if chain else ""
        return (new + answer) if rest.startswith("Steps:") else "Steps:\n" + new + answer

    @staticmethod
    def _complete_chain(x: str, given: list[Step]) -> list[Step] | None:
        values = given[-1].remaining if given else _as_numbers(x)
        for chain in solutions(values) or solutions(values, integer_only=False):
            try:
                answer_expression(x, given + chain)
            except ValueError:
                return None
            return given + chain
        return None
