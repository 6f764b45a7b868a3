"""Weighting the task losses of a multi-task network: ``L = sum_t w_t L_t`` and how to choose ``w_t``.

Ruder's overview (Sec. 6.6, "Weighting losses with uncertainty") presents Kendall et al.'s learned
weights as the answer to hand-tuned ones; GradNorm (Chen et al., ICML 2018) is the other widely used
adaptive scheme. Every scheme here is an ``nn.Module`` with the same interface:

* ``forward(losses) -> Tensor``: the total loss, ``losses`` a sequence of ``num_tasks`` scalars;
* ``backward(losses, shared_weight=None) -> Tensor``: backpropagate one training step (plain
  ``forward(losses).backward()`` for all but GradNorm, which also sets its weights' gradient);
  returns the detached total;
* ``after_step()``: call after the optimiser's step (GradNorm renormalises its weights there);
* ``task_weights() -> Tensor``: the effective ``w_t`` now (for logging).

Schemes
-------
:class:`EqualWeighting`: ``w_t = 1``. :class:`FixedWeighting`: hand-set ``w_t = lambda_t >= 0``.

:class:`UncertaintyWeighting` (Kendall, Gal and Cipolla, CVPR 2018): each task has a homoscedastic
noise scale ``sigma_t`` learned with the network. A Gaussian likelihood (regression) or a softmax
with temperature ``sigma^2`` (classification) gives, for one regression task 1 and one
classification task 2 (their Sec. 3.2; equation numbers not checked here),

    L(W, sigma_1, sigma_2) = 1/(2 sigma_1^2) L_1(W) + 1/sigma_2^2 L_2(W) + log sigma_1 + log sigma_2

We learn ``s_t = log sigma_t^2`` (their Sec. 3.2 / implementation note: "more numerically stable"):
``L = sum_t c_t exp(-s_t) L_t + s_t / 2`` with ``c_t = 1/2`` for regression and ``1`` for
classification, ``s_t`` initialised at 0. At the optimum over ``s_t`` alone, ``exp(s_t) = 2 c_t L_t``,
so the effective weight ``c_t exp(-s_t)`` is ``1/(2 L_t)``: the scheme is invariant to rescaling a
task's loss, which is what lets it cope with losses that differ by orders of magnitude.

:class:`GradNorm` (Chen, Badrinarayanan, Lee and Rabinovich, ICML 2018, Sec. 3): with ``W`` the last
shared layer's weight,

    G_t = || grad_W (w_t L_t) ||_2,   G_bar = mean_t G_t,
    L~_t = L_t(step) / L_t(0),        r_t = L~_t / mean_s L~_s,
    L_grad = sum_t | G_t - G_bar * r_t^alpha |_1                                         (GradNorm's L_grad)

where the target ``G_bar * r_t^alpha`` is held constant; ``L_grad`` is differentiated with respect
to the ``w_t`` only, and after each step the ``w_t`` are renormalised so that ``sum_t w_t = T``. The
network itself is trained on ``sum_t w_t L_t`` with the ``w_t`` as constants. ``alpha`` (1.5 is the
value used for NYUv2 in the paper, unverified here) sets how hard slow tasks are pulled up.

Departures: ``G_t`` is computed as ``w_t * ||grad_W L_t||`` (equal, and needs no second-order
graph); after renormalisation the weights are clamped at 1e-6 so that none turns negative (the
paper does not say what happens then); ``L_t(0)`` is the loss at the first call of ``backward``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor

__all__ = [
    "EqualWeighting",
    "FixedWeighting",
    "GradNorm",
    "LossWeighting",
    "UncertaintyWeighting",
    "make_weighting",
]

WEIGHTINGS = ("equal", "uncertainty", "gradnorm")


class LossWeighting(nn.Module):
    """Base class: ``num_tasks`` losses in, one total out (see the module's docstring)."""

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = check_int("num_tasks", num_tasks)

    def _stack(self, losses: Sequence[Tensor]) -> Tensor:
        if isinstance(losses, Tensor):
            losses = list(losses.unbind(0)) if losses.dim() == 1 else [losses]
        if len(losses) != self.num_tasks:
            raise ValueError(f"losses must hold {self.num_tasks} losses (one per task), got {len(losses)}")
        for index, loss in enumerate(losses):
            check_tensor(f"losses[{index}]", loss, dim=0, floating=True, note="a scalar loss")
        return torch.stack(list(losses))

    def task_weights(self) -> Tensor:
        raise NotImplementedError

    def forward(self, losses: Sequence[Tensor]) -> Tensor:
        stacked = self._stack(losses)
        return (self.task_weights().to(stacked) * stacked).sum()

    def backward(self, losses: Sequence[Tensor], shared_weight: Tensor | None = None) -> Tensor:
        total = self(losses)
        total.backward()
        return total.detach()

    def after_step(self) -> None:
        """Called after the optimiser's step; nothing to do for a static or likelihood weighting."""


class EqualWeighting(LossWeighting):
    """``L = sum_t L_t``: the default the adaptive schemes are compared against."""

    def task_weights(self) -> Tensor:
        return torch.ones(self.num_tasks)


class FixedWeighting(LossWeighting):
    """``L = sum_t lambda_t L_t`` with hand-set ``lambda_t >= 0``."""

    def __init__(self, weights: Sequence[float]) -> None:
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a sequence of numbers, got {type(weights).__name__}")
        super().__init__(check_int("len(weights)", len(weights), note="one weight per task"))
        for index, weight in enumerate(weights):
            check_float(f"weights[{index}]", weight, 0, finite=True, note="lambda >= 0")
        self.register_buffer("weights", torch.tensor([float(w) for w in weights]))

    def task_weights(self) -> Tensor:
        return self.weights


class UncertaintyWeighting(LossWeighting):
    """Kendall et al.'s homoscedastic-uncertainty weighting: ``sum_t c_t exp(-s_t) L_t + s_t / 2``.

    ``kinds[t]`` is ``"regression"`` (``c_t = 1/2``) or ``"classification"`` (``c_t = 1``); the
    ``s_t = log sigma_t^2`` (:attr:`log_variance`) are parameters: put them in the optimiser.
    """

    def __init__(self, kinds: Sequence[str]) -> None:
        if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Sequence):
            raise TypeError(
                f"kinds must be a sequence of 'classification'/'regression', got {type(kinds).__name__}"
            )
        super().__init__(check_int("len(kinds)", len(kinds), note="one kind per task"))
        for index, kind in enumerate(kinds):
            check_choice(f"kinds[{index}]", kind, ("classification", "regression"))
        self.kinds = tuple(kinds)
        self.register_buffer("scale", torch.tensor([0.5 if k == "regression" else 1.0 for k in kinds]))
        self.log_variance = nn.Parameter(torch.zeros(len(kinds)))

    def task_weights(self) -> Tensor:
        return (self.scale * torch.exp(-self.log_variance)).detach()

    def forward(self, losses: Sequence[Tensor]) -> Tensor:
        stacked = self._stack(losses)
        precision = self.scale * torch.exp(-self.log_variance)
        return (precision * stacked + 0.5 * self.log_variance).sum()


