r"""Relational graph convolutional networks (Schlichtkrull, Kipf, Bloem, van den Berg, Titov, Welling;
ESWC 2018, arXiv 1703.06103).

A relational graph has typed, directed edges ``(j, r, i)``: a message flows from source ``j`` to
target ``i`` along relation ``r``. ``N_i^r`` is the set of ``j`` with an edge ``(j, r, i)``. One R-GCN
layer (Section 2.1) updates every node from its neighbours, with one weight matrix per relation:

* Eq. (2):  ``h_i^(l+1) = sigma( sum_{r in R} sum_{j in N_i^r} 1/c_{i,r} W_r^(l) h_j^(l) + W_0^(l) h_i^(l) )``

  with the normalisation ``c_{i,r} = |N_i^r|`` (the choice of Section 5.1, i.e. a mean over each
  relation's neighbours) and the self-connection ``W_0`` (a special relation every node has to
  itself).  Two ways of sharing parameters across relations (Section 2.2) keep the number of weights
  from growing with ``|R| d^2``:

* Eq. (3), basis decomposition: ``W_r = sum_{b=1..B} a_rb V_b``: ``B`` shared bases ``V_b`` and a
  coefficient ``a_rb`` per relation and basis;
* Eq. (4), block-diagonal decomposition: ``W_r = diag(Q_1r, ..., Q_Br)``, each ``Q_br`` of shape
  ``(d^(l+1)/B) x (d^l/B)``: block ``b`` of the output sees only block ``b`` of the input.

:class:`RGCNConv` computes Eq. (2)-(4) without ``sigma`` (the model applies it). Featureless input
(Section 5: entity classification uses one-hot entity ids) is handled without an identity matrix:
``W_r e_j`` is row ``j`` of ``W_r``, so the first layer gathers weight rows by node id.

Cost. For dense features the layer groups the edges by (relation, target) pair and averages the
sources' features within each pair first (one ``index_add``), then applies ``W_r`` to each pair's
mean once: ``O(E d + P d d')`` for ``P <= E`` non-empty pairs, never an ``N x N`` or an
``N x |R| x d`` tensor (the reference library loops over all relations, each time over all nodes).
The basis decomposition is expanded to ``W_r`` first (``|R| x d x d'``, small for dense features).
Then one batched matmul over per-pair gathered weights when they are small (``GATHER_LIMIT``), else
one matmul per relation that has edges (blocks: one batched block product per relation). For
featureless input the table of rows ``W_r[j]`` (``|R| x N x d'``, the size of the undecomposed
weight) is gathered per edge.

:class:`RGCNEntityClassifier` is the entity-classification model of Section 3 (two layers, ReLU,
softmax output through the loss) and :class:`RGCNLinkPredictor` the link-prediction autoencoder of
Section 4: an R-GCN encoder over entity embeddings and the DistMult decoder
``f(s, r, o) = e_s^T R_r e_o`` with a diagonal ``R_r`` (Eq. 6), trained with negative sampling and
the logistic loss of Eq. (7).

Departures from the paper and its code (github.com/tkipf/relational-gcn), and why:

* Relations are given with their inverses already added (the caller doubles ``R``, as the paper does
  in Section 2.1: "R contains relations both in canonical direction and in inverse direction"); the
  layer itself treats every relation id alike.
* In :class:`RGCNConv` the self-connection ``W_0`` is its own weight (``root``), never decomposed,
  as in Eq. (2) and the reference library. The paper's Keras code adds the identity as one more
  adjacency, so with the basis decomposition its ``W_0`` is also a combination of the bases;
  :class:`RGCNEntityClassifier` offers both (``self_loop="separate"`` or ``"relation"``), and the
  experiment uses the paper code's (on MUTAG, 30 bases, it matters: see the experiment).
* Duplicated edges each count in ``|N_i^r|`` and in the sum (as in the reference library; scipy
  sums duplicate entries of the paper's adjacency matrices, which gives the same; RDF graphs hold
  no duplicates anyway).
* :class:`RGCNLinkPredictor` feeds a learned entity embedding to the first layer (block-diagonal
  layers need dense input); its decoder L2 term is the mean squared entry of the scored entity
  representations and relation vectors, our reading of Section 5.2's "l2 regularization to the
  decoder with a penalty of 0.01". Self-loop dropout removes ``W_0 h_i`` for the dropped nodes.
* Block-diagonal decomposition needs dense input features (a one-hot input has no blocks to split),
  as in the reference library.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_probability
from aicanon.graphs.inputs import check_edge_index
from aicanon.graphs.scatter import scatter_sum
from aicanon.nn.init import glorot_uniform_

__all__ = [
    "RGCNConv",
    "RGCNEntityClassifier",
    "RGCNLinkPredictor",
    "add_inverse_relations",
    "check_relational_graph",
    "drop_edges",
    "relation_norm",
]


GATHER_LIMIT = 1 << 24
"""Largest ``pairs x |W_r|`` for which the layer gathers a weight per (relation, target) pair and uses
one batched matmul; above it, one matmul per relation (the gathered weights would be too large)."""


def check_relational_graph(edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int) -> None:
    """Check ``edge_index`` ``[2, E]`` (node ids in ``[0, num_nodes)``) and ``edge_type`` ``[E]``
    (relation ids in ``[0, num_relations)``), both integer tensors on one device."""
    check_edge_index(edge_index)
    if not isinstance(edge_type, Tensor):
        raise TypeError(
            f"edge_type must be a torch.Tensor [E] of relation ids, got {type(edge_type).__name__}"
        )
    if edge_type.dim() != 1 or edge_type.numel() != edge_index.size(1):
        raise ValueError(
            f"edge_type must have shape [E] with E={edge_index.size(1)} (one relation per edge), "
            f"got {tuple(edge_type.shape)}"
        )
    if edge_type.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"edge_type must be an int64 (or int32) tensor, got {edge_type.dtype}")
    if edge_type.device != edge_index.device:
        raise ValueError(
            f"edge_type must be on edge_index's device ({edge_index.device}), got {edge_type.device}"
        )
    if edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_nodes:
            raise ValueError(
                f"edge_index values must be node indices in [0, N={num_nodes}), got values in [{low}, {high}]"
            )
        low, high = int(edge_type.min()), int(edge_type.max())
        if low < 0 or high >= num_relations:
            raise ValueError(
                f"edge_type values must be relation ids in [0, num_relations={num_relations}), "
                f"got values in [{low}, {high}]"
            )


def add_inverse_relations(edge_index: Tensor, edge_type: Tensor, num_relations: int) -> tuple[Tensor, Tensor]:
    """Every edge ``(j, r, i)`` followed by its inverse ``(i, r + num_relations, j)`` (Section 2.1).

    Returns ``(edge_index [2, 2E], edge_type [2E])`` over ``2 * num_relations`` relations.
    """
    num_relations = check_int("num_relations", num_relations)
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must be a [2, E] tensor, got {got}")
    if not isinstance(edge_type, Tensor) or edge_type.shape != (edge_index.size(1),):
        got = tuple(edge_type.shape) if isinstance(edge_type, Tensor) else type(edge_type).__name__
        raise ValueError(f"edge_type must be a [E] tensor with E={edge_index.size(1)}, got {got}")
    if edge_type.numel() and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_relations):
        raise ValueError(
            f"edge_type values must lie in [0, num_relations={num_relations}), "
            f"got [{int(edge_type.min())}, {int(edge_type.max())}]"
        )
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return both, torch.cat([edge_type, edge_type + num_relations])


def drop_edges(
    edge_index: Tensor, edge_type: Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Edge dropout (Section 5.2): keep each edge independently with probability ``1 - p``.

    Applied before the layer computes ``c_{i,r}``, so the normalisation is that of the kept edges,
    as the paper prescribes ("edge dropout applied before normalization"). No rescaling.
    """
    p = float(check_probability("p", p, allow_one=False))
    if p == 0.0:
        return edge_index, edge_type
    rand = torch.rand(edge_type.numel(), generator=generator, device="cpu").to(edge_type.device)
    keep = rand >= p
    return edge_index[:, keep], edge_type[keep]


