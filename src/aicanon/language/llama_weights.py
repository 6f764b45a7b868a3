"""Llama weights in the two released layouts: transformers' ``LlamaForCausalLM`` and Meta's consolidated
checkpoints, converted to and from :class:`~aicanon.language.llama.Llama`; safetensors files.

**transformers layout.** Our module names are transformers' without the ``model.`` prefix
(``model.layers.0.self_attn.q_proj.weight`` is our ``layers.0.self_attn.q_proj.weight``;
``lm_head.weight`` is shared). Both rotate half-split pairs ``(i, i + d/2)`` in RoPE, so the tensors
are used as they are.

**Meta layout** (``consolidated.NN.pth`` of the original release, Meta's ``model.py``)::

    tok_embeddings.weight                     embed_tokens.weight
    layers.N.attention.w{q,k,v,o}.weight      layers.N.self_attn.{q,k,v,o}_proj.weight
    layers.N.feed_forward.w1 / w3 / w2        layers.N.mlp.gate_proj / up_proj / down_proj
    layers.N.attention_norm.weight            layers.N.input_layernorm.weight
    layers.N.ffn_norm.weight                  layers.N.post_attention_layernorm.weight
    norm.weight, output.weight                norm.weight, lm_head.weight

Meta's code applies RoPE as complex multiplication on *adjacent* pairs ``(2i, 2i+1)`` of each head
(``torch.view_as_complex``), ours on half-split pairs. The two models are equal after permuting, in
every head of ``wq`` and ``wk``, the output rows ``[0, 1, 2, 3, ...]`` to ``[0, 2, 4, ..., 1, 3, 5,
...]`` (:func:`aicanon.nn.rotary.interleaved_to_half_permutation`): query and key are permuted alike,
so ``q . k`` is unchanged and each rotated pair lands where the half-split rotation expects it.
``wv`` and ``wo`` are not rotated and not permuted. Checkpoints sharded for model parallelism (13B:
2 files, 70B: 8) are joined by :func:`merge_meta_shards` along the dimension each layer was split on
(Meta's ``ColumnParallelLinear``/``RowParallelLinear``/``ParallelEmbedding``).

Loading: the converters return our state dict, which
:func:`aicanon.core.state_dict.load_state_dict_strict` copies into a :class:`~aicanon.language.llama.Llama`
(``load_state_dict_strict(model, from_transformers(state_dict, cfg))``), listing every missing,
unexpected or mis-shaped tensor; a tied ``lm_head.weight`` may be absent.

Folders: :func:`load_pretrained` (``Llama.from_pretrained``) reads a transformers folder
(``config.json`` and ``model.safetensors`` or index-listed shards) in one call, refusing config options
that change the function and that we lack (biases, another activation or head size, RoPE scaling
other than Llama 3.1's) and pickled ``pytorch_model.bin`` folders; :func:`save_pretrained`
(``model.save_pretrained``) writes one transformers' ``LlamaForCausalLM.from_pretrained`` loads.

Departures: ``rope.freqs`` (a buffer some Llama 2 checkpoints carry; recomputed here from the
config) is dropped on load and not written on save. Nothing is unpickled: Meta's ``.pth`` files must
be read by the caller with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.core.pretrained import parse_size, read_transformers_folder, write_transformers_folder
from aicanon.core.state_dict import check_state_dict
from aicanon.language.llama import LlamaConfig
from aicanon.nn.rotary import interleaved_to_half_permutation

__all__ = [
    "config_from_meta_params",
    "config_from_transformers",
    "config_to_transformers",
    "expected_keys",
    "from_meta",
    "from_transformers",
    "load_pretrained",
    "load_safetensors",
    "merge_meta_shards",
    "save_pretrained",
    "save_safetensors",
    "split_meta_shards",
    "to_meta",
    "to_transformers",
]

# Layout of one block: (ours, Meta's) suffixes after ``layers.N.``.
_BLOCK_KEYS = (
    ("self_attn.q_proj.weight", "attention.wq.weight"),
    ("self_attn.k_proj.weight", "attention.wk.weight"),
    ("self_attn.v_proj.weight", "attention.wv.weight"),
    ("self_attn.o_proj.weight", "attention.wo.weight"),
    ("mlp.gate_proj.weight", "feed_forward.w1.weight"),
    ("mlp.down_proj.weight", "feed_forward.w2.weight"),
    ("mlp.up_proj.weight", "feed_forward.w3.weight"),
    ("input_layernorm.weight", "attention_norm.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
)
_TOP_KEYS = (
    ("embed_tokens.weight", "tok_embeddings.weight"),
    ("norm.weight", "norm.weight"),
    ("lm_head.weight", "output.weight"),
)
# Buffers that released checkpoints may carry and that are recomputed from the config.
_IGNORED = re.compile(
    r"^(rope\.freqs|(model\.)?layers\.\d+\.self_attn\.rotary_emb\.inv_freq|(model\.)?rotary_emb\.inv_freq)$"
)
# Meta's model-parallel split dimension of each tensor (None: replicated in every shard).
_META_SHARD_DIM = {
    "tok_embeddings.weight": 1,
    "output.weight": 0,
    "norm.weight": None,
    "attention.wq.weight": 0,
    "attention.wk.weight": 0,
    "attention.wv.weight": 0,
    "attention.wo.weight": 1,
    "feed_forward.w1.weight": 0,
    "feed_forward.w3.weight": 0,
    "feed_forward.w2.weight": 1,
    "attention_norm.weight": None,
    "ffn_norm.weight": None,
}


def _round_up(value: int, multiple: int) -> int:
    return multiple * ((value + multiple - 1) // multiple)


def config_from_meta_params(
    params: Mapping[str, Any], vocab_size: int | None = None, max_seq_len: int | None = None
) -> LlamaConfig:
    """A :class:`LlamaConfig` from Meta's ``params.json``.

    The FFN width is derived as Meta's ``FeedForward`` does: ``int(2 * 4 * dim / 3)``, times
    ``ffn_dim_multiplier`` when given, rounded up to a multiple of ``multiple_of``. Llama 2's
    params.json has ``vocab_size: -1`` (set from the tokenizer): pass ``vocab_size`` then.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping (params.json), got {type(params).__name__}")
    missing = [k for k in ("dim", "n_layers", "n_heads", "multiple_of") if k not in params]
    if missing:
        raise ValueError(f"params must hold dim, n_layers, n_heads and multiple_of, missing {missing}")
    dim = int(params["dim"])
    hidden = int(2 * 4 * dim / 3)
    if params.get("ffn_dim_multiplier") is not None:
        hidden = int(float(params["ffn_dim_multiplier"]) * hidden)
    hidden = _round_up(hidden, int(params["multiple_of"]))
    vocab = vocab_size if vocab_size is not None else int(params.get("vocab_size", -1))
    if vocab < 1:
        raise ValueError(
            f"vocab_size must be given when params.json has none (got {params.get('vocab_size')!r})"
        )
    theta = float(params.get("rope_theta", 10000.0))
    scaling = None
    if params.get("use_scaled_rope"):
        scaling = {
            "rope_type": "llama3",
            "factor": float(params.get("rope_scaling_factor", 8.0)),
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        }
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=dim,
        intermediate_size=hidden,
        num_layers=int(params["n_layers"]),
        num_heads=int(params["n_heads"]),
        num_kv_heads=int(params.get("n_kv_heads") or params["n_heads"]),
        max_seq_len=max_seq_len if max_seq_len is not None else (4096 if theta == 10000.0 else 8192),
        rope_theta=theta,
        rope_scaling=scaling,
        norm_eps=float(params.get("norm_eps", 1e-5)),
    )


