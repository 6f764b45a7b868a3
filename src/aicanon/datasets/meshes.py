"""ShapeNet's data model and its mesh format (Chang et al. 2015, arXiv 1512.03012): what a file of the
repository holds, with no learning in it (the geometry a learner needs is in
:mod:`aicanon.vision.shapenet`; the folder layout in :mod:`aicanon.datasets.shapenet`).

ShapeNet is a repository, not a method: 3-D CAD models organised under the WordNet taxonomy, each
carrying annotations (category, a consistent rigid alignment, parts, symmetry, physical size). Its
clean subset, ShapeNetCore, ships every model as an OBJ mesh in a folder named for its WordNet synset
(``<root>/<synset id>/<model id>/models/model_normalized.obj``) with a ``taxonomy.json`` listing the
synsets. This module holds:

* the taxonomy (Section 3.1: "ShapeNet is organised according to the WordNet taxonomy"): a
  :class:`Synset` is an 8-digit WordNet 3.0 offset (``02691156`` = airplane) with a name, its
  children and an instance count, exactly the fields of ShapeNetCore's ``taxonomy.json``;
  :class:`Taxonomy` answers parent/ancestor/descendant queries. :data:`SHAPENETCORE_SYNSETS` lists
  the 55 ShapeNetCore categories;
* the alignment annotation (Section 3.2, "consistent rigid alignments": every model of a category
  shares an upright and a front orientation): :class:`Alignment` holds the ``up`` and ``front``
  vectors and the rotation into our canonical frame;
* a model (:class:`ShapeModel`: id, synset, mesh file, alignment) and its geometry
  (:class:`TriangleMesh`: vertices, triangles, optional normals and texture coordinates, and a part
  label per triangle from the OBJ's ``g``/``o`` groups: the mesh's own part structure, Section 3.2);
* an OBJ reader and writer (:func:`parse_obj`, :func:`load_obj`, :func:`format_obj`, :func:`save_obj`).

Departures and choices
----------------------
* Polygons with more than three corners are triangulated as a fan from their first corner, which is
  exact for the convex faces CAD exports write; a concave polygon may be triangulated wrongly.
* The OBJ reader keeps geometry, normals, texture coordinates and groups; materials (``mtllib``,
  ``usemtl``), smoothing groups, lines and points are accepted and ignored.
* Canonical frame: ``up`` is +Y and ``front`` is -Z. This is the convention our writer uses; check it
  against your copy of ShapeNetCore before relying on the front direction.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from aicanon.core.checks import check_float, check_int, check_tensor

__all__ = [
    "CANONICAL_FRONT",
    "CANONICAL_UP",
    "SHAPENETCORE_SYNSETS",
    "Alignment",
    "ObjError",
    "ShapeModel",
    "Synset",
    "Taxonomy",
    "TriangleMesh",
    "format_obj",
    "load_obj",
    "parse_obj",
    "save_obj",
]

# ShapeNetCore's 55 categories: WordNet 3.0 offset -> the short name ShapeNetCore's tools use.
SHAPENETCORE_SYNSETS: dict[str, str] = {
    "02691156": "airplane", "02747177": "trash bin", "02773838": "bag", "02801938": "basket",
    "02808440": "bathtub", "02818832": "bed", "02828884": "bench", "02843684": "birdhouse",
    "02871439": "bookshelf", "02876657": "bottle", "02880940": "bowl", "02924116": "bus",
    "02933112": "cabinet", "02942699": "camera", "02946921": "can", "02954340": "cap",
    "02958343": "car", "02992529": "cellphone", "03001627": "chair", "03046257": "clock",
    "03085013": "keyboard", "03207941": "dishwasher", "03211117": "display", "03261776": "earphone",
    "03325088": "faucet", "03337140": "file cabinet", "03467517": "guitar", "03513137": "helmet",
    "03593526": "jar", "03624134": "knife", "03636649": "lamp", "03642806": "laptop",
    "03691459": "loudspeaker", "03710193": "mailbox", "03759954": "microphone", "03761084": "microwave",
    "03790512": "motorbike", "03797390": "mug", "03928116": "piano", "03938244": "pillow",
    "03948459": "pistol", "03991062": "pot", "04004475": "printer", "04074963": "remote",
    "04090263": "rifle", "04099429": "rocket", "04225987": "skateboard", "04256520": "sofa",
    "04330267": "stove", "04379243": "table", "04401088": "telephone", "04460130": "tower",
    "04468005": "train", "04530566": "watercraft", "04554684": "washer",
}  # fmt: skip

CANONICAL_UP = (0.0, 1.0, 0.0)
CANONICAL_FRONT = (0.0, 0.0, -1.0)

_SYNSET_ID = re.compile(r"^\d{8}$")


def _check_synset_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not _SYNSET_ID.match(value):
        raise ValueError(f"{name} must be an 8-digit WordNet offset such as '02691156', got {value!r}")
    return value


# --------------------------------------------------------------------------------------------- taxonomy


@dataclass(frozen=True)
class Synset:
    """One WordNet synset as ShapeNetCore's ``taxonomy.json`` lists it."""

    synset_id: str
    """8-digit WordNet 3.0 offset, zero-padded (``"02691156"``)."""
    name: str
    """Comma-separated lemmas (``"airplane,aeroplane,plane"``)."""
    children: tuple[str, ...] = ()
    """Synset ids of its hyponyms present in the repository."""
    num_instances: int = 0
    """Models under this synset (its own and its descendants')."""

    def __post_init__(self) -> None:
        _check_synset_id("synset_id", self.synset_id)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name of synset {self.synset_id} must be a non-empty string, got {self.name!r}")
        for child in self.children:
            _check_synset_id(f"children of synset {self.synset_id}", child)
        check_int("num_instances", self.num_instances, 0)

    @property
    def short_name(self) -> str:
        """The first lemma: ``"airplane"`` for ``"airplane,aeroplane,plane"``."""
        return self.name.split(",")[0].strip()

    def to_json(self) -> dict:
        """The ``taxonomy.json`` record: ``synsetId``, ``name``, ``children``, ``numInstances``."""
        return {
            "synsetId": self.synset_id,
            "name": self.name,
            "children": list(self.children),
            "numInstances": self.num_instances,
        }

    @classmethod
    def from_json(cls, record: object) -> Synset:
        if not isinstance(record, dict):
            raise ValueError(f"a taxonomy record must be a JSON object, got {type(record).__name__}")
        missing = [k for k in ("synsetId", "name") if k not in record]
        if missing:
            raise ValueError(f"taxonomy record {record!r} lacks {', '.join(missing)}")
        children = record.get("children", [])
        if not isinstance(children, list):
            raise ValueError(f"children of synset {record['synsetId']!r} must be a list, got {children!r}")
        return cls(record["synsetId"], record["name"], tuple(children), int(record.get("numInstances", 0)))


