"""R-GCN layer and models: golden values, invariants, torch_geometric parity, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs import rgcn
from aicanon.graphs.rgcn import (
    RGCNConv,
    RGCNEntityClassifier,
    RGCNLinkPredictor,
    add_inverse_relations,
    drop_edges,
    relation_norm,
)

pytestmark = pytest.mark.paper("rgcn")

DECOMPOSITIONS = [{}, {"num_bases": 3}, {"num_blocks": 2}]


def _graph(num_nodes=12, num_edges=60, num_relations=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    edge_type = torch.randint(0, num_relations, (num_edges,), generator=g)
    return edge_index, edge_type


def _naive(layer: RGCNConv, x: torch.Tensor, edge_index, edge_type) -> torch.Tensor:
    """Eq. (2) written as loops over nodes and relations with the expanded W_r (Eq. 3/4)."""
    weights = layer.relation_weights()
    n = x.size(0)
    out = torch.zeros(n, layer.out_features, dtype=x.dtype)
    for i in range(n):
        for r in range(layer.num_relations):
            sources = edge_index[0][(edge_index[1] == i) & (edge_type == r)]
            if sources.numel():
                out[i] += (x[sources] @ weights[r]).sum(0) / sources.numel()  # 1/c_{i,r}, c = |N_i^r|
        if layer.root is not None:
            out[i] += x[i] @ layer.root
    if layer.bias is not None:
        out += layer.bias
    return out


# ---------------------------------------------------------------- golden values and invariants


def test_golden_two_relations_by_hand():
    # Node 2 receives from 0 and 1 along relation 0 and from 0 along relation 1.
    layer = RGCNConv(1, 1, num_relations=2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[2.0]], [[10.0]]]))
        layer.root.fill_(1.0)
    x = torch.tensor([[1.0], [3.0], [5.0]])
    edge_index = torch.tensor([[0, 1, 0], [2, 2, 2]])
    edge_type = torch.tensor([0, 0, 1])
    out = layer(x, edge_index, edge_type)
    # node 2: mean(1, 3) * 2 + 1 * 10 + 5 * 1 = 4 + 10 + 5 = 19; nodes 0, 1: only W_0 x_i.
    assert torch.allclose(out, torch.tensor([[1.0], [3.0], [19.0]]))
    assert torch.allclose(relation_norm(edge_index, edge_type, 3, 2), torch.tensor([0.5, 0.5, 1.0]))


@pytest.mark.parametrize("path", ["gathered", "per-relation"])
@pytest.mark.parametrize("kwargs", DECOMPOSITIONS, ids=["none", "basis", "block"])
def test_matches_loop_over_nodes_and_relations(kwargs, path, monkeypatch):
    if path == "per-relation":  # the large-weight path: one matmul per relation segment
        monkeypatch.setattr(rgcn, "GATHER_LIMIT", 0)
    torch.manual_seed(0)
    layer = RGCNConv(4, 6, num_relations=3, **kwargs)
    edge_index, edge_type = _graph(9, 40, 3)
    x = torch.randn(9, 4)
    assert torch.allclose(layer(x, edge_index, edge_type), _naive(layer, x, edge_index, edge_type), atol=1e-5)


def test_basis_and_block_expansion_equations():
    torch.manual_seed(0)
    basis = RGCNConv(4, 6, num_relations=3, num_bases=2)
    expected = torch.einsum("rb,bio->rio", basis.comp, basis.weight)  # Eq. (3)
    assert torch.allclose(basis.relation_weights(), expected)
    block = RGCNConv(4, 6, num_relations=3, num_blocks=2)
    w = block.relation_weights()  # Eq. (4): off-diagonal blocks are zero
    assert torch.equal(w[:, :2, 3:], torch.zeros(3, 2, 3)) and torch.equal(w[:, 2:, :3], torch.zeros(3, 2, 3))
    assert torch.equal(w[1, 2:, 3:], block.weight[1, 1])


def test_one_relation_is_mean_aggregation_gcn_with_self_loop():
    torch.manual_seed(1)
    layer = RGCNConv(5, 3, num_relations=1)
    edge_index, _ = _graph(10, 50, 1)
    x = torch.randn(10, 5)
    target = edge_index[1]
    summed = torch.zeros(10, 5).index_add_(0, target, x[edge_index[0]])
    degree = torch.bincount(target, minlength=10).clamp(min=1).unsqueeze(1)
    expected = (summed / degree) @ layer.weight[0] + x @ layer.root + layer.bias
    assert torch.allclose(layer(x, edge_index, torch.zeros_like(target)), expected, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 12),
    e=st.integers(0, 40),
    r=st.integers(1, 4),
    mode=st.sampled_from(["none", "basis", "block"]),
    seed=st.integers(0, 2**16),
)
def test_permutation_equivariance(n, e, r, mode, seed):
    kwargs = {"none": {}, "basis": {"num_bases": 2}, "block": {"num_blocks": 2}}[mode]
    torch.manual_seed(seed)
    layer = RGCNConv(4, 2, num_relations=r, **kwargs)
    edge_index, edge_type = _graph(n, e, r, seed)
    x = torch.randn(n, 4)
    perm = torch.randperm(n)
    inverse = torch.argsort(perm)  # new id of old node i is inverse[i]
    out = layer(x, edge_index, edge_type)
    permuted = layer(x[perm], inverse[edge_index], edge_type)
    assert torch.allclose(permuted, out[perm], atol=1e-5)
    # The edge order does not matter either.
    order = torch.randperm(e)
    assert torch.allclose(layer(x, edge_index[:, order], edge_type[order]), out, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 10),
    e=st.integers(0, 30),
    r=st.integers(1, 3),
    bases=st.booleans(),
    seed=st.integers(0, 999),
)
def test_featureless_equals_one_hot_identity(n, e, r, bases, seed):
    torch.manual_seed(seed)
    layer = RGCNConv(n, 3, num_relations=r, num_bases=2 if bases else None)
    edge_index, edge_type = _graph(n, e, r, seed)
    dense = layer(torch.eye(n), edge_index, edge_type)
    assert torch.allclose(layer(None, edge_index, edge_type), dense, atol=1e-6)
    ids = torch.randint(0, n, (n,))
    assert torch.allclose(
        layer(ids, edge_index, edge_type), layer(torch.eye(n)[ids], edge_index, edge_type), atol=1e-6
    )


def test_duplicate_edges_count_in_the_mean_and_isolated_nodes_get_root_only():
    layer = RGCNConv(1, 1, num_relations=1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.root.fill_(0.0)
    x = torch.tensor([[1.0], [4.0], [7.0]])
    out = layer(x, torch.tensor([[0, 0, 1], [2, 2, 2]]), torch.zeros(3, dtype=torch.long))
    assert torch.allclose(out[2], torch.tensor([2.0]))  # (1 + 1 + 4) / 3
    assert torch.equal(out[:2], torch.zeros(2, 1))


def test_self_loop_mask_and_no_self_loop():
    torch.manual_seed(0)
    layer = RGCNConv(3, 2, num_relations=2)
    x = torch.randn(4, 3)
    edge_index, edge_type = _graph(4, 10, 2)
    mask = torch.tensor([True, False, True, False])
    masked = layer(x, edge_index, edge_type, self_loop_mask=mask)
    full = layer(x, edge_index, edge_type)
    assert torch.allclose(masked[mask], full[mask])
    assert torch.allclose(masked[~mask], full[~mask] - x[~mask] @ layer.root)
    no_loop = RGCNConv(3, 2, num_relations=2, self_loop=False)
    assert no_loop.root is None
    assert torch.allclose(no_loop(torch.zeros(4, 3), edge_index, edge_type), no_loop.bias.expand(4, 2))


def test_inverse_relations_and_edge_dropout():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    both, types = add_inverse_relations(edge_index, torch.tensor([0, 1]), 2)
    assert both.tolist() == [[0, 1, 1, 2], [1, 2, 0, 1]] and types.tolist() == [0, 1, 2, 3]
    g = torch.Generator().manual_seed(0)
    big = torch.randint(0, 50, (2, 20000))
    kept, kept_type = drop_edges(big, torch.zeros(20000, dtype=torch.long), 0.4, g)
    assert kept.size(1) == kept_type.numel() and abs(kept.size(1) / 20000 - 0.6) < 0.02
    assert drop_edges(big, torch.zeros(20000, dtype=torch.long), 0.0)[0] is big


def test_entity_classifier_shapes_and_penalty():
    torch.manual_seed(0)
    edge_index, edge_type = _graph(15, 50, 4)
    model = RGCNEntityClassifier(15, 4, 3, hidden_features=5, num_bases=2)
    assert model(edge_index, edge_type).shape == (15, 3)
    expected = sum(p.pow(2).sum() for p in (model.layer1.weight, model.layer1.comp, model.layer1.root))
    assert torch.allclose(model.first_layer_penalty(), expected)


def test_self_loop_as_relation_equals_separate_root_without_decomposition():
    torch.manual_seed(0)
    edge_index, edge_type = _graph(15, 50, 4)
    separate = RGCNEntityClassifier(15, 4, 3, hidden_features=5, self_loop="separate")
    as_relation = RGCNEntityClassifier(15, 4, 3, hidden_features=5, self_loop="relation")
    assert as_relation.layer1.weight.shape == (5, 15, 5) and as_relation.layer1.root is None
    with torch.no_grad():
        for ours, theirs in ((as_relation.layer1, separate.layer1), (as_relation.layer2, separate.layer2)):
            ours.weight[:4] = theirs.weight
            ours.weight[4] = theirs.root  # the self-loop relation's W (c_{i,r} = 1) is W_0
    assert torch.allclose(as_relation(edge_index, edge_type), separate(edge_index, edge_type), atol=1e-5)
    # With bases the self-loop shares them: W_0 = sum_b a_{R,b} V_b.
    shared = RGCNEntityClassifier(15, 4, 3, hidden_features=5, num_bases=2, self_loop="relation")
    assert shared.layer1.comp.shape == (5, 2) and shared.layer1.root is None
    none = RGCNEntityClassifier(15, 4, 3, hidden_features=5, self_loop="none")
    assert none.layer1.root is None and none.layer1.num_relations == 4


def test_link_predictor_scores_are_distmult_of_the_encoding():
    torch.manual_seed(0)
    edge_index, edge_type = _graph(10, 30, 6)
    model = RGCNLinkPredictor(10, 3, dim=8, num_layers=2, num_blocks=4)
    e = model.encode(edge_index, edge_type)
    h, r, t = torch.tensor([0, 4]), torch.tensor([2, 1]), torch.tensor([3, 9])
    expected = (e[h] * model.relation[r] * e[t]).sum(-1)  # Eq. (6)
    assert torch.allclose(model.score(h, r, t), expected)
    assert torch.allclose(model.score_tails(h, r)[torch.arange(2), t], expected, atol=1e-5)
    assert torch.allclose(model.score_heads(r, t)[torch.arange(2), h], expected, atol=1e-5)


# ---------------------------------------------------------------- reference parity (torch_geometric)


def _pyg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import FastRGCNConv
        from torch_geometric.nn import RGCNConv as ReferenceRGCNConv
    return ReferenceRGCNConv, FastRGCNConv


CASES = [
    ("none", {}, True),
    ("basis", {"num_bases": 3}, True),
    ("block", {"num_blocks": 2}, True),
    ("none-featureless", {}, False),
    ("basis-featureless", {"num_bases": 3}, False),
]


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs,dense", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("fast", [False, True], ids=["RGCNConv", "FastRGCNConv"])
def test_parity_with_torch_geometric(name, kwargs, dense, fast):
    reference_class = _pyg()[1 if fast else 0]
    torch.manual_seed(0)
    num_nodes, num_relations = 25, 5
    in_features = 8 if dense else num_nodes
    ours = RGCNConv(in_features, 6, num_relations, **kwargs)
    reference = reference_class(
        in_features, 6, num_relations, aggr="mean", root_weight=True, bias=True, **kwargs
    )
    # Same parameter names and shapes: the state dict carries over as it is.
    reference.load_state_dict(ours.state_dict())
    with torch.no_grad():
        ours.bias.normal_()
        reference.bias.copy_(ours.bias)
    edge_index, edge_type = _graph(num_nodes, 150, num_relations, seed=3)
    x = torch.randn(num_nodes, in_features, requires_grad=True) if dense else None
    x_ref = x.detach().clone().requires_grad_(True) if dense else None
    out, out_ref = ours(x, edge_index, edge_type), reference(x_ref, edge_index, edge_type)
    assert torch.allclose(out, out_ref, atol=1e-5)
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    (out_ref * upstream).sum().backward()
    for (name_ours, p), (name_ref, q) in zip(ours.named_parameters(), reference.named_parameters()):
        assert name_ours == name_ref
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name_ours
    if dense:
        assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)


# ---------------------------------------------------------------- bad input


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_features must be >= 1, got 0"):
        RGCNConv(0, 3, 2)
    with pytest.raises(TypeError, match="num_relations must be an int, got float"):
        RGCNConv(3, 3, 2.0)
    with pytest.raises(ValueError, match="num_bases and num_blocks are exclusive"):
        RGCNConv(4, 4, 2, num_bases=2, num_blocks=2)
    with pytest.raises(ValueError, match="num_blocks must divide in_features and out_features"):
        RGCNConv(5, 4, 2, num_blocks=2)
    with pytest.raises(ValueError, match="dropout must be a probability in \\[0, 1\\), got 1.5"):
        RGCNEntityClassifier(5, 2, 2, dropout=1.5)
    with pytest.raises(ValueError, match="self_loop must be one of .* got 'both'"):
        RGCNEntityClassifier(5, 2, 2, self_loop="both")
    with pytest.raises(ValueError, match=r"edge_type values must be relation ids in \[0, num_relations=2\)"):
        RGCNEntityClassifier(5, 2, 2, self_loop="relation")(torch.tensor([[0], [1]]), torch.tensor([2]))


def test_bad_forward_inputs():
    layer = RGCNConv(3, 2, num_relations=2)
    x = torch.randn(4, 3)
    edge_index, edge_type = torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 1])
    with pytest.raises(
        ValueError, match=r"edge_index values must be node indices in \[0, N=4\), got values in \[0, 7\]"
    ):
        layer(x, torch.tensor([[0, 7], [1, 2]]), edge_type)
    with pytest.raises(
        ValueError,
        match=r"edge_type values must be relation ids in \[0, num_relations=2\), got values in \[-1, 0\]",
    ):
        layer(x, edge_index, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"edge_type values must be relation ids .* got values in \[0, 2\]"):
        layer(x, edge_index, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"edge_type must have shape \[E\] with E=2"):
        layer(x, edge_index, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\]"):
        layer(x, torch.tensor([0, 1]), edge_type)
    with pytest.raises(
        TypeError, match="edge_index must be an int64 \\(or int32\\) tensor, got torch.float32"
    ):
        layer(x, edge_index.float(), edge_type)
    with pytest.raises(TypeError, match="edge_type must be a torch.Tensor"):
        layer(x, edge_index, [0, 1])
    with pytest.raises(ValueError, match="x must have in_features=3 columns, got 5"):
        layer(torch.randn(4, 5), edge_index, edge_type)
    with pytest.raises(TypeError, match="x features must be a floating-point tensor, got torch.int64"):
        layer(torch.ones(4, 3, dtype=torch.long), edge_index, edge_type)
    with pytest.raises(ValueError, match=r"x node ids must lie in \[0, in_features=3\), got \[0, 3\]"):
        layer(torch.tensor([0, 3, 1, 1]), edge_index, edge_type)
    with pytest.raises(ValueError, match="num_nodes must equal in_features=3 for featureless input"):
        layer(None, edge_index, edge_type, num_nodes=5)
    with pytest.raises(ValueError, match=r"self_loop_mask must be a bool tensor of shape \[4\]"):
        layer(x, edge_index, edge_type, self_loop_mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="block-diagonal decomposition .* cannot split one-hot node ids"):
        RGCNConv(4, 2, 2, num_blocks=2)(None, edge_index, edge_type)


def test_bad_link_predictor_and_helper_inputs():
    model = RGCNLinkPredictor(5, 2, dim=4, num_layers=1)
    with pytest.raises(RuntimeError, match="call encode"):
        model.score_tails(torch.tensor([0]), torch.tensor([0]))
    model.encode(torch.tensor([[0], [1]]), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"relations must lie in \[0, 2\), got \[2, 2\]"):
        model.score(torch.tensor([0]), torch.tensor([2]), torch.tensor([1]))
    with pytest.raises(TypeError, match="heads must be a 1-D int64 tensor of ids"):
        model.score(torch.tensor([0.0]), torch.tensor([0]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"edge_type values must lie in \[0, num_relations=2\)"):
        add_inverse_relations(torch.tensor([[0], [1]]), torch.tensor([2]), 2)
    with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\), got 1.0"):
        drop_edges(torch.tensor([[0], [1]]), torch.tensor([0]), 1.0)
