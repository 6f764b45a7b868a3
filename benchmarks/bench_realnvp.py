"""Benchmark: our AffineCoupling against normflows' MaskedAffineFlow, same networks and inputs, one process.

Both compute Eq. 9 of Real NVP, ``y = b x + (1 - b)(x exp(s(b x)) + t(b x))`` with ``s = raw`` (our
``scale="exp"``; outputs are checked equal first). Timed: forward + backward of one layer on
vectors (batch 1024, 64 features, MLP conditioners) and on images (batch 64, 3x32x32, checkerboard
mask, convolutional conditioners). Prints ours / normflows' time ratio (below 1: ours is faster).

    python benchmarks/bench_realnvp.py [--device cpu|cuda] [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torch import nn

from aicanon.generative.flows.coupling import AffineCoupling, alternating_mask, checkerboard_mask


class Pair(nn.Module):
    def __init__(self, s: nn.Module, t: nn.Module) -> None:
        super().__init__()
        self.s, self.t = s, t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.s(x), self.t(x)


def compare(label: str, mask: torch.Tensor, make_net, x: torch.Tensor, device, repeats: int) -> None:
    from normflows.flows import MaskedAffineFlow

    torch.manual_seed(0)
    s_net, t_net = make_net(), make_net()
    reference = MaskedAffineFlow(mask[0], t=t_net, s=s_net).to(device)
    ours = AffineCoupling(mask, Pair(s_net, t_net), scale="exp").to(device)
    x = x.to(device).requires_grad_(True)
    with torch.no_grad():
        difference = max(
            (a - b).abs().max().item() for a, b in zip(ours(x), reference(x))
        )  # same numbers first

    def step(layer):
        y, logdet = layer(x)
        (y.square().mean() - logdet.mean()).backward()

    timings = _timing.time_alternately(
        {"ours": lambda: step(ours), "normflows": lambda: step(reference)},
        repeats,
        device,
        warmup=3,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "normflows": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=30)
    _timing.print_setup(args, "median", "forward + backward of one affine coupling")
    compare(
        "vectors (1024 x 64, MLP 64-256-64)",
        alternating_mask(64),
        lambda: nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64)),
        torch.randn(1024, 64),
        args.device,
        args.repeats,
    )
    compare(
        "images (64 x 3 x 32 x 32, checkerboard, conv)",
        checkerboard_mask(32, 32).expand(1, 3, 32, 32).contiguous(),
        lambda: nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 3, 3, padding=1)),
        torch.randn(64, 3, 32, 32),
        args.device,
        max(3, args.repeats // 3),
    )


if __name__ == "__main__":
    main()
