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
* peft's per-module options: ``rank_pattern`` / ``alpha_pattern`` (other ``r`` / ``alpha`` for the
  modules a key matches) and ``use_rslora`` (rank-stabilised LoRA, Kalajdzievski 2023: scale by
  ``alpha / sqrt(r)``); patterns are matched as peft matches them, against transformers' module names
  when an adapter is loaded and rewritten to select the same modules there when one is saved.
  ``adapter_config.json`` options that change the function and that we lack (DoRA,
  ``layers_to_transform``, PiSSA-style initialisations ...) are refused by name, never ignored.

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

    def __init__(
        self, base_layer: nn.Module, r: int, alpha: float, dropout: float, init: str, use_rslora: bool = False
    ) -> None:
        super().__init__()
        _check_hyperparameters(r, alpha, dropout, init)
        if not isinstance(use_rslora, bool):
            raise TypeError(f"use_rslora must be a bool, got {type(use_rslora).__name__}")
        self.base_layer = base_layer
        for p in self.base_layer.parameters():
            p.requires_grad_(False)  # Section 4.1: W0 is frozen and receives no gradient updates
        self.r, self.alpha, self.init, self.use_rslora = r, float(alpha), init, use_rslora
        # Section 4.1: dW x is scaled by alpha / r. rsLoRA (Kalajdzievski 2023, peft's use_rslora) scales
        # by alpha / sqrt(r) instead, so that the update's size does not shrink as the rank grows.
        self.scaling = self.alpha / (math.sqrt(r) if use_rslora else r)
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
        return f"r={self.r}, alpha={self.alpha:g}, use_rslora={self.use_rslora}, merged={self.merged}"


class LoRALinear(_LoRALayer):
    """``h = W0 x + B A dropout(x) * alpha / r`` (Eq. 3) around a frozen ``nn.Linear`` (or a subclass
    of it whose forward is the linear map: the delta is added to what the base layer returns)."""

    def __init__(
        self,
        base_layer: nn.Linear,
        r: int = 8,
        alpha: float = 8.0,
        dropout: float = 0.0,
        init: str = "kaiming",
        use_rslora: bool = False,
    ) -> None:
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"base_layer must be an nn.Linear, got {type(base_layer).__name__}")
        super().__init__(base_layer, r, alpha, dropout, init, use_rslora)
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
        use_rslora: bool = False,
    ) -> None:
        if not isinstance(base_layer, nn.Embedding):
            raise TypeError(f"base_layer must be an nn.Embedding, got {type(base_layer).__name__}")
        super().__init__(base_layer, r, alpha, dropout, init, use_rslora)
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
        use_rslora: bool = False,
    ) -> None:
        if not isinstance(base_layer, nn.Conv2d):
            raise TypeError(f"base_layer must be an nn.Conv2d, got {type(base_layer).__name__}")
        if base_layer.groups != 1 or base_layer.padding_mode != "zeros":
            raise ValueError(
                f"base_layer must have groups=1 and padding_mode='zeros', got groups={base_layer.groups}, "
                f"padding_mode={base_layer.padding_mode!r}"
            )
        super().__init__(base_layer, r, alpha, dropout, init, use_rslora)
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


def _wrapper_for(module: nn.Module) -> type[_LoRALayer] | None:
    """The LoRA layer for ``module``: subclasses count too (peft wraps any ``isinstance(m, nn.Linear)``,
    e.g. ``NonDynamicallyQuantizableLinear``), as our layers call the base layer's own forward."""
    for base, wrapper in _WRAPPERS.items():
        if isinstance(module, base):
            return wrapper
    return None


def _unsafe_reason(model: nn.Module, name: str) -> str | None:
    """Why wrapping ``name`` would silently change nothing, or None when it is safe."""
    parent_name = name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.MultiheadAttention):
        # nn.MultiheadAttention passes out_proj.weight / out_proj.bias to F.multi_head_attention_forward
        # and never calls out_proj, so a wrapper's low-rank path would never run (peft has a dedicated
        # layer for this module; we do not).
        return (
            f"{name} ({type(model.get_submodule(name)).__name__} inside nn.MultiheadAttention, which reads "
            "its weight directly instead of calling it)"
        )
    return None


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
    use_rslora: bool = False
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)


def _matches(name: str, patterns: str | Sequence[str]) -> bool:
    """peft's rule: a str is a regular expression matched in full; a list entry matches the whole
    module name or its last dotted components (``"q_proj"`` matches ``layers.0.self_attn.q_proj``)."""
    if isinstance(patterns, str):
        return re.fullmatch(patterns, name) is not None
    return any(name == p or name.endswith("." + p) for p in patterns)


