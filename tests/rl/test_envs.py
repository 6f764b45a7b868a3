"""aicanon.rl.envs and aicanon.rl.evaluation: our environment passes Gymnasium's checker, seeding
repeats, vector environments autoreset in the same step, the evaluation protocol records its seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aicanon.rl.envs import POINT_MASS_ID, PointMass, make_env, make_vector_env
from aicanon.rl.evaluation import evaluate_policy

gym = pytest.importorskip("gymnasium")
pytestmark = pytest.mark.paper("gym")


def test_point_mass_passes_the_gymnasium_checker():
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        check_env(gym.make(POINT_MASS_ID).unwrapped, skip_render_check=True)


def test_point_mass_dynamics_and_time_limit():
    env = PointMass(horizon=3)
    observation, _ = env.reset(seed=0)
    position, goal = observation[:2].copy(), observation[4:]
    observation, reward, terminated, truncated, _ = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(observation[2:4], [0.1, -0.1], atol=1e-6)
    np.testing.assert_allclose(observation[:2], position + 0.2 * np.array([0.1, -0.1]), atol=1e-6)
    assert reward == pytest.approx(-np.linalg.norm(observation[:2] - goal), abs=1e-6)
    assert not terminated and not truncated
    env.step(np.zeros(2))
    assert env.step(np.zeros(2))[3]  # truncated at the horizon
    with pytest.raises(ValueError, match="action must have shape"):
        env.step(np.zeros(3))


def _trajectory(env, seed):
    observation, _ = env.reset(seed=seed)
    observations = [observation]
    for _ in range(20):
        observation, *_ = env.step(env.action_space.sample())
        observations.append(observation)
    return np.stack(observations)


def test_seeding_repeats():
    a = make_env("Pendulum-v1", seed=3, rescale_actions=True)
    b = make_env("Pendulum-v1", seed=3, rescale_actions=True)
    np.testing.assert_array_equal(_trajectory(a, 3), _trajectory(b, 3))
    assert not np.array_equal(_trajectory(a, 3), _trajectory(make_env("Pendulum-v1", seed=4), 4))
    assert a.action_space.low.tolist() == [-1.0] and a.action_space.high.tolist() == [1.0]


def test_vector_env_autoresets_in_the_same_step_with_the_final_observation():
    envs = make_vector_env(POINT_MASS_ID, 2, seed=0, max_episode_steps=4)
    observation, _ = envs.reset(seed=0)
    for step in range(4):
        observation, _, terminated, truncated, info = envs.step(np.zeros((2, 2), dtype=np.float32))
    assert truncated.all() and not terminated.any()
    assert "final_obs" in info
    assert not np.allclose(info["final_obs"][0], observation[0])  # the new episode's first observation


def test_bad_environment_ids_and_options():
    with pytest.raises(ValueError, match="not a registered"):
        make_env("CartPol-v1")
    with pytest.raises(TypeError, match="env_id"):
        make_env(3)
    with pytest.raises(ValueError, match="rescale_actions needs a Box"):
        make_env("CartPole-v1", rescale_actions=True)


def test_evaluation_protocol_records_seeds_and_repeats():
    env = make_env(POINT_MASS_ID)

    def policy(observation):  # push towards the goal
        return np.clip((observation[4:] - observation[:2]) * 3 - observation[2:4], -1, 1)

    first = evaluate_policy(policy, env, episodes=3, seed=10)
    again = evaluate_policy(policy, lambda: make_env(POINT_MASS_ID), episodes=3, seed=10)
    assert first.seeds == [10, 11, 12] and first.lengths == [50, 50, 50]
    assert first.returns == again.returns
    idle = evaluate_policy(lambda o: np.zeros(2, dtype=np.float32), env, episodes=3, seed=10)
    assert first.mean > idle.mean + 5  # the controller beats doing nothing
    assert first.to_dict()["mean"] == pytest.approx(np.mean(first.returns))
    short = evaluate_policy(policy, env, episodes=1, seed=0, max_steps=7)
    assert short.lengths == [7]


def test_evaluation_refuses_bad_input():
    with pytest.raises(ValueError, match="episodes"):
        evaluate_policy(lambda o: 0, make_env("CartPole-v1"), episodes=0)
    with pytest.raises(TypeError, match="policy"):
        evaluate_policy(None, make_env("CartPole-v1"))
    with pytest.raises(TypeError, match="env"):
        evaluate_policy(lambda o: 0, object())


def test_vector_env_normalizes_on_request():
    from aicanon.rl.wrappers import VectorNormalize

    envs = make_vector_env("CartPole-v1", 2, seed=0, normalize={"rewards": False})
    assert isinstance(envs, VectorNormalize)
    observation, _ = envs.reset(seed=0)
    assert observation.shape == (2, 4)
    assert not isinstance(make_vector_env("CartPole-v1", 2, normalize=False), VectorNormalize)
    with pytest.raises(TypeError, match="normalize must be None, a bool or a dict"):
        make_vector_env("CartPole-v1", 2, normalize="yes")
