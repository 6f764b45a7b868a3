"""Mamba (Gu & Dao 2023), Section 4.1: selection solves the synthetic tasks that time-invariant SSMs cannot.

The paper's two synthetic tasks (Section 4.1, Appendix E.1):

* **Selective copying** (Table 1): data tokens sit at random positions among noise tokens and must be
  reproduced in order after the sequence; the spacing varies, so a time-invariant (LTI) model cannot
  solve it with a fixed delay. Table 1 reports the accuracy of 2-layer models: the Mamba block with
  the selective S6 layer reaches 99.8 %, plain S4 (no gate) 18.3 %.
* **Induction heads** (Table 2): after a special token has been followed by some token once, the
  model must recall that token when the special token comes again. Mamba trained at length 256 solves
  it perfectly and extrapolates to every tested length up to 2^20 (Table 2 / Table 11), where
  attention models fail beyond about twice their training length.

Our protocol, per seed: train a 2-layer :class:`aicanon.language.mamba.MambaLM` (the paper's depth) on
fresh batches of each task (:mod:`aicanon.testbeds.sequence_tasks`), then measure the accuracy of its
predictions on fresh batches: at the scored positions for selective copying; at the last position
for induction heads, at the training length and at ``extrapolation`` times it. The ablation
(``selective=False``; Table 1's "S4" layer inside the Mamba architecture) makes Δ, B and C
input-independent and keeps everything else; with ``lti_baseline`` the run trains it beside the
selective model and reports its accuracies as ``lti_*``.

Departures from the paper, and why:

* Quick scale: shorter sequences (selective copying: 4 tokens among 16 positions, vocabulary 8,
  instead of 16 among 4096, vocabulary 16; induction heads trained at length 32, vocabulary 16,
  instead of 256), width 32 instead of 64, 600 and 300 steps at learning rate 0.01 instead of the
  paper's long runs: two CPU cores. The claims are the paper's points (selection solves both;
  induction heads extrapolate; the LTI ablation fails), at thresholds set from our runs.
* Selective copying is reported but **not claimed** at quick scale (a gap): within the quick budget
  the selective model's accuracy depends on the seed (seed 0: 99.4 % after 600 steps; seeds 1 and 2:
  57.7 % on average after 600 steps, 100 % and 66.2 % after 1000), because learning it is a sudden
  transition whose step varies by seed. Claiming it needs longer training (the full configuration).
  At this short length the LTI ablation is also *not* near chance on it (73 % for seed 0, chance
  17 %): with 16 positions a time-invariant model can still learn where tokens tend to sit (Table 1:
  56.4 % at length 4096). On induction heads the LTI model is near chance at the training length and
  at chance beyond it, while the selective model is at 100 % for seeds 0-2 at every tested length.
* Extrapolation is tested up to 16x the training length (512 steps at quick scale), not 4096x.
* The LTI ablation shares B and C across channels (S6's layout) where S4D has them per channel, and
  keeps the Mamba block (gate, convolution): it is Table 1's "Mamba + S4" row, not the "S4" row.
* The full configuration follows Appendix E.1 where the paper gives the settings (selective copying:
  length 4096, 16 tokens, vocabulary 16, d_model 64, 2 layers; induction heads: length 256,
  vocabulary 16, d_model 64, 2 layers); its step counts and learning rates are ours (marked
  "(unverified)" in ``Config.full``). Cost: selective copying at length 4096 with batch 64 is about
  64 x 4112 x 128 x 16 = 0.54 G state elements per layer per step; on one H100 with the Triton scan a
  step takes tens of milliseconds, so 20k steps are 10-30 minutes; on CPU it is out of reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.core.checks import check_int
from aicanon.language.mamba import MambaConfig, MambaLM
from aicanon.testbeds.sequence_tasks import (
    SequenceTask,
    evaluate_sequence_model,
    induction_heads,
    selective_copying,
    train_sequence_model,
)

TASKS = ("selective_copying", "induction_heads")


@dataclass
class Config(ExperimentConfig):
    tasks: tuple[str, ...] = TASKS
    """Which synthetic tasks to train on (Section 4.1)."""
    selective: bool = True
    """False: the LTI ablation (Δ, B, C input-independent), trained in place of the selective model."""
    lti_baseline: bool = False
    """Also train the LTI ablation and report its accuracies as ``lti_<metric>``."""
    d_model: int = 64
    """Model width (64 in Appendix E.1)."""
    n_layer: int = 2
    """Mamba blocks (2 in Section 4.1)."""
    d_state: int = 16
    """SSM state size N (16)."""
    copy_length: int = 4096
    """Selective copying: positions holding the data tokens among noise (4096)."""
    copy_memorize: int = 16
    """Selective copying: data tokens to copy (16)."""
    copy_vocab: int = 16
    """Selective copying: vocabulary including noise and delimiter (16)."""
    copy_steps: int = 20_000
    """Training steps on selective copying."""
    induction_length: int = 256
    """Induction heads: training sequence length (256 = 2^8, Table 2)."""
    induction_vocab: int = 16
    """Induction heads: vocabulary including the special token (16)."""
    induction_steps: int = 10_000
    """Training steps on induction heads."""
    extrapolation: tuple[int, ...] = (4, 16, 64, 256)
    """Test lengths as multiples of the training length (Table 2 goes to 4096x)."""
    batch_size: int = 64
    """Sequences per training step."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    eval_batches: int = 4
    """Fresh batches per evaluation."""
    eval_batch_size: int = 64
    """Sequences per evaluation batch."""

    @classmethod
    def quick(cls) -> Config:
        return cls(
            scale="quick",
            seeds=1,
            threads=1,
            d_model=32,
            copy_length=16,
            copy_memorize=4,
            copy_vocab=8,
            copy_steps=600,
            induction_length=32,
            induction_steps=300,
            extrapolation=(4, 16),
            batch_size=32,
            learning_rate=1e-2,
            eval_batches=2,
            eval_batch_size=64,
        )

    @classmethod
    def full(cls) -> Config:
        # Appendix E.1's tasks and model; steps and learning rate are ours (unverified against the paper).
        return cls(scale="full", seeds=3, lti_baseline=True)


