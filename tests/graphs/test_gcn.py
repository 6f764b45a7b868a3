"""GCNConv, gcn_norm and GCN: golden values, invariants, parity with torch_geometric.nn.GCNConv, bad input."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.gcn import GCN, GCNConv, gcn_norm, with_self_loops
from aicanon.graphs.inputs import SparseFeatures

pytestmark = pytest.mark.paper("gnn-review")


def _graph(seed=0, nodes=12, features=5, edges=30):
    """Duplicated edges, self loops on nodes 3 and 5, isolated nodes 10 and 11."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, features, generator=gen)
    edge_index = torch.randint(0, nodes - 2, (2, edges), generator=gen)
    edge_index = torch.cat([edge_index, edge_index[:, :4], torch.tensor([[3, 5], [3, 5]])], dim=1)
    return x, edge_index


def _dense_propagation(edge_index, num_nodes, weight=None, loops=True):
    """``D~^-1/2 A~ D~^-1/2`` as a dense matrix, rows = targets (Eq. 2), built independently."""
    adjacency = torch.zeros(num_nodes, num_nodes)
    weight = torch.ones(edge_index.size(1)) if weight is None else weight
    for (j, i), w in zip(edge_index.t().tolist(), weight.tolist()):
        if loops and i == j:
            continue
        adjacency[i, j] += w
    if loops:
        for (j, i), w in zip(edge_index.t().tolist(), weight.tolist()):
            if i == j:
                adjacency[i, i] = w
        for v in range(num_nodes):
            if not any(a == b == v for a, b in edge_index.t().tolist()):
                adjacency[v, v] = 1.0
    degree = adjacency.sum(1)
    inverse = torch.where(degree > 0, degree.pow(-0.5), torch.zeros_like(degree))
    return inverse[:, None] * adjacency * inverse[None, :]


def test_golden_path_graph():
    # Path 0 - 1 - 2: with self loops d~ = (2, 3, 2); A^_01 = 1/sqrt(6), A^_00 = 1/2, A^_11 = 1/3.
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    conv = GCNConv(1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.tensor([[1.0], [10.0], [100.0]])
    out = conv(x, edge_index).squeeze(1)
    s6 = 6**0.5
    expected = torch.tensor([1 / 2 + 10 / s6, 1 / s6 + 10 / 3 + 100 / s6, 10 / s6 + 100 / 2])
    torch.testing.assert_close(out, expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), nodes=st.integers(1, 12), edges=st.integers(0, 40), loops=st.booleans())
def test_matches_dense_renormalised_adjacency(seed, nodes, edges, loops):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, 4, generator=gen)
    edge_index = torch.randint(0, nodes, (2, edges), generator=gen)
    weight = torch.rand(edges, generator=gen) + 0.1
    conv = GCNConv(4, 3, add_self_loops=loops)
    expected = _dense_propagation(edge_index, nodes, weight, loops) @ (x @ conv.weight.t()) + conv.bias
    torch.testing.assert_close(conv(x, edge_index, weight), expected, atol=1e-5, rtol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_permutation_equivariance(seed):
    x, edge_index = _graph(seed)
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(seed))
    inverse = torch.argsort(perm)
    conv = GCNConv(5, 4)
    out = conv(x, edge_index)
    permuted = conv(x[perm], inverse[edge_index])
    torch.testing.assert_close(permuted, out[perm], atol=1e-5, rtol=1e-5)


def test_normalised_propagation_is_symmetric_with_spectrum_in_minus_one_one():
    _x, edge_index = _graph(1)
    undirected = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    edges, norm = gcn_norm(undirected, 12)
    dense = torch.zeros(12, 12).index_put_((edges[1], edges[0]), norm, accumulate=True)
    torch.testing.assert_close(dense, dense.t())
    eigenvalues = torch.linalg.eigvalsh(dense.double())
    assert eigenvalues.max() <= 1 + 1e-6 and eigenvalues.min() >= -1 - 1e-6  # renormalisation trick


def test_isolated_node_without_loops_receives_only_the_bias():
    x, edge_index = _graph(2)
    conv = GCNConv(5, 3, add_self_loops=False)
    with torch.no_grad():
        conv.bias.uniform_()
    out = conv(x, edge_index)
    torch.testing.assert_close(out[10], conv.bias.detach())
    # With self loops, an isolated node keeps its own transformed features (d~ = 1).
    looped = GCNConv(5, 3)
    looped.load_state_dict(conv.state_dict())
    torch.testing.assert_close(
        looped(x, edge_index)[11], x[11] @ conv.weight.t() + conv.bias, atol=1e-6, rtol=0
    )


