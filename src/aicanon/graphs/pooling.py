r"""Graph pooling (readout): from node representations to one vector per graph, and hierarchical
pooling that coarsens a graph between GNN layers (the "pooling modules" of Zhou et al., GNN review,
Section 3.5).

Several graphs are batched as one disjoint graph; ``batch`` ``[N]`` names each node's graph
(``0 .. B-1``). Every readout here is a scatter over ``batch`` (:mod:`aicanon.graphs.scatter`),
so it is invariant to the order of a graph's nodes.

Direct pooling (review Section 3.5.1, "simple node pooling"):

* :func:`global_sum_pool`, :func:`global_mean_pool`, :func:`global_max_pool`:
  ``h_G = sum / mean / max_{v in G} h_v`` (element-wise).
* :class:`GlobalAttentionPool`: a gated sum ``h_G = sum_v g_v . f(h_v)`` with the gate either
  ``g_v = softmax_{v in G}(gate(h_v))`` (``"softmax"``: the soft attention readout that PyTorch
  Geometric's ``AttentionalAggregation`` credits to Li et al. 2016) or ``g_v = sigmoid(gate(h_v))``
  (``"sigmoid"``: GG-NN's Eq. 7 without its outer ``tanh``; the complete Eq. 7 with annotations is
  :class:`aicanon.graphs.ggnn.GraphAttentionReadout`).

Hierarchical pooling (review Section 3.5.2): :class:`SAGPool`, self-attention graph pooling (Lee,
Lee, Kang, ICML 2019, arXiv 1904.08082):

* Eq. (3):  ``Z = sigma(D~^-1/2 A~ D~^-1/2 X Theta_att)``: one attention score per node from a graph
  convolution (:class:`aicanon.graphs.gcn.GCNConv` with one output), ``sigma = tanh``;
* Eq. (4):  ``idx = top-rank(Z, ceil(k N))``, ``Z_mask = Z_idx``: keep the ``ceil(ratio * N_G)`` best
  scored nodes of every graph;
* ``X' = X_idx,: . Z_mask`` (the kept features gated by their scores, so that the score network
  receives a gradient) and ``A_out = A_idx,idx`` (edges between kept nodes, renumbered).

We chose SAGPool over DiffPool for the hierarchical category: it is sparse (``O(E)``, no dense
``N x N`` assignment) and its conventions can be matched exactly to PyG's ``SAGPooling``.

Departures, and why:

* Kept nodes are ordered by graph, then by descending score (PyG's ``topk`` order); the paper does not
  fix an order. Ties between equal scores are broken by ``torch.sort``, so their order is unspecified.
* PyG's ``SAGPooling`` divides the score by ``|p|`` for a learned scalar ``p`` (so only its sign acts);
  we have no such parameter (Eq. 3 has none).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.gcn import GCNConv
from aicanon.graphs.scatter import scatter_max, scatter_mean, scatter_softmax, scatter_sum

__all__ = [
    "GlobalAttentionPool",
    "SAGPool",
    "global_max_pool",
    "global_mean_pool",
    "global_sum_pool",
    "top_k_per_graph",
]


def _check_readout(x: Tensor, batch: Tensor | None, size: int | None) -> tuple[Tensor, int]:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of node features [N, F], got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D node features [N, F], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        return batch, 1 if size is None else size
    if not isinstance(batch, Tensor):
        raise TypeError(f"batch must be a torch.Tensor [N] of graph ids, got {type(batch).__name__}")
    if batch.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"batch must be an int64 (or int32) tensor, got {batch.dtype}")
    if batch.dim() != 1 or batch.numel() != x.size(0):
        raise ValueError(f"batch must have shape [N={x.size(0)}], got {tuple(batch.shape)}")
    if batch.device != x.device:
        raise ValueError(f"batch must be on x's device ({x.device}), got {batch.device}")
    batch = batch.long()
    high = int(batch.max()) if batch.numel() else -1
    if batch.numel() and int(batch.min()) < 0:
        raise ValueError(f"batch values must be graph ids >= 0, got min {int(batch.min())}")
    if size is None:
        size = high + 1
    check_int("size", size, high + 1, note=f"one slot per graph id, and max(batch)={high}")
    return batch, size


def global_sum_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """``[B, F]``: the sum of each graph's node rows (``size`` = B, default ``max(batch) + 1``)."""
    batch, size = _check_readout(x, batch, size)
    return scatter_sum(x, batch, size, check=False)


def global_mean_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """``[B, F]``: the mean of each graph's node rows (0 for a graph with no nodes)."""
    batch, size = _check_readout(x, batch, size)
    return scatter_mean(x, batch, size, check=False)


def global_max_pool(x: Tensor, batch: Tensor | None = None, size: int | None = None) -> Tensor:
    """``[B, F]``: the element-wise maximum of each graph's node rows (0 for a graph with no nodes)."""
    batch, size = _check_readout(x, batch, size)
    return scatter_max(x, batch, size, check=False)


