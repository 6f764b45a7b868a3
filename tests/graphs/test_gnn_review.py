"""The review's taxonomy as an API: every category is served, the factory builds every
propagation x skip combination, and rejects bad input."""

import pytest
import torch

from aicanon.graphs.gat import GATConv
from aicanon.graphs.gcn import GCN, GCNConv
from aicanon.graphs.ggnn import GatedGraphConv
from aicanon.graphs.gnn_review import (
    NOT_IMPLEMENTED,
    PROPAGATIONS,
    SKIPS,
    TAXONOMY,
    build_node_classifier,
    categories,
    methods,
)
from aicanon.graphs.inputs import SparseFeatures
from aicanon.graphs.pooling import SAGPool
from aicanon.graphs.sage import SAGEConv, sample_neighbors
from aicanon.graphs.skip import JumpingKnowledge, ResidualConnection

pytestmark = pytest.mark.paper("gnn-review")


def _graph(seed=0, nodes=30, features=12, edges=90):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(nodes, features, generator=gen), torch.randint(0, nodes, (2, edges), generator=gen)


def test_every_category_of_the_review_is_served():
    # Figure 2's modules: propagation (convolution, recurrent, skip), sampling, pooling.
    tops = {path[0] for path in categories()}
    assert tops == {"propagation", "sampling", "pooling"}
    for path, entries in TAXONOMY.items():
        assert entries, f"category {path} has no implementation"
        for method in entries:
            assert callable(method.implementation) and method.paper and method.section
    required = [
        ("propagation", "convolution", "spectral"),
        ("propagation", "convolution", "spatial"),
        ("propagation", "convolution", "attention"),
        ("propagation", "recurrent", "gate"),
        ("propagation", "skip"),
        ("sampling", "node"),
        ("pooling", "direct"),
        ("pooling", "hierarchical"),
    ]
    assert all(path in TAXONOMY for path in required)
    assert not set(NOT_IMPLEMENTED) & set(TAXONOMY)


def test_methods_lookup_by_prefix():
    names = {m.name: m.implementation for m in methods("propagation")}
    assert names["gcn"] is GCNConv and names["sage"] is SAGEConv and names["gat"] is GATConv
    assert names["ggnn"] is GatedGraphConv
    assert names["residual"] is ResidualConnection and names["jk"] is JumpingKnowledge
    assert [m.implementation for m in methods("sampling", "node")] == [sample_neighbors]
    assert [m.implementation for m in methods("pooling", "hierarchical")] == [SAGPool]
    assert {m.name for m in methods("pooling", "direct")} >= {"sum", "mean", "max", "attention"}


# Recurrent propagation takes no skip connection (rejected in the bad-input test).
COMBINATIONS = [(p, s) for p in PROPAGATIONS for s in SKIPS if p != "ggnn" or s is None]


@pytest.mark.parametrize("propagation,skip", COMBINATIONS)
def test_factory_builds_and_trains_every_combination(propagation, skip):
    x, edge_index = _graph()
    torch.manual_seed(0)
    model = build_node_classifier(propagation, 12, 3, skip=skip, num_layers=3, hidden_features=16)
    out = model(x, edge_index)
    assert out.shape == (30, 3)
    out.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    torch.testing.assert_close(model(SparseFeatures(x), edge_index), model(x, edge_index), atol=1e-5, rtol=0)


@pytest.mark.parametrize("jk_mode", ["cat", "max", "lstm"])
def test_jk_modes_change_the_classifier_width(jk_mode):
    model = build_node_classifier("sage", 12, 3, skip="jk", num_layers=3, jk_mode=jk_mode)
    assert model.classifier.in_features == (48 if jk_mode == "cat" else 16)


def test_plain_gcn_classifier_is_the_papers_model_with_biases():
    x, edge_index = _graph(1)
    ours = build_node_classifier("gcn", 12, 3).eval()
    reference = GCN(12, 3, bias=True).eval()
    reference.conv1.load_state_dict(ours.layers[0].state_dict())
    reference.conv2.load_state_dict(ours.layers[1].state_dict())
    torch.testing.assert_close(ours(x, edge_index), reference(x, edge_index))


def test_graph_matters_to_every_propagation_module():
    x, edge_index = _graph(2)
    for propagation in PROPAGATIONS:
        torch.manual_seed(0)
        model = build_node_classifier(propagation, 12, 3).eval()
        with_graph = model(x, edge_index)
        without = model(x, edge_index[:, :0])
        assert not torch.allclose(with_graph, without), propagation


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"propagation must be one of \('gcn', 'sage', 'gat', 'ggnn'\)"):
        build_node_classifier("chebnet", 12, 3)
    with pytest.raises(ValueError, match="skip must be one of"):
        build_node_classifier("gcn", 12, 3, skip="dense")
    with pytest.raises(ValueError, match="skip must be None with propagation='ggnn'"):
        build_node_classifier("ggnn", 12, 3, skip="jk")
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        build_node_classifier("gcn", 12, 3, num_layers=0)
    with pytest.raises(ValueError, match="hidden_features must be a multiple of heads=8"):
        build_node_classifier("gat", 12, 3, hidden_features=12)
    with pytest.raises(ValueError, match="dropout must be in"):
        build_node_classifier("sage", 12, 3, dropout=-0.1)
    with pytest.raises(ValueError, match="jk_mode must be"):
        build_node_classifier("gcn", 12, 3, skip="jk", jk_mode="sum")
    model = build_node_classifier("gcn", 12, 3)
    with pytest.raises(ValueError, match="in_features=12 columns"):
        model(torch.randn(5, 11), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="category"):
        methods("readout")
