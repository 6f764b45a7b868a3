"""aicanon.rl.ppo_agent: Algorithm 1's loop (rollout sizes, annealing, the update it calls), learning
on CartPole, continuous actions on PointMass, repeatability, bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.rl.ppo import PPOConfig
from aicanon.rl.ppo_agent import PPOAgent, PPOAgentConfig

pytestmark = pytest.mark.paper("drl-survey")


def _small(**kwargs):
    update = PPOConfig(epochs=4, minibatch_size=64, lr=1e-3)
    return PPOAgentConfig(num_envs=4, n_steps=32, update=update, **kwargs)


def test_iteration_sizes_and_annealing():
    agent = PPOAgent("CartPole-v1", _small(), seed=0)
    calls = []
    original = agent.ppo.update

    def spy(batch, generator=None):
        calls.append(
            (batch["observations"].shape, agent.ppo.optimizer.param_groups[0]["lr"], agent.ppo.cfg.clip_range)
        )
        return original(batch, generator)

    agent.ppo.update = spy
    agent.learn(256, total_steps=512)
    assert agent.steps == 256
    assert [shape for shape, _, _ in calls] == [(128, 4), (128, 4)]  # N x T = 4 x 32 steps per iteration
    # Linear decay to 0 over 512 steps: at 0 and 128 steps, 1 and 3/4 of the initial values.
    assert [lr for _, lr, _ in calls] == pytest.approx([1e-3, 0.75e-3])
    assert [clip for _, _, clip in calls] == pytest.approx([0.2, 0.15])
    assert agent.cfg.update.clip_range == 0.2  # the config itself is left as it was


def test_learns_cartpole_and_repeats():
    agent = PPOAgent("CartPole-v1", _small(anneal=False), seed=1)
    returns = [r for r, _ in agent.learn(8192)]
    first, last = returns[:20], returns[-10:]
    assert sum(last) / len(last) > 100 > sum(first) / len(first)
    runs = [PPOAgent("CartPole-v1", _small(), seed=1).learn(1024) for _ in range(2)]
    assert runs[0] == runs[1]


def test_continuous_actions_on_point_mass():
    agent = PPOAgent("aicanon/PointMass-v0", _small(), seed=0)
    assert agent.policy.continuous and agent.policy.log_std.shape == (2,)
    before = agent.policy.log_std.detach().clone()
    agent.learn(256)
    assert not torch.equal(before, agent.policy.log_std.detach())
    assert agent.policy.act(torch.zeros(6).numpy()).shape == (2,)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="PPO cannot act in Blackjack-v1.*Box observation space"):
        PPOAgent("Blackjack-v1")
    with pytest.raises(TypeError, match="update must be a PPOConfig"):
        PPOAgentConfig(update={"epochs": 3})
    with pytest.raises(ValueError, match="n_steps"):
        PPOAgentConfig(n_steps=0)
    with pytest.raises(ValueError, match="steps must be"):
        PPOAgent("CartPole-v1", _small()).learn(0)
