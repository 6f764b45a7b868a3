"""Benchmark: our ALBERT encoder against transformers' AlbertModel, same weights and inputs, one process.

Times forward + backward (sum of squares of the last hidden state plus the pooled output) of a
tiny configuration (V=1000, E=32, H=128, 4 layers all shared, 4 heads, batch 16 x 64 tokens with
padding) and of ALBERT-base's shape (V=30000, E=128, H=768, 12 layers shared, batch 8 x 128), and
prints ours / transformers' time ratio (below 1: ours is faster). Both models run alternately,
repeat after repeat; the median is reported. transformers runs its default (SDPA) attention.

    python benchmarks/bench_albert.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-base]

(also ``aicanon bench albert -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.albert import (
    AlbertConfig,
    AlbertEncoder,
    config_to_transformers,
    from_transformers,
)


def compare(
    name: str, cfg: AlbertConfig, batch: int, length: int, device: torch.device, repeats: int
) -> None:
    import transformers

    torch.manual_seed(0)
    reference = transformers.AlbertModel(transformers.AlbertConfig(**config_to_transformers(cfg))).to(device)
    ours = AlbertEncoder(cfg).to(device)
    load_state_dict_strict(ours, from_transformers(reference.state_dict(), cfg, pretraining=False))
    ids = torch.randint(0, cfg.vocab_size, (batch, length), device=device)
    types = torch.zeros_like(ids)
    types[:, length // 2 :] = 1
    mask = torch.ones_like(ids)
    mask[: batch // 2, -length // 4 :] = 0  # half the rows padded

    def run_ours():
        h, pooled = ours(ids, types, mask)
        (h.square().mean() + pooled.mean()).backward()

    def run_reference():
        out = reference(input_ids=ids, token_type_ids=types, attention_mask=mask)
        (out.last_hidden_state.square().mean() + out.pooler_output.mean()).backward()

    with torch.no_grad():  # the same function first: timing two different ones would mean nothing
        difference = (
            ours(ids, types, mask)[0]
            - reference(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        )
        difference = difference[mask.bool()].abs().max().item()
    timings = _timing.time_alternately(
        {"ours": run_ours, "transformers": run_reference},
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(name, timings, "median", note=f"max |diff| {difference:.1e}", width=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-base", action="store_true", help="only the tiny configuration")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of the encoder")
    tiny = AlbertConfig(
        vocab_size=1000, embedding_size=32, hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512,
        max_position_embeddings=64,
    )  # fmt: skip
    compare("tiny (H=128, L=4, 16 x 64 tokens)", tiny, 16, 64, args.device, args.repeats)
    if not args.skip_base:
        base = AlbertConfig.preset("albert-base", max_position_embeddings=512)
        compare("albert-base shape (8 x 128 tokens)", base, 8, 128, args.device, max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
