"""TCN: causality, receptive field (formula and tightness), weight norm, spatial dropout, golden values,
parity with the authors' block design written with plain torch layers, bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

from aicanon.language.tcn import (
    CausalConv1d,
    TCNSequenceModel,
    TemporalBlock,
    TemporalConvNet,
    levels_for_receptive_field,
    receptive_field,
)

pytestmark = pytest.mark.paper("tcn")


def _influence(model: nn.Module, channels: int, length: int, t: int) -> torch.Tensor:
    """|d out[..., t] / d x| per input step: which inputs the output at step t depends on."""
    x = torch.randn(2, channels, length, requires_grad=True)
    out = model(x)
    out[..., t].sum().backward()
    return x.grad.abs().sum(dim=(0, 1))


def test_golden_causal_convolution_eq_2():
    # F(s) = sum_i f(i) x_{s - d i}: k = 2, d = 2, f(0) = 1 (the current step), f(1) = 10 (two back).
    conv = CausalConv1d(1, 1, kernel_size=2, dilation=2, use_weight_norm=False)
    with torch.no_grad():
        # nn.Conv1d correlates: weight[..., j] multiplies x[t - (k - 1 - j) d], so tap 0 is the oldest.
        conv.conv.weight.copy_(torch.tensor([[[10.0, 1.0]]]))
        conv.conv.bias.fill_(0.5)
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    expected = torch.tensor([[[1.0, 2.0, 3.0 + 10 * 1.0, 4.0 + 10 * 2.0, 5.0 + 10 * 3.0]]]) + 0.5
    torch.testing.assert_close(conv(x), expected)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(2, 5),
    st.integers(1, 3),
    st.integers(0, 2**31 - 1),
)
def test_causality_future_inputs_do_not_change_past_outputs(levels, kernel_size, t_fraction, seed):
    torch.manual_seed(seed)
    net = TemporalConvNet(3, [4] * levels, kernel_size).eval()
    length = 40
    t = length * t_fraction // 4
    x = torch.randn(2, 3, length)
    changed = x.clone()
    changed[..., t + 1 :] = torch.randn_like(changed[..., t + 1 :]) * 5
    torch.testing.assert_close(net(x)[..., : t + 1], net(changed)[..., : t + 1])
    assert not torch.allclose(net(x)[..., t + 1 :], net(changed)[..., t + 1 :])


def test_sequence_model_is_causal_for_tokens_and_reals():
    torch.manual_seed(0)
    tokens = TCNSequenceModel(7, 5, [8, 8], 3, input_kind="tokens").eval()
    x = torch.randint(0, 7, (2, 30))
    y = x.clone()
    y[:, 20:] = (y[:, 20:] + 1) % 7
    torch.testing.assert_close(tokens(x)[:, :20], tokens(y)[:, :20])
    real = TCNSequenceModel(2, 1, [8, 8], 3).eval()
    x = torch.randn(2, 30, 2)
    y = x.clone()
    y[:, 20:] += 1.0
    torch.testing.assert_close(real(x)[:, :20], real(y)[:, :20])


@pytest.mark.parametrize("kernel_size,levels", [(2, 1), (2, 4), (3, 3), (5, 2), (7, 3)])
def test_receptive_field_formula_and_it_is_tight(kernel_size, levels):
    expected = 1 + 2 * (kernel_size - 1) * (2**levels - 1)
    assert receptive_field(kernel_size, levels) == expected
    torch.manual_seed(levels)
    net = TemporalConvNet(2, [6] * levels, kernel_size)
    assert net.receptive_field == expected
    with torch.no_grad():  # positive weights: no accidental cancellation of a path's gradient
        for p in net.parameters():
            p.abs_().add_(0.05)
    length = expected + 10
    t = length - 1
    influence = _influence(net, 2, length, t)
    seen = torch.nonzero(influence > 0).flatten()
    # Exactly the last `expected` steps up to t influence out[t]: the field is reached, not exceeded.
    assert seen.min().item() == t - expected + 1
    assert seen.max().item() == t
    assert len(seen) == expected


def test_receptive_field_with_explicit_dilations_and_the_undilated_ablation():
    assert receptive_field(3, dilations=[1, 2, 4]) == receptive_field(3, 3)
    assert receptive_field(7, dilations=[1, 1, 1, 1]) == 1 + 2 * 6 * 4
    net = TemporalConvNet(1, [4] * 4, 7, dilations=[1, 1, 1, 1])
    assert net.receptive_field == 49
    assert levels_for_receptive_field(2, 256) == 8  # 1 + 2 (2^7 - 1) = 255 < 256 <= 511
    assert receptive_field(2, levels_for_receptive_field(2, 256)) >= 256
    assert receptive_field(2, levels_for_receptive_field(2, 256) - 1) < 256


def test_weight_norm_reparameterisation_is_present():
    block = TemporalBlock(3, 5, 3, dilation=2)
    for conv in (block.conv1, block.conv2):
        assert parametrize.is_parametrized(conv.conv, "weight")
        g = conv.conv.parametrizations.weight.original0
        v = conv.conv.parametrizations.weight.original1
        assert g.shape == (conv.out_channels, 1, 1)
        expected = g * v / v.norm(dim=(1, 2), keepdim=True)
        torch.testing.assert_close(conv.weight, expected)
        # Scaling v leaves the kernel unchanged: only its direction counts.
        with torch.no_grad():
            before = conv.weight.clone()
            v.mul_(3.0)
        torch.testing.assert_close(conv.weight, before)
    plain = CausalConv1d(2, 2, 3, use_weight_norm=False)
    assert not parametrize.is_parametrized(plain.conv, "weight")


def test_residual_uses_a_1x1_convolution_only_when_widths_differ():
    assert TemporalBlock(4, 4, 3, 1).downsample is None
    block = TemporalBlock(3, 6, 3, 1)
    assert isinstance(block.downsample, nn.Conv1d) and block.downsample.kernel_size == (1,)
    # With the residual branch's weights zeroed, the block is ReLU(x) (identity residual).
    same = TemporalBlock(4, 4, 3, 1)
    with torch.no_grad():
        same.conv2.conv.parametrizations.weight.original0.zero_()
        same.conv2.conv.bias.fill_(-100.0)
    x = torch.randn(2, 4, 9)
    torch.testing.assert_close(same(x), torch.relu(x))


def test_spatial_dropout_active_in_training_only_and_drops_whole_channels():
    torch.manual_seed(0)
    block = TemporalBlock(8, 8, 3, 1, dropout=0.5)
    x = torch.randn(4, 8, 20)
    block.eval()
    torch.testing.assert_close(block(x), block(x))
    block.train()
    assert not torch.allclose(block(x), block(x))
    # Each (sample, channel) row is either zeroed whole or kept and scaled by 1 / (1 - p).
    h = torch.relu(torch.randn(4, 8, 20)) + 0.1
    dropped = block._spatial_dropout(h)
    zeroed = 0
    for b in range(4):
        for c in range(8):
            row = dropped[b, c]
            assert torch.all(row == 0) or torch.allclose(row, 2 * h[b, c])
            zeroed += bool(torch.all(row == 0))
    assert 0 < zeroed < 32
    block.eval()
    torch.testing.assert_close(block._spatial_dropout(h), h)


def test_dropout_zero_is_deterministic_in_training():
    net = TCNSequenceModel(2, 1, [4, 4], 3, dropout=0.0).train()
    x = torch.randn(2, 10, 2)
    torch.testing.assert_close(net(x), net(x))


def test_shapes_and_parameter_layout():
    model = TCNSequenceModel(10, 10, [16] * 4, 4, input_kind="tokens")
    x = torch.randint(0, 10, (3, 70))
    assert model(x).shape == (3, 70, 10)
    assert model.embedding.embedding_dim == 16
    real = TCNSequenceModel(2, 1, [24] * 8, 8)
    assert real(torch.randn(2, 600, 2)).shape == (2, 600, 1)
    # The parameter counts of the paper's figures (the authors' models take real inputs):
    # Figure 2(b) 8 x 24, k = 8: "70K"; Figure 3 8 x 25, k = 7: "66K"; Figure 4(b) 8 x 10, k = 8: "13K".
    for model, paper in (
        (real, 70_000),
        (TCNSequenceModel(1, 10, [25] * 8, 7), 66_000),
        (TCNSequenceModel(1, 10, [10] * 8, 8), 13_000),
    ):
        count = sum(p.numel() for p in model.parameters())
        assert abs(count - paper) < 1_000, (count, paper)


def _reference_tcn(ours: TemporalConvNet) -> nn.Module:
    """The authors' block design, written with plain torch layers: symmetric padding and a "chomp"
    of the trailing (k - 1) d outputs, element-wise weights copied from ours."""

    class Chomp(nn.Module):
        def __init__(self, size):
            super().__init__()
            self.size = size

        def forward(self, x):
            return x[:, :, : -self.size].contiguous() if self.size else x

    class Block(nn.Module):
        def __init__(self, block: TemporalBlock):
            super().__init__()
            convs = []
            for conv in (block.conv1, block.conv2):
                plain = nn.Conv1d(
                    conv.in_channels,
                    conv.out_channels,
                    conv.kernel_size,
                    padding=conv.left_padding,
                    dilation=conv.dilation,
                )
                with torch.no_grad():
                    plain.weight.copy_(conv.weight)
                    plain.bias.copy_(conv.conv.bias)
                convs.append(plain)
            self.net = nn.Sequential(
                convs[0],
                Chomp(block.conv1.left_padding),
                nn.ReLU(),
                convs[1],
                Chomp(block.conv2.left_padding),
                nn.ReLU(),
            )
            self.downsample = block.downsample

        def forward(self, x):
            residual = x if self.downsample is None else self.downsample(x)
            return torch.relu(self.net(x) + residual)

    return nn.Sequential(*[Block(b) for b in ours.blocks])


@pytest.mark.parity
def test_parity_with_the_pad_and_chomp_design():
    torch.manual_seed(0)
    ours = TemporalConvNet(3, [5, 5, 7], kernel_size=3).eval()
    reference = _reference_tcn(ours).eval()
    x = torch.randn(4, 3, 50, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = ours(x), reference(x_ref)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: TemporalConvNet(0, [4]), ValueError, "input_size"),
        (lambda: TemporalConvNet(2, []), ValueError, "channels must be a non-empty"),
        (lambda: TemporalConvNet(2, [4, 0]), ValueError, r"channels\[1\]"),
        (lambda: TemporalConvNet(2, [4], kernel_size=0), ValueError, "kernel_size"),
        (lambda: TemporalConvNet(2, [4], dropout=1.0), ValueError, "dropout"),
        (lambda: TemporalConvNet(2, [4, 4], dilations=[1]), ValueError, "one entry per block"),
        (lambda: TemporalConvNet(2, [4], dilations=[0]), ValueError, r"dilations\[0\]"),
        (lambda: TemporalConvNet(2, [4], kernel_size=2.0), TypeError, "kernel_size"),
        (lambda: TCNSequenceModel(2, 1, [4], input_kind="image"), ValueError, "input_kind"),
        (lambda: CausalConv1d(2, 2, 3, dilation=0), ValueError, "dilation"),
        (lambda: receptive_field(3), ValueError, "exactly one of levels and dilations"),
        (lambda: receptive_field(0, 2), ValueError, "kernel_size"),
        (lambda: levels_for_receptive_field(1, 10), ValueError, "kernel_size"),
    ],
)
def test_bad_construction_is_rejected(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_inputs_are_rejected():
    net = TemporalConvNet(3, [4], 2)
    with pytest.raises(ValueError, match="x must be a 3-D tensor"):
        net(torch.randn(3, 10))
    with pytest.raises(ValueError, match="x must have 3 channels"):
        net(torch.randn(2, 4, 10))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.ones(2, 3, 10, dtype=torch.long))
    tokens = TCNSequenceModel(5, 5, [4], 2, input_kind="tokens")
    with pytest.raises(ValueError, match=r"token ids in \[0, 5\)"):
        tokens(torch.tensor([[0, 5]]))
    with pytest.raises(TypeError, match="inputs must be a"):
        tokens(torch.randn(1, 4))
    real = TCNSequenceModel(2, 1, [4], 2)
    with pytest.raises(ValueError, match=r"inputs must be \[B, L, 2\]"):
        real(torch.randn(1, 4, 3))
    with pytest.raises(ValueError, match="inputs must be a 3-D tensor"):
        real(torch.randn(1, 4))
