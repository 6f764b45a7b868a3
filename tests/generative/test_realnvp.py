"""Real NVP's pieces: the logit transform, batch normalisation in the flow (Eq. 16-17, training and
eval), dequantisation, the ResNet conditioner and the multi-scale model (invertibility, log-det
against autograd's Jacobian, a normalised density), and bad input."""

import math

import pytest
import torch

from aicanon.generative.flows.realnvp import (
    BatchNormFlow,
    LogitTransform,
    RealNVP,
    ResNetConditioner,
    dequantize,
    real_nvp_2d,
    real_nvp_image,
)

pytestmark = pytest.mark.paper("realnvp")


def _jacobian_logdet(flow, x):
    shape = x.shape[1:]
    jacobian = torch.func.jacrev(lambda v: flow(v.view(1, *shape))[0].flatten())(x[0].flatten())
    return torch.linalg.slogdet(jacobian)[1]


def _perturb(model, scale=0.1):
    """Move every parameter off its initialisation (zero-initialised outputs make couplings identities)
    and give the batch-norm flows non-trivial running statistics."""
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
        for module in model.modules():
            if isinstance(module, BatchNormFlow):
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model


def test_logit_transform_golden_value_and_inverse():
    layer = LogitTransform(0.05)
    y, logdet = layer(torch.full((2, 3), 0.5))
    assert torch.allclose(y, torch.zeros(2, 3), atol=1e-7)
    # p = 0.5: per dimension log(0.9) - 2 log(0.5)
    assert torch.allclose(logdet, torch.full((2,), 3 * (math.log(0.9) + 2 * math.log(2))))
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    y, logdet = layer(x)
    assert torch.allclose(y, torch.logit(0.05 + 0.9 * x))
    back, inverse_logdet = layer.inverse(y)
    assert torch.allclose(back, x, atol=1e-12) and torch.allclose(inverse_logdet, -logdet)
    assert torch.allclose(_jacobian_logdet(layer, x[:1]), logdet[0])


def test_batch_norm_flow_training_mode_uses_batch_statistics_and_their_logdet():
    layer = BatchNormFlow(3, momentum=0.9).double()
    x = torch.randn(16, 3, 4, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + 1.0
    y, logdet = layer(x)
    var = x.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), var / (var + 1e-4))
    assert torch.allclose(
        logdet, (-0.5 * torch.log(var + 1e-4)).sum().expand(16) * 16
    )  # Eq. 17, x16 positions
    assert torch.allclose(layer.running_mean, x.mean(dim=(0, 2, 3))) and torch.allclose(
        layer.running_var, var
    )
    # the log-det is the Jacobian's with the statistics held fixed (per example), as in eval mode
    layer.eval()
    assert torch.allclose(_jacobian_logdet(layer, x[:1]), logdet[0])
    layer.train()
    # Appendix E: later batches are blended with the running averages (momentum 0.9)
    x2 = torch.randn(16, 3, 4, 4, dtype=torch.float64) * 3
    _, logdet2 = layer(x2)
    blended = 0.9 * var + 0.1 * x2.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(logdet2, (-0.5 * torch.log(blended + 1e-4)).sum().expand(16) * 16)
    assert torch.allclose(layer.running_var, blended)


def test_batch_norm_flow_gradient_reaches_the_batch_statistics():
    layer = BatchNormFlow(2, momentum=0.0)
    x = torch.randn(8, 2, requires_grad=True)
    _, logdet = layer(x)
    (grad,) = torch.autograd.grad(logdet.sum(), x)
    assert grad.abs().sum() > 0  # d/dx of -1/2 log var: only through the batch's variance


def test_batch_norm_flow_eval_mode_is_an_exact_bijection():
    layer = _perturb(BatchNormFlow(3)).double().eval()
    x = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    y, logdet = layer(x)
    back, inverse_logdet = layer.inverse(y)
    assert torch.allclose(back, x, atol=1e-12) and torch.allclose(inverse_logdet, -logdet)
    assert torch.allclose(_jacobian_logdet(layer, x[:1]), logdet[0])
    assert torch.equal(layer(x[:1])[0], y[:1])  # per example: the batch does not matter in eval


