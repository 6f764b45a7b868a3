"""SDXL's micro-conditioning and refinement stage on digits (Podell et al. 2023, Sections 2.2 and 2.5,
Figures 3 and 5).

The paper's point: conditioning the UNet on the original image size and on the crop coordinates
lets it train on small and randomly cropped images without their artefacts leaking into its samples,
and lets the user pick them at sampling time: a large c_size gives sharp, high-resolution-looking
samples where a small one gives blurry ones (Figure 3; Table 2 measures the gain on ImageNet),
c_crop = (0, 0) gives centred, uncut objects where a crop offset gives cut-off ones (Figures 4, 5).
A second model refines the first one's samples with SDEdit at low noise levels (Section 2.5).

The protocol, per seed (synthetic data, since no staged data set has image sizes and crops):

1. Training set: scikit-learn's 8×8 digits (1,347 training images), each drawn ``copies`` times with
   a fresh random history. With probability ``low_resolution_fraction`` the image was "originally"
   4×4: average-pooled to 4×4 and upsampled back bilinearly (blurry), c_size = (4, 4); otherwise
   c_size = (8, 8). With probability ``crop_fraction`` it was randomly cropped: c_top and c_left are
   uniform in {0, …, ``max_crop``} and the content moves up and left by them (what the crop cut off
   is gone, the background fills the bottom and right), as when a window is cropped from a larger
   image whose top-left corner held the digit; otherwise c_crop = (0, 0). The target size is 8×8.
2. The SDXL denoiser: the conditional UNet (cross-attention at the 4×4 level) with the pooled
   embedding and the six micro-conditioning scalars (:func:`micro_conditioning` order) added to the
   timestep embedding, and a pair of small text encoders reading class prompts (their penultimate
   states concatenated as the cross-attention context, the second one's pooled embedding as
   ``text_embeds``). ε-prediction, cosine schedule, T = 1000, L_simple, EMA weights.
3. Samples with the same noise (deterministic DDIM, like Figure 3's "same random seed") under three
   conditions: sharp (c_size 8, crop 0), blurry (c_size 4, crop 0) and cropped (c_size 8, crop
   (max_crop, max_crop)), ``samples_per_class`` per digit class.
4. Metrics:
   * ``sharpness_ratio``: the high-frequency energy (spectral power above 0.25 cycles/pixel, the
     Nyquist limit of a 4×4 original) of the c_size = 8 samples over that of the c_size = 4 samples.
     Figure 3's claim; the real data's own ratio (sharp over upsampled) is reported.
   * ``crop_shift``: how far (pixels, mean over both axes) the digit's centre of mass moves up-left
     from the crop-(0, 0) samples to the crop-(max_crop, max_crop) samples (``real_crop_shift``: the
     same crop applied to real digits), and ``centre_offset``: the distance of the crop-(0, 0)
     samples' mean centre of mass from that of uncropped real digits. Figure 5's claim: the crop
     condition is what puts the digit in the centre, uncut.
   * The refinement stage: a second denoiser (same architecture) trained on sharp, uncropped digits
     on the first ``refiner_timesteps`` noise scales only (the paper specialises its refiner on the
     first 200 of 1000); it refines the blurry samples by SDEdit with ``refine_strength``.
     ``refiner_sharpness_gain`` = high-frequency energy after / before refining.
   * ``sample_accuracy``: an independent digit classifier's accuracy on the sharp samples (fidelity to
     the class prompt), reported.

The ablation ``micro_conditioning=False`` trains and samples the same model with ``time_ids`` zeroed:
its three conditions give identical samples (sharpness ratio 1, shift 0) and its crop-(0, 0) samples
are the mixture of cropped and uncropped digits (off centre), so it fails the three micro-conditioning
claims; ``refiner_data="blurry"`` trains the refiner on blurry digits, which then removes high
frequencies instead of adding them.

Departures: pixels, not latents (no autoencoder); an 8×8 canvas where SDXL trains at 256² to 1024²;
size 4 vs 8 where the paper's sizes range over the data (Figure 2); the crop is a translation of the
digit on the canvas (synthetic, see step 1), not a crop of a photograph; class prompts through two
small encoders trained with the UNet (the paper's encoders are frozen CLIP models); one square bucket
(multi-aspect training, Section 2.3, is implemented and tested in :mod:`~aicanon.generative.diffusion.sdxl`
but not part of this experiment); the refiner has the base model's architecture and reads constant
micro-conditioning (its data are all full-size and uncropped; SDXL's released refiner reads an
aesthetic score in place of the target size); ``sample_accuracy`` is measured on digits8 only.

Cost: quick (``Config.quick``, one thread) took 46-50 s of CPU time on a shared, heavily loaded
2-core machine (80-120 s wall there); alone, an estimated 25-35 s. ``Config.full`` uses MNIST (28×28
padded to 32×32; originals at 8, 16 and 32 pixels, crops up to 6), a (64, 128, 256) UNet with two
transformer layers, 30k steps at batch 128 for the base model and 10k for the refiner, 3 seeds: an
estimated 20-30 minutes per seed on one H100 (not run; days on two CPU cores). Its thresholds are the
quick ones, the crop shift and centre offset scaled to the 6-pixel crop (the paper's own evidence is
qualitative, or FID on 512² ImageNet). The full run checkpoints the base model's and the refiner's
training every 5,000 steps (``checkpoint_every``: weights, EMA, optimiser, the shared generator, RNGs;
under ``<results>/_checkpoints/sdxl``), so a killed seed resumes where it was (a finished base model is
restored from its last checkpoint, not retrained) and ends as the uninterrupted seed would; the
checkpoints are removed when the seed is done.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.core.results import checkpoint_folder
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.respace import respace, space_timesteps
from aicanon.generative.diffusion.schedules import make_betas
from aicanon.generative.diffusion.sdxl import (
    DualTextEncoder,
    SDXLDenoiser,
    TokenEncoder,
    class_prompt,
    micro_conditioning,
    refine,
)
from aicanon.generative.diffusion.unet_conditional import ConditionalUNet, ConditionalUNetConfig
from aicanon.testbeds.diffusion_training import DenoiserTraining, train_denoiser
from aicanon.testbeds.digit_judge import digit_images, digit_judge

NUM_CLASSES = 10


@dataclass
class Config(ExperimentConfig):
    dataset: str = "digits8"
    """``digits8`` (8×8, scikit-learn) or ``mnist`` (28×28, padded to 32×32)."""
    low_resolution_sizes: tuple[int, ...] = (4,)
    """Original sizes of the low-resolution images (average-pooled to it, upsampled back bilinearly)."""
    low_resolution_fraction: float = 0.5
    """Share of training images that were low-resolution originals."""
    crop_fraction: float = 0.5
    """Share of training images that were randomly cropped."""
    max_crop: int = 2
    """Largest crop offset c_top, c_left (pixels); the cropped sampling condition uses it on both axes."""
    copies: int = 2
    """Random histories (resolution, crop) drawn per training image."""
    train_images: int | None = None
    """Use only the first this many training images (None: all; for smoke tests)."""
    widths: tuple[int, ...] = (16, 32)
    """UNet block widths; cross-attention at every level but the first."""
    transformer_layers: int = 1
    """Transformer blocks per cross-attention layer."""
    heads: int = 2
    """Attention heads."""
    encoder_widths: tuple[int, int] = (16, 32)
    """Widths of the two text encoders (SDXL: 768 and 1280); the second's pooled embedding is projected
    to its width."""
    addition_time_embed_dim: int = 16
    """Fourier features per micro-conditioning scalar (SDXL: 256)."""
    timesteps: int = 1000
    """Diffusion steps T (cosine schedule)."""
    steps: int = 400
    """Optimiser steps of the base model."""
    batch_size: int = 64
    lr: float = 2e-3
    ema_decay: float = 0.99
    """EMA decay of the weights sampled with (0.99 suits a few hundred steps; SDXL's is 0.9999)."""
    sampling_steps: int = 20
    """Respaced DDIM steps (eta 0) for the base model's samples."""
    samples_per_class: int = 10
    """Samples per digit class and sampling condition."""
    refiner_steps: int = 100
    """Optimiser steps of the refiner; 0 skips the refinement stage."""
    refiner_data: str = "sharp"
    """What the refiner trains on: ``sharp`` (full-resolution, uncropped digits, the paper's high-quality
    data) or ``blurry`` (the same digits from 4×4 originals: the refiner ablation)."""
    refiner_timesteps: int = 200
    """The refiner trains on the first this many noise scales (Section 2.5: 200 of 1000)."""
    refine_strength: float = 0.2
    """SDEdit strength: the blurry samples are noised to t = strength·T (within the refiner's range)."""
    refine_steps: int = 50
    """Steps of the N-step schedule SDEdit takes ⌊strength·N⌋ of (ancestral)."""
    micro_conditioning: bool = True
    """False zeroes ``time_ids`` in training and sampling: the ablation without micro-conditioning."""
    checkpoint_every: int = 0
    """Optimiser steps between checkpoints of the base model's and the refiner's training under the
    results folder (0: none); a killed seed resumes from them (module docstring)."""

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, ("digits8", "mnist"))
        for size in self.low_resolution_sizes:
            check_int("low_resolution_sizes", size, 1)
        check_probability("low_resolution_fraction", self.low_resolution_fraction)
        check_probability("crop_fraction", self.crop_fraction)
        check_int("max_crop", self.max_crop)
        check_int("copies", self.copies)
        for name in (
            "transformer_layers",
            "heads",
            "addition_time_embed_dim",
            "timesteps",
            "steps",
            "batch_size",
            "sampling_steps",
            "samples_per_class",
            "refiner_timesteps",
            "refine_steps",
        ):
            check_int(name, getattr(self, name))
        check_int("refiner_steps", self.refiner_steps, 0)
        check_int("checkpoint_every", self.checkpoint_every, 0)
        check_int("train_images", self.train_images, allow_none=True)
        check_choice("refiner_data", self.refiner_data, ("sharp", "blurry"))
        check_float("lr", self.lr, 0.0, min_inclusive=False, finite=True)
        check_float("ema_decay", self.ema_decay, 0.0, 1.0)
        check_float("refine_strength", self.refine_strength, 0.0, 1.0, min_inclusive=False)
        if self.refiner_timesteps > self.timesteps:
            raise ValueError(
                f"refiner_timesteps must be <= timesteps={self.timesteps}, got {self.refiner_timesteps}"
            )
        if self.refine_strength * self.timesteps > self.refiner_timesteps:
            raise ValueError(
                f"refine_strength x timesteps ({self.refine_strength * self.timesteps:g}) must stay within "
                f"the refiner's refiner_timesteps={self.refiner_timesteps} noise scales"
            )

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", threads=1)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=3,
            dataset="mnist",
            low_resolution_sizes=(8, 16),
            max_crop=6,
            copies=4,
            widths=(64, 128, 256),
            transformer_layers=2,
            heads=4,
            encoder_widths=(64, 128),
            addition_time_embed_dim=64,
            steps=30_000,
            batch_size=128,
            lr=2e-4,
            ema_decay=0.9999,
            sampling_steps=50,
            samples_per_class=100,
            refiner_steps=10_000,
            checkpoint_every=5000,
        )


