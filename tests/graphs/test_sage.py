"""SAGEConv, GraphSAGE and sample_neighbors: golden values, invariants, parity with
torch_geometric.nn.SAGEConv, bad input."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.inputs import SparseFeatures
from aicanon.graphs.sage import GraphSAGE, SAGEConv, sample_neighbors

pytestmark = pytest.mark.paper("gnn-review")


def _graph(seed=0, nodes=12, features=5, edges=30):
    """Duplicated edges, self loops on nodes 3 and 5, isolated nodes 10 and 11."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, features, generator=gen)
    edge_index = torch.randint(0, nodes - 2, (2, edges), generator=gen)
    edge_index = torch.cat([edge_index, edge_index[:, :4], torch.tensor([[3, 5], [3, 5]])], dim=1)
    return x, edge_index


def test_golden_mean_aggregation():
    # Node 2 hears from 0 and 1: mean 5.5; root term 2 * 100; isolated node 3 aggregates to 0.
    edge_index = torch.tensor([[0, 1], [2, 2]])
    x = torch.tensor([[1.0], [10.0], [100.0], [7.0]])
    conv = SAGEConv(1, 1, bias=False)
    with torch.no_grad():
        conv.weight_neighbor.fill_(1.0)
        conv.weight_root.fill_(2.0)
    torch.testing.assert_close(conv(x, edge_index).squeeze(1), torch.tensor([2.0, 20.0, 205.5, 14.0]))
    normalised = SAGEConv(1, 1, normalize=True)
    assert torch.allclose(normalised(x, edge_index).abs(), torch.ones(4, 1))  # line 7: unit rows


def test_concat_form_equals_the_two_map_form():
    # Algorithm 1 line 5: W [h_v || h_N(v)] with W = [W_root, W_neighbour].
    x, edge_index = _graph(1)
    conv = SAGEConv(5, 3, bias=False)
    neighbours = torch.zeros(12, 5).index_add_(0, edge_index[1], x[edge_index[0]])
    count = torch.bincount(edge_index[1], minlength=12).clamp(min=1).unsqueeze(1)
    concat = torch.cat([x, neighbours / count], dim=1)
    weight = torch.cat([conv.weight_root, conv.weight_neighbor], dim=1)
    torch.testing.assert_close(conv(x, edge_index), concat @ weight.t(), atol=1e-5, rtol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), targets=st.integers(0, 12))
def test_bipartite_targets_are_the_first_rows_of_the_full_output(seed, targets):
    x, edge_index = _graph(seed)
    conv = SAGEConv(5, 4)
    full = conv(x, edge_index)
    kept = edge_index[:, edge_index[1] < targets]
    torch.testing.assert_close(conv(x, kept, num_targets=targets), full[:targets], atol=1e-6, rtol=0)


def test_sparse_features_give_the_dense_output():
    x, edge_index = _graph(2)
    conv = SAGEConv(5, 7)
    torch.testing.assert_close(conv(SparseFeatures(x), edge_index), conv(x, edge_index), atol=1e-6, rtol=0)