def relation_norm(edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int) -> Tensor:
    """``1 / c_{i,r} = 1 / |N_i^r|`` for every edge ``(j, r, i)``: ``[E]`` (Eq. 2 with Section 5.1's ``c``)."""
    check_relational_graph(edge_index, edge_type, num_nodes, num_relations)
    _, inverse, counts = _pairs(edge_index[1].long(), edge_type.long(), num_nodes)
    return 1.0 / counts.index_select(0, inverse).to(torch.float32)


def _pairs(target: Tensor, relation: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """The distinct (relation, target) pairs, sorted by relation then target; each edge's pair; sizes.

    The sort key ``relation * N + target`` groups every relation's pairs together, which lets the
    layer apply one ``W_r`` per contiguous segment.
    """
    key = relation * num_nodes + target
    pairs, inverse, counts = torch.unique(key, sorted=True, return_inverse=True, return_counts=True)
    return pairs, inverse, counts


class RGCNConv(nn.Module):
    r"""One R-GCN layer, Eq. (2) with the basis (Eq. 3) or block-diagonal (Eq. 4) decomposition.

    ``out_i = sum_r mean_{j in N_i^r} W_r x_j + W_0 x_i + bias``.

    Args:
        in_features: input features per node; for featureless input (one-hot node ids) the number
            of distinct ids, i.e. the number of nodes.
        out_features: output features per node.
        num_relations: ``|R|``, counting inverse relations (the caller adds them).
        num_bases: ``B`` of Eq. (3); ``None`` for no basis decomposition.
        num_blocks: ``B`` of Eq. (4); ``None`` for no block decomposition. ``in_features`` and
            ``out_features`` must be divisible by it. At most one decomposition may be given.
        self_loop: add the self-connection ``W_0 x_i`` of Eq. (2).
        bias: add a learned bias (not in Eq. 2; the reference library has one by default).

    Parameters (names and shapes follow ``torch_geometric.nn.RGCNConv``, so state dicts carry over):
    ``weight`` ``[R, in, out]`` (no decomposition), ``[B, in, out]`` (the bases ``V_b``) or
    ``[R, B, in/B, out/B]`` (the blocks ``Q_br``); ``comp`` ``[R, B]`` (the ``a_rb``, basis only);
    ``root`` ``[in, out]`` (``W_0``, transposed: ``x @ root``); ``bias`` ``[out]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        self_loop: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        self.num_relations = check_int("num_relations", num_relations)
        if num_bases is not None and num_blocks is not None:
            raise ValueError(
                f"num_bases and num_blocks are exclusive (Eq. 3 or Eq. 4), got num_bases={num_bases}, "
                f"num_blocks={num_blocks}"
            )
        self.num_bases = None if num_bases is None else check_int("num_bases", num_bases)
        self.num_blocks = None if num_blocks is None else check_int("num_blocks", num_blocks)
        if self.num_blocks is not None and (in_features % num_blocks or out_features % num_blocks):
            raise ValueError(
                f"num_blocks must divide in_features and out_features, got num_blocks={num_blocks}, "
                f"in_features={in_features}, out_features={out_features}"
            )
        self.self_loop = bool(self_loop)
        if self.num_bases is not None:
            self.weight = nn.Parameter(torch.empty(self.num_bases, in_features, out_features))
            self.comp = nn.Parameter(torch.empty(num_relations, self.num_bases))
        elif self.num_blocks is not None:
            blocks = self.num_blocks
            self.weight = nn.Parameter(
                torch.empty(num_relations, blocks, in_features // blocks, out_features // blocks)
            )
            self.register_parameter("comp", None)
        else:
            self.weight = nn.Parameter(torch.empty(num_relations, in_features, out_features))
            self.register_parameter("comp", None)
        self.root = nn.Parameter(torch.empty(in_features, out_features)) if self.self_loop else None
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Glorot-uniform on every ``[in, out]`` matrix (each basis, relation or block), on the
        coefficients ``[R, B]`` and on ``W_0``, as the paper's Keras code and the reference do;
        zero bias."""
        glorot_uniform_(self.weight, self.weight.size(-2), self.weight.size(-1), generator)
        if self.comp is not None:
            glorot_uniform_(self.comp, self.num_relations, self.num_bases, generator)
        if self.root is not None:
            glorot_uniform_(self.root, self.in_features, self.out_features, generator)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def relation_weights(self) -> Tensor:
        """The full ``W_r`` for every relation, ``[R, in, out]`` (Eq. 3 or 4 expanded); for inspection
        and tests, the forward pass never builds it for blocks."""
        if self.num_bases is not None:
            return (self.comp @ self.weight.reshape(self.num_bases, -1)).view(
                self.num_relations, self.in_features, self.out_features
            )
        if self.num_blocks is not None:
            return torch.stack([torch.block_diag(*blocks) for blocks in self.weight])
        return self.weight

    def _check_input(
        self, x: Tensor | None, num_nodes: int | None
    ) -> tuple[Tensor | None, Tensor | None, int]:
        """Return (dense features, node ids, N); exactly one of the first two is set."""
        if self.num_blocks is not None and (x is None or (isinstance(x, Tensor) and x.dim() == 1)):
            raise ValueError(
                "x must be dense features [N, in_features] with num_blocks: the block-diagonal "
                "decomposition (Eq. 4) cannot split one-hot node ids into blocks"
            )
        if x is None:
            if num_nodes is not None and num_nodes != self.in_features:
                raise ValueError(
                    f"num_nodes must equal in_features={self.in_features} for featureless input (x=None), "
                    f"got {num_nodes}"
                )
            ids = torch.arange(self.in_features, device=self.weight.device)
            return None, ids, self.in_features
        if not isinstance(x, Tensor):
            raise TypeError(
                f"x must be a torch.Tensor (features [N, in_features] or node ids [N]) or None, got {type(x).__name__}"
            )
        if x.dim() == 1:
            if x.dtype not in (torch.int64, torch.int32):
                raise TypeError(f"x given as node ids [N] must be an int64 (or int32) tensor, got {x.dtype}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.in_features):
                raise ValueError(
                    f"x node ids must lie in [0, in_features={self.in_features}), got [{int(x.min())}, {int(x.max())}]"
                )
            ids = x.long()
            n = x.numel()
        elif x.dim() == 2:
            if not x.is_floating_point():
                raise TypeError(f"x features must be a floating-point tensor, got {x.dtype}")
            if x.size(1) != self.in_features:
                raise ValueError(f"x must have in_features={self.in_features} columns, got {x.size(1)}")
            ids, n = None, x.size(0)
        else:
            raise ValueError(
                f"x must be 2-D features [N, in_features] or 1-D node ids [N], got shape {tuple(x.shape)}"
            )
        if num_nodes is not None and num_nodes != n:
            raise ValueError(f"num_nodes must equal x's number of rows ({n}), got {num_nodes}")
        return (None, ids, n) if ids is not None else (x, None, n)

    def forward(
        self,
        x: Tensor | None,
        edge_index: Tensor,
        edge_type: Tensor,
        num_nodes: int | None = None,
        self_loop_mask: Tensor | None = None,
    ) -> Tensor:
        """Eq. (2) for every node.

        Args:
            x: dense node features ``[N, in_features]``; or node ids ``[N]`` (int, in
                ``[0, in_features)``), each standing for a one-hot vector; or ``None`` for the ids
                ``0 .. in_features - 1`` (featureless input, Section 5.1).
            edge_index: ``[2, E]`` integer node indices, row 0 source ``j``, row 1 target ``i``.
            edge_type: ``[E]`` relation ids in ``[0, num_relations)``.
            num_nodes: optional check of ``N``.
            self_loop_mask: optional ``[N]`` bool; nodes where it is False get no ``W_0 x_i`` term
                (the self-loop dropout of Section 5.2).

        Returns:
            ``[N, out_features]``. A node with no incoming edge gets ``W_0 x_i + bias``.
        """
        features, ids, n = self._check_input(x, num_nodes)
        check_relational_graph(edge_index, edge_type, n, self.num_relations)
        device = self.weight.device
        if edge_index.device != device or (features is not None and features.device != device):
            raise ValueError(f"x, edge_index and edge_type must be on the layer's device ({device})")
        source, target, relation = edge_index[0].long(), edge_index[1].long(), edge_type.long()

        if features is None:
            out = self._featureless(ids, source, target, relation, n)
        else:
            out = self._dense(features, source, target, relation, n)

        if self.root is not None:
            own = self.root.index_select(0, ids) if features is None else features @ self.root
            if self_loop_mask is not None:
                if (
                    not isinstance(self_loop_mask, Tensor)
                    or self_loop_mask.shape != (n,)
                    or self_loop_mask.dtype != torch.bool
                ):
                    got = (
                        f"{tuple(self_loop_mask.shape)} {self_loop_mask.dtype}"
                        if isinstance(self_loop_mask, Tensor)
                        else type(self_loop_mask).__name__
                    )
                    raise ValueError(f"self_loop_mask must be a bool tensor of shape [{n}], got {got}")
                own = own * self_loop_mask.unsqueeze(1).to(own.dtype)
            out = out + own
        if self.bias is not None:
            out = out + self.bias
        return out

    def _featureless(self, ids: Tensor, source: Tensor, target: Tensor, relation: Tensor, n: int) -> Tensor:
        # W_r e_k is row k of W_r: a table of rows indexed by (relation, id), gathered per edge.
        if self.num_bases is not None:
            # Eq. (3) expanded once: |R| x in x out, what the paper's code builds too (V = W_comp W).
            table = (self.comp @ self.weight.reshape(self.num_bases, -1)).view(-1, self.out_features)
        else:
            table = self.weight.reshape(-1, self.out_features)
        if source.numel() == 0:
            return table.new_zeros(n, self.out_features)
        _, inverse, counts = _pairs(target, relation, n)
        norm = (1.0 / counts.to(table.dtype)).index_select(0, inverse)  # 1 / c_{i,r} per edge
        rows = relation * self.in_features + ids.index_select(0, source)
        messages = table.index_select(0, rows) * norm.unsqueeze(1)
        return scatter_sum(messages, target, n, check=False)

    def _dense(self, x: Tensor, source: Tensor, target: Tensor, relation: Tensor, n: int) -> Tensor:
        if source.numel() == 0:
            return x.new_zeros(n, self.out_features)
        pairs, inverse, counts = _pairs(target, relation, n)
        num_pairs = pairs.numel()
        # mean_{j in N_i^r} x_j for every non-empty pair (r, i): c_{i,r} = |N_i^r| (Section 5.1).
        summed = scatter_sum(x.index_select(0, source), inverse, num_pairs, check=False)
        mean = summed / counts.to(x.dtype).unsqueeze(1)
        pair_relation = torch.div(pairs, n, rounding_mode="floor")
        pair_target = pairs - pair_relation * n
        # Eq. (3) expanded once (|R| x in x out, small for dense features), as the reference does:
        # cheaper than projecting every pair onto all B bases (P B in out) whenever P > |R|.
        weight = self.relation_weights() if self.num_bases is not None else self.weight
        if num_pairs * weight[0].numel() <= GATHER_LIMIT:
            # Small weights: gather each pair's W_r (or its blocks) and apply all in one batched matmul
            # (a handful of kernels instead of a few per relation).
            weights = weight.index_select(0, pair_relation)
            if self.num_blocks is not None:
                blocks = mean.view(num_pairs, self.num_blocks, 1, -1)  # [P, B, 1, in/B]
                transformed = torch.matmul(blocks, weights).reshape(num_pairs, self.out_features)
            else:
                transformed = torch.bmm(mean.unsqueeze(1), weights).squeeze(1)
        else:
            # One W_r (or its blocks, Eq. 4) per relation segment; pairs are sorted by relation.
            # split/unbind (not slicing) so that backward makes one gradient buffer, not one per relation.
            sizes = torch.bincount(pair_relation, minlength=self.num_relations).tolist()
            segments, per_relation = mean.split(sizes), weight.unbind(0)
            pieces = []
            for r, size in enumerate(sizes):
                if size == 0:
                    continue
                if self.num_blocks is not None:  # per_relation[r]: [B, in/B, out/B]
                    piece = torch.einsum(
                        "pbi,bio->pbo", segments[r].view(size, self.num_blocks, -1), per_relation[r]
                    )
                    pieces.append(piece.reshape(size, self.out_features))
                else:
                    pieces.append(segments[r] @ per_relation[r])
            transformed = torch.cat(pieces, dim=0)
        return scatter_sum(transformed, pair_target, n, check=False)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, num_relations={self.num_relations}, "
            f"num_bases={self.num_bases}, num_blocks={self.num_blocks}, self_loop={self.self_loop}, "
            f"bias={self.bias is not None}"
        )


SELF_LOOP_MODES = ("separate", "relation", "none")


class RGCNEntityClassifier(nn.Module):
    """The entity-classification model of Section 3 and 5.1: two R-GCN layers on featureless input.

    ``logits = RGCN_2(ReLU(RGCN_1(one-hot ids)))``; the softmax of Eq. (5) lives in the loss
    (cross-entropy over the labelled nodes). The first layer takes one-hot entity ids without
    building them (its weight rows are gathered by id), so its weight is ``|R| x N x hidden`` without
    a decomposition, the setting the paper uses for AIFB.

    Args:
        num_nodes: ``N``, the number of entities (the width of the one-hot input).
        num_relations: ``|R|`` including inverse relations.
        num_classes: output classes.
        hidden_features: hidden units (16 in Section 5.1).
        num_bases: ``B`` of Eq. (3) for both layers, or ``None`` (Appendix: 0 for AIFB, 30 for MUTAG).
        dropout: dropout on the hidden layer (0 in the paper's runs).
        bias: learned biases; the paper's code has none (Eq. 2 has none).
        self_loop: how ``W_0`` of Eq. (2) enters. ``separate``: its own undecomposed weight (the
            layer's ``root``, as the reference library). ``relation``: one more relation whose edges are
            the self-loops ``i -> i`` (``c = 1``), so that with bases ``W_0`` is a combination of the
            bases too, exactly as the paper's code (it appends the identity to the adjacency list).
            Without a decomposition the two are the same function. ``none``: no self-connection.
    """

    def __init__(
        self,
        num_nodes: int,
        num_relations: int,
        num_classes: int,
        hidden_features: int = 16,
        num_bases: int | None = None,
        dropout: float = 0.0,
        bias: bool = False,
        self_loop: str = "separate",
    ) -> None:
        super().__init__()
        self.dropout = float(check_probability("dropout", dropout, allow_one=False))
        self.num_nodes = check_int("num_nodes", num_nodes)
        self.num_relations = check_int("num_relations", num_relations)
        if self_loop not in SELF_LOOP_MODES:
            raise ValueError(f"self_loop must be one of {SELF_LOOP_MODES}, got {self_loop!r}")
        self.self_loop = self_loop
        layer_relations = num_relations + 1 if self_loop == "relation" else num_relations
        root = self_loop == "separate"
        self.layer1 = RGCNConv(
            num_nodes, hidden_features, layer_relations, num_bases=num_bases, bias=bias, self_loop=root
        )
        self.layer2 = RGCNConv(
            hidden_features, num_classes, layer_relations, num_bases=num_bases, bias=bias, self_loop=root
        )

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self.layer1.reset_parameters(generator)
        self.layer2.reset_parameters(generator)

    def graph_with_self_loops(self, edge_index: Tensor, edge_type: Tensor) -> tuple[Tensor, Tensor]:
        """The edges the layers see: with ``self_loop="relation"``, one edge ``i -> i`` of relation
        ``num_relations`` per node appended (the paper code's identity adjacency)."""
        check_relational_graph(edge_index, edge_type, self.num_nodes, self.num_relations)
        if self.self_loop != "relation":
            return edge_index, edge_type
        loops = torch.arange(self.num_nodes, device=edge_index.device, dtype=edge_index.dtype)
        loop_type = torch.full(
            (self.num_nodes,), self.num_relations, device=edge_type.device, dtype=edge_type.dtype
        )
        return torch.cat([edge_index, loops.expand(2, -1)], dim=1), torch.cat([edge_type, loop_type])

    def forward(self, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Logits ``[N, num_classes]`` for every entity of the graph ``(edge_index, edge_type)``."""
        edge_index, edge_type = self.graph_with_self_loops(edge_index, edge_type)
        hidden = F.relu(self.layer1(None, edge_index, edge_type))
        hidden = F.dropout(hidden, self.dropout, self.training)
        return self.layer2(hidden, edge_index, edge_type)

    def first_layer_penalty(self) -> Tensor:
        """``sum w^2`` over the first layer's weights: the L2 term the paper puts on them (Section 5.1,
        Keras ``l2`` on the input weights)."""
        total = torch.zeros((), device=self.layer1.weight.device)
        for name, parameter in self.layer1.named_parameters():
            if name != "bias":
                total = total + parameter.pow(2).sum()
        return total


class RGCNLinkPredictor(nn.Module):
    """The link-prediction autoencoder of Section 4: R-GCN encoder, DistMult decoder (Eq. 6).

    Encoder: a learned embedding per entity (the input of the first layer), then ``num_layers``
    R-GCN layers of width ``dim`` with ReLU between them, over the training graph with inverse
    relations (``2 * num_relations`` edge types). Decoder: ``f(s, r, o) = sum_k e_sk r_rk e_ok``
    (DistMult, a diagonal ``R_r``) over the ``num_relations`` canonical relations.

    Section 5.2's FB15k-237 setting is ``dim=500``, ``num_layers=2``, block-diagonal decomposition
    with 5 x 5 blocks (``num_blocks=100``); FB15k and WN18 use one layer of 200 with 2 bases.

    The decoder satisfies :class:`aicanon.graphs.ranking.AllEntityScorer` once :meth:`encode` has
    set the entity representations (``score_tails``, ``score_heads``).
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int = 500,
        num_layers: int = 2,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_entities = check_int("num_entities", num_entities)
        self.num_relations = check_int("num_relations", num_relations)
        self.dim = check_int("dim", dim)
        check_int("num_layers", num_layers)
        self.dropout = float(check_probability("dropout", dropout, allow_one=False))
        self.entity = nn.Parameter(torch.empty(num_entities, dim))
        self.layers = nn.ModuleList(
            RGCNConv(dim, dim, 2 * num_relations, num_bases=num_bases, num_blocks=num_blocks)
            for _ in range(num_layers)
        )
        self.relation = nn.Parameter(torch.empty(num_relations, dim))
        self._embeddings: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        glorot_uniform_(self.entity, self.num_entities, self.dim, generator)
        glorot_uniform_(self.relation, self.num_relations, self.dim, generator)
        for layer in self.layers:
            layer.reset_parameters(generator)

    def encode(self, edge_index: Tensor, edge_type: Tensor, self_loop_mask: Tensor | None = None) -> Tensor:
        """Entity representations ``e_i = h_i^(L)`` ``[N, dim]`` from the graph (with inverse relations).

        The result is also kept for :meth:`score_tails`/:meth:`score_heads` (ranking evaluation).
        """
        h = self.entity
        for index, layer in enumerate(self.layers):
            h = F.dropout(h, self.dropout, self.training)
            h = layer(h, edge_index, edge_type, num_nodes=self.num_entities, self_loop_mask=self_loop_mask)
            if index < len(self.layers) - 1:
                h = F.relu(h)
        self._embeddings = h
        return h

    def _check_triple_part(self, ids: Tensor, name: str, upper: int) -> Tensor:
        if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32) or ids.dim() != 1:
            got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, Tensor) else type(ids).__name__
            raise TypeError(f"{name} must be a 1-D int64 tensor of ids, got {got}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= upper):
            raise ValueError(f"{name} must lie in [0, {upper}), got [{int(ids.min())}, {int(ids.max())}]")
        return ids.long()

    def _entities(self) -> Tensor:
        if self._embeddings is None:
            raise RuntimeError("call encode(edge_index, edge_type) before scoring")
        return self._embeddings

    def score(
        self, heads: Tensor, relations: Tensor, tails: Tensor, embeddings: Tensor | None = None
    ) -> Tensor:
        """Eq. (6): ``f(s, r, o) = e_s^T diag(r_r) e_o`` for each triple, ``[B]``."""
        e = self._entities() if embeddings is None else embeddings
        heads = self._check_triple_part(heads, "heads", self.num_entities)
        relations = self._check_triple_part(relations, "relations", self.num_relations)
        tails = self._check_triple_part(tails, "tails", self.num_entities)
        return (e[heads] * self.relation[relations] * e[tails]).sum(-1)

    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor:
        """``f(h, r, e)`` for every entity ``e``: ``[B, N]``."""
        e = self._entities()
        heads = self._check_triple_part(heads, "heads", self.num_entities)
        relations = self._check_triple_part(relations, "relations", self.num_relations)
        return (e[heads] * self.relation[relations]) @ e.t()

    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor:
        """``f(e, r, t)`` for every entity ``e``: ``[B, N]`` (DistMult is symmetric in ``s, o``)."""
        e = self._entities()
        relations = self._check_triple_part(relations, "relations", self.num_relations)
        tails = self._check_triple_part(tails, "tails", self.num_entities)
        return (e[tails] * self.relation[relations]) @ e.t()

    def decoder_penalty(self, heads: Tensor, relations: Tensor, tails: Tensor, embeddings: Tensor) -> Tensor:
        """The L2 term on the decoder (Section 5.2, penalty 0.01): mean squared entry of the
        relation vectors and of the entity representations the batch scores."""
        return (
            embeddings[heads].pow(2).mean()
            + embeddings[tails].pow(2).mean()
            + self.relation[relations].pow(2).mean()
        )
