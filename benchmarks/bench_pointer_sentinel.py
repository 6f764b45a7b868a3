"""Benchmark: one training step of the pointer sentinel-LSTM against the plain LSTM-LM of the same size.

There is no maintained reference library for the pointer sentinel mixture (the paper's code was not
released as a library; community ports are unmaintained), so the comparison is the issue's named
baseline: the softmax LSTM-LM that the pointer sentinel-LSTM extends (same embedding, LSTM and
softmax; the pointer adds ``W``, ``b``, ``s`` and the attention over the window). Both run
forward + backward of Section 2.4's loss on the same batch, alternately, in one process; the ratio
pointer / LSTM is the price of the pointer (above 1: the pointer costs that much more per step).

    python benchmarks/bench_pointer_sentinel.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-large]

The paper-size setting (about 0.4 TFLOP per step) is for a GPU; on a CPU pass ``--skip-large``.

(also ``aicanon bench pointer-sentinel -- --device cuda``).
"""

from __future__ import annotations

import argparse

import _timing
import torch

from aicanon.language.pointer_sentinel import LSTMLanguageModel, PointerSentinelLSTM

SETTINGS = (
    # label, vocabulary, hidden, layers, batch, BPTT, window
    ("quick config (V 5k, H 64, B 16, T 35, L 100)", 5000, 64, 1, 16, 35, 100),
    ("paper medium (V 33k, H 650 x 2, B 32, T 100, L 100)", 33278, 650, 2, 32, 100, 100),
)


def compare(
    label: str, vocab: int, hidden: int, layers: int, batch: int, bptt: int, window: int, args
) -> None:
    torch.manual_seed(0)
    plain = LSTMLanguageModel(vocab, hidden, num_layers=layers).to(args.device)
    pointer = PointerSentinelLSTM(vocab, hidden, num_layers=layers, window=window).to(args.device)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, vocab, (batch, bptt), generator=generator).to(args.device)
    targets = torch.randint(0, vocab, (batch, bptt), generator=generator).to(args.device)
    # A full window carried from the previous segment, as in training after the first segment.
    memory = pointer(inputs).memory

    timings = _timing.time_alternately(
        {
            "pointer": lambda: pointer(inputs, None, memory).loss(targets)[0].backward(),
            "lstm": lambda: plain(inputs).loss(targets)[0].backward(),
        },
        args.repeats,
        args.device,
        warmup=2,
        before_each={
            "pointer": lambda: pointer.zero_grad(set_to_none=True),
            "lstm": lambda: plain.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(label, timings, "median", ours="pointer", width=52)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-large", action="store_true", help="only the quick size")
    args = _timing.parse_common_args(parser, repeats=10)
    _timing.print_setup(args, "median", "forward + backward of one segment's loss")
    for setting in SETTINGS[: 1 if args.skip_large else None]:
        compare(*setting, args)


if __name__ == "__main__":
    main()
