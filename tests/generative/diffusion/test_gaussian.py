"""The Gaussian-diffusion core: schedules and steps against diffusers, closed forms, invariants."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.generative.diffusion.gaussian import (
    GaussianDiffusion,
    discretized_gaussian_log_likelihood,
    normal_kl,
)
from aicanon.generative.diffusion.respace import respace, space_timesteps
from aicanon.generative.diffusion.schedules import cosine_betas, linear_betas, make_betas
from aicanon.generative.diffusion.timestep_sampling import LossSecondMomentSampler, UniformSampler

diffusers = pytest.importorskip("diffusers")


class Fixed(torch.nn.Module):
    """A 'model' returning a fixed output whatever its input (to feed both implementations alike)."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, x, t):
        return self.output


class Oracle(torch.nn.Module):
    """Predicts the exact ε for a dataset of one known image."""

    def __init__(self, diffusion: GaussianDiffusion, x0: torch.Tensor) -> None:
        super().__init__()
        self.diffusion, self.x0 = diffusion, x0

    def forward(self, x, t):
        index = torch.searchsorted(self.diffusion.timestep_map, t)
        return self.diffusion.predict_eps(x, index, self.x0.expand_as(x))


@pytest.mark.parity
@pytest.mark.parametrize(("ours", "theirs"), [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_schedules_equal_diffusers(ours, theirs):
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs)
    betas = make_betas(ours, 1000)
    torch.testing.assert_close(betas.float(), scheduler.betas, atol=1e-7, rtol=1e-5)
    diffusion = GaussianDiffusion(betas)
    torch.testing.assert_close(diffusion.alpha_bar.float(), scheduler.alphas_cumprod, atol=1e-6, rtol=1e-5)


def test_cosine_schedule_is_eq_17():
    betas = cosine_betas(100)
    f = lambda t: math.cos((t / 100 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    alpha_bar = torch.cumprod(1 - betas, 0)
    for t in (1, 10, 50, 99):
        assert alpha_bar[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    assert betas.max().item() == pytest.approx(0.999)  # the last step is clipped
    assert linear_betas(4000)[0].item() == pytest.approx(1e-4 / 4)


@pytest.mark.parity
@pytest.mark.parametrize("t", [0, 1, 500, 999])
def test_learned_range_step_equals_diffusers(t):
    torch.manual_seed(0)
    x_t, output = torch.randn(2, 3, 4, 4), torch.randn(2, 6, 4, 4)
    output[:, 3:] = output[:, 3:].tanh()  # v in [-1, 1]
    scheduler = diffusers.DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        variance_type="learned_range",
        clip_sample=True,
    )
    theirs = scheduler.step(output, t, x_t, generator=torch.Generator().manual_seed(1)).prev_sample
    diffusion = GaussianDiffusion(cosine_betas(1000), variance="learned_range")
    step = torch.full((2,), t)
    ours = diffusion.p_sample(Fixed(output), x_t, step, generator=torch.Generator().manual_seed(1))["sample"]
    # At t = 1, 1 - alpha_bar is ~4e-5: diffusers' float32 cumprod keeps ~3 digits of it, ours (float64) all.
    tolerance = 1e-3 if t == 1 else 2e-5
    torch.testing.assert_close(ours, theirs, atol=tolerance, rtol=tolerance)


@pytest.mark.parity
def test_respaced_learned_range_chain_equals_diffusers():
    torch.manual_seed(0)
    scheduler = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", variance_type="learned_range", clip_sample=True
    )
    scheduler.set_timesteps(50)
    diffusion = respace(
        GaussianDiffusion(linear_betas(1000), variance="learned_range"), sorted(scheduler.timesteps.tolist())
    )
    x_theirs = x_ours = torch.randn(2, 1, 4, 4)
    g_theirs, g_ours = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for i, t in enumerate(scheduler.timesteps.tolist()):
        output = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(100 + i))
        output[:, 1:] = output[:, 1:].tanh()
        x_theirs = scheduler.step(output, t, x_theirs, generator=g_theirs).prev_sample
        index = torch.full((2,), diffusion.num_timesteps - 1 - i)
        assert diffusion.timestep_map[index[0]].item() == t
        x_ours = diffusion.p_sample(Fixed(output), x_ours, index, generator=g_ours)["sample"]
    torch.testing.assert_close(x_ours, x_theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parity
def test_ddim_chain_equals_diffusers():
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    scheduler.set_timesteps(20)
    diffusion = respace(GaussianDiffusion(linear_betas(1000)), sorted(scheduler.timesteps.tolist()))
    x_theirs = x_ours = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for i, t in enumerate(scheduler.timesteps.tolist()):
        output = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(i))
        x_theirs = scheduler.step(output, t, x_theirs, eta=0.0).prev_sample
        index = torch.full((2,), diffusion.num_timesteps - 1 - i)
        x_ours = diffusion.ddim_sample(Fixed(output), x_ours, index, clip_denoised=False)["sample"]
    torch.testing.assert_close(x_ours, x_theirs, atol=1e-4, rtol=1e-4)


def test_kl_and_discretised_likelihood_closed_forms():
    m1, lv1, m2, lv2 = torch.randn(4), torch.randn(4), torch.randn(4), torch.randn(4)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, (0.5 * lv1).exp()), torch.distributions.Normal(m2, (0.5 * lv2).exp())
    )
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), expected)
    bins = torch.linspace(-1, 1, 256)
    for mean, log_scale in [(0.3, -2.0), (-0.99, -4.0), (0.0, 1.0)]:
        log_p = discretized_gaussian_log_likelihood(bins, torch.tensor(mean), torch.tensor(log_scale))
        assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)  # the 256 bins carry all the mass


