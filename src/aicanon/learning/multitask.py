"""Multi-task learning in deep networks: the taxonomy of Ruder's overview (arXiv 1706.05098) as an API.

The overview sorts the ways a deep network learns several tasks at once into a few categories; each
has at least one working method here, and :data:`TAXONOMY` maps a category to its implementations:

=======================  ======================================  ============================================
category                 overview section                        implementation
=======================  ======================================  ============================================
hard parameter sharing   Sec. 3.1 (Caruana 1993)                 :class:`HardSharingNetwork`
soft parameter sharing   Sec. 3.2, 6.3 (cross-stitch networks)   :mod:`aicanon.learning.cross_stitch`
loss weighting           Sec. 6.6 (weighting with uncertainty)   :mod:`aicanon.learning.loss_weighting`:
                                                                 equal, fixed, uncertainty, GradNorm
auxiliary tasks          Sec. 7 (related task, hints, ...)       :class:`AuxiliaryTaskObjective`
=======================  ======================================  ============================================

Hard parameter sharing (Sec. 3.1): one trunk ``h = f_shared(x)`` feeds one head per task,
``y_t = g_t(h)``; the network minimises a weighted sum of the task losses

    L = sum_t w_t L_t(g_t(f_shared(x)), y_t)        (1; our numbering: the overview states it in words)

(the overview cites Baxter 1997: the risk of overfitting the shared parameters is an order N, the
number of tasks, smaller than that of the task-specific ones). Soft sharing gives each task its own
column and ties the columns (cross-stitch units mix their activations). Loss weighting chooses the
``w_t`` of (1). An auxiliary-task set-up trains (1) with ``w_main = 1`` and ``w_aux = lambda >= 0``
but judges only the main task (Sec. 7).

:func:`task_losses` computes the ``L_t`` from a dict of head outputs: cross-entropy for a
classification task, mean squared error for a regression task.

Departures: the overview is a survey and fixes no architecture; the trunk is whatever module the
caller passes (the experiment uses an MLP). GradNorm (Chen et al. 2018) postdates the overview's
first version; it is included as the second adaptive weighting the issue asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.learning.loss_weighting import FixedWeighting

__all__ = [
    "TAXONOMY",
    "AuxiliaryTaskObjective",
    "HardSharingNetwork",
    "Task",
    "check_tasks",
    "task_losses",
]

TASK_KINDS = ("classification", "regression")


@dataclass(frozen=True)
class Task:
    """One task of a multi-task problem: its name, its kind and the size of its head's output
    (the number of classes of a classification task, the number of targets of a regression task)."""

    name: str
    kind: str
    outputs: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Task name must be a non-empty string, got {self.name!r}")
        check_choice("kind", self.kind, TASK_KINDS)
        check_int("outputs", self.outputs, 2 if self.kind == "classification" else 1)


def check_tasks(tasks: Sequence[Task]) -> tuple[Task, ...]:
    """Return ``tasks`` as a tuple if it is a non-empty sequence of :class:`Task` with distinct names."""
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a sequence of Task, got {type(tasks).__name__}")
    if len(tasks) == 0:
        raise ValueError("tasks must name at least one Task, got an empty sequence")
    for task in tasks:
        if not isinstance(task, Task):
            raise TypeError(f"tasks must hold Task objects, got {type(task).__name__}")
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be distinct, got {names}")
    return tuple(tasks)


class HardSharingNetwork(nn.Module):
    """Hard parameter sharing (Sec. 3.1): one shared ``trunk`` and one linear head per task.

    ``forward(x)`` returns ``{task name: head output}`` (logits ``[N, classes]`` or regression
    values ``[N, outputs]``). ``trunk_features`` is the width of the trunk's output;
    :attr:`last_shared_weight` is the weight GradNorm takes its gradient norms on (the last shared
    layer, as Chen et al. recommend): the last ``nn.Linear`` or ``nn.Conv*`` of the trunk.
    """

    def __init__(self, trunk: nn.Module, trunk_features: int, tasks: Sequence[Task]) -> None:
        super().__init__()
        if not isinstance(trunk, nn.Module):
            raise TypeError(f"trunk must be an nn.Module, got {type(trunk).__name__}")
        check_int("trunk_features", trunk_features)
        self.tasks = check_tasks(tasks)
        self.trunk = trunk
        self.heads = nn.ModuleDict({t.name: nn.Linear(trunk_features, t.outputs) for t in self.tasks})

    @property
    def last_shared_weight(self) -> nn.Parameter:
        layers = [m for m in self.trunk.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        if not layers:
            raise ValueError("the trunk has no Linear or Conv layer whose weight GradNorm could use")
        return layers[-1].weight

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        check_tensor("x", x, floating=True)
        shared = self.trunk(x)
        return {name: head(shared) for name, head in self.heads.items()}


def task_losses(
    outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor], tasks: Sequence[Task]
) -> list[Tensor]:
    """The loss ``L_t`` of every task, in the order of ``tasks``: cross-entropy of the logits against
    int64 class labels ``[N]`` (classification) or mean squared error against float targets ``[N]``
    or ``[N, outputs]`` (regression)."""
    tasks = check_tasks(tasks)
    losses = []
    for task in tasks:
        for kind, mapping in (("outputs", outputs), ("targets", targets)):
            if task.name not in mapping:
                raise ValueError(
                    f"{kind} must hold an entry for task {task.name!r}, got keys {sorted(mapping)}"
                )
        output, target = outputs[task.name], targets[task.name]
        check_tensor(f"outputs[{task.name!r}]", output, shape=(None, task.outputs), floating=True)
        if task.kind == "classification":
            check_tensor(f"targets[{task.name!r}]", target, shape=(output.shape[0],), dtype=torch.long)
            losses.append(F.cross_entropy(output, target))
        else:
            check_tensor(f"targets[{task.name!r}]", target, floating=True)
            if target.dim() == 1 and task.outputs == 1:
                target = target.unsqueeze(1)
            if target.shape != output.shape:
                raise ValueError(
                    f"targets[{task.name!r}] must have shape {tuple(output.shape)} (or [N] for one output), "
                    f"got {tuple(targets[task.name].shape)}"
                )
            losses.append(F.mse_loss(output, target))
    return losses


class AuxiliaryTaskObjective(FixedWeighting):
    """An auxiliary-task set-up (Sec. 7): ``L = L_main + sum_a lambda_a L_a`` with every
    ``lambda_a >= 0``; only the main task is evaluated, the auxiliary tasks are there for the
    inductive bias they give the shared layers (Sec. 7.1, "related task").

    A :class:`~aicanon.learning.loss_weighting.FixedWeighting` with weights ``[1, *lambda]``:
    ``forward(losses)`` takes the losses in the order ``[main, *auxiliary]``.
    """

    def __init__(self, auxiliary_weights: Sequence[float]) -> None:
        if isinstance(auxiliary_weights, (str, bytes)) or not isinstance(auxiliary_weights, Sequence):
            raise TypeError(
                f"auxiliary_weights must be a sequence of numbers, got {type(auxiliary_weights).__name__}"
            )
        if len(auxiliary_weights) == 0:
            raise ValueError("auxiliary_weights must hold one lambda per auxiliary task, got none")
        for index, weight in enumerate(auxiliary_weights):
            check_float(f"auxiliary_weights[{index}]", weight, 0, finite=True, note="lambda >= 0")
        super().__init__([1.0, *auxiliary_weights])


def _taxonomy() -> dict[str, dict[str, type]]:
    from aicanon.learning.cross_stitch import CrossStitchNetwork
    from aicanon.learning.loss_weighting import EqualWeighting, GradNorm, UncertaintyWeighting

    return {
        "hard parameter sharing": {"shared trunk with task heads": HardSharingNetwork},
        "soft parameter sharing": {"cross-stitch network": CrossStitchNetwork},
        "loss weighting": {
            "equal": EqualWeighting,
            "fixed": FixedWeighting,
            "uncertainty": UncertaintyWeighting,
            "gradnorm": GradNorm,
        },
        "auxiliary tasks": {"related task": AuxiliaryTaskObjective},
    }


class _Taxonomy(Mapping):
    """The overview's categories -> {method name: class}; built on first use (the method modules
    import this one)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, type]] | None = None

    def _get(self) -> dict[str, dict[str, type]]:
        if self._data is None:
            self._data = _taxonomy()
        return self._data

    def __getitem__(self, key: str) -> dict[str, type]:
        return self._get()[key]

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


TAXONOMY: Mapping[str, dict[str, type]] = _Taxonomy()
