"""Testbed: guided sampling of 8×8 digits, shared by the classifier-guidance (Dhariwal & Nichol 2021)
and classifier-free guidance (Ho & Salimans 2022) experiments.

Two models, each trained once per configuration and cached (``results_dir()/_cache/guided_digits/
<denoiser|classifier>/<hash of the config>``; ``cache=""`` retrains every call):

* :func:`joint_denoiser`: one class-conditional ADM-style UNet (AdaGN, BigGAN resampling blocks,
  attention at the lowest level with 32 channels per head (ADM: 64, wider than these nets), class
  embedding) on scikit-learn's 8×8
  digits, trained with label dropout (p_uncond) to the null label ``10``, so the same network is
  the conditional model ε(z, c), the unconditional model ε(z) = ε(z, ∅), and the pair
  classifier-free guidance combines. Sampling uses its EMA weights.
* :func:`noise_aware_classifier`: the noise-aware classifier of classifier guidance
  (:class:`~aicanon.generative.diffusion.classifier_guidance.NoisyClassifier`), trained on
  q_sample'd digits with the timestep given, under the denoiser's noise schedule.

:class:`SampleJudge` scores generated digits with the independent judge
(:func:`aicanon.testbeds.digit_judge.digit_judge`, never the guiding classifier): fidelity (the share
it assigns to the requested class, and its confidence), precision and recall (Kynkäänniemi et al.,
k = 3) and the Fréchet distance, both on the judge's penultimate features against the real test
digits ("FD on the judge's features", not FID).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core import track
from aicanon.core.checkpoint import load_checkpoint, save_checkpoint
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.core.results import results_dir
from aicanon.generative.diffusion.classifier_free import label_dropout
from aicanon.generative.diffusion.classifier_guidance import (
    NoisyClassifier,
    NoisyClassifierConfig,
    classifier_loss,
)
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.respace import respace, space_timesteps
from aicanon.generative.diffusion.schedules import make_betas
from aicanon.generative.diffusion.unet import UNet, UNetConfig
from aicanon.generative.sample_metrics import frechet_distance, precision_recall
from aicanon.testbeds.diffusion_training import DenoiserTraining, train_denoiser
from aicanon.testbeds.digit_judge import digit_images, digit_judge

__all__ = [
    "NULL_LABEL",
    "NUM_CLASSES",
    "ClassifierConfig",
    "DenoiserConfig",
    "JointDenoiser",
    "SampleJudge",
    "cache_folder",
    "classifier_config",
    "denoiser_config",
    "joint_denoiser",
    "make_diffusion",
    "noise_aware_classifier",
    "recall_at_fidelity",
    "sample_digits",
    "sample_figure",
]

NUM_CLASSES = 10
NULL_LABEL = NUM_CLASSES
"""The label of the unconditional model (∅): an extra class embedding."""


def _key(config: Any) -> str:
    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]


def cache_folder(cache: str | Path | None, kind: str) -> Path | None:
    """None: ``results_dir()/_cache/guided_digits/<kind>``; ``""``: no cache; else ``cache/<kind>``."""
    if cache == "":
        return None
    base = Path(cache) if cache is not None else results_dir() / "_cache" / "guided_digits"
    return base / kind


def make_diffusion(schedule: str = "cosine", timesteps: int = 1000) -> GaussianDiffusion:
    """The ε-predicting diffusion with fixed small variances that both models are trained under."""
    return GaussianDiffusion(make_betas(schedule, timesteps), prediction="epsilon", variance="fixed_small")


@dataclass(frozen=True)
class DenoiserConfig:
    """The joint conditional/unconditional denoiser and its training (defaults: the quick runs')."""

    widths: tuple[int, ...] = (16, 32)
    """UNet widths per level (8×8 and 4×4)."""
    layers_per_block: int = 1
    attention_head_dim: int = 32
    """Channels per attention head (ADM: 64) at the lowest level and in the middle block."""
    time_scale_shift: bool = True
    """AdaGN (ADM Section 3)."""
    resample: str = "resnet"
    """BigGAN residual up/down-sampling blocks (ADM Section 3)."""
    residual_scale: float = 1.0
    """ADM's 1/√2 rescaling is √2 here; left at 1 for these two-level nets (the paper found it no help)."""
    schedule: str = "cosine"
    timesteps: int = 1000
    p_uncond: float = 0.2
    """Probability of dropping a label to the null label (Ho & Salimans Algorithm 1)."""
    steps: int = 400
    batch_size: int = 64
    lr: float = 3e-3
    ema_decay: float = 0.99
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("layers_per_block", self.layers_per_block)
        check_int("steps", self.steps)
        check_int("batch_size", self.batch_size)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_probability("p_uncond", self.p_uncond)
        check_choice("resample", self.resample, ("conv", "resnet"))
        check_int("seed", self.seed, 0)
        self.unet()

    def unet(self) -> UNetConfig:
        levels = len(self.widths)
        return UNetConfig(
            in_channels=1,
            out_channels=1,
            block_out_channels=tuple(self.widths),
            layers_per_block=self.layers_per_block,
            attention_levels=tuple(i == levels - 1 for i in range(levels)),
            attention_head_dim=self.attention_head_dim,
            mid_attention=True,
            mid_attention_norm=not self.time_scale_shift,
            num_classes=NUM_CLASSES + 1,
            time_scale_shift=self.time_scale_shift,
            resample=self.resample,
            norm_groups=min(32, min(self.widths)),
            residual_scale=self.residual_scale,
        )


@dataclass(frozen=True)
class ClassifierConfig:
    """The noise-aware classifier and its training; the schedule must be the denoiser's."""

    widths: tuple[int, ...] = (16, 32)
    layers_per_block: int = 1
    attention_head_dim: int = 32
    pool: str = "attention"
    schedule: str = "cosine"
    timesteps: int = 1000
    steps: int = 300
    """Optimiser steps; 0 gives the untrained classifier (the ablation)."""
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 0)
        check_int("batch_size", self.batch_size)
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_int("seed", self.seed, 0)
        self.network()

    def network(self) -> NoisyClassifierConfig:
        levels = len(self.widths)
        return NoisyClassifierConfig(
            in_channels=1,
            image_size=8,
            num_classes=NUM_CLASSES,
            block_out_channels=tuple(self.widths),
            layers_per_block=self.layers_per_block,
            attention_levels=tuple(i == levels - 1 for i in range(levels)),
            attention_head_dim=self.attention_head_dim,
            norm_groups=min(32, min(self.widths)),
            pool=self.pool,
        )


