"""Crash-safe checkpoints: tensors in safetensors, everything else in JSON, one atomic unit.

``save_checkpoint(path, state, config=...)`` writes a new *version* of the checkpoint at ``path``:
a directory ``path/<step number>`` holding ``tensors.safetensors``, ``state.json`` and, written last,
``manifest.json`` (the sha256 and size of both files, the run's config, the version number). The
version is assembled under a temporary name and renamed into place in one ``os.rename``, so a run
killed at any moment leaves either the complete new version or none of it; the previous
``keep - 1`` versions stay on disk.

``load_checkpoint(path, config=...)`` returns the newest version that verifies (manifest present,
every file's size and sha256 as recorded, JSON and safetensors readable, the tensor keys those the
state names). A damaged newest version is skipped with a warning naming it and why, and the previous
good one is used. When ``config`` is given and the checkpoint was saved with a different config,
:class:`CheckpointMismatch` is raised: a rerun with other settings must not resume a run that is not
its own. Nested state (model and optimizer ``state_dict``s, RNG states, counters) is flattened:
tensors go to safetensors under dotted keys, the skeleton with plain values goes to JSON. Nothing is
unpickled on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CheckpointMismatch",
    "LoopCheckpoints",
    "load_checkpoint",
    "load_or_compute",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

_MANIFEST = "manifest.json"
_FILES = ("tensors.safetensors", "state.json")


class CheckpointMismatch(ValueError):
    """A checkpoint saved by a run with a different config than the one asked to resume it."""


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(config: Any) -> Any:
    """``config`` as JSON would give it back (tuples become lists), so saved and asked configs compare."""
    return json.loads(json.dumps(config))


def _versions(directory: Path) -> list[Path]:
    """Complete-looking versions (named by their number), newest first; temporary folders are ignored."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(found, key=lambda p: int(p.name), reverse=True)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems refuse to open directories: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | os.PathLike, state: dict[str, Any], *, config: Any = None, keep: int = 2
) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and plain values) as a new version under
    ``path`` and return its folder; ``config`` (JSON-serialisable, e.g. ``dataclasses.asdict(cfg)``)
    is recorded so that :func:`load_checkpoint` can refuse a run with other settings. The newest
    ``keep`` versions are kept (at least 2, so a damaged newest one has a good one behind it)."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 2:
        raise ValueError(f"keep must be an int >= 2 (a fallback behind the newest), got {keep!r}")
    directory = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    try:
        config = _plain(config)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"config must be JSON-serialisable (e.g. dataclasses.asdict(cfg)): {error}"
        ) from error
    directory.mkdir(parents=True, exist_ok=True)
    previous = _versions(directory)
    number = int(previous[0].name) + 1 if previous else 1
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=".writing-"))
    try:
        save_file(tensors, str(staging / "tensors.safetensors"))
        with open(staging / "state.json", "w") as f:
            json.dump({"version": 2, "state": skeleton, "keys": sorted(tensors)}, f)
        files = {
            name: {"sha256": _sha256(staging / name), "bytes": (staging / name).stat().st_size}
            for name in _FILES
        }
        manifest = {"format": "aicanon-checkpoint", "version": number, "files": files, "config": config}
        with open(staging / _MANIFEST, "w") as f:
            json.dump(manifest, f)
        for name in (*_FILES, _MANIFEST):
            with open(staging / name, "rb") as f:
                os.fsync(f.fileno())
        # The one step that publishes the version: before it nothing of it is visible, after it all is.
        os.rename(staging, directory / f"{number:08d}")
        _fsync_directory(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for old in _versions(directory)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in directory.glob(".writing-*"):  # left by a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    return directory / f"{number:08d}"


def _read_version(folder: Path) -> tuple[dict[str, Any], Any]:
    """The state and config of one version; ValueError saying what is wrong with it otherwise."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise ValueError("no manifest.json (an unfinished or foreign write)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"manifest.json is unreadable ({error})") from None
    for name in _FILES:
        file = folder / name
        if name not in files:
            raise ValueError(f"manifest.json does not list {name}")
        if not file.is_file():
            raise ValueError(f"{name} is missing")
        if file.stat().st_size != files[name].get("bytes") or _sha256(file) != files[name].get("sha256"):
            raise ValueError(f"{name} does not match its sha256 in manifest.json (damaged or truncated)")
    try:
        meta = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "tensors.safetensors"))
        if sorted(tensors) != meta["keys"]:
            raise ValueError("the tensors are not the ones state.json names")
        return _unflatten(meta["state"], tensors), manifest.get("config")
    except (json.JSONDecodeError, KeyError, TypeError, SafetensorError) as error:
        raise ValueError(
            f"state.json or tensors.safetensors is unreadable ({type(error).__name__}: {error})"
        ) from None


def load_checkpoint(path: str | os.PathLike, *, config: Any = None) -> dict[str, Any] | None:
    """The state of the newest good version saved at ``path``, or None when there is none.

    A damaged version is skipped with a warning (the previous one is tried). With ``config`` given,
    a checkpoint saved with a different config raises :class:`CheckpointMismatch` naming the fields
    that differ (a checkpoint saved without a config is refused too).
    """
    directory = Path(path)
    for folder in _versions(directory):
        try:
            state, saved_config = _read_version(folder)
        except (OSError, ValueError) as error:
            warnings.warn(f"checkpoint {folder} is damaged and skipped: {error}", stacklevel=2)
            continue
        if config is not None and saved_config != _plain(config):
            wanted = _plain(config)
            if isinstance(saved_config, dict) and isinstance(wanted, dict):
                keys = sorted(
                    k for k in saved_config.keys() | wanted.keys() if saved_config.get(k) != wanted.get(k)
                )
                detail = ", ".join(f"{k}: saved {saved_config.get(k)!r}, now {wanted.get(k)!r}" for k in keys)
            else:
                detail = f"saved {saved_config!r}, now {wanted!r}"
            raise CheckpointMismatch(
                f"checkpoint {folder} was saved by a run with a different config ({detail}); "
                f"refusing to resume it: use another checkpoint folder or delete {directory}"
            )
        return state
    if (directory / "state.json").exists() and not _versions(directory):
        warnings.warn(
            f"{directory} holds a checkpoint in the old single-file layout without checksums; it is not used",
            stacklevel=2,
        )
    return None


def load_or_compute(path: str | os.PathLike | None, compute: Callable[[], Any], *, config: Any) -> Any:
    """``compute()``'s result, saved at ``path``; or, when an earlier run with the same ``config``
    already saved one there (a run killed after this unit of work finished), that result without
    computing it again. For experiments made of independent units (one agent on one environment):
    a killed seed reruns only the units it had not finished. ``compute`` must not depend on the
    units before it (each reseeds) and return what :func:`save_checkpoint` stores (nested dicts,
    lists, tuples, tensors, plain values). ``path`` None: just ``compute()``."""
    if path is None:
        return compute()
    state = load_checkpoint(path, config=config)
    if state is not None:
        return state["result"]
    result = compute()
    save_checkpoint(path, {"result": result}, config=config)
    return result


class LoopCheckpoints:
    """Checkpoints of one training loop under ``folder`` every ``every`` steps, and its resumption.

    ``parts`` name the objects whose state is the loop's: anything with ``state_dict`` and
    ``load_state_dict`` (modules, optimisers, schedulers), ``torch.Generator``s and ``random.Random``s
    (e.g. a data order's shuffler), and lists and dicts (a loss curve, counters, a best-so-far copy of
    the weights; restored in place); the global RNGs (torch, CUDA, numpy, python) are saved with them.
    Usage::

        checkpoints = LoopCheckpoints(folder, every, config=record, model=model, optimizer=optimizer,
                                      batches=generator, curve=curve)
        for step in range(checkpoints.resume(), total):   # 0 unless a killed run saved a state
            ...one optimiser step...
            checkpoints.done(step + 1, total)              # saves every ``every`` steps and at the end

    A rerun with the same ``config`` continues where the newest checkpoint was and ends with the
    uninterrupted run's state; another ``config`` is refused (:class:`CheckpointMismatch`).
    ``folder`` None: nothing is saved and ``resume()`` is 0.
    """

    def __init__(self, folder: str | os.PathLike | None, every: int, *, config: Any, **parts: Any) -> None:
        if folder is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be an int >= 1 (steps between checkpoints), got {every!r}")
        for name, part in parts.items():
            if not isinstance(part, (torch.Generator, random.Random, list, dict)) and not hasattr(
                part, "load_state_dict"
            ):
                raise TypeError(
                    f"part {name!r} must have state_dict/load_state_dict, or be a torch.Generator, a "
                    f"random.Random, a list or a dict, got {type(part).__name__}"
                )
        self.folder = None if folder is None else Path(folder)
        self.every, self.config, self.parts = every, config, parts

    def resume(self) -> int:
        """Load the newest checkpoint into the parts and the global RNGs; the steps it had done."""
        if self.folder is None:
            return 0
        state = load_checkpoint(self.folder, config=self.config)
        if state is None:
            return 0
        for name, part in self.parts.items():
            if isinstance(part, torch.Generator):
                part.set_state(state["parts"][name])
            elif isinstance(part, random.Random):
                version, internal, gauss = state["parts"][name]
                part.setstate((version, tuple(internal), gauss))
            elif isinstance(part, list):
                part[:] = state["parts"][name]
            elif isinstance(part, dict):
                part.clear()
                part.update(state["parts"][name])
            else:
                part.load_state_dict(state["parts"][name])
        set_rng_state(state["rng"])
        cuda = state["cuda_rng"]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        return int(state["step"])

    def done(self, step: int, total: int) -> None:
        """Call after step ``step`` (counted from 1) of ``total``: saves every ``every`` steps and at
        the last."""
        if self.folder is None or (step % self.every and step != total):
            return
        parts = {}
        for name, part in self.parts.items():
            if isinstance(part, torch.Generator):
                parts[name] = part.get_state()
            elif isinstance(part, random.Random):
                version, internal, gauss = part.getstate()
                parts[name] = [version, list(internal), gauss]
            elif isinstance(part, (list, dict)):
                parts[name] = part
            else:
                parts[name] = part.state_dict()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        state = {"step": step, "parts": parts, "rng": rng_state(), "cuda_rng": cuda}
        save_checkpoint(self.folder, state, config=self.config)


def rng_state() -> dict[str, Any]:
    """The RNG states a resumed run needs to continue exactly (torch CPU, numpy, python)."""
    import numpy as np

    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
