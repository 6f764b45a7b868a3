"""Generalized Intersection over Union: a metric and a loss for bounding-box regression.

Rezatofighi, Tsoi, Gwak, Sadeghian, Reid and Savarese, CVPR 2019 (arXiv:1902.09630).

Boxes are axis-aligned and written as corners ``(x1, y1, x2, y2)`` with ``x1 <= x2``, ``y1 <= y2``.
For two shapes ``A`` and ``B`` and ``C`` the smallest convex shape enclosing both (for boxes: the
smallest enclosing box), the paper defines (Section 3, Algorithm 1)::

    IoU  = |A ∩ B| / |A ∪ B|
    GIoU = IoU - |C \\ (A ∪ B)| / |C|                         (Algorithm 1)

and, as losses for a predicted box ``B^p`` against a ground-truth box ``B^g`` (Algorithm 2)::

    step 1  x̂1 = min(x1p, x2p), x̂2 = max(x1p, x2p), ŷ1 = min(y1p, y2p), ŷ2 = max(y1p, y2p)
    step 2  A^g = (x2g - x1g)(y2g - y1g)
    step 3  A^p = (x̂2 - x̂1)(ŷ2 - ŷ1)
    step 4  I = max(0, min(x̂2, x2g) - max(x̂1, x1g)) * max(0, min(ŷ2, y2g) - max(ŷ1, y1g))
    step 5  enclosing box  x1c = min(x̂1, x1g), x2c = max(x̂2, x2g), (same for y)
    step 6  A^c = (x2c - x1c)(y2c - y1c)
    step 7  IoU = I / U,  U = A^p + A^g - I
    step 8  GIoU = IoU - (A^c - U) / A^c
    step 9  L_IoU = 1 - IoU,  L_GIoU = 1 - GIoU

Properties (Section 3): ``-1 < GIoU <= IoU <= 1``; ``GIoU(A, A) = 1``; GIoU is symmetric and
invariant to the scale of the problem; ``0 <= L_GIoU < 2``. When ``A`` and ``B`` do not overlap,
``IoU = 0`` whatever their distance, so ``L_IoU`` has zero gradient there; ``GIoU`` still falls
as the boxes move apart, so ``L_GIoU`` pulls a disjoint prediction towards its target.

Public API
----------
* :func:`box_iou`, :func:`generalized_box_iou`: pairwise metrics, ``[N, 4] x [M, 4] -> [N, M]``;
* :func:`box_iou_elementwise`, :func:`generalized_box_iou_elementwise`: matched pairs,
  ``[..., 4] x [..., 4] -> [...]``;
* :func:`iou_loss` (the paper's ``L_IoU`` baseline) and :func:`giou_loss` (``L_GIoU``), Algorithm 2,
  with ``reduction`` ``"mean"`` (default), ``"sum"`` or ``"none"``.

Decisions and departures from the paper
---------------------------------------
* **Degenerate boxes and** ``eps``. The paper divides by ``U`` and ``A^c`` without guard; both are
  zero for two zero-area boxes (two identical points, or segments on one line), giving ``0/0``. As
  torchvision's ``generalized_box_iou_loss`` does, every denominator here is ``denominator + eps``
  (``eps = 1e-7`` by default). Consequences, all finite, values and gradients:
  ``IoU = 0`` and ``GIoU = 0`` for two identical zero-area boxes (loss 1); for a box of area ``a``,
  ``IoU(A, A) = GIoU(A, A) = a / (a + eps)``, equal to 1 up to ``eps / a`` (below float32 resolution
  once ``a >= 1``, e.g. pixel coordinates; keep boxes larger than about ``sqrt(eps)`` per side in
  normalised coordinates). The range ``-1 < GIoU <= IoU <= 1`` holds exactly with ``eps > 0``.
  ``eps = 0`` is allowed and gives the paper's (and torchvision's ``box_iou`` /
  ``generalized_box_iou``) formula exactly; degenerate pairs are then NaN, the caller's choice.
* **Invalid boxes.** The metric functions check their inputs and raise ``ValueError`` naming the
  argument and the first offending row for a box with ``x2 < x1`` or ``y2 < y1`` or a non-finite
  coordinate: a metric of an ill-formed box is a bug upstream, silently giving a number would hide
  it. The losses follow Algorithm 2 step 1: the *prediction* is re-ordered with min/max, so a
  regressor whose output has swapped corners still gets a meaningful loss and gradient (the paper's
  reason: the prediction comes from an unconstrained network); the *target* must be a valid box.
  Non-finite values are rejected in both arguments. (Validation costs one fused reduction per
  argument and one device synchronisation per call; the search for the offending row runs only
  when that screen fails.)
* **Reduction default.** ``giou_loss``/``iou_loss`` default to ``reduction="mean"`` (a training
  loss); torchvision's ``generalized_box_iou_loss`` defaults to ``"none"``. The mean of an empty
  batch is 0 (with a gradient graph), as torchvision does.
* **Dtypes.** Floating-point tensors only (float16, bfloat16, float32, float64), both arguments of
  one dtype and on one device; integer boxes raise ``TypeError`` (convert with ``.float()``), where
  torchvision silently up-casts them. float16 and bfloat16 boxes are computed in float32 (areas of
  pixel-sized boxes overflow float16's 65,504 and would give NaN), as torchvision does, and the
  result is returned in the input dtype (torchvision returns float32).
* Only axis-aligned 2-D boxes; the paper's Algorithm 1 holds for any convex shapes, but its
  experiments and Algorithm 2 use boxes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aicanon.core.checks import check_float

__all__ = [
    "box_area",
    "box_iou",
    "box_iou_elementwise",
    "generalized_box_iou",
    "generalized_box_iou_elementwise",
    "giou_loss",
    "iou_loss",
]

REDUCTIONS = ("mean", "sum", "none")
DEFAULT_EPS = 1e-7


# --------------------------------------------------------------------------- input checks
def _check_tensor(name: str, boxes: object) -> Tensor:
    if not isinstance(boxes, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of boxes (x1, y1, x2, y2), got {type(boxes).__name__}"
        )
    if not boxes.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16/bfloat16/float32/float64), got {boxes.dtype}; "
            "convert integer boxes with .float()"
        )
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"{name} must have a last dimension of size 4 (x1, y1, x2, y2), got shape {tuple(boxes.shape)}"
        )
    return boxes


def _check_pair(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} and {name_b} must share a dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on one device, got {a.device} and {b.device}")


def _where(position: int, leading_shape: torch.Size) -> str:
    """Index of the ``position``-th box (in row-major order) within ``leading_shape``."""
    if len(leading_shape) == 0:
        return "the single box"
    index = []
    for size in reversed(leading_shape):
        index.append(position % size)
        position //= size
    index.reverse()
    return f"index {index[0]}" if len(index) == 1 else f"index {tuple(index)}"


def _check_values(name: str, boxes: Tensor, require_ordered: bool) -> None:
    """Reject non-finite coordinates and, for a metric or a target, boxes with x2 < x1 or y2 < y1."""
    if boxes.numel() == 0:
        return
    with torch.no_grad():
        flat = boxes.detach().reshape(-1, 4)
        not_finite = ~torch.isfinite(flat).all(dim=1)
        bad = not_finite
        if require_ordered:
            reversed_ = (flat[:, 2] < flat[:, 0]) | (flat[:, 3] < flat[:, 1])
            bad = not_finite | reversed_
        if not bool(bad.any()):  # the one synchronisation per argument
            return
        if bool(not_finite.any()):
            position = int(torch.nonzero(not_finite)[0])
            raise ValueError(
                f"{name} must have finite coordinates, got a non-finite box at {_where(position, boxes.shape[:-1])}"
            )
        position = int(torch.nonzero(reversed_)[0])
        raise ValueError(
            f"{name} must hold boxes (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2, "
            f"got {flat[position].tolist()} at {_where(position, boxes.shape[:-1])}"
        )


def _suspicious(boxes: Tensor, require_ordered: bool) -> Tensor:
    """A 0-d bool tensor, True when ``boxes`` *may* hold a non-finite or (if ordered) reversed box.

    One fused reduction (``aminmax``) and no host synchronisation. For ordered boxes it reads the
    sides ``(x2 - x1, y2 - y1)``: each must be ``>= 0`` and finite, and every non-finite
    coordinate makes a side NaN (``inf - inf``, NaN in), ``+inf`` or ``-inf``; NaN fails both
    comparisons, as ``aminmax`` propagates it. For unordered boxes (a loss's prediction) the
    coordinates themselves must be finite. A side that overflows (float16 boxes spanning more than
    65,504) is a false alarm only: :func:`_check_values` then looks box by box and finds nothing.
    """
    values = boxes.detach()
    if require_ordered:
        values = values[..., 2:] - values[..., :2]
    low, high = torch.aminmax(values)
    if require_ordered:
        return ~((low >= 0) & (high < float("inf")))
    return ~((low > float("-inf")) & (high < float("inf")))


def _validate(*arguments: tuple[str, Tensor, bool]) -> None:
    """Check the values of every ``(name, boxes, require_ordered)`` with one host synchronisation.

    The screen of all arguments is combined into one flag and read once (the only device-to-host
    copy of a valid call); only when it is raised does :func:`_check_values` search each argument,
    in order, for the first offending box to name in the message.
    """
    flag = None
    for _, boxes, require_ordered in arguments:
        if boxes.numel() == 0:
            continue
        suspicious = _suspicious(boxes, require_ordered)
        flag = suspicious if flag is None else flag | suspicious
    if flag is None or not bool(flag):
        return
    for name, boxes, require_ordered in arguments:
        _check_values(name, boxes, require_ordered)


def _check_reduction(reduction: object) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction  # type: ignore[return-value]


# --------------------------------------------------------------------------- core formulas
def box_area(boxes: Tensor) -> Tensor:
    """Area ``(x2 - x1)(y2 - y1)`` of boxes ``[..., 4] -> [...]`` (Algorithm 2, steps 2-3).

    Computed in float32 for float16/bfloat16 boxes (see :func:`_upcast`), returned in their dtype
    (so an area above 65,504 is ``inf`` in float16: use ``.float()`` boxes to read it).
    """
    boxes = _check_tensor("boxes", boxes)
    _validate(("boxes", boxes, True))
    return _area(_upcast(boxes)).to(boxes.dtype)


def _area(boxes: Tensor) -> Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _upcast(boxes: Tensor) -> Tensor:
    """Float32 for float16/bfloat16 boxes, the boxes themselves otherwise.

    Areas are products of two sides: a 256 x 256 box already exceeds float16's largest value
    (65,504), so steps 2-6 of Algorithm 2 overflow to ``inf`` for pixel coordinates and step 7/8
    give ``inf / inf = NaN``; bfloat16 does not overflow but keeps 8 significant bits, so
    ``U = A^p + A^g - I`` loses most of its digits. torchvision up-casts the same way
    (``_upcast``). The result is cast back to the input dtype by the callers (torchvision returns
    float32 instead); IoU and GIoU lie in ``[-1, 1]``, where both half types are safe.
    """
    return boxes.float() if boxes.dtype in (torch.float16, torch.bfloat16) else boxes


def _iou_giou(
    a_low: Tensor, a_high: Tensor, b_low: Tensor, b_high: Tensor, eps: float, generalized: bool
) -> Tensor:
    """IoU (step 7) or GIoU (step 8 / Algorithm 1) of broadcastable boxes given as corners.

    ``*_low`` holds ``(x1, y1)`` and ``*_high`` ``(x2, y2)``, ``[..., 2]`` each (the metrics; the
    losses use the column form in :func:`_elementwise`, the same operations). The intersection's sides
    are clamped at 0 (step 4's "if x2I > x1I and y2I > y1I ... else 0"), the same function with
    gradients defined everywhere. The order of operations is torchvision's, so ``eps=0`` gives its
    ``box_iou``/``generalized_box_iou`` bit for bit in float32/float64.
    """
    a_wh, b_wh = a_high - a_low, b_high - b_low
    inter_wh = (torch.minimum(a_high, b_high) - torch.maximum(a_low, b_low)).clamp(min=0)  # step 4
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = a_wh[..., 0] * a_wh[..., 1] + b_wh[..., 0] * b_wh[..., 1] - inter  # steps 2, 3, 7
    iou = inter / (union + eps)  # step 7 (eps: see module docstring)
    if not generalized:
        return iou
    # Steps 5-6: the smallest enclosing box C contains both boxes, so its sides are >= 0 already.
    enclose_wh = torch.maximum(a_high, b_high) - torch.minimum(a_low, b_low)
    enclosure = enclose_wh[..., 0] * enclose_wh[..., 1]
    return iou - (enclosure - union) / (enclosure + eps)  # step 8 / Algorithm 1


def _pairwise(boxes1: Tensor, boxes2: Tensor, eps: float, generalized: bool) -> Tensor:
    a, b = _upcast(boxes1), _upcast(boxes2)
    a, b = a[:, None, :], b[None, :, :]
    return _iou_giou(a[..., :2], a[..., 2:], b[..., :2], b[..., 2:], eps, generalized).to(boxes1.dtype)


def _elementwise(boxes1: Tensor, boxes2: Tensor, eps: float, generalized: bool, order_first: bool) -> Tensor:
    """IoU or GIoU of matched pairs; ``order_first`` applies Algorithm 2 step 1 to ``boxes1``.

    The losses (``order_first``) compute on per-coordinate columns ``[...]`` of ``unbind(-1)``,
    as torchvision's losses do: the same operations in the same order as :func:`_iou_giou`, but
    the backward of ``unbind`` is one stack, where the ``[..., 2]`` corner slices and the
    ``[..., 0]``/``[..., 1]`` selects of their products each scatter into a zero-filled tensor
    (the loss's main cost on CPU: ~1.4x torchvision before). Values and gradients are the corner
    form's bit for bit: step 1's min/max backward sums two gradients per coordinate, which turns
    ``-0.0`` into ``+0.0`` as the old scatter-and-add did. Without step 1 (the metrics) the
    column form would keep ``-0.0`` gradients of zero-area boxes where the corner form gives
    ``+0.0``, so the metrics keep the corner form.
    """
    a, b = _upcast(boxes1), _upcast(boxes2)
    if not order_first:
        return _iou_giou(a[..., :2], a[..., 2:], b[..., :2], b[..., 2:], eps, generalized).to(boxes1.dtype)
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    # Algorithm 2 step 1: x̂1 = min(x1, x2), x̂2 = max(x1, x2), same for y.
    ax1, ax2 = torch.minimum(ax1, ax2), torch.maximum(ax1, ax2)
    ay1, ay2 = torch.minimum(ay1, ay2), torch.maximum(ay1, ay2)
    a_w, a_h = ax2 - ax1, ay2 - ay1
    b_w, b_h = bx2 - bx1, by2 - by1
    inter_w = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(min=0)  # step 4
    inter_h = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp(min=0)
    inter = inter_w * inter_h
    union = a_w * a_h + b_w * b_h - inter  # steps 2, 3, 7
    iou = inter / (union + eps)  # step 7 (eps: see module docstring)
    if generalized:
        # Steps 5-6: the smallest enclosing box C contains both boxes, so its sides are >= 0 already.
        enclosure = (torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)) * (
            torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
        )
        iou = iou - (enclosure - union) / (enclosure + eps)  # step 8 / Algorithm 1
    return iou.to(boxes1.dtype)


# --------------------------------------------------------------------------- metrics
def _check_pairwise(boxes1: object, boxes2: object, eps: object) -> float:
    a = _check_tensor("boxes1", boxes1)
    b = _check_tensor("boxes2", boxes2)
    for name, boxes in (("boxes1", a), ("boxes2", b)):
        if boxes.ndim != 2:
            raise ValueError(f"{name} must have shape [N, 4], got shape {tuple(boxes.shape)}")
    _check_pair("boxes1", a, "boxes2", b)
    eps = float(check_float("eps", eps, 0, finite=True))
    _validate(("boxes1", a, True), ("boxes2", b, True))
    return eps


def _check_elementwise(name_a: str, a: object, name_b: str, b: object, eps: object) -> float:
    a = _check_tensor(name_a, a)
    b = _check_tensor(name_b, b)
    _check_pair(name_a, a, name_b, b)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape [..., 4], got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return float(check_float("eps", eps, 0, finite=True))


def box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Pairwise IoU (Jaccard index) of ``boxes1 [N, 4]`` and ``boxes2 [M, 4]``, returned ``[N, M]``.

    ``IoU = |A ∩ B| / (|A ∪ B| + eps)``; ``eps=0`` is the plain ratio (torchvision's ``box_iou``).
    Raises ``ValueError`` for boxes with ``x2 < x1``, ``y2 < y1`` or non-finite coordinates.
    """
    eps = _check_pairwise(boxes1, boxes2, eps)
    return _pairwise(boxes1, boxes2, eps, generalized=False)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Pairwise GIoU (Algorithm 1) of ``boxes1 [N, 4]`` and ``boxes2 [M, 4]``, returned ``[N, M]``.

    ``GIoU = IoU - (|C| - |A ∪ B|) / (|C| + eps)`` with ``C`` the smallest enclosing box; in
    ``(-1, 1]``. ``eps=0`` is torchvision's ``generalized_box_iou``. Invalid boxes raise ``ValueError``.
    """
    eps = _check_pairwise(boxes1, boxes2, eps)
    return _pairwise(boxes1, boxes2, eps, generalized=True)


def box_iou_elementwise(boxes1: Tensor, boxes2: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """IoU of matched pairs: ``boxes1[i]`` with ``boxes2[i]``, ``[..., 4] x [..., 4] -> [...]``."""
    eps = _check_elementwise("boxes1", boxes1, "boxes2", boxes2, eps)
    _validate(("boxes1", boxes1, True), ("boxes2", boxes2, True))
    return _elementwise(boxes1, boxes2, eps, generalized=False, order_first=False)


def generalized_box_iou_elementwise(boxes1: Tensor, boxes2: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """GIoU of matched pairs (Algorithm 1): ``boxes1[i]`` with ``boxes2[i]``, ``[..., 4] -> [...]``."""
    eps = _check_elementwise("boxes1", boxes1, "boxes2", boxes2, eps)
    _validate(("boxes1", boxes1, True), ("boxes2", boxes2, True))
    return _elementwise(boxes1, boxes2, eps, generalized=True, order_first=False)


# --------------------------------------------------------------------------- losses
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # The mean of an empty batch is 0, still attached to the graph (as torchvision does).
    return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()


def _check_loss(pred: object, target: object, reduction: object, eps: object) -> tuple[str, float]:
    eps = _check_elementwise("pred", pred, "target", target, eps)
    reduction = _check_reduction(reduction)
    # Step 1 makes any finite prediction a box; the target has to be one already.
    _validate(("pred", pred, False), ("target", target, True))  # type: ignore[arg-type]
    return reduction, eps


def iou_loss(pred: Tensor, target: Tensor, reduction: str = "mean", eps: float = DEFAULT_EPS) -> Tensor:
    """The paper's ``L_IoU = 1 - IoU`` baseline (Algorithm 2, step 9), values in ``[0, 1]``.

    ``pred`` and ``target`` are matched boxes ``[..., 4]``; ``pred``'s corners are ordered first
    (step 1). Its gradient is exactly zero when the boxes do not overlap: the weakness GIoU removes.
    """
    reduction, eps = _check_loss(pred, target, reduction, eps)
    return _reduce(1.0 - _elementwise(pred, target, eps, generalized=False, order_first=True), reduction)


def giou_loss(pred: Tensor, target: Tensor, reduction: str = "mean", eps: float = DEFAULT_EPS) -> Tensor:
    """``L_GIoU = 1 - GIoU`` (Algorithm 2), values in ``[0, 2)``.

    ``pred`` and ``target`` are matched boxes ``[..., 4]`` (``x1, y1, x2, y2``). The prediction's
    corners are ordered with min/max (step 1), so swapped corners are allowed; ``target`` must be a
    valid box. ``reduction``: ``"mean"`` (default), ``"sum"`` or ``"none"``. ``eps`` is added to
    each denominator, as in torchvision's ``generalized_box_iou_loss`` (whose values and gradients
    this matches for valid predictions).
    """
    reduction, eps = _check_loss(pred, target, reduction, eps)
    return _reduce(1.0 - _elementwise(pred, target, eps, generalized=True, order_first=True), reduction)
