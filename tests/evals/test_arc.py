"""aicanon.evals.arc: the paper's scoring rule (golden values, ties), BM25 against a hand computation
and a naive scan, TF-IDF against scikit-learn, the IR and PMI solvers on corpora small enough to
check by hand, the language-model harness with a scripted backend, and bad input."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicanon.datasets.arc import ArcQuestion, load_arc
from aicanon.evals.arc import (
    IRSolver,
    PMISolver,
    SentenceIndex,
    content_words,
    evaluate_language_model,
    evaluate_solver,
    format_prompt,
    guess_all_score,
    ngrams,
    parse_label,
    question_points,
    score_interval,
    stem,
    tied_best,
)
from aicanon.evals.intervals import wilson_interval
from aicanon.language.completion import Completion

pytestmark = pytest.mark.paper("arc")


def question(stem_text, choices, key="A", labels=None, identifier="q"):
    labels = labels or tuple("ABCDE"[: len(choices)])
    return ArcQuestion(identifier, stem_text, tuple(labels), tuple(choices), key, "Challenge", 8)


# --- scoring ---------------------------------------------------------------------------------


def test_points_follow_the_papers_rubric():
    assert question_points(["C"], "C") == 1.0
    assert question_points(["A"], "C") == 0.0
    assert question_points(["A", "C"], "C") == 0.5  # a 2-way tie including the answer
    assert question_points(["A", "B", "C", "D"], "C") == 0.25
    assert question_points(["A", "B"], "C") == 0.0  # a tie without the answer
    assert question_points([], "C") == 0.0  # no answer


@given(st.sets(st.sampled_from("ABCDE"), min_size=1), st.sampled_from("ABCDE"))
def test_points_of_a_tie_are_one_over_its_size_or_zero(chosen, key):
    points = question_points(sorted(chosen), key)
    assert points == (1 / len(chosen) if key in chosen else 0.0)


def test_guess_all_is_the_mean_of_one_over_k():
    qs = [question("s", ["a", "b", "c"]), question("s", ["a", "b", "c", "d"]), question("s", list("abcde"))]
    assert guess_all_score(qs) == pytest.approx((1 / 3 + 1 / 4 + 1 / 5) / 3)


@pytest.mark.parametrize("subset", ["Challenge", "Easy"])
def test_guess_all_on_the_test_sets_is_the_papers_25_02(subset):
    # Table 6: Guess-all ("random") scores 25.02 % on both test sets.
    assert round(100 * guess_all_score(load_arc(subset, "test")), 2) == 25.02


def test_tied_best_returns_every_top_label():
    assert tied_best([0.1, 0.7, 0.7, 0.2], "ABCD") == ["B", "C"]
    assert tied_best([0.0, 0.0, 0.0], "ABC") == ["A", "B", "C"]
    assert tied_best([1.0, 1.0 + 1e-12, 0.5], "ABC") == ["A", "B"]
    assert tied_best([3.0, 1.0], ["1", "2"]) == ["1"]


def test_score_interval_is_wilson_without_ties_and_bootstrap_with_them():
    binary = [1, 0, 1, 1, 0, 0, 1, 0]
    assert score_interval(binary) == wilson_interval(4, 8)
    partial = [1, 0, 0.5, 0.25, 1, 0]
    interval = score_interval(partial, seed=1)
    assert interval.estimate == pytest.approx(np.mean(partial))
    assert 0 <= interval.low < interval.estimate < interval.high <= 1
    assert score_interval(partial, seed=1) == interval  # seeded


# --- text ------------------------------------------------------------------------------------


def test_tokens_stems_and_ngrams():
    assert stem("plants") == "plant" and stem("bodies") == "body" and stem("gas") == "gas"
    assert stem("grass") == "grass" and stem("nucleus") == "nucleus"
    assert content_words("Which property of AIR does a barometer measure?") == [
        "property",
        "air",
        "barometer",
        "measure",
    ]
    assert ngrams(["air", "pressure", "barometer"]) == [
        "air",
        "pressure",
        "barometer",
        "air pressure",
        "pressure barometer",
        "air pressure barometer",
        "air * barometer",
    ]
    assert ngrams(["air", "air"], orders=("1",)) == ["air"]


# --- retrieval -------------------------------------------------------------------------------

CORPUS = ["A barometer measures air pressure.", "Air is a gas.", "A thermometer measures temperature."]


def naive_bm25(corpus, query, k1=1.2, b=0.75):
    """The BM25 formula of the module docstring, one sentence and one query token at a time."""
    docs = [content_words(s) for s in corpus]
    n, average = len(docs), sum(map(len, docs)) / len(docs)
    out = []
    for doc in docs:
        total = 0.0
        for term in content_words(query):
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                total += idf * tf / (tf + k1 * (1 - b + b * len(doc) / average))
        out.append(total)
    return out


def test_bm25_by_hand():
    index = SentenceIndex(CORPUS)
    # "air pressure" against sentence 0 (4 terms, average 3): K = 1.2 * (0.25 + 0.75 * 4/3) = 1.5;
    # idf(air, df 2) = ln 1.6, idf(pressure, df 1) = ln(1 + 2.5/1.5); each tf = 1 gives 1/(1 + 1.5).
    expected = (math.log(1.6) + math.log(1 + 2.5 / 1.5)) / 2.5
    assert index.scores(["air pressure"])[0, 0] == pytest.approx(expected, abs=1e-12)
    assert index.scores(["air pressure"])[0, 2] == 0.0


@pytest.mark.parametrize(
    "query", ["air pressure", "What does a thermometer measure? temperature", "gas gas air", "moon"]
)
def test_bm25_matches_a_naive_scan(query):
    index = SentenceIndex(CORPUS)
    np.testing.assert_allclose(index.scores([query]).toarray()[0], naive_bm25(CORPUS, query), atol=1e-12)


@pytest.mark.parity
def test_tfidf_cosine_matches_scikit_learn():
    from sklearn.feature_extraction.text import TfidfVectorizer

    corpus = [f"{q.stem} {q.answer}" for q in load_arc("Easy", "dev")[:300]]
    queries = [f"{q.stem} {c}" for q in load_arc("Challenge", "dev")[:20] for c in q.choices]
    reference = TfidfVectorizer(analyzer=content_words).fit(corpus)
    expected = (reference.transform(queries) @ reference.transform(corpus).T).toarray()
    ours = SentenceIndex(corpus, weighting="tfidf").scores(queries).toarray()
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_ir_solver_picks_the_stated_answer():
    q = question(
        "Which property of air does a barometer measure?",
        ["speed", "pressure", "humidity", "temperature"],
        "B",
    )
    evaluation = evaluate_solver(IRSolver(SentenceIndex(CORPUS)), [q])
    assert evaluation.chosen == [["B"]] and evaluation.score == 1.0


def test_ir_needs_a_sentence_overlapping_both_question_and_answer():
    # "temperature" appears only in a sentence sharing no word with the question, so it cannot count;
    # no option has a qualifying sentence: a 4-way tie, 1/4 point.
    index = SentenceIndex(["Temperature rises.", "The moon orbits."])
    q = question("Which gas do plants release?", ["temperature", "oxygen", "moon", "iron"], "B")
    scores = IRSolver(index).option_scores([q])[0]
    assert scores.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert evaluate_solver(IRSolver(index), [q]).points.tolist() == [0.25]


def test_pmi_by_hand():
    # Two sentences; "air" and "pressure" co-occur once, "air" and "gas" once.
    solver = PMISolver(["air pressure barometer", "air gas"], window=10, orders=("1",))
    # N = 5 content tokens; M = 3*2 + 2*1 = 8 ordered position pairs within the window;
    # c(air) = 2, c(pressure) = c(gas) = 1, c(air, pressure) = 1:
    # PMI = ln( (1/M) / ((2/N) (1/N)) ) = ln(25 / 16).
    assert solver.window_pairs == 8 and solver.total == 5
    q = question("air", ["pressure", "gas", "moon"], "A")
    scores = solver.option_scores([q])[0]
    assert scores[0] == pytest.approx(math.log(25 / 16))
    assert scores[1] == pytest.approx(math.log(25 / 16))
    assert scores[2] == 0.0  # "moon" is not in the corpus: no pair to average


def test_pmi_windows_do_not_cross_sentences_or_exceed_the_window():
    solver = PMISolver(["alpha beta", "gamma delta epsilon zeta"], window=2, orders=("1",))
    ids = [solver.vocabulary[w] for w in ("alpha", "beta", "gamma", "zeta")]
    counts = solver.cooccurrences(ids, ids).toarray()
    assert counts[0, 1] == 1 and counts[1, 0] == 1  # adjacent, same sentence
    assert counts[1, 2] == 0  # "beta" ends sentence 0, "gamma" starts sentence 1
    assert counts[2, 3] == 0  # three words apart, window 2
    assert counts[0, 0] == 0  # an occurrence does not co-occur with itself


def test_pmi_solver_prefers_the_associated_answer():
    corpus = ["barometer measures air pressure"] * 3 + ["humidity is water vapour", "speed of a car"]
    q = question("What does a barometer measure?", ["speed", "pressure", "humidity"], "B")
    evaluation = evaluate_solver(PMISolver(corpus), [q])
    assert evaluation.chosen == [["B"]]


# --- language models -------------------------------------------------------------------------


class ScriptedModel:
    """A LanguageModel whose answers are fixed in advance (the protocol, no network)."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        self.calls.append((list(prompts), max_tokens, temperature, stop))
        return [[Completion(self.answers.pop(0), "stop")] for _ in prompts]