@dataclass
class JointDenoiser:
    """The EMA weights of the joint model (``model(x_t, t, class_labels=…)``; label 10 is ∅), the
    diffusion it was trained under, and its training losses."""

    model: UNet
    diffusion: GaussianDiffusion
    losses: list[float]
    config: DenoiserConfig


def denoiser_config(settings: Any) -> DenoiserConfig:
    """The :class:`DenoiserConfig` an experiment's config names by its fields (``widths``,
    ``layers_per_block``, ``attention_head_dim``, ``timesteps``, ``p_uncond``, ``denoiser_steps``,
    ``batch_size``, ``lr``, ``ema_decay``, ``seed``): both guidance experiments share the model."""
    return DenoiserConfig(
        widths=tuple(settings.widths),
        layers_per_block=settings.layers_per_block,
        attention_head_dim=settings.attention_head_dim,
        timesteps=settings.timesteps,
        p_uncond=settings.p_uncond,
        steps=settings.denoiser_steps,
        batch_size=settings.batch_size,
        lr=settings.lr,
        ema_decay=settings.ema_decay,
        seed=settings.seed,
    )


def classifier_config(settings: Any) -> ClassifierConfig:
    """The :class:`ClassifierConfig` an experiment's config names by its fields (``widths``,
    ``layers_per_block``, ``attention_head_dim``, ``timesteps``, ``classifier_steps``,
    ``classifier_batch_size``, ``classifier_lr``, ``seed``)."""
    return ClassifierConfig(
        widths=tuple(settings.widths),
        layers_per_block=settings.layers_per_block,
        attention_head_dim=settings.attention_head_dim,
        timesteps=settings.timesteps,
        steps=settings.classifier_steps,
        batch_size=settings.classifier_batch_size,
        lr=settings.classifier_lr,
        seed=settings.seed,
    )


