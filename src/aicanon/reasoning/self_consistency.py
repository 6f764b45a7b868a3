"""Self-consistency (Wang et al. 2023, "Self-Consistency Improves Chain of Thought Reasoning in
Language Models", arXiv 2203.11171): sample several reasoning paths from a chain-of-thought prompt
instead of decoding the single greedy one, read each path's final answer, and return the answer the
paths agree on most.

Sample-and-marginalise (Section 2). From one prompt, ``k`` completions ``r_1 .. r_k`` are sampled
(temperature ``T``, optionally truncated to the ``top_k`` most likely tokens), each path's answer ``a_i`` is
parsed from its text, and the answers are aggregated:

* majority vote (the paper's choice, "unweighted sum"): ``argmax_a sum_i 1(a_i = a)``;
* weighted by each path's probability. The paper weights a path by

      P(r_i, a_i | prompt, question) = exp( (1/K) sum_{k=1..K} log P(t_k | prompt, question, t_<k) )   (1)

  the length-normalised ("normalized") probability of its K generated tokens, or by the plain
  sequence probability ``exp(sum_k log P(t_k | ...))`` ("unnormalized"). Table 1 compares

  - weighted sum: ``argmax_a sum_{i: a_i = a} P(r_i, a_i | ...)``;
  - weighted average: ``argmax_a (1 / |{i: a_i = a}|) sum_{i: a_i = a} P(r_i, a_i | ...)``,

  each normalised and unnormalised. In Table 1 (PaLM 540B, GSM8K) majority vote and the normalised
  weighted sum are the best and nearly equal; the weighted averages are far worse (we recall 74.4
  vs 74.1, and 56.3 / 22.1 for the averages, not re-read from the paper: unverified).

:data:`AGGREGATIONS` names the five rules; :func:`aggregate` applies one to a prompt's sampled
paths; :func:`self_consistency` runs the whole method against any
:class:`~aicanon.language.completion.LanguageModel` (all prompts x ``k`` paths in one ``complete``
call, ``n=k``).

Departures from the paper:

* Sampling settings are the caller's: the paper uses T = 0.5 with top-k 40 for UL2 and LaMDA,
  T = 0.7 with top-k 40 for PaLM and T = 0.7 without top-k for GPT-3 (Section 3.1; the PaLM and
  GPT-3 settings confirmed by a secondary summary, UL2/LaMDA's recalled: unverified). ``top_k=None``
  (the default) reaches the backend as no argument at all, so models written before the protocol's
  ``top_k`` still work; the OpenAI API proper has no top-k (vLLM and llama.cpp's server do).
* Log-probabilities are the backend's ``token_logprobs`` (at temperature 1, of the unmodified
  distribution, as the OpenAI API reports them), of the tokens up to the stop sequence.
* Weighted rules need a backend that reports ``token_logprobs``; a path with none raises.
* Ties go to the answer whose first path came first (:func:`aicanon.reasoning.answers.majority_vote`),
  so results are deterministic; paths with no parseable answer do not vote.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.language.completion import Completion, LanguageModel
from aicanon.reasoning.answers import extract_number, majority_vote

__all__ = [
    "AGGREGATIONS",
    "SelfConsistencyResult",
    "aggregate",
    "path_probability",
    "sample_reasoning_paths",
    "self_consistency",
]

AGGREGATIONS = (
    "majority_vote",
    "unnormalized_weighted_sum",
    "normalized_weighted_sum",
    "unnormalized_weighted_average",
    "normalized_weighted_average",
)
"""The answer-aggregation rules of Table 1 (majority vote is the paper's "unweighted sum")."""


@dataclass(frozen=True)
class SelfConsistencyResult:
    """One prompt's outcome: the chosen ``answer`` (None when no path stated one), every answer's
    aggregate score ``scores``, and the sampled ``paths`` with their parsed ``answers``."""

    answer: str | None
    scores: dict[str, float]
    answers: tuple[str | None, ...]
    paths: tuple[Completion, ...]


def path_probability(completion: Completion, normalized: bool = True) -> float:
    """A path's probability: Eq. (1), ``exp(mean token log-prob)`` when ``normalized``, else
    ``exp(sum token log-prob)``. An empty path has probability 1 (nothing was generated)."""
    if not isinstance(completion, Completion):
        raise TypeError(f"completion must be a Completion, got {type(completion).__name__}")
    if completion.token_logprobs is None:
        raise ValueError(
            "completion has no token_logprobs: weighted aggregation needs a backend that reports them"
        )
    logprobs = completion.token_logprobs
    if not logprobs:
        return 1.0
    total = float(sum(logprobs))
    return math.exp(total / len(logprobs) if normalized else total)


def aggregate(
    answers: Sequence[str | None],
    paths: Sequence[Completion] | None = None,
    method: str = "majority_vote",
) -> tuple[str | None, dict[str, float]]:
    """The winning answer among one prompt's sampled paths and every answer's score, by ``method``
    (one of :data:`AGGREGATIONS`; the weighted ones need ``paths``, one per answer, with
    ``token_logprobs``)."""
    check_choice("method", method, AGGREGATIONS)
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise TypeError(f"answers must be a list of str or None, got {type(answers).__name__}")
    if not all(a is None or isinstance(a, str) for a in answers):
        raise TypeError("answers must hold only str or None")
    if method == "majority_vote":
        return majority_vote(answers)
    if paths is None or len(paths) != len(answers):
        raise ValueError(
            f"method {method!r} needs paths, one per answer ({len(answers)}), got "
            f"{'none' if paths is None else len(paths)}"
        )
    weights = [path_probability(p, normalized=method.startswith("normalized")) for p in paths]
    winner, totals = majority_vote(answers, weights)
    if method.endswith("_sum"):
        return winner, totals
    counts: dict[str, int] = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    averages = {a: totals[a] / counts[a] for a in totals}
    if not averages:
        return None, averages
    best = max(averages.values())
    return next(a for a, v in averages.items() if v == best), averages  # first seen wins ties


def sample_reasoning_paths(
    model: LanguageModel,
    prompts: Sequence[str],
    k: int,
    *,
    temperature: float = 0.7,
    top_k: int | None = None,
    max_tokens: int = 128,
    stop: Sequence[str] | None = ("\n\n", "\nQ:"),
) -> list[list[Completion]]:
    """``k`` sampled completions of every prompt, in one ``complete`` call (``n=k``), among the
    ``top_k`` most likely tokens at each step when given."""
    if not callable(getattr(model, "complete", None)):
        raise TypeError(f"model must be a LanguageModel (with complete()), got {type(model).__name__}")
    check_int("k", k, 1)
    check_float("temperature", temperature, 0.0, finite=True)
    check_int("top_k", top_k, 1, allow_none=True)
    extra = {} if top_k is None else {"top_k": top_k}  # see the module docstring
    outputs = model.complete(prompts, max_tokens=max_tokens, temperature=temperature, n=k, stop=stop, **extra)
    if len(outputs) != len(prompts) or any(len(o) != k for o in outputs):
        raise ValueError(f"model returned {[len(o) for o in outputs]} completions, expected {k} per prompt")
    return outputs


def self_consistency(
    model: LanguageModel,
    prompts: Sequence[str],
    k: int = 40,
    *,
    temperature: float = 0.7,
    top_k: int | None = None,
    max_tokens: int = 128,
    stop: Sequence[str] | None = ("\n\n", "\nQ:"),
    method: str = "majority_vote",
    extract: Callable[[str], str | None] = extract_number,
) -> list[SelfConsistencyResult]:
    """Self-consistency on every prompt (a few-shot chain-of-thought prompt ending in ``"A:"``):
    sample ``k`` paths at ``temperature`` (and ``top_k``), parse each path's answer with ``extract``
    (default: the number after "The answer is"), aggregate by ``method`` (:data:`AGGREGATIONS`)."""
    check_choice("method", method, AGGREGATIONS)
    if not callable(extract):
        raise TypeError(f"extract must be a callable text -> answer, got {type(extract).__name__}")
    outputs = sample_reasoning_paths(
        model, prompts, k, temperature=temperature, top_k=top_k, max_tokens=max_tokens, stop=stop
    )
    results = []
    for paths in outputs:
        answers = tuple(extract(p.text) for p in paths)
        answer, scores = aggregate(answers, paths, method)
        results.append(SelfConsistencyResult(answer, scores, answers, tuple(paths)))
    return results
