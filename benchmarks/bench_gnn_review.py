"""Benchmark: our GCNConv and SAGEConv against torch_geometric's, same weights and inputs, one process.

Times forward + backward of one layer (64 output features) on Cora (1433 bag-of-words features) and
on a random graph (100k nodes, 1M edges, 128 input features), and prints ours / PyG's time ratio
(below 1: ours is faster). The layers run alternately, repeat after repeat, so machine noise hits
both alike; the median is reported. The GCN layers are not cached (the normalisation is recomputed
every call in both).

    python benchmarks/bench_gnn_review.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-random]
"""

from __future__ import annotations

import argparse
import warnings

import _graphs
import _timing
import torch

from aicanon.graphs.gcn import GCNConv
from aicanon.graphs.sage import SAGEConv


def pair(kind: str, in_features: int, out_features: int, device: torch.device):
    """(ours, reference) with the same weights."""
    from torch_geometric.nn import GCNConv as PyGGCNConv
    from torch_geometric.nn import SAGEConv as PyGSAGEConv

    torch.manual_seed(0)
    if kind == "gcn":
        ours, reference = GCNConv(in_features, out_features), PyGGCNConv(in_features, out_features)
        with torch.no_grad():
            ours.weight.copy_(reference.lin.weight)
            ours.bias.copy_(reference.bias)
    else:
        ours, reference = SAGEConv(in_features, out_features), PyGSAGEConv(in_features, out_features)
        with torch.no_grad():
            ours.weight_neighbor.copy_(reference.lin_l.weight)
            ours.bias.copy_(reference.lin_l.bias)
            ours.weight_root.copy_(reference.lin_r.weight)
    return ours.to(device), reference.to(device)


def compare(
    name: str, kind: str, x: torch.Tensor, edge_index: torch.Tensor, device: torch.device, repeats: int
) -> None:
    ours, reference = pair(kind, x.size(1), 64, device)
    x, edge_index = x.to(device), edge_index.to(device)
    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = (ours(x, edge_index) - reference(x, edge_index)).abs().max().item()
    layers = {"ours": ours, "pyg": reference}
    steps = {
        label: lambda layer=layer: layer(x, edge_index).square().sum().backward()
        for label, layer in layers.items()
    }
    clear = {label: lambda layer=layer: layer.zero_grad(set_to_none=True) for label, layer in layers.items()}
    timings = _timing.time_alternately(steps, repeats, device, warmup=3, before_each=clear)
    _timing.print_comparison(
        f"{kind.upper():<5} {name}", timings, "median", note=f"max |diff| {difference:.1e}", width=42
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-random", action="store_true", help="only Cora")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    _timing.print_setup(args, "median", "forward + backward of one layer with 64 outputs")
    cora = _graphs.cora_or_none()
    if cora is not None:
        for kind in ("gcn", "sage"):
            compare(
                "Cora (2708 nodes, 10556 edges)", kind, cora.x, cora.edge_index, args.device, args.repeats
            )
    if not args.skip_random:
        x, edge_index = _graphs.random_graph()
        for kind in ("gcn", "sage"):
            name = "random (100k nodes, 1M edges, F=128)"
            compare(name, kind, x, edge_index, args.device, max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
