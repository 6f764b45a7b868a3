"""Gaussian diffusion (Ho et al. 2020; Nichol & Dhariwal 2021): the forward process, the reverse
process a model parameterises, the training losses, exact NLL, and the ancestral and DDIM samplers.

Forward process (Ho et al. Eq. 4; ᾱ_t = Π_{s≤t} (1 − β_s)):

    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
    q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)                                                   (Eq. 6–7)
        μ̃_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t) x_0 + (1 − ᾱ_{t−1}) √α_t/(1 − ᾱ_t) x_t
        β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t

Reverse process p(x_{t−1} | x_t) = N(μ_θ(x_t, t), Σ_θ(x_t, t)). The model predicts ε (``"epsilon"``,
the papers'), x_0 (``"x0"``) or v = √ᾱ ε − √(1−ᾱ) x_0 (``"v"``), and μ_θ is μ̃_t at the predicted x_0
(clipped to [−1, 1] when sampling images). The variance is ``"fixed_small"`` (β̃_t), ``"fixed_large"``
(β_t, with β̃_1 at t = 1) or ``"learned_range"`` (Nichol & Dhariwal Eq. 15, the model emits a second
set of channels v ∈ [−1, 1] read as (v + 1)/2):

    Σ_θ = exp(v log β_t + (1 − v) log β̃_t)

Losses (:meth:`GaussianDiffusion.training_losses`, per example; ``t`` indexes 0..T−1 for the papers'
1..T):

* ``"simple"``: L_simple = ‖ε − ε_θ(x_t, t)‖² (Ho et al. Eq. 14), mean over dimensions;
* ``"vlb"``: T · L_t, the one-term estimate of L_vlb = Σ_t L_t with t uniform (Nichol & Dhariwal
  Eq. 4–6); L_t = KL(q(x_{t−1}|x_t,x_0) ‖ p(x_{t−1}|x_t)) for t > 1 and the discretised-Gaussian
  decoder NLL −log p(x_0|x_1) for t = 1, both in bits per dimension;
* ``"hybrid"``: L_simple + λ L_vlb with λ = 0.001 (Eq. 16), where L_vlb's gradient reaches only the
  variance: the mean output is detached inside it (Section 3.1, "stop-gradient").

Importance-sampled timesteps for L_vlb (Eq. 18) are in :mod:`.timestep_sampling`; respaced sampling
(Section 4) in :mod:`.respace`; guidance enters the samplers through ``cond_fn`` (the gradient of a
classifier's log p(y | x_t), Dhariwal & Nichol Algorithms 1 and 2) or through the model callable
(classifier-free guidance mixes two model outputs).

Departures: the discretised Gaussian decoder uses the exact normal CDF (``torch.special.log_ndtr``)
where the papers' code uses a tanh approximation; L_vlb is in bits (log base 2) as in the papers'
code, so λ multiplies bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core import track
from aicanon.core.checks import check_choice, check_float, check_int, check_tensor

__all__ = [
    "LOSSES",
    "PREDICTIONS",
    "VARIANCES",
    "GaussianDiffusion",
    "discretized_gaussian_log_likelihood",
    "gaussian_noise",
    "normal_kl",
]

PREDICTIONS = ("epsilon", "x0", "v")
VARIANCES = ("fixed_small", "fixed_large", "learned_range")
LOSSES = ("simple", "vlb", "hybrid")

Model = Callable[..., Tensor]
CondFn = Callable[..., Tensor]


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) elementwise, in nats."""
    return 0.5 * (
        -1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def discretized_gaussian_log_likelihood(
    x: Tensor, mean: Tensor, log_scale: Tensor, *, levels: int = 256
) -> Tensor:
    """log-probability (nats, elementwise) of data ``x`` on ``levels`` values evenly spaced in [−1, 1]
    (8-bit images: 256) under a Gaussian discretised to their bins (Ho et al. Eq. 13, for any number
    of levels): the mass of ``[x − 1/(levels − 1), x + 1/(levels − 1)]``, the edge bins extended to
    ∓∞. ``log_scale`` is the log standard deviation. Data on fewer levels (scikit-learn's 8×8 digits:
    17) need their own bin width: 256-level bins would charge such data ~log2(16) bits per dimension
    too many at the decoder."""
    check_int("levels", levels, 2)
    half_width = 1.0 / (levels - 1)
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    upper = inv_std * (centered + half_width)
    lower = inv_std * (centered - half_width)
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_survival_lower = torch.special.log_ndtr(-lower)
    # log(Φ(upper) − Φ(lower)) = log Φ(upper) + log(1 − exp(log Φ(lower) − log Φ(upper))), stable when
    # both are small; the mass is floored at 1e-12 as in the papers' code.
    mid = log_cdf_upper + torch.log1p(
        -torch.exp(torch.special.log_ndtr(lower) - log_cdf_upper).clamp(max=1 - 1e-12)
    )
    mid = mid.clamp(min=math.log(1e-12))
    edge = 1.0 - half_width  # beyond the first/last value's bin boundary: an edge value
    return torch.where(x < -edge, log_cdf_upper, torch.where(x > edge, log_survival_lower, mid))


def gaussian_noise(
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """N(0, I) noise of ``shape`` on ``device``, drawn on the generator's own device and moved: a CPU
    generator then drives sampling on a GPU (and gives the same numbers as on the CPU)."""
    source = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=source, dtype=dtype).to(device)


def _mean_flat(x: Tensor) -> Tensor:
    return x.mean(dim=tuple(range(1, x.dim())))


class GaussianDiffusion(nn.Module):
    """A diffusion with ``betas`` (float64, ``[T]``), a model ``prediction`` and a ``variance`` type.

    ``timestep_map`` (``long [T]``) is what the model is told for each of these timesteps: the
    identity for a full chain, the original timesteps for a respaced one (:mod:`.respace`).
    ``data_levels`` is the number of values the data takes in [−1, 1] (the decoder's bins: 256 for
    8-bit images, 17 for scikit-learn's 8×8 digits). The model is any callable
    ``model(x_t, t, **model_kwargs)`` returning ``[B, C, ...]`` (``2C`` channels with learned
    variances: the prediction, then v).
    """

    def __init__(
        self,
        betas: Tensor,
        *,
        prediction: str = "epsilon",
        variance: str = "fixed_small",
        timestep_map: Tensor | None = None,
        data_levels: int = 256,
    ) -> None:
        super().__init__()
        self.data_levels = check_int("data_levels", data_levels, 2)
        check_tensor("betas", betas, dim=1, floating=True)
        betas = betas.double()
        if betas.numel() < 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a non-empty 1-D tensor of values in (0, 1)")
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        self.variance = check_choice("variance", variance, VARIANCES)
        T = betas.numel()
        if timestep_map is None:
            timestep_map = torch.arange(T)
        check_tensor("timestep_map", timestep_map, shape=(T,), dtype=torch.long)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64, device=betas.device), alpha_bar[:-1]])
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        # β̃_0 = 0: its log is clipped to β̃_1's (the decoder term at t = 0 uses the clipped value).
        clipped = torch.cat([posterior_variance[1:2], posterior_variance[1:]]) if T > 1 else betas.clone()
        buffers = {
            "betas": betas,
            "alpha_bar": alpha_bar,
            "alpha_bar_prev": alpha_bar_prev,
            "sqrt_alpha_bar": alpha_bar.sqrt(),
            "sqrt_one_minus_alpha_bar": (1.0 - alpha_bar).sqrt(),
            "sqrt_recip_alpha_bar": (1.0 / alpha_bar).sqrt(),
            "sqrt_recipm1_alpha_bar": (1.0 / alpha_bar - 1.0).sqrt(),
            "posterior_variance": posterior_variance,
            "posterior_log_variance_clipped": clipped.log(),
            "posterior_mean_coef1": betas * alpha_bar_prev.sqrt() / (1.0 - alpha_bar),
            "posterior_mean_coef2": (1.0 - alpha_bar_prev) * alphas.sqrt() / (1.0 - alpha_bar),
            "log_betas": betas.log(),
            "fixed_large_variance": torch.cat([posterior_variance[1:2], betas[1:]])
            if T > 1
            else betas.clone(),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)
        self.register_buffer("timestep_map", timestep_map.clone(), persistent=False)

    @property
    def num_timesteps(self) -> int:
        return self.betas.numel()

    def _at(self, name: str, t: Tensor, like: Tensor) -> Tensor:
        """``buffer[t]`` shaped ``[B, 1, ...]`` to broadcast against ``like``, in its dtype."""
        values = getattr(self, name)[t].to(like.dtype)
        return values.reshape(-1, *([1] * (like.dim() - 1)))

    def _check_t(self, t: Tensor, batch: int) -> Tensor:
        check_tensor("t", t, shape=(batch,), dtype=(torch.long, torch.int))
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(
                f"t must be in [0, {self.num_timesteps}), got values in [{int(t.min())}, {int(t.max())}]"
            )
        return t.long()

    # -- the forward process ------------------------------------------------------------------------

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """A draw of x_t ~ q(x_t | x_0) (Eq. 4 of Ho et al.)."""
        check_tensor("x0", x0, floating=True)
        t = self._check_t(t, x0.shape[0])
        noise = torch.randn_like(x0) if noise is None else noise
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
        return self._at("sqrt_alpha_bar", t, x0) * x0 + self._at("sqrt_one_minus_alpha_bar", t, x0) * noise

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean, variance and clipped log-variance of q(x_{t−1} | x_t, x_0) (Eq. 6–7 of Ho et al.)."""
        mean = self._at("posterior_mean_coef1", t, x_t) * x0 + self._at("posterior_mean_coef2", t, x_t) * x_t
        return (
            mean,
            self._at("posterior_variance", t, x_t),
            self._at("posterior_log_variance_clipped", t, x_t),
        )

    def predict_x0(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """x_0 from the model's prediction (ε, x_0 or v) at x_t."""
        if self.prediction == "epsilon":
            return (
                self._at("sqrt_recip_alpha_bar", t, x_t) * x_t
                - self._at("sqrt_recipm1_alpha_bar", t, x_t) * output
            )
        if self.prediction == "x0":
            return output
        return (
            self._at("sqrt_alpha_bar", t, x_t) * x_t - self._at("sqrt_one_minus_alpha_bar", t, x_t) * output
        )

    def predict_eps(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """ε implied by x_0 at x_t."""
        return (self._at("sqrt_recip_alpha_bar", t, x_t) * x_t - x0) / self._at(
            "sqrt_recipm1_alpha_bar", t, x_t
        )

    def target(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """What the model is trained to output for x_t = q_sample(x0, t, noise)."""
        if self.prediction == "epsilon":
            return noise
        if self.prediction == "x0":
            return x0
        return self._at("sqrt_alpha_bar", t, x0) * noise - self._at("sqrt_one_minus_alpha_bar", t, x0) * x0

    # -- the reverse process ------------------------------------------------------------------------

    def model_output(
        self, model: Model, x_t: Tensor, t: Tensor, model_kwargs: dict[str, Any] | None
    ) -> Tensor:
        """``model(x_t, timestep_map[t], **model_kwargs)``, its shape checked."""
        out = model(x_t, self.timestep_map[t], **(model_kwargs or {}))
        channels = x_t.shape[1] * (2 if self.variance == "learned_range" else 1)
        expected = (x_t.shape[0], channels, *x_t.shape[2:])
        if not isinstance(out, Tensor) or tuple(out.shape) != expected:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the model must return a tensor of shape {expected} ({self.variance} variance), got {got}"
            )
        return out

    def p_mean_variance(
        self,
        output: Tensor,
        x_t: Tensor,
        t: Tensor,
        *,
        clip_denoised: bool = True,
        frozen_mean: bool = False,
    ) -> dict[str, Tensor]:
        """The reverse step's mean, variance, log-variance and predicted x_0/ε from a model ``output``.

        ``frozen_mean`` detaches the mean half of the output (the stop-gradient of L_hybrid's L_vlb).
        """
        if self.variance == "learned_range":
            prediction, v = output.chunk(2, dim=1)
            min_log = self._at("posterior_log_variance_clipped", t, x_t)
            max_log = self._at("log_betas", t, x_t)
            frac = (v + 1) / 2  # Eq. 15's v, from the model's [−1, 1]
            log_variance = frac * max_log + (1 - frac) * min_log
            variance = log_variance.exp()
        else:
            prediction = output
            if self.variance == "fixed_small":
                variance = self._at("posterior_variance", t, x_t).expand_as(x_t)
                log_variance = self._at("posterior_log_variance_clipped", t, x_t).expand_as(x_t)
            else:
                variance = self._at("fixed_large_variance", t, x_t).expand_as(x_t)
                log_variance = variance.log()
        if frozen_mean:
            prediction = prediction.detach()
        x0 = self.predict_x0(x_t, t, prediction)
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean, _, _ = self.q_posterior(x0, x_t, t)
        eps = (
            prediction if self.prediction == "epsilon" and not clip_denoised else self.predict_eps(x_t, t, x0)
        )
        return {
            "mean": mean,
            "variance": variance,
            "log_variance": log_variance,
            "pred_x0": x0,
            "pred_eps": eps,
        }

    # -- losses -------------------------------------------------------------------------------------

    def _vb_bits(self, out: dict[str, Tensor], x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """L_t in bits per dimension ``[B]``: the KL for t > 0, the decoder NLL at t = 0."""
        true_mean, _, true_log_variance = self.q_posterior(x0, x_t, t)
        kl = _mean_flat(normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])) / math.log(
            2.0
        )
        log_p = discretized_gaussian_log_likelihood(
            x0, out["mean"], 0.5 * out["log_variance"], levels=self.data_levels
        )
        nll = -_mean_flat(log_p)
        return torch.where(t == 0, nll / math.log(2.0), kl)

    def training_losses(
        self,
        model: Model,
        x0: Tensor,
        t: Tensor,
        *,
        loss: str = "simple",
        vlb_weight: float = 0.001,
        noise: Tensor | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Tensor]:
        """Per-example losses ``[B]``: ``"loss"`` (what to minimise) and its parts ``"mse"``/``"vb"``.

        ``vlb_weight`` is λ of L_hybrid; L_vlb is estimated as ``T · L_t`` (module docstring).
        """
        check_choice("loss", loss, LOSSES)
        check_float("vlb_weight", vlb_weight, 0.0, finite=True)
        learned = self.variance == "learned_range"
        if loss == "simple" and learned:
            raise ValueError(
                "learned_range variances get no training signal from loss='simple': use 'hybrid' or 'vlb'"
            )
        if loss == "hybrid" and not learned:
            raise ValueError(
                "loss='hybrid' trains the variance through L_vlb (its mean is detached there): it needs "
                "variance='learned_range'; with fixed variances use 'simple' or 'vlb'"
            )
        check_tensor("x0", x0, floating=True)
        t = self._check_t(t, x0.shape[0])
        noise = torch.randn_like(x0) if noise is None else noise
        x_t = self.q_sample(x0, t, noise)
        output = self.model_output(model, x_t, t, model_kwargs)
        terms: dict[str, Tensor] = {}
        T = self.num_timesteps
        if loss in ("simple", "hybrid"):
            prediction = output.chunk(2, dim=1)[0] if learned else output
            terms["mse"] = _mean_flat((self.target(x0, t, noise) - prediction) ** 2)
        if loss in ("vlb", "hybrid"):
            frozen = loss == "hybrid"
            out = self.p_mean_variance(output, x_t, t, clip_denoised=False, frozen_mean=frozen)
            terms["vb"] = self._vb_bits(out, x0, x_t, t)
        if loss == "simple":
            terms["loss"] = terms["mse"]
        elif loss == "vlb":
            terms["loss"] = T * terms["vb"]
        else:
            terms["loss"] = terms["mse"] + vlb_weight * T * terms["vb"]
        return terms

    # -- likelihood ---------------------------------------------------------------------------------

    def prior_bpd(self, x0: Tensor) -> Tensor:
        """KL(q(x_T | x_0) ‖ N(0, I)) in bits per dimension ``[B]`` (the L_T term)."""
        t = torch.full((x0.shape[0],), self.num_timesteps - 1, dtype=torch.long, device=x0.device)
        mean = self._at("sqrt_alpha_bar", t, x0) * x0
        log_variance = torch.log1p(-self._at("alpha_bar", t, x0)).expand_as(x0)
        return _mean_flat(
            normal_kl(mean, log_variance, torch.zeros_like(x0), torch.zeros_like(x0))
        ) / math.log(2.0)

    @torch.no_grad()
    def nll_bpd(
        self,
        model: Model,
        x0: Tensor,
        *,
        clip_denoised: bool = True,
        model_kwargs: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> dict[str, Tensor]:
        """The full variational bound in bits/dim ``[B]``: Σ_t L_t + L_T, every term at a fresh x_t.

        Returns ``"total"``, ``"prior"`` and ``"terms"`` (``[B, T]``, L_0..L_{T−1}).
        """
        check_tensor("x0", x0, floating=True)
        terms = torch.zeros(x0.shape[0], self.num_timesteps, device=x0.device)
        steps = range(self.num_timesteps - 1, -1, -1)
        for i in track(steps, description="variational bound") if progress else steps:
            t = torch.full((x0.shape[0],), i, dtype=torch.long, device=x0.device)
            noise = gaussian_noise(x0.shape, generator, x0.device, x0.dtype)
            x_t = self.q_sample(x0, t, noise)
            out = self.p_mean_variance(
                self.model_output(model, x_t, t, model_kwargs), x_t, t, clip_denoised=clip_denoised
            )
            terms[:, i] = self._vb_bits(out, x0, x_t, t)
        prior = self.prior_bpd(x0)
        return {"total": terms.sum(1) + prior, "prior": prior, "terms": terms}

    # -- sampling -----------------------------------------------------------------------------------

    def p_sample(
        self,
        model: Model,
        x_t: Tensor,
        t: Tensor,
        *,
        clip_denoised: bool = True,
        model_kwargs: dict[str, Any] | None = None,
        cond_fn: CondFn | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """One ancestral step x_t → x_{t−1}; with ``cond_fn`` the mean moves by Σ ∇ log p(y|x_t)
        (Dhariwal & Nichol Algorithm 1; ``cond_fn(x_t, t, **model_kwargs)`` returns s ∇ log p)."""
        out = self.p_mean_variance(
            self.model_output(model, x_t, t, model_kwargs), x_t, t, clip_denoised=clip_denoised
        )
        mean = out["mean"]
        if cond_fn is not None:
            gradient = cond_fn(x_t, self.timestep_map[t], **(model_kwargs or {}))
            mean = mean.float() + out["variance"] * gradient.float()
        noise = gaussian_noise(x_t.shape, generator, x_t.device, x_t.dtype)
        nonzero = (t != 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))  # no noise at the last step
        return {
            "sample": mean + nonzero * torch.exp(0.5 * out["log_variance"]) * noise,
            "pred_x0": out["pred_x0"],
        }

    def ddim_sample(
        self,
        model: Model,
        x_t: Tensor,
        t: Tensor,
        *,
        eta: float = 0.0,
        clip_denoised: bool = True,
        model_kwargs: dict[str, Any] | None = None,
        cond_fn: CondFn | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """One DDIM step (Song et al. 2021, Eq. 12); with ``cond_fn`` the ε prediction becomes
        ε − √(1 − ᾱ_t) ∇ log p(y|x_t) (Dhariwal & Nichol Algorithm 2)."""
        check_float("eta", eta, 0.0, finite=True)
        out = self.p_mean_variance(
            self.model_output(model, x_t, t, model_kwargs), x_t, t, clip_denoised=clip_denoised
        )
        eps, x0 = out["pred_eps"], out["pred_x0"]
        if cond_fn is not None:
            gradient = cond_fn(x_t, self.timestep_map[t], **(model_kwargs or {}))
            eps = eps - self._at("sqrt_one_minus_alpha_bar", t, x_t) * gradient
            x0 = self._x0_from_eps(x_t, t, eps)
            if clip_denoised:
                x0 = x0.clamp(-1, 1)
        alpha_bar, alpha_bar_prev = self._at("alpha_bar", t, x_t), self._at("alpha_bar_prev", t, x_t)
        sigma = (
            eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()
        )
        mean = x0 * alpha_bar_prev.sqrt() + (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() * eps
        noise = gaussian_noise(x_t.shape, generator, x_t.device, x_t.dtype)
        nonzero = (t != 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))
        return {"sample": mean + nonzero * sigma * noise, "pred_x0": x0}

    def _x0_from_eps(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        return (
            self._at("sqrt_recip_alpha_bar", t, x_t) * x_t - self._at("sqrt_recipm1_alpha_bar", t, x_t) * eps
        )

    @torch.no_grad()
    def sample(
        self,
        model: Model,
        shape: tuple[int, ...],
        *,
        method: str = "ancestral",
        eta: float = 0.0,
        noise: Tensor | None = None,
        clip_denoised: bool = True,
        model_kwargs: dict[str, Any] | None = None,
        cond_fn: CondFn | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        progress: bool = False,
    ) -> Tensor:
        """Run the whole chain from x_T ~ N(0, I) (or ``noise``) to x_0: ``"ancestral"`` (Ho et al.
        Algorithm 2) or ``"ddim"`` (with ``eta``). Guidance by classifier needs gradients, which
        ``cond_fn`` enables for itself (``torch.enable_grad``)."""
        check_choice("method", method, ("ancestral", "ddim"))
        if not isinstance(shape, tuple) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"shape must be a tuple of positive ints, got {shape!r}")
        if noise is None:
            x = gaussian_noise(shape, generator, device)
        else:
            check_tensor("noise", noise, shape=shape, floating=True)
            x = noise
        steps = range(self.num_timesteps - 1, -1, -1)
        for i in track(steps, description=f"{method} sampling") if progress else steps:
            t = torch.full((shape[0],), i, dtype=torch.long, device=x.device)
            if method == "ancestral":
                step = self.p_sample(
                    model,
                    x,
                    t,
                    clip_denoised=clip_denoised,
                    model_kwargs=model_kwargs,
                    cond_fn=cond_fn,
                    generator=generator,
                )
            else:
                step = self.ddim_sample(
                    model,
                    x,
                    t,
                    eta=eta,
                    clip_denoised=clip_denoised,
                    model_kwargs=model_kwargs,
                    cond_fn=cond_fn,
                    generator=generator,
                )
            x = step["sample"]
        return x
