"""DETR: end-to-end object detection with transformers (Carion et al., ECCV 2020, arXiv:2005.12872).

The detection family of "Transformers in Vision: A Survey" (Khan et al. 2021, Section 3.2.1). A CNN
backbone gives a feature map ``f ∈ R^{C x H x W}``; a 1x1 convolution reduces it to ``d`` channels,
flattened to ``HW`` tokens; a transformer encoder-decoder turns ``N`` learned *object queries* into
``N`` output embeddings, each decoded independently by feed-forward heads into a class (``K`` object
classes plus the "no object" class ∅) and a box (Section 3.2, Fig. 2)::

    z_0 = Conv1x1(backbone(x)).flatten()                         tokens [HW, d]
    encoder layer (post-norm, Section 3.2 / Appendix A.3):
        z = LN(z + SelfAttn(q = k = z + P, v = z))               P: 2-D sine positional encoding
        z = LN(z + FFN(z))
    decoder layer, object queries Q (learned, "output positional encodings"), h_0 = 0:
        h = LN(h + SelfAttn(q = k = h + Q, v = h))
        h = LN(h + CrossAttn(q = h + Q, k = z + P, v = z))
        h = LN(h + FFN(h))
    p̂(c) = softmax(Linear(LN_dec(h)))                           K + 1 classes (∅ last)
    b̂ = sigmoid(MLP_3(LN_dec(h)))                               (cx, cy, w, h) in [0, 1]

The positional encoding is the paper's 2-D generalisation of the sinusoidal one (Appendix A.4):
``d/2`` channels encode the row, ``d/2`` the column, each with ``sin/cos(pos / T^{2i/(d/2)})`` of
the position normalised to ``[0, 2π]`` (``normalize=True``, the setting of the released models).
Positional encodings are added to queries and keys at *every* attention layer, as the paper does
(Appendix A.3: "passing at attention" rather than only at the input). With auxiliary decoding
losses (Section 3.2) the class and box heads (shared) are applied to every decoder layer's output,
after the decoder's shared final LayerNorm.

The set loss and the Hungarian matching (Eq. 1-2) live in :mod:`aicanon.vision.detr_loss`.

Public API
----------
* :class:`SinePositionEmbedding` (DETR's ``PositionEmbeddingSine``);
* :class:`DetrEncoderLayer`, :class:`DetrDecoderLayer`, :class:`DetrAttention`;
* :class:`SmallResNet`: a small ResNet-like :class:`~aicanon.vision.backbone.Backbone` for CPU runs;
* :class:`Detr` (any ``Backbone``; uses its ``feature_maps`` at the last stride), returning
  :class:`DetrOutput` (``logits [B, N, K+1]``, ``boxes [B, N, 4]``, ``aux``: the earlier layers');
* :func:`from_transformers`: the transformer part and heads of a
  ``transformers.DetrForObjectDetection`` state dict, renamed for :class:`Detr`; load it with
  ``load_state_dict_strict(model, from_transformers(state_dict), allow_missing=("backbone.",))``
  (:func:`aicanon.core.state_dict.load_state_dict_strict`), which keeps your backbone's weights;
  :func:`to_transformers` the way back;
* :meth:`Detr.from_pretrained` / :meth:`Detr.save_pretrained` (:func:`load_pretrained`,
  :func:`save_pretrained`): a transformers ``DetrForObjectDetection`` folder (``config.json`` and
  safetensors) read into a :class:`Detr` on *your* backbone, and written back. Only the detector
  (input projection, transformer, queries, heads) travels; the checkpoint's ResNet is never loaded.

Departures from the paper, and why
----------------------------------
* **Backbone.** The paper uses an ImageNet-pretrained ResNet-50/101 with frozen BatchNorm. Any
  :class:`Backbone` plugs in here; the CPU experiment uses :class:`SmallResNet` (three stages,
  stride 8, ordinary BatchNorm, trained from scratch) because a ResNet-50 on 2 CPU cores in a
  minute is out of reach and the synthetic digits need no pretraining.
* **No padding masks.** The paper batches images of different sizes with a pixel mask that the
  attention and the positional encoding respect. Every image in a batch here has one size, so the
  mask is all ones and is left out (the positional encoding is then exactly the paper's with a full
  mask: a cumulative sum of ones is ``1..H``).
* **Decoder norm between layers.** As the original code, the shared decoder LayerNorm is applied
  to each layer's output only for the heads; the next layer reads the un-normalised output.
  (``transformers`` feeds the normalised output onward when ``auxiliary_loss=True``; its forward
  pass equals ours with ``auxiliary_loss=False``, which the parity test uses.)
* Attention uses ``torch.nn.functional.scaled_dot_product_attention`` (same function as the
  paper's multi-head attention; fused kernels where available).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.core.state_dict import check_state_dict
from aicanon.vision.backbone import Backbone, check_images

__all__ = [
    "Detr",
    "DetrAttention",
    "DetrDecoderLayer",
    "DetrEncoderLayer",
    "DetrOutput",
    "SinePositionEmbedding",
    "SmallResNet",
    "config_from_transformers",
    "config_to_transformers",
    "from_transformers",
    "load_pretrained",
    "save_pretrained",
    "to_transformers",
]


# --------------------------------------------------------------------------- positional encoding
class SinePositionEmbedding(nn.Module):
    """DETR's 2-D sine positional encoding (Appendix A.4), ``[B, 2 * num_features, H, W]``.

    For a row coordinate ``y ∈ {1..H}`` (normalised ``y / (H + eps) * scale`` when ``normalize``)
    and ``i = 0..num_features-1``: channel ``i`` is ``sin(y / T^{2 floor(i/2) / num_features})``
    for even ``i``, ``cos`` of the same for odd ``i``; then the same for the column ``x``. The row
    channels come first. ``num_features = d_model / 2``, ``T = 10000``, ``scale = 2π``.
    """

    def __init__(
        self, num_features: int = 128, temperature: float = 10000.0, normalize: bool = True, scale: float | None = None
    ) -> None:
        super().__init__()
        check_int("num_features", num_features)
        if num_features % 2:
            raise ValueError(f"num_features must be even (sin/cos pairs), got {num_features}")
        if scale is not None and not normalize:
            raise ValueError("scale is only used with normalize=True, got normalize=False and a scale")
        self.num_features = num_features
        self.temperature = float(temperature)
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else float(scale)

    def forward(self, batch: int, height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
        y = torch.arange(1, height + 1, device=device, dtype=dtype).view(1, height, 1).expand(batch, height, width)
        x = torch.arange(1, width + 1, device=device, dtype=dtype).view(1, 1, width).expand(batch, height, width)
        if self.normalize:
            eps = 1e-6  # as the original code: the last row/column maps to just under `scale`
            y = y / (y[:, -1:, :] + eps) * self.scale
            x = x / (x[:, :, -1:] + eps) * self.scale
        i = torch.arange(self.num_features, device=device, dtype=dtype)
        dim_t = self.temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / self.num_features)
        pos_x = x[..., None] / dim_t
        pos_y = y[..., None] / dim_t
        # Interleave sin (even channels) and cos (odd channels).
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- transformer
class DetrAttention(nn.Module):
    """Multi-head attention whose queries and keys may carry added positional encodings (values never do)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        check_int("dim", dim)
        check_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"dim must be divisible by num_heads, got dim={dim}, num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        b, t, d = query.shape
        s = key.shape[1]
        q = self.q_proj(query).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(key).view(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(value).view(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, d))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.dropout(F.relu(self.fc1(x)))))


