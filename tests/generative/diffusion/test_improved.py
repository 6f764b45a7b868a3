"""Improved DDPM on the diffusion core: what tests/generative/diffusion/test_gaussian.py does not cover
(the paper's T = 4000 cosine schedule, fixed-variance steps and a linear-schedule learned-range step
against diffusers, Eq. 15's end points), and the exact bound over a dataset with a decoder for any
number of grey levels (:mod:`aicanon.generative.diffusion.improved`)."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.generative.diffusion.gaussian import GaussianDiffusion, discretized_gaussian_log_likelihood
from aicanon.generative.diffusion.improved import variational_bound_bpd
from aicanon.generative.diffusion.schedules import cosine_betas, linear_betas

pytestmark = pytest.mark.paper("improved-ddpm")


class Fixed(torch.nn.Module):
    """A 'model' returning a fixed output whatever its input."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, x, t):
        return self.output


class Oracle(torch.nn.Module):
    """Predicts the exact ε of a dataset of one known image (and v = −1, i.e. β̃_t, when ``learned``)."""

    def __init__(self, diffusion: GaussianDiffusion, x0: torch.Tensor, learned: bool = False) -> None:
        super().__init__()
        self.diffusion, self.x0, self.learned = diffusion, x0, learned

    def forward(self, x, t):
        eps = self.diffusion.predict_eps(x, t, self.x0.expand_as(x))
        return torch.cat([eps, -torch.ones_like(eps)], 1) if self.learned else eps


# -- reference parity (diffusers) ------------------------------------------------------------------


@pytest.mark.parity
def test_cosine_schedule_at_the_papers_4000_steps_equals_diffusers():
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=4000, beta_schedule="squaredcos_cap_v2")
    betas = cosine_betas(4000)
    torch.testing.assert_close(betas.float(), scheduler.betas, atol=1e-7, rtol=1e-5)
    diffusion = GaussianDiffusion(betas)
    torch.testing.assert_close(diffusion.alpha_bar.float(), scheduler.alphas_cumprod, atol=1e-6, rtol=1e-4)


@pytest.mark.parity
@pytest.mark.parametrize(
    ("schedule", "variance", "theirs"),
    [
        ("linear", "fixed_small", "fixed_small"),
        ("cosine", "fixed_small", "fixed_small"),
        ("linear", "fixed_large", "fixed_large"),
        ("cosine", "fixed_large", "fixed_large"),
        ("linear", "learned_range", "learned_range"),
    ],
)
@pytest.mark.parametrize("t", [1, 10, 500, 999])
def test_one_reverse_step_equals_diffusers(schedule, variance, theirs, t):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(t)
    learned = variance == "learned_range"
    x_t = torch.randn(2, 3, 4, 4)
    output = torch.randn(2, 6 if learned else 3, 4, 4)
    if learned:
        output[:, 3:] = output[:, 3:].tanh()
    scheduler = diffusers.DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear" if schedule == "linear" else "squaredcos_cap_v2",
        variance_type=theirs,
        clip_sample=True,
    )
    expected = scheduler.step(output, t, x_t, generator=torch.Generator().manual_seed(1)).prev_sample
    betas = linear_betas(1000) if schedule == "linear" else cosine_betas(1000)
    diffusion = GaussianDiffusion(betas, variance=variance)
    step = torch.full((2,), t)
    ours = diffusion.p_sample(Fixed(output), x_t, step, generator=torch.Generator().manual_seed(1))["sample"]
    # At t = 1 the cosine 1 − ᾱ is ~4e-5: diffusers' float32 cumprod keeps ~3 digits of it, ours all.
    tolerance = 1e-3 if t == 1 else 2e-5
    torch.testing.assert_close(ours, expected, atol=tolerance, rtol=tolerance)


# -- Eq. 15 -----------------------------------------------------------------------------------------


