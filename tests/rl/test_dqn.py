"""aicanon.rl.dqn and the Q-networks: the (Double) DQN targets by hand, the dueling head's
identities, one update against stable-baselines3's DQN.train on a fixed batch, bad input."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from aicanon.rl.dqn import DQN, DQNConfig, dqn_loss, dqn_targets
from aicanon.rl.envs import POINT_MASS_ID, make_env
from aicanon.rl.networks import QNetwork

pytestmark = pytest.mark.paper("drl-survey")


class _Table(torch.nn.Module):
    """Q-values looked up by the first observation feature (an integer state id)."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table))

    def forward(self, observations):
        return self.table[observations[:, 0].long()]


def _batch():
    return {
        "observation": torch.tensor([[0.0], [1.0]]),
        "action": torch.tensor([1, 0]),
        "reward": torch.tensor([1.0, -1.0]),
        "next_observation": torch.tensor([[1.0], [2.0]]),
        "terminated": torch.tensor([0.0, 1.0]),
    }


def test_targets_by_hand_dqn_and_double_dqn():
    online = _Table([[0.0, 1.0], [5.0, 2.0], [0.0, 0.0]])
    target = _Table([[0.0, 0.0], [3.0, 4.0], [9.0, 9.0]])
    batch = _batch()
    # DQN: y = r + γ max_a' Q⁻(s', a'): state 1 -> max(3, 4) = 4; the second transition is terminal.
    torch.testing.assert_close(dqn_targets(target, batch, 0.5), torch.tensor([1.0 + 0.5 * 4.0, -1.0]))
    # Double DQN: the online net picks a' = argmax(5, 2) = 0, the target net evaluates it: 3.
    torch.testing.assert_close(
        dqn_targets(target, batch, 0.5, online_network=online), torch.tensor([1.0 + 0.5 * 3.0, -1.0])
    )
    # Same network on both sides: Double DQN's target is DQN's.
    torch.testing.assert_close(dqn_targets(target, batch, 0.9, target), dqn_targets(target, batch, 0.9))
    # The loss: Huber of Q(s, a) - y = [1 - 3, 5 - (-1)] = [-2, 6]: |x| - 1/2 beyond 1 -> [1.5, 5.5].
    loss = dqn_loss(online, target, batch, 0.5)
    torch.testing.assert_close(loss, torch.tensor((1.5 + 5.5) / 2))


def test_dueling_head_identities():
    torch.manual_seed(0)
    network = QNetwork(4, 3, hidden=(16, 16), dueling=True)
    x = torch.randn(10, 4)
    q = network(x)
    features = network.trunk(x)
    value = network.value_stream(features).squeeze(-1)
    advantages = network.advantage_stream(features)
    # Eq. 9: the mean over actions of Q is V, and Q - V is the advantage less its mean.
    torch.testing.assert_close(q.mean(-1), value)
    torch.testing.assert_close(q - value[:, None], advantages - advantages.mean(-1, keepdim=True))
    assert QNetwork(4, 3, hidden=(16,))(x).shape == (10, 3)


def _sb3_model(lr=0.05):
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import configure

    model = sb3.DQN(
        "MlpPolicy",
        "CartPole-v1",
        policy_kwargs={"net_arch": [64, 64]},
        learning_rate=lr,
        max_grad_norm=0.5,
        gamma=0.9,
        seed=0,
        device="cpu",
    )
    model.set_logger(configure(None, []))
    return model


@pytest.mark.parity
@pytest.mark.parametrize("gradient_steps", [1, 3])
def test_update_equals_stable_baselines3_dqn_train(gradient_steps):
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    model = _sb3_model()
    with torch.no_grad():  # a target network that differs from the online one
        for p in model.q_net_target.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    g = torch.Generator().manual_seed(1)
    n = 32
    batch = {
        "observation": torch.randn(n, 4, generator=g),
        "action": torch.randint(0, 2, (n,), generator=g),
        "reward": torch.randn(n, generator=g),
        "next_observation": torch.randn(n, 4, generator=g),
        "terminated": (torch.rand(n, generator=g) < 0.3).float(),
    }
    samples = ReplayBufferSamples(
        batch["observation"],
        batch["action"][:, None],
        batch["next_observation"],
        batch["terminated"][:, None],
        batch["reward"][:, None],
        None,
    )
    model.replay_buffer.sample = lambda batch_size, env=None: samples
    ours = DQN(
        make_env("CartPole-v1"), DQNConfig(hidden=(64, 64), learning_rate=0.05, max_grad_norm=0.5, gamma=0.9)
    )
    ours.q_network.q.load_state_dict(copy.deepcopy(model.q_net.q_net.state_dict()))
    ours.target_network.q.load_state_dict(copy.deepcopy(model.q_net_target.q_net.state_dict()))
    # Plain SGD on both sides: Adam's first steps see only the gradients' signs and would hide errors.
    model.policy.optimizer = torch.optim.SGD(model.q_net.parameters(), lr=0.05)
    ours.optimizer = torch.optim.SGD(ours.q_network.parameters(), lr=0.05)
    with torch.no_grad():
        expected_loss = torch.nn.functional.smooth_l1_loss(
            model.q_net(batch["observation"]).gather(1, batch["action"][:, None]).squeeze(1),
            batch["reward"]
            + 0.9 * (1 - batch["terminated"]) * model.q_net_target(batch["next_observation"]).max(1).values,
        )
    model.train(gradient_steps=gradient_steps, batch_size=n)
    losses = [ours.update(batch) for _ in range(gradient_steps)]
    assert losses[0] == pytest.approx(float(expected_loss), rel=1e-6)
    for (name, theirs), ours_p in zip(
        model.q_net.q_net.named_parameters(), ours.q_network.q.parameters(), strict=True
    ):
        torch.testing.assert_close(ours_p, theirs, rtol=1e-6, atol=1e-7, msg=name)


