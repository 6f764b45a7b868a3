"""aicanon.rl.td3: the targets of Eq. 10/14/15 by hand, delayed updates, updates equal to
stable-baselines3's TD3 and DDPG on the same batches and weights, checkpoint/resume, bad input."""

from __future__ import annotations

import copy
import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from aicanon.rl.buffers import ReplayBuffer
from aicanon.rl.envs import POINT_MASS_ID, make_env
from aicanon.rl.td3 import (
    TD3,
    TD3Config,
    clipped_double_q_target,
    smoothed_target_action,
    soft_update,
    train_off_policy,
)

pytestmark = pytest.mark.paper("td3")


def test_clipped_double_q_target_takes_the_smaller_critic_and_stops_at_termination():
    reward = torch.tensor([1.0, -2.0, 0.5])
    terminated = torch.tensor([0.0, 0.0, 1.0])
    q1, q2 = torch.tensor([10.0, 3.0, 7.0]), torch.tensor([8.0, 4.0, 9.0])
    target = clipped_double_q_target(reward, terminated, [q1, q2], 0.9)
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * 8.0, -2.0 + 0.9 * 3.0, 0.5]))
    # One critic: DDPG's target; min never exceeds either critic's target (no added over-estimation).
    ddpg = clipped_double_q_target(reward, terminated, [q1], 0.9)
    torch.testing.assert_close(ddpg, torch.tensor([1.0 + 9.0, -2.0 + 2.7, 0.5]))
    assert (target <= ddpg).all()


def test_target_policy_smoothing_noise_is_clipped_and_the_action_stays_in_bounds():
    generator = torch.Generator().manual_seed(0)
    noise = smoothed_target_action(torch.zeros(20_000, 2), 0.2, 0.5, generator)  # the noise itself
    assert noise.abs().max() == 0.5 and 0.19 < noise.std() < 0.21  # N(0, 0.2) clipped to [-0.5, 0.5]
    assert (noise.abs() == 0.5).float().mean() < 0.03  # P(|N(0, 0.2)| > 0.5) = 1.2 %
    smoothed = smoothed_target_action(torch.full((20_000, 2), 0.9), 0.2, 0.5, generator)
    assert smoothed.max() == 1.0 and smoothed.min() >= 0.4 - 1e-6  # clipped to the action bound; 0.9 - c
    action = torch.full((3, 2), 0.9)
    assert smoothed_target_action(action, 0.0, 0.5) is action


def test_soft_update_moves_targets_by_tau():
    network, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = copy.deepcopy(target)
    soft_update(network, target, 0.25)
    for p, t, b in zip(network.parameters(), target.parameters(), before.parameters(), strict=True):
        torch.testing.assert_close(t, 0.25 * p + 0.75 * b)


def _batch(observation_dim: int, action_dim: int, size: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observation": torch.randn(size, observation_dim, generator=g),
        "action": torch.rand(size, action_dim, generator=g) * 2 - 1,
        "reward": torch.randn(size, generator=g),
        "next_observation": torch.randn(size, observation_dim, generator=g),
        "terminated": (torch.rand(size, generator=g) < 0.2).float(),
    }


def _agent(config: TD3Config | None = None, seed: int = 0) -> TD3:
    env = make_env(POINT_MASS_ID)
    return TD3(env.observation_space, env.action_space, config or TD3Config(hidden=(16, 16)), seed=seed)


def test_delayed_policy_updates_move_actor_and_targets_every_d_critic_steps():
    agent = _agent(TD3Config(hidden=(16, 16), policy_delay=3))
    batch = _batch(6, 2, 32, 0)
    actor, critic_target = copy.deepcopy(agent.actor), copy.deepcopy(agent.critics_target)
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))  # noqa: E731
    for step in range(1, 7):
        stats = agent.update(batch)
        assert ("actor_loss" in stats) == (step % 3 == 0)
        assert same(agent.actor, actor) == (step < 3)
        assert same(agent.critics_target, critic_target) == (step < 3)


