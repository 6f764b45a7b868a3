"""The synthetic sequence tasks: their layouts, chance levels, losses, and that the loop learns."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aicanon.testbeds.sequence_tasks import (
    IGNORE,
    adding_problem,
    copy_memory,
    evaluate_sequence_model,
    induction_heads,
    selective_copying,
    sequential_mnist,
    task_accuracy,
    task_loss,
    train_sequence_model,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_adding_problem_layout_and_chance():
    task = adding_problem(50)
    x, y = task.sample(4000, _gen())
    assert x.shape == (4000, 50, 2) and y.shape == (4000,)
    assert (x[..., 1].sum(1) == 2).all()  # exactly two markers
    assert (x[:, :25, 1].sum(1) == 1).all()  # one in each half
    torch.testing.assert_close(y, (x[..., 0] * x[..., 1]).sum(1))
    # Predicting the mean (1) gives MSE = Var(U1 + U2) = 1/6.
    assert abs(((y - 1) ** 2).mean().item() - task.chance) < 0.01


def test_copy_memory_matches_the_tcn_layout():
    task = copy_memory(blank=30, memorize=10, alphabet=8)
    x, y = task.sample(3, _gen())
    assert x.shape == y.shape == (3, 50) and task.length == 50
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
    assert (x[:, 10:39] == 0).all() and (x[:, 39:] == 9).all()  # the last 11 inputs are delimiters
    assert (y[:, :40] == 0).all() and torch.equal(y[:, 40:], x[:, :10])
    assert task.chance == pytest.approx(10 * math.log(8) / 50)


def test_selective_copying_keeps_the_data_in_order():
    task = selective_copying(length=40, memorize=5, vocab=8)
    x, y = task.sample(16, _gen())
    assert x.shape == (16, 45)
    for row_x, row_y in zip(x, y, strict=True):
        data = row_x[:40][row_x[:40] != 0]
        assert data.numel() == 5 and ((data >= 1) & (data <= 6)).all()
        assert torch.equal(row_y[40:], data) and (row_y[:40] == IGNORE).all()
        assert (row_x[40:] == 7).all()
    # The positions vary between sequences (what makes the task selective, not a fixed delay).
    assert len({tuple((row[:40] != 0).nonzero().flatten().tolist()) for row in x}) > 1


def test_induction_heads_target_follows_the_first_special_token():
    task = induction_heads(length=32, vocab=10)
    x, y = task.sample(64, _gen())
    assert x.shape == (64, 32) and y.shape == (64,)
    assert (x[:, -1] == 9).all()
    for row, target in zip(x, y, strict=True):
        specials = (row == 9).nonzero().flatten()
        assert specials.numel() == 2  # the cue and the final query
        assert row[specials[0] + 1] == target and target != 9


def test_sequential_mnist_pixels_and_permutation():
    task, x, labels = sequential_mnist("test", limit=50)
    ptask, px, plabels = sequential_mnist("test", permuted=True, limit=50)
    assert x.shape == (50, 784, 1) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(labels, plabels) and not torch.equal(x, px)
    torch.testing.assert_close(x.sort(dim=1).values, px.sort(dim=1).values)  # same pixels, reordered
    inputs, targets = task.sample(8, _gen())
    assert inputs.shape == (8, 784, 1) and targets.dtype == torch.long and ptask.name == "permuted_mnist"


def test_losses_and_accuracies_read_the_right_positions():
    outputs = torch.zeros(2, 3, 4)
    outputs[:, -1, 2] = 10.0
    assert task_accuracy(outputs, torch.tensor([2, 2])) == 1.0
    per_position = torch.full((2, 3), IGNORE)
    per_position[:, 1] = 1
    assert task_accuracy(outputs, per_position) == 0.0
    assert task_loss(outputs, per_position).item() == pytest.approx(math.log(4))
    regression = torch.zeros(2, 3, 1)
    regression[:, -1, 0] = torch.tensor([1.0, 3.0])
    assert task_loss(regression, torch.tensor([1.0, 1.0])).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="regression"):
        task_accuracy(regression, torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="outputs must be"):
        task_loss(torch.zeros(2, 4), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="do not match"):
        task_loss(outputs, torch.zeros(2, 5, dtype=torch.long))


class _LastStepMLP(nn.Module):
    """Sees the whole flattened sequence: enough for a short adding problem."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(2 * length, 64), nn.ReLU(), nn.Linear(64, length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).unsqueeze(-1)


def test_training_loop_learns_and_is_seeded():
    task = adding_problem(8)

    def trained(seed: int) -> tuple[list[float], dict[str, float]]:
        torch.manual_seed(seed)
        model = _LastStepMLP(8)
        losses = train_sequence_model(model, task, steps=300, batch_size=64, lr=3e-3, generator=_gen(seed))
        return losses, evaluate_sequence_model(model, task, batches=4, batch_size=256, generator=_gen(99))

    losses, metrics = trained(0)
    assert metrics["loss"] < 0.5 * task.chance and "accuracy" not in metrics
    assert trained(0)[0] == losses


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="length"):
        selective_copying(length=3, memorize=5)
    with pytest.raises(ValueError, match="vocab"):
        induction_heads(10, vocab=2)
    with pytest.raises(ValueError, match="split"):
        sequential_mnist("valid")
    with pytest.raises(ValueError, match="optimizer"):
        train_sequence_model(
            _LastStepMLP(4),
            adding_problem(4),
            steps=1,
            batch_size=2,
            lr=0.1,
            generator=_gen(),
            optimizer="sgd",
        )
