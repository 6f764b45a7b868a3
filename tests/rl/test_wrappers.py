"""aicanon.rl.wrappers: running statistics (Chan et al.'s parallel update), observation and reward
normalisation equal to stable-baselines3's VecNormalize on the same trajectory and to Gymnasium's
wrappers where their definitions agree (and different exactly where they say they differ), saved
and restored statistics, frozen statistics at evaluation, frame stacking, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aicanon.rl.envs import POINT_MASS_ID, make_env, make_vector_env
from aicanon.rl.evaluation import evaluate_policy
from aicanon.rl.wrappers import (
    NormalizeEnv,
    ObservationNormalizer,
    RewardNormalizer,
    RunningMeanStd,
    VectorNormalize,
    frame_stack,
    normalize_env,
)

gym = pytest.importorskip("gymnasium")
pytestmark = pytest.mark.paper("gym")


# ----------------------------------------------------------------------------- running statistics
def test_running_statistics_by_hand():
    stats = RunningMeanStd((), epsilon=1e-4)
    stats.update(np.array([1.0, 3.0]))  # batch mean 2, variance 1, count 2
    n = 2 + 1e-4
    mean = 2 * 2 / n
    m2 = 1.0 * 1e-4 + 1.0 * 2 + (2.0**2) * 1e-4 * 2 / n
    assert stats.mean == pytest.approx(mean, rel=1e-15)
    assert stats.var == pytest.approx(m2 / n, rel=1e-15)
    assert stats.count == pytest.approx(n)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)), elements=st.floats(-1e3, 1e3)),
    arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)), elements=st.floats(-1e3, 1e3)),
)
def test_parallel_update_equals_one_pass_and_the_sample_moments(first, second):
    # Chan et al.: merging two trackers = one tracker over all the data = the data's moments
    # (up to the references' pseudo-count of 1e-4 at the start, made negligible here).
    together = RunningMeanStd((3,), epsilon=1e-12)
    together.update(np.concatenate([first, second]))
    a, b = RunningMeanStd((3,), epsilon=1e-12), RunningMeanStd((3,), epsilon=1e-12)
    a.update(first)
    b.update(second)
    a.merge(b)
    data = np.concatenate([first, second])
    scale = 1.0 + np.abs(data).max() ** 2
    np.testing.assert_allclose(a.mean, together.mean, atol=1e-9 * scale**0.5)
    np.testing.assert_allclose(a.var, together.var, atol=1e-9 * scale)
    np.testing.assert_allclose(together.mean, data.mean(0), atol=1e-9 * scale**0.5)
    np.testing.assert_allclose(together.var, data.var(0), atol=1e-9 * scale)


def test_normalised_observations_are_centred_scaled_and_clipped():
    rng = np.random.default_rng(0)
    data = rng.normal([5.0, -3.0], [10.0, 0.01], size=(5000, 2))
    normalizer = ObservationNormalizer((2,), clip=5.0)
    normalizer(data)
    out = normalizer.normalize(data)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-3)
    # The references' start (mean 0, variance 1, count 1e-4) leaves 0.1 % on the coordinate of std 0.01.
    np.testing.assert_allclose(out.std(0), 1.0, atol=2e-3)
    assert normalizer.normalize(np.array([1e6, -1e6])).tolist() == [5.0, -5.0]
    unclipped = ObservationNormalizer((2,), clip=None)
    unclipped(data)
    assert unclipped.normalize(np.array([1e6, 0.0]))[0] > 1e4


def test_reward_scaling_follows_the_discounted_return():
    normalizer = RewardNormalizer(num_envs=2, gamma=0.5, clip=None)
    out1 = normalizer(np.array([1.0, 2.0]), np.array([False, True]))
    np.testing.assert_allclose(normalizer.returns, [1.0, 0.0])  # R restarts after an episode ends
    stats = RunningMeanStd(())
    stats.update(np.array([1.0, 2.0]))
    np.testing.assert_allclose(out1, np.array([1.0, 2.0]) / np.sqrt(stats.var + 1e-8))
    out2 = normalizer(np.array([1.0, 1.0]), np.array([False, False]))
    stats.update(np.array([1.5, 1.0]))  # R = 0.5 * 1 + 1 and 0.5 * 0 + 1
    np.testing.assert_allclose(out2, 1.0 / np.sqrt(stats.var + 1e-8))
    clipped = RewardNormalizer(1, clip=2.0)
    assert clipped(np.array([1e6]), np.array([False]))[0] == 2.0


# ----------------------------------------------------------------------------- reference parity
def _sb3_vec_env(env_id, num_envs, seed, **normalize):
    from stable_baselines3.common.vec_env import DummyVecEnv
    from stable_baselines3.common.vec_env import VecNormalize as SB3VecNormalize

    venv = SB3VecNormalize(DummyVecEnv([lambda: gym.make(env_id) for _ in range(num_envs)]), **normalize)
    venv.seed(seed)
    return venv


@pytest.mark.parity
@pytest.mark.parametrize(
    ("env_id", "settings_"),
    [
        ("CartPole-v1", {"gamma": 0.99}),  # terminations
        (POINT_MASS_ID, {"gamma": 0.9, "clip_obs": 1.5, "clip_reward": 0.5}),  # truncations, clipping
        ("Pendulum-v1", {"norm_obs": False, "gamma": 0.99, "epsilon": 1e-4}),  # rewards only
    ],
)
def test_vector_normalisation_equals_stable_baselines3_vecnormalize(env_id, settings_):
    pytest.importorskip("stable_baselines3")
    num_envs, seed = 3, 7
    ours = VectorNormalize(
        make_vector_env(env_id, num_envs, seed=seed),
        observations=settings_.get("norm_obs", True),
        gamma=settings_["gamma"],
        epsilon=settings_.get("epsilon", 1e-8),
        clip_observations=settings_.get("clip_obs", 10.0),
        clip_rewards=settings_.get("clip_reward", 10.0),
    )
    theirs = _sb3_vec_env(env_id, num_envs, seed, **settings_)
    observation, _ = ours.reset(seed=seed)
    np.testing.assert_array_equal(observation, theirs.reset())
    action_space = ours.single_action_space
    action_space.seed(0)
    ends = 0
    for _ in range(300):
        actions = np.stack([action_space.sample() for _ in range(num_envs)])
        observation, reward, terminated, truncated, info = ours.step(actions)
        their_observation, their_reward, dones, infos = theirs.step(actions)
        np.testing.assert_array_equal(np.logical_or(terminated, truncated), dones)
        np.testing.assert_array_equal(observation, their_observation)
        # SB3's DummyVecEnv keeps rewards in float32 and returns them as float32.
        np.testing.assert_allclose(reward.astype(np.float32), their_reward, rtol=2e-7, atol=1e-7)
        for i in np.flatnonzero(dones):
            np.testing.assert_array_equal(info["final_obs"][i], infos[i]["terminal_observation"])
            ends += 1
    assert ends > 0
    if ours.obs_normalizer is not None:
        np.testing.assert_array_equal(ours.obs_normalizer.statistics.mean, theirs.obs_rms.mean)
        np.testing.assert_array_equal(ours.obs_normalizer.statistics.var, theirs.obs_rms.var)
    assert ours.reward_normalizer.statistics.count == theirs.ret_rms.count
    np.testing.assert_allclose(ours.reward_normalizer.statistics.var, theirs.ret_rms.var, rtol=1e-6)


@pytest.mark.parity
def test_observation_normalisation_equals_gymnasium_with_float32_statistics():
    # Gymnasium keeps float32 statistics and does not clip: with the same settings, exactly its values.
    theirs = gym.wrappers.NormalizeObservation(gym.make("CartPole-v1"))
    raw = gym.make("CartPole-v1")
    ours = ObservationNormalizer((4,), clip=None, dtype=np.float32)
    observation, _ = theirs.reset(seed=0)
    np.testing.assert_array_equal(observation, ours(raw.reset(seed=0)[0]))
    for step in range(200):
        action = step % 2
        observation, *_, terminated, truncated, _ = theirs.step(action)
        np.testing.assert_array_equal(observation, ours(raw.step(action)[0]))
        if terminated or truncated:
            np.testing.assert_array_equal(theirs.reset(seed=step)[0], ours(raw.reset(seed=step)[0]))


@pytest.mark.parity
def test_reward_normalisation_agrees_with_gymnasium_within_an_episode_and_differs_where_stated():
    theirs = gym.wrappers.NormalizeReward(gym.make("Pendulum-v1"), gamma=0.99)
    raw = gym.make("Pendulum-v1")
    ours = RewardNormalizer(1, gamma=0.99, clip=None)
    action = np.array([0.5], dtype=np.float32)
    for episode in range(2):
        theirs.reset(seed=episode)
        raw.reset(seed=episode)
        for step in range(200):
            _, reward, *_ = theirs.step(action)
            _, raw_reward, terminated, truncated, _ = raw.step(action)
            mine = ours(np.array([raw_reward]), np.array([terminated or truncated]))[0]
            if episode == 0:
                assert mine == reward  # a single episode (ended by truncation): exactly equal
            elif step == 0:
                # Gymnasium's single-environment wrapper carries the truncated episode's return
                # into the next one; ours (and SB3's) restarts it.
                assert mine != pytest.approx(reward, rel=1e-3)
    # At a terminal step Gymnasium's accumulator is the reward alone: R = γ(1 − terminated)R + r.
    theirs = gym.wrappers.NormalizeReward(gym.make("CartPole-v1"), gamma=0.99)
    theirs.reset(seed=0)
    terminated, steps = False, 0
    while not terminated:
        terminated = theirs.step(1)[2]
        steps += 1
    assert steps > 1 and float(theirs.discounted_reward[0]) == 1.0
    ours = RewardNormalizer(1, gamma=0.99)
    for _ in range(steps - 1):
        ours(np.array([1.0]), np.array([False]))
    before = ours.returns[0]
    ours(np.array([1.0]), np.array([True]))
    assert before > 1.0 and ours.statistics.count == pytest.approx(steps + 1e-4)  # R = γ R + 1 counted


# ----------------------------------------------------------------------------- state and evaluation
def _run(env, steps, action_seed=0):
    space = env.single_action_space if hasattr(env, "single_action_space") else env.action_space
    space.seed(action_seed)
    out = []
    for _ in range(steps):
        actions = (
            np.stack([space.sample() for _ in range(env.num_envs)])
            if hasattr(env, "num_envs")
            else space.sample()
        )
        observation, reward, *_ = env.step(actions)
        out.append((np.array(observation, copy=True), np.array(reward, copy=True)))
    return out


def test_statistics_survive_a_checkpoint_round_trip(tmp_path):
    from aicanon.core.checkpoint import load_checkpoint, save_checkpoint

    trained = VectorNormalize(make_vector_env(POINT_MASS_ID, 2, seed=0))
    trained.reset(seed=0)
    _run(trained, 120)
    save_checkpoint(tmp_path / "normalizer", {"normalizer": trained.state_dict()}, config={"run": 1})
    restored = VectorNormalize(make_vector_env(POINT_MASS_ID, 2, seed=0))
    restored.load_state_dict(load_checkpoint(tmp_path / "normalizer", config={"run": 1})["normalizer"])
    assert restored.obs_normalizer.statistics.count == trained.obs_normalizer.statistics.count
    # Same environment state on both sides (fresh episodes from the same seed): identical outputs.
    trained.reset(seed=5)
    restored.reset(seed=5)
    for (o1, r1), (o2, r2) in zip(_run(trained, 60, 3), _run(restored, 60, 3), strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(
        trained.obs_normalizer.statistics.var, restored.obs_normalizer.statistics.var
    )


def test_frozen_statistics_at_evaluation():
    env = NormalizeEnv(make_env("Pendulum-v1"))
    env.reset(seed=0)
    _run(env, 50)
    frozen = env.observation_transform()
    before = env.state_dict()
    env.eval()
    assert not env.training and not env.obs_normalizer.training
    env.reset(seed=1)
    _run(env, 50)
    after = env.state_dict()
    for part in ("observations", "rewards"):
        for key in ("mean", "var"):
            assert after[part]["statistics"][key].equal(before[part]["statistics"][key])
    env.train()
    _run(env, 10)
    assert env.obs_normalizer.statistics.count > before["observations"]["statistics"]["count"]
    # The transform handed to evaluation is a snapshot: later training does not move it.
    observation = np.array([1.0, 0.0, 2.0], dtype=np.float32)
    snapshot = frozen(observation)
    _run(env, 20)
    np.testing.assert_array_equal(frozen(observation), snapshot)
    result = evaluate_policy(
        lambda o: np.clip(o[:1], -2, 2), make_env("Pendulum-v1"), 2, observation_transform=frozen
    )
    assert len(result.returns) == 2


def test_single_environment_wrapper_updates_on_reset_and_every_step():
    env = normalize_env(make_env("CartPole-v1"), rewards=False, clip_observations=None)
    assert isinstance(env, NormalizeEnv) and env.reward_normalizer is None
    observation, _ = env.reset(seed=0)
    assert env.obs_normalizer.statistics.count == pytest.approx(1 + 1e-4)
    _, reward, *_ = env.step(0)
    assert reward == 1.0 and env.original_reward[0] == 1.0  # rewards untouched
    assert env.obs_normalizer.statistics.count == pytest.approx(2 + 1e-4)
    assert isinstance(normalize_env(make_vector_env("CartPole-v1", 2)), VectorNormalize)


def test_frame_stack_is_gymnasiums_and_flattens_for_mlps():
    stacked = frame_stack(make_env("Pendulum-v1"), 4)
    flat = frame_stack(make_env("Pendulum-v1"), 4, flatten=True)
    assert stacked.observation_space.shape == (4, 3) and flat.observation_space.shape == (12,)
    first, _ = stacked.reset(seed=0)
    np.testing.assert_array_equal(first[0], first[3])  # padded with the first observation
    second, *_ = stacked.step(np.zeros(1, dtype=np.float32))
    np.testing.assert_array_equal(second[:3], first[1:])
    flat.reset(seed=0)
    np.testing.assert_array_equal(flat.step(np.zeros(1, dtype=np.float32))[0], second.reshape(-1))


# ----------------------------------------------------------------------------- bad input
class _NaNReward(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), float("nan"), False, False, {}


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="Box observation space"):
        NormalizeEnv(gym.make("FrozenLake-v1"))
    NormalizeEnv(gym.make("FrozenLake-v1"), observations=False)  # rewards alone are fine
    for rewards in (True, False):
        env = NormalizeEnv(_NaNReward(), rewards=rewards)
        env.reset(seed=0)
        with pytest.raises(ValueError, match="rewards must be finite"):
            env.step(0)
    with pytest.raises(TypeError, match="gymnasium.Env"):
        NormalizeEnv(object())
    with pytest.raises(TypeError, match="VectorEnv"):
        VectorNormalize(make_env("CartPole-v1"))
    next_step = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="same-step autoreset"):
        VectorNormalize(next_step)
    with pytest.raises(ValueError, match="epsilon"):
        ObservationNormalizer((2,), epsilon=0.0)
    with pytest.raises(ValueError, match="clip"):
        ObservationNormalizer((2,), clip=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        RewardNormalizer(1, gamma=1.5)
    with pytest.raises(ValueError, match="observations must have shape"):
        ObservationNormalizer((3,))(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="observations must be finite"):
        ObservationNormalizer((2,))(np.array([0.0, np.inf]))
    with pytest.raises(ValueError, match="rewards must have shape"):
        RewardNormalizer(2)(np.zeros(3), np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="batch must have shape"):
        RunningMeanStd((2,)).update(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="dtype"):
        RunningMeanStd((2,), dtype=np.int64)
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd((2,)).load_state_dict(RunningMeanStd((3,)).state_dict())
    env = VectorNormalize(make_vector_env("CartPole-v1", 2))
    with pytest.raises(ValueError, match="normalisers"):
        env.load_state_dict(VectorNormalize(make_vector_env("CartPole-v1", 2), rewards=False).state_dict())
    with pytest.raises(ValueError, match="returns of 3 environments"):
        env.reward_normalizer.load_state_dict(RewardNormalizer(3).state_dict())
    with pytest.raises(TypeError, match="training"):
        env.training = "no"
    with pytest.raises(ValueError, match="stack_size"):
        frame_stack(make_env("CartPole-v1"), 0)
    with pytest.raises(ValueError, match="padding_type"):
        frame_stack(make_env("CartPole-v1"), 2, padding_type="same")
