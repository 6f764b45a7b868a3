r"""Graph Convolutional Networks (Kipf & Welling, "Semi-Supervised Classification with Graph
Convolutional Networks", ICLR 2017, arXiv 1609.02907).

The layer is the first-order approximation of spectral graph convolution (Section 2.1-2.2):

* Eq. (2):  ``H^(l+1) = sigma(D~^-1/2 A~ D~^-1/2 H^(l) W^(l))`` with ``A~ = A + I_N`` (self loops)
  and ``D~_ii = sum_j A~_ij``; the "renormalisation trick" ``A^ = D~^-1/2 A~ D~^-1/2`` replaces
  ``I + D^-1/2 A D^-1/2`` (whose eigenvalues reach 2 and make deep stacks unstable);
* Eq. (8):  ``Z = A^ X Theta`` for ``C`` input channels and ``F`` filters;
* Eq. (9):  the two-layer classifier ``Z = softmax(A^ ReLU(A^ X W^(0)) W^(1))``, trained with
  cross-entropy on the labelled nodes only (Eq. 10).

As message passing (``edge_index`` ``[2, E]``, row 0 source ``j``, row 1 target ``i``):
``h'_i = sum_{j in N(i) u {i}} w_ji / sqrt(d~_j d~_i) (W h_j)``, where ``d~_i`` is the weighted
in-degree of ``i`` counting its self loop. :func:`gcn_norm` computes the per-edge coefficients
with one scatter over the edges and :class:`GCNConv` sums the weighted messages with
:func:`aicanon.graphs.scatter.scatter_sum`: ``O(E F)`` per layer, never an ``N x N`` matrix.

Departures from the paper and its code (github.com/tkipf/gcn), and why:

* :class:`GCNConv` has a bias (default on) as PyTorch Geometric's layer does, so that both can be
  compared weight for weight; :class:`GCN`, the paper's model, has none (Eq. 9, and the paper's
  code's default).
* Self loops: an edge ``i -> i`` already present is kept with its weight and no second loop is added
  (PyG's ``add_remaining_self_loops``); nodes without one get a loop of weight 1 (``A + I``).
  With 0/1 weights this is exactly ``A~`` of Eq. (2) for a graph without loops.
* A node with no incoming edge and no self loop (``add_self_loops=False``) has ``d~ = 0``; its
  ``d~^-1/2`` is taken as 0 (so it receives nothing) instead of infinity, as PyG does.
* Dropout is dense inverted dropout on both layers' inputs (Section 5.2); the paper's code uses
  sparse dropout on the bag-of-words input, the same distribution over the non-zero entries.
  We use :func:`aicanon.graphs.inputs.dropout`, which handles :class:`~aicanon.graphs.inputs.SparseFeatures`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.inputs import SparseFeatures, check_graph, dropout, linear
from aicanon.graphs.scatter import scatter_sum
from aicanon.nn.init import glorot_uniform_

__all__ = ["GCN", "GCNConv", "gcn_norm", "with_self_loops"]


def _check_edge_weight(edge_weight: Tensor | None, edge_index: Tensor) -> None:
    if edge_weight is None:
        return
    if not isinstance(edge_weight, Tensor):
        raise TypeError(f"edge_weight must be a torch.Tensor [E] or None, got {type(edge_weight).__name__}")
    if edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1):
        raise ValueError(
            f"edge_weight must have shape [E={edge_index.size(1)}], got {tuple(edge_weight.shape)}"
        )
    if not edge_weight.is_floating_point():
        raise TypeError(f"edge_weight must be a floating-point tensor, got {edge_weight.dtype}")


def with_self_loops(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    add_self_loops: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """``A~ = A + I`` as edges and weights: existing loops removed and one per node appended, an
    existing loop keeping its weight, every other node's loop weighing 1 (all weights 1 when
    ``edge_weight`` is None). ``add_self_loops=False`` returns the edges unchanged."""
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    if not add_self_loops:
        return edge_index, edge_weight
    is_loop = edge_index[0] == edge_index[1]
    loop_weight = torch.ones(num_nodes, dtype=edge_weight.dtype, device=edge_index.device)
    loop_weight[edge_index[0, is_loop]] = edge_weight[is_loop]
    loops = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    edges = torch.cat([edge_index[:, ~is_loop], loops.unsqueeze(0).expand(2, -1)], dim=1)
    return edges, torch.cat([edge_weight[~is_loop], loop_weight])


def gcn_norm(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    add_self_loops: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    r"""The edges of ``A^ = D~^-1/2 A~ D~^-1/2`` (Eq. 2) and their coefficients.

    Returns ``(edge_index', norm)``: the edges with self loops appended (when ``add_self_loops``:
    existing loops removed and one per node added, keeping an existing loop's weight) and
    ``norm[e] = w_e / sqrt(d~_source(e) d~_target(e))`` with ``d~_i = sum_{e: target(e) = i} w_e``.
    """
    check_int("num_nodes", num_nodes, 0)
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must be a [2, E] integer tensor, got {got}")
    _check_edge_weight(edge_weight, edge_index)
    edge_index, edge_weight = with_self_loops(edge_index, num_nodes, edge_weight, add_self_loops, dtype)
    source, target = edge_index[0], edge_index[1]
    degree = scatter_sum(edge_weight, target, num_nodes, check=False)  # D~_ii = sum_j A~_ij
    inverse_sqrt = degree.pow(-0.5)
    inverse_sqrt = inverse_sqrt.masked_fill(torch.isinf(inverse_sqrt), 0.0)
    norm = inverse_sqrt.index_select(0, source) * edge_weight * inverse_sqrt.index_select(0, target)
    return edge_index, norm


class GCNConv(nn.Module):
    r"""One graph convolution, Eq. (8): ``H' = A^ H W^T + b`` with ``A^ = D~^-1/2 (A + I) D~^-1/2``.

    Args:
        in_features: ``C``, input features per node.
        out_features: ``F``, filters (output features per node).
        add_self_loops: use ``A~ = A + I`` (the renormalisation trick); False uses ``A`` as given.
        normalize: apply ``D~^-1/2 . D~^-1/2``; False sums the (weighted) messages unnormalised.
        bias: add a learned bias ``b`` (zeros at the start), as PyG's layer does.
        cached: keep the normalised edges of the first call and reuse them (transductive training on
            one fixed graph, as the paper's code precomputes ``A^``). Do not use with changing graphs.

    Parameters: ``weight`` ``[F, C]`` (Glorot-uniform), ``bias`` ``[F]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        add_self_loops: bool = True,
        normalize: bool = True,
        bias: bool = True,
        cached: bool = False,
    ) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            check_int(arg, value)
        self.in_features, self.out_features = in_features, out_features
        self.add_self_loops, self.normalize, self.cached = bool(add_self_loops), bool(normalize), bool(cached)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self._cache: tuple[Tensor, Tensor, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._cache = None

    def propagation(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None, dtype: torch.dtype):
        """``(edge_index', coefficients)`` of ``A^`` for this layer's settings (cached if asked)."""
        if self.cached and self._cache is not None and self._cache[0] is edge_index:
            return self._cache[1], self._cache[2]
        if self.normalize:
            edges, norm = gcn_norm(edge_index, num_nodes, edge_weight, self.add_self_loops, dtype)
        else:
            edges, norm = with_self_loops(edge_index, num_nodes, edge_weight, self.add_self_loops, dtype)
        if self.cached:
            self._cache = (edge_index, edges, norm)
        return edges, norm

    def forward(
        self, x: Tensor | SparseFeatures, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """``[N, out_features]`` for node features ``x`` ``[N, in_features]`` (dense or SparseFeatures),
        ``edge_index`` ``[2, E]`` and optional positive ``edge_weight`` ``[E]``."""
        check_graph(x, edge_index, self.in_features)
        _check_edge_weight(edge_weight, edge_index)
        num_nodes = x.size(0)
        # Eq. (8) right to left: transform first (F <= C, so the propagation moves F-wide rows).
        h = linear(x, self.weight)
        edges, norm = self.propagation(edge_index, num_nodes, edge_weight, h.dtype)
        # One gather, one product, one index_add_ (autograd's backward is one gather and one index_add_).
        # gather_weighted_sum's chunked kernel measured 3-4x slower here (benchmarks/bench_gnn_review.py).
        messages = h.index_select(0, edges[0]) * norm.to(h.dtype).unsqueeze(1)
        out = scatter_sum(messages, edges[1], num_nodes, check=False)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, add_self_loops={self.add_self_loops}, "
            f"normalize={self.normalize}, cached={self.cached}"
        )


class GCN(nn.Module):
    r"""The paper's node classifier, Eq. (9): ``Z = A^ ReLU(A^ X W^(0)) W^(1)`` (logits; the softmax
    lives in the loss), with dropout ``p`` on both layers' inputs (Section 5.2: 16 hidden units,
    dropout 0.5). No biases, as in Eq. (9). ``cached`` reuses ``A^`` across calls on a fixed graph.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_features: int = 16,
        dropout: float = 0.5,
        bias: bool = False,
        cached: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.conv1 = GCNConv(in_features, hidden_features, bias=bias, cached=cached)
        self.conv2 = GCNConv(hidden_features, num_classes, bias=bias, cached=cached)

    def forward(self, x: Tensor | SparseFeatures, edge_index: Tensor) -> Tensor:
        """Logits ``[N, num_classes]``."""
        h = dropout(x, self.dropout, self.training)
        h = F.relu(self.conv1(h, edge_index))
        h = dropout(h, self.dropout, self.training)
        return self.conv2(h, edge_index)
