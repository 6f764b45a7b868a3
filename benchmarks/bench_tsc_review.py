"""Benchmark: our UCR .ts reader and Wilcoxon/Friedman statistics against aeon's and scipy's, on the
same inputs, one process; and one training step of each of the review's networks (no reference:
the authors' networks are Keras models, and aeon's deep classifiers need TensorFlow).

    python benchmarks/bench_tsc_review.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench tsc-review``). Ratios below 1: ours is faster.
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import numpy as np
import torch

from aicanon.datasets.ucr import find_ucr_file, read_ts
from aicanon.timeseries.critical_difference import friedman_test, wilcoxon_signed_rank
from aicanon.timeseries.tsc import build_classifier


def bench_reader(repeats: int) -> None:
    from aeon.datasets import load_from_ts_file

    for name in ("GunPoint", "JapaneseVowels", "OSULeaf"):
        path = str(find_ucr_file(name, "train"))
        timings = _timing.time_alternately(
            {"ours": lambda: read_ts(path), "aeon": lambda: load_from_ts_file(path)}, repeats, None
        )
        _timing.print_comparison(f".ts reader, {name} train", timings, "min", width=36)


def bench_statistics(repeats: int) -> None:
    from scipy.stats import friedmanchisquare, wilcoxon

    rng = np.random.default_rng(0)
    for n in (8, 85):
        x, y = np.round(rng.random(n), 2), np.round(rng.random(n), 2)
        timings = _timing.time_alternately(
            {
                "ours": lambda: wilcoxon_signed_rank(x, y, "pratt"),
                "scipy": lambda: wilcoxon(x, y, zero_method="pratt"),
            },
            repeats,
            None,
        )
        _timing.print_comparison(f"Wilcoxon (pratt), n={n}", timings, "min", width=36)
    scores = np.round(rng.random((85, 9)), 2)
    timings = _timing.time_alternately(
        {"ours": lambda: friedman_test(scores), "scipy": lambda: friedmanchisquare(*scores.T)}, repeats, None
    )
    _timing.print_comparison("Friedman, 85 x 9", timings, "min", width=36)


def bench_networks(device: torch.device, repeats: int) -> None:
    x = torch.randn(16, 1, 150, device=device)
    y = torch.randint(0, 2, (16,), device=device)
    for name in ("mlp", "fcn", "resnet"):
        model = build_classifier(name, 1, 150, 2).to(device)
        optimizer = torch.optim.Adam(model.parameters())

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        timings = _timing.time_alternately({"ours": step}, repeats, device, warmup=2)
        print(f"{name} training step, batch 16 x 150: {1e3 * timings['ours'].median:.2f} ms (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "min/median", "reader, statistics, training steps")
    bench_reader(max(3, args.repeats // 4))
    bench_statistics(args.repeats)
    bench_networks(args.device, args.repeats)


if __name__ == "__main__":
    main()
