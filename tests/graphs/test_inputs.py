"""Graph inputs: SparseFeatures against dense, the sparse linear's gradients, feature dropout,
self-loop helpers, check_graph's messages, and that GCN/GraphSAGE/the skip layers need no GAT."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from aicanon.graphs.inputs import (
    SparseFeatures,
    add_self_loops,
    check_graph,
    dropout,
    linear,
    remove_self_loops,
)

# The helpers were written for GAT and its tests ran under that paper; they stay there.
pytestmark = pytest.mark.paper("gat")


def test_dropout_helper_on_dense_and_sparse():
    torch.manual_seed(0)
    x = torch.ones(200, 50)
    out = dropout(x, 0.6, True)
    assert abs((out == 0).float().mean().item() - 0.6) < 0.03
    assert set(out.unique().tolist()) == {0.0, 2.5}
    assert dropout(x, 0.6, False) is x
    sparse = SparseFeatures((torch.rand(40, 30) < 0.2).float())
    dropped = dropout(sparse, 0.5, True)
    assert dropped.values.shape == sparse.values.shape
    assert set(dropped.to_dense().unique().tolist()) <= {0.0, 2.0}


def test_sparse_features_match_dense():
    torch.manual_seed(0)
    dense = (torch.rand(25, 60) < 0.1).float() * torch.rand(25, 60)
    sparse = SparseFeatures(dense)
    assert torch.equal(sparse.to_dense(), dense)
    weight = torch.randn(7, 60, dtype=torch.float64, requires_grad=True)
    sparse64 = SparseFeatures(dense.double())
    values = sparse64.values.clone().requires_grad_()
    fn = lambda v, w: SparseFeatures._with_values(sparse64, v).matmul_transposed(w)
    assert torch.autograd.gradcheck(fn, (values, weight))
    torch.testing.assert_close(fn(values, weight), dense.double() @ weight.t())


def test_self_loop_helpers():
    edge_index = torch.tensor([[0, 1, 2, 2], [0, 2, 2, 1]])
    assert remove_self_loops(edge_index).tolist() == [[1, 2], [2, 1]]
    assert add_self_loops(remove_self_loops(edge_index), 3).tolist() == [[1, 2, 0, 1, 2], [2, 1, 0, 1, 2]]


def test_sparse_features_bad_input():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        SparseFeatures([[1.0]])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"x must be a 2-D dense, COO or CSR tensor, got layout torch.strided, shape \(3,\)"
    ):
        SparseFeatures(torch.ones(3))
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got torch.int64"):
        SparseFeatures(torch.ones(3, 3, dtype=torch.long))


def test_linear_on_dense_and_sparse():
    gen = torch.Generator().manual_seed(1)
    dense = (torch.rand(20, 30, generator=gen) < 0.15).float() * torch.randn(20, 30, generator=gen)
    weight = torch.randn(6, 30, generator=gen)
    # Dense input is exactly F.linear without bias (the same kernel, so bit-for-bit).
    assert torch.equal(linear(dense, weight), F.linear(dense, weight))
    torch.testing.assert_close(linear(SparseFeatures(dense), weight), dense @ weight.t(), atol=1e-6, rtol=0)


def test_check_graph_accepts_dense_and_sparse_features():
    x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1, 3], [1, 2, 0]])
    check_graph(x, edge_index, 3)
    check_graph(SparseFeatures(x), edge_index.int(), 3)
    check_graph(x, torch.empty(2, 0, dtype=torch.long))  # no edges is a graph too


def test_check_graph_bad_input_names_the_argument():
    x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="h must have in_features=5 columns, got 3"):
        check_graph(x, edge_index, 5, name="h")
    with pytest.raises(ValueError, match="x must have in_features=5 columns, got 3"):
        check_graph(SparseFeatures(x), edge_index, 5)
    with pytest.raises(TypeError, match="h must be a torch.Tensor of node features"):
        check_graph([[1.0]], edge_index, name="h")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x must be dense; wrap a sparse"):
        check_graph(x.to_sparse(), edge_index)
    with pytest.raises(
        ValueError, match=r"edge_index values must be node indices in \[0, N=4\), got values in \[0, 4\]"
    ):
        check_graph(x, torch.tensor([[0, 4], [1, 2]]))
    with pytest.raises(TypeError, match=r"edge_index must be an int64 \(or int32\) tensor, got torch.int16"):
        check_graph(x, edge_index.to(torch.int16))


def test_layers_other_than_gat_do_not_import_gat():
    # The point of this module: GCN, GraphSAGE, GGNN and the skip layers depend on graph inputs,
    # not on GAT. A fresh interpreter, since this one has imported gat already.
    code = (
        "import sys, aicanon.graphs.gcn, aicanon.graphs.sage, aicanon.graphs.skip, aicanon.graphs.ggnn; "
        "print('aicanon.graphs.gat' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
