"""Benchmark: the cost of the multi-task methods on the same network and batch, in one process.

* GradNorm's training step against an equal-weighting step (and uncertainty weighting's) on the
  same hard-shared MLP (784 -> 256 -> 128, heads for digit, parity, angle), batch 256: GradNorm adds
  one backward pass per task as far as the last shared layer.
* A cross-stitch network of three columns against three separate networks (the same columns
  without units): the price of the units.

There is no reference library for these methods; the baselines are the issue's (equal weighting,
separate networks). Ratios below 1: the first is faster.

    python benchmarks/bench_multitask_learning.py [--device cpu|cuda] [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torch import nn

from aicanon.learning.cross_stitch import CrossStitchNetwork
from aicanon.learning.loss_weighting import make_weighting
from aicanon.learning.multitask import HardSharingNetwork, Task, task_losses

TASKS = (
    Task("digit", "classification", 10),
    Task("parity", "classification", 2),
    Task("angle", "regression", 1),
)


def stages() -> list[nn.Module]:
    return [nn.Sequential(nn.Linear(784, 256), nn.ReLU()), nn.Sequential(nn.Linear(256, 128), nn.ReLU())]


def batch(device: torch.device, n: int = 256):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=gen)
    digit = torch.randint(0, 10, (n,), generator=gen)
    targets = {"digit": digit, "parity": digit % 2, "angle": torch.rand(n, 1, generator=gen) * 2 - 1}
    return x.to(device), {k: v.to(device) for k, v in targets.items()}


def weighting_steps(device: torch.device, repeats: int) -> None:
    x, targets = batch(device)
    steps = {}
    for name in ("equal", "uncertainty", "gradnorm"):
        torch.manual_seed(0)
        model = HardSharingNetwork(nn.Sequential(*stages()), 128, TASKS).to(device)
        weighting = make_weighting(name, [t.kind for t in TASKS]).to(device)
        optimizer = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=1e-3)

        def step(model=model, weighting=weighting, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            losses = task_losses(model(x), targets, TASKS)
            weighting.backward(losses, model.last_shared_weight)
            optimizer.step()
            weighting.after_step()

        steps[name] = step
    timings = _timing.time_alternately(steps, repeats, device, warmup=3)
    _timing.print_comparison(
        "training step, batch 256",
        {"gradnorm": timings["gradnorm"], "equal": timings["equal"], "uncertainty": timings["uncertainty"]},
        "median",
        ours="gradnorm",
    )


def cross_stitch_forward_backward(device: torch.device, repeats: int) -> None:
    x, targets = batch(device)
    torch.manual_seed(0)
    stitched = CrossStitchNetwork([stages() for _ in TASKS], 128, TASKS).to(device)
    separate = nn.ModuleList(
        HardSharingNetwork(nn.Sequential(*(stitched.columns[i])), 128, [t]) for i, t in enumerate(TASKS)
    ).to(device)

    def run_stitched():
        sum(task_losses(stitched(x), targets, TASKS)).backward()

    def run_separate():
        outputs = {t.name: network(x)[t.name] for t, network in zip(TASKS, separate)}
        sum(task_losses(outputs, targets, TASKS)).backward()

    timings = _timing.time_alternately(
        {"cross-stitch": run_stitched, "separate": run_separate},
        repeats,
        device,
        warmup=3,
        before_each={"cross-stitch": stitched.zero_grad, "separate": separate.zero_grad},
    )
    _timing.print_comparison(
        "3 columns, forward + backward, batch 256", timings, "median", ours="cross-stitch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=50)
    _timing.print_setup(args, "median")
    weighting_steps(args.device, args.repeats)
    cross_stitch_forward_backward(args.device, args.repeats)


if __name__ == "__main__":
    main()
