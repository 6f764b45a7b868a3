"""Improved DDPM (Nichol & Dhariwal 2021): exact negative log-likelihood over a dataset, for data of
any number of grey levels, and the paper's choices in one place.

The method itself lives in the diffusion core: the cosine schedule (Eq. 17,
:func:`~aicanon.generative.diffusion.schedules.cosine_betas`), learned variances (Eq. 15,
``variance="learned_range"``), L_hybrid = L_simple + λ L_vlb with λ = 0.001 and the stop-gradient on
the mean (Eq. 16, :meth:`~aicanon.generative.diffusion.gaussian.GaussianDiffusion.training_losses`),
importance-sampled timesteps for L_vlb (Eq. 18, :mod:`~aicanon.generative.diffusion.timestep_sampling`)
and respaced sampling (Section 4, :mod:`~aicanon.generative.diffusion.respace`). This module adds
what an evaluation needs on top of it:

* :func:`variational_bound_bpd`: the full variational bound (Eq. 4–6)

      L_vlb = L_0 + L_1 + … + L_{T−1} + L_T,
      L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))   (t > 1),
      L_0 = −log p_θ(x_0 | x_1),   L_T = KL(q(x_T | x_0) ‖ N(0, I)),

  in bits per dimension, over a dataset in batches, every term at a fresh x_t (one sample per term,
  as the paper's code), for one model under one or several diffusions that share its output (a
  fixed-variance model's bound under β_t and under β̃_t costs one set of forward passes);
  The decoder L_0 is the core's
  :func:`~aicanon.generative.diffusion.gaussian.discretized_gaussian_log_likelihood` at the data's
  ``levels`` (256 for 8-bit images; 17 for scikit-learn's 8×8 digits, whose bins are 2/16 wide: a
  256-level decoder on 17-level data measures the mass of a bin 15.9× narrower than the data's own,
  so its bound would be a likelihood of other data, about log2(255/16) ≈ 4 bits/dim off).

Departures: the decoder uses the exact normal CDF (``torch.special.log_ndtr``) where the paper's code
uses a tanh approximation (as the core does); each L_t is estimated from one draw of x_t per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from aicanon.core import track
from aicanon.core.checks import check_int, check_tensor
from aicanon.generative.diffusion.gaussian import (
    GaussianDiffusion,
    discretized_gaussian_log_likelihood,
    gaussian_noise,
    normal_kl,
)

__all__ = ["variational_bound_bpd"]

Model = Callable[..., Tensor]


def _mean_flat(x: Tensor) -> Tensor:
    return x.mean(dim=tuple(range(1, x.dim())))


@torch.no_grad()
def variational_bound_bpd(
    model: Model,
    diffusions: GaussianDiffusion | Sequence[GaussianDiffusion],
    x0: Tensor,
    *,
    levels: int = 256,
    batch_size: int = 256,
    clip_denoised: bool = True,
    model_kwargs: dict[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> dict[str, Tensor] | list[dict[str, Tensor]]:
    """The variational bound of every image of ``x0`` ``[N, C, H, W]`` in bits/dim: a dict (a list of
    them, one per diffusion, when ``diffusions`` is a sequence) with ``"total"`` ``[N]``, ``"terms"``
    ``[N, T]`` (L_0..L_{T−1}) and ``"prior"`` ``[N]`` (L_T).

    ``diffusions`` share the model and its forward passes: they must have the same betas, prediction
    and timestep map, and may differ in their variance type only where the model's output allows it
    (a fixed-variance model under ``"fixed_small"`` and ``"fixed_large"``). ``model_kwargs`` hold
    per-image tensors (batched with ``x0``). The noise is drawn from ``generator`` batch by batch,
    step by step from t = T−1 down, so a seeded call repeats.
    """
    single = isinstance(diffusions, GaussianDiffusion)
    group = [diffusions] if single else list(diffusions)
    if not group or not all(isinstance(d, GaussianDiffusion) for d in group):
        raise TypeError("diffusions must be a GaussianDiffusion or a non-empty sequence of them")
    first = group[0]
    for other in group[1:]:
        same_chain = (
            other.num_timesteps == first.num_timesteps
            and torch.equal(other.betas, first.betas)
            and torch.equal(other.timestep_map, first.timestep_map)
            and other.prediction == first.prediction
        )
        if not same_chain:
            raise ValueError("diffusions must share betas, timestep_map and prediction to share the model")
        if (other.variance == "learned_range") != (first.variance == "learned_range"):
            raise ValueError(
                "diffusions must all learn their variance or all fix it (the model's output differs)"
            )
    check_tensor("x0", x0, dim=4, floating=True)
    check_int("levels", levels, 2)
    check_int("batch_size", batch_size, 1)
    model_kwargs = model_kwargs or {}
    for key, value in model_kwargs.items():
        check_tensor(f"model_kwargs[{key!r}]", value)
        if value.shape[0] != x0.shape[0]:
            raise ValueError(f"model_kwargs[{key!r}] has {value.shape[0]} rows, x0 has {x0.shape[0]}")
    T = first.num_timesteps
    log2 = math.log(2.0)
    results: list[dict[str, list[Tensor]]] = [{"terms": [], "prior": []} for _ in group]
    batches = range(0, x0.shape[0], batch_size)
    for start in track(batches, description="variational bound") if progress else batches:
        x = x0[start : start + batch_size]
        kwargs: dict[str, Any] = {k: v[start : start + batch_size] for k, v in model_kwargs.items()}
        terms = [torch.zeros(x.shape[0], T, device=x.device) for _ in group]
        for i in range(T - 1, -1, -1):
            t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
            noise = gaussian_noise(x.shape, generator, x.device, x.dtype)
            x_t = first.q_sample(x, t, noise)
            output = first.model_output(model, x_t, t, kwargs)
            for diffusion, row in zip(group, terms, strict=True):
                out = diffusion.p_mean_variance(output, x_t, t, clip_denoised=clip_denoised)
                if i == 0:  # L_0: the decoder
                    log_p = discretized_gaussian_log_likelihood(
                        x, out["mean"], 0.5 * out["log_variance"], levels=levels
                    )
                    row[:, 0] = -_mean_flat(log_p) / log2
                else:
                    true_mean, _, true_log_variance = diffusion.q_posterior(x, x_t, t)
                    kl = normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])
                    row[:, i] = _mean_flat(kl) / log2
        for diffusion, row, result in zip(group, terms, results, strict=True):
            result["terms"].append(row)
            result["prior"].append(diffusion.prior_bpd(x).float())
    outcome = []
    for result in results:
        terms, prior = torch.cat(result["terms"]), torch.cat(result["prior"])
        outcome.append({"total": terms.sum(1) + prior, "terms": terms, "prior": prior})
    return outcome[0] if single else outcome
