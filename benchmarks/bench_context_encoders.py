"""Benchmark: the channel-wise fully connected layer (aicanon.vision.context_encoder) against the
obvious ways of computing the same function, same weights and inputs, in one process.

No maintained library implements context encoders, so the baselines are (1) one ``torch.bmm``
over the channels with explicit transposes (``[C, B, n^2] @ [C, n^2, n^2]``), (2) a Python loop of
one matmul per channel (Section 3.1 written literally) and (3) a full dense layer with the
block-diagonal weight (what the channel-wise layer saves: ``m^2 n^4`` against ``m n^4`` weights).
Each is timed forward + backward, alternately, at the paper's feature
sizes: AlexNet's pool5 (256 x 6 x 6, the feature-learning encoder) and the DCGAN-like encoder's
512 x 4 x 4. Prints ours / baseline (below 1: ours is faster) and the largest output difference.

    python benchmarks/bench_context_encoders.py [--device cpu|cuda] [--threads N] [--repeats R] [--batch B]
"""

from __future__ import annotations

import argparse

import _timing
import torch

from aicanon.vision.context_encoder import channelwise_linear


def per_channel_loop(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    side = x.shape[-1]
    return torch.stack(
        [(x[:, c].flatten(1) @ weight[c] + bias[c]).view(-1, side, side) for c in range(x.shape[1])], dim=1
    )


def transposed_bmm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return (torch.bmm(x.flatten(2).transpose(0, 1), weight).transpose(0, 1) + bias).reshape(x.shape)


def compare(channels: int, side: int, batch: int, device: torch.device, repeats: int) -> None:
    generator = torch.Generator().manual_seed(0)
    positions = side * side
    x = torch.randn(batch, channels, side, side, generator=generator).to(device)
    weight = (torch.randn(channels, positions, positions, generator=generator) / side).to(device)
    bias = torch.randn(channels, positions, generator=generator).to(device)
    dense = torch.block_diag(*weight)  # [C n^2, C n^2]
    x.requires_grad_(True)
    weight.requires_grad_(True)
    dense.requires_grad_(True)

    def run_dense():
        return (x.flatten(1) @ dense + bias.flatten()).view_as(x)

    candidates = {
        "ours": lambda: channelwise_linear(x, weight, bias),
        "bmm": lambda: transposed_bmm(x, weight, bias),
        "loop": lambda: per_channel_loop(x, weight, bias),
        "dense": run_dense,
    }
    with torch.no_grad():
        reference = candidates["loop"]()
        difference = max((fn() - reference).abs().max().item() for fn in candidates.values())

    def clear():
        x.grad = weight.grad = dense.grad = None

    timings = _timing.time_alternately(
        {name: (lambda fn=fn: fn().square().sum().backward()) for name, fn in candidates.items()},
        repeats,
        device,
        warmup=2,
        before_each={name: clear for name in candidates},
    )
    label = f"{channels} x {side} x {side}, batch {batch}"
    _timing.print_comparison(label, timings, "min", note=f"max |diff| {difference:.1e}", width=28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="images per batch (the authors' code: 64)")
    args = _timing.parse_common_args(parser, repeats=20)
    _timing.print_setup(args, "min", "forward + backward of the channel-wise fully connected layer")
    compare(256, 6, args.batch, args.device, args.repeats)  # AlexNet pool5
    compare(512, 4, args.batch, args.device, args.repeats)  # DCGAN-like encoder at 128 x 128 input


if __name__ == "__main__":
    main()
