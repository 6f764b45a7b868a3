"""SqueezeNet (Iandola et al., 2016): AlexNet-level accuracy with 50x fewer parameters.

The building block is the **Fire module** (Section 3.2): a *squeeze* layer of ``s_1x1`` 1x1
convolutions feeding an *expand* layer that mixes ``e_1x1`` 1x1 and ``e_3x3`` 3x3 convolutions,
whose outputs are concatenated along the channels, every convolution followed by a ReLU::

    s = ReLU(W_squeeze * x + b)                                   (squeeze, 1x1)
    Fire(x) = concat(ReLU(W_1x1 * s + b_1x1), ReLU(W_3x3 * s + b_3x3))   (expand)

with ``s_1x1 < e_1x1 + e_3x3`` so the squeeze limits the input channels of the 3x3 filters
(Strategy 2). The macro-architecture (Section 3.3, Table 1) is conv1, Fire modules fire2..fire9 and
conv10, with stride-2 max-pooling after conv1, fire4 and fire8 (v1.0; v1.1 after conv1, fire3 and
fire5 with a 64-filter 3x3 conv1, 2.4x less computation at the same accuracy), dropout 0.5 after
fire9, conv10 (1x1, one filter per class) + ReLU and global average pooling instead of fully
connected layers. v1.0 holds 1,248,424 parameters (4.8 MB at 32 bits, Table 1), v1.1 1,235,496.

Bypass connections (Section 6, Figure 2, Table 3), ``bypass=``:

* ``"none"``: vanilla SqueezeNet;
* ``"simple"``: an identity added around the Fire modules whose input and output widths match
  (fire3, fire5, fire7, fire9): ``Fire(x) + x``;
* ``"complex"``: the simple bypasses plus a 1x1 convolution bypass around the others
  (fire2, fire4, fire6, fire8): ``Fire(x) + W_bypass * x + b``.

Initialisation (``init=``): ``"paper"`` is the released Caffe model's (``train_val.prototxt``):
Caffe "xavier" (uniform in ``+-sqrt(3 / fan_in)``) for every convolution, a Gaussian of std 0.01 for
conv10, zero biases; ``"torchvision"`` is torchvision's (Kaiming-uniform, conv10 as above).

Layout and parameter names are torchvision's (``features.<i>``, ``classifier.1``), so
``squeezenet1_0``/``squeezenet1_1`` state dicts load directly:
``load_state_dict_strict(model, from_torchvision(state_dict))``
(:func:`aicanon.core.state_dict.load_state_dict_strict` names missing, unexpected or mis-shaped entries:
a complex bypass has weights torchvision lacks; another ``in_channels`` or ``num_classes`` changes
conv1's or conv10's shape).

Departures from the paper, and why:

* conv10 has no padding: the released v1.0 prototxt pads it by 1 (a 15x15 instead of 13x13 map
  whose border is the bias), which the paper does not describe and torchvision (our reference and
  the source of loadable weights) does not do.
* Max-pooling rounds its output size up (``ceil_mode``), as Caffe and torchvision do.
* The complex bypass's 1x1 convolution is linear (no ReLU), added after the Fire module's ReLUs; the
  paper says only that it is "a 1x1 convolution layer with the number of filters set equal to the
  number of output channels". Ours adds 341,248 parameters to v1.0 (6.1 MB at 32 bits); Table 3
  lists 7.7 MB for the complex-bypass model without saying where the difference lies.
* ``in_channels`` is configurable (1 for MNIST); the paper uses RGB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_int, check_probability
from aicanon.core.state_dict import check_state_dict
from aicanon.vision.backbone import Backbone, check_images

__all__ = [
    "BYPASSES",
    "INITS",
    "VERSIONS",
    "Fire",
    "SqueezeNet",
    "feature_sizes",
    "from_torchvision",
    "min_input_size",
    "squeezenet1_0",
    "squeezenet1_1",
]

VERSIONS = ("1_0", "1_1")
BYPASSES = ("none", "simple", "complex")
INITS = ("paper", "torchvision")

# Table 1 (v1.0) and the v1.1 README: "pool" is a 3x3 stride-2 max-pool, a triple is a Fire module
# (s_1x1, e_1x1, e_3x3). conv1 is (filters, kernel size), stride 2, no padding.
_STEM = {"1_0": (96, 7), "1_1": (64, 3)}
_LAYOUT: dict[str, tuple] = {
    "1_0": (
        "pool", (16, 64, 64), (16, 64, 64), (32, 128, 128), "pool",
        (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), "pool", (64, 256, 256),
    ),
    "1_1": (
        "pool", (16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128), "pool",
        (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256),
    ),
}  # fmt: skip


class Fire(nn.Module):
    """A Fire module (Section 3.2): squeeze 1x1, then expand 1x1 and 3x3 concatenated.

    Args:
        in_channels: input channels.
        squeeze: ``s_1x1``, filters of the squeeze layer.
        expand1x1: ``e_1x1``, 1x1 filters of the expand layer.
        expand3x3: ``e_3x3``, 3x3 filters (padding 1, so both expand outputs keep the size).
        bypass: ``"none"``, ``"identity"`` (simple bypass: needs ``in_channels == e_1x1 + e_3x3``)
            or ``"conv"`` (complex bypass: a 1x1 convolution from ``in_channels`` to the output width).
    """

    def __init__(
        self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, bypass: str = "none"
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels), ("squeeze", squeeze), ("expand1x1", expand1x1),
            ("expand3x3", expand3x3),
        ):  # fmt: skip
            check_int(name, value)
        check_choice("bypass", bypass, ("none", "identity", "conv"))
        self.in_channels = in_channels
        self.out_channels = expand1x1 + expand3x3
        if bypass == "identity" and in_channels != self.out_channels:
            raise ValueError(
                f"an identity bypass needs in_channels == expand1x1 + expand3x3, got {in_channels} "
                f"and {self.out_channels}"
            )
        # Attribute names are torchvision's, so its state dicts load unchanged.
        self.squeeze = nn.Conv2d(in_channels, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.bypass = bypass
        self.bypass_conv = (
            nn.Conv2d(in_channels, self.out_channels, kernel_size=1) if bypass == "conv" else None
        )

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_channels)
        s = self.squeeze_activation(self.squeeze(x))
        out = torch.cat(
            [self.expand1x1_activation(self.expand1x1(s)), self.expand3x3_activation(self.expand3x3(s))], 1
        )
        # Section 6: the bypass is added to the Fire module's output (after its ReLUs).
        if self.bypass == "identity":
            out = out + x
        elif self.bypass_conv is not None:
            out = out + self.bypass_conv(x)
        return out

    def extra_repr(self) -> str:
        return f"bypass={self.bypass!r}"


def _conv_size(n: int, kernel: int, stride: int) -> int:
    return (n - kernel) // stride + 1 if n >= kernel else 0


def _ceil_pool_size(n: int, kernel: int = 3, stride: int = 2) -> int:
    # PyTorch's pooling_output_shape with ceil_mode and no padding: round up, but the last window
    # must start inside the input.
    out = -(-(n - kernel) // stride) + 1 if n - kernel >= -(stride - 1) else 0
    if out > 0 and (out - 1) * stride >= n:
        out -= 1
    return max(out, 0)


def feature_sizes(version: str, height: int) -> list[int]:
    """Spatial size after conv1 and after each max-pool of SqueezeNet ``version`` for input ``height``.

    A size of 0 means the input is too small for the downsampling.
    """
    check_choice("version", version, VERSIONS)
    _, kernel = _STEM[version]
    sizes = [_conv_size(height, kernel, 2)]
    for item in _LAYOUT[version]:
        if item == "pool":
            sizes.append(_ceil_pool_size(sizes[-1]) if sizes[-1] > 0 else 0)
    return sizes


def min_input_size(version: str) -> int:
    """The smallest height (and width) SqueezeNet ``version`` accepts: 21 for v1.0, 17 for v1.1.

    Computed from the layer arithmetic (conv1 without padding, three ceil-mode 3x3/2 max-pools).
    """
    size = 1
    while min(feature_sizes(version, size)) < 1:
        size += 1
    return size


class SqueezeNet(Backbone):
    """SqueezeNet v1.0 / v1.1 (Table 1) with optional bypass connections (Section 6).

    Args:
        version: ``"1_0"`` (the paper's model) or ``"1_1"``.
        num_classes: conv10's filters; 0 gives no classifier (``forward`` returns pooled features).
        in_channels: image channels (3 for RGB, 1 for MNIST).
        bypass: ``"none"``, ``"simple"`` or ``"complex"`` (see the module docstring).
        dropout: dropout probability after fire9 (the paper: 0.5).
        init: ``"paper"`` (the released Caffe model's fillers) or ``"torchvision"``.

    ``feature_maps`` returns conv1's map (stride 2) and the last Fire output before each max-pool
    and at the end (strides 4, 8, 16; the sizes are the nominal ``H / s``, smaller by a few pixels
    because conv1 is unpadded).
    """

    feature_strides = (2, 4, 8, 16)

    def __init__(
        self,
        version: str = "1_0",
        num_classes: int = 1000,
        in_channels: int = 3,
        bypass: str = "none",
        dropout: float = 0.5,
        init: str = "paper",
    ) -> None:
        super().__init__()
        check_choice("version", version, VERSIONS)
        check_choice("bypass", bypass, BYPASSES)
        check_choice("init", init, INITS)
        check_int("num_classes", num_classes, 0)
        check_int("in_channels", in_channels)
        check_probability("dropout", dropout, allow_one=False)
        self.version, self.bypass, self.in_channels = version, bypass, in_channels
        self.dropout, self.num_classes, self.init = float(dropout), num_classes, init
        self.min_size = min_input_size(version)

        stem_channels, kernel = _STEM[version]
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, stem_channels, kernel_size=kernel, stride=2),
            nn.ReLU(inplace=True),
        ]
        channels = stem_channels
        self.feature_channels = {2: stem_channels}
        stride = 2
        for item in _LAYOUT[version]:
            if item == "pool":
                if stride > 2:
                    self.feature_channels[stride] = channels
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
                stride *= 2
                continue
            squeeze, e1, e3 = item
            fire_bypass = "none"
            if bypass != "none":
                fire_bypass = (
                    "identity" if channels == e1 + e3 else ("conv" if bypass == "complex" else "none")
                )
            layers.append(Fire(channels, squeeze, e1, e3, fire_bypass))
            channels = e1 + e3
        self.feature_channels[stride] = channels
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        self.classifier = self._make_classifier(num_classes)
        self.reset_parameters()

    def _make_classifier(self, num_classes: int) -> nn.Sequential:
        if num_classes == 0:
            return nn.Sequential(nn.Dropout(p=self.dropout), nn.AdaptiveAvgPool2d((1, 1)))
        # Section 3.3: dropout after fire9, conv10 (one 1x1 filter per class), ReLU, global average
        # pooling in place of fully connected layers.
        return nn.Sequential(
            nn.Dropout(p=self.dropout),
            nn.Conv2d(self.num_features, num_classes, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )

    @property
    def final_conv(self) -> nn.Conv2d | None:
        """conv10, the classifier's 1x1 convolution (None without a classifier)."""
        return self.classifier[1] if self.num_classes else None  # type: ignore[return-value]

    def reset_parameters(self) -> None:
        """Initialise every convolution as ``init`` says (see the module docstring)."""
        final = self.final_conv
        for module in self.modules():
            if not isinstance(module, nn.Conv2d):
                continue
            if module is final:
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
            elif self.init == "paper":
                # Caffe's "xavier" filler: uniform with variance 1 / fan_in, i.e. bound sqrt(3 / fan_in).
                fan_in = module.weight[0].numel()
                bound = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(module.weight, -bound, bound)
            else:
                nn.init.kaiming_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def fire_modules(self) -> dict[str, Fire]:
        """The Fire modules by the paper's names, ``fire2`` .. ``fire9``."""
        fires = [m for m in self.features if isinstance(m, Fire)]
        return {f"fire{i + 2}": fire for i, fire in enumerate(fires)}

    def check_input(self, x: Tensor) -> None:
        check_images(x, self.in_channels)
        if x.shape[2] < self.min_size or x.shape[3] < self.min_size:
            raise ValueError(
                f"x must be at least {self.min_size}x{self.min_size} for SqueezeNet v{self.version} "
                f"(conv1 and three stride-2 max-pools), got {x.shape[2]}x{x.shape[3]}"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        """fire9's output ``[B, 512, h, w]``."""
        self.check_input(x)
        return self.features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """Dropout, conv10, ReLU and global average pooling: logits ``[B, num_classes]``."""
        if not isinstance(features, Tensor) or features.dim() != 4 or features.shape[1] != self.num_features:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be [batch, {self.num_features}, height, width], got {got}")
        return self.classifier(features).flatten(1)

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        self.check_input(x)
        maps: dict[int, Tensor] = {}
        stride = 2
        for index, layer in enumerate(self.features):
            if isinstance(layer, nn.MaxPool2d):
                maps[stride] = x
                stride *= 2
            x = layer(x)
            if index == 1:  # after conv1's ReLU
                maps[2] = x
        maps[stride] = x
        return maps

    def reset_classifier(self, num_classes: int) -> None:
        """Replace conv10 by a fresh one with ``num_classes`` filters (0: no classifier)."""
        check_int("num_classes", num_classes, 0)
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes).to(
            device=self.features[0].weight.device, dtype=self.features[0].weight.dtype
        )
        self.classifier.train(self.training)
        if num_classes:
            nn.init.normal_(self.classifier[1].weight, mean=0.0, std=0.01)
            nn.init.zeros_(self.classifier[1].bias)


def from_torchvision(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict from a torchvision ``squeezenet1_0``/``squeezenet1_1`` one: the names are ours."""
    return check_state_dict(state_dict)


def squeezenet1_0(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> SqueezeNet:
    """SqueezeNet v1.0, the paper's model (Table 1): 1,248,424 parameters at 1000 classes."""
    return SqueezeNet("1_0", num_classes, in_channels, **kwargs)


def squeezenet1_1(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> SqueezeNet:
    """SqueezeNet v1.1: 3x3 conv1 of 64 filters, pools after conv1/fire3/fire5; 1,235,496 parameters."""
    return SqueezeNet("1_1", num_classes, in_channels, **kwargs)
