"""Tree-LSTMs: the Child-Sum and the N-ary Tree-LSTM, and the sentiment classifier over every node
(Tai, Socher & Manning, "Improved Semantic Representations From Tree-Structured Long Short-Term
Memory Networks", ACL 2015, arXiv 1503.00075).

A Tree-LSTM unit ``j`` reads an input ``x_j`` and the hidden states ``h_k`` and memory cells ``c_k``
of its children ``C(j)``, with one forget gate per child, so that it can keep or drop each child's
memory.

**Child-Sum Tree-LSTM** (Section 3.1; for trees whose nodes have any number of unordered children,
e.g. dependency trees)::

    h~_j  = sum_{k in C(j)} h_k                                          (2)
    i_j   = sigma(W^(i) x_j + U^(i) h~_j + b^(i))                         (3)
    f_jk  = sigma(W^(f) x_j + U^(f) h_k + b^(f))     for each child k     (4)
    o_j   = sigma(W^(o) x_j + U^(o) h~_j + b^(o))                         (5)
    u_j   = tanh(W^(u) x_j + U^(u) h~_j + b^(u))                          (6)
    c_j   = i_j * u_j + sum_{k in C(j)} f_jk * c_k                        (7)
    h_j   = o_j * tanh(c_j)                                               (8)

**N-ary Tree-LSTM** (Section 3.2; at most ``N`` ordered children, child ``l`` with its own weights;
``N = 2`` for binarised constituency trees: the paper's "Constituency Tree-LSTM")::

    i_j   = sigma(W^(i) x_j + sum_l U^(i)_l h_jl + b^(i))                  (9)
    f_jk  = sigma(W^(f) x_j + sum_l U^(f)_kl h_jl + b^(f))   k = 1..N      (10)
    o_j   = sigma(W^(o) x_j + sum_l U^(o)_l h_jl + b^(o))                  (11)
    u_j   = tanh(W^(u) x_j + sum_l U^(u)_l h_jl + b^(u))                   (12)
    c_j   = i_j * u_j + sum_l f_jl * c_jl                                  (13)
    h_j   = o_j * tanh(c_j)                                                (14)

A missing child (a leaf, or a node with fewer than ``N`` children) contributes ``h = c = 0``.

**Sentiment classification** (Section 5.1): a softmax over every node's hidden state,
``p(y | {x}_j) = softmax(W^(s) h_j + b^(s))``, ``y_j = argmax``; the cost is the negative
log-likelihood of the true labels at the labelled nodes, averaged over them (plus an L2 penalty,
which the training loop applies as weight decay). The paper regularises the classifier with dropout
(rate 0.5) on ``h_j`` before the softmax.

Evaluation is **batched level by level**: every node of a batch of trees gets its height (0 at the
leaves, ``1 + max`` over the children), and all nodes of one height, across all trees, are computed
at once, so a batch costs ``depth`` steps of a few matrix products instead of one small step per
node. ``W x_j`` is computed for every node in one product before the levels. The per-node,
recursive evaluation (``forward_recursive``) follows the equations literally; the tests check that
both give the same outputs and gradients, and ``benchmarks/bench_tree_lstm.py`` times them.

Departures from the paper and its code:

* In a constituency tree only the leaves carry a word; the inner nodes' ``x_j`` is zero, so their
  gates see only the children and the biases (Eq. 9-14 as written). The authors' Lua code
  (stanfordnlp/treelstm, ``BinaryTreeLSTM``) instead uses a separate leaf transform
  (``c = W x + b``, ``h = o * tanh(c)``) and no ``W`` term at inner nodes, which gives the 316,800
  parameters of their Table 1; ours has ``4 H (D + 1) + N H (3 + N) H`` for the cell.
* The ``U`` products carry no bias of their own (one bias ``b`` per gate, as in the equations; the
  Lua code's ``nn.Linear`` layers each add one, which is the same function with redundant biases).
* Embedding dropout (``embedding_dropout``) is available but off by default: the paper uses
  dropout only before the softmax.

:class:`LSTMSentiment` is the paper's sequential baseline (the "LSTM" rows of Table 2): a one-layer
LSTM over the words whose last hidden state feeds the same softmax, trained on the sentence label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_probability, check_tensor

__all__ = [
    "ChildSumTreeLSTM",
    "EncodedTree",
    "LSTMSentiment",
    "NaryTreeLSTM",
    "TreeBatch",
    "TreeLSTMSentiment",
    "batch_trees",
    "encode_tree",
    "sentiment_loss",
]


# ---------------------------------------------------------------------------------------------
# Trees and batches of trees


@dataclass(frozen=True)
class EncodedTree:
    """One tree as arrays, ready to batch: nodes numbered in post-order (children first, root last).

    ``children`` int64 ``[nodes, max_children]`` (-1 pads), ``word_ids`` int64 ``[nodes]`` (-1: no
    word at that node), ``heights`` int64 ``[nodes]`` (0 at leaves), ``labels`` int64 ``[nodes]``
    (-1: unlabelled) or None.
    """

    children: np.ndarray
    word_ids: np.ndarray
    heights: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.word_ids)


def encode_tree(
    children: Sequence[Sequence[int]],
    word_ids: Sequence[int],
    labels: Sequence[int] | None = None,
) -> EncodedTree:
    """Check one tree and encode it for :func:`batch_trees`.

    ``children[i]``: the children of node ``i`` (left to right), each an index below ``i``
    (post-order numbering; the root is the last node, every other node has exactly one parent).
    ``word_ids[i]``: the input id of node ``i``, or -1 for none. ``labels[i]``: its class, or -1 for
    unlabelled.
    """
    nodes = len(children)
    if nodes == 0:
        raise ValueError("children must describe at least one node, got an empty tree")
    if len(word_ids) != nodes:
        raise ValueError(f"word_ids must have one entry per node ({nodes}), got {len(word_ids)}")
    if labels is not None and len(labels) != nodes:
        raise ValueError(f"labels must have one entry per node ({nodes}), got {len(labels)}")
    width = max(1, max(len(kids) for kids in children))
    table = np.full((nodes, width), -1, dtype=np.int64)
    heights = np.zeros(nodes, dtype=np.int64)
    parents = np.zeros(nodes, dtype=np.int64)
    for node, kids in enumerate(children):
        for slot, child in enumerate(kids):
            if not isinstance(child, (int, np.integer)) or not 0 <= child < node:
                raise ValueError(
                    f"children[{node}] must list nodes numbered below {node} (post-order: children "
                    f"before their parent), got {child!r}"
                )
            parents[child] += 1
            table[node, slot] = child
        if len(kids):
            heights[node] = 1 + heights[list(kids)].max()
    if (parents[:-1] != 1).any() or parents[-1] != 0:
        bad = int(np.flatnonzero(np.append(parents[:-1] != 1, parents[-1] != 0))[0])
        raise ValueError(
            f"every node but the root (the last) must have exactly one parent; node {bad} has {parents[bad]}"
        )
    words = np.asarray(word_ids, dtype=np.int64)
    if (words < -1).any():
        raise ValueError(f"word_ids must be >= 0 (or -1 for no word), got {int(words.min())}")
    labelled = None
    if labels is not None:
        labelled = np.asarray(labels, dtype=np.int64)
        if (labelled < -1).any():
            raise ValueError(f"labels must be >= 0 (or -1 for unlabelled), got {int(labelled.min())}")
    return EncodedTree(table, words, heights, labelled)


@dataclass
class TreeBatch:
    """Several trees as one forest, grouped by height for level-wise evaluation.

    ``children`` int64 ``[N, max_children]``: global node indices, -1 pads; ``word_ids`` int64
    ``[N]`` (-1: no word); ``levels``: the node indices of each height, bottom-up (``levels[0]``: the
    leaves); ``roots`` int64 ``[trees]``; ``labels`` int64 ``[N]`` (-1: unlabelled) or None.
    """

    children: Tensor
    word_ids: Tensor
    levels: list[Tensor]
    roots: Tensor
    labels: Tensor | None

    @property
    def num_nodes(self) -> int:
        return self.word_ids.numel()

    @property
    def num_trees(self) -> int:
        return self.roots.numel()

    def to(self, device: torch.device | str) -> TreeBatch:
        return TreeBatch(
            self.children.to(device),
            self.word_ids.to(device),
            [level.to(device) for level in self.levels],
            self.roots.to(device),
            None if self.labels is None else self.labels.to(device),
        )


def batch_trees(trees: Sequence[EncodedTree]) -> TreeBatch:
    """Join encoded trees into one :class:`TreeBatch` (node indices offset tree by tree)."""
    if not trees:
        raise ValueError("trees must hold at least one EncodedTree, got none")
    for i, tree in enumerate(trees):
        if not isinstance(tree, EncodedTree):
            raise TypeError(f"trees[{i}] must be an EncodedTree (see encode_tree), got {type(tree).__name__}")
    has_labels = [tree.labels is not None for tree in trees]
    if any(has_labels) and not all(has_labels):
        raise ValueError("trees must all carry labels or none of them")
    sizes = np.array([len(tree) for tree in trees])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    width = max(tree.children.shape[1] for tree in trees)
    children = np.full((int(sizes.sum()), width), -1, dtype=np.int64)
    for tree, offset in zip(trees, offsets):
        block = tree.children
        children[offset : offset + len(tree), : block.shape[1]] = np.where(block >= 0, block + offset, -1)
    heights = np.concatenate([tree.heights for tree in trees])
    order = np.argsort(heights, kind="stable")
    counts = np.bincount(heights)
    levels = [torch.from_numpy(part) for part in np.split(order, np.cumsum(counts)[:-1]) if len(part)]
    labels = torch.from_numpy(np.concatenate([tree.labels for tree in trees])) if all(has_labels) else None
    return TreeBatch(
        children=torch.from_numpy(children),
        word_ids=torch.from_numpy(np.concatenate([tree.word_ids for tree in trees])),
        levels=levels,
        roots=torch.from_numpy(offsets + sizes - 1),
        labels=labels,
    )


def _check_inputs(inputs: Tensor, batch: TreeBatch, input_size: int) -> None:
    if not isinstance(batch, TreeBatch):
        raise TypeError(f"batch must be a TreeBatch (see batch_trees), got {type(batch).__name__}")
    check_tensor("inputs", inputs, shape=(batch.num_nodes, input_size), floating=True)


# ---------------------------------------------------------------------------------------------
# The two Tree-LSTM units


class _TreeLSTMBase(nn.Module):
    """What both units share: ``W x + b`` for the four gates, the level loop and the recursion."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size)
        self.hidden_size = check_int("hidden_size", hidden_size)
        # W^(i), W^(o), W^(u), W^(f) stacked, with the biases b^(i), b^(o), b^(u), b^(f).
        self.input_weights = nn.Linear(input_size, 4 * hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / self.hidden_size**0.5
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def _combine(self, projected: Tensor, child_h: Tensor, child_c: Tensor) -> tuple[Tensor, Tensor]:
        """``projected``: ``W x + b`` ``[n, 4H]``; children ``[n, K, H]`` -> ``(h, c)`` ``[n, H]``."""
        raise NotImplementedError

    def _leaves(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """Units without children (both cells): ``c = i * u``, ``h = o * tanh(c)``."""
        i, o, u = projected[:, : 3 * self.hidden_size].split(self.hidden_size, dim=1)
        c = torch.sigmoid(i) * torch.tanh(u)
        return torch.sigmoid(o) * torch.tanh(c), c

    def forward(self, inputs: Tensor, batch: TreeBatch) -> tuple[Tensor, Tensor]:
        """Hidden states and memory cells ``[N, H]`` of every node of ``batch``, level by level.

        ``inputs``: ``x_j`` float ``[N, input_size]`` (zeros at nodes without an input).
        """
        _check_inputs(inputs, batch, self.input_size)
        projected = self.input_weights(inputs)  # W x_j + b for every node at once
        num_nodes, hidden = batch.num_nodes, self.hidden_size
        # One extra zero row: a missing child (-1) reads it.
        h = inputs.new_zeros(num_nodes + 1, hidden)
        c = inputs.new_zeros(num_nodes + 1, hidden)
        children = torch.where(batch.children >= 0, batch.children, num_nodes)
        for height, level in enumerate(batch.levels):
            if height == 0:  # leaves: no children, so the U terms and the forget gates drop out
                node_h, node_c = self._leaves(projected[level])
            else:
                kids = children[level]
                node_h, node_c = self._combine(projected[level], h[kids], c[kids])
            # index_copy_ writes each level in place: reading h and c with indexing saves no copy
            # of them for the backward pass, so this is autograd-safe and each level costs O(level).
            h.index_copy_(0, level, node_h)
            c.index_copy_(0, level, node_c)
        return h[:num_nodes], c[:num_nodes]

    def node(self, x: Tensor, child_h: Tensor, child_c: Tensor) -> tuple[Tensor, Tensor]:
        """One unit: ``x`` ``[D]`` and its children's states ``[K, H]`` (``K`` may be 0) -> ``(h, c)``."""
        raise NotImplementedError

    def forward_recursive(self, inputs: Tensor, children: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """The reference evaluation of one tree: the root computed recursively from its children,
        one node at a time (Eq. 2-8 or 9-14 literally). ``inputs`` ``[nodes, D]``; ``children`` as
        for :func:`encode_tree`. Returns every node's ``(h, c)`` ``[nodes, H]``."""
        check_tensor("inputs", inputs, shape=(len(children), self.input_size), floating=True)
        states: dict[int, tuple[Tensor, Tensor]] = {}

        def visit(node: int) -> tuple[Tensor, Tensor]:
            kids = [visit(child) for child in children[node]]
            empty = inputs.new_zeros(0, self.hidden_size)
            child_h = torch.stack([k[0] for k in kids]) if kids else empty
            child_c = torch.stack([k[1] for k in kids]) if kids else empty
            states[node] = self.node(inputs[node], child_h, child_c)
            return states[node]

        visit(len(children) - 1)
        if len(states) != len(children):
            raise ValueError("children must connect every node to the root (the last node)")
        h = torch.stack([states[i][0] for i in range(len(children))])
        c = torch.stack([states[i][1] for i in range(len(children))])
        return h, c


class ChildSumTreeLSTM(_TreeLSTMBase):
    """The Child-Sum Tree-LSTM (Eq. 2-8): gates from the sum of the children's hidden states, one
    forget gate per child from that child's own state. Any number of children, order ignored."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.child_weights = nn.Linear(hidden_size, 3 * hidden_size, bias=False)  # U^(i), U^(o), U^(u)
        self.forget_weights = nn.Linear(hidden_size, hidden_size, bias=False)  # U^(f)
        self.reset_parameters()

    def _combine(self, projected: Tensor, child_h: Tensor, child_c: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.hidden_size
        iou = projected[:, : 3 * hidden] + self.child_weights(child_h.sum(1))  # Eq. 2, 3, 5, 6
        i, o, u = iou.split(hidden, dim=1)
        # Eq. 4: one forget gate per child; a padded child (zero row) adds f * 0 = 0 to Eq. 7.
        f = torch.sigmoid(projected[:, None, 3 * hidden :] + self.forget_weights(child_h))
        c = torch.sigmoid(i) * torch.tanh(u) + (f * child_c).sum(1)  # Eq. 7
        return torch.sigmoid(o) * torch.tanh(c), c  # Eq. 8

    def node(self, x: Tensor, child_h: Tensor, child_c: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.hidden_size
        W, b = self.input_weights.weight, self.input_weights.bias
        Wi, Wo, Wu, Wf = W.split(hidden)
        bi, bo, bu, bf = b.split(hidden)
        Ui, Uo, Uu = self.child_weights.weight.split(hidden)
        Uf = self.forget_weights.weight
        h_tilde = child_h.sum(0)  # Eq. 2
        i = torch.sigmoid(Wi @ x + Ui @ h_tilde + bi)  # Eq. 3
        o = torch.sigmoid(Wo @ x + Uo @ h_tilde + bo)  # Eq. 5
        u = torch.tanh(Wu @ x + Uu @ h_tilde + bu)  # Eq. 6
        c = i * u
        for k in range(child_h.shape[0]):
            f_k = torch.sigmoid(Wf @ x + Uf @ child_h[k] + bf)  # Eq. 4
            c = c + f_k * child_c[k]  # Eq. 7
        return o * torch.tanh(c), c  # Eq. 8


class NaryTreeLSTM(_TreeLSTMBase):
    """The N-ary Tree-LSTM (Eq. 9-14): child ``l`` (left to right) has its own ``U_l`` in every gate,
    and forget gate ``k`` sees all children through ``U^(f)_kl``. At most ``arity`` children."""

    def __init__(self, input_size: int, hidden_size: int, arity: int = 2) -> None:
        super().__init__(input_size, hidden_size)
        self.arity = check_int("arity", arity)
        # [h_j1; ...; h_jN] -> U^(i), U^(o), U^(u) (each sum_l U_l h_jl), then U^(f)_k for k = 1..N.
        self.child_weights = nn.Linear(arity * hidden_size, (3 + arity) * hidden_size, bias=False)
        self.reset_parameters()

    def forward(self, inputs: Tensor, batch: TreeBatch) -> tuple[Tensor, Tensor]:
        if isinstance(batch, TreeBatch) and batch.children.shape[1] > self.arity:
            widest = int((batch.children >= 0).sum(1).max())
            if widest > self.arity:
                raise ValueError(
                    f"batch must have at most arity={self.arity} children per node, got {widest}"
                )
        return super().forward(inputs, batch)

    def _combine(self, projected: Tensor, child_h: Tensor, child_c: Tensor) -> tuple[Tensor, Tensor]:
        n, hidden, arity = projected.shape[0], self.hidden_size, self.arity
        width = child_h.shape[1]
        if width < arity:  # fewer slots than N in this batch: the missing children are zeros
            child_h = F.pad(child_h, (0, 0, 0, arity - width))
            child_c = F.pad(child_c, (0, 0, 0, arity - width))
        elif width > arity:  # padding columns only (forward checked the real widths)
            child_h, child_c = child_h[:, :arity], child_c[:, :arity]
        gates = self.child_weights(child_h.reshape(n, arity * hidden))
        i, o, u = (projected[:, : 3 * hidden] + gates[:, : 3 * hidden]).split(hidden, dim=1)  # Eq. 9, 11, 12
        # Eq. 10: W^(f) x_j + b^(f) is shared by the N forget gates.
        f = torch.sigmoid(projected[:, None, 3 * hidden :] + gates[:, 3 * hidden :].view(n, arity, hidden))
        c = torch.sigmoid(i) * torch.tanh(u) + (f * child_c).sum(1)  # Eq. 13
        return torch.sigmoid(o) * torch.tanh(c), c  # Eq. 14

    def node(self, x: Tensor, child_h: Tensor, child_c: Tensor) -> tuple[Tensor, Tensor]:
        hidden, arity = self.hidden_size, self.arity
        if child_h.shape[0] > arity:
            raise ValueError(f"a node may have at most arity={arity} children, got {child_h.shape[0]}")
        W, b = self.input_weights.weight, self.input_weights.bias
        Wi, Wo, Wu, Wf = W.split(hidden)
        bi, bo, bu, bf = b.split(hidden)
        # U[gate][l]: the block of child l in gate ``gate`` (rows: gates; columns: children).
        blocks = [row.split(hidden, dim=1) for row in self.child_weights.weight.split(hidden)]
        Ui, Uo, Uu, Uf = blocks[0], blocks[1], blocks[2], blocks[3:]
        present = range(child_h.shape[0])  # absent children have h = c = 0 and drop out of the sums

        def children_sum(U: Sequence[Tensor]) -> Tensor:
            return sum((U[child] @ child_h[child] for child in present), torch.zeros_like(bi))

        i = torch.sigmoid(Wi @ x + children_sum(Ui) + bi)  # Eq. 9
        o = torch.sigmoid(Wo @ x + children_sum(Uo) + bo)  # Eq. 11
        u = torch.tanh(Wu @ x + children_sum(Uu) + bu)  # Eq. 12
        c = i * u
        for k in present:
            f_k = torch.sigmoid(Wf @ x + children_sum(Uf[k]) + bf)  # Eq. 10
            c = c + f_k * child_c[k]  # Eq. 13
        return o * torch.tanh(c), c  # Eq. 14


# ---------------------------------------------------------------------------------------------
# Sentiment classification (Section 5.1) and the sequential baseline


class TreeLSTMSentiment(nn.Module):
    """Word embeddings -> Tree-LSTM -> dropout -> softmax at every node (Section 5.1).

    ``cell``: ``"nary"`` (the Constituency Tree-LSTM, ``arity`` children) or ``"childsum"``. Nodes
    with ``word_id == -1`` (inner nodes of a constituency tree) get ``x_j = 0``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 5,
        embedding_dim: int = 300,
        hidden_size: int = 150,
        cell: str = "nary",
        arity: int = 2,
        embedding_dropout: float = 0.0,
        classifier_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size)
        check_int("num_classes", num_classes, 2)
        check_int("embedding_dim", embedding_dim)
        check_int("hidden_size", hidden_size)
        check_choice("cell", cell, ("nary", "childsum"))
        check_probability("embedding_dropout", embedding_dropout, allow_one=False)
        check_probability("classifier_dropout", classifier_dropout, allow_one=False)
        self.vocab_size, self.num_classes, self.cell = vocab_size, num_classes, cell
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)  # the authors' init of words without a vector
        self.tree_lstm: _TreeLSTMBase = (
            NaryTreeLSTM(embedding_dim, hidden_size, arity)
            if cell == "nary"
            else ChildSumTreeLSTM(embedding_dim, hidden_size)
        )
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.classifier_dropout = nn.Dropout(classifier_dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def node_inputs(self, batch: TreeBatch) -> Tensor:
        """``x_j`` ``[N, D]``: the embedding of node j's word, zero where it has none."""
        ids = batch.word_ids
        if ids.numel() and int(ids.max()) >= self.vocab_size:
            raise ValueError(f"batch.word_ids must be < vocab_size={self.vocab_size}, got {int(ids.max())}")
        has_word = (ids >= 0).unsqueeze(1)
        vectors = self.embedding(ids.clamp(min=0)) * has_word
        return self.embedding_dropout(vectors)

    def forward(self, batch: TreeBatch) -> Tensor:
        """Log-probabilities ``[N, num_classes]`` of every node's sentiment."""
        if not isinstance(batch, TreeBatch):
            raise TypeError(f"batch must be a TreeBatch (see batch_trees), got {type(batch).__name__}")
        h, _ = self.tree_lstm(self.node_inputs(batch), batch)
        return F.log_softmax(self.classifier(self.classifier_dropout(h)), dim=-1)


def sentiment_loss(
    log_probs: Tensor, batch: TreeBatch, supervision: str = "nodes", reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of the labelled nodes (``supervision="nodes"``: Section 5.1's cost) or
    of the roots only (``"root"``: the sentence label alone, an ablation).

    ``reduction="mean"``: averaged over the labelled nodes (the paper's ``1/m``); ``"tree"``: summed
    over each tree's nodes and averaged over the trees, as the authors' code does (its learning rates
    and L2 strength were set with this scale; a tree of SST has 37 nodes on average).
    """
    check_choice("supervision", supervision, ("nodes", "root"))
    check_choice("reduction", reduction, ("mean", "tree"))
    if not isinstance(batch, TreeBatch):
        raise TypeError(f"batch must be a TreeBatch (see batch_trees), got {type(batch).__name__}")
    if batch.labels is None:
        raise ValueError("batch must carry labels (encode_tree(..., labels=...)) to compute a loss")
    check_tensor("log_probs", log_probs, shape=(batch.num_nodes, None), floating=True)
    labels = batch.labels if supervision == "nodes" else batch.labels[batch.roots]
    scores = log_probs if supervision == "nodes" else log_probs[batch.roots]
    if (labels >= scores.shape[1]).any():
        raise ValueError(f"labels must be < num_classes={scores.shape[1]}, got {int(labels.max())}")
    if reduction == "mean":
        return F.nll_loss(scores, labels, ignore_index=-1)
    return F.nll_loss(scores, labels, ignore_index=-1, reduction="sum") / batch.num_trees


class LSTMSentiment(nn.Module):
    """The sequential baseline: embeddings -> one-layer LSTM -> dropout -> softmax on the last state."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 5,
        embedding_dim: int = 300,
        hidden_size: int = 168,
        embedding_dropout: float = 0.0,
        classifier_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size)
        check_int("num_classes", num_classes, 2)
        check_int("embedding_dim", embedding_dim)
        check_int("hidden_size", hidden_size)
        check_probability("embedding_dropout", embedding_dropout, allow_one=False)
        check_probability("classifier_dropout", classifier_dropout, allow_one=False)
        self.vocab_size, self.num_classes = vocab_size, num_classes
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.classifier_dropout = nn.Dropout(classifier_dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """``tokens`` long ``[B, L]`` (padded), ``lengths`` long ``[B]`` -> log-probabilities ``[B, C]``."""
        check_tensor("tokens", tokens, dim=2, dtype=torch.long)
        check_tensor("lengths", lengths, shape=(tokens.shape[0],), dtype=torch.long)
        if (lengths < 1).any() or (lengths > tokens.shape[1]).any():
            raise ValueError(f"lengths must be in [1, {tokens.shape[1]}], got {lengths.tolist()}")
        if (tokens < 0).any() or (tokens >= self.vocab_size).any():
            raise ValueError(
                f"tokens must be in [0, {self.vocab_size}), got {int(tokens.min())}..{int(tokens.max())}"
            )
        vectors = self.embedding_dropout(self.embedding(tokens))
        packed = nn.utils.rnn.pack_padded_sequence(
            vectors, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (last, _) = self.lstm(packed)
        return F.log_softmax(self.classifier(self.classifier_dropout(last[-1])), dim=-1)
