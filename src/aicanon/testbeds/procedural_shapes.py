"""Testbed: procedural 3-D models of six ShapeNetCore categories, written in ShapeNetCore's layout.

ShapeNetCore itself (Chang et al. 2015) is licensed and tens of gigabytes, so the experiment stands in
a set built from primitives (boxes, cylinders, cones: closed, outward-oriented triangle meshes) with
random proportions, a random rotation about the up axis and vertex noise, each model labelled with a
real ShapeNetCore synset and written exactly as ShapeNetCore v2 stores its models
(``<root>/<synset>/<model id>/models/model_normalized.obj`` + ``taxonomy.json``), so the pipeline
that trains on it is the one a user with the real data runs (:class:`aicanon.datasets.shapenet.ShapeNetCore`).

=========  ========  ==========================================================================
category   synset    built from (parts, as OBJ groups)
=========  ========  ==========================================================================
airplane   02691156  a cylindrical fuselage along the front axis, swept wings, a tailplane, a fin
cabinet    02933112  a box body with one to four drawer handles on its front
can        02946921  one cylinder
chair      03001627  a seat, four legs, a backrest at the rear
lamp       03636649  a disc base, a thin pole, a conical shade
table      04379243  a top and four legs, longer and lower than a chair, no backrest
=========  ========  ==========================================================================

Frame: +Y up, -Z front (:data:`aicanon.vision.shapenet.CANONICAL_UP`/``CANONICAL_FRONT``); every
model is centred on its bounding box and scaled to a bounding-box diagonal of 1 (so it fits
``[-0.5, 0.5]^3``, as ShapeNetCore v2's normalised models do). A model depends only on
``(seed, category, index)``: a private ``torch.Generator`` per model, no global state.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from aicanon.core.checks import check_float, check_int
from aicanon.datasets.meshes import Synset, Taxonomy, TriangleMesh
from aicanon.datasets.shapenet import write_model, write_taxonomy

__all__ = [
    "CATEGORIES",
    "box",
    "cone",
    "cylinder",
    "generate_shape",
    "model_id",
    "write_procedural_shapenet",
]

# category -> (synset id, taxonomy.json name)
CATEGORIES: dict[str, tuple[str, str]] = {
    "airplane": ("02691156", "airplane,aeroplane,plane"),
    "cabinet": ("02933112", "cabinet"),
    "can": ("02946921", "can,tin,tin can"),
    "chair": ("03001627", "chair"),
    "lamp": ("03636649", "lamp"),
    "table": ("04379243", "table"),
}


# --------------------------------------------------------------------------------------------- primitives


def _outward(vertices: Tensor, faces: Tensor, centre: Tensor, part: str) -> TriangleMesh:
    """Flip the faces of a convex primitive whose normal points towards its centre."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    normal = torch.linalg.cross(b - a, c - a)
    inward = (normal * ((a + b + c) / 3 - centre)).sum(1) < 0
    faces = torch.where(inward.unsqueeze(1), faces[:, [0, 2, 1]], faces)
    return TriangleMesh(vertices, faces, group_names=[part])


def box(centre: Sequence[float], size: Sequence[float], part: str = "box") -> TriangleMesh:
    """An axis-aligned box (12 triangles) of ``size (x, y, z)`` at ``centre``."""
    centre_t = torch.tensor(centre, dtype=torch.float32)
    half = torch.tensor(size, dtype=torch.float32) / 2
    signs = torch.tensor(
        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=torch.float32
    )
    vertices = centre_t + signs * half
    # corner index = 4 * (x > 0) + 2 * (y > 0) + (z > 0); two triangles per side
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = torch.tensor([t for q in quads for t in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))])
    return _outward(vertices, faces, centre_t, part)


def _axis_matrix(axis: str) -> Tensor:
    """Rotation taking the +Y axis to ``axis``."""
    if axis == "y":
        return torch.eye(3)
    if axis == "x":
        return torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    if axis == "z":
        return torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    if axis == "-z":
        return torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    raise ValueError(f"axis must be 'x', 'y', 'z' or '-z', got {axis!r}")


