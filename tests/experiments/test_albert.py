"""The ALBERT experiment: quick reproduction, ablations that must fail, determinism, data sanity, bad input."""

from __future__ import annotations

import pytest
import torch

import aicanon.experiments.albert as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("albert")

CLAIMS = {claim.metric: claim for claim in experiment.CLAIMS}


def tiny(**overrides) -> experiment.Config:
    """A seconds-long config: the same code path, far fewer steps and pairs."""
    base = {"seeds": 1, "steps": 4, "warmup_steps": 2, "test_pairs": 64, "batch_size": 8}
    base.update(overrides)
    return make_config(experiment, "quick", **base)


# --------------------------------------------------------------------------- the quick reproduction
@pytest.fixture(scope="module")
def quick_reproduction():
    return reproduce("albert", make_config(experiment, "quick"))


def test_quick_reproduction_passes_every_quick_claim(quick_reproduction):
    claimed = [c for c in quick_reproduction.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {
        "table1_max_relative_gap",
        "table3_max_relative_gap",
        "table4_max_relative_gap",
        "bert_large_over_albert_large",
        "sop_model_sop_accuracy",
        "nsp_model_nsp_accuracy",
    }
    failures = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failures, failures
    assert set(quick_reproduction.figures) == {"parameter_counts", "training_curves", "table5"}


def test_quick_reproduction_counts_are_exact(quick_reproduction):
    counts = quick_reproduction.details["parameter_counts"]
    assert counts["table1"]["albert-base"] == 11_683_584
    assert counts["table1"]["bert-large"] == 334_607_360
    assert counts["table4"] == {
        "all": 11_683_584,
        "attention": 63_647_232,
        "ffn": 37_686_528,
        "none": 89_650_176,
    }


def test_quick_reproduction_reports_table_5(quick_reproduction):
    for arm in ("nsp", "sop"):
        for task in ("nsp", "sop"):
            assert 0.0 <= quick_reproduction.metrics[f"{arm}_model_{task}_accuracy"] <= 1.0
    # The transfers are reported at quick scale (6-character segments carry no topic, and SOP's
    # transfer to NSP depends on the seed there: see the module docstring) and claimed at full scale.
    for metric in ("nsp_model_sop_accuracy", "sop_model_nsp_accuracy", "sop_minus_nsp_model_on_sop"):
        assert CLAIMS[metric].quick is None and CLAIMS[metric].full is not None


# --------------------------------------------------------------------------- ablations must fail
def test_ablation_without_cross_layer_sharing_fails_the_count_claims():
    result = experiment.run(tiny(albert_sharing="none", arms=()))
    for metric in ("table1_max_relative_gap", "table3_max_relative_gap", "bert_large_over_albert_large"):
        assert CLAIMS[metric].check(result.metrics[metric], "quick") is False, metric
    assert CLAIMS["table4_max_relative_gap"].check(result.metrics["table4_max_relative_gap"], "quick") is True


def test_counting_each_layer_use_fails_the_sharing_claims(monkeypatch):
    # A counter that does not see through sharing (one block per layer use) must fail Tables 1 and 4.
    def per_layer_use(module):
        encoder = module
        blocks = [
            encoder.attentions[0 if len(encoder.attentions) == 1 else i]
            for i in range(encoder.cfg.num_layers)
        ]
        blocks += [
            encoder.feed_forwards[0 if len(encoder.feed_forwards) == 1 else i]
            for i in range(encoder.cfg.num_layers)
        ]
        rest = sum(
            p.numel()
            for n, p in encoder.named_parameters()
            if not n.startswith(("attentions", "feed_forwards"))
        )
        return rest + sum(p.numel() for b in blocks for p in b.parameters())

    monkeypatch.setattr(experiment, "count_parameters", per_layer_use)
    result = experiment.run(tiny(arms=()))
    assert (
        CLAIMS["table1_max_relative_gap"].check(result.metrics["table1_max_relative_gap"], "quick") is False
    )
    assert (
        CLAIMS["table4_max_relative_gap"].check(result.metrics["table4_max_relative_gap"], "quick") is False
    )


def test_untrained_models_fail_the_table_5_claims():
    result = experiment.run(tiny(steps=0, test_pairs=2000))
    for metric in ("sop_model_sop_accuracy", "sop_model_nsp_accuracy", "nsp_model_nsp_accuracy"):
        value = result.metrics[metric]
        assert abs(value - 0.5) < 0.04, (metric, value)  # chance
        assert CLAIMS[metric].check(value, "quick") is (None if CLAIMS[metric].quick is None else False)
        assert CLAIMS[metric].check(value, "full") is False


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_metrics():
    a = experiment.run(tiny(steps=3))
    b = experiment.run(tiny(steps=3))
    assert a.metrics == b.metrics


# --------------------------------------------------------------------------- data
def test_tokenize_and_vocabulary():
    assert experiment.tokenize("First Citizen:\nWe're done.") == [
        "first",
        "citizen",
        ":",
        "<nl>",
        "we're",
        "done",
        ".",
    ]
    vocab = experiment.build_vocabulary(["b", "a", "b", "c", "a", "b"], 2)
    assert vocab == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "b": 5, "a": 6}


