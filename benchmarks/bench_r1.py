"""Benchmark: DeepSeek-R1's rule reward (accuracy + format, aicanon.align.r1) on a batch of responses.

No reference library implements R1's rewards (trl's GRPO trainer takes reward functions from the user),
so the baseline is the common minimal form of the same rules, written inline here: one regular
expression ``^<think>.*?</think>\\s*<answer>.*?</answer>$`` for the format and a string comparison of
the answer block for accuracy (the shape used by public R1-Zero reproductions). Ours checks more (no
nested or repeated tags, numbers normalised), so the ratio is the price of the stricter rule. Both run
on the same 4,096 responses (a mix of well-formatted, wrong and malformed ones), alternately, one
process; their format verdicts are compared first.

    python benchmarks/bench_r1.py [--repeats R] [--threads N]

One R1 step's time on the cached model is dominated by the GRPO rollout (see bench of GRPO); the
reward is well under 1 % of a step.
"""

from __future__ import annotations

import argparse
import random
import re

import _timing

from aicanon.align.r1 import format_trace, r1_reward

_BASELINE = re.compile(r"^<think>.*?</think>\s*<answer>(.*?)</answer>$", re.DOTALL)


def baseline_reward(completions: list[str], answers: list[str]) -> list[float]:
    rewards = []
    for text, answer in zip(completions, answers, strict=True):
        match = _BASELINE.match(text.strip())
        rewards.append((1.0 + float(match.group(1).strip() == answer)) if match else 0.0)
    return rewards


def responses(count: int) -> tuple[list[str], list[str]]:
    rng = random.Random(0)
    texts, answers = [], []
    for _ in range(count):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        truth = a + b
        kind = rng.random()
        if kind < 0.5:
            text = format_trace(f"Mia starts with {a} shells. {a} + {b} = {truth}.", truth)
        elif kind < 0.8:
            text = format_trace(f"Mia starts with {a} shells.", truth + rng.randint(1, 5))
        else:
            text = f"Mia starts with {a} shells. {a} + {b} = {truth}. The answer is {truth}."
        texts.append(" " + text)
        answers.append(str(truth))
    return texts, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=20, device="cpu")
    texts, answers = responses(4096)
    ours_rewards = r1_reward(texts, answers)
    agree = sum(o == b for o, b in zip(ours_rewards, baseline_reward(texts, answers), strict=True))
    _timing.print_setup(args, "median", "rule reward of 4,096 responses")
    timings = _timing.time_alternately(
        {
            "ours": lambda: r1_reward(texts, answers),
            "regex baseline": lambda: baseline_reward(texts, answers),
        },
        args.repeats,
        args.device,
        warmup=2,
    )
    _timing.print_comparison("R1 rule reward", timings, "median", note=f"agree on {agree}/4096", width=30)


if __name__ == "__main__":
    main()
