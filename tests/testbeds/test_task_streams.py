"""The permuted/rotated MNIST and split CIFAR-10 streams, and the loop that fills R."""

import pytest
import torch
from torch import nn

from aicanon.learning.streams import FineTuning
from aicanon.testbeds.task_streams import permuted_mnist, rotated_mnist, run_stream, split_cifar10


def test_permuted_mnist_permutes_pixels_per_task_and_repeats_with_its_seed():
    stream = permuted_mnist(3, train_per_task=200, test_per_task=100, identity_first=True, seed=1)
    again = permuted_mnist(3, train_per_task=200, test_per_task=100, identity_first=True, seed=1)
    assert stream.input_shape == (784,) and stream.num_classes == 10 and len(stream) == 3
    for task, twin in zip(stream, again):
        assert torch.equal(task.x_train, twin.x_train) and torch.equal(task.y_test, twin.y_test)
        assert task.x_train.shape == (200, 784) and task.x_test.shape == (100, 784)
    # Different permutations of similar digits: different pixels, the same ink overall.
    first, second = stream[0].x_train, stream[1].x_train
    assert not torch.equal(first, second)
    assert abs(float(first.mean()) - float(second.mean())) < 0.02
    assert not torch.equal(
        permuted_mnist(1, train_per_task=10, test_per_task=10, seed=2)[0].x_train,
        permuted_mnist(1, train_per_task=10, test_per_task=10, seed=3)[0].x_train,
    )


def test_rotated_mnist_names_its_angles():
    stream = rotated_mnist(2, train_per_task=50, test_per_task=50, seed=0)
    assert stream.input_shape == (784,) and all("degrees" in task.name for task in stream)


def test_split_cifar10_has_five_two_class_tasks_with_masks():
    stream = split_cifar10(train_per_class=20, test_per_class=10)
    assert len(stream) == 5 and stream.input_shape == (3, 32, 32)
    for task in stream:
        assert task.classes == (2 * task.id, 2 * task.id + 1)
        assert set(task.y_train.tolist()) == set(task.classes) and task.x_train.size(0) == 40


def test_stream_arguments_are_checked():
    with pytest.raises(ValueError, match="num_tasks must be >= 1, got 0"):
        permuted_mnist(0)
    with pytest.raises(ValueError, match="train_per_task must be in \\[1, 60000\\]"):
        permuted_mnist(2, train_per_task=0)
    with pytest.raises(ValueError, match="max_degrees must be in \\(0.0, 360.0\\]"):
        rotated_mnist(2, max_degrees=0.0)


def test_run_stream_fills_R_and_fine_tuning_forgets():
    torch.manual_seed(0)
    stream = permuted_mnist(2, train_per_task=600, test_per_task=300, seed=0)
    model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    run = run_stream(FineTuning(model, lr=0.1), stream, epochs=3, batch_size=20, eval_every=30, seed=0)
    matrix = run.matrix
    assert matrix.rows_filled == 2 and len(run.losses) == 2 * 3 * 30
    assert matrix.values[0, 0] > 0.8 and matrix.values[1, 1] > 0.8  # each task is learnt
    assert matrix.baseline.max() < 0.3  # the untrained model is near chance
    assert matrix.bwt < 0  # and plain SGD forgets the first permutation
    assert sorted(run.curves) == [0, 1] and len(run.curves[0]) == len(run.losses) // 30


def test_run_stream_rejects_what_is_not_a_learner():
    stream = permuted_mnist(1, train_per_task=10, test_per_task=10)
    with pytest.raises(TypeError, match="learner must hold a model and implement observe"):
        run_stream(nn.Linear(784, 10), stream)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        run_stream(FineTuning(nn.Linear(784, 10), 0.1), stream, batch_size=0)
