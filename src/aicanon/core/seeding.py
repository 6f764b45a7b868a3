"""Seeding: the same seed gives the same quick metrics on CPU."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed(n: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) with ``n``; return a torch Generator seeded too.

    With ``deterministic`` set, PyTorch is asked for deterministic kernels where they exist
    (``warn_only``: an op without one warns instead of failing).
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"seed n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"seed n must be >= 0, got {n}")
    random.seed(n)
    np.random.seed(n % 2**32)
    torch.manual_seed(n)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator()
    generator.manual_seed(n)
    return generator