def joint_denoiser(
    cfg: DenoiserConfig, *, cache: str | Path | None = None, device: torch.device | str = "cpu"
) -> JointDenoiser:
    """The trained joint denoiser of ``cfg`` (from the cache when trained before; module docstring)."""
    if not isinstance(cfg, DenoiserConfig):
        raise TypeError(f"cfg must be a DenoiserConfig, got {type(cfg).__name__}")
    diffusion = make_diffusion(cfg.schedule, cfg.timesteps)
    folder = cache_folder(cache, "denoiser")
    folder = folder / _key(cfg) if folder is not None else None
    model = UNet(cfg.unet())
    if folder is not None and folder.exists():
        state = load_checkpoint(folder, config=asdict(cfg))
        if state is not None:
            model.load_state_dict(state["ema"])
            return JointDenoiser(model.to(device).eval(), diffusion.to(device), list(state["losses"]), cfg)
    images, labels = digit_images("digits8", "train")
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = UNet(cfg.unet())  # initialised under the seed
    trained = train_denoiser(
        model,
        diffusion,
        {"x0": images, "class_labels": labels},
        DenoiserTraining(
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            ema_decay=cfg.ema_decay,
            checkpoint_every=10**9,
            extra={"p_uncond": cfg.p_uncond},
        ),
        generator=generator,
        kwargs_transform=label_dropout(cfg.p_uncond, NULL_LABEL),
        device=device,
        description="training the joint denoiser",
    )
    average = trained.ema.average
    if folder is not None:
        state = {
            "ema": {k: v.detach().cpu() for k, v in average.state_dict().items()},
            "losses": trained.losses,
        }
        save_checkpoint(folder, state, config=asdict(cfg))
    return JointDenoiser(average.to(device).eval(), diffusion.to(device), trained.losses, cfg)


def noise_aware_classifier(
    cfg: ClassifierConfig, *, cache: str | Path | None = None, device: torch.device | str = "cpu"
) -> NoisyClassifier:
    """The noise-aware classifier of ``cfg`` (eval mode), trained with
    :func:`~aicanon.generative.diffusion.classifier_guidance.classifier_loss` on noised training
    digits (AdamW, uniform t), from the cache when trained before."""
    if not isinstance(cfg, ClassifierConfig):
        raise TypeError(f"cfg must be a ClassifierConfig, got {type(cfg).__name__}")
    folder = cache_folder(cache, "classifier")
    folder = folder / _key(cfg) if folder is not None else None
    torch.manual_seed(cfg.seed)
    classifier = NoisyClassifier(cfg.network())
    if folder is not None and folder.exists():
        state = load_checkpoint(folder, config=asdict(cfg))
        if state is not None:
            classifier.load_state_dict(state["model"])
            return classifier.to(device).eval()
    images, labels = digit_images("digits8", "train")
    diffusion = make_diffusion(cfg.schedule, cfg.timesteps).to(device)
    classifier.to(device).train()
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=cfg.lr, weight_decay=0.05)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in track(range(cfg.steps), description="training the noise-aware classifier"):
        index = torch.randint(0, len(images), (cfg.batch_size,), generator=generator)
        terms = classifier_loss(
            classifier, diffusion, images[index].to(device), labels[index].to(device), generator=generator
        )
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].mean().backward()
        nn.utils.clip_grad_norm_(classifier.parameters(), 1.0)
        optimizer.step()
    classifier.eval()
    if folder is not None:
        state = {"model": {k: v.detach().cpu() for k, v in classifier.state_dict().items()}}
        save_checkpoint(folder, state, config=asdict(cfg))
    return classifier