# Paper numbers: Table 1 (Mamba + S6 99.8 %; S4 18.3 %) and Table 2 (Mamba: 100 % at every length).
# Quick thresholds from our runs (seeds 0-2: induction heads 100 % at 1x, 4x and 16x the training
# length; the LTI ablation 30 % at 1x and 5-8 % beyond, chance 6.7 %). Full thresholds: the paper's
# numbers less a margin for seed noise, unmeasured (no GPU run yet).
CLAIMS = [
    Claim(
        metric="selective_copying_accuracy",
        description="Mamba (selective S6) accuracy on selective copying",
        paper=99.8,
        source="Table 1, Mamba architecture with the S6 layer",
        quick=None,  # a gap: see the module docstring (seed-dependent at quick scale)
        full=97.0,
        unit="%",
    ),
    Claim(
        metric="induction_heads_accuracy",
        description="Mamba accuracy on induction heads at the training length",
        paper=100.0,
        source="Table 2 / Table 11, Mamba at the training length 2^8 (unverified digit)",
        quick=95.0,
        full=99.0,
        unit="%",
    ),
    Claim(
        metric="induction_heads_accuracy_x16",
        description="Mamba accuracy on induction heads at 16x the training length (extrapolation)",
        paper=100.0,
        source="Table 2 / Table 11, Mamba at 2^12 after training at 2^8 (unverified digit)",
        quick=90.0,
        full=99.0,
        unit="%",
    ),
    Claim(
        metric="lti_selective_copying_accuracy",
        description="the LTI ablation (Δ, B, C input-independent) on selective copying",
        paper=56.4,
        source="Table 1, Mamba architecture with the S4 layer (unverified)",
        quick=None,
        full=None,
        unit="%",
    ),
]


def build_model(cfg: Config, vocab_size: int, selective: bool) -> MambaLM:
    """The 2-layer Mamba language model of Section 4.1 (tied embedding and head) for ``vocab_size`` tokens."""
    return MambaLM(
        MambaConfig(
            d_model=cfg.d_model,
            n_layer=cfg.n_layer,
            vocab_size=vocab_size,
            d_state=cfg.d_state,
            selective=selective,
        )
    )


