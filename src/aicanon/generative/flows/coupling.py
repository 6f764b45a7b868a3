"""Affine coupling layers (Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP",
ICLR 2017, Section 3.2-3.4), with the paper's checkerboard and channel-wise masks.

A coupling layer leaves part of its input unchanged and transforms the rest with an affine map
whose scale and shift are functions of the unchanged part. With a binary mask ``b`` (1 = kept and
conditioned on, 0 = transformed):

    y = b ⊙ x + (1 - b) ⊙ (x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x))                                   (9)

Its Jacobian is triangular, so (Eq. 6, with the sum over the transformed entries)

    log |det dy/dx| = sum_j (1 - b_j) s(b ⊙ x)_j

and its inverse needs no inverse of ``s`` or ``t`` (Eq. 8-9):

    x = b ⊙ y + (1 - b) ⊙ ((y - t(b ⊙ y)) ⊙ exp(-s(b ⊙ y)))

``s`` and ``t`` are arbitrary networks: here one *conditioner* network ``network`` gives both. Two
ways of choosing the kept part (Section 3.4, Figure 3):

* **a mask tensor** (``mask=<Tensor>``): the network sees ``b ⊙ x`` (the whole tensor, zeros where
  transformed) and must return ``s`` and ``t`` of the input's shape. :func:`checkerboard_mask`
  gives the spatial checkerboard ``b`` (1 where ``(i + j)`` is even, or odd with ``parity=1``),
  :func:`channel_mask` the channel-wise ``b`` and :func:`alternating_mask` a 1-D alternating mask.
* **a channel split** (``mask="channel"``): the first ``C // 2`` channels (dimension 1) are kept,
  the others transformed (``reverse=True`` swaps the roles); the network sees only the kept
  channels and returns ``s`` and ``t`` for the transformed ones. This is the paper's channel-wise
  mask computed without the zeros: the function is the same as Eq. 9 with ``b`` the channel mask,
  since ``b ⊙ x`` carries exactly the kept channels (its network merely has half the inputs).
  Glow's coupling (Kingma & Dhariwal 2018, Table 1) is this form.

**Network output.** The conditioner returns either a pair ``(raw_scale, shift)`` or one tensor
whose dimension 1 holds ``raw_scale`` then ``shift`` (``chunk(2, dim=1)``), each of the shape of the
transformed part (mask mode: of the whole input). With ``scale="additive"`` it returns ``shift``
alone (NICE's additive coupling, volume preserving).

**Scale parameterisation** (``scale``), giving ``s = log`` of the multiplier:

* ``"tanh"`` (the default, Real NVP): ``s = w ⊙ tanh(raw_scale)``, with ``w`` a learned scale
  factor (one per channel when ``channels`` is given, else one scalar), initialised to 1. The
  paper's Section 4.1 bounds ``s`` with a tanh and a learned rescaling (the released code does the
  same); it keeps ``exp(s)`` from exploding early in training.
* ``"exp"``: ``s = raw_scale`` (Eq. 9 as written; normflows' ``MaskedAffineFlow``).
* ``"sigmoid"``: ``s = log sigmoid(raw_scale + 2)`` (Glow's code).
* ``"additive"``: ``s = 0``.
* a callable ``raw_scale -> s`` (e.g. nflows' ``log(sigmoid(raw + 2) + 1e-3)``).

Departures: none in the transformation itself. The scale factor ``w`` is per channel (or scalar)
rather than per dimension; the mask convention ``1 = kept`` is the paper's (``b``), opposite to
nflows' (positive = transformed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_tensor
from aicanon.generative.flows.base import Flow

__all__ = ["SCALES", "AffineCoupling", "alternating_mask", "channel_mask", "checkerboard_mask"]

SCALES = ("tanh", "exp", "sigmoid", "additive")


def checkerboard_mask(height: int, width: int, parity: int = 0) -> Tensor:
    """``[1, 1, H, W]`` float mask, 1 where ``(i + j) % 2 == parity`` (Figure 3, left)."""
    check_int("height", height, 1)
    check_int("width", width, 1)
    check_int("parity", parity, 0, 1)
    rows = torch.arange(height).unsqueeze(1)
    cols = torch.arange(width).unsqueeze(0)
    return ((rows + cols) % 2 == parity).float().view(1, 1, height, width)


def channel_mask(channels: int, parity: int = 0) -> Tensor:
    """``[1, C, 1, 1]`` float mask, 1 on the first ``C // 2`` channels (``parity=1``: on the others)
    (Figure 3, right)."""
    check_int("channels", channels, 2)
    check_int("parity", parity, 0, 1)
    mask = (torch.arange(channels) < channels // 2).float()
    return (mask if parity == 0 else 1 - mask).view(1, channels, 1, 1)


def alternating_mask(features: int, parity: int = 0) -> Tensor:
    """``[1, D]`` float mask for vectors, 1 on even indices (``parity=1``: on odd ones)."""
    check_int("features", features, 2)
    check_int("parity", parity, 0, 1)
    return (torch.arange(features) % 2 == parity).float().view(1, features)


class AffineCoupling(Flow):
    """Affine coupling (Eq. 9) with a given conditioner ``network``.

    Args:
        mask: a binary float tensor broadcastable to the input (1 = kept; e.g.
            :func:`checkerboard_mask`), or ``"channel"`` to split dimension 1 in halves.
        network: maps the kept part (mask mode: ``b ⊙ x``) to ``(raw_scale, shift)`` or to one
            tensor holding both along dimension 1 (``shift`` alone when ``scale="additive"``).
        scale: ``"tanh"``, ``"exp"``, ``"sigmoid"``, ``"additive"`` or a callable (see the module).
        channels: number of channels of the transformed part (dimension 1) for a per-channel
            learned factor ``w`` in ``"tanh"`` mode; ``None``: one scalar factor.
        reverse: with ``mask="channel"``, keep the second half and transform the first.
    """

    def __init__(
        self,
        mask: Tensor | str,
        network: nn.Module,
        *,
        scale: str | Callable[[Tensor], Tensor] = "tanh",
        channels: int | None = None,
        reverse: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(mask, str):
            check_choice("mask", mask, ("channel",))
            self.split = True
            self.register_buffer("mask", None)
        elif isinstance(mask, Tensor):
            check_tensor("mask", mask, floating=True)
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError("mask must hold only 0 and 1 (1 = kept), got other values")
            if mask.dim() < 2:
                raise ValueError(
                    f"mask must have a leading batch dimension of 1 ([1, ...]), got {tuple(mask.shape)}"
                )
            self.split = False
            self.register_buffer("mask", mask.clone())
        else:
            raise TypeError(f"mask must be a Tensor or 'channel', got {type(mask).__name__}")
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be an nn.Module, got {type(network).__name__}")
        if not callable(scale):
            check_choice("scale", scale, SCALES)
        check_int("channels", channels, 1, allow_none=True)
        if not isinstance(reverse, bool):
            raise TypeError(f"reverse must be a bool, got {type(reverse).__name__}")
        if reverse and not self.split:
            raise ValueError("reverse applies to mask='channel' only; pass 1 - mask for a mask tensor")
        self.network = network
        self.scale = scale
        self.reverse = reverse
        self.scale_factor = None
        if scale == "tanh":
            self.scale_factor = nn.Parameter(torch.ones(channels if channels is not None else ()))

    # -- the pieces ------------------------------------------------------------------------------
    def _log_scale(self, raw: Tensor) -> Tensor:
        if callable(self.scale):
            return self.scale(raw)
        if self.scale == "exp":
            return raw
        if self.scale == "sigmoid":
            return F.logsigmoid(raw + 2.0)
        # tanh: s = w tanh(raw), w per channel (dimension 1) or scalar
        factor = self.scale_factor
        if factor.dim() == 1:
            if raw.shape[1] != factor.shape[0]:
                raise ValueError(
                    f"channels must equal the transformed part's channels ({raw.shape[1]}), "
                    f"got {factor.shape[0]}"
                )
            factor = factor.view(1, -1, *([1] * (raw.dim() - 2)))
        return factor * torch.tanh(raw)

    def _parameters_of(self, kept: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """``(s, t)`` of the shape of ``like`` (the transformed part) from the conditioner."""
        out = self.network(kept)
        if self.scale == "additive":
            if isinstance(out, tuple):
                raise ValueError("with scale='additive' the network must return the shift alone")
            shift = out
            log_scale = torch.zeros_like(like)
        else:
            if isinstance(out, tuple):
                if len(out) != 2:
                    raise ValueError(f"network must return (raw_scale, shift), got a tuple of {len(out)}")
                raw, shift = out
            else:
                if out.shape[1] % 2:
                    raise ValueError(
                        "network output must hold raw_scale and shift along dimension 1, "
                        f"got {tuple(out.shape)}"
                    )
                raw, shift = out.chunk(2, dim=1)
            log_scale = self._log_scale(raw)
        if shift.shape != like.shape or log_scale.shape != like.shape:
            raise ValueError(
                f"network must give scale and shift of shape {tuple(like.shape)}, "
                f"got {tuple(log_scale.shape)} and {tuple(shift.shape)}"
            )
        return log_scale, shift

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() < 2 or x.shape[1] < 2:
            raise ValueError(f"x must have at least 2 channels in dimension 1 to split, got {tuple(x.shape)}")
        first, second = x.split([x.shape[1] // 2, x.shape[1] - x.shape[1] // 2], dim=1)
        return (second, first) if self.reverse else (first, second)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([changed, kept] if self.reverse else [kept, changed], dim=1)

    def _check(self, name: str, x: Tensor) -> None:
        check_tensor(name, x, floating=True)
        if x.dim() < 2:
            raise ValueError(f"{name} must be [B, ...] with at least 2 dimensions, got {tuple(x.shape)}")
        if not self.split:
            if self.mask.dim() != x.dim():
                raise ValueError(
                    f"{name} must have {self.mask.dim()} dimensions like the mask "
                    f"{tuple(self.mask.shape)}, got {tuple(x.shape)}"
                )
            try:
                torch.broadcast_shapes(self.mask.shape, x.shape)
            except RuntimeError:
                raise ValueError(
                    f"{name} must broadcast with the mask {tuple(self.mask.shape)}, got {tuple(x.shape)}"
                ) from None

    # -- the flow --------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check("x", x)
        if self.split:
            kept, changed = self._halves(x)
            log_scale, shift = self._parameters_of(kept, changed)
            y = self._join(kept, changed * log_scale.exp() + shift)
            return y, log_scale.flatten(1).sum(1)
        b = self.mask.to(x.dtype)
        kept = b * x
        log_scale, shift = self._parameters_of(kept, x)
        log_scale = (1 - b) * log_scale
        y = kept + (1 - b) * (x * log_scale.exp() + shift)
        return y, log_scale.flatten(1).sum(1)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check("z", z)
        if self.split:
            kept, changed = self._halves(z)
            log_scale, shift = self._parameters_of(kept, changed)
            x = self._join(kept, (changed - shift) * (-log_scale).exp())
            return x, -log_scale.flatten(1).sum(1)
        b = self.mask.to(z.dtype)
        kept = b * z
        log_scale, shift = self._parameters_of(kept, z)
        log_scale = (1 - b) * log_scale
        x = kept + (1 - b) * ((z - shift) * (-log_scale).exp())
        return x, -log_scale.flatten(1).sum(1)
