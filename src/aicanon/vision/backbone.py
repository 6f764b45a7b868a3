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

import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

__all__ = ["Backbone", "build_from_timm", "check_images", "match_timm_variant"]


def match_timm_variant(variant: Any, pattern: str, family: str, examples: str) -> re.Match:
    """The match of a timm model name against ``pattern`` (its architecture part; a pretrained tag
    after ``.``, as in ``vit_base_patch16_224.augreg_in21k``, names weights, not a shape, and is
    ignored). Names we do not build raise ``ValueError`` listing ``examples``."""
    if not isinstance(variant, str):
        raise TypeError(
            f"variant must be a timm model name (str) such as {examples}, got {type(variant).__name__}"
        )
    match = re.fullmatch(pattern, variant.partition(".")[0])
    if match is None:
        raise ValueError(f"variant must be a timm {family} model name such as {examples}, got {variant!r}")
    return match


def build_from_timm(
    build: Callable[..., nn.Module],
    variant_kwargs: Mapping[str, Any],
    overrides: Mapping[str, Any],
    state_dict: Mapping[str, Tensor],
    convert: Callable[[nn.Module, dict[str, Tensor]], dict[str, Tensor]],
    head_key: str,
    variant: str,
) -> nn.Module:
    """``build(**variant_kwargs, **overrides)`` loaded strictly with ``convert(model, state_dict)``.

    Overrides of the architecture the variant names are refused (the weights would not fit); without
    ``num_classes`` the head's width is read from ``state_dict[head_key]`` (0 when the checkpoint has
    no head), so in21k (21,843 classes) and in1k checkpoints of one variant both load.
    """
    from aicanon.core.state_dict import load_state_dict_strict

    clash = sorted(set(overrides) & set(variant_kwargs) - {"img_size"})
    if clash:
        raise ValueError(
            f"{clash} are set by the timm variant {variant!r}; build the model directly to change them"
        )
    kwargs = {**variant_kwargs, **overrides}
    if "num_classes" not in kwargs:
        head = state_dict.get(head_key)
        kwargs["num_classes"] = int(head.shape[0]) if isinstance(head, Tensor) else 0
    model = build(**kwargs)
    load_state_dict_strict(model, convert(model, dict(state_dict)), source=f"timm {variant} state dict")
    return model


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
