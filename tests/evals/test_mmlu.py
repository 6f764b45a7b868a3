"""The MMLU harness: the paper's prompt (golden strings), answer reading, the accuracies against a
hand-checked computation and lm-evaluation-harness's formula on fixed log-probabilities, the
chance check and its failure for an answer-reading scorer, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.datasets.mmlu import MMLUQuestion
from aicanon.evals.mmlu import (
    CATEGORIES,
    CHOICE_CONTINUATIONS,
    SUBCATEGORIES,
    answer_from_generation,
    evaluate_mmlu,
    few_shot_prompt,
    fit_prompt,
    format_example,
    format_subject,
    harness_accuracies,
    report_from_predictions,
    subject_category,
)
from aicanon.language.completion import Completion, Loglikelihood

pytestmark = pytest.mark.paper("mmlu")


def _question(subject: str, text: str, answer: str) -> MMLUQuestion:
    return MMLUQuestion(subject, text, ("one", "two", "three", "four"), answer)


def test_prompt_is_the_papers_format():
    assert format_subject("high_school_us_history") == " high school us history"
    shots = [_question("anatomy", "Q1?", "B"), _question("anatomy", "Q2?", "D")]
    assert format_example(shots[0]) == "Q1?\nA. one\nB. two\nC. three\nD. four\nAnswer: B\n\n"
    prompt = few_shot_prompt(_question("anatomy", "What?", "A"), shots, k=2)
    assert prompt == (
        "The following are multiple choice questions (with answers) about  anatomy.\n\n"
        "Q1?\nA. one\nB. two\nC. three\nD. four\nAnswer: B\n\n"
        "Q2?\nA. one\nB. two\nC. three\nD. four\nAnswer: D\n\n"
        "What?\nA. one\nB. two\nC. three\nD. four\nAnswer:"
    )
    assert few_shot_prompt(_question("anatomy", "What?", "A"), shots, k=0).endswith(
        "about  anatomy.\n\nWhat?\nA. one\nB. two\nC. three\nD. four\nAnswer:"
    )


def test_examples_are_dropped_until_the_prompt_fits():
    shots = [_question("anatomy", f"Question {i}?", "A") for i in range(5)]
    question = _question("anatomy", "Last?", "C")
    full = few_shot_prompt(question, shots, 5)
    prompt, used = fit_prompt(question, shots, 5, lambda p: len(p) <= len(full) - 1)
    assert used == 4 and prompt == few_shot_prompt(question, shots, 4)
    assert fit_prompt(question, shots, 5, lambda p: False) == (few_shot_prompt(question, shots, 0), 0)
    assert fit_prompt(question, shots, 5, None) == (full, 5)


def test_categories_are_the_papers():
    assert len(SUBCATEGORIES) == 57
    counts = {c: sum(subject_category(s) == c for s in SUBCATEGORIES) for c in CATEGORIES}
    assert counts == {"STEM": 18, "humanities": 13, "social sciences": 12, "other": 14}
    assert subject_category("professional_law") == "humanities"
    assert subject_category("high_school_psychology") == "social sciences"
    assert subject_category("clinical_knowledge") == "other"


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        (" B", "B"),
        ("C. Paris", "C"),
        ("(D)", "D"),
        ("\nAnswer: A", "A"),
        ("And B", "B"),
        ("none", None),
        ("", None),
    ],
)
def test_answer_from_generation(text, letter):
    assert answer_from_generation(text) == letter


# Six questions in two subjects with fixed log-probabilities of " A".." D".
SUBJECTS = ["anatomy"] * 4 + ["philosophy"] * 2
ANSWERS = ["A", "B", "C", "D", "A", "B"]
LOGLIKELIHOODS = np.array(
    [
        [-0.1, -2.0, -3.0, -4.0],  # A: right
        [-1.0, -0.5, -3.0, -4.0],  # B: right
        [-0.2, -2.0, -1.0, -4.0],  # A: wrong (C)
        [-1.0, -1.0, -3.0, -4.0],  # tie A/B -> A (first): wrong (D)
        [-5.0, -2.0, -3.0, -0.3],  # D: wrong (A)
        [-2.0, -0.1, -3.0, -4.0],  # B: right
    ]
)


class FixedScorer:
    """A ScoringLanguageModel answering each prompt's four letters from LOGLIKELIHOODS (by question text)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table, self.calls = table, 0

    def loglikelihood(self, contexts, continuations):
        self.calls += 1
        out = []
        for context, continuation in zip(contexts, continuations, strict=True):
            question = context.rsplit("\n\n", 1)[-1].split("\n", 1)[0]
            out.append(Loglikelihood(self.table[question][CHOICE_CONTINUATIONS.index(continuation)], None))
        return out


