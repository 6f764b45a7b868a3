"""Benchmark: our planar and radial layers against normflows', same parameters and inputs, one process.

Times forward + backward (of the outputs' and log-determinants' sum) of one layer and of a stack of
32 layers, at D = 2 (Figure 3's targets) and D = 40 (the MNIST model's latent), batch 256, and
prints ours / normflows' time ratio (below 1: ours is faster).

    python benchmarks/bench_normalizing_flows.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench normalizing-flows``).
"""

from __future__ import annotations

import math

import _timing
import torch

from aicanon.generative.flows.base import FlowSequence
from aicanon.generative.flows.planar import Planar, Radial


def pair(kind: str, dim: int):
    import normflows

    if kind == "planar":
        reference = normflows.flows.Planar((dim,))
        ours = Planar(dim)
        with torch.no_grad():
            ours.u.copy_(reference.u[0])
            ours.w.copy_(reference.w[0])
            ours.b.copy_(reference.b)
    else:
        reference = normflows.flows.Radial((dim,))
        ours = Radial(dim)
        with torch.no_grad():
            ours.z0.copy_(reference.z_0[0])
            ours.log_alpha.fill_(math.log(abs(float(reference.alpha)) + 1e-6))
            reference.alpha.fill_(math.exp(float(ours.log_alpha)))
            ours.beta.copy_(reference.beta)
    return ours, reference


def compare(kind: str, dim: int, length: int, device: torch.device, repeats: int) -> None:
    import normflows

    torch.manual_seed(0)
    pairs = [pair(kind, dim) for _ in range(length)]
    ours = FlowSequence([p[0] for p in pairs]).to(device)
    reference = torch.nn.ModuleList([p[1] for p in pairs]).to(device)

    def run_reference(z):
        total = torch.zeros(z.shape[0], device=z.device)
        for layer in reference:
            z, logdet = layer(z)
            total = total + logdet
        return z, total

    z = torch.randn(256, dim, device=device)
    with torch.no_grad():
        difference = max((a - b).abs().max().item() for a, b in zip(ours(z), run_reference(z), strict=True))
    timings = _timing.time_alternately(
        {
            "ours": lambda: sum(t.sum() for t in ours(z)).backward(),
            "normflows": lambda: sum(t.sum() for t in run_reference(z)).backward(),
        },
        repeats,
        device,
        warmup=3,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "normflows": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    del normflows
    label = f"{kind} x{length}, D={dim}, batch 256"
    _timing.print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}", width=32)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=50)
    _timing.print_setup(args, "median", "forward + backward")
    for kind in ("planar", "radial"):
        for dim in (2, 40):
            for length in (1, 32):
                compare(kind, dim, length, args.device, args.repeats)


if __name__ == "__main__":
    main()
