"""Benchmark: GEM's projection by its dual QP (Eq. 12-13, quadprog, K variables) against a direct
solve of the primal (Eq. 11, scipy SLSQP over all p parameters), same random gradients, one process.

Both return the same projected gradient (checked first, max |diff| printed); the ratio dual/primal
is below 1 when the dual is faster. The primal is a p-dimensional QP, so it is timed only at
moderate p; the dual is also timed at the paper's MLP size (p = 89,610: 784-100-100-10) with 19
memories (the 20th task of a 20-task stream).

    python benchmarks/bench_gem.py [--repeats R]       (also ``aicanon bench gem``)
"""

from __future__ import annotations

import argparse

import _timing
import numpy as np
import torch
from scipy.optimize import minimize

from aicanon.learning.gem import project_gradient


def gradients(size: int, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    memories = torch.randn(count, size, generator=gen, dtype=torch.float64)
    gradient = torch.randn(size, generator=gen, dtype=torch.float64) - 0.5 * memories[0]
    return gradient, memories


def primal(gradient: torch.Tensor, memories: torch.Tensor, margin: float) -> torch.Tensor:
    """min 1/2 |z - (g + margin G^T 1)|^2 s.t. G z >= 0 (eps = 0), by SLSQP in R^p."""
    g, G = gradient.numpy(), memories.numpy()
    if (G @ g >= 0).all():
        return gradient
    target = g + margin * G.sum(0)
    solution = minimize(
        lambda z: 0.5 * np.sum((z - target) ** 2),
        g,
        jac=lambda z: z - target,
        constraints=[{"type": "ineq", "fun": lambda z: G @ z, "jac": lambda z: G}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    return torch.from_numpy(solution.x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=5, device="cpu")
    _timing.print_setup(args, "median", "one projection (float64)")
    for size, count in ((500, 4), (2000, 4), (2000, 19)):
        gradient, memories = gradients(size, count)
        difference = (
            (project_gradient(gradient, memories, 0.5, 0.0) - primal(gradient, memories, 0.5)).abs().max()
        )
        timings = _timing.time_alternately(
            {
                "dual": lambda: project_gradient(gradient, memories, 0.5, 0.0),
                "primal": lambda: primal(gradient, memories, 0.5),
            },
            args.repeats,
            None,
        )
        speedup = timings["primal"].median / timings["dual"].median
        note = f"dual {speedup:.0f}x faster, max |diff| {float(difference):.1e}"
        _timing.print_comparison(f"p={size}, K={count} memories", timings, ours="dual", note=note, width=30)
    gradient, memories = gradients(89_610, 19)
    timing = _timing.time_alternately(
        {"dual": lambda: project_gradient(gradient, memories, 0.5)}, args.repeats
    )
    milliseconds = 1e3 * timing["dual"].median
    print(f"{'p=89610 (2x100 MLP), K=19':<30}   dual {milliseconds:9.3f} ms   primal not run (dense p x p)")


if __name__ == "__main__":
    main()
