"""Benchmark: our ProbSparse attention layer against transformers' InformerProbSparseAttention and
against full attention, same weights and inputs, one process, at input lengths L = 96 .. 1536.

Each line times forward + backward of one self-attention layer (d_model 512, 8 heads, the paper's
c = 5) on ``[batch, L, 512]`` and prints ours / transformers' and ours / full-attention time ratios
(below 1: ours is faster). First, at each length, both ProbSparse layers are run on the keys
transformers samples (seeded alike) to check they compute the same numbers.

The layers differ in their sampling, and that shows in the times: ours (as the official code)
draws ``U = c ceil(ln L)`` keys per query, ``L * U`` dot products; transformers draws
``min(c * L * ceil(ln(1 + L)), L) = L`` keys shared by every query, so its sampling step is a full
``L x L`` product and its cost grows as ``L^2`` like full attention's.

    python benchmarks/bench_informer.py [--device cpu|cuda] [--threads N] [--repeats R] [--batch B]
        [--lengths 96 192 384 768 1536]

(also ``aicanon bench informer -- --device cuda``).
"""

from __future__ import annotations

import argparse
import math
import warnings

import _timing
import torch

from aicanon.timeseries.informer import InformerAttention


def copy_weights(ours: InformerAttention, reference) -> None:
    with torch.no_grad():
        for mine, theirs in (
            ("query", "q_proj"),
            ("key", "k_proj"),
            ("value", "v_proj"),
            ("out", "out_proj"),
        ):
            getattr(ours, mine).weight.copy_(getattr(reference, theirs).weight)
            getattr(ours, mine).bias.copy_(getattr(reference, theirs).bias)


def compare(length: int, batch: int, device: torch.device, repeats: int) -> None:
    from transformers.models.informer.modeling_informer import InformerProbSparseAttention

    torch.manual_seed(0)
    d_model, heads, factor = 512, 8, 5
    reference = InformerProbSparseAttention(d_model, heads, sampling_factor=factor).to(device).eval()
    ours = InformerAttention(d_model, heads, attention="prob", factor=factor).to(device).eval()
    full = InformerAttention(d_model, heads, attention="full").to(device).eval()
    copy_weights(ours, reference)
    copy_weights(full, reference)
    x = torch.randn(batch, length, d_model, device=device)

    with torch.no_grad():  # same numbers first, on transformers' sampled keys
        torch.manual_seed(1)
        index = torch.randint(0, length, (min(factor * length * math.ceil(math.log1p(length)), length),))
        n_top = min(factor * math.ceil(math.log1p(length)), length)
        torch.manual_seed(1)
        difference = (
            (ours(x, sample_index=index.to(device), n_top=n_top) - reference(x)[0]).abs().max().item()
        )
        ours(x)
        ours_count = ours.dot_products
        full(x)
        full_count = full.dot_products
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours(x).square().sum().backward(),
            "transformers": lambda: reference(x)[0].square().sum().backward(),
            "full": lambda: full(x).square().sum().backward(),
        },
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
            "full": lambda: full.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(
        f"L = {length:5d}",
        timings,
        "median",
        note=f"max |diff| {difference:.1e}; dot products ours/full {ours_count / full_count:.3f}",
        width=12,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4, help="batch size")
    parser.add_argument("--lengths", type=int, nargs="+", default=[96, 192, 384, 768, 1536])
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(
        args, "median", f"forward + backward of one 512-wide 8-head self-attention layer, batch {args.batch}"
    )
    for length in args.lengths:
        compare(length, args.batch, args.device, args.repeats)


if __name__ == "__main__":
    main()
