"""Result files: ``DIR/<slug>/<timestamp>-<scale>/result.json`` plus PNG plots, and lookups of the latest.

The repository keeps its reference results under ``results/`` (small JSON and PNG files), which
``aicanon report`` turns into RESULTS.md and ``aicanon list`` reads to derive each paper's status.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from aicanon.core.environment import project_root
from aicanon.core.experiment import Reproduction
from aicanon.core.seed_store import json_default

ENV_RESULTS = "AICANON_RESULTS"
RECORD_KEYS = ("slug", "scale", "claims", "seeds", "seconds", "passed")
"""What every result.json written by :func:`write` holds, and what readers rely on."""


def results_dir() -> Path:
    return Path(os.environ.get(ENV_RESULTS) or project_root() / "results")


def write(rep: Reproduction, out_dir: str | os.PathLike | None = None, command: str | None = None) -> Path:
    """Write ``result.json`` and ``<figure>.png`` files; return the run folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = Path(out_dir) if out_dir is not None else results_dir()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = base / rep.slug / f"{stamp}-{rep.scale}"
    folder.mkdir(parents=True, exist_ok=True)
    data = rep.to_json()
    data["command"] = command
    data["timestamp"] = stamp
    data["plots"] = []
    for name, fig in rep.figures.items():
        fig.savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        data["plots"].append(f"{name}.png")
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=json_default) + "\n")
    os.replace(tmp, folder / "result.json")
    if rep.resume is not None:  # the result is on disk: the finished seeds are no longer needed
        rep.resume.clear()
    return folder


def checkpoint_folder(slug: str, config: dict[str, Any]) -> Path:
    """Where one seed's training checkpoints go while it runs: ``<results>/_checkpoints/<slug>/<hash>``,
    the hash of the seed's whole config (so another setting never resumes this one's training)."""
    text = json.dumps(config, sort_keys=True, default=json_default)
    return results_dir() / "_checkpoints" / slug / hashlib.sha256(text.encode()).hexdigest()[:16]


def latest(slug: str, scale: str, base: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The newest ``result.json`` of ``slug`` at ``scale``, or None."""
    folder = Path(base) if base is not None else results_dir()
    runs = sorted((folder / slug).glob(f"*-{scale}/result.json")) if (folder / slug).exists() else []
    for path in reversed(runs):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            warnings.warn(f"skipping {path}: unreadable ({error})", stacklevel=2)
            continue
        missing = [key for key in RECORD_KEYS if not isinstance(record, dict) or key not in record]
        if missing or not isinstance(record.get("claims"), list):
            warnings.warn(f"skipping {path}: not a result record (lacks {', '.join(missing) or 'a claims list'})", stacklevel=2)
            continue
        return record | {"path": str(path.parent)}
    return None


def parity_record(slug: str, base: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The record ``aicanon verify`` wrote for ``slug``'s reference-parity tests, or None."""
    path = (Path(base) if base is not None else results_dir()) / slug / "parity.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
