"""Deep RL from human preferences, the experiment: with <= 500 synthetic labels the PPO agent on the
predicted reward reaches >= 80 % of the true-reward agent (disagreement and random queries
reported); an untrained predictor and random labels fail; same seed, same metrics; configs follow
the paper; bad configs are rejected; the full config runs (tiny budgets)."""

import dataclasses

import numpy as np
import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("rl-human-preferences")

experiment = load_experiment("rl-human-preferences")


@pytest.mark.slow
def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("rl-human-preferences", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert [c.metric for c in claimed] == ["fraction_disagreement"]
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} < threshold {claim.threshold}"
    metrics = result.metrics
    assert metrics["labels_disagreement"] <= 500 and metrics["labels_random"] <= 500
    assert metrics["accuracy_disagreement"] > 0.8  # the predictor orders fresh pairs like the oracle
    assert "fraction_random" in metrics and "learning_curves" in result.figures


@pytest.mark.slow
@pytest.mark.parametrize("ablation", ["untrained", "random_labels"])
def test_untrained_predictor_or_random_labels_fail_the_claim(ablation):
    cfg = make_config(experiment, "quick", ablation=ablation, queries=("disagreement",))
    result = reproduce("rl-human-preferences", cfg)
    claim = next(c for c in result.claims if c.metric == "fraction_disagreement")
    assert claim.passed is False and claim.ours < 0.5, claim


def _tiny(**overrides):
    settings = {
        "agent_steps": 512,
        "rounds": 2,
        "labels": 20,
        "pretrain_steps": 400,
        "fit_steps": 5,
        "n_steps": 32,
        "ppo_epochs": 1,
        "eval_episodes": 2,
    }
    return make_config(experiment, "quick", **(settings | overrides))


def test_same_seed_gives_the_same_metrics():
    cfg = _tiny(seed=3)
    first, second = experiment.run(cfg), experiment.run(dataclasses.replace(cfg))
    np.testing.assert_equal(first.metrics, second.metrics)  # NaN == NaN: the tiny agents tie with random
    assert first.metrics["labels_disagreement"] == 20 and first.metrics["labels_random"] == 20
    other = experiment.run(dataclasses.replace(cfg, seed=4)).metrics
    assert other["return_disagreement"] != first.metrics["return_disagreement"]


def test_cartpole_runs_with_terminations():
    result = experiment.run(_tiny(env_id="CartPole-v1", queries=("random",), segment_length=10))
    assert result.metrics["labels_random"] == 20 and result.metrics["true_return"] > 0


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.env_id == "HalfCheetah-v5" and full.members == 3 and full.error_rate == 0.1
    assert full.queries == ("disagreement", "random") and full.oracle_error_rate == 0.0
    assert full.labels == 1400 and full.agent_steps == 2_000_000 and full.seeds == 3
    quick = experiment.Config.quick()
    assert quick.labels <= 500 and quick.error_rate == 0.1 and quick.threads == 1
    claim = next(c for c in experiment.CLAIMS if c.metric == "fraction_disagreement")
    assert claim.quick == 0.8 and claim.full == 0.8 and "unverified" in claim.source


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="ablation"):
        experiment.run(make_config(experiment, "quick", ablation="no_labels"))
    with pytest.raises(ValueError, match="labels must be <= 500"):
        experiment.run(make_config(experiment, "quick", labels=501))
    with pytest.raises(ValueError, match="queries"):
        experiment.run(make_config(experiment, "quick", queries=("entropy",)))
    with pytest.raises(ValueError, match="rounds must be >= 2"):
        experiment.run(make_config(experiment, "quick", rounds=1))
    with pytest.raises(ValueError, match="error_rate"):
        experiment.run(make_config(experiment, "quick", error_rate=1.5))


def test_full_config_runs_with_tiny_budgets(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # full runs checkpoint under the results folder
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        agent_steps=256,
        rounds=2,
        labels=10,
        pretrain_steps=800,
        max_episode_steps=50,
        fit_steps=2,
        n_steps=16,
        ppo_epochs=1,
        eval_episodes=1,
    )
    assert cfg.checkpoint  # full runs are resumable; the folder is removed once the seed is done
    result = experiment.run(cfg)
    assert result.metrics["labels_disagreement"] == 10 and "fraction_random" in result.metrics
    assert not any((tmp_path / "_checkpoints" / "rl-human-preferences").iterdir())


@pytest.mark.parametrize("normalize", [False, True])
def test_a_killed_run_resumes_to_the_same_metrics(tmp_path, monkeypatch, normalize):
    """Killed in the preference agent's third round (after two saved rounds of each agent), the
    rerun of the same config resumes from the checkpoints and ends exactly where an uninterrupted run
    does: returns, learning curves, predictor accuracy and fits; also with the observation
    normalisation of the full config wrapped around the predicted reward."""
    from aicanon.rl.ppo_agent import PPOAgent

    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # checkpoints live under the results folder
    cfg = _tiny(
        seed=5, agent_steps=1024, rounds=4, queries=("disagreement",), normalize_observations=normalize
    )
    reference = experiment.run(cfg)
    learn, calls = PPOAgent.learn, []

    def killed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # 4 rounds of the true-reward agent, then the preference agent's 3rd
            raise KeyboardInterrupt
        return learn(self, *args, **kwargs)

    resumable = dataclasses.replace(cfg, checkpoint=True)
    monkeypatch.setattr(PPOAgent, "learn", killed)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(resumable)
    saved = list((tmp_path / "_checkpoints" / "rl-human-preferences").glob("*/*"))
    assert sorted(p.name for p in saved) == ["disagreement", "true_reward"]
    monkeypatch.setattr(PPOAgent, "learn", learn)
    resumed_learn, resumed_calls = PPOAgent.learn, []

    def counted(self, *args, **kwargs):
        resumed_calls.append(1)
        return resumed_learn(self, *args, **kwargs)

    monkeypatch.setattr(PPOAgent, "learn", counted)
    resumed = experiment.run(resumable)
    assert len(resumed_calls) == 2  # only the preference agent's last two rounds ran again
    np.testing.assert_equal(resumed.metrics, reference.metrics)
    np.testing.assert_equal(resumed.details, reference.details)
    assert not any((tmp_path / "_checkpoints" / "rl-human-preferences").iterdir())  # removed when done
