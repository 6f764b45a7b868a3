"""Grad-CAM (Selvaraju et al., ICCV 2017): the map of a class localises the object that drives it.

The paper's evidence is ImageNet localisation (Table 1: a box from the Grad-CAM map of VGG-16,
thresholded at 15 % of its maximum, top-1 localisation error 56.51 %, unverified), the pointing game
and a faithfulness test against occlusion (section "Faithfulness vs. Interpretability" under
"Evaluating Visualizations", Table 2), all on ImageNet/PASCAL models that are not
staged here. This experiment is synthetic and says so:

Scenes. Each ``image_size``-square RGB image shows one object of class ``k`` (``classes`` shapes:
filled square, disk, plus sign, triangle, ring) of random colour and random size (half-side between
``min_radius`` and ``max_radius`` pixels) at a random place, over clutter: a background of random
colour with a linear gradient, ``distractors`` random line segments and small random blobs of
random contrasting colours, and Gaussian pixel noise. The ground-truth box is the tight box of the
object's pixels. Only the shape tells the class, so a classifier has to look at the object.

Model. A small CNN (three conv-BN-ReLU blocks with two 2x2 max-pools, global max pooling,
linear) trained with Adam on a rendered training set. Grad-CAM uses the last conv ReLU
(``image_size / 4`` square) and the ground-truth class (Section 4.1 uses the predicted class on
ImageNet; with near-perfect accuracy here the two coincide on almost every image).

Metrics, on ``test_images`` held-out scenes:

* Pointing game (Zhang et al., used by the paper's later versions): a hit when the maximum of the
  upsampled map lies inside the object's box grown by ``pointing_tolerance`` pixels (Zhang et al.
  allow 15 px at 224 px; 2 px at 32 px). A uniformly random map points at a random pixel, so its
  expected accuracy is the grown box's area fraction (``pointing_random``, reported).
* Weakly supervised localisation (Section 4.1 protocol): binarise the map at 15 % of its maximum,
  take the largest 8-connected segment, draw its box; mean IoU with the object's box, for Grad-CAM
  and for vanilla gradient saliency (``max_c |dy/dx_c|``, Simonyan et al., the paper's c-MWP/
  backprop baselines' simplest relative).
* Faithfulness ("Faithfulness vs. Interpretability"): Spearman rank correlation, per image, between an explanation and
  occlusion sensitivity (the drop of the class score when an ``occlusion_patch`` square is replaced
  by the image's mean colour, ``occlusion_stride`` apart, each pixel taking the mean drop of the
  patches covering it), averaged over images; for Grad-CAM, Guided Grad-CAM and Guided
  Backpropagation (``sum_c |GB_c|``).

Paper numbers. The paper ("Faithfulness vs. Interpretability"; Table 2, "Rank Correlation w/
Occlusion") reports rank correlations with occlusion maps, averaged over 2510 images of the PASCAL
VOC 2007 val set, of 0.254 for Grad-CAM and 0.261 for Guided Grad-CAM, against 0.168 for Guided
Backpropagation, 0.220 for c-MWP and 0.208 for CAM (re-read from the arXiv text of the paper in a
later audit; earlier versions of this module gave 0.254 to Guided Grad-CAM, which is Grad-CAM's
number).
What the metrics show. The pointing game carries the claim: Grad-CAM's peak lies on the object far
more often than a random map's would (``pointing_random``), and an untrained CNN's map fails it.
The two other comparisons do NOT go the paper's way in our quick runs: the 15 %-threshold Grad-CAM
box overlaps the object no better than the vanilla-gradient box (``box_iou_gain`` about 0 or below:
the 8x8 map upsampled to 32 px spreads past a 7-11 px object, and 15 % of the peak keeps the
spread), and Guided Backpropagation correlates better with occlusion than Guided Grad-CAM. Vanilla
gradient saliency also wins the pointing game here (``pointing_accuracy_gradient``): on an
uncluttered-enough 32 px scene its single strongest pixel is on the object, so the pointing claim
shows that Grad-CAM localises, not that it beats gradients at pointing. Both are reported, not
claimed; we state the gap rather than tune the protocol until it closes. The numbers, per seed, are
in the run's record (``results/gradcam/``) and in RESULTS.md.
Table 1's 56.51 % top-1 localisation error is quoted from memory of the paper and still
unverified (the stored copies of the paper lost the table's cells); it is given for orientation
only, no claim depends on it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy import ndimage
from scipy.stats import rankdata
from torch import Tensor, nn

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checks import check_int
from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.results import checkpoint_folder
from aicanon.explain.gradcam import grad_cam, guided_backprop

SHAPES = ("square", "disk", "plus", "triangle", "ring")
LAYER = "features.10"  # the last conv ReLU of SceneCNN


@dataclass
class Config(ExperimentConfig):
    image_size: int = 32
    """Side of the square scenes in pixels (a multiple of 4: two 2x2 max-pools)."""
    classes: int = 4
    """Number of shape classes, the first ``classes`` of square, disk, plus, triangle, ring."""
    min_radius: float = 3.5
    """Smallest object half-side in pixels."""
    max_radius: float = 5.5
    """Largest object half-side in pixels."""
    distractors: int = 6
    """Clutter items per scene, alternately line segments and small blobs."""
    noise_std: float = 0.08
    """Standard deviation of the Gaussian pixel noise (pixel values in [0, 1] before noise)."""
    width: int = 16
    """Channels of the first conv block (then 2x, then 4x in the last conv)."""
    train_images: int = 8192
    """Scenes rendered once for training (batches are drawn from them at random)."""
    train_steps: int = 600
    """Adam steps; 0 leaves the CNN untrained (the ablation that must fail)."""
    batch_size: int = 64
    """Scenes per training step."""
    learning_rate: float = 3e-3
    """Adam learning rate (cosine-decayed to 0 over ``train_steps``)."""
    test_images: int = 256
    """Held-out scenes for the pointing game and the boxes."""
    faithfulness_images: int = 64
    """Held-out scenes (the first of the test set) for the occlusion rank correlation."""
    pointing_tolerance: int = 2
    """Pixels the box is grown by for the pointing game (Zhang et al.: 15 px at 224 px, ~2 px at 32)."""
    threshold: float = 0.15
    """Binarisation threshold as a fraction of the map's maximum (Section 4.1: 15 %)."""
    occlusion_patch: int = 8
    """Side of the occluding square (pixels)."""
    occlusion_stride: int = 4
    """Stride between occluding squares (pixels)."""
    example_images: int = 6
    """Scenes drawn in the ``examples`` figure."""
    checkpoint_every: int = 0
    """Training steps between checkpoints of the whole training state under the results folder
    (``_checkpoints/gradcam/<config hash>``); a rerun of a killed run resumes there and ends with the
    same result. 0 = none (quick)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=2)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=5,
            image_size=64,
            classes=5,
            min_radius=5.0,
            max_radius=12.0,
            distractors=12,
            width=32,
            train_images=100_000,
            train_steps=5000,
            batch_size=128,
            checkpoint_every=500,
            test_images=2000,
            faithfulness_images=500,
            occlusion_patch=12,
            occlusion_stride=4,
            pointing_tolerance=4,
        )


CLAIMS = [
    Claim(
        metric="pointing_accuracy_grad_cam",
        description="Pointing game: the Grad-CAM map's maximum lies inside the object's box "
        "(synthetic shape scenes; a random map scores pointing_random)",
        paper=None,
        source="Section 4.1 / Table 1 (localisation); pointing game of the paper's later versions",
        quick=0.85,
        full=0.9,
    ),
    Claim(
        metric="pointing_random",
        description="Expected pointing accuracy of a uniformly random map (mean box area fraction)",
        paper=None,
        source="baseline",
    ),
    Claim(
        metric="box_iou_gain",
        description="Mean IoU of the 15 %-threshold box: Grad-CAM minus vanilla gradient saliency "
        "(reported: on our 32 px scenes the 8x8 Grad-CAM map is too coarse, its 15 % box is too large)",
        paper=None,
        source="Section 4.1 (Grad-CAM boxes beat c-MWP and backprop boxes, Table 1)",
    ),
    Claim(
        metric="box_iou_grad_cam",
        description="Mean IoU of the 15 %-threshold Grad-CAM box with the object's box (reported)",
        paper=None,
        source="Section 4.1 protocol",
    ),
    Claim(
        metric="box_iou_gradient",
        description="Mean IoU of the 15 %-threshold vanilla-gradient box (reported)",
        paper=None,
        source="Section 4.1 protocol",
    ),
    Claim(
        metric="occlusion_correlation_guided_grad_cam",
        description="Rank correlation of Guided Grad-CAM with occlusion sensitivity (reported)",
        paper=0.261,
        source="Table 2 and section 'Faithfulness vs. Interpretability' (PASCAL VOC 2007 val, 2510 images)",
    ),
    Claim(
        metric="occlusion_correlation_guided_backprop",
        description="Rank correlation of Guided Backpropagation with occlusion sensitivity (reported)",
        paper=0.168,
        source="Table 2 and section 'Faithfulness vs. Interpretability' (PASCAL VOC 2007 val, 2510 images)",
    ),
    Claim(
        metric="occlusion_correlation_grad_cam",
        description="Rank correlation of Grad-CAM with occlusion sensitivity (reported)",
        paper=0.254,
        source="Table 2 and section 'Faithfulness vs. Interpretability' (PASCAL VOC 2007 val, 2510 images)",
    ),
    Claim(
        metric="test_accuracy",
        description="Classification accuracy of the CNN on held-out scenes (reported)",
        paper=None,
        source="sanity",
    ),
]


# =============================================================================== checks
def _check_config(cfg: Config) -> None:
    if cfg.image_size % 4 or cfg.image_size < 16:
        raise ValueError(f"image_size must be a multiple of 4 and >= 16, got {cfg.image_size}")
    if not 2 <= cfg.classes <= len(SHAPES):
        raise ValueError(f"classes must be between 2 and {len(SHAPES)}, got {cfg.classes}")
    if not 1.5 <= cfg.min_radius <= cfg.max_radius < cfg.image_size / 2:
        raise ValueError(
            f"radii must satisfy 1.5 <= min_radius <= max_radius < image_size / 2, "
            f"got min_radius={cfg.min_radius}, max_radius={cfg.max_radius}, image_size={cfg.image_size}"
        )
    if cfg.pointing_tolerance < 0:
        raise ValueError(f"pointing_tolerance must be >= 0, got {cfg.pointing_tolerance}")
    if not 0.0 < cfg.threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {cfg.threshold}")
    if cfg.train_steps < 0:
        raise ValueError(f"train_steps must be >= 0, got {cfg.train_steps}")
    if (
        isinstance(cfg.checkpoint_every, bool)
        or not isinstance(cfg.checkpoint_every, int)
        or cfg.checkpoint_every < 0
    ):
        raise ValueError(f"checkpoint_every must be an int >= 0, got {cfg.checkpoint_every!r}")
    if cfg.train_steps > 0 and cfg.train_images < cfg.batch_size:
        raise ValueError(f"train_images must be >= batch_size ({cfg.batch_size}), got {cfg.train_images}")
    if cfg.test_images < 1 or not 1 <= cfg.faithfulness_images <= cfg.test_images:
        raise ValueError(
            f"need test_images >= 1 and 1 <= faithfulness_images <= test_images, "
            f"got test_images={cfg.test_images}, faithfulness_images={cfg.faithfulness_images}"
        )
    if not 1 <= cfg.occlusion_patch <= cfg.image_size or cfg.occlusion_stride < 1:
        raise ValueError(
            f"occlusion_patch must be in [1, image_size] and occlusion_stride >= 1, "
            f"got {cfg.occlusion_patch}, {cfg.occlusion_stride}"
        )


# =============================================================================== scenes
def _contrasting(colour: Tensor, generator: torch.Generator) -> Tensor:
    # colour + 0.3..0.7 (mod 1): at least 0.3 away per channel, circularly.
    return (colour + 0.3 + 0.4 * torch.rand(colour.shape, generator=generator)) % 1.0


def shape_masks(kind: Tensor, centre: Tensor, radius: Tensor, size: int) -> Tensor:
    """Boolean masks ``[n, S, S]`` of shape ``kind`` (indices into SHAPES) at ``centre`` (x, y) with half-side ``radius``."""
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dx = coords.view(1, 1, size) - centre[:, 0, None, None]
    dy = coords.view(1, size, 1) - centre[:, 1, None, None]
    r = radius[:, None, None]
    k = kind[:, None, None]
    square = (dx.abs() <= r) & (dy.abs() <= r)
    disk = dx**2 + dy**2 <= r**2
    arm = r / 3
    plus = ((dx.abs() <= arm) & (dy.abs() <= r)) | ((dy.abs() <= arm) & (dx.abs() <= r))
    triangle = (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2)  # apex up
    ring = (dx**2 + dy**2 <= r**2) & (dx**2 + dy**2 >= (0.55 * r) ** 2)
    return torch.where(
        k == 0,
        square,
        torch.where(k == 1, disk, torch.where(k == 2, plus, torch.where(k == 3, triangle, ring))),
    )


def render_scenes(n: int, cfg: Config, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Images ``[n, 3, S, S]``, labels ``[n]`` and object boxes ``[n, 4]`` (x1, y1, x2, y2 in pixels, inclusive-exclusive)."""
    size = cfg.image_size
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    xs, ys = coords.view(1, 1, size), coords.view(1, size, 1)
    background = torch.rand(n, 3, generator=generator)
    tilt = (torch.rand(n, 3, 2, generator=generator) - 0.5) * 0.4
    images = (
        (
            background[:, :, None, None]
            + tilt[:, :, 0, None, None] * (xs / size - 0.5)[:, None]
            + tilt[:, :, 1, None, None] * (ys / size - 0.5)[:, None]
        )
        .expand(n, 3, size, size)
        .clone()
    )
    for item in range(cfg.distractors):
        colour = _contrasting(background, generator)
        a = torch.rand(n, 2, generator=generator) * size
        if item % 2 == 0:  # a line segment about one pixel wide, up to half the image long
            b = a + (torch.rand(n, 2, generator=generator) - 0.5) * size
            d = b - a
            t = (
                (
                    (xs - a[:, 0, None, None]) * d[:, 0, None, None]
                    + (ys - a[:, 1, None, None]) * d[:, 1, None, None]
                )
                / ((d * d).sum(1) + 1e-6)[:, None, None]
            ).clamp(0, 1)
            distance2 = (xs - a[:, 0, None, None] - t * d[:, 0, None, None]) ** 2 + (
                ys - a[:, 1, None, None] - t * d[:, 1, None, None]
            ) ** 2
            mask = distance2 < 0.36
        else:  # a small blob of random shape class but radius ~1.5 px: texture, not an object
            kind = torch.randint(0, cfg.classes, (n,), generator=generator)
            mask = shape_masks(kind, a, torch.full((n,), 1.5), size)
        images = torch.where(mask[:, None], colour[:, :, None, None], images)
    labels = torch.randint(0, cfg.classes, (n,), generator=generator)
    radius = cfg.min_radius + (cfg.max_radius - cfg.min_radius) * torch.rand(n, generator=generator)
    centre = radius[:, None] + torch.rand(n, 2, generator=generator) * (size - 2 * radius[:, None])
    mask = shape_masks(labels, centre, radius, size)
    images = torch.where(mask[:, None], _contrasting(background, generator)[:, :, None, None], images)
    images = (images + cfg.noise_std * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    rows, columns = mask.any(2), mask.any(1)  # [n, S] each
    index = torch.arange(size)
    boxes = torch.stack(
        [
            torch.where(columns, index, size).min(1).values,
            torch.where(rows, index, size).min(1).values,
            torch.where(columns, index, -1).max(1).values + 1,
            torch.where(rows, index, -1).max(1).values + 1,
        ],
        dim=1,
    )
    return images, labels, boxes


# =============================================================================== model
class SceneCNN(nn.Module):
    """Three conv-BN-ReLU blocks (two 2x2 max-pools) and a linear head on global max pooling.

    Batch norm and max pooling make it train in a few hundred CPU steps; in eval mode batch norm is
    a fixed affine map, so Grad-CAM sees an ordinary CNN. ``features.10`` (the last ReLU,
    ``image_size / 4`` square) is Grad-CAM's layer.
    """

    def __init__(self, classes: int, width: int) -> None:
        super().__init__()

        def block(inputs: int, outputs: int) -> list[nn.Module]:
            return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).amax(dim=(2, 3)))


