"""Benchmark: our ControlNet against diffusers' ControlNetModel, same weights and inputs, one process.

Times forward and forward + backward of the ControlNet (the residuals it adds to the locked UNet) on
a tiny Stable-Diffusion-shaped config (widths 32/64, two levels with cross-attention, condition 2x the
latent size) and on the experiment's digit config, and prints ours / diffusers' time ratio (below 1:
ours is faster), plus sampling steps/s of the whole controlled UNet (ours). The two run alternately,
repeat after repeat, so machine noise hits both alike; the median is reported.

    python benchmarks/bench_controlnet.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench controlnet -- --device cuda``).
"""

from __future__ import annotations

import argparse
import time
import warnings

import _timing
import torch

from aicanon.generative.diffusion.controlnet import ControlledUNet, ControlNet, config_from_diffusers
from aicanon.generative.diffusion.unet_conditional import ConditionalUNet, ConditionalUNetConfig
from aicanon.generative.diffusion.unet_conditional import config_to_diffusers as unet_to_diffusers

CONFIGS = {
    "SD-shaped (32/64, 4ch 16px, cond 32px, batch 8)": (
        ConditionalUNetConfig(
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=2,
            cross_attention_levels=(True, True),
            heads=4,
            cross_attention_dim=32,
            norm_groups=8,
        ),
        8,
        16,
        3,
    ),
    "digits (16/32, 1ch 8px, cond 16px, batch 64)": (
        ConditionalUNetConfig(
            in_channels=1,
            out_channels=1,
            block_out_channels=(16, 32),
            layers_per_block=1,
            cross_attention_levels=(False, True),
            heads=4,
            cross_attention_dim=8,
            norm_groups=8,
        ),
        64,
        8,
        1,
    ),
}


def compare(label: str, cfg: ConditionalUNetConfig, batch: int, size: int, channels: int, args) -> None:
    import diffusers

    device = args.device
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(**unet_to_diffusers(cfg, sample_size=size))
    reference = diffusers.ControlNetModel.from_unet(
        unet, conditioning_embedding_out_channels=(16, 32), conditioning_channels=channels
    ).to(device)
    with torch.no_grad():  # the zero convs at zero would make every residual trivially equal
        for p in reference.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    ours = ControlNet(config_from_diffusers(dict(reference.config))).to(device)
    ours.load_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, cfg.in_channels, size, size, generator=g).to(device)
    t = torch.randint(0, 1000, (batch,), generator=g).to(device)
    context = torch.randn(batch, 4, cfg.cross_attention_dim, generator=g).to(device)
    condition = torch.rand(batch, channels, 2 * size, 2 * size, generator=g).to(device)

    def run_ours():
        down, mid = ours(x, t, context, condition)
        return down, mid

    def run_theirs():
        down, mid = reference(
            x, t, encoder_hidden_states=context, controlnet_cond=condition, return_dict=False
        )
        return down, mid

    with torch.no_grad():
        (a, am), (b, bm) = run_ours(), run_theirs()
        difference = max(
            [(u - v).abs().max().item() for u, v in zip(a, b, strict=True)] + [(am - bm).abs().max().item()]
        )

    def loss(outputs):
        down, mid = outputs
        return sum(r.square().sum() for r in down) + mid.square().sum()

    with torch.no_grad():
        forward = _timing.time_alternately(
            {"ours": run_ours, "diffusers": run_theirs}, args.repeats, device, warmup=2
        )
    _timing.print_comparison(
        f"{label} forward", forward, "median", note=f"max |diff| {difference:.1e}", width=60
    )
    both = _timing.time_alternately(
        {"ours": lambda: loss(run_ours()).backward(), "diffusers": lambda: loss(run_theirs()).backward()},
        args.repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "diffusers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(f"{label} forward+backward", both, "median", width=60)

    # Sampling throughput of the whole controlled model (locked UNet + ControlNet), ours.
    base = ConditionalUNet(cfg).to(device)
    base.load_state_dict(unet.state_dict())
    controlled = ControlledUNet(base, ours).eval()
    steps = max(5, args.repeats)
    with torch.no_grad():
        controlled(x, t, context, condition)
        _timing.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            controlled(x, t, context, condition)
        _timing.synchronize(device)
    rate = steps / (time.perf_counter() - start)
    print(f"{label + ' sampling':<60}   {rate:8.1f} denoising steps/s (batch {batch}, ours)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "ControlNet residuals, ours vs diffusers ControlNetModel")
    for label, (cfg, batch, size, channels) in CONFIGS.items():
        compare(label, cfg, batch, size, channels, args)


if __name__ == "__main__":
    main()
