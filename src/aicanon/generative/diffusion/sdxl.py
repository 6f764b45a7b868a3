"""SDXL's additions to latent diffusion (Podell et al. 2023): micro-conditioning on image size and
crop, multi-aspect buckets, a pair of text encoders, and the SDEdit refinement stage.

The UNet itself (cross-attention, the added ``text_embeds`` + ``time_ids`` embedding) is
:class:`~aicanon.generative.diffusion.unet_conditional.ConditionalUNet`, whose state dict is that of
diffusers' ``UNet2DConditionModel`` with ``addition_embed_type="text_time"``. This module holds what
surrounds it.

**Micro-conditioning (Section 2.2).** Each training image carries c_size = (h_original, w_original),
its size before any resizing, and c_crop = (c_top, c_left), the pixels cut off at its top and left
by the data loader's crop (Algorithm 1, :func:`size_and_crop`); multi-aspect training adds the
bucket's c_ar = (h_target, w_target) (Section 2.3). Each scalar gets its own Fourier-feature
(sinusoidal) embedding; they are concatenated with the pooled text embedding and added to the
timestep embedding:

    emb = MLP_t(PE(t)) + MLP_add([pooled ‖ PE(h_orig) ‖ PE(w_orig) ‖ PE(c_top) ‖ PE(c_left)
                                   ‖ PE(h_tgt) ‖ PE(w_tgt)])

:func:`micro_conditioning` builds ``time_ids`` in that order (the order of diffusers' SDXL pipeline,
``original_size + crops_coords_top_left + target_size``; the refiner's variant puts an aesthetic
score where the target size was). At sampling time c_crop = (0, 0) asks for an uncropped, centred
object and a large c_size for the look of a high-resolution original (Figures 3 and 5).

**Multi-aspect training (Section 2.3).** Images are grouped into buckets of nearly equal pixel
count (:func:`aspect_buckets`: sides multiples of 64 with 0.9·1024² ≤ h·w ≤ 1024² and aspect ratio
in [1/4, 4] gives the 40 buckets of the paper's Appendix I and 1344×704, the mirror of its 704×1344
that its table lacks), every batch is drawn from one bucket
(:class:`BucketBatchSampler`), and the bucket's size is the target-size condition
(:func:`bucketed_batch`).

**Two text encoders (Section 2.1).** SDXL concatenates the penultimate hidden states of CLIP ViT-L
and OpenCLIP ViT-bigG along the feature axis as the cross-attention context (768 + 1280 = 2048
features) and uses the pooled (projected) embedding of the bigger one as ``text_embeds``.
:class:`DualTextEncoder` does the same with two small causal transformer encoders
(:class:`TokenEncoder`); :func:`class_prompt` turns class labels into three-token prompts.

**Refinement (Section 2.5).** A second model, trained on the first 200 of the 1000 noise scales,
refines the base model's output with SDEdit (Meng et al. 2022): noise the sample to t₀ = s·T and run
the reverse chain from there. :func:`sdedit_timesteps` keeps the lowest ⌊s·N⌋ of an N-step schedule
(diffusers' img2img ``strength`` convention), :func:`refine` noises to the highest kept step and
denoises through exactly those steps (one model call each).

Departures from the paper: the text encoders are small transformers trained with the UNet from
scratch on class prompts (the paper uses frozen, pretrained CLIP encoders; we cannot load those and
our experiments have no text); both encoders read the same token ids (SDXL tokenises the prompt with
each encoder's own tokenizer); the pooled embedding is the final-layer-normed state of the last
token, projected (CLIP pools at the end-of-text token, which is the last token of our unpadded
prompts). There is no autoencoder here: the experiments diffuse pixels of small images, where SDXL
diffuses latents of its VAE (Section 2.4).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor, check_token_ids
from aicanon.generative.diffusion.gaussian import GaussianDiffusion, gaussian_noise
from aicanon.generative.diffusion.respace import respace, space_timesteps
from aicanon.generative.diffusion.unet_conditional import ConditionalUNet

__all__ = [
    "BucketBatchSampler",
    "DualTextEncoder",
    "SDXLDenoiser",
    "TokenEncoder",
    "aspect_buckets",
    "bucketed_batch",
    "class_prompt",
    "micro_conditioning",
    "nearest_bucket",
    "refine",
    "sdedit_timesteps",
    "size_and_crop",
]

Size = tuple[int, int]


# -- micro-conditioning (Section 2.2) ---------------------------------------------------------------


def _pairs(name: str, value: Any, minimum: float) -> Tensor:
    """``value`` as a float64 tensor ``[B, 2]``: a pair (h, w) for every row, or a tensor ``[B, 2]``."""
    if isinstance(value, Tensor):
        if value.dim() == 1:
            value = value.unsqueeze(0)
        check_tensor(name, value, shape=(None, 2))
        pairs = value.detach().double().cpu()
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        for item in value:
            check_float(name, item, finite=True)
        pairs = torch.tensor([[float(value[0]), float(value[1])]], dtype=torch.float64)
    else:
        raise TypeError(f"{name} must be a pair (height, width) or a tensor [B, 2], got {value!r}")
    if not bool(torch.isfinite(pairs).all()) or bool((pairs < minimum).any()):
        raise ValueError(f"{name} must hold finite values >= {minimum}, got {pairs.tolist()}")
    return pairs


def micro_conditioning(
    original_size: Size | Tensor,
    crop_top_left: Size | Tensor,
    target_size: Size | Tensor | None = None,
    *,
    aesthetic_score: float | Tensor | None = None,
    batch: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """SDXL's ``time_ids`` ``[B, 6]``: (h_orig, w_orig, c_top, c_left, h_tgt, w_tgt).

    Each argument is one pair for the whole batch or a tensor ``[B, 2]`` (one pair per row). With
    ``aesthetic_score`` instead of ``target_size`` the refiner's ``[B, 5]`` ids (h_orig, w_orig,
    c_top, c_left, score) come back (diffusers' img2img pipeline with ``requires_aesthetics_score``).
    ``batch`` repeats pairs given once to ``batch`` rows.
    """
    if (target_size is None) == (aesthetic_score is None):
        raise ValueError("give exactly one of target_size (base model) and aesthetic_score (refiner)")
    check_int("batch", batch, allow_none=True)
    parts = [
        _pairs("original_size", original_size, 1.0),
        _pairs("crop_top_left", crop_top_left, 0.0),
    ]
    if target_size is not None:
        parts.append(_pairs("target_size", target_size, 1.0))
    else:
        if isinstance(aesthetic_score, Tensor):
            check_tensor("aesthetic_score", aesthetic_score, dim=1)
            score = aesthetic_score.detach().double().cpu().unsqueeze(1)
        else:
            check_float("aesthetic_score", aesthetic_score, finite=True)
            score = torch.tensor([[float(aesthetic_score)]], dtype=torch.float64)
        parts.append(score)
    rows = {p.shape[0] for p in parts} - {1}
    if len(rows) > 1 or (batch is not None and rows and rows != {batch}):
        given = [p.shape[0] for p in parts]
        raise ValueError(
            f"the conditions must have one row or the same number of rows (batch={batch}), got {given}"
        )
    count = rows.pop() if rows else (batch or 1)
    ids = torch.cat([p.expand(count, -1) for p in parts], dim=1)
    return ids.to(dtype=dtype, device=device)


def size_and_crop(
    image: Tensor, target_size: Size, generator: torch.Generator | None = None
) -> tuple[Tensor, Size, Size]:
    """Algorithm 1 for one image ``[C, H, W]``: resize so that it covers ``target_size`` (the smaller
    relative side meets the target), crop a ``target_size`` window at a uniformly random offset along
    the side that overhangs, and return ``(crop, c_size, c_crop)`` with c_size = (H, W) before
    resizing and c_crop = (c_top, c_left) in the resized image's pixels."""
    check_tensor("image", image, dim=3, floating=True)
    if not (isinstance(target_size, (tuple, list)) and len(target_size) == 2):
        raise TypeError(f"target_size must be a pair (height, width), got {target_size!r}")
    th, tw = (check_int("target_size", s) for s in target_size)
    h, w = image.shape[1:]
    if h < 1 or w < 1:
        raise ValueError(f"image must have positive height and width, got {tuple(image.shape)}")
    scale = max(th / h, tw / w)
    rh, rw = max(th, round(h * scale)), max(tw, round(w * scale))
    if (rh, rw) != (h, w):
        image = F.interpolate(
            image[None], size=(rh, rw), mode="bilinear", antialias=scale < 1, align_corners=False
        )[0]
    top = int(torch.randint(0, rh - th + 1, (1,), generator=generator)) if rh > th else 0
    left = int(torch.randint(0, rw - tw + 1, (1,), generator=generator)) if rw > tw else 0
    return image[:, top : top + th, left : left + tw], (h, w), (top, left)


# -- multi-aspect buckets (Section 2.3) -------------------------------------------------------------


def aspect_buckets(
    area: int = 1024 * 1024, multiple: int = 64, max_ratio: float = 4.0, tolerance: float = 0.1
) -> list[Size]:
    """Buckets (height, width): both sides multiples of ``multiple``, ``(1 − tolerance)·area ≤ h·w ≤
    area``, aspect ratio h/w within [1/max_ratio, max_ratio]; sorted by h/w. The defaults give the
    40 buckets of the paper's Appendix I (512×2048 … 1024×1024 … 2048×512) plus 1344×704."""
    check_int("area", area)
    check_int("multiple", multiple)
    check_float("max_ratio", max_ratio, 1.0, finite=True)
    check_float("tolerance", tolerance, 0.0, 1.0, max_inclusive=False)
    buckets = []
    for h in range(multiple, area // multiple + 1, multiple):
        for w in range(multiple, area // h + 1, multiple):
            if h * w >= (1 - tolerance) * area and 1 / max_ratio <= h / w <= max_ratio:
                buckets.append((h, w))
    if not buckets:
        raise ValueError(
            f"no bucket of sides multiple of {multiple} lies within {tolerance:.0%} below area={area}"
        )
    return sorted(buckets, key=lambda b: b[0] / b[1])


def nearest_bucket(height: int, width: int, buckets: Sequence[Size]) -> Size:
    """The bucket whose aspect ratio is closest to height/width (in log ratio)."""
    check_int("height", height)
    check_int("width", width)
    if not buckets:
        raise ValueError("buckets must not be empty")
    ratio = math.log(height / width)
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1]) - ratio))