@pytest.mark.parametrize(
    ("output", "label"),
    [(" B", "B"), ("(C) water", "C"), ("The answer is D.", "D"), ("Answer", None), ("", None), (" 2", None)],
)
def test_parse_label(output, label):
    assert parse_label(output, ["A", "B", "C", "D"]) == label


def test_parse_label_with_numbered_options():
    assert parse_label(" 3", ["1", "2", "3", "4"]) == "3"


def test_language_model_harness_scores_generated_labels_and_keeps_outputs():
    qs = [
        question("Q1?", ["a", "b"], "A", identifier="1"),
        question("Q2?", ["a", "b"], "B", identifier="2"),
        question("Q3?", ["a", "b"], "A", identifier="3"),
    ]
    model = ScriptedModel([" A", " A", "no idea"])
    evaluation = evaluate_language_model(model, qs, batch_size=2)
    assert evaluation.points.tolist() == [1.0, 0.0, 0.0]
    assert evaluation.outputs == [" A", " A", "no idea"] and evaluation.invalid == 1
    assert evaluation.prompts[0] == "Question: Q1?\nA. a\nB. b\nAnswer:"
    assert [len(call[0]) for call in model.calls] == [2, 1]
    assert all(call[2] == 0.0 and call[3] == ["\n"] for call in model.calls)  # greedy, one line
    assert evaluation.summary()["invalid"] == 1
    grade = evaluation.by_grade(qs)["8"]
    assert grade["n"] == 3 and grade["score"] == pytest.approx(1 / 3)
    reference = wilson_interval(1, 3)
    assert (grade["low"], grade["high"]) == pytest.approx((reference.low, reference.high))
    with pytest.raises(ValueError, match="evaluated questions"):
        evaluation.by_grade(qs[:2])


