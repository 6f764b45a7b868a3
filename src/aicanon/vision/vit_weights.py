"""Loading released ViT weights into :class:`aicanon.vision.vit.VisionTransformer`.

Three layouts:

* timm ``vit_*`` state dicts: already our parameter names (:func:`from_timm` resamples
  ``pos_embed`` to the model's grid when the checkpoint was trained at another resolution,
  Section 3.2);
* the original JAX/Flax ``.npz`` checkpoints of google-research/vision_transformer
  (:func:`from_jax`): ``embedding/kernel`` ``[P, P, C, D]``, ``cls``,
  ``Transformer/posembed_input/pos_embedding``, per block
  ``Transformer/encoderblock_<i>/{LayerNorm_0, MultiHeadDotProductAttention_1/{query,key,value,out},
  LayerNorm_2, MlpBlock_3/{Dense_0, Dense_1}}``, ``Transformer/encoder_norm``, ``pre_logits`` and
  ``head`` (Flax ``kernel`` is ``[in, out]``, LayerNorm ``scale``; attention kernels carry a heads axis);
* Hugging Face ``transformers`` ``ViTModel`` / ``ViTForImageClassification`` state dicts
  (:func:`from_transformers`; the pooler, which ViT does not have, is dropped).

Each converter returns our state dict; load it with
:func:`aicanon.core.state_dict.load_state_dict_strict` (the naming scheme of every family's converters
is described there)::

    load_state_dict_strict(model, from_timm(timm_model.state_dict(), grid_size=model.grid_size))

No file I/O here: pass the arrays (``dict(np.load(path, allow_pickle=False))``) or the state dict.
Arrays the JAX or transformers layout lacks, or does not know, raise a ``KeyError`` that lists them.

Not covered: the hybrid (R50+ViT) JAX checkpoints, whose BiT ResNet stem we do not implement
(our hybrid stem is the plain ResNet of :mod:`aicanon.vision.resnet`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from aicanon.core.state_dict import check_state_dict
from aicanon.vision.vit import resample_pos_embed

__all__ = ["from_jax", "from_timm", "from_transformers"]

# Learned tokens in front of the patches, each with its own position embedding (DeiT adds dist_token).
_PREFIX_TOKENS = ("cls_token", "dist_token")


def from_timm(state_dict: Mapping[str, Tensor], grid_size: Sequence[int] | None = None) -> dict[str, Tensor]:
    """Our state dict from a timm ``vit_*`` or ``deit_*`` one: the names are ours.

    With ``grid_size`` (the model's ``grid_size``, patches per side), a ``pos_embed`` trained on
    another patch grid is resampled to it (bicubic, as timm; Section 3.2); its prefix tokens are
    the checkpoint's ``cls_token``/``dist_token``.
    """
    state = check_state_dict(state_dict)
    if grid_size is None or "pos_embed" not in state:
        return state
    if (
        not isinstance(grid_size, Sequence)
        or len(grid_size) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in grid_size)
    ):
        raise ValueError(f"grid_size must be two positive ints (rows, columns), got {grid_size!r}")
    pos = state["pos_embed"]
    prefix = sum(key in state for key in _PREFIX_TOKENS)
    if pos.dim() != 3 or pos.shape[1] != prefix + grid_size[0] * grid_size[1]:
        state["pos_embed"] = resample_pos_embed(pos, tuple(grid_size), num_prefix_tokens=prefix)
    return state


def _t(array: np.ndarray | Tensor) -> Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float32)


def from_jax(arrays: Mapping[str, np.ndarray], fc_norm: bool = False) -> dict[str, Tensor]:
    """The JAX ``.npz`` layout as our (timm-named) state dict (``fc_norm``: the final LN goes to ``fc_norm``).

    Every array is used exactly once; leftovers raise a KeyError listing them.
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping of names to arrays, got {type(arrays).__name__}")
    remaining = dict(arrays)

    def take(key: str) -> Tensor:
        if key not in remaining:
            raise KeyError(f"JAX checkpoint lacks {key!r}; it has {sorted(arrays)[:20]}...")
        return _t(remaining.pop(key))

    out: dict[str, Tensor] = {}
    out["patch_embed.proj.weight"] = take("embedding/kernel").permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    out["patch_embed.proj.bias"] = take("embedding/bias")
    if "cls" in remaining:
        out["cls_token"] = take("cls")
    out["pos_embed"] = take("Transformer/posembed_input/pos_embedding")
    depth = 0
    while f"Transformer/encoderblock_{depth}/LayerNorm_0/scale" in remaining:
        depth += 1
    if depth == 0:
        raise KeyError("JAX checkpoint has no 'Transformer/encoderblock_0/...' arrays")
    for i in range(depth):
        src, dst = f"Transformer/encoderblock_{i}/", f"blocks.{i}."
        attention = src + "MultiHeadDotProductAttention_1/"
        out[dst + "norm1.weight"] = take(src + "LayerNorm_0/scale")
        out[dst + "norm1.bias"] = take(src + "LayerNorm_0/bias")
        # query/key/value kernels are [D, heads, head_dim]: flatten to [D, D] and transpose to [out, in].
        kernels = [take(attention + f"{n}/kernel").flatten(1).T for n in ("query", "key", "value")]
        biases = [take(attention + f"{n}/bias").flatten() for n in ("query", "key", "value")]
        out[dst + "attn.qkv.weight"] = torch.cat(kernels)
        out[dst + "attn.qkv.bias"] = torch.cat(biases)
        out[dst + "attn.proj.weight"] = take(attention + "out/kernel").flatten(0, 1).T  # [heads, hd, D]
        out[dst + "attn.proj.bias"] = take(attention + "out/bias")
        out[dst + "norm2.weight"] = take(src + "LayerNorm_2/scale")
        out[dst + "norm2.bias"] = take(src + "LayerNorm_2/bias")
        for j in (0, 1):
            out[dst + f"mlp.fc{j + 1}.weight"] = take(src + f"MlpBlock_3/Dense_{j}/kernel").T
            out[dst + f"mlp.fc{j + 1}.bias"] = take(src + f"MlpBlock_3/Dense_{j}/bias")
    norm = "fc_norm" if fc_norm else "norm"
    out[f"{norm}.weight"] = take("Transformer/encoder_norm/scale")
    out[f"{norm}.bias"] = take("Transformer/encoder_norm/bias")
    if "pre_logits/kernel" in remaining:
        out["pre_logits.fc.weight"] = take("pre_logits/kernel").T
        out["pre_logits.fc.bias"] = take("pre_logits/bias")
    if "head/kernel" in remaining:
        out["head.weight"] = take("head/kernel").T
        out["head.bias"] = take("head/bias")
    if remaining:
        raise KeyError(f"JAX checkpoint has unexpected arrays {sorted(remaining)}")
    return {k: v.contiguous() for k, v in out.items()}


def from_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A ``transformers`` ViT state dict as ours (timm's names; ``vit.`` prefix and pooler dropped)."""
    state_dict = check_state_dict(state_dict)
    remaining = {
        k.removeprefix("vit."): v
        for k, v in state_dict.items()
        if not k.startswith(("pooler.", "vit.pooler."))
    }

    def take(key: str) -> Tensor:
        if key not in remaining:
            raise KeyError(f"transformers checkpoint lacks {key!r}")
        return remaining.pop(key)

    out = {
        "cls_token": take("embeddings.cls_token"),
        "pos_embed": take("embeddings.position_embeddings"),
        "patch_embed.proj.weight": take("embeddings.patch_embeddings.projection.weight"),
        "patch_embed.proj.bias": take("embeddings.patch_embeddings.projection.bias"),
    }
    # transformers 5 names blocks ``layers.<i>.attention.{q,k,v,o}_proj, mlp.fc1/fc2``; 4.x named them
    # ``encoder.layer.<i>.attention.attention.{query,key,value}, attention.output.dense, intermediate.dense,
    # output.dense``. Both are read.
    if "layers.0.layernorm_before.weight" in remaining:
        block, names = "layers.{}.", {
            "q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj",
            "o": "attention.o_proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2",
        }  # fmt: skip
    else:
        block, names = "encoder.layer.{}.", {
            "q": "attention.attention.query", "k": "attention.attention.key", "v": "attention.attention.value",
            "o": "attention.output.dense", "fc1": "intermediate.dense", "fc2": "output.dense",
        }  # fmt: skip
    depth = 0
    while block.format(depth) + "layernorm_before.weight" in remaining:
        depth += 1
    if depth == 0:
        raise KeyError("transformers checkpoint has no blocks ('layers.0.*' or 'encoder.layer.0.*')")
    for i in range(depth):
        src, dst = block.format(i), f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"norm1.{kind}"] = take(src + f"layernorm_before.{kind}")
            out[dst + f"attn.qkv.{kind}"] = torch.cat(
                [take(src + f"{names[n]}.{kind}") for n in ("q", "k", "v")]
            )
            out[dst + f"attn.proj.{kind}"] = take(src + f"{names['o']}.{kind}")
            out[dst + f"norm2.{kind}"] = take(src + f"layernorm_after.{kind}")
            out[dst + f"mlp.fc1.{kind}"] = take(src + f"{names['fc1']}.{kind}")
            out[dst + f"mlp.fc2.{kind}"] = take(src + f"{names['fc2']}.{kind}")
    for kind in ("weight", "bias"):
        out[f"norm.{kind}"] = take(f"layernorm.{kind}")
        if f"classifier.{kind}" in remaining:
            out[f"head.{kind}"] = take(f"classifier.{kind}")
    if remaining:
        raise KeyError(f"transformers checkpoint has unexpected keys {sorted(remaining)}")
    return out