# =============================================================================== metrics
def threshold_box(saliency: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """Section 4.1: binarise at ``threshold * max``, box around the largest 8-connected segment."""
    peak = float(saliency.max())
    if peak <= 0:
        return (0, 0, saliency.shape[1], saliency.shape[0])  # an empty map explains nothing: whole image
    labelled, count = ndimage.label(saliency >= threshold * peak, structure=np.ones((3, 3)))
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)
    sizes[0] = 0
    ys, xs = np.nonzero(labelled == int(sizes.argmax()))
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def box_iou(a: tuple[int, int, int, int] | np.ndarray, b: tuple[int, int, int, int] | np.ndarray) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pointing_hits(saliency: np.ndarray, boxes: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """True where the map's arg-max pixel (first in raster order on ties) lies inside the box grown by ``tolerance`` pixels."""
    n, _, size = saliency.shape
    flat = saliency.reshape(n, -1).argmax(1)
    y, x = flat // size, flat % size
    t = tolerance
    return (x >= boxes[:, 0] - t) & (x < boxes[:, 2] + t) & (y >= boxes[:, 1] - t) & (y < boxes[:, 3] + t)


def grown_area_fraction(boxes: np.ndarray, tolerance: int, size: int) -> np.ndarray:
    """Area fraction of each box grown by ``tolerance`` and clipped to the image: a random point's hit rate."""
    x1, y1 = np.maximum(boxes[:, 0] - tolerance, 0), np.maximum(boxes[:, 1] - tolerance, 0)
    x2, y2 = np.minimum(boxes[:, 2] + tolerance, size), np.minimum(boxes[:, 3] + tolerance, size)
    return (x2 - x1) * (y2 - y1) / size**2


def gradient_saliency(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """Vanilla gradient saliency ``max_c |d y^c / d x_c|`` (Simonyan et al.)."""
    x = images.clone().requires_grad_(True)
    with torch.enable_grad():
        score = model(x).gather(1, labels[:, None]).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad.abs().amax(1)


@torch.no_grad()
def occlusion_sensitivity(
    model: nn.Module, images: Tensor, labels: Tensor, patch: int, stride: int
) -> Tensor:
    """Per-pixel mean drop of the class score when a ``patch`` square covering it is set to the image's mean colour."""
    n, _, size, _ = images.shape
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    base = model(images).gather(1, labels[:, None])[:, 0]
    fill = images.mean(dim=(2, 3), keepdim=True)
    total = torch.zeros(n, size, size)
    count = torch.zeros(size, size)
    for top in starts:
        batch = []
        for left in starts:
            occluded = images.clone()
            occluded[:, :, top : top + patch, left : left + patch] = fill
            batch.append(occluded)
        scores = model(torch.cat(batch)).gather(1, labels.repeat(len(starts))[:, None])[:, 0]
        drops = (base.repeat(len(starts)) - scores).view(len(starts), n)
        for j, left in enumerate(starts):
            total[:, top : top + patch, left : left + patch] += drops[j][:, None, None]
            count[top : top + patch, left : left + patch] += 1
    return total / count


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation per row of ``[n, ...]`` arrays (average ranks for ties; 0 for a constant row)."""
    ra = rankdata(a.reshape(a.shape[0], -1), axis=1)
    rb = rankdata(b.reshape(b.shape[0], -1), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    return np.where(denominator > 0, (ra * rb).sum(1) / np.where(denominator > 0, denominator, 1), 0.0)


# =============================================================================== experiment
def train(
    cfg: Config, generator: torch.Generator, device: torch.device, checkpoint: Path | None = None
) -> SceneCNN:
    """The scene CNN trained with Adam; with ``checkpoint`` (a folder) its whole state (model,
    optimiser, schedule, batch generator, RNG, step) is saved every ``cfg.checkpoint_every`` steps
    and a rerun continues from it."""
    model = SceneCNN(cfg.classes, cfg.width).to(device)
    if cfg.train_steps == 0:
        return model.eval()
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.train_steps)
    train_images, train_labels, _ = render_scenes(cfg.train_images, cfg, generator)
    train_images, train_labels = train_images.to(device), train_labels.to(device)
    start, record = 0, {"train_steps": cfg.train_steps}
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, config=record)
        if state is not None:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            generator.set_state(state["generator"])
            set_rng_state(state["rng"])
            start = int(state["step"])
    model.train()
    for step in track(range(start, cfg.train_steps), "training the scene CNN", total=cfg.train_steps - start):
        index = torch.randint(0, train_images.shape[0], (cfg.batch_size,), generator=generator)
        loss = F.cross_entropy(model(train_images[index]), train_labels[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if checkpoint is not None and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.train_steps):
            state = {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
                "rng": rng_state(),
                "step": step + 1,
            }
            save_checkpoint(checkpoint, state, config=record)
    return model.eval()


def _examples_figure(
    cfg: Config, images: Tensor, boxes: np.ndarray, cam, saliency: np.ndarray, cam_boxes, grad_boxes
) -> Figure:
    count = min(cfg.example_images, images.shape[0])
    figure = Figure(figsize=(2.2 * count, 4.6))
    for i in range(count):
        top = figure.add_subplot(2, count, i + 1)
        top.imshow(images[i].permute(1, 2, 0).cpu().numpy())
        top.imshow(cam.values[i] / max(float(cam.values[i].max()), 1e-12), cmap="jet", alpha=0.5)
        top.set_title(f"Grad-CAM: {SHAPES[int(cam.extras['target'][i])]}", fontsize=8)
        bottom = figure.add_subplot(2, count, count + i + 1)
        bottom.imshow(saliency[i], cmap="gray")
        bottom.set_title("gradient saliency", fontsize=8)
        for ax, predicted in ((top, cam_boxes[i]), (bottom, grad_boxes[i])):
            for box, colour in ((boxes[i], "lime"), (predicted, "red")):
                ax.add_patch(
                    Rectangle(
                        (box[0] - 0.5, box[1] - 0.5),
                        box[2] - box[0],
                        box[3] - box[1],
                        fill=False,
                        ec=colour,
                        lw=1.2,
                    )
                )
            ax.set_axis_off()
    figure.suptitle(
        "green: object box; red: box from the map thresholded at 15 % of its max (Section 4.1)", fontsize=9
    )
    return figure


def run(cfg: Config) -> Result:
    _check_config(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    generator = torch.Generator().manual_seed(cfg.seed)
    test_generator = torch.Generator().manual_seed(10_000 + cfg.seed)

    # A long (full) run checkpoints the training under the results folder, so a killed run resumes.
    checkpoints = checkpoint_folder("gradcam", cfg.to_dict()) if cfg.checkpoint_every else None
    model = train(cfg, generator, device, checkpoints)
    if checkpoints is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)  # trained: the rest of the run is evaluation
    images, labels, boxes = render_scenes(cfg.test_images, cfg, test_generator)
    images, labels = images.to(device), labels.to(device)
    boxes_np = boxes.numpy()
    with torch.no_grad():
        accuracy = float((model(images).argmax(1) == labels).float().mean())

    # Grad-CAM of the ground-truth class at the last conv ReLU, upsampled bilinearly (Eq. 1-2).
    cam = grad_cam(model, images, LAYER, labels)
    saliency = gradient_saliency(model, images, labels).cpu().numpy()
    pointing_cam = pointing_hits(cam.values, boxes_np, cfg.pointing_tolerance)
    pointing_gradient = pointing_hits(saliency, boxes_np, cfg.pointing_tolerance)
    area_fraction = grown_area_fraction(boxes_np, 0, cfg.image_size)
    random_hit_rate = grown_area_fraction(boxes_np, cfg.pointing_tolerance, cfg.image_size)
    cam_boxes = [threshold_box(m, cfg.threshold) for m in cam.values]
    grad_boxes = [threshold_box(m, cfg.threshold) for m in saliency]
    iou_cam = np.array([box_iou(p, b) for p, b in zip(cam_boxes, boxes_np)])
    iou_gradient = np.array([box_iou(p, b) for p, b in zip(grad_boxes, boxes_np)])

    # Faithfulness ("Faithfulness vs. Interpretability", Table 2): rank correlation with occlusion sensitivity.
    k = cfg.faithfulness_images
    occlusion = occlusion_sensitivity(
        model, images[:k], labels[:k], cfg.occlusion_patch, cfg.occlusion_stride
    )
    # Guided Grad-CAM = Guided Backprop x upsampled Grad-CAM (Section 3); both summarised per pixel
    # as sum_c |.| since the Grad-CAM factor is non-negative: |GB_c * L| = |GB_c| * L.
    guided = np.abs(guided_backprop(model, images[:k], labels[:k]).values).sum(1)
    guided_cam = guided * cam.values[:k]
    occlusion_np = occlusion.cpu().numpy()
    correlation = {
        "grad_cam": rank_correlation(cam.values[:k], occlusion_np),
        "guided_grad_cam": rank_correlation(guided_cam, occlusion_np),
        "guided_backprop": rank_correlation(guided, occlusion_np),
    }

    metrics = {
        "pointing_accuracy_grad_cam": float(pointing_cam.mean()),
        "pointing_accuracy_gradient": float(pointing_gradient.mean()),
        "pointing_random": float(random_hit_rate.mean()),
        "box_iou_grad_cam": float(iou_cam.mean()),
        "box_iou_gradient": float(iou_gradient.mean()),
        "box_iou_gain": float(iou_cam.mean() - iou_gradient.mean()),
        "localisation_accuracy_grad_cam": float((iou_cam >= 0.5).mean()),
        "localisation_accuracy_gradient": float((iou_gradient >= 0.5).mean()),
        "occlusion_correlation_grad_cam": float(correlation["grad_cam"].mean()),
        "occlusion_correlation_guided_grad_cam": float(correlation["guided_grad_cam"].mean()),
        "occlusion_correlation_guided_backprop": float(correlation["guided_backprop"].mean()),
        "test_accuracy": accuracy,
    }
    figures = {"examples": _examples_figure(cfg, images, boxes_np, cam, saliency, cam_boxes, grad_boxes)}
    return Result(
        metrics=metrics,
        figures=figures,
        details={
            "layer": LAYER,
            "layer_map_size": list(cam.extras["layer_map"].shape[1:]),
            "shapes": list(SHAPES[: cfg.classes]),
            "mean_object_area_fraction": float(area_fraction.mean()),
        },
        notes=[
            (
                "Synthetic shape-on-clutter scenes and a small CNN stand in for ImageNet/PASCAL and VGG-16; "
                "the paper's numbers are not comparable to ours, only the direction of each comparison."
            ),
            "Grad-CAM explains the ground-truth class; the paper's localisation (Section 4.1) uses the predicted class.",
            (
                "The paper's occlusion rank correlations (Table 2, PASCAL VOC 2007 val): 0.254 Grad-CAM, "
                "0.261 Guided Grad-CAM, 0.168 Guided Backprop."
            ),
        ],
    )
