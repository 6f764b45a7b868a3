"""Benchmark: sampling self-consistency's k reasoning paths in one batched ``complete(n=k)`` call
against k separate ``complete(n=1)`` calls (the naive loop), same prompts, one process.

Uses a small randomly initialised Llama with a character tokenizer (the cost of decoding does not
depend on the weights), a ~300-token few-shot-sized prompt, k paths of ``--tokens`` tokens each, and
prints batched / looped time (below 1: batching is faster).

    python benchmarks/bench_self_consistency.py [--device cpu|cuda] [--threads N] [--repeats R] [--k 20]

(also ``aicanon bench self-consistency``).
"""

from __future__ import annotations

import argparse

import _timing
import torch

from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.local_backend import LocalLanguageModel
from aicanon.reasoning.self_consistency import sample_reasoning_paths


class CharTokenizer:
    def encode(self, text: str) -> list[int]:
        return [2 + (ord(c) % 126) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(32 + (i % 94)) for i in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=20, help="sampled paths per prompt")
    parser.add_argument("--tokens", type=int, default=48, help="tokens per path")
    args = _timing.parse_common_args(parser, repeats=3)
    _timing.print_setup(args, "median", f"k={args.k} paths of {args.tokens} tokens")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=172, num_layers=2, num_heads=4, max_seq_len=512
    )
    model = LocalLanguageModel(Llama(config), CharTokenizer(), device=args.device, seed=0)
    prompt = (
        "Q: Mia has 7 shells. Mia finds 5 more. How many shells?\nA: 7 + 5 = 12. The answer is 12.\n\n" * 3
    )
    prompts = [prompt + "Q: Ann has 3 cats. Ann gets 4 more. How many cats?\nA:"]

    def batched():
        return sample_reasoning_paths(
            model, prompts, args.k, temperature=0.7, max_tokens=args.tokens, stop=None
        )

    def looped():
        return [
            sample_reasoning_paths(model, prompts, 1, temperature=0.7, max_tokens=args.tokens, stop=None)
            for _ in range(args.k)
        ]

    timings = _timing.time_alternately({"ours": batched, "loop": looped}, args.repeats, args.device)
    _timing.print_comparison(
        f"{args.k} paths, one call vs {args.k} calls",
        timings,
        "median",
        ours="ours",
        note="(ours: n=k batch)",
    )


if __name__ == "__main__":
    main()
