"""The interface every image backbone here offers (ViT, MLP-Mixer, SqueezeNet, DeiT, Swin, ResNet).

Classification models and the dense-prediction heads built on them (DETR, segmentation) need the
same three things from a backbone, whatever its family:

* ``forward_features(x) -> Tensor``: the representation before the classifier (a feature map
  ``[B, C, h, w]`` for CNNs, tokens ``[B, N, C]`` for transformers);
* ``feature_maps(x) -> dict[int, Tensor]``: feature maps ``[B, C_s, H/s, W/s]`` keyed by their stride
  ``s`` (the strides in ``feature_strides``), transformers' tokens reshaped to a grid;
* ``num_features`` (the width the classifier reads), ``feature_channels`` (stride -> channels) and
  ``reset_classifier(num_classes)`` (a new head; 0 removes it), as timm models do.

``forward(x) = forward_head(forward_features(x))``.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Backbone", "check_images"]


def check_images(x: Tensor, channels: int, name: str = "x", multiple_of: int | None = None) -> None:
    """Raise a clear error unless ``x`` is ``[B, channels, H, W]`` (with H, W multiples of ``multiple_of``)."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be images [batch, {channels}, height, width], got {got}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if multiple_of and (x.shape[2] % multiple_of or x.shape[3] % multiple_of):
        raise ValueError(
            f"{name} height and width must be multiples of {multiple_of}, got {x.shape[2]}x{x.shape[3]}"
        )


class Backbone(nn.Module):
    """Base class of the image backbones (see the module docstring); subclasses fill in the parts."""

    num_features: int
    feature_strides: tuple[int, ...] = ()
    feature_channels: dict[int, int]

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, features: Tensor) -> Tensor:
        raise NotImplementedError

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
