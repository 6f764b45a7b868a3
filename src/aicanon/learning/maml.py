"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017), second and first order, in ``torch.func``.

MAML learns an initialisation ``theta`` from which a few gradient steps on a new task's small
*support* set give a model that does well on that task's *query* set. For one task ``T_i`` with loss
``L_{T_i}`` and inner step size ``alpha`` the adapted parameters are (Eq. 1)::

    theta_i' = theta - alpha * grad_theta L_{T_i}(f_theta)            (one step; repeat for more)

and the meta-objective and its update, over a meta-batch of tasks drawn from ``p(T)``, are
(Eqs. 2 and 3; Algorithm 2 for supervised learning)::

    min_theta  sum_{T_i ~ p(T)} L_{T_i}(f_{theta_i'})
    theta <- theta - beta * grad_theta sum_i L_{T_i}(f_{theta_i'})

The inner losses are cross-entropy for classification and the mean-squared error for regression
(Eqs. 2 and 3 of Section 3.2 are those losses; they number the same as the objective above in the
paper's Algorithm 2, which refers to them by name). The meta-gradient differentiates *through* the
inner update, so it holds second derivatives: for one step
``grad_theta L(theta') = (I - alpha * H_theta L_support) grad_theta' L_query(theta')``. The paper's
*first-order approximation* (Section 5.2, "first-order approximation") drops the Hessian term and
uses ``grad_theta' L_query(theta')`` evaluated at the adapted parameters.

How it is written here. The network is any ``nn.Module``; its parameters are a dictionary that
``torch.func.functional_call`` evaluates the module with. One task's inner loop is plain Python over
``torch.func.grad`` of the support loss (so any number of steps, each with its own step size); the
tasks of a meta-batch are evaluated together by ``torch.func.vmap`` (each task gets its own copy of
the adapted parameters, and batch norm its own batch statistics); the meta-gradient is
``torch.func.grad`` of the mean query loss with respect to the initial parameters. First order
detaches the inner gradients, which removes exactly the Hessian term. Both orders are checked
against a direct double-backward computation in the tests.

Networks of the paper (Section 5.2 and its code): :class:`ConvNet` (4 modules of 3x3 convolution
with 64 filters, batch norm, ReLU, and 2x2 down-sampling, a strided convolution for Omniglot and a
max-pool for MiniImagenet, then the average of the last feature map and a linear layer) and
:class:`SinusoidRegressor` (1 -> 40 -> 40 -> 1, ReLU; Section 5.1).

Departures from the paper:

* Batch norm uses the statistics of the current batch, in training and in evaluation, with no running
  averages, as the paper's code does. Its scale and shift are adapted in the inner loop with every
  other parameter; in the paper's TensorFlow code they lived outside the adapted weight dictionary
  (meta-learned, not adapted). The scale is a learned parameter here (the paper's code had only a shift).
* ``inner_lr`` may be one step size for every step (the paper) or one per step (an option, as in
  later work such as MAML++); adapting for more steps than a per-step list gives uses its last entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor

__all__ = [
    "MAML",
    "BatchStatisticsNorm2d",
    "ConvNet",
    "SinusoidRegressor",
    "TaskBatch",
    "adapt",
    "inner_learning_rates",
    "meta_gradient",
    "query_loss",
]

Params = dict[str, Tensor]
LossFunction = Callable[[Tensor, Tensor], Tensor]


class TaskBatch(NamedTuple):
    """A meta-batch of ``T`` tasks: support (inner-loop) and query (meta-loss) sets, task first.

    ``support_x`` ``[T, S, *input]``, ``support_y`` ``[T, S, *target]``, ``query_x`` ``[T, Q, *input]``,
    ``query_y`` ``[T, Q, *target]``.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    def to(self, device: torch.device | str) -> TaskBatch:
        return TaskBatch(*(t.to(device) for t in self))

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]


def check_task_batch(tasks: TaskBatch) -> TaskBatch:
    """Raise a clear error unless ``tasks`` is a :class:`TaskBatch` of consistent, task-first tensors."""
    if not isinstance(tasks, TaskBatch):
        raise TypeError(f"tasks must be a TaskBatch, got {type(tasks).__name__}")
    for name, value in tasks._asdict().items():
        check_tensor(f"tasks.{name}", value)
        if value.dim() < 2:
            raise ValueError(f"tasks.{name} must be [tasks, examples, ...], got shape {tuple(value.shape)}")
    t = tasks.support_x.shape[0]
    for name, value in tasks._asdict().items():
        if value.shape[0] != t:
            raise ValueError(f"tasks.{name} must hold {t} tasks like support_x, got {value.shape[0]}")
    for x, y in (("support_x", "support_y"), ("query_x", "query_y")):
        if getattr(tasks, x).shape[1] != getattr(tasks, y).shape[1]:
            raise ValueError(
                f"tasks.{x} and tasks.{y} must have as many examples, got "
                f"{getattr(tasks, x).shape[1]} and {getattr(tasks, y).shape[1]}"
            )
    if tasks.support_x.shape[1] < 1:
        raise ValueError("tasks.support_x must hold at least one example per task, got 0")
    return tasks


def inner_learning_rates(inner_lr: float | Sequence[float], steps: int) -> list[float]:
    """The step size of each of ``steps`` inner steps: one value repeated, or a per-step list (its
    last entry repeated past its end)."""
    check_int("steps", steps, 1, note="inner gradient steps")
    if isinstance(inner_lr, Sequence) and not isinstance(inner_lr, str):
        rates = [float(check_float("inner_lr", r, 0, finite=True)) for r in inner_lr]
        if not rates:
            raise ValueError("inner_lr must be a number or a non-empty sequence of numbers, got []")
    else:
        rates = [float(check_float("inner_lr", inner_lr, 0, finite=True))]
    return [rates[min(i, len(rates) - 1)] for i in range(steps)]


def adapt(
    model: nn.Module,
    params: Params,
    support_x: Tensor,
    support_y: Tensor,
    loss_fn: LossFunction,
    rates: Sequence[float],
    first_order: bool = False,
) -> Params:
    """Eq. 1, ``len(rates)`` times: ``theta <- theta - rate_k * grad L_support(theta)`` for one task.

    Differentiable through the steps (second order) unless ``first_order``, which stops the gradient at
    each inner gradient (the Hessian term of the meta-gradient is then dropped). Works inside
    ``torch.func.vmap`` (one task per call) and under ``torch.func.grad``.
    """

    def support_loss(p: Params) -> Tensor:
        return loss_fn(functional_call(model, p, (support_x,)), support_y)

    for rate in rates:
        gradients = grad(support_loss)(params)
        if first_order:
            gradients = {k: g.detach() for k, g in gradients.items()}
        params = {k: p - rate * gradients[k] for k, p in params.items()}
    return params


def query_loss(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    loss_fn: LossFunction,
    rates: Sequence[float],
    first_order: bool = False,
) -> tuple[Tensor, Tensor]:
    """Adapt to every task of ``tasks`` (vmapped) and return the mean query loss (Eq. 3's objective,
    averaged rather than summed over tasks) and the query predictions ``[T, Q, ...]``."""

    def one_task(p: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
        adapted = adapt(model, p, sx, sy, loss_fn, rates, first_order)
        prediction = functional_call(model, adapted, (qx,))
        return loss_fn(prediction, qy), prediction

    losses, predictions = vmap(one_task, in_dims=(None, 0, 0, 0, 0), randomness="same")(params, *tasks)
    return losses.mean(), predictions


def meta_gradient(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    loss_fn: LossFunction,
    rates: Sequence[float],
    first_order: bool = False,
) -> tuple[Params, Tensor, Tensor]:
    """Eq. 3's gradient: ``grad_theta mean_i L_{T_i}(f_{theta_i'})`` with ``theta_i'`` from
    :func:`adapt`; returns the gradients (a dict like ``params``), the meta-loss and the query predictions."""
    detached = {k: p.detach() for k, p in params.items()}

    def objective(p: Params) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        loss, predictions = query_loss(model, p, tasks, loss_fn, rates, first_order)
        return loss, (loss.detach(), predictions.detach())

    gradients, (loss, predictions) = grad(objective, has_aux=True)(detached)
    return gradients, loss, predictions


class MAML:
    """MAML around a model: ``meta_step`` (Algorithm 2, lines 3-10) and ``adapt``/``evaluate`` for
    new tasks.

    Args:
        model: the network ``f_theta``; its ``named_parameters()`` are ``theta``. Buffers are not
            supported (batch norm must use batch statistics: ``track_running_stats=False``).
        inner_lr: ``alpha``, one step size or one per inner step.
        inner_steps: inner gradient steps during meta-training (>= 1).
        first_order: the first-order approximation (FOMAML) instead of the full meta-gradient.
        loss: ``"cross_entropy"`` (classification, integer targets) or ``"mse"`` (regression), or a
            callable ``(prediction, target) -> scalar``.
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float | Sequence[float] = 0.4,
        inner_steps: int = 1,
        first_order: bool = False,
        loss: str | LossFunction = "cross_entropy",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if any(True for _ in model.buffers()):
            names = [n for n, _ in model.named_buffers()]
            raise ValueError(
                "model must have no buffers (batch norm with batch statistics only: "
                f"track_running_stats=False), got {names}"
            )
        self.model = model
        self.inner_steps = check_int("inner_steps", inner_steps, 1, note="inner gradient steps")
        self.rates = inner_learning_rates(inner_lr, inner_steps)
        self.inner_lr = inner_lr
        if not isinstance(first_order, bool):
            raise TypeError(f"first_order must be a bool, got {type(first_order).__name__}")
        self.first_order = first_order
        if callable(loss):
            self.loss_fn = loss
        else:
            check_choice("loss", loss, ("cross_entropy", "mse"))
            self.loss_fn = F.cross_entropy if loss == "cross_entropy" else F.mse_loss

    def params(self) -> Params:
        return dict(self.model.named_parameters())

    def meta_gradient(self, tasks: TaskBatch) -> tuple[Params, Tensor]:
        """The meta-gradient (not applied) and the meta-loss of ``tasks``."""
        check_task_batch(tasks)
        gradients, loss, _ = meta_gradient(
            self.model, self.params(), tasks, self.loss_fn, self.rates, self.first_order
        )
        return gradients, loss

    def meta_step(self, tasks: TaskBatch, optimizer: torch.optim.Optimizer) -> float:
        """One meta-update of Eq. 3 with ``optimizer`` (the paper uses Adam): returns the meta-loss."""
        gradients, loss = self.meta_gradient(tasks)
        for name, parameter in self.model.named_parameters():
            parameter.grad = gradients[name]
        optimizer.step()
        return float(loss)

    def rates_for(self, steps: int | None) -> list[float]:
        return self.rates if steps is None else inner_learning_rates(self.inner_lr, steps)

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int | None = None) -> Params:
        """Adapted parameters for one task (``steps`` inner steps; default: the training count)."""
        check_tensor("support_x", support_x)
        check_tensor("support_y", support_y)
        if support_x.shape[0] != support_y.shape[0] or support_x.shape[0] < 1:
            raise ValueError(
                "support_x and support_y must hold the same number (>= 1) of examples, got "
                f"{support_x.shape[0]} and {support_y.shape[0]}"
            )
        params = {k: p.detach() for k, p in self.params().items()}
        adapted = adapt(self.model, params, support_x, support_y, self.loss_fn, self.rates_for(steps), True)
        return {k: p.detach() for k, p in adapted.items()}

    def predict(self, params: Params, x: Tensor) -> Tensor:
        with torch.no_grad():
            return functional_call(self.model, params, (x,))

    def evaluate(self, tasks: TaskBatch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """Adapt to each task of ``tasks`` with ``steps`` inner steps (no meta-gradient) and return each
        task's query loss ``[T]`` and query predictions ``[T, Q, ...]``."""
        check_task_batch(tasks)
        rates = self.rates_for(steps)
        params = {k: p.detach() for k, p in self.params().items()}

        def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
            adapted = adapt(self.model, params, sx, sy, self.loss_fn, rates, True)
            prediction = functional_call(self.model, adapted, (qx,))
            return self.loss_fn(prediction, qy), prediction

        losses, predictions = vmap(one_task, randomness="same")(*tasks)
        return losses.detach(), predictions.detach()


class BatchStatisticsNorm2d(nn.Module):
    """Batch norm that always normalises with the current batch's statistics (no running averages),
    as the paper's network does in training and at test time::

        y = (x - mean_{batch, h, w} x) / sqrt(var_{batch, h, w} x + eps) * weight + bias

    It equals ``F.batch_norm(x, None, None, weight, bias, training=True)`` but is written with
    elementary operations: under ``torch.func.vmap`` the second derivative of the fused batch-norm
    kernel came out wrong (torch 2.x; by about 1e-2 against a direct double backward), and MAML's
    meta-gradient needs exactly that second derivative.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        check_int("channels", channels)
        self.eps = float(check_float("eps", eps, 0, min_inclusive=False))
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"x must be [batch, {self.weight.shape[0]}, height, width], got {tuple(x.shape)}"
            )
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        variance = (x - mean).square().mean(dim=(0, 2, 3), keepdim=True)
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(variance + self.eps)
        return (x - mean) * scale + self.bias.view(1, -1, 1, 1)


class ConvNet(nn.Module):
    """The paper's few-shot classifier (Section 5.2, after Vinyals et al. 2016): ``blocks`` modules of
    3x3 convolution (``filters`` channels), batch norm with batch statistics, ReLU and a 2x2
    down-sampling, then the mean over the last feature map and a linear layer to ``ways`` logits.

    ``downsample="stride"``: the convolution has stride 2 (the paper's Omniglot network, 28x28 ->
    14 -> 7 -> 4 -> 2); ``"max_pool"``: stride 1 and a 2x2 max-pool (its MiniImagenet network).
    """

    def __init__(
        self,
        ways: int,
        in_channels: int = 1,
        filters: int = 64,
        blocks: int = 4,
        downsample: str = "stride",
    ) -> None:
        super().__init__()
        check_int("ways", ways, 2, note="classes per task")
        check_int("in_channels", in_channels)
        check_int("filters", filters)
        check_int("blocks", blocks)
        check_choice("downsample", downsample, ("stride", "max_pool"))
        self.ways, self.in_channels, self.downsample = ways, in_channels, downsample
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(blocks):
            stride = 2 if downsample == "stride" else 1
            layers += [
                nn.Conv2d(channels, filters, 3, stride=stride, padding=1),
                BatchStatisticsNorm2d(filters),
                nn.ReLU(),
            ]
            if downsample == "max_pool":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            channels = filters
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(filters, ways)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be [batch, {self.in_channels}, height, width], got {tuple(x.shape)}")
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class SinusoidRegressor(nn.Module):
    """Section 5.1's regressor: 1 -> ``hidden`` -> ``hidden`` -> 1 with ReLU (``hidden`` = 40)."""

    def __init__(self, hidden: int = 40, layers: int = 2) -> None:
        super().__init__()
        check_int("hidden", hidden)
        check_int("layers", layers)
        modules: list[nn.Module] = []
        width = 1
        for _ in range(layers):
            modules += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        modules.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != 1:
            raise ValueError(f"x must be [..., 1], got {tuple(x.shape)}")
        return self.net(x)
