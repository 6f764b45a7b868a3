"""Tree of Thoughts' experiment: the quick reproduction on the trained Game of 24 model (slow: the
model is trained once per machine), the greedy-chain ablation, determinism, the exact protocol over
a real HTTP server, configs."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.datasets.game24 import TOT_TEST_INDICES, load_game24
from aicanon.language.http_backend import OpenAICompatibleLanguageModel
from aicanon.language.server import BackgroundServer, create_app
from aicanon.reasoning.game24 import Game24Oracle, Game24Task, check_answer
from aicanon.reasoning.tree_of_thoughts import SearchStats, StateEvaluator, bfs

pytestmark = pytest.mark.paper("tree-of-thoughts")

experiment = load_experiment("tree-of-thoughts")

TINY = {
    "hidden_size": 16,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 32,
    "vocab_size": 300,
    "rounds": 1,
    "max_puzzles": 8,
    "steps": 2,
    "batch_size": 2,
    "seq_len": 32,
    "warmup_steps": 1,
}
SMALL_RUN = {"puzzles": 1, "breadth": 2, "n_evaluate": 1}


@pytest.mark.slow
def test_quick_reproduction_reports_the_claims_and_the_gap():
    cfg = make_config(experiment, "quick")
    result = reproduce("tree-of-thoughts", cfg)
    claims = {c.metric: c for c in result.claims}
    # The trained 0.2M model learns the formats but not the arithmetic: ToT does not beat CoT by the
    # issue's wide margin. A gap kept at the target and reported, not asserted away (docstring).
    assert claims["tot_minus_cot"].threshold == 0.25 and claims["tot_minus_cot"].ours is not None
    assert claims["tot_success"].threshold == 0.40
    assert all(0.0 <= result.metrics[k] <= 1.0 for k in ("io_success", "cot_success", "tot_success"))
    assert result.metrics["tot_prompts_per_puzzle"] > 5 * result.metrics["cot_prompts_per_puzzle"]
    assert "success_rates" in result.figures


@pytest.mark.slow
def test_ablation_greedy_propose_chain_fails_the_quick_claims():
    cfg = make_config(experiment, "quick", method="greedy_chain")
    result = reproduce("tree-of-thoughts", cfg)
    claims = {c.metric: c for c in result.claims}
    assert claims["tot_success"].passed is False
    assert claims["tot_minus_cot"].passed is False


def test_the_training_puzzles_exclude_the_test_games():
    test = {tuple(sorted(p.numbers)) for p in load_game24(TOT_TEST_INDICES)}
    train = experiment.training_puzzles()
    assert len(train) + len(test) <= 1362 and len(train) > 1200
    assert not {tuple(sorted(int(v) for v in x.split())) for x in train} & test


def test_same_seed_gives_the_same_metrics(tmp_path):
    cfg = make_config(experiment, "quick", model=TINY, cache=str(tmp_path), **SMALL_RUN)
    first = experiment.run(dataclasses.replace(cfg, seed=1))
    second = experiment.run(dataclasses.replace(cfg, seed=1))
    assert first.metrics.keys() == second.metrics.keys()
    timing = {"tot_search_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in timing} == {
        k: v for k, v in second.metrics.items() if k not in timing
    }
    assert first.details["tot_outputs"] == second.details["tot_outputs"]
    assert set(first.metrics) >= {"io_success", "cot_success", "tot_success", "tot_minus_cot", "tot_minus_io"}
    assert first.metrics["tot_prompts_per_puzzle"] > first.metrics["cot_prompts_per_puzzle"] == 1


def test_full_config_smoke_runs_with_tiny_overrides(tmp_path):
    cfg = make_config(experiment, "full", model=TINY, cache=str(tmp_path), puzzles=1, n_evaluate=2)
    assert cfg.breadth == 5 and cfg.seeds == 3
    result = experiment.run(cfg)
    assert 0.0 <= result.metrics["tot_success"] <= 1.0


def test_the_exact_protocol_runs_unchanged_over_http():
    """The paper's prompts (with exemplars), IO, CoT and ToT-BFS b = 5 through the OpenAI-compatible
    client against a real server on 127.0.0.1 whose model is the solver oracle (a scripted responder)."""
    games = [p.text for p in load_game24(range(900, 904))]
    task = Game24Task("paper")
    with BackgroundServer(create_app(Game24Oracle(), "oracle")) as server:
        client = OpenAICompatibleLanguageModel(server.base_url, "oracle", api_key_env=None)
        io_stats, cot_stats, stats = SearchStats(), SearchStats(), SearchStats()
        io, cot = experiment.io_and_cot(client, task, games, io_stats, cot_stats)
        results = bfs(client, task, games, breadth=5, evaluator=StateEvaluator(n=3), stats=stats)
    assert all(check_answer(x, o) for x, o in zip(games, io, strict=True))
    assert all(check_answer(x, o) for x, o in zip(games, cot, strict=True))
    assert all(check_answer(r.x, r.output) for r in results)
    assert stats.prompts > 4 * len(games) and stats.calls >= 8


def test_configs_follow_the_paper():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert full.puzzles == 100 and full.breadth == 5 and full.n_evaluate == 3
    assert full.value_temperature == 0.7 and full.method == "tot"
    assert quick.breadth == 5 and quick.puzzles < full.puzzles
    assert list(TOT_TEST_INDICES) == list(range(900, 1000))
    claims = {c.metric: c for c in experiment.CLAIMS}
    assert claims["tot_success"].paper == 0.74 and claims["cot_success"].paper == 0.04
    assert claims["io_success"].paper == 0.073


@pytest.mark.parametrize(
    "override, match",
    [
        ({"puzzles": 0}, "puzzles"),
        ({"puzzles": 101}, "puzzles"),
        ({"breadth": 0}, "breadth"),
        ({"n_evaluate": 0}, "n_evaluate"),
        ({"method": "beam"}, "method"),
        ({"prompts": "few"}, "prompts"),
        ({"value_temperature": -1.0}, "value_temperature"),
        ({"model": {"steps": 0}}, "steps"),
    ],
)
def test_bad_config_is_rejected(override, match):
    with pytest.raises(ValueError, match=match):
        experiment.Config(**override)
    with pytest.raises(TypeError, match="model"):
        experiment.Config(model=[1])