def _refuse_unsupported(data: Mapping[str, Any], scaling: Mapping[str, Any] | None) -> None:
    """Raise ValueError for transformers options that change the function and that our Llama lacks:
    dropping them would load weights into a different network without a word."""
    problems = []
    model_type = data.get("model_type", "llama")
    if model_type != "llama":
        problems.append(f"model_type={model_type!r} (only 'llama')")
    act = data.get("hidden_act", "silu")
    if act != "silu":
        problems.append(f"hidden_act={act!r} (only 'silu', SwiGLU)")
    for flag in ("attention_bias", "mlp_bias"):
        if data.get(flag):
            problems.append(f"{flag}={data[flag]!r} (only False: our projections have no bias)")
    heads, hidden = data.get("num_attention_heads"), data.get("hidden_size")
    head_dim = data.get("head_dim")
    if head_dim is not None and heads and hidden and head_dim * heads != hidden:
        problems.append(f"head_dim={head_dim} (only hidden_size / num_attention_heads = {hidden / heads:g})")
    if data.get("attention_dropout"):
        problems.append(f"attention_dropout={data['attention_dropout']!r} (only 0.0)")
    if scaling is not None:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind != "llama3":
            problems.append(f"rope type {kind!r} (only 'default' and 'llama3')")
    rope = data.get("rope_parameters") or {}
    partial = rope.get("partial_rotary_factor", data.get("partial_rotary_factor", 1.0))
    if partial not in (None, 1, 1.0):
        problems.append(f"partial_rotary_factor={partial!r} (only 1.0)")
    if problems:
        raise ValueError(
            "config must describe a model our Llama computes exactly; unsupported options: "
            + "; ".join(problems)
        )