class BucketBatchSampler:
    """Batches of indices in which every image belongs to one bucket (Section 2.3).

    ``sizes`` holds each image's (height, width); each is assigned its :func:`nearest_bucket`. An
    epoch shuffles the images within each bucket, cuts them into batches of ``batch_size`` (the last
    partial batch of a bucket is dropped with ``drop_last``), and shuffles the order of the batches
    across buckets. Iterating yields ``(bucket, indices)``.
    """

    def __init__(
        self,
        sizes: Sequence[Size],
        buckets: Sequence[Size],
        batch_size: int,
        *,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        check_int("batch_size", batch_size)
        check_int("seed", seed, 0)
        if not sizes:
            raise ValueError("sizes must hold one (height, width) per image, got none")
        self.buckets = [tuple(b) for b in buckets]
        self.assignment = [nearest_bucket(int(h), int(w), self.buckets) for h, w in sizes]
        self.members: dict[Size, list[int]] = {}
        for index, bucket in enumerate(self.assignment):
            self.members.setdefault(bucket, []).append(index)
        self.batch_size, self.drop_last, self.seed, self.epoch = batch_size, drop_last, seed, 0

    def batches(self, epoch: int) -> list[tuple[Size, list[int]]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        batches = []
        for bucket in sorted(self.members):
            indices = list(self.members[bucket])
            rng.shuffle(indices)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append((bucket, chunk))
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[tuple[Size, list[int]]]:
        batches = self.batches(self.epoch)
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return len(self.batches(self.epoch))


def bucketed_batch(
    images: Sequence[Tensor], indices: Sequence[int], bucket: Size, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The batch ``[B, C, h, w]`` of ``images[indices]`` resized and cropped to ``bucket`` by
    :func:`size_and_crop`, and its ``time_ids`` ``[B, 6]`` (c_size, c_crop, c_ar = the bucket)."""
    if not indices:
        raise ValueError("indices must not be empty")
    crops, ids = [], []
    for index in indices:
        crop, c_size, c_crop = size_and_crop(images[index], bucket, generator)
        crops.append(crop)
        ids.append([*c_size, *c_crop, *bucket])
    return torch.stack(crops), torch.tensor(ids, dtype=torch.float32)


# -- the text-encoder pair (Section 2.1) ------------------------------------------------------------


def class_prompt(labels: Tensor, num_classes: int) -> Tensor:
    """Token ids ``[B, 3]`` of a class "prompt": begin (id ``num_classes``), the class, end
    (``num_classes + 1``); a :class:`TokenEncoder` for it has ``vocab_size = num_classes + 2``."""
    check_int("num_classes", num_classes)
    check_tensor("labels", labels, dim=1, dtype=(torch.long, torch.int))
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]"
        )
    labels = labels.long()
    return torch.stack(
        [torch.full_like(labels, num_classes), labels, torch.full_like(labels, num_classes + 1)], 1
    )


class TokenEncoder(nn.Module):
    """A small CLIP-like text encoder: token + position embeddings, ``layers`` pre-norm causal
    transformer blocks, a final LayerNorm. ``forward(tokens) -> (hidden, pooled)``: ``hidden`` is
    the penultimate block's output ``[B, S, width]`` (what SDXL feeds to cross-attention), ``pooled``
    the final-normed last token, projected to ``projection_dim`` when given ``[B, P]``."""

    def __init__(
        self,
        vocab_size: int,
        width: int,
        *,
        layers: int = 2,
        heads: int = 2,
        max_length: int = 8,
        projection_dim: int | None = None,
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size)
        check_int("width", width)
        check_int("layers", layers, 2, note=" (the penultimate layer's states are the output)")
        check_int("heads", heads)
        check_int("max_length", max_length)
        check_int("projection_dim", projection_dim, allow_none=True)
        if width % heads:
            raise ValueError(f"width must be a multiple of heads={heads}, got {width}")
        self.vocab_size, self.width, self.max_length = vocab_size, width, max_length
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Parameter(torch.randn(max_length, width) * 0.01)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(width)
        self.projection = nn.Linear(width, projection_dim, bias=False) if projection_dim else None
        self.pooled_dim = projection_dim or width

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        check_token_ids("tokens", tokens)
        length = tokens.shape[1]
        if not 1 <= length <= self.max_length:
            raise ValueError(
                f"tokens must hold 1 to max_length={self.max_length} tokens per row, got {length}"
            )
        if int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size:
            raise ValueError(
                f"tokens must lie in [0, {self.vocab_size}), got [{int(tokens.min())}, {int(tokens.max())}]"
            )
        h = self.token_embedding(tokens) + self.position_embedding[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device, dtype=h.dtype)
        states = []
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=True)
            states.append(h)
        pooled = self.final_norm(states[-1])[:, -1]
        if self.projection is not None:
            pooled = self.projection(pooled)
        return states[-2], pooled


class DualTextEncoder(nn.Module):
    """SDXL's encoder pair: context = [hidden₁ ‖ hidden₂] (penultimate states, concatenated along
    features) for cross-attention, ``pooled`` = the second (bigger) encoder's pooled embedding."""

    def __init__(self, first: TokenEncoder, second: TokenEncoder) -> None:
        super().__init__()
        for name, encoder in (("first", first), ("second", second)):
            if not isinstance(encoder, TokenEncoder):
                raise TypeError(f"{name} must be a TokenEncoder, got {type(encoder).__name__}")
        self.first, self.second = first, second
        self.context_dim = first.width + second.width
        self.pooled_dim = second.pooled_dim

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        hidden_1, _ = self.first(tokens)
        hidden_2, pooled = self.second(tokens)
        return torch.cat([hidden_1, hidden_2], dim=-1), pooled


class SDXLDenoiser(nn.Module):
    """The denoiser the diffusion samplers call: ``forward(x_t, t, tokens, time_ids)`` encodes the
    prompt with the encoder pair and runs the conditional UNet with context, pooled text embedding
    and micro-conditioning. ``micro_conditioning=False`` replaces ``time_ids`` by zeros everywhere
    (the ablation: a model that never sees size or crop)."""

    def __init__(
        self, unet: ConditionalUNet, encoder: DualTextEncoder, *, micro_conditioning: bool = True
    ) -> None:
        super().__init__()
        if not isinstance(unet, ConditionalUNet):
            raise TypeError(f"unet must be a ConditionalUNet, got {type(unet).__name__}")
        if not isinstance(encoder, DualTextEncoder):
            raise TypeError(f"encoder must be a DualTextEncoder, got {type(encoder).__name__}")
        cfg = unet.config
        if cfg.cross_attention_dim != encoder.context_dim:
            raise ValueError(
                f"the UNet's cross_attention_dim ({cfg.cross_attention_dim}) must equal the encoders' "
                f"summed widths ({encoder.context_dim})"
            )
        if cfg.addition_time_embed_dim is None:
            raise ValueError("the UNet needs SDXL's added conditioning (addition_time_embed_dim)")
        ids = (cfg.addition_input_dim - encoder.pooled_dim) / cfg.addition_time_embed_dim
        if ids < 1 or ids != int(ids):
            raise ValueError(
                f"addition_input_dim ({cfg.addition_input_dim}) must be the pooled width "
                f"({encoder.pooled_dim}) + a whole number of time_ids x addition_time_embed_dim "
                f"({cfg.addition_time_embed_dim})"
            )
        self.unet, self.encoder = unet, encoder
        self.num_time_ids = int(ids)
        self.micro_conditioning = micro_conditioning

    def forward(self, x: Tensor, t: Tensor | int | float, tokens: Tensor, time_ids: Tensor) -> Tensor:
        check_tensor("time_ids", time_ids, shape=(x.shape[0], self.num_time_ids))
        context, pooled = self.encoder(tokens)
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"tokens must have one row per image ({x.shape[0]}), got {context.shape[0]}")
        if not self.micro_conditioning:
            time_ids = torch.zeros_like(time_ids)
        return self.unet(x, t, context.to(x.dtype), text_embeds=pooled.to(x.dtype), time_ids=time_ids)


# -- the refinement stage (Section 2.5) -------------------------------------------------------------


def sdedit_timesteps(schedule: Sequence[int], strength: float) -> list[int]:
    """The steps SDEdit with ``strength`` visits out of an increasing ``schedule`` of N steps: the
    lowest ⌊strength·N⌋ (diffusers' img2img convention), increasing. The image is noised to the
    highest of them."""
    check_float("strength", strength, 0.0, 1.0, min_inclusive=False)
    steps = list(schedule)
    if not steps or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
        raise ValueError(f"schedule must be a non-empty sequence of non-negative ints, got {schedule!r}")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"schedule must be strictly increasing, got {steps[:10]}")
    kept = min(int(len(steps) * strength), len(steps))
    if kept < 1:
        raise ValueError(
            f"strength x steps must reach one step: strength={strength} of {len(steps)} steps keeps none"
        )
    return steps[:kept]


