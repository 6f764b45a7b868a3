"""GG-NN / GGS-NN (Li et al. 2016): golden values, invariants, PyG parity and bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.ggnn import (
    GGNN,
    GGSNN,
    AnnotationOutput,
    GatedGraphConv,
    GraphAttentionReadout,
    NodeSelectionOutput,
    node_log_softmax,
)

pytestmark = pytest.mark.paper("ggnn")


def _graph(num_nodes: int, num_edges: int, num_types: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    edge_type = torch.randint(0, num_types, (num_edges,), generator=generator)
    return edge_index, edge_type, generator


def _dense_reference(
    conv: GatedGraphConv, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor
):
    """Eq. (1)-(6) written with the paper's dense matrices A^(in), A^(out) and a plain GRU loop."""
    n, d, types = x.size(0), conv.out_features, conv.num_edge_types
    h = torch.cat([x, x.new_zeros(n, d - x.size(1))], dim=1)
    adjacency = torch.zeros(types, n, n)  # adjacency[k, v, u] = number of edges u -> v of type k
    for (u, v), k in zip(edge_index.t().tolist(), edge_type.tolist()):
        adjacency[k, v, u] += 1
    for step in range(conv.num_layers):
        w = conv.weight[step if conv.weight_per_step else 0]
        b = (
            torch.zeros(w.size(0), d)
            if conv.message_bias is None
            else conv.message_bias[step if conv.weight_per_step else 0]
        )
        incoming = sum(adjacency[k] @ (h @ w[k] + b[k]) for k in range(types))
        parts = [incoming]
        if conv.directed_weights:
            parts.append(sum(adjacency[k].t() @ (h @ w[types + k] + b[types + k]) for k in range(types)))
        a = torch.cat(parts, dim=1)
        w_r, w_z, w_n = conv.weight_ih.chunk(3)
        u_r, u_z, u_n = conv.weight_hh.chunk(3)
        b_ir, b_iz, b_in = conv.bias_ih.chunk(3)
        b_hr, b_hz, b_hn = conv.bias_hh.chunk(3)
        r = torch.sigmoid(a @ w_r.t() + b_ir + h @ u_r.t() + b_hr)  # Eq. (4)
        z = torch.sigmoid(a @ w_z.t() + b_iz + h @ u_z.t() + b_hz)  # Eq. (3)
        if conv.reset_after:
            candidate = torch.tanh(a @ w_n.t() + b_in + r * (h @ u_n.t() + b_hn))
        else:
            candidate = torch.tanh(a @ w_n.t() + b_in + (r * h) @ u_n.t() + b_hn)  # Eq. (5)
        h = z * h + (1 - z) * candidate  # Eq. (6), torch's gate convention
    return h


@pytest.mark.parametrize("directed", [True, False])
@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("message_bias", [False, True])
def test_matches_dense_equations(directed, per_step, reset_after, message_bias):
    torch.manual_seed(0)
    edge_index, edge_type, _ = _graph(7, 15, 3, seed=1)
    conv = GatedGraphConv(
        6,
        3,
        num_edge_types=3,
        directed_weights=directed,
        weight_per_step=per_step,
        reset_after=reset_after,
        message_bias=message_bias,
    )
    x = torch.randn(7, 2)
    torch.testing.assert_close(
        conv(x, edge_index, edge_type), _dense_reference(conv, x, edge_index, edge_type), atol=1e-5, rtol=1e-5
    )


