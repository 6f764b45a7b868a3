r"""GraphSAGE (Hamilton, Ying, Leskovec, "Inductive Representation Learning on Large Graphs",
NeurIPS 2017, arXiv 1706.02216): the mean aggregator and node-wise neighbour sampling.

Algorithm 1 (forward propagation), for each layer ``k`` and node ``v``:

* line 4:  ``h_N(v)^k = AGGREGATE_k({h_u^(k-1), u in N(v)})``;
* line 5:  ``h_v^k = sigma(W^k . CONCAT(h_v^(k-1), h_N(v)^k))``;
* line 7:  ``h_v^k = h_v^k / ||h_v^k||_2`` (optional normalisation).

With the mean aggregator (Section 3.3) ``h_N(v) = mean_{u in N(v)} h_u``. Splitting
``W = [W_root, W_neighbour]`` turns line 5 into ``W_root h_v + W_neighbour mean_u h_u``, which is how
:class:`SAGEConv` computes it (two linear maps, PyTorch Geometric's parameter layout); the concat and
the sum are the same function. ``root_weight=False`` drops the ``h_v`` term.

Algorithm 2 (minibatch forward propagation) samples, from the output nodes ``B^K`` (the seeds)
backwards, ``B^(k-1) = B^k u N_k(u)`` for ``u in B^k`` with ``N_k`` a uniform sample of at most
``S_k`` neighbours; layer ``k`` then only computes the representations of ``B^k`` from those of
``B^(k-1)``. :func:`sample_neighbors` returns those per-hop bipartite graphs (:class:`SampledBlock`),
and :class:`SAGEConv` takes ``num_targets`` to compute a block's output rows only.

Messages flow along ``edge_index`` ``[2, E]`` from row 0 (source ``u``) to row 1 (target ``v``):
``N(v)`` is the set of sources of the edges entering ``v``. Aggregation is one
:func:`~aicanon.graphs.scatter.scatter_mean`: ``O(E F)`` per layer.

Departures from the paper and its code (github.com/williamleif/GraphSAGE), and why:

* Sampling is without replacement (all neighbours of a node with fewer than ``S_k``), as PyTorch
  Geometric's ``NeighborLoader`` does; the paper's code fixes ``S_k`` neighbours per node, drawing with
  replacement for low-degree nodes, so that its tensors have static shapes. Duplicated neighbours
  only reweight the mean.
* A node with no neighbours aggregates to 0 (mean over the empty set), as in PyG.
* ``sigma`` is left to the model (the layer is linear), as PyG's layer; normalisation (line 7) is
  applied to the layer's pre-activation output when ``normalize=True``, as PyG's layer does.
* The neighbour linear map carries the bias (PyG's layout); the paper's code has a bias on neither
  by default. The concatenation's width (Algorithm 1 doubles it) is not kept: the sum form gives
  ``out_features`` directly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.inputs import SparseFeatures, check_graph, dropout, linear
from aicanon.graphs.scatter import scatter_mean
from aicanon.nn.init import glorot_uniform_

__all__ = ["GraphSAGE", "SAGEConv", "SampledBlock", "sample_neighbors"]


class SAGEConv(nn.Module):
    r"""GraphSAGE-mean layer, Algorithm 1 lines 4-5 (and 7): ``h'_v = W_n mean_{u in N(v)} h_u + W_r h_v + b``.

    Args:
        in_features: input features per node.
        out_features: output features per node.
        root_weight: keep the node's own term ``W_r h_v`` (the CONCAT of line 5); False aggregates
            neighbours only.
        normalize: divide each output row by its L2 norm (line 7).
        bias: a learned bias on the neighbour map.

    Parameters: ``weight_neighbor`` ``[out, in]``, ``weight_root`` ``[out, in]`` (Glorot-uniform, as
    the paper's code), ``bias`` ``[out]`` (zeros).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        root_weight: bool = True,
        normalize: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            check_int(arg, value)
        self.in_features, self.out_features = in_features, out_features
        self.root_weight, self.normalize = bool(root_weight), bool(normalize)
        self.weight_neighbor = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_root = nn.Parameter(torch.empty(out_features, in_features)) if root_weight else None
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.weight_neighbor)
        if self.weight_root is not None:
            glorot_uniform_(self.weight_root)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, x: Tensor | SparseFeatures, edge_index: Tensor, num_targets: int | None = None
    ) -> Tensor:
        """``[num_targets, out_features]`` (``num_targets`` defaults to ``N``).

        Args:
            x: features of the source nodes ``[N, in_features]``; the targets are its first
                ``num_targets`` rows (a :class:`SampledBlock`'s layout; all nodes by default).
            edge_index: ``[2, E]``, sources in ``[0, N)``, targets in ``[0, num_targets)``.
            num_targets: how many output rows (the first nodes of ``x``) to compute.
        """
        check_graph(x, edge_index, self.in_features)
        num_nodes = x.size(0)
        if num_targets is None:
            num_targets = num_nodes
        check_int("num_targets", num_targets, 0, num_nodes, note="at most the N nodes of x")
        source, target = edge_index[0], edge_index[1]
        if target.numel() and int(target.max()) >= num_targets:
            raise ValueError(
                f"edge_index targets must lie in [0, num_targets={num_targets}), got max {int(target.max())}"
            )

        # Transform before aggregating when it narrows the rows (mean and W commute: both are linear).
        if self.out_features <= self.in_features or isinstance(x, SparseFeatures):
            transformed = linear(x, self.weight_neighbor)
            out = scatter_mean(transformed.index_select(0, source), target, num_targets, check=False)
        else:
            out = F.linear(
                scatter_mean(x.index_select(0, source), target, num_targets, check=False),
                self.weight_neighbor,
            )
        if self.bias is not None:
            out = out + self.bias
        if self.weight_root is not None:
            # SparseFeatures cannot be sliced by rows: transform all rows, keep the targets'.
            roots = (
                linear(x, self.weight_root)[:num_targets]
                if isinstance(x, SparseFeatures)
                else F.linear(x[:num_targets], self.weight_root)
            )
            out = out + roots
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)  # Algorithm 1, line 7
        return out

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, root_weight={self.root_weight}, normalize={self.normalize}"


