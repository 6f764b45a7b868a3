"""The task stream, its learner protocol and the continual-learning metrics (GEM Section 5)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from aicanon.learning.metrics import AccuracyMatrix, evaluate_stream, evaluate_task
from aicanon.learning.streams import ContinualLearner, FineTuning, Task, TaskStream, masked_logits


def make_task(task_id: int, n: int = 6, classes=None, label_offset: int = 0) -> Task:
    generator = torch.Generator().manual_seed(task_id)
    y = torch.arange(n) % 2 + label_offset
    return Task(
        task_id, f"t{task_id}", torch.randn(n, 3, generator=generator), y, torch.randn(n, 3), y, classes
    )


def test_stream_indexes_tasks_by_id_and_names_the_valid_ids():
    stream = TaskStream((make_task(0), make_task(1)), num_classes=2, name="toy")
    assert len(stream) == 2 and stream.input_shape == (3,)
    assert stream[1] is stream.task(1) and [t.id for t in stream] == [0, 1]
    with pytest.raises(KeyError, match=r"task id 2 is not in the stream 'toy' \(ids 0..1\)"):
        stream.task(2)
    with pytest.raises(KeyError, match="task id -1"):
        stream[-1]
    with pytest.raises(TypeError, match="task_id must be an int, got str"):
        stream.task("0")


def test_stream_rejects_inconsistent_tasks():
    with pytest.raises(ValueError, match="task ids must be 0..1 in stream order, got \\[1, 0\\]"):
        TaskStream((make_task(1), make_task(0)), num_classes=2)
    with pytest.raises(ValueError, match="at least one Task"):
        TaskStream((), num_classes=2)
    with pytest.raises(ValueError, match="labels must lie in \\[0, num_classes=2\\)"):
        TaskStream((make_task(0, label_offset=1),), num_classes=2)
    odd = Task(
        1,
        "odd",
        torch.randn(4, 5),
        torch.zeros(4, dtype=torch.long),
        torch.randn(4, 5),
        torch.zeros(4, dtype=torch.long),
    )
    with pytest.raises(ValueError, match="share one shape"):
        TaskStream((make_task(0), odd), num_classes=2)


def test_task_rejects_bad_tensors():
    x, y = torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="same, nonzero number of examples, got 4 and 3"):
        Task(0, "t", x, y[:3], x, y)
    with pytest.raises(TypeError, match="y_train must be a torch.int64 tensor"):
        Task(0, "t", x, y.float(), x, y)
    with pytest.raises(ValueError, match="labels outside its classes"):
        Task(0, "t", x, y + 3, x, y + 3, classes=(0, 1))


def test_masked_logits_keep_only_the_tasks_classes():
    logits = torch.zeros(2, 4)
    masked = masked_logits(logits, make_task(0, classes=(0, 1)))
    assert torch.isinf(masked[:, 2:]).all() and (masked[:, :2] == 0).all()
    assert masked_logits(logits, make_task(0)) is logits


def test_accuracy_matrix_metrics_by_hand():
    # R rows: after task 0, 1, 2. b: the untrained model's accuracies.
    matrix = AccuracyMatrix(3, baseline=[0.1, 0.2, 0.3])
    matrix.record(0, [0.9, 0.25, 0.3])
    matrix.record(1, [0.7, 0.8, 0.35])
    matrix.record(2, [0.6, 0.7, 0.9])
    assert math.isclose(matrix.acc, (0.6 + 0.7 + 0.9) / 3)
    assert math.isclose(matrix.bwt, ((0.6 - 0.9) + (0.7 - 0.8)) / 2)
    assert math.isclose(matrix.fwt, ((0.25 - 0.2) + (0.35 - 0.3)) / 2)
    record = matrix.as_dict()
    assert record["R"][1] == [0.7, 0.8, 0.35] and set(record) == {"R", "b", "ACC", "BWT", "FWT"}


def test_accuracy_matrix_rejects_bad_rows_and_early_metrics():
    matrix = AccuracyMatrix(2)
    with pytest.raises(ValueError, match="after_task must be the next row, 0, got 1"):
        matrix.record(1, [0.5, 0.5])
    with pytest.raises(ValueError, match="must hold 2 accuracies"):
        matrix.record(0, [0.5])
    with pytest.raises(ValueError, match="accuracies in \\[0, 1\\]"):
        matrix.record(0, [50.0, 0.5])
    matrix.record(0, [0.5, 0.5])
    with pytest.raises(ValueError, match="R has 1 of 2 rows"):
        matrix.acc
    matrix.record(1, [0.5, 0.5])
    with pytest.raises(ValueError, match="needs the baseline accuracies"):
        matrix.fwt
    with pytest.raises(ValueError, match="at least 2 tasks"):
        single = AccuracyMatrix(1)
        single.record(0, [1.0])
        single.bwt
    with pytest.raises(ValueError, match="num_tasks must be >= 1"):
        AccuracyMatrix(0)


class Lookup(nn.Module):
    """Predicts the class stored in the input's first feature."""

    def forward(self, x):
        return nn.functional.one_hot(x[:, 0].long(), 4).float()


def test_evaluate_task_counts_correct_predictions_and_restores_mode():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    task = Task(0, "t", x, torch.tensor([0, 1, 2, 0]), x, torch.tensor([0, 1, 2, 0]))
    model = Lookup().train()
    assert evaluate_task(model, task, batch_size=3) == 0.75
    assert model.training
    # With the task's mask the model may only choose among classes 0 and 1 (x = 2 or 3 -> class 0).
    masked = Task(0, "t", x, torch.tensor([0, 1, 0, 0]), x, torch.tensor([0, 1, 0, 0]), classes=(0, 1))
    assert evaluate_task(model.eval(), masked) == 1.0 and not model.training
    stream = TaskStream((task,), num_classes=4)
    assert evaluate_stream(model, stream) == [0.75]


def test_fine_tuning_is_a_continual_learner_that_lowers_the_loss():
    torch.manual_seed(0)
    task = make_task(0, n=32)
    model = nn.Linear(3, 2)
    learner = FineTuning(model, lr=0.5)
    assert isinstance(learner, ContinualLearner)
    losses = [learner.observe(task.x_train, task.y_train, task) for _ in range(30)]
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="lr must be > 0.0, got 0"):
        FineTuning(model, lr=0)
    with pytest.raises(ValueError, match="momentum must be in \\[0.0, 1.0\\), got 1.0"):
        FineTuning(model, lr=0.1, momentum=1.0)
    assert np.isfinite(losses).all()
