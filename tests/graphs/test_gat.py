"""GATConv and GAT: golden values, invariants, parity with torch_geometric.nn.GATConv, bad input."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.gat import GAT, GATConv
from aicanon.graphs.inputs import SparseFeatures, remove_self_loops
from aicanon.graphs.scatter import scatter_sum

pytestmark = pytest.mark.paper("gat")


def _graph(seed=0, nodes=12, features=5, edges=30):
    """A graph with duplicated edges, existing self loops and two isolated nodes (10 and 11)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, features, generator=gen)
    edge_index = torch.randint(0, nodes - 2, (2, edges), generator=gen)
    edge_index = torch.cat([edge_index, edge_index[:, :4], torch.tensor([[3, 5], [3, 5]])], dim=1)
    return x, edge_index


def _reference_copy(ours: GATConv):
    from torch_geometric.nn import GATConv as PyGGATConv

    reference = PyGGATConv(
        ours.in_features,
        ours.out_features,
        heads=ours.heads,
        concat=ours.concat,
        negative_slope=ours.negative_slope,
        dropout=ours.dropout,
        add_self_loops=ours.add_self_loops,
    )
    with torch.no_grad():
        reference.lin.weight.copy_(ours.weight)
        reference.att_src.copy_(ours.att_source.view_as(reference.att_src))
        reference.att_dst.copy_(ours.att_target.view_as(reference.att_dst))
        ours.bias.normal_()  # a non-zero bias, so that it is compared too
        reference.bias.copy_(ours.bias)
    return reference


