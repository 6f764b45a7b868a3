"""Benchmark: chain-of-thought prompts per second through our local backend (our Llama) against the
transformers backend (``LlamaForCausalLM`` with the same weights, the same tokenizer and the same
decoding loop), and batched against one-prompt-at-a-time completion, in one process.

The prompts are the experiment's: 4 chain-of-thought exemplars and a held-out 2-3 step arithmetic
question, greedy, up to 70 tokens, stopping at a blank line. The model is the cached arithmetic
testbed model (``aicanon reproduce chain-of-thought`` or the testbed builds it; a fresh machine
pre-trains it first, which takes long) or, with ``--tiny``, a barely trained tiny one (seconds).

    python benchmarks/bench_chain_of_thought.py [--prompts N] [--tiny] [--device cpu|cuda] [--threads N]

(also ``aicanon bench chain-of-thought``). Prints ours / transformers' time ratio (below 1: ours is
faster) and batched / per-prompt time ratio, plus prompts per second and whether the completions agree.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import _timing

from aicanon.language.local_backend import LocalLanguageModel
from aicanon.reasoning.chain_of_thought import build_prompt
from aicanon.testbeds.arithmetic_lm import (
    ANSWER_PREFIX,
    ArithmeticLMConfig,
    arithmetic_problems,
    cache_folder,
    pretrain_arithmetic_lm,
    save_arithmetic_lm,
)

TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16, help="prompts per call")
    parser.add_argument("--tiny", action="store_true", help="a tiny, barely trained model (no cache needed)")
    args = _timing.parse_common_args(parser, repeats=3)
    warnings.filterwarnings("ignore")
    from transformers import LlamaForCausalLM

    from aicanon.experiments.chain_of_thought import exemplar_of
    from aicanon.language.transformers_backend import TransformersCausalLM

    with tempfile.TemporaryDirectory() as folder:
        if args.tiny:
            model, tokenizer = pretrain_arithmetic_lm(ArithmeticLMConfig(**TINY), cache=folder)
        else:
            model, tokenizer = pretrain_arithmetic_lm(ArithmeticLMConfig(), cache=cache_folder(None))
        save_arithmetic_lm(model, tokenizer, f"{folder}/export")
        reference = LlamaForCausalLM.from_pretrained(f"{folder}/export").eval()
    ours = LocalLanguageModel(model, tokenizer, eos_token_id=1, device=args.device)
    theirs = LocalLanguageModel(
        TransformersCausalLM(reference),
        tokenizer,
        eos_token_id=1,
        max_context=model.config.max_seq_len,
        device=args.device,
    )
    exemplars = [exemplar_of(p) for p in arithmetic_problems(4, split="train", seed=10_000, min_steps=2)]
    questions = [p.question for p in arithmetic_problems(args.prompts, split="test", seed=0, min_steps=2)]
    prompts = [build_prompt(exemplars, q, "chain_of_thought") for q in questions]
    request = {"max_tokens": 70, "temperature": 0.0, "stop": ["\n\n", "\nQ:"]}

    _timing.print_setup(args, "median", f"greedy chain-of-thought completion of {args.prompts} prompts")
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours.complete(prompts, **request),
            "transformers": lambda: theirs.complete(prompts, **request),
            "per-prompt": lambda: [ours.complete([p], **request)[0] for p in prompts],
        },
        args.repeats,
        args.device,
    )
    texts = {name: [c[0].text for c in t.result] for name, t in timings.items()}
    agree = sum(a == b for a, b in zip(texts["ours"], texts["transformers"], strict=True))
    answered = sum(ANSWER_PREFIX in t for t in texts["ours"])
    _timing.print_comparison(
        "batched completion, ours vs transformers",
        {"ours": timings["ours"], "transformers": timings["transformers"]},
        note=f"{agree}/{len(prompts)} completions identical",
    )
    _timing.print_comparison(
        "ours batched vs one prompt at a time",
        {"ours": timings["ours"], "per-prompt": timings["per-prompt"]},
        note=f"{answered}/{len(prompts)} completions state an answer",
    )
    for name, timing in timings.items():
        print(f"{name:<14} {len(prompts) / timing.median:8.1f} prompts/s")


if __name__ == "__main__":
    main()
