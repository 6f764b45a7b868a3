"""TCN against LSTM and GRU of similar size (Bai, Kolter & Koltun 2018, Section 5, Table 1, Figures 2-4).

The paper's protocol, per task: a generic TCN (Section 3; dilations ``2^i``, Adam at lr 0.002 unless
noted) and canonical recurrent networks "around the same size" are trained on the same data, and
their test loss or accuracy compared. Here every model of a task sees the same batches (one
generator per task and seed), for the same number of steps, with the same optimiser (Adam), learning
rate and gradient clipping; the recurrent networks (one LSTM or GRU layer and a linear output) get
the hidden size that matches the TCN's parameter count.

Arms (``Config.tasks``):

* ``adding`` (Section 4, Figure 2): the adding problem of length ``adding_length``; test MSE at the
  last step. Table 1 (T = 600, 70K parameters): LSTM 0.164, GRU 5.3e-5, TCN 5.8e-5; Figure 2 shows
  the TCN converging within a few hundred iterations where the GRU needs thousands and the LSTM
  stays at the level of predicting the mean. Note that Table 1's final GRU loss is *below* the
  TCN's: the paper's adding-problem claim is convergence speed, which is what the same-steps
  comparison measures.
* ``copy_memory`` (Figure 4): ``copy_blank`` blanks between 10 symbols and their recall; loss over
  every position. Table 1 (T = 1000, 16K): LSTM 0.0204, GRU 0.0197, TCN 3.5e-5 (the recurrent
  networks sit at the "guess 0 for all" level).
* ``sequential_mnist`` / ``permuted_mnist`` (Figure 3): 784 pixels one at a time; test accuracy.
  Table 1 (70K): LSTM 87.2 / 85.7, GRU 96.2 / 87.3, TCN 99.0 / 97.2 %. Full scale only: a recurrent
  network over 784 steps does not fit the quick budget on two CPU cores.
* ``char_lm``: character-level language modelling, in the paper on Penn Treebank (Table 1: LSTM
  1.36, GRU 1.37, TCN 1.31 bits per character); PTB is not staged here, so the full run uses Tiny
  Shakespeare (``aicanon.datasets.text``) with the paper's char-PTB TCN (3 levels x 450 channels,
  k = 3, embedding 100, dropout 0.1, windows of 400 characters of which the last 320 are scored).

Ablation (``ablation``): ``no_dilation`` sets every dilation to 1, so the receptive field
``1 + 2(k-1)L`` no longer covers the sequence (the TCN cannot see the first marker or the symbols
to recall) and the quick claims fail; ``untrained`` skips training.

Quick scale (about 30 s of one CPU core; more when the cores are shared): the adding problem at
T = 100 (TCN 3 x 16, k = 10, 600 steps of batch 64) and copy memory with 50 blanks (T = 70; TCN
4 x 16, k = 4, with an LSTM and a GRU of the same ~9K parameters, 400 steps of batch 32), Adam at
lr 0.01 with gradient clipping at 1.0 for every model. The TCN solves both; on copy memory the
recurrent networks stay at the blind predictor's loss, as in Figure 4. On the adding problem at
T = 100 they do not fail: in our run (seed 0, same budget) the LSTM reached MSE 0.0049 and the GRU
0.0003 against the TCN's 0.0046. The paper's gap opens at T = 200 and 600 (Figure 2), so the quick
scale trains no baselines there (``baseline_tasks``) and the adding-problem comparison is a
full-scale claim: a gap at quick scale, stated.

Cost of ``--full`` (estimate, not run): the adding problem at T = 600 (7,000 steps of batch 32) and
copy memory at T = 1000 (3,000 steps) take minutes per model on one GPU; sequential and permuted
MNIST (10 epochs, 9,380 steps of batch 64 over 784 steps, three models each) about 10-20 GPU-minutes
per model, dominated by the recurrent networks; the Tiny Shakespeare arm (10,000 steps of 32 x 400
characters, a 3.6M-parameter TCN and an LSTM of the same size) 10-20 GPU-minutes. About 1.5-2 GPU
hours for one seed; on two CPU cores it is days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.datasets.text import char_splits, load_tinyshakespeare, random_batch
from aicanon.language.tcn import TCNSequenceModel
from aicanon.testbeds.sequence_tasks import (
    IGNORE,
    SequenceTask,
    adding_problem,
    copy_memory,
    evaluate_sequence_model,
    sequential_mnist,
    task_accuracy,
    task_loss,
    train_sequence_model,
)

TASKS = ("adding", "copy_memory", "sequential_mnist", "permuted_mnist", "char_lm")
MODELS = ("tcn", "lstm", "gru")
ABLATIONS = ("none", "no_dilation", "untrained")


@dataclass
class Config(ExperimentConfig):
    tasks: tuple[str, ...] = ("adding", "copy_memory", "sequential_mnist", "permuted_mnist", "char_lm")
    """Arms to run, from ``TASKS`` (see the module docstring)."""
    models: tuple[str, ...] = MODELS
    """Models trained on every arm: the TCN and its same-size recurrent baselines."""
    baseline_tasks: tuple[str, ...] = TASKS
    """Arms on which the recurrent baselines are trained (the others train the TCN alone)."""
    ablation: str = "none"
    """``none``; ``no_dilation`` (every dilation 1); ``untrained`` (no training steps)."""
    grad_clip: float = 1.0
    """Gradient-norm clip of every model on the synthetic and MNIST arms (Section 5: clipping "helped
    convergence", the norm picked from [0.3, 1]; the paper grid-searches it for the recurrent nets)."""
    eval_batches: int = 4
    """Fresh test batches per synthetic task (the generator is the seed's, offset from training's)."""
    eval_batch_size: int = 256
    """Sequences per test batch."""

    adding_length: int = 600
    """T of the adding problem (Table 1: 600)."""
    adding_channels: int = 24
    """Channels per TCN level (Figure 2(b): 8 x 24)."""
    adding_levels: int = 8
    """TCN levels (8)."""
    adding_kernel_size: int = 8
    """Filter size k (8)."""
    adding_steps: int = 7000
    """Training steps of every model (Figure 2's horizon)."""
    adding_batch_size: int = 32
    """Batch size (32, the authors' code)."""
    adding_lr: float = 0.002
    """Adam learning rate of every model (the paper's TCN default 0.002)."""

    copy_blank: int = 1000
    """Blank steps between the symbols and the recall (Table 1: T = 1000; length T + 20)."""
    copy_channels: int = 10
    """Channels per TCN level (Figure 4(b): 8 x 10)."""
    copy_levels: int = 8
    """TCN levels (8)."""
    copy_kernel_size: int = 8
    """Filter size k (8)."""
    copy_dropout: float = 0.0
    """Spatial dropout of the TCN (0.0, the authors' copy-memory script)."""
    copy_steps: int = 3000
    """Training steps (Figure 4's horizon)."""
    copy_batch_size: int = 32
    """Batch size (32)."""
    copy_lr: float = 0.002
    """Adam learning rate (the paper's default; the authors' script uses RMSprop at 5e-4)."""

    mnist_channels: int = 25
    """Channels per TCN level (Figure 3: 8 x 25, k = 7, 66K parameters)."""
    mnist_levels: int = 8
    """TCN levels."""
    mnist_kernel_size: int = 7
    """Filter size k."""
    mnist_dropout: float = 0.05
    """Spatial dropout of the TCN (0.05, the authors' code default)."""
    mnist_steps: int = 9380
    """Training steps: 10 epochs of 60,000 images at batch 64 (Section 5.2)."""
    mnist_batch_size: int = 64
    """Batch size (64)."""
    mnist_lr: float = 0.002
    """Adam learning rate."""
    mnist_train_limit: int | None = None
    """Keep only the first N training images (None: all 60,000)."""
    mnist_test_limit: int | None = None
    """Keep only the first N test images (None: all 10,000)."""

    char_channels: int = 450
    """Channels per TCN level (the paper's char-PTB model: 3 x 450, k = 3)."""
    char_levels: int = 3
    """TCN levels."""
    char_kernel_size: int = 3
    """Filter size k."""
    char_dropout: float = 0.1
    """Spatial dropout of the TCN (0.1)."""
    char_embedding_size: int = 100
    """Character embedding width of every model (100)."""
    char_seq_len: int = 400
    """Characters per training window (400)."""
    char_scored_len: int = 320
    """Scored (last) characters of each window, so that each prediction has context (320)."""
    char_steps: int = 10_000
    """Training steps of batch ``char_batch_size``."""
    char_batch_size: int = 32
    """Windows per batch (32)."""
    char_lr: float = 0.002
    """Adam learning rate (the paper trains the TCN with SGD at lr 4; see the notes)."""
    char_grad_clip: float = 0.15
    """Gradient-norm clip of every char-LM model (0.15, the paper's char-PTB setting)."""
    char_eval_batches: int = 50
    """Validation batches (random windows of the held-out tail of the text, fixed generator)."""

    @classmethod
    def quick(cls) -> Config:
        # Short sequences and ~10K-parameter TCNs; 600 and 400 steps. Sequential MNIST and the
        # language-model arm are full-only (a recurrent net over 784 steps alone would take minutes).
        return cls(
            scale="quick",
            seeds=1,
            threads=1,
            tasks=("adding", "copy_memory"),
            # At T = 100 the same-size LSTM and GRU solve the adding problem too (seed 0, 600 steps:
            # TCN 0.0046, LSTM 0.0049, GRU 0.0003 MSE), so no claim is made there and the quick run
            # saves their ~25 s; the full run (T = 600) trains them.
            baseline_tasks=("copy_memory",),
            adding_length=100,
            adding_channels=16,
            adding_levels=3,
            adding_kernel_size=10,
            adding_steps=600,
            adding_batch_size=64,
            adding_lr=0.01,
            copy_blank=50,
            copy_channels=16,
            copy_levels=4,
            copy_kernel_size=4,
            copy_dropout=0.0,
            copy_steps=400,
            copy_batch_size=32,
            copy_lr=0.01,
            eval_batches=2,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=1)


# Quick thresholds, set from our runs (CPU, this code): the TCN solves both tasks well below these
# lines (adding MSE about 0.005 against 1/6 for the blind predictor; copy memory loss about 0.05
# against 10 ln 8 / 70 = 0.297); on copy memory the LSTM and GRU of the same size, at the same
# budget, stay at the blind level (ratio about 6). On the adding problem at T = 100 they do not:
# both solve it too (the GRU better than the TCN), so the quick scale claims only the TCN's own
# MSE there and reports the ratios - a gap to the paper's T = 600 claim, which the full run makes.
# Without dilation the TCN cannot see far enough and fails every TCN claim. Full thresholds are
# targets at the paper's settings, not yet run (no GPU in this session).
CLAIMS = [
    Claim(
        metric="adding_tcn_mse",
        description="TCN test MSE on the adding problem (quick T = 100, full T = 600)",
        paper=5.8e-5,
        source="Table 1, adding problem T = 600 (TCN 5.8e-5; LSTM 0.164, GRU 5.3e-5)",
        quick=0.04,
        full=1e-3,
        higher_is_better=False,
    ),
    Claim(
        metric="adding_lstm_over_tcn_mse",
        description="LSTM / TCN test MSE on the adding problem, same size and steps",
        paper=0.164 / 5.8e-5,
        source="Table 1, adding problem T = 600 (0.164 / 5.8e-5); Figure 2. Quick (T = 100): reported "
        "only, a gap: an LSTM of the same size solves T = 100 as fast as the TCN",
        quick=None,
        full=10.0,
    ),
    Claim(
        metric="adding_gru_over_tcn_mse",
        description="GRU / TCN test MSE on the adding problem, same size and steps (convergence speed)",
        paper=5.3e-5 / 5.8e-5,
        source="Table 1, adding problem T = 600 (5.3e-5 / 5.8e-5: the GRU ends level); Figure 2 (slower). "
        "Quick (T = 100): reported only, a gap: the GRU of the same size ends below the TCN",
        quick=None,
        full=None,
    ),
    Claim(
        metric="copy_tcn_loss",
        description="TCN test cross-entropy on copy memory (quick 50 blanks, full T = 1000)",
        paper=3.5e-5,
        source="Table 1, copy memory T = 1000 (TCN 3.5e-5; LSTM 0.0204, GRU 0.0197)",
        quick=0.1,
        full=1e-3,
        higher_is_better=False,
    ),
    Claim(
        metric="copy_tcn_recall_accuracy",
        description="TCN accuracy on the 10 recalled symbols (chance 1/8)",
        paper=1.0,
        source="Figure 5 (100 % at every T)",
        quick=0.8,
        full=0.99,
    ),
    Claim(
        metric="copy_lstm_over_tcn_loss",
        description="LSTM / TCN test loss on copy memory, same size and steps",
        paper=0.0204 / 3.5e-5,
        source="Table 1, copy memory T = 1000 (0.0204 / 3.5e-5); Figure 4",
        quick=2.0,
        full=10.0,
    ),
    Claim(
        metric="copy_gru_over_tcn_loss",
        description="GRU / TCN test loss on copy memory, same size and steps",
        paper=0.0197 / 3.5e-5,
        source="Table 1, copy memory T = 1000 (0.0197 / 3.5e-5); Figure 4",
        quick=2.0,
        full=10.0,
    ),
    Claim(
        metric="sequential_mnist_tcn_accuracy",
        description="TCN test accuracy on sequential MNIST (full only)",
        paper=99.0,
        source="Table 1, Seq. MNIST (TCN 99.0; LSTM 87.2, GRU 96.2)",
        quick=None,
        full=98.0,
        unit="%",
    ),
    Claim(
        metric="sequential_mnist_tcn_minus_best_recurrent",
        description="TCN minus the better recurrent network's test accuracy, sequential MNIST",
        paper=99.0 - 96.2,
        source="Table 1, Seq. MNIST (99.0 - 96.2)",
        quick=None,
        full=0.0,
        unit="points",
    ),
    Claim(
        metric="permuted_mnist_tcn_accuracy",
        description="TCN test accuracy on permuted MNIST (full only)",
        paper=97.2,
        source="Table 1, Permuted MNIST (TCN 97.2; LSTM 85.7, GRU 87.3)",
        quick=None,
        full=96.0,
        unit="%",
    ),
    Claim(
        metric="permuted_mnist_tcn_minus_best_recurrent",
        description="TCN minus the better recurrent network's test accuracy, permuted MNIST",
        paper=97.2 - 87.3,
        source="Table 1, Permuted MNIST (97.2 - 87.3)",
        quick=None,
        full=0.0,
        unit="points",
    ),
    Claim(
        metric="char_lm_tcn_bpc",
        description="TCN validation bits per character, Tiny Shakespeare (full only; the paper: char PTB)",
        paper=1.31,
        source="Table 1, char-level PTB (a different corpus: not comparable in value)",
        quick=None,
        full=None,
        higher_is_better=False,
        unit="bpc",
    ),
    Claim(
        metric="char_lm_lstm_minus_tcn_bpc",
        description="LSTM minus TCN validation bits per character, Tiny Shakespeare (full only)",
        paper=1.36 - 1.31,
        source="Table 1, char-level PTB (1.36 - 1.31)",
        quick=None,
        full=0.0,
        unit="bpc",
    ),
]


class RecurrentSequenceModel(nn.Module):
    """The paper's recurrent baselines: an optional embedding, one LSTM or GRU layer and a linear
    output at every step (inputs as :class:`~aicanon.language.tcn.TCNSequenceModel`'s)."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        output_size: int,
        hidden_size: int,
        *,
        input_kind: str = "real",
        embedding_size: int | None = None,
    ) -> None:
        super().__init__()
        check_choice("cell", cell, ("lstm", "gru"))
        check_choice("input_kind", input_kind, ("real", "tokens"))
        self.embedding = (
            nn.Embedding(input_size, embedding_size or hidden_size) if input_kind == "tokens" else None
        )
        width = self.embedding.embedding_dim if self.embedding is not None else input_size
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(width, hidden_size, batch_first=True)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: Tensor) -> Tensor:
        x = self.embedding(inputs) if self.embedding is not None else inputs
        return self.output(self.rnn(x)[0])


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_recurrent(
    cell: str, target: int, input_size: int, output_size: int, input_kind: str, embedding_size: int | None
) -> RecurrentSequenceModel:
    """The recurrent baseline whose parameter count is closest to ``target`` (the TCN's)."""

    def build(hidden: int) -> RecurrentSequenceModel:
        return RecurrentSequenceModel(
            cell, input_size, output_size, hidden, input_kind=input_kind, embedding_size=embedding_size
        )

    gates = 4 if cell == "lstm" else 3
    width = embedding_size if input_kind == "tokens" else input_size
    # gates·(h·(width + h) + 2h) + (h + 1)·output (+ embedding) = target, solved for h.
    a, b = gates, gates * (width + 2) + output_size
    c = output_size + (input_size * width if input_kind == "tokens" else 0) - target
    guess = max(1, round((-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)))
    candidates = [build(h) for h in range(max(1, guess - 2), guess + 3)]
    return min(candidates, key=lambda m: abs(parameter_count(m) - target))


@dataclass
class Arm:
    """One task of the comparison: what to train on, how, and how the TCN is shaped."""

    key: str
    task: SequenceTask
    test_task: SequenceTask | None
    channels: list[int]
    kernel_size: int
    dropout: float
    steps: int
    batch_size: int
    lr: float
    embedding_size: int | None = None
    grad_clip: float | None = None
    test_tensors: tuple[Tensor, Tensor] | None = None
    """A fixed test set (sequential MNIST), evaluated whole instead of sampled batches."""


def build_models(arm: Arm, cfg: Config) -> dict[str, nn.Module]:
    """The TCN of ``arm`` (dilations 2^i, or all 1 under the ``no_dilation`` ablation) and the
    same-size LSTM and GRU named in ``cfg.models``. The TCN is built first, so its start depends on
    the seed only (the same whether or not the baselines are built)."""
    task = arm.task
    dilations = [1] * len(arm.channels) if cfg.ablation == "no_dilation" else None
    tcn = TCNSequenceModel(
        task.input_size,
        task.output_size,
        arm.channels,
        arm.kernel_size,
        arm.dropout,
        input_kind=task.input_kind,
        embedding_size=arm.embedding_size,
        dilations=dilations,
    )
    models: dict[str, nn.Module] = {}
    for name in cfg.models:
        if name == "tcn":
            models[name] = tcn
        elif arm.key in cfg.baseline_tasks:
            embedding = arm.embedding_size or (arm.channels[0] if task.input_kind == "tokens" else None)
            models[name] = matched_recurrent(
                name, parameter_count(tcn), task.input_size, task.output_size, task.input_kind, embedding
            )
    return models


def recall_accuracy(
    model: nn.Module, task: SequenceTask, memorize: int, batches: int, batch_size: int, generator, device
) -> float:
    """Accuracy on the last ``memorize`` positions of copy memory (Section 5.4), in eval mode."""
    model.eval()
    correct = []
    with torch.no_grad():
        for _ in range(batches):
            inputs, targets = task.sample(batch_size, generator)
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            correct.append(
                (outputs[:, -memorize:].argmax(-1) == targets[:, -memorize:]).float().mean().item()
            )
    return float(np.mean(correct))


@torch.no_grad()
def evaluate_tensors(model: nn.Module, x: Tensor, y: Tensor, batch_size: int, device) -> dict[str, float]:
    """Loss and accuracy (%) over a fixed test set (sequential MNIST), in eval mode."""
    model.eval()
    loss, correct = 0.0, 0.0
    for start in range(0, x.size(0), batch_size):
        xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        outputs = model(xb)
        loss += task_loss(outputs, yb).item() * xb.size(0)
        correct += task_accuracy(outputs, yb) * xb.size(0)
    return {"loss": loss / x.size(0), "accuracy": 100.0 * correct / x.size(0)}


def char_lm_tasks(cfg: Config) -> tuple[SequenceTask, SequenceTask]:
    """Tiny Shakespeare as two token tasks (train head, validation tail): random windows of
    ``char_seq_len`` characters whose targets are the next characters, scored on the last
    ``char_scored_len`` (the first positions lack context; the authors' code does the same)."""
    train_ids, val_ids, tokenizer = char_splits(load_tinyshakespeare())
    vocab = tokenizer.vocab_size

    def make(ids: Tensor, name: str) -> SequenceTask:
        def sample(batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
            x, y = random_batch(ids, batch_size, cfg.char_seq_len, generator)
            y = y.clone()
            y[:, : cfg.char_seq_len - cfg.char_scored_len] = IGNORE
            return x, y

        return SequenceTask(name, "tokens", vocab, vocab, cfg.char_seq_len, math.log(vocab), sample)

    return make(train_ids, "tiny_shakespeare"), make(val_ids, "tiny_shakespeare_val")


def make_arm(key: str, cfg: Config) -> Arm:
    if key == "adding":
        return Arm(
            key,
            adding_problem(cfg.adding_length),
            None,
            [cfg.adding_channels] * cfg.adding_levels,
            cfg.adding_kernel_size,
            0.0,
            cfg.adding_steps,
            cfg.adding_batch_size,
            cfg.adding_lr,
        )
    if key == "copy_memory":
        return Arm(
            key,
            copy_memory(cfg.copy_blank),
            None,
            [cfg.copy_channels] * cfg.copy_levels,
            cfg.copy_kernel_size,
            cfg.copy_dropout,
            cfg.copy_steps,
            cfg.copy_batch_size,
            cfg.copy_lr,
        )
    if key in ("sequential_mnist", "permuted_mnist"):
        permuted = key == "permuted_mnist"
        train, _, _ = sequential_mnist("train", permuted=permuted, limit=cfg.mnist_train_limit)
        _, x_test, y_test = sequential_mnist("test", permuted=permuted, limit=cfg.mnist_test_limit)
        return Arm(
            key,
            train,
            None,
            [cfg.mnist_channels] * cfg.mnist_levels,
            cfg.mnist_kernel_size,
            cfg.mnist_dropout,
            cfg.mnist_steps,
            cfg.mnist_batch_size,
            cfg.mnist_lr,
            test_tensors=(x_test, y_test),
        )
    train, val = char_lm_tasks(cfg)
    return Arm(
        key,
        train,
        val,
        [cfg.char_channels] * cfg.char_levels,
        cfg.char_kernel_size,
        cfg.char_dropout,
        cfg.char_steps,
        cfg.char_batch_size,
        cfg.char_lr,
        embedding_size=cfg.char_embedding_size,
        grad_clip=cfg.char_grad_clip,
    )


def check_config(cfg: Config) -> None:
    if not cfg.tasks:
        raise ValueError("tasks must name at least one arm, got an empty tuple")
    for task in cfg.tasks:
        check_choice("tasks", task, TASKS)
    for task in cfg.baseline_tasks:
        check_choice("baseline_tasks", task, TASKS)
    if "tcn" not in cfg.models:
        raise ValueError(f"models must include 'tcn' (every metric compares against it), got {cfg.models!r}")
    for name in cfg.models:
        check_choice("models", name, MODELS)
    check_choice("ablation", cfg.ablation, ABLATIONS)
    check_float("grad_clip", cfg.grad_clip, 0.0, min_inclusive=False)
    for name in ("eval_batches", "eval_batch_size", "adding_length", "copy_blank", "char_eval_batches"):
        check_int(name, getattr(cfg, name), 1)
    for prefix in ("adding", "copy", "mnist", "char"):
        for field in ("channels", "levels", "kernel_size", "steps", "batch_size"):
            check_int(f"{prefix}_{field}", getattr(cfg, f"{prefix}_{field}"), 1)
        check_float(f"{prefix}_lr", getattr(cfg, f"{prefix}_lr"), 0.0, min_inclusive=False)
    for prefix in ("copy", "mnist", "char"):
        check_probability(f"{prefix}_dropout", getattr(cfg, f"{prefix}_dropout"), allow_one=False)
    check_int("char_scored_len", cfg.char_scored_len, 1, cfg.char_seq_len, note="at most char_seq_len")


def run_arm(arm: Arm, cfg: Config, device: torch.device) -> dict:
    """Train every model of ``arm`` on the same batches for the same steps; test them."""
    seed(cfg.seed)  # the models' initialisation is fixed by the seed
    models = {name: model.to(device) for name, model in build_models(arm, cfg).items()}
    outcome: dict = {
        "parameters": {n: parameter_count(m) for n, m in models.items()},
        "curves": {},
        "test": {},
    }
    outcome["receptive_field"] = models["tcn"].receptive_field if "tcn" in models else None
    outcome["steps"] = arm.steps
    for name, model in models.items():
        generator = torch.Generator().manual_seed(cfg.seed)  # the same batches for every model
        if cfg.ablation != "untrained":
            clip = arm.grad_clip if arm.grad_clip is not None else cfg.grad_clip
            outcome["curves"][name] = train_sequence_model(
                model,
                arm.task,
                steps=arm.steps,
                batch_size=arm.batch_size,
                lr=arm.lr,
                generator=generator,
                grad_clip=clip,
                device=device,
                log_every=max(1, arm.steps // 100),
                description=f"{name} on {arm.key}",
            )
        evaluation = torch.Generator().manual_seed(cfg.seed + 10_000)
        if arm.test_tensors is not None:
            x, y = arm.test_tensors
            outcome["test"][name] = evaluate_tensors(model, x, y, cfg.eval_batch_size, device)
        else:
            test_task = arm.test_task or arm.task
            batches = cfg.char_eval_batches if arm.key == "char_lm" else cfg.eval_batches
            batch_size = cfg.char_batch_size if arm.key == "char_lm" else cfg.eval_batch_size
            outcome["test"][name] = evaluate_sequence_model(
                model, test_task, batches=batches, batch_size=batch_size, generator=evaluation, device=device
            )
            if arm.key == "copy_memory":
                evaluation = torch.Generator().manual_seed(cfg.seed + 10_000)
                outcome["test"][name]["recall_accuracy"] = recall_accuracy(
                    model, arm.task, 10, cfg.eval_batches, cfg.eval_batch_size, evaluation, device
                )
    return outcome


def metrics_of(key: str, outcome: dict) -> dict[str, float]:
    """The arm's claimed and reported numbers (see CLAIMS)."""
    test = outcome["test"]
    metrics: dict[str, float] = {}
    recurrent = [n for n in ("lstm", "gru") if n in test]
    if key == "adding":
        for name, values in test.items():
            metrics[f"adding_{name}_mse"] = values["loss"]
        for name in recurrent:
            metrics[f"adding_{name}_over_tcn_mse"] = test[name]["loss"] / test["tcn"]["loss"]
    elif key == "copy_memory":
        for name, values in test.items():
            metrics[f"copy_{name}_loss"] = values["loss"]
            metrics[f"copy_{name}_recall_accuracy"] = values["recall_accuracy"]
        for name in recurrent:
            metrics[f"copy_{name}_over_tcn_loss"] = test[name]["loss"] / test["tcn"]["loss"]
    elif key in ("sequential_mnist", "permuted_mnist"):
        for name, values in test.items():
            metrics[f"{key}_{name}_accuracy"] = values["accuracy"]
        if recurrent:
            best = max(test[n]["accuracy"] for n in recurrent)
            metrics[f"{key}_tcn_minus_best_recurrent"] = test["tcn"]["accuracy"] - best
    else:
        for name, values in test.items():
            metrics[f"char_lm_{name}_bpc"] = values["loss"] / math.log(2)
        if "lstm" in test:
            metrics["char_lm_lstm_minus_tcn_bpc"] = (test["lstm"]["loss"] - test["tcn"]["loss"]) / math.log(2)
    return metrics


def _curves_figure(outcomes: dict[str, dict], chance: dict[str, float]) -> Figure:
    figure = Figure(figsize=(5 * len(outcomes), 4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(outcomes)))
    for axis, (key, outcome) in zip(axes, outcomes.items()):
        for name, losses in outcome["curves"].items():
            steps = np.linspace(0, outcome["steps"] - 1, len(losses))  # every log_every-th step and the last
            axis.plot(steps, losses, label=f"{name} ({outcome['parameters'][name]:,} params)")
        axis.axhline(chance[key], color="grey", linestyle=":", label="blind predictor")
        axis.set(xlabel="training step", ylabel="training loss", title=key, yscale="log")
        axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    check_config(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    metrics: dict[str, float] = {}
    outcomes: dict[str, dict] = {}
    chance: dict[str, float] = {}
    details: dict = {}
    for key in cfg.tasks:
        arm = make_arm(key, cfg)
        outcomes[key] = run_arm(arm, cfg, device)
        chance[key] = arm.task.chance
        metrics.update(metrics_of(key, outcomes[key]))
        details[key] = {
            "length": arm.task.length,
            "chance_loss": arm.task.chance,
            "parameters": outcomes[key]["parameters"],
            "tcn_receptive_field": outcomes[key]["receptive_field"],
            "test": outcomes[key]["test"],
            "steps": arm.steps if cfg.ablation != "untrained" else 0,
        }
    figures = {"training_curves": _curves_figure(outcomes, chance)} if cfg.ablation != "untrained" else {}
    notes = [
        "Every model of a task is trained on the same batches with Adam at the task's learning rate; "
        "the paper grid-searches the recurrent networks' optimiser, learning rate, clipping and "
        "forget-gate bias, which the quick budget does not allow (all models: Adam, clip 1.0, PyTorch's "
        "default initialisation).",
        "Recurrent baselines are one-layer LSTM/GRU with a linear output, their hidden size chosen to "
        "match the TCN's parameter count (details.<task>.parameters).",
        "Token inputs (copy memory, characters) go through an embedding in every model; the authors' "
        "copy-memory code feeds each digit as one real number.",
    ]
    if "char_lm" in cfg.tasks:
        notes.append(
            "char_lm: Tiny Shakespeare stands in for Penn Treebank (not staged), trained with Adam where "
            "the paper uses SGD at lr 4; bits per character are not comparable with Table 1's."
        )
    alone = [key for key in cfg.tasks if key not in cfg.baseline_tasks]
    if alone and any(name != "tcn" for name in cfg.models):
        notes.append(f"no recurrent baselines were trained on: {', '.join(alone)} (baseline_tasks).")
    if cfg.ablation != "none":
        notes.append(f"ablation={cfg.ablation}: the quick claims are expected to fail.")
    if cfg.scale == "quick":
        notes.append(
            f"quick: adding T = {cfg.adding_length}, copy memory with {cfg.copy_blank} blanks, "
            "~10K-parameter models, a few hundred steps; Table 1 uses T = 600 / 1000 and thousands of steps."
        )
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
