r"""The design space of "Graph Neural Networks: A Review of Methods and Applications" (Zhou, Cui, Hu,
Zhang, Yang, Liu, Wang, Li, Sun; AI Open 2020, arXiv 1812.08434) as a working API.

The review (Section 2.3, Figure 2; Section 3) builds a GNN from computational modules:

* **propagation modules** (Sections 3.1-3.3): *convolution* operators, *spectral* (GCN, Kipf & Welling)
  or *spatial* (GraphSAGE); *attention*-based (GAT); *recurrent* operators (GGNN, gated); and
  *skip connections* (residual, jumping knowledge);
* **sampling modules** (Section 3.4): *node-wise* (GraphSAGE's neighbour sampling), layer-wise and
  subgraph sampling;
* **pooling modules** (Section 3.5): *direct* (simple node pooling: sum, mean, max; attention readout)
  and *hierarchical* (SAGPool, DiffPool, ...).

:data:`TAXONOMY` maps each category (a path such as ``("propagation", "convolution", "spectral")``)
to the aicanon classes and functions that implement it; :func:`methods` looks them up and
:func:`build_node_classifier` assembles a node classifier from a propagation module and an
optional skip connection: the "general design pipeline" of Section 2 for the transductive node
classification task, used by :mod:`aicanon.experiments.gnn_review` to compare the modules.

Categories of the review with no implementation here (layer-wise and subgraph sampling, the other
hierarchical pools) are listed in :data:`NOT_IMPLEMENTED`, so that the gap is explicit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int
from aicanon.graphs.gat import GATConv
from aicanon.graphs.gcn import GCNConv
from aicanon.graphs.ggnn import GatedGraphConv, GraphAttentionReadout
from aicanon.graphs.graph_networks import GNBlock
from aicanon.graphs.inputs import SparseFeatures, check_graph, dropout, linear
from aicanon.graphs.pooling import (
    GlobalAttentionPool,
    SAGPool,
    global_max_pool,
    global_mean_pool,
    global_sum_pool,
)
from aicanon.graphs.rgcn import RGCNConv
from aicanon.graphs.sage import SAGEConv, sample_neighbors
from aicanon.graphs.skip import JumpingKnowledge, ResidualConnection
from aicanon.nn.init import glorot_uniform_

__all__ = [
    "NOT_IMPLEMENTED",
    "PROPAGATIONS",
    "SKIPS",
    "TAXONOMY",
    "Method",
    "NodeClassifier",
    "build_node_classifier",
    "categories",
    "methods",
]


@dataclass(frozen=True)
class Method:
    """One implementation of a category: its name, the class or function, and the paper it is from."""

    name: str
    implementation: Callable[..., Any]
    paper: str
    section: str
    """Where the review discusses it."""


TAXONOMY: dict[tuple[str, ...], tuple[Method, ...]] = {
    ("propagation", "convolution", "spectral"): (
        Method("gcn", GCNConv, "Kipf & Welling 2017 (arXiv 1609.02907)", "3.1.1"),
    ),
    ("propagation", "convolution", "spatial"): (
        Method("sage", SAGEConv, "Hamilton et al. 2017 (arXiv 1706.02216)", "3.1.2"),
        Method("rgcn", RGCNConv, "Schlichtkrull et al. 2018 (arXiv 1703.06103)", "3.1.2 / 4.1"),
    ),
    ("propagation", "convolution", "attention"): (
        Method("gat", GATConv, "Veličković et al. 2018 (arXiv 1710.10903)", "3.1.3"),
    ),
    ("propagation", "convolution", "general_framework"): (
        Method("graph_network", GNBlock, "Battaglia et al. 2018 (arXiv 1806.01261)", "3.1.4"),
    ),
    ("propagation", "recurrent", "gate"): (
        Method("ggnn", GatedGraphConv, "Li et al. 2016 (arXiv 1511.05493)", "3.2.2"),
    ),
    ("propagation", "skip"): (
        Method("residual", ResidualConnection, "Kipf & Welling 2017, Appendix B", "3.3"),
        Method("jk", JumpingKnowledge, "Xu et al. 2018 (arXiv 1806.03536)", "3.3"),
    ),
    ("sampling", "node"): (
        Method("sage_sampling", sample_neighbors, "Hamilton et al. 2017, Algorithm 2", "3.4.1"),
    ),
    ("pooling", "direct"): (
        Method("sum", global_sum_pool, "simple node pooling", "3.5.1"),
        Method("mean", global_mean_pool, "simple node pooling", "3.5.1"),
        Method("max", global_max_pool, "simple node pooling", "3.5.1"),
        Method("attention", GlobalAttentionPool, "Li et al. 2016 (soft attention readout)", "3.5.1"),
        Method("ggnn_readout", GraphAttentionReadout, "Li et al. 2016, Eq. 7", "3.5.1"),
    ),
    ("pooling", "hierarchical"): (Method("sagpool", SAGPool, "Lee et al. 2019 (arXiv 1904.08082)", "3.5.2"),),
}

NOT_IMPLEMENTED: dict[tuple[str, ...], str] = {
    ("sampling", "layer"): "FastGCN, AS-GCN (Section 3.4.2)",
    ("sampling", "subgraph"): "ClusterGCN, GraphSAINT (Section 3.4.3)",
    ("propagation", "recurrent", "convergence"): "the original GNN's fixed point (Section 3.2.1)",
}

PROPAGATIONS = ("gcn", "sage", "gat", "ggnn")
SKIPS = (None, "residual", "jk")


def categories() -> list[tuple[str, ...]]:
    """Every implemented category path, in the review's order."""
    return list(TAXONOMY)