def _fixed_evaluation(batch_size: int = 4):
    test: dict[str, list[MMLUQuestion]] = {}
    table = {}
    for i, (subject, answer) in enumerate(zip(SUBJECTS, ANSWERS, strict=True)):
        test.setdefault(subject, []).append(_question(subject, f"Question {i}?", answer))
        table[f"Question {i}?"] = LOGLIKELIHOODS[i].tolist()
    dev = {s: [_question(s, f"Dev {j}?", "A") for j in range(5)] for s in test}
    scorer = FixedScorer(table)
    return evaluate_mmlu(scorer, test, dev, batch_size=batch_size), scorer


def test_accuracies_equal_a_hand_checked_computation():
    report, scorer = _fixed_evaluation()
    assert scorer.calls == 2  # 6 questions, 4 per call
    assert [r["prediction"] for r in report.records] == ["A", "B", "A", "A", "D", "B"]
    # Hand-checked: anatomy 2/4, philosophy 1/2; anatomy is "other", philosophy "humanities".
    assert report.per_subject["anatomy"].estimate == 0.5
    assert report.per_subject["philosophy"].estimate == 0.5
    assert report.per_category["other"].estimate == 0.5 and report.per_category["humanities"].estimate == 0.5
    assert report.micro.estimate == pytest.approx(3 / 6)
    assert report.macro.estimate == pytest.approx((2 / 4 + 1 / 2) / 2)
    # Macro (mean over subjects) and micro (over questions) differ when subjects differ in size.
    unequal = report_from_predictions(["anatomy"] * 3 + ["philosophy"], list("AAAB"), list("AAAC"))
    assert unequal.micro.estimate == pytest.approx(0.75) and unequal.macro.estimate == pytest.approx(0.5)
    assert [r["loglikelihoods"] for r in report.records] == LOGLIKELIHOODS.tolist()
    assert report.records[0]["prompt"].startswith("The following are multiple choice questions")
    assert report.records[0]["shots"] == 5
    assert report.table()[0] == {
        "subject": "anatomy",
        "category": "other",
        "questions": 4,
        "correct": 2,
        **report.per_subject["anatomy"].as_dict(),
    }


@pytest.mark.parity
def test_accuracy_equals_lm_evaluation_harness_formula():
    # lm-evaluation-harness (lm_eval/api/task.py, ConfigurableTask.process_results, multiple_choice):
    #   lls, is_greedy = zip(*results); completion_len = np.array([float(len(i)) for i in choices])
    #   acc = 1.0 if np.argmax(lls) == gold else 0.0
    #   acc_norm = 1.0 if np.argmax(lls / completion_len) == gold else 0.0
    # written out here independently, per question, then averaged over questions.
    report, _ = _fixed_evaluation()
    gold = [" ABCD".index(a) - 1 for a in ANSWERS]
    acc = np.mean([1.0 if np.argmax(lls) == g else 0.0 for lls, g in zip(LOGLIKELIHOODS, gold, strict=True)])
    lengths = np.array([float(len(c)) for c in CHOICE_CONTINUATIONS])
    acc_norm = np.mean(
        [1.0 if np.argmax(lls / lengths) == g else 0.0 for lls, g in zip(LOGLIKELIHOODS, gold, strict=True)]
    )
    assert report.micro.estimate == acc == harness_accuracies(LOGLIKELIHOODS, gold)["acc"]
    assert acc_norm == harness_accuracies(LOGLIKELIHOODS, gold)["acc_norm"] == acc
    # Continuations of different lengths: acc_norm divides by the length in characters.
    scores = np.array([[-3.0, -4.0]])  # per character: -3.0 vs -1.0
    assert harness_accuracies(scores, [1], ["x", "long"]) == {"acc": 0.0, "acc_norm": 1.0}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCD"), st.sampled_from("ABCD")), min_size=1, max_size=40))
