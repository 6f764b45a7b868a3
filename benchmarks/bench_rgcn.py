"""RGCNConv forward + backward: ours against torch_geometric.nn.RGCNConv and FastRGCNConv, same weights.

Graphs: AIFB (8,285 nodes, 58,086 edges with inverses, 90 relations; the staged RDF graph, or a
random graph of that size when it is missing) and a random graph with 100,000 nodes, 1,000,000
edges and 50 relations. Layers: no decomposition, basis (``--bases``) and block-diagonal
(``--blocks``) decompositions on dense features (``--features`` in and out), and the featureless
first layer of the entity classifier (one-hot node ids, ``--hidden`` outputs) on AIFB. PyG's
FastRGCNConv gathers a weight matrix per edge (``E x in x out``); it is skipped where that would
exceed ``--fast-limit`` elements.

    python benchmarks/bench_rgcn.py [--device cpu|cuda] [--repeats N] [--threads N]

Prints the best-of-N time per forward+backward (the layers run alternately) and the ratios ours / PyG
(below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch

from aicanon.graphs.rgcn import RGCNConv


def _graph(name: str, device: torch.device, generator: torch.Generator):
    if name == "aifb":
        try:
            from aicanon.datasets.rdf_entities import load_rdf_entities

            data = load_rdf_entities("aifb")
            return data.edge_index.to(device), data.edge_type.to(device), data.num_nodes, data.num_relations
        except Exception:  # noqa: BLE001 - fall back to a random graph of AIFB's size
            n, e, r = 8285, 58086, 90
    else:
        n, e, r = 100_000, 1_000_000, 50
    edge_index = torch.randint(0, n, (2, e), generator=generator)
    edge_type = torch.randint(0, r, (e,), generator=generator)
    return edge_index.to(device), edge_type.to(device), n, r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=32, help="dense in/out features")
    parser.add_argument("--hidden", type=int, default=16, help="outputs of the featureless layer")
    parser.add_argument("--bases", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--fast-limit", type=float, default=2e8, help="max E*in*out for FastRGCNConv")
    parser.add_argument("--graphs", default="aifb,random1M")
    args = _timing.parse_common_args(parser, repeats=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import FastRGCNConv
        from torch_geometric.nn import RGCNConv as PyGRGCNConv

    device = args.device
    generator = torch.Generator().manual_seed(0)
    _timing.print_setup(args, "min", "forward + backward of one layer")
    for graph in args.graphs.split(","):
        edge_index, edge_type, n, r = _graph(graph, device, generator)
        layers = [
            ("none", {}, args.features),
            ("basis", {"num_bases": args.bases}, args.features),
            ("block", {"num_blocks": args.blocks}, args.features),
        ]
        if graph == "aifb":
            layers.append(("featureless", {}, None))
        for label, kwargs, width in layers:
            in_features = n if width is None else width
            out_features = args.hidden if width is None else width
            ours = RGCNConv(in_features, out_features, r, **kwargs).to(device)
            x = (
                None
                if width is None
                else torch.randn(n, width, generator=generator).to(device).requires_grad_(True)
            )

            def step(layer, x=x, edge_index=edge_index, edge_type=edge_type):
                def run():
                    layer.zero_grad(set_to_none=True)
                    layer(x, edge_index, edge_type).square().sum().backward()

                return run

            steps = {"ours": step(ours)}
            for label_reference, reference_class in (("pyg", PyGRGCNConv), ("fast", FastRGCNConv)):
                per_edge = edge_type.numel() * in_features * out_features
                if reference_class is FastRGCNConv and (
                    per_edge > args.fast_limit or "num_blocks" in kwargs and width is None
                ):
                    continue
                reference = reference_class(in_features, out_features, r, aggr="mean", **kwargs).to(device)
                reference.load_state_dict(ours.state_dict())
                steps[label_reference] = step(reference)
            timings = _timing.time_alternately(steps, args.repeats, device)
            timings.setdefault("fast", None)  # printed as skipped
            _timing.print_comparison(f"{graph:<9} {label}", timings, "min", width=22)


if __name__ == "__main__":
    main()