def config_from_transformers(config: Mapping[str, Any] | Any) -> LlamaConfig:
    """A :class:`LlamaConfig` from transformers' ``LlamaConfig`` (object or ``config.json`` dict).

    Options that change the function and that we do not implement (biases, another activation, a
    head_dim other than hidden/heads, RoPE scaling other than Llama 3.1's, ...) raise ValueError.
    """
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    rope = data.get("rope_parameters") or {}
    scaling = data.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
    if scaling is not None and scaling.get("rope_type", scaling.get("type")) == "default":
        scaling = None
    if scaling is not None:
        scaling = {k: v for k, v in scaling.items() if k != "rope_theta"}
    _refuse_unsupported(data, scaling)
    theta = data.get("rope_theta", rope.get("rope_theta", 10000.0))
    return LlamaConfig(
        vocab_size=data["vocab_size"],
        hidden_size=data["hidden_size"],
        intermediate_size=data["intermediate_size"],
        num_layers=data["num_hidden_layers"],
        num_heads=data["num_attention_heads"],
        num_kv_heads=data.get("num_key_value_heads") or data["num_attention_heads"],
        max_seq_len=data.get("max_position_embeddings", 4096),
        rope_theta=float(theta),
        rope_scaling=scaling,
        norm_eps=float(data.get("rms_norm_eps", 1e-5)),
        tie_embeddings=bool(data.get("tie_word_embeddings", False)),
    )


def expected_keys(cfg: LlamaConfig) -> list[str]:
    """Our state-dict keys for ``cfg`` (``lm_head.weight`` omitted when embeddings are tied)."""
    keys = ["embed_tokens.weight"]
    for i in range(cfg.num_layers):
        keys += [f"layers.{i}.{ours}" for ours, _ in _BLOCK_KEYS]
    keys.append("norm.weight")
    if not cfg.tie_embeddings:
        keys.append("lm_head.weight")
    return keys


def _check_state_dict(state_dict: Any, argument: str) -> dict[str, Tensor]:
    state_dict = check_state_dict(state_dict, argument)
    return {k: v for k, v in state_dict.items() if not _IGNORED.match(k)}


def _require_keys(state_dict: Mapping[str, Tensor], expected: list[str], argument: str, optional=()) -> None:
    """Raise ValueError listing missing and unexpected keys (DESIGN: name what was expected and what came)."""
    missing = [k for k in expected if k not in state_dict and k not in optional]
    unexpected = sorted(set(state_dict) - set(expected) - set(optional))
    if missing or unexpected:
        raise ValueError(
            f"{argument} does not match the model's layout: missing keys {missing[:20]}"
            f"{' ...' if len(missing) > 20 else ''} ({len(missing)} in all), unexpected keys {unexpected[:20]}"
            f"{' ...' if len(unexpected) > 20 else ''} ({len(unexpected)} in all)"
        )


