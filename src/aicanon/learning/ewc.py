"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017; arXiv 1612.00796).

After a task A, EWC keeps the parameters that matter for A near the values A left them at, with
a quadratic penalty weighted by the diagonal of the Fisher information at the end of A. Training
on the next task B minimises (Eq. 3 of the arXiv version)::

    L(θ) = L_B(θ) + Σ_i λ/2 · F_i · (θ_i − θ*_A,i)²                                        (3)

where ``L_B`` is B's loss (here the cross-entropy of one mini-batch), ``θ*_A`` the parameters after
A and ``F`` the diagonal of the Fisher information of the model's predictive distribution::

    F_i = E_{x ~ D_A} E_{y ~ p_θ(y|x)} [ (∂ log p_θ(y|x) / ∂θ_i)² ]

evaluated at ``θ*_A``. With more tasks, EWC keeps one penalty per past task (Section 2: "either
with two separate penalties, or as one by noting that the sum of two quadratic penalties is itself a
quadratic penalty"); :class:`EWC` keeps one :class:`Anchor` per task and sums them.

The pieces:

* :func:`diagonal_fisher`: the diagonal Fisher from per-example gradients (``torch.func``: ``vmap``
  of ``grad``), in three modes:

  - ``"true"``: as the paper, the label is drawn from the model's predictive distribution
    ``y ~ p_θ(y|x)``, one draw per example (a Monte-Carlo estimate of the expectation over ``y``);
  - ``"exact"``: the expectation over ``y`` in closed form, ``Σ_y p_θ(y|x) g_y²`` (``C`` gradients
    per example for ``C`` classes: exact and noise-free, C times the cost);
  - ``"empirical"``: the dataset's own label, ``g_{y_n}²`` (the "empirical Fisher", a common
    shortcut that the paper does not use; Kunstner et al. 2019 list its pitfalls).

* :func:`ewc_penalty`: ``Σ_t λ/2 Σ_i F_t,i (θ_i − θ*_t,i)²`` over any number of anchors.
* :class:`EWC`: a :class:`~aicanon.learning.streams.ContinualLearner`: SGD on cross-entropy plus
  the penalty; at each task's end it computes the Fisher on that task's training data and anchors
  θ*. ``online=True`` is online EWC (Schwarz et al., "Progress & Compress", ICML 2018, Section 4):
  a single anchor whose Fisher is the decayed running sum ``F*_t = γ F*_{t−1} + F_t`` and whose
  θ* is the latest task's end point.
* :class:`L2Anchor`: the paper's "L2" baseline (Figure 2A): the same penalty with ``F_i = 1`` for
  every parameter, i.e. ``λ/2 ‖θ − θ*_t‖²`` per past task. Plain SGD is
  :class:`~aicanon.learning.streams.FineTuning`.

Departures from the paper:

* The Fisher is computed with the model in ``eval`` mode (dropout off, batch-norm on running
  statistics): the Fisher of the deterministic predictor that is tested. The paper does not say.
* ``fisher_samples`` examples of the task's training set (drawn without replacement; all of them
  when the task has fewer) with one label draw each for ``"true"``: the paper states the Fisher is
  "computed from samples" without fixing how many.
* ``optimizer="adam"`` is offered beside the paper's SGD: the penalty adds curvature λ·F, and plain
  SGD diverges once ``lr · λ · max F > 2``, which rules out the large λ that short runs need.
* Per-example gradients come from ``torch.func`` (``vmap`` of ``grad``), ``chunk_size`` at a time;
  on a CPU a plain loop of backward passes is faster for small MLPs (``benchmarks/bench_ewc.py``).
