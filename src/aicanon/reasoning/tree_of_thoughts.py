"""Tree of Thoughts (Yao et al. 2023, Section 3): deliberate search over partial solutions
("thoughts") that a language model proposes and evaluates.

A problem is an input ``x``; a state is ``s = [x, z_1..i]``, here the text ``y`` of the thoughts so far
(the paper's code keeps ``y`` as newline-joined thoughts). Four pieces, each over any
:class:`~aicanon.language.completion.LanguageModel` and any task object:

* Thought generation G(p_theta, s, k) (:class:`ThoughtGenerator`):
  ``"sample"``: k i.i.d. thoughts z ~ p_theta^CoT(z_{i+1} | s) from a sample prompt (rich thought
  spaces); ``"propose"``: [z^(1..k)] ~ p_theta^propose(z_{i+1}^(1..k) | s), one completion listing
  several thoughts (a constrained space: one equation each in the Game of 24).
* State evaluation V(p_theta, S)(s) (:class:`StateEvaluator`):
  ``"value"``: V(s) ~ p_theta^value(v | s) for each state independently (a judgement mapped to a number,
  summed over ``n`` samples); ``"vote"``: V(s) = 1[s = s*] with s* ~ p_theta^vote(s* | S), the share
  of ``n`` votes each state gets among all states of its problem.
* BFS (Algorithm 1, :func:`bfs`): S_0 = {x}; for t = 1..T: S'_t = {[s, z] | s in S_{t-1}, z in G(s)},
  V_t = V(S'_t), S_t = the b best states of S'_t by V_t (``selection="greedy"``, the paper's Game of
  24) or b sampled in proportion to V_t (``"sample"``). Returns G(p_theta, argmax_{s in S_T} V_T(s), 1):
  the best final state. Problems are searched in lockstep (all states of all problems at one level
  go to the model together) so a local model sees large batches.
* DFS (Algorithm 2, :func:`dfs`): expand the most promising child first; prune a subtree whose value is
  below ``value_threshold`` (the paper's v_th); backtrack; stop at the first state at depth T that passes
  the threshold, or after ``max_states`` expanded states.

The task object (duck-typed, e.g. :class:`aicanon.reasoning.game24.Game24Task`) provides ``steps`` (T),
``propose_prompt(x, y)`` + ``parse_proposals(x, y, text) -> [new y]`` (+ optional
``propose_max_tokens_for(x, y)``), ``sample_prompt(x, y)`` (for ``"sample"``), ``value_prompt(x, y)`` +
``parse_value(x, y, outputs) -> float``, ``vote_prompt(x, ys)`` + ``parse_votes(x, ys, outputs)``
(for ``"vote"``), and optionally ``stops`` and ``value_max_tokens``.

:class:`SearchStats` counts the cost: prompts sent, completions returned, generated tokens (where the
backend reports them) and prompt characters.

Departures: values of identical value prompts are computed once per search and reused (the paper's
``cache_value``; off with ``cache=False``); ties in value keep generation order (the paper's sort is
stable too).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.language.completion import Completion, LanguageModel

__all__ = ["SearchResult", "SearchStats", "StateEvaluator", "ThoughtGenerator", "bfs", "dfs"]


@dataclass
class SearchStats:
    """Model calls and tokens a search spent."""

    calls: int = 0
    """``complete`` calls."""
    prompts: int = 0
    """Prompts sent (one model call per prompt in an API's accounting)."""
    completions: int = 0
    generated_tokens: int = 0
    prompt_chars: int = 0

    def add(self, prompts: Sequence[str], outputs: list[list[Completion]]) -> None:
        self.calls += 1
        self.prompts += len(prompts)
        self.prompt_chars += sum(len(p) for p in prompts)
        for group in outputs:
            self.completions += len(group)
            self.generated_tokens += sum(len(c.tokens) if c.tokens is not None else 0 for c in group)


def _check_model(model: Any) -> None:
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be a LanguageModel (a complete() method), got {type(model).__name__}")


def _complete(
    model: LanguageModel,
    prompts: list[str],
    max_tokens: list[int],
    temperature: float,
    n: int,
    stop: Sequence[str] | None,
    stats: SearchStats,
    batch_size: int,
) -> list[list[Completion]]:
    """Complete prompts in batches of equal ``max_tokens``; results in prompt order."""
    results: list[list[Completion] | None] = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(max_tokens):
        by_length.setdefault(length, []).append(index)
    for length, indices in by_length.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = [prompts[i] for i in chunk]
            outputs = model.complete(
                batch, max_tokens=length, temperature=temperature, n=n, stop=stop or None
            )
            stats.add(batch, outputs)
            for i, group in zip(chunk, outputs, strict=True):
                results[i] = group
    return results  # type: ignore[return-value]


@dataclass
class ThoughtGenerator:
    """G(p_theta, s, k): ``method`` ``"propose"`` (one completion lists the thoughts) or ``"sample"``
    (``n`` sampled completions, one thought each), at ``temperature``."""

    method: str = "propose"
    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 128
    """Used when the task has no ``propose_max_tokens_for``."""
    batch_size: int = 512

    def __post_init__(self) -> None:
        check_choice("method", self.method, ("propose", "sample"))
        check_int("n", self.n, 1)
        check_int("max_tokens", self.max_tokens, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("temperature", self.temperature, 0.0, finite=True)

    def __call__(
        self, model: LanguageModel, task: Any, states: Sequence[tuple[str, str]], stats: SearchStats
    ) -> list[list[str]]:
        """For each state ``(x, y)``, the new partial outputs ``y + thought``."""
        if not states:
            return []
        if self.method == "propose":
            prompts = [task.propose_prompt(x, y) for x, y in states]
        else:
            prompts = [task.sample_prompt(x, y) for x, y in states]
        lengths = [
            task.propose_max_tokens_for(x, y) if hasattr(task, "propose_max_tokens_for") else self.max_tokens
            for x, y in states
        ]
        outputs = _complete(
            model,
            prompts,
            lengths,
            self.temperature,
            self.n,
            getattr(task, "stops", None),
            stats,
            self.batch_size,
        )
        children = []
        for (x, y), group in zip(states, outputs, strict=True):
            if self.method == "propose":
                ys = [new for c in group for new in task.parse_proposals(x, y, c.text)]
            else:
                ys = [y + c.text for c in group]
            children.append(ys)
        return children


@dataclass
class StateEvaluator:
    """V(p_theta, S): ``method`` ``"value"`` (each state alone, ``n`` judgements summed) or ``"vote"``
    (``n`` votes over the states of one problem); ``cache`` reuses values of identical value prompts."""

    method: str = "value"
    n: int = 3
    temperature: float = 0.7
    max_tokens: int = 64
    batch_size: int = 1024
    cache: bool = True
    _values: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_choice("method", self.method, ("value", "vote"))
        check_int("n", self.n, 1)
        check_int("max_tokens", self.max_tokens, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("temperature", self.temperature, 0.0, finite=True)

    def __call__(
        self, model: LanguageModel, task: Any, groups: Sequence[tuple[str, Sequence[str]]], stats: SearchStats
    ) -> list[list[float]]:
        """For each problem ``(x, [y...])``, the values of its candidate states."""
        length = getattr(task, "value_max_tokens", self.max_tokens)
        stop = getattr(task, "stops", None)
        if self.method == "vote":
            items = [(x, list(ys)) for x, ys in groups if ys]
            prompts = [task.vote_prompt(x, ys) for x, ys in items]
            outputs = (
                _complete(
                    model,
                    prompts,
                    [length] * len(prompts),
                    self.temperature,
                    self.n,
                    stop,
                    stats,
                    self.batch_size,
                )
                if prompts
                else []
            )
            votes = iter(outputs)
            return [
                list(task.parse_votes(x, ys, [c.text for c in next(votes)])) if ys else [] for x, ys in groups
            ]
        requests = [(task.value_prompt(x, y), x, y) for x, ys in groups for y in ys]
        if self.cache:  # one request per distinct prompt not valued before
            wanted = list({p: (p, x, y) for p, x, y in requests if p not in self._values}.values())
        else:
            wanted = requests
        computed: list[float] = []
        if wanted:
            prompts = [p for p, _, _ in wanted]
            outputs = _complete(
                model,
                prompts,
                [length] * len(prompts),
                self.temperature,
                self.n,
                stop,
                stats,
                self.batch_size,
            )
            computed = [
                float(task.parse_value(x, y, [c.text for c in group]))
                for (_, x, y), group in zip(wanted, outputs, strict=True)
            ]
        if self.cache:
            self._values.update({p: v for (p, _, _), v in zip(wanted, computed, strict=True)})
            flat = [self._values[p] for p, _, _ in requests]
        else:
            flat = computed
        values, position = [], 0
        for _, ys in groups:
            values.append(flat[position : position + len(ys)])
            position += len(ys)
        return values


@dataclass
class SearchResult:
    """The search's answer for one input: ``output`` (the best final state's text, '' if none),
    the final states and their values (best first), and the tree (one record per level)."""

    x: str
    output: str
    outputs: list[str]
    values: list[float]
    levels: list[dict] = field(default_factory=list)


def _select(
    ys: list[str], values: list[float], breadth: int, selection: str, rng: random.Random
) -> list[int]:
    if selection == "greedy":
        return sorted(range(len(ys)), key=lambda i: -values[i])[:breadth]
    total = sum(values)
    if total <= 0:
        return list(range(min(breadth, len(ys))))
    return rng.choices(range(len(ys)), weights=values, k=breadth)


def bfs(
    model: LanguageModel,
    task: Any,
    inputs: Sequence[str],
    *,
    breadth: int = 5,
    generator: ThoughtGenerator | None = None,
    evaluator: StateEvaluator | None = None,
    selection: str = "greedy",
    steps: int | None = None,
    stats: SearchStats | None = None,
    seed: int = 0,
) -> list[SearchResult]:
    """ToT-BFS (Algorithm 1) for every input, in lockstep (module docstring).

    ``evaluator=None`` skips evaluation: every candidate has value 0 and the first ``breadth`` in
    generation order are kept (with ``breadth=1``: a greedy chain of first proposals, the ablation).
    """
    _check_model(model)
    if isinstance(inputs, str) or not all(isinstance(x, str) for x in inputs):
        raise TypeError("inputs must be a list of str")
    check_int("breadth", breadth, 1)
    check_choice("selection", selection, ("greedy", "sample"))
    steps = getattr(task, "steps", None) if steps is None else steps
    check_int("steps", steps, 1)
    generator = ThoughtGenerator() if generator is None else generator
    stats = SearchStats() if stats is None else stats
    rng = random.Random(seed)
    frontier: list[list[str]] = [[""] for _ in inputs]
    values: list[list[float]] = [[0.0] for _ in inputs]
    levels: list[list[dict]] = [[] for _ in inputs]
    for _ in range(steps):
        flat = [(x, y) for x, ys in zip(inputs, frontier, strict=True) for y in ys]
        children = iter(generator(model, task, flat, stats))
        candidates = [[new for _ in ys for new in next(children)] for ys in frontier]
        if evaluator is None:
            scores = [[0.0] * len(ys) for ys in candidates]
        else:
            scores = evaluator(model, task, list(zip(inputs, candidates, strict=True)), stats)
        for k, (ys, vs) in enumerate(zip(candidates, scores, strict=True)):
            chosen = _select(ys, vs, breadth, selection, rng) if ys else []
            frontier[k] = [ys[i] for i in chosen]
            values[k] = [vs[i] for i in chosen]
            levels[k].append({"candidates": ys, "values": vs, "selected": frontier[k]})
    results = []
    for x, ys, vs, log in zip(inputs, frontier, values, levels, strict=True):
        order = sorted(range(len(ys)), key=lambda i: -vs[i])
        outputs = [ys[i] for i in order]
        results.append(SearchResult(x, outputs[0] if outputs else "", outputs, [vs[i] for i in order], log))
    return results


def dfs(
    model: LanguageModel,
    task: Any,
    x: str,
    *,
    generator: ThoughtGenerator | None = None,
    evaluator: StateEvaluator | None = None,
    value_threshold: float = 1.0,
    max_states: int = 100,
    breadth_limit: int | None = None,
    steps: int | None = None,
    stats: SearchStats | None = None,
) -> SearchResult:
    """ToT-DFS (Algorithm 2) for one input: children in descending value, subtrees whose value is below
    ``value_threshold`` pruned; the first depth-T state that passes the threshold ends the search
    (``output`` is '' when none is found within ``max_states`` expansions)."""
    _check_model(model)
    if not isinstance(x, str):
        raise TypeError(f"x must be a str, got {type(x).__name__}")
    check_float("value_threshold", value_threshold, finite=True)
    check_int("max_states", max_states, 1)
    check_int("breadth_limit", breadth_limit, 1, allow_none=True)
    steps = getattr(task, "steps", None) if steps is None else steps
    check_int("steps", steps, 1)
    generator = ThoughtGenerator() if generator is None else generator
    evaluator = StateEvaluator() if evaluator is None else evaluator
    stats = SearchStats() if stats is None else stats
    visited: list[dict] = []
    finals: list[tuple[str, float]] = []

    def search(y: str, depth: int) -> str | None:
        if len(visited) >= max_states:
            return None
        (children,) = generator(model, task, [(x, y)], stats)
        (scores,) = evaluator(model, task, [(x, children)], stats) if children else ([],)
        visited.append({"state": y, "candidates": children, "values": scores})
        order = sorted(range(len(children)), key=lambda i: -scores[i])
        if breadth_limit is not None:
            order = order[:breadth_limit]
        for i in order:
            if scores[i] < value_threshold:
                break  # sorted: every later child is pruned too
            if depth + 1 == steps:
                finals.append((children[i], scores[i]))
                return children[i]
            found = search(children[i], depth + 1)
            if found is not None:
                return found
        return None

    found = search("", 0)
    return SearchResult(
        x, found or "", [y for y, _ in finals], [v for _, v in finals], [{"visited": visited}]
    )
