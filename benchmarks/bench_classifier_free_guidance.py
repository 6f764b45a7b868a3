"""Benchmark: classifier-free guided sampling steps (Eq. 6): one batched forward over
[conditional; unconditional] against two forwards, and against an unguided step; steps/s of each.
There is no reference implementation of the wrapper to time against (diffusers' pipelines inline
the same arithmetic): the baseline is the unguided step, and the batched/unbatched ratio.

    python benchmarks/bench_classifier_free_guidance.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench classifier-free-guidance``).
"""

from __future__ import annotations

import argparse

import _timing
import torch

from aicanon.generative.diffusion.classifier_free import ClassifierFreeGuidance
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.schedules import cosine_betas
from aicanon.generative.diffusion.unet import UNet, UNetConfig


def compare(args: argparse.Namespace, widths: tuple[int, ...], resolution: int, batch: int) -> None:
    torch.manual_seed(0)
    cfg = UNetConfig(
        in_channels=1, out_channels=1, block_out_channels=widths, layers_per_block=1,
        attention_levels=tuple(i == len(widths) - 1 for i in range(len(widths))), attention_head_dim=64,
        num_classes=11, time_scale_shift=True, resample="resnet", mid_attention_norm=False,
    )  # fmt: skip
    model = UNet(cfg).to(args.device).eval()
    diffusion = GaussianDiffusion(cosine_betas(1000)).to(args.device)
    x = torch.randn(batch, 1, resolution, resolution, device=args.device)
    t = torch.full((batch,), 500, device=args.device)
    kwargs = {"class_labels": torch.randint(0, 10, (batch,), device=args.device)}
    batched = ClassifierFreeGuidance(model, 2.0, 10)
    twice = ClassifierFreeGuidance(model, 2.0, 10, batched=False)
    with torch.no_grad():
        timings = _timing.time_alternately(
            {
                "batched": lambda: diffusion.p_sample(batched, x, t, model_kwargs=kwargs),
                "two_calls": lambda: diffusion.p_sample(twice, x, t, model_kwargs=kwargs),
                "unguided": lambda: diffusion.p_sample(model, x, t, model_kwargs=kwargs),
            },
            args.repeats,
            args.device,
            warmup=2,
        )
    rates = ", ".join(f"{name} {1 / timing.median:.1f}" for name, timing in timings.items())
    _timing.print_comparison(
        f"CFG step, batch {batch}, {resolution}x{resolution}",
        timings,
        ours="batched",
        note=f"steps/s: {rates}",
        width=36,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    args = _timing.parse_common_args(parser, repeats=7)
    _timing.print_setup(args, "median")
    compare(args, (32, 64), 8, 256)
    compare(args, (64, 128), 32, 16 if args.device.type == "cpu" else 128)


if __name__ == "__main__":
    main()
