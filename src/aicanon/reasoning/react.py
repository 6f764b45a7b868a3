"""ReAct: synergizing reasoning and acting (Yao et al. 2022, arXiv 2210.03629).

An agent answers a question by interleaving free-text *thoughts* with *actions* on an environment
and reading back *observations* (Section 2): at step ``i`` the language model continues the
trajectory ``c_i = (question, t_1, a_1, o_1, ..., a_{i-1}, o_{i-1})`` with

    Thought i: <reasoning>          (a "language action" that does not change the environment)
    Action i: search[...] | lookup[...] | finish[...]
    Observation i: <what the environment returns>

Section 3.1 gives the action space for HotpotQA and FEVER (:mod:`.wiki_env`); Section 3.2 the step
limits (7 for HotpotQA, 5 for FEVER, as in the reference notebooks' ``range(1, 8)`` and the paper's
text) and the baselines: *Act* (the same trajectories without thoughts), *CoT* (a thought then the
answer, no actions) and *CoT-SC* (21 CoT samples at temperature 0.7, majority vote). Section 3.3's
two back-offs combine internal and external knowledge:

* ReAct -> CoT-SC: when ReAct does not finish within its step limit, answer with CoT-SC;
* CoT-SC -> ReAct: when the majority answer of the ``n`` CoT-SC samples occurs fewer than ``n/2``
  times (internal knowledge is unsure), answer with ReAct.

Scoring follows the reference wrappers: HotpotQA exact match and F1 after the official answer
normalisation (lower-case, punctuation and the articles a/an/the removed, whitespace collapsed;
F1 is 0 when either side is yes/no/noanswer and they differ); FEVER accuracy is exact match of the
normalised label (SUPPORTS / REFUTES / NOT ENOUGH INFO). An episode that never calls finish is
scored as the empty answer (the reference calls ``finish[]``).

The episodes of a batch of questions run in lock step: every step sends one batched request with
the prompts of the episodes still running, so a local model decodes them together. Prompts are the
paper's (the instruction of the reference notebook and exemplars from its ``prompts/*.json``,
:data:`HOTPOTQA_INSTRUCTION`, :data:`HOTPOTQA_REACT_EXEMPLAR`, ...); a fine-tuned model gets no
exemplars (Section 3.3, "Finetuning"), only ``Question: ...``.

Departures: when a thought comes without an action the reference asks the model again for the
action alone; we do the same (one re-prompt with stop ``"\\n"``). The CoT answer is read from the
``Answer:`` line, else from ``so the answer is X``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.language.completion import LanguageModel
from aicanon.reasoning.answers import majority_vote
from aicanon.reasoning.wiki_env import WikiEnvironment, parse_action

__all__ = [
    "COT_SC_SAMPLES",
    "COT_SC_TEMPERATURE",
    "FEVER_INSTRUCTION",
    "FEVER_REACT_EXEMPLAR",
    "HOTPOTQA_ACT_EXEMPLAR",
    "HOTPOTQA_COT_EXEMPLAR",
    "HOTPOTQA_INSTRUCTION",
    "HOTPOTQA_REACT_EXEMPLAR",
    "MAX_STEPS",
    "PAPER_PROMPTS",
    "Episode",
    "cot_answer",
    "cot_sc_then_react",
    "evaluate",
    "exact_match",
    "f1_score",
    "fever_accuracy",
    "normalize_answer",
    "react_then_cot_sc",
    "run_chain_of_thought",
    "run_episodes",
]

MAX_STEPS = {"hotpotqa": 7, "fever": 5}
"""Step limits of Section 3.2 (the reference notebooks' loop ``range(1, 8)`` for HotpotQA)."""
COT_SC_SAMPLES = 21
COT_SC_TEMPERATURE = 0.7
"""CoT-SC's samples and temperature (Section 3.2)."""

# -- The paper's prompts (ysymyth/ReAct @ 6bdb3a1, hotpotqa.ipynb and prompts/*.json; data) ---------
HOTPOTQA_INSTRUCTION = (
    "Solve a question answering task with interleaving Thought, Action, Observation steps. Thought can "
    "reason about the current situation, and Action can be three types: \n"
    "(1) Search[entity], which searches the exact entity on Wikipedia and returns the first paragraph if "
    "it exists. If not, it will return some similar entities to search.\n"
    "(2) Lookup[keyword], which returns the next sentence containing keyword in the current passage.\n"
    "(3) Finish[answer], which returns the answer and finishes the task.\n"
    "Here are some examples.\n"
)
"""The instruction of ``hotpotqa.ipynb`` (ReAct and Act prompts)."""
HOTPOTQA_REACT_EXEMPLAR = (
    'Question: Musician and satirist Allie Goertz wrote a song about the "The Simpsons" character '
    "Milhouse, who Matt Groening named after who?\n"
    'Thought 1: The question simplifies to "The Simpsons" character Milhouse is named after who. I only '
    "need to search Milhouse and find who it is named after.\n"
    "Action 1: Search[Milhouse]\n"
    "Observation 1: Milhouse Mussolini Van Houten is a recurring character in the Fox animated television "
    "series The Simpsons voiced by Pamela Hayden and created by Matt Groening.\n"
    'Thought 2: The paragraph does not tell who Milhouse is named after, maybe I can look up "named '
    'after".\n'
    "Action 2: Lookup[named after]\n"
    "Observation 2: (Result 1 / 1) Milhouse was named after U.S. president Richard Nixon, whose middle "
    "name was Milhous. \n"
    "Thought 3: Milhouse was named after U.S. president Richard Nixon, so the answer is Richard Nixon.\n"
    "Action 3: Finish[Richard Nixon]\n"
)
"""The second exemplar of ``prompts_naive.json["webthink_simple6"]``."""
HOTPOTQA_ACT_EXEMPLAR = (
    'Question: Musician and satirist Allie Goertz wrote a song about the "The Simpsons" character '
    "Milhouse, who Matt Groening named after who?\n"
    "Action 1: Search[Milhouse]\n"
    "Observation 1: Milhouse Mussolini Van Houten is a recurring character in the Fox animated television "
    "series The Simpsons voiced by Pamela Hayden and created by Matt Groening.\n"
    "Action 2: Lookup[named after]\n"
    "Observation 2: (Result 1 / 1) Milhouse was named after U.S. president Richard Nixon, whose middle "
    "name was Milhous. \n"
    "Action 3: Finish[Richard Nixon]\n"
)
"""The second exemplar of ``prompts_naive.json["webact_simple6"]``."""
HOTPOTQA_COT_EXEMPLAR = (
    'Question: Musician and satirist Allie Goertz wrote a song about the "The Simpsons" character '
    "Milhouse, who Matt Groening named after who?\n"
    "Thought: Let's think step by step. Milhouse was named after U.S. president Richard Nixon, so the "
    "answer is Richard Nixon.\n"
    "Answer: Richard Nixon\n"
)
"""The second exemplar of ``prompts_naive.json["cotqa_simple6"]``."""
FEVER_INSTRUCTION = (
    "Determine if there is Observation that SUPPORTS or REFUTES a Claim, or if there is NOT ENOUGH "
    "INFORMATION. \n"
)
"""The first line of ``prompts/fever.json["webthink_simple3"]``."""
FEVER_REACT_EXEMPLAR = (
    "Claim: Stranger Things is set in Bloomington, Indiana.\n"
    "Thought 1: I should search for Stranger Things, and see if it is set in Bloomington, Indiana.\n"
    "Action 1: Search[Stranger Things]\n"
    "Observation 1: Stranger Things is an American science fiction horror drama television series created "
    "by the Duffer Brothers. Set in the 1980s, primarily in the fictional town of Hawkins, Indiana, the "
    "series centers on a number of mysteries and supernatural events occurring around the town and their "
    "impact on an ensemble of child and adult characters. \n"
    'Thought 2: The observation says that it is set in a "fictional town of Hawkins, Indiana", so it is '
    "not set in Bloomington.\n"
    "Action 2: Finish[REFUTES]\n"
)
"""The second exemplar of ``prompts/fever.json["webthink_simple3"]``."""


# -- Scoring (the reference wrappers.py, i.e. the official HotpotQA evaluation) ---------------------
def normalize_answer(text: str) -> str:
    """HotpotQA's normalisation: lower-case, drop punctuation, drop a/an/the, collapse whitespace."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(prediction: str | None, truth: str) -> bool:
    """Exact match after :func:`normalize_answer` (None, no answer, counts as ``""``)."""
    return normalize_answer(prediction or "") == normalize_answer(truth)


def f1_score(prediction: str | None, truth: str) -> float:
    """HotpotQA's token F1 after normalisation (0 for a yes/no/noanswer mismatch)."""
    pred, gold = normalize_answer(prediction or ""), normalize_answer(truth)
    if (pred in ("yes", "no", "noanswer") or gold in ("yes", "no", "noanswer")) and pred != gold:
        return 0.0
    common = Counter(pred.split()) & Counter(gold.split())
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred.split()), same / len(gold.split())
    return 2 * precision * recall / (precision + recall)


