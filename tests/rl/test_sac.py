"""aicanon.rl.sac: Eq. 21's log-likelihood against the change of variables, the losses against their
equations, one update against stable-baselines3's SAC.train on the same batch and weights, the
original value-network variant, checkpoint round trip and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aicanon.rl.sac import (
    SAC,
    SACConfig,
    actor_loss,
    critic_loss,
    soft_q_target,
    squashed_log_prob,
    temperature_loss,
    value_target,
)

gym = pytest.importorskip("gymnasium")
pytestmark = pytest.mark.paper("sac")


def _spaces(obs_dim=3, act_dim=1, high=2.0):
    spaces = gym.spaces
    return (
        spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
        spaces.Box(-high, high, (act_dim,), np.float32),
    )


def _batch(n=64, obs_dim=3, act_dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "observation": torch.randn(n, obs_dim, generator=g),
        "action": torch.rand(n, act_dim, generator=g) * 2 - 1,
        "reward": torch.randn(n, generator=g),
        "next_observation": torch.randn(n, obs_dim, generator=g),
        "terminated": (torch.rand(n, generator=g) < 0.2).float(),
    }


# ------------------------------------------------------------------------------- Eq. 21 and losses
def test_squashed_log_prob_is_the_change_of_variables_of_eq_21():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(500, 3, generator=g, dtype=torch.float64)
    log_std = torch.randn(500, 3, generator=g, dtype=torch.float64) * 0.5
    noise = torch.randn(500, 3, generator=g, dtype=torch.float64)
    pre_tanh = mean + log_std.exp() * noise
    ours = squashed_log_prob(noise, log_std, pre_tanh)
    # torch's own transformed distribution: N(mean, std) pushed through tanh, density at a = tanh(u)
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    expected = reference.log_prob(torch.tanh(pre_tanh)).sum(-1)
    keep = (pre_tanh.abs() < 4).all(-1)  # where tanh is still invertible in float64 to 1e-9
    torch.testing.assert_close(ours[keep], expected[keep], rtol=1e-7, atol=1e-7)
    # the literal Eq. 21: log mu(u) - sum log(1 - tanh^2 u)
    gaussian = torch.distributions.Normal(mean, log_std.exp()).log_prob(pre_tanh).sum(-1)
    literal = gaussian - torch.log(1 - torch.tanh(pre_tanh) ** 2).sum(-1)
    torch.testing.assert_close(ours[keep], literal[keep], rtol=1e-9, atol=1e-9)
    # far in the tails the exact identity stays finite where the literal form gives inf
    u = torch.tensor([[30.0]])
    assert torch.isfinite(squashed_log_prob(torch.zeros(1, 1), torch.zeros(1, 1), u)).all()
    # 1-D density integrates to one over (-1, 1)
    a = torch.linspace(-1 + 1e-9, 1 - 1e-9, 200_001, dtype=torch.float64)[:, None]
    u = torch.atanh(a)
    density = squashed_log_prob((u - 0.3) / 0.8, torch.full_like(u, math.log(0.8)), u).exp()
    assert float(torch.trapezoid(density, a[:, 0])) == pytest.approx(1.0, abs=1e-4)


def test_losses_follow_their_equations():
    rewards = torch.tensor([1.0, -2.0, 0.5])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_value = torch.tensor([10.0, 10.0, -4.0])
    # y = r + gamma (1 - d) V(s')
    torch.testing.assert_close(
        soft_q_target(rewards, terminated, next_value, 0.9), torch.tensor([10.0, -2.0, -3.1])
    )
    torch.testing.assert_close(
        soft_q_target(rewards, terminated, next_value, 0.9, reward_scale=5.0),
        torch.tensor([14.0, -10.0, -1.1]),
    )
    q = torch.tensor([[1.0, 4.0, -1.0], [2.0, 3.0, 0.0]])
    log_probs = torch.tensor([-1.0, 0.5, 0.0])
    # V = min_i Q_i - alpha log pi (Eq. 3)
    torch.testing.assert_close(value_target(q, log_probs, 0.2), torch.tensor([1.2, 2.9, -1.0]))
    target = torch.tensor([0.0, 3.0, 1.0])
    expected = 0.5 * ((1 + 1 + 4) / 3) + 0.5 * ((4 + 0 + 1) / 3)
    torch.testing.assert_close(critic_loss((q[0], q[1]), target), torch.tensor(expected))
    torch.testing.assert_close(
        actor_loss(log_probs, q.min(0).values, 0.5), torch.tensor((-1.5 - 2.75 + 1.0) / 3)
    )
    # Eq. 18 in log alpha: entropy (-log pi) below the target H = -1 -> the gradient raises alpha
    log_alpha = torch.zeros((), requires_grad=True)
    confident = torch.tensor([2.0, 3.0])  # -log pi = -2.5 < H
    (grad,) = torch.autograd.grad(temperature_loss(log_alpha, confident, -1.0), log_alpha)
    assert float(grad) == pytest.approx(-(2.5 - 1.0)) and float(grad) < 0  # descent increases log alpha
    (grad,) = torch.autograd.grad(temperature_loss(log_alpha, torch.tensor([-3.0]), -1.0), log_alpha)
    assert float(grad) > 0  # entropy above the target: alpha falls


# --------------------------------------------------------------------------------- SB3 parity
def _copy_sb3_weights(agent: SAC, model) -> None:
    with torch.no_grad():
        ours = agent.actor
        for index in (0, 2):
            ours.trunk[index].load_state_dict(model.actor.latent_pi[index].state_dict())
        ours.mean.load_state_dict(model.actor.mu.state_dict())
        ours.log_std.load_state_dict(model.actor.log_std.state_dict())
        for mine, theirs in ((agent.critic, model.critic), (agent.target, model.critic_target)):
            mine.q1.load_state_dict(theirs.qf0.state_dict())
            mine.q2.load_state_dict(theirs.qf1.state_dict())


def _sb3_pendulum(sb3, batch_size=64, learning_rate=3e-4):
    from stable_baselines3.common.logger import configure

    model = sb3.SAC(
        "MlpPolicy",
        "Pendulum-v1",
        policy_kwargs={"net_arch": [64, 64]},
        batch_size=batch_size,
        learning_rate=learning_rate,
        learning_starts=0,
        seed=0,
        device="cpu",
    )
    model.set_logger(configure(None, []))
    with torch.no_grad():  # move the target critics off the online ones so that both matter
        for parameter in model.critic_target.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(3)))
    return model


@pytest.mark.parity
def test_one_update_equals_stable_baselines3_sac(monkeypatch):
    sb3 = pytest.importorskip("stable_baselines3")
    import stable_baselines3.sac.sac as sb3_sac
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    lr = 1e-2  # SB3's train() sets its optimisers' learning rate from this schedule
    model = _sb3_pendulum(sb3, learning_rate=lr)
    env = gym.make("Pendulum-v1")
    agent = SAC(
        env.observation_space,
        env.action_space,
        SACConfig(hidden=(64, 64), batch_size=64, log_prob_epsilon=1e-6),
        seed=0,
    )
    _copy_sb3_weights(agent, model)
    assert agent.target_entropy == model.target_entropy == -1.0
    batch = _batch(64)
    samples = ReplayBufferSamples(
        batch["observation"],
        batch["action"],
        batch["next_observation"],
        batch["terminated"][:, None],
        batch["reward"][:, None],
    )
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *args, **kwargs: samples)
    # Plain SGD on both sides: Adam's first step sees only the gradients' signs and would hide errors.
    model.actor.optimizer = torch.optim.SGD(model.actor.parameters(), lr=lr)
    model.critic.optimizer = torch.optim.SGD(model.critic.parameters(), lr=lr)
    model.ent_coef_optimizer = torch.optim.SGD([model.log_ent_coef], lr=lr)
    agent.actor_optimizer = torch.optim.SGD(agent.actor_parameters, lr=lr)
    agent.critic_optimizer = torch.optim.SGD(agent.critic_parameters, lr=lr)
    agent.alpha_optimizer = torch.optim.SGD([agent.log_alpha], lr=lr)

    targets = []

    class Recorder:  # SB3's critic target, as its F.mse_loss receives it
        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        def mse_loss(current, target):
            targets.append(target.detach().clone())
            return F.mse_loss(current, target)

    monkeypatch.setattr(sb3_sac, "F", Recorder())
    torch.manual_seed(5)
    model.train(gradient_steps=1, batch_size=64)
    theirs = dict(model.logger.name_to_value)

    # Our critic target from its parts: the same noise draws (current states first), alpha = 1.
    torch.manual_seed(5)
    torch.randn(64, 1)
    next_noise = torch.randn(64, 1)
    with torch.no_grad():
        next_actions, next_log_probs = agent.actor.squash(batch["next_observation"], next_noise)
        next_q = torch.stack(agent.target(batch["next_observation"], next_actions))
        expected_target = soft_q_target(
            batch["reward"], batch["terminated"], value_target(next_q, next_log_probs, 1.0), 0.99
        )
    torch.testing.assert_close(targets[0].squeeze(1), expected_target, rtol=1e-5, atol=1e-5)

    torch.manual_seed(5)
    stats = agent.update(batch)
    assert stats["critic_loss"] == pytest.approx(theirs["train/critic_loss"], rel=1e-5, abs=1e-6)
    assert stats["actor_loss"] == pytest.approx(theirs["train/actor_loss"], rel=1e-5, abs=1e-6)
    assert stats["temperature_loss"] == pytest.approx(theirs["train/ent_coef_loss"], rel=1e-5, abs=1e-7)
    assert stats["alpha"] == pytest.approx(theirs["train/ent_coef"])
    assert stats["q_target"] == pytest.approx(float(targets[0].mean()), rel=1e-5, abs=1e-6)
    # One SGD step of every network: the gradients were the same too.
    after = SAC(env.observation_space, env.action_space, SACConfig(hidden=(64, 64)), seed=1)
    _copy_sb3_weights(after, model)
    for mine, theirs_module in (
        (agent.actor, after.actor),
        (agent.critic, after.critic),
        (agent.target, after.target),
    ):
        for (name, p), q in zip(mine.named_parameters(), theirs_module.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(agent.log_alpha.detach(), model.log_ent_coef.detach().reshape(()))


@pytest.mark.parity
def test_fused_adam_steps_like_sb3s_adam():
    sb3 = pytest.importorskip("stable_baselines3")
    model = _sb3_pendulum(sb3)
    env = gym.make("Pendulum-v1")
    agent = SAC(env.observation_space, env.action_space, SACConfig(hidden=(64, 64), log_prob_epsilon=1e-6))
    _copy_sb3_weights(agent, model)
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    for step in range(3):
        batch = _batch(64, seed=step)
        samples = ReplayBufferSamples(
            batch["observation"],
            batch["action"],
            batch["next_observation"],
            batch["terminated"][:, None],
            batch["reward"][:, None],
        )
        model.replay_buffer.sample = lambda *args, samples=samples, **kwargs: samples
        torch.manual_seed(step)
        model.train(gradient_steps=1, batch_size=64)
        torch.manual_seed(step)
        agent.update(batch)
    after = SAC(env.observation_space, env.action_space, SACConfig(hidden=(64, 64)), seed=1)
    _copy_sb3_weights(after, model)
    for mine, theirs in ((agent.actor, after.actor), (agent.critic, after.critic)):
        for p, q in zip(mine.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- agent behaviour
def test_targets_follow_polyak_and_the_value_variant_updates_its_networks():
    obs_space, act_space = _spaces()
    agent = SAC(obs_space, act_space, SACConfig(hidden=(16, 16), batch_size=32, tau=0.1), seed=0)
    before = [p.detach().clone() for p in agent.target_parameters]
    agent.update(_batch(32))
    for old, online, target in zip(
        before, agent.online_target_parameters, agent.target_parameters, strict=True
    ):
        torch.testing.assert_close(target, 0.9 * old + 0.1 * online.detach())
    original = SAC(obs_space, act_space, SACConfig(hidden=(16, 16), value_network=True, alpha=0.2), seed=0)
    assert original.value is not None and not original.learn_alpha
    value_before = [p.detach().clone() for p in original.value.parameters()]
    target_before = [p.detach().clone() for p in original.target.parameters()]
    stats = original.update(_batch(32))
    assert {"value_loss", "critic_loss", "actor_loss"} <= set(stats) and "temperature_loss" not in stats
    assert stats["alpha"] == 0.2
    assert all(not torch.equal(a, b) for a, b in zip(value_before, original.value.parameters(), strict=True))
    for old, online, target in zip(
        target_before, original.value.parameters(), original.target.parameters(), strict=True
    ):
        torch.testing.assert_close(target, 0.995 * old + 0.005 * online.detach())


def test_actions_are_in_the_box_and_seeded():
    obs_space, act_space = _spaces(act_dim=2, high=3.0)
    agent = SAC(obs_space, act_space, SACConfig(hidden=(8,)), seed=4)
    observation = np.ones(3, dtype=np.float32)
    actions = np.stack([agent.act(observation) for _ in range(200)])
    assert actions.shape == (200, 2) and np.abs(actions).max() <= 3.0 and actions.std() > 0.1
    again = SAC(obs_space, act_space, SACConfig(hidden=(8,)), seed=4)
    np.testing.assert_array_equal(np.stack([again.act(observation) for _ in range(200)]), actions)
    deterministic = agent.act(observation, deterministic=True)
    np.testing.assert_array_equal(deterministic, agent.act(observation, deterministic=True))
    np.testing.assert_allclose(agent.from_env(agent.to_env(np.array([0.5, -0.25]))), [0.5, -0.25], atol=1e-6)
    assert agent.act(np.ones((5, 3), dtype=np.float32)).shape == (5, 2)


def test_state_dict_round_trip_continues_identically():
    obs_space, act_space = _spaces()
    cfg = SACConfig(hidden=(16, 16), batch_size=16)
    agent = SAC(obs_space, act_space, cfg, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        agent.observe(rng.normal(size=3), rng.uniform(-2, 2, size=1), rng.normal(), rng.normal(size=3), False)
    agent.update()
    copy = SAC(obs_space, act_space, cfg, seed=7)
    copy.load_state_dict(agent.state_dict())
    for _ in range(3):
        assert copy.update() == agent.update()
    np.testing.assert_array_equal(copy.act(np.ones(3)), agent.act(np.ones(3)))
    with pytest.raises(ValueError, match="does not fit"):
        SAC(obs_space, act_space, SACConfig(hidden=(16, 16), value_network=True)).load_state_dict(
            agent.state_dict()
        )


# --------------------------------------------------------------------------------- bad input
def test_bad_input_is_refused():
    obs_space, act_space = _spaces()
    spaces = gym.spaces
    with pytest.raises(ValueError, match=r"Box action space.*Discrete\(3\)"):
        SAC(obs_space, spaces.Discrete(3))
    with pytest.raises(ValueError, match="unbounded"):
        SAC(obs_space, spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(ValueError, match=r"observation space.*Discrete\(4\).*Box"):
        SAC(spaces.Discrete(4), act_space)
    with pytest.raises(ValueError, match="tau"):
        SACConfig(tau=0.0)
    with pytest.raises(ValueError, match="hidden"):
        SACConfig(hidden=())
    with pytest.raises(TypeError, match="cfg must be a SACConfig"):
        SAC(obs_space, act_space, {"lr": 1e-3})
    agent = SAC(obs_space, act_space, SACConfig(hidden=(8,), batch_size=4))
    with pytest.raises(ValueError, match="fewer than batch_size=4"):
        agent.update()  # a buffer sampled before it holds a batch
    with pytest.raises(ValueError, match="reward must be finite"):
        agent.observe(np.zeros(3), np.zeros(1), float("nan"), np.zeros(3), False)
    with pytest.raises(ValueError, match="observation must have shape"):
        agent.act(np.zeros(4))
    with pytest.raises(ValueError, match="missing \\['terminated'\\]"):
        agent.update({k: v for k, v in _batch(8).items() if k != "terminated"})
    with pytest.raises(ValueError, match="non-finite"):
        agent.update(_batch(8) | {"reward": torch.full((8,), float("inf"))})
    with pytest.raises(ValueError, match="observation"):
        agent.update(_batch(8) | {"observation": torch.zeros(8, 5)})
