"""Argument checks shared by the public entry points: messages name the argument, what was
expected and what came (DESIGN: bad input gets a clear error)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["check_int", "check_token_ids"]


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool) ``>= minimum``; raise TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
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