class Taxonomy:
    """The synset hierarchy (WordNet's is-a relation restricted to the repository's synsets)."""

    def __init__(self, synsets: Iterable[Synset]):
        self.synsets: dict[str, Synset] = {}
        for synset in synsets:
            if not isinstance(synset, Synset):
                raise TypeError(f"synsets must hold Synset objects, got {type(synset).__name__}")
            if synset.synset_id in self.synsets:
                raise ValueError(f"synset {synset.synset_id} is listed twice")
            self.synsets[synset.synset_id] = synset
        self._parent: dict[str, str] = {}
        for synset in self.synsets.values():
            for child in synset.children:
                # WordNet allows several hypernyms; ShapeNetCore's taxonomy.json gives each synset one.
                self._parent.setdefault(child, synset.synset_id)

    @classmethod
    def from_json(cls, records: object) -> Taxonomy:
        """From the parsed ``taxonomy.json`` (a list of synset records)."""
        if not isinstance(records, list):
            raise ValueError(f"taxonomy.json must hold a JSON list of synsets, got {type(records).__name__}")
        return cls(Synset.from_json(r) for r in records)

    def to_json(self) -> list[dict]:
        return [s.to_json() for s in self.synsets.values()]

    def __len__(self) -> int:
        return len(self.synsets)

    def __contains__(self, synset_id: object) -> bool:
        return synset_id in self.synsets

    def __getitem__(self, synset_id: str) -> Synset:
        if synset_id not in self.synsets:
            raise KeyError(f"synset {synset_id!r} is not in the taxonomy ({len(self)} synsets)")
        return self.synsets[synset_id]

    def parent(self, synset_id: str) -> str | None:
        """The synset listing ``synset_id`` among its children, or None for a root."""
        self[synset_id]
        return self._parent.get(synset_id)

    def ancestors(self, synset_id: str) -> list[str]:
        """Parent, grandparent, ... up to the root."""
        out: list[str] = []
        current = self.parent(synset_id)
        while current is not None and current not in out:
            out.append(current)
            current = self._parent.get(current)
        return out

    def descendants(self, synset_id: str) -> list[str]:
        """Every synset below ``synset_id`` (depth first), listed once."""
        out: list[str] = []
        stack = list(reversed(self[synset_id].children))
        while stack:
            child = stack.pop()
            if child in out:
                continue
            out.append(child)
            if child in self.synsets:
                stack.extend(reversed(self.synsets[child].children))
        return out

    def roots(self) -> list[str]:
        """Synsets that are nobody's child: ShapeNetCore's top-level categories."""
        return [s for s in self.synsets if s not in self._parent]


