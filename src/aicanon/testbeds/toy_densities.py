"""Two-dimensional targets for the flow experiments (planar flows, Real NVP, CNFs).

* Unnormalised densities ``p(z) ∝ exp(-U(z))``: the four energy functions of Rezende & Mohamed
  (2015), Table 1 (:data:`ENERGIES`, ``U1``-``U4``), fitted by variational inference (the
  normalizing-flows and neural-ODE experiments' density matching):

      w1(z) = sin(2 pi z1 / 4),  w2(z) = 3 exp(-((z1 - 1) / 0.6)^2 / 2),  w3(z) = 3 s((z1 - 1) / 0.3)
      U1(z) = ((|z| - 2) / 0.4)^2 / 2 - log(exp(-((z1 - 2) / 0.6)^2 / 2) + exp(-((z1 + 2) / 0.6)^2 / 2))
      U2(z) = ((z2 - w1) / 0.4)^2 / 2
      U3(z) = -log(exp(-((z2 - w1) / 0.35)^2 / 2) + exp(-((z2 - w1 + w2) / 0.35)^2 / 2))
      U4(z) = -log(exp(-((z2 - w1) / 0.4)^2 / 2) + exp(-((z2 - w1 + w3) / 0.35)^2 / 2))

  with ``s`` the logistic sigmoid.
* Sample sets for maximum-likelihood fits (:func:`sample_toy`): ``moons`` (scikit-learn's two
  moons, standardised), ``circles`` (two concentric rings), ``eight_gaussians`` and ``checkerboard``.
* :func:`grid` and :func:`log_normaliser`: a regular grid over a box, and ``log Z`` of a target by
  quadrature on it. U1's mass lies well inside ``[-4, 4]^2``; U2-U4 are periodic in ``z1`` and have
  infinite mass over the plane: the paper shows them on ``[-4, 4]^2``, and their ``log Z`` here is
  that of the target restricted to the box (state so beside any KL computed with it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor

__all__ = ["ENERGIES", "TOY_SETS", "energy", "grid", "log_normaliser", "sample_toy"]


def _w1(z: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * z[:, 0] / 4)


def _w2(z: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((z[:, 0] - 1) / 0.6) ** 2)


def _w3(z: Tensor) -> Tensor:
    return 3 * torch.sigmoid((z[:, 0] - 1) / 0.3)


def _u1(z: Tensor) -> Tensor:
    ring = 0.5 * ((z.norm(dim=1) - 2) / 0.4) ** 2
    modes = torch.stack([-0.5 * ((z[:, 0] - 2) / 0.6) ** 2, -0.5 * ((z[:, 0] + 2) / 0.6) ** 2], dim=1)
    return ring - torch.logsumexp(modes, dim=1)


def _u2(z: Tensor) -> Tensor:
    return 0.5 * ((z[:, 1] - _w1(z)) / 0.4) ** 2


def _u3(z: Tensor) -> Tensor:
    a = -0.5 * ((z[:, 1] - _w1(z)) / 0.35) ** 2
    b = -0.5 * ((z[:, 1] - _w1(z) + _w2(z)) / 0.35) ** 2
    return -torch.logsumexp(torch.stack([a, b], dim=1), dim=1)


def _u4(z: Tensor) -> Tensor:
    a = -0.5 * ((z[:, 1] - _w1(z)) / 0.4) ** 2
    b = -0.5 * ((z[:, 1] - _w1(z) + _w3(z)) / 0.35) ** 2
    return -torch.logsumexp(torch.stack([a, b], dim=1), dim=1)


ENERGIES: dict[str, Callable[[Tensor], Tensor]] = {"U1": _u1, "U2": _u2, "U3": _u3, "U4": _u4}
TOY_SETS = ("moons", "circles", "eight_gaussians", "checkerboard")


def energy(name: str, z: Tensor) -> Tensor:
    """``U(z)`` ``[N]`` of the named target at points ``z`` ``[N, 2]``."""
    check_choice("name", name, tuple(ENERGIES))
    check_tensor("z", z, shape=(None, 2), floating=True)
    return ENERGIES[name](z)


def grid(limit: float = 4.0, resolution: int = 200) -> tuple[Tensor, float]:
    """Points ``[resolution^2, 2]`` of a regular grid over ``[-limit, limit]^2`` (cell centres, row
    by row with z2 varying fastest) and the area of one cell."""
    check_float("limit", limit, 0.0, min_inclusive=False)
    check_int("resolution", resolution, 2)
    step = 2 * limit / resolution
    axis = -limit + step * (torch.arange(resolution, dtype=torch.float64) + 0.5)
    points = torch.cartesian_prod(axis, axis)
    return points, step * step


def log_normaliser(name: str, limit: float = 4.0, resolution: int = 800) -> float:
    """``log Z = log ∫ exp(-U)`` of a target, by the midpoint rule on :func:`grid` (float64)."""
    points, area = grid(limit, resolution)
    return float(torch.logsumexp(-energy(name, points), dim=0) + math.log(area))


def sample_toy(
    name: str, count: int, generator: torch.Generator | None = None, noise: float = 0.05
) -> Tensor:
    """``count`` points ``[count, 2]`` (float32) of a 2-D data set, about unit scale."""
    check_choice("name", name, TOY_SETS)
    check_int("count", count, 1)
    check_float("noise", noise, 0.0)
    seed = int(torch.randint(2**31 - 1, (), generator=generator))
    rng = np.random.default_rng(seed)
    if name == "moons":
        from sklearn.datasets import make_moons

        points, _ = make_moons(count, noise=noise, random_state=seed)
        points = (points - np.array([0.5, 0.25])) / np.array([0.87, 0.5])
    elif name == "circles":
        radius = np.where(rng.random(count) < 0.5, 1.0, 2.0)
        angle = rng.uniform(0, 2 * np.pi, count)
        points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        points = points + rng.normal(0, noise * 2, points.shape)
    elif name == "eight_gaussians":
        centres = np.array([(math.cos(a), math.sin(a)) for a in np.arange(8) * np.pi / 4]) * 2
        points = centres[rng.integers(0, 8, count)] + rng.normal(0, noise * 4, (count, 2))
    else:
        # A 4 x 4 board on [-2, 2]^2 whose filled squares alternate (FFJORD's checkerboard, halved).
        x1 = rng.uniform(-2, 2, count)
        x2 = rng.uniform(0, 1, count) - 2 * rng.integers(0, 2, count) + np.mod(np.floor(x1), 2)
        points = np.stack([x1, x2], 1)
    return torch.from_numpy(np.asarray(points, dtype=np.float32))
