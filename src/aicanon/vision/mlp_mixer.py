"""MLP-Mixer (Tolstikhin et al. 2021): an all-MLP vision architecture.

Patches are projected to a table ``X`` of ``S`` tokens by ``C`` channels (the "per-patch fully
connected" stem, as ViT's Eq. 1 without class token or position embeddings). Each Mixer layer
applies a token-mixing MLP to the columns of ``X`` (shared across channels) and a channel-mixing
MLP to its rows (shared across tokens), each with a pre-LayerNorm and a skip connection (Section 2)::

    U_{*,i} = X_{*,i} + W_2 sigma(W_1 LayerNorm(X)_{*,i}),   i = 1 ... C      (1, token mixing)
    Y_{j,*} = U_{j,*} + W_4 sigma(W_3 LayerNorm(U)_{j,*}),   j = 1 ... S      (1, channel mixing)

with ``sigma`` the GELU and hidden widths ``D_S`` (tokens) and ``D_C`` (channels). The head is a
LayerNorm, global average pooling over tokens and a linear classifier. Sizes (Table 1) are in
:data:`MIXER_SIZES`: S, B, L, H with ``D_S = C / 2`` and ``D_C = 4 C``; "Mixer-B/16" is size B with
16x16 patches.

Parameter names are timm's (``stem.proj, blocks.<i>.norm1, mlp_tokens.fc1/fc2, norm2,
mlp_channels.fc1/fc2, norm, head``), so timm ``mixer_*`` state dicts load unchanged:
``load_state_dict_strict(model, from_timm(state_dict))``
(:func:`aicanon.core.state_dict.load_state_dict_strict`).

Departures from the paper, and why:

* Initialisation is timm's JAX-like one (Xavier-uniform linears with biases normal std 1e-6 in the
  MLPs, LeCun-normal stem, zero head), which the paper leaves to its code.
* Stochastic depth (``drop_path_rate``) is available; the paper uses it only for some pre-training runs.
* The token-mixing MLP is tied to the number of patches, so the input resolution is fixed at
  construction (as in the paper); other sizes are rejected with a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.core.state_dict import check_state_dict
from aicanon.nn.patch_embed import PatchEmbed
from aicanon.nn.transformer import DropPath, Mlp
from aicanon.vision.backbone import Backbone, build_from_timm, check_images, match_timm_variant

__all__ = ["MIXER_SIZES", "MixerBlock", "MixerSize", "MlpMixer", "from_timm", "mixer"]


@dataclass(frozen=True)
class MixerSize:
    """Hidden size ``C``, layers, token-mixing width ``D_S`` and channel-mixing width ``D_C`` (Table 1)."""

    hidden_dim: int
    depth: int
    tokens_mlp_dim: int
    channels_mlp_dim: int


MIXER_SIZES: dict[str, MixerSize] = {
    "S": MixerSize(512, 8, 256, 2048),
    "B": MixerSize(768, 12, 384, 3072),
    "L": MixerSize(1024, 24, 512, 4096),
    "H": MixerSize(1280, 32, 640, 5120),
}


class MixerBlock(nn.Module):
    """One Mixer layer (Eq. 1): token mixing across patches, then channel mixing per patch."""

    def __init__(
        self, dim: int, seq_len: int, tokens_dim: int, channels_dim: int, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        check_int("seq_len", seq_len)
        self.seq_len = seq_len
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(seq_len, tokens_dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, channels_dim)

    def forward(self, x: Tensor) -> Tensor:
        # Token mixing acts on the columns of X: transpose to [B, C, S] so the MLP runs over tokens.
        x = x + self.drop_path(self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.mlp_channels(self.norm2(x)))


class MlpMixer(Backbone):
    """MLP-Mixer: per-patch linear stem, ``depth`` Mixer layers, LayerNorm, average pool, linear head."""

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        hidden_dim: int = 512,
        depth: int = 8,
        tokens_mlp_dim: int = 256,
        channels_mlp_dim: int = 2048,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(img_size, int) and not isinstance(img_size, bool):
            img_size = (img_size, img_size)
        if not isinstance(img_size, Sequence) or len(img_size) != 2:
            raise TypeError(f"img_size must be an int or a pair of ints, got {img_size!r}")
        self.img_size = (check_int("img_size", img_size[0]), check_int("img_size", img_size[1]))
        self.patch_size = check_int("patch_size", patch_size)
        if self.img_size[0] % patch_size or self.img_size[1] % patch_size:
            raise ValueError(f"img_size must be a multiple of patch_size={patch_size}, got {self.img_size}")
        self.in_chans = check_int("in_chans", in_chans)
        check_int("num_classes", num_classes, minimum=0)
        check_int("depth", depth)
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        seq_len = self.grid_size[0] * self.grid_size[1]
        self.stem = PatchEmbed(patch_size, in_chans, hidden_dim)
        rates = [drop_path_rate * i / max(1, depth - 1) for i in range(depth)]  # torch.linspace, meta-safe
        self.blocks = nn.Sequential(
            *[
                MixerBlock(hidden_dim, seq_len, tokens_mlp_dim, channels_mlp_dim, rates[i])
                for i in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.num_features = hidden_dim
        self.feature_strides = (patch_size,)
        self.feature_channels = {patch_size: hidden_dim}
        self.head = nn.Linear(hidden_dim, num_classes) if num_classes else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.normal_(module.bias, std=1e-6)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        proj = self.stem.proj
        std = math.sqrt(1.0 / proj.weight[0].numel()) / 0.87962566103423978  # truncated LeCun normal
        nn.init.trunc_normal_(proj.weight, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(proj.bias)
        if isinstance(self.head, nn.Linear):
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _check_input(self, x: Tensor) -> None:
        check_images(x, self.in_chans)
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"x must be {self.img_size[0]}x{self.img_size[1]} images (the token-mixing MLP is sized for "
                f"{self.grid_size[0] * self.grid_size[1]} patches), got {x.shape[-2]}x{x.shape[-1]}"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens ``[B, S, C]`` after the last Mixer layer and the final LayerNorm."""
        self._check_input(x)
        return self.norm(self.blocks(self.stem(x)))

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        if not isinstance(features, Tensor) or features.dim() != 3 or features.shape[-1] != self.num_features:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be tokens [batch, tokens, {self.num_features}], got {got}")
        pooled = features.mean(dim=1)  # global average pooling (Section 2)
        return pooled if pre_logits else self.head(pooled)

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        tokens = self.forward_features(x)
        return {
            self.patch_size: tokens.transpose(1, 2).reshape(x.shape[0], self.num_features, *self.grid_size)
        }

    def reset_classifier(self, num_classes: int) -> None:
        check_int("num_classes", num_classes, minimum=0)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if num_classes:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    # -- released weights ----------------------------------------------------------------------
    @classmethod
    def timm_variant_kwargs(cls, variant: str) -> dict:
        """Constructor arguments of a timm ``mixer_<s|b|l><patch>_<res>`` model (``mixer_b16_224``)."""
        match = match_timm_variant(
            variant, r"mixer_(s|b|l)(\d+)_(\d+)", "MLP-Mixer", "'mixer_b16_224' or 'mixer_s32_224'"
        )
        spec = MIXER_SIZES[match.group(1).upper()]
        return {
            "img_size": int(match.group(3)),
            "patch_size": int(match.group(2)),
            "hidden_dim": spec.hidden_dim,
            "depth": spec.depth,
            "tokens_mlp_dim": spec.tokens_mlp_dim,
            "channels_mlp_dim": spec.channels_mlp_dim,
        }

    @classmethod
    def from_timm(cls, state_dict_or_file, variant: str, **overrides) -> MlpMixer:
        """The model of a timm checkpoint in one call: ``MlpMixer.from_timm(path_or_state_dict,
        "mixer_b16_224", num_classes=10)``.

        ``state_dict_or_file``: timm's state dict or a path to its ``.safetensors`` file; ``variant``:
        the timm model name (a pretrained tag after ``.`` is ignored); ``overrides``: other
        constructor arguments (``num_classes`` defaults to the checkpoint head's width; another
        ``img_size`` changes the token-mixing MLPs' shapes and is refused by the strict loader, as
        the paper's token mixing is tied to the sequence length). The names are timm's, so
        ``model.state_dict()`` is the way back.
        """
        from aicanon.core.pretrained import read_state_dict

        return build_from_timm(
            cls,
            cls.timm_variant_kwargs(variant),
            overrides,
            read_state_dict(state_dict_or_file),
            lambda model, state: from_timm(state),
            "head.weight",
            variant,
        )


def from_timm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict from a timm ``mixer_*`` one: the names are ours."""
    return check_state_dict(state_dict)


def mixer(name: str, **kwargs) -> MlpMixer:
    """A Mixer of a named size and patch, ``mixer("B/16", num_classes=10)`` (Table 1)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'B/16', got {type(name).__name__}")
    size, _, patch = name.removeprefix("Mixer-").partition("/")
    if size not in MIXER_SIZES or not patch.isdigit() or int(patch) < 1:
        raise ValueError(
            f"name must be '<size>/<patch>' with size one of {sorted(MIXER_SIZES)} and a positive patch, got {name!r}"
        )
    spec = MIXER_SIZES[size]
    return MlpMixer(
        patch_size=int(patch),
        hidden_dim=spec.hidden_dim,
        depth=spec.depth,
        tokens_mlp_dim=spec.tokens_mlp_dim,
        channels_mlp_dim=spec.channels_mlp_dim,
        **kwargs,
    )
