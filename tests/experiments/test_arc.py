"""ARC's corpus baselines: the quick reproduction meets its claims (near chance on Challenge, well
above it on Easy); a corpus holding the answer key, or one of shuffled words, fails them."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("arc")

experiment = load_experiment("arc")


def claim(result, metric):
    return next(c for c in result.claims if c.metric == metric)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("arc", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert len(claimed) == 4
    for c in claimed:
        assert c.passed, f"{c.metric}: ours {c.ours:.2f} vs threshold {c.threshold}"
    assert result.metrics["chance_challenge"] == pytest.approx(25.02, abs=0.005)  # Table 6's Guess-all
    assert "scores" in result.figures
    details = result.details
    assert details["corpus"]["sources"]["arc-train"] == 3370
    assert set(details["per_grade"]) == {"IR Challenge", "PMI Challenge", "IR Easy", "PMI Easy"}
    outputs = details["language_model_outputs"]["Challenge"]
    assert outputs and outputs[0]["prompt"].startswith("Question: ") and "output" in outputs[0]


def test_ablation_a_corpus_with_the_answer_key_is_not_near_chance_on_challenge():
    cfg = make_config(
        experiment, "quick", leak_test_answers=True, corpus=("arc-train",), max_questions=300, lm_questions=0
    )
    result = reproduce("arc", cfg)
    ir = claim(result, "ir_challenge_excess")
    assert ir.passed is False and ir.ours > 40  # most leaked questions are answered


def test_ablation_a_shuffled_corpus_is_not_well_above_chance_on_easy():
    cfg = make_config(
        experiment, "quick", shuffle_corpus=True, corpus=("arc-train",), max_questions=300, lm_questions=0
    )
    result = reproduce("arc", cfg)
    assert claim(result, "ir_easy_excess").passed is False
    assert claim(result, "pmi_easy_excess").passed is False


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(
        experiment, "quick", corpus=("arc-train",), max_questions=40, lm_questions=3, lm_train_steps=3, seed=2
    )
    first, second = experiment.run(cfg), experiment.run(dataclasses.replace(cfg))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_full_config_smoke():
    cfg = make_config(
        experiment,
        "full",
        corpus=("arc-train",),
        max_questions=6,
        lm_questions=2,
        lm_train_steps=2,
        threads=1,
    )
    result = experiment.run(cfg)
    assert {"ir_challenge", "pmi_easy", "lm_challenge", "lm_easy_invalid"} <= set(result.metrics)


def test_configs_follow_the_paper():
    full, quick = experiment.Config.full(), experiment.Config.quick()
    for cfg in (full, quick):
        assert cfg.split == "test" and cfg.window == 10  # Table 6; "a 10 word window"
        assert (cfg.weighting, cfg.k1, cfg.b) == ("bm25", 1.2, 0.75)  # Elasticsearch's BM25
        assert cfg.max_questions == 0 and not cfg.leak_test_answers and not cfg.shuffle_corpus
    assert full.lm_questions >= 2376


@pytest.mark.parametrize(
    "overrides",
    [
        {"corpus": ("wikipedia",)},
        {"corpus": ()},
        {"split": "validation"},
        {"split": "train"},
        {"window": 0},
        {"b": 2.0},
        {"weighting": "lm"},
        {"max_questions": -1},
        {"confidence": 1.0},
    ],
)
def test_bad_config_is_rejected(overrides):
    with pytest.raises((ValueError, TypeError)):
        make_config(experiment, "quick", **overrides)
