"""aicanon.rl.policy_gradient and the actor-critic network: the loss by hand, one A2C update against
stable-baselines3's A2C.train (same weights, same rollout), REINFORCE's advantages, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical

from aicanon.rl.networks import ActorCritic
from aicanon.rl.policy_gradient import A2C, REINFORCE, A2CConfig, actor_critic_loss

pytestmark = pytest.mark.paper("drl-survey")


def test_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # probabilities [1/4, 3/4] and [1/2, 1/2]
    values = torch.tensor([1.0, -1.0])

    def policy(observations):
        return Categorical(logits=logits), values

    batch = {
        "observations": torch.zeros(2, 1),
        "actions": torch.tensor([1, 0]),
        "advantages": torch.tensor([2.0, -1.0]),
        "returns": torch.tensor([0.0, 1.0]),
    }
    loss, stats = actor_critic_loss(policy, batch, value_coef=0.5, entropy_coef=0.1)
    policy_loss = -(2.0 * math.log(0.75) - 1.0 * math.log(0.5)) / 2
    value_loss = (1.0 + 4.0) / 2
    entropy = (-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) + math.log(2.0)) / 2
    assert stats["policy_loss"] == pytest.approx(policy_loss)
    assert stats["value_loss"] == pytest.approx(value_loss)
    assert stats["entropy"] == pytest.approx(entropy)
    assert float(loss) == pytest.approx(policy_loss + 0.5 * value_loss - 0.1 * entropy)


def copy_sb3_policy(ours: ActorCritic, theirs) -> None:
    """SB3's ActorCriticPolicy (separate 64-64 tanh MLPs) into our ActorCritic."""
    with torch.no_grad():
        for index in (0, 2):
            ours.policy_net[index].load_state_dict(theirs.mlp_extractor.policy_net[index].state_dict())
            ours.value_net[index].load_state_dict(theirs.mlp_extractor.value_net[index].state_dict())
        ours.policy_net[4].load_state_dict(theirs.action_net.state_dict())
        ours.value_net[4].load_state_dict(theirs.value_net.state_dict())


@pytest.mark.parity
def test_one_update_equals_stable_baselines3_a2c_train():
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.A2C(
        "MlpPolicy", "CartPole-v1", n_steps=16, gae_lambda=0.9, ent_coef=0.1, seed=0, device="cpu"
    )
    # Plain SGD on both sides (RMSProp's first step normalises the gradient away).
    model.policy.optimizer = torch.optim.SGD(model.policy.parameters(), lr=model.learning_rate)
    with torch.no_grad():  # away from SB3's near-uniform start (gain 0.01), where entropy has no gradient
        model.policy.action_net.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
    _, callback = model._setup_learn(16, None)
    callback.on_training_start(locals(), globals())
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=16)
    agent = A2C("CartPole-v1", A2CConfig(num_envs=1, n_steps=16, gae_lambda=0.9, entropy_coef=0.1), seed=0)
    copy_sb3_policy(agent.policy, model.policy)
    agent.optimizer = torch.optim.SGD(agent.policy.parameters(), lr=model.learning_rate)
    buffer = model.rollout_buffer
    batch = {
        "observations": torch.as_tensor(buffer.observations.reshape(16, -1)),
        "actions": torch.as_tensor(buffer.actions.reshape(16)).long(),
        "advantages": torch.as_tensor(buffer.advantages.reshape(16)),
        "returns": torch.as_tensor(buffer.returns.reshape(16)),
    }
    model.train()
    agent.update(batch)
    theirs = {
        "policy_net.0": model.policy.mlp_extractor.policy_net[0],
        "policy_net.2": model.policy.mlp_extractor.policy_net[2],
        "policy_net.4": model.policy.action_net,
        "value_net.0": model.policy.mlp_extractor.value_net[0],
        "value_net.2": model.policy.mlp_extractor.value_net[2],
        "value_net.4": model.policy.value_net,
    }
    ours = dict(agent.policy.named_modules())
    for name, module in theirs.items():
        torch.testing.assert_close(ours[name].weight, module.weight, rtol=1e-6, atol=1e-7, msg=name)
        torch.testing.assert_close(ours[name].bias, module.bias, rtol=1e-6, atol=1e-7, msg=name)