@pytest.mark.parity
@pytest.mark.parametrize("heads", [1, 8])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
def test_parity_with_torch_geometric(heads, concat, self_loops):
    pytest.importorskip("torch_geometric")
    torch.manual_seed(heads + 2 * concat + 4 * self_loops)
    x, edge_index = _graph()
    ours = GATConv(5, 4, heads=heads, concat=concat, add_self_loops=self_loops)
    reference = _reference_copy(ours)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, (edges, alpha) = ours(x_ours, edge_index, return_attention=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_ref, (edges_ref, alpha_ref) = reference(x_ref, edge_index, return_attention_weights=True)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    assert torch.equal(edges, edges_ref)
    torch.testing.assert_close(alpha, alpha_ref, atol=1e-5, rtol=0)
    # Gradients of a loss that weighs every output and every attention coefficient.
    gen = torch.Generator().manual_seed(5)
    weights_out, weights_alpha = (
        torch.randn(out.shape, generator=gen),
        torch.randn(alpha.shape, generator=gen),
    )
    ((out * weights_out).sum() + (alpha * weights_alpha).sum()).backward()
    ((out_ref * weights_out).sum() + (alpha_ref * weights_alpha).sum()).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    pairs = {
        "weight": (ours.weight.grad, reference.lin.weight.grad),
        "att_source": (ours.att_source.grad, reference.att_src.grad.view_as(ours.att_source)),
        "att_target": (ours.att_target.grad, reference.att_dst.grad.view_as(ours.att_target)),
        "bias": (ours.bias.grad, reference.bias.grad),
    }
    for name, (mine, theirs) in pairs.items():
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parity
def test_parity_with_sparse_features_input():
    pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    x = (torch.rand(30, 40) < 0.1).float()
    edge_index = torch.randint(0, 30, (2, 90))
    ours = GATConv(40, 8, heads=8)
    reference = _reference_copy(ours)
    out = ours(SparseFeatures(x), edge_index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_ref = reference(x, edge_index)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    out.square().sum().backward()
    out_ref.square().sum().backward()
    torch.testing.assert_close(ours.weight.grad, reference.lin.weight.grad, atol=1e-5, rtol=0)


def test_golden_two_node_example():
    # Node 0 <- node 1 and self loops; one head, F = F' = 1, W = 2, a_target = 1, a_source = 0.5.
    layer = GATConv(1, 1, heads=1)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.att_target.fill_(1.0)
        layer.att_source.fill_(0.5)
        layer.bias.fill_(0.25)
    x = torch.tensor([[1.0], [-3.0]])
    out, (edges, alpha) = layer(x, torch.tensor([[1], [0]]), return_attention=True)
    # Wh = [2, -6]. Into node 0: e_00 = LReLU(2 + 1) = 3, e_01 = LReLU(2 - 3) = -0.2.
    a00 = math.exp(3) / (math.exp(3) + math.exp(-0.2))
    expected0 = a00 * 2 + (1 - a00) * -6 + 0.25
    # Node 1 has only its self loop: alpha = 1, output W h_1 + bias.
    assert edges.tolist() == [[1, 0, 1], [0, 0, 1]]
    torch.testing.assert_close(alpha.flatten(), torch.tensor([1 - a00, a00, 1.0]))
    torch.testing.assert_close(out.flatten(), torch.tensor([expected0, -6 + 0.25]))


def test_attention_sums_to_one_over_each_neighbourhood():
    x, edge_index = _graph(1)
    layer = GATConv(5, 3, heads=4).eval()
    _, (edges, alpha) = layer(x, edge_index, return_attention=True)
    sums = scatter_sum(alpha, edges[1], x.size(0))
    torch.testing.assert_close(sums, torch.ones_like(sums))  # every node has its self loop
    assert (alpha > 0).all()
    # Self loops: the old ones removed, exactly one per node added.
    assert int((edges[0] == edges[1]).sum()) == x.size(0)


def test_node_without_in_edges_gets_only_the_bias():
    x, edge_index = _graph(2)
    layer = GATConv(5, 3, heads=2, add_self_loops=False)
    with torch.no_grad():
        layer.bias.normal_()
    out = layer(x, remove_self_loops(edge_index))
    targets = set(remove_self_loops(edge_index)[1].tolist())
    lonely = [i for i in range(x.size(0)) if i not in targets]
    assert lonely, "the fixture must have nodes without in-edges"
    for node in lonely:
        torch.testing.assert_close(out[node], layer.bias.detach())


def test_mean_of_heads_is_the_mean_of_the_concatenated_heads():
    x, edge_index = _graph(3)
    concat = GATConv(5, 3, heads=4, concat=True, bias=False)
    mean = GATConv(5, 3, heads=4, concat=False, bias=False)
    mean.load_state_dict(concat.state_dict())
    torch.testing.assert_close(mean(x, edge_index), concat(x, edge_index).view(-1, 4, 3).mean(1))


def test_matches_dense_masked_attention():
    # The paper's code: dense N x N logits, masked to A + I, row softmax. Ours never forms it.
    x, edge_index = _graph(4)
    layer = GATConv(5, 2, heads=3)
    with torch.no_grad():
        layer.bias.normal_()
    n = x.size(0)
    adjacency = torch.zeros(n, n, dtype=torch.bool)
    adjacency[edge_index[1], edge_index[0]] = True
    adjacency |= torch.eye(n, dtype=torch.bool)
    # Deduplicated edges: duplicates count once in the dense mask.
    unique = torch.unique(remove_self_loops(edge_index), dim=1)
    h = (x @ layer.weight.t()).view(n, 3, 2)
    logits = (h * layer.att_target).sum(-1).t().unsqueeze(2) + (h * layer.att_source).sum(-1).t().unsqueeze(1)
    logits = F.leaky_relu(logits, 0.2).masked_fill(~adjacency, float("-inf"))
    dense = torch.einsum("kij,jkc->ikc", torch.softmax(logits, dim=2), h).reshape(n, 6) + layer.bias
    torch.testing.assert_close(layer(x, unique), dense, atol=1e-5, rtol=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 15), st.integers(0, 40))
def test_permutation_equivariance(seed, nodes, edges):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, 4, generator=gen)
    edge_index = torch.randint(0, nodes, (2, edges), generator=gen)
    torch.manual_seed(seed)
    layer = GATConv(4, 3, heads=2)
    perm = torch.randperm(nodes, generator=gen)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(nodes)
    out = layer(x, edge_index)
    out_permuted = layer(x[perm], inverse[edge_index])
    torch.testing.assert_close(out_permuted, out[perm], atol=1e-5, rtol=1e-5)