def test_micro_accuracy_and_interval_are_wilsons(pairs):
    answers, predictions = zip(*pairs, strict=True)
    report = report_from_predictions(["anatomy"] * len(pairs), list(answers), list(predictions))
    correct = sum(a == p for a, p in pairs)
    assert report.micro.estimate == correct / len(pairs)
    assert report.micro.low <= report.micro.estimate <= report.micro.high
    assert report.per_subject["anatomy"] == report.micro


def test_chance_is_inside_the_interval_for_guessing_and_outside_for_an_oracle():
    rng = np.random.default_rng(0)
    answers = list(rng.choice(list("ABCD"), 400))
    guessing = report_from_predictions(["anatomy"] * 400, answers, list(rng.choice(list("ABCD"), 400)))
    assert guessing.chance_in_interval and abs(guessing.micro.estimate - 0.25) < 0.06
    oracle = report_from_predictions(["anatomy"] * 400, answers, answers)
    assert oracle.micro.estimate == 1.0 and not oracle.chance_in_interval
    half = report_from_predictions(["anatomy"] * 400, answers, answers[:200] + [None] * 200)
    assert half.micro.estimate == 0.5 and not half.chance_in_interval
    assert half.to_details()["chance_in_interval"] is False


class Generator:
    """A LanguageModel that 'generates' a fixed text for every prompt."""

    def __init__(self, text: str) -> None:
        self.text = text

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        assert temperature == 0.0
        return [[Completion(self.text, "length")] for _ in prompts]


def test_generation_scoring_reads_the_first_letter():
    test = {"anatomy": [_question("anatomy", "Q?", "C"), _question("anatomy", "R?", "A")]}
    dev = {"anatomy": [_question("anatomy", "D?", "B")] * 5}
    report = evaluate_mmlu(Generator(" C. three"), test, dev, method="generate")
    assert [r["prediction"] for r in report.records] == ["C", "C"]
    assert report.micro.estimate == 0.5 and report.records[0]["generation"] == " C. three"
    silent = evaluate_mmlu(Generator("I do not know"), test, dev, method="generate")
    assert silent.micro.estimate == 0.0 and silent.records[0]["prediction"] is None


def test_bad_input_is_rejected():
    test = {"anatomy": [_question("anatomy", "Q?", "C")]}
    dev = {"anatomy": [_question("anatomy", "D?", "B")] * 5}
    with pytest.raises(ValueError, match="method must be one of"):
        evaluate_mmlu(Generator("A"), test, dev, method="sample")
    with pytest.raises(TypeError, match="loglikelihood"):
        evaluate_mmlu(Generator("A"), test, dev)
    with pytest.raises(ValueError, match="fewer than shots=5"):
        evaluate_mmlu(Generator("A"), test, {"anatomy": dev["anatomy"][:2]}, method="generate")
    with pytest.raises(ValueError, match="57 MMLU subjects"):
        evaluate_mmlu(Generator("A"), {"cooking": test["anatomy"]}, dev, method="generate")
    with pytest.raises(ValueError, match="is a question of 'anatomy'"):
        evaluate_mmlu(
            Generator("A"), {"virology": test["anatomy"]}, {"virology": dev["anatomy"]}, method="generate"
        )
    with pytest.raises(ValueError, match="batch_size must be"):
        evaluate_mmlu(Generator("A"), test, dev, method="generate", batch_size=0)
    with pytest.raises(ValueError, match="k must be <= the 1 dev"):
        few_shot_prompt(test["anatomy"][0], dev["anatomy"][:1], k=2)
    with pytest.raises(ValueError, match="equally long"):
        report_from_predictions(["anatomy"], ["A", "B"], ["A"])
    with pytest.raises(ValueError, match="answers must be letters"):
        report_from_predictions(["anatomy"], ["E"], ["A"])
    with pytest.raises(ValueError, match=r"loglikelihoods must be \[questions, 4\]"):
        harness_accuracies(np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="gold indices must be in"):
        harness_accuracies(np.zeros((1, 4)), [4])
    with pytest.raises(TypeError, match="text must be a str"):
        answer_from_generation(None)
    assert math.isclose(report_from_predictions(["anatomy"], ["A"], ["A"]).micro.estimate, 1.0)
