"""SHAP: ours (aicanon.explain.shap) against the shap library on the same model, background and inputs.

Kernel SHAP: time per explained instance at equal budgets (``nsamples`` coalitions; shap without its
L1 feature selection, so both solve the same weighted regression), a 10-feature MLP and a background
of ``--background`` rows. Deep SHAP: time for a batch of digit-sized images through a small CNN. Prints
the median of alternating repeats and the ratio ours / shap (below 1: ours faster).

    python benchmarks/bench_shap.py [--features 10] [--background 20] [--instances 4]
        [--budgets 200 1000] [--device cpu] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import numpy as np
import shap
import torch
from torch import nn

from aicanon.explain.shap import DeepExplainer, KernelExplainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10, help="tabular features M")
    parser.add_argument("--background", type=int, default=20, help="background rows")
    parser.add_argument("--instances", type=int, default=4, help="rows explained per call (time is per row)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[200, 1000], help="nsamples (coalitions)")
    parser.add_argument("--images", type=int, default=16, help="Deep SHAP: images explained per call")
    args = _timing.parse_common_args(parser, repeats=5, device="cpu")
    torch.manual_seed(0)
    m = args.features
    mlp = nn.Sequential(nn.Linear(m, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)).eval()
    background = torch.randn(args.background, m)
    rows = torch.randn(args.instances, m)

    def model(t: torch.Tensor) -> torch.Tensor:
        return mlp(t)[:, 0]

    def numpy_model(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return mlp(torch.as_tensor(a, dtype=torch.float32))[:, 0].numpy()

    ours = KernelExplainer(model, background)
    reference = shap.KernelExplainer(numpy_model, background.numpy())
    _timing.print_setup(args, "median", f"Kernel SHAP, M={m}, background {args.background}, per instance")
    for budget in args.budgets:
        timings = _timing.time_alternately(
            {
                "ours": lambda b=budget: ours(rows, n_samples=b),
                "shap": lambda b=budget: reference.shap_values(
                    rows.numpy(), nsamples=b, l1_reg=False, silent=True
                ),
            },
            args.repeats,
            None,
        )
        for timing in timings.values():  # per explained instance
            timing.times = [t / args.instances for t in timing.times]
        _timing.print_comparison(f"kernel nsamples={budget}", timings, "median")

    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()
    images, image_background = torch.randn(args.images, 1, 8, 8), torch.randn(args.background, 1, 8, 8)
    deep_ours = DeepExplainer(cnn, image_background)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deep_reference = shap.DeepExplainer(cnn, image_background)
        timings = _timing.time_alternately(
            {
                "ours": lambda: deep_ours(images),
                "shap": lambda: deep_reference.shap_values(images, check_additivity=False),
            },
            args.repeats,
            None,
        )
    _timing.print_comparison(
        f"deep {args.images} images x {args.background} background, 10 outputs", timings, "median"
    )


if __name__ == "__main__":
    main()
