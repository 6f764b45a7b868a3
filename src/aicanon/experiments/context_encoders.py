"""Context Encoders on CIFAR-10 (Pathak et al., CVPR 2016): sharper inpainting with the joint
loss, and inpainting as pre-training.

The paper's two claims, at small scale:

1. *The joint loss (reconstruction + adversarial, Eq. 3) gives sharper inpainting than L2 alone*
   (Figure 1, Section 5.1: "the latter produces much sharper results"). We train two context
   encoders from the same initialisation on the central-block task, one with Eq. (3)
   (lambda_rec 0.999, lambda_adv 0.001) and one with Eq. (1) alone, and measure sharpness on
   held-out images as the **gradient-energy ratio** of the filled hole: the mean squared finite
   difference (horizontal and vertical) of the prediction inside the hole, divided by the same
   quantity of the true pixels there. 1 means as much high-frequency content as the real image;
   an L2 prediction, the mean of the plausible fills, is blurry and scores far below 1. Higher is
   sharper. The claim's metric is ``sharpness_gain`` = joint ratio / L2 ratio (> 1: joint sharper).
   We also report the hole's mean L2 error and PSNR (Table 1's measures): the joint model is
   expected to be slightly *worse* there, the usual price of sharpness.
2. *Features pre-trained by inpainting beat random initialisation on a downstream classifier*
   (Table 2: PASCAL VOC classification 56.5 % mAP against 53.3 % for random Gaussian weights).
   As for the paper's features (and the features the authors released), a third context encoder is
   trained with the reconstruction loss alone on random-region masks (here MNIST digit silhouettes,
   randomly scaled, flipped and placed until a quarter of the image is dropped; the paper deforms
   PASCAL VOC segmentation shapes), predicting the whole image. We then freeze its encoder and
   train a linear probe (multinomial logistic regression on the standardised, globally
   average-pooled last encoder feature maps of whole images) with few labels; the control is the
   probe on the *same* encoder before inpainting training (its random initialisation). The metric is
   ``probe_gain``: probe test accuracy of the pre-trained encoder minus that of the untrained one,
   in points. The paper fine-tunes the whole network; a linear probe is the stricter test of the
   features themselves.

Procedure per seed: CIFAR-10 (the registry's lossy JPEG copy, ``train_per_class`` images per class
for inpainting, labels unused, scaled to [-1, 1]); central 16x16 block of the 32x32 image (the
paper's 64 of 128), overlap ``overlap`` px weighted 10x (Section 5.1); Adam (beta1 0.5) as the
authors' code, with the encoder-decoder's learning rate 10x the discriminator's; the discriminator
sees only the predicted block. Sharpness is measured on ``test_per_class`` held-out test images per
class; the probe is trained on ``probe_labels_per_class`` labelled training images per class and
tested on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.cifar10 import load_cifar10_jpeg
from aicanon.datasets.mnist import load_mnist
from aicanon.vision.context_encoder import (
    ContextDiscriminator,
    ContextEncoder,
    central_block_mask,
    discriminator_loss,
    generator_adversarial_loss,
    joint_loss,
    overlap_weights,
    random_block_mask,
    random_region_mask,
    reconstruction_loss,
)


@dataclass
class Config(ExperimentConfig):
    image_size: int = 32
    """Image side (CIFAR-10's 32; the paper crops 128x128)."""
    block_size: int = 16
    """Side of the central block (half the image, as the paper's 64 of 128)."""
    overlap: int = 2
    """Pixels of the block's border that stay visible but are predicted (and weighted 10x): the
    authors' 4 px of a 64 px block, scaled to a 16 px block would be 1; we keep 2."""
    overlap_weight: float = 10.0
    """Weight of the reconstruction loss on the overlap ring (Section 5.1: 10x)."""
    lambda_rec: float = 0.999
    """Eq. (3)'s weight on the reconstruction loss."""
    lambda_adv: float = 0.001
    """Eq. (3)'s weight on the adversarial loss (the L2-only twin uses 0)."""
    widths: tuple[int, ...] = (32, 64, 128)
    """Encoder channels per stride-2 stage (32 -> 16 -> 8 -> 4); the paper's AlexNet/DCGAN is wider."""
    discriminator_widths: tuple[int, ...] = (32, 64)
    """Discriminator channels per stride-2 stage on the 16x16 block."""
    steps: int = 400
    """Training steps of each context encoder."""
    batch_size: int = 64
    """Images per step (the authors' code: 64)."""
    learning_rate: float = 2e-3
    """Adam learning rate of the context encoder (the authors' code: 10x the discriminator's 2e-4)."""
    discriminator_learning_rate: float = 2e-4
    """Adam learning rate of the discriminator (the authors' code: 2e-4, beta1 0.5)."""
    train_per_class: int = 500
    """CIFAR-10 training images per class used for inpainting (unlabelled use)."""
    test_per_class: int = 50
    """CIFAR-10 test images per class: sharpness, PSNR and the probe's test accuracy."""
    probe_labels_per_class: int = 50
    """Labelled training images per class for the linear probe (few labels)."""
    probe_l2: float = 1.0
    """Inverse-strength C of the probe's L2-regularised logistic regression (scikit-learn)."""
    probe_pool: int = 1
    """The probe reads the encoder's last feature maps average-pooled to ``probe_pool`` x ``probe_pool``."""
    feature_mask: str = "random_region"
    """Mask of the feature-learning run: ``random_region`` (the paper's choice for Table 2; shapes here
    are MNIST digit silhouettes, not PASCAL segments), ``random_block`` or ``central``."""
    feature_steps: int = 400
    """Training steps of the feature-learning context encoder (reconstruction loss only, as the
    features the authors released)."""
    mask_coverage: float = 0.25
    """Fraction of the image dropped by random-block/random-region masks (the paper: up to 1/4)."""
    region_shapes: int = 2000
    """MNIST test digits (threshold 128) used as random-region shapes."""
    mask_bank: int = 1024
    """Random masks drawn once per run and sampled from during training (drawing is Python-slow)."""
    adversarial: bool = True
    """False: the 'joint' arm also trains with L2 alone (ablation: claim 1 must then fail)."""
    pretrain: bool = True
    """False: no inpainting training at all (ablation: both claims must fail)."""
    data: str = "cifar10"
    """Only ``cifar10`` (the registry's lossy JPEG copy)."""

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size, 8)
        check_int("block_size", self.block_size, 4, self.image_size)
        check_int("overlap", self.overlap, 0)
        check_float("overlap_weight", self.overlap_weight, 0.0, finite=True)
        check_float("lambda_rec", self.lambda_rec, 0.0, finite=True)
        check_float("lambda_adv", self.lambda_adv, 0.0, finite=True)
        check_int("steps", self.steps, 0)
        check_int("batch_size", self.batch_size)
        check_float("learning_rate", self.learning_rate, 0.0, min_inclusive=False, finite=True)
        check_float("discriminator_learning_rate", self.discriminator_learning_rate, 0.0, min_inclusive=False)
        check_int("train_per_class", self.train_per_class)
        check_int("test_per_class", self.test_per_class)
        check_int("probe_labels_per_class", self.probe_labels_per_class, 1, self.train_per_class)
        check_float("probe_l2", self.probe_l2, 0.0, min_inclusive=False, finite=True)
        check_choice("data", self.data, ("cifar10",))
        check_int("probe_pool", self.probe_pool, 1, 4)
        check_choice("feature_mask", self.feature_mask, ("random_region", "random_block", "central"))
        check_int("feature_steps", self.feature_steps, 0)
        check_float("mask_coverage", self.mask_coverage, 0.0, 1.0, min_inclusive=False)
        check_int("region_shapes", self.region_shapes, 1, 10_000)
        check_int("mask_bank", self.mask_bank)
        if 2 * self.overlap >= self.block_size:
            raise ValueError(f"overlap must be < block_size / 2 = {self.block_size / 2}, got {self.overlap}")

    @classmethod
    def quick(cls) -> Config:
        # Narrower networks (16-32-64), 300 steps of batch 32 per context encoder, 2 seeds: about
        # 15 s of one CPU thread per seed (measured on a shared machine: 13-17 s).
        return cls(
            scale="quick",
            seeds=2,
            threads=1,
            widths=(16, 32, 64),
            discriminator_widths=(16, 32),
            steps=300,
            feature_steps=300,
            batch_size=32,
            test_per_class=100,
            probe_labels_per_class=100,
        )

    @classmethod
    def full(cls) -> Config:
        # The paper's losses, weights, batch and optimiser on the whole CIFAR-10 training set (~40
        # epochs), with wider networks. The images stay 32x32 (the paper: 128x128 crops), so the
        # overlap stays 2 px of a 16 px block (the authors' 4 px of a 64 px block would be 1 px).
        # Cost estimate: 2 x 30 k central-block steps (one with D) + 30 k feature steps of ~1 M-
        # parameter networks at batch 64: about 10-20 minutes on one GPU, many hours on a CPU.
        return cls(
            scale="full",
            seeds=3,
            widths=(64, 128, 256),
            discriminator_widths=(64, 128),
            steps=30_000,
            feature_steps=30_000,
            train_per_class=5000,
            test_per_class=1000,
            probe_labels_per_class=100,
        )


