"""Graph networks (Battaglia et al. 2018): the GN block and its presets, encode-process-decode.

The graphs tuple they read and write is tested in test_graphs_tuple.py."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.graphs.graph_networks import DotProductAttention, EncodeProcessDecode, GNBlock, mlp
from aicanon.graphs.graphs_tuple import GraphsTuple, batch, concat_features
from tests.graphs.test_graphs_tuple import E, U, V, graph_with, random_batch, random_graph

pytestmark = pytest.mark.paper("graph-networks")


def presets(seed: int = 0) -> dict[str, GNBlock]:
    torch.manual_seed(seed)
    return {
        "full": GNBlock.full(E, V, U, edge_output=5, node_output=6, global_output=7, hidden=(8,)),
        "full_mean": GNBlock.full(
            E, V, U, edge_output=5, node_output=6, global_output=7, hidden=(8,), aggregation="mean"
        ),
        "full_max": GNBlock.full(
            E, V, U, edge_output=5, node_output=6, global_output=7, hidden=(8,), aggregation="max"
        ),
        "independent": GNBlock.independent(
            E, V, U, edge_output=5, node_output=6, global_output=7, hidden=(8,)
        ),
        "message_passing": GNBlock.message_passing(E, V, message_size=5, node_output=6, hidden=(8,)),
        "message_passing_readout": GNBlock.message_passing(
            E, V, message_size=5, node_output=6, hidden=(8,), readout_size=3
        ),
        "non_local": GNBlock.non_local(V, value_size=3, node_output=6, heads=2, hidden=(8,)),
        "relation_network": GNBlock.relation_network(V, global_output=3, edge_latent=5, hidden=(8,)),
        "deep_sets": GNBlock.deep_sets(V, U, node_output=6, global_output=3, hidden=(8,)),
    }


def close(a: torch.Tensor | None, b: torch.Tensor | None, atol: float = 1e-5) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and torch.allclose(a, b, atol=atol)


# ------------------------------------------------------------------------------ golden values
def loop_reference(block: GNBlock, graph: GraphsTuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1 written as the paper's loops, one edge / node / graph at a time (full block)."""
    reduce = {
        "sum": lambda xs: torch.stack(xs).sum(0),
        "mean": lambda xs: torch.stack(xs).mean(0),
        "max": lambda xs: torch.stack(xs).max(0).values,
    }
    edge_graph, node_graph = graph.edge_graph_index().tolist(), graph.node_graph_index().tolist()
    new_edges = []
    for k in range(graph.num_edges):
        r, s = int(graph.receivers[k]), int(graph.senders[k])
        args = torch.cat([graph.edges[k], graph.nodes[r], graph.nodes[s], graph.globals[edge_graph[k]]])
        new_edges.append(block.edge_model(args[None])[0])
    width = block.edge_model(torch.zeros(1, E + 2 * V + U)).size(1)
    new_nodes = []
    for i in range(graph.num_nodes):
        received = [new_edges[k] for k in range(graph.num_edges) if int(graph.receivers[k]) == i]
        aggregate = reduce[block.edge_aggregation](received) if received else torch.zeros(width)
        new_nodes.append(
            block.node_model(torch.cat([aggregate, graph.nodes[i], graph.globals[node_graph[i]]])[None])[0]
        )
    new_globals = []
    for g in range(graph.num_graphs):
        edges_g = [new_edges[k] for k in range(graph.num_edges) if edge_graph[k] == g]
        nodes_g = [new_nodes[i] for i in range(graph.num_nodes) if node_graph[i] == g]
        e_bar = reduce[block.edge_global_aggregation](edges_g) if edges_g else torch.zeros(width)
        v_bar = reduce[block.node_global_aggregation](nodes_g)
        new_globals.append(block.global_model(torch.cat([e_bar, v_bar, graph.globals[g]])[None])[0])
    return torch.stack(new_edges), torch.stack(new_nodes), torch.stack(new_globals)


@pytest.mark.parametrize("name", ["full", "full_mean", "full_max"])
def test_full_block_matches_algorithm_1_loops(name):
    block = presets()[name]
    graph = random_batch([(3, 5), (1, 0), (4, 7), (2, 2)])
    out = block(graph)
    edges, nodes, globals_ = loop_reference(block, graph)
    assert torch.allclose(out.edges, edges, atol=1e-5)
    assert torch.allclose(out.nodes, nodes, atol=1e-5)
    assert torch.allclose(out.globals, globals_, atol=1e-5)