class GradNorm(LossWeighting):
    """Chen et al.'s GradNorm: learned ``w_t`` that equalise the tasks' gradient norms at the last
    shared layer, pulled towards tasks that train slowly by ``r_t^alpha``. Put :attr:`weights` in
    the optimiser (its own learning rate is usual) and call :meth:`backward` with the shared weight,
    then :meth:`after_step` after the optimiser's step."""

    def __init__(self, num_tasks: int, alpha: float = 1.5) -> None:
        super().__init__(num_tasks)
        self.alpha = float(check_float("alpha", alpha, 0, finite=True))
        self.weights = nn.Parameter(torch.ones(num_tasks))
        self.register_buffer("initial_losses", torch.zeros(num_tasks))
        self.register_buffer("started", torch.tensor(False))

    def task_weights(self) -> Tensor:
        return self.weights.detach()

    def gradnorm_loss(self, losses: Sequence[Tensor], shared_weight: Tensor) -> Tensor:
        """``L_grad`` as a function of :attr:`weights` (the target held constant)."""
        stacked = self._stack(losses)
        check_tensor("shared_weight", shared_weight, floating=True)
        if not shared_weight.requires_grad:
            raise ValueError(
                "shared_weight must require grad (the last shared layer's weight), got a constant"
            )
        if not bool(self.started):
            self.initial_losses.copy_(stacked.detach())
            self.started.fill_(True)
        norms = torch.stack(
            [
                torch.autograd.grad(loss, shared_weight, retain_graph=True, allow_unused=True)[0].norm()
                if loss.requires_grad
                else stacked.new_zeros(())
                for loss in losses
            ]
        )
        gradient_norms = self.weights * norms.detach()  # G_t = ||grad_W w_t L_t|| = w_t ||grad_W L_t||
        loss_ratio = stacked.detach() / self.initial_losses.clamp_min(1e-12)  # L~_t
        inverse_rate = loss_ratio / loss_ratio.mean()  # r_t
        target = (gradient_norms.mean() * inverse_rate**self.alpha).detach()
        return (gradient_norms - target).abs().sum()

    def backward(self, losses: Sequence[Tensor], shared_weight: Tensor | None = None) -> Tensor:
        if shared_weight is None:
            raise ValueError("shared_weight must be the last shared layer's weight for GradNorm, got None")
        gradnorm_loss = self.gradnorm_loss(losses, shared_weight)
        (weight_gradient,) = torch.autograd.grad(gradnorm_loss, self.weights)
        total = (self.weights.detach() * self._stack(losses)).sum()
        total.backward()
        self.weights.grad = (
            weight_gradient if self.weights.grad is None else self.weights.grad + weight_gradient
        )
        return total.detach()

    def after_step(self) -> None:
        with torch.no_grad():  # renormalise: sum_t w_t = T (decouples the weights from the learning rate)
            self.weights.clamp_(min=1e-6)
            self.weights.mul_(self.num_tasks / self.weights.sum())


def make_weighting(name: str, kinds: Sequence[str], *, gradnorm_alpha: float = 1.5) -> LossWeighting:
    """``"equal"``, ``"uncertainty"`` or ``"gradnorm"`` for tasks of ``kinds``."""
    check_choice("weighting", name, WEIGHTINGS)
    if name == "equal":
        return EqualWeighting(len(kinds))
    if name == "uncertainty":
        return UncertaintyWeighting(kinds)
    return GradNorm(len(kinds), alpha=gradnorm_alpha)
