"""Weight layouts for :class:`aicanon.vision.sam.Sam`: the original ``segment_anything`` checkpoints
(``sam_vit_b_01ec64.pth`` ...) and ``transformers.SamModel`` (``facebook/sam-vit-base`` ...).

Both are plain renamings of ours (no tensor is transformed), except two merges:

* our ``prompt_encoder.point_embeddings.weight`` ``(4, C)`` is four ``(1, C)`` embeddings in both
  layouts (``point_embeddings.i`` / ``point_embed.i``);
* the Fourier matrix ``B`` is ``prompt_encoder.pe_layer.positional_encoding_gaussian_matrix`` in the
  original and, tied, ``shared_image_embedding.positional_embedding`` and
  ``prompt_encoder.shared_embedding.positional_embedding`` in transformers.

The original key names (from ``segment_anything/modeling``): ``image_encoder.patch_embed.proj``,
``image_encoder.blocks.N.{norm1,attn.qkv,attn.proj,attn.rel_pos_h,attn.rel_pos_w,norm2,mlp.lin1,mlp.lin2}``,
``image_encoder.neck.{0,1,2,3}``, ``prompt_encoder.mask_downscaling.{0,1,3,4,6}``,
``mask_decoder.transformer.layers.N....``, ``mask_decoder.transformer.norm_final_attn``,
``mask_decoder.output_upscaling.{0,1,3}``, ``mask_decoder.output_hypernetworks_mlps.N.layers.i``,
``mask_decoder.iou_prediction_head.layers.i``. The original's ``pixel_mean``/``pixel_std`` are not
persistent and never appear; images are normalised by the caller.

``segment_anything`` itself is not installed here: the original layout is tested by round trips
(ours -> original -> ours) and against the key names above, not against the original package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from aicanon.vision.sam import Sam, SamConfig

__all__ = [
    "to_original",
    "from_original",
    "to_transformers",
    "from_transformers",
    "config_from_transformers",
    "config_from_original",
    "load_original_checkpoint",
]

_POINTS = "prompt_encoder.point_embeddings.weight"
_GAUSSIAN = "prompt_encoder.positional_encoding.gaussian"

# (our fragment, original fragment), applied in order to our key
_ORIGINAL_RULES: list[tuple[str, str]] = [
    (r"^image_encoder\.patch_embed\.", "image_encoder.patch_embed.proj."),
    (r"\.mlp\.fc1\.", ".mlp.lin1."),
    (r"\.mlp\.fc2\.", ".mlp.lin2."),
    (r"\.neck\.conv1\.", ".neck.0."),
    (r"\.neck\.norm1\.", ".neck.1."),
    (r"\.neck\.conv2\.", ".neck.2."),
    (r"\.neck\.norm2\.", ".neck.3."),
    (r"\.not_a_point\.", ".not_a_point_embed."),
    (r"\.no_mask\.", ".no_mask_embed."),
    (r"\.mask_downscaling\.conv1\.", ".mask_downscaling.0."),
    (r"\.mask_downscaling\.norm1\.", ".mask_downscaling.1."),
    (r"\.mask_downscaling\.conv2\.", ".mask_downscaling.3."),
    (r"\.mask_downscaling\.norm2\.", ".mask_downscaling.4."),
    (r"\.mask_downscaling\.conv3\.", ".mask_downscaling.6."),
    (r"\.transformer\.norm_final\.", ".transformer.norm_final_attn."),
    (r"\.upscale_conv1\.", ".output_upscaling.0."),
    (r"\.upscale_norm\.", ".output_upscaling.1."),
    (r"\.upscale_conv2\.", ".output_upscaling.3."),
    (r"\.hypernetwork_mlps\.", ".output_hypernetworks_mlps."),
    (r"\.iou_head\.", ".iou_prediction_head."),
]

_TRANSFORMERS_RULES: list[tuple[str, str]] = [
    (r"^image_encoder\.patch_embed\.", "vision_encoder.patch_embed.projection."),
    (r"^image_encoder\.blocks\.", "vision_encoder.layers."),
    (r"^image_encoder\.", "vision_encoder."),
    (r"\.mlp\.fc1\.", ".mlp.lin1."),
    (r"\.mlp\.fc2\.", ".mlp.lin2."),
    (r"\.neck\.norm1\.", ".neck.layer_norm1."),
    (r"\.neck\.norm2\.", ".neck.layer_norm2."),
    (r"\.layers\.(\d+)\.norm(\d)\.", r".layers.\1.layer_norm\2."),
    (r"\.not_a_point\.", ".not_a_point_embed."),
    (r"\.no_mask\.", ".no_mask_embed."),
    (r"\.mask_downscaling\.norm", ".mask_embed.layer_norm"),
    (r"\.mask_downscaling\.", ".mask_embed."),
    (r"\.transformer\.norm_final\.", ".transformer.layer_norm_final_attn."),
    (r"\.upscale_norm\.", ".upscale_layer_norm."),
    (r"\.hypernetwork_mlps\.", ".output_hypernetworks_mlps."),
    (r"\.iou_head\.", ".iou_prediction_head."),
]


def _apply(rules: list[tuple[str, str]], key: str) -> str:
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def _transformers_head_layer(key: str, config: SamConfig) -> str:
    """transformers names an MLP's layers proj_in, layers.0.., proj_out (ours: layers.0..D-1)."""
    match = re.search(r"(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.layers\.(\d+)\.", key)
    if match is None:
        return key
    depth = 3 if match.group(1).startswith("output") else config.iou_head_depth
    index = int(match.group(2))
    name = "proj_in" if index == 0 else "proj_out" if index == depth - 1 else f"layers.{index - 1}"
    return key[: match.start(2) - len("layers.")] + name + key[match.end(2) :]