@dataclass
class SampledBlock:
    """One hop of a sampled computation graph (Algorithm 2): a bipartite graph from ``num_sources``
    nodes to the first ``num_targets`` of them.

    Attributes:
        edge_index: ``[2, E_k]`` local indices, sources in ``[0, num_sources)``, targets in
            ``[0, num_targets)``.
        num_sources: nodes whose representations the layer reads (``B^(k-1)``).
        num_targets: nodes whose representations the layer writes (``B^k``), the first of the sources.
    """

    edge_index: Tensor
    num_sources: int
    num_targets: int


def _csr_by_target(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """``(pointer [N+1], sources sorted by target)``: node ``v``'s in-neighbours are
    ``sources[pointer[v]:pointer[v+1]]``."""
    order = torch.argsort(edge_index[1], stable=True)
    counts = torch.bincount(edge_index[1], minlength=num_nodes)
    pointer = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    pointer[1:] = torch.cumsum(counts, 0)
    return pointer, edge_index[0, order]


def sample_neighbors(
    edge_index: Tensor,
    seeds: Tensor,
    fanouts: list[int] | tuple[int, ...],
    generator: torch.Generator | None = None,
    num_nodes: int | None = None,
) -> tuple[Tensor, list[SampledBlock]]:
    """Node-wise neighbour sampling for a minibatch (Algorithm 2, lines 1-7).

    Args:
        edge_index: ``[2, E]`` global edges (messages flow row 0 -> row 1).
        seeds: ``[B]`` distinct global node ids whose outputs are wanted (``B^K``).
        fanouts: ``S_1 .. S_K``, neighbours sampled per node at each layer, input layer first (as the
            paper lists them); ``-1`` keeps every neighbour.
        generator: the random source (a seeded ``torch.Generator`` repeats the sample).
        num_nodes: nodes in the graph (default ``max(edge_index, seeds) + 1``).

    Returns ``(nodes, blocks)``: ``nodes`` ``[N_0]`` the global ids of ``B^0`` (the input nodes; the
    seeds come first, then each hop's new nodes in order of discovery), and ``blocks`` from the input
    layer to the output layer, block ``k`` mapping the first ``blocks[k].num_sources`` entries of
    ``nodes`` to the first ``blocks[k].num_targets``. Feed ``x[nodes]`` to the first layer.
    """
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must be a [2, E] integer tensor, got {got}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"edge_index must be an int64 (or int32) tensor, got {edge_index.dtype}")
    if not isinstance(seeds, Tensor) or seeds.dim() != 1 or seeds.dtype not in (torch.int64, torch.int32):
        got = f"{tuple(seeds.shape)} {seeds.dtype}" if isinstance(seeds, Tensor) else type(seeds).__name__
        raise ValueError(f"seeds must be a 1-D integer tensor of node ids, got {got}")
    if not isinstance(fanouts, (list, tuple)) or not fanouts:
        raise ValueError(f"fanouts must be a non-empty list of ints (one per layer), got {fanouts!r}")
    for fanout in fanouts:
        if isinstance(fanout, bool) or not isinstance(fanout, int) or (fanout < 1 and fanout != -1):
            raise ValueError(f"fanouts must hold ints >= 1 (or -1 for all neighbours), got {fanouts!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    edge_index, seeds = edge_index.long(), seeds.long()
    if num_nodes is None:
        num_nodes = (
            int(max(edge_index.max() if edge_index.numel() else -1, seeds.max() if seeds.numel() else -1)) + 1
        )
    if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= num_nodes):
        raise ValueError(
            f"seeds must be node ids in [0, num_nodes={num_nodes}), got [{int(seeds.min())}, {int(seeds.max())}]"
        )
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index values must be node ids in [0, num_nodes={num_nodes})")
    if torch.unique(seeds).numel() != seeds.numel():
        raise ValueError("seeds must be distinct node ids, got repeated ids")
    device = edge_index.device
    pointer, neighbours = _csr_by_target(edge_index, num_nodes)
    local = torch.full((num_nodes,), -1, dtype=torch.long, device=device)  # global id -> position
    nodes = seeds.to(device)
    local[nodes] = torch.arange(nodes.numel(), device=device)
    frontier = nodes  # B^k: the targets of the current hop
    blocks: list[SampledBlock] = []
    # Algorithm 2 walks from the output layer (K) back to the input: the last fanout is used first.
    for fanout in reversed(list(fanouts)):
        start, degree = pointer[frontier], pointer[frontier + 1] - pointer[frontier]
        owner = torch.repeat_interleave(torch.arange(frontier.numel(), device=device), degree)
        offset = torch.arange(owner.numel(), device=device) - torch.repeat_interleave(
            torch.cumsum(degree, 0) - degree, degree
        )
        candidates = neighbours[start[owner] + offset]
        if fanout != -1:
            # Uniform sample without replacement: a random key per candidate edge, keep the
            # ``fanout`` smallest keys of each target (sort by key, then stably by owner).
            keys = torch.rand(owner.numel(), generator=generator).to(device)
            by_key = torch.argsort(keys)
            by_owner = by_key[torch.argsort(owner[by_key], stable=True)]
            # ``offset`` is also each sorted position's rank within its owner's segment.
            chosen = by_owner[offset < fanout]
            owner, candidates = owner[chosen], candidates[chosen]
        # B^(k-1) = B^k u sampled neighbours: new nodes appended in order of first appearance.
        new = candidates[local[candidates] < 0]
        if new.numel():
            unique, _first = _first_occurrence(new)
            local[unique] = torch.arange(nodes.numel(), nodes.numel() + unique.numel(), device=device)
            nodes = torch.cat([nodes, unique])
        blocks.append(
            SampledBlock(torch.stack([local[candidates], owner]), int(nodes.numel()), int(frontier.numel()))
        )
        frontier = nodes
    return nodes, blocks[::-1]