def _reference(ours: SAGEConv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import SAGEConv as PyGSAGEConv
    reference = PyGSAGEConv(
        ours.in_features, ours.out_features, root_weight=ours.root_weight, normalize=ours.normalize
    )
    with torch.no_grad():
        reference.lin_l.weight.copy_(ours.weight_neighbor)
        reference.lin_l.bias.copy_(ours.bias)
        if ours.root_weight:
            reference.lin_r.weight.copy_(ours.weight_root)
    return reference


@pytest.mark.parity
@pytest.mark.parametrize("root_weight", [True, False])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("widths", [(5, 3), (5, 9)])  # narrowing transforms first, widening aggregates first
@pytest.mark.parametrize("self_loops", [False, True])
def test_parity_with_pyg_sageconv(root_weight, normalize, widths, self_loops):
    x, edge_index = _graph(0, features=widths[0])
    if not self_loops:
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    ours = SAGEConv(*widths, root_weight=root_weight, normalize=normalize)
    with torch.no_grad():
        ours.bias.uniform_(-1, 1)
    reference = _reference(ours)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_ref = ours(x_ours, edge_index), reference(x_ref, edge_index)
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=0)
    grad = torch.randn_like(out_ours)
    (out_ours * grad).sum().backward()
    (out_ref * grad).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.weight_neighbor.grad, reference.lin_l.weight.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.bias.grad, reference.lin_l.bias.grad, atol=1e-5, rtol=0)
    if root_weight:
        torch.testing.assert_close(ours.weight_root.grad, reference.lin_r.weight.grad, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_parity_bipartite_block_with_pyg():
    x, edge_index = _graph(3)
    kept = edge_index[:, edge_index[1] < 6]
    ours = SAGEConv(5, 4)
    reference = _reference(ours)
    torch.testing.assert_close(
        ours(x, kept, num_targets=6), reference((x, x[:6]), kept, size=(12, 6)), atol=1e-5, rtol=0
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fanouts=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    batch=st.integers(1, 6),
)
def test_sample_respects_fanouts_and_the_graph(seed, fanouts, batch):
    _, edge_index = _graph(seed, nodes=20, edges=70)
    gen = torch.Generator().manual_seed(seed)
    seeds = torch.randperm(20, generator=gen)[:batch]
    nodes, blocks = sample_neighbors(
        edge_index, seeds, fanouts, torch.Generator().manual_seed(seed), num_nodes=20
    )
    assert torch.equal(nodes[:batch], seeds)
    assert torch.unique(nodes).numel() == nodes.numel()
    assert len(blocks) == len(fanouts)
    assert blocks[-1].num_targets == batch
    existing = set(map(tuple, edge_index.t().tolist()))
    in_degree = torch.bincount(edge_index[1], minlength=20)
    for k, (block, fanout) in enumerate(zip(blocks, fanouts)):
        if k + 1 < len(blocks):
            assert blocks[k + 1].num_sources == block.num_targets  # B^k feeds the next layer
        source, target = block.edge_index
        assert all(s < block.num_sources for s in source.tolist())
        assert all(t < block.num_targets for t in target.tolist())
        per_target = torch.bincount(target, minlength=block.num_targets)
        expected = in_degree[nodes[: block.num_targets]].clamp(max=fanout)
        assert torch.equal(per_target, expected)  # min(S_k, degree) neighbours, without replacement
        for s, t in zip(nodes[source].tolist(), nodes[target].tolist()):
            assert (s, t) in existing


def test_same_generator_seed_repeats_the_sample():
    _, edge_index = _graph(5, nodes=20, edges=70)
    seeds = torch.tensor([1, 4, 9])
    first = sample_neighbors(edge_index, seeds, [2, 2], torch.Generator().manual_seed(11))
    second = sample_neighbors(edge_index, seeds, [2, 2], torch.Generator().manual_seed(11))
    assert torch.equal(first[0], second[0])
    assert all(torch.equal(a.edge_index, b.edge_index) for a, b in zip(first[1], second[1]))


def test_sampling_is_uniform_over_neighbours():
    # Node 0 has 6 in-neighbours; draws of 2 should pick each about 1/3 of the time.
    edge_index = torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]])
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(7)
    for _ in range(600):
        nodes, blocks = sample_neighbors(edge_index, torch.tensor([0]), [2], gen)
        counts[nodes[blocks[0].edge_index[0]]] += 1
    assert counts[0] == 0 and torch.all((counts[1:] / 600 - 1 / 3).abs() < 0.08)


def test_full_fanout_minibatch_equals_full_graph_forward():
    x, edge_index = _graph(6, nodes=20, edges=60)
    model = GraphSAGE(5, 3, hidden_features=(8, 8)).eval()
    seeds = torch.tensor([0, 7, 13])
    nodes, blocks = sample_neighbors(edge_index, seeds, [-1, -1, -1], num_nodes=20)
    torch.testing.assert_close(
        model.forward_blocks(x[nodes], blocks), model(x, edge_index)[seeds], atol=1e-5, rtol=0
    )


def test_minibatch_training_step_reduces_the_loss():
    x, edge_index = _graph(7, nodes=40, edges=160)
    y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = GraphSAGE(5, 3, hidden_features=16, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        seeds = torch.randperm(40, generator=gen)[:10]
        nodes, blocks = sample_neighbors(edge_index, seeds, [5, 5], gen, num_nodes=40)
        loss = F.cross_entropy(model.forward_blocks(x[nodes], blocks), y[seeds])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_bad_input_names_the_argument():
    x, edge_index = _graph()
    with pytest.raises(TypeError, match="in_features must be an int"):
        SAGEConv("5", 4)
    conv = SAGEConv(5, 4)
    with pytest.raises(ValueError, match="in_features=5 columns"):
        conv(torch.randn(12, 4), edge_index)
    with pytest.raises(ValueError, match=r"num_targets must be in \[0, 12\] \(at most the N nodes of x\), got 13"):
        conv(x, edge_index, num_targets=13)
    with pytest.raises(ValueError, match=r"edge_index targets must lie in \[0, num_targets=2\)"):
        conv(x, edge_index, num_targets=2)
    with pytest.raises(ValueError, match="fanouts must be a non-empty list"):
        sample_neighbors(edge_index, torch.tensor([0]), [])
    with pytest.raises(ValueError, match="fanouts must hold ints >= 1"):
        sample_neighbors(edge_index, torch.tensor([0]), [0])
    with pytest.raises(ValueError, match="seeds must be a 1-D integer tensor"):
        sample_neighbors(edge_index, torch.tensor([0.0]), [2])
    with pytest.raises(ValueError, match="seeds must be distinct"):
        sample_neighbors(edge_index, torch.tensor([1, 1]), [2])
    with pytest.raises(ValueError, match=r"seeds must be node ids in \[0, num_nodes=12\)"):
        sample_neighbors(edge_index, torch.tensor([12]), [2], num_nodes=12)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        sample_neighbors(edge_index, torch.tensor([1]), [2], generator=3)
    with pytest.raises(ValueError, match="blocks must have one entry per layer"):
        GraphSAGE(5, 3).forward_blocks(x, [])
