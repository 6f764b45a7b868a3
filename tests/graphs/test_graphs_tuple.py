"""The graphs tuple of Battaglia et al. 2018: batching and unbatching, concatenating attributes,
and the checks on every field. The GN block that reads it is tested in test_graph_networks.py."""

from __future__ import annotations

import pytest
import torch

from aicanon.graphs.graphs_tuple import ATTRIBUTES, GraphsTuple, batch, concat_features

pytestmark = pytest.mark.paper("graph-networks")


E, V, U = 3, 4, 2  # edge, node and global attribute widths (test_graph_networks.py uses them too)


def random_graph(
    nodes: int, edges: int, generator: torch.Generator, e: int = E, v: int = V, u: int = U
) -> GraphsTuple:
    edge_index = (
        torch.randint(0, max(nodes, 1), (2, edges), generator=generator)
        if nodes
        else torch.zeros(2, 0, dtype=torch.long)
    )
    return GraphsTuple.from_edge_index(
        torch.randn(nodes, v, generator=generator),
        edge_index,
        torch.randn(edges, e, generator=generator),
        torch.randn(u, generator=generator),
    )


def random_batch(sizes: list[tuple[int, int]], seed: int = 0) -> GraphsTuple:
    generator = torch.Generator().manual_seed(seed)
    return batch([random_graph(n, m if n else 0, generator) for n, m in sizes])


def graph_with(**changes):
    """A valid one-graph tuple (3 nodes, 2 edges, every attribute) with some fields replaced."""
    base = {
        "nodes": torch.zeros(3, V),
        "edges": torch.zeros(2, E),
        "globals": torch.zeros(1, U),
        "senders": torch.tensor([0, 1]),
        "receivers": torch.tensor([1, 2]),
        "n_node": torch.tensor([3]),
        "n_edge": torch.tensor([2]),
    }
    base.update(changes)
    return GraphsTuple(**base)


def test_graphs_tuple_batch_unbatch_round_trip():
    generator = torch.Generator().manual_seed(0)
    graphs = [random_graph(3, 4, generator), random_graph(0, 0, generator), random_graph(5, 9, generator)]
    batched = batch(graphs)
    assert batched.n_node.tolist() == [3, 0, 5] and batched.n_edge.tolist() == [4, 0, 9]
    assert batched.node_graph_index().tolist() == [0, 0, 0, 2, 2, 2, 2, 2]
    assert torch.equal(batched.edge_index, torch.stack([batched.senders, batched.receivers]))
    assert int(batched.senders[4:].min()) >= 3  # the third graph's indices are shifted past the first's nodes
    for original, back in zip(graphs, batched.unbatch()):
        for name in ("nodes", "edges", "globals", "senders", "receivers", "n_node", "n_edge"):
            assert torch.equal(getattr(original, name), getattr(back, name)), name
    assert batch([batched, graphs[0]]).num_graphs == 4  # batches of batches


def test_concat_features_joins_widths_and_keeps_structure():
    generator = torch.Generator().manual_seed(1)
    graph = batch([random_graph(3, 4, generator), random_graph(2, 1, generator)])
    other = graph.replace(nodes=torch.randn(5, 2, generator=generator), edges=None, globals=None)
    with pytest.raises(ValueError, match="all have edges or all lack them"):
        concat_features([graph, other])
    joined = concat_features([graph, graph.replace(nodes=other.nodes)])
    assert torch.equal(joined.nodes, torch.cat([graph.nodes, other.nodes], dim=1))
    assert torch.equal(joined.edges, torch.cat([graph.edges, graph.edges], dim=1))
    for name in ("senders", "receivers", "n_node", "n_edge"):
        assert torch.equal(getattr(joined, name), getattr(graph, name)), name
    bare = graph.replace(**dict.fromkeys(ATTRIBUTES))  # no attribute at all: all stay absent
    assert all(getattr(concat_features([bare, bare]), name) is None for name in ATTRIBUTES)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "changes, error, words",
    [
        ({"senders": torch.tensor([0, 3])}, ValueError, "senders must index nodes in [0, 3)"),
        ({"receivers": torch.tensor([-1, 2])}, ValueError, "receivers must index nodes"),
        ({"senders": torch.tensor([0.0, 1.0])}, TypeError, "senders must be an int64 or int32"),
        ({"senders": torch.tensor([[0, 1]])}, ValueError, "senders must be 1-D"),
        ({"senders": [0, 1]}, TypeError, "senders must be a 1-D integer tensor"),
        ({"senders": torch.tensor([0])}, ValueError, "one entry per edge"),
        ({"nodes": torch.zeros(4, V)}, ValueError, "nodes must have 3 rows, got 4"),
        ({"edges": torch.zeros(2)}, ValueError, "edges must be 2-D"),
        ({"globals": torch.zeros(1, U, dtype=torch.long)}, TypeError, "globals must be a floating-point"),
        (
            {"n_node": torch.tensor([3, 0])},
            ValueError,
            "n_node and n_edge must both have one entry per graph",
        ),
        ({"n_node": torch.tensor([-3])}, ValueError, "n_node must hold counts >= 0"),
        ({"n_edge": torch.tensor(2)}, ValueError, "n_edge must be 1-D"),
        ({"nodes": "x"}, TypeError, "nodes must be a torch.Tensor or None"),
    ],
)
def test_graphs_tuple_rejects_bad_fields(changes, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        graph_with(**changes)


def test_graphs_tuple_rejects_edges_across_graphs():
    with pytest.raises(ValueError, match="senders must point into the edge's own graph"):
        GraphsTuple(
            None,
            None,
            None,
            torch.tensor([0, 2]),
            torch.tensor([1, 3]),
            torch.tensor([2, 2]),
            torch.tensor([2, 0]),
        )


def test_from_edge_index_and_batch_reject_bad_input():
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\]"):
        GraphsTuple.from_edge_index(torch.zeros(3, V), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index must be a torch.Tensor"):
        GraphsTuple.from_edge_index(torch.zeros(3, V), [[0], [1]])
    with pytest.raises(ValueError, match="num_nodes must be given"):
        GraphsTuple.from_edge_index(None, torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="edge_index|index nodes"):
        GraphsTuple.from_edge_index(torch.zeros(2, V), torch.tensor([[0], [5]]))
    with pytest.raises(ValueError, match="at least one GraphsTuple"):
        batch([])
    with pytest.raises(TypeError, match=r"graphs\[1\] must be a GraphsTuple"):
        batch([graph_with(), "graph"])
    with pytest.raises(TypeError, match="graphs must be a sequence of GraphsTuple"):
        batch(graph_with())
    with pytest.raises(ValueError, match="same nodes width"):
        batch([graph_with(), graph_with(nodes=torch.zeros(3, V + 1))])
    with pytest.raises(ValueError, match="all have edges or all lack them"):
        batch([graph_with(), graph_with(edges=None)])
    with pytest.raises(ValueError, match="share one structure"):
        concat_features([graph_with(), graph_with(senders=torch.tensor([1, 0]))])
