"""Scaling-law fits and FLOP counts: ours (aicanon.language.scaling) against SciPy's ``curve_fit`` and
torch's ``FlopCounterMode`` on the same inputs, in one process.

Prints the median wall time of each (they run alternately) and the ratio ours / reference (goal: <= 1).

* ``L = a C^b + c`` on 7 noisy runs: ours (a grid over ``c`` with closed-form starts, two bounded
  trust-region refinements, log-space residuals) against one ``scipy.optimize.curve_fit`` of the
  same log-space model from a fixed start (which can land in a worse optimum: the line prints both
  fits' log-space squared error);
* the FLOPs of a training step of a small Llama: our closed form against tracing one forward and
  backward under ``torch.utils.flop_counter.FlopCounterMode`` (which cannot see the CPU attention
  kernel, so its count is lower by the attention scores).

    python benchmarks/bench_gpt4_scaling.py [--repeats 20] [--threads N]
"""

from __future__ import annotations

import argparse

import _timing
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import curve_fit
from torch.utils.flop_counter import FlopCounterMode

from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.scaling import fit_scaling_law, llama_training_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = _timing.parse_common_args(parser, repeats=20, device="cpu")
    _timing.print_setup(args, "median")

    rng = np.random.default_rng(0)
    compute = np.geomspace(1e9, 1e11, 7)
    loss = (30.0 * compute**-0.12 + 1.3) * np.exp(rng.normal(0, 0.01, compute.size))
    x = np.log(compute / np.exp(np.log(compute).mean()))

    def scipy_fit():
        def model(x, log_a, b, c):
            return np.log(np.exp(log_a + b * x) + c)

        upper = loss.min() * (1 - 1e-9)
        params, _ = curve_fit(model, x, np.log(loss), p0=(0.0, -0.1, 0.5 * upper),
                              bounds=([-np.inf, -5, 0], [np.inf, 5, upper]), maxfev=5000)  # fmt: skip
        return float(np.sum((model(x, *params) - np.log(loss)) ** 2))

    ours_sse = 7 * fit_scaling_law(compute, loss).rms_log_residual ** 2
    timings = _timing.time_alternately(
        {"ours": lambda: fit_scaling_law(compute, loss), "scipy": scipy_fit}, args.repeats, None
    )
    _timing.print_comparison(
        "fit L = a C^b + c, 7 runs", timings, "median",
        note=f"log-space SSE ours {ours_sse:.3e}, curve_fit {timings['scipy'].result:.3e}",
    )  # fmt: skip

    cfg = LlamaConfig(
        vocab_size=65, hidden_size=64, intermediate_size=172, num_layers=2, num_heads=2, max_seq_len=64
    )
    model = Llama(cfg).to(args.device)
    tokens = torch.randint(0, 65, (16, 64), device=args.device)

    def traced():
        with FlopCounterMode(display=False) as counter:
            F.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten()).backward()
        return counter.get_total_flops()

    timings = _timing.time_alternately(
        {"ours": lambda: llama_training_flops(cfg, 16, 64), "FlopCounterMode": traced},
        args.repeats,
        args.device,
    )
    _timing.print_comparison(
        "training FLOPs, Llama d=64 L=2, 16x64 tokens", timings, "median",
        note=f"ours {timings['ours'].result:.4g}, traced {timings['FlopCounterMode'].result:.4g} (no SDPA)",
    )  # fmt: skip


if __name__ == "__main__":
    main()
