"""Loading weights: one strict loader, and the naming scheme of every format converter.

:func:`load_state_dict_strict` copies a state dict into a module after checking all of it, and raises
*one* ``ValueError`` that names every problem at once: missing keys, unexpected keys, shape
mismatches and dtype mismatches, at most ten names of each with the count of the rest
(``torch.nn.Module.load_state_dict`` casts every dtype silently, integer buffers included). Its rules:

* every key of ``module.state_dict()`` must be given (except keys under ``allow_missing``, which are
  left as they are), and no other key; non-persistent buffers are not part of a state dict, so
  computed tables never need to be given;
* parameters tied to one another (one tensor under several names, e.g. a language model's
  ``lm_head.weight`` and ``embed_tokens.weight``) need only one of their names; given under several,
  the values must be equal;
* shapes must match exactly (no broadcasting, no squeezing);
* floating (and complex) tensors may arrive in another floating (complex) dtype and are cast as
  ``Tensor.copy_`` casts (a float64 checkpoint into a float32 model); integer and bool tensors
  (position ids, relative-position indices, counters) are never cast: they must arrive in the
  module's own dtype, and no float may become an integer or the reverse;
* values must be tensors (``TypeError`` otherwise);
* the copy runs without gradient tracking into the module's own tensors, which keep their dtype,
  device and identity (ties survive); nothing is copied unless everything checks out.

Format converters
-----------------
Released weights come in other libraries' layouts. Each family's module converts them with
module-level functions named for the format, which take a state dict and return a new one: they
never touch a model, and tensors are only renamed, or stacked, transposed or resampled where the
layouts differ:

* ``from_transformers(state_dict, ...) -> dict`` / ``to_transformers(state_dict, ...) -> dict``:
  Hugging Face ``transformers`` layouts to ours and back;
* ``from_timm(state_dict, ...) -> dict``: timm layouts (``to_timm`` when a family needs the way back);
* ``from_torchvision(state_dict) -> dict``: torchvision layouts;
* other released formats likewise: ``from_jax`` (the original JAX ``.npz`` of ViT), ``from_meta`` /
  ``to_meta`` (Meta's Llama checkpoints);
* configurations, where a format has its own: ``config_from_transformers`` / ``config_to_transformers``.

A family whose parameter names already are the format's still has its ``from_<format>`` (a checked
identity), so a user never needs to know which layouts happen to agree. Loading is always the two
steps::

    from aicanon.core.state_dict import load_state_dict_strict
    from aicanon.vision import deit

    model = deit.DistilledVisionTransformer(...)
    load_state_dict_strict(model, deit.from_timm(timm_model.state_dict()), source="timm deit_tiny_distilled")

Reading files stays with the caller (``safetensors.torch.load_file``, or
``torch.load(path, weights_only=True)``); nothing here unpickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["check_state_dict", "load_state_dict_strict"]

# Names listed per kind of problem before the rest is only counted.
_LISTED = 10


def check_state_dict(state_dict: Any, argument: str = "state_dict") -> dict[str, Tensor]:
    """A new ``dict`` of ``state_dict``'s entries after checking that it maps str keys to tensors.

    ``TypeError`` names ``argument``, what was expected and what came. The tensors are not copied.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{argument} must be a mapping of names to tensors, got {type(state_dict).__name__}")
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"{argument} keys must be str, got {type(key).__name__} {key!r}")
        if not isinstance(value, Tensor):
            raise TypeError(f"{argument}[{key!r}] must be a tensor, got {type(value).__name__}")
    return dict(state_dict)


def _listed(items: list[str]) -> str:
    shown = repr(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown} (and {len(items) - _LISTED} more)"


def _dtype_fits(expected: torch.dtype, got: torch.dtype) -> bool:
    if expected.is_floating_point:
        return got.is_floating_point
    if expected.is_complex:
        return got.is_complex
    return got == expected  # integer, bool: never cast


def _same_values(a: Tensor, b: Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.device == b.device and a.data_ptr() == b.data_ptr() and a.stride() == b.stride():
        return True
    return torch.equal(a, b.to(a.device))


def load_state_dict_strict(
    module: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str = "state_dict",
    allow_missing: Sequence[str] = (),
) -> None:
    """Copy ``state_dict`` into ``module`` after checking every entry (rules in the module docstring).

    ``source`` says where the weights came from (``"timm deit_tiny_distilled state dict"``); messages
    begin with it. ``allow_missing``: key prefixes of ``module`` that the state dict may leave out,
    which keep their values (DETR's backbone, loaded separately). Raises ``TypeError`` for a
    ``module`` that is not an ``nn.Module`` or a ``state_dict`` that does not map names to tensors,
    and one ``ValueError`` listing every missing and unexpected key, wrong shape and wrong dtype
    (at most ten names of each kind, with the count of the rest).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(source, str):
        raise TypeError(f"source must be a str describing the weights, got {type(source).__name__}")
    if isinstance(allow_missing, str) or not all(isinstance(p, str) for p in allow_missing):
        raise TypeError(f"allow_missing must be a sequence of key prefixes (str), got {allow_missing!r}")
    given = check_state_dict(state_dict, source)
    own = module.state_dict(keep_vars=True)

    # Tied tensors: one object under several keys. One given name fills the others.
    names_of: dict[int, list[str]] = {}
    for key, value in own.items():
        if isinstance(value, Tensor):
            names_of.setdefault(id(value), []).append(key)
    filled: dict[str, Tensor] = {}
    untied: list[str] = []
    for names in names_of.values():
        present = [k for k in names if k in given]
        if len(names) < 2 or not present:
            continue
        first = given[present[0]]
        for other in present[1:]:
            if not _same_values(first, given[other]):
                untied.append(f"{present[0]} != {other}")
        for k in names:
            if k not in given:
                filled[k] = first

    missing, shapes, dtypes = [], [], []
    for key, value in own.items():
        if key in given:
            got = given[key]
        elif key in filled:
            continue
        else:
            if not key.startswith(tuple(allow_missing)):
                missing.append(key)
            continue
        if not isinstance(value, Tensor):  # extra state (get_extra_state): no shape, no dtype
            continue
        if tuple(got.shape) != tuple(value.shape):
            shapes.append(f"{key}: expected {tuple(value.shape)}, got {tuple(got.shape)}")
        if not _dtype_fits(value.dtype, got.dtype):
            dtypes.append(f"{key}: expected {value.dtype}, got {got.dtype}")
    unexpected = [key for key in given if key not in own]

    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if shapes:
        problems.append(f"wrong shapes {_listed(shapes)}")
    if dtypes:
        problems.append(
            f"wrong dtypes {_listed(dtypes)} (integer and bool tensors are never cast; "
            "floating ones only from another floating dtype)"
        )
    if untied:
        problems.append(f"tied keys given different values {_listed(untied)}")
    if problems:
        raise ValueError(f"{source} does not match {type(module).__name__}: " + ", ".join(problems))

    with torch.no_grad():
        # Every key is present (but the allowed ones) with its own shape and a castable dtype: torch's
        # loader now only copies (Tensor.copy_, in place, no autograd), keeping the module's dtype,
        # device and ties, and running any loading hooks of its submodules.
        module.load_state_dict({**given, **filled}, strict=not allow_missing)
