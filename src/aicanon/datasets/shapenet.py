"""ShapeNetCore's file layout: read it (for users who have the data) and write it (our procedural models).

ShapeNetCore (Chang et al. 2015) is distributed under a licence, after registration, from
shapenet.org (and the gated Hugging Face repository ``ShapeNet/ShapeNetCore``); it is not in the data
registry and nothing here downloads it. Point :class:`ShapeNetCore` at an unpacked copy. The layouts
read:

* v2 (``ShapeNetCore.v2``): ``<root>/<synset id>/<model id>/models/model_normalized.obj``, beside it
  ``model_normalized.json`` (``min``, ``max``, ``centroid``, ``id``, ``numVertices``);
* v1 (``ShapeNetCore.v1``): ``<root>/<synset id>/<model id>/model.obj``;
* ``<root>/taxonomy.json``: a JSON list of ``{"synsetId", "name", "children", "numInstances"}``
  (optional: without it the synset folders are taken as they are, named from
  :data:`aicanon.datasets.meshes.SHAPENETCORE_SYNSETS`).

Synset folders are 8-digit WordNet offsets; anything else in ``root`` (``taxonomy.json``,
``all.csv``, a README, zip files) is ignored. Models are listed in sorted order so that indices
are stable across machines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from aicanon.core.checks import check_choice
from aicanon.datasets.meshes import (
    SHAPENETCORE_SYNSETS,
    ShapeModel,
    Synset,
    Taxonomy,
    TriangleMesh,
    load_obj,
    save_obj,
)

__all__ = ["MODEL_FILES", "ShapeNetCore", "read_taxonomy", "write_model", "write_taxonomy"]

MODEL_FILES = {"v2": ("models", "model_normalized.obj"), "v1": ("model.obj",)}
"""Path of a model's OBJ inside ``<root>/<synset>/<model>/``, per layout version."""


def read_taxonomy(path: str | os.PathLike) -> Taxonomy:
    """Parse a ShapeNetCore ``taxonomy.json``; errors name the file."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
        return Taxonomy.from_json(records)
    except (json.JSONDecodeError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a ShapeNet taxonomy.json: {error}") from error


def write_taxonomy(path: str | os.PathLike, taxonomy: Taxonomy) -> None:
    """Write ``taxonomy`` as ShapeNetCore's ``taxonomy.json``."""
    if not isinstance(taxonomy, Taxonomy):
        raise TypeError(f"taxonomy must be a Taxonomy, got {type(taxonomy).__name__}")
    Path(path).write_text(json.dumps(taxonomy.to_json(), indent=1) + "\n", encoding="utf-8")


def write_model(root: str | os.PathLike, synset_id: str, model_id: str, mesh: TriangleMesh) -> ShapeModel:
    """Write ``mesh`` as a v2 model: ``models/model_normalized.obj`` and its ``.json`` summary."""
    model = ShapeModel(model_id, synset_id, "")  # validates both ids
    folder = Path(root) / synset_id / model_id / "models"
    folder.mkdir(parents=True, exist_ok=True)
    obj = folder / "model_normalized.obj"
    save_obj(obj, mesh)
    low, high = mesh.vertices.min(0).values, mesh.vertices.max(0).values
    summary = {
        "min": low.tolist(),
        "max": high.tolist(),
        "centroid": mesh.vertices.double().mean(0).tolist(),
        "id": model_id,
        "numVertices": mesh.num_vertices,
    }
    (folder / "model_normalized.json").write_text(json.dumps(summary) + "\n", encoding="utf-8")
    return ShapeModel(model.model_id, synset_id, str(obj))


class ShapeNetCore:
    """An unpacked ShapeNetCore (v1 or v2 layout) at ``root``: its taxonomy and its models.

    ``synsets`` restricts the categories (ids or short names such as ``"chair"``); ``version`` is
    ``"v2"``, ``"v1"`` or ``"auto"`` (v2 where a model has ``models/model_normalized.obj``, else v1).
    ``labels[i]`` is the class index of ``models[i]``, classes ordered by synset id.
    """

    def __init__(self, root: str | os.PathLike, synsets: Iterable[str] | None = None, version: str = "auto"):
        self.root = Path(root)
        self.version = check_choice("version", version, ("auto", "v1", "v2"))
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"ShapeNetCore root {str(self.root)!r} is not a folder. ShapeNetCore is licensed: "
                "download it from https://shapenet.org (or the gated Hugging Face dataset "
                "ShapeNet/ShapeNetCore), unpack it and pass the folder holding the synset folders "
                "(02691156/, 03001627/, ...)."
            )
        taxonomy_file = self.root / "taxonomy.json"
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir() and _is_synset(p.name))
        if taxonomy_file.is_file():
            self.taxonomy = read_taxonomy(taxonomy_file)
        else:
            self.taxonomy = Taxonomy(Synset(s, SHAPENETCORE_SYNSETS.get(s, s)) for s in folders)
        wanted = folders if synsets is None else [self._resolve(s) for s in synsets]
        missing = [s for s in wanted if s not in folders]
        if missing:
            raise FileNotFoundError(
                f"synset folders {missing} are not in {self.root} (found {len(folders)}: {folders[:8]}...)"
            )
        if not wanted:
            raise FileNotFoundError(f"no synset folders (8-digit WordNet offsets) in {self.root}")
        self.synset_ids: list[str] = sorted(wanted)
        self.models: list[ShapeModel] = []
        self.labels: list[int] = []
        for label, synset_id in enumerate(self.synset_ids):
            for folder in sorted(p for p in (self.root / synset_id).iterdir() if p.is_dir()):
                path = self._model_file(folder)
                if path is not None:
                    self.models.append(ShapeModel(folder.name, synset_id, str(path)))
                    self.labels.append(label)

    def _resolve(self, name: str) -> str:
        if _is_synset(name):
            return name
        for synset_id, synset in self.taxonomy.synsets.items():
            if name == synset.short_name or name in [n.strip() for n in synset.name.split(",")]:
                return synset_id
        for synset_id, short in SHAPENETCORE_SYNSETS.items():
            if name == short:
                return synset_id
        raise ValueError(f"synsets must hold synset ids or category names, got unknown {name!r}")

    def _model_file(self, folder: Path) -> Path | None:
        versions = ("v2", "v1") if self.version == "auto" else (self.version,)
        for version in versions:
            path = folder.joinpath(*MODEL_FILES[version])
            if path.is_file():
                return path
        return None

    @property
    def class_names(self) -> list[str]:
        return [
            self.taxonomy[s].short_name if s in self.taxonomy else SHAPENETCORE_SYNSETS.get(s, s)
            for s in self.synset_ids
        ]

    def __len__(self) -> int:
        return len(self.models)

    def __getitem__(self, index: int) -> tuple[ShapeModel, int]:
        return self.models[index], self.labels[index]

    def load_mesh(self, index: int) -> TriangleMesh:
        """The mesh of model ``index`` (OBJ errors name the file and line)."""
        return load_obj(self.models[index].mesh_path)

    def counts(self) -> dict[str, int]:
        """Models per synset id found on disk."""
        return {s: self.labels.count(i) for i, s in enumerate(self.synset_ids)}


def _is_synset(name: str) -> bool:
    return len(name) == 8 and name.isdigit()
