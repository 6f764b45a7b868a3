"""Glow: a multi-scale flow of steps (ActNorm, invertible 1x1 convolution, coupling) (Kingma &
Dhariwal, NeurIPS 2018).

Every layer follows :class:`aicanon.generative.flows.base.Flow`: ``forward`` maps data to latent
(the paper's "forward" column of Table 1) and returns the log-determinant per example; ``inverse``
maps latent to data (Table 1's "reverse" column). For a ``[B, C, H, W]`` input, with ``(i, j)`` a
spatial position (Table 1):

* **ActNorm** (Section 3.1): ``y_ij = s * x_ij + b`` per channel, log-determinant
  ``h w sum log|s|``. We store ``log s`` and apply ``y = (x + b) exp(log s)`` (the official code's
  order: ``x += b; x *= exp(logs)``), which is Table 1's map with shift ``b exp(log s)``. The
  *data-dependent initialisation* sets ``b`` and ``log s`` on the first training batch so that the
  post-ActNorm activations have zero mean and unit variance per channel; afterwards they are free
  parameters.
* **Invertible 1x1 convolution** (Section 3.2): ``y_ij = W x_ij`` with ``W`` a ``C x C`` matrix
  initialised as a random rotation; log-determinant ``h w log|det W|`` (Eq. 9). The *LU-decomposed*
  variant (Eq. 10) keeps ``W = P L (U + diag(s))``: ``P`` a fixed permutation, ``L`` lower triangular
  with ones on its diagonal, ``U`` strictly upper triangular, ``s`` a vector stored as
  ``sign(s)`` (fixed) and ``log|s|`` (learned), so that ``log|det W| = sum log|s|`` costs ``O(C)``.
* **Permutations** (Section 3.2, Figure 3's baselines): reversing the channel order (Real NVP's
  alternation) or a fixed random shuffle; volume preserving.
* **Affine coupling** (Section 3.3, Table 1): ``x_a, x_b = split(x)``; ``(log s, t) = NN(x_a)``;
  ``y_b = s * x_b + t``; ``y = concat(x_a, y_b)``; log-determinant ``sum log|s|``. As in the
  official code the network's output channels alternate shift/scale (``h[:, 0::2]`` is ``t``,
  ``h[:, 1::2]`` the raw scale), ``s = sigmoid(raw + 2)`` and ``y_b = (x_b + t) * s``. The last
  convolution of ``NN`` is initialised to zero (Section 3.3, "zero initialization"), so each
  coupling starts near the identity (``s = sigmoid(2) ~ 0.88``). *Additive* coupling
  (Figure 3 left; NICE) is ``y_b = x_b + NN(x_a)`` with log-determinant 0.
* **Step of flow** (Figure 2a): ActNorm, then the 1x1 convolution (or a permutation), then the
  coupling.
* **Multi-scale** (Figure 2b; Real NVP Section 3.6): ``L`` levels, each a squeeze followed by ``K``
  steps; after every level but the last, half of the channels are factored out. The factored-out
  half gets a learned Gaussian prior whose mean and log-scale come from a zero-initialised 3x3
  convolution of the kept half (the official code's ``split2d_prior``): :class:`SplitPrior`, used
  as :class:`~aicanon.generative.flows.multiscale.MultiScaleFlow`'s ``split_priors``.
* **Temperature sampling** (Section 5.4, Figure 8): ``z ~ N(0, T^2 I)`` at every level; with the
  split priors this draws each factored-out part from ``N(mu, (T sigma)^2)``, as the official code
  does.

Why the coupling lives here and not in ``flows/coupling.py`` (Real NVP's general affine coupling):
Glow's scale is ``sigmoid(raw + 2)`` applied after the shift (``(x_b + t) * s``), with interleaved
network outputs, while Real NVP's is ``exp(tanh-scaled raw)`` applied before it (``x_b exp(s) + t``).
The two give different functions of the same network output, and a Glow checkpoint or a parity test
against ``normflows`` needs Glow's exact form.

Departures from the paper and the official code (openai/glow), and why:

* The official code multiplies the log-scale parameters of ActNorm and of the zero-initialised
  convolution by 3 (``logscale_factor``), a reparameterisation that only speeds up their learning
  under Adam; we keep plain parameters for ActNorm. The zero convolution (:class:`ZeroConv2d`) keeps
  the official factor 3 on its output scale ``exp(3 logs)``.
* The initial ActNorm variance is the batch's biased variance (the official code's), so the data-
  dependent initialisation gives exactly unit (biased) variance on that batch.
* The top level's prior is ``N(0, I)`` (the official code's default ``learntop=False``); class-
  conditioning (``ycond``) is not implemented.
* Which half a split factors out follows the shared :class:`MultiScaleFlow` (the first half of the
  channels), where the official code factors out the second; it is a relabelling of channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.generative.flows.base import Flow, FlowSequence, StandardNormal
from aicanon.generative.flows.multiscale import MultiScaleFlow, Squeeze

__all__ = [
    "PERMUTATIONS",
    "COUPLINGS",
    "ActNorm",
    "Glow",
    "GlowConditioner",
    "GlowCoupling",
    "GlowStep",
    "InvertibleConv1x1",
    "Permutation",
    "SplitPrior",
    "ZeroConv2d",
]

PERMUTATIONS = ("conv", "shuffle", "reverse")
"""How a step of flow mixes channels before its coupling: the invertible 1x1 convolution (Glow) or
Figure 3's baselines, a fixed random shuffle and the reversal of the channel order."""
COUPLINGS = ("affine", "additive")