def test_ddpg_preset_switches_off_the_three_changes():
    config = TD3Config.ddpg()
    assert (config.twin_critics, config.policy_delay, config.target_noise) == (False, 1, 0.0)
    assert (config.tau, config.batch_size, config.hidden, config.exploration_noise) == (
        0.005,
        100,
        (400, 300),
        0.1,
    )
    assert len(_agent(TD3Config.ddpg(hidden=(8,))).critics) == 1
    paper = TD3Config()
    assert (paper.target_noise, paper.target_noise_clip, paper.policy_delay, paper.learning_starts) == (
        0.2,
        0.5,
        2,
        1000,
    )
    assert (paper.actor_learning_rate, paper.critic_learning_rate, paper.gamma) == (1e-3, 1e-3, 0.99)


@pytest.mark.parity
@pytest.mark.parametrize("algorithm", ["TD3", "DDPG"])
def test_updates_equal_stable_baselines3_on_the_same_batches(algorithm):
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    model = getattr(sb3, algorithm)(
        "MlpPolicy",
        "Pendulum-v1",
        policy_kwargs={"net_arch": [32, 32]},
        learning_starts=0,
        seed=0,
        device="cpu",
    )
    config = TD3Config(hidden=(32, 32)) if algorithm == "TD3" else TD3Config.ddpg(hidden=(32, 32))
    env = make_env("Pendulum-v1", rescale_actions=True)
    ours = TD3(env.observation_space, env.action_space, config, seed=1)
    ours.actor.net.load_state_dict(model.actor.mu.state_dict())
    ours.actor_target.net.load_state_dict(model.actor_target.mu.state_dict())
    for index, critic in enumerate(ours.critics):
        critic.net.load_state_dict(getattr(model.critic, f"qf{index}").state_dict())
        ours.critics_target[index].net.load_state_dict(
            getattr(model.critic_target, f"qf{index}").state_dict()
        )
    assert len(ours.critics) == len(model.critic.q_networks)

    batches = [_batch(3, 1, 100, seed) for seed in range(4)]
    samples = iter(
        ReplayBufferSamples(
            b["observation"],
            b["action"],
            b["next_observation"],
            b["terminated"][:, None],
            b["reward"][:, None],
        )
        for b in batches
    )
    model.replay_buffer.sample = lambda batch_size, env=None: next(samples)
    model._setup_learn(4, None)
    torch.manual_seed(7)  # SB3 draws the smoothing noise from torch's global generator, ours from its own
    model.train(gradient_steps=4, batch_size=100)
    ours.generator.manual_seed(7)
    for batch in batches:
        ours.update(batch)

    pairs = [(ours.actor.net, model.actor.mu), (ours.actor_target.net, model.actor_target.mu)]
    for index in range(len(ours.critics)):
        pairs.append((ours.critics[index].net, getattr(model.critic, f"qf{index}")))
        pairs.append((ours.critics_target[index].net, getattr(model.critic_target, f"qf{index}")))
    for mine, theirs in pairs:
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert ours.updates == model._n_updates == 4


def test_target_equals_eq15_written_out():
    agent = _agent()
    batch = _batch(6, 2, 50, 3)
    agent.generator.manual_seed(11)
    target = agent.target(batch)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        next_action = agent.actor_target(batch["next_observation"])
        noise = torch.empty_like(next_action).normal_(0.0, 0.2, generator=g).clamp(-0.5, 0.5)
        next_action = (next_action + noise).clamp(-1, 1)
        q = torch.minimum(*(c(batch["next_observation"], next_action) for c in agent.critics_target))
    torch.testing.assert_close(target, batch["reward"] + 0.99 * (1 - batch["terminated"]) * q)


