"""Image transforms that experiments share (torch only, batched, differentiable).

:func:`rotate` turns ``[N, C, H, W]`` images about their centre by one angle or by one angle per
image, with bilinear sampling and zero fill outside the source (what torchvision's ``rotate`` does
with ``BILINEAR`` interpolation, without its resampling to an integer grid). Used by the rotated
MNIST task streams (GEM) and the rotated-digit multi-task problem.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_tensor

__all__ = ["rotate"]


def rotate(images: Tensor, degrees: float | Tensor) -> Tensor:
    """Rotate ``images`` ``[N, C, H, W]`` counter-clockwise by ``degrees`` (a number, or ``[N]``)."""
    check_tensor("images", images, dim=4, floating=True)
    n = images.size(0)
    if isinstance(degrees, Tensor):
        check_tensor("degrees", degrees, shape=(n,), floating=True)
        angle = degrees.to(images.dtype) * (math.pi / 180.0)
    else:
        angle = torch.full((n,), math.radians(float(degrees)), dtype=images.dtype)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
