"""A stream of tasks, and the learner protocol that continual-learning methods share.

Continual learning (EWC, Kirkpatrick et al. 2017; GEM, Lopez-Paz & Ranzato 2017, Section 2) sees a
sequence of tasks ``t = 0, 1, ..., T-1``, each with its own training and test data and an id. A
learner trains on the tasks one after another, usually without revisiting earlier data, and is
measured on every task's test set after each one (:mod:`aicanon.learning.metrics`).

* :class:`Task`: one task's tensors, its id and name, and (for class-incremental streams where a
  task owns a subset of the output units, GEM's CIFAR-100 split) the classes it uses.
* :class:`TaskStream`: an ordered, id-indexed sequence of tasks with one input shape and one output
  size. A task id that is not in the stream is an error that lists the ids there are.
* :class:`ContinualLearner`: what a method implements: ``observe`` one mini-batch of the current
  task (one training step, returning the loss) and ``end_task`` when the task's data is gone (EWC
  computes its Fisher there, GEM stores its memory as it observes). :class:`FineTuning` is the
  plain-SGD baseline both papers compare with (no protection against forgetting).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_tensor

__all__ = ["ContinualLearner", "FineTuning", "Task", "TaskStream", "masked_logits"]


@dataclass(frozen=True)
class Task:
    """One task of a stream: training and test tensors (inputs ``[N, ...]``, int64 labels ``[N]``)."""

    id: int
    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[int, ...] | None = None
    """The output units this task uses (class-incremental streams); ``None``: all of them."""

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            check_tensor(f"x_{split}", x, dtype=torch.float32)
            check_tensor(f"y_{split}", y, dtype=torch.int64, dim=1)
            if x.size(0) != y.size(0) or x.size(0) == 0:
                raise ValueError(
                    f"task {self.name!r}: x_{split} and y_{split} must hold the same, nonzero number of "
                    f"examples, got {x.size(0)} and {y.size(0)}"
                )
        if self.classes is not None:
            if not self.classes:
                raise ValueError(f"task {self.name!r}: classes must be None or a non-empty tuple, got ()")
            allowed = torch.tensor(self.classes)
            for split in ("train", "test"):
                y = getattr(self, f"y_{split}")
                if not torch.isin(y, allowed).all():
                    raise ValueError(
                        f"task {self.name!r}: y_{split} holds labels outside its classes {self.classes}"
                    )


@dataclass(frozen=True)
class TaskStream(Sequence[Task]):
    """Tasks in the order a learner meets them; ``stream[i]`` and ``stream.task(id)`` index by id."""

    tasks: tuple[Task, ...]
    num_classes: int
    """Size of the shared output layer."""
    name: str = "stream"
    input_shape: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks must hold at least one Task, got none")
        ids = [task.id for task in self.tasks]
        if ids != list(range(len(ids))):
            raise ValueError(f"task ids must be 0..{len(ids) - 1} in stream order, got {ids}")
        shapes = {tuple(task.x_train.shape[1:]) for task in self.tasks}
        shapes |= {tuple(task.x_test.shape[1:]) for task in self.tasks}
        if len(shapes) != 1:
            raise ValueError(f"every task's inputs must share one shape, got {sorted(shapes)}")
        for task in self.tasks:
            largest = max(int(task.y_train.max()), int(task.y_test.max()))
            if largest >= self.num_classes or min(int(task.y_train.min()), int(task.y_test.min())) < 0:
                raise ValueError(
                    f"task {task.name!r}: labels must lie in [0, num_classes={self.num_classes}), "
                    f"got a label {largest}"
                )
        object.__setattr__(self, "input_shape", shapes.pop())

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("index a TaskStream with one task id; use stream.tasks for slices")
        return self.task(index)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def task(self, task_id: int) -> Task:
        """The task with this id; an id not in the stream raises ``KeyError`` naming the valid ids."""
        if isinstance(task_id, bool) or not isinstance(task_id, int):
            raise TypeError(f"task_id must be an int, got {type(task_id).__name__}")
        if not 0 <= task_id < len(self.tasks):
            ids = f"ids 0..{len(self.tasks) - 1}"
            raise KeyError(f"task id {task_id} is not in the stream {self.name!r} ({ids})")
        return self.tasks[task_id]


def masked_logits(logits: Tensor, task: Task) -> Tensor:
    """Logits with the units outside ``task.classes`` set to ``-inf`` (class-incremental heads, as
    GEM's CIFAR-100 protocol: each task predicts only among its own classes); unchanged otherwise."""
    if task.classes is None:
        return logits
    mask = torch.full_like(logits, float("-inf"))
    mask[:, list(task.classes)] = 0.0
    return logits + mask


@runtime_checkable
class ContinualLearner(Protocol):
    """A continual-learning method: a model, one training step per mini-batch, a hook at task end."""

    model: nn.Module

    def observe(self, x: Tensor, y: Tensor, task: Task) -> float:
        """One training step on a mini-batch of ``task``; returns the step's (total) loss."""
        ...

    def end_task(self, task: Task) -> None:
        """Called once the learner has seen all of ``task``'s training data."""
        ...


class FineTuning:
    """Plain SGD on each task in turn: the baseline that forgets ("single" in GEM, "SGD" in EWC)."""

    def __init__(self, model: nn.Module, lr: float, momentum: float = 0.0) -> None:
        check_float("lr", lr, 0.0, min_inclusive=False)
        check_float("momentum", momentum, 0.0, 1.0, max_inclusive=False)
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def observe(self, x: Tensor, y: Tensor, task: Task) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(masked_logits(self.model(x), task), y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def end_task(self, task: Task) -> None:
        pass