def methods(*category: str) -> list[Method]:
    """The methods under a category prefix: ``methods("propagation")`` lists all propagation modules,
    ``methods("pooling", "direct")`` the direct readouts."""
    if not category or not all(isinstance(part, str) for part in category):
        raise ValueError(
            f"category must be one or more strings, e.g. ('pooling', 'direct'), got {category!r}"
        )
    found = [m for path, entries in TAXONOMY.items() if path[: len(category)] == category for m in entries]
    if not found:
        known = sorted({path[: len(category)] for path in TAXONOMY})
        raise ValueError(f"category {category!r} names no implemented category; known at that depth: {known}")
    return found


class NodeClassifier(nn.Module):
    """A stack of propagation layers with an optional skip connection, logits out (see
    :func:`build_node_classifier`)."""

    def __init__(
        self,
        propagation: str,
        in_features: int,
        num_classes: int,
        hidden_features: int = 16,
        num_layers: int = 2,
        skip: str | None = None,
        dropout: float = 0.5,
        jk_mode: str = "cat",
        heads: int = 8,
        steps: int = 2,
    ) -> None:
        super().__init__()
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
        if skip not in SKIPS:
            raise ValueError(f"skip must be one of {SKIPS}, got {skip!r}")
        for arg, value in (
            ("in_features", in_features),
            ("num_classes", num_classes),
            ("hidden_features", hidden_features),
            ("num_layers", num_layers),
            ("heads", heads),
            ("steps", steps),
        ):
            check_int(arg, value)
        check_float("dropout", dropout, 0, 1, max_inclusive=False)
        if propagation == "ggnn" and skip is not None:
            raise ValueError(
                f"skip must be None with propagation='ggnn' (its GRU update already gates the previous "
                f"state), got {skip!r}"
            )
        if propagation == "gat" and hidden_features % heads:
            raise ValueError(
                f"hidden_features must be a multiple of heads={heads} for GAT, got {hidden_features}"
            )
        if skip == "jk" and jk_mode not in ("cat", "max", "lstm"):
            raise ValueError(f"jk_mode must be 'cat', 'max' or 'lstm', got {jk_mode!r}")
        self.propagation, self.skip, self.dropout = propagation, skip, float(dropout)
        self.in_features, self.num_classes = in_features, num_classes
        self.activation = F.elu if propagation == "gat" else F.relu
        self.layers = nn.ModuleList()
        self.jk: JumpingKnowledge | None = None
        self.classifier: nn.Linear | None = None

        def conv(width_in: int, width_out: int, last: bool) -> nn.Module:
            if propagation == "gcn":
                return GCNConv(width_in, width_out)
            if propagation == "sage":
                return SAGEConv(width_in, width_out)
            if last:  # GAT's output layer: one averaged head (Eq. 6)
                return GATConv(width_in, width_out, heads=1, concat=False, dropout=dropout)
            return GATConv(width_in, width_out // heads, heads=heads, dropout=dropout)

        if propagation == "ggnn":
            # Embed the features into the state (Eq. 1 needs F <= D), T GRU steps, a linear read-out.
            self.embedding = nn.Linear(in_features, hidden_features)
            self.layers.append(GatedGraphConv(hidden_features, num_layers=steps, directed_weights=False))
            self.classifier = nn.Linear(hidden_features, num_classes)
            return
        if skip == "jk":
            # Xu et al.: every layer hidden-wide, the layer aggregation, then a linear classifier.
            widths = [in_features] + [hidden_features] * num_layers
            for a, b in itertools.pairwise(widths):
                self.layers.append(conv(a, b, last=False))
            self.jk = JumpingKnowledge(jk_mode, hidden_features, num_layers)
            width = hidden_features * num_layers if jk_mode == "cat" else hidden_features
            self.classifier = nn.Linear(width, num_classes)
            glorot_uniform_(self.classifier.weight)
            return
        widths = [in_features] + [hidden_features] * (num_layers - 1) + [num_classes]
        for index, (a, b) in enumerate(itertools.pairwise(widths)):
            last = index == num_layers - 1
            layer = conv(a, b, last)
            if skip == "residual" and not last:
                layer = ResidualConnection(layer, a, b, activation=self.activation)
            self.layers.append(layer)

    def forward(self, x: Tensor | SparseFeatures, edge_index: Tensor) -> Tensor:
        """Logits ``[N, num_classes]`` for node features ``x`` ``[N, in_features]`` and ``edge_index``."""
        check_graph(x, edge_index, self.in_features)
        h = dropout(x, self.dropout, self.training)
        if self.propagation == "ggnn":
            weight = self.embedding.weight
            h = linear(h, weight)
            h = self.layers[0](h + self.embedding.bias, edge_index)
            return self.classifier(dropout(h, self.dropout, self.training))
        if self.skip == "jk":
            outputs = []
            for index, layer in enumerate(self.layers):
                if index:
                    h = dropout(h, self.dropout, self.training)
                h = self.activation(layer(h, edge_index))
                outputs.append(h)
            h = dropout(self.jk(outputs), self.dropout, self.training)
            return self.classifier(h)
        for index, layer in enumerate(self.layers):
            if index:
                h = dropout(h, self.dropout, self.training)
            h = layer(h, edge_index)
            if index < len(self.layers) - 1 and self.skip is None:
                h = self.activation(h)  # a ResidualConnection applies it before its sum
        return h


def build_node_classifier(
    propagation: str,
    in_features: int,
    num_classes: int,
    skip: str | None = None,
    hidden_features: int = 16,
    num_layers: int = 2,
    dropout: float = 0.5,
    jk_mode: str = "cat",
    heads: int = 8,
    steps: int = 2,
) -> NodeClassifier:
    """A node classifier from the review's modules (Section 2's pipeline).

    Args:
        propagation: ``"gcn"`` (spectral convolution), ``"sage"`` (spatial), ``"gat"`` (attention) or
            ``"ggnn"`` (recurrent: an input embedding, ``steps`` GRU steps, a linear read-out).
        in_features, num_classes: input features per node and classes.
        skip: None, ``"residual"`` (every hidden layer ``sigma(conv(h)) + P h``) or ``"jk"`` (every
            layer ``hidden_features`` wide, jumping knowledge ``jk_mode``, then a linear classifier).
        hidden_features: hidden width (for GAT the concatenation of ``heads`` heads).
        num_layers: propagation layers (for ``"ggnn"`` ignored: ``steps`` counts its GRU steps).
        dropout: dropout on every layer's input (and GAT's attention coefficients).
    """
    return NodeClassifier(
        propagation,
        in_features,
        num_classes,
        hidden_features=hidden_features,
        num_layers=num_layers,
        skip=skip,
        dropout=dropout,
        jk_mode=jk_mode,
        heads=heads,
        steps=steps,
    )