def _ones_linear(inputs: int) -> nn.Linear:
    layer = nn.Linear(inputs, 1, bias=False)
    nn.init.ones_(layer.weight)
    return layer


def test_hand_computed_sum_block():
    # Scalar attributes, every phi the sum of its arguments: a triangle 0 -> 1, 2 -> 1, 1 -> 0.
    graph = GraphsTuple.from_edge_index(
        torch.tensor([[1.0], [2.0], [3.0]]),
        torch.tensor([[0, 2, 1], [1, 1, 0]]),
        torch.tensor([[10.0], [20.0], [30.0]]),
        torch.tensor([100.0]),
    )
    block = GNBlock(_ones_linear(4), _ones_linear(3), _ones_linear(3))
    out = block(graph)
    # e'_k = e_k + v_r + v_s + u: 10+2+1+100, 20+2+3+100, 30+1+2+100
    assert out.edges.flatten().tolist() == [113.0, 125.0, 133.0]
    # v'_i = (sum of received e') + v_i + u: node 0 gets 133, node 1 gets 113+125, node 2 nothing
    assert out.nodes.flatten().tolist() == [133 + 1 + 100.0, 238 + 2 + 100.0, 0 + 3 + 100.0]
    # u' = sum e' + sum v' + u
    assert out.globals.flatten().tolist() == [(113 + 125 + 133) + (234 + 340 + 103) + 100.0]


def test_non_local_aggregation_is_a_softmax_weighted_mean():
    torch.manual_seed(0)
    attention = DotProductAttention(V, 3, heads=1)
    value = nn.Linear(V, 2)
    block = GNBlock(
        value, nn.Identity(), None, edge_inputs=("senders",), node_inputs=("edges",), attention=attention
    )
    nodes = torch.randn(3, V)
    graph = GraphsTuple.from_edge_index(nodes, torch.tensor([[1, 2, 0], [0, 0, 1]]), None, torch.zeros(1))
    out = block(graph).nodes
    # node 0 receives from 1 and 2: a' = exp(q_0 . k_s / sqrt(3)), ebar = sum a' b' / sum a'
    q, k = attention.query(nodes), attention.key(nodes)
    logits = torch.stack([q[0] @ k[1], q[0] @ k[2]]) / 3**0.5
    weights = logits.softmax(0)
    expected = weights[0] * value(nodes[1]) + weights[1] * value(nodes[2])
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert torch.allclose(out[1], value(nodes[0]), atol=1e-6)  # one incoming edge: weight 1
    assert torch.equal(out[2], torch.zeros(2))  # no incoming edge: an empty sum


def test_non_local_heads_weight_their_own_slice():
    block = GNBlock.non_local(V, value_size=3, node_output=4, heads=2, hidden=(8,))
    graph = random_batch([(5, 12)])
    logits = block.attention(graph.nodes[graph.receivers], graph.nodes[graph.senders])
    assert logits.shape == (12, 2)
    # a constant value gives back that constant at every node with an incoming edge (weights sum to 1)
    constant = GNBlock(
        lambda x: torch.ones(x.size(0), 6),
        nn.Identity(),
        edge_inputs=("senders",),
        node_inputs=("edges",),
        attention=block.attention,
    )
    received = torch.zeros(5, dtype=torch.bool).index_fill_(0, graph.receivers, True)
    out = constant(graph).nodes
    assert torch.allclose(out[received], torch.ones(int(received.sum()), 6), atol=1e-6)


def test_encode_process_decode_composes_blocks():
    torch.manual_seed(0)
    encoder = GNBlock.independent(E, V, U, edge_output=4, node_output=4, global_output=4, hidden=(8,))
    core = GNBlock.full(8, 8, 8, edge_output=4, node_output=4, global_output=4, hidden=(8,))
    decoder = GNBlock.independent(4, 4, 4, node_output=2, hidden=(8,))
    model = EncodeProcessDecode(encoder, core, decoder, steps=3)
    graph = random_batch([(3, 4), (2, 1)])
    outputs = model(graph, return_all=True)
    assert len(outputs) == 3 and all(o.nodes.shape == (5, 2) for o in outputs)
    encoded = encoder(graph)
    latent = encoded
    for t in range(3):  # Figure 6c: the core sees [G_0, H_{t-1}] every step, with the same weights
        latent = core(concat_features([encoded, latent]))
        assert torch.allclose(decoder(latent).nodes, outputs[t].nodes, atol=1e-6)
    assert torch.allclose(model(graph).nodes, outputs[-1].nodes)
    assert len(model(graph, steps=1, return_all=True)) == 1


