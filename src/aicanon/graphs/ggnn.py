r"""Gated Graph Sequence Neural Networks (Li, Tarlow, Brockschmidt, Zemel; ICLR 2016, arXiv 1511.05493).

A gated graph neural network (GG-NN, Section 3) keeps a state ``h_v`` of ``D`` numbers per node and
updates all of them ``T`` times with a GRU whose input is a message from the node's neighbours:

* Eq. (1):  ``h_v^(1) = [x_v^T, 0]^T``: the node annotations ``x_v`` (``F <= D`` numbers, e.g. one
  bit marking the node a question is about) padded with zeros to the state size;
* Eq. (2):  ``a_v^(t) = A_v:^T [h_1^(t-1)T ... h_|V|^(t-1)T]^T + b``, where ``A = [A^(out), A^(in)]``
  holds one ``D x D`` block per edge type and direction (Figure 1), so that
  ``a_v = [sum_{(v -> u) of type k} W_out^k h_u ; sum_{(u -> v) of type k} W_in^k h_u] + b``
  is ``2D`` numbers: what arrives along incoming edges and what arrives against outgoing edges,
  each through the weights of its edge type;
* Eq. (3):  ``z_v^t = sigma(W^z a_v^(t) + U^z h_v^(t-1))`` (update gate);
* Eq. (4):  ``r_v^t = sigma(W^r a_v^(t) + U^r h_v^(t-1))`` (reset gate);
* Eq. (5):  ``h~_v^t = tanh(W a_v^(t) + U (r_v^t . h_v^(t-1)))``;
* Eq. (6):  ``h_v^t = (1 - z_v^t) . h_v^(t-1) + z_v^t . h~_v^t``.

The weights are shared by every step ``t`` (it is a recurrent network unrolled ``T`` times).

Output models (Section 3.4): per-node outputs ``o_v = g(h_v^(T), x_v)``; *node selection* scores
each node with ``g`` and takes a softmax over the nodes of each graph; a *graph-level*
representation is the soft attention of

* Eq. (7):  ``h_G = tanh(sum_v sigma(i(h_v^(T), x_v)) . tanh(j(h_v^(T), x_v)))``,

``i`` and ``j`` networks on the concatenation ``[h_v^(T), x_v]``; ``sigma(i(.))`` decides which nodes
matter to the graph-level task.

GGS-NN (Section 4) produces a sequence ``o^(1) .. o^(K)``. Step ``k`` has node annotations
``X^(k)``; an output network ``F_o`` predicts ``o^(k)`` from ``X^(k)`` and a network ``F_X`` predicts
the next annotations from ``X^(k)``; each is a GG-NN (propagation initialised from ``X^(k)`` by
Eq. 1, then an output model), with

* Eq. (8):  ``x_v^(k+1) = sigma(j(h_v^(k,T), x_v^(k)))``.

``F_o`` and ``F_X`` have their own propagation models, or share one (the paper's code does so for
bAbI task 19); the parameters are the same at every output step ``k``. With observed intermediate
annotations (Section 4, "training with strong supervision") each step starts from the given
``X^(k)`` and ``F_X`` is trained to predict ``X^(k+1)``.

Edges are ``edge_index`` ``[2, E]`` (row 0 source, row 1 target), typed by ``edge_type`` ``[E]`` in
``[0, num_edge_types)``; several graphs are batched as one disjoint graph with ``batch`` ``[N]``
naming each node's graph. Messages are gathered per edge and summed with one ``index_add_``
(:mod:`aicanon.graphs.scatter`): a step costs ``O(N D^2 K + E D)``, never an ``N x N`` matrix.

Departures from the paper and its code (github.com/yujiali/ggnn), and why:

* The update gate is written as in ``torch.nn.GRUCell``: ``h^t = z . h^(t-1) + (1 - z) . h~^t``, i.e.
  Eq. (6) with ``z`` standing for the paper's ``1 - z``. Since ``1 - sigma(u) = sigma(-u)`` the two
  are the same family of functions (negate ``W^z``, ``U^z`` and the bias); we keep torch's layout so
  the GRU weights load into ``GRUCell`` unchanged.
* Eq. (2)'s bias ``b`` is not a separate parameter: ``W^z b``, ``W^r b``, ``W b`` are constants that
  the biases of Eq. (3)-(5) (which the paper's code has, and we have) absorb exactly.
* The paper's code gives every edge type's message network its own bias, added once per edge (so a
  node's input carries its degree per edge type and direction); Eq. (2) has one bias. We follow
  Eq. (2) by default; ``message_bias=True`` is the code's version.
* ``reset_after=True`` applies the reset gate after the recurrent matrix, ``r . (U h + b)``, as
  ``torch.nn.GRUCell``, cuDNN and PyTorch Geometric do, instead of Eq. (5)'s ``U (r . h)``.
  The default is the paper's Eq. (5).
* ``directed_weights=False`` passes messages only along the edges, source to target, with one
  matrix per edge type (``a_v`` has ``D`` numbers): the special case PyTorch Geometric's
  ``GatedGraphConv`` implements. Add reverse edges to let messages flow both ways.
* ``weight_per_step=True`` gives every propagation step its own message matrices (PyTorch
  Geometric's layout); the paper ties them across steps (the default).
* The node-selection network ``g`` is an MLP with one tanh hidden layer on ``[h_v, x_v]``; the
  paper's code also multiplies the score by a sigmoid gate of ``[h_v, x_v]``, which the paper does
  not describe, and which we omit.
* Eq. (7) is followed by a classifier (one tanh hidden layer, then linear logits), as in the paper's
  code; the paper leaves the map from ``h_G`` to the output unspecified.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.inputs import check_graph
from aicanon.graphs.scatter import scatter_max, scatter_sum

__all__ = [
    "GGNN",
    "GGSNN",
    "AnnotationOutput",
    "GatedGraphConv",
    "GraphAttentionReadout",
    "NodeSelectionOutput",
    "node_log_softmax",
]


def _check_edge_type(edge_type: Tensor | None, edge_index: Tensor, num_edge_types: int) -> Tensor:
    """``edge_type`` ``[E]`` in ``[0, num_edge_types)``; all zeros when omitted with one edge type."""
    num_edges = edge_index.size(1)
    if edge_type is None:
        if num_edge_types != 1:
            raise ValueError(f"edge_type must be given when num_edge_types={num_edge_types} > 1, got None")
        return torch.zeros(num_edges, dtype=torch.long, device=edge_index.device)
    if not isinstance(edge_type, Tensor):
        raise TypeError(f"edge_type must be a torch.Tensor [E], got {type(edge_type).__name__}")
    if edge_type.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"edge_type must be an int64 (or int32) tensor, got {edge_type.dtype}")
    if edge_type.dim() != 1 or edge_type.numel() != num_edges:
        raise ValueError(f"edge_type must have shape [E={num_edges}], got {tuple(edge_type.shape)}")
    if edge_type.device != edge_index.device:
        raise ValueError(
            f"edge_type must be on edge_index's device ({edge_index.device}), got {edge_type.device}"
        )
    if num_edges > 0:
        low, high = int(edge_type.min()), int(edge_type.max())
        if low < 0 or high >= num_edge_types:
            raise ValueError(
                f"edge_type values must be relation ids in [0, num_edge_types={num_edge_types}), "
                f"got values in [{low}, {high}]"
            )
    return edge_type.long()


def _check_batch(
    batch: Tensor | None, num_nodes: int, num_graphs: int | None, device: torch.device
) -> tuple[Tensor, int]:
    """``batch`` ``[N]`` graph ids in ``[0, num_graphs)``; one graph when omitted."""
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
        return batch, 1 if num_graphs is None else check_int("num_graphs", num_graphs)
    if not isinstance(batch, Tensor):
        raise TypeError(f"batch must be a torch.Tensor [N] of graph ids, got {type(batch).__name__}")
    if batch.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"batch must be an int64 (or int32) tensor, got {batch.dtype}")
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must have shape [N={num_nodes}], got {tuple(batch.shape)}")
    if batch.device != device:
        raise ValueError(f"batch must be on the node features' device ({device}), got {batch.device}")
    batch = batch.long()
    low = int(batch.min()) if num_nodes else 0
    high = int(batch.max()) if num_nodes else -1
    if num_graphs is None:
        num_graphs = high + 1
    num_graphs = check_int("num_graphs", num_graphs) if num_nodes else int(num_graphs)
    if low < 0 or high >= num_graphs:
        raise ValueError(
            f"batch values must be graph ids in [0, num_graphs={num_graphs}), got values in [{low}, {high}]"
        )
    return batch, num_graphs


class GatedGraphConv(nn.Module):
    r"""The GG-NN propagation model, Eq. (1)-(6): ``T`` GRU steps on messages along typed edges.

    ``h^(1) = [x, 0]`` (Eq. 1); then ``T`` times ``a_v = [sum_{u -> v} h_u W_in^{k(u,v)} ;
    sum_{v -> u} h_u W_out^{k(v,u)}]`` (Eq. 2) and ``h_v = GRU(a_v, h_v)`` (Eq. 3-6).

    Args:
        out_features: ``D``, the state size; annotations have at most ``D`` features.
        num_layers: ``T``, the number of propagation steps (0 returns Eq. 1's padded annotations).
        num_edge_types: the number of edge types (relations); each has its own message matrices.
        directed_weights: the paper's ``A = [A^(out), A^(in)]`` (True): separate matrices for messages
            along an edge (to its target) and against it (to its source), ``a_v`` of ``2D`` numbers.
            False: messages only along the edges with one matrix per type (PyG's special case).
        weight_per_step: one set of message matrices per step (PyG) instead of one shared set (paper).
        reset_after: ``r . (U h + b)`` as ``torch.nn.GRUCell`` instead of Eq. (5)'s ``U (r . h)``.
        bias: learned biases in the GRU (Eq. 3-5; they absorb Eq. 2's ``b``).
        message_bias: a bias per edge type and direction added to every message (the paper's code):
            node ``v`` then receives ``sum_k deg_k(v) b_k``, its typed degrees, beside Eq. (2)'s sum.

    Parameters: ``weight`` ``[S, K, D, D]`` (``S`` = ``T`` if ``weight_per_step`` else 1; ``K`` =
    ``num_edge_types`` blocks for messages along edges, followed, when ``directed_weights``, by
    ``num_edge_types`` blocks for messages against them; a message is ``h_u @ weight[s, k]``), and the
    GRU's ``weight_ih`` ``[3D, D_a]``, ``weight_hh`` ``[3D, D]``, ``bias_ih``, ``bias_hh`` ``[3D]`` with
    rows ordered (reset, update, candidate) as ``torch.nn.GRUCell`` (``D_a`` = ``2D`` or ``D``).
    """

    def __init__(
        self,
        out_features: int,
        num_layers: int,
        num_edge_types: int = 1,
        directed_weights: bool = True,
        weight_per_step: bool = False,
        reset_after: bool = False,
        bias: bool = True,
        message_bias: bool = False,
    ) -> None:
        super().__init__()
        self.out_features = check_int("out_features", out_features)
        self.num_layers = check_int("num_layers", num_layers, minimum=0)
        self.num_edge_types = check_int("num_edge_types", num_edge_types)
        self.directed_weights, self.weight_per_step = bool(directed_weights), bool(weight_per_step)
        self.reset_after = bool(reset_after)
        directions = 2 if self.directed_weights else 1
        steps = max(self.num_layers, 1) if self.weight_per_step else 1
        d = self.out_features
        self.weight = nn.Parameter(torch.empty(steps, directions * self.num_edge_types, d, d))
        self.weight_ih = nn.Parameter(torch.empty(3 * d, directions * d))
        self.weight_hh = nn.Parameter(torch.empty(3 * d, d))
        self.bias_ih = nn.Parameter(torch.empty(3 * d)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * d)) if bias else None
        # The paper's code: every edge type and direction's message network has a bias, added per edge.
        self.message_bias = (
            nn.Parameter(torch.empty(steps, directions * self.num_edge_types, d)) if message_bias else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``[-1/sqrt(D), 1/sqrt(D)]`` for every parameter, as ``torch.nn.GRUCell`` and PyG
        (and ``nn.Linear`` in the paper's Torch code) initialise them."""
        bound = 1.0 / math.sqrt(self.out_features)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def _gru(self, a: Tensor, h: Tensor) -> Tensor:
        """Eq. (3)-(6) for every node at once (gate rows ordered reset, update, candidate)."""
        if self.reset_after:
            # torch's fused GRU cell: n = tanh(W_n a + b_in + r . (U_n h + b_hn)).
            return torch.gru_cell(a, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        d = self.out_features
        gates_input = F.linear(a, self.weight_ih, self.bias_ih)
        bias_hh = self.bias_hh
        gates_hidden = F.linear(h, self.weight_hh[: 2 * d], None if bias_hh is None else bias_hh[: 2 * d])
        reset, update = torch.sigmoid(gates_input[:, : 2 * d] + gates_hidden).chunk(2, dim=1)
        # Eq. (5): the reset gate scales the previous state before the recurrent matrix U.
        recurrent = F.linear(
            reset * h, self.weight_hh[2 * d :], None if bias_hh is None else bias_hh[2 * d :]
        )
        candidate = torch.tanh(gates_input[:, 2 * d :] + recurrent)
        # Eq. (6) with torch's gate convention (see the module docstring): z keeps the old state.
        return candidate + update * (h - candidate)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor | None = None) -> Tensor:
        """Node states ``h^(T)`` ``[N, D]`` for annotations ``x`` ``[N, F <= D]``.

        Args:
            x: node annotations ``[N, F]``, floating point, ``F <= out_features``.
            edge_index: ``[2, E]`` integer node indices, row 0 source, row 1 target.
            edge_type: ``[E]`` integer edge types in ``[0, num_edge_types)``; may be omitted when
                ``num_edge_types == 1``.
        """
        check_graph(x, edge_index)
        if x.size(1) > self.out_features:
            raise ValueError(
                f"x must have at most out_features={self.out_features} columns (Eq. 1 pads the annotations "
                f"with zeros to the state size), got {x.size(1)}"
            )
        # One untyped edge set (PyG's case) needs no type ids at all.
        untyped = edge_type is None and self.num_edge_types == 1
        if not untyped:
            edge_type = _check_edge_type(edge_type, edge_index, self.num_edge_types)
        num_nodes, d = x.size(0), self.out_features
        # Eq. (1): the annotations padded with zeros into the initial state.
        h = F.pad(x, (0, d - x.size(1))) if x.size(1) < d else x
        if self.num_layers == 0:
            return h
        source, target = edge_index[0].long(), edge_index[1].long()
        blocks, directions = self.weight.size(1), 2 if self.directed_weights else 1
        types = self.num_edge_types
        # Eq. (2) as one gather and one scatter per step: every node's state goes through every
        # block (h @ [W_1 ... W_K], [N, K D] viewed as [N K, D]); edge e of type k from u to v
        # reads row u K + k into slot (v, incoming) and, with directed weights, row
        # v K + types + k into slot (u, outgoing).
        if untyped:
            rows, slots = (source, target) if blocks == 1 else (source * blocks, target * directions)
            if self.directed_weights:
                rows = torch.cat([rows, target * blocks + types])
                slots = torch.cat([slots, source * directions + 1])
        else:
            rows = source * blocks + edge_type
            slots = target * directions
            if self.directed_weights:
                rows = torch.cat([rows, target * blocks + types + edge_type])
                slots = torch.cat([slots, source * directions + 1])
        for step in range(self.num_layers):
            weight = self.weight[step if self.weight_per_step else 0]  # [K, D, D]
            stacked = weight[0] if blocks == 1 else weight.permute(1, 0, 2).reshape(d, blocks * d)
            transformed = torch.matmul(h, stacked)
            if self.message_bias is not None:
                transformed = transformed + self.message_bias[step if self.weight_per_step else 0].reshape(-1)
            messages = transformed.reshape(num_nodes * blocks, d).index_select(0, rows)
            a = scatter_sum(messages, slots, num_nodes * directions, check=False).view(
                num_nodes, directions * d
            )
            h = self._gru(a, h)
        return h

    def extra_repr(self) -> str:
        return (
            f"{self.out_features}, num_layers={self.num_layers}, num_edge_types={self.num_edge_types}, "
            f"directed_weights={self.directed_weights}, weight_per_step={self.weight_per_step}, "
            f"reset_after={self.reset_after}, message_bias={self.message_bias is not None}"
        )


def _check_states(h: Tensor, x: Tensor, state_features: int, annotation_features: int) -> None:
    for name, value, width in (("h", h, state_features), ("x", x, annotation_features)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
        if value.dim() != 2 or value.size(1) != width:
            raise ValueError(f"{name} must have shape [N, {width}], got {tuple(value.shape)}")
    if h.size(0) != x.size(0):
        raise ValueError(f"h and x must have one row per node, got {h.size(0)} and {x.size(0)} rows")


class _OutputNetwork(nn.Module):
    """An MLP on ``[h_v, x_v]``: ``tanh`` hidden layer(s), then a linear layer (the paper's code)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.Tanh()]
            width = size
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class NodeSelectionOutput(nn.Module):
    """Section 3.4, node selection: a score ``o_v = g(h_v^(T), x_v)`` per node.

    ``g`` is an MLP with one tanh hidden layer of ``hidden_features`` (default ``state_features``).
    Turn the scores into per-graph probabilities with :func:`node_log_softmax`.
    """

    def __init__(
        self, state_features: int, annotation_features: int, hidden_features: int | None = None
    ) -> None:
        super().__init__()
        self.state_features = check_int("state_features", state_features)
        self.annotation_features = check_int("annotation_features", annotation_features)
        hidden = check_int("hidden_features", hidden_features or state_features)
        self.g = _OutputNetwork(state_features + annotation_features, (hidden,), 1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """Scores ``[N]`` for states ``h`` ``[N, D]`` and annotations ``x`` ``[N, F]``."""
        _check_states(h, x, self.state_features, self.annotation_features)
        return self.g(torch.cat([h, x], dim=1)).squeeze(1)


def node_log_softmax(scores: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
    """``log softmax`` of node ``scores`` ``[N]`` over the nodes of each graph (Section 3.4).

    ``batch`` ``[N]`` gives each node's graph (all one graph when omitted). Stable: the graph's
    maximum score is subtracted before ``exp``.
    """
    if not isinstance(scores, Tensor) or not scores.is_floating_point() or scores.dim() != 1:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a 1-D floating-point tensor [N], got {shape}")
    batch, num_graphs = _check_batch(batch, scores.numel(), num_graphs, scores.device)
    group_max = scatter_max(scores.detach(), batch, num_graphs, check=False)
    shifted = scores - group_max.index_select(0, batch)
    log_normaliser = scatter_sum(shifted.exp(), batch, num_graphs, check=False).log()
    return shifted - log_normaliser.index_select(0, batch)


class GraphAttentionReadout(nn.Module):
    """Eq. (7): ``h_G = tanh(sum_v sigma(i([h_v, x_v])) . tanh(j([h_v, x_v])))``, one row per graph.

    ``i`` and ``j`` are linear maps from ``[h_v, x_v]`` to ``out_features`` (computed as one layer
    of ``2 out_features`` outputs, as the paper's code does). The sum makes ``h_G`` independent of the
    order of the nodes.
    """

    def __init__(self, state_features: int, annotation_features: int, out_features: int) -> None:
        super().__init__()
        self.state_features = check_int("state_features", state_features)
        self.annotation_features = check_int("annotation_features", annotation_features)
        self.out_features = check_int("out_features", out_features)
        self.attention = nn.Linear(state_features + annotation_features, 2 * out_features)

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``h_G`` ``[B, out_features]`` (and the gates ``sigma(i(.))`` ``[N, out_features]`` if asked)."""
        _check_states(h, x, self.state_features, self.annotation_features)
        batch, num_graphs = _check_batch(batch, h.size(0), num_graphs, h.device)
        gate_logits, values = self.attention(torch.cat([h, x], dim=1)).chunk(2, dim=1)
        gate = torch.sigmoid(gate_logits)  # which nodes matter to the graph-level output
        h_graph = torch.tanh(scatter_sum(gate * torch.tanh(values), batch, num_graphs, check=False))
        return (h_graph, gate) if return_attention else h_graph


class AnnotationOutput(nn.Module):
    """Eq. (8): the next annotations ``x_v^(k+1) = sigma(j([h_v^(k,T), x_v^(k)]))``, ``[N, F]`` in (0, 1).

    ``j`` is an MLP with one tanh hidden layer (``hidden_features``, default ``state_features``).
    :meth:`logits` returns ``j(.)`` before the sigmoid, for a stable binary cross-entropy.
    """

    def __init__(
        self, state_features: int, annotation_features: int, hidden_features: int | None = None
    ) -> None:
        super().__init__()
        self.state_features = check_int("state_features", state_features)
        self.annotation_features = check_int("annotation_features", annotation_features)
        hidden = check_int("hidden_features", hidden_features or state_features)
        self.j = _OutputNetwork(state_features + annotation_features, (hidden,), annotation_features)

    def logits(self, h: Tensor, x: Tensor) -> Tensor:
        _check_states(h, x, self.state_features, self.annotation_features)
        return self.j(torch.cat([h, x], dim=1))

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(h, x))


_OUTPUTS = ("node_selection", "graph")


class _OutputHead(nn.Module):
    """Node scores ``[N]`` (node selection) or graph logits ``[B, C]`` (Eq. 7 then a classifier)."""

    def __init__(
        self, output: str, state_features: int, annotation_features: int, num_classes: int | None
    ) -> None:
        super().__init__()
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        self.output = output
        if output == "node_selection":
            self.select = NodeSelectionOutput(state_features, annotation_features)
        else:
            if num_classes is None:
                raise ValueError("num_classes must be given for output='graph', got None")
            check_int("num_classes", num_classes)
            self.readout = GraphAttentionReadout(state_features, annotation_features, state_features)
            self.classifier = _OutputNetwork(state_features, (state_features,), num_classes)

    def forward(self, h: Tensor, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        if self.output == "node_selection":
            return self.select(h, x)
        return self.classifier(self.readout(h, x, batch, num_graphs))


def _check_widths(annotation_features: int, state_features: int) -> int:
    """Eq. 1 pads the annotations into the state, so the state must be at least as wide."""
    check_int("annotation_features", annotation_features)
    if state_features < annotation_features:
        raise ValueError(
            f"state_features must be >= annotation_features={annotation_features} (Eq. 1), got {state_features}"
        )
    return annotation_features


class GGNN(nn.Module):
    """A GG-NN (Section 3): the propagation model of Eq. (1)-(6) and one output model (Section 3.4).

    ``output="node_selection"`` returns one score per node (``[N]``; softmax them per graph with
    :func:`node_log_softmax`); ``output="graph"`` returns logits ``[B, num_classes]`` from Eq. (7)'s
    ``h_G`` through a classifier with one tanh hidden layer.
    """

    def __init__(
        self,
        annotation_features: int,
        state_features: int,
        num_edge_types: int,
        num_steps: int = 5,
        output: str = "node_selection",
        num_classes: int | None = None,
        directed_weights: bool = True,
        message_bias: bool = False,
    ) -> None:
        super().__init__()
        self.annotation_features = _check_widths(annotation_features, state_features)
        self.propagation = GatedGraphConv(
            state_features,
            num_steps,
            num_edge_types,
            directed_weights=directed_weights,
            message_bias=message_bias,
        )
        self.head = _OutputHead(output, state_features, annotation_features, num_classes)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        check_graph(x, edge_index, self.annotation_features)
        batch, num_graphs = _check_batch(batch, x.size(0), num_graphs, x.device)
        h = self.propagation(x, edge_index, edge_type)
        return self.head(h, x, batch, num_graphs)


class GGSNN(nn.Module):
    """GGS-NN (Section 4): a sequence of ``K`` outputs from alternating propagation and output steps.

    At step ``k`` the annotations ``X^(k)`` initialise the propagation (Eq. 1); ``F_o`` gives the
    output ``o^(k)`` (node scores ``[N]`` or graph logits ``[B, C]``) and ``F_X`` the next
    annotations by Eq. (8). ``share_propagation=True`` runs one propagation model whose final states
    feed both (the paper's code for bAbI task 19); False gives ``F_o`` and ``F_X`` propagation models
    of their own (Section 4's description). Parameters are the same at every step ``k``.
    """

    def __init__(
        self,
        annotation_features: int,
        state_features: int,
        num_edge_types: int,
        num_steps: int = 5,
        output: str = "graph",
        num_classes: int | None = None,
        share_propagation: bool = True,
        directed_weights: bool = True,
        message_bias: bool = False,
    ) -> None:
        super().__init__()
        self.annotation_features = _check_widths(annotation_features, state_features)
        self.share_propagation = bool(share_propagation)
        propagation = {"directed_weights": directed_weights, "message_bias": message_bias}
        self.output_propagation = GatedGraphConv(state_features, num_steps, num_edge_types, **propagation)
        self.annotation_propagation = (
            None
            if self.share_propagation
            else GatedGraphConv(state_features, num_steps, num_edge_types, **propagation)
        )
        self.head = _OutputHead(output, state_features, annotation_features, num_classes)
        self.annotation_output = AnnotationOutput(state_features, annotation_features)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        num_outputs: int,
        edge_type: Tensor | None = None,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
        observed_annotations: list[Tensor] | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Outputs ``[o^(1) .. o^(K)]`` and annotation logits ``[j^(1) .. j^(K-1)]`` (Eq. 8 before sigma).

        Args:
            x: the first annotations ``X^(1)`` ``[N, F]``.
            num_outputs: ``K``, the length of the output sequence.
            observed_annotations: ``K - 1`` tensors ``X^(2) .. X^(K)`` ``[N, F]`` to start the later
                steps from (training with strong supervision); by default each step starts from
                the previous step's prediction ``sigma(j(.))``.
        """
        check_graph(x, edge_index, self.annotation_features)
        num_outputs = check_int("num_outputs", num_outputs)
        batch, num_graphs = _check_batch(batch, x.size(0), num_graphs, x.device)
        if observed_annotations is not None:
            if (
                not isinstance(observed_annotations, (list, tuple))
                or len(observed_annotations) != num_outputs - 1
            ):
                got = (
                    len(observed_annotations)
                    if isinstance(observed_annotations, (list, tuple))
                    else type(observed_annotations).__name__
                )
                raise ValueError(
                    f"observed_annotations must be a list of num_outputs - 1 = {num_outputs - 1} tensors, got {got}"
                )
            for index, value in enumerate(observed_annotations):
                if not isinstance(value, Tensor) or value.shape != x.shape:
                    shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                    raise ValueError(
                        f"observed_annotations[{index}] must have x's shape {tuple(x.shape)}, got {shape}"
                    )
        outputs: list[Tensor] = []
        annotation_logits: list[Tensor] = []
        annotations = x
        for k in range(num_outputs):
            h = self.output_propagation(annotations, edge_index, edge_type)
            outputs.append(self.head(h, annotations, batch, num_graphs))
            if k == num_outputs - 1:
                break
            h_x = (
                h
                if self.annotation_propagation is None
                else self.annotation_propagation(annotations, edge_index, edge_type)
            )
            logits = self.annotation_output.logits(h_x, annotations)  # Eq. (8) before the sigmoid
            annotation_logits.append(logits)
            annotations = torch.sigmoid(logits) if observed_annotations is None else observed_annotations[k]
        return outputs, annotation_logits
