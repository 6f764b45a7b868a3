r"""Graph networks (Battaglia et al., "Relational inductive biases, deep learning, and graph networks", 2018).

A graph is a 3-tuple ``G = (u, V, E)`` (Section 3.2.1): a global attribute ``u``, node attributes
``V = {v_i}`` and directed edges ``E = {(e_k, r_k, s_k)}`` with attribute ``e_k``, receiver ``r_k`` and
sender ``s_k``. A **GN block** (Section 3.2.2, Eq. 1, Algorithm 1) maps a graph to a graph with the
same structure through three update functions ``phi`` and three aggregations ``rho``::

    e'_k = phi^e(e_k, v_{r_k}, v_{s_k}, u)        ebar'_i = rho^{e->v}(E'_i)   (E'_i: edges with r_k = i)
    v'_i = phi^v(ebar'_i, v_i, u)                  ebar'  = rho^{e->u}(E')
    u'   = phi^u(ebar', vbar', u)                  vbar'  = rho^{v->u}(V')

computed in Algorithm 1's order: every edge, then every node (from its received edges), then the
global (from all updated edges and nodes). Each ``phi`` is one function shared by all edges (nodes),
and each ``rho`` is invariant to the order of its inputs and takes any number of them, which is what
makes a block permutation-equivariant in nodes and edges, permutation-invariant in the global, and
applicable to graphs of any size (Section 3.2.3, the relational inductive biases).

Section 4.2 ("Configurable within-block structure", Figure 4) gets the well-known architectures by
choosing which inputs each ``phi`` sees; they are presets of :class:`GNBlock`:

* :meth:`GNBlock.full` (Figure 4a): every input, ``phi`` = MLPs on the concatenated arguments
  (``NN_e([e_k, v_rk, v_sk, u])`` etc.), ``rho`` = elementwise sums (Section 4.2);
* :meth:`GNBlock.independent` (Figure 4b, graph-independent / independent recurrent block): each
  element updated from itself only, ``phi^e(e_k)``, ``phi^v(v_i)``, ``phi^u(u)``; the encoder and decoder
  of Figure 6 (a recurrent block concatenates its hidden state to the input, see
  :func:`concat_features`);
* :meth:`GNBlock.message_passing` (Figure 4c, MPNN of Gilmer et al. 2017, Section 4.2.1): message
  ``M(v_rk, v_sk, e_k)`` as ``phi^e``, summed per receiver, update ``U(ebar'_i, v_i)`` as ``phi^v``; no
  global input anywhere; an optional readout ``R(vbar')`` as ``phi^u``;
* :meth:`GNBlock.non_local` (Figure 4d, NLNN / self-attention, Section 4.2.2):
  ``phi^e = (a'_k, b'_k) = (exp(alpha(v_rk, v_sk)), beta(v_sk))``,
  ``rho^{e->v}(E'_i) = sum_k a'_k b'_k / sum_k a'_k`` (a softmax over each receiver's incoming edges),
  ``phi^v(ebar'_i, v_i, u) = f^v(ebar'_i)``;
* :meth:`GNBlock.relation_network` (Figure 4e, Section 4.2.3): ``phi^e = NN([v_rk, v_sk])``, summed over all edges,
  ``phi^u = NN(ebar')``; no node update;
* :meth:`GNBlock.deep_sets` (Figure 4f, Section 4.2.3): edges bypassed, ``phi^v = NN([v_i, u])``, summed over nodes,
  ``phi^u = NN(vbar')``.

A block reads and returns a :class:`~aicanon.graphs.graphs_tuple.GraphsTuple`, several graphs of
different sizes in one batch (the paper's "graphs tuple", Section 4.3; defined with :func:`batch` and
:func:`concat_features` in :mod:`aicanon.graphs.graphs_tuple`); the global aggregations
``rho^{e->u}`` and ``rho^{v->u}`` run per graph of the batch.

:class:`EncodeProcessDecode` is Section 4.3's Figure 6c: an independent encoder block, a core block
applied ``steps`` times to the concatenation of the encoded input and the previous core output, and an
independent decoder block, giving one output graph per step.

Departures from the paper, and why:

* The paper leaves ``rho`` open (sum, mean, max ...); we offer ``"sum"``, ``"mean"`` and ``"max"``
  (an empty set gives 0 for each), and the presets default to the sum, the choice of Section 4.2.
* When a block has no ``phi`` for a kind of element (``edge_model=None`` ...), that attribute passes
  through unchanged, as the identity update of Figure 4's partial blocks; the graph_nets library does
  the same.
* Non-local preset: the attention logit is the Transformer's scaled dot product
  ``(W_q v_r)^T (W_k v_s) / sqrt(d_k)`` with ``heads`` heads (Vaswani et al. 2017, one of the NLNN
  family of Section 4.2.2); the paper writes the unnormalised weight ``exp(NN_alpha(v_r)^T
  NN_alpha'(v_s))`` without the scale. The softmax subtracts each receiver's maximum logit first, which
  cancels in the ratio and prevents overflow. The block's output edges are the values ``b'_k`` (the
  weights ``a'_k`` are internal to ``rho^{e->v}``).
* ``mlp`` (the presets' ``NN``) is a ReLU multilayer perceptron with PyTorch's default ``nn.Linear``
  initialisation and an optional final LayerNorm (the graph_nets demos' choice for latent MLPs); the
  paper does not fix these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.graphs.graphs_tuple import ATTRIBUTES, GraphsTuple, concat_features
from aicanon.graphs.scatter import scatter_max, scatter_mean, scatter_softmax, scatter_sum

# The graph data (GraphsTuple, batch, concat_features) lives in aicanon.graphs.graphs_tuple, apart
# from the block that transforms it.
__all__ = [
    "AGGREGATIONS",
    "DotProductAttention",
    "EncodeProcessDecode",
    "GNBlock",
    "mlp",
]

AGGREGATIONS = ("sum", "mean", "max")
EDGE_INPUTS = ("edges", "receivers", "senders", "globals")
"""``phi^e``'s arguments in Eq. (1)'s order: ``e_k, v_{r_k}, v_{s_k}, u``."""
NODE_INPUTS = ("edges", "nodes", "globals")
"""``phi^v``'s arguments in Eq. (1)'s order: ``ebar'_i`` (received edges, aggregated), ``v_i``, ``u``."""
GLOBAL_INPUTS = ("edges", "nodes", "globals")
"""``phi^u``'s arguments in Eq. (1)'s order: ``ebar'``, ``vbar'``, ``u``."""


