"""Noise schedules β_1..β_T of a Gaussian diffusion.

* :func:`linear_betas`: Ho et al. (2020)'s linear schedule from 1e-4 to 0.02 at T = 1000, scaled by
  1000/T for other T so that the total noise stays comparable (Nichol & Dhariwal 2021, Appendix).
* :func:`cosine_betas`: Nichol & Dhariwal (2021), Eq. 17:

      ᾱ_t = f(t) / f(0),   f(t) = cos( (t/T + s) / (1 + s) · π/2 )²,   s = 0.008
      β_t = 1 − ᾱ_t / ᾱ_{t−1},  clipped to at most 0.999 (to avoid singularities near t = T)

Schedules are computed in float64 (the coefficients derived from them are too: 1 − ᾱ_t is tiny at
small t and float32 loses it).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from aicanon.core.checks import check_choice, check_float, check_int

__all__ = ["SCHEDULES", "cosine_betas", "linear_betas", "make_betas"]

SCHEDULES = ("linear", "cosine")


def linear_betas(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """``num_timesteps`` betas evenly spaced from ``beta_start`` to ``beta_end``, both scaled by
    ``1000 / num_timesteps`` (the values are Ho et al.'s at T = 1000). Float64."""
    check_int("num_timesteps", num_timesteps, 1)
    check_float("beta_start", beta_start, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    check_float("beta_end", beta_end, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    scale = 1000.0 / num_timesteps
    start, end = scale * beta_start, scale * beta_end
    if end >= 1.0:
        raise ValueError(f"num_timesteps={num_timesteps} scales beta_end above 1 ({end}); use more timesteps")
    return torch.linspace(start, end, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """The cosine schedule (Eq. 17). Float64."""
    check_int("num_timesteps", num_timesteps, 1)
    check_float("s", s, 0.0)
    check_float("max_beta", max_beta, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    t = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def make_betas(schedule: str, num_timesteps: int) -> Tensor:
    """``"linear"`` or ``"cosine"`` at ``num_timesteps`` steps."""
    check_choice("schedule", schedule, SCHEDULES)
    return linear_betas(num_timesteps) if schedule == "linear" else cosine_betas(num_timesteps)
