"""Context Encoders: feature learning by inpainting (Pathak et al., CVPR 2016, arXiv 1604.07379).

An encoder reads an image whose region ``M`` has been dropped, a *channel-wise fully connected*
layer lets every decoder unit see the whole image, and a decoder paints the missing region.

Channel-wise fully connected layer (Section 3.1). For ``m`` feature maps of size ``n x n`` it is a
separate dense layer *per channel* over the ``n^2`` spatial positions,

    y_c = W_c vec(x_c) + b_c,    W_c in R^{n^2 x n^2},   c = 1..m

(``m n^4`` weights instead of a full layer's ``m^2 n^4``), followed by a stride-1 (1x1) convolution
that mixes information across the channels.

Losses (Section 3.2). With ``M_hat`` the binary mask (1 where pixels were dropped) and ``F`` the
context encoder,

    L_rec(x) = || M_hat (.) (x - F((1 - M_hat) (.) x)) ||_2^2                               (1)
    L_adv    = max_D  E_x[ log D(x) + log(1 - D(F((1 - M_hat) (.) x))) ]                     (2)
    L        = lambda_rec L_rec + lambda_adv L_adv,   lambda_rec = 0.999, lambda_adv = 0.001  (3)

For the central mask the discriminator sees only the predicted region (as the paper and the
authors' code: ``D`` takes the 64x64 block); :class:`ContextDiscriminator` takes any square input,
so for the other masks it can read the completed image instead.

Region masks (Section 3.3): a central square block; random blocks (several possibly overlapping
squares); random regions (arbitrary shapes). Overlap (Section 5.1): the network predicts a slightly
larger region than the hole, overlapping the context by a few pixels (4 in the authors' released
commands, ``overlapPred=4``; the paper's text: unverified here), and the reconstruction loss on that
overlap ring is weighted 10x (``overlapL2Weight = 10`` in the authors' train.lua).

Departures from the paper, and why:

* Architecture: the paper's feature-learning encoder is AlexNet (pool5, 6x6x256) and its inpainting
  encoder/decoder is DCGAN-like at 128x128. :class:`ContextEncoder` is the DCGAN-like variant with
  configurable widths (4x4 stride-2 convolutions, batch norm, LeakyReLU 0.2 in the encoder; 4x4
  stride-2 up-convolutions with ReLU and a final tanh in the decoder) so that small images (32x32)
  train on a CPU; the channel-wise fully connected layer + 1x1 convolution joins them as Section 3.1.
* Eq. (1) is a sum; :func:`reconstruction_loss` divides by the number of predicted values (a mean,
  as the authors' ``nn.MSECriterion``), which only rescales lambda_rec's effective step size.
* The generator's adversarial term is the non-saturating ``-log D(F(.))`` (the authors' code trains
  ``F`` with "real" labels), not ``log(1 - D(F(.)))`` of Eq. (2); its fixed point is the same.
* Dropped pixels are filled with a constant (``fill``, 0 by default: the data mean once images are
  scaled to [-1, 1]) rather than exactly zero or the code's ImageNet mean colour.
* Random-region masks: the paper deforms PASCAL VOC segmentation shapes; :func:`random_region_mask`
  takes any library of binary shapes (the experiment uses MNIST digit silhouettes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor

__all__ = [
    "ChannelwiseFullyConnected",
    "ContextDiscriminator",
    "ContextEncoder",
    "central_block_mask",
    "channelwise_linear",
    "discriminator_loss",
    "generator_adversarial_loss",
    "joint_loss",
    "overlap_weights",
    "random_block_mask",
    "random_region_mask",
    "reconstruction_loss",
]


# --- the channel-wise fully connected layer (Section 3.1) ------------------------------------------


def channelwise_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[:, c] = W_c vec(x[:, c]) + b_c`` for every channel ``c``: ``x`` is ``[B, C, H, W]``,
    ``weight`` ``[C, H*W, H'*W']`` (input positions to output positions), ``bias`` ``[C, H'*W']``.
    The output is ``[B, C, H', W']`` with ``H' = W' = sqrt(H'*W')``."""
    check_tensor("x", x, dim=4, floating=True)
    channels, positions = x.shape[1], x.shape[2] * x.shape[3]
    check_tensor("weight", weight, shape=(channels, positions, None), floating=True)
    out_positions = weight.shape[2]
    side = math.isqrt(out_positions)
    if side * side != out_positions:
        raise ValueError(f"weight's last dimension must be a square number of positions, got {out_positions}")
    if bias is not None:
        check_tensor("bias", bias, shape=(channels, out_positions), floating=True)
    # One batched matmul over the channels; einsum picks the layouts (faster than an explicit
    # bmm over [C, B, HW] with its two transposes: benchmarks/bench_context_encoders.py).
    y = torch.einsum("bci,cio->bco", x.flatten(2), weight)
    if bias is not None:
        y = y + bias
    return y.reshape(x.shape[0], channels, side, side)


