"""Classifier guidance: the noise-aware classifier, its loss, and cond_fn = s ∇ log p(y | x_t) inside
Algorithms 1 and 2; the ADM UNet options of the guided-digits denoiser against diffusers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aicanon.generative.diffusion.classifier_guidance import (
    AttentionPool2d,
    NoisyClassifier,
    NoisyClassifierConfig,
    classifier_cond_fn,
    classifier_loss,
)
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.schedules import cosine_betas

pytestmark = pytest.mark.paper("adm-guided-diffusion")

TINY = NoisyClassifierConfig(
    in_channels=1,
    image_size=8,
    num_classes=10,
    block_out_channels=(8, 16),
    layers_per_block=1,
    attention_levels=(False, True),
    attention_head_dim=8,
    norm_groups=4,
)


def _classifier(cfg: NoisyClassifierConfig = TINY) -> NoisyClassifier:
    torch.manual_seed(0)
    return NoisyClassifier(cfg).double().eval()


def test_classifier_shapes_and_timestep_conditioning():
    net = _classifier()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    logits = net(x, torch.tensor([0, 10, 999]))
    assert logits.shape == (3, 10)
    assert not torch.allclose(logits, net(x, torch.tensor([500, 500, 500])))
    assert net(x, 7).shape == (3, 10)  # a scalar timestep is broadcast
    mean_pool = NoisyClassifier(NoisyClassifierConfig(**{**TINY.__dict__, "pool": "mean"}))
    assert mean_pool(x.float(), torch.tensor([1, 2, 3])).shape == (3, 10)
    # ADM's trunk: the BigGAN down block, AdaGN, attention with 8 channels per head, the pool at 4x4.
    assert net.down_blocks[0].downsamplers[0].resample == "down"
    assert net.down_blocks[1].attentions[0].heads == 2
    assert net.pool.positional_embedding.shape == (4 * 4 + 1, 16)


def test_attention_pool_matches_an_explicit_computation():
    torch.manual_seed(0)
    pool = AttentionPool2d(positions=4, channels=8, head_dim=4, out_features=3).double()
    x = torch.randn(2, 8, 2, 2, dtype=torch.float64)
    tokens = x.flatten(2).transpose(1, 2)  # [B, 4, 8]
    tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1) + pool.positional_embedding
    q, k, v = pool.qkv(tokens).split(8, dim=-1)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        weights = torch.softmax(q[:, :1, sl] @ k[:, :, sl].transpose(1, 2) / math.sqrt(4), dim=-1)
        heads.append(weights @ v[:, :, sl])
    expected = pool.proj(torch.cat(heads, -1)[:, 0])
    torch.testing.assert_close(pool(x), expected)


def test_cond_fn_is_the_scaled_gradient_of_log_softmax():
    net = _classifier()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    t = torch.tensor([3, 50, 400, 900])
    y = torch.tensor([0, 3, 7, 9])
    gradient = classifier_cond_fn(net, 2.5, labels=y)(x, t)
    # autograd of log-softmax, written out independently
    z = x.clone().requires_grad_()
    logits = net(z, t)
    log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    log_p[torch.arange(4), y].sum().backward()
    torch.testing.assert_close(gradient.double(), 2.5 * z.grad, atol=1e-6, rtol=1e-5)
    # a central finite difference along a random direction
    direction = torch.randn_like(x)
    eps = 1e-5

    def objective(xx):
        with torch.no_grad():
            return F.log_softmax(net(xx, t), -1)[torch.arange(4), y].sum()

    numeric = (objective(x + eps * direction) - objective(x - eps * direction)) / (2 * eps)
    analytic = (gradient.double() / 2.5 * direction).sum()
    assert abs(numeric.item() - analytic.item()) < 1e-3 * max(1.0, abs(numeric.item()))
    # labels from model_kwargs, linearity in s, and s = 0
    from_kwargs = classifier_cond_fn(net, 2.5)(x, t, class_labels=y)
    torch.testing.assert_close(from_kwargs, gradient)
    torch.testing.assert_close(classifier_cond_fn(net, 5.0, labels=y)(x, t), 2 * gradient)
    assert not classifier_cond_fn(net, 0.0, labels=y)(x, t).any()


def _diffusion() -> GaussianDiffusion:
    return GaussianDiffusion(cosine_betas(50))


def test_algorithm_1_shifts_the_mean_by_variance_times_gradient():
    diffusion = _diffusion()
    net = _classifier().float()
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def model(x, t):
        return conv(x)

    x = torch.randn(4, 1, 8, 8)
    t = torch.full((4,), 30)
    y = torch.tensor([1, 2, 3, 4])
    cond_fn = classifier_cond_fn(net, 3.0, labels=y)
    plain = diffusion.p_sample(model, x, t, generator=torch.Generator().manual_seed(0))
    guided = diffusion.p_sample(model, x, t, cond_fn=cond_fn, generator=torch.Generator().manual_seed(0))
    variance = diffusion.posterior_variance[30].float()
    with torch.no_grad():
        expected = plain["sample"] + variance * cond_fn(x, t)
    torch.testing.assert_close(guided["sample"], expected, atol=1e-5, rtol=1e-5)


def test_algorithm_2_shifts_epsilon_by_sqrt_one_minus_alpha_bar_times_gradient():
    diffusion = _diffusion()
    net = _classifier().float()
    x = torch.randn(4, 1, 8, 8)
    t = torch.full((4,), 30)
    y = torch.tensor([1, 2, 3, 4])
    cond_fn = classifier_cond_fn(net, 3.0, labels=y)
    eps = torch.randn(4, 1, 8, 8)
    gradient = cond_fn(x, t)
    shifted = eps - (1 - diffusion.alpha_bar[30]).sqrt().float() * gradient

    guided = diffusion.ddim_sample(lambda *_: eps, x, t, cond_fn=cond_fn, clip_denoised=False)
    reference = diffusion.ddim_sample(lambda *_: shifted, x, t, clip_denoised=False)
    torch.testing.assert_close(guided["sample"], reference["sample"], atol=1e-5, rtol=1e-5)


def test_guided_sampling_runs_on_a_respaced_chain_with_both_samplers():
    from aicanon.generative.diffusion.respace import respace, space_timesteps

    chain = respace(GaussianDiffusion(cosine_betas(100)), space_timesteps(100, 5))
    net = _classifier().float()
    seen = []

    def cond_fn(x, t, **kwargs):
        seen.append(t.clone())
        return classifier_cond_fn(net, 1.0, labels=torch.tensor([0, 1]))(x, t)

    conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def model(x, t):
        return conv(x)

    for method in ("ancestral", "ddim"):
        out = chain.sample(model, (2, 1, 8, 8), method=method, cond_fn=cond_fn)
        assert out.shape == (2, 1, 8, 8) and torch.isfinite(out).all()
    # the classifier is told the original timesteps of the respaced chain
    assert int(seen[0][0]) == 99 and int(seen[4][0]) == 0


def test_classifier_loss_trains_on_noised_inputs():
    diffusion = _diffusion()
    torch.manual_seed(0)
    net = NoisyClassifier(TINY)
    x0 = torch.randn(32, 1, 8, 8).clamp(-1, 1)
    y = torch.arange(32) % 10
    x0 = x0 * 0.1 + (y.float() / 4.5 - 1)[:, None, None, None]  # classes differ in brightness
    terms = classifier_loss(net, diffusion, x0, y, generator=torch.Generator().manual_seed(0))
    assert terms["loss"].shape == (32,) and terms["correct"].shape == (32,)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    t = torch.full((32,), 2)  # little noise: the classes stay separable
    first = classifier_loss(net, diffusion, x0, y, t=t, noise=torch.zeros_like(x0))["loss"].mean().item()
    for _ in range(40):
        loss = classifier_loss(net, diffusion, x0, y, t=t)["loss"].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = classifier_loss(net, diffusion, x0, y, t=t, noise=torch.zeros_like(x0))["loss"].mean().item()
    assert last < 0.5 * first


@pytest.mark.parity
def test_guided_digits_adm_unet_matches_diffusers():
    diffusers = pytest.importorskip("diffusers")
    from aicanon.generative.diffusion.unet import UNet, config_from_diffusers, config_to_diffusers
    from aicanon.testbeds.guided_digits import DenoiserConfig

    cfg = DenoiserConfig().unet()  # AdaGN, BigGAN resampling, attention (32 channels/head), 11 classes
    assert (cfg.time_scale_shift, cfg.resample, cfg.num_classes) == (True, "resnet", 11)
    options = config_to_diffusers(cfg, sample_size=8)
    assert options["resnet_time_scale_shift"] == "scale_shift" and options["downsample_type"] == "resnet"
    torch.manual_seed(0)
    reference = diffusers.UNet2DModel(**options).eval()
    ours = UNet(config_from_diffusers(dict(reference.config))).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([0, 400, 999]), torch.tensor([0, 5, 10])
    torch.testing.assert_close(ours(x, t, y), reference(x, t, class_labels=y).sample, atol=1e-5, rtol=1e-5)


def test_bad_input():
    net = _classifier().float()
    with pytest.raises(ValueError, match="scale must be a finite number"):
        classifier_cond_fn(net, float("nan"))
    with pytest.raises(ValueError, match="scale must be a finite number"):
        classifier_cond_fn(net, float("inf"))
    with pytest.raises(TypeError, match="scale must be a number"):
        classifier_cond_fn(net, "3")
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="needs the target classes"):
        classifier_cond_fn(net, 1.0)(x, t)
    with pytest.raises(ValueError, match=r"labels must be a tensor of shape \[2\]"):
        classifier_cond_fn(net, 1.0, labels=torch.tensor([1, 2, 3]))(x, t)
    with pytest.raises(TypeError, match="labels must be a torch.int64"):
        classifier_cond_fn(net, 1.0, labels=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \[\*, 1, 8, 8\]"):
        net(torch.randn(2, 1, 6, 6), t)
    with pytest.raises(ValueError, match="t must be a scalar"):
        net(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="pool must be one of"):
        NoisyClassifierConfig(pool="max")
    with pytest.raises(ValueError, match="image_size must be a multiple of 2"):
        NoisyClassifierConfig(**{**TINY.__dict__, "image_size": 7})
    with pytest.raises(TypeError, match="config must be a NoisyClassifierConfig"):
        NoisyClassifier({"in_channels": 1})
    with pytest.raises(ValueError, match=r"labels must be a tensor of shape \[2\]"):
        classifier_loss(net, _diffusion(), x, torch.tensor([1]))