def test_learned_range_interpolates_between_beta_tilde_and_beta():
    betas = cosine_betas(100)
    learned = GaussianDiffusion(betas, variance="learned_range")
    small = GaussianDiffusion(betas, variance="fixed_small")
    x_t, eps, t = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2), torch.tensor([1, 40, 99])
    ends = {}
    for v in (-1.0, 0.0, 1.0):
        output = torch.cat([eps, torch.full_like(eps, v)], 1)
        ends[v] = learned.p_mean_variance(output, x_t, t)["log_variance"]
    reference = small.p_mean_variance(eps, x_t, t)
    torch.testing.assert_close(ends[-1.0], reference["log_variance"])  # v = −1: β̃_t
    log_beta = betas[t].log().float().reshape(-1, 1, 1, 1).expand_as(x_t)
    torch.testing.assert_close(ends[1.0], log_beta)  # v = +1: β_t
    torch.testing.assert_close(ends[0.0], (ends[-1.0] + ends[1.0]) / 2)  # log-linear in between (Eq. 15)
    # The mean does not depend on v.
    torch.testing.assert_close(
        learned.p_mean_variance(torch.cat([eps, -torch.ones_like(eps)], 1), x_t, t)["mean"], reference["mean"]
    )


# -- the decoder for any number of levels -----------------------------------------------------------


@pytest.mark.parametrize("levels", [2, 17, 256])
@pytest.mark.parametrize(("mean", "log_scale"), [(0.3, -2.0), (-0.99, -4.0), (0.0, 1.0), (1.0, -6.0)])
def test_decoder_bins_carry_all_the_mass(levels, mean, log_scale):
    bins = torch.linspace(-1, 1, levels, dtype=torch.float64)
    log_p = discretized_gaussian_log_likelihood(
        bins, torch.tensor(mean), torch.tensor(log_scale), levels=levels
    )
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_decoder_is_the_normal_mass_of_the_bin():
    normal = torch.distributions.Normal(torch.tensor(0.1, dtype=torch.float64), 0.2)
    x = torch.tensor([-1.0, -0.5, 0.125, 0.875, 1.0], dtype=torch.float64)  # on the 17-level grid
    log_p = discretized_gaussian_log_likelihood(x, normal.mean, normal.stddev.log(), levels=17)
    h = 1 / 16
    expected = torch.stack(
        [
            normal.cdf(torch.tensor(-1 + h)),
            normal.cdf(x[1] + h) - normal.cdf(x[1] - h),
            normal.cdf(x[2] + h) - normal.cdf(x[2] - h),
            normal.cdf(x[3] + h) - normal.cdf(x[3] - h),
            1 - normal.cdf(torch.tensor(1 - h)),
        ]
    )
    torch.testing.assert_close(log_p.exp(), expected)


def test_256_levels_are_ho_et_als_8_bit_decoder():
    # Eq. 13 with 8-bit bins: the mass of [x - 1/255, x + 1/255], edges to -inf / +inf.
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50,), generator=g).double() / 127.5 - 1
    x[:2] = torch.tensor([-1.0, 1.0])  # the edge bins
    # means near the data, so that the direct difference of CDFs is not lost to rounding in the tails
    mean = x + 0.02 * torch.randn(50, generator=g, dtype=torch.float64)
    log_scale = -1 - 3 * torch.rand(50, generator=g, dtype=torch.float64)
    normal = torch.distributions.Normal(mean, log_scale.exp())
    upper = torch.where(x > 0.999, torch.ones_like(x), normal.cdf(x + 1 / 255))
    lower = torch.where(x < -0.999, torch.zeros_like(x), normal.cdf(x - 1 / 255))
    expected = (upper - lower).clamp(min=1e-12).log()
    torch.testing.assert_close(discretized_gaussian_log_likelihood(x, mean, log_scale), expected)


# -- the bound over a dataset -----------------------------------------------------------------------