class ChannelwiseFullyConnected(nn.Module):
    """Section 3.1's bottleneck: a dense layer per channel over the ``size x size`` positions
    (``channels * size**4`` weights), dropout, then a 1x1 convolution mixing the channels.

    Args:
        channels: feature maps ``m``.
        size: their side ``n`` (input and output are ``[B, m, n, n]``).
        dropout: dropout between the two parts (0 disables it).
        mix_channels: follow with the stride-1 1x1 convolution across channels (the paper's design).
    """

    def __init__(self, channels: int, size: int, *, dropout: float = 0.0, mix_channels: bool = True) -> None:
        super().__init__()
        check_int("channels", channels)
        check_int("size", size)
        check_float("dropout", dropout, 0.0, 1.0, max_inclusive=False)
        self.channels, self.size = channels, size
        positions = size * size
        self.weight = nn.Parameter(torch.empty(channels, positions, positions))
        self.bias = nn.Parameter(torch.zeros(channels, positions))
        # Each output position sums n^2 inputs: fan-in scaling as nn.Linear's default.
        bound = 1.0 / math.sqrt(positions)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.dropout = nn.Dropout(dropout)
        self.mix = nn.Conv2d(channels, channels, 1) if mix_channels else None

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, shape=(None, self.channels, self.size, self.size), floating=True)
        y = channelwise_linear(x, self.weight, self.bias)
        y = self.dropout(y)
        return self.mix(y) if self.mix is not None else y


# --- the networks -----------------------------------------------------------------------------------


def _log2_steps(name: str, larger: int, smaller: int) -> int:
    ratio = larger // smaller
    if larger % smaller or ratio & (ratio - 1):
        raise ValueError(
            f"{name} must be the bottleneck size times a power of two, got {larger} and {smaller}"
        )
    return ratio.bit_length() - 1


class ContextEncoder(nn.Module):
    """Encoder -> channel-wise fully connected -> decoder (Section 3.1, the DCGAN-like variant).

    Args:
        in_channels: image channels.
        image_size: input side (a power-of-two multiple of ``bottleneck_size``).
        output_size: side of the predicted region: the central block (with its overlap) for the
            central mask, ``image_size`` for masks anywhere in the image.
        widths: encoder channels per stride-2 stage (the decoder mirrors them); there are
            ``log2(image_size / bottleneck_size)`` stages, so ``len(widths)`` must equal that.
        bottleneck_size: side ``n`` of the feature maps joined by the channel-wise layer.
        dropout: dropout inside the channel-wise layer.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        output_size: int = 16,
        widths: tuple[int, ...] = (32, 64, 128),
        bottleneck_size: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("image_size", image_size)
        check_int("output_size", output_size)
        check_int("bottleneck_size", bottleneck_size)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty tuple of positive ints, got {widths!r}")
        stages = _log2_steps("image_size", image_size, bottleneck_size)
        if stages != len(widths):
            raise ValueError(
                f"widths must have log2(image_size / bottleneck_size) = {stages} entries, got {len(widths)}"
            )
        up = _log2_steps("output_size", output_size, bottleneck_size)
        if up < 1:
            raise ValueError(
                f"output_size must exceed bottleneck_size, got {output_size} <= {bottleneck_size}"
            )
        self.in_channels, self.image_size, self.output_size = in_channels, image_size, output_size
        layers: list[nn.Module] = []
        previous = in_channels
        for index, width in enumerate(widths):
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=index == 0))
            if index > 0:  # DCGAN: no batch norm on the first layer
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            previous = width
        self.encoder = nn.Sequential(*layers)
        self.feature_channels = widths[-1]
        self.feature_size = bottleneck_size
        self.bottleneck = ChannelwiseFullyConnected(widths[-1], bottleneck_size, dropout=dropout)
        # Decoder: `up` up-convolutions, widths mirrored (and padded with the narrowest when the
        # output needs more stages than the encoder had, or trimmed when fewer).
        decoder_widths = list(reversed(widths))[1:]
        decoder_widths = (decoder_widths + [widths[0]] * up)[: up - 1]
        decoder: list[nn.Module] = [nn.BatchNorm2d(widths[-1]), nn.ReLU()]
        previous = widths[-1]
        for width in decoder_widths:
            decoder += [
                nn.ConvTranspose2d(previous, width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            previous = width
        decoder += [nn.ConvTranspose2d(previous, in_channels, 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: Tensor) -> Tensor:
        """Encoder features ``[B, widths[-1], n, n]`` (what a downstream classifier reuses)."""
        check_tensor("x", x, shape=(None, self.in_channels, self.image_size, self.image_size), floating=True)
        return self.encoder(x)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: the image with its region dropped, ``[B, C, S, S]`` in [-1, 1]; returns the
        predicted region ``[B, C, output_size, output_size]`` in [-1, 1]."""
        return self.decoder(self.bottleneck(self.encode(x)))