def _our_keys(config: SamConfig) -> list[str]:
    with torch.device("meta"):
        return list(Sam(config).state_dict().keys())


def _check_state(name: str, state: Any) -> Mapping[str, Tensor]:
    if not isinstance(state, Mapping):
        raise TypeError(f"{name} must be a mapping of names to tensors, got {type(state).__name__}")
    return state


def _convert_out(
    state: Mapping[str, Tensor], rename: Callable[[str], str], points_prefix: str, gaussian: list[str]
) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in _check_state("state_dict", state).items():
        if key == _POINTS:
            for i in range(value.shape[0]):
                out[f"{points_prefix}.{i}.weight"] = value[i : i + 1].clone()
        elif key == _GAUSSIAN:
            for name in gaussian:
                out[name] = value.clone()
        else:
            out[rename(key)] = value
    return out


def _convert_in(
    state: Mapping[str, Tensor],
    config: SamConfig,
    rename: Callable[[str], str],
    points_prefix: str,
    gaussian: list[str],
    layout: str,
) -> dict[str, Tensor]:
    state = dict(_check_state("state_dict", state))
    out: dict[str, Tensor] = {}
    missing: list[str] = []
    for key in _our_keys(config):
        if key == _POINTS:
            names = [f"{points_prefix}.{i}.weight" for i in range(4)]
            missing += [n for n in names if n not in state]
            if all(n in state for n in names):
                out[key] = torch.cat([state.pop(n) for n in names], dim=0)
            continue
        names = gaussian if key == _GAUSSIAN else [rename(key)]
        present = [n for n in names if n in state]
        if not present:
            missing.append(names[0])
            continue
        out[key] = state[present[0]]
        for n in present:
            state.pop(n)
    if missing or state:
        raise ValueError(
            f"state_dict does not fit the {layout} layout of this config: missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected {sorted(state)[:8]}"
        )
    return out


