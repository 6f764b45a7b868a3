"""MMLU's experiment: the quick reproduction (an untrained model) meets its claims, at chance with
the interval saying so; an answer-reading oracle fails the chance claim; the HTTP backend through
our server gives the local numbers; seeds repeat; configs follow the paper; bad configs refused."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core import seed
from aicanon.core.experiment import make_config
from aicanon.language.server import BackgroundServer, create_app

pytestmark = pytest.mark.paper("mmlu")

experiment = load_experiment("mmlu")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick", threads=1)
    result = reproduce("mmlu", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"chance_in_interval", "protocol_parity"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} < threshold {claim.threshold}"
    metrics = result.metrics
    assert metrics["questions"] == 400 and metrics["accuracy_low"] <= 25.0 <= metrics["accuracy_high"]
    details = result.details
    assert len(details["per_subject"]) == 4 and len(details["records"]) == 400
    assert set(details["prompts"]) == set(experiment.QUICK_SUBJECTS)
    assert details["prompts"]["management"].startswith(
        "The following are multiple choice questions (with answers) about  management.\n\n"
    )
    assert "per_subject" in result.figures


def test_oracle_that_reads_the_answers_fails_the_chance_claim():
    cfg = make_config(experiment, "quick", backend="oracle")
    result = reproduce("mmlu", cfg)
    chance = next(c for c in result.claims if c.metric == "chance_in_interval")
    assert chance.passed is False and chance.ours == 0.0
    assert result.metrics["accuracy"] == 100.0


def test_http_backend_through_our_server_equals_the_local_backend():
    cfg = make_config(
        experiment, "quick", subjects=("management", "virology"), max_questions=3, context=4096, shots=1
    )
    local = experiment.run(cfg)
    seed(cfg.seed)  # the same random weights as run() builds
    local_model, _ = experiment.build_backend(cfg, {}, {})
    with BackgroundServer(create_app(local_model, "random-bytes")) as server:
        served = dataclasses.replace(cfg, backend="http", base_url=server.base_url, model_name="random-bytes")
        remote = experiment.run(served)
    for ours, theirs in zip(local.details["records"], remote.details["records"], strict=True):
        assert ours["prediction"] == theirs["prediction"]
        assert ours["loglikelihoods"] == pytest.approx(theirs["loglikelihoods"], abs=1e-4)


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", max_questions=5, seed=3)
    first, second = experiment.run(cfg), experiment.run(cfg)
    assert first.metrics == second.metrics
    assert first.details["records"] == second.details["records"]


def test_full_config_smoke_with_tiny_overrides():
    cfg = make_config(experiment, "full", subjects=("abstract_algebra",), max_questions=2, context=512)
    result = experiment.run(cfg)
    assert result.metrics["questions"] == 2 and result.metrics["protocol_parity"] == 1.0
    generated = experiment.run(dataclasses.replace(cfg, method="generate"))
    assert generated.metrics["questions"] == 2 and "protocol_parity" not in generated.metrics
    assert all(isinstance(r["generation"], str) for r in generated.details["records"])


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert (full.subjects, full.max_questions, full.shots, full.method) == ((), 0, 5, "loglikelihood")
    quick = experiment.Config.quick()
    assert quick.shots == 5 and quick.max_questions == 100
    from aicanon.evals.mmlu import subject_category

    assert sorted(subject_category(s) for s in quick.subjects) == [
        "STEM",
        "humanities",
        "other",
        "social sciences",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"backend": "openai"}, "backend must be one of"),
        ({"backend": "http"}, "needs base_url and model_name"),
        ({"method": "sample"}, "method must be one of"),
        ({"shots": 6}, "shots must be"),
        ({"context": 8}, "context must be"),
        ({"backend": "oracle", "method": "generate"}, "oracle backend scores"),
        ({"subjects": ("cooking",)}, "one of the 57 MMLU subjects"),
    ],
)
def test_bad_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config(experiment, "quick", **overrides)
