"""ODE-Net: a continuous-depth replacement for a stack of residual blocks (Chen et al. 2018, Section 3).

A residual block updates ``h_{t+1} = h_t + f(h_t, theta_t)`` (Eq. 1): an Euler step. The ODE-Net
takes the limit and defines the block's output as the solution at ``T`` of

    dh(t)/dt = f(h(t), t, theta),   h(0) = input                                       (Eq. 2)

with one set of weights ``theta`` shared across "depth" ``t``. :class:`ODEBlock` solves it with
:func:`~aicanon.generative.ode.solvers.odeint` (gradients by backpropagation through the solver) or
:func:`~aicanon.generative.ode.adjoint.odeint_adjoint` (``adjoint=True``, O(1) memory).

Section 3's MNIST networks (Table 1), as in the paper's code: the input is downsampled twice
(conv 3x3 to ``width`` channels, then two strided 4x4 convs, each preceded by GroupNorm and ReLU),
then either six pre-activation residual blocks (:class:`ResidualBlock`, the ResNet) or one ODE block
whose dynamics are the same two convolutions with the time ``t`` appended as an input channel
(:class:`ConvODEFunc`, the ODE-Net), then GroupNorm, ReLU, global average pooling and a linear
layer. At ``width=64`` the ResNet has 0.58 M parameters (the paper: 0.60 M) and the ODE-Net
0.21 M (the paper: 0.22 M).

Departure: the paper's ODE-Net used the adaptive solver at tolerance 1e-3 for MNIST's test error;
``method``, ``step_size`` and the tolerances are arguments here (the quick reproduction uses RK4 with
fixed steps for predictable cost).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.generative.ode.adjoint import odeint_adjoint
from aicanon.generative.ode.solvers import METHODS, SolverStats, odeint

__all__ = ["ConcatConv2d", "ConvODEFunc", "ODEBlock", "ResidualBlock", "mnist_odenet", "mnist_resnet"]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels), channels)


class ConcatConv2d(nn.Module):
    """A 3x3 convolution of ``[h, t]``: the time is appended to the input as a constant channel."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, 3, padding=1)

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        time = torch.ones_like(h[:, :1]) * t
        return self.conv(torch.cat([time, h], dim=1))


class ConvODEFunc(nn.Module):
    """``f(h, t) = norm(conv_t(relu(norm(conv_t(relu(norm(h)))))))``: the ODE-Net's dynamics."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_int("width", width, 1)
        self.norm1, self.conv1 = _norm(width), ConcatConv2d(width, width)
        self.norm2, self.conv2 = _norm(width), ConcatConv2d(width, width)
        self.norm3 = _norm(width)

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        out = self.conv1(t, torch.relu(self.norm1(h)))
        out = self.conv2(t, torch.relu(self.norm2(out)))
        return self.norm3(out)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: ``h + conv(relu(norm(conv(relu(norm(h))))))`` (Eq. 1)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        check_int("width", width, 1)
        self.norm1, self.conv1 = _norm(width), nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm2, self.conv2 = _norm(width), nn.Conv2d(width, width, 3, padding=1, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        out = self.conv1(torch.relu(self.norm1(h)))
        return h + self.conv2(torch.relu(self.norm2(out)))


class ODEBlock(nn.Module):
    """``h -> h(T)``, the solution of Eq. 2 at ``integration_time`` from ``h(0) = h``.

    ``stats`` counts the function evaluations of the latest forward pass (NFE-F, Figure 3).
    ``integration_time=0`` makes the block the identity (an ablation).
    """

    def __init__(
        self,
        func: nn.Module,
        integration_time: float = 1.0,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-3,
        step_size: float | None = None,
        adjoint: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(func, nn.Module):
            raise TypeError(f"func must be an nn.Module f(t, h), got {type(func).__name__}")
        check_float("integration_time", integration_time, 0, finite=True)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        check_float("rtol", rtol, 0, min_inclusive=False, finite=True)
        check_float("atol", atol, 0, min_inclusive=False, finite=True)
        check_float("step_size", step_size, 0, min_inclusive=False, finite=True, allow_none=True)
        self.func = func
        self.integration_time = float(integration_time)
        self.method, self.rtol, self.atol, self.step_size = method, rtol, atol, step_size
        self.adjoint = bool(adjoint)
        self.stats = SolverStats()

    def forward(self, h: Tensor) -> Tensor:
        check_tensor("h", h, floating=True)
        if self.integration_time == 0.0:
            return h
        t = torch.tensor([0.0, self.integration_time], dtype=h.dtype, device=h.device)
        self.stats = SolverStats()
        solve = odeint_adjoint if self.adjoint else odeint
        options = dict(method=self.method, rtol=self.rtol, atol=self.atol, step_size=self.step_size)
        return solve(self.func, h, t, stats=self.stats, **options)[-1]


def _downsampling(in_channels: int, width: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, width, 3, 1),
        _norm(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1),
        _norm(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1),
    ]


def _head(width: int, classes: int) -> list[nn.Module]:
    return [_norm(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]


def mnist_resnet(width: int = 64, blocks: int = 6, in_channels: int = 1, classes: int = 10) -> nn.Sequential:
    """Table 1's ResNet: downsampling, ``blocks`` residual blocks, classifier head."""
    check_int("width", width, 1)
    check_int("blocks", blocks, 0)
    check_int("in_channels", in_channels, 1)
    check_int("classes", classes, 2)
    body = [ResidualBlock(width) for _ in range(blocks)]
    return nn.Sequential(*_downsampling(in_channels, width), *body, *_head(width, classes))


def mnist_odenet(width: int = 64, in_channels: int = 1, classes: int = 10, **block_options) -> nn.Sequential:
    """Table 1's ODE-Net: downsampling, one :class:`ODEBlock` of :class:`ConvODEFunc`, head.
    ``block_options`` go to :class:`ODEBlock` (``integration_time``, ``method``, ``step_size`` ...)."""
    check_int("width", width, 1)
    check_int("in_channels", in_channels, 1)
    check_int("classes", classes, 2)
    block = ODEBlock(ConvODEFunc(width), **block_options)
    return nn.Sequential(*_downsampling(in_channels, width), block, *_head(width, classes))