def test_language_model_harness_over_http_with_a_real_server():
    """Any backend: an OpenAI-compatible server on 127.0.0.1 (real HTTP) that answers every prompt
    with the label of its longest option, through our HTTP client."""
    from fastapi import FastAPI, Request

    from aicanon.language.http_backend import OpenAICompatibleLanguageModel
    from aicanon.language.server import BackgroundServer

    app = FastAPI()
    seen = []

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await request.json()
        seen.append(body)
        texts = []
        for prompt in body["prompt"]:
            options = [line.split(". ", 1) for line in prompt.splitlines() if line[1:3] == ". "]
            texts.append(" " + max(options, key=lambda option: len(option[1]))[0])
        return {
            "choices": [
                {"index": i, "text": t, "finish_reason": "stop", "logprobs": None}
                for i, t in enumerate(texts)
            ]
        }

    qs = [
        question("Which is a gas?", ["rock", "water vapour", "ice"], "B", identifier="1"),
        question("Which is a metal?", ["iron", "wood", "glass"], "A", identifier="2"),
    ]
    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "scripted", api_key_env=None)
        evaluation = evaluate_language_model(client, qs)
    assert evaluation.chosen == [["B"], ["C"]] and evaluation.points.tolist() == [1.0, 0.0]
    assert evaluation.outputs == [" B", " C"]
    assert seen[0]["temperature"] == 0.0 and seen[0]["stop"] == ["\n"] and seen[0]["max_tokens"] == 4


# --- bad input -------------------------------------------------------------------------------


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="chosen"):
        question_points("A", "A")
    with pytest.raises(ValueError, match="repeat"):
        question_points(["A", "A"], "A")
    with pytest.raises(ValueError, match="scores"):
        tied_best([1.0, 2.0], "ABC")
    with pytest.raises(ValueError, match="finite"):
        tied_best([1.0, float("nan")], "AB")
    with pytest.raises(ValueError, match="points"):
        score_interval([0.5, 1.5])
    with pytest.raises(ValueError, match="sentences"):
        SentenceIndex([])
    with pytest.raises(TypeError, match="sentences"):
        SentenceIndex("one sentence")
    with pytest.raises(ValueError, match="weighting"):
        SentenceIndex(CORPUS, weighting="lm")
    with pytest.raises(ValueError, match="b must be"):
        SentenceIndex(CORPUS, b=1.5)
    with pytest.raises(TypeError, match="index"):
        IRSolver(CORPUS)
    with pytest.raises(ValueError, match="window"):
        PMISolver(CORPUS, window=0)
    with pytest.raises(ValueError, match="order"):
        PMISolver(CORPUS, orders=("4",))
    with pytest.raises(ValueError, match="questions must not be empty"):
        evaluate_solver(IRSolver(SentenceIndex(CORPUS)), [])
    with pytest.raises(TypeError, match=r"questions\[0\]"):
        evaluate_solver(IRSolver(SentenceIndex(CORPUS)), ["a question"])
    with pytest.raises(TypeError, match="LanguageModel"):
        evaluate_language_model(object(), [question("Q?", ["a", "b"])])
    with pytest.raises(ValueError, match="template"):
        format_prompt(question("Q?", ["a", "b"]), "no placeholders")
    with pytest.raises(TypeError, match="output"):
        parse_label(None, "AB")