def from_transformers(state_dict: Mapping[str, Tensor], cfg: LlamaConfig | None = None) -> dict[str, Tensor]:
    """Our state dict from a transformers ``LlamaForCausalLM`` (or ``LlamaModel``) state dict.

    With ``cfg``, keys are checked against it: missing and unexpected keys are listed in a ValueError.
    """
    state_dict = _check_state_dict(state_dict, "state_dict")
    out = {(k.removeprefix("model.")): v for k, v in state_dict.items()}
    if cfg is not None:
        optional = ("lm_head.weight",) if cfg.tie_embeddings else ()
        _require_keys(out, expected_keys(cfg), "state_dict", optional)
    return out


def to_transformers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """transformers ``LlamaForCausalLM`` keys for our state dict (``model.`` prefix; ``lm_head`` kept)."""
    state_dict = _check_state_dict(state_dict, "state_dict")
    return {(k if k.startswith("lm_head.") else "model." + k): v for k, v in state_dict.items()}


def _permute_rows(weight: Tensor, heads: int, index: Tensor, argument: str) -> Tensor:
    """Reorder the output rows of each of ``heads`` heads of ``weight [heads * d, in]`` by ``index``."""
    rows, columns = weight.shape
    if rows % heads or rows // heads != index.numel():
        raise ValueError(
            f"{argument} must have {heads} heads of {index.numel()} rows, got shape {tuple(weight.shape)}"
        )
    return weight.view(heads, rows // heads, columns)[:, index.to(weight.device), :].reshape(rows, columns)


def _meta_name_maps(cfg: LlamaConfig) -> dict[str, str]:
    """Meta key -> our key for ``cfg``."""
    names = {meta: ours for ours, meta in _TOP_KEYS}
    for i in range(cfg.num_layers):
        for ours, meta in _BLOCK_KEYS:
            names[f"layers.{i}.{meta}"] = f"layers.{i}.{ours}"
    if cfg.tie_embeddings:
        names.pop("output.weight")
    return names


def from_meta(state_dict: Mapping[str, Tensor], cfg: LlamaConfig) -> dict[str, Tensor]:
    """Our state dict from Meta's consolidated layout (one merged shard), permuting ``wq``/``wk``
    from adjacent-pair to half-split RoPE (module docstring)."""
    if not isinstance(cfg, LlamaConfig):
        raise TypeError(f"cfg must be a LlamaConfig, got {type(cfg).__name__}")
    state_dict = _check_state_dict(state_dict, "state_dict")
    names = _meta_name_maps(cfg)
    _require_keys(state_dict, list(names), "state_dict (Meta layout)")
    to_half = interleaved_to_half_permutation(cfg.head_dim)
    out = {}
    for meta, ours in names.items():
        tensor = state_dict[meta]
        if meta.endswith("attention.wq.weight"):
            tensor = _permute_rows(tensor, cfg.num_heads, to_half, meta)
        elif meta.endswith("attention.wk.weight"):
            tensor = _permute_rows(tensor, cfg.num_kv_heads, to_half, meta)
        out[ours] = tensor
    return out


def to_meta(state_dict: Mapping[str, Tensor], cfg: LlamaConfig) -> dict[str, Tensor]:
    """Meta's consolidated layout of our state dict (inverse of :func:`from_meta`)."""
    if not isinstance(cfg, LlamaConfig):
        raise TypeError(f"cfg must be a LlamaConfig, got {type(cfg).__name__}")
    state_dict = _check_state_dict(state_dict, "state_dict")
    names = {ours: meta for meta, ours in _meta_name_maps(cfg).items()}
    _require_keys(
        state_dict, list(names), "state_dict", optional=("lm_head.weight",) if cfg.tie_embeddings else ()
    )
    # The inverse permutation: interleaved[..., p[j]] = half[..., j].
    to_interleaved = torch.argsort(interleaved_to_half_permutation(cfg.head_dim))
    out = {}
    for ours, meta in names.items():
        tensor = state_dict[ours]
        if ours.endswith("self_attn.q_proj.weight"):
            tensor = _permute_rows(tensor, cfg.num_heads, to_interleaved, ours)
        elif ours.endswith("self_attn.k_proj.weight"):
            tensor = _permute_rows(tensor, cfg.num_kv_heads, to_interleaved, ours)
        out[meta] = tensor
    return out


def _shard_dim(key: str) -> int | None:
    suffix = key.split(".", 2)[2] if key.startswith("layers.") else key
    if suffix not in _META_SHARD_DIM:
        raise ValueError(f"shards hold a key outside Meta's layout: {key!r}")
    return _META_SHARD_DIM[suffix]


def merge_meta_shards(shards: list[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Join Meta's model-parallel ``consolidated.NN.pth`` state dicts (in file order) into one."""
    if not isinstance(shards, (list, tuple)) or not shards:
        raise ValueError(
            f"shards must be a non-empty list of state dicts, got {type(shards).__name__} of length {len(shards) if isinstance(shards, (list, tuple)) else '-'}"
        )
    shards = [_check_state_dict(s, f"shards[{i}]") for i, s in enumerate(shards)]
    keys = set(shards[0])
    for i, shard in enumerate(shards[1:], start=1):
        if set(shard) != keys:
            raise ValueError(
                f"shards[{i}] must hold the keys of shards[0]; differs in {sorted(set(shard) ^ keys)[:10]}"
            )
    out = {}
    for key in shards[0]:
        dim = _shard_dim(key)
        out[key] = (
            shards[0][key]
            if dim is None or len(shards) == 1
            else torch.cat([s[key] for s in shards], dim=dim)
        )
    return out


def split_meta_shards(state_dict: Mapping[str, Tensor], num_shards: int) -> list[dict[str, Tensor]]:
    """Split a Meta-layout state dict into ``num_shards`` model-parallel shards (inverse of the merge)."""
    check_int("num_shards", num_shards)
    state_dict = _check_state_dict(state_dict, "state_dict")
    shards: list[dict[str, Tensor]] = [{} for _ in range(num_shards)]
    for key, tensor in state_dict.items():
        dim = _shard_dim(key)
        if dim is None:
            parts = [tensor] * num_shards
        else:
            if tensor.shape[dim] % num_shards:
                raise ValueError(
                    f"{key} of shape {tuple(tensor.shape)} does not split into {num_shards} along dim {dim}"
                )
            parts = list(torch.chunk(tensor, num_shards, dim=dim))
        for shard, part in zip(shards, parts):
            shard[key] = part.clone()
    return shards


def save_safetensors(
    state: nn.Module | Mapping[str, Tensor],
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write a model's (or a state dict's) tensors to ``path`` in safetensors format.

    Tied tensors are written once (``lm_head.weight`` dropped when it is the embedding), as
    safetensors refuses shared storage; :func:`aicanon.core.state_dict.load_state_dict_strict`
    accepts the result.
    """
    from safetensors.torch import save_file

    if isinstance(state, nn.Module):
        state = state.state_dict()
    state = _check_state_dict(state, "state")
    tensors: dict[str, Tensor] = {}
    seen: dict[int, str] = {}
    for key, tensor in state.items():
        pointer = tensor.data_ptr()
        if pointer in seen and tensor.numel() and key == "lm_head.weight":
            continue  # tied to embed_tokens.weight
        seen[pointer] = key
        tensors[key] = tensor.detach().cpu().contiguous()
    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError("metadata must map str to str")
    save_file(tensors, str(path), metadata=dict(metadata) if metadata else None)


def load_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Tensors of a safetensors file, or of a folder holding one or a sharded checkpoint
    (``model.safetensors.index.json``, transformers' layout)."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        index = path / "model.safetensors.index.json"
        if index.exists():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        else:
            files = sorted(p.name for p in path.glob("*.safetensors"))
        if not files:
            raise ValueError(
                f"path must be a safetensors file or a folder holding some, got {str(path)!r} with none"
            )
        out: dict[str, Tensor] = {}
        for name in files:
            out.update(load_file(str(path / name), device=str(device)))
        return out
    if not path.exists():
        raise ValueError(f"path must name an existing safetensors file or folder, got {str(path)!r}")
    return load_file(str(path), device=str(device))


# ---------------------------------------------------------------- transformers folders

# Folder reading and writing (shared with ALBERT and DETR) live in aicanon.core.pretrained.
_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def config_to_transformers(cfg: LlamaConfig, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """transformers' ``config.json`` of ``cfg`` (``LlamaForCausalLM``), the inverse of
    :func:`config_from_transformers`. Only rotary Llamas exist in transformers: learned or no
    positions raise ValueError."""
    if not isinstance(cfg, LlamaConfig):
        raise TypeError(f"cfg must be a LlamaConfig, got {type(cfg).__name__}")
    if cfg.position != "rope":
        raise ValueError(
            f"cfg.position must be 'rope' to be written for transformers' LlamaForCausalLM, got {cfg.position!r}"
        )
    if dtype not in _DTYPE_NAMES:
        raise ValueError(f"dtype must be one of {list(_DTYPE_NAMES.values())}, got {dtype}")
    rope = {"rope_theta": cfg.rope_theta, "rope_type": "default"}
    if cfg.rope_scaling is not None:
        rope = {**cfg.rope_scaling, "rope_theta": cfg.rope_theta}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        # transformers 5 reads rope_parameters; 4.x reads rope_theta and rope_scaling: both written.
        "rope_theta": cfg.rope_theta,
        "rope_scaling": dict(cfg.rope_scaling) if cfg.rope_scaling is not None else None,
        "rope_parameters": rope,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": cfg.init_std,
        "pretraining_tp": 1,
        "use_cache": True,
        # "dtype" for transformers 5, "torch_dtype" for 4.x.
        "dtype": _DTYPE_NAMES[dtype],
        "torch_dtype": _DTYPE_NAMES[dtype],
    }


def load_pretrained(
    path: str | os.PathLike, dtype: torch.dtype | None = None, model_class: type | None = None
) -> Any:
    """A :class:`~aicanon.language.llama.Llama` from a transformers ``LlamaForCausalLM`` folder:
    ``config.json`` and ``model.safetensors``, or shards listed in ``model.safetensors.index.json``.

    The config is read by :func:`config_from_transformers` (unsupported options refused), the tensors
    renamed by :func:`from_transformers` and copied by the strict loader. The model is float32
    unless ``dtype`` is given. Pickled ``pytorch_model.bin`` folders are refused (never unpickled).
    """
    from aicanon.core.state_dict import load_state_dict_strict
    from aicanon.language.llama import Llama

    model_class = Llama if model_class is None else model_class
    config, tensors = read_transformers_folder(path, "LlamaForCausalLM")
    cfg = config_from_transformers(config)
    model = model_class(cfg)
    if dtype is not None:
        model = model.to(dtype)
    load_state_dict_strict(
        model, from_transformers(tensors, cfg), source=f"transformers checkpoint {str(path)!r}"
    )
    return model


def save_pretrained(
    model: nn.Module, path: str | os.PathLike, max_shard_size: int | str | None = None
) -> None:
    """Write ``model`` (a rotary :class:`~aicanon.language.llama.Llama`) as a folder transformers'
    ``LlamaForCausalLM.from_pretrained`` loads: ``config.json`` and ``model.safetensors``, or, with
    ``max_shard_size`` (bytes, or a str such as ``"5GB"``), ``model-0000i-of-0000n.safetensors``
    shards with ``model.safetensors.index.json``. A tensor larger than the limit gets a shard of its
    own (as in transformers). Tied embeddings are written once (``lm_head.weight`` left out).
    Earlier weight files of transformers' names in the folder are removed, so no stale shard is read.
    """
    cfg = getattr(model, "config", None)
    if not isinstance(model, nn.Module) or not isinstance(cfg, LlamaConfig):
        raise TypeError(f"model must be a Llama, got {type(model).__name__}")
    if max_shard_size is not None:
        parse_size(max_shard_size)  # refused before anything is converted or written
    state = model.state_dict()
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) != 1:
        raise ValueError(f"model must hold one floating dtype to be saved, got {sorted(map(str, dtypes))}")
    config = config_to_transformers(cfg, dtype=dtypes.pop())
    # Checked against the config so that a model with a replaced MLP (Switch experts) is refused
    # here rather than written as a checkpoint transformers cannot load.
    optional = ("lm_head.weight",) if cfg.tie_embeddings else ()
    _require_keys(
        _check_state_dict(state, "model.state_dict()"), expected_keys(cfg), "model.state_dict()", optional
    )
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)  # safetensors refuses shared storage; transformers re-ties it
    write_transformers_folder(path, config, to_transformers(state), max_shard_size)
