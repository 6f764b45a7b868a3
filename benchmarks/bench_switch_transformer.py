"""Benchmark: our Switch layer against transformers' SwitchTransformersSparseMLP, same weights and inputs.

Times forward + backward of one Switch feed-forward layer (ReLU experts, router jitter and dropout
off so both compute the same thing) at a small and at a Switch-Base-like size (d_model 768, d_ff
3072, 8 and 32 experts, capacity factor 1.25 per 512-token sequence) and prints ours /
transformers' time ratio (below 1: ours is faster). Both apply each expert to its own tokens
(ours sorts the kept tokens by expert once and keeps the experts' weights stacked; transformers
builds a mask per expert over ``nn.Linear`` experts).
The two run alternately, repeat after repeat, so machine noise hits both alike; the median is
reported.

    python benchmarks/bench_switch_transformer.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-large]

(also ``aicanon bench switch-transformer -- --device cuda``).
"""

from __future__ import annotations

import argparse
import math
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.switch import SwitchFFN, from_transformers


def compare(
    name: str,
    hidden: int,
    ffn: int,
    experts: int,
    batch: int,
    tokens: int,
    device: torch.device,
    repeats: int,
) -> float:
    from transformers import SwitchTransformersConfig
    from transformers.models.switch_transformers.modeling_switch_transformers import (
        SwitchTransformersSparseMLP,
    )

    capacity = math.floor(1.25 * tokens / experts)
    config = SwitchTransformersConfig(
        d_model=hidden, d_ff=ffn, num_experts=experts, expert_capacity=capacity,
        router_jitter_noise=0.0, dropout_rate=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    reference = SwitchTransformersSparseMLP(config).to(device)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0.0, 1.0 / math.sqrt(parameter.shape[-1]))
    ours = SwitchFFN(hidden, ffn, experts, expert_capacity=capacity).to(device)
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    x = torch.randn(batch, tokens, hidden, device=device)

    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = (ours(x) - reference(x)).abs().max().item()
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours(x).square().sum().backward(),
            "transformers": lambda: reference(x).square().sum().backward(),
        },
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(name, timings, "median", note=f"max |diff| {difference:.1e}", width=40)
    return timings["ours"].median / timings["transformers"].median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-large", action="store_true", help="only the small configuration")
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of one Switch FFN layer")
    small = "small (d 64, ff 256, 8 experts, 8x128)"
    ratios = [compare(small, 64, 256, 8, 8, 128, args.device, args.repeats)]
    if not args.skip_large:
        for experts in (8, 32):
            label = f"base (d 768, ff 3072, {experts} experts, 4x512)"
            ratios.append(compare(label, 768, 3072, experts, 4, 512, args.device, args.repeats))
    if max(ratios) > TARGET:
        print(NOTE)
    else:
        print(f"target met: every ratio <= {TARGET} (largest {max(ratios):.2f})")


TARGET = 1.1
"""The ratio issue 13 asks for. Measured on this machine's 2 CPU cores (2026-12-07, other jobs
running; the runs alternate, so load hits both alike): 0.59 small, 0.99 base with 8 experts, 0.98
with 32 (median of 7). Before the grouped per-expert products the base size was 1.13-1.62."""

# If a ratio above the target comes back (a change in torch or transformers), the analysis of the
# earlier base-size gap (ours 1.13-1.62x transformers' on CPU):
# the forward has no Python loop where index_add/scatter would do (the loop is over experts, one
# matmul each, as transformers'), one argsort (needed to group tokens by expert) and one host sync
# (bincount(...).tolist() for the split sizes; transformers' boolean masks sync once per expert).
# The remaining suspects are memory traffic, not launches: the backward of unbind stacks every
# expert's weight gradient into one [N, H, F] tensor (a full copy; nn.Linear experts write their
# .grad directly), and the gather / index_copy of the kept tokens. Removing the stack copy needs
# per-expert parameters (a state-dict layout change) or a grouped matmul (torch._grouped_mm, CUDA
# only), not a cheap, output-identical edit, so it is left as is.
NOTE = (
    f"note: a ratio above {TARGET}: no per-expert Python loop that scatter/index_add would replace, a "
    "single argsort and host sync; the likely cost is unbind's backward copying all experts' weight gradients into "
    "one stacked tensor, which needs a layout change or a grouped matmul to avoid (see the comment above)."
)


if __name__ == "__main__":
    main()
