"""The protocol every flow layer follows, composition, the standard normal base, and likelihoods.

A flow is a bijection ``f`` with a tractable Jacobian determinant. By the change of variables,

    log p_X(x) = log p_Z(f(x)) + log |det df/dx|

(Rezende & Mohamed 2015, Eq. 4-6; Dinh et al. 2017, Eq. 3). Every layer here is a :class:`Flow`:

* ``forward(x) -> (z, logdet)``: ``z = f(x)`` and ``logdet = log |det df/dx|``, one value per example
  (shape ``[B]``), in the data-to-latent direction used for density estimation;
* ``inverse(z) -> (x, logdet)``: ``x = f^{-1}(z)`` and ``logdet = log |det df^{-1}/dz|``
  (``= -`` the forward one at the corresponding point), for sampling.

A layer without a closed-form inverse (a planar flow) raises :class:`NotInvertible` from
``inverse`` with a message saying so; it is still a valid flow for variational inference, where only
the forward direction and its log-determinant are needed.

:class:`FlowSequence` composes layers (log-determinants add; the inverse runs them in reverse
order). :class:`StandardNormal` is the usual base density, summed over every non-batch dimension.
:func:`log_likelihood` is the exact log-density in nats; :func:`bits_per_dim` converts a
log-density of dequantised discrete data to bits per dimension of the discrete data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int, check_tensor

__all__ = [
    "Flow",
    "FlowSequence",
    "Inverse",
    "NotInvertible",
    "StandardNormal",
    "bits_per_dim",
    "log_likelihood",
]


class NotInvertible(NotImplementedError):
    """The layer has no closed-form inverse (e.g. a planar flow); only ``forward`` is available."""


class Flow(nn.Module):
    """Base class: subclasses implement ``forward`` and, where it exists, ``inverse``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        raise NotInvertible(f"{name} has no closed-form inverse; use it in the forward direction")


class FlowSequence(Flow):
    """``f = f_K o ... o f_1``: forward applies the layers in order and sums their log-determinants."""

    def __init__(self, flows: Iterable[Flow]) -> None:
        super().__init__()
        self.flows = nn.ModuleList(flows)
        for i, flow in enumerate(self.flows):
            if not isinstance(flow, Flow):
                raise TypeError(f"flows[{i}] must be an aicanon Flow, got {type(flow).__name__}")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for flow in self.flows:
            x, logdet = flow(x)
            total = total + logdet
        return x, total

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        total = z.new_zeros(z.shape[0])
        for flow in reversed(self.flows):
            z, logdet = flow.inverse(z)
            total = total + logdet
        return z, total


class Inverse(Flow):
    """The inverse of a flow as a flow: ``forward`` is the wrapped layer's ``inverse`` and vice versa."""

    def __init__(self, flow: Flow) -> None:
        super().__init__()
        if not isinstance(flow, Flow):
            raise TypeError(f"flow must be an aicanon Flow, got {type(flow).__name__}")
        self.flow = flow

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.inverse(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow(z)


class StandardNormal(nn.Module):
    """``N(0, I)`` over the event shape; ``log_prob`` sums over every non-batch dimension."""

    def __init__(self, shape: tuple[int, ...] | int) -> None:
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        for i, size in enumerate(shape):
            check_int(f"shape[{i}]", size, 1)
        self.shape = shape
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device/dtype)

    def log_prob(self, z: Tensor) -> Tensor:
        check_tensor("z", z, floating=True)
        if tuple(z.shape[1:]) != self.shape:
            raise ValueError(f"z must be [B, *{list(self.shape)}], got {tuple(z.shape)}")
        return -0.5 * (z.square() + math.log(2 * math.pi)).flatten(1).sum(1)

    def sample(
        self, count: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``count`` samples, scaled by ``temperature`` (Glow's reduced-temperature sampling)."""
        check_int("count", count, 1)
        noise = torch.randn((count, *self.shape), generator=generator, dtype=self._anchor.dtype)
        return (noise * temperature).to(self._anchor.device)


def log_likelihood(flow: Flow, base: StandardNormal, x: Tensor) -> Tensor:
    """Exact ``log p(x)`` in nats, ``[B]``: ``base.log_prob(f(x)) + log |det df/dx|``."""
    z, logdet = flow(x)
    return base.log_prob(z) + logdet


def bits_per_dim(log_prob: Tensor, num_dims: int, bins: int = 256) -> Tensor:
    """Bits per dimension of discrete data (``bins`` levels per dimension, e.g. 256 for 8-bit pixels)
    from the log-density ``log_prob`` (nats, ``[B]``) of its dequantised version on ``[0, 1)^D``:

        bits/dim = -(log p(y) - D log(bins)) / (D ln 2)

    where ``y = (x + u) / bins``, ``u ~ U[0, 1)^D``: the ``- D log(bins)`` term is the Jacobian of
    the scaling from ``[0, bins)^D`` to ``[0, 1)^D`` (Theis et al. 2016; Dinh et al. 2017 Section 4.1).
    ``bins=1`` leaves the density's own scale (a continuous ``y`` that was not scaled)."""
    check_tensor("log_prob", log_prob, dim=1, floating=True)
    check_int("num_dims", num_dims, 1)
    check_int("bins", bins, 1)
    return -(log_prob - num_dims * math.log(bins)) / (num_dims * math.log(2.0))
