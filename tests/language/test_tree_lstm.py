"""Tree-LSTMs: hand-computed values, the batched level-wise evaluation against the recursive one
(outputs and gradients), invariants of the two cells, the sentiment loss, bad input.

No maintained library implements Tree-LSTMs for PyTorch, so the reference here is the literal,
node-by-node recursion of Eq. 2-8 and 9-14 (``forward_recursive``)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.language.tree_lstm import (
    ChildSumTreeLSTM,
    EncodedTree,
    LSTMSentiment,
    NaryTreeLSTM,
    TreeLSTMSentiment,
    batch_trees,
    encode_tree,
    sentiment_loss,
)

pytestmark = pytest.mark.paper("tree-lstm")

# Two small trees: ((a b) c) and a single word.
THREE = [(), (), (0, 1), (), (2, 3)]
SINGLE = [()]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _constant_cell(cell, biases):
    """Zero weights, the four gate biases (i, o, u, f) set: every unit sees only its children's c."""
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.zero_()
        cell.input_weights.bias.copy_(torch.tensor(biases).repeat_interleave(cell.hidden_size))
    return cell


@pytest.mark.parametrize("cell", [ChildSumTreeLSTM(3, 2), NaryTreeLSTM(3, 2, arity=2)])
def test_golden_values_with_zero_weights(cell):
    bi, bo, bu, bf = 0.3, -0.2, 0.5, 1.0
    _constant_cell(cell, [bi, bo, bu, bf])
    batch = batch_trees([encode_tree(THREE, [0, 1, -1, 2, -1])])
    h, c = cell(torch.randn(5, 3), batch)  # inputs do not matter: W = 0
    leaf_c = sigmoid(bi) * math.tanh(bu)  # Eq. 7/13 without children
    inner_c = leaf_c + 2 * sigmoid(bf) * leaf_c  # two leaf children, each with forget gate sigma(bf)
    root_c = leaf_c + sigmoid(bf) * (inner_c + leaf_c)
    expected_c = torch.tensor([leaf_c, leaf_c, inner_c, leaf_c, root_c])
    torch.testing.assert_close(c[:, 0], expected_c)
    torch.testing.assert_close(h[:, 1], sigmoid(bo) * torch.tanh(expected_c))  # Eq. 8/14


def _random_tree(draw_sizes: list[int], arity: int) -> list[tuple[int, ...]]:
    """A random tree in post-order: repeatedly merge up to ``arity`` pending subtrees."""
    children: list[tuple[int, ...]] = []
    pending: list[int] = []
    for size in draw_sizes:
        if size == 0 or len(pending) < 2:
            children.append(())
            pending.append(len(children) - 1)
        else:
            k = min(len(pending), 2 + size % (arity - 1)) if arity > 2 else 2
            kids, pending = pending[-k:], pending[:-k]
            children.append(tuple(kids))
            pending.append(len(children) - 1)
    while len(pending) > 1:
        k = min(len(pending), arity)
        kids, pending = pending[-k:], pending[:-k]
        children.append(tuple(kids))
        pending.append(len(children) - 1)
    return children


def _check_batched_against_recursive(cell, structures, seed):
    gen = torch.Generator().manual_seed(seed)
    cell = cell.double()
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.uniform_(-0.8, 0.8, generator=gen)
    trees = [encode_tree(kids, [0] * len(kids)) for kids in structures]
    batch = batch_trees(trees)
    x = torch.randn(batch.num_nodes, cell.input_size, dtype=torch.float64, generator=gen)
    weights_h = torch.randn(batch.num_nodes, cell.hidden_size, dtype=torch.float64, generator=gen)
    weights_c = torch.randn(batch.num_nodes, cell.hidden_size, dtype=torch.float64, generator=gen)

    x_batched = x.clone().requires_grad_()
    h, c = cell(x_batched, batch)
    ((h * weights_h).sum() + (c * weights_c).sum()).backward()
    # A forest of single leaves never reaches U: its gradient is then None (zero) on both paths.
    batched_grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in cell.parameters()]
    cell.zero_grad(set_to_none=True)

    x_recursive = x.clone().requires_grad_()
    outputs, offset = [], 0
    for kids in structures:
        outputs.append(cell.forward_recursive(x_recursive[offset : offset + len(kids)], kids))
        offset += len(kids)
    h_ref = torch.cat([o[0] for o in outputs])
    c_ref = torch.cat([o[1] for o in outputs])
    ((h_ref * weights_h).sum() + (c_ref * weights_c).sum()).backward()

    torch.testing.assert_close(h, h_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(c, c_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(x_batched.grad, x_recursive.grad, atol=1e-12, rtol=0)
    for (name, parameter), grad in zip(cell.named_parameters(), batched_grads):
        expected = torch.zeros_like(parameter) if parameter.grad is None else parameter.grad
        torch.testing.assert_close(grad, expected, atol=1e-12, rtol=0, msg=name)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=14), min_size=1, max_size=4),
    arity=st.integers(2, 4),
    seed=st.integers(0, 1000),
)
def test_batched_equals_recursive_on_random_forests(sizes, arity, seed):
    structures = [_random_tree(s, arity) for s in sizes]
    _check_batched_against_recursive(NaryTreeLSTM(3, 4, arity=arity), structures, seed)
    _check_batched_against_recursive(ChildSumTreeLSTM(3, 4), structures, seed)


