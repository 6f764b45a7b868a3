"""Benchmark: our TCN against the authors' block design and against same-size LSTM/GRU, one process.

No maintained reference library is installed for TCN (the authors' repository, locuslab/TCN, is a
research script; ``pytorch-tcn`` and darts' ``TCNModel`` exist on PyPI but are not dependencies
here). So the script times, on the same inputs, forward + backward of:

* ``ours``: :class:`aicanon.language.tcn.TemporalConvNet` (left padding, parametrised weight norm);
* ``chomp``: the authors' design written with plain torch layers (symmetric padding, then the
  trailing ``(k - 1) d`` outputs chopped off) with the same weights, so the outputs agree;
* ``lstm`` and ``gru``: ``torch.nn.LSTM``/``nn.GRU`` with their hidden size chosen to match the TCN's
  parameter count (the paper's comparison), on the same sequences.

Shapes: the paper's adding problem (T = 600, 8 x 24, k = 8, 2 inputs), copy memory (T = 1020, 8 x 10,
k = 8) and sequential MNIST (T = 784, 8 x 25, k = 7), batch 32. Ratios below 1: ours is faster.

    python benchmarks/bench_tcn.py [--device cpu|cuda] [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torch import nn

from aicanon.language.tcn import TemporalConvNet


class _Chomp(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.size].contiguous() if self.size else x


def chomp_copy(ours: TemporalConvNet) -> nn.Module:
    """The pad-both-sides-and-chomp TCN of the authors' code, with our weights (weight norm folded)."""

    class Block(nn.Module):
        def __init__(self, block) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            for conv in (block.conv1, block.conv2):
                plain = nn.Conv1d(
                    conv.in_channels,
                    conv.out_channels,
                    conv.kernel_size,
                    padding=conv.left_padding,
                    dilation=conv.dilation,
                )
                with torch.no_grad():
                    plain.weight.copy_(conv.weight)
                    plain.bias.copy_(conv.conv.bias)
                layers += [nn.utils.parametrizations.weight_norm(plain), _Chomp(conv.left_padding), nn.ReLU()]
            self.net = nn.Sequential(*layers)
            self.downsample = block.downsample

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            residual = x if self.downsample is None else self.downsample(x)
            return torch.relu(self.net(x) + residual)

    return nn.Sequential(*[Block(b) for b in ours.blocks])


def matched_rnn(cell: type[nn.Module], input_size: int, target: int) -> nn.Module:
    best = None
    for hidden in range(4, 512):
        rnn = cell(input_size, hidden, batch_first=True)
        count = sum(p.numel() for p in rnn.parameters())
        if best is None or abs(count - target) < abs(best[0] - target):
            best = (count, rnn)
        if count > target:
            break
    return best[1]


def compare(label: str, input_size: int, channels: list[int], kernel_size: int, length: int, args) -> None:
    device = args.device
    torch.manual_seed(0)
    ours = TemporalConvNet(input_size, channels, kernel_size).to(device)
    chomp = chomp_copy(ours).to(device)
    target = sum(p.numel() for p in ours.parameters())
    lstm = matched_rnn(nn.LSTM, input_size, target).to(device)
    gru = matched_rnn(nn.GRU, input_size, target).to(device)
    x = torch.randn(32, input_size, length, device=device)
    x_seq = x.transpose(1, 2).contiguous()
    with torch.no_grad():
        difference = (ours(x) - chomp(x)).abs().max().item()
    models = {"ours": ours, "chomp": chomp, "lstm": lstm, "gru": gru}
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours(x).square().mean().backward(),
            "chomp": lambda: chomp(x).square().mean().backward(),
            "lstm": lambda: lstm(x_seq)[0].square().mean().backward(),
            "gru": lambda: gru(x_seq)[0].square().mean().backward(),
        },
        args.repeats,
        device,
        warmup=2,
        before_each={name: (lambda m=m: m.zero_grad(set_to_none=True)) for name, m in models.items()},
    )
    sizes = "/".join(f"{sum(p.numel() for p in m.parameters()) // 1000}K" for m in models.values())
    _timing.print_comparison(
        label, timings, "median", note=f"params {sizes}, max |diff| {difference:.1e}", width=34
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=5)
    _timing.print_setup(args, "median", "forward + backward, batch 32")
    compare("adding T=600 (8x24, k=8)", 2, [24] * 8, 8, 600, args)
    compare("copy memory T=1020 (8x10, k=8)", 10, [10] * 8, 8, 1020, args)
    compare("seq. MNIST T=784 (8x25, k=7)", 1, [25] * 8, 7, 784, args)


if __name__ == "__main__":
    main()