# Thresholds, set from our quick runs (CPU, 1 thread): sharpness_gain 1.10 and 1.12 (seeds 0, 1), probe_gain
# 7.0 and 6.1 points. Quick thresholds sit below those by more than the seed spread; both ablations
# (no adversarial term, no training) give exactly 1.0 and 0.0 and fail. Full thresholds are our
# expectation for the larger networks (a 400-step run at widths 32-64-128, batch 64, gave a
# sharpness gain of 1.25-1.28), not yet confirmed by a full run.
CLAIMS = [
    Claim(
        metric="sharpness_gain",
        description="gradient-energy ratio of the filled hole, joint loss / L2 alone (> 1: joint sharper)",
        paper=None,
        source="Figure 1 and Section 5.1 (qualitative: 'much sharper results'); no number in the paper",
        quick=1.05,
        full=1.1,
    ),
    Claim(
        metric="probe_gain",
        description="linear-probe accuracy, inpainting-pretrained encoder minus the same encoder untrained",
        paper=3.2,
        source="Table 2: classification 56.5 % mAP (context encoder) vs 53.3 % (random Gaussian), PASCAL VOC "
        "fine-tuning; 56.5 seen in a secondary listing, 53.3 (unverified)",
        quick=2.0,
        full=3.0,
        unit="points",
    ),
    Claim(
        metric="sharpness_joint",
        description="gradient-energy ratio of the joint model's hole fill (1 = as sharp as the truth)",
        paper=None,
        source="reported only",
    ),
    Claim(
        metric="psnr_joint",
        description="PSNR of the joint model in the hole (dB)",
        paper=18.58,
        source="Table 1, Paris StreetView, 'our reconstructions' (unverified)",
        unit="dB",
    ),
]