class DetrEncoderLayer(nn.Module):
    """Post-norm encoder layer; the spatial encoding ``pos`` is added to queries and keys (A.3)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = DetrAttention(dim, num_heads, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.mlp = _FeedForward(dim, ffn_dim, dropout)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        qk = x + pos
        x = self.self_attn_layer_norm(x + self.dropout(self.self_attn(qk, qk, x)))
        return self.final_layer_norm(x + self.mlp(x))


class DetrDecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention among the queries, cross-attention to the encoder memory."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = DetrAttention(dim, num_heads, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.encoder_attn = DetrAttention(dim, num_heads, dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(dim)
        self.mlp = _FeedForward(dim, ffn_dim, dropout)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, query_pos: Tensor, memory: Tensor, pos: Tensor) -> Tensor:
        qk = h + query_pos
        h = self.self_attn_layer_norm(h + self.dropout(self.self_attn(qk, qk, h)))
        h = self.encoder_attn_layer_norm(h + self.dropout(self.encoder_attn(h + query_pos, memory + pos, memory)))
        return self.final_layer_norm(h + self.mlp(h))


class _BoxHead(nn.Module):
    """The 3-layer perceptron with ReLU predicting (cx, cy, w, h) before the sigmoid (Section 3.2)."""

    def __init__(self, dim: int, num_layers: int = 3) -> None:
        super().__init__()
        sizes = [dim] * num_layers + [4]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


# --------------------------------------------------------------------------- output
@dataclass
class DetrOutput:
    """Predictions of the last decoder layer and, in ``aux``, of the earlier ones (first to last)."""

    logits: Tensor
    """``[B, N, K + 1]`` class logits; the last class is "no object"."""
    boxes: Tensor
    """``[B, N, 4]`` boxes ``(cx, cy, w, h)`` normalised to the image, in ``(0, 1)``."""
    aux: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    """``(logits, boxes)`` of decoder layers ``1 .. L-1`` (auxiliary losses); empty when switched off."""


# --------------------------------------------------------------------------- the model
class Detr(nn.Module):
    """DETR on any :class:`Backbone` (its ``feature_maps`` at the last stride feed the transformer).

    ``num_classes`` object classes (the head has ``num_classes + 1`` outputs, ∅ last),
    ``num_queries`` object queries, a ``d_model``-wide post-norm encoder-decoder of
    ``encoder_layers`` and ``decoder_layers`` layers, ``num_heads`` heads, FFN width ``ffn_dim``.
    The paper's setting: ``d_model=256, num_heads=8, 6 + 6 layers, ffn_dim=2048, num_queries=100,
    dropout=0.1``. ``aux_loss`` returns every decoder layer's predictions (Section 3.2).
    """

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        num_queries: int = 100,
        d_model: int = 256,
        num_heads: int = 8,
        encoder_layers: int = 6,
        decoder_layers: int = 6,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        aux_loss: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, Backbone):
            raise TypeError(f"backbone must be an aicanon.vision.backbone.Backbone, got {type(backbone).__name__}")
        if not backbone.feature_strides:
            raise ValueError("backbone must list its feature_strides (it gives feature_maps by stride), got none")
        for name, value in (
            ("num_classes", num_classes),
            ("num_queries", num_queries),
            ("d_model", d_model),
            ("num_heads", num_heads),
            ("encoder_layers", encoder_layers),
            ("decoder_layers", decoder_layers),
            ("ffn_dim", ffn_dim),
        ):
            check_int(name, value)
        if d_model % 4:
            raise ValueError(f"d_model must be a multiple of 4 (sin/cos of rows and columns), got {d_model}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.backbone = backbone
        self.stride = max(backbone.feature_strides)
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.d_model = d_model
        self.aux_loss = aux_loss
        self.input_projection = nn.Conv2d(backbone.feature_channels[self.stride], d_model, kernel_size=1)
        self.position_embedding = SinePositionEmbedding(d_model // 2, normalize=True)
        self.query_embed = nn.Embedding(num_queries, d_model)
        self.encoder_layers = nn.ModuleList(
            DetrEncoderLayer(d_model, num_heads, ffn_dim, dropout) for _ in range(encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DetrDecoderLayer(d_model, num_heads, ffn_dim, dropout) for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.class_head = nn.Linear(d_model, num_classes + 1)
        self.box_head = _BoxHead(d_model, 3)
        self._init_transformer()

    def _init_transformer(self) -> None:
        # The original code initialises the transformer's matrices with Xavier-uniform (models/transformer.py).
        for module in (*self.encoder_layers, *self.decoder_layers):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def forward(self, images: Tensor) -> DetrOutput:
        """``images [B, C, H, W]`` (C the backbone's input channels) -> :class:`DetrOutput`."""
        channels = getattr(self.backbone, "in_channels", None)
        if channels is not None:
            check_images(images, channels, name="images")
        elif not isinstance(images, Tensor) or images.dim() != 4:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be [batch, channels, height, width], got {got}")
        feature_map = self.backbone.feature_maps(images)[self.stride]
        return self.forward_feature_map(feature_map)

    def forward_feature_map(self, feature_map: Tensor) -> DetrOutput:
        """The detector from the backbone's last feature map ``[B, C_backbone, h, w]`` on."""
        expected = self.input_projection.in_channels
        if not isinstance(feature_map, Tensor) or feature_map.dim() != 4 or feature_map.shape[1] != expected:
            got = tuple(feature_map.shape) if isinstance(feature_map, Tensor) else type(feature_map).__name__
            raise ValueError(f"feature_map must be [batch, {expected}, h, w], got {got}")
        tokens = self.input_projection(feature_map)
        b, _, h, w = tokens.shape
        return self.forward_tokens(tokens.flatten(2).transpose(1, 2), h, w)

    def forward_tokens(self, tokens: Tensor, height: int, width: int) -> DetrOutput:
        """The transformer and heads from projected tokens ``[B, height * width, d_model]`` (row-major)."""
        if (
            not isinstance(tokens, Tensor)
            or tokens.dim() != 3
            or tokens.shape[1] != height * width
            or tokens.shape[2] != self.d_model
        ):
            got = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be [batch, {height}*{width}, {self.d_model}], got {got}")
        b = tokens.shape[0]
        pos = self.position_embedding(b, height, width, tokens.device, tokens.dtype).flatten(2).transpose(1, 2)
        memory = tokens
        for layer in self.encoder_layers:
            memory = layer(memory, pos)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(b, -1, -1)
        h = torch.zeros_like(query_pos)  # the decoder's input is zero; the queries enter as positions (A.3)
        outputs = []
        for i, layer in enumerate(self.decoder_layers):
            h = layer(h, query_pos, memory, pos)
            if self.aux_loss or i == len(self.decoder_layers) - 1:
                outputs.append(self.decoder_norm(h))
        stacked = torch.stack(outputs)
        logits = self.class_head(stacked)
        boxes = self.box_head(stacked).sigmoid()
        aux = [(logits[i], boxes[i]) for i in range(len(outputs) - 1)]
        return DetrOutput(logits=logits[-1], boxes=boxes[-1], aux=aux)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, backbone: Backbone, *, aux_loss: bool = True) -> Detr:
        """The detector of a transformers ``DetrForObjectDetection`` folder on *your* ``backbone``;
        the checkpoint's own backbone (ResNet-50) weights are **not** loaded. See :func:`load_pretrained`."""
        return load_pretrained(path, backbone, aux_loss=aux_loss)

    def save_pretrained(self, path: str | os.PathLike, *, backbone_config: Mapping[str, Any] | None = None) -> None:
        """Write the detector as a folder transformers loads; transformers builds its *own* backbone
        (random weights) from ``config.json``. See :func:`save_pretrained`."""
        save_pretrained(self, path, backbone_config=backbone_config)


