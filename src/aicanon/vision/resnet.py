"""A small ResNet (He et al. 2016): the convolutional baseline of the ViT and Mixer data-fraction
experiments and the stem of the hybrid ViT (Dosovitskiy et al. 2021, Section 3.1 and 4.1).

Residual basic blocks ``y = ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x))))))`` (a 1x1 projection on the
shortcut when the shape changes) in four stages of ``layers`` blocks with ``widths`` channels, the
first block of stages 2-4 striding by 2, then global average pooling and a linear classifier.
``ResNet(layers=(2, 2, 2, 2))`` with the ImageNet stem is ResNet-18, with torchvision's parameter
names (``conv1, bn1, layer<k>.<i>.conv1 ..., downsample.0/1, fc``), so torchvision ``resnet18``
state dicts load unchanged: ``load_state_dict_strict(model, from_torchvision(state_dict))``
(:func:`aicanon.core.state_dict.load_state_dict_strict`). ``small_inputs=True`` swaps the 7x7/2 convolution and max-pool of the stem
for one 3x3/1 convolution (the usual CIFAR/MNIST adaptation), so 28-32 pixel images keep their
resolution.

Departures from the papers, and why:

* ViT's baselines are BiT ResNets (ResNet-v2 with Group Normalisation and Weight Standardisation,
  Kolesnikov et al. 2020) and its hybrid uses a BiT ResNet-50 stem. We use the plain ResNet-v1 with
  BatchNorm and basic blocks: at our scale (tens of thousands of small images, batches of 64+)
  BatchNorm trains well, it is the torchvision reference we test against, and a CNN of about the
  cost of the small ViTs needs no bottlenecks. The trend the experiment measures (a CNN's inductive
  bias vs a transformer's) does not hinge on the normalisation.
* Only basic blocks (ResNet-18/34 family) are offered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.core.state_dict import check_state_dict
from aicanon.vision.backbone import Backbone, check_images

__all__ = ["BasicBlock", "ResNet", "from_torchvision", "resnet18", "resnet_stem"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (He et al. 2016, Figure 2)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            # Projection shortcut (option B of He et al. 2016) when the shape changes.
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNet(Backbone):
    """ResNet of basic blocks; ``layers`` blocks per stage, ``widths`` channels per stage."""

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        in_chans: int = 3,
        num_classes: int = 1000,
        small_inputs: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths) or not 1 <= len(layers) <= 4:
            raise ValueError(
                f"layers and widths must have the same length, 1 to 4, got layers={tuple(layers)}, widths={tuple(widths)}"
            )
        for value in (*layers, *widths):
            check_int("layers/widths entries", value)
        self.in_chans = check_int("in_chans", in_chans)
        check_int("num_classes", num_classes, minimum=0)
        self.small_inputs = bool(small_inputs)
        if small_inputs:
            self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
            stem_stride = 1
        else:
            self.conv1 = nn.Conv2d(in_chans, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            stem_stride = 4
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_channels, stride = widths[0], stem_stride
        self.feature_channels = {}
        for index, (blocks, channels) in enumerate(zip(layers, widths, strict=True)):
            step = 1 if index == 0 else 2
            stride *= step
            stage = [BasicBlock(in_channels, channels, step)]
            stage += [BasicBlock(channels, channels) for _ in range(blocks - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
            self.feature_channels[stride] = channels
            in_channels = channels
        self.num_stages = len(layers)
        self.feature_strides = tuple(self.feature_channels)
        self.num_features = in_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes) if num_classes else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (fan-out) init for convolutions, BN weight 1 and bias 0, as torchvision."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's feature map ``[B, num_features, H/s, W/s]``."""
        check_images(x, self.in_chans)
        x = self.stem(x)
        for stage in self.stages():
            x = stage(x)
        return x

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        """Every stage's output keyed by its stride."""
        check_images(x, self.in_chans)
        x, maps = self.stem(x), {}
        for stride, stage in zip(self.feature_strides, self.stages(), strict=True):
            x = stage(x)
            maps[stride] = x
        return maps

    def forward_head(self, features: Tensor) -> Tensor:
        if not isinstance(features, Tensor) or features.dim() != 4 or features.shape[1] != self.num_features:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be a map [batch, {self.num_features}, h, w], got {got}")
        return self.fc(torch.flatten(self.avgpool(features), 1))

    def reset_classifier(self, num_classes: int) -> None:
        check_int("num_classes", num_classes, minimum=0)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (11,689,512 parameters with 1000 classes, as torchvision)."""
    return ResNet(layers=(2, 2, 2, 2), **kwargs)


def from_torchvision(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict from a torchvision ``resnet18``/``resnet34`` one: the names are ours."""
    return check_state_dict(state_dict)


def resnet_stem(model: ResNet, num_stages: int) -> tuple[nn.Sequential, int, int]:
    """The stem and first ``num_stages`` stages of ``model`` as a module, with its channels and stride.

    The hybrid ViT (Section 3.1) feeds this feature map to :class:`aicanon.vision.vit.HybridEmbed`.
    """
    if not isinstance(model, ResNet):
        raise TypeError(f"model must be a ResNet, got {type(model).__name__}")
    if not 1 <= num_stages <= model.num_stages:
        raise ValueError(f"num_stages must be in [1, {model.num_stages}], got {num_stages}")
    modules = [model.conv1, model.bn1, model.relu, model.maxpool, *model.stages()[:num_stages]]
    stride = model.feature_strides[num_stages - 1]
    return nn.Sequential(*modules), model.feature_channels[stride], stride