# Thresholds from our quick runs (seeds 0, 1, 2; 1 thread): sharpness ratio 4.59 / 3.72 / 3.05, crop
# shift 0.99 / 0.90 / 1.00 px (the real digits' own shift for a (2, 2) crop: 1.40 px), centre offset
# 0.14 / 0.09 / 0.06 px, refiner gain 1.99 / 1.53 / 1.26. Without micro-conditioning (time_ids zeroed)
# the ratio is exactly 1, the shift exactly 0 and the centre offset 0.51 px (the crop-(0, 0) samples are
# the mixture of cropped and uncropped digits); a refiner trained on blurry digits gives a gain of 0.29.
# The full thresholds are the quick ones scaled to the full crop (6 px), not yet measured.
CLAIMS = [
    Claim(
        metric="sharpness_ratio",
        description="high-frequency energy of samples conditioned on c_size = 8 over c_size = 4 (same noise)",
        paper=None,
        source="Figure 3 (qualitative: image quality increases with the size condition); Table 2 "
        "(ImageNet 512: FID-5k 36.53 with size conditioning vs 39.76 without; from transcriptions of "
        "the paper, unverified)",
        quick=2.0,
        full=2.0,
        unit="x",
    ),
    Claim(
        metric="crop_shift",
        description="centre-of-mass shift (pixels, per axis) of the digits from crop (0, 0) to crop "
        "(max_crop, max_crop): crop (0, 0) centres the object",
        paper=None,
        source="Figures 4-5 (qualitative: c_crop = (0, 0) removes cut-off objects)",
        quick=0.7,
        full=3.0,
        unit="px",
    ),
    Claim(
        metric="centre_offset",
        description="distance (pixels) of the crop-(0, 0) samples' mean centre of mass from that of "
        "uncropped real digits: crop (0, 0) gives centred, uncut digits",
        paper=None,
        source="Figures 4-5 (qualitative: c_crop = (0, 0) removes cut-off objects)",
        quick=0.3,
        full=0.5,
        higher_is_better=False,
        unit="px",
    ),
    Claim(
        metric="refiner_sharpness_gain",
        description="high-frequency energy of blurry samples after / before SDEdit refinement by a "
        "model trained on sharp data at the first noise scales",
        paper=None,
        source="Section 2.5 and Figure 1 (qualitative: the refiner improves detail; user study)",
        quick=1.1,
        full=1.1,
        unit="x",
    ),
    Claim(
        metric="sample_accuracy",
        description="an independent classifier's accuracy on the c_size = 8, crop (0, 0) samples",
        paper=None,
        source="(no paper number: fidelity check of the class prompts)",
        quick=None,
        full=None,
    ),
]


