"""Testbed: a synthetic detection set, MNIST digits pasted on a blank canvas, their boxes and classes known.

Stands in for COCO (Carion et al. 2020 train DETR on COCO 2017, 118k images, 500 epochs on 16
V100s) at a size two CPU cores can learn in a minute. Each image is a ``canvas x canvas`` black
square holding ``min_digits..max_digits`` MNIST digits, each resized to a random side in
``[min_size, max_size]`` pixels and pasted (pixel-wise maximum) at a random position; the class is
the digit (10 classes). A digit's box is the tight box around its ink (pixels above
``ink_threshold`` after resizing), in ``(cx, cy, w, h)`` normalised to ``[0, 1]`` (DETR's target
format). Placements whose tight boxes would overlap an earlier digit's with IoU above
``max_overlap`` are redrawn (up to 50 times, then the digit is left out, so an image may hold fewer
digits than drawn; at least one is always placed).

Generation is deterministic given ``seed`` (a private ``torch.Generator``; no global state).
:class:`DigitScenes` holds one scene configuration and draws images from an MNIST split with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_int
from aicanon.datasets.mnist import load_mnist
from aicanon.vision.giou import box_iou

__all__ = ["NUM_CLASSES", "DigitScenes", "load_digit_detection", "make_digit_detection"]

NUM_CLASSES = 10


def make_digit_detection(
    digits: Tensor,
    labels: Tensor,
    num_images: int,
    *,
    canvas: int = 64,
    min_digits: int = 1,
    max_digits: int = 4,
    min_size: int = 16,
    max_size: int = 28,
    max_overlap: float = 0.0,
    ink_threshold: float = 0.1,
    seed: int = 0,
) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """Images ``[num_images, 1, canvas, canvas]`` in ``[0, 1]`` and their targets (``labels``, ``boxes``).

    ``digits`` uint8 ``[N, 28, 28]`` and ``labels`` int64 ``[N]`` (e.g. from ``load_mnist``) are the
    pool the digits are drawn from. ``max_overlap`` is the largest IoU allowed between two digits'
    boxes (0: they never overlap).
    """
    if not isinstance(digits, Tensor) or digits.dtype != torch.uint8 or digits.dim() != 3:
        got = f"{digits.dtype} {tuple(digits.shape)}" if isinstance(digits, Tensor) else type(digits).__name__
        raise ValueError(f"digits must be uint8 images [N, H, W], got {got}")
    if not isinstance(labels, Tensor) or labels.shape != (len(digits),):
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor [{len(digits)}] (one per digit), got {got}")
    check_int("num_images", num_images, 1)
    check_int("canvas", canvas, 8)
    check_int("min_digits", min_digits, 1)
    check_int("max_digits", max_digits, min_digits)
    check_int("min_size", min_size, 4)
    check_int("max_size", max_size, min_size)
    if max_size > canvas:
        raise ValueError(f"max_size must be <= canvas ({canvas}), got {max_size}")
    if not 0.0 <= max_overlap <= 1.0:
        raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap}")
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(num_images, 1, canvas, canvas)
    targets = []
    for i in range(num_images):
        count = int(torch.randint(min_digits, max_digits + 1, (1,), generator=generator))
        boxes: list[list[float]] = []
        classes: list[int] = []
        for _ in range(count):
            index = int(torch.randint(0, len(digits), (1,), generator=generator))
            size = int(torch.randint(min_size, max_size + 1, (1,), generator=generator))
            glyph = F.interpolate(digits[index][None, None].float() / 255.0, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            ink = glyph > ink_threshold
            rows, cols = torch.nonzero(ink.any(1)).flatten(), torch.nonzero(ink.any(0)).flatten()
            if len(rows) == 0:
                continue  # an empty glyph (never in MNIST) has no box
            for _attempt in range(50):
                top = int(torch.randint(0, canvas - size + 1, (1,), generator=generator))
                left = int(torch.randint(0, canvas - size + 1, (1,), generator=generator))
                box = [left + int(cols[0]), top + int(rows[0]), left + int(cols[-1]) + 1, top + int(rows[-1]) + 1]
                if not boxes or float(box_iou(torch.tensor([box], dtype=torch.float32), torch.tensor(boxes)).max()) <= max_overlap:
                    break
            else:
                continue
            region = images[i, 0, top : top + size, left : left + size]
            torch.maximum(region, glyph, out=region)
            boxes.append([float(v) for v in box])
            classes.append(int(labels[index]))
        xyxy = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4) / canvas
        cxcywh = torch.stack(
            ((xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2, xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]), 1
        )
        targets.append({"labels": torch.tensor(classes, dtype=torch.int64), "boxes": cxcywh})
    return images, targets


def load_digit_detection(split: str, num_images: int, *, seed: int = 0, **kwargs) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """:func:`make_digit_detection` drawing from MNIST's ``split`` ("train" or "test")."""
    digits, labels = load_mnist(split)
    return make_digit_detection(digits, labels, num_images, seed=seed, **kwargs)


@dataclass
class DigitScenes:
    """One scene configuration (the arguments of :func:`make_digit_detection`) and the classes used."""

    canvas: int = 64
    """Side of the square canvas in pixels."""
    min_digits: int = 1
    """Fewest digits drawn per image."""
    max_digits: int = 4
    """Most digits drawn per image."""
    min_size: int = 16
    """Smallest side a digit is resized to."""
    max_size: int = 28
    """Largest side a digit is resized to."""
    max_overlap: float = 0.0
    """Largest IoU allowed between two digits' boxes (0: they never overlap)."""
    ink_threshold: float = 0.1
    """Pixels above this value (after resizing) are ink: the box is tight around them."""
    num_classes: int = NUM_CLASSES
    """Only digits ``0 .. num_classes - 1`` are drawn."""

    def sample(self, split: str, count: int, seed: int = 0) -> tuple[Tensor, list[dict[str, Tensor]]]:
        """``count`` images drawn from MNIST's ``split`` with this configuration."""
        check_int("num_classes", self.num_classes, 1)
        digits, labels = load_mnist(split)
        keep = labels < self.num_classes
        scene = asdict(self)
        scene.pop("num_classes")
        return make_digit_detection(digits[keep], labels[keep], count, seed=seed, **scene)