def test_mlp_shape_and_layer_norm():
    net = mlp(3, (8, 8), 2, layer_norm=True)
    assert net(torch.randn(5, 3)).shape == (5, 2)
    assert isinstance(net[-1], nn.LayerNorm) and sum(isinstance(m, nn.Linear) for m in net) == 3


def test_blocks_move_devices_and_dtypes():
    block = presets()["full"].to(torch.float64)
    graph = random_batch([(3, 4)])
    graph = graph.replace(
        nodes=graph.nodes.double(), edges=graph.edges.double(), globals=graph.globals.double()
    )
    assert block(graph).nodes.dtype == torch.float64
    assert graph.to("cpu").num_nodes == 3


# ------------------------------------------------------------------------------ properties of the presets
def test_deep_sets_ignores_edges():
    block = presets()["deep_sets"]
    graph = random_batch([(4, 6), (3, 2)])
    generator = torch.Generator().manual_seed(1)
    rewired = batch([random_graph(4, 1, generator), random_graph(3, 8, generator)])
    rewired = rewired.replace(nodes=graph.nodes, globals=graph.globals)
    a, b = block(graph), block(rewired)
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.globals, b.globals)
    assert torch.equal(a.edges, graph.edges)  # edges pass through untouched
    assert block.edge_model is None and "edges" not in block.node_inputs + block.global_inputs


def test_message_passing_has_no_global():
    block = presets()["message_passing"]
    graph = random_batch([(4, 6), (3, 2)])
    other = graph.replace(globals=torch.randn_like(graph.globals) * 100)
    a, b = block(graph), block(other)
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edges, b.edges)
    assert torch.equal(a.globals, graph.globals)  # not updated either
    assert block.global_model is None and "globals" not in block.edge_inputs + block.node_inputs
    readout = presets()["message_passing_readout"]
    assert torch.equal(readout(graph).nodes, readout(other).nodes)  # the readout reads vbar' only
    assert torch.equal(readout(graph).globals, readout(other).globals)


def test_relation_network_keeps_nodes_and_sums_pairs():
    block = presets()["relation_network"]
    graph = random_batch([(4, 6), (3, 2)])
    out = block(graph)
    assert torch.equal(out.nodes, graph.nodes)
    pair = block.edge_model(torch.cat([graph.nodes[graph.receivers], graph.nodes[graph.senders]], 1))
    expected = torch.stack([pair[:6].sum(0), pair[6:].sum(0)])
    assert torch.allclose(out.globals, block.global_model(expected), atol=1e-6)


def test_independent_block_shares_nothing_between_elements():
    block = presets()["independent"]
    graph = random_batch([(4, 6), (3, 2)])
    changed = graph.replace(
        nodes=graph.nodes.clone().index_fill_(0, torch.tensor([0]), 9.0),
        senders=graph.receivers,
        receivers=graph.senders,
    )
    a, b = block(graph), block(changed)
    assert torch.equal(a.nodes[1:], b.nodes[1:]) and not torch.equal(a.nodes[0], b.nodes[0])
    assert torch.equal(a.edges, b.edges) and torch.equal(a.globals, b.globals)


def test_attention_and_full_block_use_relations():
    # The counterpart of the deep-sets test: the full block's outputs do change when edges change.
    block = presets()["full"]
    graph = random_batch([(4, 6)])
    flipped = graph.replace(senders=graph.receivers, receivers=graph.senders)
    assert not torch.allclose(block(graph).nodes, block(flipped).nodes)


sizes_strategy = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None)
@given(sizes=sizes_strategy, seed=st.integers(0, 1000), name=st.sampled_from(sorted(presets())))
def test_batched_equals_each_graph_alone(sizes, seed, name):
    block = presets()[name]
    graph = random_batch(sizes, seed)
    together = block(graph).unbatch()
    for single, result in zip(graph.unbatch(), together):
        alone = block(single)
        for field in ("nodes", "edges", "globals"):
            assert close(getattr(alone, field), getattr(result, field)), field


