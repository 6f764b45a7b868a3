"""aicanon.align.preferences: Eq. 1 with the 10 % error model against a direct computation, the
oracle (ties, terminations), segment cutting, the ensemble (learning a known reward, bootstrap,
adaptive L2, normalisation), disagreement queries, the label schedule, the reward wrapper, bad input."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from aicanon.align.preferences import (
    Episode,
    PredictedRewardWrapper,
    RewardEnsemble,
    Segments,
    encode_actions,
    label_schedule,
    oracle_preferences,
    preference_disagreement,
    preference_loss,
    preference_probability,
    sample_segments,
    select_queries,
)
from aicanon.rl.envs import POINT_MASS_ID, make_vector_env
from aicanon.rl.rollout import RolloutCollector

pytestmark = pytest.mark.paper("rl-human-preferences")


def _segments(rewards, mask=None, obs_dim=2):
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    batch, length = rewards.shape
    mask = torch.ones_like(rewards) if mask is None else torch.as_tensor(mask, dtype=torch.float32)
    return Segments(torch.zeros(batch, length, obs_dim), torch.zeros(batch, length, 1), rewards, mask)


def test_probability_and_loss_golden():
    r1, r2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    p = preference_probability(r1, r2)
    sigmoid = 1 / (1 + math.exp(-1))
    assert p.tolist() == pytest.approx([0.9 * sigmoid + 0.05, 0.5])
    labels = torch.tensor([1.0, 0.5])
    expected = -(math.log(0.9 * sigmoid + 0.05) + 0.5 * math.log(0.5) + 0.5 * math.log(0.5)) / 2
    assert float(preference_loss(r1, r2, labels)) == pytest.approx(expected, rel=1e-6)
    # ε = 0: the plain Bradley-Terry cross-entropy (binary cross-entropy on the return difference).
    reference = torch.nn.functional.binary_cross_entropy_with_logits(r1 - r2, labels)
    assert float(preference_loss(r1, r2, labels, error_rate=0.0)) == pytest.approx(float(reference))


def test_loss_and_gradient_match_direct_eq1():
    torch.manual_seed(0)
    r1, r2 = torch.randn(16, requires_grad=True), torch.randn(16, requires_grad=True)
    labels = torch.rand(16)
    ours = preference_loss(r1, r2, labels, 0.1)
    grad_ours = torch.autograd.grad(ours, (r1, r2))
    e1, e2 = torch.exp(r1), torch.exp(r2)
    p1 = 0.9 * e1 / (e1 + e2) + 0.05
    direct = -(labels * torch.log(p1) + (1 - labels) * torch.log(1 - p1)).mean()
    grad_direct = torch.autograd.grad(direct, (r1, r2))
    assert float(ours.detach()) == pytest.approx(float(direct.detach()), abs=1e-6)
    for a, b in zip(grad_ours, grad_direct):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    # Saturated predictions stay finite and bounded by −log(ε/2) per wrong label.
    huge = preference_loss(torch.tensor([1e4]), torch.tensor([-1e4]), torch.tensor([0.0]))
    assert float(huge) == pytest.approx(-math.log(0.05), rel=1e-5)


def test_oracle_prefers_true_return_with_ties_and_terminations():
    first = _segments([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]])
    # Second row: the episode terminated after one step: the rest counts as zero reward.
    second = _segments(
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], mask=[[1, 1, 1], [1, 0, 0], [1, 1, 1]]
    )
    assert oracle_preferences(first, second).tolist() == [0.5, 1.0, 0.0]
    coins = oracle_preferences(first, second, error_rate=1.0, generator=torch.Generator().manual_seed(0))
    assert set(coins.tolist()) <= {0.0, 1.0}


def test_sample_segments_terminated_vs_truncated():
    obs = np.arange(10, dtype=np.float32)[:, None]
    act = np.zeros((10, 1), dtype=np.float32)
    rew = np.ones(10, dtype=np.float32)
    generator = torch.Generator().manual_seed(0)
    truncated = sample_segments([Episode(obs, act, rew, False)], 200, 4, generator)
    assert truncated.mask.sum(-1).eq(4).all() and truncated.observations[:, 0, 0].max() <= 6
    terminated = sample_segments([Episode(obs, act, rew, True)], 200, 4, generator)
    lengths = terminated.mask.sum(-1)
    assert lengths.min() == 1 and lengths.max() == 4  # segments that reach past the fall are masked
    assert torch.equal(terminated.true_returns, lengths)
    # Consecutive observations inside a segment.
    inside = terminated.observations[:, 1, 0] - terminated.observations[:, 0, 0]
    assert (inside[lengths > 1] == 1).all()


def test_encode_actions():
    discrete = encode_actions(np.array([0, 2]), gym.spaces.Discrete(3))
    assert discrete.tolist() == [[1, 0, 0], [0, 0, 1]]
    box = encode_actions(np.zeros((4, 2)), gym.spaces.Box(-1, 1, (2,)))
    assert box.shape == (4, 2) and box.dtype == np.float32


def _linear_task(count, generator):
    """Segments of 5 steps with 3-d observations whose true reward is w·o."""
    weights = torch.tensor([1.0, -2.0, 0.5])
    observations = torch.randn(count, 5, 3, generator=generator)
    rewards = observations @ weights
    return Segments(observations, torch.zeros(count, 5, 1), rewards, torch.ones(count, 5))


def test_ensemble_learns_a_known_reward_and_adapts_l2():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    first, second = _linear_task(300, generator), _linear_task(300, generator)
    labels = oracle_preferences(first, second)
    ensemble = RewardEnsemble(3, 1, members=3, hidden=(32,), dropout=0.0)
    before = ensemble.fit(first, second, labels, steps=1, generator=generator)
    for _ in range(3):
        after = ensemble.fit(first, second, labels, steps=150, generator=generator)
    assert after["train_loss"] < before["train_loss"] - 0.2
    test_1, test_2 = _linear_task(500, generator), _linear_task(500, generator)
    with torch.no_grad():
        predicted = ensemble.segment_returns(test_1).mean(0) - ensemble.segment_returns(test_2).mean(0)
    truth = test_1.true_returns - test_2.true_returns
    assert ((predicted > 0) == (truth > 0)).float().mean() > 0.9
    assert len(ensemble.history) == 4 and not torch.equal(ensemble.l2, torch.full((3,), 1e-4))
    # Normalisation: zero mean, reward_std standard deviation on the given steps.
    ensemble.reward_std = 0.5
    ensemble.normalize(test_1.observations.flatten(0, 1), test_1.actions.flatten(0, 1))
    normalized = ensemble.reward(test_1.observations.flatten(0, 1), test_1.actions.flatten(0, 1))
    assert float(normalized.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(normalized.std()) == pytest.approx(0.5, rel=1e-4)


def test_disagreement_and_queries():
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(1)
    first, second = _linear_task(50, generator), _linear_task(50, generator)
    ensemble = RewardEnsemble(3, 1, members=3, hidden=(8,), dropout=0.0)
    variance = preference_disagreement(ensemble, first, second)
    assert variance.shape == (50,) and (variance > 0).all()
    probabilities = ensemble.probabilities(first, second).detach()
    torch.testing.assert_close(variance, probabilities.var(0, unbiased=False))
    chosen = select_queries(ensemble, first, second, 5)
    assert set(chosen.tolist()) == set(variance.topk(5).indices.tolist())
    random = select_queries(ensemble, first, second, 5, "random", generator)
    assert len(set(random.tolist())) == 5
    # Identical members never disagree.
    for member in ensemble.members[1:]:
        member.load_state_dict(copy.deepcopy(ensemble.members[0].state_dict()))
    assert preference_disagreement(ensemble, first, second).abs().max() < 1e-12


def test_label_schedule_decays_like_one_over_t():
    schedule = label_schedule(400, 7)
    assert sum(schedule) == 400 and len(schedule) == 8 and schedule[0] == 100
    rest = schedule[1:]
    # Weights 1/(t + 1), t = 1..7: the first round after the initial batch gets 4x the last.
    assert rest == sorted(rest, reverse=True) and rest[0] / rest[-1] == pytest.approx(4.0, abs=0.2)
    assert label_schedule(5, 3, initial_fraction=0.0) == [0, 2, 2, 1]


def test_wrapper_replaces_reward_and_records_true_episodes():
    envs = make_vector_env(POINT_MASS_ID, 2, seed=0)
    ensemble = RewardEnsemble.for_spaces(envs.single_observation_space, envs.single_action_space, members=2)
    wrapper = PredictedRewardWrapper(envs, ensemble)
    observation, _ = wrapper.reset(seed=0)
    actions = np.zeros((2, 2), dtype=np.float32)
    expected = ensemble.reward(torch.from_numpy(observation), torch.from_numpy(actions))
    _, reward, _, _, _ = wrapper.step(actions)
    np.testing.assert_allclose(reward, expected.double().numpy(), rtol=1e-6)
    collector = RolloutCollector(wrapper, seed=0)
    from aicanon.rl.networks import ActorCritic

    policy = ActorCritic.for_spaces(envs.single_observation_space, envs.single_action_space)
    collector.collect(policy, 120)
    assert len(wrapper.episodes) == 4 and len(wrapper.true_episodes) == 4
    episode = wrapper.episodes[0]
    assert episode.observations.shape == (50, 6) and episode.actions.shape == (50, 2)
    assert (episode.rewards < 0).all() and not episode.terminated  # PointMass: −distance, truncated
    observations, actions = wrapper.recent_steps()
    assert observations.shape == (200, 6)


def test_snapshot_and_fit_state_round_trip_through_a_checkpoint(tmp_path):
    """The wrapper's episodes (stored and unfinished) and the ensemble's Adam states survive
    save_checkpoint/load_checkpoint: the restored copy steps and fits exactly as the original."""
    from aicanon.core.checkpoint import load_checkpoint, save_checkpoint

    def build():
        envs = make_vector_env(POINT_MASS_ID, 2, seed=0)
        torch.manual_seed(0)
        ensemble = RewardEnsemble.for_spaces(
            envs.single_observation_space, envs.single_action_space, members=2
        )
        wrapper = PredictedRewardWrapper(envs, ensemble, keep_episodes=3)
        wrapper.reset(seed=0)
        return wrapper, ensemble

    wrapper, ensemble = build()
    rng = np.random.default_rng(0)
    for _ in range(130):  # 2 episodes per environment finished, 30 steps into the third
        wrapper.step(rng.uniform(-1, 1, (2, 2)).astype(np.float32))
    first, second = (
        sample_segments(list(wrapper.episodes), 8, 5, torch.Generator().manual_seed(s)) for s in (1, 2)
    )
    labels = oracle_preferences(first, second)
    ensemble.fit(first, second, labels, steps=3, batch_size=4, generator=torch.Generator().manual_seed(0))
    environments = [env.snapshot() for env in wrapper.unwrapped.envs]  # the agent's part of a checkpoint
    save_checkpoint(
        tmp_path,
        {"wrapper": wrapper.snapshot(), "fit": ensemble.fit_state(), "weights": ensemble.state_dict()},
    )
    state = load_checkpoint(tmp_path)
    copy_wrapper, copy_ensemble = build()
    for env, snapshot in zip(copy_wrapper.unwrapped.envs, environments, strict=True):
        env.restore(snapshot)
    copy_wrapper.restore(state["wrapper"])
    copy_ensemble.load_state_dict(state["weights"])
    copy_ensemble.load_fit_state(state["fit"], lr=1e-3)
    assert len(copy_wrapper.episodes) == 3 and copy_wrapper.true_episodes == wrapper.true_episodes
    for ours in (wrapper, copy_wrapper):  # finish the unfinished episodes the same way
        for _ in range(20):
            ours.step(np.full((2, 2), 0.5, np.float32))
    for a, b in zip(wrapper.episodes, copy_wrapper.episodes, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.rewards, b.rewards)
    for ours in (ensemble, copy_ensemble):
        torch.manual_seed(1)  # dropout
        ours.fit(first, second, labels, steps=3, batch_size=4, generator=torch.Generator().manual_seed(1))
    for a, b in zip(ensemble.parameters(), copy_ensemble.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # Adam's moments restored: the same steps
    with pytest.raises(ValueError, match="snapshot"):
        copy_wrapper.restore({"episodes": []})
    with pytest.raises(ValueError, match="fit_state"):
        copy_ensemble.load_fit_state({"optimizers": []}, lr=1e-3)
    with pytest.raises(ValueError, match="3 optimisers, this ensemble has 2"):
        copy_ensemble.load_fit_state({"optimizers": [{}] * 3, "history": []}, lr=1e-3)


def test_wrapper_discrete_actions_one_hot():
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    ensemble = RewardEnsemble.for_spaces(envs.single_observation_space, envs.single_action_space)
    assert ensemble.action_dim == 2
    wrapper = PredictedRewardWrapper(envs, ensemble)
    wrapper.reset(seed=0)
    for _ in range(60):
        wrapper.step(np.array([0, 0]))
    assert any(e.terminated for e in wrapper.episodes)  # always pushing left: the pole falls
    assert wrapper.episodes[0].actions[0].tolist() == [1.0, 0.0]


def test_bad_input_is_refused():
    envs = make_vector_env(POINT_MASS_ID, 2, seed=0)
    ensemble = RewardEnsemble.for_spaces(envs.single_observation_space, envs.single_action_space)
    wrapper = PredictedRewardWrapper(envs, ensemble)
    with pytest.raises(RuntimeError, match="reset"):
        wrapper.step(np.zeros((2, 2)))
    wrapper.reset(seed=0)
    ensemble.reward = lambda o, a: torch.full((2,), float("nan"))
    with pytest.raises(ValueError, match="finite rewards"):
        wrapper.step(np.zeros((2, 2)))
    ensemble.reward = lambda o, a: torch.zeros(3)
    with pytest.raises(ValueError, match="reward predictor must return 2"):
        wrapper.step(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="ensemble must be a RewardEnsemble"):
        PredictedRewardWrapper(envs, object())
    with pytest.raises(TypeError, match="VectorEnv"):
        PredictedRewardWrapper(gym.make("CartPole-v1"), ensemble)
    good = RewardEnsemble(3, 1)
    with pytest.raises(ValueError, match="members must be >= 1"):
        RewardEnsemble(3, 1, members=0)
    with pytest.raises(ValueError, match="end in 3 and 1 features"):
        good(torch.zeros(4, 2), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="labels must be probabilities"):
        preference_loss(torch.zeros(2), torch.zeros(2), torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match="error_rate"):
        preference_probability(torch.zeros(2), torch.zeros(2), error_rate=1.5)
    with pytest.raises(ValueError, match="returns_2 must be a tensor of shape"):
        preference_probability(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="method must be one of"):
        select_queries(good, _segments([[0.0]]), _segments([[0.0]]), 1, "entropy")
    with pytest.raises(ValueError, match="count must be <="):
        select_queries(good, _segments([[0.0]]), _segments([[0.0]]), 2)
    with pytest.raises(ValueError, match="as many segments"):
        oracle_preferences(_segments([[0.0]]), _segments([[0.0], [1.0]]))
    with pytest.raises(ValueError, match="mask must be a tensor of shape"):
        Segments(torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="episodes must hold"):
        sample_segments([], 1, 2)
    with pytest.raises(ValueError, match="total must be >= 1"):
        label_schedule(0, 3)
