"""GatedGraphConv forward + backward: ours against torch_geometric.nn.GatedGraphConv, same weights and inputs.

Both run PyG's special case (one edge type, messages along the edges only, one message matrix per
step, torch's GRU cell), which our layer computes with ``directed_weights=False,
weight_per_step=True, reset_after=True``. Graphs: Cora (2,708 nodes, 10,556 edges; the staged
Planetoid file, or a random graph of that size when it is missing) and a random graph with 100,000
nodes and 1,000,000 edges. We also time the paper's configuration (directed weights, shared
across steps, Eq. 5's reset) with 4 edge types on the same graphs, which PyG cannot run, for scale.

    python benchmarks/bench_ggnn.py [--device cpu|cuda] [--repeats N] [--threads N]

Prints the best-of-N time per forward+backward (the three run alternately) and the ratio ours / PyG
(below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=32, help="state size D")
    parser.add_argument("--layers", type=int, default=3, help="propagation steps T")
    args = _timing.parse_common_args(parser, repeats=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import GatedGraphConv as PyGGatedGraphConv

    device = args.device
    generator = torch.Generator().manual_seed(0)
    d, layers = args.features, args.layers
    _timing.print_setup(args, "min", f"forward + backward, D={d}, T={layers}")
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

        timings = _timing.time_alternately(
            {
                "ours": step(ours, x, edge_index),
                "pyg": step(reference, x, edge_index),
                "paper config": step(paper, x, edge_index, edge_type),
            },
            args.repeats,
            device,
        )
        _timing.print_comparison(
            f"{name} ({edge_index.size(1):,} edges)",
            timings,
            "min",
            references=("pyg",),  # PyG cannot run the paper's configuration: its time is for scale
            note=f"max |ours - PyG| {error:.1e}",
            width=28,
        )


if __name__ == "__main__":
    main()