def test_q_sample_marginals_and_posterior():
    diffusion = GaussianDiffusion(linear_betas(100))
    x0 = torch.full((20000, 1), 0.5)
    t = torch.full((20000,), 60)
    x_t = diffusion.q_sample(x0, t, torch.randn(20000, 1, generator=torch.Generator().manual_seed(0)))
    a = diffusion.alpha_bar[60].item()
    assert x_t.mean().item() == pytest.approx(math.sqrt(a) * 0.5, abs=0.02)
    assert x_t.var().item() == pytest.approx(1 - a, abs=0.02)
    # The posterior of one step from x_1 given x_0 is q(x_0|...) with variance beta~ (Ho et al. Eq. 7).
    mean, var, _ = diffusion.q_posterior(torch.zeros(1, 1), torch.ones(1, 1), torch.tensor([60]))
    b, ap = diffusion.betas[60].item(), diffusion.alpha_bar[59].item()
    assert var.item() == pytest.approx(b * (1 - ap) / (1 - a))
    assert mean.item() == pytest.approx((1 - ap) * math.sqrt(1 - b) / (1 - a))


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_predictions_are_consistent(prediction):
    diffusion = GaussianDiffusion(cosine_betas(50), prediction=prediction)
    x0, noise, t = torch.rand(3, 1, 2, 2) * 2 - 1, torch.randn(3, 1, 2, 2), torch.tensor([0, 20, 49])
    x_t = diffusion.q_sample(x0, t, noise)
    torch.testing.assert_close(
        diffusion.predict_x0(x_t, t, diffusion.target(x0, t, noise)), x0, atol=1e-4, rtol=1e-4
    )


