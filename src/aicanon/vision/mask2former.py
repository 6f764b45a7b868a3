"""Mask2Former: masked-attention mask transformer for universal image segmentation.

Cheng, Misra, Schwing, Kirillov, Girdhar, "Masked-attention Mask Transformer for Universal Image
Segmentation", CVPR 2022 (arXiv 2112.01527), Section 3.

Mask classification (Section 3.1): ``N`` learnable queries each predict a class distribution over
``K + 1`` labels (``K`` classes plus "no object" ∅) and a binary mask, the dot product of the query's
mask embedding with the per-pixel embeddings ``E_pixel`` (from the pixel decoder,
:class:`aicanon.vision.pixel_decoder.MSDeformAttnPixelDecoder`).

Masked attention (Section 3.2.1). Standard cross-attention with a residual path is::

    X_l = softmax(Q_l K_l^T) V_l + X_{l-1}                                                      (1)

Masked attention adds a mask ``M_{l-1}`` to the logits::

    X_l = softmax(M_{l-1} + Q_l K_l^T) V_l + X_{l-1}                                            (2)
    M_{l-1}(x, y) = 0 if M_{l-1}(x, y) = 1, -∞ otherwise                                         (3)

where ``M_{l-1}`` is the binarised (sigmoid ≥ 0.5) mask prediction of the previous decoder layer,
resized to the resolution of ``K_l`` (bilinear), and ``M_0`` is predicted from the learnable query
features before the first layer. A query whose mask is empty everywhere attends to the whole map
(the released code's fallback, so the softmax never sees an all ``-∞`` row).

Decoder (Section 3.2.2-3.2.3): the 1/32, 1/16, 1/8 pixel-decoder features feed the layers round robin
(layer ``l`` reads level ``l mod 3``, each with sine positional and learnable scale embeddings); each
layer is masked cross-attention -> self-attention -> FFN (the order change), post-norm, with
learnable query features ``X_0`` and learnable query positional embeddings. A shared LayerNorm and
the class / mask heads read every layer's output (deep supervision, Section 3.3).

Public API
----------
* :class:`MaskedAttentionDecoderLayer`, :class:`MaskedTransformerDecoder`;
* :class:`Mask2Former` (backbone + pixel decoder + decoder; ``decode(features)`` from backbone maps);
* :class:`ConvBackbone` (a small 4-stage CNN giving strides 4-32, for experiments without Swin/ResNet);
* :func:`from_transformers` (state-dict converter from ``Mask2FormerForUniversalSegmentation``).

Departures
----------
* ``num_layers`` counts the decoder layers we run; ``transformers`` builds ``decoder_layers - 1``
  (``config.decoder_layers = 10`` gives the paper's 9), so its config maps to ``num_layers =
  decoder_layers - 1``.
* ``masked_attention=False`` gives the standard cross-attention of Eq. 1 (the Table 4a ablation);
  nothing else changes.
* Dropout is 0 (the paper's value) and is not exposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.vision.pixel_decoder import MSDeformAttnPixelDecoder, sine_position_embedding

__all__ = [
    "ConvBackbone",
    "Mask2Former",
    "Mask2FormerOutput",
    "MaskedAttentionDecoderLayer",
    "MaskedTransformerDecoder",
    "attention_mask_from_logits",
    "from_transformers",
]


@dataclass
class Mask2FormerOutput:
    """Predictions of every decoder stage (index 0: before the first layer; -1: the final one).

    ``class_logits[i]`` ``[B, N, K + 1]``; ``mask_logits[i]`` ``[B, N, H/4, W/4]``.
    """

    class_logits: list[Tensor]
    mask_logits: list[Tensor]

    @property
    def pred_logits(self) -> Tensor:
        return self.class_logits[-1]

    @property
    def pred_masks(self) -> Tensor:
        return self.mask_logits[-1]


def attention_mask_from_logits(mask_logits: Tensor, size: tuple[int, int], num_heads: int) -> Tensor:
    """Eq. 3: ``True`` where a query may *not* attend, ``[B * num_heads, N, h * w]``.

    The mask logits are resized to the keys' resolution (bilinear), binarised at sigmoid 0.5, and a
    query whose mask is empty everywhere gets an all-``False`` row (attends everywhere).
    """
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    blocked = (resized.sigmoid().flatten(2) < 0.5).detach()
    blocked = blocked & ~blocked.all(-1, keepdim=True)
    return blocked.repeat_interleave(num_heads, dim=0)


class MaskedAttentionDecoderLayer(nn.Module):
    """Masked cross-attention -> self-attention -> FFN, each post-norm with a residual (Section 3.2.3)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.cross_attn_layer_norm = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self, x: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor, blocked: Tensor | None
    ) -> Tensor:
        attended = self.cross_attn(
            x + query_pos, memory + memory_pos, memory, attn_mask=blocked, need_weights=False
        )[0]
        x = self.cross_attn_layer_norm(x + attended)
        q = x + query_pos
        x = self.self_attn_layer_norm(x + self.self_attn(q, q, x, need_weights=False)[0])
        return self.final_layer_norm(x + self.fc2(F.relu(self.fc1(x))))


