"""Affine coupling (Real NVP Eq. 9): golden values, invertibility, log-det against autograd's
Jacobian, masks, parity with normflows' MaskedAffineFlow and nflows' AffineCouplingTransform, bad input."""

import math

import pytest
import torch
from torch import nn

from aicanon.generative.flows.coupling import (
    AffineCoupling,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)

pytestmark = pytest.mark.paper("realnvp")


class Pair(nn.Module):
    """A conditioner returning ``(raw_scale, shift)`` from two separate networks."""

    def __init__(self, s: nn.Module, t: nn.Module):
        super().__init__()
        self.s, self.t = s, t

    def forward(self, x):
        return self.s(x), self.t(x)


def _randomise(module: nn.Module, scale: float = 0.3) -> nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))
    return module


def _logdet_by_jacobian(flow, x):
    shape = x.shape[1:]
    jacobian = torch.func.jacrev(lambda v: flow(v.view(1, *shape))[0].flatten())(x[0].flatten())
    return torch.linalg.slogdet(jacobian)[1]


def test_masks():
    assert checkerboard_mask(2, 3).tolist() == [[[[1, 0, 1], [0, 1, 0]]]]
    assert checkerboard_mask(2, 2, parity=1).flatten().tolist() == [0, 1, 1, 0]
    assert channel_mask(4).flatten().tolist() == [1, 1, 0, 0]
    assert channel_mask(4, 1).flatten().tolist() == [0, 0, 1, 1]
    assert alternating_mask(3).tolist() == [[1, 0, 1]] and alternating_mask(3, 1).tolist() == [[0, 1, 0]]


def test_golden_value_by_hand():
    # x = (1, 2), mask keeps x1; network: raw_scale = 0.5 x1, shift = -x1 (in the transformed slot)
    class Net(nn.Module):
        def forward(self, kept):
            x1 = kept[:, :1]
            return torch.cat([torch.zeros_like(x1), 0.5 * x1], 1), torch.cat([torch.zeros_like(x1), -x1], 1)

    for scale, log_s in (
        ("exp", 0.5),
        ("tanh", math.tanh(0.5)),
        ("sigmoid", math.log(1 / (1 + math.exp(-2.5)))),
    ):
        layer = AffineCoupling(torch.tensor([[1.0, 0.0]]), Net(), scale=scale)
        y, logdet = layer(torch.tensor([[1.0, 2.0]]))
        assert y[0].tolist() == pytest.approx([1.0, 2.0 * math.exp(log_s) - 1.0], rel=1e-6)
        assert logdet.item() == pytest.approx(log_s, rel=1e-6)
    layer = AffineCoupling(torch.tensor([[1.0, 0.0]]), nn.Identity(), scale="additive")  # shift = b ⊙ x
    y, logdet = layer(torch.tensor([[3.0, 2.0]]))
    assert y.tolist() == [[3.0, 2.0]] and logdet.item() == 0.0


def test_tanh_scale_factor_is_learned_per_channel():
    net = _randomise(nn.Conv2d(2, 4, 3, padding=1))
    layer = AffineCoupling("channel", net, channels=2).double()
    assert layer.scale_factor.shape == (2,) and layer.scale_factor.tolist() == [1.0, 1.0]
    x = torch.randn(3, 4, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        layer.scale_factor.copy_(torch.tensor([0.5, 2.0]))
    raw = net.double()(x[:, :2])[:, :2]
    expected = (torch.tensor([0.5, 2.0]).view(1, 2, 1, 1) * torch.tanh(raw)).flatten(1).sum(1)
    assert torch.allclose(layer(x)[1], expected)
    layer(x)[0].sum().backward()
    assert layer.scale_factor.grad is not None and layer.scale_factor.grad.abs().sum() > 0


CASES = {
    "checkerboard": lambda: (
        AffineCoupling(checkerboard_mask(4, 4, 1), _randomise(nn.Conv2d(2, 4, 3, padding=1)), channels=2),
        (3, 2, 4, 4),
    ),
    "channel-mask": lambda: (
        AffineCoupling(channel_mask(4), _randomise(nn.Conv2d(4, 8, 3, padding=1)), scale="exp"),
        (3, 4, 4, 4),
    ),
    "split": lambda: (AffineCoupling("channel", _randomise(nn.Conv2d(2, 4, 3, padding=1))), (3, 4, 4, 4)),
    "split-reverse-odd": lambda: (
        AffineCoupling("channel", _randomise(nn.Conv2d(3, 4, 3, padding=1)), scale="sigmoid", reverse=True),
        (3, 5, 2, 2),
    ),
    "vector": lambda: (
        AffineCoupling(alternating_mask(5), _randomise(nn.Linear(5, 10)), channels=5),
        (4, 5),
    ),
    "additive": lambda: (
        AffineCoupling(alternating_mask(4, 1), _randomise(nn.Linear(4, 4)), scale="additive"),
        (4, 4),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_inverse_of_forward_is_identity_and_logdet_matches_the_jacobian(case):
    layer, shape = CASES[case]()
    layer = layer.double()
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    y, logdet = layer(x)
    back, inverse_logdet = layer.inverse(y)
    assert torch.allclose(back, x, atol=1e-12)
    assert torch.allclose(inverse_logdet, -logdet, atol=1e-12)
    assert torch.allclose(_logdet_by_jacobian(layer, x[:1]), logdet[0], atol=1e-10)
    inverse_jacobian = torch.func.jacrev(lambda v: layer.inverse(v.view(1, *shape[1:]))[0].flatten())(
        y[0].flatten()
    )
    assert torch.allclose(torch.linalg.slogdet(inverse_jacobian)[1], inverse_logdet[0], atol=1e-10)


def test_kept_part_is_unchanged():
    layer, shape = CASES["checkerboard"]()
    x = torch.randn(shape)
    y, _ = layer(x)
    kept = checkerboard_mask(4, 4, 1).bool().expand(shape)
    assert torch.equal(y[kept], x[kept]) and not torch.allclose(y[~kept], x[~kept])


@pytest.mark.parity
def test_parity_with_normflows_masked_affine_flow():
    from normflows.flows import MaskedAffineFlow

    torch.manual_seed(0)
    b = alternating_mask(6)[0]
    s_net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 6))
    t_net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 6))
    reference = MaskedAffineFlow(b, t=t_net, s=s_net)
    ours = AffineCoupling(b.view(1, 6), Pair(s_net, t_net), scale="exp")
    x = torch.randn(32, 6, requires_grad=True)
    # normflows' forward is the sampling direction z -> x; it is Eq. 9, our forward
    y_ref, logdet_ref = reference(x)
    y, logdet = ours(x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logdet, logdet_ref, atol=1e-5, rtol=1e-5)
    grad_ref = torch.autograd.grad((y_ref.square().sum() + logdet_ref.sum()), [x, *s_net.parameters()])
    grad = torch.autograd.grad((y.square().sum() + logdet.sum()), [x, *s_net.parameters()])
    for a, r in zip(grad, grad_ref):
        torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-5)
    back_ref, inv_ref = reference.inverse(y_ref)
    back, inv = ours.inverse(y)
    torch.testing.assert_close(back, back_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inv, inv_ref, atol=1e-5, rtol=1e-5)


