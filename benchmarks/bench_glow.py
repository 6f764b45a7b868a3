"""Benchmark: Glow's LU-decomposed 1x1 convolution and affine coupling, ours against normflows', one process.

Same weights and inputs (normflows' ``inverse`` is the data -> latent direction our ``forward``
computes); times forward + backward of ``(z^2).sum() - logdet.sum()`` and prints ours / normflows'
time ratio (below 1: ours is faster). The callables alternate, repeat after repeat; median reported.

    python benchmarks/bench_glow.py [--device cpu|cuda] [--threads N] [--repeats R] [--hidden H]

(also ``aicanon bench glow -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.generative.flows.glow import GlowConditioner, GlowCoupling, InvertibleConv1x1


def lu_convs(channels: int, device: torch.device):
    import normflows as nf

    torch.manual_seed(0)
    reference = nf.flows.Invertible1x1Conv(channels, use_lu=True).to(device)
    ours = InvertibleConv1x1(channels, lu=True).to(device)
    with torch.no_grad():
        ours.permutation.copy_(reference.P)
        ours.sign_s.copy_(reference.sign_S)
        ours.lower.copy_(torch.tril(reference.L, -1))
        ours.upper.copy_(torch.triu(reference.U, 1))
        ours.log_s.copy_(reference.log_S)
    return ours, reference


def couplings(channels: int, hidden: int, device: torch.device):
    import normflows as nf

    torch.manual_seed(0)
    net = nf.nets.ConvNet2d((channels // 2, hidden, hidden, channels), (3, 1, 3), 0.0, init_zeros=False)
    reference = nf.flows.AffineCouplingBlock(net, scale=True, scale_map="sigmoid").to(device)
    conditioner = GlowConditioner(channels // 2, channels, hidden, normalize=False)
    ours = GlowCoupling(channels, hidden, "affine", conditioner=conditioner).to(device)
    sign = torch.ones(channels, device=device)
    sign[0::2] = -1.0  # normflows subtracts the shift (data -> latent); Glow's code adds it
    with torch.no_grad():
        conditioner.first.load_state_dict(net.net[0].state_dict())
        conditioner.second.load_state_dict(net.net[2].state_dict())
        conditioner.last.conv.weight.copy_(net.net[4].weight * sign.view(-1, 1, 1, 1))
        conditioner.last.conv.bias.copy_(net.net[4].bias * sign)
    return ours, reference


def compare(label: str, ours, reference, x: torch.Tensor, repeats: int, device: torch.device) -> None:
    def loss(out):
        z, logdet = out
        return z.square().sum() - logdet.sum()

    with torch.no_grad():  # the same function first: a benchmark of two different ones means nothing
        difference = (ours(x)[0] - reference.inverse(x)[0]).abs().max().item()
    timings = _timing.time_alternately(
        {
            "ours": lambda: loss(ours(x)).backward(),
            "normflows": lambda: loss(reference.inverse(x)).backward(),
        },
        repeats,
        device,
        warmup=3,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "normflows": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}", width=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=128, help="coupling width (512 in the paper)")
    parser.add_argument("--batch", type=int, default=64)
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward (data -> latent)")
    for channels, size in ((12, 16), (48, 4)):
        x = torch.randn(args.batch, channels, size, size, device=args.device)
        ours, reference = lu_convs(channels, args.device)
        compare(
            f"LU 1x1 conv, [{args.batch},{channels},{size},{size}]",
            ours,
            reference,
            x,
            args.repeats,
            args.device,
        )
        ours, reference = couplings(channels, args.hidden, args.device)
        compare(
            f"affine coupling w{args.hidden}, [{args.batch},{channels},{size},{size}]",
            ours,
            reference,
            x,
            args.repeats,
            args.device,
        )


if __name__ == "__main__":
    main()