def refine(
    model: Callable[..., Tensor],
    diffusion: GaussianDiffusion,
    x: Tensor,
    strength: float,
    steps: int | Sequence[int] = 50,
    *,
    method: str = "ancestral",
    model_kwargs: dict[str, Any] | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SDEdit: noise ``x`` (images in [−1, 1]) to the highest step of
    ``sdedit_timesteps(schedule, strength)`` with q(x_t | x_0) and denoise with ``model`` through those
    steps only. ``steps`` is N (an N-step :func:`space_timesteps` schedule of ``diffusion``) or the
    schedule itself (increasing original timesteps)."""
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a GaussianDiffusion, got {type(diffusion).__name__}")
    check_tensor("x", x, floating=True)
    check_choice("method", method, ("ancestral", "ddim"))
    schedule = space_timesteps(diffusion.num_timesteps, steps) if isinstance(steps, int) else list(steps)
    kept = sdedit_timesteps(schedule, strength)
    chain = respace(diffusion, kept).to(x.device)
    start = torch.full((x.shape[0],), len(kept) - 1, dtype=torch.long, device=x.device)
    if noise is None:
        noise = gaussian_noise(x.shape, generator, x.device, x.dtype)
    x_t = chain.q_sample(x, start, noise)
    return chain.sample(
        model,
        tuple(x.shape),
        method=method,
        noise=x_t,
        model_kwargs=model_kwargs,
        generator=generator,
        device=x.device,
    )
