"""Context encoder: the channel-wise fully connected layer against an explicit per-channel matmul,
the losses (Eq. 1-3) by hand, the three mask kinds and the overlap weights, shapes and bad input.
(No maintained reference library implements context encoders: the checks are by hand.)"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.vision.context_encoder import (
    ChannelwiseFullyConnected,
    ContextDiscriminator,
    ContextEncoder,
    central_block_mask,
    channelwise_linear,
    discriminator_loss,
    generator_adversarial_loss,
    joint_loss,
    overlap_weights,
    random_block_mask,
    random_region_mask,
    reconstruction_loss,
)

pytestmark = pytest.mark.paper("context-encoders")


# --- the channel-wise fully connected layer ------------------------------------------------------------


def explicit_channelwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Section 3.1 literally: for each image and channel, y_c = vec(x_c) W_c + b_c."""
    batch, channels, height, width = x.shape
    side = math.isqrt(weight.shape[2])
    out = torch.empty(batch, channels, side, side, dtype=x.dtype)
    for b in range(batch):
        for c in range(channels):
            out[b, c] = (x[b, c].reshape(-1) @ weight[c] + bias[c]).reshape(side, side)
    return out


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 4),
    side=st.integers(1, 4),
    out_side=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_channelwise_linear_equals_an_explicit_per_channel_matmul(batch, channels, side, out_side, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, side, side, generator=generator, dtype=torch.float64)
    weight = torch.randn(channels, side * side, out_side * out_side, generator=generator, dtype=torch.float64)
    bias = torch.randn(channels, out_side * out_side, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(channelwise_linear(x, weight, bias), explicit_channelwise(x, weight, bias))


def test_channelwise_layer_is_a_block_diagonal_dense_layer_then_a_1x1_convolution():
    torch.manual_seed(0)
    layer = ChannelwiseFullyConnected(3, 4).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    dense = torch.block_diag(*layer.weight)  # [C*n^2, C*n^2]: no weight between different channels
    flat = x.reshape(2, -1) @ dense + layer.bias.reshape(-1)
    expected = torch.nn.functional.conv2d(flat.reshape(2, 3, 4, 4), layer.mix.weight, layer.mix.bias)
    torch.testing.assert_close(layer(x), expected)


def test_channelwise_layer_has_m_n4_weights_and_keeps_channels_apart():
    layer = ChannelwiseFullyConnected(5, 3, mix_channels=False)
    assert layer.weight.numel() == 5 * 3**4  # m n^4 (a full layer would have m^2 n^4)
    assert sum(p.numel() for p in layer.parameters()) == 5 * 3**4 + 5 * 3**2
    mixed = ChannelwiseFullyConnected(5, 3)
    assert sum(p.numel() for p in mixed.parameters()) == 5 * 3**4 + 5 * 3**2 + 5 * 5 + 5
    # Every output position of a channel sees every input position of that channel only.
    x = torch.randn(1, 5, 3, 3, requires_grad=True)
    layer(x)[0, 2, 0, 0].backward()
    grad = x.grad[0].abs().flatten(1).sum(1)
    assert grad[2] > 0 and torch.count_nonzero(grad) == 1
    assert torch.count_nonzero(x.grad[0, 2]) == 9


# --- losses --------------------------------------------------------------------------------------------


def test_reconstruction_loss_by_hand():
    prediction = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    weight = torch.tensor([[[[1.0, 0.0], [10.0, 1.0]]]])
    # (1*1 + 0*0 + 10*4 + 1*9) / 4 values
    assert reconstruction_loss(prediction, target, weight).item() == pytest.approx(50 / 4)
    # A binary mask M_hat: Eq. (1) restricted to the hole, averaged over all predicted values.
    mask = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]])
    assert reconstruction_loss(prediction, target, mask).item() == pytest.approx((4 + 9) / 4)


def test_adversarial_losses_by_hand():
    zero = torch.zeros(3)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_adversarial_loss(zero).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = (
        -(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0))) / 2
        - (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-3.0))) / 2
    )
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert generator_adversarial_loss(fake).item() == pytest.approx(
        -(math.log(sigmoid(0.5)) + math.log(sigmoid(-3.0))) / 2, rel=1e-6
    )


def test_joint_loss_uses_the_papers_weights():
    rec, adv = torch.tensor(2.0), torch.tensor(5.0)
    assert joint_loss(rec, adv).item() == pytest.approx(0.999 * 2 + 0.001 * 5)
    assert joint_loss(rec, adv, 1.0, 0.0).item() == pytest.approx(2.0)


# --- masks and the overlap ----------------------------------------------------------------------------------


def test_central_block_mask_and_overlap_weights():
    hole, (top, bottom) = central_block_mask(32, 16, 2)
    assert (top, bottom) == (8, 24)
    assert hole.sum() == 12 * 12 and hole[10:22, 10:22].all()
    weights = overlap_weights(hole, 2, 10.0)
    assert (weights == 1).sum() == 144  # the hole
    assert (weights == 10).sum() == 16 * 16 - 12 * 12  # the overlap ring, inside the block
    assert weights[top:bottom, top:bottom].ne(0).all() and weights.sum() == 144 + 10 * 112
    torch.testing.assert_close(overlap_weights(hole, 0), hole.float())


