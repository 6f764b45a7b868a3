"""Segment Anything, SAM (Kirillov et al., ICCV 2023, arXiv 2304.02643): a promptable segmentation model.

Three parts (Section 3, Figure 4, Appendix A):

* **image encoder** (:class:`aicanon.vision.sam_encoder.SamImageEncoder`): a ViT with windowed and
  global attention and a neck, once per image: ``E = f_img(I)`` of shape ``256 x 64 x 64``.
* **prompt encoder** (:class:`SamPromptEncoder`): sparse prompts become 256-d tokens. A point ``p``
  (pixel coordinates, shifted to the pixel centre) is encoded by random Fourier features
  (Tancik et al. 2020)

      gamma(p) = [sin(2 pi u B), cos(2 pi u B)],  u = 2 p / S - 1 in [-1, 1]^2,  B ~ N(0, 1)^{2 x 128}  (PE)

  plus a learned embedding saying foreground (label 1) or background (label 0); a box is its two
  corners, each with a learned corner embedding. A "padding point" (label -1) carries only the learned
  ``not_a_point`` embedding and is appended to point-only prompts (the original code does so since the
  decoder was trained with box prompts that add a token). A dense mask prompt (``4h x 4w``) is
  downscaled 4x by two stride-2 convolutions (GELU, LayerNorm2d) to 256 channels and added to the
  image embedding; without one a learned ``no_mask`` embedding is added at every location.
* **mask decoder** (:class:`SamMaskDecoder`): output tokens (one IoU token and ``K + 1 = 4`` mask
  tokens: the single-mask token and the 3 multi-mask tokens) are concatenated with the prompt tokens and
  run through a two-layer *two-way* transformer: each layer does (1) self-attention of the tokens,
  (2) cross-attention tokens -> image, (3) an MLP on the tokens, (4) cross-attention image -> tokens;
  positional encodings (the same Fourier features over the image grid, and the prompt tokens for the
  tokens) are re-added to queries and keys at every attention. After a final token -> image attention,
  the image embedding is upsampled 4x by two transposed convolutions and each mask token, through its
  own 3-layer MLP (a hypernetwork), gives the weights of a dynamic linear classifier:

      mask_k(x, y) = MLP_k(t_k) . U(E')(x, y)                                    (Section 3, decoder)

  The IoU token's MLP predicts each mask's IoU with its target.

Ambiguity (Section 3, "Resolving ambiguity"): with ``multimask_output`` the decoder returns the 3
masks (whole, part, subpart); training back-propagates only the minimum loss over the 3
(:func:`sam_loss`), and the single-mask token is used when several prompts make the target unambiguous.

Losses (Section 3 "Losses and training", Appendix A): focal loss and dice loss in a 20 : 1 ratio on
the masks, and mean-squared error between the predicted IoU and the IoU of the (binarised)
predicted mask with the ground truth.

Departures from the paper, all deliberate:

* :func:`sam_loss` compares low-resolution logits (``4h x 4w``) with the ground truth resized to that
  size; the paper's code upsamples the logits to the input size first. The 20 : 1 focal : dice ratio,
  the minimum over the 3 masks and the IoU MSE are as in the paper.
* The Fourier matrix ``B`` is a buffer (fixed, as in the original code); ``transformers.SamModel``
  registers it as a trainable parameter. Numbers agree; only its gradient is not computed here.
* Two-way transformer LayerNorms use ``decoder_eps`` (1e-5 in the original code, 1e-6 in
  ``transformers``; :func:`aicanon.vision.sam_weights.config_from_transformers` sets the latter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_tensor
from aicanon.nn.mask_losses import dice_loss as mask_dice_loss
from aicanon.nn.mask_losses import sigmoid_focal_loss
from aicanon.vision.sam_encoder import EncoderMLP, LayerNorm2d, SamImageEncoder

__all__ = [
    "SamConfig",
    "Sam",
    "SamPromptEncoder",
    "SamMaskDecoder",
    "TwoWayTransformer",
    "RandomFourierEncoding",
    "focal_loss",
    "dice_loss",
    "mask_iou",
    "sam_loss",
]


@dataclass(frozen=True)
class SamConfig:
    """Sizes of a SAM model. Defaults: ViT-B SAM (``sam_vit_b``), 1024 px images."""

    image_size: int = 1024
    patch_size: int = 16
    in_channels: int = 3
    encoder_dim: int = 768
    encoder_depth: int = 12
    encoder_heads: int = 12
    encoder_mlp_dim: int = 3072
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    qkv_bias: bool = True
    prompt_dim: int = 256
    """Width of prompt tokens, of the image embedding (the neck's output) and of the decoder."""
    mask_in_channels: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    decoder_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in (
            "image_size",
            "patch_size",
            "encoder_dim",
            "encoder_depth",
            "encoder_heads",
            "prompt_dim",
        ):
            check_int(name, getattr(self, name), 1)
        check_int("num_multimask_outputs", self.num_multimask_outputs, 1)
        check_int("iou_head_depth", self.iou_head_depth, 2)
        if self.image_size % self.patch_size:
            raise ValueError(f"patch_size must divide image_size, got {self.patch_size}, {self.image_size}")
        if self.prompt_dim % 8:
            raise ValueError(f"prompt_dim must be a multiple of 8, got {self.prompt_dim}")
        if (self.prompt_dim // self.attention_downsample_rate) % self.decoder_heads:
            raise ValueError("decoder_heads must divide prompt_dim / attention_downsample_rate")

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for SAM)."""
        return self.image_size // self.patch_size

    @classmethod
    def vit_b(cls) -> SamConfig:
        return cls()

    @classmethod
    def vit_l(cls) -> SamConfig:
        return cls(encoder_dim=1024, encoder_depth=24, encoder_heads=16, encoder_mlp_dim=4096,
                   global_attn_indexes=(5, 11, 17, 23))  # fmt: skip

    @classmethod
    def vit_h(cls) -> SamConfig:
        return cls(encoder_dim=1280, encoder_depth=32, encoder_heads=16, encoder_mlp_dim=5120,
                   global_attn_indexes=(7, 15, 23, 31))  # fmt: skip


class RandomFourierEncoding(nn.Module):
    """gamma(u) = [sin(2 pi u B), cos(2 pi u B)] for u in [-1, 1]^2 (Eq. PE above), fixed Gaussian B."""

    def __init__(self, features: int, scale: float = 1.0) -> None:
        super().__init__()
        check_int("features", features, 1)
        self.register_buffer("gaussian", scale * torch.randn(2, features))

    def forward(self, unit_coords: Tensor) -> Tensor:
        """``unit_coords`` in ``[0, 1]`` with last dimension (x, y) -> ``(..., 2 * features)``."""
        projected = 2 * math.pi * ((2 * unit_coords - 1).to(self.gaussian.dtype) @ self.gaussian)
        return torch.cat([projected.sin(), projected.cos()], dim=-1)

    def grid(self, size: int) -> Tensor:
        """Encoding of every cell centre of a ``size x size`` grid: ``(2 * features, size, size)``."""
        centres = (torch.arange(size, device=self.gaussian.device, dtype=self.gaussian.dtype) + 0.5) / size
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        return self(torch.stack([x, y], dim=-1)).permute(2, 0, 1)


class SamPromptEncoder(nn.Module):
    """Points, boxes and masks -> sparse tokens ``(B, P, T, C)`` and a dense map ``(B, C, h, w)``."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        dim = config.prompt_dim
        self.image_size = config.image_size
        self.embedding_size = config.embedding_size
        self.positional_encoding = RandomFourierEncoding(dim // 2)
        # rows: background point, foreground point, top-left corner, bottom-right corner
        self.point_embeddings = nn.Embedding(4, dim)
        self.not_a_point = nn.Embedding(1, dim)
        self.no_mask = nn.Embedding(1, dim)
        hidden = config.mask_in_channels
        self.mask_downscaling = nn.ModuleDict(
            {
                "conv1": nn.Conv2d(1, hidden // 4, 2, stride=2),
                "norm1": LayerNorm2d(hidden // 4),
                "conv2": nn.Conv2d(hidden // 4, hidden, 2, stride=2),
                "norm2": LayerNorm2d(hidden),
                "conv3": nn.Conv2d(hidden, dim, 1),
            }
        )

    def embed_points(self, points: Tensor, labels: Tensor, pad: bool) -> Tensor:
        points = points + 0.5  # pixel centre
        if pad:
            points = torch.cat([points, points.new_zeros(*points.shape[:-2], 1, 2)], dim=-2)
            labels = torch.cat([labels, labels.new_full((*labels.shape[:-1], 1), -1)], dim=-1)
        encoded = self.positional_encoding(points / self.image_size)
        label = labels.unsqueeze(-1)
        encoded = torch.where(label == -1, self.not_a_point.weight, encoded)
        # label -10: transformers' "ignore" padding, a zero token
        encoded = torch.where(label == -10, torch.zeros_like(encoded), encoded)
        encoded = (
            encoded
            + (label == 0) * self.point_embeddings.weight[0]
            + (label == 1) * self.point_embeddings.weight[1]
        )
        return encoded

    def embed_boxes(self, boxes: Tensor) -> Tensor:
        corners = (boxes + 0.5).reshape(*boxes.shape[:-1], 2, 2)
        encoded = self.positional_encoding(corners / self.image_size)
        return encoded + self.point_embeddings.weight[2:4]

    def embed_masks(self, masks: Tensor) -> Tensor:
        d = self.mask_downscaling
        x = F.gelu(d["norm1"](d["conv1"](masks)))
        x = F.gelu(d["norm2"](d["conv2"](x)))
        return d["conv3"](x)

    def forward(
        self,
        points: Tensor | None = None,
        labels: Tensor | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor]:
        """``points (B, P, N, 2)`` pixel (x, y) with ``labels (B, P, N)`` (1 fg, 0 bg, -1 padding);
        ``boxes (B, P, 4)`` pixel (x0, y0, x1, y1); ``masks (B, 1, 4h, 4w)`` logits."""
        batch = 1
        tokens = []
        if points is not None:
            check_tensor("points", points, dim=4, floating=True)
            if points.shape[-1] != 2:
                raise ValueError(f"points must end in (x, y), got shape {tuple(points.shape)}")
            if labels is None:
                raise ValueError("labels must be given with points, got None")
            check_tensor("labels", labels, shape=tuple(points.shape[:3]))
            batch = points.shape[0]
            tokens.append(self.embed_points(points, labels, pad=boxes is None))
        if boxes is not None:
            check_tensor("boxes", boxes, dim=3, floating=True)
            if boxes.shape[-1] != 4:
                raise ValueError(f"boxes must be (B, P, 4), got shape {tuple(boxes.shape)}")
            if points is not None and boxes.shape[:2] != points.shape[:2]:
                raise ValueError(
                    f"boxes must match points' (B, P) = {tuple(points.shape[:2])}, got {tuple(boxes.shape)}"
                )
            batch = boxes.shape[0]
            tokens.append(self.embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=2) if tokens else None
        size = self.embedding_size
        if masks is not None:
            check_tensor("masks", masks, shape=(None, 1, 4 * size, 4 * size), floating=True)
            dense = self.embed_masks(masks)
        else:
            dense = self.no_mask.weight.reshape(1, -1, 1, 1).expand(batch, -1, size, size)
        return sparse, dense


class DecoderAttention(nn.Module):
    """Multi-head attention whose internal width is ``dim / downsample`` (the cross-attentions halve it)."""

    def __init__(self, dim: int, heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = dim // downsample
        self.heads = heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        def split(x: Tensor) -> Tensor:
            return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.q_proj(q)), split(self.k_proj(k)), split(self.v_proj(v))
        )
        return self.out_proj(out.transpose(1, 2).flatten(2))


class TwoWayBlock(nn.Module):
    """Self-attn (tokens), cross-attn tokens->image, MLP (tokens), cross-attn image->tokens; post-norm."""

    def __init__(
        self, dim: int, heads: int, mlp_dim: int, downsample: int, skip_first_pe: bool, eps: float
    ) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.cross_attn_token_to_image = DecoderAttention(dim, heads, downsample)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = EncoderMLP(dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(dim, eps=eps)
        self.norm4 = nn.LayerNorm(dim, eps=eps)
        self.cross_attn_image_to_token = DecoderAttention(dim, heads, downsample)
        self.skip_first_pe = skip_first_pe

    def forward(
        self, tokens: Tensor, image: Tensor, token_pe: Tensor, image_pe: Tensor
    ) -> tuple[Tensor, Tensor]:
        if self.skip_first_pe:  # first layer: the tokens *are* their positional encoding
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)
        keys = image + image_pe
        tokens = self.norm2(tokens + self.cross_attn_token_to_image(tokens + token_pe, keys, image))
        tokens = self.norm3(tokens + self.mlp(tokens))
        image = self.norm4(image + self.cross_attn_image_to_token(keys, tokens + token_pe, tokens))
        return tokens, image


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks and a final token -> image attention (Figure 14)."""

    def __init__(
        self, dim: int, depth: int, heads: int, mlp_dim: int, downsample: int = 2, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(dim, heads, mlp_dim, downsample, skip_first_pe=i == 0, eps=eps) for i in range(depth)
        )
        self.final_attn_token_to_image = DecoderAttention(dim, heads, downsample)
        self.norm_final = nn.LayerNorm(dim)  # default eps in both reference implementations

    def forward(self, tokens: Tensor, image: Tensor, image_pe: Tensor) -> tuple[Tensor, Tensor]:
        """``tokens (N, T, C)``, ``image``/``image_pe`` ``(N, HW, C)``."""
        token_pe = tokens
        for layer in self.layers:
            tokens, image = layer(tokens, image, token_pe, image_pe)
        tokens = tokens + self.final_attn_token_to_image(tokens + token_pe, image + image_pe, image)
        return self.norm_final(tokens), image


class HeadMLP(nn.Module):
    """``depth`` linear layers with ReLU between them (the hypernetwork MLPs and the IoU head)."""

    def __init__(self, dim: int, hidden: int, out: int, depth: int) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * (depth - 1) + [out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class SamMaskDecoder(nn.Module):
    """Two-way transformer + 4x upscaling + per-token hypernetwork MLPs + IoU head."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        dim = config.prompt_dim
        self.num_mask_tokens = config.num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.transformer = TwoWayTransformer(
            dim,
            config.decoder_depth,
            config.decoder_heads,
            config.decoder_mlp_dim,
            config.attention_downsample_rate,
            config.decoder_eps,
        )
        self.upscale_conv1 = nn.ConvTranspose2d(dim, dim // 4, 2, stride=2)
        self.upscale_norm = LayerNorm2d(dim // 4)
        self.upscale_conv2 = nn.ConvTranspose2d(dim // 4, dim // 8, 2, stride=2)
        self.hypernetwork_mlps = nn.ModuleList(
            HeadMLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_head = HeadMLP(dim, config.iou_head_hidden_dim, self.num_mask_tokens, config.iou_head_depth)

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse: Tensor | None,
        dense: Tensor,
        multimask_output: bool | None = True,
    ) -> tuple[Tensor, Tensor]:
        """Returns mask logits ``(B, P, M, 4h, 4w)`` and IoU predictions ``(B, P, M)``; ``M`` is 3 with
        ``multimask_output`` (tokens 1..3), 1 without (token 0), and all 4 for ``None`` (training both
        outputs in one pass)."""
        batch, dim, height, width = image_embeddings.shape
        prompts = sparse.shape[1] if sparse is not None else 1
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = output_tokens.expand(batch, prompts, -1, -1)
        if sparse is not None:
            tokens = torch.cat([tokens, sparse.to(tokens.dtype)], dim=2)
        tokens = tokens.flatten(0, 1)
        image = (image_embeddings + dense).repeat_interleave(prompts, 0)
        pe = image_pe.expand(batch, -1, -1, -1).repeat_interleave(prompts, 0)
        tokens, image = self.transformer(
            tokens, image.flatten(2).transpose(1, 2), pe.flatten(2).transpose(1, 2)
        )
        image = image.transpose(1, 2).reshape(-1, dim, height, width)
        upscaled = F.gelu(self.upscale_norm(self.upscale_conv1(image)))
        upscaled = F.gelu(self.upscale_conv2(upscaled))  # (N, C/8, 4h, 4w)
        weights = torch.stack(
            [mlp(tokens[:, 1 + i]) for i, mlp in enumerate(self.hypernetwork_mlps)], dim=1
        )  # (N, M, C/8)
        masks = torch.einsum("nmc,nchw->nmhw", weights, upscaled)
        iou = self.iou_head(tokens[:, 0])
        masks = masks.reshape(batch, prompts, self.num_mask_tokens, 4 * height, 4 * width)
        iou = iou.reshape(batch, prompts, self.num_mask_tokens)
        if multimask_output is None:
            return masks, iou
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, :, chosen], iou[:, :, chosen]


class Sam(nn.Module):
    """The whole model: ``Sam(config)(images, points=..., labels=...)`` -> (mask logits, IoU)."""

    def __init__(self, config: SamConfig | None = None) -> None:
        super().__init__()
        config = config or SamConfig()
        if not isinstance(config, SamConfig):
            raise TypeError(f"config must be a SamConfig, got {type(config).__name__}")
        self.config = config
        self.image_encoder = SamImageEncoder(
            config.image_size,
            config.patch_size,
            config.in_channels,
            config.encoder_dim,
            config.encoder_depth,
            config.encoder_heads,
            config.encoder_mlp_dim,
            config.prompt_dim,
            config.window_size,
            config.global_attn_indexes,
            config.qkv_bias,
            config.use_abs_pos,
            config.use_rel_pos,
        )
        self.prompt_encoder = SamPromptEncoder(config)
        self.mask_decoder = SamMaskDecoder(config)

    def image_pe(self) -> Tensor:
        """Fourier encoding of the embedding grid, ``(1, C, h, w)``: the decoder's image positions."""
        return self.prompt_encoder.positional_encoding.grid(self.config.embedding_size).unsqueeze(0)

    def forward(
        self,
        images: Tensor | None = None,
        points: Tensor | None = None,
        labels: Tensor | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
        *,
        image_embeddings: Tensor | None = None,
        multimask_output: bool | None = True,
    ) -> tuple[Tensor, Tensor]:
        """Give ``images (B, 3, S, S)`` (normalised) or precomputed ``image_embeddings (B, C, h, w)``.
        Returns low-resolution mask logits ``(B, P, M, 4h, 4w)`` and predicted IoU ``(B, P, M)``
        (``M`` = 3 multi-mask outputs, 1 single-mask output, or all 4 for ``multimask_output=None``)."""
        if (images is None) == (image_embeddings is None):
            raise ValueError("give exactly one of images and image_embeddings")
        if image_embeddings is None:
            image_embeddings = self.image_encoder(images)
        else:
            size = self.config.embedding_size
            check_tensor(
                "image_embeddings",
                image_embeddings,
                shape=(None, self.config.prompt_dim, size, size),
                floating=True,
            )
        sparse, dense = self.prompt_encoder(points, labels, boxes, masks)
        if sparse is not None and sparse.shape[0] != image_embeddings.shape[0]:
            raise ValueError(
                f"prompts must have the images' batch size {image_embeddings.shape[0]}, got {sparse.shape[0]}"
            )
        return self.mask_decoder(image_embeddings, self.image_pe(), sparse, dense, multimask_output)


# ---------------------------------------------------------------------------------------------- losses


def focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Sigmoid focal loss (Lin et al. 2017) averaged over pixels: ``(..., H, W)`` -> ``(...)``."""
    return sigmoid_focal_loss(logits, targets, alpha, gamma).flatten(-2).mean(-1)


def dice_loss(logits: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """``1 - (2 |p . t| + 1) / (|p| + |t| + 1)`` per mask (Milletari et al. 2016): ``(..., H, W)`` ->
    ``(...)``."""
    return mask_dice_loss(logits.flatten(-2), targets.flatten(-2), smooth)


def mask_iou(logits: Tensor, targets: Tensor) -> Tensor:
    """IoU of ``logits > 0`` with binary ``targets`` per mask; an empty union counts as IoU 1."""
    predicted = logits > 0
    target = targets > 0.5
    intersection = (predicted & target).flatten(-2).sum(-1).float()
    union = (predicted | target).flatten(-2).sum(-1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def sam_loss(
    mask_logits: Tensor,
    iou_predictions: Tensor,
    targets: Tensor,
    focal_weight: float = 20.0,
    dice_weight: float = 1.0,
    iou_weight: float = 1.0,
    minimum_over_masks: bool = True,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Section 3 / Appendix A loss for ``mask_logits (B, P, M, H, W)``, ``iou_predictions (B, P, M)``,
    ``targets (B, P, H, W)`` (binary; resized to the logits' size when they differ).

    Per mask: ``20 focal + 1 dice``; with ``minimum_over_masks`` only the lowest of the ``M`` masks is
    back-propagated (the ambiguity-aware loss), otherwise all are averaged. The IoU head's MSE is on
    every mask (as in the paper's code). Returns the scalar loss and its parts (detached)."""
    check_tensor("mask_logits", mask_logits, dim=5, floating=True)
    check_tensor("iou_predictions", iou_predictions, shape=tuple(mask_logits.shape[:3]), floating=True)
    check_tensor("targets", targets, dim=4)
    if targets.shape[:2] != mask_logits.shape[:2]:
        raise ValueError(
            f"targets must be (B, P, H, W) with (B, P) = {tuple(mask_logits.shape[:2])}, "
            f"got {tuple(targets.shape)}"
        )
    check_float("focal_weight", focal_weight, 0)
    check_float("dice_weight", dice_weight, 0)
    targets = targets.float()
    if targets.shape[-2:] != mask_logits.shape[-2:]:
        targets = (
            F.interpolate(targets, size=mask_logits.shape[-2:], mode="bilinear", align_corners=False) > 0.5
        ).float()
    expanded = targets.unsqueeze(2).expand_as(mask_logits)
    per_mask = focal_weight * focal_loss(mask_logits, expanded) + dice_weight * dice_loss(
        mask_logits, expanded
    )
    if minimum_over_masks:
        mask_loss = per_mask.min(dim=2).values.mean()
    else:
        mask_loss = per_mask.mean()
    true_iou = mask_iou(mask_logits.detach(), expanded)
    iou_loss = F.mse_loss(iou_predictions, true_iou)
    total = mask_loss + iou_weight * iou_loss
    return total, {"mask": mask_loss.detach(), "iou": iou_loss.detach()}
