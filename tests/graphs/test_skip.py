"""ResidualConnection and JumpingKnowledge: invariants, parity with torch_geometric.nn.JumpingKnowledge,
bad input."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.gcn import GCNConv
from aicanon.graphs.inputs import SparseFeatures
from aicanon.graphs.skip import JumpingKnowledge, ResidualConnection

pytestmark = pytest.mark.paper("gnn-review")


def _graph(seed=0, nodes=12, features=5, edges=30):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(nodes, features, generator=gen), torch.randint(0, nodes, (2, edges), generator=gen)


def test_residual_is_identity_plus_layer():
    # Appendix B, Eq. (14): H' = sigma(A^ H W) + H.
    x, edge_index = _graph()
    conv = GCNConv(5, 5)
    block = ResidualConnection(conv, 5, 5)
    torch.testing.assert_close(block(x, edge_index), torch.relu(conv(x, edge_index)) + x)
    with torch.no_grad():
        conv.weight.zero_()
    torch.testing.assert_close(block(x, edge_index), x)  # a dead layer leaves the input through
    assert block.projection is None


def test_residual_projection_when_widths_differ_and_sparse_input():
    x, edge_index = _graph(1)
    block = ResidualConnection(GCNConv(5, 3), 5, 3, activation=None)
    expected = block.layer(x, edge_index) + x @ block.projection.t()
    torch.testing.assert_close(block(x, edge_index), expected)
    torch.testing.assert_close(block(SparseFeatures(x), edge_index), expected, atol=1e-6, rtol=0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), layers=st.integers(1, 5))
def test_jumping_knowledge_invariants(seed, layers):
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(7, 4, generator=gen) for _ in range(layers)]
    assert JumpingKnowledge("cat")(xs).shape == (7, 4 * layers)
    torch.testing.assert_close(JumpingKnowledge("max")(xs), torch.stack(xs).max(0).values)
    lstm = JumpingKnowledge("lstm", 4, layers)
    out, alpha = lstm(xs, return_attention=True)
    torch.testing.assert_close(alpha.sum(1), torch.ones(7))  # a convex combination of the layers
    stacked = torch.stack(xs, 1)
    assert torch.all(out <= stacked.max(1).values + 1e-6) and torch.all(out >= stacked.min(1).values - 1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("mode", ["cat", "max", "lstm"])
def test_parity_with_pyg_jumping_knowledge(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.nn import JumpingKnowledge as PyGJK
    torch.manual_seed(0)
    ours = JumpingKnowledge(mode, 6, 3)
    reference = PyGJK(mode, 6, 3)
    if mode == "lstm":
        reference.load_state_dict(ours.state_dict())  # same parameter names and shapes
    xs = [torch.randn(10, 6, requires_grad=True) for _ in range(3)]
    out_ours = ours(xs)
    grads_ours = torch.autograd.grad(out_ours.square().sum(), xs)
    out_ref = reference(xs)
    grads_ref = torch.autograd.grad(out_ref.square().sum(), xs)
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=0)
    for a, b in zip(grads_ours, grads_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_bad_input_names_the_argument():
    _x, edge_index = _graph()
    with pytest.raises(TypeError, match="layer must be a torch.nn.Module"):
        ResidualConnection(lambda h: h, 5, 5)
    with pytest.raises(ValueError, match="out_features must be >= 1, got 0"):
        ResidualConnection(GCNConv(5, 5), 5, 0)
    with pytest.raises(ValueError, match=r"h must have shape \[N, in_features=5\]"):
        ResidualConnection(GCNConv(5, 5), 5, 5)(torch.randn(12, 4), edge_index)
    with pytest.raises(ValueError, match="mode must be one of"):
        JumpingKnowledge("sum")
    with pytest.raises(TypeError, match=r"channels must be an int \(mode 'lstm' needs it\), got NoneType"):
        JumpingKnowledge("lstm", None, 3)
    with pytest.raises(ValueError, match=r"num_layers must be >= 1 \(mode 'lstm' needs it\), got 0"):
        JumpingKnowledge("lstm", 4, 0)
    with pytest.raises(TypeError, match="xs must be a non-empty list"):
        JumpingKnowledge("max")([])
    with pytest.raises(ValueError, match="xs must all have the same shape"):
        JumpingKnowledge("max")([torch.randn(3, 2), torch.randn(3, 4)])
    with pytest.raises(ValueError, match="xs must hold num_layers=3 tensors of 6 channels"):
        JumpingKnowledge("lstm", 6, 3)([torch.randn(3, 6)] * 2)
