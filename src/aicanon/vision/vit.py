"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

An image ``x`` of ``H x W`` pixels and ``C`` channels is cut into ``N = HW / P^2`` patches
``x_p^i`` of ``P x P`` pixels, each flattened and projected by ``E`` (Section 3.1); a learned
class token ``x_class`` is prepended and learned 1-D position embeddings ``E_pos`` added::

    z_0 = [x_class; x_p^1 E; x_p^2 E; ...; x_p^N E] + E_pos,   E in R^{(P^2 C) x D}     (1)
    z'_l = MSA(LN(z_{l-1})) + z_{l-1},                         l = 1 ... L              (2)
    z_l = MLP(LN(z'_l)) + z'_l,                                l = 1 ... L              (3)
    y = LN(z_L^0)                                                                       (4)

The classification head reads ``y``: an MLP with one hidden layer (tanh) at pre-training, a single
linear layer at fine-tuning (Section 3.1; ``representation_size`` switches the hidden layer on).
Appendix D.3 compares the class token with global average pooling of the patch tokens
(``global_pool="avg"``; the final LayerNorm then acts on the pooled vector, as timm's ``fc_norm``).

Fine-tuning at a higher resolution (Section 3.2) keeps the patch size, so the sequence grows; the
pre-trained position embeddings are interpolated in 2-D on the patch grid
(:func:`resample_pos_embed`: bicubic with antialiasing, as timm's ``resample_abs_pos_embed``).
:meth:`VisionTransformer.set_image_size` does it once; ``dynamic_img_size=True`` does it on the fly
for each input size.

Hybrid architecture (Section 3.1, "Hybrid Architecture"): the patches come from a CNN feature map
instead of raw pixels; the projection ``E`` is applied to ``1 x 1`` "patches" of the map
(:class:`HybridEmbed`, given any CNN stem such as :func:`aicanon.vision.resnet.resnet_stem`).

Model sizes (Table 1) are in :data:`VIT_SIZES`: Ti and S are DeiT's (Touvron et al. 2021), used by
timm under the same names; "ViT-B/16" means size B with 16x16 patches. Parameter counts equal timm's
(ViT-B/16 at 224 with 1000 classes: 86,567,656).

Layout and parameter names are timm's (``cls_token, pos_embed, patch_embed.proj, blocks.<i>.*,
norm, fc_norm, head``; the tanh layer is ``pre_logits.fc``), so timm ``vit_*`` state dicts load
unchanged; :mod:`aicanon.vision.vit_weights` holds the converters (``from_timm``, which also resamples
position embeddings to another resolution, ``from_jax`` for the original JAX ``.npz`` checkpoints and
``from_transformers`` for ``transformers.ViTModel`` state dicts), whose result
:func:`aicanon.core.state_dict.load_state_dict_strict` loads.

Departures from the paper, and why:

* Initialisation follows the released JAX code, which the paper does not spell out: patch projection
  LeCun-normal (truncated), linear layers Xavier-uniform with zero biases (MLP biases normal with std
  1e-6), position embeddings normal with std 0.02, class token zero, classifier head zero (the
  zero-initialised head of Appendix B.1.1). timm's init (truncated normal 0.02) differs; it does not
  matter for loading weights.
* The patch projection is a stride-``P`` convolution, equal to ``E`` on flattened patches (the
  weights are reshaped from ``E`` by channel-last patch order in the JAX layout).
* Stochastic depth (``drop_path_rate``) is offered for DeiT-style training; ViT itself uses none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.nn.patch_embed import PatchEmbed
from aicanon.nn.transformer import Block
from aicanon.vision.backbone import Backbone, build_from_timm, check_images, match_timm_variant

__all__ = [
    "TIMM_SIZE_NAMES",
    "VIT_SIZES",
    "HybridEmbed",
    "ViTSize",
    "VisionTransformer",
    "parse_vit_name",
    "resample_pos_embed",
    "vit",
]


@dataclass(frozen=True)
class ViTSize:
    """Width ``D``, depth ``L``, MLP width and heads of one model size (Table 1)."""

    embed_dim: int
    depth: int
    mlp_dim: int
    num_heads: int


VIT_SIZES: dict[str, ViTSize] = {
    # Ti and S are DeiT's sizes (Touvron et al. 2021, Table 1), also timm's vit_tiny/vit_small.
    "Ti": ViTSize(192, 12, 768, 3),
    "S": ViTSize(384, 12, 1536, 6),
    # Table 1 of the ViT paper.
    "B": ViTSize(768, 12, 3072, 12),
    "L": ViTSize(1024, 24, 4096, 16),
    "H": ViTSize(1280, 32, 5120, 16),
}


# timm's size words for our size letters (``vit_tiny`` is Ti, ``deit_small`` is S).
TIMM_SIZE_NAMES = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def parse_vit_name(name: str) -> tuple[ViTSize, int]:
    """``"B/16"`` (or ``"ViT-B/16"``) -> (size B, patch size 16)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'B/16', got {type(name).__name__}")
    text = name.removeprefix("ViT-")
    size, _, patch = text.partition("/")
    if size not in VIT_SIZES or not patch.isdigit() or int(patch) < 1:
        raise ValueError(
            f"name must be '<size>/<patch>' with size one of {sorted(VIT_SIZES)} and a positive patch, got {name!r}"
        )
    return VIT_SIZES[size], int(patch)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int(name, value), value
    if isinstance(value, Sequence) and len(value) == 2:
        return check_int(name, value[0]), check_int(name, value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def resample_pos_embed(
    pos_embed: Tensor,
    new_grid: Sequence[int],
    old_grid: Sequence[int] | None = None,
    num_prefix_tokens: int = 1,
    mode: str = "bicubic",
    antialias: bool = True,
) -> Tensor:
    """Interpolate position embeddings ``[1, prefix + h*w, D]`` to a ``new_grid`` (Section 3.2).

    The prefix (class token) embeddings are kept; the ``h x w`` patch embeddings are treated as a
    ``D``-channel image and resized (bicubic with antialiasing by default, as timm). ``old_grid``
    defaults to a square grid.
    """
    if not isinstance(pos_embed, Tensor) or pos_embed.dim() != 3 or pos_embed.shape[0] != 1:
        got = tuple(pos_embed.shape) if isinstance(pos_embed, Tensor) else type(pos_embed).__name__
        raise ValueError(f"pos_embed must be [1, tokens, dim], got {got}")
    new_h, new_w = _pair(tuple(new_grid), "new_grid")
    check_int("num_prefix_tokens", num_prefix_tokens, minimum=0)
    patches = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(max(patches, 0))
        if side * side != patches:
            raise ValueError(
                f"pos_embed has {patches} patch tokens, not a square grid: pass old_grid (got shape "
                f"{tuple(pos_embed.shape)}, num_prefix_tokens={num_prefix_tokens})"
            )
        old_grid = (side, side)
    old_h, old_w = _pair(tuple(old_grid), "old_grid")
    if old_h * old_w != patches:
        raise ValueError(f"old_grid {old_h}x{old_w} does not match the {patches} patch tokens of pos_embed")
    if (old_h, old_w) == (new_h, new_w):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim, dtype = grid.shape[-1], grid.dtype
    grid = grid.float().reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_h, new_w), mode=mode, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(dtype)
    return torch.cat([prefix, grid], dim=1)


class HybridEmbed(nn.Module):
    """Patch embedding from a CNN feature map (Section 3.1, hybrid): ``E`` on ``P x P`` cells of the map.

    ``backbone`` maps ``[B, C, H, W]`` to ``[B, feature_dim, H/s, W/s]`` (``s = feature_stride``);
    the projection is a stride-``patch_size`` convolution over it (the paper uses ``P = 1``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        feature_stride: int,
        in_chans: int,
        embed_dim: int,
        patch_size: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be an nn.Module, got {type(backbone).__name__}")
        check_int("feature_dim", feature_dim)
        self.feature_stride = check_int("feature_stride", feature_stride)
        self.in_chans = check_int("in_chans", in_chans)
        self.patch_size = check_int("patch_size", patch_size) * feature_stride  # in pixels
        self.backbone = backbone
        self.proj = nn.Conv2d(feature_dim, embed_dim, kernel_size=patch_size, stride=patch_size)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch_size, width // self.patch_size

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_chans, multiple_of=self.patch_size)
        return self.proj(self.backbone(x)).flatten(2).transpose(1, 2)


class VisionTransformer(Backbone):
    """ViT (Eq. 1-4) with a class-token or average-pool readout and a linear or tanh-MLP head.

    Args:
        img_size: training resolution (int or (H, W)); sets the position-embedding grid.
        patch_size: ``P``.
        in_chans: image channels ``C``.
        num_classes: classes of the head (0: no head, ``forward`` returns the pooled features).
        embed_dim, depth, num_heads, mlp_ratio: ``D``, ``L``, heads, MLP width / ``D`` (Table 1).
        global_pool: ``"token"`` (class token, Eq. 4) or ``"avg"`` (mean of patch tokens, App. D.3).
        class_token: prepend ``x_class`` (``False`` only with ``global_pool="avg"``).
        fc_norm: LayerNorm after pooling instead of on all tokens; ``None`` = when pooling is avg (timm).
        representation_size: width of the tanh hidden layer of the pre-training head (None: linear).
        dynamic_img_size: accept any multiple of ``P`` and interpolate ``E_pos`` per input.
        drop_rate, attn_drop_rate, drop_path_rate: dropout after embeddings/in blocks, attention dropout,
            stochastic-depth rate (linearly increasing over depth).
        embed_layer: a :class:`HybridEmbed` (or anything with ``grid(H, W)`` and ``patch_size``)
            replacing the pixel patch embedding (the hybrid model).
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        global_pool: str = "token",
        class_token: bool = True,
        fc_norm: bool | None = None,
        representation_size: int | None = None,
        dynamic_img_size: bool = False,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        embed_layer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.img_size = _pair(img_size, "img_size")
        check_int("patch_size", patch_size)
        self.in_chans = check_int("in_chans", in_chans)
        check_int("num_classes", num_classes, minimum=0)
        check_int("embed_dim", embed_dim)
        check_int("depth", depth)
        check_int("num_heads", num_heads)
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs class_token=True, got class_token=False")
        if representation_size is not None:
            check_int("representation_size", representation_size)
        self.patch_embed = (
            embed_layer if embed_layer is not None else PatchEmbed(patch_size, in_chans, embed_dim)
        )
        self.patch_size = self.patch_embed.patch_size
        for side in self.img_size:
            if side % self.patch_size:
                raise ValueError(
                    f"img_size must be a multiple of patch_size={self.patch_size}, got {self.img_size}"
                )
        self.grid_size = self.patch_embed.grid(*self.img_size)
        self.num_prefix_tokens = 1 if class_token else 0
        self.global_pool = global_pool
        self.dynamic_img_size = bool(dynamic_img_size)
        self.embed_dim = self.num_features = embed_dim
        self.feature_strides = (self.patch_size,)
        self.feature_channels = {self.patch_size: embed_dim}
        num_patches = self.grid_size[0] * self.grid_size[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + self.num_prefix_tokens, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(1, depth - 1) for i in range(depth)]  # torch.linspace, meta-safe
        self.blocks = nn.Sequential(
            *[
                Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rates[i])
                for i in range(depth)
            ]
        )
        use_fc_norm = global_pool == "avg" if fc_norm is None else bool(fc_norm)
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(embed_dim, eps=1e-6)
        self.fc_norm = nn.LayerNorm(embed_dim, eps=1e-6) if use_fc_norm else nn.Identity()
        # Section 3.1: "an MLP with one hidden layer at pre-training time" (tanh, as the JAX code).
        if representation_size:
            self.pre_logits = nn.Sequential()
            self.pre_logits.add_module("fc", nn.Linear(embed_dim, representation_size))
            self.pre_logits.add_module("act", nn.Tanh())
            self.head_in = representation_size
        else:
            self.pre_logits = nn.Identity()
            self.head_in = embed_dim
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.head_in, num_classes) if num_classes else nn.Identity()
        self.num_classes = num_classes
        self.reset_parameters()

    # -- initialisation ------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """The JAX code's initialisation (see the module docstring)."""
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    if ".mlp." in f".{name}.":
                        nn.init.normal_(module.bias, std=1e-6)
                    else:
                        nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        proj = self.patch_embed.proj
        fan_in = proj.weight[0].numel()
        # LeCun normal, truncated at 2 std (JAX's lecun_normal): std corrected for truncation.
        std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
        nn.init.trunc_normal_(proj.weight, std=std, a=-2 * std, b=2 * std)
        if proj.bias is not None:
            nn.init.zeros_(proj.bias)
        nn.init.normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.zeros_(self.cls_token)
        if isinstance(self.head, nn.Linear):
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    # -- resolution ----------------------------------------------------------------------------
    def set_image_size(self, img_size: int | Sequence[int]) -> None:
        """Fine-tune at a new resolution: resample ``pos_embed`` to its grid in place (Section 3.2)."""
        size = _pair(img_size, "img_size")
        if size[0] % self.patch_size or size[1] % self.patch_size:
            raise ValueError(f"img_size must be a multiple of patch_size={self.patch_size}, got {size}")
        grid = self.patch_embed.grid(*size)
        with torch.no_grad():
            new = resample_pos_embed(self.pos_embed.data, grid, self.grid_size, self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(new.clone())
        self.img_size, self.grid_size = size, grid

    def _check_input(self, x: Tensor) -> tuple[int, int]:
        check_images(x, self.in_chans)
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"x height and width must be multiples of patch_size={self.patch_size}, got {height}x{width} "
                "(resize or pad the images)"
            )
        if (height, width) != self.img_size and not self.dynamic_img_size:
            raise ValueError(
                f"x must be {self.img_size[0]}x{self.img_size[1]} images, got {height}x{width}: call "
                "set_image_size() to fine-tune at a new resolution, or build with dynamic_img_size=True"
            )
        return self.patch_embed.grid(height, width)

    # -- forward -------------------------------------------------------------------------------
    def embed(self, x: Tensor) -> Tensor:
        """``z_0`` of Eq. 1: patch tokens, class token and position embeddings ``[B, prefix + N, D]``."""
        grid = self._check_input(x)
        tokens = self.patch_embed(x)
        pos_embed = self.pos_embed
        if grid != self.grid_size:
            pos_embed = resample_pos_embed(pos_embed, grid, self.grid_size, self.num_prefix_tokens)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.pos_drop(tokens + pos_embed)

    def forward_features(self, x: Tensor) -> Tensor:
        """Encoder output ``[B, prefix + N, D]`` (Eq. 1-3, with the final LN unless ``fc_norm``)."""
        return self.norm(self.blocks(self.embed(x)))

    def pool(self, tokens: Tensor) -> Tensor:
        """Readout ``[B, D]``: the class token (Eq. 4) or the mean of the patch tokens (App. D.3)."""
        if self.global_pool == "avg":
            return tokens[:, self.num_prefix_tokens :].mean(dim=1)
        return tokens[:, 0]

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, (fc_norm), tanh hidden layer if any, dropout and the classifier."""
        if not isinstance(features, Tensor) or features.dim() != 3 or features.shape[-1] != self.embed_dim:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be tokens [batch, tokens, {self.embed_dim}], got {got}")
        x = self.pre_logits(self.fc_norm(self.pool(features)))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        """Patch tokens as a ``[B, D, H/P, W/P]`` map, keyed by the stride ``P``."""
        grid = self._check_input(x)
        tokens = self.forward_features(x)[:, self.num_prefix_tokens :]
        return {self.patch_size: tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, *grid)}

    def reset_classifier(self, num_classes: int, representation_size: int | None = None) -> None:
        """A new zero-initialised linear head (fine-tuning, Section 3.1: the MLP head is dropped)."""
        check_int("num_classes", num_classes, minimum=0)
        if representation_size is None:
            self.pre_logits, self.head_in = nn.Identity(), self.embed_dim
        else:
            check_int("representation_size", representation_size)
            self.pre_logits = nn.Sequential()
            self.pre_logits.add_module("fc", nn.Linear(self.embed_dim, representation_size))
            self.pre_logits.add_module("act", nn.Tanh())
            self.head_in = representation_size
        device = self.pos_embed.device
        self.head = nn.Linear(self.head_in, num_classes).to(device) if num_classes else nn.Identity()
        if num_classes:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.num_classes = num_classes

    # -- released weights ----------------------------------------------------------------------
    @classmethod
    def timm_variant_kwargs(cls, variant: str) -> dict:
        """Constructor arguments of a timm ``vit_<size>_patch<P>_<res>`` or plain
        ``deit_<tiny|small|base>_patch16_<res>`` model (plain DeiT is a ViT, Touvron et al. Section 4)."""
        match = match_timm_variant(
            variant,
            r"vit_(tiny|small|base|large|huge)_patch(\d+)_(\d+)|deit_(tiny|small|base)_patch(16)_(\d+)",
            "ViT",
            "'vit_tiny_patch16_224', 'vit_base_patch16_384' or 'deit_small_patch16_224'",
        )
        size_word, patch, resolution = (g for g in match.groups() if g is not None)
        size = VIT_SIZES[TIMM_SIZE_NAMES[size_word]]
        return {
            "img_size": int(resolution),
            "patch_size": int(patch),
            "embed_dim": size.embed_dim,
            "depth": size.depth,
            "num_heads": size.num_heads,
            "mlp_ratio": size.mlp_dim / size.embed_dim,
        }

    @classmethod
    def from_timm(cls, state_dict_or_file, variant: str, **overrides) -> VisionTransformer:
        """The model of a timm checkpoint in one call: ``VisionTransformer.from_timm(path_or_state_dict,
        "vit_base_patch16_224", num_classes=10)``.

        ``state_dict_or_file``: timm's state dict or a path to its ``.safetensors`` file (nothing is
        unpickled). ``variant``: the timm model name the weights were made with (a pretrained tag
        such as ``.augreg_in21k`` is ignored); ``overrides``: other constructor arguments
        (``img_size`` resamples the position embeddings, Section 3.2; ``num_classes`` defaults to the
        checkpoint head's width). Converted by :func:`aicanon.vision.vit_weights.from_timm` and
        loaded by :func:`aicanon.core.state_dict.load_state_dict_strict`. Our parameter names are
        timm's, so ``model.state_dict()`` is the way back (timm's ``load_state_dict`` takes it).
        """
        # Imported here: vit_weights imports this module.
        from aicanon.core.pretrained import read_state_dict
        from aicanon.vision.vit_weights import from_timm

        return build_from_timm(
            cls,
            cls.timm_variant_kwargs(variant),
            overrides,
            read_state_dict(state_dict_or_file),
            lambda model, state: from_timm(state, grid_size=model.grid_size),
            "head.weight",
            variant,
        )


def vit(name: str, **kwargs) -> VisionTransformer:
    """A ViT of a named size, ``vit("B/16", img_size=384, num_classes=10)`` (Table 1; any patch size)."""
    size, patch = parse_vit_name(name)
    for key in ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size"):
        if key in kwargs:
            raise ValueError(
                f"{key} is set by the name {name!r}; build VisionTransformer directly to change it"
            )
    return VisionTransformer(
        patch_size=patch,
        embed_dim=size.embed_dim,
        depth=size.depth,
        num_heads=size.num_heads,
        mlp_ratio=size.mlp_dim / size.embed_dim,
        **kwargs,
    )
