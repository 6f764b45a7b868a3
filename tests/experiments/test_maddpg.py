"""MADDPG's experiment: the quick reproduction meets its claim (centralised critics fit their targets
far better than DDPG's local ones); with local critics in the MADDPG slot it fails; the full config
runs both scenarios (smoke test at tiny size)."""

import dataclasses

import pytest

from aicanon.catalog import load_experiment, reproduce
from aicanon.core.experiment import make_config
from tests.interruption import interrupt_and_resume

pytest.importorskip("mpe2")
pytestmark = pytest.mark.paper("maddpg")

experiment = load_experiment("maddpg")
TINY = dict(episodes=4, num_envs=2, batch_size=16, update_every=5, warmup_steps=20, eval_episodes=2)


def test_quick_reproduction_meets_every_quick_claim():
    cfg = make_config(experiment, "quick")
    result = reproduce("maddpg", cfg)
    claimed = [c for c in result.claims if c.threshold is not None]
    assert [c.metric for c in claimed] == ["speaker_listener_critic_loss_ratio"]
    for claim in claimed:
        assert claim.passed, f"{claim.metric}: ours {claim.ours:.3f} > threshold {claim.threshold}"
    assert "training" in result.figures
    # The communication metrics are reported (not claimed at quick scale).
    assert 0.0 <= result.metrics["speaker_listener_maddpg_target_rate"] <= 1.0


def test_ablation_with_local_critics_fails_the_quick_claim():
    cfg = make_config(experiment, "quick", centralised=False)
    result = reproduce("maddpg", cfg)
    ratio = next(c for c in result.claims if c.metric == "speaker_listener_critic_loss_ratio")
    assert ratio.passed is False
    assert ratio.ours > 0.5  # both critics local: about 1


def test_same_seed_gives_the_same_metrics():
    cfg = make_config(experiment, "quick", **TINY)
    first = experiment.run(dataclasses.replace(cfg, seed=3))
    second = experiment.run(dataclasses.replace(cfg, seed=3))
    assert first.metrics == second.metrics


def test_killed_training_resumes_to_the_uninterrupted_run(monkeypatch, tmp_path):
    # 4 rounds of 2 episodes per method, a checkpoint after every round; killed in DDPG's third round:
    # MADDPG is restored (not retrained), DDPG trains its rounds 3-4 again, and every metric and curve
    # equals the uninterrupted run's (the replay buffers, optimisers and sampling generator came back).
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    cfg = make_config(experiment, "quick", **{**TINY, "episodes": 8})
    reference = experiment.run(cfg)
    cfg = dataclasses.replace(cfg, checkpoint_every=1)
    resumed, calls = interrupt_and_resume(
        monkeypatch,
        experiment,
        "train",
        lambda: experiment.run(cfg),
        kill_at=4 + 3,
        record=lambda a, *_, **k: a.cfg.centralised,
    )
    assert calls == [False, False]
    assert resumed.metrics == reference.metrics
    assert resumed.details == reference.details
    assert not any((tmp_path / "_checkpoints" / "maddpg").iterdir())
    assert experiment.Config.full().checkpoint_every == 2500


def test_full_config_smoke_runs_both_scenarios(monkeypatch, tmp_path):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # the full config checkpoints under the results
    cfg = make_config(experiment, "full", seeds=1, **TINY)
    result = experiment.run(cfg)
    for metric in (
        "speaker_listener_target_rate_gap",
        "speaker_listener_critic_loss_ratio",
        "spread_distance_advantage",
        "spread_collision_advantage",
        "spread_maddpg_distance",
    ):
        assert metric in result.metrics
    assert result.metrics["spread_maddpg_collisions"] >= 0.0


def test_configs_follow_the_paper():
    full = experiment.Config.full()
    assert full.scenarios == ("simple_speaker_listener", "simple_spread")
    assert (full.episodes, full.max_cycles, full.batch_size, full.update_every) == (25_000, 25, 1024, 100)
    assert (full.learning_rate, full.gamma, full.tau, full.hidden) == (0.01, 0.95, 0.01, (64, 64))
    assert full.centralised and full.baseline and full.seeds == 3
    quick = experiment.Config.quick()
    assert quick.scale == "quick" and quick.scenarios == ("simple_speaker_listener",)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="scenarios must name"):
        experiment.run(make_config(experiment, "quick", scenarios=()))
    with pytest.raises(ValueError, match="scenarios must be drawn from"):
        experiment.run(make_config(experiment, "quick", scenarios=("simple_tag",)))
    with pytest.raises(ValueError, match="episodes"):
        experiment.run(make_config(experiment, "quick", episodes=0))