_ORIGINAL_GAUSSIAN = ["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
_TRANSFORMERS_GAUSSIAN = [
    "shared_image_embedding.positional_embedding",
    "prompt_encoder.shared_embedding.positional_embedding",
]


def to_original(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict -> the ``segment_anything`` checkpoint layout."""
    return _convert_out(
        state, lambda k: _apply(_ORIGINAL_RULES, k), "prompt_encoder.point_embeddings", _ORIGINAL_GAUSSIAN
    )


def from_original(state: Mapping[str, Tensor], config: SamConfig) -> dict[str, Tensor]:
    """A ``segment_anything`` state dict -> ours (raises ``ValueError`` naming missing/unexpected keys)."""
    return _convert_in(
        state,
        config,
        lambda k: _apply(_ORIGINAL_RULES, k),
        "prompt_encoder.point_embeddings",
        _ORIGINAL_GAUSSIAN,
        "segment_anything",
    )


def to_transformers(state: Mapping[str, Tensor], config: SamConfig) -> dict[str, Tensor]:
    """Our state dict -> ``transformers.SamModel``'s (both tied copies of the Fourier matrix)."""
    return _convert_out(
        state,
        lambda k: _transformers_head_layer(_apply(_TRANSFORMERS_RULES, k), config),
        "prompt_encoder.point_embed",
        _TRANSFORMERS_GAUSSIAN,
    )


def from_transformers(state: Mapping[str, Tensor], config: SamConfig) -> dict[str, Tensor]:
    """``transformers.SamModel.state_dict()`` -> ours (one copy of the tied Fourier matrix suffices)."""
    return _convert_in(
        state,
        config,
        lambda k: _transformers_head_layer(_apply(_TRANSFORMERS_RULES, k), config),
        "prompt_encoder.point_embed",
        _TRANSFORMERS_GAUSSIAN,
        "transformers",
    )


def config_from_transformers(hf_config: Any) -> SamConfig:
    """A ``transformers.SamConfig`` (read by attribute; transformers is not imported) -> ours."""
    vision, prompt, decoder = (
        hf_config.vision_config,
        hf_config.prompt_encoder_config,
        hf_config.mask_decoder_config,
    )
    if vision.output_channels != prompt.hidden_size or prompt.hidden_size != decoder.hidden_size:
        raise ValueError("hf_config: the neck, prompt encoder and decoder widths must be equal")
    if decoder.hidden_act != "relu" or prompt.hidden_act != "gelu" or vision.hidden_act != "gelu":
        raise ValueError(
            "hf_config: only SAM's activations (gelu encoder/prompt, relu decoder) are supported"
        )
    return SamConfig(
        image_size=vision.image_size,
        patch_size=vision.patch_size,
        in_channels=vision.num_channels,
        encoder_dim=vision.hidden_size,
        encoder_depth=vision.num_hidden_layers,
        encoder_heads=vision.num_attention_heads,
        encoder_mlp_dim=vision.mlp_dim,
        window_size=vision.window_size,
        global_attn_indexes=tuple(vision.global_attn_indexes),
        use_abs_pos=vision.use_abs_pos,
        use_rel_pos=vision.use_rel_pos,
        qkv_bias=vision.qkv_bias,
        prompt_dim=prompt.hidden_size,
        mask_in_channels=prompt.mask_input_channels,
        decoder_depth=decoder.num_hidden_layers,
        decoder_heads=decoder.num_attention_heads,
        decoder_mlp_dim=decoder.mlp_dim,
        attention_downsample_rate=decoder.attention_downsample_rate,
        num_multimask_outputs=decoder.num_multimask_outputs,
        iou_head_depth=decoder.iou_head_depth,
        iou_head_hidden_dim=decoder.iou_head_hidden_dim,
        decoder_eps=decoder.layer_norm_eps,
    )


def config_from_original(state: Mapping[str, Tensor]) -> SamConfig:
    """Read a ``segment_anything`` state dict's sizes (ViT-B/L/H or any other) from its shapes.

    Global-attention blocks are those whose relative-position table spans the whole grid."""
    state = _check_state("state", state)
    try:
        patch = state["image_encoder.patch_embed.proj.weight"]
        grid = state["image_encoder.pos_embed"].shape[1]
        depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("image_encoder.blocks."))
        dim = patch.shape[0]
        head_dim = state["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        tables = [state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] for i in range(depth)]
        window = (min(tables) + 1) // 2
        prompt_dim = state["mask_decoder.iou_token.weight"].shape[1]
    except KeyError as error:
        raise ValueError(f"state is not a segment_anything checkpoint: missing {error}") from None
    return SamConfig(
        image_size=grid * patch.shape[-1],
        patch_size=patch.shape[-1],
        in_channels=patch.shape[1],
        encoder_dim=dim,
        encoder_depth=depth,
        encoder_heads=dim // head_dim,
        encoder_mlp_dim=state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0],
        window_size=window,
        global_attn_indexes=tuple(i for i, n in enumerate(tables) if n == 2 * grid - 1),
        prompt_dim=prompt_dim,
        mask_in_channels=state["prompt_encoder.mask_downscaling.3.weight"].shape[0],
        num_multimask_outputs=state["mask_decoder.mask_tokens.weight"].shape[0] - 1,
        iou_head_hidden_dim=state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0],
        iou_head_depth=1 + max(int(k.split(".")[3]) for k in state if ".iou_prediction_head.layers." in k),
        decoder_depth=1
        + max(int(k.split(".")[3]) for k in state if k.startswith("mask_decoder.transformer.layers.")),
        decoder_mlp_dim=state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0],
    )


def load_original_checkpoint(path: str) -> Sam:
    """Build :class:`Sam` from a released ``segment_anything`` ``.pth`` file (read with
    ``weights_only=True``; the files are plain state dicts). Decoder heads stay at 8 (all releases)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = config_from_original(state)
    model = Sam(config)
    model.load_state_dict(from_original(state, config))
    return model
