"""aicanon.rl.ppo: the clipped surrogate and value losses against their equations, a whole update
against stable-baselines3's PPO.train on the same rollout and weights, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.distributions import Categorical

from aicanon.rl.ppo import PPO, PPOConfig, clipped_surrogate_loss, value_loss

pytestmark = pytest.mark.paper("drl-survey")


def test_clipped_surrogate_equals_eq7_and_its_gradient_vanishes_where_clipped():
    g = torch.Generator().manual_seed(0)
    old = torch.randn(200, generator=g, dtype=torch.float64)
    new = (old + 0.4 * torch.randn(200, generator=g, dtype=torch.float64)).requires_grad_()
    advantages = torch.randn(200, generator=g, dtype=torch.float64)
    loss, stats = clipped_surrogate_loss(new, old, advantages, 0.2)
    ratio = (new - old).exp()
    expected = -torch.stack(
        [torch.min(r * a, min(max(r, 0.8), 1.2) * a) for r, a in zip(ratio, advantages, strict=True)]
    ).mean()
    torch.testing.assert_close(loss, expected)
    assert stats["clip_fraction"] == pytest.approx(float(((ratio - 1).abs() > 0.2).double().mean()))
    assert stats["approx_kl"] == pytest.approx(float(((ratio - 1) - (new - old)).mean().detach()))
    (gradient,) = torch.autograd.grad(loss, new)
    # Pessimistic bound: no gradient where the ratio left the trust region in the advantage's favour.
    outside = ((ratio > 1.2) & (advantages > 0)) | ((ratio < 0.8) & (advantages < 0))
    assert outside.any() and (gradient[outside] == 0).all() and (gradient[~outside] != 0).all()


def test_value_loss_plain_and_clipped():
    values = torch.tensor([1.0, 2.0, 0.0])
    returns = torch.tensor([0.0, 2.5, 1.0])
    old = torch.tensor([0.5, 1.0, 0.9])
    torch.testing.assert_close(value_loss(values, returns), torch.tensor((1 + 0.25 + 1) / 3))
    # clipped to old ± 0.2: [0.7, 1.2, 0.7]; max of squared errors: [1, 1.69, 1] -> mean
    torch.testing.assert_close(value_loss(values, returns, old, 0.2), torch.tensor((1.0 + 1.69 + 1.0) / 3))
    with pytest.raises(ValueError, match="old_values must be given"):
        value_loss(values, returns, None, 0.2)


@pytest.mark.parity
def test_one_update_equals_stable_baselines3_ppo_train():
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.PPO(
        "MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, n_epochs=2, ent_coef=0.1, seed=0, device="cpu"
    )
    # Plain SGD on both sides: Adam's first steps see only the gradients' signs and would hide errors.
    model.policy.optimizer = torch.optim.SGD(model.policy.parameters(), lr=model.learning_rate)
    with torch.no_grad():  # away from SB3's near-uniform start (gain 0.01), where entropy has no gradient
        model.policy.action_net.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
    _, callback = model._setup_learn(64, None)
    callback.on_training_start(locals(), globals())
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=64)
    ours_policy = copy.deepcopy(model.policy)
    buffer = model.rollout_buffer
    batch = {
        "observations": torch.as_tensor(buffer.observations.reshape(64, -1)),
        "actions": torch.as_tensor(buffer.actions.reshape(64)).long(),
        "log_probs": torch.as_tensor(buffer.log_probs.reshape(64)),
        "values": torch.as_tensor(buffer.values.reshape(64)),
        "advantages": torch.as_tensor(buffer.advantages.reshape(64)),
        "returns": torch.as_tensor(buffer.returns.reshape(64)),
    }
    model.train()

    def policy(observations):
        features = ours_policy.extract_features(observations, ours_policy.pi_features_extractor)
        logits = ours_policy.action_net(ours_policy.mlp_extractor.forward_actor(features))
        return Categorical(logits=logits), ours_policy.predict_values(observations)

    cfg = PPOConfig(epochs=2, minibatch_size=64, entropy_coef=0.1, lr=model.learning_rate)
    parameters = list(ours_policy.parameters())
    sgd = torch.optim.SGD(parameters, lr=model.learning_rate)
    stats = PPO(policy, cfg, optimizer=sgd, parameters=parameters).update(batch)
    assert stats["updates"] == 2
    for (name, theirs), ours in zip(model.policy.named_parameters(), ours_policy.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7, msg=name)


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Linear(3, 2)
        self.value = torch.nn.Linear(3, 1)

    def forward(self, x):
        return Categorical(logits=self.logits(x)), self.value(x).squeeze(-1)


def _batch(n=32):
    g = torch.Generator().manual_seed(0)
    return {
        "observations": torch.randn(n, 3, generator=g),
        "actions": torch.randint(0, 2, (n,), generator=g),
        "log_probs": torch.full((n,), -0.69),
        "values": torch.zeros(n),
        "advantages": torch.randn(n, generator=g),
        "returns": torch.randn(n, generator=g),
    }


def test_update_runs_its_epochs_and_stops_early_on_kl():
    torch.manual_seed(0)
    stats = PPO(_Tiny(), PPOConfig(epochs=3, minibatch_size=8)).update(
        _batch(), torch.Generator().manual_seed(0)
    )
    assert stats["updates"] == 12 and stats["stopped_early"] == 0
    big = PPOConfig(epochs=50, minibatch_size=32, lr=0.5, target_kl=0.01)
    stats = PPO(_Tiny(), big).update(_batch())
    assert stats["stopped_early"] == 1 and stats["updates"] < 50


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="clip_range"):
        PPOConfig(clip_range=0.0)
    with pytest.raises(ValueError, match="missing \\['returns'\\]"):
        PPO(_Tiny()).update({k: v for k, v in _batch().items() if k != "returns"})
    with pytest.raises(ValueError, match="non-finite"):
        PPO(_Tiny()).update(_batch() | {"advantages": torch.full((32,), float("nan"))})
    with pytest.raises(ValueError, match="rows"):
        PPO(_Tiny()).update(_batch() | {"returns": torch.zeros(5)})
    with pytest.raises(TypeError, match="parameters must be given"):
        PPO(lambda x: None)