# -- synthetic data (step 1) ------------------------------------------------------------------------


def _canvas(images: Tensor, dataset: str) -> Tensor:
    return F.pad(images, (2, 2, 2, 2), value=-1.0) if dataset == "mnist" else images


def degrade(images: Tensor, size: int) -> Tensor:
    """Images as if they were originally ``size`` pixels: average-pooled to it, upsampled back bilinearly."""
    small = F.adaptive_avg_pool2d(images, size)
    return F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)


def crop_shift(images: Tensor, top: Tensor, left: Tensor) -> Tensor:
    """Each image with ``top``/``left`` pixels cut off at the top-left and background (−1) filling
    the bottom-right: the crop window ``(top, left)`` of the image placed at the top-left of a larger
    canvas."""
    count, _, height, width = images.shape
    rows = torch.arange(height)[None, :] + top.long()[:, None]
    cols = torch.arange(width)[None, :] + left.long()[:, None]
    inside = (rows < height)[:, None, :, None] & (cols < width)[:, None, None, :]
    index = torch.arange(count)[:, None, None]
    moved = images[index, :, rows.clamp(max=height - 1)[:, :, None], cols.clamp(max=width - 1)[:, None, :]]
    return torch.where(inside, moved.permute(0, 3, 1, 2), torch.full_like(images, -1.0))


