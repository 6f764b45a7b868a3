"""Training and evaluating image classifiers on in-memory tensors: the loop the small-data vision
experiments share (ViT vs ResNet vs Mixer data fractions, DeiT's distillation, Swin).

AdamW with linear warmup and cosine decay to zero (the schedule of ViT, Appendix B.1, and DeiT), an
optional label smoothing and gradient clipping at norm 1 (ViT's setting). ``loss_fn(model, x, y)``
replaces the cross-entropy when a method trains with another objective (DeiT's distillation).
:func:`stratified_subset` draws a class-balanced fraction of a training set, so the data-fraction
experiments vary the amount of data and not the class mix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
) -> list[float]:
    """Train ``model`` on random minibatches of ``(x, y)``; returns the loss per step."""
    _check_data(x, y)
    if not isinstance(cfg, ClassifierConfig):
        raise TypeError(f"cfg must be a ClassifierConfig, got {type(cfg).__name__}")
    device = next(model.parameters()).device
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    plain = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    losses = []
    model.train()
    for step in track(range(cfg.steps), description, total=cfg.steps):
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
    return losses


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