# --------------------------------------------------------------------------- a small backbone
class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(Backbone):
    """A ResNet-like CNN (He et al. 2016's basic blocks), one block per stage, each stage halving.

    ``widths`` are the stage widths; the 3x3 stem convolution has stride ``stem_stride`` and stage
    ``i`` has stride ``stem_stride * 2^(i+1)``, so three stages after a stride-1 stem (or two after
    a stride-2 stem) end at stride 8. Stands in for DETR's ResNet-50 on CPU.
    """

    def __init__(
        self, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128), num_classes: int = 0, stem_stride: int = 1
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("stem_stride", stem_stride)
        if not isinstance(widths, (tuple, list)) or not widths:
            raise ValueError(f"widths must be a non-empty tuple of positive ints, got {widths!r}")
        for i, w in enumerate(widths):
            check_int(f"widths[{i}]", w)
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stem_stride, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        c_prev = widths[0]
        self.stages = nn.ModuleList()
        for w in widths:
            self.stages.append(_BasicBlock(c_prev, w, stride=2))
            c_prev = w
        self.feature_strides = tuple(stem_stride * 2 ** (i + 1) for i in range(len(widths)))
        self.feature_channels = dict(zip(self.feature_strides, widths))
        self.num_features = widths[-1]
        self.head: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)

    def feature_maps(self, x: Tensor) -> dict[int, Tensor]:
        check_images(x, self.in_channels, multiple_of=self.feature_strides[-1])
        out = {}
        x = self.stem(x)
        for stride, stage in zip(self.feature_strides, self.stages):
            x = stage(x)
            out[stride] = x
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        return self.feature_maps(x)[self.feature_strides[-1]]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(features.mean(dim=(2, 3)))

    def reset_classifier(self, num_classes: int) -> None:
        check_int("num_classes", num_classes, 0)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


