"""Benchmark: seconds per lifecycle stage of the LLM-survey pipeline (instruction tuning, DPO, PPO,
evaluation of the five stages), over a few seeds of the quick configuration.

There is no reference library for a whole lifecycle (trl's trainers time single stages: see the
DPO/InstructGPT benchmarks), so this prints our time per stage and each stage's share, not a ratio.
The testbed model must be cached (the first run of the experiment pre-trains it: about 45 minutes).

    python benchmarks/bench_llm_survey.py [--seeds N] [--threads N]

(also ``aicanon bench llm-survey``).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from aicanon.experiments import llm_survey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    per_stage: dict[str, list[float]] = {}
    totals = []
    for seed in range(args.seeds):
        result = llm_survey.run(llm_survey.Config(seed=seed))
        for stage, seconds in result.details["seconds_per_stage"].items():
            per_stage.setdefault(stage, []).append(seconds)
        totals.append(result.details["seconds"])
    total = statistics.median(totals)
    print(f"llm-survey quick pipeline, {args.threads} thread(s), median of {args.seeds} seed(s)")
    print(f"{'stage':<12}{'seconds':>10}{'share':>8}")
    for stage, times in per_stage.items():
        median = statistics.median(times)
        print(f"{stage:<12}{median:>10.2f}{median / total:>8.0%}")
    print(f"{'total':<12}{total:>10.2f}  (loading the cached model and building data included)")
    print("reference: none (no library runs a whole LLM lifecycle); no time ratio")


if __name__ == "__main__":
    main()