def _parameters(agent: TD3) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*agent.actor.parameters(), *agent.critics.parameters()]]


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    # The callback measures at every episode end into callback_state; the checkpoint (step 200, an
    # episode end) holds that step's measurement too, and the resumed run ends with the uninterrupted
    # run's weights and measurements.
    config = TD3Config(hidden=(16, 16), learning_starts=100, batch_size=32)
    run_config = {"test": "resume", **dataclasses.asdict(config)}

    def fresh():
        return _agent(config, seed=3), make_env(POINT_MASS_ID)

    class Killed(Exception):
        pass

    def measuring(state, kill_at=None):
        def callback(agent, buffer, log):
            if log.episode_end_steps and log.episode_end_steps[-1] == agent.steps:
                reward = float(buffer.storage["reward"][: len(buffer)].sum())
                state.setdefault("ends", []).append([agent.steps, reward])
            if agent.steps == kill_at:
                raise Killed

        return callback

    agent, env = fresh()
    expected_state: dict = {}
    train_off_policy(agent, env, 400, seed=5, callback=measuring(expected_state))
    expected = _parameters(agent)

    agent, env, killed_state = *fresh(), {}
    with pytest.raises(Killed):
        train_off_policy(agent, env, 400, seed=5, checkpoint_dir=tmp_path, checkpoint_every=100,
                         checkpoint_config=run_config, callback=measuring(killed_state, kill_at=260),
                         callback_state=killed_state)  # fmt: skip
    agent, env = fresh()  # a new process: fresh objects, state only from the checkpoint (saved at step 200)
    state: dict = {}
    _, log = train_off_policy(agent, env, 400, seed=5, checkpoint_dir=tmp_path, checkpoint_every=100,
                              checkpoint_config=run_config, callback=measuring(state),
                              callback_state=state)  # fmt: skip
    assert agent.steps == 400 and log.episode_end_steps == [50 * i for i in range(1, 9)]
    for a, b in zip(_parameters(agent), expected, strict=True):
        assert torch.equal(a, b)
    assert state == expected_state and [end for end, _ in state["ends"]] == log.episode_end_steps


def test_bad_input_is_rejected_with_clear_messages():
    discrete = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="action_space must be a 1-D gymnasium Box.*Discrete"):
        TD3(discrete.observation_space, discrete.action_space)
    pendulum = gym.make("Pendulum-v1")
    with pytest.raises(ValueError, match="rescale_actions=True"):
        TD3(pendulum.observation_space, pendulum.action_space)
    with pytest.raises(ValueError, match="policy_delay must be >= 1, got 0"):
        _agent(TD3Config(policy_delay=0))
    with pytest.raises(ValueError, match="target_noise must be finite and >= 0.0, got -0.1"):
        _agent(TD3Config(target_noise=-0.1))
    with pytest.raises(ValueError, match="gamma must be finite and in \\[0.0, 1.0\\], got 1.5"):
        clipped_double_q_target(torch.zeros(2), torch.zeros(2), [torch.zeros(2)], 1.5)
    with pytest.raises(ValueError, match="next_q_values\\[1\\] must be a tensor of shape"):
        clipped_double_q_target(torch.zeros(2), torch.zeros(2), [torch.zeros(2), torch.zeros(3)], 0.9)
    agent = _agent()
    with pytest.raises(ValueError, match="batch must hold 'terminated'"):
        agent.update({k: v for k, v in _batch(6, 2, 4, 0).items() if k != "terminated"})
    with pytest.raises(ValueError, match="observation must hold 6 numbers"):
        agent.policy(np.zeros(3))
    # A buffer asked for a batch it does not hold yet.
    buffer = ReplayBuffer.for_spaces(make_env(POINT_MASS_ID).observation_space, agent.action_space, 10)
    with pytest.raises(ValueError, match="fewer than batch_size=100"):
        buffer.sample(100)
    # An environment the agent was not built for.
    with pytest.raises(ValueError, match="the agent was built for 6"):
        train_off_policy(agent, make_env("Pendulum-v1", rescale_actions=True), 10)


class _NonFiniteReward(gym.Wrapper):
    def step(self, action):
        observation, _, terminated, truncated, info = self.env.step(action)
        return observation, float("nan"), terminated, truncated, info


def test_a_non_finite_reward_stops_training():
    agent = _agent()
    with pytest.raises(ValueError, match="non-finite reward nan at step 0"):
        train_off_policy(agent, _NonFiniteReward(make_env(POINT_MASS_ID)), 10)
