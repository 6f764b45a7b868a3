"""The training loop the diffusion experiments share: a denoiser trained on a dataset of images with
any extra model inputs, EMA weights, uniform or importance-sampled timesteps, checkpoint and resume.

Data is a dict of tensors with the same first dimension: ``"x0"`` (images in [−1, 1]) and any model
inputs by their keyword (``"class_labels"``, a control image ``"condition"``, SDXL's size/crop
conditioning …). Each step draws a random mini-batch, optionally rewrites the model inputs with
``kwargs_transform(kwargs, generator)`` (classifier-free guidance drops labels there), draws
timesteps (uniform, or Eq. 18's importance sampling for L_vlb), and takes one optimiser step on
``diffusion.training_losses``; the EMA of the weights is updated after every step (and is what
sampling should use).

With ``checkpoint`` (a folder), the whole state (model, EMA, optimiser, timestep sampler, step, RNGs,
losses so far) is saved every ``checkpoint_every`` steps and at the end; a rerun with the same
configuration resumes from it and ends with the same weights as an uninterrupted run, and a rerun
with another configuration is refused (:class:`aicanon.core.checkpoint.CheckpointMismatch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core import track
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.core.device import autocast
from aicanon.core.ema import EMA
from aicanon.generative.diffusion.gaussian import LOSSES, GaussianDiffusion
from aicanon.generative.diffusion.timestep_sampling import LossSecondMomentSampler, TimestepSampler

__all__ = ["DenoiserTraining", "TrainedDenoiser", "train_denoiser"]


@dataclass(frozen=True)
class DenoiserTraining:
    """Settings of :func:`train_denoiser`."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    loss: str = "simple"
    """``"simple"``, ``"hybrid"`` or ``"vlb"`` (:meth:`GaussianDiffusion.training_losses`)."""
    vlb_weight: float = 0.001
    importance_sampling: bool = False
    """Eq. 18's loss-aware timestep sampling (meant for ``loss="vlb"``)."""
    ema_decay: float = 0.999
    grad_clip: float | None = 1.0
    weight_decay: float = 0.0
    checkpoint_every: int = 500
    extra: dict[str, Any] = field(default_factory=dict)
    """Settings of the caller's ``kwargs_transform`` (recorded in checkpoints so a change refuses resume)."""

    def __post_init__(self) -> None:
        check_int("steps", self.steps)
        check_int("batch_size", self.batch_size)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_choice("loss", self.loss, LOSSES)
        check_float("vlb_weight", self.vlb_weight, 0.0, finite=True)
        check_float("ema_decay", self.ema_decay, 0.0, 1.0)
        check_float("grad_clip", self.grad_clip, 0.0, min_inclusive=False, allow_none=True)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_int("checkpoint_every", self.checkpoint_every)


@dataclass
class TrainedDenoiser:
    """The trained model, its EMA (sample with ``ema.average``) and the per-step mean losses."""

    model: nn.Module
    ema: EMA
    losses: list[float]
    resumed_from: int = 0


KwargsTransform = Callable[[dict[str, Tensor], torch.Generator], dict[str, Tensor]]


def _check_data(data: dict[str, Tensor]) -> int:
    if not isinstance(data, dict) or "x0" not in data:
        raise ValueError("data must be a dict of tensors with the images under 'x0'")
    check_tensor("data['x0']", data["x0"], floating=True)
    count = data["x0"].shape[0]
    for key, value in data.items():
        check_tensor(f"data[{key!r}]", value)
        if value.shape[0] != count:
            raise ValueError(f"data[{key!r}] has {value.shape[0]} rows, data['x0'] has {count}")
    return count


def train_denoiser(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    data: dict[str, Tensor],
    cfg: DenoiserTraining,
    *,
    generator: torch.Generator,
    kwargs_transform: KwargsTransform | None = None,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    description: str = "training the denoiser",
) -> TrainedDenoiser:
    """Train ``model`` (in place) on ``data`` under ``diffusion`` (module docstring)."""
    if not isinstance(cfg, DenoiserTraining):
        raise TypeError(f"cfg must be a DenoiserTraining, got {type(cfg).__name__}")
    count = _check_data(data)
    device = torch.device(device)
    model.to(device).train()
    diffusion = diffusion.to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    sampler: TimestepSampler = (
        LossSecondMomentSampler(diffusion.num_timesteps)
        if cfg.importance_sampling
        else TimestepSampler(diffusion.num_timesteps)
    )
    losses: list[float] = []
    checkpoints = LoopCheckpoints(  # the global RNGs (dropout) are saved with these
        checkpoint,
        cfg.checkpoint_every,
        config=asdict(cfg),
        model=model,
        ema=ema,
        optimizer=optimizer,
        generator=generator,
        losses=losses,
        **({"sampler": sampler} if isinstance(sampler, LossSecondMomentSampler) else {}),
    )
    start = checkpoints.resume()
    for step in track(range(start, cfg.steps), description=description, total=cfg.steps - start):
        index = torch.randint(0, count, (cfg.batch_size,), generator=generator)
        x0 = data["x0"][index].to(device)
        kwargs = {k: v[index].to(device) for k, v in data.items() if k != "x0"}
        if kwargs_transform is not None:
            kwargs = kwargs_transform(kwargs, generator)
        t, weights = sampler.sample(cfg.batch_size, generator=generator, device=device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        with autocast(device):
            terms = diffusion.training_losses(
                model, x0, t, loss=cfg.loss, vlb_weight=cfg.vlb_weight, noise=noise, model_kwargs=kwargs
            )
        loss = (terms["loss"].float() * weights).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the diffusion loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(parameters, cfg.grad_clip)
        optimizer.step()
        ema.update(model)
        sampler.update(t.cpu(), (terms["vb"] if "vb" in terms else terms["loss"]).detach().float().cpu())
        losses.append(loss.item())
        checkpoints.done(step + 1, cfg.steps)
    model.eval()
    return TrainedDenoiser(model, ema, losses, resumed_from=start)
