"""PReLU and He init: ours (aicanon.vision.rectifiers) against torch.nn.PReLU / torch.nn.init, one process.

Each row times one operation on the same inputs in both and prints the ratio ours/reference (below
1: ours faster) and the largest difference between the two (zero for the initialisers, which draw
the same numbers from the same generator state).

    python benchmarks/bench_prelu_he_init.py [--repeats 20] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torch import nn

from aicanon.vision.rectifiers import PReLU, he_init_, xavier_init_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = _timing.parse_common_args(parser, repeats=20, threads=2, device="cpu")
    device = args.device

    def mean_times(ours_fn, reference_fn) -> dict[str, _timing.Timing]:
        # one sample of ``repeats`` calls between two synchronisations: the operations take
        # microseconds on a GPU, so a synchronisation per call would dominate what is measured
        calls = {"ours": ours_fn, "torch": reference_fn}
        return _timing.time_alternately(calls, 1, device, number=args.repeats)

    rows = []
    for channels, shape in ((1, (64, 64, 32, 32)), (64, (64, 64, 32, 32)), (512, (256, 512))):
        ours, ref = PReLU(channels).to(device), nn.PReLU(channels).to(device)
        x = torch.randn(shape, device=device, requires_grad=True)

        def step(module, x=x):
            def run():
                module.zero_grad(set_to_none=True)
                x.grad = None
                module(x).sum().backward()

            return run

        diff = (ours(x) - ref(x)).abs().max().item()
        rows.append((f"PReLU({channels}) fwd+bwd {tuple(shape)}", mean_times(step(ours), step(ref)), diff))
    weight_ours = torch.empty(512, 512, 3, 3, device=device)
    weight_ref = torch.empty_like(weight_ours)
    for name, ours_fn, ref_fn in (
        ("he_init_ 512x512x3x3", lambda g: he_init_(weight_ours, generator=g),
         lambda g: nn.init.kaiming_normal_(weight_ref, nonlinearity="relu", generator=g)),
        ("xavier_init_ fan_avg", lambda g: xavier_init_(weight_ours, mode="fan_avg", generator=g),
         lambda g: nn.init.xavier_normal_(weight_ref, generator=g)),
    ):  # fmt: skip
        generator_device = "cuda" if device.type == "cuda" else "cpu"
        ours_fn(torch.Generator(generator_device).manual_seed(0))
        ref_fn(torch.Generator(generator_device).manual_seed(0))
        diff = (weight_ours - weight_ref).abs().max().item()
        g1, g2 = torch.Generator(generator_device), torch.Generator(generator_device)
        rows.append((name, mean_times(lambda f=ours_fn, g=g1: f(g), lambda f=ref_fn, g=g2: f(g)), diff))
    _timing.print_setup(args, "mean", f"one sample of {args.repeats} calls each")
    for name, timings, diff in rows:
        # one sample each, so its median is the mean over the calls, as the header says
        _timing.print_comparison(name, timings, "median", note=f"max |diff| {diff:.2e}")


if __name__ == "__main__":
    main()