class ContextDiscriminator(nn.Module):
    """The adversarial discriminator ``D``: stride-2 4x4 convolutions (LeakyReLU 0.2, batch norm
    after the first) down to 4x4, then one logit per image (the sigmoid lives in the losses)."""

    def __init__(
        self, in_channels: int = 3, image_size: int = 16, widths: tuple[int, ...] = (32, 64)
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("image_size", image_size)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty tuple of positive ints, got {widths!r}")
        stages = _log2_steps("image_size", image_size, 4)
        if stages != len(widths):
            raise ValueError(f"widths must have log2(image_size / 4) = {stages} entries, got {len(widths)}")
        self.in_channels, self.image_size = in_channels, image_size
        layers: list[nn.Module] = []
        previous = in_channels
        for index, width in enumerate(widths):
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=index == 0))
            if index > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            previous = width
        layers.append(nn.Conv2d(previous, 1, 4))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B]`` that ``x`` (``[B, C, S, S]``) is real."""
        check_tensor("x", x, shape=(None, self.in_channels, self.image_size, self.image_size), floating=True)
        return self.net(x).flatten()


# --- losses (Eq. 1-3) --------------------------------------------------------------------------------


def reconstruction_loss(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Eq. (1), weighted and averaged: ``sum(weight * (target - prediction)^2) / prediction.numel()``.

    ``weight`` (broadcastable to ``prediction``: ``[B or 1, 1 or C, H, W]``) is ``M_hat`` with the
    overlap ring raised (see :func:`overlap_weights`): 1 on the hole, 10 on the overlap, 0 on context."""
    check_tensor("prediction", prediction, dim=4, floating=True)
    check_tensor("target", target, shape=tuple(prediction.shape), floating=True)
    check_tensor("weight", weight, dim=4, floating=True)
    try:
        torch.broadcast_shapes(weight.shape, prediction.shape)
    except RuntimeError as error:
        raise ValueError(
            f"weight must broadcast to prediction's shape {tuple(prediction.shape)}, "
            f"got {tuple(weight.shape)}"
        ) from error
    return (weight * (target - prediction).square()).sum() / prediction.numel()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``-[log D(x) + log(1 - D(F(.)))]``, each averaged over the batch: minimising it is ``D``'s
    side of Eq. (2)."""
    check_tensor("real_logits", real_logits, dim=1, floating=True)
    check_tensor("fake_logits", fake_logits, dim=1, floating=True)
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_adversarial_loss(fake_logits: Tensor) -> Tensor:
    """The context encoder's adversarial term: ``-log D(F(.))`` averaged (non-saturating form of Eq. 2)."""
    check_tensor("fake_logits", fake_logits, dim=1, floating=True)
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def joint_loss(
    reconstruction: Tensor, adversarial: Tensor, lambda_rec: float = 0.999, lambda_adv: float = 0.001
) -> Tensor:
    """Eq. (3): ``lambda_rec * L_rec + lambda_adv * L_adv`` (the paper's 0.999 and 0.001 by default)."""
    check_float("lambda_rec", lambda_rec, 0.0, finite=True)
    check_float("lambda_adv", lambda_adv, 0.0, finite=True)
    check_tensor("reconstruction", reconstruction, dim=0, floating=True)
    check_tensor("adversarial", adversarial, dim=0, floating=True)
    return lambda_rec * reconstruction + lambda_adv * adversarial


# --- region masks (Section 3.3) and the overlap (Section 5.1) ----------------------------------------


