"""Task streams for the continual-learning experiments (EWC, GEM), and the loop that runs a learner on one.

The streams are those of the papers, built from the staged data:

* :func:`permuted_mnist`: each task applies one fixed random permutation to MNIST's 784 pixels
  (EWC Section 2.1 / Figure 2; GEM Section 6 "MNIST Permutations"). ``identity_first`` keeps the
  first task unpermuted (EWC's Figure 2 starts from plain MNIST; GEM permutes every task).
* :func:`rotated_mnist`: each task rotates every digit by one fixed angle drawn uniformly in
  ``[0, 180)`` degrees (GEM "MNIST Rotations").
* :func:`split_cifar10`: five two-class tasks of CIFAR-10 with class-incremental output masks: the
  stand-in for GEM's CIFAR-100 split (20 tasks of 5 classes), whose data is not staged.

:func:`run_stream` trains a :class:`~aicanon.learning.streams.ContinualLearner` on the tasks in
order (``epochs`` passes over each task's training set, mini-batches in a seeded order), tests on
every task after each one to fill the accuracy matrix R, and, when asked, every ``eval_every`` steps
for the per-task accuracy curves of EWC's Figure 2A.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from aicanon.core import track
from aicanon.core.checks import check_float, check_int
from aicanon.datasets.cifar10 import load_cifar10_jpeg
from aicanon.datasets.mnist import load_mnist
from aicanon.learning.metrics import AccuracyMatrix, evaluate_stream
from aicanon.learning.streams import ContinualLearner, Task, TaskStream
from aicanon.vision.transforms import rotate

__all__ = ["StreamRun", "permuted_mnist", "rotated_mnist", "run_stream", "split_cifar10"]


def _float_mnist() -> tuple[Tensor, ...]:
    """MNIST's training and test images as float ``[N, 1, 28, 28]`` in [0, 1], and their labels."""
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    x_train, x_test = x_train.float().div_(255).unsqueeze(1), x_test.float().div_(255).unsqueeze(1)
    return x_train, y_train, x_test, y_test


