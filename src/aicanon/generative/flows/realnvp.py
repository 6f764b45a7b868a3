"""Real NVP (Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017).

The model is a bijection ``f`` from data to a standard normal latent, trained by exact maximum
likelihood (Eq. 3): ``log p(x) = log p_Z(f(x)) + log |det df/dx|``. Its pieces:

* **Affine coupling** (Eq. 7-9), :class:`~aicanon.generative.flows.coupling.AffineCoupling`, with
  checkerboard and channel-wise masks (Section 3.4) and ``s = w tanh(.)`` (the ``"tanh"`` scale).
* **Multi-scale architecture** (Section 3.6, Eq. 13-14): at each scale, three couplings with
  alternating checkerboard masks, a squeeze (``[C, H, W] -> [4C, H/2, W/2]``), three couplings with
  alternating channel-wise masks, then half of the channels are factored out
  (:class:`~aicanon.generative.flows.multiscale.MultiScaleFlow`); the last scale has four
  checkerboard couplings. :func:`real_nvp_image` builds it.
* **Batch normalisation inside the flow** (Section 3.7 and Appendix E), :class:`BatchNormFlow`:

      x -> (x - mu~) / sqrt(sigma~^2 + eps)                                                (16)
      log |det| = -1/2 sum_i log(sigma~_i^2 + eps)                                          (17)

  (summed over every element: per channel, times the number of spatial positions), followed by a
  learned per-channel ``exp(log_gamma) x + beta`` (its log-det ``sum log_gamma``). The statistics
  are the paper's running-average variant (Appendix E): in training
  ``mu~ = rho mu~_old + (1 - rho) mu^_batch`` (likewise the variance), with gradients only
  through the current batch's part; the running averages are updated to these values; in eval mode
  ``mu~`` and ``sigma~^2`` are the running averages, so the layer is an exact per-example
  bijection.
* **ResNet scale/translation networks** (Section 4.1), :class:`ResNetConditioner`: a 3x3
  convolution, residual blocks (batch norm, ReLU, 3x3 convolution, twice), batch norm, ReLU and a
  3x3 output convolution giving ``raw_scale`` and ``t``; weight normalisation on the convolutions.
* **Dequantisation and the logit transform** (Section 4.1): discrete pixels ``k in {0..bins-1}``
  become ``x = (k + u) / bins`` with ``u ~ U[0, 1)`` (:func:`dequantize`), and the flow first maps
  ``x`` to ``y = logit(alpha + (1 - 2 alpha) x)`` (:class:`LogitTransform`, ``alpha = 0.05``) with

      log |det dy/dx| = sum_j [log(1 - 2 alpha) - log p_j - log(1 - p_j)],  p = alpha + (1 - 2 alpha) x

  so the model's log-density is of ``x`` in ``[0, 1)^D``; bits/dim of the discrete data follow from
  :func:`~aicanon.generative.flows.base.bits_per_dim` with ``bins``.

:class:`RealNVP` packages a flow with its standard-normal base: ``log_prob``, ``sample``.

Departures from the paper (each a choice where the paper is silent or for speed):

* The logit map is ``logit(alpha + (1 - 2 alpha) x)`` (symmetric on ``[alpha, 1 - alpha]``, as in
  common re-implementations); the paper's text writes the affine part as ``alpha + (1 - alpha) x``.
* The output convolution of each conditioner starts at zero, so every coupling starts as the
  identity (a stabilising initialisation later made standard by Glow); it is not weight-normalised.
* The momentum ``rho`` of the batch-norm flow is ours (0.9 by default); the paper does not state it.
* The checkerboard conditioner sees ``b ⊙ x`` only (not the mask as an extra input channel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.generative.flows.base import Flow, FlowSequence, StandardNormal
from aicanon.generative.flows.coupling import AffineCoupling, alternating_mask, checkerboard_mask
from aicanon.generative.flows.multiscale import MultiScaleFlow, Squeeze

__all__ = [
    "BatchNormFlow",
    "LogitTransform",
    "RealNVP",
    "ResNetConditioner",
    "dequantize",
    "mlp_conditioner",
    "real_nvp_2d",
    "real_nvp_image",
]


def dequantize(x: Tensor, bins: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantisation: integer levels ``x in {0, ..., bins - 1}`` (any dtype) to
    ``(x + u) / bins in [0, 1)``, ``u ~ U[0, 1)`` (Section 4.1; Theis et al. 2016)."""
    check_tensor("x", x)
    check_int("bins", bins, 2)
    levels = x.to(torch.float32) if not x.is_floating_point() else x
    if bool((levels < 0).any()) or bool((levels > bins - 1).any()) or bool((levels != levels.round()).any()):
        raise ValueError(f"x must hold integer levels in [0, {bins - 1}] (bins={bins}), got other values")
    noise = torch.rand(levels.shape, generator=generator, dtype=levels.dtype).to(levels.device)
    return (levels + noise) / bins


