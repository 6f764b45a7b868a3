"""LLM-as-a-judge on MT-Bench (Zheng et al., 2023, Sections 3-4; FastChat's ``llm_judge``).

A judge is any :class:`~aicanon.language.completion.LanguageModel` prompted with the published
judge prompts (``judge_prompts.jsonl``, :func:`aicanon.datasets.mt_bench.load_judge_prompts`):

* **Single-answer grading** (Section 3.1): the judge rates one answer on a scale of 1 to 10 and ends
  with ``"Rating: [[8]]"``; :func:`parse_rating` reads the first ``[[x]]`` (else the first ``[x]``), as
  FastChat does. The MT-Bench score of a model is the mean rating over all questions and both turns
  (unparsable judgments excluded; FastChat drops its ``-1`` too).
* **Pairwise comparison** (Section 3.1): the judge sees two answers and ends with ``"[[A]]"``,
  ``"[[B]]"`` or ``"[[C]]"`` (a tie); :func:`parse_verdict` checks for them in that order.
* **Position-bias control by swapping** (Section 3.4): every pair is judged in both orders.
  The verdict is a win only when both orders prefer the same answer; any other combination (one
  win and one tie, opposite winners, an unparsable judgment) is a tie, the paper's conservative rule.
  :func:`position_outcome` classifies each pair as Table 2 does: *consistent* (the same winner, or a
  tie in both orders), *biased toward first* (the answer shown first is favoured in at least one order
  and the second never), *biased toward second*, or *error* (an unparsable judgment).
* **Reference-guided grading** (Section 3.4): questions in :data:`REFERENCE_CATEGORIES` (math,
  reasoning, coding: FastChat's ``NEED_REF_CATS``) are judged with the ``*-math-v1`` prompts, which
  show GPT-4's reference answer (``ref_answer_1``, ``ref_answer_2``).
* **Multi-turn** (Section 3.4): the second turn is judged with the ``*-multi-turn`` prompts, which
  show the whole two-turn conversation and ask about the second answer.
* **Agreement** (Section 4.2, Table 5; FastChat's ``compute_agreement.py``): the agreement between
  two types of judges is the probability that randomly selected individuals (not identical) of each
  type agree on a randomly selected question: over every question (a key: question, turn, model pair)
  judged by both, every pair of a vote of the first type and a vote of the second (two distinct
  votes for :func:`self_agreement`), the fraction that agree. Setup S1 counts ties (a tie agrees
  with a tie; random agreement R = 1/3 with three equally likely outcomes); setup S2 drops every vote
  pair with a tie in it (R = 1/2). Votes name the winning model or ``"tie"``.
  :func:`single_to_pairwise` turns two single-answer ratings into a pairwise vote (the paper's
  "GPT-4 single" judge): the higher rating wins, equal ratings are a tie.

Departures: the :class:`~aicanon.language.completion.LanguageModel` protocol takes one text
prompt, so the judge prompt's system and user parts are joined as ``system + "\\n\\n" + user``
(:func:`join_system_prompt`; pass another ``format_prompt`` for a chat template). FastChat's judge is
GPT-4 over the chat API (system message and user message, temperature 0, 2048 new tokens).

:class:`HeuristicJudge` is a scripted judge with known behaviour (no model): it scores an answer by
the recall of the reference answer's words when there is a reference, by its length otherwise, and
can be given a position bias. It is for testing the pipeline and showing what the metrics measure;
its verdicts are not judgments of quality.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.mt_bench import JudgePrompt, ModelAnswer, MTBenchQuestion
from aicanon.language.completion import Completion, LanguageModel, check_completion_request

__all__ = [
    "RANDOM_AGREEMENT",
    "REFERENCE_CATEGORIES",
    "HeuristicJudge",
    "JudgeRequest",
    "PairwiseJudgment",
    "SingleJudgment",
    "agreement",
    "combine_swapped",
    "join_system_prompt",
    "judge_pairwise",
    "judge_single",
    "mt_bench_scores",
    "pairwise_request",
    "parse_rating",
    "parse_verdict",
    "position_bias_table",
    "position_outcome",
    "select_judge_prompt",
    "self_agreement",
    "single_request",
    "single_to_pairwise",
]

REFERENCE_CATEGORIES = ("math", "reasoning", "coding")
"""Categories judged against a reference answer (FastChat's ``NEED_REF_CATS``)."""
RANDOM_AGREEMENT = {True: 1.0 / 3.0, False: 0.5}
"""Table 5's "R = random": agreement of two judges voting uniformly at random, with ties (S1: three
outcomes) and without (S2: two)."""
TIE = "tie"
POSITION_OUTCOMES = ("consistent", "biased_first", "biased_second", "error")

_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


@dataclass(frozen=True)
class JudgeRequest:
    """A filled judge prompt: its name, the system prompt and the user prompt."""

    prompt_name: str
    system: str
    user: str


def join_system_prompt(system: str, user: str) -> str:
    """The default rendering of a judge request as one text prompt (module docstring)."""
    return f"{system}\n\n{user}"


def select_judge_prompt(
    prompts: Mapping[str, JudgePrompt], kind: str, category: str, turn: int
) -> JudgePrompt:
    """FastChat's choice: ``single-v1``/``pair-v2`` for general questions, ``single-math-v1``/
    ``pair-math-v1`` for :data:`REFERENCE_CATEGORIES`, each with ``-multi-turn`` for turn 2."""
    check_choice("kind", kind, ("single", "pairwise"))
    check_int("turn", turn, 1, 2)
    reference = category in REFERENCE_CATEGORIES
    if kind == "single":
        name = "single-math-v1" if reference else "single-v1"
    else:
        name = "pair-math-v1" if reference else "pair-v2"
    if turn == 2:
        name += "-multi-turn"
    if name not in prompts:
        raise ValueError(f"prompts has no judge prompt {name!r}; it has {sorted(prompts)}")
    return prompts[name]


def _check_turns(name: str, turns: Sequence[str], turn: int) -> None:
    if len(turns) < turn:
        raise ValueError(f"{name} must hold at least {turn} turn(s), got {len(turns)}")


def _reference_fields(prompt: JudgePrompt, reference: Sequence[str] | None, turn: int) -> dict[str, str]:
    if not prompt.reference_based:
        return {}
    if reference is None:
        raise ValueError(f"judge prompt {prompt.name!r} needs the reference answer; reference is None")
    _check_turns("reference", reference, turn)
    return {f"ref_answer_{i + 1}": reference[i] for i in range(turn)}


def single_request(
    prompt: JudgePrompt,
    question: MTBenchQuestion,
    answer: Sequence[str],
    turn: int = 1,
    reference: Sequence[str] | None = None,
) -> JudgeRequest:
    """Fill a single-answer prompt (``prompt.type == "single"``) for ``turn`` (1 or 2): ``answer`` and
    ``reference`` hold the turns' answers."""
    if prompt.type != "single":
        raise ValueError(f"prompt must be a single-answer judge prompt, got {prompt.name!r} ({prompt.type})")
    check_int("turn", turn, 1, 2)
    _check_turns("question.turns", question.turns, turn)
    _check_turns("answer", answer, turn)
    fields = _reference_fields(prompt, reference, turn)
    if turn == 1:
        user = prompt.prompt_template.format(question=question.turns[0], answer=answer[0], **fields)
    else:
        user = prompt.prompt_template.format(
            question_1=question.turns[0],
            question_2=question.turns[1],
            answer_1=answer[0],
            answer_2=answer[1],
            **fields,
        )
    return JudgeRequest(prompt.name, prompt.system_prompt, user)


def pairwise_request(
    prompt: JudgePrompt,
    question: MTBenchQuestion,
    answer_a: Sequence[str],
    answer_b: Sequence[str],
    turn: int = 1,
    reference: Sequence[str] | None = None,
) -> JudgeRequest:
    """Fill a pairwise prompt (``prompt.type == "pairwise"``): ``answer_a`` is shown first."""
    if prompt.type != "pairwise":
        raise ValueError(f"prompt must be a pairwise judge prompt, got {prompt.name!r} ({prompt.type})")
    check_int("turn", turn, 1, 2)
    _check_turns("question.turns", question.turns, turn)
    _check_turns("answer_a", answer_a, turn)
    _check_turns("answer_b", answer_b, turn)
    fields = _reference_fields(prompt, reference, turn)
    if turn == 1:
        user = prompt.prompt_template.format(
            question=question.turns[0], answer_a=answer_a[0], answer_b=answer_b[0], **fields
        )
    else:
        user = prompt.prompt_template.format(
            question_1=question.turns[0],
            question_2=question.turns[1],
            answer_a_1=answer_a[0],
            answer_a_2=answer_a[1],
            answer_b_1=answer_b[0],
            answer_b_2=answer_b[1],
            **fields,
        )
    return JudgeRequest(prompt.name, prompt.system_prompt, user)


def parse_rating(judgment: str) -> float | None:
    """The rating in ``"... Rating: [[8]]"`` (the first ``[[x]]``, else the first ``[x]``), or None."""
    if not isinstance(judgment, str):
        raise TypeError(f"judgment must be a str, got {type(judgment).__name__}")
    match = _RATING.search(judgment) or _RATING_BACKUP.search(judgment)
    return float(match.group(1)) if match else None


def parse_verdict(judgment: str) -> str:
    """``"A"``, ``"B"``, ``"tie"`` (``[[C]]``) or ``"error"``: the first of ``[[A]]``, ``[[B]]``,
    ``[[C]]`` found in the judgment, checked in that order (FastChat's order)."""
    if not isinstance(judgment, str):
        raise TypeError(f"judgment must be a str, got {type(judgment).__name__}")
    if "[[A]]" in judgment:
        return "A"
    if "[[B]]" in judgment:
        return "B"
    if "[[C]]" in judgment:
        return TIE
    return "error"


_VERDICTS = ("A", "B", TIE, "error")


def combine_swapped(verdict: str, swapped_verdict: str, model_1: str, model_2: str) -> str:
    """The conservative winner of a pair judged twice: ``verdict`` with ``model_1`` shown first (as
    A), ``swapped_verdict`` with ``model_2`` first. A model wins only if both orders prefer it;
    otherwise ``"tie"``."""
    check_choice("verdict", verdict, _VERDICTS)
    check_choice("swapped_verdict", swapped_verdict, _VERDICTS)
    first = {"A": model_1, "B": model_2}.get(verdict, TIE)
    second = {"A": model_2, "B": model_1}.get(swapped_verdict, TIE)
    return first if first == second else TIE


def position_outcome(verdict: str, swapped_verdict: str) -> str:
    """Table 2's class of one pair judged in both orders (module docstring): ``"consistent"``,
    ``"biased_first"``, ``"biased_second"`` or ``"error"``."""
    check_choice("verdict", verdict, _VERDICTS)
    check_choice("swapped_verdict", swapped_verdict, _VERDICTS)
    if "error" in (verdict, swapped_verdict):
        return "error"
    # In both orders "A" is the position shown first; the same model winning twice is A then B.
    if (verdict, swapped_verdict) in (("A", "B"), ("B", "A"), (TIE, TIE)):
        return "consistent"
    firsts = (verdict, swapped_verdict).count("A")
    seconds = (verdict, swapped_verdict).count("B")
    return "biased_first" if firsts > seconds else "biased_second"


def position_bias_table(outcomes: Sequence[str]) -> dict[str, float]:
    """The fraction of pairs in each of Table 2's classes (consistent, biased toward first, toward
    second, error)."""
    if not outcomes:
        raise ValueError("outcomes must be a non-empty list")
    for outcome in outcomes:
        check_choice("outcome", outcome, POSITION_OUTCOMES)
    return {name: outcomes.count(name) / len(outcomes) for name in POSITION_OUTCOMES}


def single_to_pairwise(rating_1: float, rating_2: float, model_1: str, model_2: str) -> str:
    """A pairwise vote from two single-answer ratings: the higher rating's model, or ``"tie"``."""
    check_float("rating_1", rating_1, finite=True)
    check_float("rating_2", rating_2, finite=True)
    return model_1 if rating_1 > rating_2 else model_2 if rating_2 > rating_1 else TIE


Votes = Mapping[object, Sequence[str]]


def _is_tie(vote: str) -> bool:
    return TIE in vote  # "tie" and the arena's "tie (bothbad)", as FastChat's convertvote


def _agree(vote_1: str, vote_2: str) -> bool:
    return (_is_tie(vote_1) and _is_tie(vote_2)) or vote_1 == vote_2


def _check_votes(name: str, votes: Votes) -> None:
    if not isinstance(votes, Mapping):
        raise TypeError(f"{name} must map a question key to a list of votes, got {type(votes).__name__}")
    for key, value in votes.items():
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{name}[{key!r}] must be a list of votes (str), got {value!r}")


def agreement(votes_1: Votes, votes_2: Votes, include_ties: bool = True) -> tuple[int, int]:
    """``(agreeing, total)`` vote pairs between two types of judges (module docstring): over the keys
    both judged, every vote of ``votes_1[key]`` against every vote of ``votes_2[key]``; without ties
    (S2) a pair with a tie in it is skipped."""
    _check_votes("votes_1", votes_1)
    _check_votes("votes_2", votes_2)
    agree = total = 0
    for key in votes_1.keys() & votes_2.keys():
        for vote_1, vote_2 in itertools.product(votes_1[key], votes_2[key]):
            if not include_ties and (_is_tie(vote_1) or _is_tie(vote_2)):
                continue
            total += 1
            agree += _agree(vote_1, vote_2)
    return agree, total


def self_agreement(votes: Votes, include_ties: bool = True) -> tuple[int, int]:
    """``(agreeing, total)`` between distinct individuals of one type (e.g. human vs human): every
    pair of two different votes on the same key."""
    _check_votes("votes", votes)
    agree = total = 0
    for values in votes.values():
        for vote_1, vote_2 in itertools.combinations(values, 2):
            if not include_ties and (_is_tie(vote_1) or _is_tie(vote_2)):
                continue
            total += 1
            agree += _agree(vote_1, vote_2)
    return agree, total


# ------------------------------------------------------------------------------------- running a judge


@dataclass(frozen=True)
class SingleJudgment:
    """One single-answer grading: the prompt sent, the judge's output and the parsed rating
    (None when unparsable)."""

    question_id: int
    category: str
    turn: int
    model: str
    prompt_name: str
    prompt: str
    judgment: str
    rating: float | None


@dataclass(frozen=True)
class PairwiseJudgment:
    """One pair judged in one or both orders: ``judgments[0]`` with ``model_1`` shown first,
    ``judgments[1]`` (when swapped) with ``model_2`` first; ``winner`` a model name or ``"tie"``
    (conservative when swapped, else the single order's verdict); ``position`` Table 2's class
    (None without the swap)."""

    question_id: int
    category: str
    turn: int
    model_1: str
    model_2: str
    prompt_name: str
    prompts: tuple[str, ...]
    judgments: tuple[str, ...]
    verdicts: tuple[str, ...]
    winner: str
    position: str | None


def _check_judge(judge: LanguageModel) -> None:
    if not isinstance(judge, LanguageModel):
        raise TypeError(
            f"judge must be a LanguageModel (with complete(prompts, ...)), got {type(judge).__name__}"
        )


def _complete(judge: LanguageModel, prompts: list[str], max_tokens: int, batch_size: int) -> list[str]:
    texts = []
    for start in range(0, len(prompts), batch_size):
        groups = judge.complete(prompts[start : start + batch_size], max_tokens=max_tokens, temperature=0.0)
        texts.extend(group[0].text for group in groups)
    return texts


def _reference_for(
    question: MTBenchQuestion, references: Mapping[int, ModelAnswer] | None
) -> tuple[str, ...] | None:
    if question.category not in REFERENCE_CATEGORIES:
        return None
    if references is None or question.question_id not in references:
        raise ValueError(
            f"question {question.question_id} ({question.category}) needs a reference answer; "
            "references lacks it (load_reference_answers())"
        )
    return references[question.question_id].turns


def _answer_for(answers: Mapping[int, ModelAnswer], question: MTBenchQuestion, name: str) -> ModelAnswer:
    if question.question_id not in answers:
        raise ValueError(f"{name} has no answer to question {question.question_id}")
    return answers[question.question_id]


def _check_run(
    questions: Sequence[MTBenchQuestion], turns: Sequence[int], max_tokens: int, batch_size: int
) -> None:
    if not questions:
        raise ValueError("questions must be a non-empty list of MTBenchQuestion")
    if not turns or any(t not in (1, 2) for t in turns):
        raise ValueError(f"turns must be a non-empty subset of (1, 2), got {turns!r}")
    check_int("max_tokens", max_tokens)
    check_int("batch_size", batch_size)


def judge_single(
    judge: LanguageModel,
    prompts: Mapping[str, JudgePrompt],
    questions: Sequence[MTBenchQuestion],
    answers: Mapping[int, ModelAnswer],
    references: Mapping[int, ModelAnswer] | None = None,
    turns: Sequence[int] = (1, 2),
    format_prompt: Callable[[str, str], str] = join_system_prompt,
    max_tokens: int = 2048,
    batch_size: int = 256,
) -> list[SingleJudgment]:
    """Grade one model's ``answers`` to ``questions`` (every turn in ``turns``) with ``judge`` at
    temperature 0, FastChat's prompt choice per category and turn."""
    _check_judge(judge)
    _check_run(questions, turns, max_tokens, batch_size)
    jobs = []
    for question in questions:
        answer = _answer_for(answers, question, "answers")
        reference = _reference_for(question, references)
        for turn in turns:
            prompt = select_judge_prompt(prompts, "single", question.category, turn)
            request = single_request(prompt, question, answer.turns, turn, reference)
            jobs.append(
                (question, turn, answer.model_id, request, format_prompt(request.system, request.user))
            )
    texts = _complete(judge, [job[-1] for job in jobs], max_tokens, batch_size)
    return [
        SingleJudgment(
            q.question_id, q.category, turn, model, request.prompt_name, text, output, parse_rating(output)
        )
        for (q, turn, model, request, text), output in zip(jobs, texts)
    ]


def judge_pairwise(
    judge: LanguageModel,
    prompts: Mapping[str, JudgePrompt],
    questions: Sequence[MTBenchQuestion],
    answers_1: Mapping[int, ModelAnswer],
    answers_2: Mapping[int, ModelAnswer],
    references: Mapping[int, ModelAnswer] | None = None,
    turns: Sequence[int] = (1, 2),
    swap: bool = True,
    format_prompt: Callable[[str, str], str] = join_system_prompt,
    max_tokens: int = 2048,
    batch_size: int = 256,
) -> list[PairwiseJudgment]:
    """Compare two models' answers on every question and turn; with ``swap`` (the paper's control)
    each pair is judged in both orders and the winner is conservative (:func:`combine_swapped`)."""
    _check_judge(judge)
    _check_run(questions, turns, max_tokens, batch_size)
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a bool, got {type(swap).__name__}")
    jobs = []
    for question in questions:
        first = _answer_for(answers_1, question, "answers_1")
        second = _answer_for(answers_2, question, "answers_2")
        if first.model_id == second.model_id:
            raise ValueError(
                f"answers_1 and answers_2 must come from two models, both are {first.model_id!r}"
            )
        reference = _reference_for(question, references)
        for turn in turns:
            prompt = select_judge_prompt(prompts, "pairwise", question.category, turn)
            orders = [(first, second), (second, first)] if swap else [(first, second)]
            texts = []
            for shown_a, shown_b in orders:
                request = pairwise_request(prompt, question, shown_a.turns, shown_b.turns, turn, reference)
                texts.append(format_prompt(request.system, request.user))
            jobs.append((question, turn, first.model_id, second.model_id, prompt.name, texts))
    flat = [text for job in jobs for text in job[-1]]
    outputs = iter(_complete(judge, flat, max_tokens, batch_size))
    results = []
    for question, turn, model_1, model_2, name, texts in jobs:
        judgments = tuple(next(outputs) for _ in texts)
        verdicts = tuple(parse_verdict(j) for j in judgments)
        if swap:
            winner = combine_swapped(verdicts[0], verdicts[1], model_1, model_2)
            position = position_outcome(verdicts[0], verdicts[1])
        else:
            winner = {"A": model_1, "B": model_2}.get(verdicts[0], TIE)
            position = None
        results.append(
            PairwiseJudgment(
                question.question_id,
                question.category,
                turn,
                model_1,
                model_2,
                name,
                tuple(texts),
                judgments,
                verdicts,
                winner,
                position,
            )
        )
    return results


def mt_bench_scores(judgments: Sequence[SingleJudgment]) -> dict[str, float]:
    """The MT-Bench score per model: the mean rating over its parsed judgments (all turns)."""
    if not judgments:
        raise ValueError("judgments must be a non-empty list of SingleJudgment")
    ratings: dict[str, list[float]] = {}
    for j in judgments:
        if j.rating is not None:
            ratings.setdefault(j.model, []).append(j.rating)
    return {model: sum(values) / len(values) for model, values in ratings.items()}


# ------------------------------------------------------------------------------ a scripted judge

_WORD = re.compile(r"[a-z0-9]+")
_SINGLE_ANSWER = ("[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")
_PAIR_ANSWERS = (
    ("[The Start of Assistant A's Answer]\n", "\n[The End of Assistant A's Answer]"),
    ("[The Start of Assistant B's Answer]\n", "\n[The End of Assistant B's Answer]"),
)
_REFERENCE = ("[The Start of Reference Answer]\n", "\n[The End of Reference Answer]")
_CONVERSATIONS = (
    (
        "<|The Start of Assistant A's Conversation with User|>",
        "<|The End of Assistant A's Conversation with User|>",
    ),
    (
        "<|The Start of Assistant B's Conversation with User|>",
        "<|The End of Assistant B's Conversation with User|>",
    ),
)
_REFERENCE_CONVERSATION = ("<|The Start of Reference Answer|>", "<|The End of Reference Answer|>")


def _between(text: str, start: str, end: str) -> str | None:
    i = text.find(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    return None if j < 0 else text[i + len(start) : j]


def _last_turn(block: str, marker: str) -> str:
    """The text after the last ``marker`` line of a multi-turn block (the second answer)."""
    return block.rsplit(marker, 1)[-1].strip()


class HeuristicJudge:
    """A scripted judge with known behaviour, speaking the judge prompts' output formats (module
    docstring): a :class:`~aicanon.language.completion.LanguageModel` that reads the filled judge
    prompt, scores each answer and writes ``"Rating: [[r]]"`` or ``"[[A]]"``/``"[[B]]"``/``"[[C]]"``.

    The score ``q`` in [0, 1] of an answer (the second answer for a multi-turn prompt): with a
    reference answer, the fraction of the reference's distinct words (lowercase letters and digits)
    that the answer contains; without, ``min(words, length_cap) / length_cap`` (verbosity, a bias the
    paper documents). Rating: ``1 + round(9 q)``. Pairwise, with ``d = q(first) - q(second)``: ``[[C]]``
    when ``|d| <= tie_margin``, else the better one; with ``position_bias_margin > 0``, every pair with
    ``|d| <= position_bias_margin`` gets ``[[A]]`` instead (the answer shown first), a position bias
    confined to close pairs, like the one the paper observed for GPT-4. Deterministic; ``temperature``
    and ``max_tokens`` are ignored; a prompt it cannot read gets an answer without a verdict.
    """

    def __init__(
        self, length_cap: int = 400, tie_margin: float = 0.02, position_bias_margin: float = 0.0
    ) -> None:
        self.length_cap = check_int("length_cap", length_cap)
        self.tie_margin = check_float("tie_margin", tie_margin, 0.0, 1.0)
        self.position_bias_margin = check_float("position_bias_margin", position_bias_margin, 0.0, 1.0)

    def __repr__(self) -> str:
        return (
            f"HeuristicJudge(length_cap={self.length_cap}, tie_margin={self.tie_margin}, "
            f"position_bias_margin={self.position_bias_margin})"
        )

    def score(self, answer: str, reference: str | None = None) -> float:
        """The score ``q`` of the class docstring."""
        words = _WORD.findall(answer.lower())
        if reference is not None:
            wanted = set(_WORD.findall(reference.lower()))
            return len(wanted & set(words)) / len(wanted) if wanted else 0.0
        return min(len(words), self.length_cap) / self.length_cap

    def _reference(self, prompt: str) -> str | None:
        block = _between(prompt, *_REFERENCE_CONVERSATION)
        if block is not None:
            return _last_turn(block, "### Reference answer:")
        return _between(prompt, *_REFERENCE)

    def judge(self, prompt: str) -> str:
        """The judgment text for one filled judge prompt."""
        reference = self._reference(prompt)
        first = [_between(prompt, *_CONVERSATIONS[0]), _between(prompt, *_CONVERSATIONS[1])]
        if first[0] is not None:  # multi-turn: judge the second answers
            answers = [
                None if b is None else _last_turn(b, f"### Assistant {x}:") for b, x in zip(first, "AB")
            ]
        else:
            answers = [_between(prompt, *_PAIR_ANSWERS[0]), _between(prompt, *_PAIR_ANSWERS[1])]
        if answers[0] is not None and answers[1] is not None:
            q_first, q_second = self.score(answers[0], reference), self.score(answers[1], reference)
            d = q_first - q_second
            if self.position_bias_margin > 0 and abs(d) <= self.position_bias_margin:
                verdict = "[[A]]"  # the injected position bias: close pairs go to the answer shown first
            elif abs(d) <= self.tie_margin:
                verdict = "[[C]]"
            else:
                verdict = "[[A]]" if d > 0 else "[[B]]"
            return f"Heuristic scores: first {q_first:.3f}, second {q_second:.3f}. Final verdict: {verdict}"
        single = answers[0] if answers[0] is not None else _between(prompt, *_SINGLE_ANSWER)
        if single is None:
            return "I cannot find the answer to judge."
        q = self.score(single, reference)
        return f"Heuristic score {q:.3f}. Rating: [[{1 + round(9 * q)}]]"

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
        return [[Completion(self.judge(p), "stop")] * n for p in prompts]
