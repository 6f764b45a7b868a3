"""aicanon.evals.judge: the published prompts filled, the rating/verdict parsing, the swap and
Table 2's classes, Table 5's agreement, the judge run end to end over a real local HTTP server."""

from __future__ import annotations

import numpy as np
import pytest

from aicanon.datasets.mt_bench import (
    MTBenchQuestion,
    load_judge_prompts,
    load_model_answers,
    load_questions,
    load_reference_answers,
)
from aicanon.evals.judge import (
    RANDOM_AGREEMENT,
    HeuristicJudge,
    agreement,
    combine_swapped,
    join_system_prompt,
    judge_pairwise,
    judge_single,
    mt_bench_scores,
    pairwise_request,
    parse_rating,
    parse_verdict,
    position_bias_table,
    position_outcome,
    select_judge_prompt,
    self_agreement,
    single_request,
    single_to_pairwise,
)
from aicanon.language.completion import LanguageModel
from aicanon.language.http_backend import OpenAICompatibleLanguageModel
from aicanon.language.server import BackgroundServer, create_app

pytestmark = pytest.mark.paper("llm-judge-arena")


@pytest.fixture(scope="module")
def prompts():
    return load_judge_prompts()


@pytest.fixture(scope="module")
def data():
    questions = load_questions()
    return (
        questions,
        load_reference_answers(),
        {m: load_model_answers(m) for m in ("llama-2-chat7b", "gpt-4o")},
    )


@pytest.mark.parametrize(
    "text, rating",
    [
        ("Good answer. Rating: [[8]]", 8.0),
        ("Rating: [[7.5]]", 7.5),
        ("first [[3]] then [[9]]", 3.0),
        ("backup format: Rating: [6]", 6.0),
        ("[4] and [[9]]", 9.0),  # the double brackets are searched first
        ("no rating here", None),
        ("Rating: [[ten]]", None),
    ],
)
def test_parse_rating(text, rating):
    assert parse_rating(text) == rating


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("... [[A]]", "A"),
        ("Final verdict: [[B]]", "B"),
        ("[[C]]", "tie"),
        ("[[B]] on reflection [[A]]", "A"),  # FastChat checks [[A]] first
        ("A is better", "error"),
        ("[A]", "error"),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_combine_swapped_is_conservative():
    # verdict: model_1 shown first; swapped_verdict: model_2 shown first.
    assert combine_swapped("A", "B", "x", "y") == "x"
    assert combine_swapped("B", "A", "x", "y") == "y"
    for first, second in [("A", "A"), ("B", "B"), ("A", "tie"), ("tie", "B"), ("tie", "tie"), ("A", "error")]:
        assert combine_swapped(first, second, "x", "y") == "tie"


def test_position_outcome_classes_and_table():
    cases = {
        ("A", "B"): "consistent",
        ("B", "A"): "consistent",
        ("tie", "tie"): "consistent",
        ("A", "A"): "biased_first",
        ("A", "tie"): "biased_first",
        ("tie", "A"): "biased_first",
        ("B", "B"): "biased_second",
        ("tie", "B"): "biased_second",
        ("error", "A"): "error",
        ("B", "error"): "error",
    }
    for (first, second), outcome in cases.items():
        assert position_outcome(first, second) == outcome
    table = position_bias_table(list(cases.values()))
    assert table == {"consistent": 0.3, "biased_first": 0.3, "biased_second": 0.2, "error": 0.2}


def test_prompt_selection_follows_fastchat(prompts):
    assert select_judge_prompt(prompts, "single", "writing", 1).name == "single-v1"
    assert select_judge_prompt(prompts, "single", "math", 2).name == "single-math-v1-multi-turn"
    assert select_judge_prompt(prompts, "pairwise", "coding", 1).name == "pair-math-v1"
    assert select_judge_prompt(prompts, "pairwise", "reasoning", 2).name == "pair-math-v1-multi-turn"
    assert select_judge_prompt(prompts, "pairwise", "stem", 2).name == "pair-v2-multi-turn"


def test_single_request_fills_the_published_template(prompts):
    question = MTBenchQuestion(1, "math", ("What is 2+2?", "And 3+3?"))
    request = single_request(prompts["single-math-v1"], question, ("4", "6"), 1, ("Four.", "Six."))
    assert request.system == "You are a helpful assistant."
    assert request.user.endswith(
        "[Question]\nWhat is 2+2?\n\n"
        "[The Start of Reference Answer]\nFour.\n[The End of Reference Answer]\n\n"
        "[The Start of Assistant's Answer]\n4\n[The End of Assistant's Answer]"
    )
    multi = single_request(prompts["single-v1-multi-turn"], question, ("4", "6"), 2)
    assert multi.user == (
        "<|The Start of Assistant A's Conversation with User|>\n\n"
        "### User:\nWhat is 2+2?\n\n### Assistant A:\n4\n\n### User:\nAnd 3+3?\n\n### Assistant A:\n6\n\n"
        "<|The End of Assistant A's Conversation with User|>"
    )
    assert join_system_prompt(multi.system, multi.user) == multi.system + "\n\n" + multi.user


