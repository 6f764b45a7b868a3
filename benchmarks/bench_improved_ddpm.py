"""Benchmark: Improved DDPM's reverse step with learned variances (Eq. 15), ours against diffusers'
``DDPMScheduler(variance_type="learned_range")``, on the same model output, in one process; and
respaced sampling (Section 4) in steps per second, both samplers driving the same UNet.

1. One reverse step x_t → x_{t−1} from a fixed model output (no network), cosine schedule,
   T = 4000 (the paper's) at several batch shapes; the outputs are checked equal first.
2. A 25-step respaced chain (diffusers' own timestep choice, given to ours through ``respace``) with a
   small UNet of ours as the model: sampling steps per second (network included) and the ratio.

    python benchmarks/bench_improved_ddpm.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench improved-ddpm -- --device cuda``). Ratio below 1: ours is faster.
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.respace import respace
from aicanon.generative.diffusion.schedules import cosine_betas
from aicanon.generative.diffusion.unet import UNet, UNetConfig


class Fixed(torch.nn.Module):
    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, x, t):
        return self.output


def compare_step(shape: tuple[int, ...], device: torch.device, repeats: int) -> None:
    from diffusers import DDPMScheduler

    T, t = 4000, 1200
    scheduler = DDPMScheduler(
        num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", variance_type="learned_range"
    )
    diffusion = GaussianDiffusion(cosine_betas(T), variance="learned_range").to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    x_t = torch.randn(shape, device=device, generator=generator)
    output = torch.randn((shape[0], 2 * shape[1], *shape[2:]), device=device, generator=generator)
    output[:, shape[1] :] = output[:, shape[1] :].tanh()
    model = Fixed(output)
    steps = torch.full((shape[0],), t, device=device)

    def ours():
        return diffusion.p_sample(model, x_t, steps, generator=torch.Generator(device=device).manual_seed(1))[
            "sample"
        ]

    def theirs():
        return scheduler.step(
            output, t, x_t, generator=torch.Generator(device=device).manual_seed(1)
        ).prev_sample

    difference = (ours() - theirs()).abs().max().item()
    timings = _timing.time_alternately({"ours": ours, "diffusers": theirs}, repeats, device, warmup=3)
    _timing.print_comparison(
        f"one step, learned_range, {tuple(shape)}", timings, "median", note=f"max |diff| {difference:.1e}"
    )


def compare_sampling(device: torch.device, repeats: int, batch: int = 256, steps: int = 25) -> None:
    from diffusers import DDPMScheduler

    T = 4000
    torch.manual_seed(0)
    unet = (
        UNet(
            UNetConfig(
                in_channels=1,
                out_channels=2,
                block_out_channels=(16, 32),
                layers_per_block=1,
                attention_levels=(False, False),
                mid_attention=False,
                norm_groups=8,
            )
        )
        .to(device)
        .eval()
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", variance_type="learned_range"
    )
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.tolist()
    diffusion = respace(GaussianDiffusion(cosine_betas(T), variance="learned_range"), sorted(timesteps)).to(
        device
    )
    noise = torch.randn(
        batch, 1, 8, 8, device=device, generator=torch.Generator(device=device).manual_seed(0)
    )

    @torch.no_grad()
    def theirs():
        x, generator = noise, torch.Generator(device=device).manual_seed(1)
        for t in timesteps:
            output = unet(x, torch.full((batch,), t, device=device))
            x = scheduler.step(output, t, x, generator=generator).prev_sample
        return x

    def ours():
        return diffusion.sample(
            unet, tuple(noise.shape), noise=noise, generator=torch.Generator(device=device).manual_seed(1)
        )

    difference = (ours() - theirs()).abs().max().item()
    timings = _timing.time_alternately({"ours": ours, "diffusers": theirs}, repeats, device, warmup=1)
    _timing.print_comparison(
        f"{steps}-step respaced chain, UNet, batch {batch}",
        timings,
        "median",
        note=f"max |diff| {difference:.1e}",
    )
    for name, timing in timings.items():
        print(f"    {name}: {steps / timing.median:8.1f} sampling steps/s ({batch} images of 8x8 per step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "DDPM reverse step with learned variances, ours vs diffusers")
    for shape in [(64, 1, 8, 8), (64, 3, 32, 32), (16, 3, 64, 64)]:
        compare_step(shape, args.device, args.repeats)
    compare_sampling(args.device, max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
