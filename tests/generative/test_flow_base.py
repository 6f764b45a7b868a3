"""The flow protocol: composition, inverse, the standard normal base, bits/dim, squeeze, multi-scale."""

import math

import pytest
import torch
from torch import Tensor, nn

from aicanon.generative.flows.base import (
    Flow,
    FlowSequence,
    Inverse,
    NotInvertible,
    StandardNormal,
    bits_per_dim,
    log_likelihood,
)
from aicanon.generative.flows.multiscale import MultiScaleFlow, Squeeze


class Scale(Flow):
    """``z = a x`` elementwise: log|det| = sum log|a|."""

    def __init__(self, shape, value: float):
        super().__init__()
        self.a = nn.Parameter(torch.full(shape, value))

    def forward(self, x: Tensor):
        return x * self.a, self.a.abs().log().sum().expand(x.shape[0])

    def inverse(self, z: Tensor):
        return z / self.a, -self.a.abs().log().sum().expand(z.shape[0])


class ForwardOnly(Flow):
    def forward(self, x):
        return x, x.new_zeros(x.shape[0])


def test_sequence_adds_logdets_and_inverts_in_reverse():
    flow = FlowSequence([Scale((3,), 2.0), Scale((3,), 0.25)])
    x = torch.randn(4, 3)
    z, logdet = flow(x)
    assert torch.allclose(z, x * 0.5) and torch.allclose(logdet, torch.full((4,), 3 * math.log(0.5)))
    back, inverse_logdet = flow.inverse(z)
    assert torch.allclose(back, x) and torch.allclose(inverse_logdet, -logdet)
    swapped, swapped_logdet = Inverse(flow)(z)
    assert torch.allclose(swapped, x) and torch.allclose(swapped_logdet, -logdet)


def test_layers_without_an_inverse_say_so():
    with pytest.raises(NotInvertible, match="ForwardOnly has no closed-form inverse"):
        FlowSequence([ForwardOnly()]).inverse(torch.zeros(1, 2))
    with pytest.raises(TypeError, match="flows\\[0\\] must be an aicanon Flow, got Linear"):
        FlowSequence([nn.Linear(2, 2)])


def test_standard_normal_and_log_likelihood_by_hand():
    base = StandardNormal((2,))
    z = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert torch.allclose(base.log_prob(z), expected)
    # x ~ N(0, 4 I) is z = x / 2 under a standard normal: log p(x) = log N(x; 0, 4) per dimension.
    x = torch.randn(5, 2)
    expected = torch.distributions.Normal(0.0, 2.0).log_prob(x).sum(1)
    assert torch.allclose(log_likelihood(Scale((2,), 0.5), base, x), expected, atol=1e-6)
    assert base.sample(3, temperature=0.0).abs().sum() == 0 and base.sample(7).shape == (7, 2)
    with pytest.raises(ValueError, match="z must be \\[B, \\*\\[2\\]\\], got \\(3, 3\\)"):
        base.log_prob(torch.zeros(3, 3))


def test_bits_per_dim_of_the_uniform_density_is_eight_bits():
    # A uniform density on [0, 1)^D has log p = 0: 256 equally likely levels, 8 bits per dimension.
    assert torch.allclose(bits_per_dim(torch.zeros(2), num_dims=10), torch.full((2,), 8.0))
    assert torch.allclose(bits_per_dim(torch.full((1,), -10 * math.log(2)), 10, bins=1), torch.ones(1))
    with pytest.raises(ValueError, match="num_dims must be >= 1, got 0"):
        bits_per_dim(torch.zeros(1), 0)


def test_squeeze_moves_2x2_blocks_to_channels_and_back():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    z, logdet = Squeeze()(x)
    assert z.shape == (2, 4, 2, 2) and (logdet == 0).all()
    assert z[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left block, row by row
    assert torch.equal(Squeeze().inverse(z)[0], x)
    with pytest.raises(ValueError, match="even height and width"):
        Squeeze()(torch.zeros(1, 1, 3, 4))


class Affine(Flow):
    """Per-channel affine map for image tensors."""

    def __init__(self, channels):
        super().__init__()
        self.log_scale = nn.Parameter(torch.randn(channels) * 0.1)
        self.shift = nn.Parameter(torch.randn(channels) * 0.1)

    def forward(self, x):
        z = x * self.log_scale.exp().view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)
        return z, (self.log_scale.sum() * x.shape[2] * x.shape[3]).expand(x.shape[0])

    def inverse(self, z):
        x = (z - self.shift.view(1, -1, 1, 1)) * (-self.log_scale).exp().view(1, -1, 1, 1)
        return x, (-self.log_scale.sum() * z.shape[2] * z.shape[3]).expand(z.shape[0])


class MeanScale(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, h):
        mean, log_scale = self.conv(h).chunk(2, dim=1)
        return mean, torch.tanh(log_scale)


@pytest.mark.parametrize("priors", [False, True])
def test_multiscale_flow_inverts_and_its_logdet_matches_the_jacobian(priors):
    torch.manual_seed(0)
    levels = [FlowSequence([Squeeze(), Affine(8)]), FlowSequence([Squeeze(), Affine(16)])]
    flow = MultiScaleFlow(levels, Affine(8), [MeanScale(4), MeanScale(8)] if priors else None).double()
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    z, logdet = flow(x)
    assert z.shape == (3, 128) and flow.latent_shapes() == [(4, 4, 4), (8, 2, 2), (8, 2, 2)]
    back, inverse_logdet = flow.inverse(z)
    assert torch.allclose(back, x, atol=1e-10) and torch.allclose(inverse_logdet, -logdet, atol=1e-10)
    jacobian = torch.func.jacrev(lambda v: flow(v.view(1, 2, 8, 8))[0][0])(x[0].flatten())
    assert torch.allclose(logdet[0], torch.linalg.slogdet(jacobian)[1], atol=1e-8)


def test_multiscale_errors():
    flow = MultiScaleFlow([Squeeze()], Squeeze())
    with pytest.raises(RuntimeError, match="call the flow on one batch of data first"):
        flow.inverse(torch.zeros(1, 4))
    flow(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="z must be \\[B, 16\\]"):
        flow.inverse(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="split_priors must hold one module per level \\(1\\), got 2"):
        MultiScaleFlow([Squeeze()], Squeeze(), [nn.Identity(), nn.Identity()])
