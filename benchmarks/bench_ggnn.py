"""GatedGraphConv forward + backward: ours against torch_geometric.nn.GatedGraphConv, same weights and inputs.

Both run PyG's special case (one edge type, messages along the edges only, one message matrix per
step, torch's GRU cell), which our layer computes with ``directed_weights=False,
weight_per_step=True, reset_after=True``. Graphs: Cora (2,708 nodes, 10,556 edges; the staged
Planetoid file, or a random graph of that size when it is missing) and a random graph with 100,000
nodes and 1,000,000 edges. We also time the paper's configuration (directed weights, shared
across steps, Eq. 5's reset) with 4 edge types on the same graphs, which PyG cannot run, for scale.

    python benchmarks/bench_ggnn.py [--device cpu|cuda] [--repeats N] [--threads N]

Prints the best-of-N time per forward+backward and the ratio ours / PyG (below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from aicanon.graphs.ggnn import GatedGraphConv


def _graph(name: str, device: torch.device, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    if name == "cora":
        try:
            from aicanon.datasets.planetoid import load_planetoid

            data = load_planetoid("cora")
            return data.edge_index.to(device), data.num_nodes
        except Exception:  # noqa: BLE001 - fall back to a random graph of Cora's size
            return torch.randint(0, 2708, (2, 10556), generator=generator).to(device), 2708
    return torch.randint(0, 100_000, (2, 1_000_000), generator=generator).to(device), 100_000


def _time(step, repeats: int, device: torch.device) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed run: robust on a shared machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--features", type=int, default=32, help="state size D")
    parser.add_argument("--layers", type=int, default=3, help="propagation steps T")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import GatedGraphConv as PyGGatedGraphConv

    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    d, layers = args.features, args.layers
    print(f"device {device}, D={d}, T={layers}, threads {torch.get_num_threads()}; best of {args.repeats}")
    print(
        f"{'graph':<10} {'edges':>9} {'ours (s)':>10} {'PyG (s)':>10} {'ratio':>7} {'paper config (s)':>17}"
    )
    for name in ("cora", "random1M"):
        edge_index, num_nodes = _graph(name, device, generator)
        reference = PyGGatedGraphConv(d, layers).to(device)
        ours = GatedGraphConv(d, layers, directed_weights=False, weight_per_step=True, reset_after=True).to(
            device
        )
        with torch.no_grad():
            ours.weight.copy_(reference.weight.unsqueeze(1))
            ours.weight_ih.copy_(reference.rnn.weight_ih)
            ours.weight_hh.copy_(reference.rnn.weight_hh)
            ours.bias_ih.copy_(reference.rnn.bias_ih)
            ours.bias_hh.copy_(reference.rnn.bias_hh)
        x = torch.randn(num_nodes, d // 2, generator=generator).to(device)
        out_ours, out_reference = ours(x, edge_index), reference(x, edge_index)
        error = float((out_ours - out_reference).detach().abs().max())
        paper = GatedGraphConv(d, layers, num_edge_types=4).to(device)
        edge_type = torch.randint(0, 4, (edge_index.size(1),), generator=generator).to(device)

        def step(module, *inputs):
            def run() -> None:
                module.zero_grad(set_to_none=True)
                module(*inputs).square().mean().backward()

            return run

        t_ours = _time(step(ours, x, edge_index), args.repeats, device)
        t_reference = _time(step(reference, x, edge_index), args.repeats, device)
        t_paper = _time(step(paper, x, edge_index, edge_type), args.repeats, device)
        print(
            f"{name:<10} {edge_index.size(1):>9,} {t_ours:>10.4f} {t_reference:>10.4f} "
            f"{t_ours / t_reference:>7.2f} {t_paper:>17.4f}   (max |ours - PyG| = {error:.1e})"
        )


if __name__ == "__main__":
    main()