def training_set(
    images: Tensor, labels: Tensor, cfg: Config, generator: torch.Generator
) -> dict[str, Tensor]:
    """``copies`` random histories of every image (module docstring, step 1): ``x0``, ``tokens`` and
    ``time_ids``."""
    images, labels = images.repeat(cfg.copies, 1, 1, 1), labels.repeat(cfg.copies)
    count, size = images.shape[0], images.shape[-1]
    original = torch.full((count,), size, dtype=torch.long)
    low = torch.rand(count, generator=generator) < cfg.low_resolution_fraction
    choice = torch.randint(0, len(cfg.low_resolution_sizes), (count,), generator=generator)
    sizes = torch.tensor(cfg.low_resolution_sizes)[choice]
    original = torch.where(low, sizes, original)
    images = images.clone()
    for s in cfg.low_resolution_sizes:
        chosen = low & (original == s)
        images[chosen] = degrade(images[chosen], s)
    cropped = torch.rand(count, generator=generator) < cfg.crop_fraction
    top = torch.randint(0, cfg.max_crop + 1, (count,), generator=generator) * cropped
    left = torch.randint(0, cfg.max_crop + 1, (count,), generator=generator) * cropped
    images = crop_shift(images, top, left)
    time_ids = micro_conditioning(
        torch.stack([original, original], 1), torch.stack([top, left], 1), (size, size), batch=count
    )
    return {"x0": images, "tokens": class_prompt(labels, NUM_CLASSES), "time_ids": time_ids}