# --------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Alignment:
    """A model's upright (``up``) and front (``front``) directions in its own coordinates.

    ShapeNet aligns the models of a category consistently (Section 3.2); :meth:`rotation` maps the
    model into the canonical frame (``up`` -> +Y, ``front`` -> -Z).
    """

    up: tuple[float, float, float] = CANONICAL_UP
    front: tuple[float, float, float] = CANONICAL_FRONT

    def __post_init__(self) -> None:
        for name in ("up", "front"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 3:
                raise ValueError(f"{name} must be a 3-vector, got {value!r}")
            for v in value:
                check_float(name, v, finite=True)
            if math.isclose(math.hypot(*value), 0.0, abs_tol=1e-9):
                raise ValueError(f"{name} must be a non-zero vector, got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        up, front = torch.tensor(self.up), torch.tensor(self.front)
        cosine = torch.dot(up, front) / (up.norm() * front.norm())
        if abs(float(cosine)) > 1e-4:
            raise ValueError(f"up and front must be orthogonal, got up={self.up} front={self.front}")

    def _basis(self) -> Tensor:
        up = torch.tensor(self.up, dtype=torch.float64)
        front = torch.tensor(self.front, dtype=torch.float64)
        up, front = up / up.norm(), front / front.norm()
        return torch.stack([torch.linalg.cross(up, front), up, front], dim=1)  # columns: right, up, front

    def rotation(self) -> Tensor:
        """The 3x3 rotation ``R`` (float64) with ``R @ up = +Y`` and ``R @ front = -Z``."""
        canonical = Alignment()._basis()
        return canonical @ self._basis().T

    def to_canonical(self, points: Tensor) -> Tensor:
        """``points [..., 3]`` in the canonical frame."""
        check_tensor("points", points, floating=True)
        if points.shape[-1] != 3:
            raise ValueError(
                f"points must have 3 coordinates in the last dimension, got {tuple(points.shape)}"
            )
        return points @ self.rotation().to(points.dtype).T


@dataclass
class TriangleMesh:
    """A triangle mesh with optional per-corner normals and texture coordinates and a part per face.

    ``vertices [V, 3]`` float; ``faces [F, 3]`` int64 indices into ``vertices``. When the OBJ has them,
    ``normals [Vn, 3]`` with ``face_normals [F, 3]`` (indices into ``normals``, -1 where a corner has
    none) and ``texcoords [Vt, 2 or 3]`` with ``face_texcoords [F, 3]``. ``face_groups [F]`` indexes
    ``group_names`` (the OBJ's ``g``/``o`` names; ``"default"`` before the first).
    """

    vertices: Tensor
    faces: Tensor
    normals: Tensor | None = None
    face_normals: Tensor | None = None
    texcoords: Tensor | None = None
    face_texcoords: Tensor | None = None
    face_groups: Tensor | None = None
    group_names: list[str] = field(default_factory=lambda: ["default"])

    def __post_init__(self) -> None:
        check_tensor("vertices", self.vertices, shape=(None, 3), floating=True)
        check_tensor("faces", self.faces, shape=(None, 3), dtype=torch.int64)
        if self.faces.numel() and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError(
                f"faces must index vertices in [0, {len(self.vertices)}), got indices in "
                f"[{int(self.faces.min())}, {int(self.faces.max())}]"
            )
        if self.face_groups is None:
            self.face_groups = torch.zeros(len(self.faces), dtype=torch.int64)
        check_tensor("face_groups", self.face_groups, shape=(len(self.faces),), dtype=torch.int64)
        if self.face_groups.numel() and int(self.face_groups.max()) >= len(self.group_names):
            raise ValueError(f"face_groups must index group_names ({len(self.group_names)} names)")

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    def part(self, name: str) -> Tensor:
        """Indices of the faces labelled ``name``."""
        if name not in self.group_names:
            raise KeyError(f"part {name!r} is not in this mesh; parts: {self.group_names}")
        return torch.nonzero(self.face_groups == self.group_names.index(name)).flatten()

    def transformed(self, matrix: Tensor, translation: Tensor | None = None) -> TriangleMesh:
        """A copy with ``vertices @ matrix.T + translation`` (normals rotated by the inverse transpose)."""
        check_tensor("matrix", matrix, shape=(3, 3), floating=True)
        matrix = matrix.to(self.vertices.dtype)
        vertices = self.vertices @ matrix.T
        if translation is not None:
            vertices = vertices + translation.to(vertices.dtype)
        normals = None
        if self.normals is not None:
            normals = self.normals @ torch.linalg.inv(matrix)
            normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return TriangleMesh(
            vertices,
            self.faces,
            normals,
            self.face_normals,
            self.texcoords,
            self.face_texcoords,
            self.face_groups,
            list(self.group_names),
        )

    @staticmethod
    def concatenate(meshes: Sequence[TriangleMesh]) -> TriangleMesh:
        """One mesh holding all of ``meshes`` (parts merged by name; normals and texcoords dropped)."""
        if not meshes:
            raise ValueError("meshes must hold at least one mesh, got none")
        names: list[str] = []
        vertices, faces, groups = [], [], []
        offset = 0
        for mesh in meshes:
            remap = []
            for name in mesh.group_names:
                if name not in names:
                    names.append(name)
                remap.append(names.index(name))
            vertices.append(mesh.vertices)
            faces.append(mesh.faces + offset)
            groups.append(torch.tensor(remap, dtype=torch.int64)[mesh.face_groups])
            offset += mesh.num_vertices
        return TriangleMesh(
            torch.cat(vertices), torch.cat(faces), face_groups=torch.cat(groups), group_names=names
        )


@dataclass(frozen=True)
class ShapeModel:
    """One model of the repository: its id, its synset, where its mesh is, and its alignment."""

    model_id: str
    synset_id: str
    mesh_path: str
    alignment: Alignment = Alignment()

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str) or not self.model_id:
            raise ValueError(f"model_id must be a non-empty string, got {self.model_id!r}")
        _check_synset_id("synset_id", self.synset_id)


# --------------------------------------------------------------------------------------------- OBJ


class ObjError(ValueError):
    """A malformed OBJ file; the message starts with ``<file>:<line>:``."""


def _obj_index(token: str, count: int, kind: str, where: str) -> int:
    try:
        index = int(token)
    except ValueError:
        raise ObjError(f"{where}: {kind} index {token!r} is not an integer") from None
    if index == 0:
        raise ObjError(f"{where}: {kind} index 0 is invalid (OBJ indices start at 1)")
    resolved = index - 1 if index > 0 else count + index  # negative: relative to the last one read
    if not 0 <= resolved < count:
        raise ObjError(f"{where}: {kind} index {index} is out of range ({count} {kind}s read so far)")
    return resolved


def parse_obj(text: str, source: str = "<string>") -> TriangleMesh:
    """Parse Wavefront OBJ ``text`` into a :class:`TriangleMesh`.

    Reads ``v`` (x y z, an optional w or colour ignored), ``vn``, ``vt``, ``f`` with corners ``v``,
    ``v/vt``, ``v//vn`` or ``v/vt/vn`` (1-based; negative indices count back from the last element
    read), ``g``/``o`` (part groups), comments (``#``) and blank lines; lines continued with ``\\``
    are joined. Faces of more than three corners are fan-triangulated. Errors raise
    :class:`ObjError` naming ``source`` and the line.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    vertices: list[list[float]] = []
    normals: list[list[float]] = []
    texcoords: list[list[float]] = []
    faces: list[list[int]] = []
    face_t: list[list[int]] = []
    face_n: list[list[int]] = []
    groups: list[int] = []
    group_names = ["default"]
    current_group = 0
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        start = number
        line = lines[number]
        number += 1
        while line.endswith("\\") and number < len(lines):
            line = line[:-1] + " " + lines[number]
            number += 1
        if "#" in line:
            line = line.split("#", 1)[0]
        keyword, *args = line.split() or ("",)
        if not keyword:
            continue
        if keyword == "f" and len(args) == 3 and "/" not in line:
            # fast path for the common plain triangle; anything unusual takes the general path below
            try:
                corners3 = [int(args[0]) - 1, int(args[1]) - 1, int(args[2]) - 1]
            except ValueError:
                corners3 = None
            if corners3 is not None and min(corners3) >= 0 and max(corners3) < len(vertices):
                faces.append(corners3)
                face_t.append([-1, -1, -1])
                face_n.append([-1, -1, -1])
                groups.append(current_group)
                continue
        if keyword == "v" and len(args) == 3:
            try:
                xyz = [float(args[0]), float(args[1]), float(args[2])]
            except ValueError:
                xyz = None
            if xyz is not None and math.isfinite(xyz[0] + xyz[1] + xyz[2]):
                vertices.append(xyz)
                continue
        where = f"{source}:{start + 1}"
        if keyword in ("v", "vn", "vt"):
            want = {"v": 3, "vn": 3, "vt": 1}[keyword]
            try:
                values = [float(a) for a in args]
            except ValueError:
                raise ObjError(f"{where}: '{keyword}' needs numbers, got {' '.join(args)!r}") from None
            if len(values) < want or not all(math.isfinite(v) for v in values):
                raise ObjError(f"{where}: '{keyword}' needs at least {want} finite numbers, got {args}")
            if keyword == "v":
                vertices.append(values[:3])
            elif keyword == "vn":
                normals.append(values[:3])
            else:
                texcoords.append((values + [0.0, 0.0])[:3])
        elif keyword == "f":
            if len(args) < 3:
                raise ObjError(f"{where}: a face needs at least 3 corners, got {len(args)}")
            corners = []
            for corner in args:
                parts = corner.split("/")
                if len(parts) > 3 or not parts[0]:
                    raise ObjError(f"{where}: face corner {corner!r} is not v, v/vt, v//vn or v/vt/vn")
                v = _obj_index(parts[0], len(vertices), "vertex", where)
                t = (
                    _obj_index(parts[1], len(texcoords), "texture", where)
                    if len(parts) > 1 and parts[1]
                    else -1
                )
                n = _obj_index(parts[2], len(normals), "normal", where) if len(parts) > 2 and parts[2] else -1
                corners.append((v, t, n))
            for i in range(1, len(corners) - 1):  # fan triangulation from the first corner
                triangle = (corners[0], corners[i], corners[i + 1])
                faces.append([c[0] for c in triangle])
                face_t.append([c[1] for c in triangle])
                face_n.append([c[2] for c in triangle])
                groups.append(current_group)
        elif keyword in ("g", "o"):
            name = " ".join(args) if args else "default"
            if name not in group_names:
                group_names.append(name)
            current_group = group_names.index(name)
        elif keyword in ("mtllib", "usemtl", "s", "l", "p", "vp", "cstype", "deg", "curv", "surf", "end"):
            continue  # materials, smoothing, lines, points and free-form geometry carry no triangles
        else:
            raise ObjError(f"{where}: unknown OBJ statement {keyword!r}")
    if not faces:
        raise ObjError(f"{source}: no faces found ({len(vertices)} vertices)")
    if 0 not in groups and len(group_names) > 1:  # no face before the first g/o: drop "default"
        group_names = group_names[1:]
        groups = [g - 1 for g in groups]
    face_n_tensor = torch.tensor(face_n, dtype=torch.int64)
    face_t_tensor = torch.tensor(face_t, dtype=torch.int64)
    return TriangleMesh(
        vertices=torch.tensor(vertices, dtype=torch.float32),
        faces=torch.tensor(faces, dtype=torch.int64),
        normals=torch.tensor(normals, dtype=torch.float32) if normals else None,
        face_normals=face_n_tensor if normals else None,
        texcoords=torch.tensor(texcoords, dtype=torch.float32) if texcoords else None,
        face_texcoords=face_t_tensor if texcoords else None,
        face_groups=torch.tensor(groups, dtype=torch.int64),
        group_names=group_names,
    )


def load_obj(path: str | os.PathLike) -> TriangleMesh:
    """Read the OBJ file at ``path`` (errors name the file and line)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_obj(handle.read(), source=path)


def format_obj(mesh: TriangleMesh, precision: int = 6) -> str:
    """The mesh as OBJ text: ``v`` lines, then faces grouped by part (``g name``), 1-based.

    Normals and texture coordinates are written when the mesh has them, with ``v/vt/vn`` corners.
    """
    if not isinstance(mesh, TriangleMesh):
        raise TypeError(f"mesh must be a TriangleMesh, got {type(mesh).__name__}")
    check_int("precision", precision, 1, 17)
    out = [f"# {mesh.num_vertices} vertices, {mesh.num_faces} triangles"]
    out += [" ".join(["v"] + [f"{x:.{precision}g}" for x in v]) for v in mesh.vertices.tolist()]
    has_t = mesh.texcoords is not None and mesh.face_texcoords is not None
    has_n = mesh.normals is not None and mesh.face_normals is not None
    if has_t:
        out += [" ".join(["vt"] + [f"{x:.{precision}g}" for x in t]) for t in mesh.texcoords.tolist()]
    if has_n:
        out += [" ".join(["vn"] + [f"{x:.{precision}g}" for x in n]) for n in mesh.normals.tolist()]
    faces = mesh.faces.tolist()
    texture = mesh.face_texcoords.tolist() if has_t else None
    normal = mesh.face_normals.tolist() if has_n else None
    for group, name in enumerate(mesh.group_names):
        members = torch.nonzero(mesh.face_groups == group).flatten().tolist()
        if not members:
            continue
        out.append(f"g {name}")
        for f in members:
            corners = []
            for k in range(3):
                corner = str(faces[f][k] + 1)
                t = texture[f][k] if texture else -1
                n = normal[f][k] if normal else -1
                if n >= 0:
                    corner += f"/{t + 1 if t >= 0 else ''}/{n + 1}"
                elif t >= 0:
                    corner += f"/{t + 1}"
                corners.append(corner)
            out.append("f " + " ".join(corners))
    return "\n".join(out) + "\n"


def save_obj(path: str | os.PathLike, mesh: TriangleMesh) -> None:
    """Write ``mesh`` to ``path`` as OBJ (:func:`format_obj`)."""
    with open(os.fspath(path), "w", encoding="utf-8") as handle:
        handle.write(format_obj(mesh))
