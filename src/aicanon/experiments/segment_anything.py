"""Segment Anything (Kirillov et al. 2023): single-point prompts and the ambiguity argument, on synthetic
shapes on clutter.

SA-1B (11M images, 1.1B masks) is not available here, so the data are synthesised, and the claims are
about the paper's *mechanism*, not its zero-shot numbers:

1. **Data.** Each ``S x S`` image has a cluttered background (colour noise and small random patches)
   and two objects: a *nested* object (an outer rectangle or ellipse with an inner shape of another
   colour inside it) and a *simple* shape. Masks: ``inner``, ``whole`` (outer with its inner part) and
   ``simple``. A point inside the inner shape is ambiguous, exactly the paper's example of a point on
   a part of a larger object (Figure 3 and Section 3, "Resolving ambiguity"): both ``inner`` and
   ``whole`` are valid. Points elsewhere on an object have one valid mask.
2. **Training.** A tiny SAM (:class:`aicanon.vision.sam.Sam`) is trained from scratch with one
   point per image, sampled uniformly inside a mask as in Appendix A; for an ambiguous point the
   target is ``inner`` or ``whole`` at random (each annotation in SA-1B is one of the valid masks).
   Loss (Appendix A): focal + dice at 20 : 1 on each of the 3 multi-mask outputs, only the *minimum*
   over the 3 back-propagated, plus the IoU head's MSE. The single-mask output token is trained on the
   same prompts with the plain (non-minimum) loss: this is the ablation, a decoder that must commit to
   one mask for an ambiguous point. Optionally (``interactive_rounds``) later rounds add a point
   sampled from the error region and the previous logits as a mask prompt (Appendix A's simulated
   interactive training; the paper uses 11 rounds).
3. **Evaluation** on held-out images: ``single_point_miou`` is the mIoU on unambiguous points of the
   mask SAM itself selects (the highest predicted IoU of the 3); ``ambiguous_best_of_3_miou`` is the
   paper's oracle on ambiguous points (the best of the 3 masks against either valid target, Figure 9's
   "oracle"), ``ambiguous_single_miou`` the single-mask output against either valid target, and
   ``ambiguous_both_covered`` the fraction of ambiguous points where *both* valid masks are matched
   (IoU >= 0.5) by some output: one mask cannot do that here (IoU(M, part) IoU(M, whole) <= |part| /
   |whole|, and the inner shape is under 25 % of the whole), 3 masks can.

The paper's numbers (Figure 9, 23 datasets, ViT-H on SA-1B) are not comparable with a 64-pixel toy and
are not quoted (the claims' ``paper`` is None). Known gap at quick scale: the 3 outputs rarely split into
part *and* whole within 300 steps (``ambiguous_both_covered`` about 0.06), so that split is claimed at
full scale only. ``full()`` holds the paper's schedule (Appendix A: 1024 px, batch 256,
AdamW lr 8e-4 with 250 warm-up steps, weight decay 0.1, 90k iterations, 11 interactive rounds) with a
ViT-B encoder (the paper's main model is ViT-H). Cost: the paper reports training ViT-H SAM on 256 A100
GPUs for 3-5 days (unverified here); ViT-B's encoder is about 4x cheaper in FLOPs, so the full config
is of the order of several thousand A100-hours, out of reach of this project. It is written and
smoke-tested for a few steps with tiny overrides (tests/experiments/test_segment_anything.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.vision.sam import Sam, SamConfig, mask_iou, sam_loss


@dataclass
class Config(ExperimentConfig):
    image_size: int = 64
    """Input side in pixels (1024 in the paper)."""
    patch_size: int = 4
    """ViT patch side (16 in the paper); the embedding grid is image_size / patch_size."""
    encoder_dim: int = 64
    """ViT width (768 ViT-B, 1280 ViT-H)."""
    encoder_depth: int = 2
    """ViT blocks (12 ViT-B)."""
    encoder_heads: int = 2
    """ViT heads (12 ViT-B)."""
    window_size: int = 4
    """Window side of the windowed blocks (14)."""
    global_attn_indexes: tuple[int, ...] = (1,)
    """Blocks with global attention ((2, 5, 8, 11) for ViT-B)."""
    prompt_dim: int = 64
    """Prompt, neck and decoder width (256)."""
    decoder_heads: int = 2
    """Decoder attention heads (8)."""
    decoder_mlp_dim: int = 128
    """Decoder MLP width (2048)."""
    train_images: int = 768
    """Synthetic training images (generated once; SA-1B has 11M)."""
    test_images: int = 256
    """Held-out images for the evaluation."""
    steps: int = 300
    """Optimiser steps (90k in the paper)."""
    batch_size: int = 16
    """Images per step, one prompt each (256 images in the paper, up to 64 masks each)."""
    learning_rate: float = 3e-3
    """AdamW peak learning rate (8e-4 in the paper) after a linear warm-up, then cosine decay."""
    warmup_steps: int = 50
    """Linear warm-up steps (250 in the paper)."""
    weight_decay: float = 0.01
    """AdamW weight decay (0.1 in the paper)."""
    focal_weight: float = 20.0
    """Focal : dice = 20 : 1 (Appendix A)."""
    minimum_over_masks: bool = True
    """Back-propagate only the lowest loss of the 3 masks (the paper); False averages them (ablation)."""
    interactive_rounds: int = 0
    """Extra simulated-interaction rounds per step (error-region point + previous logits as mask
    prompt, single-mask output); 0 trains on first clicks only, the paper uses 10 after the first."""
    ambiguous_fraction: float = 0.5
    """Share of training prompts placed inside an inner shape (ambiguous); evaluation uses 1/3."""
    train: bool = True
    """False evaluates the untrained model (the ablation that must fail the claims)."""

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size, 32)
        check_int("patch_size", self.patch_size, 1)
        if self.image_size % self.patch_size:
            raise ValueError(
                f"patch_size must divide image_size, got {self.patch_size} and {self.image_size}"
            )
        check_int("train_images", self.train_images, 1)
        check_int("test_images", self.test_images, 1)
        check_int("steps", self.steps, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("warmup_steps", self.warmup_steps, 0)
        check_int("interactive_rounds", self.interactive_rounds, 0)
        check_float("learning_rate", self.learning_rate, 0, min_inclusive=False)
        check_float("focal_weight", self.focal_weight, 0)
        check_float("ambiguous_fraction", self.ambiguous_fraction, 0, 1)
        check_choice("train", self.train, (True, False))

    @classmethod
    def quick(cls) -> Config:
        # one thread: the tiny model gains nothing from a second, and the metrics then repeat exactly
        return cls(scale="quick", threads=1)

    @classmethod
    def full(cls) -> Config:
        # ViT-B SAM at the paper's input size and schedule (Appendix A), on synthetic data.
        return cls(
            scale="full",
            image_size=1024,
            patch_size=16,
            encoder_dim=768,
            encoder_depth=12,
            encoder_heads=12,
            window_size=14,
            global_attn_indexes=(2, 5, 8, 11),
            prompt_dim=256,
            decoder_heads=8,
            decoder_mlp_dim=2048,
            train_images=100_000,
            test_images=1000,
            steps=90_000,
            batch_size=256,
            learning_rate=8e-4,
            warmup_steps=250,
            weight_decay=0.1,
            interactive_rounds=10,
        )


# Thresholds from our quick run (seed 0, CPU, 300 steps): single-point mIoU 0.80, best-of-3 0.86, single
# mask 0.71 (gain 0.16), both valid masks covered on 6 % of ambiguous points. The untrained model scores
# about 0.1-0.2 on the mIoUs. At quick scale the 3 outputs rarely split into part *and* whole (the
# oracle wins mostly by one of them being the whole); that split is claimed at full scale only (a gap).
# Ablation minimum_over_masks=False (the 3 losses averaged), same seed: best-of-3 0.73, single 0.73, gain
# 0.001: the gain comes from the paper's minimum-loss training, not from having 3 guesses.
CLAIMS = [
    Claim(
        metric="single_point_miou",
        description="mIoU of the self-selected mask (highest predicted IoU of 3) for one point on an "
        "unambiguous object, held-out synthetic images",
        paper=None,
        source="Figure 9: single-point mIoU over 23 datasets (SAM ViT-H on SA-1B; not comparable, "
        "number not quoted)",
        quick=0.70,
        full=0.85,
    ),
    Claim(
        metric="ambiguous_best_of_3_miou",
        description="ambiguous points: best of the 3 masks against either valid mask (the oracle)",
        paper=None,
        source="Section 3 'Resolving ambiguity' and Figure 9's oracle (not comparable, number not quoted)",
        quick=0.75,
        full=0.85,
    ),
    Claim(
        metric="ambiguity_gain",
        description="ambiguous points: best-of-3 mIoU minus the single-mask output's mIoU (either target)",
        paper=None,
        source="Section 3: a single output averages the valid masks; multi-mask output resolves it",
        quick=0.08,
        full=0.05,
    ),
    Claim(
        metric="ambiguous_both_covered",
        description="fraction of ambiguous points whose two valid masks (part and whole) are both matched "
        "(IoU >= 0.5) by one of the 3 outputs; impossible for one mask here",
        paper=None,
        source="Figure 3 / Section 3: the 3 outputs cover whole, part and subpart",
        quick=None,
        full=0.5,
    ),
]


# ----------------------------------------------------------------------------------------------- data


def _shape(kind: torch.Tensor, cx, cy, rx, ry, xs, ys) -> torch.Tensor:
    """Masks of rectangles (kind 0) or ellipses (kind 1), one per row of the parameter vectors."""
    dx = (xs[None] - cx[:, None, None]) / rx[:, None, None]
    dy = (ys[None] - cy[:, None, None]) / ry[:, None, None]
    rectangle = (dx.abs() <= 1) & (dy.abs() <= 1)
    ellipse = dx**2 + dy**2 <= 1
    return torch.where(kind[:, None, None] > 0, ellipse, rectangle)


def make_scenes(count: int, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``count`` synthetic images ``(N, 3, S, S)`` in [0, 1] and boolean masks inner / whole / simple."""

    def uniform(low: float, high: float, shape=(count,)) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    s = size / 64  # parameters are set for 64 px and scale with the image
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    image = uniform(0.2, 0.8, (count, 3, 1, 1)) + 0.12 * torch.randn(
        count, 3, size, size, generator=generator
    )
    for _ in range(8):  # clutter: small patches of random colour
        kind = torch.randint(0, 2, (count,), generator=generator)
        patch = _shape(kind, uniform(0, size), uniform(0, size), uniform(1, 3) * s, uniform(1, 3) * s, xs, ys)
        image = torch.where(patch[:, None], torch.rand(count, 3, 1, 1, generator=generator), image)
    # nested object on the left, simple shape on the right (then mirrored at random)
    outer_rx, outer_ry = uniform(10, 14) * s, uniform(10, 14) * s
    ocx, ocy = uniform(15, 18) * s, uniform(16, 48) * s
    outer = _shape(torch.randint(0, 2, (count,), generator=generator), ocx, ocy, outer_rx, outer_ry, xs, ys)
    inner_rx, inner_ry = outer_rx * uniform(0.32, 0.42), outer_ry * uniform(0.32, 0.42)
    icx = ocx + (outer_rx * 0.6 - inner_rx) * uniform(-1, 1)
    icy = ocy + (outer_ry * 0.6 - inner_ry) * uniform(-1, 1)
    inner = (
        _shape(torch.randint(0, 2, (count,), generator=generator), icx, icy, inner_rx, inner_ry, xs, ys)
        & outer
    )
    simple = _shape(
        torch.randint(0, 2, (count,), generator=generator),
        uniform(44, 50) * s,
        uniform(16, 48) * s,
        uniform(6, 10) * s,
        uniform(6, 10) * s,
        xs,
        ys,
    )
    colours = torch.rand(count, 3, 3, 1, 1, generator=generator)
    noise = 0.05 * torch.randn(count, 3, size, size, generator=generator)
    image = torch.where(outer[:, None], colours[:, 0] + noise, image)
    image = torch.where(inner[:, None], colours[:, 1] + noise, image)
    image = torch.where(simple[:, None], colours[:, 2] + noise, image)
    flip = torch.rand(count, generator=generator) < 0.5
    masks = {"inner": inner, "whole": outer, "simple": simple}

    def mirror(x: torch.Tensor) -> torch.Tensor:
        view = flip.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(view, x.flip(-1), x)

    return {"images": mirror(image.clamp(0, 1)), **{k: mirror(v) for k, v in masks.items()}}