# -- the model (step 2) -----------------------------------------------------------------------------


def build_denoiser(cfg: Config) -> SDXLDenoiser:
    first, second = cfg.encoder_widths
    encoder = DualTextEncoder(
        TokenEncoder(NUM_CLASSES + 2, first, layers=2, heads=cfg.heads, max_length=3),
        TokenEncoder(NUM_CLASSES + 2, second, layers=2, heads=cfg.heads, max_length=3, projection_dim=second),
    )
    unet = ConditionalUNet(
        ConditionalUNetConfig(
            in_channels=1,
            out_channels=1,
            block_out_channels=cfg.widths,
            layers_per_block=1,
            cross_attention_levels=(False,) + (True,) * (len(cfg.widths) - 1),
            heads=cfg.heads,
            cross_attention_dim=encoder.context_dim,
            transformer_layers=cfg.transformer_layers,
            linear_projection=True,
            norm_groups=8,
            addition_time_embed_dim=cfg.addition_time_embed_dim,
            addition_input_dim=encoder.pooled_dim + 6 * cfg.addition_time_embed_dim,
        )
    )
    return SDXLDenoiser(unet, encoder, micro_conditioning=cfg.micro_conditioning)


# -- metrics (step 4) -------------------------------------------------------------------------------


def high_frequency_energy(images: Tensor, cutoff: float = 0.25) -> float:
    """Mean spectral power per pixel above ``cutoff`` cycles/pixel (radially) of images [N, 1, H, W]
    (each image's mean removed first)."""
    x = images.float() - images.float().mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().square()
    fy, fx = torch.fft.fftfreq(x.shape[-2]), torch.fft.fftfreq(x.shape[-1])
    radius = (fy[:, None].square() + fx[None, :].square()).sqrt()
    return float((power * (radius > cutoff)).sum(dim=(-2, -1)).mean() / (x.shape[-2] * x.shape[-1]))


def centre_of_mass(images: Tensor) -> Tensor:
    """Centre of mass (row, column) ``[N, 2]`` of the ink (images mapped from [−1, 1] to [0, 1])."""
    ink = ((images.float() + 1) / 2).clamp(0, 1)[:, 0]
    rows = torch.arange(ink.shape[-2], dtype=torch.float32)
    cols = torch.arange(ink.shape[-1], dtype=torch.float32)
    mass = ink.sum(dim=(-2, -1)).clamp(min=1e-6)
    return torch.stack([(ink.sum(-1) * rows).sum(-1) / mass, (ink.sum(-2) * cols).sum(-1) / mass], 1)


# -- the run ----------------------------------------------------------------------------------------


@torch.no_grad()
def _sample(model, diffusion, tokens, time_ids, noise) -> Tensor:
    return diffusion.sample(
        model,
        tuple(noise.shape),
        method="ddim",
        noise=noise.clone(),
        model_kwargs={"tokens": tokens, "time_ids": time_ids},
        device=noise.device,
    )