def _check_image(name: str, x: Tensor, channels: int) -> Tensor:
    check_tensor(name, x, dim=4, floating=True, note="[B, C, H, W]")
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels ([B, {channels}, H, W]), got {tuple(x.shape)}"
        )
    return x


class ActNorm(Flow):
    """Per-channel affine map ``y = (x + b) exp(log s)`` with data-dependent initialisation (Section 3.1).

    The first ``forward`` call in training mode (and only it) sets ``b = -mean`` and
    ``log s = -log(std + eps)`` from the batch, per channel; the ``initialized`` buffer records that
    it happened (it is saved with the state dict, so a loaded model is not re-initialised).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, 1)
        self.eps = check_float("eps", eps, 0, min_inclusive=False)
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.log_scale = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``b`` and ``log s`` so that this batch comes out with zero mean and unit variance."""
        _check_image("x", x, self.num_channels)
        mean = x.mean(dim=(0, 2, 3))
        std = (x - mean.view(1, -1, 1, 1)).square().mean(dim=(0, 2, 3)).sqrt()
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("x", x, self.num_channels)
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + self.bias.view(1, -1, 1, 1)) * self.log_scale.exp().view(1, -1, 1, 1)
        logdet = (x.shape[2] * x.shape[3]) * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("z", z, self.num_channels)
        x = z * (-self.log_scale).exp().view(1, -1, 1, 1) - self.bias.view(1, -1, 1, 1)
        logdet = -(z.shape[2] * z.shape[3]) * self.log_scale.sum()
        return x, logdet.expand(z.shape[0])


def random_rotation(num_channels: int, generator: torch.Generator | None = None) -> Tensor:
    """A random orthogonal ``C x C`` matrix (QR of a Gaussian matrix), the 1x1 convolution's initial
    weight (Section 3.2: "initialized as a random rotation matrix")."""
    q, _ = torch.linalg.qr(torch.randn(num_channels, num_channels, generator=generator, dtype=torch.float64))
    return q.float()


