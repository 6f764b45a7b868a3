"""Global readouts, GlobalAttentionPool and SAGPool: golden values, invariants, parity with
torch_geometric's global_mean_pool / global_max_pool / AttentionalAggregation / SAGPooling, bad input."""

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.pooling import (
    GlobalAttentionPool,
    SAGPool,
    global_max_pool,
    global_mean_pool,
    global_sum_pool,
    top_k_per_graph,
)

pytestmark = pytest.mark.paper("gnn-review")


def _batch(seed=0, nodes=30, graphs=4, features=6, edges=90):
    """Nodes of ``graphs`` graphs (sorted batch vector), edges within graphs only."""
    gen = torch.Generator().manual_seed(seed)
    batch = torch.sort(torch.randint(0, graphs, (nodes,), generator=gen)).values
    x = torch.randn(nodes, features, generator=gen)
    edge_index = torch.randint(0, nodes, (2, edges), generator=gen)
    edge_index = edge_index[:, batch[edge_index[0]] == batch[edge_index[1]]]
    return x, edge_index, batch


def _pyg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch_geometric.nn as pyg_nn
    return pyg_nn


def test_golden_readouts():
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0], [5.0, 6.0]])
    batch = torch.tensor([0, 0, 1])
    torch.testing.assert_close(global_sum_pool(x, batch), torch.tensor([[4.0, 2.0], [5.0, 6.0]]))
    torch.testing.assert_close(global_mean_pool(x, batch), torch.tensor([[2.0, 1.0], [5.0, 6.0]]))
    torch.testing.assert_close(global_max_pool(x, batch), torch.tensor([[3.0, 4.0], [5.0, 6.0]]))
    # A graph with no nodes (size=3) reads out 0; no batch means one graph.
    assert global_mean_pool(x, batch, size=3)[2].tolist() == [0.0, 0.0]
    torch.testing.assert_close(global_sum_pool(x), x.sum(0, keepdim=True))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_readouts_are_invariant_to_node_order(seed):
    x, _, batch = _batch(seed)
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(seed))
    attention = GlobalAttentionPool(torch.nn.Linear(6, 1), torch.nn.Linear(6, 3))
    for readout in (global_sum_pool, global_mean_pool, global_max_pool, attention):
        torch.testing.assert_close(
            readout(x[perm], batch[perm], 4), readout(x, batch, 4), atol=1e-5, rtol=1e-5
        )
    counts = torch.bincount(batch, minlength=4).unsqueeze(1).float()
    torch.testing.assert_close(
        global_mean_pool(x, batch, 4) * counts, global_sum_pool(x, batch, 4), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_global_pools_with_pyg(seed):
    pyg = _pyg()
    x, _, batch = _batch(seed)
    for ours, reference in ((global_mean_pool, pyg.global_mean_pool), (global_max_pool, pyg.global_max_pool)):
        x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_ours, out_ref = ours(x_ours, batch), reference(x_ref, batch)
        torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=0)
        grad = torch.randn_like(out_ours)
        (out_ours * grad).sum().backward()
        (out_ref * grad).sum().backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(global_sum_pool(x, batch), pyg.global_add_pool(x, batch), atol=1e-5, rtol=0)