def _solid_of_revolution(
    centre: Sequence[float],
    radius_bottom: float,
    radius_top: float,
    height: float,
    segments: int,
    axis: str,
    part: str,
) -> TriangleMesh:
    check_int("segments", segments, 3)
    angles = torch.arange(segments, dtype=torch.float32) * (2 * math.pi / segments)
    ring = torch.stack([torch.cos(angles), torch.zeros(segments), torch.sin(angles)], dim=1)
    bottom = ring * radius_bottom + torch.tensor([0.0, -height / 2, 0.0])
    top_centre = torch.tensor([[0.0, height / 2, 0.0]])
    bottom_centre = torch.tensor([[0.0, -height / 2, 0.0]])
    i = torch.arange(segments)
    j = (i + 1) % segments
    if radius_top > 0:
        top = ring * radius_top + torch.tensor([0.0, height / 2, 0.0])
        vertices = torch.cat([bottom, top, bottom_centre, top_centre])
        side = torch.cat(
            [torch.stack([i, j, j + segments], 1), torch.stack([i, j + segments, i + segments], 1)]
        )
        caps = torch.cat(
            [
                torch.stack([torch.full_like(i, 2 * segments), j, i], 1),
                torch.stack([torch.full_like(i, 2 * segments + 1), i + segments, j + segments], 1),
            ]
        )
    else:  # a cone: the side meets at the apex
        vertices = torch.cat([bottom, bottom_centre, top_centre])
        side = torch.stack([i, j, torch.full_like(i, segments + 1)], 1)
        caps = torch.stack([torch.full_like(i, segments), j, i], 1)
    faces = torch.cat([side, caps]).long()
    matrix = _axis_matrix(axis)
    centre_t = torch.tensor(centre, dtype=torch.float32)
    vertices = vertices @ matrix.T + centre_t
    # the centroid of a frustum lies on its axis, strictly inside: a valid reference for _outward
    return _outward(vertices, faces, centre_t, part)


def cylinder(
    centre: Sequence[float],
    radius: float,
    height: float,
    segments: int = 16,
    axis: str = "y",
    part: str = "cylinder",
) -> TriangleMesh:
    """A closed cylinder of ``radius`` and ``height`` along ``axis`` centred at ``centre``."""
    return _solid_of_revolution(centre, radius, radius, height, segments, axis, part)


def cone(
    centre: Sequence[float],
    radius: float,
    height: float,
    segments: int = 16,
    axis: str = "y",
    part: str = "cone",
    top_radius: float = 0.0,
) -> TriangleMesh:
    """A closed cone (or frustum with ``top_radius > 0``) along ``axis``, apex towards +axis."""
    return _solid_of_revolution(centre, radius, top_radius, height, segments, axis, part)


# --------------------------------------------------------------------------------------------- categories


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _legs(width: float, depth: float, height: float, thickness: float, inset: float) -> list[TriangleMesh]:
    x, z = width / 2 - inset - thickness / 2, depth / 2 - inset - thickness / 2
    return [
        box((sx * x, height / 2, sz * z), (thickness, height, thickness), "leg")
        for sx in (-1, 1)
        for sz in (-1, 1)
    ]


def _table(g: torch.Generator) -> list[TriangleMesh]:
    width, depth = _uniform(g, 1.0, 1.8), _uniform(g, 0.55, 1.0)
    height, top = _uniform(g, 0.55, 0.85), _uniform(g, 0.03, 0.07)
    leg = _uniform(g, 0.04, 0.09)
    parts = _legs(width, depth, height, leg, _uniform(g, 0.0, 0.08))
    parts.append(box((0.0, height + top / 2, 0.0), (width, top, depth), "top"))
    return parts


def _chair(g: torch.Generator) -> list[TriangleMesh]:
    width, depth = _uniform(g, 0.4, 0.55), _uniform(g, 0.4, 0.55)
    seat_height, seat = _uniform(g, 0.38, 0.5), _uniform(g, 0.04, 0.08)
    leg = _uniform(g, 0.03, 0.06)
    back_height, back = _uniform(g, 0.35, 0.6), _uniform(g, 0.03, 0.07)
    parts = _legs(width, depth, seat_height, leg, 0.0)
    parts.append(box((0.0, seat_height + seat / 2, 0.0), (width, seat, depth), "seat"))
    # the backrest stands at the rear (+Z: the front is -Z)
    parts.append(
        box(
            (0.0, seat_height + seat + back_height / 2, depth / 2 - back / 2),
            (width, back_height, back),
            "back",
        )
    )
    return parts


def _airplane(g: torch.Generator) -> list[TriangleMesh]:
    length, radius = _uniform(g, 1.6, 2.4), _uniform(g, 0.07, 0.13)
    span, chord = _uniform(g, 1.4, 2.4), _uniform(g, 0.22, 0.4)
    wing_z = _uniform(g, -0.15, 0.1) * length
    tail_span, tail_chord = _uniform(g, 0.45, 0.8), _uniform(g, 0.12, 0.2)
    fin_height = _uniform(g, 0.2, 0.35)
    tail_z = length / 2 - tail_chord
    return [
        cylinder((0.0, 0.0, 0.0), radius, length, 16, "z", "fuselage"),
        cone((0.0, 0.0, -length / 2 - radius), radius, 2 * radius, 16, "-z", "fuselage"),
        box((0.0, 0.0, wing_z), (span, 0.03, chord), "wing"),
        box((0.0, 0.0, tail_z), (tail_span, 0.02, tail_chord), "tail"),
        box((0.0, fin_height / 2 + radius * 0.5, tail_z), (0.02, fin_height, tail_chord), "tail"),
    ]