# ---------------------------------------------------------------------------------- sub-networks
def mlp(
    in_features: int, hidden: Sequence[int], out_features: int, layer_norm: bool = False
) -> nn.Sequential:
    """The presets' ``NN``: ``Linear -> ReLU`` for each width in ``hidden``, then a final ``Linear``
    to ``out_features`` (no activation), then a LayerNorm when ``layer_norm``."""
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    hidden = _widths("hidden", hidden)
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, out_features))
    if layer_norm:
        layers.append(nn.LayerNorm(out_features))
    return nn.Sequential(*layers)


def _widths(name: str, hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence):
        raise TypeError(f"{name} must be a sequence of positive ints, got {type(hidden).__name__}")
    for value in hidden:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must hold positive ints, got {tuple(hidden)!r}")
    return tuple(hidden)


class DotProductAttention(nn.Module):
    r"""The non-local block's attention logit ``alpha(v_r, v_s)`` (Section 4.2.2), per head ``h``:
    ``(W_q^h v_r)^T (W_k^h v_s) / sqrt(key_size)``; :class:`GNBlock` exponentiates and normalises it
    over each receiver's incoming edges (``rho^{e->v}``)."""

    def __init__(self, node_size: int, key_size: int, heads: int = 1) -> None:
        super().__init__()
        self.node_size = check_int("node_size", node_size)
        self.key_size = check_int("key_size", key_size)
        self.heads = check_int("heads", heads)
        self.query = nn.Linear(node_size, heads * key_size, bias=False)
        self.key = nn.Linear(node_size, heads * key_size, bias=False)

    def forward(self, receiver_nodes: Tensor, sender_nodes: Tensor) -> Tensor:
        """Logits ``[E, heads]`` for the receiver and sender attributes ``[E, node_size]`` of each edge."""
        for name, value in (("receiver_nodes", receiver_nodes), ("sender_nodes", sender_nodes)):
            if not isinstance(value, Tensor) or value.dim() != 2 or value.size(1) != self.node_size:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"{name} must be a tensor [E, {self.node_size}], got {shape}")
        q = self.query(receiver_nodes).view(-1, self.heads, self.key_size)
        k = self.key(sender_nodes).view(-1, self.heads, self.key_size)
        return (q * k).sum(-1) / math.sqrt(self.key_size)