def test_pairwise_request_shows_answer_a_first(prompts):
    question = MTBenchQuestion(1, "writing", ("Q1", "Q2"))
    request = pairwise_request(prompts["pair-v2"], question, ("first", "x"), ("second", "y"))
    assert request.user == (
        "[User Question]\nQ1\n\n[The Start of Assistant A's Answer]\nfirst\n[The End of Assistant A's Answer]"
        "\n\n[The Start of Assistant B's Answer]\nsecond\n[The End of Assistant B's Answer]"
    )
    turn_two = pairwise_request(
        prompts["pair-math-v1-multi-turn"], question, ("a1", "a2"), ("b1", "b2"), 2, ("r1", "r2")
    )
    assert turn_two.user.index("a2") < turn_two.user.index("b2")
    assert "### Reference answer:\nr2" in turn_two.user


def test_agreement_hand_example():
    judge = {"q1": ["x"], "q2": ["tie"], "q3": ["y"], "q4": ["x"]}
    humans = {"q1": ["x", "y"], "q2": ["tie (bothbad)"], "q3": ["y", "tie"], "q5": ["x"]}
    # S1: q1 x/x agree, x/y not; q2 tie/tie agree; q3 y/y agree, y/tie not: 3 of 5.
    assert agreement(judge, humans, include_ties=True) == (3, 5)
    # S2: drop pairs with a tie: q1 (2 pairs), q3 y/y: 2 of 3.
    assert agreement(judge, humans, include_ties=False) == (2, 3)
    # Human vs human: pairs of distinct votes on one key: q1 x/y, q3 y/tie.
    assert self_agreement(humans, include_ties=True) == (0, 2)
    assert self_agreement({"q": ["x", "x", "y"]}) == (1, 3)


def test_random_judges_agree_at_table_5s_r():
    rng = np.random.default_rng(0)
    outcomes = np.array(["x", "y", "tie"])
    first = {i: [str(v)] for i, v in enumerate(rng.choice(outcomes, 30_000))}
    second = {i: [str(v)] for i, v in enumerate(rng.choice(outcomes, 30_000))}
    for ties in (True, False):
        agree, total = agreement(first, second, include_ties=ties)
        assert agree / total == pytest.approx(RANDOM_AGREEMENT[ties], abs=0.01)


def test_single_to_pairwise():
    assert single_to_pairwise(8, 6, "x", "y") == "x"
    assert single_to_pairwise(3, 6, "x", "y") == "y"
    assert single_to_pairwise(5, 5, "x", "y") == "tie"


def test_heuristic_judge_known_behaviour(prompts):
    judge = HeuristicJudge(length_cap=10, tie_margin=0.05)
    assert isinstance(judge, LanguageModel)
    assert judge.score("one two three four five") == 0.5
    assert judge.score("the answer is 42", reference="42 is it") == pytest.approx(2 / 3)
    question = MTBenchQuestion(1, "writing", ("Q1", "Q2"))
    long, short = ("word " * 10, "x"), ("word " * 2, "y")
    text = join_system_prompt(*_parts(single_request(prompts["single-v1"], question, long)))
    assert parse_rating(judge.judge(text)) == 10.0
    pair = join_system_prompt(*_parts(pairwise_request(prompts["pair-v2"], question, long, short)))
    swapped = join_system_prompt(*_parts(pairwise_request(prompts["pair-v2"], question, short, long)))
    assert (parse_verdict(judge.judge(pair)), parse_verdict(judge.judge(swapped))) == ("A", "B")
    # A position bias up to 0.9 apart: close pairs go to the answer shown first, in both orders.
    biased = HeuristicJudge(length_cap=10, tie_margin=0.05, position_bias_margin=0.9)
    assert (parse_verdict(biased.judge(pair)), parse_verdict(biased.judge(swapped))) == ("A", "A")
    assert parse_verdict(judge.judge("no answers in here")) == "error"


def _parts(request):
    return request.system, request.user