def test_double_dqn_update_uses_the_online_argmax():
    agent = DQN(make_env("CartPole-v1"), DQNConfig(hidden=(8,), double=True), seed=0)
    g = torch.Generator().manual_seed(0)
    batch = {
        "observation": torch.randn(16, 4, generator=g),
        "action": torch.randint(0, 2, (16,), generator=g),
        "reward": torch.randn(16, generator=g),
        "next_observation": torch.randn(16, 4, generator=g),
        "terminated": torch.zeros(16),
    }
    with torch.no_grad():
        agent.target_network.q[0].weight.mul_(-1.0)  # the two networks disagree
    expected = dqn_loss(agent.q_network, agent.target_network, batch, 0.99, double=True)
    assert not torch.isclose(expected, dqn_loss(agent.q_network, agent.target_network, batch, 0.99))
    assert agent.update(batch) == pytest.approx(float(expected.detach()))


def test_learning_loop_schedules_and_repeats():
    cfg = DQNConfig(hidden=(16,), learning_starts=100, train_freq=50, gradient_steps=2, batch_size=32)
    runs = []
    for _ in range(2):
        agent = DQN(make_env("CartPole-v1"), cfg, seed=3)
        assert agent.epsilon() == 1.0
        agent.learn(400, total_steps=1000)
        runs.append([p.detach().clone() for p in agent.q_network.parameters()])
        assert agent.steps == 400 and len(agent.buffer) == 400
        assert agent.updates == 2 * (400 - 100) // 50  # updates at steps 150, 200, ..., 400
        assert agent.epsilon() == pytest.approx(0.04)  # annealed over 16% of 1000 steps
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b)


class _NanReward(gym.Wrapper):
    def step(self, action):
        observation, _, terminated, truncated, info = self.env.step(action)
        return observation, float("nan"), terminated, truncated, info


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="DQN needs a Discrete action space.*Box"):
        DQN(make_env(POINT_MASS_ID))
    with pytest.raises(ValueError, match="exploration_final_eps"):
        DQNConfig(exploration_final_eps=1.5)
    with pytest.raises(TypeError, match="cfg must be a DQNConfig"):
        DQN(make_env("CartPole-v1"), cfg={"lr": 1})
    with pytest.raises(ValueError, match="non-finite reward"):
        DQN(_NanReward(make_env("CartPole-v1")), DQNConfig(hidden=(8,))).learn(5)
    # Training that starts before the buffer holds a batch: the buffer refuses to sample.
    early = DQN(
        make_env("CartPole-v1"), DQNConfig(hidden=(8,), learning_starts=0, train_freq=1, batch_size=64)
    )
    with pytest.raises(ValueError, match="fewer than batch_size=64"):
        early.learn(10)
    with pytest.raises(ValueError, match="batch is missing"):
        dqn_loss(early.q_network, early.target_network, {"observation": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="observations must be"):
        early.q_network(torch.zeros(2, 5))
    assert np.isfinite(early.epsilon())


def test_a_run_killed_midway_resumes_to_the_same_result(tmp_path):
    from aicanon.core.checkpoint import CheckpointMismatch, load_checkpoint, save_checkpoint

    cfg = DQNConfig(hidden=(16,), learning_starts=300, train_freq=50, gradient_steps=4, batch_size=32)
    uninterrupted = DQN(make_env("CartPole-v1"), cfg, seed=5)
    uninterrupted.learn(1500, total_steps=1500)

    first = DQN(make_env("CartPole-v1"), cfg, seed=5)
    first.learn(777, total_steps=1500)  # mid-episode, between two updates
    assert first._length > 0
    config = {"cfg": repr(cfg), "seed": 5}
    save_checkpoint(tmp_path / "dqn", first.state_dict(), config=config)
    del first

    resumed = DQN(make_env("CartPole-v1"), cfg, seed=5)
    resumed.load_state_dict(load_checkpoint(tmp_path / "dqn", config=config))
    resumed.learn(1500 - 777, total_steps=1500)
    assert resumed.episodes == uninterrupted.episodes
    assert resumed.updates == uninterrupted.updates
    for a, b in zip(resumed.q_network.parameters(), uninterrupted.q_network.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(CheckpointMismatch):
        load_checkpoint(tmp_path / "dqn", config={"cfg": "other", "seed": 5})