def test_batched_equals_recursive_on_sst_trees():
    from aicanon.datasets.sst import load_sst_trees

    trees = load_sst_trees("dev")[:12]  # sentences of up to 50 words, depth up to 20
    _check_batched_against_recursive(NaryTreeLSTM(5, 6), [t.children for t in trees], 0)


def test_child_sum_ignores_child_order_and_n_ary_does_not():
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    forward = batch_trees([encode_tree([(), (), (0, 1)], [0, 0, -1])])
    swapped = batch_trees([encode_tree([(), (), (1, 0)], [0, 0, -1])])
    child_sum, n_ary = ChildSumTreeLSTM(4, 5), NaryTreeLSTM(4, 5)
    torch.testing.assert_close(child_sum(x, forward)[0][2], child_sum(x, swapped)[0][2])
    assert not torch.allclose(n_ary(x, forward)[0][2], n_ary(x, swapped)[0][2])


def test_a_tree_is_computed_the_same_alone_and_in_a_batch():
    torch.manual_seed(1)
    cell = NaryTreeLSTM(4, 5)
    three, single = encode_tree(THREE, [0] * 5), encode_tree(SINGLE, [0])
    x = torch.randn(6, 4)
    h_batch, _ = cell(x, batch_trees([single, three]))
    h_alone, _ = cell(x[1:], batch_trees([three]))
    torch.testing.assert_close(h_batch[1:], h_alone)


def test_batch_layout():
    batch = batch_trees(
        [encode_tree(THREE, [4, 5, -1, 6, -1], [1, 2, 3, 4, 0]), encode_tree(SINGLE, [7], [2])]
    )
    assert batch.num_nodes == 6 and batch.num_trees == 2
    assert batch.roots.tolist() == [4, 5]
    assert [level.tolist() for level in batch.levels] == [[0, 1, 3, 5], [2], [4]]
    assert batch.children.tolist() == [[-1, -1], [-1, -1], [0, 1], [-1, -1], [2, 3], [-1, -1]]
    assert batch.word_ids.tolist() == [4, 5, -1, 6, -1, 7]
    assert batch.labels.tolist() == [1, 2, 3, 4, 0, 2]


def test_sentiment_loss_reductions_and_root_supervision():
    torch.manual_seed(2)
    batch = batch_trees(
        [encode_tree(THREE, [1, 2, -1, 3, -1], [1, 2, 3, 4, 0]), encode_tree(SINGLE, [4], [2])]
    )
    log_probs = torch.log_softmax(torch.randn(6, 5), dim=1)
    picked = -log_probs[torch.arange(6), batch.labels]
    torch.testing.assert_close(sentiment_loss(log_probs, batch), picked.mean())  # Section 5.1: 1/m
    torch.testing.assert_close(sentiment_loss(log_probs, batch, reduction="tree"), picked.sum() / 2)
    torch.testing.assert_close(sentiment_loss(log_probs, batch, "root"), picked[[4, 5]].mean())
    unlabelled = batch_trees([encode_tree(THREE, [1, 2, -1, 3, -1], [1, -1, -1, 4, 0])])
    torch.testing.assert_close(
        sentiment_loss(log_probs[:5], unlabelled), picked[[0, 3, 4]].mean()
    )  # -1 labels are skipped


def test_classifier_outputs_and_zero_input_at_inner_nodes():
    torch.manual_seed(3)
    model = TreeLSTMSentiment(vocab_size=10, num_classes=5, embedding_dim=6, hidden_size=4).eval()
    batch = batch_trees([encode_tree(THREE, [1, 2, -1, 3, -1], [1, 2, 3, 4, 0])])
    log_probs = model(batch)
    assert log_probs.shape == (5, 5)
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(5))
    inputs = model.node_inputs(batch)
    assert torch.equal(inputs[[2, 4]], torch.zeros(2, 6))
    torch.testing.assert_close(inputs[0], model.embedding.weight[1])
    loss = sentiment_loss(log_probs, batch)
    loss.backward()
    assert model.embedding.weight.grad[[1, 2, 3]].abs().sum() > 0
    assert model.embedding.weight.grad[[0, 4, 5]].abs().sum() == 0


