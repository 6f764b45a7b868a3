"""N-way K-shot episodes over a labelled image set (Vinyals et al., 2016; MAML, Section 5.2).

An episode (task) draws ``ways`` classes at random, relabels them ``0 .. ways-1`` in random order, and
draws ``shots`` support and ``queries`` query examples of each class, all distinct. With
``rotations=True`` every class also appears rotated by 90, 180 and 270 degrees as three new classes
(the Omniglot protocol of Santoro et al. 2016 that MAML follows): ``4 C`` classes from ``C``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aicanon.core.checks import check_int, check_tensor
from aicanon.learning.maml import TaskBatch

__all__ = ["EpisodeSampler"]


class EpisodeSampler:
    """Draws meta-batches of N-way K-shot episodes from ``images`` ``[classes, per_class, *shape]``.

    Args:
        images: examples grouped by class; with ``rotations`` the last two dimensions are rotated.
        ways: classes per episode (N).
        shots: support examples per class (K).
        queries: query examples per class.
        rotations: count each class rotated by 0/90/180/270 degrees as four classes.
    """

    def __init__(
        self, images: Tensor, ways: int, shots: int, queries: int = 1, rotations: bool = False
    ) -> None:
        check_tensor("images", images, floating=True)
        if images.dim() < 3:
            raise ValueError(f"images must be [classes, per_class, *shape], got shape {tuple(images.shape)}")
        if rotations and (images.dim() < 4 or images.shape[-1] != images.shape[-2]):
            raise ValueError(
                f"images must end in square [..., side, side] images for rotations, got {tuple(images.shape)}"
            )
        self.images = images
        self.rotations = bool(rotations)
        self.num_classes = images.shape[0] * (4 if rotations else 1)
        self.per_class = images.shape[1]
        self.ways = check_int("ways", ways, 1)
        self.shots = check_int("shots", shots, 1)
        self.queries = check_int("queries", queries, 0)
        if ways > self.num_classes:
            raise ValueError(
                f"ways must be <= the {self.num_classes} classes available "
                f"({images.shape[0]} x {4 if rotations else 1} rotations), got {ways}"
            )
        if shots + queries > self.per_class:
            raise ValueError(
                f"shots + queries must be <= the {self.per_class} examples of each class, "
                f"got {shots} + {queries} = {shots + queries}"
            )

    def sample(self, tasks: int, generator: torch.Generator | None = None) -> TaskBatch:
        """``tasks`` episodes: support ``[tasks, ways*shots, *shape]`` and query ``[tasks, ways*queries,
        *shape]``, labels int64, class-major (all of class 0, then class 1, ...)."""
        check_int("tasks", tasks, 1)
        device = self.images.device
        n, k, q = self.ways, self.shots, self.queries
        classes = torch.rand(tasks, self.num_classes, generator=generator).argsort(dim=1)[:, :n]
        examples = torch.rand(tasks, n, self.per_class, generator=generator).argsort(dim=2)[..., : k + q]
        base = classes // 4 if self.rotations else classes
        chosen = self.images[base.to(device).unsqueeze(-1), examples.to(device)]  # [T, N, K+Q, *shape]
        if self.rotations:
            quarter_turns = (classes % 4).to(device)
            rotated = chosen.clone()
            for turns in (1, 2, 3):
                mask = quarter_turns == turns
                if mask.any():
                    rotated[mask] = torch.rot90(chosen[mask], turns, dims=(-2, -1))
            chosen = rotated
        shape = tuple(chosen.shape[3:])
        labels = torch.arange(n, device=device)
        support_x = chosen[:, :, :k].reshape(tasks, n * k, *shape)
        query_x = chosen[:, :, k:].reshape(tasks, n * q, *shape)
        support_y = labels.repeat_interleave(k).expand(tasks, n * k).contiguous()
        query_y = labels.repeat_interleave(q).expand(tasks, n * q).contiguous()
        return TaskBatch(support_x, support_y, query_x, query_y)
