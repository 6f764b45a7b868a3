"""Testbed: the data-fraction protocol of ViT (Dosovitskiy et al. 2021, Figures 3-4) and MLP-Mixer
(Tolstikhin et al. 2021, Figure 2 right), in miniature.

Both papers pre-train their model and BiT ResNets on growing subsets of one dataset with the same
hyper-parameters and compare accuracy: the ResNet's inductive bias wins with little data, the
attention/MLP model gains more as the data grows. Here:

* :class:`FractionProtocol`: the data, the per-arm budget and optimiser, and the ViT and ResNet arms'
  sizes (an experiment's ``Config`` derives from it and adds its own fields);
* :func:`load_fraction_data`: MNIST, Fashion-MNIST or the JPEG copy of CIFAR-10, resized and
  standardised with the training set's per-channel statistics;
* :func:`fraction_curve`: a fresh model per class-balanced fraction, the same budget
  (``steps x batch_size``) at every fraction, test accuracy;
* :func:`linear_probe`: the papers' few-shot linear evaluation (ViT Section 4.1: regularised least
  squares from frozen features to {-1, 1}^K targets, closed form);
* :func:`run_curves`: curves of several arms on the same data, their gaps to the ResNet, the
  transfer probes and the figure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from aicanon.core import Result, seed
from aicanon.core.checks import check_int
from aicanon.vision.resnet import ResNet
from aicanon.vision.training import ClassifierConfig, accuracy, stratified_subset, train_classifier
from aicanon.vision.vit import VisionTransformer

__all__ = [
    "FULL_PROTOCOL",
    "QUICK_PROTOCOL",
    "FractionData",
    "FractionProtocol",
    "curves_figure",
    "fraction_curve",
    "linear_probe",
    "load_fraction_data",
    "make_resnet",
    "make_vit",
    "run_curves",
]


@dataclass
class FractionProtocol:
    """Data, budget, optimiser and the ViT/ResNet arms of the protocol (defaults: a small MNIST run)."""

    dataset: str = "mnist"
    """Training/evaluation dataset of the fraction curve: ``mnist``, ``fashion-mnist`` or ``cifar10``."""
    transfer_dataset: str = "fashion-mnist"
    """Second dataset for the linear-probe transfer (same image size and channels)."""
    img_size: int = 28
    """Images are resized to this side (28 keeps MNIST as is)."""
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    """Class-balanced fractions of the training set (the papers' growing subsets of JFT)."""
    steps: int = 300
    """Optimiser steps per model and fraction: the same budget at every fraction, as in ViT Figure 4."""
    batch_size: int = 64
    """Minibatch size."""
    lr: float = 2e-3
    """Peak AdamW learning rate (warmup then cosine decay)."""
    warmup_steps: int = 20
    """Linear warmup steps."""
    weight_decay: float = 0.05
    """AdamW weight decay (matrices only)."""
    beta2: float = 0.999
    """AdamW second-moment decay (the papers' Adam: 0.999)."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy (the papers use none at pre-training)."""
    vit_embed_dim: int = 64
    """ViT width D."""
    vit_depth: int = 4
    """ViT layers L."""
    vit_heads: int = 4
    """ViT attention heads."""
    vit_mlp_ratio: float = 2.0
    """ViT MLP width / D."""
    patch_size: int = 7
    """Patch size P of the ViT (and of any patch-based arm)."""
    vit_global_pool: str = "token"
    """ViT readout: ``token`` (class token, ViT Eq. 4) or ``avg`` (global average pooling, Appendix D.3)."""
    resnet_layers: tuple[int, ...] = (1, 1, 1)
    """ResNet basic blocks per stage."""
    resnet_widths: tuple[int, ...] = (8, 16, 32)
    """ResNet channels per stage."""
    resnet_small_inputs: bool = True
    """ResNet stem: a stride-1 3x3 convolution (True) or the ImageNet stem, a stride-2 7x7 convolution
    and max pooling (False: the feature maps are 4x smaller per side, a cheaper ResNet)."""
    test_examples: int = 1000
    """Test images evaluated (the first ones of the test split; 0 = all)."""
    probe_examples: int = 1000
    """Training and test images of the linear probe on the transfer dataset."""
    checkpoint_every: int = 0
    """Steps between training checkpoints of each arm and fraction, so that a killed run resumes
    (0: none; needs a checkpoint folder, see :func:`run_curves`)."""

    def check_protocol(self) -> None:
        """Raise ValueError naming the first field that cannot run."""
        if self.img_size % self.patch_size:
            raise ValueError(
                f"img_size must be a multiple of patch_size, got {self.img_size} and {self.patch_size}"
            )
        if len(self.fractions) < 2:
            raise ValueError(f"fractions must hold at least two fractions for a curve, got {self.fractions!r}")
        if self.vit_global_pool not in ("token", "avg"):
            raise ValueError(f"vit_global_pool must be 'token' or 'avg', got {self.vit_global_pool!r}")
        if not 0 < self.beta2 < 1:
            raise ValueError(f"beta2 must be in (0, 1), got {self.beta2!r}")

    def classifier_config(self, steps: int | None = None) -> ClassifierConfig:
        """The optimiser of every arm: ``steps`` (default ``self.steps``) minibatches, warmup, cosine decay."""
        steps = self.steps if steps is None else steps
        return ClassifierConfig(
            steps=steps,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_steps=min(self.warmup_steps, steps - 1),
            label_smoothing=self.label_smoothing,
            betas=(0.9, self.beta2),
        )


QUICK_PROTOCOL: dict[str, Any] = {
    "fractions": (0.01, 1.0),
    "steps": 200,
    "batch_size": 96,
    "lr": 5e-3,
    "warmup_steps": 50,
    "beta2": 0.98,
    "label_smoothing": 0.1,
    "vit_depth": 3,
    "vit_global_pool": "avg",
    "resnet_widths": (16, 32, 64),
    "resnet_small_inputs": False,
    "test_examples": 0,
}
"""The quick protocol the ViT and Mixer experiments share: MNIST 1 % and 100 %, the recipe chosen by
measurement for two CPU cores (see the ViT experiment's docstring), all 10,000 test images."""

FULL_PROTOCOL: dict[str, Any] = {
    "dataset": "cifar10",
    "transfer_dataset": "cifar10",
    "img_size": 32,
    "fractions": (0.02, 0.1, 0.3, 1.0),
    "steps": 20_000,
    "batch_size": 256,
    "lr": 1e-3,
    "warmup_steps": 1_000,
    "vit_embed_dim": 192,
    "vit_depth": 12,
    "vit_heads": 3,
    "vit_mlp_ratio": 4.0,
    "patch_size": 4,
    "resnet_layers": (2, 2, 2, 2),
    "resnet_widths": (64, 128, 256, 512),
    "test_examples": 0,
    "probe_examples": 5000,
    "checkpoint_every": 1000,
}
"""The full protocol they share: CIFAR-10 (JPEG copy) at 32x32, ViT-Ti/4 against a larger ResNet,
four fractions, training checkpoints every 1,000 steps."""


# --- data ----------------------------------------------------------------------------------------


@dataclass
class FractionData:
    """Normalised float images ``[N, C, S, S]`` and labels of one dataset's train and test splits."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int = 10
    notes: list[str] = field(default_factory=list)

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]


def load_fraction_data(dataset: str, img_size: int, test_examples: int = 0) -> FractionData:
    """Load ``dataset`` (``mnist``, ``fashion-mnist``, ``cifar10``) resized to ``img_size``, standardised."""
    notes = []
    if dataset in ("mnist", "fashion-mnist"):
        from aicanon.datasets.mnist import load_fashion_mnist, load_mnist, to_float_images

        load = load_mnist if dataset == "mnist" else load_fashion_mnist
        (x_train, y_train), (x_test, y_test) = load("train"), load("test")
        x_train, x_test = to_float_images(x_train, img_size), to_float_images(x_test, img_size)
    elif dataset == "cifar10":
        from aicanon.datasets.cifar10 import load_cifar10_jpeg

        # The test file is sorted by class: take the first test_examples/10 of each class.
        x_train, y_train = load_cifar10_jpeg("train")
        x_test, y_test = load_cifar10_jpeg(
            "test", limit=max(1, test_examples // 10) if test_examples else None
        )
        if img_size != 32:
            x_train = torch.nn.functional.interpolate(x_train, size=(img_size, img_size), mode="bilinear")
            x_test = torch.nn.functional.interpolate(x_test, size=(img_size, img_size), mode="bilinear")
        notes.append(
            "CIFAR-10 is the JPEG-compressed copy (quality 75, 4:2:0): lossy, accuracies not comparable"
        )
    else:
        raise ValueError(f"dataset must be 'mnist', 'fashion-mnist' or 'cifar10', got {dataset!r}")
    if test_examples and dataset != "cifar10":
        x_test, y_test = x_test[:test_examples], y_test[:test_examples]
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True)
    return FractionData(dataset, (x_train - mean) / std, y_train, (x_test - mean) / std, y_test, notes=notes)


# --- the ViT and ResNet arms ---------------------------------------------------------------------


def make_vit(protocol: FractionProtocol, data: FractionData) -> VisionTransformer:
    """The ViT arm at ``protocol``'s size, for ``data``'s channels and classes."""
    return VisionTransformer(
        img_size=protocol.img_size,
        patch_size=protocol.patch_size,
        in_chans=data.in_chans,
        num_classes=data.num_classes,
        embed_dim=protocol.vit_embed_dim,
        depth=protocol.vit_depth,
        num_heads=protocol.vit_heads,
        mlp_ratio=protocol.vit_mlp_ratio,
        global_pool=protocol.vit_global_pool,
        # Appendix D.3: with average pooling there is no class token.
        class_token=protocol.vit_global_pool == "token",
    )


def make_resnet(protocol: FractionProtocol, data: FractionData) -> ResNet:
    """The ResNet arm (the papers' BiT baseline in miniature) at ``protocol``'s size."""
    return ResNet(
        layers=protocol.resnet_layers,
        widths=protocol.resnet_widths,
        in_chans=data.in_chans,
        num_classes=data.num_classes,
        small_inputs=protocol.resnet_small_inputs,
    )


# --- the protocol --------------------------------------------------------------------------------


def fraction_curve(
    make_model: Callable[[], nn.Module],
    fractions: tuple[float, ...],
    protocol: FractionProtocol,
    seed_value: int,
    data: FractionData | None = None,
    name: str = "model",
    device: torch.device | str = "cpu",
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
) -> dict[str, Any]:
    """Train a fresh ``make_model()`` on each class-balanced fraction of the training set with the
    same budget (``protocol.steps`` x ``protocol.batch_size``) and test it: ViT Figure 4's protocol.
    With ``checkpoint_dir`` each fraction's training resumes from ``<checkpoint_dir>/<name>-<index>``
    (see :func:`~aicanon.vision.training.train_classifier`), so a rerun skips finished fractions.

    Returns ``{"fractions", "train_sizes", "final_train_loss", "accuracy" (one per fraction),
    "models" (trained, one per fraction, on the CPU)}``. The subset and the minibatch order depend
    only on ``seed_value`` and the fraction, so every model sees the same images.
    """
    if not callable(make_model):
        raise TypeError(
            f"make_model must be a callable returning an nn.Module, got {type(make_model).__name__}"
        )
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be a non-empty tuple of values in (0, 1], got {fractions!r}")
    if data is None:
        data = load_fraction_data(protocol.dataset, protocol.img_size, protocol.test_examples)
    accuracies, sizes, models, losses = [], [], [], []
    for index, fraction in enumerate(fractions):
        generator = torch.Generator().manual_seed(seed_value * 1000 + index)
        subset = stratified_subset(data.y_train, fraction, generator)
        torch.manual_seed(seed_value * 1000 + index)
        model = make_model().to(device)
        trace = train_classifier(
            model,
            data.x_train[subset],
            data.y_train[subset],
            protocol.classifier_config(),
            generator,
            description=f"{name} on {fraction:g} of {data.name}",
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}-{index}",
            checkpoint_every=checkpoint_every,
        )
        accuracies.append(accuracy(model, data.x_test, data.y_test))
        sizes.append(int(subset.numel()))
        # Mean training loss of the last tenth of the steps: how far the model has fitted its subset.
        losses.append(float(np.mean(trace[-max(1, len(trace) // 10) :])))
        models.append(model.cpu())
    return {
        "fractions": list(fractions),
        "train_sizes": sizes,
        "final_train_loss": losses,
        "accuracy": accuracies,
        "models": models,
    }


@torch.no_grad()
def _features(model: nn.Module, x: Tensor) -> np.ndarray:
    """Pooled features before the classifier: pre-logits of ViT/Mixer, the average-pooled map of a ResNet."""
    model.eval()
    outs = [
        model.forward_head(model.forward_features(x[i : i + 256]), pre_logits=True)
        if not isinstance(model, ResNet)
        else torch.flatten(model.avgpool(model.forward_features(x[i : i + 256])), 1)
        for i in range(0, x.shape[0], 256)
    ]
    return torch.cat(outs).numpy()


def linear_probe(
    model: nn.Module, data: FractionData, examples: int, seed_value: int, ridge: float = 1.0
) -> float:
    """Accuracy of the papers' few-shot linear evaluation on frozen pooled features (ViT Section 4.1):
    a regularised least-squares regression from the standardised features of ``examples`` training
    images to {-1, 1}^K targets, solved in closed form, then the argmax on ``examples`` test images."""
    check_int("examples", examples, 1)
    if not ridge > 0:
        raise ValueError(f"ridge must be > 0 (the regulariser of the least squares), got {ridge!r}")
    generator = torch.Generator().manual_seed(seed_value)
    train = torch.randperm(data.x_train.shape[0], generator=generator)[:examples]
    f_train = torch.from_numpy(_features(model, data.x_train[train])).double()
    f_test = torch.from_numpy(_features(model, data.x_test[:examples])).double()
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    ones = torch.ones(f_train.shape[0], 1, dtype=torch.float64)
    design = torch.cat([f_train, ones], dim=1)
    targets = 2.0 * torch.nn.functional.one_hot(data.y_train[train], data.num_classes).double() - 1.0
    weights = torch.linalg.solve(
        design.T @ design + ridge * torch.eye(design.shape[1], dtype=torch.float64), design.T @ targets
    )
    scores = torch.cat([f_test, torch.ones(f_test.shape[0], 1, dtype=torch.float64)], dim=1) @ weights
    return float((scores.argmax(-1) == data.y_test[:examples]).double().mean())


def curves_figure(curves: dict[str, dict[str, Any]], dataset: str) -> Figure:
    figure = Figure(figsize=(5, 3.5))
    axes = figure.subplots()
    for name, curve in curves.items():
        axes.plot(curve["train_sizes"], [100 * a for a in curve["accuracy"]], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel(f"training images ({dataset})")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("Data fraction vs accuracy (cf. ViT Figure 4)")
    axes.legend()
    figure.tight_layout()
    return figure


def _pct(fraction: float) -> str:
    return f"{100 * fraction:g}".replace(".", "_")


def run_curves(
    protocol: FractionProtocol,
    factories: dict[str, Callable[[FractionProtocol, FractionData], nn.Module]],
    seed_value: int,
    device: torch.device | str = "cpu",
    data: FractionData | None = None,
    transfer: FractionData | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
) -> tuple[Result, dict[str, dict[str, Any]]]:
    """The arms' curves on the same data, their gaps to the ``resnet`` arm, transfer probes, figure.

    ``factories`` maps an arm's name to ``factory(protocol, data) -> nn.Module``. Returns the result
    (metrics ``<arm>_accuracy_<pct>pct``, ``<arm>_accuracy``, ``<arm>_gain``, ``<arm>_transfer_probe``,
    and against the ResNet ``resnet_minus_<arm>_smallest/largest`` and ``<arm>_catch_up``) and the
    curves with their trained models (for the caller's ablations). With ``protocol.checkpoint_every``
    and a ``checkpoint_dir``, every arm's training checkpoints there and a rerun resumes it.
    """
    protocol.check_protocol()
    seed(seed_value)
    if data is None:
        data = load_fraction_data(protocol.dataset, protocol.img_size, protocol.test_examples)
    if transfer is None:
        transfer = load_fraction_data(protocol.transfer_dataset, protocol.img_size, protocol.probe_examples)
    curves = {}
    for name, factory in factories.items():
        curves[name] = fraction_curve(
            lambda f=factory: f(protocol, data),
            protocol.fractions,
            protocol,
            seed_value,
            data,
            name,
            device,
            # Each arm and fraction resumes from its own folder when the run was killed.
            checkpoint_dir=checkpoint_dir if protocol.checkpoint_every else None,
            checkpoint_every=protocol.checkpoint_every,
        )
    metrics: dict[str, float] = {}
    for name, curve in curves.items():
        for fraction, acc in zip(protocol.fractions, curve["accuracy"], strict=True):
            metrics[f"{name}_accuracy_{_pct(fraction)}pct"] = acc
        metrics[f"{name}_accuracy"] = curve["accuracy"][-1]
        metrics[f"{name}_gain"] = curve["accuracy"][-1] - curve["accuracy"][0]
        metrics[f"{name}_transfer_probe"] = linear_probe(
            curve["models"][-1], transfer, protocol.probe_examples, seed_value
        )
    notes = list(data.notes)
    if "resnet" in curves:
        for name in curves:
            if name == "resnet":
                continue
            gaps = [
                r - o for r, o in zip(curves["resnet"]["accuracy"], curves[name]["accuracy"], strict=True)
            ]
            metrics[f"resnet_minus_{name}_smallest"] = gaps[0]
            metrics[f"resnet_minus_{name}_largest"] = gaps[-1]
            metrics[f"{name}_catch_up"] = gaps[0] - gaps[-1]
            crossing = next(
                (s for s, g in zip(curves[name]["train_sizes"], gaps, strict=True) if g < 0), None
            )
            notes.append(
                f"{name} vs ResNet: ResNet-minus-{name} gap {', '.join(f'{100 * g:+.1f}' for g in gaps)} points at "
                f"{curves[name]['train_sizes']} images; "
                + (f"{name} overtakes from {crossing} images" if crossing else "no crossing at our scale")
            )
    details: dict[str, Any] = {
        name: {k: v for k, v in curve.items() if k != "models"} for name, curve in curves.items()
    }
    details["parameters"] = {
        name: sum(p.numel() for p in curve["models"][0].parameters()) for name, curve in curves.items()
    }
    notes.append(
        f"curve: {protocol.dataset} fractions {list(protocol.fractions)} "
        f"({next(c['train_sizes'] for c in curves.values())} images), "
        f"{protocol.steps} steps of {protocol.batch_size} for every model and fraction; the paper: "
        "JFT-300M subsets of 9M-300M images (Figure 4)"
    )
    result = Result(
        metrics=metrics,
        figures={"fraction_curve": curves_figure(curves, protocol.dataset)},
        details=details,
        notes=notes,
    )
    return result, curves
