r"""Graph Attention Networks (Veličković, Cucurull, Casanova, Romero, Liò, Bengio; ICLR 2018).

A graph attentional layer (Section 2.1) maps node features ``h_i`` (``F`` of them) to ``F'``
features by attending over each node's neighbourhood ``N_i`` (its in-neighbours, and the node
itself through a self loop):

* Eq. (1):  ``e_ij = a(W h_i, W h_j)``, the importance of node ``j``'s features to node ``i``,
  with ``W`` an ``F' x F`` weight matrix shared by all nodes;
* Eq. (2):  ``alpha_ij = softmax_j(e_ij) = exp(e_ij) / sum_{k in N_i} exp(e_ik)``;
* Eq. (3):  the attention mechanism is a single-layer network ``a`` in ``R^{2F'}`` with a LeakyReLU
  (negative slope 0.2): ``e_ij = LeakyReLU(a^T [W h_i || W h_j])``.  Splitting
  ``a = [a_target || a_source]`` gives ``e_ij = LeakyReLU(a_target^T W h_i + a_source^T W h_j)``,
  so each node's two scores are computed once (``O(N F')``) and summed per edge (``O(E)``);
* Eq. (4):  ``h'_i = sigma(sum_{j in N_i} alpha_ij W h_j)``;
* Eq. (5):  multi-head attention, ``K`` independent heads concatenated:
  ``h'_i = ||_{k=1..K} sigma(sum_j alpha^k_ij W^k h_j)``;
* Eq. (6):  on the final (prediction) layer the ``K`` heads are averaged instead:
  ``h'_i = sigma(1/K sum_k sum_j alpha^k_ij W^k h_j)``.

:class:`GATConv` computes Eq. (1)-(6) without the nonlinearity ``sigma``: the model applies ELU
after concatenating layers and the softmax/sigmoid lives in the loss (as the paper's code does).
The attention softmax is a scatter softmax over each target node's incoming edges
(:mod:`aicanon.graphs.scatter`); no ``N x N`` matrix is ever formed, so a layer costs
``O(N F F' K + E F' K)``, the complexity given in Section 2.2.

Edges are given as ``edge_index`` ``[2, E]``: row 0 the source ``j``, row 1 the target ``i``
(messages flow ``j -> i``; ``alpha_ij`` is normalised over the edges entering ``i``).

:class:`GAT` is the paper's model (Section 3.3): the transductive two-layer network for
Cora/CiteSeer/PubMed and the inductive three-layer network for PPI with a skip connection across
the intermediate layer.

Departures from the paper and its code (github.com/PetarV-/GAT), and why:

* The paper's code gives each of ``f_1 = a_1^T W h`` and ``f_2 = a_2^T W h`` a learned scalar bias
  (``tf.layers.conv1d`` defaults to one). Eq. (3) has no such bias, and the reference library
  (PyG) omits it too, so we omit it.
* The paper's code additionally applies input dropout to the transformed features ``W h`` inside
  each head, with a separate dropout mask for the input of every head. Section 3.3 describes
  dropout on "both layers' inputs" and on the normalised attention coefficients, which is what we
  do (one mask per layer input, shared by the heads, as PyG's example does).
* Initialisation follows the paper's code: Glorot-uniform per head, i.e. each head's ``W^k``
  (``F' x F``) with bound ``sqrt(6 / (F + F'))`` and each attention half ``a^k`` (``F'``, read as a
  ``F' x 1`` kernel) with bound ``sqrt(6 / (F' + 1))``; biases start at zero. (PyG draws the
  stacked ``K F' x F`` matrix and the ``K x F'`` attention matrix as single Glorot blocks.)
* Existing self loops are removed and exactly one added per node (when ``add_self_loops``), so a
  node's own features enter its neighbourhood once, as in the paper's dense mask ``A + I``.
  Duplicated edges are kept: each copy is a separate term of the softmax, as in PyG.
* PPI skip connection: the paper's code adds, per head, a 1x1-convolution projection of the layer
  input (with its own bias) before the ELU; ours is one bias-free linear map to all heads' output
  (the same function: the heads' projections stacked, their biases absorbed by the layer's bias).

Implementation choices that do not change the function:

* Eq. (4)'s aggregation runs through :func:`aicanon.graphs.scatter.gather_weighted_sum`, which
  works in cache-sized edge chunks and recomputes the gathered rows in the backward pass (2x faster
  than gather-multiply-``index_add_`` through autograd on a 1M-edge graph). It is differentiable
  once: no double backward through a GAT layer.
* :func:`~aicanon.graphs.inputs.dropout` draws its mask as ``uniform >= p`` (the distribution of
  ``F.dropout``, cheaper on CPU).
* :class:`~aicanon.graphs.inputs.SparseFeatures` feeds bag-of-words inputs (Cora: 1.3% nonzero)
  without densifying them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.inputs import (
    add_self_loops,
    check_graph,
    dropout,
    linear,
    remove_self_loops,
)
from aicanon.graphs.scatter import gather_weighted_sum, scatter_softmax
from aicanon.nn.init import glorot_uniform_

# The graph-input helpers (SparseFeatures, check_graph, dropout, self loops) live in
# aicanon.graphs.inputs: GCN, GraphSAGE and the review use them too.
__all__ = ["GAT", "GATConv"]


class GATConv(nn.Module):
    r"""One graph attentional layer with ``heads`` heads, Eq. (1)-(6) without ``sigma``.

    ``out = (||_k or mean_k) sum_{j in N_i} alpha^k_ij W^k x_j  + bias``, with
    ``alpha^k_ij = softmax_{j in N_i}(LeakyReLU(a_target^k . W^k x_i + a_source^k . W^k x_j))``.

    Args:
        in_features: ``F``, the number of input features per node.
        out_features: ``F'``, the number of output features per head.
        heads: ``K``, the number of independent attention heads (Eq. 5).
        concat: concatenate the heads (Eq. 5; output ``K F'``) or average them (Eq. 6; output ``F'``).
        negative_slope: the LeakyReLU slope in Eq. (3) (0.2 in the paper).
        dropout: dropout probability on the normalised attention coefficients ``alpha`` (Section 3.3;
            0.6 for Cora/CiteSeer). Active only in training mode.
        add_self_loops: remove existing self loops and add one per node, so that ``i in N_i``.
        bias: add a learned bias (``K F'`` if concat else ``F'``), as the paper's code does.

    Parameters (names and shapes): ``weight`` ``[K F', F]`` (head ``k`` is rows ``k F' .. (k+1) F'``),
    ``att_source`` and ``att_target`` ``[K, F']`` (the halves of ``a`` that multiply ``W h_j`` and
    ``W h_i``), ``bias``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features), ("heads", heads)):
            check_int(arg, value)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if float(negative_slope) < 0.0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope}")
        self.in_features, self.out_features, self.heads = in_features, out_features, heads
        self.concat, self.negative_slope, self.dropout = bool(concat), float(negative_slope), float(dropout)
        self.add_self_loops = bool(add_self_loops)
        self.weight = nn.Parameter(torch.empty(heads * out_features, in_features))
        self.att_source = nn.Parameter(torch.empty(heads, out_features))
        self.att_target = nn.Parameter(torch.empty(heads, out_features))
        self.bias = (
            nn.Parameter(torch.empty(heads * out_features if concat else out_features)) if bias else None
        )
        self.reset_parameters()

    @property
    def output_features(self) -> int:
        """Width of the layer's output: ``heads * out_features`` when concatenating, else ``out_features``."""
        return self.heads * self.out_features if self.concat else self.out_features

    def reset_parameters(self) -> None:
        """Glorot-uniform per head, as the paper's code (see the module docstring); zero bias."""
        for k in range(self.heads):
            rows = slice(k * self.out_features, (k + 1) * self.out_features)
            glorot_uniform_(self.weight[rows], self.in_features, self.out_features)
        glorot_uniform_(self.att_source, self.out_features, 1)
        glorot_uniform_(self.att_target, self.out_features, 1)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, x: Tensor, edge_index: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """Attend over each node's in-neighbours.

        Args:
            x: node features ``[N, in_features]``, floating point: a dense tensor, or
                :class:`SparseFeatures` for sparse inputs (``W x`` then costs ``O(nnz)``).
            edge_index: ``[2, E]`` integer node indices, row 0 source ``j``, row 1 target ``i``.
            return_attention: also return ``(edge_index_used, alpha)``: the edges after self-loop
                handling ``[2, E']`` and the coefficients ``alpha`` ``[E', heads]`` used to aggregate
                (after attention dropout, so in training mode they are rescaled and partly zeroed).

        Returns:
            ``[N, heads * out_features]`` (concat) or ``[N, out_features]`` (mean), plus the attention
            when asked. A node with no incoming edge (possible only without self loops) receives a
            zero message: its output is the bias.
        """
        check_graph(x, edge_index, self.in_features)
        num_nodes, heads, channels = x.size(0), self.heads, self.out_features
        edge_index = edge_index.long()
        if self.add_self_loops:
            edge_index = add_self_loops(remove_self_loops(edge_index), num_nodes)
        source, target = edge_index[0], edge_index[1]

        # Eq. (1): the shared linear transformation, all heads in one matmul.
        projected = linear(x, self.weight).view(num_nodes, heads, channels)
        # Eq. (3) split: a^T [W h_i || W h_j] = a_target . W h_i + a_source . W h_j, once per node.
        score_source = (projected * self.att_source).sum(dim=-1)  # [N, K]
        score_target = (projected * self.att_target).sum(dim=-1)  # [N, K]
        scores = score_source.index_select(0, source) + score_target.index_select(0, target)  # [E, K]
        scores = F.leaky_relu(scores, self.negative_slope)
        # Eq. (2): normalise over the edges entering each target (max-subtracted scatter softmax).
        alpha = scatter_softmax(scores, target, num_nodes, check=False)
        # Section 3.3: dropout on the normalised attention coefficients.
        alpha = dropout(alpha, self.dropout, self.training)
        # Eq. (4): weighted sum of the neighbours' transformed features, in cache-sized edge chunks.
        out = gather_weighted_sum(projected, alpha, source, target, num_nodes, check=False)  # [N, K, F']
        # Eq. (5) concatenates the heads; Eq. (6) (the prediction layer) averages them.
        out = out.reshape(num_nodes, heads * channels) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        if return_attention:
            return out, (edge_index, alpha)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, heads={self.heads}, concat={self.concat}, "
            f"dropout={self.dropout}, add_self_loops={self.add_self_loops}"
        )