def test_lstm_baseline_ignores_padding():
    torch.manual_seed(4)
    model = LSTMSentiment(vocab_size=9, num_classes=3, embedding_dim=5, hidden_size=6).eval()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    alone = model(short, torch.tensor([3]))
    together = model(padded, torch.tensor([3, 5]))
    torch.testing.assert_close(alone[0], together[0])
    assert together.shape == (2, 3)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "children, words, labels, message",
    [
        ([], [], None, "at least one node"),
        ([(), ()], [0], None, "word_ids must have one entry per node"),
        ([(), (0,)], [0, 0], [1], "labels must have one entry per node"),
        ([(1,), ()], [0, 0], None, r"children\[0\] must list nodes numbered below 0"),
        ([(), (0,), (0, 1)], [0, 0, 0], None, "exactly one parent; node 0 has 2"),
        ([(), ()], [0, 0], None, "exactly one parent; node 0 has 0"),
        ([()], [-2], None, "word_ids must be >= 0"),
        ([()], [0], [-3], "labels must be >= 0"),
    ],
)
def test_encode_tree_rejects_bad_trees(children, words, labels, message):
    with pytest.raises(ValueError, match=message):
        encode_tree(children, words, labels)


def test_batch_trees_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one EncodedTree"):
        batch_trees([])
    with pytest.raises(TypeError, match=r"trees\[0\] must be an EncodedTree"):
        batch_trees([[(), ()]])
    with pytest.raises(ValueError, match="all carry labels or none"):
        batch_trees([encode_tree(SINGLE, [0], [1]), encode_tree(SINGLE, [0])])
    assert isinstance(encode_tree(SINGLE, [0]), EncodedTree)


def test_cells_reject_bad_input():
    batch = batch_trees([encode_tree(THREE, [0] * 5)])
    cell = NaryTreeLSTM(3, 4)
    with pytest.raises(ValueError, match=r"inputs must be a tensor of shape \[5, 3\], got \(4, 3\)"):
        cell(torch.zeros(4, 3), batch)
    with pytest.raises(TypeError, match="inputs must be a floating-point tensor"):
        cell(torch.zeros(5, 3, dtype=torch.long), batch)
    with pytest.raises(TypeError, match="batch must be a TreeBatch"):
        cell(torch.zeros(5, 3), THREE)
    wide = batch_trees([encode_tree([(), (), (), (0, 1, 2)], [0] * 4)])
    with pytest.raises(ValueError, match="at most arity=2 children per node, got 3"):
        cell(torch.zeros(4, 3), wide)
    with pytest.raises(ValueError, match="at most arity=2 children, got 3"):
        cell.forward_recursive(torch.zeros(4, 3), [(), (), (), (0, 1, 2)])
    with pytest.raises(ValueError, match="hidden_size must be >= 1, got 0"):
        ChildSumTreeLSTM(3, 0)
    with pytest.raises(TypeError, match="arity must be an int"):
        NaryTreeLSTM(3, 4, arity=2.0)


def test_classifiers_and_loss_reject_bad_input():
    with pytest.raises(ValueError, match="cell must be one of"):
        TreeLSTMSentiment(10, cell="dependency")
    with pytest.raises(ValueError, match="classifier_dropout must be a probability in \\[0, 1\\)"):
        TreeLSTMSentiment(10, classifier_dropout=1.0)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        LSTMSentiment(10, num_classes=1)
    model = TreeLSTMSentiment(5, embedding_dim=4, hidden_size=3)
    with pytest.raises(ValueError, match="word_ids must be < vocab_size=5, got 7"):
        model(batch_trees([encode_tree(SINGLE, [7])]))
    lstm = LSTMSentiment(5, embedding_dim=4, hidden_size=3)
    with pytest.raises(ValueError, match="lengths must be in \\[1, 2\\]"):
        lstm(torch.tensor([[1, 2]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="tokens must be in \\[0, 5\\)"):
        lstm(torch.tensor([[1, 9]]), torch.tensor([2]))
    with pytest.raises(TypeError, match="tokens must be a torch.int64 tensor"):
        lstm(torch.tensor([[1.0, 2.0]]), torch.tensor([2]))
    unlabelled = batch_trees([encode_tree(SINGLE, [1])])
    with pytest.raises(ValueError, match="batch must carry labels"):
        sentiment_loss(torch.zeros(1, 5), unlabelled)
    labelled = batch_trees([encode_tree(SINGLE, [1], [4])])
    with pytest.raises(ValueError, match="supervision must be one of"):
        sentiment_loss(torch.zeros(1, 5), labelled, supervision="leaves")
    with pytest.raises(ValueError, match="reduction must be one of"):
        sentiment_loss(torch.zeros(1, 5), labelled, reduction="sum")
    with pytest.raises(ValueError, match="labels must be < num_classes=3, got 4"):
        sentiment_loss(torch.zeros(1, 3), labelled)
    assert np.isfinite(sentiment_loss(torch.log_softmax(torch.zeros(1, 5), 1), labelled).item())
