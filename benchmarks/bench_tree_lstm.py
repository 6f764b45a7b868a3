"""Benchmark: the batched, level-by-level Tree-LSTM against the recursive, node-by-node one.

No maintained library implements Tree-LSTMs for PyTorch (the authors' code is Lua Torch; DGL's
tutorial and TensorFlow Fold are examples, not maintained packages), so the baseline is our own
literal evaluation of Eq. 9-14 (``forward_recursive``: one unit at a time, children first), which
the tests check the batched path against. Both run forward + backward of the same N-ary (binary)
Tree-LSTM with the same weights on the same SST development trees, and the script prints the
batched / recursive time ratio (below 1: the batched path is faster).

    python benchmarks/bench_tree_lstm.py [--device cpu|cuda] [--threads N] [--repeats R] [--hidden H]

(also ``aicanon bench tree-lstm -- --repeats 3``).
"""

from __future__ import annotations

import argparse

import _timing
import torch

from aicanon.datasets.sst import load_sst_trees
from aicanon.language.tree_lstm import NaryTreeLSTM, batch_trees, encode_tree


def compare(label: str, trees, cell: NaryTreeLSTM, device: torch.device, repeats: int) -> None:
    batch = batch_trees([encode_tree(t.children, [0] * len(t)) for t in trees]).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch.num_nodes, cell.input_size, generator=gen).to(device)
    sizes = [len(t) for t in trees]

    def batched():
        h, c = cell(x, batch)
        return h, c

    def recursive():
        outputs, offset = [], 0
        for tree, size in zip(trees, sizes):
            outputs.append(cell.forward_recursive(x[offset : offset + size], tree.children))
            offset += size
        return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])

    with torch.no_grad():  # the same numbers first: a benchmark of two different functions means nothing
        difference = max((a - b).abs().max().item() for a, b in zip(batched(), recursive()))
    timings = _timing.time_alternately(
        {
            "batched": lambda: sum(t.square().sum() for t in batched()).backward(),
            "recursive": lambda: sum(t.square().sum() for t in recursive()).backward(),
        },
        repeats,
        device,
        warmup=1,
        before_each={
            "batched": lambda: cell.zero_grad(set_to_none=True),
            "recursive": lambda: cell.zero_grad(set_to_none=True),
        },
    )
    nodes = batch.num_nodes
    note = f"{nodes} nodes, {len(batch.levels)} levels, max |diff| {difference:.1e}"
    _timing.print_comparison(label, timings, "median", ours="batched", note=note, width=34)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=150, help="memory size (the paper's: 150)")
    parser.add_argument("--input", type=int, default=300, help="word vector size (the paper's: 300)")
    args = _timing.parse_common_args(parser, repeats=5)
    _timing.print_setup(args, "median", "forward + backward of a binary N-ary Tree-LSTM on SST dev trees")
    torch.manual_seed(0)
    cell = NaryTreeLSTM(args.input, args.hidden).to(args.device)
    dev = load_sst_trees("dev")
    compare("minibatch of 25 trees (training)", dev[:25], cell, args.device, args.repeats)
    compare("200 trees", dev[:200], cell, args.device, max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
