"""Argument checks shared by the public entry points: messages name the argument, what was
expected and what came (DESIGN: bad input gets a clear error).

Every check returns the value it was given, unchanged (an int stays an int, a tensor is the same
object), so a call can sit in an assignment without changing what the caller computes::

    steps = check_int("steps", steps)                    # an int >= 1
    check_int("top_k", top_k, allow_none=True)           # an int >= 1, or None
    check_float("lr", lr, 0, min_inclusive=False)        # a number > 0 (not NaN)
    check_float("beta", beta, 0, min_inclusive=False, finite=True)
    check_probability("dropout", dropout, allow_one=False)  # in [0, 1)
    check_choice("mode", mode, ("max", "mean"))
    check_tensor("x", x, dim=2, floating=True)
    check_tensor("boxes", boxes, shape=(None, 4))       # None: any size there

Bounds are printed as given (``check_float("p", p, 0, 1)`` says ``in [0, 1]``, with ``0.0, 1.0`` it
says ``in [0.0, 1.0]``).

A value of the wrong type raises ``TypeError``, one of the right type but out of range (or of the
wrong shape) raises ``ValueError``; a tensor of the wrong dtype is a ``TypeError``. Messages read
``"<name> must be <expectation>[ (<note>)], got <what came>"``: ``note`` is the caller's short reason
for the expectation (``"the rank of B A"``, ``"0 = torch's setting"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["check_choice", "check_float", "check_int", "check_probability", "check_tensor", "check_token_ids"]

# check_float accepts Python ints and floats and numpy's scalars (np.float32 from an array, say);
# bools are ints to Python but never a valid count or rate here.
_REAL = (int, float, np.integer, np.floating)


def _note(note: str | None) -> str:
    return f" ({note})" if note else ""


def _bounds(minimum: Any, maximum: Any, min_inclusive: bool, max_inclusive: bool) -> str:
    """``">= 1"``, ``"< 0.5"``, ``"in [0, 1)"`` or ``""`` (no bound)."""
    if minimum is not None and maximum is not None:
        return f"in {'[' if min_inclusive else '('}{minimum}, {maximum}{']' if max_inclusive else ')'}"
    if minimum is not None:
        return f"{'>=' if min_inclusive else '>'} {minimum}"
    if maximum is not None:
        return f"{'<=' if max_inclusive else '<'} {maximum}"
    return ""


def _in_bounds(value: Any, minimum: Any, maximum: Any, min_inclusive: bool, max_inclusive: bool) -> bool:
    if minimum is not None and not (value >= minimum if min_inclusive else value > minimum):
        return False
    if maximum is not None and not (value <= maximum if max_inclusive else value < maximum):
        return False
    return True


def check_int(
    name: str,
    value: Any,
    minimum: int | None = 1,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
    note: str | None = None,
) -> Any:
    """Return ``value`` if it is an int (not a bool) in ``[minimum, maximum]`` (``None``: unbounded
    on that side), or ``None`` when ``allow_none``.

    Raises ``TypeError("<name> must be an int, got float")`` for a wrong type and
    ``ValueError("<name> must be >= 1, got 0")`` (or ``"in [1, 4]"``, ``"<= 4"``) for a value out of range.
    """
    or_none = " or None" if allow_none else ""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int{_note(note)}{or_none}, got {type(value).__name__}")
    if not _in_bounds(value, minimum, maximum, True, True):
        expected = _bounds(minimum, maximum, True, True)
        raise ValueError(f"{name} must be {expected}{_note(note)}{or_none}, got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    finite: bool = False,
    allow_none: bool = False,
    note: str | None = None,
) -> Any:
    """Return ``value`` if it is a real number (an int or a float, numpy's included; not a bool),
    not NaN, finite when ``finite``, and within the bounds (``min_inclusive``/``max_inclusive`` say
    whether each bound itself is allowed); or ``None`` when ``allow_none``. The value comes back
    unchanged (an int stays an int): the caller converts it if it needs to.

    Raises ``TypeError("<name> must be a number, got str")`` for a wrong type and
    ``ValueError("<name> must be > 0, got 0.0")`` (``"in [0, 1)"``, ``"finite and >= 0"``,
    ``"a number, not NaN"``) for a wrong value.
    """
    or_none = " or None" if allow_none else ""
    if value is None and allow_none:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL):
        raise TypeError(f"{name} must be a number{_note(note)}{or_none}, got {type(value).__name__}")
    # Ints are always finite (and math.isnan would overflow on one beyond a float's range).
    if isinstance(value, (int, np.integer)):
        ok = True
    else:
        ok = not math.isnan(value) and (not finite or math.isfinite(value))
    if not ok or not _in_bounds(value, minimum, maximum, min_inclusive, max_inclusive):
        expected = _bounds(minimum, maximum, min_inclusive, max_inclusive)
        if finite:
            expected = f"finite and {expected}" if expected else "a finite number"
        elif not expected:
            expected = "a number, not NaN"
        raise ValueError(f"{name} must be {expected}{_note(note)}{or_none}, got {value}")
    return value


def check_probability(
    name: str,
    value: Any,
    *,
    allow_zero: bool = True,
    allow_one: bool = True,
    note: str | None = None,
) -> Any:
    """Return ``value`` if it is a number in ``[0, 1]`` (without 0 unless ``allow_zero``, without 1
    unless ``allow_one``); raise ``TypeError``/``ValueError``
    (``"dropout must be a probability in [0, 1), got 1.0"``) otherwise."""
    interval = _bounds(0, 1, allow_zero, allow_one)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL):
        raise TypeError(f"{name} must be a probability {interval}{_note(note)}, got {type(value).__name__}")
    is_nan = not isinstance(value, (int, np.integer)) and math.isnan(value)
    if is_nan or not _in_bounds(value, 0, 1, allow_zero, allow_one):
        raise ValueError(f"{name} must be a probability {interval}{_note(note)}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any], *, note: str | None = None) -> Any:
    """Return ``value`` if it is one of ``choices``; raise
    ``ValueError("<name> must be one of ('a', 'b'), got 'c'")`` otherwise."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}{_note(note)}, got {value!r}")
    return value