def _first_occurrence(values: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct ``values`` in order of first appearance, and where each first appears."""
    unique, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((unique.numel(),), values.numel(), dtype=torch.long, device=values.device)
    first = first.scatter_reduce(
        0, inverse, torch.arange(values.numel(), device=values.device), reduce="amin"
    )
    order = torch.argsort(first)
    return unique[order], first[order]


class GraphSAGE(nn.Module):
    """A GraphSAGE-mean node classifier: ``len(hidden) + 1`` :class:`SAGEConv` layers, ReLU and
    dropout between them, logits out. Full-graph with ``forward(x, edge_index)``; minibatch over
    :func:`sample_neighbors` blocks with ``forward_blocks(x[nodes], blocks)``."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_features: int | tuple[int, ...] = 16,
        dropout: float = 0.5,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        hidden = (hidden_features,) if isinstance(hidden_features, int) else tuple(hidden_features)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = (in_features, *hidden, num_classes)
        self.dropout = float(dropout)
        self.layers = nn.ModuleList(
            SAGEConv(a, b, normalize=normalize and i < len(widths) - 2)
            for i, (a, b) in enumerate(itertools.pairwise(widths))
        )

    def forward(self, x: Tensor | SparseFeatures, edge_index: Tensor) -> Tensor:
        h = x
        for index, layer in enumerate(self.layers):
            h = layer(dropout(h, self.dropout, self.training), edge_index)
            if index < len(self.layers) - 1:
                h = F.relu(h)
        return h

    def forward_blocks(self, x: Tensor | SparseFeatures, blocks: list[SampledBlock]) -> Tensor:
        """Logits of the seeds, from the input nodes' features ``x`` ``[blocks[0].num_sources, F]``."""
        if len(blocks) != len(self.layers):
            raise ValueError(f"blocks must have one entry per layer ({len(self.layers)}), got {len(blocks)}")
        if x.size(0) != blocks[0].num_sources:
            raise ValueError(
                f"x must have blocks[0].num_sources={blocks[0].num_sources} rows, got {x.size(0)}"
            )
        h = x
        for index, (layer, block) in enumerate(zip(self.layers, blocks)):
            h = layer(
                dropout(h, self.dropout, self.training), block.edge_index, num_targets=block.num_targets
            )
            if index < len(self.layers) - 1:
                h = F.relu(h)
        return h
