"""Device selection."""

from __future__ import annotations

import re

import torch

DEVICES = ("auto", "cpu", "cuda")


def check_device_name(name: str) -> str:
    """Return ``name`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; the one rule the CLI and
    :func:`select_device` share."""
    if not isinstance(name, str) or (name not in DEVICES and not re.fullmatch(r"cuda:\d+", name)):
        raise ValueError(f"device must be one of {DEVICES} or cuda:N, got {name!r}")
    return name


def select_device(name: str = "auto") -> torch.device:
    """``auto`` gives CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but torch sees no CUDA device")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (DESIGN: training loops use it on GPU); a no-op context on CPU."""
    import contextlib

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
