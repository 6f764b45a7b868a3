"""SAC's experiment: the quick reproduction (Pendulum, 3 seeds) meets its claim; the untrained agent
fails it; same seed -> same metrics; a killed run resumes to the same result; the configs follow the
papers; the full config runs (a few steps); bad configs are refused."""

from __future__ import annotations

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytest.importorskip("gymnasium")
pytestmark = pytest.mark.paper("sac")

experiment = load_experiment("sac")


def tiny(**overrides):
    """SAC on the 50-step PointMass: a few hundred steps, small networks (seconds)."""
    base = dict(
        env_ids=("aicanon/PointMass-v0",),
        total_steps=150,
        learning_starts=40,
        hidden=(16, 16),
        batch_size=16,
        buffer_size=1000,
        eval_every=100,
        eval_episodes=1,
        final_eval_episodes=2,
        seeds=1,
    )
    base.update(overrides)
    return make_config(experiment, "quick", **base)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("sac", cfg)
    assert len(result.per_seed) == cfg.seeds == 3
    claimed = [c for c in result.claims if c.threshold is not None]
    assert [c.metric for c in claimed] == ["pendulum_return"]
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.1f} < threshold {claim.threshold}"
    assert "learning_curves" in result.figures


def test_the_untrained_agent_fails_the_pendulum_claim():
    cfg = make_config(experiment, "quick", learn=False, seeds=1)
    result = reproduce("sac", cfg)
    pendulum = next(c for c in result.claims if c.metric == "pendulum_return")
    assert pendulum.passed is False
    assert pendulum.ours < -600.0  # the initial policy: about -1200


def test_same_seed_gives_the_same_metrics():
    cfg = tiny()
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics and first.details == second.details
    assert experiment.run(dataclasses.replace(cfg, seed=4)).metrics != first.metrics


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # checkpoints live under the results folder
    cfg = tiny(checkpoint_every=50)
    reference = experiment.run(cfg)
    assert not any((tmp_path / "_checkpoints").rglob("*.json"))  # a finished run leaves none behind
    real_track = experiment.track

    def killed(iterable, description, total=None):
        for i, item in enumerate(real_track(iterable, description, total=total)):
            if i == 120:
                raise KeyboardInterrupt  # after 120 of 150 steps (checkpoints at 50 and 100)
            yield item

    monkeypatch.setattr(experiment, "track", killed)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(cfg)
    totals = []

    def counting(iterable, description, total=None):
        totals.append(total)
        return real_track(iterable, description, total=total)

    monkeypatch.setattr(experiment, "track", counting)
    resumed = experiment.run(cfg)
    assert totals[0] == 50  # resumed at step 100 of 150
    assert resumed.metrics == reference.metrics and resumed.details == reference.details
    with pytest.raises(KeyboardInterrupt):  # another config never resumes this one's checkpoint
        monkeypatch.setattr(experiment, "track", killed)
        experiment.run(cfg)
    other = dataclasses.replace(cfg, learning_rate=5e-4)
    monkeypatch.setattr(experiment, "track", counting)
    experiment.run(other)
    assert totals[-1] == 150


def test_configs_follow_the_papers():
    full = experiment.Config.full()
    assert full.env_ids == ("HalfCheetah-v5", "Hopper-v5") and full.total_steps == 1_000_000
    assert (full.hidden, full.learning_rate, full.batch_size, full.buffer_size) == (
        (256, 256),
        3e-4,
        256,
        1_000_000,
    )
    assert (full.gamma, full.tau, full.updates_per_step, full.alpha, full.value_network) == (
        0.99,
        0.005,
        1,
        None,
        False,
    )
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.seeds == 3 and quick.env_ids == ("Pendulum-v1",)
    claim = next(c for c in experiment.CLAIMS if c.metric == "pendulum_return")
    assert claim.quick == -200.0  # the target, not lowered


def test_full_config_and_the_value_variant_run_a_few_steps():
    cfg = make_config(
        experiment,
        "full",
        total_steps=30,
        learning_starts=10,
        batch_size=8,
        eval_every=20,
        eval_episodes=1,
        final_eval_episodes=1,
        max_episode_steps=15,
        seeds=1,
        checkpoint_every=0,
    )
    result = experiment.run(cfg)
    assert {"halfcheetah_return", "hopper_return"} <= set(result.metrics)
    original = experiment.run(
        dataclasses.replace(tiny(), value_network=True, alpha=0.2, reward_scale=1.0, total_steps=80)
    )
    assert original.metrics["pointmass_final_alpha"] == 0.2


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="env_ids"):
        experiment.run(tiny(env_ids=()))
    with pytest.raises(ValueError, match="total_steps"):
        experiment.run(tiny(total_steps=0))
    with pytest.raises(ValueError, match="not a registered"):
        experiment.run(tiny(env_ids=("NoSuchEnv-v0",)))
    with pytest.raises(ValueError, match="Box action space"):
        experiment.run(tiny(env_ids=("CartPole-v1",)))
