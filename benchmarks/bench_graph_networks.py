"""Benchmark: our GN block against torch_geometric's MetaLayer, same sub-networks, one process.

Times forward + backward of the message-passing preset (Figure 4c: phi^e on [e, v_r, v_s], a sum per
receiver, phi^v on [ebar, v]) and of the full GN block (Figure 4a, with globals, batched graphs),
each against a MetaLayer whose edge/node/global models call the very same MLPs, on a Cora-sized
graph (2708 nodes, 10556 edges) and on a random graph of 100k nodes and 1M edges, and prints
ours / PyG's time ratio (below 1: ours is faster). The two run alternately, repeat after repeat, so
machine noise hits both alike; the median is reported. The outputs are compared first.

    python benchmarks/bench_graph_networks.py [--device cpu|cuda] [--threads N] [--repeats R] [--skip-large]

(also ``aicanon bench graph-networks -- --device cuda``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch
from torch import nn

from aicanon.graphs.graph_networks import GNBlock
from aicanon.graphs.graphs_tuple import GraphsTuple

FEATURES = 32  # node, edge and global attribute width
HIDDEN = (64,)


class _Edge(nn.Module):
    """PyG's edge_model(src, dst, edge_attr, u, batch), src = sender: reordered to phi^e(e, v_r, v_s[, u])."""

    def __init__(self, net: nn.Module, use_globals: bool) -> None:
        super().__init__()
        self.net, self.use_globals = net, use_globals

    def forward(self, src, dst, edge_attr, u, batch):
        parts = [edge_attr, dst, src] + ([u[batch]] if self.use_globals else [])
        return self.net(torch.cat(parts, 1))


class _Node(nn.Module):
    def __init__(self, net: nn.Module, use_globals: bool) -> None:
        super().__init__()
        self.net, self.use_globals = net, use_globals

    def forward(self, x, edge_index, edge_attr, u, batch):
        from torch_geometric.utils import scatter

        parts = [scatter(edge_attr, edge_index[1], 0, dim_size=x.size(0), reduce="sum"), x]
        if self.use_globals:
            parts.append(u[batch])
        return self.net(torch.cat(parts, 1))


class _Global(nn.Module):
    def __init__(self, net: nn.Module, num_graphs: int) -> None:
        super().__init__()
        self.net, self.num_graphs = net, num_graphs

    def forward(self, x, edge_index, edge_attr, u, batch):
        from torch_geometric.utils import scatter

        edges = scatter(edge_attr, batch[edge_index[0]], 0, dim_size=self.num_graphs, reduce="sum")
        nodes = scatter(x, batch, 0, dim_size=self.num_graphs, reduce="sum")
        return self.net(torch.cat([edges, nodes, u], 1))


def random_batch(nodes: int, edges: int, graphs: int, generator: torch.Generator) -> GraphsTuple:
    """``graphs`` graphs of ``nodes // graphs`` nodes each, edges drawn within each graph."""
    per_graph_nodes, per_graph_edges = nodes // graphs, edges // graphs
    offsets = torch.arange(graphs).repeat_interleave(per_graph_edges) * per_graph_nodes
    senders = torch.randint(0, per_graph_nodes, (graphs * per_graph_edges,), generator=generator) + offsets
    receivers = torch.randint(0, per_graph_nodes, (graphs * per_graph_edges,), generator=generator) + offsets
    return GraphsTuple(
        nodes=torch.randn(graphs * per_graph_nodes, FEATURES, generator=generator),
        edges=torch.randn(senders.numel(), FEATURES, generator=generator),
        globals=torch.randn(graphs, FEATURES, generator=generator),
        senders=senders,
        receivers=receivers,
        n_node=torch.full((graphs,), per_graph_nodes),
        n_edge=torch.full((graphs,), per_graph_edges),
    )


def compare(name: str, preset: str, graph: GraphsTuple, device: torch.device, repeats: int) -> None:
    from torch_geometric.nn import MetaLayer

    torch.manual_seed(0)
    if preset == "message_passing":
        block = GNBlock.message_passing(
            FEATURES, FEATURES, message_size=FEATURES, node_output=FEATURES, hidden=HIDDEN
        )
        reference = MetaLayer(_Edge(block.edge_model, False), _Node(block.node_model, False), None)
    else:
        block = GNBlock.full(
            FEATURES,
            FEATURES,
            FEATURES,
            edge_output=FEATURES,
            node_output=FEATURES,
            global_output=FEATURES,
            hidden=HIDDEN,
        )
        reference = MetaLayer(
            _Edge(block.edge_model, True),
            _Node(block.node_model, True),
            _Global(block.global_model, graph.num_graphs),
        )
    block.to(device)
    graph = graph.to(device)
    edge_index, batch = graph.edge_index, graph.node_graph_index()

    def ours() -> torch.Tensor:
        out = block(graph)
        return out.nodes.square().sum() + out.edges.square().sum() + out.globals.square().sum()

    def theirs() -> torch.Tensor:
        x, e, u = reference(graph.nodes, edge_index, graph.edges, graph.globals, batch)
        return x.square().sum() + e.square().sum() + u.square().sum()

    with torch.no_grad():  # same numbers first: a benchmark of two different functions means nothing
        difference = abs(ours().item() - theirs().item()) / max(abs(theirs().item()), 1.0)
    timings = _timing.time_alternately(
        {"ours": lambda: ours().backward(), "pyg": lambda: theirs().backward()},
        repeats,
        device,
        warmup=3,
        # the MetaLayer calls the block's own MLPs: clearing the block clears both
        before_each={"ours": block.zero_grad, "pyg": block.zero_grad},
    )
    _timing.print_comparison(name, timings, "median", note=f"rel. diff of loss {difference:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-large", action="store_true", help="only the Cora-sized graphs")
    args = _timing.parse_common_args(parser, repeats=20)
    warnings.filterwarnings("ignore")
    device = args.device
    _timing.print_setup(args, "median", f"forward + backward, {FEATURES} features, MLP hidden {HIDDEN}")
    generator = torch.Generator().manual_seed(0)
    cora_sized = random_batch(2708, 10556, 1, generator)
    batched = random_batch(2708, 10556, 64, generator)
    compare(
        "message passing, Cora-sized (2708 n, 10556 e)", "message_passing", cora_sized, device, args.repeats
    )
    compare("full GN, 64 graphs, 2688 n, 10496 e", "full", batched, device, args.repeats)
    if not args.skip_large:
        large = random_batch(100_000, 1_000_000, 100, generator)
        repeats = max(3, args.repeats // 4)
        compare("message passing, 100k nodes, 1M edges", "message_passing", large, device, repeats)
        compare("full GN, 100 graphs, 100k nodes, 1M edges", "full", large, device, repeats)


if __name__ == "__main__":
    main()
