"""What the GPU benchmarks share: device sync, the measured matmul ceiling, and the timing of a
language model's training step (median seconds per step after warm-up, bf16 autocast on CUDA).

Benchmark scripts run as ``python benchmarks/<script>.py``, so this folder is ``sys.path[0]`` and
``import _gpu`` finds this module.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from aicanon.core.device import autocast


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, size: int = 8192) -> float:
    """Measured bf16 (CUDA) / float32 (CPU, at most 512) matmul FLOP/s on ``size x size`` operands."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    size = size if device.type == "cuda" else min(size, 512)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    n = 20 if device.type == "cuda" else 2
    start = time.perf_counter()
    for _ in range(n):
        a @ b
    sync(device)
    return 2 * size**3 * n / (time.perf_counter() - start)


def time_lm_training(
    model: torch.nn.Module,
    ids: torch.Tensor,
    device: torch.device,
    steps: int,
    warmup: int,
    *,
    hf: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
) -> float:
    """Seconds per next-token training step on ``ids`` (median of ``steps`` after ``warmup``);
    ``hf``: the model returns transformers' output object (``.logits``)."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, betas=betas, weight_decay=0.1, fused=device.type == "cuda"
    )
    x, y = ids[:, :-1], ids[:, 1:]

    def step() -> None:
        with autocast(device):
            out = model(x)
            logits = out.logits if hf else out
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
