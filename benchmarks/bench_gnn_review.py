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
import statistics
import time
import warnings

import torch

from aicanon.core import DataUnavailable
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step(layer, x, edge_index) -> None:
    layer(x, edge_index).square().sum().backward()


def compare(
    name: str, kind: str, x: torch.Tensor, edge_index: torch.Tensor, device: torch.device, repeats: int
) -> None:
    ours, reference = pair(kind, x.size(1), 64, device)
    x, edge_index = x.to(device), edge_index.to(device)
    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = (ours(x, edge_index) - reference(x, edge_index)).abs().max().item()
    times: dict[str, list[float]] = {"ours": [], "pyg": []}
    for _ in range(3):  # warm-up
        step(ours, x, edge_index)
        step(reference, x, edge_index)
    for _ in range(repeats):
        for label, layer in (("ours", ours), ("pyg", reference)):
            layer.zero_grad(set_to_none=True)
            sync(device)
            start = time.perf_counter()
            step(layer, x, edge_index)
            sync(device)
            times[label].append(time.perf_counter() - start)
    ours_ms = 1e3 * statistics.median(times["ours"])
    pyg_ms = 1e3 * statistics.median(times["pyg"])
    print(
        f"{kind.upper():<5} {name:<36} ours {ours_ms:9.2f} ms   pyg {pyg_ms:9.2f} ms   "
        f"ratio ours/pyg {ours_ms / pyg_ms:5.2f}   max |diff| {difference:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: torch's)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-random", action="store_true", help="only Cora")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"forward + backward of one layer with 64 outputs, median of {args.repeats}"
    )
    try:
        from aicanon.datasets.planetoid import load_planetoid

        cora = load_planetoid("cora", normalize_features=True)
        for kind in ("gcn", "sage"):
            compare("Cora (2708 nodes, 10556 edges)", kind, cora.x, cora.edge_index, device, args.repeats)
    except (DataUnavailable, ValueError) as error:  # data not staged: say so, go on with the random graph
        print(f"Cora skipped: {type(error).__name__}: {str(error).splitlines()[0]}")
    if not args.skip_random:
        generator = torch.Generator().manual_seed(0)
        nodes, edges, features = 100_000, 1_000_000, 128
        x = torch.randn(nodes, features, generator=generator)
        edge_index = torch.randint(0, nodes, (2, edges), generator=generator)
        for kind in ("gcn", "sage"):
            compare(
                "random (100k nodes, 1M edges, F=128)", kind, x, edge_index, device, max(3, args.repeats // 4)
            )


if __name__ == "__main__":
    main()
