"""Pre-training a causal LM with the Llama 2 recipe (Touvron et al. 2023, Section 2.2).

AdamW with ``beta1 = 0.9, beta2 = 0.95, eps = 1e-5``, weight decay 0.1, a cosine learning-rate schedule
with linear warmup that decays to 10 % of the peak, and gradient clipping at norm 1.0. Loss is the
mean next-token cross-entropy (nats). On CUDA the forward runs under bf16 autocast.

Weight decay is applied to matrices and embeddings only, not to norm gains or biases (the paper does
not say; this is the common practice of open LLM training code, and decaying RMSNorm gains towards 0
would shrink every block's input).

``train_lm`` is the loop every small language-model experiment here shares. ``extra_loss(model)``,
when given, is added to the LM loss after each forward: Switch Transformer's load-balancing loss is
collected that way. Evaluation (:func:`evaluate_lm`) reads fixed windows of the validation ids (its
own generator, seeded 0 by default), so models compared in one experiment see the same text.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_int
from aicanon.core.device import autocast
from aicanon.core.progress import track
from aicanon.datasets.text import random_batch

__all__ = ["PretrainConfig", "cosine_lr", "evaluate_lm", "lm_loss", "make_optimizer", "train_lm"]


@dataclass
class PretrainConfig:
    """Optimisation settings; defaults are Llama 2's (Section 2.2) except the step count and sizes."""

    steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    lr: float = 3e-4
    """Peak learning rate (Llama 2: 3e-4 for 7B/13B, 1.5e-4 for 34B/70B)."""
    warmup_steps: int = 100
    """Linear warmup (Llama 2: 2000 steps)."""
    min_lr_ratio: float = 0.1
    """The cosine decays to this fraction of the peak (Llama 2: 10 %)."""
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-5
    grad_clip: float = 1.0
    eval_every: int = 0
    """Evaluate every this many steps (0 = only at the end)."""
    eval_batches: int = 8

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "eval_batches"):
            check_int(name, getattr(self, name))
        if self.warmup_steps < 0 or self.eval_every < 0:
            raise ValueError(
                f"warmup_steps and eval_every must be >= 0, got {self.warmup_steps} and {self.eval_every}"
            )
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"lr must be > 0 and min_lr_ratio in [0, 1], got {self.lr} and {self.min_lr_ratio}"
            )


def cosine_lr(step: int, cfg: PretrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warmup to ``lr``, cosine to ``min_lr_ratio * lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: PretrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on parameters of two or more dimensions only (see the module docstring)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy of ``logits [B, T, V]`` against ``targets [B, T]`` (float32)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def evaluate_lm(
    model: nn.Module,
    ids: Tensor,
    seq_len: int,
    batch_size: int = 16,
    n_batches: int = 8,
    generator: torch.Generator | None = None,
) -> float:
    """Mean next-token cross-entropy (nats) over ``n_batches`` random windows of ``ids``."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        for _ in range(n_batches):
            x, y = random_batch(ids, batch_size, seq_len, generator)
            with autocast(device):
                total += float(lm_loss(_logits(model, x.to(device)), y.to(device)))
    finally:
        model.train(was_training)
    return total / n_batches


def train_lm(
    model: nn.Module,
    train_ids: Tensor,
    val_ids: Tensor | None,
    cfg: PretrainConfig,
    generator: torch.Generator | None = None,
    extra_loss: Callable[[nn.Module], Tensor] | None = None,
    description: str = "pre-training",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
) -> dict:
    """Train ``model`` on random windows of ``train_ids``; returns the loss history.

    History keys: ``train_loss`` (per step), ``lr`` (per step), ``val`` (list of ``[step, loss]`` at
    each evaluation, the last after the final step when ``val_ids`` is given) and ``final_val_loss``.

    With ``checkpoint`` (a folder), the loop's whole state (weights, AdamW, the batch generator, the
    history, the global RNGs) is saved there every ``checkpoint_every`` steps and at the end, and a
    checkpoint found there (from a run with the same ``cfg``) is resumed: a killed run ends with the
    weights and history of an uninterrupted one. The caller removes the folder when done with it.
    """
    if not isinstance(cfg, PretrainConfig):
        raise TypeError(f"cfg must be a PretrainConfig, got {type(cfg).__name__}")
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, cfg)
    history: dict = {"train_loss": [], "lr": [], "val": [], "final_val_loss": None}
    checkpoints = LoopCheckpoints(
        checkpoint,
        checkpoint_every,
        config={"pretrain": asdict(cfg), "description": description},
        model=model,
        optimizer=optimizer,
        history=history,
        **({"batches": generator} if generator is not None else {}),
    )
    start = checkpoints.resume()
    model.train()
    for step in track(range(start, cfg.steps), description, total=cfg.steps - start):
        lr = cosine_lr(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = random_batch(train_ids, cfg.batch_size, cfg.seq_len, generator)
        x, y = x.to(device), y.to(device)
        with autocast(device):
            loss = lm_loss(_logits(model, x), y)
            total = loss + extra_loss(model) if extra_loss is not None else loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        history["train_loss"].append(float(loss.detach()))
        history["lr"].append(lr)
        if (
            val_ids is not None
            and cfg.eval_every
            and (step + 1) % cfg.eval_every == 0
            and step + 1 < cfg.steps
        ):
            history["val"].append(
                [step + 1, evaluate_lm(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)]
            )
        checkpoints.done(step + 1, cfg.steps)
    if val_ids is not None:
        final = evaluate_lm(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
        history["val"].append([cfg.steps, final])
        history["final_val_loss"] = final
    return history