# --------------------------------------------------------------------------- checkpoint conversion
_RENAMES = (
    ("model.input_projection.", "input_projection."),
    ("model.query_position_embeddings.", "query_embed."),
    ("model.encoder.layers.", "encoder_layers."),
    ("model.decoder.layers.", "decoder_layers."),
    ("model.decoder.layernorm.", "decoder_norm."),
    ("class_labels_classifier.", "class_head."),
    ("bbox_predictor.", "box_head."),
)
# Released checkpoint files (and transformers 4's modules) name the attention output ``out_proj`` and
# the feed-forward layers ``layers.N.fc1``; transformers 5's modules say ``o_proj`` and
# ``layers.N.mlp.fc1`` (ours too) and rename on load and save (its conversion_mapping.py, "DetrModel").
_CHECKPOINT_NAMES = ((r"\.out_proj\.", ".o_proj."), (r"(layers\.\d+)\.fc([12])\.", r"\1.mlp.fc\2."))
_MODULE_NAMES = ((r"\.o_proj\.", ".out_proj."), (r"(layers\.\d+)\.mlp\.fc([12])\.", r"\1.fc\2."))


def _renamed(key: str, patterns: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in patterns:
        key = re.sub(pattern, replacement, key)
    return key


def from_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a ``transformers.DetrForObjectDetection`` state dict's detector part for :class:`Detr`.

    The backbone (``model.backbone.*``) is dropped: its weights belong to whatever
    :class:`Backbone` you use; load the rest with ``load_state_dict_strict(model, ...,
    allow_missing=("backbone.",))``, which checks every other key and shape. Both namings are read:
    transformers 5's modules and the released files' (also transformers 4's modules:
    ``self_attn.out_proj``, ``layers.N.fc1``).
    A key that is neither the backbone's nor the detector's raises ``ValueError`` listing it.
    """
    state_dict = check_state_dict(state_dict)
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.startswith("model.backbone.") or key.startswith("model.position_embedding."):
            continue
        for old, new in _RENAMES:
            if key.startswith(old):
                out[_renamed(new + key[len(old) :], _CHECKPOINT_NAMES)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"state_dict has keys that are not DETR's detector: {sorted(unknown)}")
    return out


def to_transformers(state_dict: Mapping[str, Tensor], layout: str = "checkpoint") -> dict[str, Tensor]:
    """The inverse of :func:`from_transformers`: our :class:`Detr` state dict's detector part in
    ``transformers.DetrForObjectDetection`` names: ``layout="checkpoint"`` those of the released
    files (which transformers 4 and 5 both read from a folder, and transformers 4's modules use),
    ``"modules"`` those of transformers 5's modules (``DetrForObjectDetection.load_state_dict``).
    The backbone (``backbone.*``) is dropped: its layout is whatever :class:`Backbone` you use, not
    transformers' ResNet. A key that is neither the backbone's nor the detector's raises
    ``ValueError`` listing it."""
    if layout not in ("checkpoint", "modules"):
        raise ValueError(f"layout must be 'checkpoint' or 'modules', got {layout!r}")
    state_dict = check_state_dict(state_dict)
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.startswith("backbone."):
            continue
        for theirs, ours in _RENAMES:
            if key.startswith(ours):
                name = theirs + key[len(ours) :]
                out[_renamed(name, _MODULE_NAMES) if layout == "checkpoint" else name] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"state_dict has keys that are not DETR's detector: {sorted(unknown)}")
    return out


# --------------------------------------------------------------------------- transformers folders
_REFERENCE_CLASS = "DetrForObjectDetection"
# Defaults of transformers' DetrConfig, for keys a config.json leaves out (it writes only non-defaults
# in some versions): reading a missing key as its default is what transformers itself does.
_DEFAULTS: dict[str, Any] = {
    "num_queries": 100, "d_model": 256, "encoder_layers": 6, "decoder_layers": 6,
    "encoder_attention_heads": 8, "decoder_attention_heads": 8, "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048, "dropout": 0.1, "num_channels": 3,
}  # fmt: skip
# Options that change what the model computes and that Detr does not build: (key, the one value we
# compute, why). A folder with another value is refused, never loaded into a different function.
_FIXED_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("position_embedding_type", "sine", "Detr has only the paper's 2-D sine encoding (Appendix A.4)"),
    ("activation_function", "relu", "Detr's feed-forward blocks use ReLU, as the paper"),
    (
        "auxiliary_loss",
        False,
        (
            "with auxiliary_loss=True transformers feeds each decoder layer's *normalised* output to the next "
            "layer and normalises the last one twice, a different function from the paper's and ours "
            "(ours returns the auxiliary predictions with aux_loss=True without changing the final ones)"
        ),
    ),
    (
        "dilation",
        False,
        (
            "dilation=True is the DC5 variant whose detector was trained on a dilated stride-16 ResNet; "
            "Detr does not build the checkpoint's backbone"
        ),
    ),
    ("encoder_layerdrop", 0.0, "Detr has no LayerDrop"),
    ("decoder_layerdrop", 0.0, "Detr has no LayerDrop"),
)


def _backbone_description(config: Mapping[str, Any]) -> str:
    """The checkpoint's backbone in words, for messages: a ``backbone_config`` or the older
    ``backbone``/``use_timm_backbone`` keys."""
    sub = config.get("backbone_config")
    if isinstance(sub, Mapping):
        name = sub.get("backbone") or sub.get("model_type", "?")
        sizes = sub.get("hidden_sizes")
        return f"{name}" + (f" with stage widths {list(sizes)}" if sizes else "")
    return str(config.get("backbone") or "resnet50")


def config_from_transformers(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`Detr` (all but ``backbone``) from a transformers ``DetrConfig``
    (its ``to_dict()`` or the parsed ``config.json``).

    Raises ``ValueError`` for options that would make the checkpoint compute something Detr does
    not (``_FIXED_OPTIONS``: position_embedding_type other than ``"sine"``, activation_function
    other than ``"relu"``, ``auxiliary_loss=True``, ``dilation=True``, LayerDrop) and for encoder and
    decoder of different widths or head counts (Detr has one ``num_heads`` and one ``ffn_dim``), and
    for an ``architectures`` entry other than ``DetrForObjectDetection``. ``num_classes`` is the
    number of ``id2label`` entries (``num_labels`` when absent). Training-only fields are not read:
    the matching costs and loss coefficients (those of :mod:`aicanon.vision.detr_loss` are set
    there), ``init_std``, and ``attention_dropout``/``activation_dropout``: Detr has one dropout rate,
    ``dropout``, used everywhere (the released models use 0.1, 0.0, 0.0; in eval mode all agree).
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping (DetrConfig.to_dict()), got {type(config).__name__}")
    architectures = config.get("architectures") or [_REFERENCE_CLASS]
    if _REFERENCE_CLASS not in architectures:
        raise ValueError(
            f"config must describe a {_REFERENCE_CLASS} (the detector with class and box heads), got "
            f"architectures={list(architectures)}"
        )
    for key, ours, why in _FIXED_OPTIONS:
        got = config.get(key)
        if got is not None and got != ours:
            raise ValueError(f"config must have {key}={ours!r} to load into Detr, got {got!r}: {why}")
    d = {key: config.get(key, default) for key, default in _DEFAULTS.items()}
    for a, b in (("encoder_attention_heads", "decoder_attention_heads"), ("encoder_ffn_dim", "decoder_ffn_dim")):
        if d[a] != d[b]:
            raise ValueError(
                f"config must have {a} == {b} (Detr's encoder and decoder share one setting), "
                f"got {a}={d[a]}, {b}={d[b]}"
            )
    id2label = config.get("id2label")
    num_classes = len(id2label) if id2label else config.get("num_labels", 2)
    return {
        "num_classes": num_classes,
        "num_queries": d["num_queries"],
        "d_model": d["d_model"],
        "num_heads": d["encoder_attention_heads"],
        "encoder_layers": d["encoder_layers"],
        "decoder_layers": d["decoder_layers"],
        "ffn_dim": d["encoder_ffn_dim"],
        "dropout": d["dropout"],
    }


def _detector_dropout(model: Detr) -> float:
    return model.encoder_layers[0].dropout.p if len(model.encoder_layers) else model.decoder_layers[0].dropout.p


def config_to_transformers(model: Detr, backbone_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` of a transformers ``DetrForObjectDetection`` computing ``model``'s detector.

    ``backbone_config`` (a transformers backbone config as a dict, e.g. ``{"model_type":
    "timm_backbone", "backbone": "resnet50", ...}``) names the backbone transformers will build; by
    default a transformers ``ResNetConfig`` of basic blocks, one per stage, with the stage widths of
    ``model.backbone.feature_channels``, so that its last stage has the channels our input
    projection reads (transformers sizes its input projection from the backbone). That ResNet is not
    our backbone (its stem and strides are ResNet's) and gets random weights.
    """
    if not isinstance(model, Detr):
        raise TypeError(f"model must be a Detr, got {type(model).__name__}")
    channels = [model.backbone.feature_channels[s] for s in sorted(model.backbone.feature_channels)]
    in_channels = getattr(model.backbone, "in_channels", 3)
    if backbone_config is None:
        backbone_config = {
            "model_type": "resnet",
            "num_channels": in_channels,
            "embedding_size": channels[0],
            "hidden_sizes": channels,
            "depths": [1] * len(channels),
            "layer_type": "basic",
            "out_features": [f"stage{len(channels)}"],
        }
    elif not isinstance(backbone_config, Mapping) or "model_type" not in backbone_config:
        raise ValueError(
            f"backbone_config must be a transformers backbone config as a dict with a 'model_type', got {backbone_config!r}"
        )
    encoder = model.encoder_layers[0] if len(model.encoder_layers) else model.decoder_layers[0]
    dropout = _detector_dropout(model)
    return {
        "architectures": [_REFERENCE_CLASS],
        "model_type": "detr",
        "backbone_config": dict(backbone_config),
        "num_channels": in_channels,
        "id2label": {str(i): f"LABEL_{i}" for i in range(model.num_classes)},
        "label2id": {f"LABEL_{i}": i for i in range(model.num_classes)},
        "num_queries": model.num_queries,
        "d_model": model.d_model,
        "encoder_layers": len(model.encoder_layers),
        "decoder_layers": len(model.decoder_layers),
        "encoder_attention_heads": encoder.self_attn.num_heads,
        "decoder_attention_heads": encoder.self_attn.num_heads,
        "encoder_ffn_dim": encoder.mlp.fc1.out_features,
        "decoder_ffn_dim": encoder.mlp.fc1.out_features,
        # One rate everywhere, as Detr applies it (attention weights, after the activation, residuals).
        "dropout": dropout,
        "attention_dropout": dropout,
        "activation_dropout": dropout,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "activation_function": "relu",
        "position_embedding_type": "sine",
        # False: transformers' auxiliary_loss=True changes the final outputs (see _FIXED_OPTIONS).
        "auxiliary_loss": False,
        "dilation": False,
        "is_encoder_decoder": True,
    }


def load_pretrained(path: str | os.PathLike, backbone: Backbone, *, aux_loss: bool = True) -> Detr:
    """A :class:`Detr` on ``backbone`` with the detector of a transformers ``DetrForObjectDetection``
    folder: ``config.json`` and ``model.safetensors`` or index-listed shards
    (:func:`aicanon.core.pretrained.read_transformers_folder`; pickled ``.bin`` folders are refused).

    **The checkpoint's backbone weights (``model.backbone.*``, a ResNet-50 in the released models)
    are not loaded**: ``backbone`` is your module and keeps its own weights. Only the input
    projection, transformer, object queries and heads are loaded (strictly: every key and shape
    checked, :func:`aicanon.core.state_dict.load_state_dict_strict`). Outputs equal transformers'
    only given the same feature map, i.e. with a backbone that computes what the checkpoint's did.

    The config is read by :func:`config_from_transformers` (options Detr does not compute are
    refused there). The backbone must fit the checkpoint, else ``ValueError`` names both sides: its
    last feature map must have the channels the checkpoint's input projection reads (2048 for
    ResNet-50), and a backbone with ``in_channels`` must take the config's ``num_channels``.
    ``aux_loss`` only chooses whether the earlier decoder layers' predictions are returned too; the
    final ones are the same either way. The model is returned in training mode, as any new module
    (dropout on); call ``.eval()`` for inference.
    """
    from aicanon.core.pretrained import read_transformers_folder
    from aicanon.core.state_dict import load_state_dict_strict

    if not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be an aicanon.vision.backbone.Backbone, got {type(backbone).__name__}")
    config, tensors = read_transformers_folder(path, _REFERENCE_CLASS)
    kwargs = config_from_transformers(config)
    described = _backbone_description(config)
    projection = tensors.get("model.input_projection.weight")
    if projection is not None and backbone.feature_strides:
        stride = max(backbone.feature_strides)
        if projection.dim() != 4 or projection.shape[1] != backbone.feature_channels[stride]:
            raise ValueError(
                f"backbone must give the {projection.shape[1] if projection.dim() > 1 else '?'} channels the "
                f"checkpoint's input projection reads (its backbone: {described}), got "
                f"{type(backbone).__name__} with {backbone.feature_channels[stride]} channels at stride {stride}"
            )
    channels = getattr(backbone, "in_channels", None)
    wanted = config.get("num_channels", _DEFAULTS["num_channels"])
    if channels is not None and channels != wanted:
        raise ValueError(
            f"backbone must take the checkpoint's {wanted}-channel images (num_channels; its backbone: "
            f"{described}), got {type(backbone).__name__} with in_channels={channels}"
        )
    model = Detr(backbone, aux_loss=aux_loss, **kwargs)
    load_state_dict_strict(
        model,
        from_transformers(tensors),
        source=f"transformers checkpoint {str(path)!r}",
        allow_missing=("backbone.",),
    )
    return model


def save_pretrained(
    model: Detr, path: str | os.PathLike, *, backbone_config: Mapping[str, Any] | None = None
) -> None:
    """Write ``model``'s detector as a transformers ``DetrForObjectDetection`` folder
    (``config.json`` from :func:`config_to_transformers`, weights as ``model.safetensors`` through
    :func:`aicanon.core.pretrained.write_transformers_folder`).

    **Our backbone's weights are not written**: transformers builds its backbone from
    ``config.json``'s ``backbone_config`` (by default a small ResNet whose last stage has our
    backbone's channels; pass ``backbone_config`` to name another) with its own, random weights, and
    warns that they are missing. The detector then computes what ours does on the same feature
    map. Class names are written as ``LABEL_i``. The detector must hold one floating dtype, and
    the positional encoding must be the paper's (``T = 10000``, normalised, scale 2π), the only
    one transformers builds; ``ValueError`` otherwise.
    """
    from aicanon.core.pretrained import write_transformers_folder

    if not isinstance(model, Detr):
        raise TypeError(f"model must be a Detr, got {type(model).__name__}")
    encoding = model.position_embedding
    if encoding.temperature != 10000.0 or not encoding.normalize or not math.isclose(encoding.scale, 2 * math.pi):
        raise ValueError(
            "model's position_embedding must be the paper's (temperature 10000, normalize=True, scale 2π), "
            "the only one transformers' DETR computes, got "
            f"temperature={encoding.temperature}, normalize={encoding.normalize}, scale={encoding.scale}"
        )
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) != 1:
        raise ValueError(f"model's detector must hold one floating dtype to be saved, got {sorted(map(str, dtypes))}")
    dtype = str(dtypes.pop()).removeprefix("torch.")
    # "dtype" for transformers 5, "torch_dtype" for 4.x.
    config = {**config_to_transformers(model, backbone_config), "dtype": dtype, "torch_dtype": dtype}
    write_transformers_folder(path, config, to_transformers(state))
