"""Benchmark: our dopri5 against torchdiffeq's, same dynamics and tolerances, one process.

Solves ``dz/dt = MLP(z) cos(t)`` (batch 64, 16 dims, 64 hidden units) over [0, 5] at three
tolerances and prints, for each, both solvers' function evaluations and median wall time, and the
ratios ours / torchdiffeq (below 1: ours cheaper). Our step-size controller is Hairer's standard one
with Dormand & Prince's embedded error weights; torchdiffeq uses Shampine's, so step counts differ
slightly. Also times the backward pass (ours: odeint_adjoint vs torchdiffeq.odeint_adjoint).

    python benchmarks/bench_neural_ode.py [--device cpu|cuda] [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torch import nn

from aicanon.generative.ode.adjoint import odeint_adjoint
from aicanon.generative.ode.solvers import odeint


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 16))
        self.calls = 0

    def forward(self, t, z):
        self.calls += 1
        return self.net(z) * torch.cos(t)


def main() -> None:
    import torchdiffeq

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=10)
    _timing.print_setup(args, "median", "dopri5 solve of a 16-dim MLP ODE over [0, 5]")
    torch.manual_seed(0)
    field = Field().to(args.device)
    z0 = torch.randn(64, 16, device=args.device)
    t = torch.tensor([0.0, 5.0], device=args.device)
    for tol in (1e-3, 1e-5, 1e-7):
        nfe = {}
        for name, solve in (("ours", odeint), ("torchdiffeq", torchdiffeq.odeint)):
            field.calls = 0
            with torch.no_grad():
                out = solve(field, z0, t, method="dopri5", rtol=tol, atol=tol)
            nfe[name] = (field.calls, out[-1])
        difference = (nfe["ours"][1] - nfe["torchdiffeq"][1]).abs().max().item()
        with torch.no_grad():
            timings = _timing.time_alternately(
                {
                    "ours": lambda: odeint(field, z0, t, method="dopri5", rtol=tol, atol=tol),
                    "torchdiffeq": lambda: torchdiffeq.odeint(
                        field, z0, t, method="dopri5", rtol=tol, atol=tol
                    ),
                },
                args.repeats,
                args.device,
            )
        note = (
            f"NFE ours {nfe['ours'][0]} torchdiffeq {nfe['torchdiffeq'][0]} "
            f"(ratio {nfe['ours'][0] / nfe['torchdiffeq'][0]:.2f}), max |diff| {difference:.1e}"
        )
        _timing.print_comparison(f"forward, tol {tol:g}", timings, "median", note=note, width=24)
    z = z0.clone().requires_grad_(True)
    tol = 1e-5
    timings = _timing.time_alternately(
        {
            "ours": lambda: odeint_adjoint(field, z, t, rtol=tol, atol=tol).sum().backward(),
            "torchdiffeq": lambda: (
                torchdiffeq.odeint_adjoint(field, z, t, rtol=tol, atol=tol).sum().backward()
            ),
        },
        max(2, args.repeats // 2),
        args.device,
    )
    _timing.print_comparison(f"adjoint fwd+bwd, tol {tol:g}", timings, "median", width=24)


if __name__ == "__main__":
    main()
