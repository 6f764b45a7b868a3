"""Sinusoid regression tasks (MAML, Section 5.1).

Each task regresses ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5.0]`` and phase
``phi ~ U[0, pi]``; inputs ``x ~ U[-5.0, 5.0]``. A task gives ``K`` support points (the inner loop's
data; K = 5 or 10 in the paper) and query points for the meta-loss or the evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from aicanon.core.checks import check_float, check_int
from aicanon.learning.maml import TaskBatch

__all__ = ["SinusoidTasks"]


@dataclass(frozen=True)
class SinusoidTasks:
    """The task distribution ``p(T)`` of Section 5.1 (its ranges are the defaults)."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            low, high = getattr(self, name)
            check_float(f"{name}[0]", low, finite=True)
            check_float(f"{name}[1]", high, low, finite=True)

    def sample_parameters(
        self, tasks: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Amplitudes and phases ``[tasks]`` of ``tasks`` new tasks."""
        check_int("tasks", tasks, 1)
        u = torch.rand(2, tasks, generator=generator)
        amplitude = self.amplitude[0] + (self.amplitude[1] - self.amplitude[0]) * u[0]
        phase = self.phase[0] + (self.phase[1] - self.phase[0]) * u[1]
        return amplitude, phase

    def sample_inputs(self, tasks: int, points: int, generator: torch.Generator | None = None) -> Tensor:
        check_int("points", points, 1)
        return self.x_range[0] + (self.x_range[1] - self.x_range[0]) * torch.rand(
            tasks, points, 1, generator=generator
        )

    @staticmethod
    def evaluate(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
        """``A sin(x - phi)`` for ``x`` ``[tasks, points, 1]`` and per-task ``A``, ``phi`` ``[tasks]``."""
        return amplitude.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))

    def sample(
        self, tasks: int, shots: int, queries: int, generator: torch.Generator | None = None
    ) -> tuple[TaskBatch, Tensor, Tensor]:
        """``tasks`` tasks with ``shots`` support and ``queries`` query points each; also their
        amplitudes and phases."""
        check_int("shots", shots, 1)
        check_int("queries", queries, 1)
        amplitude, phase = self.sample_parameters(tasks, generator)
        x = self.sample_inputs(tasks, shots + queries, generator)
        y = self.evaluate(x, amplitude, phase)
        batch = TaskBatch(x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:])
        return batch, amplitude, phase
