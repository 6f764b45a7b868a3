"""Device selection."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def select_device(name: str = "auto") -> torch.device:
    """``auto`` gives CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if name not in DEVICES and not str(name).startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICES} (or cuda:N), got {name!r}")
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