class InvertibleConv1x1(Flow):
    """``y_ij = W x_ij`` at every position (Section 3.2), plain (Eq. 9) or LU-decomposed (Eq. 10).

    Args:
        num_channels: ``C``.
        lu: keep ``W = P L (U + diag(sign(s) exp(log|s|)))`` (Eq. 10): ``log|det W|`` is
            ``sum log|s|``, with no ``O(C^3)`` determinant; ``P`` and ``sign(s)`` are fixed buffers.
        weight: the initial ``W`` (``C x C``, invertible); None draws a random rotation.
        generator: the random source for that rotation.
    """

    def __init__(
        self,
        num_channels: int,
        lu: bool = False,
        weight: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, 1)
        if not isinstance(lu, bool):
            raise TypeError(f"lu must be a bool, got {type(lu).__name__}")
        self.lu = lu
        if weight is None:
            weight = random_rotation(num_channels, generator)
        check_tensor("weight", weight, shape=(num_channels, num_channels), floating=True)
        weight = weight.detach().to(torch.float64)
        sign, logabsdet = torch.linalg.slogdet(weight)
        if sign == 0 or not torch.isfinite(logabsdet):
            raise ValueError("weight must be an invertible C x C matrix, got a singular one (det W = 0)")
        if lu:
            permutation, lower, upper = torch.linalg.lu(weight)
            diagonal = upper.diagonal()
            if (diagonal == 0).any():
                raise ValueError("weight must have an LU decomposition with a nonzero diagonal, got a zero")
            self.register_buffer("permutation", permutation.float())
            self.register_buffer("sign_s", torch.sign(diagonal).float())
            self.register_buffer("lower_mask", torch.tril(torch.ones(num_channels, num_channels), -1))
            self.register_buffer("eye", torch.eye(num_channels))
            self.lower = nn.Parameter(torch.tril(lower, -1).float())
            self.upper = nn.Parameter(torch.triu(upper, 1).float())
            self.log_s = nn.Parameter(diagonal.abs().log().float())
        else:
            self.weight = nn.Parameter(weight.float())

    def matrix(self) -> Tensor:
        """``W`` (assembled from its LU factors when ``lu``)."""
        if not self.lu:
            return self.weight
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return self.permutation @ lower @ upper

    def log_abs_det(self) -> Tensor:
        """``log|det W|`` (a scalar): ``sum log|s|`` when LU-decomposed, else ``slogdet``."""
        if self.lu:
            return self.log_s.sum()
        return torch.linalg.slogdet(self.weight)[1]

    def inverse_matrix(self) -> Tensor:
        """``W^{-1}``; computed in float64 (then cast back) so that inverse(forward(x)) stays accurate."""
        weight = self.matrix()
        if not self.lu:
            return torch.linalg.inv(weight.double()).to(weight.dtype)
        lower = (self.lower * self.lower_mask + self.eye).double()
        upper = (self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())).double()
        eye = torch.eye(self.num_channels, dtype=torch.float64, device=weight.device)
        # W^{-1} = U^{-1} L^{-1} P^T, by two triangular solves (Eq. 10's point: no general inverse).
        lower_inverse = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        upper_inverse = torch.linalg.solve_triangular(upper, eye, upper=True)
        return (upper_inverse @ lower_inverse @ self.permutation.double().T).to(weight.dtype)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("x", x, self.num_channels)
        weight = self.matrix()
        y = F.conv2d(x, weight.view(self.num_channels, self.num_channels, 1, 1))
        logdet = (x.shape[2] * x.shape[3]) * self.log_abs_det()
        return y, logdet.expand(x.shape[0])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("z", z, self.num_channels)
        weight = self.inverse_matrix()
        x = F.conv2d(z, weight.view(self.num_channels, self.num_channels, 1, 1))
        logdet = -(z.shape[2] * z.shape[3]) * self.log_abs_det()
        return x, logdet.expand(z.shape[0])


class Permutation(Flow):
    """A fixed channel permutation: ``"reverse"`` (channel order reversed) or ``"shuffle"`` (random)."""

    def __init__(self, num_channels: int, kind: str = "reverse", generator: torch.Generator | None = None):
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, 1)
        self.kind = check_choice("kind", kind, ("reverse", "shuffle"))
        if kind == "reverse":
            order = torch.arange(num_channels - 1, -1, -1)
        else:
            order = torch.randperm(num_channels, generator=generator)
        self.register_buffer("order", order)
        self.register_buffer("inverse_order", torch.argsort(order))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("x", x, self.num_channels)
        return x[:, self.order], x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("z", z, self.num_channels)
        return z[:, self.inverse_order], z.new_zeros(z.shape[0])