# --- data ---------------------------------------------------------------------------------------------


def load_data(cfg: Config) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """CIFAR-10 scaled to [-1, 1]: (train images, train labels, test images, test labels)."""
    train_x, train_y = load_cifar10_jpeg("train", limit=cfg.train_per_class)
    test_x, test_y = load_cifar10_jpeg("test", limit=cfg.test_per_class)
    return train_x * 2 - 1, train_y, test_x * 2 - 1, test_y


# --- inpainting training --------------------------------------------------------------------------------


def make_networks(
    cfg: Config, device: torch.device, output_size: int | None = None
) -> tuple[ContextEncoder, ContextDiscriminator]:
    """The context encoder (predicting the central block, or ``output_size`` pixels) and ``D``."""
    output_size = output_size or cfg.block_size
    encoder = ContextEncoder(3, cfg.image_size, output_size, cfg.widths, bottleneck_size=4).to(device)
    discriminator = ContextDiscriminator(3, cfg.block_size, cfg.discriminator_widths).to(device)
    return encoder, discriminator


def mask_bank(cfg: Config, generator: torch.Generator) -> Tensor:
    """``cfg.mask_bank`` random masks of the feature run's kind, bool ``[K, S, S]``."""
    if cfg.feature_mask == "random_block":
        return random_block_mask(
            cfg.mask_bank, cfg.image_size, cfg.image_size // 4, cfg.mask_coverage, generator=generator
        )
    digits, _ = load_mnist("test")
    shapes = digits[: cfg.region_shapes] >= 128  # digit silhouettes stand in for PASCAL segments
    return random_region_mask(shapes, cfg.mask_bank, cfg.image_size, cfg.mask_coverage, generator=generator)