def _pattern_value(name: str, pattern: Mapping[str, Any], default: Any) -> Any:
    """peft's rule for ``rank_pattern`` / ``alpha_pattern``: the first key that, as a regular
    expression, matches the end of the module name at a dot boundary (``"q_proj"``,
    ``"layers.0.self_attn.q_proj"``, ``"layers\\.[01]\\..*q_proj"``) gives the value, else the default."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def _check_patterns(value: Any, argument: str) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        value = list(value)
        if all(isinstance(v, str) and v for v in value):
            return value
    raise TypeError(f"{argument} must be a str (regular expression) or a list of module names, got {value!r}")


def _check_value_pattern(value: Any, argument: str, integer: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise TypeError(f"{argument} must be a dict of module-name patterns to values, got {value!r}")
    for key, v in value.items():
        if integer:
            check_int(f"{argument}[{key!r}]", v, note="the rank of B A for the modules it matches")
        else:
            check_float(
                f"{argument}[{key!r}]", v, 0, min_inclusive=False, note="alpha for the modules it matches"
            )
    return {k: (int(v) if integer else float(v)) for k, v in value.items()}


def apply_lora(
    model: nn.Module,
    target_modules: str | Sequence[str],
    r: int = 8,
    alpha: float = 8.0,
    dropout: float = 0.0,
    modules_to_save: str | Sequence[str] = (),
    init: str = "kaiming",
    use_rslora: bool = False,
    rank_pattern: Mapping[str, int] | None = None,
    alpha_pattern: Mapping[str, float] | None = None,
) -> nn.Module:
    """Wrap the ``nn.Linear``/``nn.Embedding``/``nn.Conv2d`` modules (or subclasses) named by
    ``target_modules`` in LoRA layers, in place, and freeze every parameter except the LoRA ones and
    those of ``modules_to_save`` (e.g. a new classification head). Returns ``model``.

    ``target_modules`` follows peft: a list of names matched against the end of each module's dotted
    name (``["q_proj", "v_proj"]``, Section 4.2's choice), or one regular expression matched in full.
    ``rank_pattern`` / ``alpha_pattern`` (peft's) give some modules another ``r`` / ``alpha``: each key
    is a regular expression matched against the end of the module name; ``use_rslora`` scales by
    ``alpha / sqrt(r)`` instead of ``alpha / r``.
    """
    return _apply_lora(
        model,
        target_modules,
        r,
        alpha,
        dropout,
        modules_to_save,
        init,
        use_rslora,
        rank_pattern,
        alpha_pattern,
        lambda name: name,
    )


def _apply_lora(
    model: nn.Module,
    target_modules: Any,
    r: Any,
    alpha: Any,
    dropout: Any,
    modules_to_save: Any,
    init: Any,
    use_rslora: Any,
    rank_pattern: Any,
    alpha_pattern: Any,
    match_name: Callable[[str], str],
) -> nn.Module:
    """:func:`apply_lora`, with every pattern matched against ``match_name(our module name)``: the
    identity for patterns written in our names, a name map for those of a peft config (which name
    transformers' modules)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    target_modules = _check_patterns(target_modules, "target_modules")
    modules_to_save = _check_patterns(modules_to_save, "modules_to_save")
    _check_hyperparameters(r, alpha, dropout, init)
    if not isinstance(use_rslora, bool):
        raise TypeError(f"use_rslora must be a bool, got {type(use_rslora).__name__}")
    rank_pattern = _check_value_pattern(rank_pattern, "rank_pattern", integer=True)
    alpha_pattern = _check_value_pattern(alpha_pattern, "alpha_pattern", integer=False)
    if lora_layers(model):
        raise ValueError(
            "model already has LoRA layers (expected a model without adapters, got one with them)"
        )
    named = [(n, m) for n, m in model.named_modules() if n]
    candidates = [(n, m) for n, m in named if _wrapper_for(m) is not None]
    chosen = [(n, m) for n, m in candidates if _matches(match_name(n), target_modules)]
    if not chosen:
        matched_other = [
            f"{n} ({type(m).__name__})" for n, m in named if _matches(match_name(n), target_modules)
        ]
        raise ValueError(
            f"target_modules {target_modules!r} match no nn.Linear, nn.Embedding or nn.Conv2d module"
            + (f" (they match {matched_other[:10]}, which LoRA cannot wrap)" if matched_other else "")
            + f"; the model's wrappable modules are {[n for n, _ in candidates][:40]}"
        )
    unsafe = [reason for n, _ in chosen if (reason := _unsafe_reason(model, n))]
    if unsafe:
        raise ValueError(f"target_modules {target_modules!r} match modules LoRA cannot wrap: {unsafe[:10]}")
    saved = [n for n, _ in named if modules_to_save and _matches(match_name(n), modules_to_save)]
    if modules_to_save and not saved:
        raise ValueError(
            f"modules_to_save {modules_to_save!r} match no module; the model's modules are "
            f"{[n for n, _ in named][:40]}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        key = match_name(name)
        layer = _wrapper_for(module)(
            module,
            r=_pattern_value(key, rank_pattern, r),
            alpha=_pattern_value(key, alpha_pattern, alpha),
            dropout=dropout,
            init=init,
            use_rslora=use_rslora,
        )
        setattr(parent, child, layer)
    for name in saved:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(True)
    # The settings travel with the model so that save_adapter can write peft's adapter_config.json.
    # Patterns are kept as given; adapter_config checks (and if need be rewrites) them for peft's names.
    model.lora_config = LoRAConfig(
        target_modules=target_modules,
        r=r,
        alpha=float(alpha),
        dropout=float(dropout),
        modules_to_save=saved,
        init=init,
        use_rslora=use_rslora,
        rank_pattern=rank_pattern,
        alpha_pattern=alpha_pattern,
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
    raises ValueError listing the missing, unexpected and wrongly shaped keys. The one optional key is
    an adapted embedding's full weight (``<module>.base_layer.weight``), which peft writes by default
    (``save_embedding_layers="auto"``) because the embedding may have been resized or trained: as in
    peft, it replaces the base embedding's weight.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    layers = _require_lora(model, "load_adapter_state_dict")
    name_map = name_map or _default_name_map(model)
    targets = {_peft_key(k, name_map): p for k, p in _lora_tensor_names(model).items()}
    optional = {
        _PEFT_PREFIX + name_map(name) + ".base_layer.weight": layer.base_layer.weight
        for name, layer in layers.items()
        if isinstance(layer, LoRAEmbedding)
    }
    # peft may name the adapter in the key ("lora_A.default.weight") in in-memory state dicts.
    given = {re.sub(r"\.(lora_[A-Za-z_]+)\.default(\.|$)", r".\1\2", k): v for k, v in state_dict.items()}
    known = {**targets, **optional}
    missing = sorted(set(targets) - set(given))
    unexpected = sorted(set(given) - set(known))
    wrong = [
        f"{k}: expected {tuple(known[k].shape)}, got {tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}"
        for k, v in given.items()
        if k in known and (not isinstance(v, Tensor) or v.shape != known[k].shape)
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            "adapter does not fit the model: "
            f"missing keys {missing[:20]} ({len(missing)} in all), unexpected keys {unexpected[:20]} "
            f"({len(unexpected)} in all), wrong shapes {wrong[:10]}"
        )
    if any(layer.merged for layer in layers.values()):
        raise ValueError(
            "load_adapter_state_dict: expected unmerged LoRA layers, got merged ones (unmerge_lora first)"
        )
    with torch.no_grad():
        for key, p in known.items():
            if key in given:
                p.copy_(given[key].to(dtype=p.dtype, device=p.device))


def _portable_patterns(model: nn.Module, name_map: Callable[[str], str]) -> dict[str, Any]:
    """``target_modules``, ``rank_pattern`` and ``alpha_pattern`` that select, under peft's rules and
    transformers' module names (``name_map``), exactly the modules and values ``model`` has.

    The patterns given to :func:`apply_lora` name our modules; peft matches them against the reference
    model's names (``model.layers.1.self_attn.q_proj`` for our ``layers.1.self_attn.q_proj``), so a
    regular expression or a pattern key written for one may select other modules in the other. Each
    pattern is kept when it selects the same modules under the mapped names; a regular expression is
    otherwise tried behind the names' common prefix; failing that the exact names are written.
    """
    config: LoRAConfig = model.lora_config
    layers = lora_layers(model)
    inside = tuple(f"{n}." for n in layers)
    everything = [n for n, _ in model.named_modules() if n and not n.startswith(inside)]
    mapped_all = [name_map(n) for n in everything]
    wanted = {name_map(n): layer for n, layer in layers.items()}

    def selects(pattern: str | list[str]) -> bool:
        return {m for m in mapped_all if _matches(m, pattern)} == set(wanted)

    targets = config.target_modules
    if not selects(targets):
        prefixes = {name_map(n)[: len(name_map(n)) - len(n)] for n in layers if name_map(n).endswith(n)}
        prefixed = f"{re.escape(next(iter(prefixes)))}(?:{targets})" if len(prefixes) == 1 else None
        if isinstance(targets, str) and len(prefixes) == 1 and selects(prefixed):
            targets = prefixed
        else:
            targets = sorted(wanted)  # peft: a list entry equal to the whole name selects that module
            if not selects(targets):
                raise ValueError(
                    f"adapter_config: no target_modules select exactly the adapted modules {sorted(wanted)[:10]} "
                    "under the name map (are two of our modules mapped to one name?)"
                )

    def values(pattern: dict[str, Any], default: Any, attribute: str) -> dict[str, Any]:
        actual = {m: getattr(layer, attribute) for m, layer in wanted.items()}
        if all(_pattern_value(m, pattern, default) == v for m, v in actual.items()):
            return dict(pattern)
        # Escaped whole names: peft's key rule "(.*\.)?(key)$" then matches that module only.
        return {re.escape(m): v for m, v in sorted(actual.items()) if v != default}

    return {
        "target_modules": targets,
        "rank_pattern": values(config.rank_pattern, config.r, "r"),
        "alpha_pattern": values(config.alpha_pattern, config.alpha, "alpha"),
    }


def adapter_config(
    model: nn.Module, base_model_name_or_path: str | None = None, name_map: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """peft's ``adapter_config.json`` content for ``model``'s adapter (a LoRA ``PeftConfig``), with
    module patterns that select the same modules in the reference model's names (``name_map``)."""
    _require_lora(model, "adapter_config")
    config: LoRAConfig = model.lora_config
    patterns = _portable_patterns(model, name_map or _default_name_map(model))
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": base_model_name_or_path,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": patterns["target_modules"],
        "modules_to_save": config.modules_to_save or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True if config.init == "kaiming" else "gaussian",
        "use_rslora": config.use_rslora,
        "rank_pattern": patterns["rank_pattern"],
        "alpha_pattern": patterns["alpha_pattern"],
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
    config = adapter_config(model, base_model_name_or_path, name_map)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().cpu() for k, v in state.items()}, str(folder / ADAPTER_WEIGHTS_NAME))
    (folder / ADAPTER_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return folder


# adapter_config.json options that change the adapted function and that we do not implement, with the
# value at which they are off (peft's defaults). A config that sets one is refused, never half-loaded.
_UNSUPPORTED_OPTIONS: dict[str, tuple[Any, ...]] = {
    "exclude_modules": (None, [], ""),
    "fan_in_fan_out": (False,),
    "bias": ("none",),
    "layers_to_transform": (None, []),
    "layers_pattern": (None, [], ""),
    "megatron_config": (None,),
    "trainable_token_indices": (None, [], {}),
    "use_dora": (False,),
    "velora_config": (None,),
    "alora_invocation_tokens": (None, []),
    "use_qalora": (False,),
    "monteclora_config": (None,),
    "layer_replication": (None, []),
    "lora_bias": (False,),
    "target_parameters": (None, []),
    "use_bdlora": (None, False),
    "arrow_config": (None,),
    "kasa_config": (None,),
    "ensure_weight_tying": (False,),
}
# Options without effect on the loaded function: bookkeeping, the training-only dropout, or settings of
# initialisations that the loaded weights replace (the initialisation itself is checked on its own).
_NEUTRAL_OPTIONS = {
    "peft_type", "task_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
    "inference_mode", "lora_dropout", "runtime_config", "megatron_core", "qalora_group_size",
    "loftq_config", "eva_config", "corda_config", "lora_ga_config", "init_lora_weights",
    "r", "lora_alpha", "target_modules", "modules_to_save", "use_rslora", "rank_pattern", "alpha_pattern",
}  # fmt: skip


def _read_adapter_config(path: Path) -> dict[str, Any]:
    """``adapter_config.json`` parsed and checked: every error names the file and the field."""
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        # A ValueError like every other defect of the file's content (the caller passed a path, not a type).
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")  # noqa: TRY004
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{path}: peft_type must be LORA, got {config.get('peft_type')!r}")
    for required in ("r", "lora_alpha", "target_modules"):
        if required not in config or config[required] is None:
            raise ValueError(
                f"{path}: field {required!r} is missing (a LoRA adapter_config needs r, lora_alpha, target_modules)"
            )
    refused = [
        f"{key}={value!r}"
        for key, value in config.items()
        if (key in _UNSUPPORTED_OPTIONS and value not in _UNSUPPORTED_OPTIONS[key])
        or (
            key not in _UNSUPPORTED_OPTIONS
            and key not in _NEUTRAL_OPTIONS
            and value not in (None, False, [], {})
        )
    ]
    init = config.get("init_lora_weights", True)
    if init not in (True, False, "gaussian"):
        # PiSSA, OLoRA, CorDA, LoftQ ... rewrite the base weights at initialisation: the adapter only
        # reproduces its function on the rewritten base, which we do not compute.
        refused.append(f"init_lora_weights={init!r}")
    if config["target_modules"] == "all-linear":
        refused.append(
            "target_modules='all-linear' (peft resolves it against the model class; list the modules)"
        )
    if refused:
        raise ValueError(
            f"{path}: options that change the adapted function and are not implemented here: {refused}"
        )
    checks = (
        ("r", lambda v: check_int("r", v, note="the rank of B A")),
        ("lora_alpha", lambda v: check_float("lora_alpha", v, 0, min_inclusive=False)),
        ("lora_dropout", lambda v: check_probability("lora_dropout", v, allow_one=False)),
        ("target_modules", lambda v: _check_patterns(v, "target_modules")),
        ("modules_to_save", lambda v: v is None or _check_patterns(v, "modules_to_save")),
        (
            "use_rslora",
            lambda v: isinstance(v, bool) or _raise(TypeError(f"use_rslora must be a bool, got {v!r}")),
        ),
        ("rank_pattern", lambda v: _check_value_pattern(v, "rank_pattern", integer=True)),
        ("alpha_pattern", lambda v: _check_value_pattern(v, "alpha_pattern", integer=False)),
    )
    for key, check in checks:
        if key in config:
            try:
                check(config[key])
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path}: field {key!r}: {error}") from None
    return config


def _raise(error: Exception) -> Any:
    raise error


def load_adapter(
    model: nn.Module, directory: str | os.PathLike, name_map: Callable[[str], str] | None = None
) -> nn.Module:
    """Load a peft-format adapter folder into ``model``.

    A model without LoRA layers first gets them from ``adapter_config.json`` (``r``, ``lora_alpha``,
    ``lora_dropout``, ``target_modules``, ``modules_to_save``, ``use_rslora``, ``rank_pattern``,
    ``alpha_pattern``), its patterns matched as peft matches them, against the reference model's
    module names (``name_map``); a model with LoRA layers must have the ranks and scalings the config
    gives. Then the weights are loaded with the key checks of :func:`load_adapter_state_dict`.
    Options that change the function and that we lack (DoRA, ``layers_to_transform``, ...) are
    refused with a ValueError naming them.
    """
    from safetensors.torch import load_file

    folder = Path(directory)
    weights, config_path = folder / ADAPTER_WEIGHTS_NAME, folder / ADAPTER_CONFIG_NAME
    if not weights.is_file() or not config_path.is_file():
        raise ValueError(
            f"directory must hold {ADAPTER_WEIGHTS_NAME} and {ADAPTER_CONFIG_NAME}, got {sorted(os.listdir(folder)) if folder.is_dir() else 'no folder'} at {folder}"
        )
    config = _read_adapter_config(config_path)
    name_map = name_map or _default_name_map(model)
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    use_rslora = bool(config.get("use_rslora", False))
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    layers = lora_layers(model)
    if not layers:
        # modules_to_save are saved under reference names; find ours whose mapped name matches.
        saved = config.get("modules_to_save") or []
        ours_saved = [n for n, _ in model.named_modules() if n and saved and _matches(name_map(n), saved)]
        _apply_lora(
            model,
            config["target_modules"],
            r,
            alpha,
            float(config.get("lora_dropout", 0.0)),
            ours_saved,
            "gaussian" if config.get("init_lora_weights", True) == "gaussian" else "kaiming",
            use_rslora,
            rank_pattern,
            alpha_pattern,
            name_map,
        )
    else:
        differ = [
            f"{n}: r={layer.r}, alpha={layer.alpha:g}, use_rslora={layer.use_rslora}"
            for n, layer in layers.items()
            if (layer.r, layer.alpha, layer.use_rslora)
            != (
                _pattern_value(name_map(n), rank_pattern, r),
                float(_pattern_value(name_map(n), alpha_pattern, alpha)),
                use_rslora,
            )
        ]
        if differ:
            raise ValueError(
                f"{config_path}: the model's LoRA layers differ from the config (r={r}, lora_alpha={alpha:g}, "
                f"use_rslora={use_rslora}, rank_pattern={rank_pattern}, alpha_pattern={alpha_pattern}): {differ[:10]}"
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