class GlobalAttentionPool(nn.Module):
    r"""Gated readout ``h_G = sum_{v in G} g_v . f(h_v)``.

    Args:
        gate_nn: maps ``[N, F]`` to ``[N, 1]`` (one gate per node) or ``[N, F']`` (one per feature).
        nn: ``f``, maps ``[N, F]`` to ``[N, F']``; the identity when None.
        gate: ``"softmax"`` normalises the gates over each graph's nodes (the weights sum to 1);
            ``"sigmoid"`` gates each node independently in ``(0, 1)`` (GG-NN Eq. 7).
    """

    def __init__(self, gate_nn: nn.Module, nn: nn.Module | None = None, gate: str = "softmax") -> None:
        super().__init__()
        if not callable(gate_nn):
            raise TypeError(
                f"gate_nn must be a module mapping [N, F] to [N, 1], got {type(gate_nn).__name__}"
            )
        if gate not in ("softmax", "sigmoid"):
            raise ValueError(f"gate must be 'softmax' or 'sigmoid', got {gate!r}")
        self.gate_nn, self.nn, self.gate = gate_nn, nn, gate

    def forward(
        self, x: Tensor, batch: Tensor | None = None, size: int | None = None, return_gates: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``[B, F']`` (and the gates ``[N, 1 or F']`` when ``return_gates``)."""
        batch, size = _check_readout(x, batch, size)
        scores = self.gate_nn(x)
        if scores.dim() != 2 or scores.size(0) != x.size(0):
            raise ValueError(f"gate_nn must return [N={x.size(0)}, 1 or F'], got {tuple(scores.shape)}")
        values = x if self.nn is None else self.nn(x)
        if self.gate == "softmax":
            gates = scatter_softmax(scores, batch, size, check=False)
        else:
            gates = torch.sigmoid(scores)
        out = scatter_sum(gates * values, batch, size, check=False)
        return (out, gates) if return_gates else out


def top_k_per_graph(score: Tensor, ratio: float, batch: Tensor, num_graphs: int) -> Tensor:
    """Indices of the ``ceil(ratio * N_G)`` highest scores of every graph (a float ``ratio``) or of
    the ``ratio`` highest (an int, capped at ``N_G``), ordered by graph, then by descending score
    (Eq. 4's top-rank)."""
    counts = torch.bincount(batch, minlength=num_graphs)
    if isinstance(ratio, int):
        keep = torch.clamp(counts, max=int(ratio))
    else:
        keep = torch.ceil(ratio * counts.to(score.dtype)).long()
    by_score = torch.argsort(score, descending=True)
    order = by_score[torch.argsort(batch[by_score], stable=True)]
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(score.numel(), device=score.device) - start[batch[order]]
    return order[rank < keep[batch[order]]]


class SAGPool(nn.Module):
    r"""Self-attention graph pooling, Eq. (3)-(4) of Lee et al. 2019 (see the module docstring).

    Args:
        in_features: node features.
        ratio: the pooling ratio ``k`` in ``(0, 1]`` (keep ``ceil(k N_G)`` nodes per graph), or an
            int ``>= 1``: keep that many nodes per graph.
        nonlinearity: ``sigma`` of Eq. (3); ``tanh`` in the paper.

    ``forward(x, edge_index, batch)`` returns ``(x', edge_index', batch', kept, score)``: the pooled
    features ``[M, F]``, the edges among kept nodes (renumbered ``0 .. M-1``), their graph ids, the
    kept nodes' original indices ``[M]`` and their scores ``[M]``.
    """

    def __init__(self, in_features: int, ratio: float = 0.5, nonlinearity=torch.tanh) -> None:
        super().__init__()
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise TypeError(f"ratio must be a float in (0, 1] or an int >= 1, got {type(ratio).__name__}")
        if isinstance(ratio, int) and ratio < 1 or isinstance(ratio, float) and not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1] (a fraction) or an int >= 1 (a count), got {ratio}")
        self.ratio = ratio
        self.score = GCNConv(in_features, 1)  # Eq. (3): Theta_att in R^{F x 1}
        self.nonlinearity = nonlinearity

    def forward(
        self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        batch, num_graphs = _check_readout(x, batch, None)
        score = self.nonlinearity(self.score(x, edge_index).view(-1))  # Eq. (3)
        kept = top_k_per_graph(score, self.ratio, batch, num_graphs)
        pooled = x.index_select(0, kept) * score[kept].unsqueeze(1)
        # A_out = A_{idx, idx}: keep edges whose both ends survive, renumbered to the kept order.
        position = torch.full((x.size(0),), -1, dtype=torch.long, device=x.device)
        position[kept] = torch.arange(kept.numel(), device=x.device)
        source, target = position[edge_index[0]], position[edge_index[1]]
        survive = (source >= 0) & (target >= 0)
        new_edges = torch.stack([source[survive], target[survive]])
        return pooled, new_edges, batch[kept], kept, score[kept]
