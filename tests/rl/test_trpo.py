"""aicanon.rl.trpo: conjugate gradients against a direct solve, Fisher-vector products against the
explicit Hessian of the KL, the step's trust region, learning, bad input."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import kl_divergence

from aicanon.rl.networks import ActorCritic
from aicanon.rl.trpo import TRPO, TRPOConfig, conjugate_gradient, fisher_vector_product, trpo_step

pytestmark = pytest.mark.paper("drl-survey")


def test_conjugate_gradient_solves_a_positive_definite_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(12, 12, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=12)  # exact in n steps (in exact arithmetic)
    torch.testing.assert_close(x, torch.linalg.solve(a, b))
    one = conjugate_gradient(lambda v: a @ v, b, iterations=1)  # one step: the optimal multiple of b
    torch.testing.assert_close(one, (b @ b) / (b @ a @ b) * b)


def _policy(continuous):
    torch.manual_seed(0)
    return ActorCritic(3, 2, continuous=continuous, hidden=(5,), log_std_init=-0.3)


@pytest.mark.parametrize("continuous", [False, True])
def test_fisher_vector_product_equals_the_kl_hessian(continuous):
    policy = _policy(continuous).double()
    with torch.no_grad():  # a policy far from uniform, so F is not trivially small
        policy.policy_net[-1].weight.normal_(generator=torch.Generator().manual_seed(3))
    observations = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    parameters = [p for n, p in policy.named_parameters() if not n.startswith("value_net")]
    with torch.no_grad():
        old = policy.distribution(observations)

    def mean_kl():
        kl = kl_divergence(old, policy.distribution(observations))
        return kl.mean()

    flat = torch.cat([p.detach().reshape(-1) for p in parameters])
    shapes = [p.shape for p in parameters]

    def kl_of(vector):
        chunks, start = [], 0
        for shape in shapes:
            chunks.append(vector[start : start + shape.numel()].reshape(shape))
            start += shape.numel()
        names = [n for n, _ in policy.named_parameters() if not n.startswith("value_net")]
        new = torch.func.functional_call(policy, dict(zip(names, chunks, strict=True)), (observations,))[0]
        return kl_divergence(old, new).mean()

    hessian = torch.autograd.functional.hessian(kl_of, flat)
    v = torch.randn(flat.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(fisher_vector_product(mean_kl, parameters, v, damping=0.0), hessian @ v)
    torch.testing.assert_close(
        fisher_vector_product(mean_kl, parameters, v, damping=0.1), hessian @ v + 0.1 * v
    )


def test_step_stays_in_the_trust_region_and_improves_the_surrogate():
    policy = _policy(False)
    g = torch.Generator().manual_seed(0)
    observations = torch.randn(256, 3, generator=g)
    with torch.no_grad():
        actions = policy.distribution(observations).sample()
        before = policy.distribution(observations)
    advantages = torch.randn(256, generator=g)
    stats = trpo_step(policy, observations, actions, advantages, max_kl=0.01)
    assert 0 < stats["kl"] <= 0.01 and stats["improvement"] > 0 and stats["step_fraction"] > 0
    with torch.no_grad():
        after = policy.distribution(observations)
        kl = kl_divergence(before, after).mean()
        surrogate = ((after.log_prob(actions) - before.log_prob(actions)).exp() * advantages).mean()
    assert float(kl) == pytest.approx(stats["kl"], rel=1e-4)
    assert float(surrogate - advantages.mean()) == pytest.approx(stats["improvement"], rel=1e-3, abs=1e-6)
    # The quadratic model makes the KL about δ at the full step: the line search should keep most of it.
    assert stats["kl"] > 0.002


def _step_problem(continuous):
    policy = _policy(continuous)
    g = torch.Generator().manual_seed(0)
    observations = torch.randn(256, 3, generator=g)
    with torch.no_grad():
        actions = policy.distribution(observations).sample()
    return policy, observations, actions, torch.randn(256, generator=g)


@pytest.mark.parametrize("continuous", [False, True])
def test_full_step_reaches_the_quadratic_trust_region_boundary(continuous):
    # For a small delta the quadratic model is accurate: the full step beta*s (beta = sqrt(2 delta /
    # s^T F s), Appendix C) is accepted at once with a KL just under delta (the damping term of the
    # curvature makes it a little smaller) and the first-order improvement g^T (beta s).
    policy, observations, actions, advantages = _step_problem(continuous)
    stats = trpo_step(policy, observations, actions, advantages, max_kl=1e-4, backtrack_iterations=1)
    assert stats["step_fraction"] == 1.0
    assert 0.6e-4 < stats["kl"] <= 1e-4


def test_line_search_enforces_the_actual_kl():
    # With a large delta the quadratic model underestimates the KL of the full step: the line
    # search must shrink it until the *measured* KL is within delta (the Gaussian policy's full step
    # here reaches KL > 1).
    policy, observations, actions, advantages = _step_problem(True)
    stats = trpo_step(policy, observations, actions, advantages, max_kl=1.0)
    assert 0 < stats["kl"] <= 1.0 and stats["improvement"] > 0
    assert stats["step_fraction"] < 1.0


def test_zero_advantages_leave_the_policy_unchanged():
    policy = _policy(True)
    before = [p.detach().clone() for p in policy.parameters()]
    stats = trpo_step(policy, torch.randn(16, 3), torch.randn(16, 2), torch.zeros(16))
    assert stats["step_fraction"] == 0
    for a, b in zip(before, policy.parameters(), strict=True):
        assert torch.equal(a, b.detach())


def test_learning_improves_on_cartpole():
    agent = TRPO("CartPole-v1", TRPOConfig(num_envs=4, n_steps=128), seed=0)
    episodes = agent.learn(8192)
    first, last = episodes[:20], episodes[-10:]
    assert sum(r for r, _ in last) / len(last) > 2 * sum(r for r, _ in first) / len(first)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="max_kl"):
        TRPOConfig(max_kl=0.0)
    with pytest.raises(ValueError, match="backtrack_coef"):
        TRPOConfig(backtrack_coef=1.0)
    with pytest.raises(TypeError, match="TRPO cannot act in Blackjack-v1"):
        TRPO("Blackjack-v1")
    with pytest.raises(ValueError, match="b must be a 1-D tensor"):
        conjugate_gradient(lambda v: v, torch.zeros(2, 2))
    policy = _policy(False)
    with pytest.raises(ValueError, match="advantages must be a 1-D tensor"):
        trpo_step(policy, torch.zeros(4, 3), torch.zeros(4).long(), torch.zeros(4, 1))
