"""Benchmark: our RoFormer encoder against transformers' RoFormerModel, same weights and inputs, one process.

Times forward + backward (sum of squares of the last hidden state) of a tiny encoder (2 layers, width
64, 4 heads, 8 x 64 tokens; dropout off so both compute the same thing) and of a BERT-small-sized one
(4 layers, width 256, 4 heads, 16 x 128 tokens), on a right-padded batch with an attention mask, and
prints ours / transformers' time ratio (below 1: ours is faster). The two run alternately, repeat after repeat; the median is reported.

    python benchmarks/bench_roformer.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-small]

(also ``aicanon bench roformer -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.roformer import RoFormer, config_from_transformers, from_transformers


def compare(
    name: str,
    hidden: int,
    layers: int,
    heads: int,
    batch: int,
    length: int,
    device: torch.device,
    repeats: int,
) -> None:
    import transformers

    torch.manual_seed(0)
    config = transformers.RoFormerConfig(
        vocab_size=1000,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max(512, length),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    reference = transformers.RoFormerModel(config).to(device).eval()
    ours = RoFormer(config_from_transformers(config)).to(device).eval()
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 1000, (batch, length), generator=g).to(device)
    mask = torch.ones(batch, length, dtype=torch.long, device=device)
    mask[batch // 2 :, length * 3 // 4 :] = 0  # half the rows right-padded

    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = (
            (ours(ids, mask) - reference(ids, attention_mask=mask).last_hidden_state).abs().max().item()
        )
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours(ids, mask).square().sum().backward(),
            "transformers": lambda: (
                reference(ids, attention_mask=mask).last_hidden_state.square().sum().backward()
            ),
        },
        repeats,
        device,
        warmup=3,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(name, timings, "median", note=f"max |diff| {difference:.1e}", width=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-small", action="store_true", help="only the tiny configuration")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of the encoder")
    compare("tiny (2 x 64, 4 heads), 8 x 64 tokens", 64, 2, 4, 8, 64, args.device, args.repeats)
    if not args.skip_small:
        compare(
            "small (4 x 256, 4 heads), 16 x 128 tokens",
            256,
            4,
            4,
            16,
            128,
            args.device,
            max(3, args.repeats // 4),
        )


if __name__ == "__main__":
    main()