def test_glorot_initialisation_per_head():
    torch.manual_seed(0)
    layer = GATConv(100, 20, heads=4)
    bound = math.sqrt(6 / (100 + 20))
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    att_bound = math.sqrt(6 / (20 + 1))
    assert layer.att_source.abs().max() <= att_bound and layer.att_target.abs().max() <= att_bound
    assert torch.all(layer.bias == 0)


def test_attention_dropout_only_in_training():
    x, edge_index = _graph(5)
    layer = GATConv(5, 4, heads=8, dropout=0.6)
    layer.eval()
    _, (_, alpha_eval) = layer(x, edge_index, return_attention=True)
    layer.train()
    torch.manual_seed(0)
    _, (_, alpha_train) = layer(x, edge_index, return_attention=True)
    dropped = (alpha_train == 0).float().mean().item()
    assert 0.45 < dropped < 0.75
    kept = alpha_train != 0
    torch.testing.assert_close(alpha_train[kept], alpha_eval[kept] / 0.4)


def test_training_dropout_on_both_layers_inputs_and_attention():
    # Section 3.3: "dropout with p = 0.6 is applied to both layers' inputs, as well as to the
    # normalized attention coefficients". A hand-built forward draws the masks in the order
    # aicanon.graphs.gat does (layer-1 input, layer-1 attention inside GATConv, layer-2 input,
    # layer-2 attention) with the same generator state; it must give the model's output exactly.
    x, edge_index = _graph(6)
    model = GAT(5, 3, hidden_features=4, heads=2, dropout=0.5, attention_dropout=0.3).train()

    def input_dropout(h, p=0.5):
        # inverted dropout, the mask drawn as uniform >= p (aicanon.graphs.inputs.dropout)
        return h * (torch.rand_like(h) >= p) * (1.0 / (1.0 - p))

    def hand_built(drop_second_input=True):
        h = input_dropout(x)  # layer 1's input
        h = F.elu(model.layers[0](h, edge_index))  # attention dropout inside (tested above)
        if drop_second_input:
            h = input_dropout(h)  # layer 2's input
        return model.output(h, edge_index)

    for seed in range(3):
        torch.manual_seed(seed)
        expected = hand_built()
        torch.manual_seed(seed)
        torch.testing.assert_close(model(x, edge_index), expected, atol=0, rtol=0)
    # The check can fail: without the second layer's input dropout the output differs.
    torch.manual_seed(0)
    without = hand_built(drop_second_input=False)
    torch.manual_seed(0)
    assert not torch.allclose(model(x, edge_index), without)
    # Distribution check, independent of the order of the draws: with attention dropout off, the
    # output layer's input dropout alone makes the training outputs vary around the eval output;
    # feeding the output layer a fixed input must not reproduce the model's spread.
    model = GAT(5, 3, hidden_features=4, heads=2, dropout=0.5, attention_dropout=0.0).train()
    torch.manual_seed(0)
    outputs = torch.stack([model(x, edge_index) for _ in range(200)])
    torch.manual_seed(0)
    first_only = torch.stack(
        [model.output(F.elu(model.layers[0](input_dropout(x), edge_index)), edge_index) for _ in range(200)]
    )
    assert outputs.var(dim=0).mean() > 1.2 * first_only.var(dim=0).mean()


