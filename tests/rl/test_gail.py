"""aicanon.rl.gail: the discriminator's loss against Eq. 17 computed directly (values and gradients),
its optimum against the Jensen-Shannon identity (Eq. 15), the reward's sign convention (D is the
probability of the *policy* class), the causal-entropy term, one Algorithm 1 iteration, exact
checkpoint/resume, bad input. The `imitation` library is not installed: no parity test; the checks
against the paper's equations stand in for it."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aicanon.core.checkpoint import CheckpointMismatch, load_checkpoint, save_checkpoint
from aicanon.rl.demonstrations import generate_demonstrations
from aicanon.rl.envs import POINT_MASS_ID
from aicanon.rl.gail import (
    GAIL,
    REWARD_FORMS,
    Discriminator,
    GAILConfig,
    discriminator_loss,
    gail_reward,
)
from aicanon.rl.ppo import PPOConfig

pytestmark = pytest.mark.paper("gail")


def _random_demonstrations(env_id="CartPole-v1", episodes=2, seed=3):
    space = gym.make(env_id).action_space
    space.seed(seed)
    return generate_demonstrations(lambda o: space.sample(), env_id, episodes, seed=seed, source="random")


# ------------------------------------------------------------------------------ discriminator
def test_discriminator_loss_is_eq_17_negated():
    g = torch.Generator().manual_seed(0)
    policy_logits = torch.randn(9, generator=g, dtype=torch.float64) * 3
    expert_logits = torch.randn(5, generator=g, dtype=torch.float64) * 3
    d_policy, d_expert = torch.sigmoid(policy_logits), torch.sigmoid(expert_logits)
    objective = torch.log(d_policy).mean() + torch.log(1 - d_expert).mean()  # Eq. 17, maximised by D
    torch.testing.assert_close(discriminator_loss(policy_logits, expert_logits), -objective)
    # The same as binary cross-entropy with the policy's pairs labelled 1 and the expert's 0.
    bce = F.binary_cross_entropy_with_logits(policy_logits, torch.ones(9, dtype=torch.float64)) + (
        F.binary_cross_entropy_with_logits(expert_logits, torch.zeros(5, dtype=torch.float64))
    )
    torch.testing.assert_close(discriminator_loss(policy_logits, expert_logits), bce)
    # Stable where log(sigmoid) underflows.
    assert torch.isfinite(discriminator_loss(torch.tensor([-200.0]), torch.tensor([200.0])))


def test_discriminator_gradient_is_the_ascent_direction_of_eq_17():
    torch.manual_seed(0)
    discriminator = Discriminator(4, 2, continuous=False, hidden=(8,)).double()
    g = torch.Generator().manual_seed(1)
    s_pi, a_pi = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randint(2, (6,), generator=g)
    s_e, a_e = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randint(2, (5,), generator=g)
    parameters = list(discriminator.parameters())
    loss_grad = torch.autograd.grad(
        discriminator_loss(discriminator(s_pi, a_pi), discriminator(s_e, a_e)), parameters
    )
    d_pi, d_e = torch.sigmoid(discriminator(s_pi, a_pi)), torch.sigmoid(discriminator(s_e, a_e))
    eq17 = torch.log(d_pi).mean() + torch.log(1 - d_e).mean()
    ascent = torch.autograd.grad(eq17, parameters)
    for a, b in zip(loss_grad, ascent, strict=True):
        torch.testing.assert_close(a, -b)


def test_optimal_discriminator_gives_the_jensen_shannon_divergence():
    # Tabular occupancy measures over 3 state-action pairs, as samples (Eq. 15: at D* = ρ_π/(ρ_π+ρ_E)
    # the objective of Eq. 16 is 2 JS(ρ_π, ρ_E) − log 4).
    rho_pi, rho_e = np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.25, 0.5])
    samples_pi, samples_e = np.array([0, 0, 1, 2]), np.array([0, 1, 2, 2])
    logit = torch.tensor(np.log(rho_pi / rho_e))  # logit of D* = log(ρ_π / ρ_E)
    objective = -discriminator_loss(logit[samples_pi], logit[samples_e])
    mixture = 0.5 * (rho_pi + rho_e)
    js = 0.5 * np.sum(rho_pi * np.log(rho_pi / mixture)) + 0.5 * np.sum(rho_e * np.log(rho_e / mixture))
    assert float(objective) == pytest.approx(2 * js - math.log(4), abs=1e-12)
    # Any other discriminator does worse (D* maximises Eq. 17).
    for shift in (-0.3, 0.2):
        assert float(-discriminator_loss(logit[samples_pi] + shift, logit[samples_e] + shift)) < float(
            objective
        )


def test_discriminator_inputs_one_hot_and_standardised():
    discriminator = Discriminator(2, 3, continuous=False, hidden=(4,))
    discriminator.set_observation_statistics(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 0.5]))
    x = discriminator.inputs(torch.tensor([[3.0, -1.5]]), torch.tensor([2]))
    torch.testing.assert_close(x, torch.tensor([[1.0, -1.0, 0.0, 0.0, 1.0]]))
    continuous = Discriminator(2, 2, continuous=True, hidden=(4,))
    x = continuous.inputs(torch.tensor([[0.5, 0.25]]), torch.tensor([[0.1, -0.2]]))
    torch.testing.assert_close(x, torch.tensor([[0.5, 0.25, 0.1, -0.2]]))
    assert continuous(torch.zeros(3, 2), torch.zeros(3, 2)).shape == (3,)


def test_discriminator_rejects_bad_actions():
    discriminator = Discriminator(2, 3, continuous=False, hidden=(4,))
    with pytest.raises(ValueError, match=r"actions must be in \[0, 3\)"):
        discriminator(torch.zeros(2, 2), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        discriminator(torch.zeros(2, 2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="observations"):
        discriminator(torch.zeros(2, 5), torch.tensor([0, 1]))
    continuous = Discriminator(2, 2, continuous=True, hidden=(4,))
    with pytest.raises(ValueError, match="actions"):
        continuous(torch.zeros(2, 2), torch.zeros(2, 3))


# ------------------------------------------------------------------------------------- reward
def test_reward_forms_and_their_signs():
    logits = torch.linspace(-6, 6, 25, dtype=torch.float64)
    d = torch.sigmoid(logits)  # the probability that (s, a) is the policy's
    torch.testing.assert_close(gail_reward(logits, "neg_log_d"), -torch.log(d))  # the paper: cost log D
    torch.testing.assert_close(gail_reward(logits, "log_one_minus_d"), torch.log(1 - d))
    torch.testing.assert_close(gail_reward(logits, "logit"), torch.log(1 - d) - torch.log(d))
    assert (gail_reward(logits, "neg_log_d") >= 0).all()
    assert (gail_reward(logits, "log_one_minus_d") <= 0).all()
    for form in REWARD_FORMS:
        reward = gail_reward(logits, form)
        # Pairs the discriminator takes for the policy's (large D) earn less: imitation pays.
        assert (reward[1:] < reward[:-1]).all(), form
        assert torch.isfinite(gail_reward(torch.tensor([-500.0, 500.0]), form)).all()
    with pytest.raises(ValueError, match="form"):
        gail_reward(logits, "log_d")


@pytest.fixture(scope="module")
def cartpole_demonstrations():
    return _random_demonstrations()


def _tiny(**overrides):
    values = dict(num_envs=2, n_steps=32, hidden=(8,), discriminator_hidden=(8,), value_epochs=1)
    values.update(overrides)
    return GAILConfig(**values)


def test_rewards_add_the_causal_entropy_term(cartpole_demonstrations):
    gail = GAIL("CartPole-v1", cartpole_demonstrations, _tiny(entropy_coef=0.3), seed=0)
    g = torch.Generator().manual_seed(0)
    observations = torch.randn(3, 2, 4, generator=g)
    actions = torch.randint(2, (3, 2), generator=g)
    log_probs = -torch.rand(3, 2, generator=g)
    logits = gail.discriminator(observations.reshape(6, 4), actions.reshape(6)).reshape(3, 2)
    expected = -F.logsigmoid(logits) - 0.3 * log_probs  # −log D − λ log π(a|s)
    torch.testing.assert_close(gail.rewards(observations, actions, log_probs), expected.detach())
    gail.cfg.entropy_coef = 0.0
    torch.testing.assert_close(gail.rewards(observations, actions, log_probs), -F.logsigmoid(logits).detach())
    with torch.no_grad():
        gail.discriminator.net[-1].bias.fill_(-math.inf)
    with pytest.raises(ValueError, match="non-finite rewards"):
        gail.rewards(observations, actions, log_probs)


# ---------------------------------------------------------------------------- Algorithm 1
@pytest.mark.parametrize("policy_step", ["trpo", "ppo"])
def test_one_iteration_updates_discriminator_then_policy(cartpole_demonstrations, policy_step):
    gail = GAIL(
        "CartPole-v1", cartpole_demonstrations, _tiny(policy_step=policy_step, discriminator_steps=3), seed=1
    )
    before_d = [p.detach().clone() for p in gail.discriminator.parameters()]
    before_pi = [p.detach().clone() for p in gail.policy.policy_net.parameters()]
    stats = gail.iterate()
    assert gail.steps == 64 and gail.iterations == 1
    assert any(not torch.equal(a, b) for a, b in zip(before_d, gail.discriminator.parameters(), strict=True))
    assert any(
        not torch.equal(a, b) for a, b in zip(before_pi, gail.policy.policy_net.parameters(), strict=True)
    )
    assert {"discriminator_loss", "d_policy", "d_expert", "gail_reward"} <= set(stats)


def test_discriminator_learns_to_separate_expert_from_policy(cartpole_demonstrations):
    # The expert's pairs: action always 0; the policy acts at random. D = P(policy) must rise on
    # the policy's pairs and fall on the expert's.
    demonstrations = cartpole_demonstrations
    demonstrations = type(demonstrations)(
        demonstrations.observations,
        np.zeros_like(demonstrations.actions),
        demonstrations.rewards,
        demonstrations.episode_starts,
        demonstrations.metadata,
    )
    gail = GAIL("CartPole-v1", demonstrations, _tiny(discriminator_lr=1e-2, discriminator_steps=50), seed=0)
    observations = torch.as_tensor(demonstrations.observations)
    stats = gail.discriminator_update(observations, torch.ones(len(demonstrations), dtype=torch.long))
    assert stats["d_policy"] > 0.8 and stats["d_expert"] < 0.2
    rewards = gail.rewards(observations[:4, None], torch.tensor([[0], [1], [0], [1]]), torch.zeros(4, 1))
    assert rewards[0, 0] > rewards[1, 0] and rewards[2, 0] > rewards[3, 0]  # expert-like pairs pay more


def test_frozen_discriminator_never_changes(cartpole_demonstrations):
    gail = GAIL("CartPole-v1", cartpole_demonstrations, _tiny(freeze_discriminator=True), seed=0)
    before = [p.detach().clone() for p in gail.discriminator.parameters()]
    gail.learn(100)
    assert all(torch.equal(a, b) for a, b in zip(before, gail.discriminator.parameters(), strict=True))


# --------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    ("env_id", "overrides"),
    [
        ("CartPole-v1", {}),
        (POINT_MASS_ID, {"policy_step": "ppo", "ppo": PPOConfig(epochs=2, minibatch_size=32)}),
    ],
)
def test_a_run_killed_midway_resumes_to_the_same_result(tmp_path, env_id, overrides):
    demonstrations = _random_demonstrations(env_id)
    cfg = _tiny(n_steps=40, **overrides)  # 40 steps: CartPole episodes straddle iterations
    uninterrupted = GAIL(env_id, demonstrations, cfg, seed=5)
    uninterrupted.learn(4 * 80)
    first = GAIL(env_id, demonstrations, cfg, seed=5)
    first.learn(2 * 80)
    config = {**cfg.to_dict(), "ppo": vars(cfg.ppo), "seed": 5}
    save_checkpoint(tmp_path / "gail", first.state_dict(), config=config)
    first.learn(80)  # work after the checkpoint is lost when the run is killed
    del first
    torch.manual_seed(123)  # a fresh process: the global RNG is elsewhere
    resumed = GAIL(env_id, demonstrations, cfg, seed=5)
    resumed.load_state_dict(load_checkpoint(tmp_path / "gail", config=config))
    resumed.learn(2 * 80)
    np.testing.assert_equal(resumed.history, uninterrupted.history)  # NaN where no episode ended
    assert resumed.episodes == uninterrupted.episodes
    for a, b in zip(
        resumed.policy.state_dict().values(), uninterrupted.policy.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(
        resumed.discriminator.state_dict().values(),
        uninterrupted.discriminator.state_dict().values(),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(CheckpointMismatch):
        load_checkpoint(tmp_path / "gail", config={**config, "seed": 6})


def test_a_checkpoint_of_another_environment_is_refused(cartpole_demonstrations):
    gail = GAIL("CartPole-v1", cartpole_demonstrations, _tiny(), seed=0)
    gail.learn(64)
    state = gail.state_dict()
    environment = state["collector"]["environments"][0]
    environment["observation"] = environment["observation"] + 1.0
    other = GAIL("CartPole-v1", cartpole_demonstrations, _tiny(), seed=0)
    with pytest.raises(ValueError, match="did not reach its saved observation"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="state does not fit"):
        other.load_state_dict({"policy": state["policy"]})


# ----------------------------------------------------------------------------------- bad input
class _MultiAction(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,))
    action_space = gym.spaces.MultiDiscrete([2, 2])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, True, {}


def test_an_action_space_gail_cannot_handle_is_named():
    if "aicanon-tests/MultiAction-v0" not in gym.registry:
        gym.register("aicanon-tests/MultiAction-v0", entry_point=_MultiAction)
    demonstrations = _random_demonstrations()
    with pytest.raises(TypeError, match=r"GAIL cannot act in aicanon-tests/MultiAction-v0.*MultiDiscrete"):
        GAIL("aicanon-tests/MultiAction-v0", demonstrations, _tiny())


def test_demonstrations_of_another_environment_are_refused(cartpole_demonstrations):
    with pytest.raises(ValueError, match=r"recorded in 'CartPole-v1', not in 'Acrobot-v1'"):
        GAIL("Acrobot-v1", cartpole_demonstrations, _tiny())
    continuous = _random_demonstrations(POINT_MASS_ID)
    continuous.metadata["env_id"] = "CartPole-v1"  # right name, wrong data
    with pytest.raises(ValueError, match="observations of shape"):
        GAIL("CartPole-v1", continuous, _tiny())


def test_bad_configs_are_rejected(cartpole_demonstrations):
    with pytest.raises(ValueError, match="reward_form"):
        GAILConfig(reward_form="log_d")
    with pytest.raises(ValueError, match="policy_step"):
        GAILConfig(policy_step="sac")
    with pytest.raises(ValueError, match="entropy_coef"):
        GAILConfig(entropy_coef=-1.0)
    with pytest.raises(TypeError, match="GAILConfig"):
        GAIL("CartPole-v1", cartpole_demonstrations, {"n_steps": 3})
    with pytest.raises(TypeError, match="Demonstrations"):
        GAIL("CartPole-v1", {"observations": []}, _tiny())
