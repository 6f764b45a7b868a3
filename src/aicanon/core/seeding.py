"""Seeding and thread counts: the same seed (at the same thread count) gives the same quick metrics on CPU."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from aicanon.core.checks import check_int


def seed(n: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) with ``n``; return a torch Generator seeded too.

    With ``deterministic`` set, PyTorch is asked for deterministic kernels where they exist
    (``warn_only``: an op without one warns instead of failing).
    """
    check_int("seed n", n, 0)
    random.seed(n)
    np.random.seed(n % 2**32)
    torch.manual_seed(n)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator()
    generator.manual_seed(n)
    return generator


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None or 0: leave the count alone), then restore it.

    Metrics can differ in their last digits between thread counts (reductions split differently),
    and on a busy 2-core machine one thread is often ~10x faster than two spinning ones.
    """
    check_int("threads", n, 0, allow_none=True)
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
