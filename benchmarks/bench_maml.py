"""Benchmark: our torch.func MAML meta-gradient against a plain autograd double-backward loop.

Both compute the same second-order (or first-order) meta-gradient of the same network on the same
meta-batch: ours vmaps the tasks and differentiates with ``torch.func.grad``; the baseline loops over
the tasks in Python, takes each inner step with ``torch.autograd.grad(create_graph=True)`` and calls
one ``backward`` on the summed query loss (how MAML is usually written without torch.func, e.g. in
learn2learn, which does not install here). The gradients are compared first; then both are timed
alternately and the ratio ours / loop is printed (below 1: ours faster).

    python benchmarks/bench_maml.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench maml -- --device cuda``).
"""

from __future__ import annotations

import argparse

import _timing
import torch
import torch.nn.functional as F
from torch.func import functional_call

from aicanon.learning.maml import ConvNet, SinusoidRegressor, TaskBatch, meta_gradient


def loop_meta_gradient(model, tasks: TaskBatch, loss_fn, rates, first_order):
    params = dict(model.named_parameters())
    total = 0.0
    for t in range(tasks.num_tasks):
        p = params
        for rate in rates:
            loss = loss_fn(functional_call(model, p, (tasks.support_x[t],)), tasks.support_y[t])
            grads = torch.autograd.grad(loss, list(p.values()), create_graph=not first_order)
            p = {k: v - rate * (g.detach() if first_order else g) for (k, v), g in zip(p.items(), grads)}
        total = total + loss_fn(functional_call(model, p, (tasks.query_x[t],)), tasks.query_y[t])
    return dict(zip(params, torch.autograd.grad(total / tasks.num_tasks, list(params.values()))))


def compare(label, model, tasks, loss_fn, rates, first_order, device, repeats):
    model = model.to(device)
    tasks = tasks.to(device)
    params = dict(model.named_parameters())
    ours = meta_gradient(model, params, tasks, loss_fn, rates, first_order)[0]
    loop = loop_meta_gradient(model, tasks, loss_fn, rates, first_order)
    difference = max((ours[k] - loop[k]).abs().max().item() for k in loop)
    timings = _timing.time_alternately(
        {
            "ours": lambda: meta_gradient(model, params, tasks, loss_fn, rates, first_order),
            "loop": lambda: loop_meta_gradient(model, tasks, loss_fn, rates, first_order),
        },
        repeats,
        device,
        warmup=2,
    )
    _timing.print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}", width=46)


def image_tasks(tasks, ways, shots, queries, generator):
    support, query = ways * shots, ways * queries
    return TaskBatch(
        torch.rand(tasks, support, 1, 28, 28, generator=generator),
        torch.arange(ways).repeat_interleave(shots).expand(tasks, support).contiguous(),
        torch.rand(tasks, query, 1, 28, 28, generator=generator),
        torch.arange(ways).repeat_interleave(queries).expand(tasks, query).contiguous(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--filters", type=int, default=64, help="conv filters (the paper's Omniglot net: 64)")
    args = _timing.parse_common_args(parser, repeats=5)
    _timing.print_setup(args, "median", "one meta-gradient")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    sine = SinusoidRegressor()
    x = torch.rand(25, 20, 1, generator=generator) * 10 - 5
    sine_tasks = TaskBatch(x[:, :10], torch.sin(x[:, :10]), x[:, 10:], torch.sin(x[:, 10:]))
    for first_order in (False, True):
        order = "first" if first_order else "second"
        compare(
            f"sinusoid MLP, 25 tasks, 1 step, {order}",
            sine,
            sine_tasks,
            F.mse_loss,
            [0.01],
            first_order,
            args.device,
            args.repeats * 4,
        )
    five = image_tasks(32, 5, 1, 1, generator)
    twenty = image_tasks(16, 20, 1, 1, generator)
    for first_order in (False, True):
        order = "first" if first_order else "second"
        compare(
            f"ConvNet-{args.filters} 5-way 1-shot x32, 1 step, {order}",
            ConvNet(5, filters=args.filters),
            five,
            F.cross_entropy,
            [0.4],
            first_order,
            args.device,
            args.repeats,
        )
        compare(
            f"ConvNet-{args.filters} 20-way 1-shot x16, 5 steps, {order}",
            ConvNet(20, filters=args.filters),
            twenty,
            F.cross_entropy,
            [0.1] * 5,
            first_order,
            args.device,
            args.repeats,
        )


if __name__ == "__main__":
    main()
