"""aicanon.rl.rollout: GAE against the direct sum and stable-baselines3's buffer (truncation included),
the collector's bootstrap values at time limits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Independent, Normal

from aicanon.rl.envs import POINT_MASS_ID, make_vector_env
from aicanon.rl.rollout import RolloutCollector, gae

gym = pytest.importorskip("gymnasium")
pytestmark = pytest.mark.paper("drl-survey")


def _episode_data(seed=0, steps=12, envs=3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    values = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    terminated = torch.rand(steps, envs, generator=g) < 0.15
    truncated = (torch.rand(steps, envs, generator=g) < 0.15) & ~terminated
    done = terminated | truncated
    next_values = torch.cat([values[1:], torch.randn(1, envs, generator=g, dtype=torch.float64)])
    final = torch.randn(steps, envs, generator=g, dtype=torch.float64)  # V of the final observations
    next_values = torch.where(done, final, next_values)
    return rewards, values, next_values, terminated, truncated


def test_gae_equals_the_direct_sum_of_discounted_td_errors():
    rewards, values, next_values, terminated, truncated = _episode_data()
    gamma, lam = 0.9, 0.8
    advantages, returns = gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    deltas = rewards + gamma * (~terminated).double() * next_values - values
    done = terminated | truncated
    steps, envs = rewards.shape
    for n in range(envs):
        for t in range(steps):
            total, weight = 0.0, 1.0
            for k in range(t, steps):
                total += weight * deltas[k, n]
                if done[k, n]:
                    break
                weight *= gamma * lam
            assert advantages[t, n].item() == pytest.approx(float(total), abs=1e-10)
    torch.testing.assert_close(returns, advantages + values)


def test_gae_limits():
    rewards, values, next_values, terminated, truncated = _episode_data(seed=1)
    td, _ = gae(rewards, values, next_values, terminated, truncated, 0.99, 0.0)
    torch.testing.assert_close(td, rewards + 0.99 * (~terminated).double() * next_values - values)


@pytest.mark.parity
def test_gae_matches_stable_baselines3_rollout_buffer():
    from stable_baselines3.common.buffers import RolloutBuffer

    rewards, values, next_values, terminated, truncated = _episode_data(seed=2)
    steps, envs = rewards.shape
    gamma, lam = 0.97, 0.9
    done = (terminated | truncated).numpy()
    buffer = RolloutBuffer(
        steps, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2), "cpu", lam, gamma, n_envs=envs
    )
    for t in range(steps):
        # SB3 bootstraps a time limit by adding γ V(final observation) to the reward.
        reward = rewards[t] + gamma * truncated[t] * next_values[t]
        start = np.zeros(envs) if t == 0 else done[t - 1].astype(np.float64)
        buffer.add(
            np.zeros((envs, 1)), np.zeros((envs, 1)), reward.numpy(), start, values[t], torch.zeros(envs)
        )
    buffer.compute_returns_and_advantage(next_values[-1], done[-1])
    ours, returns = gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    np.testing.assert_allclose(ours.numpy(), buffer.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns.numpy(), buffer.returns, rtol=1e-5, atol=1e-5)


def test_gae_refuses_bad_input():
    rewards, values, next_values, terminated, truncated = _episode_data()
    with pytest.raises(ValueError, match="values must be a tensor of shape"):
        gae(rewards, values[:-1], next_values, terminated, truncated)
    with pytest.raises(ValueError, match="gamma"):
        gae(rewards, values, next_values, terminated, truncated, gamma=1.5)


class _Policy(torch.nn.Module):
    """A fixed Gaussian policy whose value is a known function of the observation."""

    def forward(self, observation):
        value = observation.sum(-1)
        return Independent(
            Normal(torch.zeros(len(observation), 2), torch.ones(len(observation), 2)), 1
        ), value


def test_collector_bootstraps_time_limits_from_the_final_observation():
    torch.manual_seed(0)
    envs = make_vector_env(POINT_MASS_ID, 2, seed=0, max_episode_steps=4)
    collector = RolloutCollector(envs, seed=0)
    rollout = collector.collect(_Policy(), 10)
    assert rollout.observations.shape == (10, 2, 6) and rollout.actions.shape == (10, 2, 2)
    assert rollout.truncated[3].all() and rollout.truncated[7].all() and rollout.truncated.sum() == 4
    assert sorted(length for _, length in rollout.episodes) == [4, 4, 4, 4]
    # Within an episode V(s_{t+1}) is the next step's value; at a time limit it is the final one's.
    for t in (0, 1, 2, 4, 5, 6, 8):
        torch.testing.assert_close(rollout.next_values[t], rollout.values[t + 1])
    assert not torch.allclose(rollout.next_values[3], rollout.values[4])
    returns = rollout.rewards.reshape(10, 2)[:4].sum(0).tolist()
    assert sorted(returns) == pytest.approx(sorted(r for r, _ in rollout.episodes[:2]))
    advantages, _ = rollout.advantages(0.99, 0.95)
    assert advantages.shape == (10, 2)
    assert rollout.flat()["observations"].shape == (20, 6)


def test_collector_continues_episodes_across_calls_and_repeats_with_the_seed():
    def run():
        torch.manual_seed(1)
        collector = RolloutCollector(make_vector_env("CartPole-v1", 2, seed=5), seed=5)
        policy = lambda o: (Categorical(logits=torch.zeros(len(o), 2)), torch.zeros(len(o)))  # noqa: E731
        first, second = collector.collect(policy, 30), collector.collect(policy, 30)
        return first, second

    a1, a2 = run()
    b1, b2 = run()
    assert torch.equal(a2.observations, b2.observations) and torch.equal(a1.actions, b1.actions)
    assert a1.actions.dtype == torch.int64
    lengths = [n for _, n in a1.episodes + a2.episodes]
    assert lengths and all(n >= 1 for n in lengths)


def test_collector_needs_same_step_autoreset():
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="same-step autoreset"):
        RolloutCollector(envs)


def test_next_values_are_the_values_of_each_next_state_including_the_rollouts_last():
    """Without an episode end, V(s_{t+1}) is taken from the next step's forward pass; at the rollout's
    last step it is computed on the observation the collector keeps: both must equal V(s_{t+1})."""
    envs = make_vector_env("CartPole-v1", 3, seed=4)
    weight = torch.tensor([0.3, -1.2, 2.0, 0.7])

    def policy(observations):
        return Categorical(logits=torch.zeros(observations.shape[0], 2)), observations @ weight

    collector = RolloutCollector(envs, seed=4)
    rollout = collector.collect(policy, 30)
    done = (rollout.terminated + rollout.truncated) > 0
    assert done.any(), "the check needs episode ends within the rollout"
    for t in range(29):
        expected = rollout.observations[t + 1] @ weight
        keep = ~done[t]
        torch.testing.assert_close(rollout.next_values[t][keep], expected[keep])
    last = torch.as_tensor(np.asarray(collector.observation), dtype=torch.float32) @ weight
    keep = ~done[-1]
    torch.testing.assert_close(rollout.next_values[-1][keep], last[keep])
