"""aicanon.rl.behavior_cloning: the loss by hand (categorical and Gaussian heads), fitting a known
expert, early stopping on the validation split, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.rl.behavior_cloning import BCConfig, behavior_cloning_loss, train_behavior_cloning
from aicanon.rl.networks import ActorCritic

pytestmark = pytest.mark.paper("gail")


def test_categorical_loss_is_the_mean_negative_log_likelihood():
    torch.manual_seed(0)
    policy = ActorCritic(3, 4, hidden=(5,))
    observations = torch.randn(6, 3)
    actions = torch.tensor([0, 1, 2, 3, 1, 0])
    logits = policy.policy_net(observations)
    expected = -torch.log_softmax(logits, -1)[torch.arange(6), actions].mean()
    torch.testing.assert_close(behavior_cloning_loss(policy, observations, actions), expected)


def test_gaussian_loss_is_the_mean_negative_log_density():
    torch.manual_seed(0)
    policy = ActorCritic(3, 2, continuous=True, hidden=(5,), log_std_init=-0.5)
    observations, actions = torch.randn(5, 3), torch.randn(5, 2)
    mean, std = policy.policy_net(observations), math.exp(-0.5)
    density = -0.5 * ((actions - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(behavior_cloning_loss(policy, observations, actions), -density.sum(-1).mean())


def test_cloning_fits_a_known_expert():
    g = torch.Generator().manual_seed(0)
    observations = torch.randn(600, 2, generator=g)
    actions = (observations[:, 0] + observations[:, 1] > 0).long()  # the expert's rule
    torch.manual_seed(0)
    policy = ActorCritic(2, 2, hidden=(16,))
    before = float(behavior_cloning_loss(policy, observations, actions).detach())
    info = train_behavior_cloning(policy, observations, actions, BCConfig(lr=1e-2, max_epochs=60), g)
    after = float(behavior_cloning_loss(policy, observations, actions).detach())
    assert after < 0.3 * before
    accuracy = (policy.distribution(observations).probs.argmax(-1) == actions).float().mean()
    assert accuracy > 0.95
    # The kept parameters are those of the best validation epoch.
    assert info["best_validation_loss"] == pytest.approx(min(info["validation_loss"]))
    assert info["validation_loss"][info["best_epoch"]] == info["best_validation_loss"]


def test_early_stopping_halts_when_validation_stops_improving():
    g = torch.Generator().manual_seed(1)
    observations = torch.randn(40, 2, generator=g)
    actions = torch.randint(2, (40,), generator=g)  # pure noise: validation stops improving quickly
    torch.manual_seed(0)
    policy = ActorCritic(2, 2, hidden=(64,))
    info = train_behavior_cloning(
        policy, observations, actions, BCConfig(lr=3e-2, max_epochs=500, patience=5), g
    )
    assert len(info["train_loss"]) < 500
    assert len(info["validation_loss"]) == info["best_epoch"] + 1 + 5


def test_bad_input_is_rejected():
    policy = ActorCritic(2, 2, hidden=(4,))
    with pytest.raises(TypeError, match="integers"):
        behavior_cloning_loss(policy, torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="actions"):
        behavior_cloning_loss(policy, torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="distribution"):
        behavior_cloning_loss(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="validation_fraction"):
        BCConfig(validation_fraction=1.0)
    with pytest.raises(ValueError, match="empty training or validation"):
        train_behavior_cloning(
            policy, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), BCConfig(validation_fraction=0.1)
        )
    with pytest.raises(TypeError, match="BCConfig"):
        train_behavior_cloning(policy, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), {"lr": 1})