def test_oracle_model_has_zero_kl_and_samples_its_point():
    x0 = torch.tensor([[[[0.5, -0.5], [1.0, -1.0]]]])
    diffusion = GaussianDiffusion(linear_betas(40))
    oracle = Oracle(diffusion, x0)
    bound = diffusion.nll_bpd(oracle, x0.repeat(2, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    assert bound["terms"][:, 1:].abs().max().item() < 1e-4  # the mean is exact: every KL term vanishes
    assert bound["total"].min().item() > 0
    sample = diffusion.sample(oracle, (2, 1, 2, 2), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sample, x0.repeat(2, 1, 1, 1), atol=1e-3, rtol=0)
    ddim = diffusion.sample(oracle, (2, 1, 2, 2), method="ddim", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ddim, x0.repeat(2, 1, 1, 1), atol=1e-3, rtol=0)


def test_hybrid_loss_stops_the_vlb_gradient_at_the_mean():
    diffusion = GaussianDiffusion(cosine_betas(100), variance="learned_range")
    output = torch.randn(4, 2, 3, 3, requires_grad=True)
    x0, t = torch.rand(4, 1, 3, 3) * 2 - 1, torch.tensor([0, 5, 50, 99])
    terms = diffusion.training_losses(lambda x, s: output, x0, t, loss="hybrid")
    (grad,) = torch.autograd.grad(terms["vb"].sum(), output)
    assert grad[:, :1].abs().max() == 0 and grad[:, 1:].abs().max() > 0
    torch.testing.assert_close(terms["loss"], terms["mse"] + 0.001 * 100 * terms["vb"])
    vlb = diffusion.training_losses(lambda x, s: output, x0, t, loss="vlb")
    (grad,) = torch.autograd.grad(vlb["loss"].sum(), output)
    assert grad[:, :1].abs().max() > 0  # without the stop-gradient, L_vlb trains the mean too


def test_respacing_keeps_the_marginals():
    base = GaussianDiffusion(cosine_betas(1000), variance="learned_range")
    steps = space_timesteps(1000, 25)
    assert len(steps) == 25 and steps[0] == 0 and steps[-1] == 999
    spaced = respace(base, steps)
    torch.testing.assert_close(spaced.alpha_bar, base.alpha_bar[steps])
    assert spaced.timestep_map.tolist() == steps
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    assert space_timesteps(300, [10, 15, 20])[:2] == [0, 11]
    twice = respace(spaced, [0, 12, 24])
    assert twice.timestep_map.tolist() == [steps[0], steps[12], steps[24]]


def test_importance_sampler_is_unbiased_and_prefers_large_losses():
    sampler = LossSecondMomentSampler(4, history=2, uniform_prob=0.0)
    losses = torch.tensor([8.0, 1.0, 1.0, 2.0])
    for _ in range(2):
        sampler.update(torch.arange(4), losses)
    p = sampler.probabilities()
    torch.testing.assert_close(p, (losses / losses.sum()).double())
    t, w = sampler.sample(100000, generator=torch.Generator().manual_seed(0))
    assert (w * losses[t]).mean().item() == pytest.approx(losses.mean().item(), rel=0.02)
    t, w = UniformSampler(4).sample(8)
    assert (w == 1).all()


def test_bad_input():
    with pytest.raises(ValueError, match="betas"):
        GaussianDiffusion(torch.tensor([0.5, 1.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="variance"):
        GaussianDiffusion(linear_betas(100), variance="learned")
    diffusion = GaussianDiffusion(linear_betas(100))
    with pytest.raises(ValueError, match="t must be in"):
        diffusion.q_sample(torch.zeros(2, 1), torch.tensor([0, 100]))
    with pytest.raises(ValueError, match="hybrid"):
        diffusion.training_losses(lambda x, t: x, torch.zeros(2, 1), torch.tensor([0, 1]), loss="hybrid")
    with pytest.raises(ValueError, match="learned_range"):
        GaussianDiffusion(linear_betas(100), variance="learned_range").training_losses(
            lambda x, t: torch.cat([x, x], 1), torch.zeros(2, 1), torch.tensor([0, 1])
        )
    with pytest.raises(ValueError, match="model must return"):
        diffusion.training_losses(lambda x, t: x[:, :0], torch.zeros(2, 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="strictly increasing"):
        respace(diffusion, [0, 5, 5])
    with pytest.raises(ValueError, match="lie in"):
        respace(diffusion, [0, 100])
    with pytest.raises(ValueError, match="ddimN"):
        space_timesteps(10, "every5")
    with pytest.raises(ValueError, match="schedule"):
        make_betas("quadratic", 10)