def test_dequantize_stays_in_its_bin():
    levels = torch.randint(0, 17, (100, 1, 8, 8))
    x = dequantize(levels, 17, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() < 1
    assert torch.equal(torch.floor(x * 17).long(), levels)


@pytest.mark.parametrize("levels", [0, 1, 2])
def test_multiscale_real_nvp_inverts_and_its_logdet_matches_the_jacobian(levels):
    torch.manual_seed(0)
    flow = _perturb(
        real_nvp_image((2, 4, 4), levels=levels, couplings=2, final_couplings=2, hidden=4, blocks=1)
    )
    flow = flow.double().eval()
    x = torch.rand(3, 2, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    z, logdet = flow(x)
    assert z.shape == (3, 32)
    back, inverse_logdet = flow.inverse(z)
    assert torch.allclose(back, x, atol=1e-10)
    assert torch.allclose(inverse_logdet, -logdet, atol=1e-9)
    assert torch.allclose(_jacobian_logdet(flow, x[:1]), logdet[0], atol=1e-8)


def test_real_nvp_image_follows_section_4_1():
    flow = real_nvp_image((3, 32, 32), levels=1, couplings=3, final_couplings=4, hidden=64, blocks=8)
    logit, body = flow.flows
    assert isinstance(logit, LogitTransform) and logit.alpha == 0.05
    level = body.levels[0].flows
    kinds = [type(f).__name__ for f in level]
    assert kinds.count("AffineCoupling") == 6 and kinds.count("BatchNormFlow") == 6 and "Squeeze" in kinds
    assert sum(type(f).__name__ == "AffineCoupling" for f in body.final.flows) == 4
    net = level[0].network
    assert len(net.blocks) == 8 and net.stem.out_channels == 64
    with torch.no_grad():
        z, _ = flow(torch.rand(2, 3, 32, 32))
    assert body.latent_shapes() == [(6, 16, 16), (6, 16, 16)] and z.shape == (2, 3072)


def test_new_model_starts_as_logit_transform_then_batch_norm():
    # zero-initialised conditioner outputs: each coupling starts as the identity
    flow = real_nvp_image(
        (1, 4, 4), levels=1, couplings=1, final_couplings=1, hidden=4, blocks=0, batch_norm=False
    )
    x = torch.rand(2, 1, 4, 4)
    z, logdet = flow(x)
    y, logit_logdet = LogitTransform()(x)
    assert torch.allclose(logdet, logit_logdet)
    assert torch.allclose(torch.sort(z.flatten())[0], torch.sort(y.flatten())[0])


def test_two_dimensional_density_integrates_to_one():
    torch.manual_seed(0)
    model = _perturb(RealNVP(real_nvp_2d(2, couplings=4, hidden=16), 2), scale=0.1).double().eval()
    axis = torch.linspace(-16, 16, 1001, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=0.005)
    x = torch.randn(3, 2, dtype=torch.float64)
    z, logdet = model.flow(x)
    assert torch.allclose(_jacobian_logdet(model.flow, x[:1]), logdet[0])


def test_sampling_returns_data_shaped_values():
    model = RealNVP(real_nvp_image((1, 8, 8), levels=1, hidden=4, blocks=1), (1, 8, 8))
    model.train()
    samples = model.sample(5, temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 8, 8) and model.training
    assert samples.min() > -0.06 and samples.max() < 1.06  # inside the logit map's range


def test_resnet_conditioner_shapes_and_zero_start():
    net = ResNetConditioner(2, 3, hidden=8, blocks=2)
    out = net(torch.randn(4, 2, 6, 6))
    assert out.shape == (4, 6, 6, 6) and torch.equal(out, torch.zeros_like(out))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="alpha must be in"):
        LogitTransform(0.5)
    with pytest.raises(ValueError, match="x must lie in"):
        LogitTransform()(torch.full((1, 2), 1.5))
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNormFlow(2, momentum=1.0)
    with pytest.raises(ValueError, match=r"x must be \[B, 3, ...\]"):
        BatchNormFlow(3)(torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2 values per channel"):
        BatchNormFlow(3)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="x must hold integer levels"):
        dequantize(torch.tensor([[0.5]]), 17)
    with pytest.raises(ValueError, match="x must hold integer levels"):
        dequantize(torch.tensor([[17]]), 17)
    with pytest.raises(ValueError, match="bins must be >= 2"):
        dequantize(torch.tensor([[0]]), 1)
    with pytest.raises(ValueError, match=r"shape must be \(C, H, W\)"):
        real_nvp_image((8, 8))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*levels"):
        real_nvp_image((1, 6, 6), levels=2)
    model = RealNVP(real_nvp_2d(2, couplings=2), 2)
    with pytest.raises(ValueError, match=r"x must be \[B, \*\[2\]\]"):
        model.log_prob(torch.randn(4, 3))
    with pytest.raises(TypeError, match="flow must be an aicanon Flow"):
        RealNVP(torch.nn.Linear(2, 2), 2)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.sample(3, temperature=0.0)