class MaskedTransformerDecoder(nn.Module):
    """The transformer decoder of Section 3.2 with class and mask heads (see the module docstring)."""

    num_levels = 3

    def __init__(
        self,
        num_classes: int,
        in_dim: int = 256,
        dim: int = 256,
        mask_dim: int = 256,
        num_queries: int = 100,
        num_heads: int = 8,
        num_layers: int = 9,
        ffn_dim: int = 2048,
        masked_attention: bool = True,
        enforce_input_projection: bool = False,
    ) -> None:
        super().__init__()
        check_int("num_classes", num_classes)
        check_int("num_queries", num_queries)
        check_int("num_layers", num_layers, minimum=0)
        if dim % num_heads:
            raise ValueError(f"dim must be divisible by num_heads, got dim={dim}, num_heads={num_heads}")
        self.dim, self.num_heads, self.masked_attention = dim, num_heads, bool(masked_attention)
        self.queries_embedder = nn.Embedding(num_queries, dim)  # positional embeddings of the queries
        self.queries_features = nn.Embedding(num_queries, dim)  # learnable X_0 (Section 3.2.3)
        self.input_projections = nn.ModuleList(
            nn.Conv2d(in_dim, dim, 1) if (in_dim != dim or enforce_input_projection) else nn.Identity()
            for _ in range(self.num_levels)
        )
        self.level_embed = nn.Embedding(self.num_levels, dim)
        self.layers = nn.ModuleList(
            MaskedAttentionDecoderLayer(dim, num_heads, ffn_dim) for _ in range(num_layers)
        )
        self.layernorm = nn.LayerNorm(dim)
        self.mask_embedder = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, mask_dim)
        )
        self.class_predictor = nn.Linear(dim, num_classes + 1)

    def _heads(self, x: Tensor, mask_features: Tensor) -> tuple[Tensor, Tensor]:
        normed = self.layernorm(x)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embedder(normed), mask_features)
        return self.class_predictor(normed), masks

    def forward(self, multi_scale_features: Sequence[Tensor], mask_features: Tensor) -> Mask2FormerOutput:
        if len(multi_scale_features) != self.num_levels:
            raise ValueError(f"multi_scale_features must hold 3 maps, got {len(multi_scale_features)}")
        memories, positions, sizes = [], [], []
        batch = mask_features.shape[0]
        for i, feature in enumerate(multi_scale_features):
            h, w = int(feature.shape[-2]), int(feature.shape[-1])
            sizes.append((h, w))
            pos = sine_position_embedding(batch, h, w, self.dim // 2, feature.device, feature.dtype)
            positions.append(pos.flatten(2).transpose(1, 2))
            memory = self.input_projections[i](feature).flatten(2) + self.level_embed.weight[i][None, :, None]
            memories.append(memory.transpose(1, 2))
        query_pos = self.queries_embedder.weight.unsqueeze(0).expand(batch, -1, -1)
        x = self.queries_features.weight.unsqueeze(0).expand(batch, -1, -1)
        logits, masks = self._heads(x, mask_features)
        class_logits, mask_logits = [logits], [masks]
        for index, layer in enumerate(self.layers):
            level = index % self.num_levels  # round robin over 1/32, 1/16, 1/8 (Section 3.2.2)
            blocked = (
                attention_mask_from_logits(masks, sizes[level], self.num_heads)
                if self.masked_attention
                else None
            )
            x = layer(x, query_pos, memories[level], positions[level], blocked)
            logits, masks = self._heads(x, mask_features)
            class_logits.append(logits)
            mask_logits.append(masks)
        return Mask2FormerOutput(class_logits, mask_logits)


class ConvBackbone(nn.Module):
    """Four stride-2 stages of (3x3 conv, GroupNorm, ReLU) x 2 after a stride-2 stem: strides 4, 8, 16, 32.

    Not from the paper (which uses ResNet/Swin): a small CNN for CPU-sized experiments.
    """

    def __init__(
        self, in_channels: int = 1, widths: Sequence[int] = (32, 64, 96, 128), groups: int = 8
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths must list 4 stage widths, got {list(widths)}")
        self.channels = tuple(int(w) for w in widths)

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.GroupNorm(groups, c_out),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.GroupNorm(groups, c_out),
                nn.ReLU(),
            )

        self.stem = block(in_channels, self.channels[0])
        self.stages = nn.ModuleList(
            [block(self.channels[0], self.channels[0])]
            + [block(self.channels[i - 1], self.channels[i]) for i in range(1, 4)]
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class Mask2Former(nn.Module):
    """Backbone -> :class:`MSDeformAttnPixelDecoder` -> :class:`MaskedTransformerDecoder`.

    ``backbone`` maps images ``[B, C, H, W]`` to 4 features at strides 4, 8, 16, 32 with
    ``backbone_channels`` channels (``None``: use :meth:`decode` with precomputed features).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: nn.Module | None,
        backbone_channels: Sequence[int],
        dim: int = 256,
        mask_dim: int = 256,
        num_queries: int = 100,
        num_heads: int = 8,
        decoder_layers: int = 9,
        decoder_ffn_dim: int = 2048,
        encoder_layers: int = 6,
        encoder_ffn_dim: int = 1024,
        norm_groups: int = 32,
        masked_attention: bool = True,
        enforce_input_projection: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            backbone_channels,
            dim=dim,
            mask_dim=mask_dim,
            num_heads=num_heads,
            num_layers=encoder_layers,
            ffn_dim=encoder_ffn_dim,
            norm_groups=norm_groups,
        )
        self.decoder = MaskedTransformerDecoder(
            num_classes,
            in_dim=dim,
            dim=dim,
            mask_dim=mask_dim,
            num_queries=num_queries,
            num_heads=num_heads,
            num_layers=decoder_layers,
            ffn_dim=decoder_ffn_dim,
            masked_attention=masked_attention,
            enforce_input_projection=enforce_input_projection,
        )

    def decode(self, features: Sequence[Tensor]) -> Mask2FormerOutput:
        mask_features, multi_scale = self.pixel_decoder(features)
        return self.decoder(multi_scale, mask_features)

    def forward(self, images: Tensor) -> Mask2FormerOutput:
        if self.backbone is None:
            raise ValueError("this Mask2Former has no backbone: call decode(features) with backbone features")
        if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
            got = (
                f"{images.dtype} {tuple(images.shape)}"
                if isinstance(images, Tensor)
                else type(images).__name__
            )
            raise ValueError(f"images must be a float tensor [B, C, H, W], got {got}")
        return self.decode(self.backbone(images))


def _merge_qkv(source: Mapping[str, Tensor], prefix: str, kind: str) -> Tensor:
    return torch.cat([source[f"{prefix}{name}_proj.{kind}"] for name in ("q", "k", "v")], 0)


def from_transformers(state_dict: Mapping[str, Tensor], include_backbone: bool = False) -> dict[str, Tensor]:
    """Map ``Mask2FormerForUniversalSegmentation``'s state dict to :class:`Mask2Former`'s.

    The backbone is left out unless ``include_backbone`` (its keys then stay under ``backbone.`` as
    ``transformers`` names them, for a backbone built with the same layout).
    """
    out: dict[str, Tensor] = {}
    pixel = "model.pixel_level_module.decoder."
    transformer = "model.transformer_module."
    for key, value in state_dict.items():
        if key.startswith("model.pixel_level_module.encoder."):
            if include_backbone:
                out["backbone." + key[len("model.pixel_level_module.encoder.") :]] = value
        elif key.startswith(pixel + "encoder.layers."):
            out["pixel_decoder.layers." + key[len(pixel + "encoder.layers.") :]] = value
        elif key.startswith(pixel + "adapter_1."):
            out["pixel_decoder.lateral_convs.0." + key[len(pixel + "adapter_1.") :]] = value
        elif key.startswith(pixel + "layer_1."):
            out["pixel_decoder.output_convs.0." + key[len(pixel + "layer_1.") :]] = value
        elif key.startswith(pixel):
            out["pixel_decoder." + key[len(pixel) :]] = value
        elif key.startswith(transformer + "decoder.layers."):
            rest = key[len(transformer + "decoder.layers.") :]
            index, name = rest.split(".", 1)
            target = f"decoder.layers.{index}."
            if name.startswith("self_attn.out_proj"):
                out[target + name] = value
            elif name.startswith("self_attn.q_proj."):
                kind = name.rsplit(".", 1)[1]
                src = f"{transformer}decoder.layers.{index}.self_attn."
                out[target + f"self_attn.in_proj_{kind}"] = _merge_qkv(state_dict, src, kind)
            elif name.startswith(("self_attn.k_proj.", "self_attn.v_proj.")):
                continue
            else:
                out[target + name] = value
        elif key.startswith(transformer + "decoder.layernorm."):
            out["decoder.layernorm." + key[len(transformer + "decoder.layernorm.") :]] = value
        elif key.startswith(transformer + "decoder.mask_predictor.mask_embedder."):
            rest = key[len(transformer + "decoder.mask_predictor.mask_embedder.") :]
            index, _, kind = rest.split(".")
            out[f"decoder.mask_embedder.{2 * int(index)}.{kind}"] = value
        elif key.startswith(transformer):
            out["decoder." + key[len(transformer) :]] = value
        elif key.startswith("class_predictor."):
            out["decoder." + key] = value
        # criterion buffers (empty_weight) carry no model weights
    return out
