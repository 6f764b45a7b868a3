"""Classifier-free guidance: label dropout (Algorithm 1) and the guided model of Eq. 6 (Algorithm 2),
batched and unbatched, inside every sampler of the core; bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.generative.diffusion.classifier_free import ClassifierFreeGuidance, guided_output, label_dropout
from aicanon.generative.diffusion.gaussian import GaussianDiffusion
from aicanon.generative.diffusion.respace import respace, space_timesteps
from aicanon.generative.diffusion.schedules import cosine_betas, linear_betas
from aicanon.generative.diffusion.unet import UNet, UNetConfig

pytestmark = pytest.mark.paper("classifier-free-guidance")

NULL = 10


def _unet(out_channels: int = 1) -> UNet:
    torch.manual_seed(0)
    return UNet(
        UNetConfig(
            in_channels=1,
            out_channels=out_channels,
            block_out_channels=(8, 16),
            layers_per_block=1,
            attention_levels=(False, True),
            attention_head_dim=8,
            norm_groups=4,
            num_classes=11,
            time_scale_shift=True,
            resample="resnet",
            mid_attention_norm=False,
        )
    ).eval()


def test_label_dropout_replaces_labels_at_rate_p_uncond():
    labels = torch.arange(20_000) % 10
    other = torch.randn(20_000, 3)
    out = label_dropout(0.2, NULL)({"class_labels": labels, "other": other}, torch.Generator().manual_seed(0))
    dropped = out["class_labels"] == NULL
    assert abs(dropped.float().mean().item() - 0.2) < 0.01
    assert torch.equal(out["class_labels"][~dropped], labels[~dropped])
    assert out["other"] is other
    again = label_dropout(0.2, NULL)({"class_labels": labels}, torch.Generator().manual_seed(0))
    assert torch.equal(again["class_labels"], out["class_labels"])  # the generator decides
    keep = label_dropout(0.0, NULL)({"class_labels": labels}, torch.Generator())
    assert torch.equal(keep["class_labels"], labels)
    assert (
        label_dropout(1.0, NULL)({"class_labels": labels}, torch.Generator())["class_labels"] == NULL
    ).all()


def test_label_dropout_plugs_into_train_denoiser():
    from aicanon.testbeds.diffusion_training import DenoiserTraining, train_denoiser

    seen = []
    transform = label_dropout(0.5, NULL)

    def recording(kwargs, generator):
        out = transform(kwargs, generator)
        seen.append(out["class_labels"])
        return out

    data = {"x0": torch.rand(16, 1, 8, 8) * 2 - 1, "class_labels": torch.arange(16) % 10}
    train_denoiser(
        _unet().train(),
        GaussianDiffusion(cosine_betas(20)),
        data,
        DenoiserTraining(steps=2, batch_size=8, ema_decay=0.9),
        generator=torch.Generator().manual_seed(0),
        kwargs_transform=recording,
    )
    labels = torch.cat(seen)
    assert len(seen) == 2 and (labels == NULL).any() and (labels != NULL).any()


def test_guided_model_is_eq_6_batched_or_not():
    net = _unet()
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([5, 500, 999]), torch.tensor([1, 4, 9])
    with torch.no_grad():
        conditional = net(x, t, class_labels=y)
        unconditional = net(x, t, class_labels=torch.full_like(y, NULL))
        expected = (1 + 2.0) * conditional - 2.0 * unconditional
        batched = ClassifierFreeGuidance(net, 2.0, NULL)(x, t, class_labels=y)
        twice = ClassifierFreeGuidance(net, 2.0, NULL, batched=False)(x, t, class_labels=y)
        plain = ClassifierFreeGuidance(net, 0.0, NULL)(x, t, class_labels=y)
    torch.testing.assert_close(batched, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(twice, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, conditional)  # w = 0: the conditional model
    # diffusers' pipelines write it as uncond + g (cond - uncond) with g = 1 + w
    torch.testing.assert_close(
        guided_output(conditional, unconditional, 2.0), unconditional + 3.0 * (conditional - unconditional)
    )


def test_guided_model_calls_the_network_once_on_the_doubled_batch():
    calls = []

    def model(x, t, class_labels, scale):
        calls.append((x.shape[0], t.shape[0], class_labels.tolist(), scale.shape[0]))
        return x * (class_labels == NULL).float()[:, None, None, None]

    x = torch.ones(2, 1, 4, 4)
    out = ClassifierFreeGuidance(model, 1.5, NULL)(
        x, 7, class_labels=torch.tensor([3, 4]), scale=torch.ones(2)
    )
    assert calls == [(4, 4, [3, 4, NULL, NULL], 4)]  # scalar t broadcast, other inputs repeated
    torch.testing.assert_close(out, -1.5 * x)  # (1 + w) * 0 - w * x


def test_guided_channels_keep_the_conditional_variance():
    net = _unet(out_channels=2)
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3, 30]), torch.tensor([0, 1])
    with torch.no_grad():
        out = ClassifierFreeGuidance(net, 3.0, NULL, guided_channels=1)(x, t, class_labels=y)
        conditional = net(x, t, class_labels=y)
        unconditional = net(x, t, class_labels=torch.full_like(y, NULL))
    torch.testing.assert_close(out[:, 1:], conditional[:, 1:])
    torch.testing.assert_close(
        out[:, :1], 4 * conditional[:, :1] - 3 * unconditional[:, :1], atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("method", ["ancestral", "ddim"])
def test_every_sampler_accepts_the_guided_model(method):
    net = _unet()
    chain = respace(GaussianDiffusion(cosine_betas(100)), space_timesteps(100, 4))
    guided = ClassifierFreeGuidance(net, 1.0, NULL)
    y = torch.tensor([2, 7])
    out = chain.sample(guided, (2, 1, 8, 8), method=method, model_kwargs={"class_labels": y})
    assert out.shape == (2, 1, 8, 8) and torch.isfinite(out).all()
    # w = 0 gives exactly the conditional model's chain
    noise = torch.randn(2, 1, 8, 8)
    a = chain.sample(ClassifierFreeGuidance(net, 0.0, NULL), (2, 1, 8, 8), method="ddim", noise=noise,
                     model_kwargs={"class_labels": y})  # fmt: skip
    b = chain.sample(net, (2, 1, 8, 8), method="ddim", noise=noise, model_kwargs={"class_labels": y})
    torch.testing.assert_close(a, b)


def test_bad_input():
    net = _unet()
    for weight in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="weight must be a finite number"):
            ClassifierFreeGuidance(net, weight, NULL)
    with pytest.raises(TypeError, match="weight must be a number"):
        ClassifierFreeGuidance(net, None, NULL)
    with pytest.raises(ValueError, match="null_label must be >= 0"):
        ClassifierFreeGuidance(net, 1.0, -1)
    with pytest.raises(TypeError, match="model must be callable"):
        ClassifierFreeGuidance(3, 1.0, NULL)
    guided = ClassifierFreeGuidance(net, 1.0, NULL)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="needs the condition under 'class_labels'"):
        guided(x, t)
    with pytest.raises(ValueError, match=r"class_labels must be a tensor of shape \[2\]"):
        guided(x, t, class_labels=torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="class_labels must be a torch.int64"):
        guided(x, t, class_labels=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="guided_channels=3 exceeds"):
        ClassifierFreeGuidance(net, 1.0, NULL, guided_channels=3)(x, t, class_labels=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"p_uncond must be a probability in \[0, 1\]"):
        label_dropout(1.5, NULL)
    with pytest.raises(ValueError, match="needs the labels under 'class_labels'"):
        label_dropout(0.1, NULL)({"y": torch.tensor([1])}, torch.Generator())
    with pytest.raises(ValueError, match="same shape"):
        guided_output(torch.zeros(2, 1), torch.zeros(2, 2), 1.0)


@pytest.mark.parity
@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_guided_ddim_chain_equals_diffusers_cfg(weight):
    """The guided DDIM chain on a diffusers UNet2DModel equals diffusers' pipeline recipe: a DDIMScheduler
    loop with noise = uncond + guidance_scale · (cond − uncond). Their guidance_scale is our 1 + w
    (Eq. 6 written around the unconditional prediction, as Imagen and the diffusers pipelines do)."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    network = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
        num_class_embeds=NULL + 1,
    ).eval()
    labels = torch.tensor([3, 7])

    def model(x, t, class_labels):
        return network(x, t, class_labels=class_labels).sample

    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    scheduler.set_timesteps(10)
    x_theirs = x_ours = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    guided = ClassifierFreeGuidance(model, weight, NULL)
    diffusion = respace(GaussianDiffusion(linear_betas(1000)), sorted(scheduler.timesteps.tolist()))
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps.tolist()):
            both = model(
                torch.cat([x_theirs, x_theirs]),
                torch.full((4,), t),
                torch.cat([labels, torch.full((2,), NULL)]),
            )
            cond, uncond = both.chunk(2)
            noise = uncond + (1.0 + weight) * (cond - uncond)
            x_theirs = scheduler.step(noise, t, x_theirs, eta=0.0).prev_sample
            index = torch.full((2,), diffusion.num_timesteps - 1 - i)
            x_ours = diffusion.ddim_sample(
                guided, x_ours, index, clip_denoised=False, model_kwargs={"class_labels": labels}
            )["sample"]
    torch.testing.assert_close(x_ours, x_theirs, atol=1e-4, rtol=1e-4)
