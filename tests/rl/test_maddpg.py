"""aicanon.rl.maddpg: Gumbel-softmax straight-through estimator, the critic's input layout, Eq. 7's
target and Eq. 6's actor gradient against direct computations, target networks, ensembles,
checkpoint/resume and bad input. (No reference library implements MADDPG: parity is with direct
computations of the paper's equations.)"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from aicanon.core.checkpoint import CheckpointMismatch, load_checkpoint, save_checkpoint
from aicanon.rl.maddpg import (
    MADDPG,
    MADDPGConfig,
    critic_input,
    critic_target,
    gumbel_softmax,
    run_episodes,
    spaces_of,
    train,
)

pytestmark = pytest.mark.paper("maddpg")

SIZES, COUNTS = [3, 11], [3, 5]  # speaker-listener's observation sizes and action counts


def _agent(centralised=True, batch=16, seed=0, **overrides):
    cfg = MADDPGConfig(
        centralised=centralised, batch_size=batch, buffer_size=500, hidden=(16, 16), **overrides
    )
    return MADDPG(SIZES, COUNTS, cfg, seed=seed)


def _fill(agent, n=64, seed=0):
    rng = np.random.default_rng(seed)
    agent.store(
        [rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 11)).astype(np.float32)],
        [rng.integers(3, size=n), rng.integers(5, size=n)],
        [rng.normal(size=n).astype(np.float32)] * 2,
        [rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 11)).astype(np.float32)],
        (rng.random(n) < 0.2).astype(np.float32),
    )


def _speaker_listener(count=1):
    mpe2 = pytest.importorskip("mpe2")
    from mpe2 import simple_speaker_listener_v4

    assert mpe2 is not None
    return [
        simple_speaker_listener_v4.parallel_env(continuous_actions=False, max_cycles=25) for _ in range(count)
    ]


# ------------------------------------------------------------------------------ Gumbel-softmax


def test_gumbel_softmax_matches_a_direct_computation_and_is_straight_through():
    logits = torch.randn(6, 4, requires_grad=True)
    ours = gumbel_softmax(logits, 0.7, generator=torch.Generator().manual_seed(3))
    uniform = torch.rand(6, 4, generator=torch.Generator().manual_seed(3))
    soft = torch.softmax((logits - torch.log(-torch.log(uniform))) / 0.7, dim=-1)
    one_hot = torch.nn.functional.one_hot(soft.argmax(-1), 4).float()
    assert torch.equal(ours.detach(), one_hot)  # forward: the one-hot sample
    weights = torch.randn(6, 4)
    (gradient,) = torch.autograd.grad((ours * weights).sum(), logits)
    (expected,) = torch.autograd.grad((soft * weights).sum(), logits)
    torch.testing.assert_close(gradient, expected, atol=1e-6, rtol=1e-5)  # backward: the relaxed sample's
    soft_ours = gumbel_softmax(logits, 0.7, hard=False, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(soft_ours, soft)


def test_gumbel_max_samples_follow_the_softmax():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    samples = gumbel_softmax(logits.expand(40_000, 4), generator=torch.Generator().manual_seed(0))
    frequencies = samples.mean(0)
    torch.testing.assert_close(frequencies, torch.softmax(logits, 0), atol=0.01, rtol=0)


def test_gumbel_softmax_rejects_bad_input():
    with pytest.raises(TypeError, match="logits"):
        gumbel_softmax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        gumbel_softmax(torch.zeros(2, 3), 0.0)


# ------------------------------------------------------------------------- critic and targets


def test_critic_input_layout_is_all_observations_then_all_actions():
    o = [torch.full((2, 3), 1.0), torch.full((2, 2), 2.0)]
    a = [torch.full((2, 1), 3.0), torch.full((2, 4), 4.0)]
    joint = critic_input(o, a, agent=1, centralised=True)
    assert joint[0].tolist() == [1.0] * 3 + [2.0] * 2 + [3.0] + [4.0] * 4
    assert critic_input(o, a, agent=1, centralised=False)[0].tolist() == [2.0] * 2 + [4.0] * 4
    assert critic_input(o, a, agent=0, centralised=False)[0].tolist() == [1.0] * 3 + [3.0]
    with pytest.raises(ValueError, match="one tensor per agent"):
        critic_input(o, a[:1], 0, True)
    with pytest.raises(ValueError, match="agent"):
        critic_input(o, a, 2, True)


def test_critics_see_everything_only_when_centralised():
    for centralised, width in ((True, 3 + 11 + 3 + 5), (False, None)):
        agent = _agent(centralised)
        for i in range(2):
            first = agent.critics[i][0][0]
            assert first.in_features == (width or SIZES[i] + COUNTS[i])
            assert agent.actors[i][0][0].in_features == SIZES[i]  # decentralised actors


def test_critic_target_golden_values():
    reward = torch.tensor([1.0, -2.0, 0.5])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_value = torch.tensor([10.0, 10.0, -4.0])
    target = critic_target(reward, terminated, next_value, 0.95)
    torch.testing.assert_close(target, torch.tensor([10.5, -2.0, -3.3]))
    with pytest.raises(ValueError, match="same shape"):
        critic_target(reward, terminated[:2], next_value, 0.95)
    with pytest.raises(ValueError, match="gamma"):
        critic_target(reward, terminated, next_value, 1.5)


@pytest.mark.parity
@pytest.mark.parametrize("centralised", [True, False])
def test_critic_loss_equals_eq7_computed_directly(centralised):
    agent = _agent(centralised)
    _fill(agent)
    batch = agent.buffers[0][0].sample(16, torch.Generator().manual_seed(1))
    state = agent.generator.get_state()
    loss, target, value = agent.critic_loss(batch, agent=1)
    # Direct: a'_j one-hot Gumbel samples of the target actors (same noise), Q' of agent 1's target critic.
    agent.generator.set_state(state)
    nexts = [batch["next_observation_0"], batch["next_observation_1"]]
    with torch.no_grad():
        next_actions = [
            gumbel_softmax(agent.target_actors[j][0](nexts[j]), generator=agent.generator) for j in (0, 1)
        ]
        inputs = (
            torch.cat([*nexts, *next_actions], -1)
            if centralised
            else torch.cat([nexts[1], next_actions[1]], -1)
        )
        expected = (
            batch["reward_1"] + 0.95 * (1 - batch["terminated"]) * agent.target_critics[1][0](inputs)[:, 0]
        )
    torch.testing.assert_close(target, expected)
    actions = [torch.nn.functional.one_hot(batch[f"action_{j}"], COUNTS[j]).float() for j in (0, 1)]
    observations = [batch["observation_0"], batch["observation_1"]]
    inputs = (
        torch.cat([*observations, *actions], -1)
        if centralised
        else torch.cat([observations[1], actions[1]], -1)
    )
    direct_value = agent.critics[1][0](inputs)[:, 0]
    torch.testing.assert_close(value, direct_value)
    torch.testing.assert_close(loss, (direct_value - expected).square().mean())


@pytest.mark.parity
def test_actor_gradient_is_eq6_with_the_others_actions_from_the_buffer():
    agent = _agent(True)
    _fill(agent)
    batch = agent.buffers[0][0].sample(16, torch.Generator().manual_seed(2))
    state = agent.generator.get_state()
    agent.actors.zero_grad()
    agent.actor_loss(batch, agent=0).backward()
    ours = [p.grad.clone() for p in agent.actors[0][0].parameters()]
    agent.generator.set_state(state)
    agent.actors.zero_grad()
    logits = agent.actors[0][0](batch["observation_0"])
    own = gumbel_softmax(logits, generator=agent.generator)
    other = torch.nn.functional.one_hot(batch["action_1"], 5).float()
    q = agent.critics[0][0](torch.cat([batch["observation_0"], batch["observation_1"], own, other], -1))
    (-q.mean() + 1e-3 * logits.square().mean()).backward()
    for mine, direct in zip(ours, [p.grad for p in agent.actors[0][0].parameters()], strict=True):
        torch.testing.assert_close(mine, direct)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in agent.actors[1][0].parameters())


def test_update_moves_targets_by_tau_and_learns():
    agent = _agent(True, tau=0.25)
    _fill(agent)
    before = [p.clone() for p in agent.target_critics.parameters()]
    losses = agent.update()
    assert set(losses) == {"critic_loss", "actor_loss"} and np.isfinite(list(losses.values())).all()
    for old, new, online in zip(
        before, agent.target_critics.parameters(), agent.critics.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * online)
    # Repeated updates on a fixed buffer fit the critic (the loss falls).
    first = [agent.update()["critic_loss"] for _ in range(3)]
    last = [agent.update()["critic_loss"] for _ in range(60)][-3:]
    assert np.mean(last) < np.mean(first)


def test_ensembles_keep_a_buffer_per_sub_policy_and_use_the_stored_sub_policy_for_targets():
    agent = _agent(True, ensemble_size=3)
    assert len({id(b) for row in agent.buffers for b in row}) == 6
    for round_ in range(6):
        agent.active = [round_ % 3, (round_ + 1) % 3]
        _fill(agent, n=16, seed=round_)
    assert all(len(agent.buffers[i][k]) == 32 for i in range(2) for k in range(3))
    assert set(agent.buffers[0][1].storage["policy_0"][:32].tolist()) == {1}
    batch = agent.buffers[0][1].sample(16, torch.Generator().manual_seed(0))
    policies = [batch["policy_0"], batch["policy_1"]]
    nexts = [batch["next_observation_0"], batch["next_observation_1"]]
    state = agent.generator.get_state()
    ours = agent.target_actions(nexts, policies)
    agent.generator.set_state(state)
    for j in (0, 1):
        logits = torch.stack(
            [agent.target_actors[j][int(k)](o) for k, o in zip(policies[j], nexts[j], strict=True)]
        )
        torch.testing.assert_close(ours[j], gumbel_softmax(logits, generator=agent.generator))
    agent.update()
    assert agent.updates == 1
    drawn = {tuple(agent.choose_policies()) for _ in range(50)}
    assert len(drawn) > 3 and all(0 <= k < 3 for pair in drawn for k in pair)


def test_same_seed_builds_the_same_agent():
    a, b = _agent(seed=5), _agent(seed=5)
    for p, q in zip(a.actors.parameters(), b.actors.parameters(), strict=True):
        assert torch.equal(p, q)


# ------------------------------------------------------------------------ environment loop


def test_training_loop_on_speaker_listener_and_greedy_evaluation():
    envs = _speaker_listener(2)
    names, sizes, counts = spaces_of(envs[0])
    assert (names, sizes, counts) == (["speaker_0", "listener_0"], SIZES, COUNTS)
    agent = _agent(True)
    log = train(agent, envs, 2, seed=0, warmup_steps=20, update_every=10)
    assert agent.environment_steps == 100 and agent.rounds == 2 and len(log.returns) == 4
    assert agent.updates == len(log.critic_losses) == 8  # steps 30, 40, ..., 100
    evaluation = run_episodes(agent, envs, 1, seed=99, explore=False, keep_observations=True)
    assert [o.shape for o in evaluation.observations[0]] == [(26, 3), (26, 11)]
    assert agent.environment_steps == 100  # evaluation does not learn


def test_checkpoint_resume_gives_the_same_agent(tmp_path):
    envs = _speaker_listener(2)
    config = {"test": "resume"}
    straight = _agent(True, seed=1)
    train(straight, envs, 4, seed=7, warmup_steps=20, update_every=10)

    first = _agent(True, seed=1)
    train(first, envs, 2, seed=7, warmup_steps=20, update_every=10)
    save_checkpoint(tmp_path / "run", first.state_dict(), config=config)
    resumed = _agent(True, seed=1234)  # different init: everything must come from the checkpoint
    resumed.load_state_dict(load_checkpoint(tmp_path / "run", config=config))
    train(resumed, envs, 2, seed=7, warmup_steps=20, update_every=10)

    for p, q in zip(straight.actors.parameters(), resumed.actors.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(straight.target_critics.parameters(), resumed.target_critics.parameters(), strict=True):
        assert torch.equal(p, q)
    assert straight.updates == resumed.updates and straight.environment_steps == resumed.environment_steps
    assert np.array_equal(
        straight.buffers[0][0].storage["reward_0"], resumed.buffers[0][0].storage["reward_0"]
    )
    with pytest.raises(CheckpointMismatch):
        load_checkpoint(tmp_path / "run", config={"test": "other"})


# ----------------------------------------------------------------------------------- bad input


def test_bad_input_is_rejected_with_clear_messages():
    agent = _agent(True, batch=32)
    _fill(agent, n=8)
    with pytest.raises(ValueError, match="fewer than batch_size=32"):
        agent.update()
    with pytest.raises(ValueError, match="reward"):
        agent.store(
            [np.zeros((1, 3)), np.zeros((1, 11))],
            [np.zeros(1, int), np.zeros(1, int)],
            [np.array([np.nan]), np.zeros(1)],
            [np.zeros((1, 3)), np.zeros((1, 11))],
            np.zeros(1),
        )
    with pytest.raises(ValueError, match="observations\\[1\\] must end in size 11"):
        agent.act([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="one per agent"):
        agent.act([np.zeros(3)])
    with pytest.raises(TypeError, match="cfg must be an MADDPGConfig"):
        MADDPG(SIZES, COUNTS, {"batch_size": 2})
    with pytest.raises(ValueError, match="one entry per agent"):
        MADDPG(SIZES, [3], MADDPGConfig())
    for field, value, error in (
        ("tau", 0.0, ValueError),
        ("gamma", 1.5, ValueError),
        ("batch_size", 0, ValueError),
        ("hidden", (), ValueError),
        ("centralised", 1, TypeError),
        ("ensemble_size", 1.5, TypeError),
    ):
        with pytest.raises(error, match=field):
            MADDPG(SIZES, COUNTS, dataclasses.replace(MADDPGConfig(), **{field: value}))


def test_envs_the_agent_cannot_handle_are_refused():
    pytest.importorskip("mpe2")
    from mpe2 import simple_speaker_listener_v4, simple_spread_v3

    continuous = simple_speaker_listener_v4.parallel_env(continuous_actions=True)
    with pytest.raises(TypeError, match="Discrete actions.*speaker_0.*Box"):
        spaces_of(continuous)
    spread = [simple_spread_v3.parallel_env(continuous_actions=False, max_cycles=25)]
    with pytest.raises(ValueError, match="the agent was built for"):
        run_episodes(_agent(), spread, 1, seed=0, explore=True)
