"""The geometry a learner needs from ShapeNet's meshes (Chang et al. 2015, arXiv 1512.03012): the
point-cloud and voxel views of a :class:`~aicanon.datasets.meshes.TriangleMesh` that later work (3D
ShapeNets, PointNet) trains on. The repository's data model and the OBJ format are in
:mod:`aicanon.datasets.meshes`, its folder layout in :mod:`aicanon.datasets.shapenet`.

Equations
---------
Surface sampling draws triangle ``t`` with probability proportional to its area::

    A_t = |(b - a) x (c - a)| / 2,      P(t) = A_t / sum_s A_s                            (S1)

then a point uniformly inside it (Osada et al. 2002, Sec. 4.2)::

    p = (1 - sqrt(r1)) a + sqrt(r1) (1 - r2) b + sqrt(r1) r2 c,   r1, r2 ~ U[0, 1]        (S2)

so the points are uniform over the surface. Solid voxelisation marks a voxel occupied when its
centre ``q`` is inside the mesh, by the generalised winding number (Jacobson et al. 2013)::

    w(q) = (1 / 4 pi) sum_t Omega_t(q),    inside  <=>  w(q) > 1/2                          (S3)

where ``Omega_t`` is the signed solid angle of triangle ``t`` seen from ``q`` (Van Oosterom and
Strackee 1983): ``tan(Omega / 2) = a . (b x c) / (|a||b||c| + (a.b)|c| + (a.c)|b| + (b.c)|a|)`` with
``a, b, c`` the corners relative to ``q``. It is robust to the rays-through-edges cases that break a
parity test, and degrades gracefully on meshes that are not quite closed.

Departures and choices
----------------------
* The paper numbers no equations; (S1)-(S3) are labels of ours for the standard constructions.
* Surface voxelisation (``mode="surface"``) marks the voxels hit by densely sampled surface points
  (several per voxel face area), not an exact triangle-box test: a sliver of triangle crossing a
  voxel corner can be missed. ShapeNet's own voxelisations (binvox, resolution 128) are exact.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor
from aicanon.datasets.meshes import TriangleMesh

__all__ = [
    "face_areas",
    "normalize_points",
    "sample_points",
    "surface_area",
    "voxelize",
    "winding_number",
]


# --------------------------------------------------------------------------------------------- geometry


def _vertices_faces(mesh: TriangleMesh) -> tuple[Tensor, Tensor]:
    if not isinstance(mesh, TriangleMesh):
        raise TypeError(f"mesh must be a TriangleMesh, got {type(mesh).__name__}")
    if mesh.num_faces == 0:
        raise ValueError("mesh must have at least one face, got none")
    return mesh.vertices, mesh.faces


def face_areas(mesh: TriangleMesh) -> Tensor:
    """Area of every triangle ``[F]`` (S1)."""
    vertices, faces = _vertices_faces(mesh)
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return torch.linalg.cross(b - a, c - a).norm(dim=1) / 2


def surface_area(mesh: TriangleMesh) -> float:
    """Total surface area (double counting any overlap between parts)."""
    return float(face_areas(mesh).double().sum())


def sample_points(
    mesh: TriangleMesh,
    num_points: int,
    *,
    generator: torch.Generator | None = None,
    return_normals: bool = False,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
    """``num_points`` points uniform over the surface (S1, S2), and the face each lies on.

    Returns ``points [num_points, 3]`` and ``face_index [num_points]`` (and, with
    ``return_normals``, each face's unit geometric normal ``[num_points, 3]``). Pass a seeded
    ``generator`` for repeatable samples.
    """
    check_int("num_points", num_points)
    areas = face_areas(mesh)
    total = float(areas.sum())
    if not total > 0:
        raise ValueError(f"mesh must have a positive surface area to sample from, got {total}")
    vertices, faces = mesh.vertices, mesh.faces
    face_index = torch.multinomial(areas.double(), num_points, replacement=True, generator=generator)
    r = torch.rand(num_points, 2, generator=generator, dtype=torch.float64)
    root = r[:, :1].sqrt()
    weights = torch.cat([1 - root, root * (1 - r[:, 1:]), root * r[:, 1:]], dim=1).to(vertices.dtype)
    corners = vertices[faces[face_index]]  # [N, 3 corners, 3 coordinates]
    points = (weights.unsqueeze(2) * corners).sum(dim=1)
    if not return_normals:
        return points, face_index
    normal = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return points, face_index, normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)


def normalize_points(points: Tensor) -> Tensor:
    """Centre ``points [..., N, 3]`` on their mean and scale them into the unit sphere (PointNet's input)."""
    check_tensor("points", points, floating=True)
    if points.dim() < 2 or points.shape[-1] != 3:
        raise ValueError(f"points must be [..., N, 3], got {tuple(points.shape)}")
    centred = points - points.mean(dim=-2, keepdim=True)
    radius = centred.norm(dim=-1).amax(dim=-1, keepdim=True).clamp_min(1e-12)
    return centred / radius.unsqueeze(-1)


def winding_number(mesh: TriangleMesh, queries: Tensor, chunk: int = 4096) -> Tensor:
    """The generalised winding number (S3) of the mesh at each point of ``queries [Q, 3]``: about 1
    inside a closed outward-oriented mesh, 0 outside."""
    vertices, faces = _vertices_faces(mesh)
    check_tensor("queries", queries, shape=(None, 3), floating=True)
    check_int("chunk", chunk)
    # float32 is ample: the sum is near 0 or 1 away from the surface, and the threshold is 1/2
    dtype = torch.promote_types(vertices.dtype, queries.dtype)
    triangles = vertices[faces].to(dtype)  # [F, 3, 3]
    out = []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk].to(dtype)
        rel = triangles.unsqueeze(0) - q[:, None, None, :]  # [Q, F, 3, 3]
        a, b, c = rel[:, :, 0], rel[:, :, 1], rel[:, :, 2]
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        numerator = (a * torch.linalg.cross(b, c)).sum(-1)
        denominator = la * lb * lc + (a * b).sum(-1) * lc + (a * c).sum(-1) * lb + (b * c).sum(-1) * la
        out.append(2 * torch.atan2(numerator, denominator).sum(dim=1) / (4 * math.pi))
    return torch.cat(out).to(queries.dtype)


def voxelize(
    mesh: TriangleMesh,
    resolution: int = 32,
    *,
    bounds: tuple[float, float] | None = (-0.5, 0.5),
    mode: str = "solid",
    samples_per_voxel: int = 16,
    generator: torch.Generator | None = None,
) -> Tensor:
    """An occupancy grid ``[resolution] * 3`` (bool, indexed ``[x, y, z]``) of the cube ``bounds``.

    ``bounds=(lo, hi)`` spans the same interval on every axis (ShapeNetCore v2's normalised models
    fit ``[-0.5, 0.5]``); ``None`` uses the mesh's bounding cube. ``mode="solid"`` marks the voxels
    whose centre is inside the mesh (S3, winding number > 1/2); ``mode="surface"`` those the surface
    passes through, from about ``samples_per_voxel`` surface samples per voxel face area.
    """
    vertices, _ = _vertices_faces(mesh)
    check_int("resolution", resolution, 1, 512)
    check_choice("mode", mode, ("solid", "surface"))
    check_int("samples_per_voxel", samples_per_voxel)
    if bounds is None:
        lo_corner, hi_corner = vertices.min(0).values, vertices.max(0).values
        centre, half = (lo_corner + hi_corner) / 2, float((hi_corner - lo_corner).max()) / 2
        half = half if half > 0 else 0.5
        lo, hi = centre - half, centre + half
    else:
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise ValueError(f"bounds must be (low, high) or None, got {bounds!r}")
        low, high = (check_float("bounds", b, finite=True) for b in bounds)
        if not high > low:
            raise ValueError(f"bounds must have high > low, got {bounds!r}")
        lo = torch.full((3,), float(low), dtype=vertices.dtype)
        hi = torch.full((3,), float(high), dtype=vertices.dtype)
    size = (hi - lo) / resolution
    if mode == "solid":
        steps = torch.arange(resolution, dtype=torch.float64)
        axes = [lo[d].double() + (steps + 0.5) * size[d].double() for d in range(3)]
        centres = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        inside = winding_number(mesh, centres.to(vertices.dtype)) > 0.5
        return inside.reshape(resolution, resolution, resolution)
    face_area = float(size.min()) ** 2
    count = max(1, math.ceil(samples_per_voxel * surface_area(mesh) / face_area))
    points, _ = sample_points(mesh, count, generator=generator)
    points = torch.cat([points, vertices])  # corners too: a tiny triangle is never missed entirely
    index = torch.floor((points - lo) / size).long()
    keep = ((index >= 0) & (index < resolution)).all(dim=1)
    grid = torch.zeros(resolution, resolution, resolution, dtype=torch.bool)
    index = index[keep]
    grid[index[:, 0], index[:, 1], index[:, 2]] = True
    return grid
