"""Benchmark: the ADM UNet (AdaGN, BigGAN up/down blocks, 64 channels per head, class embedding)
against diffusers' UNet2DModel with the same options and weights, forward + backward; and the cost of
a classifier-guided sampling step (Algorithm 1) against an unguided one, in steps/s.

    python benchmarks/bench_adm_guided_diffusion.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench adm-guided-diffusion``). Ratios below 1: ours faster.
"""

from __future__ import annotations

import argparse

import _timing
import torch

from aicanon.generative.diffusion.classifier_guidance import (
    NoisyClassifier,
    NoisyClassifierConfig,
    classifier_cond_fn,
)
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.schedules import cosine_betas
from aicanon.generative.diffusion.unet import UNet, UNetConfig, config_from_diffusers, config_to_diffusers


def adm_config(size: str) -> UNetConfig:
    widths = (64, 128) if size == "small" else (128, 256, 256)
    return UNetConfig(
        in_channels=3,
        out_channels=3,
        block_out_channels=widths,
        layers_per_block=2,
        attention_levels=tuple(i > 0 for i in range(len(widths))),
        attention_head_dim=64,
        num_classes=10,
        time_scale_shift=True,
        resample="resnet",
        mid_attention_norm=False,
    )


def unet_vs_diffusers(args: argparse.Namespace, size: str, resolution: int, batch: int) -> None:
    try:
        import diffusers
    except ImportError:
        print("diffusers not installed: skipping the UNet comparison")
        return
    cfg = adm_config(size)
    torch.manual_seed(0)
    reference = diffusers.UNet2DModel(**config_to_diffusers(cfg, sample_size=resolution)).to(args.device)
    ours = UNet(config_from_diffusers(dict(reference.config))).to(args.device)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(batch, 3, resolution, resolution, device=args.device)
    t = torch.randint(0, 1000, (batch,), device=args.device)
    y = torch.randint(0, 10, (batch,), device=args.device)
    with torch.no_grad():
        difference = (ours(x, t, y) - reference(x, t, class_labels=y).sample).abs().max().item()
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours(x, t, y).square().mean().backward(),
            "diffusers": lambda: reference(x, t, class_labels=y).sample.square().mean().backward(),
        },
        args.repeats,
        args.device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "diffusers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    label = f"ADM UNet {size} fwd+bwd {batch}x3x{resolution}^2"
    _timing.print_comparison(label, timings, note=f"max |diff| {difference:.1e}", width=46)


def guided_step(args: argparse.Namespace, batch: int) -> None:
    torch.manual_seed(0)
    cfg = UNetConfig(
        in_channels=1, out_channels=1, block_out_channels=(32, 64), layers_per_block=1,
        attention_levels=(False, True), attention_head_dim=64, num_classes=11, time_scale_shift=True,
        resample="resnet", mid_attention_norm=False,
    )  # fmt: skip
    model = UNet(cfg).to(args.device).eval()
    classifier = (
        NoisyClassifier(
            NoisyClassifierConfig(
                in_channels=1,
                image_size=8,
                num_classes=10,
                block_out_channels=(32, 64),
                layers_per_block=1,
                attention_levels=(False, True),
                attention_head_dim=64,
            )  # fmt: skip
        )
        .to(args.device)
        .eval()
    )
    diffusion = GaussianDiffusion(cosine_betas(1000)).to(args.device)
    x = torch.randn(batch, 1, 8, 8, device=args.device)
    t = torch.full((batch,), 500, device=args.device)
    y = torch.randint(0, 10, (batch,), device=args.device)
    cond_fn = classifier_cond_fn(classifier, 2.0, labels=y)
    kwargs = {"class_labels": y}
    with torch.no_grad():
        timings = _timing.time_alternately(
            {
                "guided": lambda: diffusion.p_sample(model, x, t, model_kwargs=kwargs, cond_fn=cond_fn),
                "unguided": lambda: diffusion.p_sample(model, x, t, model_kwargs=kwargs),
            },
            args.repeats,
            args.device,
            warmup=2,
        )
    guided, unguided = timings["guided"].median, timings["unguided"].median
    _timing.print_comparison(
        f"ancestral step, batch {batch}, 8x8 digits",
        timings,
        ours="guided",
        note=f"{1 / guided:.1f} guided steps/s, {1 / unguided:.1f} unguided steps/s",
        width=46,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    args = _timing.parse_common_args(parser, repeats=5)
    _timing.print_setup(args, "median")
    unet_vs_diffusers(args, "small", 32, 8)
    if args.device.type == "cuda":
        unet_vs_diffusers(args, "base", 64, 32)
    guided_step(args, 256)


if __name__ == "__main__":
    main()