class LogitTransform(Flow):
    """``y = logit(alpha + (1 - 2 alpha) x)`` for ``x in [0, 1]`` (Section 4.1), ``alpha = 0.05``."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        check_float("alpha", alpha, 0.0, 0.5, max_inclusive=False)
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("x", x, floating=True)
        if x.dim() < 2:
            raise ValueError(f"x must be [B, ...], got shape {tuple(x.shape)}")
        if bool((x < 0).any()) or bool((x > 1).any()):
            raise ValueError("x must lie in [0, 1] (dequantised data scaled by 1/bins), got values outside")
        p = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        logdet = (math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return y, logdet

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("z", z, floating=True)
        if z.dim() < 2:
            raise ValueError(f"z must be [B, ...], got shape {tuple(z.shape)}")
        p = torch.sigmoid(z)
        x = (p - self.alpha) / (1 - 2 * self.alpha)
        # d x / d z = p (1 - p) / (1 - 2 alpha)
        logdet = (F.logsigmoid(z) + F.logsigmoid(-z) - math.log(1 - 2 * self.alpha)).flatten(1).sum(1)
        return x, logdet


class BatchNormFlow(Flow):
    """Batch normalisation as a flow (Eq. 16-17, Appendix E's running-average variant), over
    dimension 1 (features of ``[B, C]`` or channels of ``[B, C, H, W]``).

    Args:
        num_features: size of dimension 1.
        momentum: ``rho`` of Appendix E: the training statistics are ``rho * running + (1 - rho) *
            batch``; 0 gives plain batch normalisation (batch statistics only).
        eps: added to the variance.
        affine: learn ``log_gamma`` and ``beta`` applied after normalising.
    """

    def __init__(
        self, num_features: int, momentum: float = 0.9, eps: float = 1e-4, affine: bool = True
    ) -> None:
        super().__init__()
        check_int("num_features", num_features, 1)
        check_float("momentum", momentum, 0.0, 1.0, max_inclusive=False)
        check_float("eps", eps, 0.0, min_inclusive=False)
        self.num_features = num_features
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.affine = affine
        if affine:
            self.log_gamma = nn.Parameter(torch.zeros(num_features))
            self.beta = nn.Parameter(torch.zeros(num_features))

    def _view(self, v: Tensor, x: Tensor) -> Tensor:
        return v.view(1, -1, *([1] * (x.dim() - 2)))

    def _check(self, name: str, x: Tensor) -> None:
        check_tensor(name, x, floating=True)
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"{name} must be [B, {self.num_features}, ...], got shape {tuple(x.shape)}")

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            return self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        if x.shape[0] * x[0, 0].numel() < 2:
            raise ValueError(
                f"x must hold at least 2 values per channel in training, got shape {tuple(x.shape)}"
            )
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        if bool(self.initialised):  # Appendix E: blend with the (constant) running averages
            mean = self.momentum * self.running_mean.to(x.dtype) + (1 - self.momentum) * mean
            var = self.momentum * self.running_var.to(x.dtype) + (1 - self.momentum) * var
        with torch.no_grad():  # the first batch sets the averages (no blend with the 0/1 start)
            self.running_mean.copy_(mean.detach())
            self.running_var.copy_(var.detach())
            self.initialised.fill_(True)
        return mean, var

    def _log_scale(self, x: Tensor, var: Tensor) -> Tensor:
        """Per-channel log of the multiplier: ``log_gamma - 1/2 log(var + eps)``."""
        log_scale = -0.5 * torch.log(var + self.eps)
        if self.affine:
            log_scale = log_scale + self.log_gamma.to(x.dtype)
        return log_scale

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check("x", x)
        mean, var = self._statistics(x)
        log_scale = self._log_scale(x, var)
        y = (x - self._view(mean, x)) * self._view(log_scale.exp(), x)
        if self.affine:
            y = y + self._view(self.beta.to(x.dtype), x)
        positions = x[0, 0].numel()
        return y, (log_scale.sum() * positions).expand(x.shape[0])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Uses the running averages (what eval-mode ``forward`` uses), in either mode."""
        self._check("z", z)
        mean, var = self.running_mean.to(z.dtype), self.running_var.to(z.dtype)
        log_scale = self._log_scale(z, var)
        shifted = z - self._view(self.beta.to(z.dtype), z) if self.affine else z
        x = shifted * self._view((-log_scale).exp(), z) + self._view(mean, z)
        positions = z[0, 0].numel()
        return x, (-log_scale.sum() * positions).expand(z.shape[0])


def _conv(in_channels: int, out_channels: int, weight_norm: bool) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    return nn.utils.parametrizations.weight_norm(conv) if weight_norm else conv


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, weight_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            _conv(channels, channels, weight_norm),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            _conv(channels, channels, weight_norm),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetConditioner(nn.Module):
    """The ``s``/``t`` network of Section 4.1: ``[B, in, H, W] -> [B, 2 out, H, W]`` (raw scale, then
    shift). ``blocks`` residual blocks of ``hidden`` feature maps; the output convolution starts at
    zero (the coupling starts as the identity)."""

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int = 64, blocks: int = 8, weight_norm: bool = True
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("hidden", hidden, 1)
        check_int("blocks", blocks, 0)
        self.out_channels = out_channels
        self.stem = _conv(in_channels, hidden, weight_norm)
        self.blocks = nn.Sequential(*[_ResidualBlock(hidden, weight_norm) for _ in range(blocks)])
        self.head = nn.Sequential(nn.BatchNorm2d(hidden), nn.ReLU())
        self.out = nn.Conv2d(hidden, 2 * out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dim=4, floating=True)
        return self.out(self.head(self.blocks(self.stem(x))))


def mlp_conditioner(
    features: int, hidden: int = 64, layers: int = 2, outputs: int | None = None
) -> nn.Sequential:
    """An MLP ``[B, features] -> [B, outputs]`` (default ``2 * features``: raw scale and shift) with
    ReLUs and a zero-initialised last layer, for couplings on vectors (the 2-D toy densities)."""
    check_int("features", features, 1)
    check_int("hidden", hidden, 1)
    check_int("layers", layers, 1)
    check_int("outputs", outputs, 1, allow_none=True)
    modules: list[nn.Module] = []
    width = features
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    last = nn.Linear(width, outputs if outputs is not None else 2 * features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*modules, last)


def real_nvp_2d(
    features: int = 2,
    couplings: int = 8,
    hidden: int = 64,
    layers: int = 2,
    batch_norm: bool = True,
    scale: str | Callable[[Tensor], Tensor] = "tanh",
) -> FlowSequence:
    """Real NVP on vectors: ``couplings`` affine couplings with alternating masks (Eq. 9), each
    followed by a :class:`BatchNormFlow` when ``batch_norm``."""
    check_int("features", features, 2)
    check_int("couplings", couplings, 1)
    flows: list[Flow] = []
    for i in range(couplings):
        outputs = features if scale == "additive" else 2 * features
        network = mlp_conditioner(features, hidden, layers, outputs)
        flows.append(
            AffineCoupling(alternating_mask(features, i % 2), network, scale=scale, channels=features)
        )
        if batch_norm:
            flows.append(BatchNormFlow(features))
    return FlowSequence(flows)


def _stage(
    shape: tuple[int, int, int],
    count: int,
    kind: str,
    hidden: int,
    blocks: int,
    batch_norm: bool,
    weight_norm: bool,
    scale: str | Callable[[Tensor], Tensor],
) -> list[Flow]:
    """``count`` couplings with alternating ``kind`` masks (``checkerboard`` or ``channel``) on
    ``[C, H, W]`` tensors, each followed by batch normalisation."""
    channels, height, width = shape
    multiplier = 1 if scale == "additive" else 2
    flows: list[Flow] = []
    for i in range(count):
        if kind == "checkerboard":
            net = ResNetConditioner(channels, channels, hidden, blocks, weight_norm)
            if multiplier == 1:
                net.out = _zero_conv(hidden, channels)
            flows.append(
                AffineCoupling(checkerboard_mask(height, width, i % 2), net, scale=scale, channels=channels)
            )
        else:
            kept = channels // 2
            changed = channels - kept
            net = ResNetConditioner(kept, changed, hidden, blocks, weight_norm)
            if multiplier == 1:
                net.out = _zero_conv(hidden, changed)
            flows.append(AffineCoupling("channel", net, scale=scale, channels=changed, reverse=bool(i % 2)))
        if batch_norm:
            flows.append(BatchNormFlow(channels))
    return flows


def _zero_conv(hidden: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(hidden, out_channels, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def real_nvp_image(
    shape: Sequence[int],
    levels: int = 1,
    couplings: int = 3,
    final_couplings: int = 4,
    hidden: int = 64,
    blocks: int = 8,
    batch_norm: bool = True,
    weight_norm: bool = True,
    logit_alpha: float | None = 0.05,
    scale: str | Callable[[Tensor], Tensor] = "tanh",
) -> FlowSequence:
    """The multi-scale Real NVP of Section 3.6/4.1 on ``[C, H, W]`` images in ``[0, 1]``.

    ``levels`` scales, each: ``couplings`` checkerboard couplings, squeeze, ``couplings``
    channel-wise couplings, factor out half the channels; then ``final_couplings`` checkerboard
    couplings. CIFAR-10 in the paper: ``levels=1`` ("downscale only once"), 8 residual blocks of 64
    feature maps. ``logit_alpha=None`` drops the logit transform (data already unbounded)."""
    if len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {tuple(shape)}")
    channels, height, width = (int(s) for s in shape)
    check_int("levels", levels, 0)
    check_int("couplings", couplings, 1)
    check_int("final_couplings", final_couplings, 1)
    if height % (2**levels) or width % (2**levels):
        raise ValueError(
            f"shape's height and width must be divisible by 2**levels = {2**levels}, got {tuple(shape)}"
        )
    stages: list[Flow] = []
    args = (hidden, blocks, batch_norm, weight_norm, scale)
    for _ in range(levels):
        level = _stage((channels, height, width), couplings, "checkerboard", *args)
        level.append(Squeeze())
        channels, height, width = channels * 4, height // 2, width // 2
        level += _stage((channels, height, width), couplings, "channel", *args)
        stages.append(FlowSequence(level))
        channels = channels - channels // 2  # MultiScaleFlow keeps the second half
    final = FlowSequence(_stage((channels, height, width), final_couplings, "checkerboard", *args))
    body: Flow = MultiScaleFlow(stages, final)
    return FlowSequence(([LogitTransform(logit_alpha)] if logit_alpha is not None else []) + [body])


class RealNVP(nn.Module):
    """A flow and its standard-normal base over the flattened latent: ``log_prob(x)`` (nats) and
    ``sample(count)``. ``event_shape`` is the data's shape without the batch dimension."""

    def __init__(self, flow: Flow, event_shape: Sequence[int] | int) -> None:
        super().__init__()
        if not isinstance(flow, Flow):
            raise TypeError(f"flow must be an aicanon Flow, got {type(flow).__name__}")
        self.event_shape = (
            (event_shape,) if isinstance(event_shape, int) else tuple(int(s) for s in event_shape)
        )
        self.flow = flow
        self.base = StandardNormal(math.prod(self.event_shape))

    def _check(self, x: Tensor) -> None:
        check_tensor("x", x, floating=True)
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x must be [B, *{list(self.event_shape)}], got {tuple(x.shape)}")

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` in nats, ``[B]`` (Eq. 3)."""
        self._check(x)
        z, logdet = self.flow(x)
        return self.base.log_prob(z.flatten(1)) + logdet

    @torch.no_grad()
    def sample(
        self, count: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``count`` samples: ``x = f^{-1}(z)``, ``z ~ N(0, temperature^2 I)`` (uses eval-mode
        statistics of the batch-norm layers)."""
        check_int("count", count, 1)
        check_float("temperature", temperature, 0.0, min_inclusive=False)
        was_training = self.training
        self.eval()
        try:
            anchor = next(self.parameters(), torch.zeros(()))
            probe = torch.full((1, *self.event_shape), 0.5, dtype=anchor.dtype, device=anchor.device)
            self.flow(probe)  # sets the multi-scale layers' latent shapes (eval: no statistic changes)
            z = self.base.sample(count, temperature, generator)
            x, _ = self.flow.inverse(z)
        finally:
            self.train(was_training)
        return x
