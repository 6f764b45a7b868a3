"""Soft parameter sharing with cross-stitch units (Misra et al., CVPR 2016; Ruder's overview Sec. 6.3).

Every task has its own column (a copy of the trunk architecture, its own weights). After each
stage of the columns, a cross-stitch unit replaces each task's activation by a learned linear
combination of all tasks' activations at that point. For two tasks A and B (Misra et al., Eq. 1):

    [x~_A]   [alpha_AA  alpha_AB] [x_A]
    [x~_B] = [alpha_BA  alpha_BB] [x_B]                                              (1)

and for T tasks ``x~_t = sum_s alpha_ts x_s``. Identity ``alpha`` gives T separate networks; equal
entries give one shared network. Misra et al. initialise ``alpha`` as a convex combination,
``(alpha_S, alpha_D) = (0.9, 0.1)`` for self and other (the ablation in their Sec. 4 prefers it), and
train ``alpha`` with a learning rate scaled up by 10^2-10^3: the caller puts
:meth:`CrossStitchNetwork.stitch_parameters` in its own optimiser group for that.

Departures: one scalar ``alpha_ts`` per pair and stage, shared by every channel and position (as in
the paper's main experiments); for ``T > 2`` the off-diagonal initial mass ``1 - alpha_S`` is split
evenly among the other tasks so that each row still sums to 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.learning.multitask import Task, check_tasks

__all__ = ["CrossStitchNetwork", "CrossStitchUnit"]


class CrossStitchUnit(nn.Module):
    """Mix ``num_tasks`` activations of one shape with a learned ``[T, T]`` matrix (Eq. 1).

    ``self_weight`` is the initial ``alpha_tt`` (0.9 in the paper); the rest of each row,
    ``1 - self_weight``, is split evenly over the other tasks.
    """

    def __init__(self, num_tasks: int, self_weight: float = 0.9) -> None:
        super().__init__()
        check_int("num_tasks", num_tasks, 2, note="a cross-stitch unit mixes at least two tasks")
        check_float("self_weight", self_weight, 0, 1)
        other = (1.0 - self_weight) / (num_tasks - 1)
        alpha = torch.full((num_tasks, num_tasks), other)
        alpha.fill_diagonal_(float(self_weight))
        self.alpha = nn.Parameter(alpha)
        self.num_tasks = num_tasks

    def forward(self, activations: Sequence[Tensor]) -> list[Tensor]:
        if len(activations) != self.num_tasks:
            raise ValueError(
                f"activations must hold {self.num_tasks} tensors (one per task), got {len(activations)}"
            )
        first = check_tensor("activations[0]", activations[0], floating=True)
        for index, activation in enumerate(activations[1:], start=1):
            check_tensor(f"activations[{index}]", activation, shape=tuple(first.shape), floating=True)
        stacked = torch.stack(list(activations))  # [T, ...]
        mixed = torch.tensordot(self.alpha, stacked, dims=([1], [0]))  # x~_t = sum_s alpha_ts x_s
        return list(mixed.unbind(0))


class CrossStitchNetwork(nn.Module):
    """One column per task, cross-stitch units between stages, one linear head per task.

    ``columns[t]`` is task ``t``'s column as a sequence of stages (e.g. ``nn.Sequential`` of
    ``Linear, ReLU`` blocks); all columns must have the same number of stages and the same output
    shapes at each stage. A unit follows every stage. ``forward(x)`` returns ``{task: output}``.
    """

    def __init__(
        self,
        columns: Sequence[Sequence[nn.Module]],
        trunk_features: int,
        tasks: Sequence[Task],
        self_weight: float = 0.9,
    ) -> None:
        super().__init__()
        self.tasks = check_tasks(tasks)
        check_int("trunk_features", trunk_features)
        if len(self.tasks) < 2:
            raise ValueError(f"tasks must hold at least two tasks for cross-stitching, got {len(self.tasks)}")
        if len(columns) != len(self.tasks):
            raise ValueError(f"columns must hold one column per task ({len(self.tasks)}), got {len(columns)}")
        stages = [list(column) for column in columns]
        depth = len(stages[0])
        if depth == 0 or any(len(s) != depth for s in stages):
            raise ValueError(
                f"columns must all have the same non-zero number of stages, got {[len(s) for s in stages]}"
            )
        for column in stages:
            for stage in column:
                if not isinstance(stage, nn.Module):
                    raise TypeError(
                        f"each stage of a column must be an nn.Module, got {type(stage).__name__}"
                    )
        # columns[t][k]: stage k of task t's column.
        self.columns = nn.ModuleList(nn.ModuleList(column) for column in stages)
        self.units = nn.ModuleList(CrossStitchUnit(len(self.tasks), self_weight) for _ in range(depth))
        self.heads = nn.ModuleDict({t.name: nn.Linear(trunk_features, t.outputs) for t in self.tasks})

    def stitch_parameters(self) -> list[nn.Parameter]:
        """The ``alpha`` matrices (Misra et al. train them with a larger learning rate)."""
        return [unit.alpha for unit in self.units]

    def network_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the ``alpha`` matrices."""
        stitch = {id(p) for p in self.stitch_parameters()}
        return [p for p in self.parameters() if id(p) not in stitch]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        check_tensor("x", x, floating=True)
        activations = [x] * len(self.tasks)
        for depth, unit in enumerate(self.units):
            activations = unit([column[depth](a) for column, a in zip(self.columns, activations)])
        return {task.name: self.heads[task.name](a) for task, a in zip(self.tasks, activations)}
