"""Benchmark: EWC's diagonal Fisher from torch.func per-example gradients (vmap of grad, ours)
against a plain loop of one backward pass per example, on the same model and inputs.

The model is Figure 2A's MLP (784 -> 400 -> 400 -> 10, ReLU); the Fisher is taken over 200 MNIST-
shaped inputs (the EWC learner's default ``fisher_samples``) with the dataset's labels (the
``empirical`` mode: both sides then compute exactly the same thing, checked first), and with every
class weighted by the model's probability (``exact`` mode, one Jacobian per example, against a loop
of 10 backward passes per example). Prints ours / loop's time ratio (below 1: ours is faster).

    python benchmarks/bench_ewc.py [--device cpu|cuda] [--threads N] [--repeats R] [--samples S]

(also ``aicanon bench ewc -- --device cuda``).
"""

from __future__ import annotations

import argparse

import _timing
import torch
import torch.nn.functional as F
from torch import nn

from aicanon.learning.ewc import diagonal_fisher


def loop_fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """One backward pass per example (per class and example when ``y`` is None: the exact Fisher)."""
    params = dict(model.named_parameters())
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    for n in range(x.size(0)):
        log_probs = F.log_softmax(model(x[n : n + 1]).squeeze(0), dim=-1)
        if y is not None:
            grads = torch.autograd.grad(log_probs[y[n]], list(params.values()))
            for name, g in zip(params, grads):
                total[name] += g.square()
            continue
        probs = log_probs.detach().exp()
        for label in range(log_probs.numel()):
            grads = torch.autograd.grad(log_probs[label], list(params.values()), retain_graph=True)
            for name, g in zip(params, grads):
                total[name] += probs[label] * g.square()
    return {name: value / x.size(0) for name, value in total.items()}


def compare(label: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, args) -> None:
    mode = "empirical" if y is not None else "exact"
    ours = diagonal_fisher(model, x, y, mode=mode)
    reference = loop_fisher(model, x, y)
    difference = max(float((ours[n] - reference[n]).abs().max()) for n in ours)
    scale = max(float(reference[n].abs().max()) for n in reference)
    timings = _timing.time_alternately(
        {"ours": lambda: diagonal_fisher(model, x, y, mode=mode), "loop": lambda: loop_fisher(model, x, y)},
        args.repeats,
        args.device,
        warmup=1,
    )
    _timing.print_comparison(
        label,
        timings,
        "median",
        ours="ours",
        note=f"max |diff| {difference:.1e} (max F {scale:.1e})",
        width=40,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="examples the Fisher is taken over")
    args = _timing.parse_common_args(parser, repeats=5)
    _timing.print_setup(args, "median", f"diagonal Fisher over {args.samples} examples, MLP 784-400-400-10")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 10))
    model = model.to(args.device)
    x = torch.rand(args.samples, 784, device=args.device)
    y = torch.randint(0, 10, (args.samples,), device=args.device)
    compare("empirical (dataset labels)", model, x, y, args)
    compare("exact (sum over the 10 classes)", model, x, None, args)


if __name__ == "__main__":
    main()