@settings(max_examples=20, deadline=None)
@given(size=st.integers(4, 12), overlap=st.integers(1, 3), seed=st.integers(0, 1000))
def test_overlap_weights_mark_exactly_the_ring_within_chebyshev_distance(size, overlap, seed):
    generator = torch.Generator().manual_seed(seed)
    hole = torch.rand(size, size, generator=generator) < 0.2
    weights = overlap_weights(hole, overlap, 10.0)
    ys, xs = torch.nonzero(hole, as_tuple=True)
    for y in range(size):
        for x in range(size):
            if hole[y, x]:
                assert weights[y, x] == 1
            else:
                near = (
                    bool(((ys - y).abs().maximum((xs - x).abs()) <= overlap).any()) if ys.numel() else False
                )
                assert weights[y, x] == (10 if near else 0)


def test_random_block_mask_covers_a_quarter_and_repeats_with_the_generator():
    masks = random_block_mask(6, 32, 8, 0.25, generator=torch.Generator().manual_seed(1))
    again = random_block_mask(6, 32, 8, 0.25, generator=torch.Generator().manual_seed(1))
    assert masks.shape == (6, 32, 32) and masks.dtype == torch.bool
    assert torch.equal(masks, again)
    coverage = masks.flatten(1).float().mean(1)
    assert (coverage >= 0.25).all() and (coverage < 0.25 + 64 / 1024 + 1e-6).all()


def test_random_region_mask_pastes_shapes_until_the_coverage():
    shapes = torch.zeros(2, 8, 8, dtype=torch.bool)
    shapes[0, 2:6, 2:6] = True
    shapes[1, :, 3] = True
    masks = random_region_mask(shapes, 5, 32, 0.2, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (5, 32, 32) and (masks.flatten(1).float().mean(1) >= 0.2).all()
    assert torch.equal(
        masks, random_region_mask(shapes, 5, 32, 0.2, generator=torch.Generator().manual_seed(0))
    )
    # one full-square shape at full scale covers the whole image
    full = random_region_mask(torch.ones(1, 4, 4), 2, 16, 0.5, scale=(1.0, 1.0))
    assert full.all()


# --- networks -------------------------------------------------------------------------------------------


def test_context_encoder_and_discriminator_shapes_and_ranges():
    torch.manual_seed(0)
    model = ContextEncoder(3, 32, 16, (8, 16, 32))
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    assert model.encode(x).shape == (2, 32, 4, 4)
    assert ContextEncoder(1, 32, 32, (8, 16, 32))(torch.randn(2, 1, 32, 32)).shape == (2, 1, 32, 32)
    assert ContextEncoder(3, 64, 64, (4, 8, 8, 16))(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    discriminator = ContextDiscriminator(3, 16, (8, 16))
    logits = discriminator(out)
    assert logits.shape == (2,)
    generator_adversarial_loss(logits).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_context_encoder_learns_to_fill_a_constant_hole():
    # A sanity check of the whole path: images of one random colour each; the hole's colour is
    # predictable from its context, and a few steps of Eq. (1) shrink the error.
    torch.manual_seed(0)
    model = ContextEncoder(3, 16, 8, (8, 16), bottleneck_size=4)
    hole, (top, bottom) = central_block_mask(16, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    colours = torch.rand(64, 3, 1, 1) * 1.6 - 0.8
    images = colours.expand(64, 3, 16, 16)
    weight = overlap_weights(hole, 0)[top:bottom, top:bottom][None, None]
    losses = []
    for _ in range(60):
        loss = reconstruction_loss(
            model(images.masked_fill(hole, 0.0)), images[:, :, top:bottom, top:bottom], weight
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


# --- bad input ---------------------------------------------------------------------------------------------


def test_bad_input_is_rejected_with_clear_messages():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="weight must be a tensor of shape"):
        channelwise_linear(x, torch.randn(3, 15, 16))
    with pytest.raises(ValueError, match="square number of positions"):
        channelwise_linear(x, torch.randn(3, 16, 15))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        channelwise_linear(x.long(), torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        ChannelwiseFullyConnected(3, 4)(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="widths must have log2"):
        ContextEncoder(3, 32, 16, (8, 16))
    with pytest.raises(ValueError, match="power of two"):
        ContextEncoder(3, 24, 16, (8, 16))
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        ContextEncoder(3, 32, 16, (8, 16, 32))(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="widths must be a non-empty tuple"):
        ContextDiscriminator(3, 16, ())
    with pytest.raises(ValueError, match="target must be a tensor of shape"):
        reconstruction_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3), torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match="weight must broadcast"):
        reconstruction_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="lambda_adv must be"):
        joint_loss(torch.tensor(1.0), torch.tensor(1.0), 0.999, -0.1)
    with pytest.raises(ValueError, match="real_logits must be a 1-D tensor"):
        discriminator_loss(torch.zeros(2, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="overlap must be < block_size / 2"):
        central_block_mask(32, 16, 8)
    with pytest.raises(ValueError, match="block_size must be"):
        central_block_mask(32, 40)
    with pytest.raises(TypeError, match="hole must be a torch.bool tensor"):
        overlap_weights(torch.ones(4, 4), 1)
    with pytest.raises(ValueError, match="coverage must be"):
        random_block_mask(2, 32, 8, 0.0)
    with pytest.raises(ValueError, match="shapes must hold at least one shape"):
        random_region_mask(torch.zeros(0, 4, 4), 2, 32)
    with pytest.raises(ValueError, match="shapes must each have at least one nonzero pixel"):
        random_region_mask(torch.zeros(2, 4, 4), 2, 32)