def sample_points(region: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One pixel (x, y) drawn uniformly from each ``(N, S, S)`` boolean region (all must be non-empty)."""
    weights = region.flatten(1).float()
    index = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    size = region.shape[-1]
    return torch.stack([index % size, index // size], dim=-1).float()


def sample_prompts(
    scenes: dict, index: torch.Tensor, generator: torch.Generator, ambiguous_fraction: float = 1 / 3
) -> tuple:
    """A point per image in ``index``: kind 0 inner (ambiguous, with probability
    ``ambiguous_fraction``), else 1 outer ring (whole) or 2 simple, equally likely.
    Returns points ``(N, 2)``, kinds, and the two valid targets (equal for unambiguous points)."""
    inner, whole, simple = scenes["inner"][index], scenes["whole"][index], scenes["simple"][index]
    other = (1 - ambiguous_fraction) / 2
    probabilities = torch.tensor([ambiguous_fraction, other, other])
    kind = torch.multinomial(probabilities, len(index), replacement=True, generator=generator)
    ring = whole & ~inner
    region = torch.where(
        (kind == 0)[:, None, None], inner, torch.where((kind == 1)[:, None, None], ring, simple)
    )
    first = torch.where(
        (kind == 2)[:, None, None], simple, torch.where((kind == 0)[:, None, None], inner, whole)
    )
    second = torch.where((kind == 2)[:, None, None], simple, whole)
    return sample_points(region, generator), kind, first, second


# ------------------------------------------------------------------------------------------- training


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return (images - 0.5) / 0.25


def build_model(cfg: Config) -> Sam:
    return Sam(
        SamConfig(
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            encoder_dim=cfg.encoder_dim,
            encoder_depth=cfg.encoder_depth,
            encoder_heads=cfg.encoder_heads,
            encoder_mlp_dim=4 * cfg.encoder_dim,
            window_size=cfg.window_size,
            global_attn_indexes=cfg.global_attn_indexes,
            prompt_dim=cfg.prompt_dim,
            mask_in_channels=16,
            decoder_heads=cfg.decoder_heads,
            decoder_mlp_dim=cfg.decoder_mlp_dim,
            iou_head_hidden_dim=cfg.prompt_dim,
        )
    )


def _error_point(logits: torch.Tensor, target: torch.Tensor, generator: torch.Generator) -> tuple:
    """Appendix A: the next click is drawn from the error region; a false negative gives a foreground
    point, a false positive a background one. ``logits``/``target`` at full resolution ``(N, S, S)``."""
    predicted = logits > 0
    error = predicted ^ target
    empty = ~error.flatten(1).any(1)
    error = error | (empty[:, None, None] & target)  # no error left: click on the object again
    point = sample_points(error, generator)
    x, y = point.long().unbind(-1)
    label = target[torch.arange(len(point)), y, x].long()
    return point, label


def train_step(model: Sam, cfg: Config, scenes: dict, generator: torch.Generator, device) -> dict:
    index = torch.randint(0, scenes["images"].shape[0], (cfg.batch_size,), generator=generator)
    points, kind, first, second = sample_prompts(scenes, index, generator, cfg.ambiguous_fraction)
    pick = torch.rand(len(index), generator=generator) < 0.5  # which valid mask this annotation is
    target = torch.where(pick[:, None, None], first, second)
    images = _normalise(scenes["images"][index]).to(device)
    embeddings = model.image_encoder(images)
    pts = points.view(-1, 1, 1, 2).to(device)
    labels = torch.ones(len(index), 1, 1, dtype=torch.long, device=device)
    every, every_iou = model(image_embeddings=embeddings, points=pts, labels=labels, multimask_output=None)
    masks, iou = every[:, :, 1:], every_iou[:, :, 1:]
    t = target.unsqueeze(1).float().to(device)
    loss, parts = sam_loss(masks, iou, t, cfg.focal_weight, minimum_over_masks=cfg.minimum_over_masks)
    single_loss, _ = sam_loss(
        every[:, :, :1], every_iou[:, :, :1], t, cfg.focal_weight, minimum_over_masks=False
    )
    loss = loss + single_loss
    if cfg.interactive_rounds:
        size = cfg.image_size
        best = masks[:, 0].gather(1, iou[:, 0].argmax(1).view(-1, 1, 1, 1).expand(-1, 1, *masks.shape[-2:]))
        previous = best.detach()
        all_points, all_labels = pts, labels
        for _ in range(cfg.interactive_rounds):
            full = F.interpolate(previous, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
            point, label = _error_point(full.cpu(), target, generator)
            all_points = torch.cat([all_points, point.view(-1, 1, 1, 2).to(device)], dim=2)
            all_labels = torch.cat([all_labels, label.view(-1, 1, 1).to(device)], dim=2)
            logits, pred = model(
                image_embeddings=embeddings,
                points=all_points,
                labels=all_labels,
                masks=previous,
                multimask_output=False,
            )
            round_loss, _ = sam_loss(logits, pred, t, cfg.focal_weight, minimum_over_masks=False)
            loss = loss + round_loss / cfg.interactive_rounds
            previous = logits[:, 0].detach()
    return {"loss": loss, "mask": parts["mask"], "iou": parts["iou"]}


# ------------------------------------------------------------------------------------------ evaluation


@torch.no_grad()
def evaluate(model: Sam, cfg: Config, scenes: dict, generator: torch.Generator, device) -> dict:
    model.eval()
    count = scenes["images"].shape[0]
    size = cfg.image_size
    results = {"selected": [], "best": [], "single": [], "both": [], "kind": []}
    for start in range(0, count, 64):
        index = torch.arange(start, min(count, start + 64))
        points, kind, first, second = sample_prompts(scenes, index, generator)
        embeddings = model.image_encoder(_normalise(scenes["images"][index]).to(device))
        pts = points.view(-1, 1, 1, 2).to(device)
        labels = torch.ones(len(index), 1, 1, dtype=torch.long, device=device)
        masks, iou = model(image_embeddings=embeddings, points=pts, labels=labels, multimask_output=True)
        single, _ = model(image_embeddings=embeddings, points=pts, labels=labels, multimask_output=False)
        masks = F.interpolate(masks[:, 0], size=(size, size), mode="bilinear", align_corners=False).cpu()
        single = F.interpolate(single[:, 0], size=(size, size), mode="bilinear", align_corners=False).cpu()
        iou_first = mask_iou(masks, first.unsqueeze(1).float())  # (N, 3)
        iou_second = mask_iou(masks, second.unsqueeze(1).float())
        chosen = iou[:, 0].argmax(1).cpu()
        either = torch.maximum(iou_first, iou_second)
        results["selected"].append(either[torch.arange(len(index)), chosen])
        results["best"].append(either.max(1).values)
        results["single"].append(
            torch.maximum(
                mask_iou(single, first.unsqueeze(1).float()), mask_iou(single, second.unsqueeze(1).float())
            )[:, 0]
        )
        results["both"].append(((iou_first.max(1).values >= 0.5) & (iou_second.max(1).values >= 0.5)).float())
        results["kind"].append(kind)
    r = {k: torch.cat(v) for k, v in results.items()}
    ambiguous = r["kind"] == 0
    best_of_3 = float(r["best"][ambiguous].mean())
    single = float(r["single"][ambiguous].mean())
    model.train()
    return {
        "single_point_miou": float(r["selected"][~ambiguous].mean()),
        "ambiguous_best_of_3_miou": best_of_3,
        "ambiguous_single_miou": single,
        "ambiguity_gain": best_of_3 - single,
        "ambiguous_both_covered": float(r["both"][ambiguous].mean()),
        "ambiguous_selected_miou": float(r["selected"][ambiguous].mean()),
    }


def _example_figure(model: Sam, cfg: Config, scenes: dict, device) -> Figure:
    """One held-out image: an ambiguous point inside the inner shape, the 3 masks and the single mask."""
    model.eval()
    image = scenes["images"][:1]
    inner = scenes["inner"][0]
    ys, xs = torch.nonzero(inner, as_tuple=True)
    point = torch.stack([xs.float().mean(), ys.float().mean()]).view(1, 1, 1, 2)
    with torch.no_grad():
        emb = model.image_encoder(_normalise(image).to(device))
        labels = torch.ones(1, 1, 1, dtype=torch.long, device=device)
        masks, iou = model(image_embeddings=emb, points=point.to(device), labels=labels)
        single, _ = model(
            image_embeddings=emb, points=point.to(device), labels=labels, multimask_output=False
        )
    model.train()
    figure = Figure(figsize=(12, 2.8), layout="constrained")
    axes = figure.subplots(1, 5)
    axes[0].imshow(image[0].permute(1, 2, 0).numpy())
    axes[0].set_title("image + ambiguous point")
    panels = [(masks[0, 0, i], f"mask {i + 1} (pred IoU {iou[0, 0, i]:.2f})") for i in range(3)]
    panels.append((single[0, 0, 0], "single-mask output"))
    for axis, (logits, title) in zip(axes[1:], panels):
        axis.imshow((logits > 0).cpu().numpy(), cmap="gray")
        axis.set_title(title, fontsize="small")
    scale = masks.shape[-1] / cfg.image_size
    for axis in axes:
        factor = 1 if axis is axes[0] else scale
        axis.plot(point[0, 0, 0, 0] * factor, point[0, 0, 0, 1] * factor, "r*", markersize=10)
        axis.axis("off")
    return figure


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    device = select_device(cfg.device)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_scenes = make_scenes(cfg.train_images, cfg.image_size, generator)
    test_scenes = make_scenes(
        cfg.test_images, cfg.image_size, torch.Generator().manual_seed(10_000 + cfg.seed)
    )
    model = build_model(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    def schedule(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses: list[float] = []
    if cfg.train:
        for _ in range(cfg.steps):
            out = train_step(model, cfg, train_scenes, generator, device)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(out["loss"].detach()))
    metrics = evaluate(model, cfg, test_scenes, torch.Generator().manual_seed(20_000 + cfg.seed), device)
    figures = {"ambiguous_point": _example_figure(model, cfg, test_scenes, device)}
    if losses:
        figure = Figure(figsize=(5, 3.5), layout="constrained")
        axis = figure.subplots()
        axis.plot(np.arange(1, len(losses) + 1), losses)
        axis.set(
            xlabel="step", ylabel="loss (multi-mask min + single-mask)", yscale="log", title="training loss"
        )
        figures["training_loss"] = figure
    notes = [
        "Synthetic shapes on clutter (SA-1B is not available): claims test the mechanism (point "
        "prompts, ambiguity-aware multi-mask loss), not the paper's zero-shot numbers.",
        "The single-mask token is trained on the same single-point prompts with the plain loss, as the "
        "ablation; the paper trains it only for multi-prompt inputs.",
        "Mask losses on the decoder's 4x-downsampled logits against resized targets (the paper upsamples "
        "the logits).",
    ]
    if not cfg.train:
        notes.append("train=False: the untrained model (ablation).")
    if not cfg.minimum_over_masks:
        notes.append("minimum_over_masks=False: the 3 masks' losses are averaged (ablation).")
    details = {"final_loss": losses[-1] if losses else None, "steps": cfg.steps}
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