def test_judge_runs_over_a_real_http_server_as_in_process(prompts, data):
    questions, references, answers = data
    subset = [
        q for q in questions if q.question_id in (81, 101, 111, 121, 131)
    ]  # writing, reasoning, math, coding, ...
    judge = HeuristicJudge(position_bias_margin=0.05)
    with BackgroundServer(create_app(judge, "judge")) as server:
        with OpenAICompatibleLanguageModel(
            server.base_url, "judge", api_key_env=None, logprobs=False
        ) as client:
            remote_single = judge_single(client, prompts, subset, answers["gpt-4o"], references)
            remote_pairs = judge_pairwise(
                client,
                prompts,
                subset,
                answers["llama-2-chat7b"],
                answers["gpt-4o"],
                references,
                batch_size=3,
            )
    local_single = judge_single(judge, prompts, subset, answers["gpt-4o"], references)
    local_pairs = judge_pairwise(
        judge, prompts, subset, answers["llama-2-chat7b"], answers["gpt-4o"], references
    )
    assert remote_single == local_single and remote_pairs == local_pairs
    assert len(local_single) == 10 and all(j.rating is not None for j in local_single)
    assert {j.prompt_name for j in local_single if j.category == "math"} == {
        "single-math-v1",
        "single-math-v1-multi-turn",
    }
    assert all(
        "[The Start of Reference Answer]" in j.prompt
        for j in local_single
        if j.prompt_name == "single-math-v1"
    )
    assert len(local_pairs) == 10 and all(
        len(j.judgments) == 2 and j.position is not None for j in local_pairs
    )
    for j in local_pairs:  # the second prompt shows model_2's answer first
        assert j.winner == combine_swapped(*j.verdicts, j.model_1, j.model_2)
    scores = mt_bench_scores(local_single)
    assert scores["gpt-4o"] == pytest.approx(np.mean([j.rating for j in local_single]))


def test_swap_removes_position_wins(prompts, data):
    questions, references, answers = data
    biased = HeuristicJudge(position_bias_margin=0.2)
    unbiased = HeuristicJudge()
    args = (prompts, questions[:20], answers["llama-2-chat7b"], answers["gpt-4o"], references)
    swapped = judge_pairwise(biased, *args)
    one_order = judge_pairwise(biased, *args, swap=False)
    truth = judge_pairwise(unbiased, *args, swap=False)
    votes = lambda js: {(j.question_id, j.turn): [j.winner] for j in js}  # noqa: E731
    agree, total = agreement(votes(swapped), votes(truth), include_ties=False)
    assert agree == total > 0  # every win that survives the swap is the unbiased judge's win
    agree, total = agreement(votes(one_order), votes(truth), include_ties=False)
    assert agree < total  # the position bias shows through in one order
    assert all(j.position is None and len(j.judgments) == 1 for j in one_order)


def test_bad_input(prompts, data):
    questions, references, answers = data
    with pytest.raises(TypeError, match="judgment must be a str"):
        parse_rating(8)
    with pytest.raises(ValueError, match="verdict"):
        combine_swapped("D", "A", "x", "y")
    with pytest.raises(ValueError, match="kind"):
        select_judge_prompt(prompts, "triple", "math", 1)
    with pytest.raises(ValueError, match="turn"):
        select_judge_prompt(prompts, "single", "math", 3)
    question = MTBenchQuestion(1, "math", ("Q1", "Q2"))
    with pytest.raises(ValueError, match="needs the reference answer"):
        single_request(prompts["single-math-v1"], question, ("a", "b"))
    with pytest.raises(ValueError, match="single-answer judge prompt"):
        single_request(prompts["pair-v2"], question, ("a", "b"))
    with pytest.raises(ValueError, match="answer_b must hold at least 2"):
        pairwise_request(prompts["pair-v2-multi-turn"], question, ("a", "b"), ("c",), 2)
    with pytest.raises(TypeError, match="judge must be a LanguageModel"):
        judge_single(object(), prompts, questions, answers["gpt-4o"], references)
    with pytest.raises(ValueError, match="needs a reference answer"):
        judge_single(HeuristicJudge(), prompts, questions, answers["gpt-4o"], None)
    with pytest.raises(ValueError, match="two models"):
        judge_pairwise(HeuristicJudge(), prompts, questions, answers["gpt-4o"], answers["gpt-4o"], references)
    with pytest.raises(ValueError, match="turns"):
        judge_single(HeuristicJudge(), prompts, questions, answers["gpt-4o"], references, turns=(3,))
    with pytest.raises(TypeError, match="votes_1"):
        agreement([["x"]], {})
    with pytest.raises(ValueError, match="position_bias_margin"):
        HeuristicJudge(position_bias_margin=2.0)
