r"""Graph inputs: sparse node features, edge-index checks, self loops, feature dropout.

The helpers every message-passing layer of :mod:`aicanon.graphs` shares, whatever its propagation
rule (GAT, GCN, GraphSAGE, the skip connections and the review's models). Graphs are given as node
features ``x`` ``[N, F]`` and ``edge_index`` ``[2, E]``: row 0 the source ``j``, row 1 the target ``i``
(messages flow ``j -> i``).

* :class:`SparseFeatures` feeds bag-of-words inputs (Cora: 1.3% nonzero) without densifying them:
  CSR storage plus its transpose, built once, so ``W x`` costs ``O(nnz)`` forward and backward.
* :func:`linear` is ``x W^T`` for dense ``x`` or :class:`SparseFeatures`.
* :func:`check_graph` checks ``x`` and ``edge_index`` (shape, dtype, device, index range) and raises
  ``ValueError``/``TypeError`` naming the argument.
* :func:`remove_self_loops` and :func:`add_self_loops` build ``A + I`` as edges (GAT's neighbourhood
  ``N_i`` including ``i``).
* :func:`dropout` is inverted dropout on dense features or on :class:`SparseFeatures`' stored values;
  it draws its mask as ``uniform >= p`` (the distribution of ``F.dropout``, cheaper on CPU).

These were first written for GAT (:mod:`aicanon.graphs.gat`); they live here because GCN, GraphSAGE
and the review's models use them too and should not depend on GAT.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SparseFeatures",
    "add_self_loops",
    "check_edge_index",
    "check_graph",
    "dropout",
    "linear",
    "remove_self_loops",
]


class SparseFeatures:
    """A sparse ``[N, F]`` node-feature matrix (bag-of-words inputs are ~1% nonzero) for graph layers.

    Holds the matrix in CSR form and, built once here, its transpose in CSR form with the permutation
    that maps the stored values onto it. ``W x`` then costs ``O(nnz)`` forward, and the weight
    gradient ``x^T grad`` reuses the stored transpose instead of transposing on every backward, which
    is what ``torch.sparse.mm`` would do. :func:`dropout` on it drops stored values only.
    """

    def __init__(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor [N, F] (dense, COO or CSR), got {type(x).__name__}")
        if x.layout not in (torch.strided, torch.sparse_coo, torch.sparse_csr) or x.dim() != 2:
            raise ValueError(
                f"x must be a 2-D dense, COO or CSR tensor, got layout {x.layout}, shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        with warnings.catch_warnings():  # "sparse CSR support is in beta": we use its stable core only
            warnings.simplefilter("ignore", UserWarning)
            csr = x if x.layout == torch.sparse_csr else x.to_sparse_csr()
        rows, cols = int(x.size(0)), int(x.size(1))
        self.shape = torch.Size((rows, cols))
        self.crow = csr.crow_indices().long()
        self.col = csr.col_indices().long()
        self.values = csr.values()
        row = torch.repeat_interleave(torch.arange(rows, device=self.crow.device), self.crow.diff())
        # Transpose: stored entries sorted by (column, row); CSR of x^T has the columns as rows.
        self.transpose_order = torch.argsort(self.col * rows + row)
        self.transpose_col = row[self.transpose_order]
        counts = torch.bincount(self.col, minlength=cols)
        self.transpose_crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])

    @classmethod
    def _with_values(cls, base: SparseFeatures, values: Tensor) -> SparseFeatures:
        new = cls.__new__(cls)
        new.__dict__.update(base.__dict__)
        new.values = values
        return new

    def size(self, dim: int | None = None) -> torch.Size | int:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return 2

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    def is_floating_point(self) -> bool:
        return self.values.is_floating_point()

    def to(self, device: torch.device | str) -> SparseFeatures:
        new = self._with_values(self, self.values.to(device))
        for name in ("crow", "col", "transpose_order", "transpose_col", "transpose_crow"):
            setattr(new, name, getattr(self, name).to(device))
        return new

    def to_dense(self) -> Tensor:
        return torch.sparse_csr_tensor(
            self.crow, self.col, self.values, self.shape, check_invariants=False
        ).to_dense()

    def matmul_transposed(self, weight: Tensor) -> Tensor:
        """``x W^T`` for ``weight`` ``[out, F]``, differentiable in ``weight`` and in the stored values."""
        return _SparseLinear.apply(self.values, weight, self)


class _SparseLinear(torch.autograd.Function):
    """``x W^T`` with ``x`` a :class:`SparseFeatures`; backward uses its precomputed transpose."""

    @staticmethod
    def forward(ctx, values: Tensor, weight: Tensor, x: SparseFeatures) -> Tensor:  # type: ignore[override]
        ctx.x = x
        ctx.save_for_backward(values, weight)
        matrix = torch.sparse_csr_tensor(x.crow, x.col, values, x.shape, check_invariants=False)
        return matrix @ weight.t()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        values, weight = ctx.saved_tensors
        x: SparseFeatures = ctx.x
        grad_values = grad_weight = None
        if ctx.needs_input_grad[1]:
            transposed = torch.sparse_csr_tensor(
                x.transpose_crow,
                x.transpose_col,
                values[x.transpose_order],
                (x.shape[1], x.shape[0]),
                check_invariants=False,
            )
            grad_weight = (transposed @ grad).t()
        if ctx.needs_input_grad[0]:
            # d out[n, o] / d x[n, f] = W[o, f]: each stored entry gets <grad[n], W[:, f]>.
            row = torch.repeat_interleave(torch.arange(x.shape[0], device=grad.device), x.crow.diff())
            grad_values = (grad.index_select(0, row) * weight.t().index_select(0, x.col)).sum(1)
        return grad_values, grad_weight, None


def _check_features(x: Tensor | SparseFeatures, name: str) -> None:
    if isinstance(x, SparseFeatures):
        return
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of node features [N, F] or SparseFeatures, got {type(x).__name__}"
        )
    if x.layout != torch.strided:
        raise TypeError(f"{name} must be dense; wrap a sparse {x.layout} tensor in SparseFeatures(x)")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D node features [N, F], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def check_edge_index(edge_index: Tensor) -> None:
    """Check that ``edge_index`` is an integer tensor ``[2, E]`` (sources, targets)."""
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor [2, E], got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"edge_index must have shape [2, E] (sources, targets), got {tuple(edge_index.shape)}"
        )
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"edge_index must be an int64 (or int32) tensor, got {edge_index.dtype}")


def check_graph(
    x: Tensor | SparseFeatures, edge_index: Tensor, in_features: int | None = None, name: str = "x"
) -> None:
    """Check node features ``x`` ``[N, F]`` (dense or :class:`SparseFeatures`) and ``edge_index``
    ``[2, E]`` (integer, values in ``[0, N)``)."""
    _check_features(x, name)
    if in_features is not None and x.size(1) != in_features:
        raise ValueError(f"{name} must have in_features={in_features} columns, got {x.size(1)}")
    check_edge_index(edge_index)
    if edge_index.device != x.device:
        raise ValueError(f"edge_index must be on {name}'s device ({x.device}), got {edge_index.device}")
    if edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= x.size(0):
            raise ValueError(
                f"edge_index values must be node indices in [0, N={x.size(0)}), got values in [{low}, {high}]"
            )


def remove_self_loops(edge_index: Tensor) -> Tensor:
    """``edge_index`` without its edges ``i -> i`` (order of the others kept)."""
    return edge_index[:, edge_index[0] != edge_index[1]]


def add_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``edge_index`` followed by one edge ``i -> i`` for every node ``i`` in ``[0, num_nodes)``."""
    loops = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    return torch.cat([edge_index, loops.unsqueeze(0).expand(2, -1)], dim=1)


