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
import statistics
import time
import warnings

import torch

from aicanon.core import DataUnavailable
from aicanon.graphs.gat import GATConv, SparseFeatures


def copy_weights(ours: GATConv, reference) -> None:
    with torch.no_grad():
        ours.weight.copy_(reference.lin.weight)
        ours.att_source.copy_(reference.att_src.view(ours.heads, ours.out_features))
        ours.att_target.copy_(reference.att_dst.view(ours.heads, ours.out_features))
        ours.bias.copy_(reference.bias)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step(layer, x, edge_index) -> None:
    out = layer(x, edge_index)
    out.square().sum().backward()


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
    times: dict[str, list[float]] = {"ours": [], "pyg": []}
    for _ in range(3):  # warm-up
        step(ours, x_ours, edge_index)
        step(reference, x, edge_index)
    for _ in range(repeats):
        for label, layer, features in (("ours", ours, x_ours), ("pyg", reference, x)):
            layer.zero_grad(set_to_none=True)
            sync(device)
            start = time.perf_counter()
            step(layer, features, edge_index)
            sync(device)
            times[label].append(time.perf_counter() - start)
    ours_ms = 1e3 * statistics.median(times["ours"])
    pyg_ms = 1e3 * statistics.median(times["pyg"])
    print(
        f"{name:<34} ours {ours_ms:9.2f} ms   pyg {pyg_ms:9.2f} ms   ratio ours/pyg {ours_ms / pyg_ms:5.2f}"
        f"   max |diff| {difference:.1e}"
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
        f"forward + backward of one 8-head x 8-feature layer, median of {args.repeats}"
    )

    try:
        from aicanon.datasets.planetoid import load_planetoid

        cora = load_planetoid("cora", normalize_features=True)
        compare("Cora (2708 nodes, 10556 edges)", cora.x, cora.edge_index, device, args.repeats)
        compare("Cora, SparseFeatures input", cora.x, cora.edge_index, device, args.repeats, sparse=True)
    except (
        DataUnavailable,
        ValueError,
    ) as error:  # data not staged: say so and go on with the synthetic graph
        print(f"Cora skipped: {type(error).__name__}: {str(error).splitlines()[0]}")

    if not args.skip_random:
        generator = torch.Generator().manual_seed(0)
        nodes, edges, features = 100_000, 1_000_000, 128
        x = torch.randn(nodes, features, generator=generator)
        edge_index = torch.randint(0, nodes, (2, edges), generator=generator)
        compare("random (100k nodes, 1M edges, F=128)", x, edge_index, device, max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
