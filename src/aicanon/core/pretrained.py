"""Released-weight files: a state dict or a ``.safetensors`` file, and transformers folders.

Each family's ``from_timm`` / ``from_pretrained`` / ``save_pretrained`` call reads and writes files
through these functions, so every format reader refuses the same things the same way:

* :func:`read_state_dict`: a mapping of tensors, or a path to one ``.safetensors`` file (the format
  timm and the Hub distribute); nothing is unpickled (``.bin``/``.pth`` are refused with the one-line
  conversion to do in a trusted environment);
* :func:`read_transformers_folder`: ``config.json`` and ``model.safetensors``, or the shards listed
  in ``model.safetensors.index.json`` -> ``(config dict, tensors)``; a damaged index is refused;
* :func:`write_transformers_folder`: the same layout, sharded by ``max_shard_size`` as transformers
  does; earlier weight files of transformers' names are removed so no stale shard is read.

The family modules convert names and configurations (``config_to_transformers``,
``to_transformers``); nothing here knows a model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from aicanon.core.state_dict import check_state_dict

__all__ = ["parse_size", "read_state_dict", "read_transformers_folder", "write_transformers_folder"]

CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# transformers' shard names; only files of this form are ever removed from a folder we write to.
_SHARD_NAME = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors$")
_SIZE_UNITS = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}  # fmt: skip


def read_state_dict(state_dict_or_file: Any, argument: str = "state_dict_or_file") -> dict[str, Tensor]:
    """A state dict given as a mapping (checked, not copied) or a path to a ``.safetensors`` file."""
    if isinstance(state_dict_or_file, Mapping):
        return check_state_dict(state_dict_or_file, argument)
    if not isinstance(state_dict_or_file, (str, os.PathLike)):
        raise TypeError(
            f"{argument} must be a mapping of names to tensors or a path to a .safetensors file, "
            f"got {type(state_dict_or_file).__name__}"
        )
    path = Path(state_dict_or_file)
    if path.suffix != ".safetensors":
        # Pickled formats can run code when read: the caller converts them once where they trust them.
        raise ValueError(
            f"{argument} must be a .safetensors file, got {str(path)!r}: we never unpickle downloaded "
            "files; read a .pth/.bin yourself with torch.load(path, weights_only=True) and pass the dict"
        )
    if not path.is_file():
        raise ValueError(f"{argument} must name an existing .safetensors file, got {str(path)!r}")
    from safetensors.torch import load_file

    return load_file(str(path))


def parse_size(max_shard_size: int | str, argument: str = "max_shard_size") -> int:
    """Bytes of ``max_shard_size``: an int, or a str such as ``"5GB"``, ``"500MB"``, ``"10KiB"``."""
    if isinstance(max_shard_size, bool):
        raise TypeError(f"{argument} must be an int (bytes) or a str such as '5GB', got bool")
    if isinstance(max_shard_size, int):
        size = max_shard_size
    elif isinstance(max_shard_size, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*", max_shard_size.upper())
        if match is None:
            raise ValueError(f"{argument} must look like '500MB', '5GB' or '10KiB', got {max_shard_size!r}")
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"])
    else:
        raise TypeError(
            f"{argument} must be an int (bytes) or a str such as '5GB', got {type(max_shard_size).__name__}"
        )
    if size < 1:
        raise ValueError(f"{argument} must be at least 1 byte, got {max_shard_size!r}")
    return size


def _read_tensors(folder: Path, reference_class: str) -> dict[str, Tensor]:
    """The tensors of a transformers folder: one ``model.safetensors`` or the shards its index lists."""
    from safetensors.torch import load_file

    index = folder / INDEX_FILE
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(
                f"{index} must be JSON with a 'weight_map', could not read it: {error}"
            ) from None
        files = sorted(set(weight_map.values()))
        absent = [name for name in files if not (folder / name).is_file()]
        if absent:
            raise ValueError(f"{index} lists shards that are not in {str(folder)!r}: {absent}")
        tensors: dict[str, Tensor] = {}
        for name in files:
            tensors.update(load_file(str(folder / name)))
        # A shard that does not hold what the index says is a damaged checkpoint: say so, not half-use it.
        if set(tensors) != set(weight_map):
            raise ValueError(
                f"shards in {str(folder)!r} do not match {INDEX_FILE}: missing "
                f"{sorted(set(weight_map) - set(tensors))[:10]}, not indexed {sorted(set(tensors) - set(weight_map))[:10]}"
            )
        return tensors
    if (folder / SINGLE_FILE).is_file():
        return load_file(str(folder / SINGLE_FILE))
    pickles = sorted(p.name for p in folder.glob("pytorch_model*.bin*"))
    if pickles:
        raise ValueError(
            f"path must hold safetensors weights ({SINGLE_FILE} or {INDEX_FILE} with its shards), got only "
            f"pickled {pickles} in {str(folder)!r}: we never unpickle downloaded files; convert them once "
            f"with transformers ({reference_class}.from_pretrained(path).save_pretrained(out)) "
            "in an environment you trust"
        )
    raise ValueError(
        f"path must hold {SINGLE_FILE} or {INDEX_FILE} with its shards, got {str(folder)!r} holding "
        f"{sorted(p.name for p in folder.iterdir())[:20]}"
    )


def read_transformers_folder(
    path: str | os.PathLike, reference_class: str
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config, tensors)`` of a transformers folder; ``reference_class`` (``"AlbertModel"``) names
    the transformers class in messages. Pickled ``pytorch_model.bin`` folders are refused."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike folder, got {type(path).__name__}")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(
            f"path must be a folder holding {CONFIG_FILE} and safetensors weights, got {str(folder)!r}"
        )
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(
            f"path must hold {CONFIG_FILE} ({reference_class}'s config), none in {str(folder)!r}"
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} must be JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(config).__name__}")  # noqa: TRY004 (a bad file, not a bad argument)
    return config, _read_tensors(folder, reference_class)


def write_transformers_folder(
    path: str | os.PathLike,
    config: Mapping[str, Any],
    tensors: Mapping[str, Tensor],
    max_shard_size: int | str | None = None,
) -> None:
    """Write ``config.json`` and the tensors as ``model.safetensors`` or, with ``max_shard_size``,
    ``model-0000i-of-0000n.safetensors`` shards and ``model.safetensors.index.json``. A tensor larger
    than the limit gets a shard of its own (as in transformers). Tensors must not share storage."""
    from safetensors.torch import save_file

    limit = None if max_shard_size is None else parse_size(max_shard_size)
    tensors = {k: v.detach().cpu().contiguous() for k, v in check_state_dict(tensors, "tensors").items()}
    shards: list[dict[str, Tensor]] = [{}]
    size = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if limit is not None and shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path must be a folder (or not exist yet), got the file {str(folder)!r}")
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt"}  # transformers checks this field before loading
    if limit is None:
        names = [SINGLE_FILE]
    else:
        names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    written = set(names)
    for stale in folder.iterdir():
        if (_SHARD_NAME.match(stale.name) and stale.name not in written) or (
            stale.name == INDEX_FILE and limit is None
        ):
            stale.unlink()
    for name, shard in zip(names, shards):
        save_file(shard, str(folder / name), metadata=metadata)
    if limit is not None:
        index = {
            "metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
            "weight_map": {key: name for name, shard in zip(names, shards) for key in shard},
        }
        (folder / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (folder / CONFIG_FILE).write_text(json.dumps(dict(config), indent=2) + "\n")
