"""Benchmark: our Bradley-Terry fit against the LMSYS notebook's (scikit-learn's LogisticRegression
without penalty on the duplicated-battle design), same simulated battles, one process.

Times one fit on arenas of several sizes (battles x models) and prints ours / scikit-learn's time
ratio (below 1: ours is faster) with the largest rating difference in Elo (checked first: a
benchmark of two different functions means nothing). Ours works on per-pair totals (Newton's method
on a graph Laplacian), so its cost grows with the number of model pairs, not of battles; the
notebook's cost grows with the battles. The notebook's design matrix is built outside the timing.

    python benchmarks/bench_llm_judge_arena.py [--repeats R] [--threads N]

(also ``aicanon bench llm-judge-arena``).
"""

from __future__ import annotations

import argparse
import math
import warnings

import _timing
import numpy as np

from aicanon.evals.arena import Battles, bradley_terry, simulate_battles


def notebook_design(battles: Battles) -> tuple[np.ndarray, np.ndarray]:
    """compute_mle_elo's design: every battle twice, a tie once as an a win and once as a b win."""
    n, p = len(battles), len(battles.models)
    a = np.concatenate([battles.model_a, battles.model_a])
    b = np.concatenate([battles.model_b, battles.model_b])
    score = np.concatenate([battles.score, battles.score])
    x = np.zeros((2 * n, p))
    x[np.arange(2 * n), a] = math.log(10)
    x[np.arange(2 * n), b] = -math.log(10)
    y = (score == 1.0).astype(float)
    tie = score == 0.5
    tie[n:] = False
    y[tie] = 1.0
    return x, y


def compare(battles_count: int, models: int, repeats: int) -> None:
    from sklearn.linear_model import LogisticRegression

    truth = {f"m{i}": 1000.0 + 400.0 * (i / max(models - 1, 1) - 0.5) for i in range(models)}
    battles = simulate_battles(truth, battles_count, tie_rate=0.3, seed=0)
    x, y = notebook_design(battles)

    def reference() -> np.ndarray:
        model = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8)
        model.fit(x, y)
        return 400 * model.coef_[0] + 1000

    ours = bradley_terry(battles)
    difference = float(np.max(np.abs(np.array([ours[m] for m in battles.models]) - reference())))
    timings = _timing.time_alternately(
        {"ours": lambda: bradley_terry(battles), "sklearn": reference}, repeats, None, warmup=1
    )
    _timing.print_comparison(
        f"{battles_count} battles, {models} models",
        timings,
        "median",
        note=f"max |diff| {difference:.1e} Elo",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=10, device="cpu")
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "one Bradley-Terry fit")
    for battles_count, models in ((5_000, 10), (30_000, 20), (100_000, 60)):
        compare(battles_count, models, args.repeats)


if __name__ == "__main__":
    main()