def central_block_mask(image_size: int, block_size: int, overlap: int = 0) -> tuple[Tensor, tuple[int, int]]:
    """The central mask: ``(hole, (top, bottom))`` where ``hole`` is a bool ``[S, S]`` (True = dropped)
    and the predicted block is ``[top:bottom, top:bottom]`` (``block_size`` wide, centred). The hole
    is the block shrunk by ``overlap`` on every side: the ring between them stays visible to the
    encoder and is predicted too (Section 5.1)."""
    check_int("image_size", image_size)
    check_int("block_size", block_size, maximum=image_size)
    check_int("overlap", overlap, 0)
    if 2 * overlap >= block_size:
        raise ValueError(f"overlap must be < block_size / 2 = {block_size / 2}, got {overlap}")
    top = (image_size - block_size) // 2
    bottom = top + block_size
    hole = torch.zeros(image_size, image_size, dtype=torch.bool)
    hole[top + overlap : bottom - overlap, top + overlap : bottom - overlap] = True
    return hole, (top, bottom)


def random_block_mask(
    batch: int,
    image_size: int,
    block_size: int,
    coverage: float = 0.25,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random blocks: squares of side ``block_size`` at random places, possibly overlapping, added
    until each image has at least ``coverage`` of its pixels dropped (the paper: up to 1/4).
    Returns bool ``[batch, S, S]``."""
    check_int("batch", batch)
    check_int("image_size", image_size)
    check_int("block_size", block_size, maximum=image_size)
    check_float("coverage", coverage, 0.0, 1.0, min_inclusive=False)
    masks = torch.zeros(batch, image_size, image_size, dtype=torch.bool)
    target = coverage * image_size * image_size
    for b in range(batch):
        while masks[b].sum() < target:
            y, x = torch.randint(0, image_size - block_size + 1, (2,), generator=generator).tolist()
            masks[b, y : y + block_size, x : x + block_size] = True
    return masks


def random_region_mask(
    shapes: Tensor,
    batch: int,
    image_size: int,
    coverage: float = 0.25,
    *,
    scale: tuple[float, float] = (0.5, 1.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random regions: arbitrary shapes (``shapes``, bool or float ``[K, h, w]``, nonzero = inside),
    each randomly flipped, resized to a random fraction ``scale`` of the image and pasted at a random
    place, until at least ``coverage`` of the image is dropped. The paper draws PASCAL VOC
    segmentation shapes; any shape library works. Returns bool ``[batch, S, S]``."""
    check_tensor("shapes", shapes, dim=3)
    if shapes.shape[0] < 1:
        raise ValueError("shapes must hold at least one shape, got 0")
    check_int("batch", batch)
    check_int("image_size", image_size)
    check_float("coverage", coverage, 0.0, 1.0, min_inclusive=False)
    low, high = scale
    check_float("scale[0]", low, 0.0, 1.0, min_inclusive=False)
    check_float("scale[1]", high, low, 1.0)
    silhouettes = (shapes != 0).float()
    if silhouettes.flatten(1).sum(1).min() == 0:
        raise ValueError("shapes must each have at least one nonzero pixel")
    masks = torch.zeros(batch, image_size, image_size, dtype=torch.bool)
    target = coverage * image_size * image_size
    for b in range(batch):
        while masks[b].sum() < target:
            k = int(torch.randint(0, shapes.shape[0], (1,), generator=generator))
            fraction = low + (high - low) * float(torch.rand((), generator=generator))
            side = max(2, round(fraction * image_size))
            shape = silhouettes[k]
            if float(torch.rand((), generator=generator)) < 0.5:
                shape = shape.flip(-1)
            resized = F.interpolate(shape[None, None], size=(side, side), mode="nearest")[0, 0] > 0.5
            y, x = torch.randint(0, image_size - side + 1, (2,), generator=generator).tolist()
            masks[b, y : y + side, x : x + side] |= resized
    return masks


def overlap_weights(hole: Tensor, overlap: int, overlap_weight: float = 10.0) -> Tensor:
    """Per-pixel weights of the reconstruction loss (Section 5.1): 1 on the hole, ``overlap_weight``
    on the pixels within ``overlap`` pixels of it (Chebyshev distance) that are not in it, 0 elsewhere.
    ``hole`` is bool ``[..., H, W]``; the result is float of the same shape."""
    check_tensor("hole", hole, dtype=torch.bool)
    if hole.dim() < 2:
        raise ValueError(f"hole must have at least 2 dimensions [..., H, W], got {hole.dim()}")
    check_int("overlap", overlap, 0)
    check_float("overlap_weight", overlap_weight, 0.0, finite=True)
    inside = hole.float()
    if overlap == 0:
        return inside
    flat = inside.reshape(-1, 1, *hole.shape[-2:])
    grown = F.max_pool2d(flat, 2 * overlap + 1, stride=1, padding=overlap).reshape(hole.shape)
    return inside + overlap_weight * (grown - inside)
