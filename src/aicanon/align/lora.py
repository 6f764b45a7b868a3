"""LoRA: low-rank adaptation (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

A pre-trained weight ``W0 in R^{d x k}`` is frozen and its update is constrained to a low-rank product
``W0 + dW = W0 + B A`` with ``B in R^{d x r}``, ``A in R^{r x k}``, ``r << min(d, k)`` (Section 4.1).
The modified forward pass is

    h = W0 x + dW x = W0 x + B A x                                        (3)

with ``B A x`` scaled by ``alpha / r``: "we scale dW x by alpha/r ... tuning alpha is roughly the same
as tuning the learning rate" (Section 4.1). ``A`` starts random and ``B`` at zero, so ``dW = B A = 0``
at the start and the adapted model begins exactly at the pre-trained one. Merging ``W = W0 + B A``
(:func:`merge_lora`) gives a plain layer again: "no additional inference latency" (Section 4.1), and
:func:`unmerge_lora` subtracts it back to switch tasks.

Section 7.2 compares the subspaces learned at two ranks with the normalised subspace similarity

    phi(A1, A2, i, j) = ||U_{A1}^{i T} U_{A2}^{j}||_F^2 / min(i, j)  in [0, 1]     (4)

where ``U^i`` holds the top-``i`` right-singular vectors of ``A`` (:func:`subspace_similarity`).

What is here:

* :class:`LoRALinear`, :class:`LoRAEmbedding`, :class:`LoRAConv2d`: a frozen base layer (kept as
  ``base_layer``) plus the low-rank path, with peft's parameter names (``lora_A.weight``,
  ``lora_B.weight``; ``lora_embedding_A``/``lora_embedding_B`` for embeddings), so adapters move
  between aicanon and peft unchanged;
* :func:`apply_lora` wraps the modules whose names match ``target_modules`` and freezes every other
  parameter except those of ``modules_to_save`` (a classification head, for instance);
* :func:`merge_lora` / :func:`unmerge_lora`;
* :func:`adapter_state_dict` / :func:`load_adapter_state_dict` / :func:`adapter_config` in peft's
  format (keys ``base_model.model.<module>.lora_A.weight``; ``adapter_config.json`` with ``r``,
  ``lora_alpha``, ``target_modules`` ...), and :func:`save_adapter` / :func:`load_adapter` which write
  and read ``adapter_model.safetensors`` + ``adapter_config.json`` in a folder;
* :func:`subspace_similarity` (Eq. 4) and :func:`count_parameters`.

Departures from the paper, and why:

* Initialisation of ``A``: the paper says "random Gaussian" (Section 4.1) without a scale. The default
  here, ``init="kaiming"``, is peft's default (Kaiming-uniform with ``a = sqrt(5)``, the ``nn.Linear``
  default), so a seeded adapter equals peft's; ``init="gaussian"`` draws ``A ~ N(0, 1/r^2)`` (peft's
  ``"gaussian"`` option). Both leave ``B = 0`` and therefore ``dW = 0`` at the start, which is what
  the paper's argument rests on.
* Embedding LoRA follows peft (``A = 0``, ``B ~ N(0, 1)``, no dropout): the paper adapts only the
  attention weights; the embedding variant is the ecosystem's and we keep its convention for
  interchangeable adapters. Its product is zero at the start either way.
* Dropout on the LoRA path (``B A dropout(x)``) is not in the paper's Eq. 3; it is peft's and the
  paper's own released code's option (``lora_dropout``), 0 by default.
* Module names in saved adapters: an :class:`aicanon.language.llama.Llama` is saved under transformers'
  ``LlamaForCausalLM`` names (``model.layers.0...``), any other model under its own names (or a
  ``name_map`` the caller gives).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int, check_probability

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "LoRAConfig",
    "LoRAConv2d",
    "LoRAEmbedding",
    "LoRALinear",
    "adapter_config",
    "adapter_state_dict",
    "apply_lora",
    "count_parameters",
    "load_adapter",
    "load_adapter_state_dict",
    "lora_layers",
    "merge_lora",
    "save_adapter",
    "subspace_similarity",
    "unmerge_lora",
]

ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_CONFIG_NAME = "adapter_config.json"
_PEFT_PREFIX = "base_model.model."
_INITS = ("kaiming", "gaussian")


def _check_hyperparameters(r: Any, alpha: Any, dropout: Any, init: Any) -> None:
    check_int("r", r, note="the rank of B A")
    check_float("alpha", alpha, 0, min_inclusive=False, note="the update is scaled by alpha / r")
    check_probability("dropout", dropout, allow_one=False)
    if init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}")


class _LoRALayer(nn.Module):
    """What the three LoRA layers share: the frozen base layer, scaling ``alpha / r``, merge state."""

    base_layer: nn.Module

    def __init__(self, base_layer: nn.Module, r: int, alpha: float, dropout: float, init: str) -> None:
        super().__init__()
        _check_hyperparameters(r, alpha, dropout, init)
        self.base_layer = base_layer
        for p in self.base_layer.parameters():
            p.requires_grad_(False)  # Section 4.1: W0 is frozen and receives no gradient updates
        self.r, self.alpha, self.init = r, float(alpha), init
        self.scaling = self.alpha / r  # Section 4.1: dW x is scaled by alpha / r
        self.merged = False

    def delta_weight(self) -> Tensor:
        """``dW = B A * alpha / r`` in the base weight's shape."""
        raise NotImplementedError

    @torch.no_grad()
    def reset_lora_parameters(self) -> None:
        """A random (Gaussian, or peft's Kaiming-uniform), B zero; the layers with ``lora_A`` and
        ``lora_B`` modules (linear, convolution) use this, the embedding overrides it."""
        # Section 4.1: "random Gaussian initialization for A and zero for B, so dW = BA is zero at the
        # beginning of training" (see the module docstring for the scale of A).
        if self.init == "kaiming":
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        else:
            nn.init.normal_(self.lora_A.weight, std=1.0 / self.r)
        nn.init.zeros_(self.lora_B.weight)

    @torch.no_grad()
    def merge(self) -> None:
        """``W = W0 + B A alpha/r`` in place (Section 4.1: no added inference latency)."""
        if self.merged:
            raise ValueError(
                "merge: this LoRA layer is already merged (expected an unmerged layer, got merged=True)"
            )
        weight = self.base_layer.weight
        weight.add_(self.delta_weight().to(weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """``W0 = W - B A alpha/r``: back to the frozen base weight (to switch tasks, Section 4.1)."""
        if not self.merged:
            raise ValueError(
                "unmerge: this LoRA layer is not merged (expected merged=True, got merged=False)"
            )
        weight = self.base_layer.weight
        weight.sub_(self.delta_weight().to(weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


class LoRALinear(_LoRALayer):
    """``h = W0 x + B A dropout(x) * alpha / r`` (Eq. 3) around a frozen ``nn.Linear``."""

    def __init__(
        self,
        base_layer: nn.Linear,
        r: int = 8,
        alpha: float = 8.0,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"base_layer must be an nn.Linear, got {type(base_layer).__name__}")
        super().__init__(base_layer, r, alpha, dropout, init)
        factory = {"device": base_layer.weight.device, "dtype": base_layer.weight.dtype}
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False, **factory)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False, **factory)
        self.reset_lora_parameters()

    def delta_weight(self) -> Tensor:
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        return out + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


class LoRAEmbedding(_LoRALayer):
    """``E[x] + (A^T[x] B^T) * alpha / r`` around a frozen ``nn.Embedding`` (peft's layout).

    ``lora_embedding_A`` is ``[r, num_embeddings]`` and ``lora_embedding_B`` ``[embedding_dim, r]``;
    ``A`` starts at zero and ``B`` at N(0, 1) as in peft (module docstring).
    """

    def __init__(
        self,
        base_layer: nn.Embedding,
        r: int = 8,
        alpha: float = 8.0,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        if not isinstance(base_layer, nn.Embedding):
            raise TypeError(f"base_layer must be an nn.Embedding, got {type(base_layer).__name__}")
        super().__init__(base_layer, r, alpha, dropout, init)
        factory = {"device": base_layer.weight.device, "dtype": base_layer.weight.dtype}
        self.lora_embedding_A = nn.Parameter(torch.zeros(r, base_layer.num_embeddings, **factory))
        self.lora_embedding_B = nn.Parameter(torch.empty(base_layer.embedding_dim, r, **factory))
        self.reset_lora_parameters()

    @torch.no_grad()
    def reset_lora_parameters(self) -> None:
        nn.init.zeros_(self.lora_embedding_A)
        nn.init.normal_(self.lora_embedding_B)

    def delta_weight(self) -> Tensor:
        return (self.lora_embedding_B @ self.lora_embedding_A).T * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        base = self.base_layer
        after_a = F.embedding(
            x,
            self.lora_embedding_A.T,
            base.padding_idx,
            base.max_norm,
            base.norm_type,
            base.scale_grad_by_freq,
            base.sparse,
        )
        return out + (after_a @ self.lora_embedding_B.T) * self.scaling


class LoRAConv2d(_LoRALayer):
    """``conv(x; W0) + conv1x1(conv(dropout(x); A); B) * alpha / r`` around a frozen ``nn.Conv2d``.

    ``A`` is a convolution with the base layer's kernel, stride, padding and dilation into ``r``
    channels, ``B`` a 1 x 1 convolution back (peft's layout), so ``dW = B A`` has the base kernel's
    shape and merges exactly. Grouped convolutions are not supported.
    """

    def __init__(
        self,
        base_layer: nn.Conv2d,
        r: int = 8,
        alpha: float = 8.0,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        if not isinstance(base_layer, nn.Conv2d):
            raise TypeError(f"base_layer must be an nn.Conv2d, got {type(base_layer).__name__}")
        if base_layer.groups != 1 or base_layer.padding_mode != "zeros":
            raise ValueError(
                f"base_layer must have groups=1 and padding_mode='zeros', got groups={base_layer.groups}, "
                f"padding_mode={base_layer.padding_mode!r}"
            )
        super().__init__(base_layer, r, alpha, dropout, init)
        factory = {"device": base_layer.weight.device, "dtype": base_layer.weight.dtype}
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Conv2d(
            base_layer.in_channels,
            r,
            base_layer.kernel_size,
            base_layer.stride,
            base_layer.padding,
            base_layer.dilation,
            bias=False,
            **factory,
        )
        self.lora_B = nn.Conv2d(r, base_layer.out_channels, 1, 1, bias=False, **factory)
        self.reset_lora_parameters()

    def delta_weight(self) -> Tensor:
        a = self.lora_A.weight  # [r, in, kh, kw]
        b = self.lora_B.weight.flatten(1)  # [out, r]
        return (b @ a.flatten(1)).view(b.shape[0], *a.shape[1:]) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        return out + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


_WRAPPERS: dict[type, type[_LoRALayer]] = {
    nn.Linear: LoRALinear,
    nn.Embedding: LoRAEmbedding,
    nn.Conv2d: LoRAConv2d,
}


@dataclass
class LoRAConfig:
    """The settings :func:`apply_lora` used; saved as peft's ``adapter_config.json``."""

    target_modules: str | list[str]
    """A regular expression (matched in full) or module names (matched at the end of dotted names)."""
    r: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    modules_to_save: list[str] = field(default_factory=list)
    init: str = "kaiming"


def _matches(name: str, patterns: str | Sequence[str]) -> bool:
    """peft's rule: a str is a regular expression matched in full; a list entry matches the whole
    module name or its last dotted components (``"q_proj"`` matches ``layers.0.self_attn.q_proj``)."""
    if isinstance(patterns, str):
        return re.fullmatch(patterns, name) is not None
    return any(name == p or name.endswith("." + p) for p in patterns)


def _check_patterns(value: Any, argument: str) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        value = list(value)
        if all(isinstance(v, str) and v for v in value):
            return value
    raise TypeError(f"{argument} must be a str (regular expression) or a list of module names, got {value!r}")


def apply_lora(
    model: nn.Module,
    target_modules: str | Sequence[str],
    r: int = 8,
    alpha: float = 8.0,
    dropout: float = 0.0,
    modules_to_save: str | Sequence[str] = (),
    init: str = "kaiming",
) -> nn.Module:
    """Wrap the ``nn.Linear``/``nn.Embedding``/``nn.Conv2d`` modules named by ``target_modules`` in
    LoRA layers, in place, and freeze every parameter except the LoRA ones and those of
    ``modules_to_save`` (e.g. a new classification head). Returns ``model``.

    ``target_modules`` follows peft: a list of names matched against the end of each module's dotted
    name (``["q_proj", "v_proj"]``, Section 4.2's choice), or one regular expression matched in full.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    target_modules = _check_patterns(target_modules, "target_modules")
    modules_to_save = _check_patterns(modules_to_save, "modules_to_save")
    _check_hyperparameters(r, alpha, dropout, init)
    if lora_layers(model):
        raise ValueError(
            "model already has LoRA layers (expected a model without adapters, got one with them)"
        )
    candidates = [(n, m) for n, m in model.named_modules() if n and type(m) in _WRAPPERS]
    chosen = [(n, m) for n, m in candidates if _matches(n, target_modules)]
    if not chosen:
        matched_other = [n for n, m in model.named_modules() if n and _matches(n, target_modules)]
        raise ValueError(
            f"target_modules {target_modules!r} match no nn.Linear, nn.Embedding or nn.Conv2d module"
            + (f" (they match {matched_other[:10]}, which LoRA cannot wrap)" if matched_other else "")
            + f"; the model's wrappable modules are {[n for n, _ in candidates][:40]}"
        )
    saved = [n for n, _ in model.named_modules() if n and modules_to_save and _matches(n, modules_to_save)]
    if modules_to_save and not saved:
        raise ValueError(
            f"modules_to_save {modules_to_save!r} match no module; the model's modules are "
            f"{[n for n, _ in model.named_modules() if n][:40]}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, _WRAPPERS[type(module)](module, r=r, alpha=alpha, dropout=dropout, init=init))
    for name in saved:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(True)
    # The settings travel with the model so that save_adapter can write peft's adapter_config.json.
    model.lora_config = LoRAConfig(
        target_modules=target_modules,
        r=r,
        alpha=float(alpha),
        dropout=float(dropout),
        modules_to_save=saved,
        init=init,
    )
    return model


def lora_layers(model: nn.Module) -> dict[str, _LoRALayer]:
    """Name -> LoRA layer of every adapted module of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return {n: m for n, m in model.named_modules() if isinstance(m, _LoRALayer)}


def _require_lora(model: nn.Module, function: str) -> dict[str, _LoRALayer]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"{function}: model has no LoRA layers (expected a model passed through apply_lora)")
    return layers


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight, ``W = W0 + B A alpha/r`` (Section 4.1). Merging a
    merged model raises ValueError (it would add ``B A`` twice)."""
    layers = _require_lora(model, "merge_lora")
    already = [n for n, m in layers.items() if m.merged]
    if already:
        raise ValueError(
            f"merge_lora: expected unmerged LoRA layers, got already merged ones: {already[:10]}"
        )
    for layer in layers.values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Subtract every merged adapter from its base weight again (``W0 = W - B A alpha/r``)."""
    layers = _require_lora(model, "unmerge_lora")
    unmerged = [n for n, m in layers.items() if not m.merged]
    if unmerged:
        raise ValueError(f"unmerge_lora: expected merged LoRA layers, got unmerged ones: {unmerged[:10]}")
    for layer in layers.values():
        layer.unmerge()
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once), optionally only those with ``requires_grad``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


# ----- peft's adapter format -------------------------------------------------------------------------


def _default_name_map(model: nn.Module) -> Callable[[str], str]:
    from aicanon.language.llama import Llama

    if isinstance(model, Llama):
        # Our Llama's module names are transformers' LlamaForCausalLM's without "model." (lm_head aside).
        return lambda name: name if name.startswith("lm_head") else "model." + name
    return lambda name: name


def _lora_tensor_names(model: nn.Module) -> dict[str, Tensor]:
    """Our parameter name -> tensor of the adapter (LoRA factors and modules_to_save)."""
    out: dict[str, Tensor] = {}
    for name, layer in lora_layers(model).items():
        for pname, p in layer.named_parameters():
            if not pname.startswith("base_layer."):
                out[f"{name}.{pname}"] = p
    config = getattr(model, "lora_config", None)
    for module_name in config.modules_to_save if config is not None else ():
        for pname, p in model.get_submodule(module_name).named_parameters():
            out[f"{module_name}.{pname}"] = p
    return out


def _peft_key(our_key: str, name_map: Callable[[str], str]) -> str:
    module, _, parameter = our_key.rpartition(".")
    # The parameter's module ("...q_proj.lora_A") maps through name_map by its adapted module's name.
    for suffix in (".lora_A", ".lora_B"):
        if module.endswith(suffix):
            return _PEFT_PREFIX + name_map(module.removesuffix(suffix)) + suffix + "." + parameter
    # lora_embedding_A/B and modules_to_save parameters sit directly on the named module.
    return _PEFT_PREFIX + name_map(module) + "." + parameter


def adapter_state_dict(model: nn.Module, name_map: Callable[[str], str] | None = None) -> dict[str, Tensor]:
    """The adapter's tensors under peft's key names (``base_model.model.<module>.lora_A.weight``),
    detached copies; ``modules_to_save`` are included under their plain names as peft saves them."""
    _require_lora(model, "adapter_state_dict")
    if any(m.merged for m in lora_layers(model).values()):
        raise ValueError(
            "adapter_state_dict: expected unmerged LoRA layers, got merged ones (unmerge_lora first)"
        )
    name_map = name_map or _default_name_map(model)
    return {_peft_key(k, name_map): v.detach().clone() for k, v in _lora_tensor_names(model).items()}


def load_adapter_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], name_map: Callable[[str], str] | None = None
) -> None:
    """Copy an adapter in peft's key names into ``model``'s LoRA layers (and modules_to_save).

    Every key of the model's adapter must be present with its shape, and no other key: a mismatch
    raises ValueError listing the missing, unexpected and wrongly shaped keys.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    _require_lora(model, "load_adapter_state_dict")
    name_map = name_map or _default_name_map(model)
    targets = {_peft_key(k, name_map): p for k, p in _lora_tensor_names(model).items()}
    # peft may name the adapter in the key ("lora_A.default.weight") in in-memory state dicts.
    given = {re.sub(r"\.(lora_[A-Za-z_]+)\.default(\.|$)", r".\1\2", k): v for k, v in state_dict.items()}
    missing = sorted(set(targets) - set(given))
    unexpected = sorted(set(given) - set(targets))
    wrong = [
        f"{k}: expected {tuple(targets[k].shape)}, got {tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}"
        for k, v in given.items()
        if k in targets and (not isinstance(v, Tensor) or v.shape != targets[k].shape)
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            "adapter does not fit the model: "
            f"missing keys {missing[:20]} ({len(missing)} in all), unexpected keys {unexpected[:20]} "
            f"({len(unexpected)} in all), wrong shapes {wrong[:10]}"
        )
    with torch.no_grad():
        for key, p in targets.items():
            p.copy_(given[key].to(dtype=p.dtype, device=p.device))


def adapter_config(model: nn.Module, base_model_name_or_path: str | None = None) -> dict[str, Any]:
    """peft's ``adapter_config.json`` content for ``model``'s adapter (a LoRA ``PeftConfig``)."""
    _require_lora(model, "adapter_config")
    config: LoRAConfig = model.lora_config
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": base_model_name_or_path,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": config.target_modules,
        "modules_to_save": config.modules_to_save or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True if config.init == "kaiming" else "gaussian",
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
    }


def save_adapter(
    model: nn.Module,
    directory: str | os.PathLike,
    name_map: Callable[[str], str] | None = None,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write ``adapter_model.safetensors`` and ``adapter_config.json`` (peft's format) to ``directory``."""
    from safetensors.torch import save_file

    state = adapter_state_dict(model, name_map)
    config = adapter_config(model, base_model_name_or_path)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().cpu() for k, v in state.items()}, str(folder / ADAPTER_WEIGHTS_NAME))
    (folder / ADAPTER_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_adapter(
    model: nn.Module, directory: str | os.PathLike, name_map: Callable[[str], str] | None = None
) -> nn.Module:
    """Load a peft-format adapter folder into ``model``.

    A model without LoRA layers first gets them from ``adapter_config.json`` (``r``, ``lora_alpha``,
    ``lora_dropout``, ``target_modules``, ``modules_to_save``); then the weights are loaded with the
    key checks of :func:`load_adapter_state_dict`.
    """
    from safetensors.torch import load_file

    folder = Path(directory)
    weights, config_path = folder / ADAPTER_WEIGHTS_NAME, folder / ADAPTER_CONFIG_NAME
    if not weights.is_file() or not config_path.is_file():
        raise ValueError(
            f"directory must hold {ADAPTER_WEIGHTS_NAME} and {ADAPTER_CONFIG_NAME}, got {sorted(os.listdir(folder)) if folder.is_dir() else 'no folder'} at {folder}"
        )
    config = json.loads(config_path.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"adapter_config.json must have peft_type LORA, got {config.get('peft_type')!r}")
    if not lora_layers(model):
        init = config.get("init_lora_weights", True)
        name_map = name_map or _default_name_map(model)
        # modules_to_save are saved under reference names; find ours whose mapped name matches.
        saved = config.get("modules_to_save") or []
        ours_saved = [n for n, _ in model.named_modules() if n and saved and _matches(name_map(n), saved)]
        apply_lora(
            model,
            config["target_modules"],
            r=int(config["r"]),
            alpha=float(config["lora_alpha"]),
            dropout=float(config.get("lora_dropout", 0.0)),
            modules_to_save=ours_saved,
            init="gaussian" if init == "gaussian" else "kaiming",
        )
    load_adapter_state_dict(model, load_file(str(weights)), name_map)
    return model


def subspace_similarity(a1: Tensor, a2: Tensor, i: int, j: int) -> Tensor:
    """Eq. 4: ``phi(A1, A2, i, j) = ||U1[:, :i]^T U2[:, :j]||_F^2 / min(i, j)`` in [0, 1].

    ``a1 [r1, k]`` and ``a2 [r2, k]`` are LoRA ``A`` matrices (``lora_A.weight``); ``U`` are their
    right-singular vectors (columns in R^k) ordered by singular value. 1 means the top-``i`` and
    top-``j`` subspaces overlap completely (one contains the other), 0 that they are orthogonal.
    """
    for name, a in (("a1", a1), ("a2", a2)):
        if not isinstance(a, Tensor) or a.dim() != 2 or not a.is_floating_point():
            got = f"{tuple(a.shape)} {a.dtype}" if isinstance(a, Tensor) else type(a).__name__
            raise ValueError(f"{name} must be a 2-D float tensor [r, k], got {got}")
    if a1.shape[1] != a2.shape[1]:
        raise ValueError(f"a1 and a2 must share their input size k, got {a1.shape[1]} and {a2.shape[1]}")
    for name, value, a in (("i", i, a1), ("j", j, a2)):
        check_int(name, value, 1, min(a.shape), note=f"the rank of {'a1' if name == 'i' else 'a2'}")
    # Right-singular vectors are the rows of Vh (torch.linalg.svd returns them ordered by singular value).
    u1 = torch.linalg.svd(a1.double(), full_matrices=False).Vh[:i].T
    u2 = torch.linalg.svd(a2.double(), full_matrices=False).Vh[:j].T
    return ((u1.T @ u2).square().sum() / min(i, j)).to(a1.dtype)