@settings(max_examples=25, deadline=None)
@given(
    nodes=st.integers(1, 7),
    edges=st.integers(0, 14),
    seed=st.integers(0, 1000),
    name=st.sampled_from(sorted(presets())),
)
def test_permutation_equivariance_and_invariance(nodes, edges, seed, name):
    # Section 3.2.3: relabelling nodes and reordering edges permutes node and edge outputs the same
    # way and leaves the global output unchanged.
    block = presets()[name]
    graph = random_batch([(nodes, edges)], seed)
    generator = torch.Generator().manual_seed(seed)
    node_perm = torch.randperm(nodes, generator=generator)
    edge_perm = torch.randperm(edges, generator=generator)
    new_label = torch.empty_like(node_perm)
    new_label[node_perm] = torch.arange(nodes)  # node node_perm[j] becomes node j
    permuted = graph.replace(
        nodes=graph.nodes[node_perm],
        edges=graph.edges[edge_perm],
        senders=new_label[graph.senders[edge_perm]],
        receivers=new_label[graph.receivers[edge_perm]],
    )
    a, b = block(graph), block(permuted)
    assert close(a.nodes[node_perm], b.nodes)
    assert close(a.edges[edge_perm], b.edges)
    assert close(a.globals, b.globals)


# ------------------------------------------------------------------------------ reference parity
def _pyg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import MetaLayer
        from torch_geometric.utils import scatter
    return MetaLayer, scatter


class _PyGEdge(nn.Module):
    """PyG's edge_model(src, dst, edge_attr, u, batch): src is the sender, dst the receiver. Reordered
    to the paper's phi^e(e_k, v_rk, v_sk, u)."""

    def __init__(self, net: nn.Module, use_edges: bool = True, use_globals: bool = True) -> None:
        super().__init__()
        self.net, self.use_edges, self.use_globals = net, use_edges, use_globals

    def forward(self, src, dst, edge_attr, u, batch):
        parts = (
            ([edge_attr] if self.use_edges else []) + [dst, src] + ([u[batch]] if self.use_globals else [])
        )
        return self.net(torch.cat(parts, 1))


class _PyGNode(nn.Module):
    def __init__(self, net: nn.Module, reduce: str, use_edges: bool = True, use_globals: bool = True) -> None:
        super().__init__()
        self.net, self.reduce, self.use_edges, self.use_globals = net, reduce, use_edges, use_globals

    def forward(self, x, edge_index, edge_attr, u, batch):
        _, scatter = _pyg()
        parts = (
            [scatter(edge_attr, edge_index[1], 0, dim_size=x.size(0), reduce=self.reduce)]
            if self.use_edges
            else []
        )
        parts.append(x)
        if self.use_globals:
            parts.append(u[batch])
        return self.net(torch.cat(parts, 1))


class _PyGGlobal(nn.Module):
    def __init__(self, net: nn.Module, reduce: str, use_edges: bool = True, use_globals: bool = True) -> None:
        super().__init__()
        self.net, self.reduce, self.use_edges, self.use_globals = net, reduce, use_edges, use_globals

    def forward(self, x, edge_index, edge_attr, u, batch):
        _, scatter = _pyg()
        size = int(batch.max()) + 1
        parts = []
        if self.use_edges:
            parts.append(scatter(edge_attr, batch[edge_index[0]], 0, dim_size=size, reduce=self.reduce))
        parts.append(scatter(x, batch, 0, dim_size=size, reduce=self.reduce))
        if self.use_globals:
            parts.append(u)
        return self.net(torch.cat(parts, 1))