# ---------------------------------------------------------------------------------- the GN block
def _inputs(name: str, value: Sequence[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of names from {allowed}, got {type(value).__name__}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise ValueError(f"{name} must hold names from {allowed}, got unknown {unknown}")
    if len(set(value)) != len(value):
        raise ValueError(f"{name} must not repeat a name, got {tuple(value)}")
    # Concatenate in Eq. (1)'s argument order whatever order was given, so weights mean one thing.
    return tuple(a for a in allowed if a in value)


def _aggregation(name: str, value: str) -> str:
    if value not in AGGREGATIONS:
        raise ValueError(f"{name} must be one of {AGGREGATIONS}, got {value!r}")
    return value


def _reduce(values: Tensor, index: Tensor, size: int, how: str) -> Tensor:
    if how == "sum":
        return scatter_sum(values, index, size, check=False)
    if how == "mean":
        return scatter_mean(values, index, size, check=False)
    return scatter_max(values, index, size, check=False)


class GNBlock(nn.Module):
    r"""A graph network block (Section 3.2.2, Eq. 1, Algorithm 1).

    Args:
        edge_model: ``phi^e``, maps ``[E, sum of input widths]`` to ``[E, F_e']``; ``None`` passes
            edges through unchanged.
        node_model: ``phi^v``, maps ``[N, ...]`` to ``[N, F_v']``; ``None`` passes nodes through.
        global_model: ``phi^u``, maps ``[B, ...]`` to ``[B, F_u']``; ``None`` passes globals through.
        edge_inputs: which of ``("edges", "receivers", "senders", "globals")`` ``phi^e`` sees, i.e.
            ``e_k``, ``v_{r_k}``, ``v_{s_k}``, ``u`` (of the edge's graph), concatenated in that order.
        node_inputs: which of ``("edges", "nodes", "globals")`` ``phi^v`` sees: ``ebar'_i`` (the updated
            edges received by node ``i``, aggregated by ``edge_aggregation``), ``v_i``, ``u``.
        global_inputs: which of ``("edges", "nodes", "globals")`` ``phi^u`` sees: ``ebar'`` and ``vbar'``
            (the graph's updated edges and nodes, aggregated) and ``u``.
        edge_aggregation: ``rho^{e->v}``: ``"sum"``, ``"mean"`` or ``"max"``.
        edge_global_aggregation: ``rho^{e->u}``.
        node_global_aggregation: ``rho^{v->u}``.
        attention: optional module mapping ``(v_{r_k}, v_{s_k})`` ``[E, F_v]`` each to logits ``[E]`` or
            ``[E, H]``; then ``rho^{e->v}`` is the non-local aggregation (Section 4.2.2)
            ``ebar'_i = sum_k softmax_{k: r_k = i}(logit_k) e'_k``, each of the ``H`` heads weighting its
            own ``F_e'/H`` slice of ``e'_k``.
        sizes: optional expected widths ``{"nodes": F_v, "edges": F_e, "globals": F_u}`` of the input
            graph, checked on every call (the presets set it); a width of 0 means the attribute is
            not used.

    ``forward(graph)`` returns a :class:`GraphsTuple` with the same structure and updated attributes.
    """

    def __init__(
        self,
        edge_model: nn.Module | None = None,
        node_model: nn.Module | None = None,
        global_model: nn.Module | None = None,
        *,
        edge_inputs: Sequence[str] = EDGE_INPUTS,
        node_inputs: Sequence[str] = NODE_INPUTS,
        global_inputs: Sequence[str] = GLOBAL_INPUTS,
        edge_aggregation: str = "sum",
        edge_global_aggregation: str = "sum",
        node_global_aggregation: str = "sum",
        attention: nn.Module | None = None,
        sizes: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        for name, model in (
            ("edge_model", edge_model),
            ("node_model", node_model),
            ("global_model", global_model),
            ("attention", attention),
        ):
            if model is not None and not callable(model):
                raise TypeError(
                    f"{name} must be an nn.Module (or callable) or None, got {type(model).__name__}"
                )
        self.edge_model, self.node_model, self.global_model = edge_model, node_model, global_model
        self.attention = attention
        self.edge_inputs = _inputs("edge_inputs", edge_inputs, EDGE_INPUTS)
        self.node_inputs = _inputs("node_inputs", node_inputs, NODE_INPUTS)
        self.global_inputs = _inputs("global_inputs", global_inputs, GLOBAL_INPUTS)
        for name, model, used in (
            ("edge_model", edge_model, self.edge_inputs),
            ("node_model", node_model, self.node_inputs),
            ("global_model", global_model, self.global_inputs),
        ):
            if model is not None and not used:
                raise ValueError(f"{name} is given but its inputs are empty; name at least one input")
        self.edge_aggregation = _aggregation("edge_aggregation", edge_aggregation)
        self.edge_global_aggregation = _aggregation("edge_global_aggregation", edge_global_aggregation)
        self.node_global_aggregation = _aggregation("node_global_aggregation", node_global_aggregation)
        if attention is not None and (node_model is None or "edges" not in self.node_inputs):
            raise ValueError(
                "attention weights rho^{e->v}; it needs a node_model with 'edges' in node_inputs"
            )
        if sizes is not None:
            if not isinstance(sizes, Mapping):
                raise TypeError(
                    f"sizes must be a mapping from {ATTRIBUTES} to widths, got {type(sizes).__name__}"
                )
            unknown = [k for k in sizes if k not in ATTRIBUTES]
            if unknown:
                raise ValueError(f"sizes must have keys from {ATTRIBUTES}, got unknown {unknown}")
            sizes = {k: check_int(f"sizes[{k!r}]", v, 0) for k, v in sizes.items()}
        self.sizes = dict(sizes) if sizes is not None else None

    # ------------------------------------------------------------------------------ presets
    @classmethod
    def full(
        cls,
        edge_size: int,
        node_size: int,
        global_size: int,
        *,
        edge_output: int,
        node_output: int,
        global_output: int,
        hidden: Sequence[int] = (64, 64),
        aggregation: str = "sum",
        layer_norm: bool = False,
    ) -> GNBlock:
        """Figure 4a, the full GN block of Section 4.2: ``phi^e = NN_e([e_k, v_rk, v_sk, u])``,
        ``phi^v = NN_v([ebar'_i, v_i, u])``, ``phi^u = NN_u([ebar', vbar', u])``, every ``rho`` a sum
        (or ``aggregation``). An input of width 0 (a graph without edge attributes ...) is left out."""
        e, v, u = (
            check_int("edge_size", edge_size, 0),
            check_int("node_size", node_size, 0),
            check_int("global_size", global_size, 0),
        )
        e_out = check_int("edge_output", edge_output)
        v_out = check_int("node_output", node_output)
        u_out = check_int("global_output", global_output)
        edge_inputs = [n for n, w in zip(EDGE_INPUTS, (e, v, v, u)) if w]
        node_inputs = [n for n, w in zip(NODE_INPUTS, (e_out, v, u)) if w]
        global_inputs = [n for n, w in zip(GLOBAL_INPUTS, (e_out, v_out, u)) if w]
        return cls(
            mlp(e + 2 * v + u, hidden, e_out, layer_norm),
            mlp(e_out + v + u, hidden, v_out, layer_norm),
            mlp(e_out + v_out + u, hidden, u_out, layer_norm),
            edge_inputs=edge_inputs,
            node_inputs=node_inputs,
            global_inputs=global_inputs,
            edge_aggregation=aggregation,
            edge_global_aggregation=aggregation,
            node_global_aggregation=aggregation,
            sizes={"edges": e, "nodes": v, "globals": u},
        )

    @classmethod
    def independent(
        cls,
        edge_size: int = 0,
        node_size: int = 0,
        global_size: int = 0,
        *,
        edge_output: int | None = None,
        node_output: int | None = None,
        global_output: int | None = None,
        hidden: Sequence[int] = (64, 64),
        layer_norm: bool = False,
    ) -> GNBlock:
        """Figure 4b, the independent (graph-independent) block: ``phi^e(e_k)``, ``phi^v(v_i)``,
        ``phi^u(u)``, no aggregation, no information crosses between elements. A kind whose input
        size is 0 or whose output is ``None`` is passed through unchanged. For a recurrent block,
        feed it :func:`concat_features` of the input and the hidden state."""
        e, v, u = (
            check_int("edge_size", edge_size, 0),
            check_int("node_size", node_size, 0),
            check_int("global_size", global_size, 0),
        )
        models = []
        for name, size, output in (
            ("edge", e, edge_output),
            ("node", v, node_output),
            ("global", u, global_output),
        ):
            if output is not None:
                check_int(f"{name}_output", output)
                if not size:
                    raise ValueError(
                        f"{name}_output is {output} but {name}_size is 0; a model needs an input"
                    )
            models.append(mlp(size, hidden, output, layer_norm) if size and output is not None else None)
        if all(m is None for m in models):
            raise ValueError(
                "independent block: give at least one of edge_output, node_output, global_output"
            )
        return cls(
            *models,
            edge_inputs=("edges",),
            node_inputs=("nodes",),
            global_inputs=("globals",),
            sizes={"edges": e, "nodes": v, "globals": u},
        )

    @classmethod
    def message_passing(
        cls,
        edge_size: int,
        node_size: int,
        *,
        message_size: int,
        node_output: int,
        hidden: Sequence[int] = (64, 64),
        aggregation: str = "sum",
        readout_size: int | None = None,
    ) -> GNBlock:
        """Figure 4c, a message-passing neural network step (Gilmer et al. 2017; Section 4.2.1):
        message ``M(e_k, v_rk, v_sk) = NN_e([e_k, v_rk, v_sk])`` as ``phi^e`` (no ``u``), summed per
        receiver, update ``U(ebar'_i, v_i) = NN_v([ebar'_i, v_i])`` as ``phi^v``. With ``readout_size``,
        the readout ``R(vbar') = NN_u(vbar')`` as ``phi^u``; without it the globals are neither read
        nor changed."""
        e, v = check_int("edge_size", edge_size, 0), check_int("node_size", node_size)
        m = check_int("message_size", message_size)
        v_out = check_int("node_output", node_output)
        readout = None
        if readout_size is not None:
            readout = mlp(v_out, hidden, check_int("readout_size", readout_size))
        return cls(
            mlp(e + 2 * v, hidden, m),
            mlp(m + v, hidden, v_out),
            readout,
            edge_inputs=[n for n, w in zip(EDGE_INPUTS[:3], (e, v, v)) if w],
            node_inputs=("edges", "nodes"),
            global_inputs=("nodes",),
            edge_aggregation=aggregation,
            node_global_aggregation=aggregation,
            sizes={"edges": e, "nodes": v},
        )

    @classmethod
    def non_local(
        cls,
        node_size: int,
        *,
        value_size: int,
        node_output: int,
        key_size: int | None = None,
        heads: int = 1,
        hidden: Sequence[int] = (64,),
    ) -> GNBlock:
        """Figure 4d, a non-local neural network / self-attention block (Section 4.2.2):
        ``phi^e = (a'_k, b'_k)`` with ``a'_k = exp(alpha(v_rk, v_sk))`` (:class:`DotProductAttention`)
        and value ``b'_k = beta(v_sk)`` (a linear map, ``heads * value_size`` wide), ``rho^{e->v}`` the
        attention-weighted mean per receiver, ``phi^v = f^v(ebar'_i) = NN([ebar'_i])``; no global."""
        v = check_int("node_size", node_size)
        d = check_int("value_size", value_size)
        h = check_int("heads", heads)
        k = check_int("key_size", key_size if key_size is not None else d)
        v_out = check_int("node_output", node_output)
        return cls(
            nn.Linear(v, h * d),
            mlp(h * d, hidden, v_out),
            None,
            edge_inputs=("senders",),
            node_inputs=("edges",),
            attention=DotProductAttention(v, k, h),
            sizes={"nodes": v},
        )

    @classmethod
    def relation_network(
        cls,
        node_size: int,
        *,
        global_output: int,
        edge_latent: int = 64,
        hidden: Sequence[int] = (64, 64),
        aggregation: str = "sum",
    ) -> GNBlock:
        """Figure 4e, a relation network (Raposo et al. 2017; Santoro et al. 2017; Section 4.2.3):
        ``phi^e = NN_e([v_rk, v_sk])``, ``rho^{e->u}`` a sum over all edges, ``phi^u = NN_u(ebar')``;
        nodes are not updated."""
        v = check_int("node_size", node_size)
        latent = check_int("edge_latent", edge_latent)
        return cls(
            mlp(2 * v, hidden, latent),
            None,
            mlp(latent, hidden, check_int("global_output", global_output)),
            edge_inputs=("receivers", "senders"),
            global_inputs=("edges",),
            edge_global_aggregation=aggregation,
            sizes={"nodes": v},
        )

    @classmethod
    def deep_sets(
        cls,
        node_size: int,
        global_size: int = 0,
        *,
        node_output: int,
        global_output: int,
        hidden: Sequence[int] = (64, 64),
        aggregation: str = "sum",
    ) -> GNBlock:
        """Figure 4f, deep sets (Zaheer et al. 2017; Section 4.2.3): edges bypassed,
        ``phi^v = NN_v([v_i, u])``, ``rho^{v->u}`` a sum over nodes, ``phi^u = NN_u(vbar')``. Edge
        attributes and senders/receivers never enter the computation (edges pass through)."""
        v = check_int("node_size", node_size)
        u = check_int("global_size", global_size, 0)
        v_out = check_int("node_output", node_output)
        return cls(
            None,
            mlp(v + u, hidden, v_out),
            mlp(v_out, hidden, check_int("global_output", global_output)),
            node_inputs=[n for n, w in zip(("nodes", "globals"), (v, u)) if w],
            global_inputs=("nodes",),
            node_global_aggregation=aggregation,
            sizes={"nodes": v, "globals": u},
        )

    # ------------------------------------------------------------------------------ forward
    def _require(self, graph: GraphsTuple, field: str, who: str) -> Tensor:
        value = getattr(graph, field)
        if value is None:
            raise ValueError(f"graph.{field} is None but {who} reads it; give the graph {field} attributes")
        return value

    def _check_sizes(self, graph: GraphsTuple) -> None:
        if self.sizes is None:
            return
        for field, width in self.sizes.items():
            if not width:
                continue
            value = self._require(graph, field, f"this block (built for {field} of width {width})")
            if value.size(1) != width:
                raise ValueError(
                    f"graph.{field} must have {width} features for this block, got {value.size(1)}"
                )

    @staticmethod
    def _update(model: nn.Module, parts: list[Tensor], rows: int, who: str) -> Tensor:
        out = model(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])
        if not isinstance(out, Tensor) or out.dim() != 2 or out.size(0) != rows:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"{who} must return a tensor [{rows}, features], got {shape}")
        return out

    def forward(self, graph: GraphsTuple) -> GraphsTuple:
        """Algorithm 1: update every edge, then every node, then the global; same structure out."""
        if not isinstance(graph, GraphsTuple):
            raise TypeError(f"graph must be a GraphsTuple, got {type(graph).__name__}")
        self._check_sizes(graph)
        num_nodes, num_graphs = graph.num_nodes, graph.num_graphs
        senders, receivers = graph.senders.long(), graph.receivers.long()
        needs_edge_graph = ("globals" in self.edge_inputs and self.edge_model is not None) or (
            self.global_model is not None and "edges" in self.global_inputs
        )
        edge_graph = graph.edge_graph_index() if needs_edge_graph else None
        needs_node_graph = ("globals" in self.node_inputs and self.node_model is not None) or (
            self.global_model is not None and "nodes" in self.global_inputs
        )
        node_graph = graph.node_graph_index() if needs_node_graph else None

        # Edge update, e'_k = phi^e(e_k, v_rk, v_sk, u) for every edge k (Algorithm 1, first loop).
        edges = graph.edges
        if self.edge_model is not None:
            sources = {
                "edges": lambda: self._require(graph, "edges", "phi^e"),
                "receivers": lambda: self._require(graph, "nodes", "phi^e").index_select(0, receivers),
                "senders": lambda: self._require(graph, "nodes", "phi^e").index_select(0, senders),
                "globals": lambda: self._require(graph, "globals", "phi^e").index_select(0, edge_graph),
            }
            edges = self._update(
                self.edge_model, [sources[n]() for n in self.edge_inputs], graph.num_edges, "edge_model"
            )

        # Node update, v'_i = phi^v(rho^{e->v}(E'_i), v_i, u) (Algorithm 1, second loop).
        nodes = graph.nodes
        if self.node_model is not None:
            parts = []
            for name in self.node_inputs:
                if name == "edges":
                    if edges is None:
                        raise ValueError(
                            "graph.edges is None but phi^v reads the aggregated edges; give edge attributes or an edge_model"
                        )
                    parts.append(self._aggregate_received(graph, edges, senders, receivers, num_nodes))
                elif name == "nodes":
                    parts.append(self._require(graph, "nodes", "phi^v"))
                else:
                    parts.append(self._require(graph, "globals", "phi^v").index_select(0, node_graph))
            nodes = self._update(self.node_model, parts, num_nodes, "node_model")

        # Global update, u' = phi^u(rho^{e->u}(E'), rho^{v->u}(V'), u), per graph of the batch.
        globals_ = graph.globals
        if self.global_model is not None:
            parts = []
            for name in self.global_inputs:
                if name == "edges":
                    if edges is None:
                        raise ValueError("graph.edges is None but phi^u reads the aggregated edges")
                    parts.append(_reduce(edges, edge_graph, num_graphs, self.edge_global_aggregation))
                elif name == "nodes":
                    if nodes is None:
                        raise ValueError("graph.nodes is None but phi^u reads the aggregated nodes")
                    parts.append(_reduce(nodes, node_graph, num_graphs, self.node_global_aggregation))
                else:
                    parts.append(self._require(graph, "globals", "phi^u"))
            globals_ = self._update(self.global_model, parts, num_graphs, "global_model")
        return graph._with_features(nodes, edges, globals_)

    def _aggregate_received(
        self, graph: GraphsTuple, edges: Tensor, senders: Tensor, receivers: Tensor, num_nodes: int
    ) -> Tensor:
        """``rho^{e->v}``: one aggregate of the updated edges received by each node."""
        if self.attention is None:
            return _reduce(edges, receivers, num_nodes, self.edge_aggregation)
        # Section 4.2.2: a'_k = exp(logit_k), ebar'_i = sum a'_k b'_k / sum a'_k, per head.
        nodes = self._require(graph, "nodes", "attention")
        logits = self.attention(nodes.index_select(0, receivers), nodes.index_select(0, senders))
        if not isinstance(logits, Tensor) or logits.size(0) != edges.size(0) or logits.dim() not in (1, 2):
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(
                f"attention must return logits [E] or [E, heads] with E={edges.size(0)}, got {shape}"
            )
        if logits.dim() == 1:
            logits = logits.unsqueeze(1)
        heads = logits.size(1)
        if edges.size(1) % heads:
            raise ValueError(
                f"edge features ({edges.size(1)}) must split evenly over the attention heads ({heads})"
            )
        weights = scatter_softmax(logits, receivers, num_nodes, check=False)
        # Explicit per-head width: view(E, heads, -1) is ambiguous for a graph with no edges (E = 0).
        weighted = edges.view(edges.size(0), heads, edges.size(1) // heads) * weights.unsqueeze(-1)
        return scatter_sum(weighted, receivers, num_nodes, check=False).reshape(num_nodes, edges.size(1))

    def extra_repr(self) -> str:
        return (
            f"edge_inputs={self.edge_inputs}, node_inputs={self.node_inputs}, global_inputs={self.global_inputs}, "
            f"aggregations=({self.edge_aggregation}, {self.edge_global_aggregation}, {self.node_global_aggregation}), "
            f"attention={self.attention is not None}"
        )


# ------------------------------------------------------------------------ encode-process-decode
class EncodeProcessDecode(nn.Module):
    """Section 4.3, Figure 6c: ``G_0 = encoder(G_in)``; ``H_t = core(concat(G_0, H_{t-1}))`` for
    ``t = 1..steps`` with ``H_0 = G_0``; ``G_out_t = decoder(H_t)``, then ``output_transform`` if given.

    The core must accept attributes twice the encoder's output width (the concatenation); it is the
    same block, with the same weights, at every step (the paper's shared core). ``forward`` returns the
    last output graph, or every step's when ``return_all`` is set (the graph_nets demos train on all).
    """

    def __init__(
        self,
        encoder: nn.Module,
        core: nn.Module,
        decoder: nn.Module,
        steps: int = 1,
        output_transform: nn.Module | None = None,
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("core", core), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"{name} must be an nn.Module mapping GraphsTuple to GraphsTuple, got {type(module).__name__}"
                )
        if output_transform is not None and not isinstance(output_transform, nn.Module):
            raise TypeError(
                f"output_transform must be an nn.Module or None, got {type(output_transform).__name__}"
            )
        self.encoder, self.core, self.decoder = encoder, core, decoder
        self.output_transform = output_transform
        self.steps = check_int("steps", steps)

    def forward(
        self, graph: GraphsTuple, steps: int | None = None, return_all: bool = False
    ) -> GraphsTuple | list[GraphsTuple]:
        if not isinstance(graph, GraphsTuple):
            raise TypeError(f"graph must be a GraphsTuple, got {type(graph).__name__}")
        steps = self.steps if steps is None else check_int("steps", steps)
        encoded = self.encoder(graph)
        latent = encoded
        outputs: list[GraphsTuple] = []
        for _ in range(steps):
            latent = self.core(concat_features([encoded, latent]))
            decoded = self.decoder(latent)
            if self.output_transform is not None:
                decoded = self.output_transform(decoded)
            if return_all:
                outputs.append(decoded)
        return outputs if return_all else decoded
