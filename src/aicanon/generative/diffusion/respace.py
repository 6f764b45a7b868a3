"""Sampling over a subset of a diffusion's timesteps (Nichol & Dhariwal 2021, Section 4).

A model trained on T steps samples with any increasing subsequence S of {0, …, T−1}: the respaced
chain keeps ᾱ at the chosen steps and derives its own betas from them,

    β_i = 1 − ᾱ_{S_i} / ᾱ_{S_{i−1}}     (ᾱ_{S_{−1}} = 1),

so q(x_{S_i} | x_0) is unchanged; the model is still told the original timestep S_i
(``timestep_map``). With learned variances the model's v interpolates between the respaced β and β̃,
which is why 50 steps sample nearly as well as 4,000 (their Figure 8) while fixed variances degrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aicanon.core.checks import check_int
from aicanon.generative.diffusion.gaussian import GaussianDiffusion

__all__ = ["respace", "space_timesteps"]


def space_timesteps(num_timesteps: int, section_counts: int | str | Sequence[int]) -> list[int]:
    """Which timesteps to keep: ``section_counts`` steps taken evenly (an int, or a list of counts for
    equal sections of the chain, as in the paper's code: ``[10, 15, 20]`` takes 10 from the first
    third, …), or ``"ddimN"`` for DDIM's striding (every T/N-th step from 0). Always includes the
    first and last step of each section (where the count allows)."""
    check_int("num_timesteps", num_timesteps, 1)
    if isinstance(section_counts, str):
        if not section_counts.startswith("ddim") or not section_counts[4:].isdigit():
            raise ValueError(
                f"section_counts must be an int, a list of ints or 'ddimN', got {section_counts!r}"
            )
        count = int(section_counts[4:])
        for stride in range(1, num_timesteps + 1):
            if len(range(0, num_timesteps, stride)) == count:
                return list(range(0, num_timesteps, stride))
        raise ValueError(f"no integer stride gives exactly {count} of {num_timesteps} steps")
    counts = [section_counts] if isinstance(section_counts, int) else list(section_counts)
    if not counts or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts):
        raise ValueError(f"section_counts must be positive ints, got {section_counts!r}")
    size, extra = divmod(num_timesteps, len(counts))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(counts):
        length = size + (1 if i < extra else 0)
        if count > length:
            raise ValueError(f"cannot take {count} steps from a section of {length} steps")
        if count == 1:
            positions = [0]
        else:
            stride = (length - 1) / (count - 1)
            positions = [round(j * stride) for j in range(count)]
        kept.extend(start + p for p in positions)
        start += length
    return kept


def respace(diffusion: GaussianDiffusion, timesteps: Sequence[int]) -> GaussianDiffusion:
    """The chain over ``timesteps`` (strictly increasing, within ``[0, T)``) of ``diffusion``, with the
    same prediction, variance type and data levels; its ``timestep_map`` gives the original steps."""
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    steps = list(timesteps)
    if not steps or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        raise ValueError("timesteps must be a non-empty sequence of ints")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"timesteps must be strictly increasing, got {steps[:10]}…")
    if steps[0] < 0 or steps[-1] >= diffusion.num_timesteps:
        raise ValueError(f"timesteps must lie in [0, {diffusion.num_timesteps}), got {steps[0]}..{steps[-1]}")
    original = diffusion.timestep_map.cpu()
    alpha_bar = diffusion.alpha_bar.cpu()
    previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[steps[:-1]]])
    betas = 1.0 - alpha_bar[steps] / previous
    return GaussianDiffusion(
        betas,
        prediction=diffusion.prediction,
        variance=diffusion.variance,
        timestep_map=original[steps].clone(),
        data_levels=diffusion.data_levels,
    ).to(diffusion.betas.device)