def _as_tuple(name: str, value: int | Sequence[int]) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must hold positive ints, got {value!r}")
    return values


class GAT(nn.Module):
    """The GAT model of Section 3.3: attentional layers with ELU between them, averaged output heads.

    ``hidden_features[l]`` features per head and ``heads[l]`` heads for hidden layer ``l`` (Eq. 5,
    concatenated, followed by ELU); then an output layer with ``num_classes`` features and
    ``output_heads`` heads averaged (Eq. 6), returning logits (the softmax or sigmoid lives in the
    loss). ``dropout`` is applied to the input of every layer and ``attention_dropout`` to the
    attention coefficients of every layer. With ``skip_connections``, every intermediate hidden
    layer (not the first, not the output) adds a linear projection of its input before the ELU,
    as the paper's PPI model does.

    Use :meth:`transductive` (Cora, CiteSeer, PubMed) or :meth:`inductive` (PPI) for the paper's two
    architectures.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_features: int | Sequence[int] = 8,
        heads: int | Sequence[int] = 8,
        output_heads: int = 1,
        dropout: float = 0.6,
        attention_dropout: float | None = None,
        negative_slope: float = 0.2,
        skip_connections: bool = False,
        add_self_loops: bool = True,
    ) -> None:
        super().__init__()
        hidden = _as_tuple("hidden_features", hidden_features)
        head_counts = _as_tuple("heads", heads)
        if len(hidden) != len(head_counts):
            raise ValueError(
                f"hidden_features and heads must have one entry per hidden layer, got "
                f"{len(hidden)} and {len(head_counts)}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.in_features, self.num_classes, self.dropout = in_features, num_classes, float(dropout)
        self.layers = nn.ModuleList()
        self.skips = nn.ModuleList()
        width = in_features
        for index, (features, count) in enumerate(zip(hidden, head_counts)):
            layer = GATConv(
                width,
                features,
                heads=count,
                concat=True,
                negative_slope=negative_slope,
                dropout=attention_dropout,
                add_self_loops=add_self_loops,
            )
            self.layers.append(layer)
            # PPI (Section 3.3): skip connections across the intermediate attentional layer(s).
            use_skip = skip_connections and index > 0
            self.skips.append(
                nn.Linear(width, layer.output_features, bias=False) if use_skip else nn.Identity()
            )
            if use_skip:
                glorot_uniform_(self.skips[-1].weight, width, layer.output_features)
            width = layer.output_features
        self.has_skip = [skip_connections and i > 0 for i in range(len(hidden))]
        self.output = GATConv(
            width,
            num_classes,
            heads=output_heads,
            concat=False,
            negative_slope=negative_slope,
            dropout=attention_dropout,
            add_self_loops=add_self_loops,
        )

    @classmethod
    def transductive(
        cls, in_features: int, num_classes: int, output_heads: int = 1, dropout: float = 0.6
    ) -> GAT:
        """Cora/CiteSeer (``output_heads=1``) and PubMed (``output_heads=8``): 8 heads x 8 features,
        ELU, dropout 0.6 on layer inputs and attention, one averaged output layer."""
        return cls(
            in_features, num_classes, hidden_features=8, heads=8, output_heads=output_heads, dropout=dropout
        )

    @classmethod
    def inductive(cls, in_features: int = 50, num_classes: int = 121) -> GAT:
        """PPI: three layers, 4 heads x 256 features twice, 6 averaged output heads, a skip connection
        across the intermediate layer, no dropout (Section 3.3). Output logits go to a sigmoid loss."""
        return cls(
            in_features,
            num_classes,
            hidden_features=(256, 256),
            heads=(4, 4),
            output_heads=6,
            dropout=0.0,
            attention_dropout=0.0,
            skip_connections=True,
        )

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits ``[N, num_classes]`` for node features ``x`` ``[N, in_features]`` and ``edge_index`` ``[2, E]``."""
        check_graph(x, edge_index, self.in_features)
        h = x
        for layer, skip, has_skip in zip(self.layers, self.skips, self.has_skip):
            h_in = dropout(h, self.dropout, self.training)
            out = layer(h_in, edge_index)
            if has_skip:
                out = out + linear(h_in, skip.weight)
            h = F.elu(out)
        h = dropout(h, self.dropout, self.training)
        return self.output(h, edge_index)