def fever_accuracy(predictions: Sequence[str | None], labels: Sequence[str]) -> float:
    """Share of predictions equal to the label after normalisation (the reference FEVER wrapper)."""
    if len(predictions) != len(labels) or not labels:
        raise ValueError(
            f"predictions and labels must be non-empty and equally long, got {len(predictions)} "
            f"and {len(labels)}"
        )
    return sum(exact_match(p, y) for p, y in zip(predictions, labels, strict=True)) / len(labels)


# -- The loop ---------------------------------------------------------------------------------------
@dataclass
class Episode:
    """One question's trajectory: ``text`` (what follows the prompt), the ``answer`` given to finish
    (None if the step limit came first), ``steps`` taken and ``actions`` in order."""

    question: str
    text: str = ""
    answer: str | None = None
    steps: int = 0
    actions: list[str] = field(default_factory=list)
    invalid_actions: int = 0
    truncated: bool = False
    """Whether the episode ended because its prompt outgrew the model's context (``prompt_fits``)."""

    @property
    def finished(self) -> bool:
        return self.answer is not None


def run_episodes(
    model: LanguageModel,
    questions: Sequence[str],
    environments: Sequence[WikiEnvironment],
    *,
    mode: str = "react",
    prefix: str = "",
    question_label: str = "Question",
    max_steps: int = MAX_STEPS["hotpotqa"],
    max_tokens: int = 100,
    prompt_fits: Callable[[str], bool] | None = None,
) -> list[Episode]:
    """Run ReAct (``mode="react"``: Thought, Action, Observation) or Act (``"act"``: Action,
    Observation) for every question in its own environment, all episodes in lock step.

    The prompt of an episode is ``prefix + "<question_label>: <question>\\n" + trajectory`` then
    ``"Thought i:"`` (or ``"Action i:"``); generation stops at ``"\\nObservation i:"``. An episode whose
    next prompt does not fit (``prompt_fits(prompt)`` False: a small model's context) ends unfinished."""
    check_choice("mode", mode, ("react", "act"))
    check_int("max_steps", max_steps, 1)
    check_int("max_tokens", max_tokens, 1)
    if prompt_fits is not None and not callable(prompt_fits):
        raise TypeError(f"prompt_fits must be callable or None, got {type(prompt_fits).__name__}")
    if not isinstance(prefix, str) or not isinstance(question_label, str):
        raise TypeError("prefix and question_label must be str")
    if isinstance(questions, str) or len(questions) != len(environments):
        raise ValueError(
            f"questions and environments must be sequences of one length, got {len(questions)} and "
            f"{len(environments)}"
        )
    episodes = [Episode(q) for q in questions]
    headers = [f"{prefix}{question_label}: {q}\n" for q in questions]
    for environment in environments:
        environment.reset()
    for i in range(1, max_steps + 1):
        cue = f"Thought {i}:" if mode == "react" else f"Action {i}:"
        active = [k for k, e in enumerate(episodes) if not e.finished and not e.truncated]
        if prompt_fits is not None:
            for k in active:
                episodes[k].truncated = not prompt_fits(headers[k] + episodes[k].text + cue)
            active = [k for k in active if not episodes[k].truncated]
        if not active:
            break
        prompts = [headers[k] + episodes[k].text + cue for k in active]
        outputs = model.complete(
            prompts, max_tokens=max_tokens, temperature=0.0, stop=[f"\nObservation {i}:"]
        )
        thoughts, actions, missing = {}, {}, []
        for k, out in zip(active, outputs, strict=True):
            text = out[0].text.strip()
            if mode == "act":
                actions[k] = text.split("\n")[0].strip()
                continue
            if f"\nAction {i}:" in text:
                thought, action = text.split(f"\nAction {i}:", 1)
                thoughts[k], actions[k] = thought.strip(), action.strip().split("\n")[0].strip()
            else:  # the reference asks again for the action alone
                thoughts[k] = text.split("\n")[0].strip()
                missing.append(k)
        retry = {k: f"{headers[k]}{episodes[k].text}Thought {i}: {thoughts[k]}\nAction {i}:" for k in missing}
        for k in missing:
            if prompt_fits is not None and not prompt_fits(retry[k]):
                actions[k] = ""  # no room left to ask again: an invalid (empty) action
                del retry[k]
        if retry:
            outputs = model.complete(list(retry.values()), max_tokens=max_tokens, stop=["\n"])
            for k, out in zip(retry, outputs, strict=True):
                actions[k] = out[0].text.strip()
        for k in active:
            episode, action = episodes[k], actions[k]
            result = environments[k].step(action)
            episode.steps, episode.actions = i, episode.actions + [action]
            episode.invalid_actions += parse_action(action) is None
            observation = result.observation.replace("\n", " ").strip()
            thought = f"Thought {i}: {thoughts[k]}\n" if mode == "react" else ""
            episode.text += f"{thought}Action {i}: {action}\nObservation {i}: {observation}\n"
            if result.done:
                episode.answer = result.answer
    return episodes


