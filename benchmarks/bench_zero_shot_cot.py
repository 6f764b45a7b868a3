"""Benchmark: Zero-shot-CoT's two-stage prompting, batched (all stage-1 prompts in one ``complete``
call, then all stage-2 prompts: what :func:`aicanon.reasoning.zero_shot_cot.zero_shot_cot` does)
against one question at a time (two calls per question), on the same questions, in one process.

The model is the arithmetic testbed's calibrated small model when it is cached (else a tiny one
trained here in a few seconds: timings then say little about the real model). Both paths must give
the same answers (greedy decoding; checked first); the ratio batched/per-prompt is printed (below 1:
batching is faster). No reference library implements Zero-shot-CoT, so the per-prompt loop, the way
the authors' script runs it, is the baseline.

    python benchmarks/bench_zero_shot_cot.py [--questions N] [--threads N] [--repeats R]

(also ``aicanon bench zero-shot-cot``).
"""

from __future__ import annotations

import argparse
import tempfile

import _timing

from aicanon.reasoning.zero_shot_cot import zero_shot_cot
from aicanon.testbeds.arithmetic_lm import (
    ArithmeticLMConfig,
    arithmetic_language_model,
    arithmetic_problems,
    cache_folder,
    pretrain_arithmetic_lm,
)


def load_model(tiny_folder: str):
    cfg = ArithmeticLMConfig()
    folder = cache_folder(None)
    if folder is not None and (folder / cfg.key()).is_dir():
        return arithmetic_language_model(cfg, cache=folder), "calibrated small model"
    tiny = ArithmeticLMConfig(problems=200, steps=3, warmup_steps=1, batch_size=4, seq_len=64)
    pretrain_arithmetic_lm(tiny, cache=tiny_folder)
    return arithmetic_language_model(tiny, cache=tiny_folder), "tiny model (the calibrated one is not cached)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=16, help="held-out questions per call")
    args = _timing.parse_common_args(parser, repeats=3, threads=1, device="cpu")
    with tempfile.TemporaryDirectory() as tiny_folder:
        model, which = load_model(tiny_folder)
        questions = [
            p.question for p in arithmetic_problems(args.questions, split="test", min_steps=2, max_steps=3)
        ]
        options = {
            "dataset": "multiarith",
            "answer_trigger": "The answer is",
            "reasoning_stop": ("The answer is",),
            "max_reasoning_tokens": 60,
            "max_answer_tokens": 8,
            "stop": ("\n\n", "\nQ:"),
        }

        def batched():
            return [o.answer for o in zero_shot_cot(model, questions, **options)]

        def per_prompt():
            return [zero_shot_cot(model, [q], **options)[0].answer for q in questions]

        same = sum(a == b for a, b in zip(batched(), per_prompt(), strict=True))
        timings = _timing.time_alternately(
            {"batched": batched, "per_prompt": per_prompt}, args.repeats, warmup=0
        )
        print(f"{which}; {args.questions} questions; same answers {same}/{args.questions}")
        _timing.print_comparison(
            f"two-stage prompting, {args.questions} questions",
            timings,
            "min",
            ours="batched",
            note=f"{args.questions / timings['batched'].min:.1f} questions/s batched",
        )


if __name__ == "__main__":
    main()
