"""The Gym scoreboard: the quick reproduction passes its claims (agents beat the random policy,
normalisation helps PPO on MountainCarContinuous, a rerun is identical); untrained agents fail them;
the full configuration runs for a few steps; bad configurations are refused."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytestmark = pytest.mark.paper("gym")

experiment = load_experiment("gym")

LEARNING_CLAIMS = ("ppo_cartpole_margin", "a2c_cartpole_margin", "sac_pendulum_margin", "normalization_gain")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("gym", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert {c.metric for c in claimed} == {*LEARNING_CLAIMS, "rerun_max_abs_difference"}
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours} vs threshold {claim.threshold}"
    assert result.metrics["rerun_max_abs_difference"] == 0.0
    assert set(result.figures) == {"learning_curves"}
    board = result.details["scoreboard"]
    assert {(row["agent"], row["environment"], row["normalization"]) for row in board} == {
        ("ppo", "CartPole-v1", "none"),
        ("a2c", "CartPole-v1", "none"),
        ("sac", "Pendulum-v1", "none"),
        ("ppo", "MountainCarContinuous-v0", "none"),
        ("ppo", "MountainCarContinuous-v0", "obs+reward"),
    }
    for row in board:  # the protocol: recorded seeds, the configured number of episodes
        assert row["episodes"] == cfg.eval_episodes
        assert row["evaluation_seeds"] == list(range(20_000, 20_000 + cfg.eval_episodes))


def test_untrained_agents_fail_the_learning_claims():
    cfg = make_config(experiment, "quick", learn=False, curve_points=1, curve_episodes=1, eval_episodes=3)
    result = reproduce("gym", cfg)
    outcome = {c.metric: c for c in result.claims}
    for metric in LEARNING_CLAIMS:
        assert outcome[metric].passed is False, f"{metric}: {outcome[metric].ours}"
    assert outcome["rerun_max_abs_difference"].passed  # reproducibility does not depend on learning


def _without_timings(details):
    board = [
        {k: v for k, v in row.items() if k not in ("seconds", "cpu_seconds")} for row in details["scoreboard"]
    ]
    return {**details, "scoreboard": board}


def _small(**overrides):
    return make_config(
        experiment,
        "quick",
        runs=(("a2c", "CartPole-v1", 800, "none"), ("td3", "Pendulum-v1", 600, "none")),
        normalization_env="aicanon/PointMass-v0",
        normalization_steps=300,
        normalization_arms=("none", "obs"),
        rerun=("ppo", "aicanon/PointMass-v0", "obs"),
        curve_points=2,
        curve_episodes=2,
        eval_episodes=2,
        **overrides,
    )


def test_same_seed_gives_the_same_scoreboard_and_another_seed_does_not():
    cfg = _small()
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics
    assert _without_timings(first.details) == _without_timings(second.details)
    assert first.metrics["rerun_max_abs_difference"] == 0.0
    other = experiment.run(dataclasses.replace(cfg, seed=4))
    assert other.metrics["a2c_cartpole_return"] != first.metrics["a2c_cartpole_return"]


def test_a_killed_seed_reruns_only_its_unfinished_runs(tmp_path, monkeypatch):
    """Killed while training its third run, the seed's rerun takes the two finished scores from the
    results folder, trains the other two and the rerun check (never cached), and reports exactly
    what an uninterrupted seed does."""
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    reference = experiment.run(_small(seed=3))
    cfg = _small(seed=3, checkpoint=True)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment,
        "train_and_score",
        lambda: experiment.run(cfg),
        kill_at=3,
        record=lambda run, cfg: run,
    )
    assert [run[:2] for run in calls] == [
        ("ppo", "aicanon/PointMass-v0"),  # the third run, then the fourth
        ("ppo", "aicanon/PointMass-v0"),
        ("ppo", "aicanon/PointMass-v0"),  # the rerun check
    ]
    assert [run[3] for run in calls] == ["none", "obs", "obs"]
    assert resumed.metrics == reference.metrics
    assert _without_timings(resumed.details) == _without_timings(reference.details)
    assert not any((tmp_path / "_checkpoints" / "gym").iterdir())  # removed once the seed is done


@pytest.mark.slow  # ~10-15 s: twelve agent/environment families, MuJoCo included
def test_full_configuration_runs_for_a_few_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # full runs keep finished runs there
    # Every agent and environment family of the full run, at a handful of steps (the plumbing only:
    # warm-up phases are longer than this, except PPO's MuJoCo rollout of 2048 steps).
    full = experiment.Config.full()
    families = {}
    for agent, env_id, _, normalization in full.runs:
        families.setdefault((agent, normalization, env_id in ("HalfCheetah-v5", "Hopper-v5")), env_id)
    runs = tuple((agent, env_id, 40, norm) for (agent, norm, _), env_id in families.items())
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        runs=runs,
        normalization_steps=40,
        rerun=None,
        curve_points=1,
        curve_episodes=1,
        eval_episodes=1,
    )
    result = experiment.run(cfg)
    assert len(result.details["scoreboard"]) == len(runs) + 3  # plus the three normalisation arms
    assert all(row["steps"] >= 40 for row in result.details["scoreboard"])


def test_configs_follow_the_protocol():
    full = experiment.Config.full()
    agents = {agent for agent, *_ in full.runs}
    assert agents == set(experiment.AGENTS)
    assert {env for _, env, *_ in full.runs} == {
        "CartPole-v1",
        "Acrobot-v1",
        "LunarLander-v3",
        "Pendulum-v1",
        "HalfCheetah-v5",
        "Hopper-v5",
    }
    assert (full.seeds, full.eval_episodes, full.normalization_arms) == (
        5,
        100,
        ("none", "obs", "obs+reward"),
    )
    quick = experiment.Config.quick()
    assert quick.seeds == 1 and quick.threads == 1 and quick.normalization_env == "MountainCarContinuous-v0"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"runs": ()}, "runs must name at least one"),
        ({"runs": (("muzero", "CartPole-v1", 10, "none"),)}, "agent must be one of"),
        ({"runs": (("ppo", "CartPol-v1", 10, "none"),)}, "not a registered"),
        ({"runs": (("ppo", "CartPole-v1", 0, "none"),)}, "steps must be >= 1"),
        ({"runs": (("ppo", "CartPole-v1", 10, "whiten"),)}, "normalisation must be one of"),
        ({"runs": (("ppo", "CartPole-v1", 10),)}, "must be \\(agent, environment, steps"),
        ({"normalization_arms": ("obs", "obs+reward")}, "must hold 'none'"),
        ({"rerun": ("dqn", "CartPole-v1", "none")}, "rerun must be None or"),
        ({"eval_episodes": 0}, "eval_episodes must be >= 1"),
    ],
)
def test_bad_configs_are_refused(override, message):
    cfg = make_config(experiment, "quick", **override)
    with pytest.raises(ValueError, match=message):
        experiment.run(cfg)


def test_normalisation_of_an_off_policy_agent_is_refused():
    cfg = make_config(experiment, "quick", runs=(("sac", "Pendulum-v1", 10, "obs"),))
    with pytest.raises(ValueError, match="normalisation is implemented for the on-policy agents"):
        experiment.run(cfg)