* A class-incremental task (``task.classes``) gets the Fisher of the softmax over its own classes,
  the same head its loss trains (:func:`~aicanon.learning.streams.masked_logits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.learning.streams import Task, masked_logits

__all__ = ["EWC", "FISHER_MODES", "OPTIMIZERS", "Anchor", "L2Anchor", "diagonal_fisher", "ewc_penalty"]

FISHER_MODES = ("true", "empirical", "exact")
OPTIMIZERS = ("sgd", "adam")


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def diagonal_fisher(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None = None,
    *,
    mode: str = "true",
    samples: int | None = None,
    classes: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    chunk_size: int = 16,
) -> dict[str, Tensor]:
    """The diagonal of the Fisher information of ``model``'s softmax output, per trainable parameter.

    ``F_i = 1/N Σ_n E_y[(∂ log p_θ(y|x_n) / ∂θ_i)²]`` over ``N`` examples of ``x`` (``[N, ...]``):
    ``samples`` of them drawn without replacement with ``generator`` (``None``: all). ``mode``:
    ``"true"`` draws one ``y ~ p_θ(·|x_n)`` per example (the paper), ``"exact"`` sums over every
    class weighted by ``p_θ(y|x_n)``, ``"empirical"`` uses the given labels ``y`` (``[N]``, int64).
    ``classes`` restricts the softmax to those output units (a class-incremental task's head).
    Per-example gradients come ``chunk_size`` examples at a time from ``torch.func.vmap``.
    Returns ``{parameter name: tensor of the parameter's shape}``, detached; the model's
    train/eval mode is restored.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice("mode", mode, FISHER_MODES)
    check_tensor("x", x, floating=True)
    if x.dim() < 2 or x.size(0) == 0:
        raise ValueError(f"x must be a batch [N, ...] with N >= 1, got shape {tuple(x.shape)}")
    check_int("samples", samples, 1, allow_none=True)
    check_int("chunk_size", chunk_size, 1)
    if mode == "empirical":
        if y is None:
            raise ValueError("y must hold the labels for mode='empirical', got None")
    if y is not None:
        check_tensor("y", y, dtype=torch.int64, dim=1)
        if y.size(0) != x.size(0):
            raise ValueError(f"y must hold one label per example of x ({x.size(0)}), got {y.size(0)}")
    if classes is not None:
        classes = list(classes)
        if not classes:
            raise ValueError("classes must be None or a non-empty sequence of output units, got []")
    params = {name: p.detach() for name, p in _trainable(model).items()}
    if not params:
        raise ValueError("model has no trainable parameters: there is no Fisher to compute")
    buffers = dict(model.named_buffers())
    class_index = None if classes is None else torch.tensor(classes, device=x.device)

    if samples is not None and samples < x.size(0):
        index = torch.randperm(x.size(0), generator=generator)[:samples].to(x.device)
        x = x[index]
        y = None if y is None else y[index]
    count = x.size(0)

    def log_probs(parameters: dict[str, Tensor], example: Tensor) -> Tensor:
        logits = functional_call(model, (parameters, buffers), (example.unsqueeze(0),)).squeeze(0)
        if class_index is not None:
            logits = logits[class_index]
        return F.log_softmax(logits, dim=-1)

    def log_prob_of(parameters: dict[str, Tensor], example: Tensor, label: Tensor) -> Tensor:
        return log_probs(parameters, example).gather(0, label.unsqueeze(0)).squeeze(0)

    per_example_grad = vmap(grad(log_prob_of), in_dims=(None, 0, 0))
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        # Every term of the Fisher's sum is a weighted squared gradient w·g(x_n, label)²: list the
        # (example, label, weight) terms of the mode, then take their gradients chunk by chunk.
        if mode == "empirical":
            labels = y
            if class_index is not None:  # a label's position among the task's classes
                positions = (labels.unsqueeze(1) == class_index.unsqueeze(0)).int().argmax(dim=1)
                if not (class_index[positions] == labels).all():
                    raise ValueError(f"y holds labels outside classes {classes}")
                labels = positions
            examples, weights = torch.arange(count, device=x.device), None
        else:
            with torch.no_grad():
                probs = torch.cat(
                    [vmap(log_probs, in_dims=(None, 0))(params, x[i : i + 256]) for i in range(0, count, 256)]
                ).exp()
            if not torch.isfinite(probs).all():
                raise ValueError(
                    "the model's predictive probabilities are not finite (NaN or inf): its parameters "
                    "diverged while training this task (lower the learning rate or lambda)"
                )
            if mode == "true":  # one label per example from the model's predictive distribution
                labels = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(x.device)
                examples, weights = torch.arange(count, device=x.device), None
            else:  # exact: every label, weighted by its probability
                classes_count = probs.size(1)
                examples = torch.arange(count, device=x.device).repeat_interleave(classes_count)
                labels = torch.arange(classes_count, device=x.device).repeat(count)
                weights = probs.flatten()
        for start in range(0, examples.numel(), chunk_size):
            index = examples[start : start + chunk_size]
            grads = per_example_grad(params, x[index], labels[start : start + chunk_size])  # type: ignore[index]
            for name, g in grads.items():
                squared = g.square()
                if weights is not None:
                    w = weights[start : start + chunk_size]
                    squared = squared * w.view(-1, *([1] * (g.dim() - 1)))
                fisher[name] += squared.sum(dim=0)
    finally:
        model.train(was_training)
    return {name: value / count for name, value in fisher.items()}


@dataclass(frozen=True)
class Anchor:
    """One quadratic penalty term: importances ``fisher`` and the anchored parameters ``params``
    (both ``{parameter name: tensor}``, detached), from the end of task ``task_id``."""

    task_id: int
    fisher: dict[str, Tensor]
    params: dict[str, Tensor]


def ewc_penalty(model: nn.Module, anchors: Sequence[Anchor], lam: float) -> Tensor:
    """``Σ_anchors λ/2 Σ_i F_i (θ_i − θ*_i)²`` (Eq. 3, one term per past task): a scalar with a
    gradient ``λ F (θ − θ*)`` (summed over anchors) with respect to the model's parameters.
    Zero (a tensor) when there are no anchors."""
    check_float("lam", lam, 0.0)
    current = _trainable(model)
    total = None
    for anchor in anchors:
        for name, importance in anchor.fisher.items():
            if name not in current:
                raise KeyError(f"anchor of task {anchor.task_id} names parameter {name!r}, not in the model")
            term = (importance * (current[name] - anchor.params[name]).square()).sum()
            total = term if total is None else total + term
    if total is None:
        reference = next(iter(current.values()), None)
        return torch.zeros((), device=None if reference is None else reference.device)
    return 0.5 * lam * total


class EWC:
    """Elastic weight consolidation as a continual learner: SGD on ``cross-entropy + penalty``.

    ``lam`` is λ of Eq. 3; ``fisher`` the :func:`diagonal_fisher` mode and ``fisher_samples`` the
    examples of each task it uses; ``online=True`` keeps one anchor with the Fisher
    ``γ F*_{t−1} + F_t`` (online EWC, Schwarz et al. 2018) instead of one anchor per task.
    ``optimizer``: ``"sgd"`` (the paper; with ``momentum``) or ``"adam"`` (the penalty's curvature is
    ``λ F``, and plain SGD diverges once ``lr · λ · max F > 2``; Adam's per-parameter step sizes lift
    that limit, which CPU-sized runs need: see the experiment). ``lam = 0`` is plain training with
    the same optimizer: the paper's "SGD" baseline.
    ``generator`` seeds the Fisher's example and label draws (``None``: torch's global RNG).
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        lam: float,
        *,
        fisher: str = "true",
        fisher_samples: int = 200,
        online: bool = False,
        gamma: float = 1.0,
        momentum: float = 0.0,
        optimizer: str = "sgd",
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_float("lr", lr, 0.0, min_inclusive=False)
        check_float("lam", lam, 0.0, finite=True)
        check_choice("fisher", fisher, FISHER_MODES)
        check_int("fisher_samples", fisher_samples, 1)
        if not isinstance(online, bool):
            raise TypeError(f"online must be a bool, got {type(online).__name__}")
        check_float("gamma", gamma, 0.0, 1.0)
        check_float("momentum", momentum, 0.0, 1.0, max_inclusive=False)
        check_choice("optimizer", optimizer, OPTIMIZERS)
        self.model = model
        self.lam = float(lam)
        self.fisher_mode = fisher
        self.fisher_samples = fisher_samples
        self.online = online
        self.gamma = float(gamma)
        self.generator = generator
        self.anchors: list[Anchor] = []
        if optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                model.parameters(), lr=lr, momentum=momentum
            )
        else:
            self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def penalty(self) -> Tensor:
        """The current consolidation penalty (Eq. 3's sum over past tasks)."""
        return ewc_penalty(self.model, self.anchors, self.lam)

    def importance(self, task_id: int) -> dict[str, Tensor]:
        """The importances anchored at the end of task ``task_id`` (online: the running Fisher,
        under the latest task's id); ``KeyError`` naming the anchored ids for any other id."""
        for anchor in self.anchors:
            if anchor.task_id == task_id:
                return anchor.fisher
        raise KeyError(f"task id {task_id} has no anchor; anchored ids: {[a.task_id for a in self.anchors]}")

    def observe(self, x: Tensor, y: Tensor, task: Task) -> float:
        """One SGD step on ``CE(masked_logits(model(x), task), y) + penalty``; returns that total."""
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task, got {type(task).__name__}")
        check_tensor("x", x, floating=True)
        check_tensor("y", y, dtype=torch.int64, dim=1)
        if x.size(0) != y.size(0) or x.size(0) == 0:
            raise ValueError(
                f"x and y must hold the same, nonzero number of examples, got {x.size(0)} and {y.size(0)}"
            )
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(masked_logits(self.model(x), task), y)
        if self.anchors and self.lam > 0:
            loss = loss + self.penalty()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def _task_importance(self, task: Task) -> dict[str, Tensor]:
        return diagonal_fisher(
            self.model,
            task.x_train,
            task.y_train,
            mode=self.fisher_mode,
            samples=self.fisher_samples,
            classes=task.classes,
            generator=self.generator,
        )

    def end_task(self, task: Task) -> None:
        """Compute ``task``'s importances at the current θ and anchor θ* there (Eq. 3)."""
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task, got {type(task).__name__}")
        if any(anchor.task_id == task.id for anchor in self.anchors) and not self.online:
            raise ValueError(
                f"task {task.id} ({task.name!r}) already has an anchor; end_task runs once per task"
            )
        importance = self._task_importance(task)
        params = {name: p.detach().clone() for name, p in _trainable(self.model).items()}
        if self.online and self.anchors:
            previous = self.anchors[0].fisher
            importance = {name: self.gamma * previous[name] + value for name, value in importance.items()}
            self.anchors = []
        self.anchors.append(Anchor(task.id, importance, params))


class L2Anchor(EWC):
    """The paper's L2 baseline (Figure 2A): Eq. 3 with ``F_i = 1`` for every parameter, one
    ``λ/2 ‖θ − θ*_t‖²`` term per past task. It protects every weight alike, so a λ large enough to
    keep old tasks leaves too little freedom to learn new ones."""

    def __init__(
        self, model: nn.Module, lr: float, lam: float, *, momentum: float = 0.0, optimizer: str = "sgd"
    ) -> None:
        super().__init__(model, lr, lam, momentum=momentum, optimizer=optimizer)

    def _task_importance(self, task: Task) -> dict[str, Tensor]:
        return {name: torch.ones_like(p) for name, p in _trainable(self.model).items()}
