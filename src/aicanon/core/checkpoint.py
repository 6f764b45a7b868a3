"""Atomic checkpoints: tensors in safetensors, everything else in JSON.

A checkpoint is a directory ``path`` holding ``tensors.safetensors`` and ``state.json``. Both are
written to temporary names and renamed, so a run killed mid-write leaves the previous checkpoint
intact. Nested state (model and optimizer ``state_dict``s, RNG states, counters) is flattened:
tensors go to safetensors under dotted keys, the skeleton with plain values goes to JSON.
Nothing is unpickled on load.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = prefix or "_"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(
                    f"checkpoint state keys must be str or int, got {type(k).__name__} at {prefix!r}"
                )
        return {
            "__dict__": [
                [k, _flatten(v, f"{prefix}.{k}" if prefix else str(k), tensors)] for k, v in obj.items()
            ]
        }
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{prefix}.{i}" if prefix else str(i), tensors) for i, v in enumerate(obj)]
        return {_TUPLE: items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint state cannot hold {type(obj).__name__} at {prefix!r}")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _TUPLE in obj:
            return tuple(_unflatten(v, tensors) for v in obj[_TUPLE])
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts/lists of tensors and plain values) atomically to ``path``/."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    # Tensors first, then the JSON that points at them: a reader never sees JSON newer than tensors.
    _atomic_write(directory / "tensors.safetensors", lambda tmp: save_file(tensors, tmp))

    def write_json(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump({"version": 1, "state": skeleton, "keys": sorted(tensors)}, f)

    _atomic_write(directory / "state.json", write_json)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """Return the state saved at ``path``, or None when there is no complete checkpoint there."""
    directory = Path(path)
    meta_path, tensor_path = directory / "state.json", directory / "tensors.safetensors"
    if not (meta_path.exists() and tensor_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    tensors = load_file(str(tensor_path))
    if sorted(tensors) != meta["keys"]:
        return None  # tensors and state were written by different saves: treat as no checkpoint
    return _unflatten(meta["state"], tensors)


def rng_state() -> dict[str, Any]:
    """The RNG states a resumed run needs to continue exactly (torch CPU, numpy, python)."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
