"""Benchmark: our GATConv against torch_geometric's, same weights and inputs, one process.

Times forward + backward of one layer (8 heads x 8 features, self loops added, attention dropout
off so both compute the same thing) on Cora and on a random graph (100k nodes, 1M edges, 128
input features), and prints ours / PyG's time ratio (below 1: ours is faster). The two layers run
alternately, repeat after repeat, so machine noise hits both alike; the median is reported.

    python benchmarks/bench_gat.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-random]

(also ``aicanon bench gat -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _graphs
import _timing
import torch

from aicanon.graphs.gat import GATConv
from aicanon.graphs.inputs import SparseFeatures


def copy_weights(ours: GATConv, reference) -> None:
    with torch.no_grad():
        ours.weight.copy_(reference.lin.weight)
        ours.att_source.copy_(reference.att_src.view(ours.heads, ours.out_features))
        ours.att_target.copy_(reference.att_dst.view(ours.heads, ours.out_features))
        ours.bias.copy_(reference.bias)


def compare(
    name: str,
    x: torch.Tensor,
    edge_index: torch.Tensor,
    device: torch.device,
    repeats: int,
    sparse: bool = False,
) -> None:
    from torch_geometric.nn import GATConv as PyGGATConv

    torch.manual_seed(0)
    reference = PyGGATConv(x.size(1), 8, heads=8).to(device)
    ours = GATConv(x.size(1), 8, heads=8).to(device)
    copy_weights(ours, reference)
    x, edge_index = x.to(device), edge_index.to(device)
    x_ours = SparseFeatures(x) if sparse else x

    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = (ours(x_ours, edge_index) - reference(x, edge_index)).abs().max().item()
    timings = _timing.time_alternately(
        {
            "ours": lambda: ours(x_ours, edge_index).square().sum().backward(),
            "pyg": lambda: reference(x, edge_index).square().sum().backward(),
        },
        repeats,
        device,
        warmup=3,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            "pyg": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison(name, timings, "median", note=f"max |diff| {difference:.1e}", width=36)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-random", action="store_true", help="only Cora")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of one 8-head x 8-feature layer")
    cora = _graphs.cora_or_none()
    if cora is not None:
        compare("Cora (2708 nodes, 10556 edges)", cora.x, cora.edge_index, args.device, args.repeats)
        compare("Cora, SparseFeatures input", cora.x, cora.edge_index, args.device, args.repeats, sparse=True)
    if not args.skip_random:
        x, edge_index = _graphs.random_graph()
        compare("random (100k nodes, 1M edges, F=128)", x, edge_index, args.device, max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