_SO_THE_ANSWER = re.compile(r"so the answer is\s*(.+?)\.?\s*$", re.IGNORECASE)


def cot_answer(text: str) -> str | None:
    """The answer of a CoT completion: its ``Answer:`` line, else ``so the answer is X``; None if
    neither is there."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for line in text.split("\n"):
        if line.strip().startswith("Answer:"):
            return line.strip()[len("Answer:") :].strip()
    match = _SO_THE_ANSWER.search(text.split("\n")[0])
    return match.group(1).strip() if match else None


def run_chain_of_thought(
    model: LanguageModel,
    questions: Sequence[str],
    *,
    prefix: str = "",
    question_label: str = "Question",
    samples: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 100,
) -> list[tuple[str | None, list[str | None]]]:
    """CoT (``samples=1``, greedy) or CoT-SC (``samples=21``, temperature 0.7): for each question the
    majority answer and every sampled answer (Section 3.2)."""
    check_int("samples", samples, 1)
    check_float("temperature", temperature, 0.0, finite=True)
    if samples > 1 and temperature == 0:
        raise ValueError("temperature must be > 0 when samples > 1 (CoT-SC samples paths)")
    prompts = [f"{prefix}{question_label}: {q}\nThought:" for q in questions]
    outputs = model.complete(
        prompts,
        max_tokens=max_tokens,
        temperature=temperature,
        n=samples,
        stop=[f"\n{question_label}:", "\n\n"],
    )
    results = []
    for paths in outputs:
        answers = [cot_answer(p.text) for p in paths]
        votes = [normalize_answer(a) if a is not None else None for a in answers]
        winner, _ = majority_vote(votes)
        chosen = next((a for a, v in zip(answers, votes, strict=True) if v == winner), None)
        results.append((chosen, answers))
    return results


def _majority_share(answers: Sequence[str | None]) -> float:
    votes = [normalize_answer(a) for a in answers if a is not None]
    return Counter(votes).most_common(1)[0][1] / len(answers) if votes else 0.0


PAPER_PROMPTS = {
    ("hotpotqa", "react"): HOTPOTQA_INSTRUCTION + HOTPOTQA_REACT_EXEMPLAR,
    ("hotpotqa", "act"): HOTPOTQA_INSTRUCTION + HOTPOTQA_ACT_EXEMPLAR,
    ("hotpotqa", "cot"): HOTPOTQA_COT_EXEMPLAR,
    ("fever", "react"): FEVER_INSTRUCTION + FEVER_REACT_EXEMPLAR,
}
"""Few-shot prefixes from the paper's exemplars (one exemplar each here; the paper uses 6 for HotpotQA
and 3 for FEVER: pass a longer ``prefix`` to :func:`evaluate` for the full prompt)."""


def evaluate(
    model: LanguageModel,
    questions: Sequence[str],
    answers: Sequence[str],
    pages: dict[str, str],
    *,
    task: str = "hotpotqa",
    mode: str = "react",
    prefix: str | None = None,
    max_tokens: int = 100,
) -> dict[str, float]:
    """The paper's protocol on a user's questions and document collection with any backend: ReAct,
    Act or CoT with the paper's prompt (or ``prefix``), the task's step limit, and the task's score
    (HotpotQA: ``em`` and ``f1``; FEVER: ``accuracy``). Also ``finished``: share of episodes that
    called finish (1 for CoT)."""
    check_choice("task", task, ("hotpotqa", "fever"))
    check_choice("mode", mode, ("react", "act", "cot"))
    if len(questions) != len(answers) or not questions:
        raise ValueError(
            f"questions and answers must be non-empty and equally long, got {len(questions)} and "
            f"{len(answers)}"
        )
    label = "Question" if task == "hotpotqa" else "Claim"
    if prefix is None:
        prefix = PAPER_PROMPTS.get((task, mode), "")
    if mode == "cot":
        predicted = [
            a
            for a, _ in run_chain_of_thought(
                model, questions, prefix=prefix, question_label=label, max_tokens=max_tokens
            )
        ]
        finished = 1.0
    else:
        episodes = run_episodes(
            model,
            questions,
            [WikiEnvironment(pages) for _ in questions],
            mode=mode,
            prefix=prefix,
            question_label=label,
            max_steps=MAX_STEPS[task],
            max_tokens=max_tokens,
        )
        predicted = [e.answer for e in episodes]
        finished = sum(e.finished for e in episodes) / len(episodes)
    if task == "fever":
        return {"accuracy": fever_accuracy(predicted, answers), "finished": finished}
    return {
        "em": sum(exact_match(p, a) for p, a in zip(predicted, answers, strict=True)) / len(answers),
        "f1": sum(f1_score(p, a) for p, a in zip(predicted, answers, strict=True)) / len(answers),
        "finished": finished,
    }


def react_then_cot_sc(
    react_answers: Sequence[str | None], cot_sc: Callable[[list[int]], list[str | None]]
) -> list[str | None]:
    """ReAct -> CoT-SC (Section 3.3): the ReAct answer, or for the episodes that did not finish the
    answer of ``cot_sc(indices)`` (called once, with the indices that need it)."""
    need = [k for k, a in enumerate(react_answers) if a is None]
    answers = list(react_answers)
    for k, answer in zip(need, cot_sc(need) if need else [], strict=True):
        answers[k] = answer
    return answers


def cot_sc_then_react(
    cot_sc_samples: Sequence[Sequence[str | None]], react: Callable[[list[int]], list[str | None]]
) -> list[str | None]:
    """CoT-SC -> ReAct (Section 3.3): the CoT-SC majority answer, or where it holds fewer than half of
    the ``n`` samples the answer of ``react(indices)`` (called once)."""
    answers: list[str | None] = []
    need = []
    for k, samples in enumerate(cot_sc_samples):
        if not samples:
            raise ValueError(f"cot_sc_samples[{k}] is empty")
        votes = [normalize_answer(a) if a is not None else None for a in samples]
        winner, _ = majority_vote(votes)
        answers.append(next((a for a, v in zip(samples, votes, strict=True) if v == winner), None))
        if _majority_share(samples) < 0.5:
            need.append(k)
    for k, answer in zip(need, react(need) if need else [], strict=True):
        answers[k] = answer
    return answers