def _sample(x: Tensor, y: Tensor, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if count >= x.size(0):
        return x, y
    index = torch.randperm(x.size(0), generator=generator)[:count]
    return x[index], y[index]


def _check_stream_args(num_tasks: int, train_per_task: int, test_per_task: int) -> None:
    check_int("num_tasks", num_tasks, 1)
    check_int("train_per_task", train_per_task, 1, 60_000)
    check_int("test_per_task", test_per_task, 1, 10_000)


def permuted_mnist(
    num_tasks: int,
    *,
    train_per_task: int = 60_000,
    test_per_task: int = 10_000,
    identity_first: bool = False,
    seed: int = 0,
) -> TaskStream:
    """``num_tasks`` pixel permutations of MNIST; inputs flattened to ``[N, 784]`` in [0, 1].

    Each task draws its own training and test subset (``train_per_task``/``test_per_task`` examples,
    all of them by default) and its own permutation, from ``seed``.
    """
    _check_stream_args(num_tasks, train_per_task, test_per_task)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = _float_mnist()
    x_train, x_test = x_train.flatten(1), x_test.flatten(1)
    tasks = []
    for task_id in range(num_tasks):
        if task_id == 0 and identity_first:
            permutation = torch.arange(784)
        else:
            permutation = torch.randperm(784, generator=generator)
        xs, ys = _sample(x_train, y_train, train_per_task, generator)
        xt, yt = _sample(x_test, y_test, test_per_task, generator)
        tasks.append(Task(task_id, f"permutation {task_id}", xs[:, permutation], ys, xt[:, permutation], yt))
    return TaskStream(tuple(tasks), num_classes=10, name="permuted MNIST")


def rotated_mnist(
    num_tasks: int,
    *,
    train_per_task: int = 60_000,
    test_per_task: int = 10_000,
    max_degrees: float = 180.0,
    seed: int = 0,
) -> TaskStream:
    """``num_tasks`` rotations of MNIST by fixed angles drawn uniformly in ``[0, max_degrees)``
    (GEM: [0, 180)); inputs flattened to ``[N, 784]``. The angles are in ``stream`` task names."""
    _check_stream_args(num_tasks, train_per_task, test_per_task)
    check_float("max_degrees", max_degrees, 0.0, 360.0, min_inclusive=False)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = _float_mnist()
    tasks = []
    for task_id in range(num_tasks):
        degrees = float(torch.rand((), generator=generator)) * max_degrees
        xs, ys = _sample(x_train, y_train, train_per_task, generator)
        xt, yt = _sample(x_test, y_test, test_per_task, generator)
        tasks.append(
            Task(
                task_id,
                f"rotation {degrees:.1f} degrees",
                rotate(xs, degrees).flatten(1),
                ys,
                rotate(xt, degrees).flatten(1),
                yt,
            )
        )
    return TaskStream(tuple(tasks), num_classes=10, name="rotated MNIST")


def split_cifar10(*, train_per_class: int = 5000, test_per_class: int = 1000) -> TaskStream:
    """CIFAR-10 (the registry's lossy JPEG copy) as five two-class tasks, classes (0, 1), (2, 3), ...
    with class-incremental output masks; inputs ``[N, 3, 32, 32]`` in [0, 1]."""
    check_int("train_per_class", train_per_class, 1, 5000)
    check_int("test_per_class", test_per_class, 1, 1000)
    x_train, y_train = load_cifar10_jpeg("train", limit=train_per_class)
    x_test, y_test = load_cifar10_jpeg("test", limit=test_per_class)
    tasks = []
    for task_id in range(5):
        classes = (2 * task_id, 2 * task_id + 1)
        train = torch.isin(y_train, torch.tensor(classes))
        test = torch.isin(y_test, torch.tensor(classes))
        name = f"classes {classes}"
        tasks.append(Task(task_id, name, x_train[train], y_train[train], x_test[test], y_test[test], classes))
    return TaskStream(tuple(tasks), num_classes=10, name="split CIFAR-10")


@dataclass
class StreamRun:
    """What :func:`run_stream` returns: R (and its metrics) and the per-task accuracy curves."""

    matrix: AccuracyMatrix
    curves: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    """Task id -> (global step, test accuracy) pairs, every ``eval_every`` steps (empty when 0)."""
    losses: list[float] = field(default_factory=list)
    """The training loss of every step."""


def run_stream(
    learner: ContinualLearner,
    stream: TaskStream,
    *,
    epochs: int = 1,
    batch_size: int = 10,
    eval_every: int = 0,
    seed: int = 0,
    label: str = "learner",
) -> StreamRun:
    """Train ``learner`` on each task of ``stream`` in turn and fill R (GEM Section 5's protocol).

    ``b`` (the untrained model's accuracy on every task) is measured first, for FWT. Each task is
    seen for ``epochs`` passes (GEM: one pass, batch 10; EWC: many) in a seeded shuffled order.
    """
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    check_int("eval_every", eval_every, 0)
    if not isinstance(learner, ContinualLearner):
        raise TypeError(
            f"learner must hold a model and implement observe() and end_task(), got {type(learner).__name__}"
        )
    generator = torch.Generator().manual_seed(seed)
    model = learner.model
    matrix = AccuracyMatrix(len(stream), baseline=evaluate_stream(model, stream))
    run = StreamRun(matrix)

    def batches():
        # (task, index of a mini-batch, is it the task's last) in training order, seeded.
        for task in stream:
            count = task.x_train.size(0)
            chunks = []
            for _ in range(epochs):
                order = torch.randperm(count, generator=generator)
                chunks += [order[start : start + batch_size] for start in range(0, count, batch_size)]
            for number, index in enumerate(chunks):
                yield task, index, number == len(chunks) - 1

    total = sum(epochs * math.ceil(task.x_train.size(0) / batch_size) for task in stream)
    for step, (task, index, last) in enumerate(track(batches(), label, total=total), start=1):
        run.losses.append(learner.observe(task.x_train[index], task.y_train[index], task))
        if eval_every and step % eval_every == 0:
            for task_id, accuracy in enumerate(evaluate_stream(model, stream)):
                run.curves.setdefault(task_id, []).append((step, accuracy))
        if last:
            learner.end_task(task)
            matrix.record(task.id, evaluate_stream(model, stream))
    return run
