r"""The graphs tuple: a batch of directed attributed graphs (Battaglia et al., "Relational inductive
biases, deep learning, and graph networks", 2018), the data a GN block reads and writes.

A graph is a 3-tuple ``G = (u, V, E)`` (Section 3.2.1): a global attribute ``u``, node attributes
``V = {v_i}`` and directed edges ``E = {(e_k, r_k, s_k)}`` with attribute ``e_k``, receiver ``r_k`` and
sender ``s_k``.

:class:`GraphsTuple` holds several graphs of different sizes in one batch, the paper's "graphs
tuple" (Section 4.3 and the graph_nets library): concatenated node and edge attributes, one global
row per graph, ``senders``/``receivers`` indexing the concatenated nodes, and ``n_node``/``n_edge``
saying which rows belong to which graph. :func:`batch` and :meth:`GraphsTuple.unbatch` convert
between a list of graphs and one tuple; :meth:`GraphsTuple.node_graph_index` and
:meth:`GraphsTuple.edge_graph_index` say which graph each row belongs to, so that the GN block's
global aggregations ``rho^{e->u}`` and ``rho^{v->u}`` run per graph. The ``edge_index`` ``[2, E]`` view
(row 0 sender, row 1 receiver) is the convention of the rest of :mod:`aicanon.graphs`.

:func:`concat_features` joins the attributes of graphs with one structure along the feature
dimension: a recurrent block's input beside its hidden state (Figure 4b), the encode-process-decode
core's encoded input beside its previous output (Figure 6c).

The GN block itself (Eq. 1, Algorithm 1) is :mod:`aicanon.graphs.graph_networks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ATTRIBUTES", "GraphsTuple", "batch", "concat_features"]

ATTRIBUTES = ("nodes", "edges", "globals")
"""The attribute fields of a :class:`GraphsTuple`, ``V``, ``E`` and ``u``; each may be ``None``."""


def _check_count_vector(name: str, value: Tensor) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(
            f"GraphsTuple: {name} must be a 1-D int64 tensor (one count per graph), got {type(value).__name__}"
        )
    if value.dim() != 1:
        raise ValueError(
            f"GraphsTuple: {name} must be 1-D (one count per graph), got shape {tuple(value.shape)}"
        )
    if value.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"GraphsTuple: {name} must be an int64 or int32 tensor, got {value.dtype}")
    if value.numel() and int(value.min()) < 0:
        raise ValueError(f"GraphsTuple: {name} must hold counts >= 0, got minimum {int(value.min())}")


@dataclass(frozen=True)
class GraphsTuple:
    """A batch of ``B`` directed attributed graphs ``(u, V, E)`` stored as concatenated tensors.

    Attributes:
        nodes: ``[N, F_v]`` node attributes of all graphs, graph 0's nodes first, or ``None``.
        edges: ``[E, F_e]`` edge attributes of all graphs, graph 0's edges first, or ``None``.
        globals: ``[B, F_u]`` one global attribute row per graph, or ``None``.
        senders: ``[E]`` integer index of each edge's sender ``s_k`` among all ``N`` nodes.
        receivers: ``[E]`` integer index of each edge's receiver ``r_k`` among all ``N`` nodes.
        n_node: ``[B]`` number of nodes of each graph (sums to ``N``).
        n_edge: ``[B]`` number of edges of each graph (sums to ``E``).

    Construction checks shapes, dtypes, devices, that indices lie in ``[0, N)`` and that every edge
    joins two nodes of its own graph; a violation raises ``ValueError``/``TypeError`` naming the field.
    Use :meth:`from_edge_index` for one graph and :func:`batch` to join several.
    """

    nodes: Tensor | None
    edges: Tensor | None
    globals: Tensor | None
    senders: Tensor
    receivers: Tensor
    n_node: Tensor
    n_edge: Tensor

    def __post_init__(self) -> None:
        _check_count_vector("n_node", self.n_node)
        _check_count_vector("n_edge", self.n_edge)
        if self.n_node.numel() != self.n_edge.numel():
            raise ValueError(
                f"GraphsTuple: n_node and n_edge must both have one entry per graph, got "
                f"{self.n_node.numel()} and {self.n_edge.numel()}"
            )
        num_nodes, num_edges = int(self.n_node.sum()), int(self.n_edge.sum())
        for name in ("senders", "receivers"):
            index = getattr(self, name)
            if not isinstance(index, Tensor):
                raise TypeError(
                    f"GraphsTuple: {name} must be a 1-D integer tensor [E], got {type(index).__name__}"
                )
            if index.dim() != 1:
                raise ValueError(f"GraphsTuple: {name} must be 1-D [E], got shape {tuple(index.shape)}")
            if index.dtype not in (torch.int64, torch.int32):
                raise TypeError(f"GraphsTuple: {name} must be an int64 or int32 tensor, got {index.dtype}")
            if index.numel() != num_edges:
                raise ValueError(
                    f"GraphsTuple: {name} must have one entry per edge (n_edge sums to {num_edges}), "
                    f"got {index.numel()}"
                )
            if index.numel():
                low, high = int(index.min()), int(index.max())
                if low < 0 or high >= num_nodes:
                    raise ValueError(
                        f"GraphsTuple: {name} must index nodes in [0, {num_nodes}) (n_node sums to {num_nodes}), "
                        f"got values in [{low}, {high}]"
                    )
        self._check_features(num_nodes, num_edges)
        device = self.n_node.device
        for name in ("n_edge", "senders", "receivers") + ATTRIBUTES:
            value = getattr(self, name)
            if value is not None and value.device != device:
                raise ValueError(
                    f"GraphsTuple: {name} must be on n_node's device ({device}), got {value.device}"
                )
        if num_edges:
            # An edge may only join two nodes of its own graph (the graphs of a batch are disjoint).
            edge_graph = self.edge_graph_index()
            node_graph = self.node_graph_index()
            for name in ("senders", "receivers"):
                wrong = node_graph.index_select(0, getattr(self, name).long()) != edge_graph
                if bool(wrong.any()):
                    k = int(wrong.nonzero()[0, 0])
                    raise ValueError(
                        f"GraphsTuple: {name} must point into the edge's own graph; edge {k} belongs to graph "
                        f"{int(edge_graph[k])} but its {name[:-1]} {int(getattr(self, name)[k])} is a node of graph "
                        f"{int(node_graph[getattr(self, name)[k].long()])}"
                    )

    def _check_features(self, num_nodes: int, num_edges: int) -> None:
        for name, rows in (("nodes", num_nodes), ("edges", num_edges), ("globals", self.num_graphs)):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"GraphsTuple: {name} must be a torch.Tensor or None, got {type(value).__name__}"
                )
            if value.dim() != 2:
                raise ValueError(
                    f"GraphsTuple: {name} must be 2-D [rows, features], got shape {tuple(value.shape)}"
                )
            if not value.is_floating_point():
                raise TypeError(f"GraphsTuple: {name} must be a floating-point tensor, got {value.dtype}")
            if value.size(0) != rows:
                raise ValueError(f"GraphsTuple: {name} must have {rows} rows, got {value.size(0)}")

    # ------------------------------------------------------------------ construction and views
    @classmethod
    def from_edge_index(
        cls,
        nodes: Tensor | None,
        edge_index: Tensor,
        edges: Tensor | None = None,
        globals: Tensor | None = None,
        num_nodes: int | None = None,
    ) -> GraphsTuple:
        """One graph from node attributes ``[N, F_v]``, ``edge_index`` ``[2, E]`` (row 0 sender, row 1
        receiver), optional edge attributes ``[E, F_e]`` and global ``[F_u]`` or ``[1, F_u]``.

        ``num_nodes`` is needed only when ``nodes`` is ``None``.
        """
        if not isinstance(edge_index, Tensor):
            raise TypeError(f"edge_index must be a torch.Tensor [2, E], got {type(edge_index).__name__}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(
                f"edge_index must have shape [2, E] (senders; receivers), got {tuple(edge_index.shape)}"
            )
        if nodes is None and num_nodes is None:
            raise ValueError("num_nodes must be given when nodes is None")
        if nodes is not None and not isinstance(nodes, Tensor):
            raise TypeError(f"nodes must be a torch.Tensor [N, F_v] or None, got {type(nodes).__name__}")
        count = int(nodes.size(0)) if nodes is not None else int(num_nodes)  # type: ignore[arg-type]
        if nodes is not None and num_nodes is not None and num_nodes != count:
            raise ValueError(f"num_nodes must equal nodes.size(0) ({count}), got {num_nodes}")
        if globals is not None and isinstance(globals, Tensor) and globals.dim() == 1:
            globals = globals.unsqueeze(0)
        device = edge_index.device
        return cls(
            nodes=nodes,
            edges=edges,
            globals=globals,
            senders=edge_index[0],
            receivers=edge_index[1],
            n_node=torch.tensor([count], device=device),
            n_edge=torch.tensor([edge_index.size(1)], device=device),
        )

    @property
    def num_graphs(self) -> int:
        return int(self.n_node.numel())

    @property
    def num_nodes(self) -> int:
        return int(self.n_node.sum())

    @property
    def num_edges(self) -> int:
        return int(self.n_edge.sum())

    @property
    def edge_index(self) -> Tensor:
        """``[2, E]``: row 0 the senders, row 1 the receivers (the convention of :mod:`aicanon.graphs`)."""
        return torch.stack([self.senders, self.receivers])

    def node_graph_index(self) -> Tensor:
        """``[N]``: the graph each node belongs to (PyG's ``batch`` vector)."""
        return torch.repeat_interleave(
            torch.arange(self.num_graphs, device=self.n_node.device), self.n_node.long()
        )

    def edge_graph_index(self) -> Tensor:
        """``[E]``: the graph each edge belongs to."""
        return torch.repeat_interleave(
            torch.arange(self.num_graphs, device=self.n_edge.device), self.n_edge.long()
        )

    def replace(self, **changes: Tensor | None) -> GraphsTuple:
        """A copy with some fields replaced (checked again)."""
        return dataclasses.replace(self, **changes)

    def _with_features(
        self, nodes: Tensor | None, edges: Tensor | None, globals: Tensor | None
    ) -> GraphsTuple:
        # Internal fast path for block outputs (GNBlock in aicanon.graphs.graph_networks calls it, as
        # does concat_features): the structure was checked when ``self`` was built, only the new
        # attribute tensors need their shapes checked (no device synchronisation).
        new = object.__new__(GraphsTuple)
        for name, value in (
            ("nodes", nodes),
            ("edges", edges),
            ("globals", globals),
            ("senders", self.senders),
            ("receivers", self.receivers),
            ("n_node", self.n_node),
            ("n_edge", self.n_edge),
        ):
            object.__setattr__(new, name, value)
        new._check_features(self.num_nodes, self.num_edges)
        return new

    def to(self, device: torch.device | str) -> GraphsTuple:
        """The same graphs on ``device``."""
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return GraphsTuple(**{k: (v.to(device) if v is not None else None) for k, v in moved.items()})

    def unbatch(self) -> list[GraphsTuple]:
        """Split into ``B`` one-graph tuples, each with its own node indices starting at 0."""
        node_counts = self.n_node.tolist()
        edge_counts = self.n_edge.tolist()
        node_offsets = [0]
        for count in node_counts[:-1]:
            node_offsets.append(node_offsets[-1] + count)
        split_nodes = self.nodes.split(node_counts) if self.nodes is not None else [None] * self.num_graphs
        split_edges = self.edges.split(edge_counts) if self.edges is not None else [None] * self.num_graphs
        split_senders = self.senders.split(edge_counts)
        split_receivers = self.receivers.split(edge_counts)
        graphs = []
        for g in range(self.num_graphs):
            graphs.append(
                GraphsTuple(
                    nodes=split_nodes[g],
                    edges=split_edges[g],
                    globals=self.globals[g : g + 1] if self.globals is not None else None,
                    senders=split_senders[g] - node_offsets[g],
                    receivers=split_receivers[g] - node_offsets[g],
                    n_node=self.n_node[g : g + 1],
                    n_edge=self.n_edge[g : g + 1],
                )
            )
        return graphs


def batch(graphs: Sequence[GraphsTuple]) -> GraphsTuple:
    """Join graphs (each a :class:`GraphsTuple` of one or more graphs) into one tuple.

    Node and edge attributes are concatenated in order, sender/receiver indices are shifted by the
    number of nodes before each graph, and ``n_node``/``n_edge``/``globals`` are concatenated. Every
    graph must carry the same attributes (all or none have ``nodes``, ...) with the same widths.
    """
    if isinstance(graphs, GraphsTuple) or not isinstance(graphs, Sequence):
        raise TypeError(f"graphs must be a sequence of GraphsTuple, got {type(graphs).__name__}")
    if len(graphs) == 0:
        raise ValueError("graphs must hold at least one GraphsTuple, got an empty sequence")
    for i, graph in enumerate(graphs):
        if not isinstance(graph, GraphsTuple):
            raise TypeError(f"graphs[{i}] must be a GraphsTuple, got {type(graph).__name__}")
    fields: dict[str, Tensor | None] = {}
    for name in ATTRIBUTES:
        values = [getattr(g, name) for g in graphs]
        present = [v is not None for v in values]
        if any(present) and not all(present):
            raise ValueError(
                f"graphs must all have {name} or all lack them; graphs {[i for i, p in enumerate(present) if not p]} lack them"
            )
        if all(present):
            widths = {v.size(1) for v in values}  # type: ignore[union-attr]
            if len(widths) > 1:
                raise ValueError(f"graphs must all have the same {name} width, got widths {sorted(widths)}")
            fields[name] = torch.cat(values)  # type: ignore[arg-type]
        else:
            fields[name] = None
    offset = 0
    senders, receivers = [], []
    for graph in graphs:
        senders.append(graph.senders.long() + offset)
        receivers.append(graph.receivers.long() + offset)
        offset += graph.num_nodes
    return GraphsTuple(
        nodes=fields["nodes"],
        edges=fields["edges"],
        globals=fields["globals"],
        senders=torch.cat(senders),
        receivers=torch.cat(receivers),
        n_node=torch.cat([g.n_node.long() for g in graphs]),
        n_edge=torch.cat([g.n_edge.long() for g in graphs]),
    )


def concat_features(graphs: Sequence[GraphsTuple]) -> GraphsTuple:
    """Concatenate the attributes of graphs with the same structure along the feature dimension.

    This is how a recurrent block sees its input beside its hidden state (Figure 4b) and how the
    encode-process-decode core sees the encoded input beside its previous output (Figure 6c). An
    attribute absent (``None``) in every graph stays absent; present in some only is an error.
    """
    if isinstance(graphs, GraphsTuple) or not isinstance(graphs, Sequence):
        raise TypeError(f"graphs must be a sequence of GraphsTuple, got {type(graphs).__name__}")
    if len(graphs) == 0:
        raise ValueError("graphs must hold at least one GraphsTuple, got an empty sequence")
    for i, graph in enumerate(graphs):
        if not isinstance(graph, GraphsTuple):
            raise TypeError(f"graphs[{i}] must be a GraphsTuple, got {type(graph).__name__}")
    first = graphs[0]
    for i, graph in enumerate(graphs[1:], start=1):
        same = (
            graph.senders.shape == first.senders.shape
            and torch.equal(graph.n_node, first.n_node)
            and torch.equal(graph.n_edge, first.n_edge)
            and torch.equal(graph.senders, first.senders)
            and torch.equal(graph.receivers, first.receivers)
        )
        if not same:
            raise ValueError(
                f"graphs must share one structure (senders, receivers, n_node, n_edge); graphs[{i}] differs from graphs[0]"
            )
    features: dict[str, Tensor | None] = {}
    for name in ATTRIBUTES:
        values = [getattr(g, name) for g in graphs]
        present = [v is not None for v in values]
        if any(present) and not all(present):
            raise ValueError(f"graphs must all have {name} or all lack them to concatenate features")
        features[name] = torch.cat(values, dim=1) if all(present) else None  # type: ignore[arg-type]
    return first._with_features(features["nodes"], features["edges"], features["globals"])
