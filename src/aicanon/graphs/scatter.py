"""Scatter operations: reduce the rows of a tensor into groups named by an index.

Message passing on an ``edge_index`` (row 0 source, row 1 target) reduces one value per edge into
one value per node. With ``index`` of length ``E`` and ``src`` of shape ``[E, *rest]``:

* ``scatter_sum(src, index, n)[i] = sum_{e: index[e] = i} src[e]``
* ``scatter_mean(src, index, n)[i]`` = that sum divided by the group size (0 for an empty group)
* ``scatter_max(src, index, n)[i] = max_{e: index[e] = i} src[e]`` (``fill`` for an empty group)
* ``scatter_softmax(src, index, n)[e] = exp(src[e]) / sum_{e': index[e'] = index[e]} exp(src[e'])``

Every output is built with one fused ``index_add_`` / ``scatter_reduce_`` call (no Python loop over
groups, never an ``n x n`` matrix), so the cost is ``O(E * prod(rest))`` in time and memory.
The softmax subtracts the group maximum before ``exp`` (it cancels in the ratio) so that large
scores do not overflow; the maximum is detached because its gradient is zero in exact arithmetic.

All functions reduce over dimension 0 of ``src``; trailing dimensions (attention heads, feature
channels) are carried along. Inputs are checked: ``index`` must be a 1-D integer tensor on the
same device as ``src`` with one entry per row of ``src`` and values in ``[0, dim_size)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["scatter_max", "scatter_mean", "scatter_softmax", "scatter_sum"]


def _check(src: Tensor, index: Tensor, dim_size: int, name: str, check_range: bool = True) -> None:
    if not isinstance(src, Tensor):
        raise TypeError(f"{name}: src must be a torch.Tensor, got {type(src).__name__}")
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}: index must be a torch.Tensor, got {type(index).__name__}")
    if isinstance(dim_size, bool) or not isinstance(dim_size, int):
        raise TypeError(f"{name}: dim_size must be an int, got {type(dim_size).__name__}")
    if dim_size < 0:
        raise ValueError(f"{name}: dim_size must be >= 0, got {dim_size}")
    if src.dim() < 1:
        raise ValueError(f"{name}: src must have at least 1 dimension (rows to scatter), got a 0-d tensor")
    if index.dim() != 1:
        raise ValueError(f"{name}: index must be 1-D, got shape {tuple(index.shape)}")
    if index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: index must be an int64 or int32 tensor, got {index.dtype}")
    if index.numel() != src.size(0):
        raise ValueError(
            f"{name}: index must have one entry per row of src ({src.size(0)}), got {index.numel()}"
        )
    if index.device != src.device:
        raise ValueError(f"{name}: index must be on src's device ({src.device}), got {index.device}")
    if check_range and index.numel() > 0:
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= dim_size:
            raise ValueError(
                f"{name}: index values must lie in [0, dim_size={dim_size}), got values in [{low}, {high}]"
            )


def _expand(index: Tensor, like: Tensor) -> Tensor:
    """``index`` broadcast to ``like``'s shape along the trailing dimensions (a view, no copy)."""
    return index.view((-1,) + (1,) * (like.dim() - 1)).expand_as(like)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, *, check: bool = True) -> Tensor:
    """Sum the rows of ``src`` ``[E, *rest]`` into ``dim_size`` groups: returns ``[dim_size, *rest]``.

    ``check=False`` skips the input checks (for callers that validated ``index`` already).
    """
    if check:
        _check(src, index, dim_size, "scatter_sum")
    out = src.new_zeros((dim_size,) + tuple(src.shape[1:]))
    # index_add_ is one fused kernel on CPU and CUDA and differentiable in both arguments.
    return out.index_add_(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, *, check: bool = True) -> Tensor:
    """Mean of the rows of ``src`` in each group; an empty group gives 0."""
    if check:
        _check(src, index, dim_size, "scatter_mean")
    total = scatter_sum(src, index, dim_size, check=False)
    count = torch.zeros(dim_size, dtype=src.dtype, device=src.device)
    count.index_add_(0, index, torch.ones_like(index, dtype=src.dtype))
    return total / count.clamp(min=1).view((-1,) + (1,) * (src.dim() - 1))


def scatter_max(src: Tensor, index: Tensor, dim_size: int, *, fill: float = 0.0, check: bool = True) -> Tensor:
    """Maximum of the rows of ``src`` in each group; an empty group gives ``fill``.

    Differentiable: the gradient of a group's maximum goes to the rows that attain it (split evenly
    between ties, as ``torch.scatter_reduce`` does).
    """
    if check:
        _check(src, index, dim_size, "scatter_max")
    out = src.new_full((dim_size,) + tuple(src.shape[1:]), fill)
    # include_self=False: ``fill`` only stands for groups that received no row.
    return out.scatter_reduce(0, _expand(index, src), src, reduce="amax", include_self=False)


def scatter_softmax(src: Tensor, index: Tensor, dim_size: int, *, check: bool = True) -> Tensor:
    """Softmax of ``src`` ``[E, *rest]`` within each group of rows sharing an ``index`` value.

    Returns a tensor of ``src``'s shape whose entries in each group are positive and sum to 1 (per
    trailing position). Numerically stable: ``exp(src - group max)``; every group's denominator is
    then at least 1 (its maximum contributes ``exp(0)``), so no epsilon is needed.
    """
    if check:
        _check(src, index, dim_size, "scatter_softmax")
    if not src.is_floating_point():
        raise TypeError(f"scatter_softmax: src must be a floating-point tensor, got {src.dtype}")
    group_max = scatter_max(src.detach(), index, dim_size, check=False)
    exp = (src - group_max.index_select(0, index)).exp()
    denominator = scatter_sum(exp, index, dim_size, check=False)
    return exp / denominator.index_select(0, index)