def _grads(module: nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    # an input the block does not read gets no gradient: compare it as zero on both sides
    tensors = list(module.parameters()) + list(inputs)
    return [t.grad.clone() if t.grad is not None else torch.zeros_like(t) for t in tensors]


def _pyg_inputs(graph: GraphsTuple):
    x = graph.nodes.clone().requires_grad_()
    e = graph.edges.clone().requires_grad_()
    u = graph.globals.clone().requires_grad_()
    return x, e, u


@pytest.mark.parity
@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
def test_full_block_matches_pyg_metalayer(aggregation):
    MetaLayer, _ = _pyg()
    block = GNBlock.full(
        E, V, U, edge_output=5, node_output=6, global_output=7, hidden=(16, 16), aggregation=aggregation
    )
    reference = MetaLayer(
        _PyGEdge(block.edge_model),
        _PyGNode(block.node_model, aggregation),
        _PyGGlobal(block.global_model, aggregation),
    )
    graph = random_batch([(5, 12), (3, 4), (6, 15)], seed=3)
    ours_in = _pyg_inputs(graph)
    out = block(graph.replace(nodes=ours_in[0], edges=ours_in[1], globals=ours_in[2]))
    (out.nodes.square().sum() + out.edges.pow(3).sum() + out.globals.sin().sum()).backward()
    ours_grads = _grads(block, list(ours_in))
    block.zero_grad()
    x, e, u = _pyg_inputs(graph)
    x_ref, e_ref, u_ref = reference(x, graph.edge_index, e, u, graph.node_graph_index())
    (x_ref.square().sum() + e_ref.pow(3).sum() + u_ref.sin().sum()).backward()
    reference_grads = _grads(block, [x, e, u])
    assert torch.allclose(out.nodes, x_ref, atol=1e-5)
    assert torch.allclose(out.edges, e_ref, atol=1e-5)
    assert torch.allclose(out.globals, u_ref, atol=1e-5)
    for ours, theirs in zip(ours_grads, reference_grads):
        assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parity
def test_message_passing_and_deep_sets_match_pyg_metalayer():
    MetaLayer, _ = _pyg()
    graph = random_batch([(5, 12), (3, 4)], seed=5)
    block = GNBlock.message_passing(E, V, message_size=5, node_output=6, hidden=(16,), readout_size=3)
    reference = MetaLayer(
        _PyGEdge(block.edge_model, use_globals=False),
        _PyGNode(block.node_model, "sum", use_globals=False),
        _PyGGlobal(block.global_model, "sum", use_edges=False, use_globals=False),
    )
    deep = GNBlock.deep_sets(V, U, node_output=6, global_output=3, hidden=(16,))

    class _DeepNode(nn.Module):  # phi^v(v_i, u): no edges
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, edge_index, edge_attr, u, batch):
            return self.net(torch.cat([x, u[batch]], 1))

    deep_reference = MetaLayer(
        None,
        _DeepNode(deep.node_model),
        _PyGGlobal(deep.global_model, "sum", use_edges=False, use_globals=False),
    )
    for ours_block, ref in ((block, reference), (deep, deep_reference)):
        ours_in = _pyg_inputs(graph)
        out = ours_block(graph.replace(nodes=ours_in[0], edges=ours_in[1], globals=ours_in[2]))
        (out.nodes.square().sum() + out.edges.pow(3).sum() + out.globals.sin().sum()).backward()
        ours_grads = _grads(ours_block, list(ours_in))
        ours_block.zero_grad()
        x, e, u = _pyg_inputs(graph)
        x_ref, e_ref, u_ref = ref(x, graph.edge_index, e, u, graph.node_graph_index())
        (x_ref.square().sum() + e_ref.pow(3).sum() + u_ref.sin().sum()).backward()
        reference_grads = _grads(ours_block, [x, e, u])
        for ours, theirs in ((out.nodes, x_ref), (out.edges, e_ref), (out.globals, u_ref)):
            assert torch.allclose(ours, theirs, atol=1e-5)
        for ours, theirs in zip(ours_grads, reference_grads):
            assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("heads", [1, 3])
def test_non_local_aggregation_matches_pyg_transformer_conv(heads):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import TransformerConv
    torch.manual_seed(0)
    channels = 4
    reference = TransformerConv(V, channels, heads=heads, root_weight=False, bias=False)
    attention = DotProductAttention(V, channels, heads)
    value = nn.Linear(V, heads * channels, bias=False)
    with torch.no_grad():
        attention.query.weight.copy_(reference.lin_query.weight)
        attention.key.weight.copy_(reference.lin_key.weight)
        value.weight.copy_(reference.lin_value.weight)
    # node model = identity: the block's new nodes are rho^{e->v} itself, ebar'_i
    block = GNBlock(
        value, nn.Identity(), edge_inputs=("senders",), node_inputs=("edges",), attention=attention
    )
    graph = random_batch([(7, 20), (4, 9)], seed=2)
    x_ours = graph.nodes.clone().requires_grad_()
    out = block(graph.replace(nodes=x_ours)).nodes
    out.pow(3).sum().backward()
    ours_grads = _grads(block, [x_ours])
    block.zero_grad()
    x_ref = graph.nodes.clone().requires_grad_()
    expected = reference(x_ref, graph.edge_index)
    expected.pow(3).sum().backward()
    reference_grads = [
        reference.lin_query.weight.grad,
        reference.lin_key.weight.grad,
        reference.lin_value.weight.grad,
        x_ref.grad,
    ]
    assert torch.allclose(out, expected, atol=1e-5)
    by_name = dict(
        zip(["value", "query", "key", "x"], [ours_grads[0], ours_grads[1], ours_grads[2], ours_grads[3]])
    )
    names = [n for n, _ in block.named_parameters()]
    assert names == ["edge_model.weight", "attention.query.weight", "attention.key.weight"]
    for ours, theirs in (
        (by_name["query"], reference_grads[0]),
        (by_name["key"], reference_grads[1]),
        (by_name["value"], reference_grads[2]),
        (by_name["x"], reference_grads[3]),
    ):
        assert torch.allclose(ours, theirs, atol=1e-5)