def test_transductive_model_matches_the_paper():
    model = GAT.transductive(1433, 7)
    first, output = model.layers[0], model.output
    assert (first.heads, first.out_features, first.concat, first.dropout) == (8, 8, True, 0.6)
    assert (output.heads, output.out_features, output.concat) == (1, 7, False)
    assert model.dropout == 0.6 and len(model.layers) == 1
    assert sum(p.numel() for p in model.parameters()) == 1433 * 64 + 2 * 64 + 64 + 64 * 7 + 2 * 7 + 7
    assert GAT.transductive(500, 3, output_heads=8).output.heads == 8  # PubMed


def test_inductive_model_matches_the_paper():
    model = GAT.inductive()
    assert [(layer.heads, layer.out_features) for layer in model.layers] == [(4, 256), (4, 256)]
    assert (model.output.heads, model.output.out_features, model.output.concat) == (6, 121, False)
    assert model.has_skip == [False, True] and model.dropout == 0.0
    assert all(layer.dropout == 0.0 for layer in [*model.layers, model.output])
    x, edge_index = torch.randn(20, 50), torch.randint(0, 20, (2, 60))
    out = model(x, edge_index)
    assert out.shape == (20, 121)
    # The skip connection really enters the intermediate layer's output.
    with torch.no_grad():
        model.skips[1].weight.zero_()
    assert not torch.allclose(model(x, edge_index), out)


def test_model_eval_is_deterministic_and_sparse_equals_dense():
    torch.manual_seed(0)
    x = (torch.rand(30, 40) < 0.1).float()
    edge_index = torch.randint(0, 30, (2, 80))
    model = GAT.transductive(40, 3).eval()
    out = model(x, edge_index)
    torch.testing.assert_close(model(x, edge_index), out)
    torch.testing.assert_close(model(SparseFeatures(x), edge_index), out, atol=1e-6, rtol=0)
    model.train()
    assert not torch.allclose(model(x, edge_index), out)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="heads must be >= 1, got 0"):
        GATConv(4, 4, heads=0)
    with pytest.raises(TypeError, match="in_features must be an int, got float"):
        GATConv(4.0, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        GATConv(4, 4, dropout=1.0)
    with pytest.raises(ValueError, match="negative_slope must be >= 0, got -0.1"):
        GATConv(4, 4, negative_slope=-0.1)
    with pytest.raises(
        ValueError, match="hidden_features and heads must have one entry per hidden layer, got 2 and 1"
    ):
        GAT(4, 3, hidden_features=(8, 8), heads=(8,))
    with pytest.raises(ValueError, match="hidden_features must hold positive ints"):
        GAT(4, 3, hidden_features=0)


@pytest.mark.parametrize("module", [GATConv(5, 4, heads=2), GAT.transductive(5, 3)])
def test_bad_forward_input(module):
    x, edge_index = torch.randn(6, 5), torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"x must have in_features=5 columns, got 4"):
        module(torch.randn(6, 4), edge_index)
    with pytest.raises(ValueError, match=r"x must be 2-D node features \[N, F\], got shape \(6,\)"):
        module(torch.randn(6), edge_index)
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got torch.int64"):
        module(torch.ones(6, 5, dtype=torch.long), edge_index)
    with pytest.raises(TypeError, match="x must be dense; wrap a sparse"):
        module(x.to_sparse(), edge_index)
    with pytest.raises(
        ValueError, match=r"edge_index must have shape \[2, E\] \(sources, targets\), got \(3, 2\)"
    ):
        module(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(
        TypeError, match="edge_index must be an int64 \\(or int32\\) tensor, got torch.float32"
    ):
        module(x, edge_index.float())
    with pytest.raises(
        ValueError, match=r"edge_index values must be node indices in \[0, N=6\), got values in \[0, 6\]"
    ):
        module(x, torch.tensor([[0, 6], [1, 2]]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 2\]"):
        module(x, torch.tensor([[0, -1], [1, 2]]))
    with pytest.raises(TypeError, match="edge_index must be a torch.Tensor"):
        module(x, [[0, 1], [1, 2]])