@pytest.mark.parity
def test_parity_attention_readout_with_pyg_attentional_aggregation():
    pyg = _pyg()
    x, _, batch = _batch(3)
    gate, values = torch.nn.Linear(6, 1), torch.nn.Linear(6, 4)
    ours = GlobalAttentionPool(gate, values)
    reference = pyg.aggr.AttentionalAggregation(gate, values)
    out_ours = ours(x, batch)
    grads_ours = torch.autograd.grad(out_ours.square().sum(), (gate.weight, values.weight))
    out_ref = reference(x, batch)
    grads_ref = torch.autograd.grad(out_ref.square().sum(), (gate.weight, values.weight))
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=0)
    for a, b in zip(grads_ours, grads_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_attention_gates():
    x, _, batch = _batch(4)
    softmax = GlobalAttentionPool(torch.nn.Linear(6, 1))
    _, gates = softmax(x, batch, return_gates=True)
    torch.testing.assert_close(torch.zeros(4).index_add_(0, batch, gates.squeeze(1)), torch.ones(4))
    gate = torch.nn.Linear(6, 1)
    sigmoid = GlobalAttentionPool(gate, gate="sigmoid")  # Li et al. Eq. 7 without the outer tanh
    expected = torch.zeros(4, 6).index_add_(0, batch, torch.sigmoid(gate(x)) * x)
    torch.testing.assert_close(sigmoid(x, batch), expected, atol=1e-6, rtol=0)


def _reference_sagpool(ours: SAGPool):
    pyg = _pyg()
    reference = pyg.SAGPooling(ours.score.in_features, ours.ratio, GNN=pyg.GCNConv)
    with torch.no_grad():
        reference.gnn.lin.weight.copy_(ours.score.weight)
        reference.gnn.bias.copy_(ours.score.bias)
        reference.select.weight.fill_(1.0)  # PyG divides the score by |p|: p = 1 leaves Eq. (3) as is
    return reference


@pytest.mark.parity
@pytest.mark.parametrize("ratio", [0.5, 0.3, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_parity_sagpool_with_pyg(ratio, seed):
    x, edge_index, batch = _batch(seed)
    ours = SAGPool(6, ratio)
    with torch.no_grad():
        ours.score.bias.fill_(0.1)
    reference = _reference_sagpool(ours)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    pooled, edges, new_batch, kept, score = ours(x_ours, edge_index, batch)
    ref_x, ref_edges, _, ref_batch, ref_perm, ref_score = reference(x_ref, edge_index, batch=batch)
    torch.testing.assert_close(pooled, ref_x, atol=1e-5, rtol=0)
    assert torch.equal(edges, ref_edges) and torch.equal(new_batch, ref_batch) and torch.equal(kept, ref_perm)
    torch.testing.assert_close(score, ref_score, atol=1e-5, rtol=0)
    grad = torch.randn_like(pooled)
    (pooled * grad).sum().backward()
    (ref_x * grad).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.score.weight.grad, reference.gnn.lin.weight.grad, atol=1e-5, rtol=0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), ratio=st.floats(0.05, 1.0))
def test_sagpool_invariants(seed, ratio):
    x, edge_index, batch = _batch(seed)
    pool = SAGPool(6, ratio)
    pooled, edges, new_batch, kept, score = pool(x, edge_index, batch)
    counts = torch.bincount(batch, minlength=4)
    expected = torch.tensor([math.ceil(ratio * int(c)) for c in counts])
    assert torch.equal(torch.bincount(new_batch, minlength=4), expected)  # Eq. (4): ceil(kN) per graph
    assert torch.equal(new_batch, batch[kept])
    assert torch.all(score.abs() <= 1)  # tanh
    torch.testing.assert_close(pooled, x[kept] * score.unsqueeze(1))
    # Every kept node outscores every dropped node of its graph.
    full_score = torch.tanh(pool.score(x, edge_index).squeeze(1))
    dropped = torch.ones(x.size(0), dtype=torch.bool)
    dropped[kept] = False
    for g in range(4):
        kept_g, dropped_g = full_score[kept[new_batch == g]], full_score[dropped & (batch == g)]
        if kept_g.numel() and dropped_g.numel():
            assert kept_g.min() >= dropped_g.max()
    # A_out = A_idx,idx: exactly the edges whose both ends survive.
    survive = torch.isin(edge_index, kept).all(0)
    assert edges.size(1) == int(survive.sum())
    assert torch.equal(kept[edges], edge_index[:, survive])


def test_top_k_counts_and_order():
    score = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.8])
    batch = torch.tensor([0, 0, 0, 1, 1])
    assert top_k_per_graph(score, 0.5, batch, 2).tolist() == [1, 2, 4]
    assert top_k_per_graph(score, 1, batch, 2).tolist() == [1, 4]
    assert top_k_per_graph(score, 5, batch, 2).tolist() == [1, 2, 0, 4, 3]


def test_bad_input_names_the_argument():
    x, _edge_index, batch = _batch()
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        global_mean_pool([1.0], batch)
    with pytest.raises(ValueError, match="x must be 2-D"):
        global_sum_pool(x[0], batch)
    with pytest.raises(ValueError, match=r"batch must have shape \[N=30\]"):
        global_max_pool(x, batch[:-1])
    with pytest.raises(TypeError, match="batch must be an int64"):
        global_max_pool(x, batch.float())
    with pytest.raises(ValueError, match=r"size must be >= \d+ \(one slot per graph id, and max\(batch\)=\d+\), got 2"):
        global_mean_pool(x, batch, size=2)
    with pytest.raises(ValueError, match="gate must be 'softmax' or 'sigmoid'"):
        GlobalAttentionPool(torch.nn.Linear(6, 1), gate="tanh")
    with pytest.raises(ValueError, match=r"gate_nn must return \[N=30, 1 or F'\]"):
        GlobalAttentionPool(lambda h: h.sum(1))(x, batch)  # [N], not [N, 1]
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        SAGPool(6, 1.5)
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        SAGPool(6, 0)
    with pytest.raises(TypeError, match="ratio must be a float"):
        SAGPool(6, "half")
