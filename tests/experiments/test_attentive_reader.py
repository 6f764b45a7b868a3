"""The Attentive Reader's experiment: the cloze set and its baselines meet the quick claims (the
readers' orderings are claimed at full scale only); the untrained reader stays at chance, below the
baselines; a summary is never in its document; seeds repeat; configs follow the paper."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("attentive-reader")

experiment = load_experiment("attentive-reader")

TINY = dict(
    train_examples=64,
    test_examples=48,
    embedding_size=8,
    hidden_size=8,
    attention_size=8,
    batch_size=16,
    seeds=1,
)


def test_quick_reproduction_checks_the_cloze_set_and_states_the_reader_gap():
    cfg = make_config(experiment, "quick")
    result = reproduce("attentive-reader", cfg)
    assert len(result.per_seed) == cfg.seeds == 1
    claims = {c.metric: c for c in result.claims}
    # The cloze set is informative: the frequency baseline is well above chance.
    assert claims["maximum_frequency_minus_chance"].passed
    # The paper's ordering (Attentive > maximum frequency) is claimed at quick scale as a target; it is
    # a stated gap today (the reader stays near chance within the CPU budget), so it is not asserted
    # here either way: `aicanon reproduce` reports it as failing.
    assert claims["attentive_minus_maximum_frequency"].threshold == 0.0
    assert {"attentive_accuracy", "attentive_minus_exclusive_frequency", "chance_accuracy"} <= set(
        result.metrics
    )
    others = [
        c for c in result.claims if c.metric.startswith("attentive_minus") and "maximum" not in c.metric
    ]
    assert others and all(c.threshold is None for c in others)
    assert "training_loss" in result.figures


def test_untrained_reader_is_at_chance_below_the_baselines():
    cfg = make_config(experiment, "quick", train=False, seeds=1)
    result = reproduce("attentive-reader", cfg)
    metrics = result.metrics
    # Untrained, the reader guesses among about 4.3 candidates (chance about 33 %), below maximum
    # frequency (about 43 %).
    assert abs(metrics["attentive_accuracy"] - metrics["chance_accuracy"]) < 5.0
    assert metrics["attentive_minus_maximum_frequency"] < -4.0
    assert any("untrained" in note for note in result.notes)


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", readers=("attentive",), **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=5))
    second = experiment.run(dataclasses.replace(cfg, seed=5))
    assert first.metrics == second.metrics
    assert first.details == second.details


def test_killed_training_resumes_to_the_uninterrupted_run(monkeypatch, tmp_path):
    # Two readers of 3 epochs, a checkpoint after every epoch, dropout on; killed as the second reader
    # starts its second epoch: the first reader is restored (not retrained), the second resumes after
    # its first epoch with the data order's shuffler, Adam and the RNGs, and every metric equals the
    # uninterrupted run's. Calls to ``batches``: True for a training epoch, False for a test pass.
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(experiment, "quick", readers=("attentive", "uniform"), epochs=3, dropout=0.3, **TINY)
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=1)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment,
        "batches",
        lambda: experiment.run(cfg),
        kill_at=4 + 2,
        record=lambda examples, vocabulary, cfg, rng: rng is not None,
    )
    assert calls == [False, True, True, False]
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    assert not any((tmp_path / "_checkpoints" / "attentive-reader").iterdir())
    assert experiment.Config.full().checkpoint_every == 1


def test_full_config_runs_every_reader_with_tiny_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # the full config checkpoints under the results
    cfg = make_config(experiment, "full", epochs=1, **TINY)
    result = experiment.run(cfg)
    for name in ("attentive", "deep_lstm", "impatient", "uniform"):
        assert 0.0 <= result.metrics[f"{name}_accuracy"] <= 100.0
    assert {
        "attentive_minus_exclusive_frequency",
        "attentive_minus_deep_lstm",
        "attentive_minus_uniform",
    } <= set(result.metrics)


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.readers == ("attentive", "deep_lstm", "impatient", "uniform")
    assert (full.train_examples, full.test_examples) == (0, 0)  # every query of both files
    assert (full.optimizer, full.hidden_size, full.deep_layers) == ("rmsprop", 256, 2)
    assert (full.max_document_tokens, full.num_entity_ids) == (120, 48)
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 1 and quick.readers == ("attentive",)
    assert quick.train_file != quick.test_file


@pytest.mark.parametrize(
    "override, message",
    [
        ({"readers": ("bogus",)}, "readers must be a tuple of names"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"dropout": 1.0}, "dropout must be a probability"),
        ({"num_entity_ids": 1}, "num_entity_ids must be >= 2"),
        ({"attention": "dot"}, "attention must be one of"),
    ],
)
def test_bad_config_is_rejected(override, message):
    cfg = make_config(experiment, "quick", seeds=1, **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)


def test_a_summary_is_never_part_of_its_document():
    # Two paragraphs of one article; every sentence is a summary of the sentences around it.
    text = (
        " = Title = \n"
        " Ada Lovelace met Charles Babbage in London . Babbage showed Ada Lovelace his engine . \n"
        " = = Work = = \n Ada Lovelace wrote notes on the engine . Babbage admired the notes in London .\n"
    )
    articles = experiment.wikitext_articles(text)
    assert len(articles) == 1 and len(articles[0]) == 2
    triples = experiment.documents_and_summaries(articles, max_tokens=20)
    assert len(triples) == 4
    for document, summary, entities in triples:
        assert " ".join(summary) not in " ".join(document)
        assert len(document) <= 20
        assert ("Babbage",) in entities
    # The window grows after the summary first, then before it, across paragraphs of the article.
    first_document, first_summary, _ = triples[0]
    assert first_summary[:2] == ["Ada", "Lovelace"]
    assert first_document[:2] == ["Babbage", "showed"]