def test_learn_is_collect_then_one_update_with_the_configured_gae():
    # learn() for one rollout equals collecting it by hand, taking GAE with the config's (gamma,
    # lambda) and one update: the loop passes its settings through.
    cfg = A2CConfig(num_envs=2, n_steps=8, gamma=0.95, gae_lambda=0.7)
    learned = A2C("CartPole-v1", cfg, seed=3)
    learned.learn(16)
    by_hand = A2C("CartPole-v1", cfg, seed=3)
    rollout = by_hand.collector.collect(by_hand.policy, 8)
    advantages, returns = rollout.advantages(0.95, 0.7)
    by_hand.update(rollout.flat() | {"advantages": advantages.flatten(), "returns": returns.flatten()})
    for (name, ours), theirs in zip(
        learned.policy.named_parameters(), by_hand.policy.parameters(), strict=True
    ):
        torch.testing.assert_close(ours, theirs, msg=name)


def test_reinforce_advantages_are_returns_minus_baseline():
    agent = REINFORCE("CartPole-v1", seed=0)
    assert agent.cfg.gae_lambda == 1.0 and agent.cfg.optimizer == "adam"
    rollout = agent.collector.collect(agent.policy, 60)
    advantages, returns = rollout.advantages(agent.cfg.gamma, 1.0)
    # In env 0, until its first episode ends: Â_t = Σ_k γ^k r_{t+k} − V(s_t) (+ bootstrap after it).
    done = (rollout.terminated[:, 0] + rollout.truncated[:, 0]).nonzero()
    end = int(done[0]) if len(done) else 59
    gamma = agent.cfg.gamma
    for t in (0, end // 2, end):
        g = sum(gamma ** (k - t) * float(rollout.rewards[k, 0]) for k in range(t, end + 1))
        if not rollout.terminated[end, 0]:
            g += gamma ** (end + 1 - t) * float(rollout.next_values[end, 0])
        assert float(returns[t, 0]) == pytest.approx(g, rel=1e-5)
        assert float(advantages[t, 0]) == pytest.approx(g - float(rollout.values[t, 0]), rel=1e-4, abs=1e-4)


def test_learning_improves_and_repeats():
    results = []
    for _ in range(2):
        agent = A2C("CartPole-v1", A2CConfig(num_envs=4, n_steps=8), seed=2)
        episodes = agent.learn(6000)
        assert agent.steps == 6016  # whole rollouts of 4 x 8 steps
        results.append([r for r, _ in episodes])
    assert results[0] == results[1]
    first, last = results[0][:20], results[0][-20:]
    assert sum(last) / len(last) > 1.5 * sum(first) / len(first)


def test_continuous_actions_use_a_gaussian_head():
    agent = A2C("aicanon/PointMass-v0", A2CConfig(num_envs=2, n_steps=4), seed=0)
    distribution, value = agent.policy(torch.zeros(3, 6))
    assert distribution.sample().shape == (3, 2) and value.shape == (3,)
    assert agent.policy.act(torch.zeros(6).numpy()).shape == (2,)
    agent.learn(16)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="A2C cannot act in Blackjack-v1.*Box observation space"):
        A2C("Blackjack-v1")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        A2CConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="gae_lambda"):
        A2CConfig(gae_lambda=1.5)
    with pytest.raises(TypeError, match="cfg must be an A2CConfig"):
        REINFORCE("CartPole-v1", cfg=1)
    with pytest.raises(ValueError, match="batch is missing 'returns'"):
        actor_critic_loss(lambda x: None, {"observations": 0, "actions": 0, "advantages": 0})
    with pytest.raises(ValueError, match="observations must be"):
        ActorCritic(4, 2)(torch.zeros(3, 5))
