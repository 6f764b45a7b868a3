"""MLP-Mixer (Tolstikhin et al. 2021), Figures 2-3: Mixer gains more from more pre-training data
than a ResNet does, like ViT.

The paper pre-trains Mixer, ViT and BiT ResNets on growing subsets of JFT-300M (3%, 10%, 30%,
100%, Figure 2 right / Section 3.2) and compares downstream accuracy: with the least data Mixer
overfits and trails BiT; with more data it improves faster than BiT, similar to ViT ("the
performance gap between Mixer-B/32 and BiT-R152x2 ... shrinks with more data").

We run the data-fraction protocol of the ViT experiment (:mod:`aicanon.testbeds.data_fraction`: same
data, same budget per model and fraction) with a Mixer added to the ViT and the ResNet, and draw the
three curves on one plot. The claim is Mixer's larger gain from data than the ResNet's; whether
Mixer overtakes the ResNet is reported, not claimed. The measured curves, gains and probes are in
each run's result (``results/mlp-mixer/``, RESULTS.md).

Departures from the paper, and why:

* Scale: MNIST fractions of 600 and 60,000 images (quick; CIFAR-10 JPEG 2%-100% full) instead of
  JFT subsets of 9M-300M, a Mixer of width 64 and 4 layers with 7x7 patches (D_S = 32,
  D_C = 128, Table 1's ratios), 250 steps of 96 images per model and fraction, with the ViT
  experiment's quick optimiser, ViT and ResNet (without its separate 1,500-step ViT).
* The downstream evaluation is test accuracy on the same dataset plus the few-shot linear probe on
  a second one (reported), not the paper's ImageNet 5-shot.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from torch import nn

from aicanon.core import Claim, ExperimentConfig, Result, select_device
from aicanon.core.results import checkpoint_folder
from aicanon.testbeds.data_fraction import (
    FULL_PROTOCOL,
    QUICK_PROTOCOL,
    FractionData,
    FractionProtocol,
    make_resnet,
    make_vit,
    run_curves,
)
from aicanon.vision.mlp_mixer import MlpMixer

__all__ = ["CLAIMS", "Config", "make_mixer", "run"]


@dataclass
class Config(ExperimentConfig, FractionProtocol):
    """The data-fraction protocol's fields (:class:`~aicanon.testbeds.data_fraction.FractionProtocol`:
    data, budget, optimiser, the ViT and ResNet arms) and the Mixer arm's size."""

    mixer_hidden_dim: int = 64
    """Mixer hidden size C."""
    mixer_depth: int = 4
    """Mixer layers."""
    mixer_tokens_ratio: float = 0.5
    """D_S / C (Table 1: 0.5)."""
    mixer_channels_ratio: float = 2.0
    """D_C / C (Table 1: 4; 2 in the quick run, as the quick ViT's MLP ratio)."""

    @classmethod
    def quick(cls) -> Config:
        # The ViT experiment's quick protocol (data, optimiser, the cheap ResNet) at 250 steps per
        # arm: Mixer's claims compare it with the ResNet, and the ViT arm is only drawn.
        return cls(
            scale="quick",
            seeds=1,
            **{**QUICK_PROTOCOL, "steps": 250},
        )

    @classmethod
    def full(cls) -> Config:
        # The ViT experiment's full protocol (CIFAR-10 JPEG, ViT-Ti/4) with a Mixer of width 512.
        return cls(
            scale="full",
            seeds=3,
            **FULL_PROTOCOL,
            mixer_hidden_dim=512,
            mixer_depth=8,
            mixer_channels_ratio=4.0,
        )


def make_mixer(cfg: Config, data: FractionData) -> nn.Module:
    return MlpMixer(
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        in_chans=data.in_chans,
        num_classes=data.num_classes,
        hidden_dim=cfg.mixer_hidden_dim,
        depth=cfg.mixer_depth,
        tokens_mlp_dim=max(1, int(cfg.mixer_hidden_dim * cfg.mixer_tokens_ratio)),
        channels_mlp_dim=max(1, int(cfg.mixer_hidden_dim * cfg.mixer_channels_ratio)),
    )


def run(cfg: Config) -> Result:
    """One seed: Mixer, ViT and ResNet on each data fraction (one plot), gains, transfer probes."""
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be an mlp_mixer Config, got {type(cfg).__name__}")
    factories = {"mixer": make_mixer, "vit": make_vit, "resnet": make_resnet}
    # A long (full) run checkpoints every arm's training under the results folder, so a killed run
    # resumes where it stopped; the folder is removed once this seed is done.
    checkpoints = checkpoint_folder("mlp-mixer", cfg.to_dict()) if cfg.checkpoint_every else None
    result, _ = run_curves(cfg, factories, cfg.seed, select_device(cfg.device), checkpoint_dir=checkpoints)
    if checkpoints is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)
    result.metrics["mixer_gain_minus_resnet_gain"] = (
        result.metrics["mixer_gain"] - result.metrics["resnet_gain"]
    )
    return result


CLAIMS = [
    Claim(
        metric="mixer_gain_minus_resnet_gain",
        description="Mixer gains more accuracy from more data than the ResNet does",
        paper=None,
        source="Figure 2 (right) and Section 3.2: JFT-300M subsets 3%-100%",
        quick=0.02,
        full=0.02,
    ),
    Claim(
        metric="mixer_accuracy",
        description="Mixer learns the task on the whole training set",
        paper=None,
        source="Table 2 at JFT scale; here MNIST (quick) / CIFAR-10 JPEG (full)",
        quick=0.90,
        full=0.75,
    ),
    Claim(
        metric="resnet_minus_mixer_smallest",
        description="with the least data the ResNet beats Mixer (reported)",
        paper=None,
        source="Figure 2 (right): BiT ahead on the 3% subset",
    ),
    Claim(
        metric="resnet_minus_mixer_largest",
        description="ResNet-minus-Mixer gap on the whole training set (the paper: Mixer ahead at 300M; reported)",
        paper=None,
        source="Figure 2 (right)",
        higher_is_better=False,
    ),
    Claim(
        metric="mixer_transfer_probe",
        description="linear probe of the full-data Mixer's features on the second dataset (reported)",
        paper=None,
        source="Section 3.1 few-shot linear evaluation",
    ),
]