class _SwapHalves(nn.Module):
    """nflows' conditioner outputs (shift, raw_scale); ours reads (raw_scale, shift)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        shift, raw = self.net(x).chunk(2, dim=1)
        return raw, shift


class _WithContext(nn.Module):
    """nflows calls its conditioner as ``net(x, context)``."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, context=None):
        return self.net(x)


@pytest.mark.parity
@pytest.mark.parametrize("image", [False, True])
def test_parity_with_nflows_affine_coupling(image):
    from nflows.transforms import AffineCouplingTransform

    torch.manual_seed(0)
    channels = 4
    if image:
        net = nn.Conv2d(2, 4, 3, padding=1)
        x = torch.randn(8, channels, 5, 5)
    else:
        net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
        x = torch.randn(8, channels)
    mask = torch.tensor([-1, -1, 1, 1])  # nflows: positive = transformed (the second half)
    reference = AffineCouplingTransform(mask, lambda cin, cout: _WithContext(net))
    ours = AffineCoupling(
        "channel", _SwapHalves(net), scale=lambda raw: torch.log(torch.sigmoid(raw + 2) + 1e-3)
    )
    y_ref, logdet_ref = reference(x)
    y, logdet = ours(x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logdet, logdet_ref, atol=1e-5, rtol=1e-5)
    back_ref, inv_ref = reference.inverse(y_ref)
    back, inv = ours.inverse(y)
    torch.testing.assert_close(back, back_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inv, inv_ref, atol=1e-5, rtol=1e-5)


def test_bad_input_is_rejected():
    net = nn.Linear(4, 8)
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        AffineCoupling(torch.tensor([[0.5, 1.0, 0.0, 1.0]]), net)
    with pytest.raises(ValueError, match="mask must have a leading batch dimension"):
        AffineCoupling(torch.tensor([1.0, 0.0, 1.0, 0.0]), net)
    with pytest.raises(ValueError, match="mask must be one of"):
        AffineCoupling("spatial", net)
    with pytest.raises(TypeError, match="mask must be a Tensor or 'channel'"):
        AffineCoupling([1, 0, 1, 0], net)
    with pytest.raises(TypeError, match="network must be an nn.Module"):
        AffineCoupling(alternating_mask(4), lambda x: x)
    with pytest.raises(ValueError, match="scale must be one of"):
        AffineCoupling(alternating_mask(4), net, scale="softplus")
    with pytest.raises(ValueError, match="reverse applies to mask='channel' only"):
        AffineCoupling(alternating_mask(4), net, reverse=True)
    with pytest.raises(ValueError, match="channels must be >= 1"):
        AffineCoupling(alternating_mask(4), net, channels=0)
    layer = AffineCoupling(alternating_mask(4), net)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        layer(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="x must have 2 dimensions like the mask"):
        layer(torch.ones(2, 4, 1))
    with pytest.raises(ValueError, match="x must broadcast with the mask"):
        layer(torch.ones(2, 5))
    with pytest.raises(ValueError, match="network must give scale and shift of shape"):
        AffineCoupling(alternating_mask(4), nn.Linear(4, 6))(torch.ones(2, 4))
    with pytest.raises(ValueError, match="network output must hold raw_scale and shift"):
        AffineCoupling(alternating_mask(4), nn.Linear(4, 7))(torch.ones(2, 4))
    with pytest.raises(ValueError, match="channels must equal the transformed part's channels"):
        AffineCoupling("channel", nn.Linear(2, 4), channels=3)(torch.ones(2, 4))
    with pytest.raises(ValueError, match="at least 2 channels"):
        AffineCoupling("channel", nn.Linear(1, 2))(torch.ones(2, 1))
