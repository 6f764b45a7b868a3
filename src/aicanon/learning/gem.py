r"""Gradient Episodic Memory (Lopez-Paz & Ranzato, NeurIPS 2017), and A-GEM (Chaudhry et al., ICLR 2019).

GEM learns a stream of tasks (:mod:`aicanon.learning.streams`) while keeping an *episodic memory*
``M_k`` of examples of every task ``k`` seen so far (Section 3). While it trains on task ``t`` it
solves, for each mini-batch ``(x, y)``, the constrained problem of Eq. 6-7:

    minimise_theta  l(f_theta(x, t), y)
    subject to      l(f_theta, M_k) <= l(f_{theta^{t-1}}, M_k)     for all k < t,

i.e. a step may not increase the loss on any earlier task's memory. To first order (Eq. 10) the
constraints hold when the proposed update does not point against any memory gradient:

    <g, g_k> = < dl(f_theta(x, t), y)/dtheta , dl(f_theta, M_k)/dtheta >  >= 0    for all k < t.

When every constraint holds, GEM takes the plain SGD step ``g``. When one is violated, it projects
``g`` to the closest gradient ``g~`` (in squared L2 norm) that satisfies them all, the primal QP of
Eq. 11:

    minimise_z  1/2 ||g - z||^2      subject to  G z >= 0,       G = -(g_1, ..., g_{t-1})^T up to sign;

here ``G`` is the ``[t-1, p]`` matrix whose rows are the memory gradients ``g_k`` (the paper writes
``G = -(g_1, ..., g_{t-1})`` and the constraint ``G z <= 0``: the same set). ``p`` (the number of
parameters, about 90k for the 2x100 MLP) is far larger than ``t - 1``, so GEM solves the dual,
Eq. 12-13, a QP in ``t - 1`` variables:

    minimise_v  1/2 v^T G G^T v + g^T G^T v      subject to  v >= 0,
    g~ = G^T v* + g.

**Memory strength (margin) gamma.** Section 3 adds a small constant ``gamma >= 0`` to the dual
solution, to bias the projection towards updates that also *improve* the earlier tasks (positive
backward transfer). The paper's code (``project2cone2`` in github.com/facebookresearch/
GradientEpisodicMemory, ``memory_strength = 0.5`` for every experiment) does it by raising the
bound of the dual: ``v >= gamma``; we do the same (:func:`solve_dual`). Substituting
``v = u + gamma`` shows what that solves: the projection, onto the same cone ``G z >= 0``, of the
gradient shifted towards the memories, ``g + gamma * sum_k g_k``:

    minimise_z  1/2 ||(g + gamma G^T 1) - z||^2      subject to  G z >= 0.

So ``g~`` satisfies every constraint ``<g~, g_k> >= 0`` exactly (the margin does not loosen them),
and it moves further along the memory gradients than the plain projection. The code also adds
``eps I`` (``eps = 1e-3``) to ``G G^T`` so that the dual stays strictly convex when memory gradients
are (nearly) linearly dependent; in the primal that makes the constraints soft,
``G z + s >= -eps * gamma`` with a penalty ``||s||^2 / (2 eps)`` on the slack ``s`` (derivation in
:func:`solve_dual`); ``eps = 0`` gives the hard projection above. The tests check our dual solution
against a direct primal solve (scipy), for both.

**A-GEM** (Chaudhry, Ranzato, Rohrbach & Elhoseiny, "Efficient Lifelong Learning with A-GEM", ICLR
2019, Eq. 10-11) replaces the ``t - 1`` constraints by one, on the gradient ``g_ref`` of a random
batch drawn from the memories of all earlier tasks, which has a closed-form projection:

    g~ = g - (g^T g_ref / g_ref^T g_ref) g_ref      if g^T g_ref < 0,   else g.

**Episodic memory.** The memory of each task holds its *last* ``M`` training examples (Section 6:
"the episodic memory of each task is populated with the last M examples"; a ring buffer per task).
Each memory gradient is that of the mean loss over the task's whole memory (GEM), with the task's
output mask (:func:`~aicanon.learning.streams.masked_logits`, the class-incremental CIFAR-100
protocol of Section 6).

Departures from the paper and its code, and why:

* The margin is applied as the code does (``v >= gamma``), not as the text's wording ("adding
  gamma to v*"): the code is what produced the paper's numbers. ``eps = 1e-3`` as the code.
* The paper's code fills one ring buffer whose write position carries over from task to task, so a
  task's memory holds its last ``M`` examples only when the task's size and batch size line up; ours
  keeps each task's last ``M`` examples exactly, as the text says.
* Memory gradients come from ``torch.autograd.grad`` of each memory's loss; the code zeroes and
  copies ``.grad`` (the same numbers).
* A-GEM draws its reference batch (``agem_samples`` examples, 256 by default as Chaudhry et al.'s
  MNIST setting) uniformly from the union of the earlier tasks' memories.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import quadprog
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.learning.streams import Task, masked_logits

__all__ = [
    "GEM",
    "EpisodicMemory",
    "agem_project",
    "flat_gradient",
    "project_gradient",
    "solve_dual",
    "violated",
]


def _check_gradients(gradient: Tensor, memory_gradients: Tensor) -> None:
    check_tensor("gradient", gradient, dim=1, floating=True)
    check_tensor("memory_gradients", memory_gradients, dim=2, floating=True)
    if memory_gradients.size(1) != gradient.size(0):
        raise ValueError(
            f"memory_gradients must have shape [K, {gradient.size(0)}] (one row per earlier task, as many "
            f"columns as gradient has entries), got {tuple(memory_gradients.shape)}"
        )


def violated(gradient: Tensor, memory_gradients: Tensor) -> Tensor:
    """Which constraints of Eq. 10 the proposed ``gradient`` ``[p]`` violates: ``<g, g_k> < 0`` for each
    row ``g_k`` of ``memory_gradients`` ``[K, p]``; a bool tensor ``[K]``."""
    _check_gradients(gradient, memory_gradients)
    return memory_gradients @ gradient < 0


def solve_dual(gradient: Tensor, memory_gradients: Tensor, margin: float = 0.5, eps: float = 1e-3) -> Tensor:
    r"""The dual QP of Eq. 12-13 with the margin as a lower bound: ``v* [K]`` (float64, on the CPU) of

        minimise_v  1/2 v^T (G G^T + eps I) v + (G g)^T v     subject to  v >= margin,

    with ``G = memory_gradients`` ``[K, p]`` and ``g = gradient`` ``[p]``; ``g~ = g + G^T v*``.

    It is the Lagrangian dual of the primal (``g' = g + margin G^T 1``, slack ``s [K]``)

        minimise_{z, s}  1/2 ||z - g'||^2 + ||s||^2 / (2 eps)    subject to  G z + s >= -eps margin,

    whose stationarity gives ``z = g' + G^T u``, ``s = eps u`` for the multipliers ``u = v - margin >= 0``;
    with ``eps = 0`` the slack vanishes and the constraints are hard (``G z >= 0``). Solved with
    ``quadprog`` (Goldfarb-Idnani) in float64, as the paper's code does.
    """
    _check_gradients(gradient, memory_gradients)
    check_float("margin", margin, 0.0, finite=True, note="the memory strength gamma")
    check_float("eps", eps, 0.0, finite=True)
    memories = memory_gradients.detach().to("cpu", torch.float64).numpy()
    g = gradient.detach().to("cpu", torch.float64).numpy()
    count = memories.shape[0]
    if count == 0:
        return torch.zeros(0, dtype=torch.float64)
    gram = memories @ memories.T
    gram = 0.5 * (gram + gram.T) + eps * np.eye(count)
    # quadprog minimises 1/2 v^T P v - a^T v subject to C^T v >= b.
    try:
        v = quadprog.solve_qp(gram, -(memories @ g), np.eye(count), np.full(count, float(margin)))[0]
    except ValueError as error:  # "matrix G is not positive definite"
        raise ValueError(
            f"the dual QP is not strictly convex: the {count} memory gradients are linearly dependent "
            f"(or zero) and eps={eps}; use eps > 0 (the paper's code uses 1e-3). quadprog: {error}"
        ) from error
    return torch.from_numpy(np.asarray(v, dtype=np.float64))


def project_gradient(
    gradient: Tensor, memory_gradients: Tensor, margin: float = 0.5, eps: float = 1e-3
) -> Tensor:
    """GEM's update (Section 3): ``gradient`` itself when no constraint ``<g, g_k> >= 0`` is violated,
    otherwise ``g~ = g + G^T v*`` (Eq. 11-13, :func:`solve_dual`), in ``gradient``'s dtype and device.

    ``gradient``: ``[p]``, the loss gradient on the current mini-batch; ``memory_gradients``:
    ``[K, p]``, one row per earlier task (``K = 0`` is allowed: nothing to protect).
    """
    check_float("margin", margin, 0.0, finite=True, note="the memory strength gamma")
    check_float("eps", eps, 0.0, finite=True)
    if not violated(gradient, memory_gradients).any():
        return gradient
    v = solve_dual(gradient, memory_gradients, margin, eps)
    projected = gradient.detach().double().cpu() + memory_gradients.detach().double().cpu().T @ v
    return projected.to(gradient.device, gradient.dtype)


def agem_project(gradient: Tensor, reference_gradient: Tensor) -> Tensor:
    """A-GEM's update (Chaudhry et al. 2019, Eq. 11): ``g`` when ``g^T g_ref >= 0``, otherwise
    ``g - (g^T g_ref / g_ref^T g_ref) g_ref`` (then ``<g~, g_ref> = 0``). Both ``[p]``."""
    check_tensor("gradient", gradient, dim=1, floating=True)
    check_tensor("reference_gradient", reference_gradient, shape=(gradient.size(0),), floating=True)
    dot = torch.dot(gradient, reference_gradient)
    if dot >= 0:
        return gradient
    return gradient - (dot / torch.dot(reference_gradient, reference_gradient)) * reference_gradient


def flat_gradient(loss: Tensor, parameters: Sequence[nn.Parameter]) -> Tensor:
    """``d loss / d parameters`` as one vector ``[p]`` (zeros for parameters the loss does not use)."""
    grads = torch.autograd.grad(loss, list(parameters), allow_unused=True)
    return torch.cat(
        [torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1) for g, p in zip(grads, parameters)]
    )


class EpisodicMemory:
    """The last ``memory_size`` training examples of each task seen (a ring buffer per task), and the
    task itself (for its output mask)."""

    def __init__(self, memory_size: int) -> None:
        check_int("memory_size", memory_size, 1, note="examples kept per task")
        self.memory_size = memory_size
        self._x: dict[int, Tensor] = {}
        self._y: dict[int, Tensor] = {}
        self._filled: dict[int, int] = {}
        self._position: dict[int, int] = {}
        self._tasks: dict[int, Task] = {}

    @property
    def task_ids(self) -> list[int]:
        """Ids of the tasks with a memory, in the order they were first seen."""
        return list(self._tasks)

    def __len__(self) -> int:
        """Examples held, over all tasks."""
        return sum(self._filled.values())

    def add(self, task: Task, x: Tensor, y: Tensor) -> None:
        """Write a mini-batch of ``task`` into its ring buffer (the oldest examples make room)."""
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task, got {type(task).__name__}")
        check_tensor("x", x, floating=True)
        check_tensor("y", y, dim=1, dtype=torch.int64)
        if x.size(0) != y.size(0) or x.dim() < 2:
            raise ValueError(
                f"x must be [N, ...] and y [N] with the same N, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if task.id not in self._tasks:
            self._tasks[task.id] = task
            self._x[task.id] = x.new_zeros((self.memory_size, *x.shape[1:]))
            self._y[task.id] = y.new_zeros(self.memory_size)
            self._filled[task.id] = 0
            self._position[task.id] = 0
        elif self._x[task.id].shape[1:] != x.shape[1:]:
            raise ValueError(
                f"x must have example shape {tuple(self._x[task.id].shape[1:])} as task {task.id}'s earlier "
                f"examples, got {tuple(x.shape[1:])}"
            )
        x, y = x.detach()[-self.memory_size :], y[-self.memory_size :]
        slots = (self._position[task.id] + torch.arange(x.size(0))) % self.memory_size
        self._x[task.id][slots.to(x.device)] = x
        self._y[task.id][slots.to(y.device)] = y
        self._position[task.id] = (self._position[task.id] + x.size(0)) % self.memory_size
        self._filled[task.id] = min(self.memory_size, self._filled[task.id] + x.size(0))

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers (the memory's cost)."""
        return sum(t.numel() * t.element_size() for t in (*self._x.values(), *self._y.values()))

    def task(self, task_id: int) -> Task:
        """The stored task with this id; an id without a memory raises ``KeyError`` naming those there are."""
        if task_id not in self._tasks:
            raise KeyError(f"task id {task_id} has no episodic memory; tasks with one: {self.task_ids}")
        return self._tasks[task_id]

    def examples(self, task_id: int) -> tuple[Tensor, Tensor]:
        """The inputs ``[n, ...]`` and labels ``[n]`` held for task ``task_id`` (``n <= memory_size``)."""
        self.task(task_id)
        filled = self._filled[task_id]
        return self._x[task_id][:filled], self._y[task_id][:filled]


def _memory_loss(model: nn.Module, memory: EpisodicMemory, task_id: int) -> Tensor:
    x, y = memory.examples(task_id)
    return F.cross_entropy(masked_logits(model(x), memory.task(task_id)), y)


class GEM:
    """Gradient Episodic Memory as a :class:`~aicanon.learning.streams.ContinualLearner` (Algorithm 1).

    Each :meth:`observe` stores the mini-batch in the current task's memory, computes the gradient
    ``g`` of its loss and one gradient ``g_k`` per earlier task's memory, projects ``g`` when it
    violates a constraint (:func:`project_gradient`; A-GEM: :func:`agem_project` against one gradient
    on a random batch of all earlier memories) and takes an SGD step with the result.

    Args:
        model: the network; ``model(x)`` gives logits over the stream's classes.
        lr: SGD learning rate (the paper: 0.1).
        memory_size: ``M``, examples kept per task (the paper: 256 on MNIST and CIFAR-100).
        margin: the memory strength ``gamma >= 0`` (the paper: 0.5); unused by A-GEM.
        variant: ``"gem"`` or ``"agem"``.
        eps: ridge on the dual's ``G G^T`` (the paper's code: 1e-3).
        agem_samples: size of A-GEM's reference batch.
        num_tasks: when given, a task id outside ``0..num_tasks-1`` is rejected.
        project: False skips the projection (an ablation: plain SGD that still fills its memory).
        seed: seeds A-GEM's sampling of the reference batch.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        memory_size: int = 256,
        margin: float = 0.5,
        *,
        variant: str = "gem",
        eps: float = 1e-3,
        agem_samples: int = 256,
        num_tasks: int | None = None,
        project: bool = True,
        seed: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_float("lr", lr, 0.0, min_inclusive=False, finite=True)
        check_float("margin", margin, 0.0, finite=True, note="the memory strength gamma")
        check_float("eps", eps, 0.0, finite=True)
        check_choice("variant", variant, ("gem", "agem"))
        check_int("agem_samples", agem_samples, 1)
        check_int("num_tasks", num_tasks, 1, allow_none=True)
        self.model = model
        self.memory = EpisodicMemory(memory_size)
        self.margin = float(margin)
        self.variant = variant
        self.eps = float(eps)
        self.agem_samples = agem_samples
        self.num_tasks = num_tasks
        self.project = bool(project)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(self.parameters, lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0
        """Mini-batches observed."""
        self.projections = 0
        """Steps whose gradient violated a constraint and was projected."""

    def _check_task(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task, got {type(task).__name__}")
        if self.num_tasks is not None and not 0 <= task.id < self.num_tasks:
            raise ValueError(
                f"task id {task.id} is not in the stream: this GEM learner was built for task ids "
                f"0..{self.num_tasks - 1}"
            )

    def _reference_gradient(self, earlier: list[int]) -> Tensor:
        """A-GEM: the mean loss's gradient on ``agem_samples`` examples drawn from all earlier memories."""
        sizes = torch.tensor([self.memory.examples(k)[1].size(0) for k in earlier])
        total = int(sizes.sum())
        chosen = torch.randperm(total, generator=self.generator)[: self.agem_samples]
        starts = torch.cumsum(sizes, 0) - sizes
        loss = 0.0
        for k, start, size in zip(earlier, starts.tolist(), sizes.tolist()):
            local = chosen[(chosen >= start) & (chosen < start + size)] - start
            if local.numel() == 0:
                continue
            x, y = self.memory.examples(k)
            local = local.to(y.device)
            logits = masked_logits(self.model(x[local]), self.memory.task(k))
            loss = loss + F.cross_entropy(logits, y[local], reduction="sum")
        return flat_gradient(loss / chosen.numel(), self.parameters)

    def observe(self, x: Tensor, y: Tensor, task: Task) -> float:
        self._check_task(task)
        self.model.train()
        self.memory.add(task, x, y)
        earlier = [k for k in self.memory.task_ids if k != task.id]
        reference = None
        if self.project and earlier:
            if self.variant == "gem":
                reference = torch.stack(
                    [
                        flat_gradient(_memory_loss(self.model, self.memory, k), self.parameters)
                        for k in earlier
                    ]
                )
            else:
                reference = self._reference_gradient(earlier)
        loss = F.cross_entropy(masked_logits(self.model(x), task), y)
        gradient = flat_gradient(loss, self.parameters)
        if reference is not None:
            if self.variant == "gem":
                update = project_gradient(gradient, reference, self.margin, self.eps)
            else:
                update = agem_project(gradient, reference)
            self.projections += int(update is not gradient)
            gradient = update
        offset = 0
        for p in self.parameters:
            p.grad = gradient[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    def end_task(self, task: Task) -> None:
        # The memory is written as the task's batches are observed (its last M examples remain).
        self._check_task(task)