def train_and_evaluate(
    task: SequenceTask, steps: int, cfg: Config, selective: bool, device: torch.device, label: str
) -> tuple[MambaLM, list[float], dict[str, float]]:
    """Train a fresh model on ``task`` for ``steps`` steps; its training losses and accuracy (%)."""
    model = build_model(cfg, task.input_size, selective).to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    losses = train_sequence_model(
        model,
        task,
        steps=steps,
        batch_size=cfg.batch_size,
        lr=cfg.learning_rate,
        generator=generator,
        grad_clip=cfg.grad_clip,
        device=device,
        log_every=max(1, steps // 50),
        description=label,
    )
    evaluation = evaluate(model, task, cfg, device)
    return model, losses, evaluation


def evaluate(model: MambaLM, task: SequenceTask, cfg: Config, device: torch.device) -> dict[str, float]:
    # Evaluation batches come from their own stream, so they never repeat a training batch's draws.
    generator = torch.Generator().manual_seed(10_000 + cfg.seed)
    metrics = evaluate_sequence_model(
        model,
        task,
        batches=cfg.eval_batches,
        batch_size=cfg.eval_batch_size,
        generator=generator,
        device=device,
    )
    return {"accuracy": 100.0 * metrics["accuracy"], "loss": metrics["loss"]}


def run_arm(cfg: Config, selective: bool, device: torch.device, prefix: str) -> tuple[dict, dict, dict]:
    """Both tasks for one model kind; metrics (named with ``prefix``), curves and details."""
    metrics: dict[str, float] = {}
    curves: dict[str, list[float]] = {}
    details: dict[str, object] = {}
    kind = "Mamba" if selective else "LTI"
    if "selective_copying" in cfg.tasks:
        task = selective_copying(cfg.copy_length, memorize=cfg.copy_memorize, vocab=cfg.copy_vocab)
        _, losses, result = train_and_evaluate(task, cfg.copy_steps, cfg, selective, device, f"{kind} copy")
        metrics[f"{prefix}selective_copying_accuracy"] = result["accuracy"]
        curves[f"{kind} selective copying"] = losses
        details[f"{prefix}selective_copying"] = {**result, "chance_accuracy": 100.0 / (cfg.copy_vocab - 2)}
    if "induction_heads" in cfg.tasks:
        task = induction_heads(cfg.induction_length, vocab=cfg.induction_vocab)
        model, losses, result = train_and_evaluate(
            task, cfg.induction_steps, cfg, selective, device, f"{kind} induction"
        )
        metrics[f"{prefix}induction_heads_accuracy"] = result["accuracy"]
        curves[f"{kind} induction heads"] = losses
        by_length = {cfg.induction_length: result["accuracy"]}
        for factor in cfg.extrapolation:
            longer = induction_heads(cfg.induction_length * factor, vocab=cfg.induction_vocab)
            accuracy = evaluate(model, longer, cfg, device)["accuracy"]
            metrics[f"{prefix}induction_heads_accuracy_x{factor}"] = accuracy
            by_length[cfg.induction_length * factor] = accuracy
        details[f"{prefix}induction_heads"] = {
            "accuracy_by_length": {str(k): v for k, v in by_length.items()},
            "chance_accuracy": 100.0 / (cfg.induction_vocab - 1),
        }
    return metrics, curves, details


def _curve_figure(curves: dict[str, list[float]], steps: dict[str, int]) -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    for name, losses in curves.items():
        total = steps["copy"] if "copying" in name else steps["induction"]
        x = [round(i * total / max(1, len(losses) - 1)) for i in range(len(losses))]
        axis.plot(x, losses, label=name)
    axis.set(xlabel="training step", ylabel="cross-entropy (scored positions)", title="training loss")
    axis.legend(fontsize="small")
    return figure


def _extrapolation_figure(details: dict) -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    for key, label in (("induction_heads", "Mamba (selective)"), ("lti_induction_heads", "LTI ablation")):
        if key in details:
            points = sorted((int(k), v) for k, v in details[key]["accuracy_by_length"].items())
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
            chance = details[key]["chance_accuracy"]
    axis.axhline(chance, color="grey", linestyle=":", label="chance")
    axis.set_xscale("log", base=2)
    axis.set(xlabel="test sequence length", ylabel="accuracy (%)", title="induction heads: extrapolation")
    axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    if not cfg.tasks or any(task not in TASKS for task in cfg.tasks):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {cfg.tasks!r}")
    for name in ("copy_steps", "induction_steps", "batch_size", "d_model", "n_layer", "d_state"):
        check_int(name, getattr(cfg, name), 1)
    for factor in cfg.extrapolation:
        check_int("extrapolation factor", factor, 1)
    if not math.isfinite(cfg.learning_rate) or cfg.learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {cfg.learning_rate}")
    seed(cfg.seed)
    device = select_device(cfg.device)
    metrics, curves, details = run_arm(cfg, cfg.selective, device, prefix="")
    if cfg.lti_baseline and cfg.selective:
        seed(cfg.seed)
        lti_metrics, lti_curves, lti_details = run_arm(cfg, False, device, prefix="lti_")
        metrics.update(lti_metrics)
        curves.update(lti_curves)
        details.update(lti_details)

    figures = {
        "training_curves": _curve_figure(curves, {"copy": cfg.copy_steps, "induction": cfg.induction_steps})
    }
    if "induction_heads" in cfg.tasks:
        figures["extrapolation"] = _extrapolation_figure(details)
    notes = [
        "B̄ = Δ B (the Euler step the paper's kernel uses) rather than the exact ZOH formula for B.",
        "The LTI ablation keeps the Mamba block (gate, convolution) and shares B, C across channels: "
        "Table 1's 'Mamba + S4' row, not the plain 'S4' row.",
    ]
    if not cfg.selective:
        notes.append("selective=False: the LTI ablation was trained in place of Mamba.")
    if cfg.scale == "quick":
        notes.append(
            f"quick: width {cfg.d_model}; selective copying {cfg.copy_memorize} tokens among "
            f"{cfg.copy_length} positions (vocabulary {cfg.copy_vocab}), {cfg.copy_steps} steps; induction "
            f"heads trained at length {cfg.induction_length} for {cfg.induction_steps} steps; the paper: "
            "16 tokens among 4096, induction heads at 256."
        )
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
