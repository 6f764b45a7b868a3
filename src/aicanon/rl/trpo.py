"""Trust region policy optimisation (Schulman et al. 2015): the natural-gradient step with conjugate
gradients, Fisher-vector products and a line search under the KL constraint; the survey's
trust-region family with PPO (Arulkumaran et al. 2017, Section 5.3).

Each iteration solves (Eq. 14, the sample-based form of the constrained problem)

    maximise_θ  L(θ) = E[π_θ(a|s) / π_θold(a|s) Â]    subject to   E[KL(π_θold(·|s) ‖ π_θ(·|s))] ≤ δ

by a quadratic approximation of the constraint (Appendix C): with g = ∇_θ L and F the Fisher
information matrix (the Hessian of the mean KL at θ_old), the search direction s ≈ F⁻¹ g comes
from ``cg_iterations`` conjugate-gradient steps that only need products F v (the Hessian-vector
product of the KL by double back-propagation, plus ``damping`` · v for conditioning); the largest
step within the trust region is β = √(2δ / sᵀ F s); a backtracking line search shrinks it by
``backtrack_coef`` until the *actual* KL is ≤ δ and the surrogate improves.

The value function V_φ (the baseline of the GAE advantages, Schulman et al. 2016) is fitted by
``value_epochs`` passes of Adam on the regression to the returns.

Departures: advantages from GAE(γ, λ) (Schulman et al. 2016) rather than the single-path /
vine Monte-Carlo estimates of the paper; advantages are normalised; the value function is fitted
by Adam mini-batches (stable-baselines3-contrib's choice) where the GAE paper used its own trust
region; time-limit truncations bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.rl.networks import ActorCritic
from aicanon.rl.on_policy import OnPolicyAgent

__all__ = ["TRPO", "TRPOConfig", "conjugate_gradient", "fisher_vector_product", "trpo_step"]


def conjugate_gradient(
    matrix_vector_product: Callable[[Tensor], Tensor],
    b: Tensor,
    iterations: int = 10,
    tolerance: float = 1e-10,
) -> Tensor:
    """Approximately solve A x = b for a symmetric positive-definite A given only ``A v``
    (at most ``iterations`` steps; stops when the squared residual falls below ``tolerance``)."""
    check_tensor("b", b, dim=1, floating=True)
    check_int("iterations", iterations)
    check_float("tolerance", tolerance, 0.0)
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for _ in range(iterations):
        if residual_sq <= tolerance:
            break
        product = matrix_vector_product(direction)
        alpha = residual_sq / (direction @ product)
        x = x + alpha * direction
        residual = residual - alpha * product
        new_residual_sq = residual @ residual
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x


def fisher_vector_product(
    mean_kl: Callable[[], Tensor], parameters: Sequence[Tensor], vector: Tensor, damping: float = 0.1
) -> Tensor:
    """(F + damping · I) v with F the Hessian of ``mean_kl()`` (the mean KL from a frozen old policy
    to the current one, zero at the current parameters) w.r.t. ``parameters`` (module docstring)."""
    check_float("damping", damping, 0.0, finite=True)
    parameters = list(parameters)
    gradient = torch.autograd.grad(mean_kl(), parameters, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in gradient])
    check_tensor("vector", vector, shape=tuple(flat.shape))
    hessian_vector = torch.autograd.grad(flat @ vector, parameters)
    return torch.cat([h.reshape(-1) for h in hessian_vector]) + damping * vector


def trpo_step(
    policy: ActorCritic,
    observations: Tensor,
    actions: Tensor,
    advantages: Tensor,
    max_kl: float = 0.01,
    damping: float = 0.1,
    cg_iterations: int = 10,
    backtrack_iterations: int = 10,
    backtrack_coef: float = 0.8,
) -> dict[str, float]:
    """One natural-gradient step of ``policy``'s action distribution (module docstring); returns
    the surrogate improvement, the KL reached and the step fraction accepted (0: rejected)."""
    check_float("max_kl", max_kl, 0.0, min_inclusive=False, finite=True)
    check_float("backtrack_coef", backtrack_coef, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    check_int("backtrack_iterations", backtrack_iterations)
    check_tensor("advantages", advantages, dim=1, floating=True)
    parameters = [p for name, p in policy.named_parameters() if not name.startswith("value_net")]
    with torch.no_grad():
        old = policy.distribution(observations)
        old_log_probs = _joint(old.log_prob(actions))

    def surrogate() -> Tensor:
        log_probs = _joint(policy.distribution(observations).log_prob(actions))
        return ((log_probs - old_log_probs).exp() * advantages).mean()

    def mean_kl() -> Tensor:
        return _joint(kl_divergence(old, policy.distribution(observations))).mean()

    loss = surrogate()
    gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, parameters)])
    if not torch.isfinite(gradient).all() or gradient.abs().max() == 0:
        return {"improvement": 0.0, "kl": 0.0, "step_fraction": 0.0}
    direction = conjugate_gradient(
        lambda v: fisher_vector_product(mean_kl, parameters, v, damping), gradient, cg_iterations
    )
    curvature = direction @ fisher_vector_product(mean_kl, parameters, direction, damping)
    step = torch.sqrt(2.0 * max_kl / curvature.clamp_min(1e-12)) * direction
    start = parameters_to_vector(parameters).detach()
    with torch.no_grad():
        fraction = 1.0
        for _ in range(backtrack_iterations):
            vector_to_parameters(start + fraction * step, parameters)
            improvement = float(surrogate() - loss)
            kl = float(mean_kl())
            if kl <= max_kl and improvement > 0:
                return {"improvement": improvement, "kl": kl, "step_fraction": fraction}
            fraction *= backtrack_coef
        vector_to_parameters(start, parameters)
    return {"improvement": 0.0, "kl": 0.0, "step_fraction": 0.0}


def _joint(tensor: Tensor) -> Tensor:
    return tensor.sum(-1) if tensor.dim() > 1 else tensor


@dataclass
class TRPOConfig:
    """TRPO's settings (the paper's δ = 0.01, 10 CG iterations, damping 0.1; GAE λ = 0.95)."""

    num_envs: int = 8
    n_steps: int = 256
    gamma: float = 0.99
    gae_lambda: float = 0.95
    max_kl: float = 0.01
    damping: float = 0.1
    cg_iterations: int = 10
    backtrack_iterations: int = 10
    backtrack_coef: float = 0.8
    value_lr: float = 1e-3
    value_epochs: int = 10
    value_minibatch_size: int = 128
    hidden: Sequence[int] = field(default_factory=lambda: (64, 64))

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "cg_iterations", "backtrack_iterations", "value_epochs"):
            check_int(name, getattr(self, name))
        check_int("value_minibatch_size", self.value_minibatch_size)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_float("max_kl", self.max_kl, 0.0, min_inclusive=False, finite=True)
        check_float("damping", self.damping, 0.0, finite=True)
        check_float("backtrack_coef", self.backtrack_coef, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
        check_float("value_lr", self.value_lr, 0.0, min_inclusive=False, finite=True)


class TRPO(OnPolicyAgent):
    """TRPO on ``num_envs`` copies of the Gymnasium environment ``env_id`` (module docstring);
    set-up, loop and checkpoints: :class:`aicanon.rl.on_policy.OnPolicyAgent`."""

    name = "TRPO"
    config_type = TRPOConfig

    def _setup(self) -> None:
        self.value_optimizer = torch.optim.Adam(self.policy.value_net.parameters(), lr=self.cfg.value_lr)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"value": self.value_optimizer}

    def update(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        """The policy's trust-region step, then the value function's regression."""
        cfg = self.cfg
        advantages = batch["advantages"]
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        stats = trpo_step(
            self.policy,
            batch["observations"],
            batch["actions"],
            advantages,
            cfg.max_kl,
            cfg.damping,
            cfg.cg_iterations,
            cfg.backtrack_iterations,
            cfg.backtrack_coef,
        )
        size = advantages.shape[0]
        for _ in range(cfg.value_epochs):
            order = torch.randperm(size, generator=self.generator)
            for start in range(0, size, cfg.value_minibatch_size):
                index = order[start : start + cfg.value_minibatch_size]
                loss = (
                    (self.policy.value(batch["observations"][index]) - batch["returns"][index])
                    .square()
                    .mean()
                )
                self.value_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.value_optimizer.step()
        stats["value_loss"] = float(loss.detach())
        return stats