def test_existing_loop_keeps_its_weight_and_is_not_doubled():
    edge_index = torch.tensor([[0, 0, 1], [0, 1, 0]])
    edges, weight = with_self_loops(edge_index, 2, torch.tensor([3.0, 1.0, 1.0]))
    loops = edges[0] == edges[1]
    assert int(loops.sum()) == 2
    assert weight[loops].tolist() == [3.0, 1.0]


def test_sparse_features_and_cache_give_the_same_output():
    x, edge_index = _graph(3)
    conv = GCNConv(5, 4, cached=True)
    dense = conv(x, edge_index)
    torch.testing.assert_close(conv(SparseFeatures(x), edge_index), dense)
    torch.testing.assert_close(conv(x, edge_index), dense)  # second call reads the cache
    assert conv._cache is not None


def test_gcn_model_shape_and_eval_is_deterministic():
    x, edge_index = _graph(4)
    model = GCN(5, 3)
    assert model.conv1.bias is None and model.conv1.out_features == 16  # Eq. (9): no bias, 16 hidden
    model.eval()
    torch.testing.assert_close(model(x, edge_index), model(x, edge_index))
    assert model(x, edge_index).shape == (12, 3)


def _reference(ours: GCNConv, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import GCNConv as PyGGCNConv
    reference = PyGGCNConv(ours.in_features, ours.out_features, **kwargs)
    with torch.no_grad():
        reference.lin.weight.copy_(ours.weight)
        reference.bias.copy_(ours.bias)
    return reference


@pytest.mark.parity
@pytest.mark.parametrize("loops,normalize", [(True, True), (False, True), (False, False)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_pyg_gcnconv(loops, normalize, weighted, seed):
    x, edge_index = _graph(seed)
    ours = GCNConv(5, 4, add_self_loops=loops, normalize=normalize)
    with torch.no_grad():
        ours.bias.uniform_(-1, 1)
    reference = _reference(ours, add_self_loops=loops, normalize=normalize)
    weight = (
        torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(seed)) if weighted else None
    )
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    w_ours = weight.clone().requires_grad_() if weighted else None
    w_ref = weight.clone().requires_grad_() if weighted else None
    out_ours, out_ref = ours(x_ours, edge_index, w_ours), reference(x_ref, edge_index, w_ref)
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=0)
    grad = torch.randn_like(out_ours)
    (out_ours * grad).sum().backward()
    (out_ref * grad).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.weight.grad, reference.lin.weight.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.bias.grad, reference.bias.grad, atol=1e-5, rtol=0)
    if weighted:
        torch.testing.assert_close(w_ours.grad, w_ref.grad, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_parity_on_cora_sized_random_graph():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2708, 64, generator=gen)
    edge_index = torch.randint(0, 2600, (2, 10_556), generator=gen)  # nodes 2600.. isolated
    ours = GCNConv(64, 16)
    reference = _reference(ours)
    torch.testing.assert_close(ours(x, edge_index), reference(x, edge_index), atol=1e-5, rtol=0)


def test_bad_input_names_the_argument():
    x, edge_index = _graph()
    with pytest.raises(TypeError, match="in_features must be an int"):
        GCNConv(5.0, 4)
    with pytest.raises(ValueError, match="out_features must be >= 1"):
        GCNConv(5, 0)
    conv = GCNConv(5, 4)
    with pytest.raises(ValueError, match="in_features=5 columns"):
        conv(torch.randn(12, 6), edge_index)
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\]"):
        conv(x, edge_index[0])
    with pytest.raises(TypeError, match="edge_index must be an int64"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index values must be node indices"):
        conv(x, edge_index + 100)
    with pytest.raises(ValueError, match=r"edge_weight must have shape \[E=36\]"):
        conv(x, edge_index, torch.ones(3))
    with pytest.raises(TypeError, match="edge_weight must be a floating-point"):
        conv(x, edge_index, torch.ones(36, dtype=torch.long))
    with pytest.raises(ValueError, match="num_nodes must be >= 0, got -1"):
        gcn_norm(edge_index, -1)
    with pytest.raises(ValueError, match="dropout must be in"):
        GCN(5, 3, dropout=1.0)