def _figure(conditions: dict[str, Tensor], refined: Tensor | None) -> Figure:
    rows = dict(conditions)
    if refined is not None:
        rows["c_size 4, refined"] = refined
    figure = Figure(figsize=(10, 1.2 * len(rows) + 0.4), layout="constrained")
    axes = figure.subplots(len(rows), 1, squeeze=False)[:, 0]
    for axis, (name, images) in zip(axes, rows.items(), strict=True):
        picked = images[:: max(1, images.shape[0] // 10)][:10, 0].cpu()
        axis.imshow(torch.cat(list(picked), dim=1).numpy(), cmap="gray", vmin=-1, vmax=1)
        axis.set_title(name, fontsize="small")
        axis.set_axis_off()
    return figure


def _checkpoint(cfg: Config, model: str) -> Path | None:
    """Where one model's training checkpoints go (None when the config does not checkpoint)."""
    return checkpoint_folder("sdxl", {**cfg.to_dict(), "model": model}) if cfg.checkpoint_every else None


def _training(cfg: Config, steps: int, extra: dict) -> DenoiserTraining:
    every = {"checkpoint_every": cfg.checkpoint_every} if cfg.checkpoint_every else {}
    return DenoiserTraining(
        steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, ema_decay=cfg.ema_decay, extra=extra, **every
    )


def run(cfg: Config) -> Result:
    cfg.__post_init__()  # make_config sets overrides after construction: check them again
    generator = seed(cfg.seed)
    device = select_device(cfg.device)
    images, labels = digit_images(cfg.dataset, "train")
    images, labels = images[: cfg.train_images], labels[: cfg.train_images]
    images = _canvas(images, cfg.dataset)
    size = images.shape[-1]
    if max(cfg.low_resolution_sizes) >= size or cfg.max_crop >= size:
        raise ValueError(
            f"low_resolution_sizes {cfg.low_resolution_sizes} and max_crop={cfg.max_crop} must be below the "
            f"canvas size {size}"
        )
    data = training_set(images, labels, cfg, generator)
    diffusion = GaussianDiffusion(make_betas("cosine", cfg.timesteps))

    # Step 2: the base model.
    base = train_denoiser(
        build_denoiser(cfg),
        diffusion,
        data,
        _training(cfg, cfg.steps, {"micro_conditioning": cfg.micro_conditioning}),
        generator=generator,
        device=device,
        checkpoint=_checkpoint(cfg, "base"),
        description="training the SDXL denoiser",
    )
    model = base.ema.average.to(device)

    # Step 3: the same noise under three conditions.
    sample_labels = torch.arange(NUM_CLASSES).repeat_interleave(cfg.samples_per_class)
    tokens = class_prompt(sample_labels, NUM_CLASSES).to(device)
    count = sample_labels.numel()
    noise = torch.randn((count, 1, size, size), generator=generator).to(device)
    chain = respace(diffusion, space_timesteps(cfg.timesteps, cfg.sampling_steps))
    settings = {
        f"c_size {size}, crop 0": ((size, size), (0, 0)),
        f"c_size {min(cfg.low_resolution_sizes)}, crop 0": (2 * (min(cfg.low_resolution_sizes),), (0, 0)),
        f"c_size {size}, crop {cfg.max_crop}": ((size, size), (cfg.max_crop, cfg.max_crop)),
    }
    # One batch for the three conditions: each gets the same noise and the same class prompts.
    time_ids = torch.cat(
        [micro_conditioning(o, c, (size, size), batch=count, device=device) for o, c in settings.values()]
    )
    batch = _sample(
        model, chain, tokens.repeat(len(settings), 1), time_ids, noise.repeat(len(settings), 1, 1, 1)
    )
    samples = dict(zip(settings, batch.cpu().split(count), strict=True))
    sharp, blurry, shifted = samples.values()

    # Step 4: metrics.
    real_low = degrade(images, min(cfg.low_resolution_sizes))
    real_centre = centre_of_mass(images).mean(0)
    crop = torch.full((images.shape[0],), cfg.max_crop)
    centre_sharp = centre_of_mass(sharp)
    metrics = {
        "sharpness_ratio": high_frequency_energy(sharp) / max(high_frequency_energy(blurry), 1e-12),
        "real_sharpness_ratio": high_frequency_energy(images) / high_frequency_energy(real_low),
        "crop_shift": float((centre_sharp - centre_of_mass(shifted)).mean()),
        "real_crop_shift": float(
            (real_centre - centre_of_mass(crop_shift(images, *2 * (crop,))).mean(0)).mean()
        ),
        "centre_offset": float((centre_sharp.mean(0) - real_centre).norm()),
        "final_loss": float(np.mean(base.losses[-50:])),
    }
    judge = digit_judge(cfg.dataset) if cfg.dataset == "digits8" else None
    if judge is not None:
        metrics["sample_accuracy"] = judge.fidelity(sharp, sample_labels)["accuracy"]

    # The refinement stage: a model trained on sharp, uncropped images at the first noise scales.
    refined = None
    if cfg.refiner_steps:
        refiner_set = {
            "x0": images if cfg.refiner_data == "sharp" else degrade(images, min(cfg.low_resolution_sizes)),
            "tokens": class_prompt(labels, NUM_CLASSES),
            "time_ids": micro_conditioning((size, size), (0, 0), (size, size), batch=images.shape[0]),
        }
        low_noise = GaussianDiffusion(diffusion.betas[: cfg.refiner_timesteps].cpu())
        refiner_training = _training(
            cfg,
            cfg.refiner_steps,
            {"refiner_timesteps": cfg.refiner_timesteps, "refiner_data": cfg.refiner_data},
        )
        refiner = train_denoiser(
            build_denoiser(cfg),
            low_noise,
            refiner_set,
            refiner_training,
            generator=generator,
            device=device,
            checkpoint=_checkpoint(cfg, "refiner"),
            description="training the refiner",
        ).ema.average.to(device)
        refined = refine(
            refiner,
            diffusion,
            blurry.to(device),
            cfg.refine_strength,
            cfg.refine_steps,
            model_kwargs={
                "tokens": tokens,
                "time_ids": micro_conditioning(
                    (size, size), (0, 0), (size, size), batch=count, device=device
                ),
            },
            generator=generator,
        ).cpu()
        metrics["refiner_sharpness_gain"] = high_frequency_energy(refined) / max(
            high_frequency_energy(blurry), 1e-12
        )

    for model in ("base", "refiner"):  # the seed is done: its trainings need no resuming
        if (folder := _checkpoint(cfg, model)) is not None:
            shutil.rmtree(folder, ignore_errors=True)
    notes = [
        "Synthetic size/crop histories on 8x8 digits (module docstring); pixels, not latents.",
        "Text encoders: two small causal transformers on class prompts, trained with the UNet (SDXL: frozen "
        "CLIP ViT-L and OpenCLIP ViT-bigG).",
        "Multi-aspect bucketing is implemented and tested in the method module, not used here "
        "(one square bucket).",
    ]
    if cfg.refiner_data != "sharp":
        notes.append("refiner_data='blurry': the refiner was trained on blurry digits (ablation).")
    if not cfg.micro_conditioning:
        notes.append("micro_conditioning=False: time_ids zeroed in training and sampling (ablation).")
    details = {
        "high_frequency_energy": {
            name: high_frequency_energy(s) for name, s in zip(settings, (sharp, blurry, shifted), strict=True)
        },
        "centre_of_mass": {
            name: centre_of_mass(s).mean(0).tolist()
            for name, s in zip(settings, (sharp, blurry, shifted), strict=True)
        },
        "real_centre_of_mass": real_centre.tolist(),
        "loss_curve": base.losses[:: max(1, len(base.losses) // 100)],
    }
    return Result(
        metrics=metrics, figures={"samples": _figure(samples, refined)}, details=details, notes=notes
    )