def _cabinet(g: torch.Generator) -> list[TriangleMesh]:
    width, height, depth = _uniform(g, 0.45, 1.0), _uniform(g, 0.6, 1.6), _uniform(g, 0.35, 0.6)
    parts = [box((0.0, height / 2, 0.0), (width, height, depth), "body")]
    drawers = int(torch.randint(1, 5, (), generator=g))
    for k in range(drawers):
        y = height * (k + 0.5) / drawers
        parts.append(box((0.0, y, -depth / 2 - 0.02), (width * 0.3, 0.03, 0.04), "handle"))
    return parts


def _can(g: torch.Generator) -> list[TriangleMesh]:
    radius, height = _uniform(g, 0.2, 0.4), _uniform(g, 0.5, 1.3)
    return [cylinder((0.0, height / 2, 0.0), radius, height, 24, "y", "body")]


def _lamp(g: torch.Generator) -> list[TriangleMesh]:
    base_radius, base_height = _uniform(g, 0.12, 0.22), _uniform(g, 0.03, 0.06)
    pole_height, pole_radius = _uniform(g, 0.5, 1.1), _uniform(g, 0.015, 0.03)
    shade_radius, shade_height = _uniform(g, 0.18, 0.35), _uniform(g, 0.2, 0.35)
    top_radius = shade_radius * _uniform(g, 0.2, 0.6)
    return [
        cylinder((0.0, base_height / 2, 0.0), base_radius, base_height, 20, "y", "base"),
        cylinder((0.0, base_height + pole_height / 2, 0.0), pole_radius, pole_height, 8, "y", "pole"),
        cone((0.0, base_height + pole_height, 0.0), shade_radius, shade_height, 20, "y", "shade", top_radius),
    ]


_BUILDERS: dict[str, Callable[[torch.Generator], list[TriangleMesh]]] = {
    "airplane": _airplane,
    "cabinet": _cabinet,
    "can": _can,
    "chair": _chair,
    "lamp": _lamp,
    "table": _table,
}


def _model_seed(seed: int, category: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}/{category}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def model_id(seed: int, category: str, index: int) -> str:
    """A 32-hex-digit model id (ShapeNet's ids look the same), fixed by ``(seed, category, index)``."""
    return hashlib.md5(f"procedural/{seed}/{category}/{index}".encode()).hexdigest()


def generate_shape(
    category: str, seed: int = 0, index: int = 0, *, rotate: bool = True, noise: float = 0.005
) -> TriangleMesh:
    """Model ``index`` of ``category``: random proportions, a random rotation about +Y when
    ``rotate``, Gaussian vertex noise of standard deviation ``noise`` (in units of the normalised
    model), centred and scaled to a unit bounding-box diagonal."""
    if category not in _BUILDERS:
        raise ValueError(f"category must be one of {tuple(_BUILDERS)}, got {category!r}")
    check_int("seed", seed, 0)
    check_int("index", index, 0)
    check_float("noise", noise, 0, finite=True)
    g = torch.Generator().manual_seed(_model_seed(seed, category, index))
    mesh = TriangleMesh.concatenate(_BUILDERS[category](g))
    vertices = mesh.vertices
    if rotate:
        angle = _uniform(g, 0.0, 2 * math.pi)
        c, s = math.cos(angle), math.sin(angle)
        vertices = vertices @ torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]).T
    low, high = vertices.min(0).values, vertices.max(0).values
    vertices = (vertices - (low + high) / 2) / (high - low).norm()
    if noise > 0:
        vertices = vertices + noise * torch.randn(vertices.shape, generator=g)
    return TriangleMesh(vertices, mesh.faces, face_groups=mesh.face_groups, group_names=mesh.group_names)


def write_procedural_shapenet(
    root: str | os.PathLike,
    models_per_category: int,
    *,
    seed: int = 0,
    categories: Sequence[str] = tuple(CATEGORIES),
    rotate: bool = True,
    noise: float = 0.005,
) -> Taxonomy:
    """Write ``models_per_category`` models of each category under ``root`` in ShapeNetCore v2's
    layout, with a ``taxonomy.json``; returns the taxonomy written."""
    check_int("models_per_category", models_per_category)
    categories = tuple(categories)
    if not categories:
        raise ValueError("categories must name at least one category, got none")
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"categories must be among {tuple(CATEGORIES)}, got {unknown}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    synsets = []
    for category in categories:
        synset_id, name = CATEGORIES[category]
        for index in range(models_per_category):
            mesh = generate_shape(category, seed, index, rotate=rotate, noise=noise)
            write_model(root, synset_id, model_id(seed, category, index), mesh)
        synsets.append(Synset(synset_id, name, (), models_per_category))
    taxonomy = Taxonomy(synsets)
    write_taxonomy(root / "taxonomy.json", taxonomy)
    return taxonomy
