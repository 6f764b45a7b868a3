"""Where testbeds keep what they train once per machine, and how a cached state is read back.

A testbed's ``cache`` setting: None gives ``_cache/<name>`` under the results folder
(``AICANON_RESULTS``, which ``aicanon reproduce --out`` sets, else ``results/`` of the checkout), so
the cache follows ``--out`` and not the working directory; ``""`` gives no cache (retrain every run);
anything else is that folder. Entries are folders named by the hash of the testbed's configuration.

A cached entry that cannot be used (missing, damaged, written for another configuration, or not
loadable into the model) is not fatal: :func:`load_cached` warns and returns None, and the testbed
retrains and overwrites it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aicanon.core.checkpoint import load_checkpoint
from aicanon.core.results import results_dir

__all__ = ["cache_folder", "load_cached"]

T = TypeVar("T")


def cache_folder(cache: str | Path | None, name: str) -> Path | None:
    """The folder of testbed ``name``'s cache for an experiment's ``cache`` setting (module docstring)."""
    if cache is None:
        return results_dir() / "_cache" / name
    return Path(cache) if str(cache) else None


def load_cached(folder: Path, config: Mapping[str, Any], what: str, build: Callable[[dict], T]) -> T | None:
    """``build(state)`` of the checkpoint in ``folder`` if it was written for ``config``; otherwise
    (or if building fails) a warning naming ``what`` and the folder, and None."""
    try:
        state = load_checkpoint(folder)
        if state is None:
            raise ValueError("no complete checkpoint")
        if state["config"] != dict(config):
            raise ValueError(f"config {state['config']} differs from {dict(config)}")
        return build(state)
    except Exception as error:  # noqa: BLE001 (tokenizers and safetensors raise their own types)
        warnings.warn(f"{what} cache at {folder} could not be used ({error}); retraining", stacklevel=3)
        return None