def sample_digits(
    model: Any,
    diffusion: GaussianDiffusion,
    labels: Tensor,
    *,
    steps: int,
    model_kwargs: dict[str, Tensor] | None = None,
    cond_fn: Any = None,
    method: str = "ancestral",
    generator: torch.Generator,
) -> Tensor:
    """Digits ``[N, 1, 8, 8]`` (clipped to [−1, 1]) from ``model`` on ``steps`` evenly respaced steps
    of ``diffusion``, one batch; ``model_kwargs`` default to ``{"class_labels": labels}``;
    ``cond_fn`` is classifier guidance (built for these ``labels``)."""
    check_int("steps", steps)
    device = labels.device
    chain = respace(diffusion, space_timesteps(diffusion.num_timesteps, steps)).to(device)
    kwargs = {"class_labels": labels} if model_kwargs is None else model_kwargs
    # the generator may live on the device (the samplers draw their noise with it there)
    noise = torch.randn((len(labels), 1, 8, 8), generator=generator, device=generator.device).to(device)
    images = chain.sample(
        model,
        (len(labels), 1, 8, 8),
        method=method,
        noise=noise,
        model_kwargs=kwargs,
        cond_fn=cond_fn,
        generator=generator,
        device=device,
    )
    return images.clamp(-1, 1)


class SampleJudge:
    """Fidelity, precision/recall and FD of generated digits by the independent judge (module
    docstring); the real side is the digits8 test split."""

    def __init__(self, cache: str | Path | None = None, k: int = 3) -> None:
        judge_cache = None if cache is None else ("" if cache == "" else Path(cache) / "judge")
        self.judge = digit_judge("digits8", cache=judge_cache)
        self.k = check_int("k", k)
        real, _ = digit_images("digits8", "test")
        self.real_features = self.judge.features(real)

    def __call__(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        images, labels = images.detach().float().cpu(), labels.cpu()
        fidelity = self.judge.fidelity(images, labels)
        fake = self.judge.features(images)
        precision, recall = precision_recall(self.real_features, fake, k=self.k)
        return {
            "fidelity": fidelity["accuracy"],
            "confidence": fidelity["confidence"],
            "precision": precision,
            "recall": recall,
            "fd": frechet_distance(self.real_features, fake),
        }


def sample_figure(rows: dict[str, Tensor], per_row: int = 20) -> Any:
    """A matplotlib Figure with one row of ``per_row`` digits per entry of ``rows`` (name → images)."""
    from matplotlib.figure import Figure

    check_int("per_row", per_row)
    figure = Figure(figsize=(per_row * 0.45, len(rows) * 0.55 + 0.3), layout="constrained")
    axes = figure.subplots(len(rows), 1, squeeze=False)[:, 0]
    for axis, (name, images) in zip(axes, rows.items(), strict=True):
        strip = images[:per_row, 0].detach().cpu().float()
        strip = torch.cat([torch.nn.functional.pad(img, (0, 1), value=0.0) for img in strip], dim=1)
        axis.imshow(strip.numpy(), cmap="gray", vmin=-1, vmax=1)
        axis.set_axis_off()
        axis.set_title(name, fontsize=8, loc="left")
    return figure


def recall_at_fidelity(fidelities: list[float], recalls: list[float], target: float) -> float:
    """The recall where a guidance curve (points in order of increasing guidance) first reaches the
    fidelity ``target``, linearly interpolated between its two neighbouring points; the first point's
    recall when it is already there; NaN when the curve never reaches it."""
    check_float("target", target, 0.0, 1.0)
    if len(fidelities) != len(recalls) or not fidelities:
        raise ValueError("fidelities and recalls must be non-empty and of the same length")
    if fidelities[0] >= target:
        return float(recalls[0])
    for (f0, r0), (f1, r1) in zip(zip(fidelities, recalls), zip(fidelities[1:], recalls[1:])):
        if f1 >= target > f0:
            return float(r0 + (target - f0) / (f1 - f0) * (r1 - r0))
    return float("nan")
