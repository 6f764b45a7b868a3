"""The shared on-policy set-up: checkpoints resume to exactly the uninterrupted run, for every agent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aicanon.core.checkpoint import CheckpointMismatch, load_checkpoint
from aicanon.rl.envs import ReplayableEpisodes, make_env
from aicanon.rl.policy_gradient import A2C, REINFORCE, A2CConfig
from aicanon.rl.ppo import PPOConfig
from aicanon.rl.ppo_agent import PPOAgent, PPOAgentConfig
from aicanon.rl.trpo import TRPO, TRPOConfig

pytestmark = pytest.mark.paper("drl-survey")

SMALL = {
    "a2c": lambda: (A2C, A2CConfig(num_envs=2, n_steps=8)),
    "reinforce": lambda: (REINFORCE, A2CConfig(num_envs=2, n_steps=40, optimizer="adam")),
    "ppo": lambda: (
        PPOAgent,
        PPOAgentConfig(num_envs=2, n_steps=32, update=PPOConfig(epochs=2, minibatch_size=32)),
    ),
    "trpo": lambda: (TRPO, TRPOConfig(num_envs=2, n_steps=32, value_epochs=2, value_minibatch_size=32)),
}


def _weights(agent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.policy.parameters()]


class _Killed(RuntimeError):
    pass


def _interrupted_then_resumed(cls, cfg, env_id, steps, folder, every, kill_after, **env_kwargs):
    agent = cls(env_id, cfg, seed=5, **env_kwargs)
    calls = {"n": 0}
    update = agent.update

    def dying_update(batch):
        calls["n"] += 1
        if calls["n"] > kill_after:
            raise _Killed
        return update(batch)

    agent.update = dying_update
    with pytest.raises(_Killed):
        agent.learn(steps, checkpoint_dir=folder, checkpoint_every=every)
    assert load_checkpoint(folder) is not None
    resumed = cls(env_id, cfg, seed=5, **env_kwargs)
    finished = resumed.learn(steps, checkpoint_dir=folder, checkpoint_every=every)
    return resumed, finished


@pytest.mark.parametrize("name", sorted(SMALL))
def test_resumed_run_equals_uninterrupted_run(name, tmp_path):
    cls, cfg = SMALL[name]()
    steps = 8 * cfg.num_envs * cfg.n_steps
    whole = cls("CartPole-v1", cfg, seed=5)
    expected = whole.learn(steps)
    every = 2 * cfg.num_envs * cfg.n_steps
    resumed, finished = _interrupted_then_resumed(cls, cfg, "CartPole-v1", steps, tmp_path / "ckpt", every, 5)
    assert resumed.steps == whole.steps
    assert finished == expected and resumed.episodes == whole.episodes
    for a, b in zip(_weights(resumed), _weights(whole), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_restores_normalisation_statistics_and_continuous_episodes(tmp_path):
    cls, cfg = SMALL["ppo"]()
    steps = 6 * cfg.num_envs * cfg.n_steps
    whole = cls("Pendulum-v1", cfg, seed=5, normalize=True)
    expected = whole.learn(steps)
    resumed, finished = _interrupted_then_resumed(
        cls, cfg, "Pendulum-v1", steps, tmp_path / "ckpt", 2 * cfg.num_envs * cfg.n_steps, 3, normalize=True
    )
    assert finished == expected
    for a, b in zip(_weights(resumed), _weights(whole), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    mean = whole.envs.obs_normalizer.statistics.mean
    np.testing.assert_array_equal(resumed.envs.obs_normalizer.statistics.mean, mean)


def test_state_dict_round_trip_mid_episode_continues_identically():
    cls, cfg = SMALL["a2c"]()
    # Built first: building an agent seeds torch's global RNG, which samples both agents' actions.
    second = cls("CartPole-v1", cfg, seed=9)  # another seed: everything must come from the state
    first = cls("CartPole-v1", cfg, seed=2)
    first.learn(3 * cfg.num_envs * cfg.n_steps)
    state = first.state_dict()
    assert any(env["steps"] > 0 for env in state["collector"]["environments"]), (
        "the snapshot should be mid-episode"
    )
    a = first.learn(64)
    second.load_state_dict(state)  # the state is a copy: unchanged by first's training since
    b = second.learn(64)
    assert a == b
    for x, y in zip(_weights(first), _weights(second), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    cls, cfg = SMALL["a2c"]()
    cls("CartPole-v1", cfg, seed=0).learn(32, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatch, match="seed"):
        cls("CartPole-v1", cfg, seed=1).learn(32, checkpoint_dir=tmp_path)


def test_state_of_another_agent_or_environment_is_refused():
    a2c, a2c_cfg = SMALL["a2c"]()
    ppo, ppo_cfg = SMALL["ppo"]()
    state = ppo("CartPole-v1", ppo_cfg, seed=0).state_dict()
    with pytest.raises(ValueError, match="optimisers"):
        a2c("CartPole-v1", a2c_cfg, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="keys"):
        a2c("CartPole-v1", a2c_cfg, seed=0).load_state_dict({"policy": {}})
    cartpole = a2c("CartPole-v1", a2c_cfg, seed=0)
    cartpole.learn(48)
    acrobot = a2c("Acrobot-v1", a2c_cfg, seed=0)
    with pytest.raises((ValueError, RuntimeError)):
        acrobot.load_state_dict(cartpole.state_dict())


def test_bad_arguments_are_refused():
    cls, cfg = SMALL["a2c"]()
    with pytest.raises(TypeError, match="A2CConfig"):
        cls("CartPole-v1", PPOAgentConfig())
    with pytest.raises(ValueError, match="seed"):
        cls("CartPole-v1", cfg, seed=-1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        cls("CartPole-v1", cfg).learn(16, checkpoint_every=-1)


def test_replayable_episodes_restores_the_position_after_an_unseeded_reset():
    env = ReplayableEpisodes(make_env("CartPole-v1", seed=0))
    env.reset(seed=0)
    for _ in range(200):  # run through at least one unseeded reset
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    assert env.snapshot()["start"]["seed"] is None
    snapshot = env.snapshot()
    follow = [env.step(1)[0] for _ in range(3)]
    other = ReplayableEpisodes(make_env("CartPole-v1", seed=123))
    other.reset(seed=123)
    np.testing.assert_array_equal(other.restore(snapshot), snapshot["observation"].numpy())
    np.testing.assert_array_equal([other.step(1)[0] for _ in range(3)], follow)
    changed = dict(snapshot, observation=snapshot["observation"] + 1.0)
    with pytest.raises(ValueError, match="saved observation"):
        other.restore(changed)
