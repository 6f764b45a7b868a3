"""Finished seeds of a reproduction, kept on disk so that a rerun of the same command never repeats one.

A full reproduction runs many seeds (GAT's Table 2: 100 runs), each of which may take long. After
every finished seed, :func:`aicanon.core.experiment.reproduce` stores its metrics, notes and (for the
first seed, whose figures and details stand for the run) its details and figures as PNG files in a
folder named by the run's configuration. A rerun of the same command finds them and runs only the
seeds still missing; a rerun with another configuration has another folder and starts afresh, so
finished seeds are never mixed across settings. The folder is deleted once the reproduction is
written. Each record is written under a temporary name and renamed, so a kill leaves whole records.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SeedRecord", "SeedStore", "json_default"]


def json_default(obj: Any) -> Any:
    """JSON for the numpy values experiments put in metrics and details."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@dataclass
class SeedRecord:
    """What a finished seed left: its metrics and notes; details and figures for the first seed."""

    metrics: dict[str, float]
    notes: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


class SeedStore:
    """Finished seeds of one reproduction (``slug``, ``scale`` and the configuration's hash) under ``base``."""

    def __init__(self, base: str | os.PathLike, slug: str, scale: str, config: dict[str, Any]) -> None:
        text = json.dumps(config, sort_keys=True, default=json_default)
        key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.folder = Path(base) / slug / f".unfinished-{scale}-{key}"
        self.config = json.loads(text)

    def _path(self, seed: int) -> Path:
        return self.folder / f"seed-{seed}.json"

    def load(self, seed: int) -> SeedRecord | None:
        """The record of ``seed`` when an earlier run of this configuration finished it, else None."""
        path = self._path(seed)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("config") != self.config:
                return None  # a hash collision or a hand-edited file: never use a record of other settings
            figures = {name: _image_figure(self.folder / file) for name, file in data.get("figures", {}).items()}
            return SeedRecord(data["metrics"], data["notes"], data.get("details", {}), figures)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # an unreadable record is a seed to run again, not a failure

    def save(self, seed: int, record: SeedRecord) -> None:
        """Store ``record`` for ``seed`` (figures as PNG files beside it), atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, figure in record.figures.items():
            file = f"seed-{seed}-{name}.png"
            figure.savefig(self.folder / f"{file}.tmp", dpi=110, bbox_inches="tight", format="png")
            os.replace(self.folder / f"{file}.tmp", self.folder / file)
            files[name] = file
        data = {
            "config": self.config,
            "metrics": record.metrics,
            "notes": record.notes,
            "details": record.details,
            "figures": files,
        }
        tmp = self._path(seed).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, default=json_default))
        os.replace(tmp, self._path(seed))

    def clear(self) -> None:
        """Forget every record (the reproduction has been written)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _image_figure(path: Path) -> Any:
    """A figure showing a stored PNG, so that a restored first seed's plots are written like fresh ones."""
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    image = imread(path)
    height, width = image.shape[:2]
    figure = Figure(figsize=(width / 110, height / 110), dpi=110)
    axis = figure.add_axes((0, 0, 1, 1))
    axis.imshow(image)
    axis.set_axis_off()
    return figure