def train_context_encoder(
    cfg: Config,
    images: Tensor,
    networks: tuple[ContextEncoder, ContextDiscriminator],
    *,
    adversarial: bool,
    steps: int,
    generator: torch.Generator,
    label: str,
    masks: Tensor | None = None,
) -> dict[str, list[float]]:
    """Train a context encoder: Eq. (3) when ``adversarial``, Eq. (1) alone otherwise.

    ``masks`` None: the central block with its overlap ring (the encoder predicts the block, ``D``
    sees only the block). Otherwise each image gets a mask drawn from ``masks`` and the encoder
    predicts the whole image, the loss counting only the hole (reconstruction only)."""
    encoder, discriminator = networks
    device = next(encoder.parameters()).device
    if masks is None:
        hole, (top, bottom) = central_block_mask(cfg.image_size, cfg.block_size, cfg.overlap)
        hole = hole.to(device)
        block_weight = overlap_weights(hole, cfg.overlap, cfg.overlap_weight)[top:bottom, top:bottom][
            None, None
        ]
    elif adversarial:
        raise ValueError("adversarial training is implemented for the central mask only (masks must be None)")
    opt_g = torch.optim.Adam(encoder.parameters(), lr=cfg.learning_rate, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(
        discriminator.parameters(), lr=cfg.discriminator_learning_rate, betas=(0.5, 0.999)
    )
    curves: dict[str, list[float]] = {"reconstruction": [], "adversarial": [], "discriminator": []}
    encoder.train()
    discriminator.train()
    for _ in track(range(steps), description=label):
        index = torch.randint(0, images.shape[0], (cfg.batch_size,), generator=generator)
        real = images[index].to(device)
        if masks is not None:
            batch_hole = masks[torch.randint(0, masks.shape[0], (cfg.batch_size,), generator=generator)]
            batch_hole = batch_hole[:, None].to(device)
            # (1 - M) x with the hole at the data mean (0 in [-1, 1]); predict all, score the hole
            rec = reconstruction_loss(encoder(real.masked_fill(batch_hole, 0.0)), real, batch_hole.float())
            adv = torch.zeros((), device=device)
        else:
            real_block = real[:, :, top:bottom, top:bottom]
            fake_block = encoder(real.masked_fill(hole, 0.0))
            if adversarial:  # D sees only the predicted block (central mask, as the paper)
                d_loss = discriminator_loss(discriminator(real_block), discriminator(fake_block.detach()))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                adv = generator_adversarial_loss(discriminator(fake_block))
                curves["discriminator"].append(d_loss.item())
            else:
                adv = torch.zeros((), device=device)
            rec = reconstruction_loss(fake_block, real_block, block_weight)
        loss = joint_loss(rec, adv, cfg.lambda_rec, cfg.lambda_adv if adversarial else 0.0)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        curves["reconstruction"].append(rec.item())
        curves["adversarial"].append(adv.item())
    return curves


# --- evaluation -----------------------------------------------------------------------------------------


def gradient_energy(x: Tensor) -> Tensor:
    """Mean squared horizontal and vertical finite differences of ``[B, C, H, W]``, per image ``[B]``."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).square().flatten(1).mean(1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).square().flatten(1).mean(1)
    return dx + dy


@torch.no_grad()
def inpaint(cfg: Config, encoder: ContextEncoder, images: Tensor) -> tuple[Tensor, Tensor]:
    """The predicted and true hole pixels (the hole only, without the overlap ring) of ``images``."""
    device = next(encoder.parameters()).device
    hole, (top, bottom) = central_block_mask(cfg.image_size, cfg.block_size, cfg.overlap)
    encoder.eval()
    predicted = torch.cat(
        [encoder(batch.to(device).masked_fill(hole.to(device), 0.0)) for batch in images.split(256)]
    )
    inner = slice(cfg.overlap, cfg.block_size - cfg.overlap)
    truth = images[:, :, top:bottom, top:bottom][:, :, inner, inner]
    return predicted.cpu()[:, :, inner, inner], truth


def inpainting_metrics(predicted: Tensor, truth: Tensor) -> dict[str, float]:
    """Sharpness (gradient-energy ratio: prediction / truth, over the set), L2 and PSNR in the hole.
    Pixels are mapped back to [0, 1] for L2 and PSNR."""
    ratio = gradient_energy(predicted).mean() / gradient_energy(truth).mean()
    error = ((predicted - truth) / 2).square().flatten(1).mean(1)
    psnr = (10 * torch.log10(1.0 / error.clamp_min(1e-10))).mean()
    return {"sharpness": float(ratio), "l2": float(error.mean()), "psnr": float(psnr)}


@torch.no_grad()
def encoder_features(encoder: ContextEncoder, images: Tensor, pool: int) -> np.ndarray:
    """Frozen encoder features of whole (unmasked) images, average-pooled to ``pool x pool``, flattened."""
    device = next(encoder.parameters()).device
    encoder.eval()
    features = [
        F.adaptive_avg_pool2d(encoder.encode(b.to(device)), pool).flatten(1) for b in images.split(256)
    ]
    return torch.cat(features).cpu().numpy()


def linear_probe(cfg: Config, encoder: ContextEncoder, data: tuple[Tensor, Tensor, Tensor, Tensor]) -> float:
    """Test accuracy (%) of a logistic-regression probe on the frozen encoder's features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, train_y, test_x, test_y = data
    chosen = torch.cat(
        [torch.nonzero(train_y == c).flatten()[: cfg.probe_labels_per_class] for c in range(10)]
    )
    features = encoder_features(encoder, train_x[chosen], cfg.probe_pool)
    scaler = StandardScaler().fit(features)
    probe = LogisticRegression(C=cfg.probe_l2, max_iter=500)
    probe.fit(scaler.transform(features), train_y[chosen].numpy())
    predicted = probe.predict(scaler.transform(encoder_features(encoder, test_x, cfg.probe_pool)))
    return float(100.0 * (predicted == test_y.numpy()).mean())


# --- figures ----------------------------------------------------------------------------------------------


def _examples_figure(cfg: Config, images: Tensor, fills: dict[str, Tensor]) -> Figure:
    hole, (top, bottom) = central_block_mask(cfg.image_size, cfg.block_size, cfg.overlap)
    rows = {
        "context": images.masked_fill(hole, 0.0),
        **{name: images.clone() for name in fills},
        "truth": images,
    }
    inner = slice(top + cfg.overlap, bottom - cfg.overlap)
    for name, fill in fills.items():
        rows[name][:, :, inner, inner] = fill
    figure = Figure(figsize=(1.2 * images.shape[0], 1.3 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), images.shape[0], squeeze=False)
    for r, (name, row) in enumerate(rows.items()):
        for c in range(images.shape[0]):
            axes[r, c].imshow(((row[c].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy())
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize="small")
    return figure


def _curves_figure(curves: dict[str, dict[str, list[float]]]) -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    for name, run in curves.items():
        axis.plot(run["reconstruction"], label=f"{name}: L_rec", alpha=0.8)
    axis.set(xlabel="step", ylabel="weighted L2 (Eq. 1, mean)", yscale="log", title="reconstruction loss")
    axis.legend(fontsize="small")
    return figure


# --- the experiment ----------------------------------------------------------------------------------------


def run(cfg: Config) -> Result:
    seed(cfg.seed)
    device = select_device(cfg.device)
    data = load_data(cfg)
    train_x, _, test_x, _ = data
    steps = cfg.steps if cfg.pretrain else 0

    # Claim 1: two context encoders on the central block from the same weights and batches, one
    # with the joint loss (Eq. 3), one with L2 alone (Eq. 1).
    initial = [{k: v.clone() for k, v in net.state_dict().items()} for net in make_networks(cfg, device)]
    arms: dict[str, ContextEncoder] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    for name, adversarial in (("joint", cfg.adversarial), ("l2", False)):
        networks = make_networks(cfg, device)
        for net, state in zip(networks, initial):
            net.load_state_dict(state)
        curves[name] = train_context_encoder(
            cfg,
            train_x,
            networks,
            adversarial=adversarial,
            steps=steps,
            generator=torch.Generator().manual_seed(cfg.seed),
            label=f"context encoder, central ({name})",
        )
        arms[name] = networks[0]

    metrics: dict[str, float] = {}
    fills: dict[str, Tensor] = {}
    for name, encoder in arms.items():
        predicted, truth = inpaint(cfg, encoder, test_x)
        fills[name] = predicted[:: cfg.test_per_class][:8]  # one image per class (sorted by class)
        for key, value in inpainting_metrics(predicted, truth).items():
            metrics[f"{key}_{name}"] = value
    metrics["sharpness_gain"] = metrics["sharpness_joint"] / metrics["sharpness_l2"]

    # Claim 2: feature learning (reconstruction loss, the feature run's masks), then a linear probe
    # on the frozen encoder against the same encoder before training.
    generator = torch.Generator().manual_seed(cfg.seed + 10_000)
    central = cfg.feature_mask == "central"
    masks = None if central else mask_bank(cfg, generator)
    features = make_networks(cfg, device, output_size=None if central else cfg.image_size)
    untrained = make_networks(cfg, device, output_size=None if central else cfg.image_size)[0]
    untrained.load_state_dict(features[0].state_dict())
    curves["features"] = train_context_encoder(
        cfg,
        train_x,
        features,
        adversarial=False,
        steps=cfg.feature_steps if cfg.pretrain else 0,
        generator=generator,
        label=f"context encoder, {cfg.feature_mask} (features)",
        masks=masks,
    )
    metrics["probe_untrained"] = linear_probe(cfg, untrained, data)
    metrics["probe_pretrained"] = linear_probe(cfg, features[0], data)
    metrics["probe_gain"] = metrics["probe_pretrained"] - metrics["probe_untrained"]

    figures = {
        "inpainting": _examples_figure(cfg, test_x[:: cfg.test_per_class][:8], fills),
        "training_curves": _curves_figure(curves),
    }
    details = {
        "final_reconstruction": {
            name: run["reconstruction"][-1] if run["reconstruction"] else None for name, run in curves.items()
        },
        "mask_coverage_drawn": float(masks.float().mean()) if masks is not None else None,
        "train_images": int(train_x.shape[0]),
        "test_images": int(test_x.shape[0]),
    }
    notes = [
        "CIFAR-10 (lossy JPEG copy) at 32x32 with a central 16x16 block, small DCGAN-like networks; the "
        "paper uses 128x128 Paris StreetView/ImageNet crops and an AlexNet encoder for feature learning.",
        "Sharpness = gradient energy of the hole fill / that of the true pixels (our measure; the paper "
        "shows sharpness qualitatively, Figure 1). Higher is sharper; sharpness_gain > 1 means the joint "
        "loss is sharper.",
        f"Features: a context encoder trained with the reconstruction loss on {cfg.feature_mask} masks "
        "(random regions are MNIST digit silhouettes here, PASCAL VOC segments in the paper), read by a "
        "linear probe with few labels against the same encoder untrained; the paper fine-tunes on "
        "PASCAL VOC.",
    ]
    if not cfg.adversarial:
        notes.append("adversarial=False: both arms trained with L2 alone (ablation).")
    if not cfg.pretrain:
        notes.append("pretrain=False: no inpainting training (ablation).")
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