def test_bound_at_256_levels_equals_the_cores_nll_bpd():
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(cosine_betas(30), variance="learned_range")
    net = torch.nn.Conv2d(1, 2, 3, padding=1)
    model = lambda x, t: net(x).tanh()  # noqa: E731
    x0 = torch.randint(0, 256, (5, 1, 4, 4)).float() / 127.5 - 1
    ours = variational_bound_bpd(model, diffusion, x0, generator=torch.Generator().manual_seed(3))
    core = diffusion.nll_bpd(model, x0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours["terms"], core["terms"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours["total"], core["total"], atol=1e-4, rtol=1e-5)
    # Batching changes nothing but the noise's order: with one batch per image and a fresh generator
    # per call the first image's bound is the same as computed alone.
    alone = variational_bound_bpd(model, diffusion, x0[:1], generator=torch.Generator().manual_seed(3))
    batched = variational_bound_bpd(
        model, diffusion, x0, batch_size=1, generator=torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(batched["total"][:1], alone["total"])


def test_one_pass_gives_the_bound_of_each_fixed_variance():
    torch.manual_seed(0)
    betas = linear_betas(50)
    large, small = GaussianDiffusion(betas, variance="fixed_large"), GaussianDiffusion(betas)
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    model = lambda x, t: net(x)  # noqa: E731
    x0 = torch.randint(0, 17, (4, 1, 4, 4)).float() / 8 - 1
    both = variational_bound_bpd(
        model, [large, small], x0, levels=17, generator=torch.Generator().manual_seed(1)
    )
    only = variational_bound_bpd(model, small, x0, levels=17, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(both[1]["total"], only["total"])
    assert not torch.allclose(both[0]["total"], both[1]["total"])


@pytest.mark.parametrize("learned", [False, True])
def test_oracle_on_17_levels_costs_only_the_prior(learned):
    """A model that knows the image: every KL vanishes and the decoder puts all its mass on the right
    17-level bin, so the bound is L_T alone (tiny); a 256-level decoder would charge ~log2(255/16)
    bits/dim more for bins 16x narrower than the data's own."""
    x0 = (torch.randint(0, 17, (1, 1, 4, 4)).float() / 8 - 1).repeat(2, 1, 1, 1)
    diffusion = GaussianDiffusion(cosine_betas(1000), variance="learned_range" if learned else "fixed_small")
    oracle = Oracle(diffusion, x0[:1], learned=learned)
    bound = variational_bound_bpd(
        oracle, diffusion, x0, levels=17, generator=torch.Generator().manual_seed(0)
    )
    assert bound["terms"][:, 1:].abs().max().item() < 1e-4  # the mean and variance are q's
    assert bound["terms"][:, 0].max().item() < 1e-6  # the decoder is sure of the bin
    assert bound["total"].max().item() < 1e-3
    wide = variational_bound_bpd(
        oracle, diffusion, x0, levels=256, generator=torch.Generator().manual_seed(0)
    )
    assert wide["total"].min().item() > 0.5  # a bin of 2/255 around x holds far less of the decoder's mass


def test_bound_of_noise_on_17_levels_is_near_log2_17():
    """An untrained constant model facing uniform 17-level data cannot beat the code length of the
    uniform distribution by much: the bound is at least that (minus slack for the prior)."""
    x0 = torch.randint(0, 17, (64, 1, 4, 4)).float() / 8 - 1
    diffusion = GaussianDiffusion(cosine_betas(40))
    bound = variational_bound_bpd(
        lambda x, t: torch.zeros_like(x), diffusion, x0, levels=17, generator=torch.Generator().manual_seed(0)
    )
    assert bound["total"].mean().item() > math.log2(17) - 0.3


def test_bad_input():
    diffusion = GaussianDiffusion(cosine_betas(10))
    model = lambda x, t: x  # noqa: E731
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="levels"):
        discretized_gaussian_log_likelihood(x0, x0, x0, levels=1)
    with pytest.raises(ValueError, match="x0"):
        variational_bound_bpd(model, diffusion, torch.zeros(2, 16))
    with pytest.raises(TypeError, match="diffusions"):
        variational_bound_bpd(model, [], x0)
    with pytest.raises(ValueError, match="share betas"):
        variational_bound_bpd(model, [diffusion, GaussianDiffusion(cosine_betas(11))], x0)
    with pytest.raises(ValueError, match="learn their variance"):
        variational_bound_bpd(
            model, [diffusion, GaussianDiffusion(cosine_betas(10), variance="learned_range")], x0
        )
    with pytest.raises(ValueError, match="batch_size"):
        variational_bound_bpd(model, diffusion, x0, batch_size=0)
    with pytest.raises(ValueError, match="rows"):
        variational_bound_bpd(
            model, diffusion, x0, model_kwargs={"class_labels": torch.zeros(3, dtype=torch.long)}
        )