# ------------------------------------------------------------------------------ bad input
def test_block_rejects_bad_construction():
    with pytest.raises(ValueError, match="edge_inputs must hold names from"):
        GNBlock(nn.Identity(), edge_inputs=("edges", "neighbours"))
    with pytest.raises(TypeError, match="edge_inputs must be a sequence of names"):
        GNBlock(nn.Identity(), edge_inputs="edges")
    with pytest.raises(ValueError, match="edge_aggregation must be one of"):
        GNBlock(edge_aggregation="median")
    with pytest.raises(TypeError, match="node_model must be an nn.Module"):
        GNBlock(node_model=3)
    with pytest.raises(ValueError, match="attention weights rho"):
        GNBlock(nn.Identity(), attention=DotProductAttention(V, 2))
    with pytest.raises(ValueError, match="its inputs are empty"):
        GNBlock(nn.Identity(), edge_inputs=())
    with pytest.raises(ValueError, match="sizes must have keys from"):
        GNBlock(sizes={"vertices": 3})
    with pytest.raises(ValueError, match="edge_output must be >= 1, got 0"):
        GNBlock.full(E, V, U, edge_output=0, node_output=1, global_output=1)
    with pytest.raises(TypeError, match="node_size must be an int, got bool"):
        GNBlock.deep_sets(True, node_output=1, global_output=1)
    with pytest.raises(ValueError, match="node_size must be >= 1"):
        GNBlock.non_local(0, value_size=2, node_output=2)
    with pytest.raises(ValueError, match="give at least one of"):
        GNBlock.independent(E, V, U)
    with pytest.raises(ValueError, match="edge_size is 0"):
        GNBlock.independent(0, V, U, edge_output=3)
    with pytest.raises(ValueError, match="hidden must hold positive ints"):
        mlp(3, (0,), 2)
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        mlp(0, (4,), 2)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        EncodeProcessDecode(nn.Identity(), nn.Identity(), nn.Identity(), steps=0)
    with pytest.raises(TypeError, match="core must be an nn.Module"):
        EncodeProcessDecode(nn.Identity(), "core", nn.Identity())


def test_block_rejects_bad_graphs():
    block = presets()["full"]
    with pytest.raises(TypeError, match="graph must be a GraphsTuple, got Tensor"):
        block(torch.zeros(3, V))
    with pytest.raises(ValueError, match=f"graph.nodes must have {V} features for this block, got {V + 1}"):
        block(graph_with(nodes=torch.zeros(3, V + 1)))
    with pytest.raises(ValueError, match="graph.globals is None"):
        block(graph_with(globals=None))
    bare = GNBlock(nn.Identity(), nn.Identity())  # no sizes: the missing attribute is caught at use
    with pytest.raises(ValueError, match="graph.edges is None but phi"):
        bare(graph_with(edges=None))
    wrong = GNBlock(lambda x: x[:1], edge_inputs=("edges",))
    with pytest.raises(ValueError, match=r"edge_model must return a tensor \[2, features\], got \(1, 3\)"):
        wrong(graph_with())
    with pytest.raises(ValueError, match="receiver_nodes must be a tensor"):
        DotProductAttention(V, 2)(torch.zeros(2, V + 1), torch.zeros(2, V))
    with pytest.raises(TypeError, match="graph must be a GraphsTuple"):
        EncodeProcessDecode(nn.Identity(), nn.Identity(), nn.Identity())(torch.zeros(2))