def test_pairs_are_built_as_the_paper_says():
    cfg = tiny(segment_tokens=5, nsp_min_distance=50)
    ids = torch.arange(10, 1010)  # token i at position i - 10: order is visible in the ids
    s = cfg.segment_tokens
    for task in ("sop", "nsp"):
        x, types, labels = experiment.make_pairs(ids, task, 400, cfg, torch.Generator().manual_seed(0))
        assert x.shape == (400, 2 * s + 3)
        assert torch.all(x[:, 0] == experiment.CLS) and torch.all(x[:, s + 1] == experiment.SEP)
        assert torch.all(x[:, -1] == experiment.SEP)
        assert torch.equal(types[0], torch.tensor([0] * (s + 2) + [1] * (s + 1)))
        assert 0.4 < labels.float().mean() < 0.6
        first, second = x[:, 1 : s + 1], x[:, s + 2 : 2 * s + 2]
        in_order = second[:, 0] == first[:, -1] + 1
        assert torch.equal(in_order, labels == 0)  # label 0 exactly when B continues A
        if task == "sop":  # swapped pairs hold the same two consecutive segments
            swapped = labels == 1
            assert torch.all(first[swapped, 0] == second[swapped, -1] + 1)
        else:  # NSP's random segment is far from the true continuation
            far = labels == 1
            gap = (second[far, 0] - (first[far, -1] + 1)).abs()
            assert torch.all(gap >= cfg.nsp_min_distance - 2 * s)


def test_character_tokens():
    assert experiment.tokenize("Ay, sir!\nWe're", "char") == list("ay sir we re")


def test_corpus_split_is_contiguous_and_vocabulary_from_training_only():
    train_ids, test_ids, vocab = experiment.load_corpus(tiny(unit="word"))
    assert len(vocab) == len(experiment.SPECIALS) + 2000
    assert 0.09 < len(test_ids) / (len(train_ids) + len(test_ids)) < 0.11
    assert int(train_ids.max()) < len(vocab) and int(test_ids.min()) >= 0
    _, _, chars = experiment.load_corpus(tiny())
    assert len(chars) == len(experiment.SPECIALS) + 27  # a-z and space


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"arms": ("nsp", "mlm")}, r"arms must be drawn from \('nsp', 'sop'\), got \('nsp', 'mlm'\)"),
        ({"nsp_arm_task": "next"}, r"nsp_arm_task must be one of \('nsp', 'sop'\), got 'next'"),
        ({"albert_sharing": "layers"}, r"sharing must be one of .*'layers'"),
        ({"unit": "byte"}, r"unit must be one of \('char', 'word'\), got 'byte'"),
    ],
)
def test_bad_config(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        experiment.run(tiny(**overrides))


def test_bad_task_for_pairs():
    with pytest.raises(ValueError, match=r"task must be one of \('nsp', 'sop'\), got 'order'"):
        experiment.make_pairs(torch.arange(100), "order", 4, tiny(segment_tokens=4), torch.Generator())
