"""Continual-learning metrics: the accuracy matrix R and ACC, BWT, FWT (GEM, Section 5).

After training on task ``i`` the learner is tested on every task ``j``: ``R[i, j]`` is that test
accuracy, for ``i, j`` in ``0..T-1``. With ``b[j]`` the test accuracy on task ``j`` of the model at
random initialisation (before any training), Lopez-Paz & Ranzato (2017), Eq. 2-4:

    ACC = 1/T       sum_{i=0}^{T-1} R[T-1, i]              (average accuracy at the end)
    BWT = 1/(T-1)   sum_{i=0}^{T-2} (R[T-1, i] - R[i, i])   (backward transfer; < 0 is forgetting)
    FWT = 1/(T-1)   sum_{i=1}^{T-1} (R[i-1, i] - b[i])      (forward transfer: zero-shot help)

Accuracies here are fractions in [0, 1]; experiments report them in percent. BWT and FWT need at
least two tasks; FWT needs ``b``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aicanon.core.checks import check_int
from aicanon.learning.streams import Task, TaskStream, masked_logits

__all__ = ["AccuracyMatrix", "evaluate_task", "evaluate_stream"]


class AccuracyMatrix:
    """``R[i, j]``, filled one row per finished task, and the metrics of Section 5."""

    def __init__(self, num_tasks: int, baseline: Sequence[float] | None = None) -> None:
        check_int("num_tasks", num_tasks, 1)
        self.num_tasks = num_tasks
        self.values = np.full((num_tasks, num_tasks), np.nan)
        self.baseline = None if baseline is None else self._row("baseline", baseline)
        self.rows_filled = 0

    def _row(self, name: str, accuracies: Sequence[float]) -> np.ndarray:
        row = np.asarray(accuracies, dtype=float)
        if row.shape != (self.num_tasks,):
            raise ValueError(f"{name} must hold {self.num_tasks} accuracies, got shape {row.shape}")
        if np.isnan(row).any() or (row < 0).any() or (row > 1).any():
            raise ValueError(f"{name} must hold accuracies in [0, 1], got {row.tolist()}")
        return row

    def record(self, after_task: int, accuracies: Sequence[float]) -> None:
        """Row ``after_task`` of R: the test accuracy on every task after training on that one."""
        check_int("after_task", after_task, 0, self.num_tasks - 1)
        if after_task != self.rows_filled:
            raise ValueError(f"after_task must be the next row, {self.rows_filled}, got {after_task}")
        self.values[after_task] = self._row("accuracies", accuracies)
        self.rows_filled += 1

    def _check_complete(self) -> None:
        if self.rows_filled != self.num_tasks:
            raise ValueError(f"R has {self.rows_filled} of {self.num_tasks} rows; the metrics need all")

    @property
    def acc(self) -> float:
        """Average accuracy over all tasks after the last one (GEM Eq. 2)."""
        self._check_complete()
        return float(self.values[-1].mean())

    @property
    def bwt(self) -> float:
        """Backward transfer (GEM Eq. 3): how training on later tasks changed earlier tasks' accuracy."""
        self._check_complete()
        if self.num_tasks < 2:
            raise ValueError("backward transfer needs at least 2 tasks, got 1")
        last = self.values[-1, :-1]
        diagonal = np.diag(self.values)[:-1]
        return float((last - diagonal).mean())

    @property
    def fwt(self) -> float:
        """Forward transfer (GEM Eq. 4): accuracy on task i before training on it, over the baseline."""
        self._check_complete()
        if self.num_tasks < 2:
            raise ValueError("forward transfer needs at least 2 tasks, got 1")
        if self.baseline is None:
            raise ValueError("forward transfer needs the baseline accuracies b (the untrained model's)")
        before = np.array([self.values[i - 1, i] for i in range(1, self.num_tasks)])
        return float((before - self.baseline[1:]).mean())

    def as_dict(self) -> dict:
        """R, b and the metrics (those that exist), JSON-ready."""
        baseline = None if self.baseline is None else self.baseline.tolist()
        out: dict = {"R": self.values.tolist(), "b": baseline}
        if self.rows_filled == self.num_tasks:
            out["ACC"] = self.acc
            if self.num_tasks > 1:
                out["BWT"] = self.bwt
                if self.baseline is not None:
                    out["FWT"] = self.fwt
        return out


@torch.no_grad()
def evaluate_task(model: nn.Module, task: Task, batch_size: int = 1000) -> float:
    """Test accuracy (a fraction) of ``model`` on ``task``'s test set, in eval mode, with the
    task's output mask when it has one; the model's train/eval mode is restored afterwards."""
    check_int("batch_size", batch_size, 1)
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, task.x_test.size(0), batch_size):
        x = task.x_test[start : start + batch_size]
        logits = masked_logits(model(x), task)
        correct += int((logits.argmax(dim=1) == task.y_test[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / task.x_test.size(0)


def evaluate_stream(model: nn.Module, stream: TaskStream, batch_size: int = 1000) -> list[float]:
    """Test accuracy on every task of the stream, in stream order."""
    return [evaluate_task(model, task, batch_size) for task in stream]
