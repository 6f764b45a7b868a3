"""The survey's comparison: the quick reproduction solves CartPole with the claimed agents; untrained
agents fail; same seed, same metrics; configs; bad configs; the full config runs (tiny budgets)."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("drl-survey")

experiment = load_experiment("drl-survey")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("drl-survey", cfg)
    assert len(result.per_seed) == cfg.seeds
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {"ppo_cartpole_return", "a2c_cartpole_return"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.1f} < threshold {claim.threshold}"
    assert "learning_curves" in result.figures


def test_untrained_agents_fail_the_claims():
    # One short chunk of training (a few rollouts): far from solving CartPole.
    cfg = make_config(
        experiment, "quick", seeds=1, budgets={"CartPole-v1": 512}, eval_interval=512, eval_episodes=5
    )
    result = reproduce("drl-survey", cfg)
    for claim in result.claims:
        if claim.threshold is not None:
            assert claim.passed is False and claim.ours < 200, claim


def _three_agents(**overrides):
    """PPO, A2C and DQN on CartPole for 1,500 steps each: the mechanics tests' small run."""
    return make_config(
        experiment,
        "quick",
        agents=("ppo", "a2c", "dqn"),
        budgets={"CartPole-v1": 1500},
        eval_interval=750,
        eval_episodes=2,
        check_episodes=1,
        **overrides,
    )


def test_same_seed_gives_the_same_metrics():
    cfg = _three_agents()
    first = experiment.run(dataclasses.replace(cfg, seed=4))
    second = experiment.run(dataclasses.replace(cfg, seed=4))
    assert first.metrics == second.metrics
    assert first.details["curves"] == second.details["curves"]


def test_a_killed_seed_reruns_only_its_unfinished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # finished runs are kept under it
    cfg = _three_agents(seed=4)
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint=True)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment,
        "train_and_evaluate",
        lambda: experiment.run(cfg),
        kill_at=3,  # DQN, the third agent
        record=lambda name, *args: name,
    )
    assert calls == ["dqn"]  # PPO and A2C came from the results folder
    assert resumed.metrics == reference.metrics
    assert resumed.details["curves"] == reference.details["curves"]
    assert not any((tmp_path / "_checkpoints" / "drl-survey").iterdir())


def test_configs_follow_the_issue():
    full = experiment.Config.full()
    assert set(full.agents) == {"reinforce", "a2c", "ppo", "trpo", "dqn", "double_dqn", "dueling_dqn"}
    assert full.environments == ("CartPole-v1", "Acrobot-v1", "LunarLander-v3")
    assert full.eval_episodes == 100 and full.seeds == 10
    quick = experiment.Config.quick()
    assert quick.environments == ("CartPole-v1",) and quick.scale == "quick"
    assert {"ppo", "a2c"} <= set(quick.agents)
    assert {c.metric: c.paper for c in experiment.CLAIMS}["ppo_cartpole_return"] == 475.0


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="agents must be one of"):
        experiment.run(make_config(experiment, "quick", agents=("sarsa",)))
    with pytest.raises(ValueError, match="budgets must give a step budget for Acrobot-v1"):
        experiment.run(make_config(experiment, "quick", environments=("Acrobot-v1",)))
    with pytest.raises(ValueError, match="at least one"):
        experiment.run(make_config(experiment, "quick", agents=()))


@pytest.mark.slow
def test_full_config_runs_every_agent_and_environment_with_tiny_budgets(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # full runs keep finished runs there
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        budgets={"CartPole-v1": 1100, "Acrobot-v1": 1100, "LunarLander-v3": 1100},
        eval_interval=1100,
        check_episodes=1,
        eval_episodes=1,
    )
    result = experiment.run(cfg)
    assert len(result.details["table"]) == 7 * 3
    assert {"reinforce_lunarlander_return", "dueling_dqn_acrobot_steps"} <= set(result.metrics)