class ZeroConv2d(nn.Module):
    """A convolution initialised to output zero, its output scaled by ``exp(3 logs)`` per channel
    (the official code's ``conv2d_zeros``, logscale factor 3): the last layer of every coupling
    network and the split prior (Section 3.3)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("kernel_size", kernel_size, 1)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.logs = nn.Parameter(torch.zeros(out_channels))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * (3 * self.logs).exp().view(1, -1, 1, 1)


class GlowConditioner(nn.Module):
    """The coupling network ``NN`` of the official code: 3x3 conv, ReLU, 1x1 conv, ReLU, zero-init 3x3
    conv (Section 5: "three convolutional layers"; hidden width 512).

    With ``normalize`` (the official code) each hidden conv has no bias and is followed by an ActNorm
    with data-dependent initialisation; without it the hidden convs carry a bias (``normflows``'
    ``ConvNet2d``).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, normalize: bool = True):
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("hidden_channels", hidden_channels, 1)
        self.first = nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=not normalize)
        self.second = nn.Conv2d(hidden_channels, hidden_channels, 1, bias=not normalize)
        self.norms = (
            nn.ModuleList([ActNorm(hidden_channels), ActNorm(hidden_channels)]) if normalize else None
        )
        self.last = ZeroConv2d(hidden_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(x)
        if self.norms is not None:
            h = self.norms[0](h)[0]
        h = self.second(F.relu(h))
        if self.norms is not None:
            h = self.norms[1](h)[0]
        return self.last(F.relu(h))


class GlowCoupling(Flow):
    """Glow's affine (``y_b = (x_b + t) sigmoid(raw + 2)``) or additive (``y_b = x_b + NN(x_a)``)
    coupling (Section 3.3, Table 1); ``x_a`` is the first half of the channels, ``x_b`` the second.

    Args:
        num_channels: ``C`` (even).
        hidden_channels: width of the coupling network (512 in the paper).
        coupling: ``"affine"`` or ``"additive"``.
        conditioner: the network ``NN`` (``C/2`` channels in; ``C`` out for affine, ``C/2`` for
            additive); None builds :class:`GlowConditioner`.
    """

    def __init__(
        self,
        num_channels: int,
        hidden_channels: int = 512,
        coupling: str = "affine",
        conditioner: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_int("num_channels", num_channels, 2)
        if num_channels % 2:
            raise ValueError(f"num_channels must be even to split in halves, got {num_channels}")
        self.num_channels = num_channels
        self.coupling = check_choice("coupling", coupling, COUPLINGS)
        half = num_channels // 2
        out = num_channels if coupling == "affine" else half
        if conditioner is None:
            conditioner = GlowConditioner(half, out, hidden_channels)
        elif not isinstance(conditioner, nn.Module):
            raise TypeError(f"conditioner must be an nn.Module or None, got {type(conditioner).__name__}")
        self.conditioner = conditioner

    def _parameters_of(self, x_a: Tensor, x_b: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.conditioner(x_a)
        want = x_b.shape[1] * (2 if self.coupling == "affine" else 1)
        if h.shape != (x_b.shape[0], want, *x_b.shape[2:]):
            raise ValueError(
                f"conditioner must output [B, {want}, H, W] for {self.coupling} coupling, "
                f"got {tuple(h.shape)}"
            )
        if self.coupling == "additive":
            return h, None
        return h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("x", x, self.num_channels)
        x_a, x_b = x.chunk(2, dim=1)
        shift, scale = self._parameters_of(x_a, x_b)
        if scale is None:
            return torch.cat([x_a, x_b + shift], dim=1), x.new_zeros(x.shape[0])
        y_b = (x_b + shift) * scale
        return torch.cat([x_a, y_b], dim=1), scale.log().flatten(1).sum(1)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("z", z, self.num_channels)
        z_a, z_b = z.chunk(2, dim=1)
        shift, scale = self._parameters_of(z_a, z_b)
        if scale is None:
            return torch.cat([z_a, z_b - shift], dim=1), z.new_zeros(z.shape[0])
        x_b = z_b / scale - shift
        return torch.cat([z_a, x_b], dim=1), -scale.log().flatten(1).sum(1)


class GlowStep(FlowSequence):
    """One step of flow (Figure 2a): ActNorm, channel mixing (``permutation``), coupling.

    Args:
        num_channels: ``C`` (even).
        hidden_channels: width of the coupling network.
        permutation: ``"conv"`` (invertible 1x1 convolution), ``"shuffle"`` or ``"reverse"``.
        lu: LU-decompose the 1x1 convolution (Eq. 10); ignored by the permutations.
        coupling: ``"affine"`` or ``"additive"``.
        generator: random source of the 1x1 convolution's rotation or of the shuffle.
    """

    def __init__(
        self,
        num_channels: int,
        hidden_channels: int = 512,
        permutation: str = "conv",
        lu: bool = True,
        coupling: str = "affine",
        generator: torch.Generator | None = None,
    ) -> None:
        check_int("num_channels", num_channels, 2)
        check_choice("permutation", permutation, PERMUTATIONS)
        if permutation == "conv":
            mixing: Flow = InvertibleConv1x1(num_channels, lu=lu, generator=generator)
        else:
            mixing = Permutation(num_channels, permutation, generator=generator)
        coupling_layer = GlowCoupling(num_channels, hidden_channels, coupling)
        super().__init__([ActNorm(num_channels), mixing, coupling_layer])

    @property
    def actnorm(self) -> ActNorm:
        return self.flows[0]

    @property
    def mixing(self) -> Flow:
        """The 1x1 convolution or the permutation."""
        return self.flows[1]

    @property
    def coupling(self) -> GlowCoupling:
        return self.flows[2]


class SplitPrior(nn.Module):
    """The learned prior of a factored-out half: a zero-initialised 3x3 conv of the kept half ``h``
    gives ``(mean, log_scale)`` (interleaved channels, the official code's ``split2d_prior``)."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, 1)
        self.conv = ZeroConv2d(num_channels, 2 * num_channels, 3)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("h", h, self.num_channels)
        out = self.conv(h)
        return out[:, 0::2], out[:, 1::2]


class Glow(MultiScaleFlow):
    """The multi-scale Glow (Figure 2b): ``levels`` levels of squeeze + ``steps`` steps of flow, half
    the channels factored out (with a :class:`SplitPrior`) after every level but the last.

    ``forward(x)`` maps a ``[B, C, H, W]`` image (``H`` and ``W`` divisible by ``2**levels``) to one
    flattened latent ``[B, D]``; :meth:`log_prob` adds the ``N(0, I)`` base; :meth:`sample` draws
    with a temperature (after one ``forward`` call has fixed the latent shapes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        levels: int = 3,
        steps: int = 32,
        hidden_channels: int = 512,
        permutation: str = "conv",
        lu: bool = True,
        coupling: str = "affine",
        split_prior: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        check_int("in_channels", in_channels, 1)
        check_int("levels", levels, 1)
        check_int("steps", steps, 1)
        check_int("hidden_channels", hidden_channels, 1)
        check_choice("permutation", permutation, PERMUTATIONS)
        check_choice("coupling", coupling, COUPLINGS)
        if not isinstance(split_prior, bool):
            raise TypeError(f"split_prior must be a bool, got {type(split_prior).__name__}")
        blocks: list[Flow] = []
        priors: list[nn.Module] = []
        channels = in_channels
        for level in range(levels):
            channels *= 4
            steps_here = [
                GlowStep(channels, hidden_channels, permutation, lu, coupling, generator)
                for _ in range(steps)
            ]
            blocks.append(FlowSequence([Squeeze(), *steps_here]))
            if level < levels - 1:
                channels //= 2
                priors.append(SplitPrior(channels))
        super().__init__(blocks[:-1], blocks[-1], priors if split_prior else None)
        self.in_channels = in_channels
        self.num_levels = levels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("x", x, dim=4, floating=True, note="[B, C, H, W]")
        factor = 2**self.num_levels
        if x.shape[1] != self.in_channels or x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(
                f"x must be [B, {self.in_channels}, H, W] with H and W divisible by {factor} "
                f"(2**levels), got {tuple(x.shape)}"
            )
        return super().forward(x)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` in nats per example, ``[B]``, under the ``N(0, I)`` base."""
        z, logdet = self(x)
        return StandardNormal(z.shape[1]).to(z).log_prob(z) + logdet

    @torch.no_grad()
    def sample(
        self, count: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``count`` images from ``z ~ N(0, T^2 I)`` (Section 5.4's reduced-temperature sampling)."""
        check_int("count", count, 1)
        check_float("temperature", temperature, 0, min_inclusive=False, finite=True)
        size = sum(math.prod(shape) for shape in self.latent_shapes())
        anchor = next(self.parameters())
        base = StandardNormal(size).to(anchor)
        x, _ = self.inverse(base.sample(count, temperature, generator).to(anchor))
        return x

    def steps_of_flow(self) -> Sequence[GlowStep]:
        """Every :class:`GlowStep`, level by level."""
        return [module for module in self.modules() if isinstance(module, GlowStep)]
