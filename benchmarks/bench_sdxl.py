"""Benchmark: our conditional UNet with SDXL's added conditioning (text_embeds + time_ids) against
diffusers' UNet2DConditionModel with ``addition_embed_type="text_time"``, same weights and inputs, one
process; and the sampling speed of the quick experiment's denoiser (encoder pair + UNet).

Times forward + backward on a tiny SDXL-shaped config (levels without / with / with cross-attention,
two transformer layers, linear projections, six micro-conditioning ids) and prints ours / diffusers'
time ratio (below 1: ours is faster). The two run alternately, repeat after repeat, so machine noise
hits both alike; the median is reported. Then: DDIM steps per second of the quick denoiser.

    python benchmarks/bench_sdxl.py [--device cpu|cuda] [--threads N] [--repeats R] [--size S]

(also ``aicanon bench sdxl -- --device cuda``).
"""

from __future__ import annotations

import argparse
import time
import warnings

import _timing
import torch

from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.respace import respace, space_timesteps
from aicanon.generative.diffusion.schedules import make_betas
from aicanon.generative.diffusion.sdxl import class_prompt, micro_conditioning
from aicanon.generative.diffusion.unet_conditional import (
    ConditionalUNet,
    ConditionalUNetConfig,
    config_from_diffusers,
    config_to_diffusers,
)

TINY_SDXL = ConditionalUNetConfig(
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64, 64),
    layers_per_block=2,
    cross_attention_levels=(False, True, True),
    heads=2,
    cross_attention_dim=48,
    transformer_layers=2,
    linear_projection=True,
    norm_groups=8,
    addition_time_embed_dim=16,
    addition_input_dim=32 + 6 * 16,
)


def compare_unet(device: torch.device, size: int, batch: int, repeats: int) -> None:
    import diffusers

    torch.manual_seed(0)
    reference = diffusers.UNet2DConditionModel(**config_to_diffusers(TINY_SDXL, sample_size=size)).to(device)
    ours = ConditionalUNet(config_from_diffusers(dict(reference.config))).to(device)
    ours.load_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, size, size, generator=g).to(device)
    t = torch.randint(0, 1000, (batch,), generator=g).to(device)
    context = torch.randn(batch, 3, 48, generator=g).to(device)
    pooled = torch.randn(batch, 32, generator=g).to(device)
    ids = micro_conditioning((size // 2, size), (0, 4), (size, size), batch=batch, device=device)
    added = {"text_embeds": pooled, "time_ids": ids}

    def run_ours():
        return ours(x, t, context, **added)

    def run_reference():
        return reference(x, t, encoder_hidden_states=context, added_cond_kwargs=added).sample

    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = (run_ours() - run_reference()).abs().max().item()
    timings = _timing.time_alternately(
        {
            "ours": lambda: run_ours().square().sum().backward(),
            "diffusers": lambda: run_reference().square().sum().backward(),
        },
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "diffusers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(
        f"text_time UNet, batch {batch} x 4 x {size}^2",
        timings,
        "median",
        note=f"max |diff| {difference:.1e}",
    )


def sampling_speed(device: torch.device, steps: int = 20) -> None:
    from aicanon.experiments.sdxl import Config, build_denoiser

    torch.manual_seed(0)
    model = build_denoiser(Config.quick()).to(device).eval()
    chain = respace(GaussianDiffusion(make_betas("cosine", 1000)), space_timesteps(1000, steps)).to(device)
    count = 300
    tokens = class_prompt(torch.arange(10).repeat_interleave(count // 10), 10).to(device)
    ids = micro_conditioning((8, 8), (0, 0), (8, 8), batch=count, device=device)
    kwargs = {"tokens": tokens, "time_ids": ids}
    chain.sample(model, (count, 1, 8, 8), method="ddim", model_kwargs=kwargs, device=device)  # warm-up
    _timing.synchronize(device)
    start = time.perf_counter()
    chain.sample(model, (count, 1, 8, 8), method="ddim", model_kwargs=kwargs, device=device)
    _timing.synchronize(device)
    seconds = time.perf_counter() - start
    print(
        f"quick denoiser, DDIM on {count} images 8x8: {steps / seconds:.1f} steps/s "
        f"({count * steps / seconds:.0f} images x steps/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=16, help="latent height and width")
    parser.add_argument("--batch", type=int, default=8)
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward")
    compare_unet(args.device, args.size, args.batch, args.repeats)
    sampling_speed(args.device)


if __name__ == "__main__":
    main()