def test_golden_single_step_by_hand():
    # Two nodes, one edge 0 -> 1, D = 1, all weights chosen by hand; no bias.
    conv = GatedGraphConv(1, 1, directed_weights=True, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 3.0]).view(1, 2, 1, 1))  # W_in = 2, W_out = 3
        conv.weight_ih.copy_(
            torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
        )  # r, z ignore a; n = a_in + a_out
        conv.weight_hh.copy_(torch.tensor([[0.0], [0.0], [0.0]]))
    x = torch.tensor([[1.0], [0.5]])
    out = conv(x, torch.tensor([[0], [1]]))
    # z = sigmoid(0) = 0.5; node 1: a = [2 * 1, 0] -> n = tanh(2); node 0: a = [0, 3 * 0.5] -> n = tanh(1.5).
    expected = torch.tensor(
        [[0.5 * 1.0 + 0.5 * torch.tanh(torch.tensor(1.5))], [0.5 * 0.5 + 0.5 * torch.tanh(torch.tensor(2.0))]]
    )
    torch.testing.assert_close(out, expected)


def test_annotations_are_padded_with_zeros():
    conv = GatedGraphConv(5, 0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    out = conv(x, torch.empty(2, 0, dtype=torch.long))
    assert out.shape == (3, 5)
    torch.testing.assert_close(out[:, :2], x)
    assert torch.count_nonzero(out[:, 2:]) == 0
    # x already as wide as the state is used as is
    wide = torch.randn(3, 5)
    torch.testing.assert_close(conv(wide, torch.empty(2, 0, dtype=torch.long)), wide)


def test_messages_follow_edge_types_and_directions():
    # A node's state after one step depends on a neighbour only through edges that reach it.
    torch.manual_seed(0)
    conv = GatedGraphConv(4, 1, num_edge_types=2, directed_weights=False)
    x = torch.zeros(3, 1)
    x[0, 0] = 1.0
    edge_index, edge_type = torch.tensor([[0], [1]]), torch.tensor([1])
    out = conv(x, edge_index, edge_type)
    isolated = conv(torch.zeros(1, 1), torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    torch.testing.assert_close(out[2], isolated[0])  # node 2 receives nothing
    assert not torch.allclose(out[1], isolated[0])  # node 1 hears node 0 along the edge
    # without directed weights nothing flows back from 1 to 0: node 0 only sees itself
    alone = conv(x[:1], torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    torch.testing.assert_close(out[0], alone[0])
    # with directed weights node 0 hears node 1 against the edge
    directed = GatedGraphConv(4, 1, num_edge_types=2, directed_weights=True)
    x2 = torch.zeros(2, 1)
    x2[1, 0] = 1.0
    alone = directed(x2[:1], torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    assert not torch.allclose(directed(x2, edge_index, edge_type)[0], alone[0])
    # edge types use their own weights
    other = conv(x, edge_index, torch.tensor([0]))
    assert not torch.allclose(other[1], out[1])


@settings(max_examples=25, deadline=None)
@given(
    num_nodes=st.integers(1, 9),
    num_edges=st.integers(0, 25),
    seed=st.integers(0, 10_000),
    directed=st.booleans(),
    per_step=st.booleans(),
)
def test_permutation_equivariance(num_nodes, num_edges, seed, directed, per_step):
    torch.manual_seed(seed)
    edge_index, edge_type, generator = _graph(num_nodes, num_edges, 2, seed)
    conv = GatedGraphConv(4, 2, num_edge_types=2, directed_weights=directed, weight_per_step=per_step)
    x = torch.randn(num_nodes, 3, generator=generator)
    permutation = torch.randperm(num_nodes, generator=generator)
    inverse = torch.argsort(permutation)  # node i becomes node inverse[i]
    out = conv(x, edge_index, edge_type)
    permuted = conv(x[permutation], inverse[edge_index], edge_type)
    torch.testing.assert_close(permuted, out[permutation], atol=1e-5, rtol=1e-5)
    # and node-selection probabilities move with the nodes
    select = NodeSelectionOutput(4, 3)
    torch.testing.assert_close(
        select(permuted, x[permutation]), select(out, x)[permutation], atol=1e-5, rtol=1e-5
    )


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 10_000))
def test_attention_readout_is_invariant_to_node_order(sizes, seed):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    readout = GraphAttentionReadout(4, 2, 3)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    h, x = (
        torch.randn(batch.numel(), 4, generator=generator),
        torch.randn(batch.numel(), 2, generator=generator),
    )
    permutation = torch.randperm(batch.numel(), generator=generator)
    out = readout(h, x, batch, len(sizes))
    torch.testing.assert_close(
        readout(h[permutation], x[permutation], batch[permutation], len(sizes)), out, atol=1e-6, rtol=1e-5
    )
    # each graph's h_G is the readout of that graph alone (graphs do not mix)
    start = 0
    for graph, size in enumerate(sizes):
        alone = readout(h[start : start + size], x[start : start + size])
        torch.testing.assert_close(alone[0], out[graph], atol=1e-6, rtol=1e-5)
        start += size


def test_attention_readout_equation_7():
    torch.manual_seed(0)
    readout = GraphAttentionReadout(3, 1, 2)
    h, x = torch.randn(4, 3), torch.randn(4, 1)
    z = torch.cat([h, x], 1)
    weight, bias = readout.attention.weight, readout.attention.bias
    i, j = (z @ weight.t() + bias).chunk(2, dim=1)
    expected = torch.tanh((torch.sigmoid(i) * torch.tanh(j)).sum(0, keepdim=True))
    out, gate = readout(h, x, return_attention=True)
    torch.testing.assert_close(out, expected)
    assert gate.shape == (4, 2) and bool(((gate > 0) & (gate < 1)).all())


def test_node_log_softmax_per_graph():
    scores = torch.tensor([1.0, 2.0, 3.0, 1000.0, 1000.0])
    batch = torch.tensor([0, 0, 0, 1, 1])
    out = node_log_softmax(scores, batch)
    torch.testing.assert_close(out[:3], torch.log_softmax(scores[:3], 0))
    torch.testing.assert_close(out[3:], torch.log(torch.tensor([0.5, 0.5])))  # stable for large scores
    torch.testing.assert_close(node_log_softmax(scores[:3]), torch.log_softmax(scores[:3], 0))


def test_annotation_output_equation_8():
    torch.manual_seed(0)
    net = AnnotationOutput(4, 3)
    h, x = torch.randn(5, 4), torch.rand(5, 3)
    out = net(h, x)
    assert out.shape == (5, 3) and bool(((out > 0) & (out < 1)).all())
    torch.testing.assert_close(out, torch.sigmoid(net.logits(h, x)))


def test_ggnn_outputs_and_training_step():
    torch.manual_seed(0)
    edge_index, edge_type, _ = _graph(6, 8, 2, seed=3)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    x = torch.zeros(6, 1)
    x[[0, 3], 0] = 1.0
    selector = GGNN(1, 4, 2, num_steps=3, output="node_selection")
    scores = selector(x, edge_index, edge_type, batch)
    assert scores.shape == (6,)
    classifier = GGNN(1, 4, 2, num_steps=3, output="graph", num_classes=3)
    logits = classifier(x, edge_index, edge_type, batch)
    assert logits.shape == (2, 3)
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert all(p.grad is not None for p in classifier.parameters())


@pytest.mark.parametrize("share", [True, False])
def test_ggsnn_sequence_and_strong_supervision(share):
    torch.manual_seed(0)
    edge_index, edge_type, _ = _graph(5, 7, 2, seed=4)
    x = torch.zeros(5, 2)
    x[0, 0] = 1.0
    model = GGSNN(2, 4, 2, num_steps=2, output="node_selection", share_propagation=share)
    outputs, annotation_logits = model(x, edge_index, 3, edge_type)
    assert len(outputs) == 3 and len(annotation_logits) == 2
    assert all(o.shape == (5,) for o in outputs) and all(a.shape == (5, 2) for a in annotation_logits)
    assert (model.annotation_propagation is None) == share
    # with observed annotations the later steps start from them: step 2's output is that of step 1
    # run from X^(2)
    observed = [torch.eye(5, 2), torch.zeros(5, 2)]
    outputs_observed, _ = model(x, edge_index, 3, edge_type, observed_annotations=observed)
    first_from_observed, _ = model(observed[0], edge_index, 1, edge_type)
    torch.testing.assert_close(outputs_observed[1], first_from_observed[0])
    torch.testing.assert_close(outputs_observed[0], outputs[0])
    # gradients reach every parameter through the predicted annotations (end-to-end, Section 4)
    loss = sum(o.sum() for o in outputs)
    loss.backward()
    assert model.annotation_output.j.net[0].weight.grad is not None


def _pyg_pair(out_features: int, num_layers: int, bias: bool = True):
    pytest.importorskip("torch_geometric")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import GatedGraphConv as PyGGatedGraphConv
    reference = PyGGatedGraphConv(out_features, num_layers, bias=bias)
    ours = GatedGraphConv(
        out_features, num_layers, directed_weights=False, weight_per_step=True, reset_after=True, bias=bias
    )
    with torch.no_grad():
        ours.weight.copy_(reference.weight.unsqueeze(1))  # [L, D, D] -> [L, 1 edge type, D, D]
        ours.weight_ih.copy_(reference.rnn.weight_ih)
        ours.weight_hh.copy_(reference.rnn.weight_hh)
        if bias:
            ours.bias_ih.copy_(reference.rnn.bias_ih)
            ours.bias_hh.copy_(reference.rnn.bias_hh)
    return ours, reference


@pytest.mark.parity
@pytest.mark.parametrize(
    "in_features, out_features, num_layers, bias", [(3, 8, 3, True), (8, 8, 1, True), (2, 5, 4, False)]
)
def test_parity_with_torch_geometric(in_features, out_features, num_layers, bias):
    torch.manual_seed(0)
    ours, reference = _pyg_pair(out_features, num_layers, bias)
    edge_index, _, generator = _graph(30, 120, 1, seed=5)
    x = torch.randn(30, in_features, generator=generator)
    x_ours, x_reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_reference = ours(x_ours, edge_index), reference(x_reference, edge_index)
    torch.testing.assert_close(out_ours, out_reference, atol=1e-5, rtol=0)
    upstream = torch.randn_like(out_reference)
    out_ours.backward(upstream)
    out_reference.backward(upstream)
    torch.testing.assert_close(x_ours.grad, x_reference.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.weight.grad.squeeze(1), reference.weight.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.weight_ih.grad, reference.rnn.weight_ih.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.weight_hh.grad, reference.rnn.weight_hh.grad, atol=1e-5, rtol=0)
    if bias:
        torch.testing.assert_close(ours.bias_ih.grad, reference.rnn.bias_ih.grad, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.bias_hh.grad, reference.rnn.bias_hh.grad, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_parity_with_torch_geometric_on_planetoid_cora():
    from aicanon.datasets.planetoid import load_planetoid

    torch.manual_seed(0)
    data = load_planetoid("cora")
    ours, reference = _pyg_pair(16, 2)
    x = torch.randn(data.num_nodes, 8)
    out_ours, out_reference = ours(x, data.edge_index), reference(x, data.edge_index)
    torch.testing.assert_close(out_ours, out_reference, atol=1e-5, rtol=0)
    out_ours.square().sum().backward()
    out_reference.square().sum().backward()
    torch.testing.assert_close(ours.weight.grad.squeeze(1), reference.weight.grad, atol=1e-4, rtol=1e-5)


def test_bad_input():
    conv = GatedGraphConv(4, 2, num_edge_types=2)
    x, edge_index, edge_type = torch.zeros(3, 2), torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="edge_index values must be node indices in \\[0, N=3\\)"):
        conv(x, torch.tensor([[0], [3]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="edge_index must have shape \\[2, E\\]"):
        conv(x, torch.tensor([0, 1]), edge_type)
    with pytest.raises(TypeError, match="edge_index must be an int64"):
        conv(x, edge_index.float(), edge_type)
    with pytest.raises(
        ValueError,
        match="edge_type values must be relation ids in \\[0, num_edge_types=2\\), got values in \\[-1, 1\\]",
    ):
        conv(x, edge_index, torch.tensor([-1, 1]))
    with pytest.raises(ValueError, match="edge_type values must be relation ids"):
        conv(x, edge_index, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="edge_type must have shape \\[E=2\\]"):
        conv(x, edge_index, torch.tensor([0]))
    with pytest.raises(TypeError, match="edge_type must be an int64"):
        conv(x, edge_index, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="edge_type must be given when num_edge_types=2"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match="x must have at most out_features=4 columns"):
        conv(torch.zeros(3, 5), edge_index, edge_type)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        conv(torch.zeros(3, 2, dtype=torch.long), edge_index, edge_type)
    with pytest.raises(ValueError, match="x must be 2-D"):
        conv(torch.zeros(3), edge_index, edge_type)
    for kwargs, error, message in [
        ({"out_features": 0, "num_layers": 1}, ValueError, "out_features must be >= 1, got 0"),
        ({"out_features": 4, "num_layers": -1}, ValueError, "num_layers must be >= 0, got -1"),
        (
            {"out_features": 4, "num_layers": 1, "num_edge_types": 0},
            ValueError,
            "num_edge_types must be >= 1",
        ),
        ({"out_features": 4.0, "num_layers": 1}, TypeError, "out_features must be an int, got float"),
    ]:
        with pytest.raises(error, match=message):
            GatedGraphConv(**kwargs)
    with pytest.raises(ValueError, match="state_features must be >= annotation_features=3"):
        GGNN(3, 2, 1)
    with pytest.raises(ValueError, match="output must be one of"):
        GGNN(1, 4, 1, output="nodes")
    with pytest.raises(ValueError, match="num_classes must be given for output='graph'"):
        GGNN(1, 4, 1, output="graph")
    model = GGNN(1, 4, 1)
    with pytest.raises(ValueError, match="x must have in_features=1 columns, got 2"):
        model(torch.zeros(3, 2), edge_index)
    with pytest.raises(ValueError, match="batch must have shape \\[N=3\\]"):
        model(torch.zeros(3, 1), edge_index, batch=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="batch values must be graph ids in \\[0, num_graphs=1\\)"):
        model(torch.zeros(3, 1), edge_index, batch=torch.tensor([0, 0, 1]), num_graphs=1)
    with pytest.raises(ValueError, match="scores must be a 1-D floating-point tensor"):
        node_log_softmax(torch.zeros(2, 2))
    readout = GraphAttentionReadout(4, 1, 2)
    with pytest.raises(ValueError, match="h must have shape \\[N, 4\\], got \\(3, 3\\)"):
        readout(torch.zeros(3, 3), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="h and x must have one row per node"):
        readout(torch.zeros(3, 4), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="num_classes must be given"):
        GGSNN(2, 4, 1, output="graph")
    sequence = GGSNN(2, 4, 1, output="node_selection")
    with pytest.raises(ValueError, match="num_outputs must be >= 1, got 0"):
        sequence(torch.zeros(3, 2), edge_index, 0)
    with pytest.raises(
        ValueError, match="observed_annotations must be a list of num_outputs - 1 = 1 tensors, got 2"
    ):
        sequence(torch.zeros(3, 2), edge_index, 2, observed_annotations=[torch.zeros(3, 2)] * 2)
    with pytest.raises(
        ValueError, match="observed_annotations\\[0\\] must have x's shape \\(3, 2\\), got \\(3, 1\\)"
    ):
        sequence(torch.zeros(3, 2), edge_index, 2, observed_annotations=[torch.zeros(3, 1)])
