"""Training and evaluating image classifiers on in-memory tensors: the loop the small-data vision
experiments share (ViT vs ResNet vs Mixer data fractions, DeiT's distillation, Swin).

AdamW with linear warmup and cosine decay to zero (the schedule of ViT, Appendix B.1, and DeiT), an
optional label smoothing and gradient clipping at norm 1 (ViT's setting). ``loss_fn(model, x, y)``
replaces the cross-entropy when a method trains with another objective (DeiT's distillation).
:func:`stratified_subset` draws a class-balanced fraction of a training set, so the data-fraction
experiments vary the amount of data and not the class mix.

**Checkpoint/resume.** With ``checkpoint_dir``, :func:`train_classifier` saves (atomically, with
:func:`aicanon.core.checkpoint.save_checkpoint`) the model and optimiser state, the step (which is
also the position in the learning-rate schedule, a pure function of it), the minibatch generator's
state, the global RNG states and the loss trace, every ``checkpoint_every`` steps and at the end. A
rerun with the same arguments continues from the newest checkpoint and ends bit-identical to an
uninterrupted run; a rerun with another config (or other data size, generator seed, model, loss or
augmentation) raises :class:`~aicanon.core.checkpoint.CheckpointMismatch`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.checks import check_float, check_int
from aicanon.core.device import autocast
from aicanon.core.progress import track

__all__ = ["ClassifierConfig", "accuracy", "predict_logits", "stratified_subset", "train_classifier"]


@dataclass
class ClassifierConfig:
    """Optimisation of a classifier; ``steps`` counts minibatches."""

    steps: int = 500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    label_smoothing: float = 0.0
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        check_int("steps", self.steps)
        check_int("batch_size", self.batch_size)
        check_float("lr", self.lr, 0, min_inclusive=False)
        check_int("warmup_steps", self.warmup_steps, 0)
        check_float("label_smoothing", self.label_smoothing, 0, 1, max_inclusive=False)


def _lr(step: int, cfg: ClassifierConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _check_data(x: Tensor, y: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.shape[0] != y.shape[0] or y.dim() != 1:
        raise ValueError(
            f"x and y must be tensors with one label per example, got x {getattr(x, 'shape', type(x))} "
            f"and y {getattr(y, 'shape', type(y))}"
        )
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one example")


def stratified_subset(y: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """Indices of a random ``fraction`` of each class of ``y`` (at least one example per class)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    picked = []
    for label in torch.unique(y):
        members = torch.nonzero(y == label).flatten()
        count = max(1, round(fraction * members.numel()))
        picked.append(members[torch.randperm(members.numel(), generator=generator)[:count]])
    return torch.cat(picked).sort().values


def train_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    cfg: ClassifierConfig,
    generator: torch.Generator | None = None,
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
    augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
    description: str = "training",
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    stop_after: int | None = None,
) -> list[float]:
    """Train ``model`` on random minibatches of ``(x, y)``; returns the loss per step.

    With ``checkpoint_dir`` the run is resumable (see the module docstring): a checkpoint is written
    every ``checkpoint_every`` steps (0: only at the end) and a rerun continues from the newest one;
    a finished run's rerun trains no further and returns the saved trace. ``stop_after`` ends the
    run after that many steps in total, without a checkpoint of its own -- a stand-in for a killed
    job, for tests; the trace returned is then the partial one.
    """
    _check_data(x, y)
    if not isinstance(cfg, ClassifierConfig):
        raise TypeError(f"cfg must be a ClassifierConfig, got {type(cfg).__name__}")
    check_int("checkpoint_every", checkpoint_every, 0)
    if checkpoint_every and checkpoint_dir is None:
        raise ValueError("checkpoint_every needs checkpoint_dir, got None")
    check_int("stop_after", stop_after, 1, allow_none=True)
    device = next(model.parameters()).device
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    plain = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    losses: list[float] = []
    start = 0
    if checkpoint_dir is not None:
        run_config = _run_config(model, x, cfg, generator, loss_fn, augment)
        state = load_checkpoint(checkpoint_dir, config=run_config)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if generator is not None:
                generator.set_state(state["generator"])
            _set_rng(state["rng"], device)
            start, losses = int(state["step"]), list(state["losses"])
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    model.train()
    for step in track(range(start, end), description, total=end - start):
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, cfg)
        index = torch.randint(0, x.shape[0], (min(cfg.batch_size, x.shape[0]),), generator=generator)
        xb, yb = x[index], y[index]
        if augment is not None:
            xb = augment(xb, generator)
        xb, yb = xb.to(device), yb.to(device)
        with autocast(device):
            if loss_fn is not None:
                loss = loss_fn(model, xb, yb)
            else:
                loss = F.cross_entropy(model(xb).float(), yb, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if checkpoint_dir is not None and (
            done == cfg.steps or (checkpoint_every and done % checkpoint_every == 0)
        ):
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state() if generator is not None else None,
                "rng": _rng(device),
                "step": done,
                "losses": losses,
            }
            save_checkpoint(checkpoint_dir, state, config=run_config)
    return losses


def _run_config(
    model: nn.Module,
    x: Tensor,
    cfg: ClassifierConfig,
    generator: torch.Generator | None,
    loss_fn: Callable | None,
    augment: Callable | None,
) -> dict[str, Any]:
    """What a checkpoint must share with the run resuming it. The data's shape and the generator's
    seed tell one fraction or seed from another (a content hash would cost a pass over the data);
    callables are compared by name, which catches a swapped objective but not an edited one."""

    def name(fn: Callable | None) -> str | None:
        return None if fn is None else getattr(fn, "__qualname__", type(fn).__name__)

    return {
        "classifier": asdict(cfg),
        "data_shape": list(x.shape),
        "generator_seed": generator.initial_seed() if generator is not None else None,
        "model": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_fn": name(loss_fn),
        "augment": name(augment),
    }


def _rng(device: torch.device) -> dict[str, Any]:
    # rng_state() covers the CPU generators; dropout on a GPU draws from that device's own generator.
    state = rng_state()
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng(state: dict[str, Any], device: torch.device) -> None:
    set_rng_state(state)
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@torch.no_grad()
def predict_logits(model: nn.Module, x: Tensor, batch_size: int = 512) -> Tensor:
    """Logits of ``model`` on ``x`` in evaluation mode, batch by batch (on CPU)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outs = []
        for start in range(0, x.shape[0], batch_size):
            with autocast(device):
                outs.append(model(x[start : start + batch_size].to(device)).float().cpu())
        return torch.cat(outs)
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in [0, 1]."""
    _check_data(x, y)
    return float((predict_logits(model, x, batch_size).argmax(-1) == y).float().mean())
