"""PReLU and He init: ours (aicanon.vision.rectifiers) against torch.nn.PReLU / torch.nn.init, one process.

Each row times one operation on the same inputs in both and prints the ratio ours/reference (below
1: ours faster) and the largest difference between the two (zero for the initialisers, which draw
the same numbers from the same generator state).

    python benchmarks/bench_prelu_he_init.py [--repeats 20] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from aicanon.vision.rectifiers import PReLU, he_init_, xavier_init_


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
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
        t_ours, t_ref = _time(step(ours), args.repeats, device), _time(step(ref), args.repeats, device)
        rows.append((f"PReLU({channels}) fwd+bwd {tuple(shape)}", t_ours, t_ref, diff))
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
        t_ours = _time(lambda f=ours_fn, g=g1: f(g), args.repeats, device)
        t_ref = _time(lambda f=ref_fn, g=g2: f(g), args.repeats, device)
        rows.append((name, t_ours, t_ref, diff))
    print(f"{'operation':45s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>6s} {'max |diff|':>11s}")
    for name, t_ours, t_ref, diff in rows:
        print(f"{name:45s} {1e3 * t_ours:9.3f} {1e3 * t_ref:9.3f} {t_ours / t_ref:6.2f} {diff:11.2e}")


if __name__ == "__main__":
    main()
