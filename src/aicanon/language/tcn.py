r"""Temporal Convolutional Networks (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of Generic
Convolutional and Recurrent Networks for Sequence Modeling", arXiv 1803.01271).

A TCN maps a sequence ``x_0 .. x_T`` to ``ŷ_0 .. ŷ_T`` of the same length, where each ``ŷ_t``
depends only on ``x_0 .. x_t`` (Section 3.1, Eq. 1: ``ŷ_0..ŷ_T = f(x_0..x_T)`` with the causal
constraint). "TCN = 1D FCN + causal convolutions" (Section 3.2), made deep and far-sighted by:

* Eq. (2), the dilated causal convolution of a sequence ``x`` with a filter ``f`` of size ``k``::

      F(s) = (x *_d f)(s) = sum_{i=0}^{k-1} f(i) · x_{s - d·i}

  (zero before the start of the sequence). One such layer sees ``(k - 1)·d`` steps back; the
  dilation grows as ``d = 2^i`` at level ``i`` (Section 3.3).
* Eq. (3), a residual block ``o = Activation(x + F(x))`` (Section 3.4). In the TCN's block
  (Figure 1b) ``F`` is two rounds of [weight-normalised dilated causal convolution, ReLU, spatial
  dropout], and a 1x1 convolution maps ``x`` to the output width when the widths differ.
* Weight normalisation (Salimans & Kingma 2016) on every dilated convolution:
  ``w = g · v / ||v||`` per output channel.

Receptive field. A block has two convolutions of dilation ``d``, so a stack with dilations
``d_0 .. d_{L-1}`` sees ``1 + 2 (k - 1) Σ_i d_i`` input steps; with ``d_i = 2^i`` that is
``1 + 2 (k - 1)(2^L - 1)`` (:func:`receptive_field`). The paper states only the per-layer history
``(k - 1) d``; the closed form is our derivation (and is tested to be tight).

:class:`TemporalConvNet` is the stack (input and output ``[B, C, L]``, as ``nn.Conv1d``);
:class:`TCNSequenceModel` is the sequence-model head the paper's tasks use: an optional embedding
for token inputs, the stack, and a linear map to ``output_size`` at every step (``[B, L, output]``).

Departures from the paper and its code (github.com/locuslab/TCN), and why:

* Spatial dropout: the paper says "at each training step, a whole channel is zeroed out"
  (Section 3.4); we do that (``F.dropout1d``: one Bernoulli draw per sample and channel, kept
  channels scaled by ``1 / (1 - p)``). The authors' code uses element-wise ``nn.Dropout``.
* Causal padding: we pad ``(k - 1) d`` zeros on the left only; the authors' code pads both sides
  and chops the ``(k - 1) d`` trailing outputs ("Chomp1d"). The function is the same; ours does not
  compute the outputs it throws away.
* Initialisation: the paper gives none. The authors' code draws the convolutions from N(0, 0.01)
  after wrapping them in (hook-based) weight norm, which recomputes ``weight`` from ``g`` and ``v``
  at the first forward pass, so the draw has no effect: the effective start is PyTorch's default for
  ``v`` and ``g = ||v||``, which is what we use. The 1x1 residual convolution and the output layer
  start from N(0, 0.01), as in that code.
* Token inputs (copy memory, language modelling) pass through an embedding. The authors' copy-memory
  code feeds each digit as one real number; their language models embed, as we do everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from aicanon.core.checks import check_choice, check_int, check_probability, check_tensor

__all__ = [
    "CausalConv1d",
    "TCNSequenceModel",
    "TemporalBlock",
    "TemporalConvNet",
    "levels_for_receptive_field",
    "receptive_field",
]


def _check_dilations(dilations: Sequence[int]) -> list[int]:
    if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence) or len(dilations) == 0:
        raise ValueError(f"dilations must be a non-empty sequence of ints >= 1, got {dilations!r}")
    for i, d in enumerate(dilations):
        check_int(f"dilations[{i}]", d, 1)
    return list(dilations)


def receptive_field(
    kernel_size: int, levels: int | None = None, *, dilations: Sequence[int] | None = None
) -> int:
    """Input steps one output of a TCN sees: ``1 + 2 (k - 1) Σ_i d_i`` (two convolutions per block).

    Give ``levels`` for the paper's dilations ``d_i = 2^i`` (then ``1 + 2 (k - 1)(2^levels - 1)``),
    or ``dilations`` explicitly (e.g. all ones: the undilated ablation).
    """
    check_int("kernel_size", kernel_size, 1)
    if (levels is None) == (dilations is None):
        raise ValueError("receptive_field needs exactly one of levels and dilations")
    if levels is not None:
        check_int("levels", levels, 1)
        dilations = [2**i for i in range(levels)]
    return 1 + 2 * (kernel_size - 1) * sum(_check_dilations(dilations))


def levels_for_receptive_field(kernel_size: int, length: int) -> int:
    """The fewest levels (dilations ``2^i``) whose receptive field covers ``length`` steps."""
    check_int("kernel_size", kernel_size, 2, note="a kernel of size 1 never widens the receptive field")
    check_int("length", length, 1)
    levels = 1
    while receptive_field(kernel_size, levels) < length:
        levels += 1
    return levels


class CausalConv1d(nn.Module):
    """A dilated causal convolution, Eq. (2): ``out[t] = b + Σ_i W_i · x[t - d·i]`` (zeros before 0).

    Input and output ``[B, C, L]`` with the same ``L``. With ``weight_norm`` (the TCN's default) the
    kernel is reparameterised as ``g · v / ||v||`` (``torch.nn.utils.parametrizations.weight_norm``,
    one ``g`` per output channel): ``conv.parametrizations.weight.original0`` is ``g``,
    ``original1`` is ``v``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        *,
        bias: bool = True,
        use_weight_norm: bool = True,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("kernel_size", kernel_size, 1)
        check_int("dilation", dilation, 1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dilation = kernel_size, dilation
        self.left_padding = (kernel_size - 1) * dilation
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.conv = weight_norm(conv, name="weight", dim=0) if use_weight_norm else conv

    @property
    def weight(self) -> Tensor:
        """The effective kernel ``[out, in, k]`` (``g · v / ||v||`` under weight norm)."""
        return self.conv.weight

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        if x.size(1) != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels (dim 1 of [B, C, L]), got {x.size(1)}")
        # Section 3.2: pad (k - 1)·d zeros on the left only, so out[t] never sees x[t + 1:].
        return self.conv(F.pad(x, (self.left_padding, 0)))


class TemporalBlock(nn.Module):
    """The residual block of Figure 1(b), Eq. (3): ``ReLU(x' + F(x))`` with
    ``F = [CausalConv → ReLU → SpatialDropout] × 2`` and ``x' = x`` or a 1x1 convolution of ``x``
    when ``in_channels != out_channels``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int,
        dropout: float = 0.0,
        *,
        use_weight_norm: bool = True,
    ) -> None:
        super().__init__()
        check_probability("dropout", dropout, allow_one=False)
        self.dropout = float(dropout)
        self.conv1 = CausalConv1d(
            in_channels, out_channels, kernel_size, dilation, use_weight_norm=use_weight_norm
        )
        self.conv2 = CausalConv1d(
            out_channels, out_channels, kernel_size, dilation, use_weight_norm=use_weight_norm
        )
        self.downsample: nn.Conv1d | None = None
        if in_channels != out_channels:
            self.downsample = nn.Conv1d(in_channels, out_channels, 1)
            nn.init.normal_(self.downsample.weight, 0.0, 0.01)

    def _spatial_dropout(self, h: Tensor) -> Tensor:
        # Section 3.4: "a whole channel is zeroed out" - one draw per (sample, channel) of [B, C, L].
        return F.dropout1d(h, self.dropout, self.training) if self.dropout > 0 else h

    def forward(self, x: Tensor) -> Tensor:
        h = self._spatial_dropout(torch.relu(self.conv1(x)))
        h = self._spatial_dropout(torch.relu(self.conv2(h)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.relu(residual + h)


class TemporalConvNet(nn.Module):
    """Stacked :class:`TemporalBlock` with dilations ``2^i`` (Section 3.3), ``[B, C_in, L] → [B, C_out, L]``.

    Args:
        input_size: channels of the input.
        channels: output channels of each block (the paper's "n x h": ``[h] * n``).
        kernel_size: ``k``, the filter size of every convolution.
        dropout: spatial dropout after each convolution (Section 3.4), active in training mode only.
        dilations: one dilation per block; default ``2^i`` (all ones gives the undilated ablation).
        use_weight_norm: weight-normalise every dilated convolution (the paper's design).
    """

    def __init__(
        self,
        input_size: int,
        channels: Sequence[int],
        kernel_size: int = 2,
        dropout: float = 0.0,
        *,
        dilations: Sequence[int] | None = None,
        use_weight_norm: bool = True,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size, 1)
        check_int("kernel_size", kernel_size, 1)
        check_probability("dropout", dropout, allow_one=False)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or len(channels) == 0:
            raise ValueError(f"channels must be a non-empty sequence of ints >= 1, got {channels!r}")
        for i, c in enumerate(channels):
            check_int(f"channels[{i}]", c, 1)
        if dilations is None:
            dilations = [2**i for i in range(len(channels))]
        dilations = _check_dilations(dilations)
        if len(dilations) != len(channels):
            raise ValueError(
                f"dilations must have one entry per block ({len(channels)}), got {len(dilations)}"
            )
        self.input_size, self.kernel_size = input_size, kernel_size
        self.channels, self.dilations = list(channels), dilations
        widths = [input_size, *channels]
        self.blocks = nn.ModuleList(
            TemporalBlock(widths[i], widths[i + 1], kernel_size, d, dropout, use_weight_norm=use_weight_norm)
            for i, d in enumerate(dilations)
        )

    @property
    def receptive_field(self) -> int:
        """Input steps that one output sees, ``1 + 2 (k - 1) Σ_i d_i``."""
        return receptive_field(self.kernel_size, dilations=self.dilations)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, dim=3, floating=True)
        if x.size(1) != self.input_size:
            raise ValueError(f"x must have {self.input_size} channels (dim 1 of [B, C, L]), got {x.size(1)}")
        for block in self.blocks:
            x = block(x)
        return x


class TCNSequenceModel(nn.Module):
    """A TCN for the paper's tasks: inputs ``[B, L]`` tokens or ``[B, L, input_size]`` reals, outputs
    ``[B, L, output_size]`` (a linear map of the last block's channels at every step).

    Args:
        input_size: the vocabulary size (``input_kind="tokens"``) or the input channels (``"real"``).
        output_size: classes, or 1 for regression.
        channels: output channels of each block.
        kernel_size, dropout, dilations, use_weight_norm: as :class:`TemporalConvNet`.
        input_kind: ``"real"`` or ``"tokens"``.
        embedding_size: width of the token embedding (tokens only; default ``channels[0]``).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        channels: Sequence[int],
        kernel_size: int = 2,
        dropout: float = 0.0,
        *,
        input_kind: str = "real",
        embedding_size: int | None = None,
        dilations: Sequence[int] | None = None,
        use_weight_norm: bool = True,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size, 1)
        check_int("output_size", output_size, 1)
        check_choice("input_kind", input_kind, ("real", "tokens"))
        check_int("embedding_size", embedding_size, 1, allow_none=True)
        self.input_kind, self.input_size, self.output_size = input_kind, input_size, output_size
        self.embedding: nn.Embedding | None = None
        width = input_size
        if input_kind == "tokens":
            if not isinstance(channels, Sequence) or not channels:
                raise ValueError(f"channels must be a non-empty sequence of ints >= 1, got {channels!r}")
            width = embedding_size if embedding_size is not None else channels[0]
            self.embedding = nn.Embedding(input_size, width)
        self.network = TemporalConvNet(
            width, channels, kernel_size, dropout, dilations=dilations, use_weight_norm=use_weight_norm
        )
        self.output = nn.Linear(self.network.channels[-1], output_size)
        nn.init.normal_(self.output.weight, 0.0, 0.01)

    @property
    def receptive_field(self) -> int:
        return self.network.receptive_field

    def forward(self, inputs: Tensor) -> Tensor:
        if self.embedding is not None:
            check_tensor("inputs", inputs, dim=2, dtype=(torch.long, torch.int))
            if inputs.numel() and (inputs.min() < 0 or inputs.max() >= self.input_size):
                raise ValueError(
                    f"inputs must be token ids in [0, {self.input_size}), "
                    f"got values in [{int(inputs.min())}, {int(inputs.max())}]"
                )
            x = self.embedding(inputs)
        else:
            check_tensor("inputs", inputs, dim=3, floating=True)
            if inputs.size(-1) != self.input_size:
                raise ValueError(f"inputs must be [B, L, {self.input_size}], got {tuple(inputs.shape)}")
            x = inputs
        h = self.network(x.transpose(1, 2))  # [B, C, L]: convolutions run along the last dimension
        return self.output(h.transpose(1, 2))