def linear(x: Tensor | SparseFeatures, weight: Tensor) -> Tensor:
    """``x W^T`` (no bias) for dense ``x`` or :class:`SparseFeatures` (which skips the zeros): the
    first transformation of every layer that accepts either kind of input."""
    if isinstance(x, SparseFeatures):
        return x.matmul_transposed(weight)
    return F.linear(x, weight)


def dropout(x: Tensor | SparseFeatures, p: float, training: bool) -> Tensor | SparseFeatures:
    """Inverted dropout: zero each entry with probability ``p``, scale the rest by ``1 / (1 - p)``.

    The same distribution as ``F.dropout``; the mask is ``uniform >= p`` because ``torch.rand`` is
    about 3x faster than the ``bernoulli_`` that ``F.dropout`` draws with on CPU, and dropout is a
    large share of a GAT step on Cora. On :class:`SparseFeatures` it drops the stored values only:
    a dropped zero stays zero, so the distribution is that of dense dropout.
    """
    if not training or p == 0.0:
        return x
    values = x.values if isinstance(x, SparseFeatures) else x
    keep = torch.rand_like(values) >= p
    dropped = values * keep * (1.0 / (1.0 - p))
    return SparseFeatures._with_values(x, dropped) if isinstance(x, SparseFeatures) else dropped
