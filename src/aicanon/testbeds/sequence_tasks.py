"""Synthetic sequence tasks and sequential MNIST, with one loop that trains a sequence model on them.

The tasks that the sequence-model papers use to probe memory and selection, generated on the fly:

* :func:`adding_problem` (Hochreiter & Schmidhuber 1997; TCN Section 4.2): two channels, random
  values in U(0, 1) and a marker channel with exactly two ones; the target is the sum of the two
  marked values, read at the last step. Always predicting 1 gives MSE 1/6 (≈ 0.1667).
* :func:`copy_memory` (TCN Section 4.4): ``memorize`` symbols from 1..``alphabet``, then blanks (0),
  then ``memorize + 1`` delimiters (``alphabet + 1``; the paper's "last 11 elements are all 9"), and
  the model must output the symbols in order over the last ``memorize`` steps (blank elsewhere).
  Every position is scored, as in the TCN paper; always predicting blank except a uniform guess
  at the end gives cross-entropy ``memorize · log(alphabet) / length``.
* :func:`selective_copying` (Mamba Section 3.1, Figure 2; Table 1): ``memorize`` data tokens at
  random positions among noise tokens (0) in a sequence of ``length`` steps, then ``memorize``
  delimiter tokens during which the data tokens must be output in order. Unlike copy memory the
  spacing varies, so a time-invariant (LTI) model cannot solve it by a fixed delay.
* :func:`induction_heads` (Olsson et al. 2022; Mamba Section 4.1.2, Table 2): a sequence of random
  tokens in which a special token is followed once by a target token; the sequence ends with the
  special token again and the model must predict the target at the last step.
* :func:`sequential_mnist` (Le et al. 2015; TCN Section 4.3): MNIST's 784 pixels fed one at a
  time (``[N, 784, 1]``), optionally in one fixed random permutation (P-MNIST); the label is read at
  the last step.

Every task is a :class:`SequenceTask`: ``sample(batch_size, generator) -> (inputs, targets)``, with
integer token inputs ``[B, L]`` or real inputs ``[B, L, C]``. Targets come in three forms, which
:func:`task_loss` and :func:`task_accuracy` read:

* ``long [B, L]``: a class per position, ``IGNORE`` (-100) where a position is not scored;
* ``long [B]``: one class per sequence, read from the model's output at the last step;
* ``float [B]``: a regression target, read from output channel 0 at the last step.

A model for these tasks maps the inputs to ``[B, L, output_size]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core import track
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.mnist import load_mnist

__all__ = [
    "IGNORE",
    "SequenceTask",
    "adding_problem",
    "copy_memory",
    "evaluate_sequence_model",
    "induction_heads",
    "selective_copying",
    "sequential_mnist",
    "task_accuracy",
    "task_loss",
    "train_sequence_model",
]

IGNORE = -100
"""Target value of a position that is not scored (``F.cross_entropy``'s default ``ignore_index``)."""

Sampler = Callable[[int, torch.Generator], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class SequenceTask:
    """A task: how to draw a batch, and what a model for it consumes and emits.

    ``input_kind`` is ``"tokens"`` (inputs ``long [B, L]`` in ``[0, input_size)``) or ``"real"``
    (inputs ``float [B, L, input_size]``); ``output_size`` is the number of classes, or 1 for
    regression; ``length`` the sequence length; ``chance`` the loss of the best input-blind predictor
    (the level an untrained or failed model sits at).
    """

    name: str
    input_kind: str
    input_size: int
    output_size: int
    length: int
    chance: float
    sampler: Sampler

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        check_int("batch_size", batch_size, 1)
        return self.sampler(batch_size, generator if generator is not None else torch.Generator())


def _uniform_positions(
    batch_size: int, low: int, high: int, count: int, generator: torch.Generator
) -> Tensor:
    """``count`` distinct sorted positions in ``[low, high)`` per row, ``[B, count]``."""
    scores = torch.rand(batch_size, high - low, generator=generator)
    return scores.topk(count, dim=1).indices.sort(dim=1).values + low


def adding_problem(length: int) -> SequenceTask:
    """The adding problem of length ``length`` (TCN uses T = 600)."""
    check_int("length", length, 2)

    def sample(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        values = torch.rand(batch_size, length, generator=generator)
        # One marker in each half, as in the LSTM paper's formulation (so the two never coincide).
        half = length // 2
        first = torch.randint(0, half, (batch_size,), generator=generator)
        second = torch.randint(half, length, (batch_size,), generator=generator)
        markers = torch.zeros(batch_size, length)
        rows = torch.arange(batch_size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        target = values[rows, first] + values[rows, second]
        return torch.stack([values, markers], dim=-1), target

    return SequenceTask("adding", "real", 2, 1, length, 1.0 / 6.0, sample)


def copy_memory(blank: int, memorize: int = 10, alphabet: int = 8) -> SequenceTask:
    """Copy memory with ``blank`` blank steps between the symbols and the recall (TCN: T = 1000).

    Tokens: 0 blank, 1..``alphabet`` symbols, ``alphabet + 1`` the delimiter. The sequence is
    ``memorize`` symbols, ``blank - 1`` blanks and ``memorize + 1`` delimiters (length
    ``blank + 2·memorize``); the target is blank except the last ``memorize`` steps, which repeat
    the symbols.
    """
    check_int("blank", blank, 1)
    check_int("memorize", memorize, 1)
    check_int("alphabet", alphabet, 2)
    length = blank + 2 * memorize

    def sample(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        symbols = torch.randint(1, alphabet + 1, (batch_size, memorize), generator=generator)
        inputs = torch.zeros(batch_size, length, dtype=torch.long)
        inputs[:, :memorize] = symbols
        inputs[:, memorize + blank - 1 :] = alphabet + 1
        targets = torch.zeros(batch_size, length, dtype=torch.long)
        targets[:, -memorize:] = symbols
        return inputs, targets

    chance = memorize * math.log(alphabet) / length
    return SequenceTask("copy_memory", "tokens", alphabet + 2, alphabet + 2, length, chance, sample)


def selective_copying(length: int, memorize: int = 16, vocab: int = 16) -> SequenceTask:
    """Selective copying (Mamba: length 4096, 16 tokens to memorise, vocabulary 16).

    Tokens: 0 noise, 1..``vocab - 2`` data, ``vocab - 1`` the delimiter. The first ``length``
    steps hold ``memorize`` data tokens at random positions among noise; ``memorize`` delimiters
    follow (total ``length + memorize``), over which the data tokens are the targets in order. Only
    those positions are scored; a blind guess has cross-entropy ``log(vocab - 2)``.
    """
    check_int("vocab", vocab, 3)
    check_int("memorize", memorize, 1)
    check_int("length", length, memorize, note="the data tokens must fit in the first `length` steps")
    delimiter = vocab - 1

    def sample(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        data = torch.randint(1, vocab - 1, (batch_size, memorize), generator=generator)
        positions = _uniform_positions(batch_size, 0, length, memorize, generator)
        inputs = torch.zeros(batch_size, length + memorize, dtype=torch.long)
        inputs.scatter_(1, positions, data)
        inputs[:, length:] = delimiter
        targets = torch.full((batch_size, length + memorize), IGNORE, dtype=torch.long)
        targets[:, length:] = data
        return inputs, targets

    return SequenceTask(
        "selective_copying", "tokens", vocab, vocab, length + memorize, math.log(vocab - 2), sample
    )


def induction_heads(length: int, vocab: int = 16) -> SequenceTask:
    """Induction heads (Mamba: vocabulary 16, trained at length 256, tested up to 2^20).

    Tokens: 0..``vocab - 2`` ordinary, ``vocab - 1`` the special token. The special token appears
    once at a random position in the first half, followed by the target token; the sequence ends
    with the special token, and the target is to be predicted there (``long [B]``, read at the last
    step). Ordinary tokens never equal the special one, so the first occurrence is unambiguous.
    """
    check_int("vocab", vocab, 3)
    check_int("length", length, 4)
    special = vocab - 1

    def sample(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        inputs = torch.randint(0, vocab - 1, (batch_size, length), generator=generator)
        position = torch.randint(0, max(1, length // 2 - 1), (batch_size,), generator=generator)
        rows = torch.arange(batch_size)
        inputs[rows, position] = special
        target = inputs[rows, position + 1]
        inputs[:, -1] = special
        return inputs, target

    return SequenceTask("induction_heads", "tokens", vocab, vocab - 1, length, math.log(vocab - 1), sample)


def sequential_mnist(
    split: str = "train", *, permuted: bool = False, permutation_seed: int = 0, limit: int | None = None
) -> tuple[SequenceTask, Tensor, Tensor]:
    """Pixel-by-pixel MNIST: a task drawing random mini-batches from ``split``, and the full tensors.

    Inputs are ``[N, 784, 1]`` in [0, 1] (row-major pixel order, or one fixed permutation drawn from
    ``permutation_seed`` when ``permuted``); labels ``long [N]``. ``limit`` keeps the first examples.
    """
    check_choice("split", split, ("train", "test"))
    images, labels = load_mnist(split)
    if limit is not None:
        check_int("limit", limit, 1)
        images, labels = images[:limit], labels[:limit]
    x = images.reshape(images.size(0), 784).float().div_(255)
    if permuted:
        permutation = torch.randperm(784, generator=torch.Generator().manual_seed(permutation_seed))
        x = x[:, permutation]
    x = x.unsqueeze(-1).contiguous()
    labels = labels.long()

    def sample(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        index = torch.randint(0, x.size(0), (batch_size,), generator=generator)
        return x[index], labels[index]

    name = "permuted_mnist" if permuted else "sequential_mnist"
    return SequenceTask(name, "real", 1, 10, 784, math.log(10), sample), x, labels


def _check_outputs(outputs: Tensor, targets: Tensor) -> None:
    if outputs.dim() != 3:
        raise ValueError(f"outputs must be [B, L, output_size], got shape {tuple(outputs.shape)}")
    if targets.size(0) != outputs.size(0) or (targets.dim() == 2 and targets.shape != outputs.shape[:2]):
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not match outputs of shape {tuple(outputs.shape)}"
        )


def task_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy over the scored positions, or MSE at the last step for float targets."""
    _check_outputs(outputs, targets)
    if targets.is_floating_point():
        return F.mse_loss(outputs[:, -1, 0], targets)
    if targets.dim() == 1:
        return F.cross_entropy(outputs[:, -1], targets)
    return F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


@torch.no_grad()
def task_accuracy(outputs: Tensor, targets: Tensor) -> float:
    """Accuracy over the scored positions (classification targets only)."""
    _check_outputs(outputs, targets)
    if targets.is_floating_point():
        raise ValueError("task_accuracy needs class targets; a regression task has only task_loss")
    if targets.dim() == 1:
        return (outputs[:, -1].argmax(-1) == targets).float().mean().item()
    scored = targets != IGNORE
    return (outputs.argmax(-1)[scored] == targets[scored]).float().mean().item()


def train_sequence_model(
    model: nn.Module,
    task: SequenceTask,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    optimizer: str = "adam",
    grad_clip: float | None = None,
    device: torch.device | str = "cpu",
    log_every: int = 0,
    description: str | None = None,
) -> list[float]:
    """Train ``model`` on fresh batches of ``task`` for ``steps`` steps; the training losses.

    ``optimizer`` is ``"adam"`` or ``"rmsprop"`` (the TCN paper's recurrent baselines use RMSprop on
    some tasks); ``grad_clip`` clips the global gradient norm. With ``log_every`` > 0 only every
    ``log_every``-th loss is kept (the last step's always is).
    """
    check_int("steps", steps, 1)
    check_float("lr", lr, 0.0, min_inclusive=False)
    check_choice("optimizer", optimizer, ("adam", "rmsprop"))
    if grad_clip is not None:
        check_float("grad_clip", grad_clip, 0.0, min_inclusive=False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.RMSprop(params, lr=lr)
    model.train()
    losses: list[float] = []
    for step in track(range(steps), description=description or f"train on {task.name}"):
        inputs, targets = task.sample(batch_size, generator)
        inputs, targets = inputs.to(device), targets.to(device)
        loss = task_loss(model(inputs), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss on {task.name} became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        if log_every <= 0 or step % log_every == 0 or step == steps - 1:
            losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate_sequence_model(
    model: nn.Module,
    task: SequenceTask,
    *,
    batches: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean loss (and accuracy for classification tasks) over ``batches`` fresh batches, in eval mode."""
    check_int("batches", batches, 1)
    was_training = model.training
    model.eval()
    loss_sum, accuracy_sum = 0.0, 0.0
    regression = False
    for _ in range(batches):
        inputs, targets = task.sample(batch_size, generator)
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        loss_sum += task_loss(outputs, targets).item()
        regression = targets.is_floating_point()
        if not regression:
            accuracy_sum += task_accuracy(outputs, targets)
    model.train(was_training)
    metrics = {"loss": loss_sum / batches}
    if not regression:
        metrics["accuracy"] = accuracy_sum / batches
    return metrics