def _shape_text(shape: Sequence[int | None]) -> str:
    """``(None, 4)`` as ``"[*, 4]"``: ``*`` is a dimension of any size."""
    return "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"


def check_tensor(
    name: str,
    value: Any,
    *,
    dim: int | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: torch.dtype | tuple[torch.dtype, ...] | None = None,
    floating: bool | None = None,
    note: str | None = None,
) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor`` with ``dim`` dimensions, of ``shape`` (``None`` in
    it: any size there; its length fixes the number of dimensions), of ``dtype`` (one dtype or a
    tuple of allowed ones) and floating-point (``floating=True``) or not (``floating=False``).

    Raises ``TypeError`` when ``value`` is not a tensor or has the wrong dtype
    (``"x must be a floating-point tensor, got torch.int64"``), ``ValueError`` for the wrong number of
    dimensions or shape (``"boxes must be a tensor of shape [*, 4], got (3, 5)"``).
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{_note(note)}, got {type(value).__name__}")
    if dtype is not None:
        allowed = dtype if isinstance(dtype, tuple) else (dtype,)
        if value.dtype not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise TypeError(f"{name} must be a {want} tensor{_note(note)}, got {value.dtype}")
    if floating is not None and value.is_floating_point() != floating:
        want = "a floating-point" if floating else "a non-floating-point (integer or bool)"
        raise TypeError(f"{name} must be {want} tensor{_note(note)}, got {value.dtype}")
    if dim is not None and value.dim() != dim:
        raise ValueError(f"{name} must be a {dim}-D tensor{_note(note)}, got shape {tuple(value.shape)}")
    if shape is not None:
        fits = value.dim() == len(shape) and all(s is None or s == n for s, n in zip(shape, value.shape))
        if not fits:
            want = f"a tensor of shape {_shape_text(shape)}{_note(note)}"
            raise ValueError(f"{name} must be {want}, got {tuple(value.shape)}")
    return value


def check_token_ids(name: str, value: Any, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Return ``value`` if it is a 2-D int64/int32 tensor ``[batch, length]`` (of ``shape`` when given:
    token ids, segment ids); raise ValueError naming ``name``, what was expected and what came."""
    ok = isinstance(value, torch.Tensor) and value.dim() == 2 and value.dtype in (torch.long, torch.int)
    if ok and shape is not None:
        ok = tuple(value.shape) == tuple(shape)
    if not ok:
        got = (
            f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        )
        want = "[batch, length]" if shape is None else f"of shape {tuple(shape)}"
        raise ValueError(f"{name} must be an integer tensor {want}, got {got}")
    return value
