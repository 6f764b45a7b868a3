"""GAIL's experiment: the quick reproduction reaches the expert with 4 trajectories; with the
discriminator's reward replaced by zero it does not; same seed, same metrics; configs follow the
paper; bad configs are rejected; the full config runs (tiny budgets); demonstrations are reused
from a file."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from aicanon.rl.demonstrations import load_demonstrations

pytestmark = pytest.mark.paper("gail")

experiment = load_experiment("gail")


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("gail", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert [c.metric for c in claimed] == ["gail_fraction_4"]
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} < threshold {claim.threshold}"
    metrics = result.metrics
    assert metrics["expert_return"] >= 475  # the PPO expert solved CartPole
    assert metrics["random_return"] < 60  # and a random policy does not
    assert {"bc_return_4", "bc_fraction_4", "gail_scaled_4"} <= set(metrics)
    assert "gail" in result.figures


def test_without_the_discriminator_reward_the_claim_fails():
    # (A frozen discriminator passes on CartPole: its -log D is a survival bonus; module docstring.)
    cfg = make_config(experiment, "quick", ablation="zero_reward")
    result = reproduce("gail", cfg)
    claim = next(c for c in result.claims if c.metric == "gail_fraction_4")
    assert claim.passed is False and claim.ours < 0.5, claim


def test_same_seed_gives_the_same_metrics(tmp_path):
    cfg = make_config(
        experiment,
        "quick",
        expert_steps=2048,
        expert_check_every=0,
        gail_steps=1024,
        bc_max_epochs=3,
        eval_episodes=2,
        demonstrations_path=str(tmp_path / "expert.npz"),
    )
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    # The second run reads the expert's trajectories back from the file the first one wrote.
    saved = load_demonstrations(tmp_path / "expert.npz", env_id="CartPole-v1")
    assert saved.num_episodes == 4 and saved.metadata["source"].startswith("aicanon ppo expert")
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics.keys() == second.metrics.keys()
    assert {k: v for k, v in first.metrics.items() if k != "seconds"} == {
        k: v for k, v in second.metrics.items() if k != "seconds"
    }
    assert second.details["expert"] == {"loaded_from": str(tmp_path / "expert.npz")}


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.env_id == "Hopper-v5" and full.trajectories == (4, 11, 18, 25)  # Figure 1's Hopper sizes
    assert full.hidden == (100, 100) and full.max_kl == 0.01 and full.num_envs * full.n_steps == 50_000
    assert full.gamma == 0.995 and full.gae_lambda == 0.97 and full.reward_form == "neg_log_d"
    assert full.policy_step == "trpo" and full.eval_episodes == 50 and full.checkpoint_every > 0
    quick = experiment.Config.quick()
    assert quick.env_id == "CartPole-v1" and quick.trajectories == (4,) and quick.expert == "ppo"
    claim = next(c for c in experiment.CLAIMS if c.metric == "gail_fraction_4")
    assert claim.quick == 0.9 and claim.full == 0.9 and "unverified" in claim.source


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="ablation"):
        experiment.run(make_config(experiment, "quick", ablation="no_policy"))
    with pytest.raises(ValueError, match="expert"):
        experiment.run(make_config(experiment, "quick", expert="dqn"))
    with pytest.raises(ValueError, match="trajectories"):
        experiment.run(make_config(experiment, "quick", trajectories=()))
    with pytest.raises(ValueError, match="gail_steps"):
        experiment.run(make_config(experiment, "quick", gail_steps=0))


@pytest.mark.slow
def test_full_config_runs_with_tiny_budgets(tmp_path, monkeypatch):
    from aicanon.core.results import ENV_RESULTS

    monkeypatch.setenv(ENV_RESULTS, str(tmp_path))  # the checkpoints go under the results folder
    cfg = make_config(
        experiment,
        "full",
        seeds=1,
        expert_steps=300,
        trajectories=(1, 2),
        gail_steps=64,
        n_steps=8,
        eval_episodes=1,
        bc_max_epochs=2,
        checkpoint_every=1,
    )
    result = experiment.run(cfg)
    assert {"gail_return_1", "gail_return_2", "bc_return_2", "expert_return"} <= set(result.metrics)
