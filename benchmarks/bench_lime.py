"""LIME tabular: ours (aicanon.explain.lime.TabularExplainer) against lime.lime_tabular.LimeTabularExplainer.

Both explain the same instances of the same model (a logistic regression on synthetic data with a
categorical column), quartile discretisation, the same ``num_samples`` and feature selection; each
row prints the median time per explained instance and the ratio ours / lime (below 1: ours
faster), and how many instances' top-K feature sets agree (independent sampling, so close to but
not always all). Sampling, the model's predictions and the surrogate fit are all timed.

    python benchmarks/bench_lime.py [--samples 5000] [--features 20] [--instances 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import numpy as np
from lime.lime_tabular import LimeTabularExplainer

from aicanon.explain.lime import TabularExplainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000, help="num_samples per explanation")
    parser.add_argument("--features", type=int, default=20, help="columns of the table")
    parser.add_argument("--instances", type=int, default=10, help="instances explained per timed call")
    parser.add_argument("--num-features", type=int, default=5, help="K, features per explanation")
    args = _timing.parse_common_args(parser, repeats=5, threads=1, device="cpu", device_help="cpu only")
    rng = np.random.default_rng(0)
    d = args.features
    X = rng.normal(size=(2000, d))
    X[:, -1] = rng.integers(0, 4, size=2000)
    w = rng.normal(size=d) * (rng.random(d) < 0.4)

    def predict(Z):
        p = 1 / (1 + np.exp(-(Z @ w)))
        return np.stack([1 - p, p], axis=1)

    rows = X[: args.instances]
    _timing.print_setup(args, "median", f"{args.instances} instances per call, {args.samples} samples each")
    for method in ("highest_weights", "forward_selection", "lasso_path"):
        ours = TabularExplainer(X, categorical_features=[d - 1])
        reference = LimeTabularExplainer(
            X, categorical_features=[d - 1], feature_selection=method, random_state=0
        )

        def run_ours(ours=ours, method=method):
            return [
                set(ours.explain(r, predict, label=1, num_features=args.num_features, num_samples=args.samples,
                                 feature_selection=method, seed=i).extras["features"])
                for i, r in enumerate(rows)
            ]  # fmt: skip

        def run_lime(reference=reference):
            return [
                {f for f, _ in reference.explain_instance(
                    r, predict, num_features=args.num_features, num_samples=args.samples).local_exp[1]}
                for r in rows
            ]  # fmt: skip

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            timings = _timing.time_alternately({"ours": run_ours, "lime": run_lime}, args.repeats)
        agree = np.mean([a == b for a, b in zip(timings["ours"].result, timings["lime"].result)])
        per_instance = {
            name: _timing.Timing([t / args.instances for t in timing.times])
            for name, timing in timings.items()
        }
        _timing.print_comparison(
            f"{method} K={args.num_features} d={d}", per_instance, "median", note=f"top-K agree {agree:.0%}"
        )


if __name__ == "__main__":
    main()
