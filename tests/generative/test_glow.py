"""Glow's layers: invertibility, log-determinants against autograd, golden values, parity with normflows,
bad input."""

import math

import pytest
import torch

from aicanon.generative.flows.base import StandardNormal
from aicanon.generative.flows.glow import (
    ActNorm,
    Glow,
    GlowConditioner,
    GlowCoupling,
    GlowStep,
    InvertibleConv1x1,
    Permutation,
    SplitPrior,
)
from aicanon.generative.flows.multiscale import MultiScaleFlow

pytestmark = pytest.mark.paper("glow")


def perturb(module: torch.nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    """Move every parameter off its (often trivial: zero, identity) initial value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def autograd_logdet(flow, x: torch.Tensor) -> torch.Tensor:
    """log|det J| of ``flow`` at one example ``x`` ([1, C, H, W]) from torch.func.jacrev (float64)."""
    shape = x.shape

    def f(v):
        out = flow(v.view(shape))[0]
        return out.reshape(-1)

    jacobian = torch.func.jacrev(f)(x.reshape(-1))
    return torch.linalg.slogdet(jacobian)[1]


def layers(channels: int = 4):
    torch.manual_seed(0)
    return {
        "actnorm": ActNorm(channels),
        "conv": InvertibleConv1x1(channels, lu=False),
        "conv_lu": InvertibleConv1x1(channels, lu=True),
        "reverse": Permutation(channels, "reverse"),
        "shuffle": Permutation(channels, "shuffle"),
        "affine": GlowCoupling(channels, 8, "affine"),
        "additive": GlowCoupling(channels, 8, "additive"),
        "step": GlowStep(channels, 8, "conv", lu=True, coupling="affine"),
    }


@pytest.mark.parametrize("name", list(layers()))
def test_inverse_undoes_forward_and_logdet_matches_autograd(name):
    layer = layers()[name].double()
    x = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    layer.train()
    layer(x)  # ActNorm's data-dependent initialisation, where there is one
    perturb(layer)
    layer.eval()
    z, logdet = layer(x)
    back, inverse_logdet = layer.inverse(z)
    assert torch.allclose(back, x, atol=1e-10)
    assert torch.allclose(inverse_logdet, -logdet, atol=1e-10)
    assert logdet.shape == (3,)
    for i in range(2):
        assert torch.allclose(autograd_logdet(layer, x[i : i + 1]), logdet[i], atol=1e-8)


def test_actnorm_data_dependent_init_standardises_the_first_batch_only():
    norm = ActNorm(3)
    x = torch.randn(64, 3, 4, 4) * torch.tensor([2.0, 0.5, 3.0]).view(1, 3, 1, 1) + 5.0
    y, logdet = norm(x)
    assert bool(norm.initialized)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.allclose(logdet, torch.full((64,), 16 * norm.log_scale.sum().item()))
    bias = norm.bias.detach().clone()
    norm(x * 10)  # a second batch does not re-initialise
    assert torch.equal(norm.bias, bias)
    fresh = ActNorm(3).eval()
    assert torch.equal(fresh(x)[0], x) and not bool(fresh.initialized)  # no init in eval mode
    fresh.load_state_dict(norm.state_dict())
    assert bool(fresh.initialized)


def test_coupling_starts_near_the_identity_from_its_zero_last_layer():
    x = torch.randn(2, 4, 3, 3)
    affine = GlowCoupling(4, 8, "affine").eval()
    y, logdet = affine(x)
    scale = torch.sigmoid(torch.tensor(2.0))
    assert torch.equal(y[:, :2], x[:, :2])
    assert torch.allclose(y[:, 2:], x[:, 2:] * scale)
    assert torch.allclose(logdet, torch.full((2,), 2 * 9 * math.log(scale)))
    additive = GlowCoupling(4, 8, "additive").eval()
    y, logdet = additive(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))


def test_conv_init_is_a_rotation_and_lu_logdet_is_slogdet():
    torch.manual_seed(1)
    for lu in (False, True):
        conv = InvertibleConv1x1(6, lu=lu)
        weight = conv.matrix().detach()
        assert torch.allclose(weight @ weight.T, torch.eye(6), atol=1e-5)
        perturb(conv, 0.3)
        exact = torch.linalg.slogdet(conv.matrix().double())[1]
        assert torch.allclose(conv.log_abs_det().double(), exact, atol=1e-5)
        x = torch.randn(2, 6, 2, 2)
        assert torch.allclose(conv(x)[1], torch.full((2,), 4 * exact.item()), atol=1e-4)
    given = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    lu = InvertibleConv1x1(2, lu=True, weight=given)
    assert torch.allclose(lu.matrix(), given, atol=1e-6)
    assert torch.allclose(lu.log_abs_det(), torch.tensor(math.log(5.0)))


def test_permutations_are_what_they_say():
    x = torch.arange(4.0).view(1, 4, 1, 1)
    assert Permutation(4, "reverse")(x)[0].flatten().tolist() == [3.0, 2.0, 1.0, 0.0]
    shuffled = Permutation(4, "shuffle", generator=torch.Generator().manual_seed(0))(x)[0].flatten()
    assert sorted(shuffled.tolist()) == [0.0, 1.0, 2.0, 3.0]


def test_glow_model_logdet_latent_size_and_temperature_sampling():
    torch.manual_seed(0)
    model = Glow(1, levels=2, steps=2, hidden_channels=8).double()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64) - 0.5
    model(x)  # ActNorm init
    perturb(model, 0.05)
    model.eval()
    z, logdet = model(x)
    assert z.shape == (4, 64)
    assert [tuple(s) for s in model.latent_shapes()] == [(2, 4, 4), (8, 2, 2)]
    assert len(model.steps_of_flow()) == 4
    assert isinstance(model, MultiScaleFlow) and isinstance(model.split_priors[0], SplitPrior)
    back, _ = model.inverse(z)
    assert torch.allclose(back, x, atol=1e-10)
    assert torch.allclose(autograd_logdet(model, x[:1]), logdet[0], atol=1e-8)
    expected = StandardNormal(64).double().log_prob(z) + logdet
    assert torch.allclose(model.log_prob(x), expected)
    # Temperature T scales the base noise: the same generator at T and at 1 gives z_T = T z_1.
    cold = model.sample(3, 0.5, torch.Generator().manual_seed(7))
    noise = torch.randn(3, 64, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.allclose(cold, model.inverse(0.5 * noise)[0])
    assert torch.allclose(model(cold)[0], 0.5 * noise, atol=1e-9)


def test_split_prior_starts_as_the_standard_normal():
    prior = SplitPrior(3)
    mean, log_scale = prior(torch.randn(2, 3, 4, 4))
    assert mean.shape == log_scale.shape == (2, 3, 4, 4)
    assert torch.equal(mean, torch.zeros_like(mean)) and torch.equal(log_scale, torch.zeros_like(log_scale))


# --- parity with normflows (its flows run latent -> data in ``forward``; ``inverse`` is data -> latent)


def _normflows():
    return pytest.importorskip("normflows")


@pytest.mark.parity
def test_actnorm_matches_normflows():
    nf = _normflows()
    torch.manual_seed(0)
    ours = ActNorm(5)
    perturb(ours, 0.5)
    ours.initialized.fill_(True)
    reference = nf.flows.ActNorm((5, 1, 1))
    with torch.no_grad():  # theirs: (x - t) exp(-s) = ours (x + b) exp(log s) with t = -b, s = -log s
        reference.s.copy_(-ours.log_scale.view(1, 5, 1, 1))
        reference.t.copy_(-ours.bias.view(1, 5, 1, 1))
    reference.data_dep_init_done = torch.tensor(1.0)
    x = torch.randn(3, 5, 4, 4)
    z, logdet = ours(x)
    z_ref, logdet_ref = reference.inverse(x)
    assert torch.allclose(z, z_ref, atol=1e-5) and torch.allclose(logdet, logdet_ref.expand(3), atol=1e-5)
    x_back, inverse_logdet = ours.inverse(z)
    x_ref, inverse_ref = reference(z)
    assert torch.allclose(x_back, x_ref, atol=1e-5)
    assert torch.allclose(inverse_logdet, inverse_ref.expand(3), atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("lu", [False, True])
def test_invertible_conv_matches_normflows(lu):
    nf = _normflows()
    torch.manual_seed(0)
    reference = nf.flows.Invertible1x1Conv(6, use_lu=lu)
    perturb(reference, 0.2)
    if lu:
        ours = InvertibleConv1x1(6, lu=True)
        with torch.no_grad():
            ours.permutation.copy_(reference.P)
            ours.sign_s.copy_(reference.sign_S)
            ours.lower.copy_(torch.tril(reference.L, -1))
            ours.upper.copy_(torch.triu(reference.U, 1))
            ours.log_s.copy_(reference.log_S)
    else:
        ours = InvertibleConv1x1(6, lu=False, weight=reference.W.detach())
    x = torch.randn(3, 6, 4, 4)
    z, logdet = ours(x)
    z_ref, logdet_ref = reference.inverse(x)
    assert torch.allclose(z, z_ref, atol=1e-5) and torch.allclose(logdet, logdet_ref.expand(3), atol=1e-5)
    back, inverse_logdet = ours.inverse(z)
    back_ref, inverse_ref = reference(z)
    assert torch.allclose(back, back_ref, atol=1e-5)
    assert torch.allclose(inverse_logdet, inverse_ref.expand(3), atol=1e-5)
    # Gradients of the same loss agree on the shared parameters.
    ours(x)[0].square().sum().backward()
    reference.inverse(x)[0].square().sum().backward()
    if lu:
        assert torch.allclose(ours.log_s.grad, reference.log_S.grad, atol=1e-4)
        assert torch.allclose(ours.upper.grad, torch.triu(reference.U.grad, 1), atol=1e-4)
    else:
        assert torch.allclose(ours.weight.grad, reference.W.grad, atol=1e-4)


@pytest.mark.parity
@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_coupling_matches_normflows(coupling):
    nf = _normflows()
    torch.manual_seed(0)
    channels, hidden = 6, 16
    out = channels if coupling == "affine" else channels // 2
    net = nf.nets.ConvNet2d((channels // 2, hidden, hidden, out), (3, 1, 3), 0.0, init_zeros=False)
    reference = nf.flows.AffineCouplingBlock(net, scale=coupling == "affine", scale_map="sigmoid")
    conditioner = GlowConditioner(channels // 2, out, hidden, normalize=False)
    ours = GlowCoupling(channels, hidden, coupling, conditioner=conditioner)
    # normflows subtracts its shift in the data -> latent direction, Glow's code adds it: the shift
    # channels of the last layer change sign (all channels for additive, the even ones for affine).
    sign = torch.ones(out)
    sign[slice(0, None, 2) if coupling == "affine" else slice(None)] = -1.0
    with torch.no_grad():
        conditioner.first.load_state_dict(net.net[0].state_dict())
        conditioner.second.load_state_dict(net.net[2].state_dict())
        conditioner.last.conv.weight.copy_(net.net[4].weight * sign.view(-1, 1, 1, 1))
        conditioner.last.conv.bias.copy_(net.net[4].bias * sign)
    x = torch.randn(3, channels, 4, 4)
    z, logdet = ours(x)
    z_ref, logdet_ref = reference.inverse(x)
    assert torch.allclose(z, z_ref, atol=1e-5) and torch.allclose(logdet, logdet_ref, atol=1e-5)
    back, inverse_logdet = ours.inverse(z)
    back_ref, inverse_ref = reference(z)
    assert torch.allclose(back, back_ref, atol=1e-5) and torch.allclose(
        inverse_logdet, inverse_ref, atol=1e-5
    )


# --- bad input


def test_bad_input_is_rejected_with_clear_messages():
    with pytest.raises(ValueError, match=r"x must be a 4-D tensor \(\[B, C, H, W\]\)"):
        ActNorm(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"x must have 3 channels"):
        ActNorm(3)(torch.randn(4, 2, 2, 2))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        ActNorm(3)(torch.zeros(4, 3, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="weight must be an invertible C x C matrix, got a singular one"):
        InvertibleConv1x1(2, lu=True, weight=torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match=r"weight must be a tensor of shape \[3, 3\]"):
        InvertibleConv1x1(3, weight=torch.eye(2))
    with pytest.raises(ValueError, match=r"kind must be one of \('reverse', 'shuffle'\), got 'random'"):
        Permutation(4, "random")
    with pytest.raises(ValueError, match=r"permutation must be one of \('conv', 'shuffle', 'reverse'\)"):
        GlowStep(4, 8, permutation="swap")
    with pytest.raises(ValueError, match="coupling must be one of"):
        GlowCoupling(4, 8, "spline")
    with pytest.raises(ValueError, match="num_channels must be even to split in halves, got 3"):
        GlowCoupling(3, 8)
    with pytest.raises(TypeError, match="lu must be a bool"):
        InvertibleConv1x1(3, lu=1)
    model = Glow(1, levels=2, steps=1, hidden_channels=4)
    with pytest.raises(ValueError, match=r"x must be \[B, 1, H, W\] with H and W divisible by 4"):
        model(torch.randn(2, 1, 6, 6))
    with pytest.raises(RuntimeError, match="call the flow on one batch of data first"):
        model.sample(2)
    model(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="temperature must be finite and > 0, got 0"):
        model.sample(2, temperature=0)
