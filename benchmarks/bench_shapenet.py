"""Benchmark: ShapeNet's geometry pipeline against straightforward numpy baselines, same inputs, one process.

trimesh (the usual reference for mesh sampling and voxelisation) is not a dependency of this project,
so the baselines are the textbook numpy versions of the same computations:

* area-weighted surface sampling (S1, S2): ``numpy.random.Generator.choice`` with ``p = areas``
  and the square-root barycentric draw, against :func:`aicanon.vision.shapenet.sample_points`;
* reading a triangle-only OBJ: a ``numpy.loadtxt`` of the ``v``/``f`` lines, against
  :func:`aicanon.vision.shapenet.parse_obj` (which also handles groups, normals, polygons and errors);
* solid voxelisation (S3): a per-voxel ray-parity count along +x in numpy, against the winding-number
  :func:`aicanon.vision.shapenet.voxelize` (the baseline's counts are printed beside ours).

Every comparison checks first that both compute the same thing (areas/moments of the samples, the
parsed arrays, the voxel counts), then prints ours / baseline time (below 1: ours faster).

    python benchmarks/bench_shapenet.py [--device cpu] [--threads N] [--repeats R]

(also ``aicanon bench shapenet``).
"""

from __future__ import annotations

import argparse
import io

import _timing
import numpy as np
import torch

from aicanon.datasets.meshes import TriangleMesh, format_obj, parse_obj
from aicanon.testbeds.procedural_shapes import cylinder, generate_shape
from aicanon.vision.shapenet import sample_points, voxelize


def numpy_sample(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    areas = np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2
    chosen = rng.choice(len(faces), size=count, p=areas / areas.sum())
    r1, r2 = np.sqrt(rng.random(count))[:, None], rng.random(count)[:, None]
    return (1 - r1) * a[chosen] + r1 * (1 - r2) * b[chosen] + r1 * r2 * c[chosen]


def numpy_read_obj(text: str) -> tuple[np.ndarray, np.ndarray]:
    lines = text.splitlines()
    vertices = np.loadtxt(io.StringIO("\n".join(line[2:] for line in lines if line.startswith("v "))))
    faces = np.loadtxt(
        io.StringIO("\n".join(line[2:] for line in lines if line.startswith("f "))), dtype=np.int64
    )
    return vertices, faces - 1


def numpy_voxelize_parity(vertices: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """Centre inside <=> odd number of crossings of the ray from it along +x (a slightly tilted ray
    avoids the grazing hits on edges that a parity test miscounts)."""
    steps = -0.5 + (np.arange(resolution) + 0.5) / resolution
    centres = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    direction = np.array([1.0, 1e-4 * np.sqrt(2), 1e-4 * np.sqrt(3)])
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    e1, e2 = b - a, c - a
    p = np.cross(direction, e2)
    det = (e1 * p).sum(1)
    inside = np.zeros(len(centres), dtype=bool)
    for start in range(0, len(centres), 2048):  # Moller-Trumbore against every triangle
        origin = centres[start : start + 2048, None, :]
        t_vec = origin - a
        u = (t_vec * p).sum(-1) / det
        q = np.cross(t_vec, e1)
        v = (direction * q).sum(-1) / det
        t = (e2 * q).sum(-1) / det
        hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        inside[start : start + 2048] = hit.sum(1) % 2 == 1
    return inside.reshape(resolution, resolution, resolution)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=10, device="cpu")
    _timing.print_setup(args, "median", "CPU geometry")
    mesh = cylinder((0.0, 0.0, 0.0), 0.3, 0.6, 2048)  # 8k triangles
    vertices, faces = mesh.vertices.double().numpy(), mesh.faces.numpy()
    count = 100_000
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    ours_points, _ = sample_points(
        TriangleMesh(mesh.vertices.double(), mesh.faces), count, generator=generator
    )
    reference = numpy_sample(vertices, faces, count, rng)
    # same distribution: the mean radius from the axis and the share of points on the caps agree
    cap_ours = (ours_points[:, 1].abs() > 0.2999).double().mean().item()
    cap_ref = float((np.abs(reference[:, 1]) > 0.2999).mean())
    timings = _timing.time_alternately(
        {
            "ours": lambda: sample_points(mesh, count, generator=generator),
            "numpy": lambda: numpy_sample(vertices, faces, count, rng),
        },
        args.repeats,
        None,
    )
    _timing.print_comparison(
        f"sample {count} points, {len(faces)} triangles",
        timings,
        note=f"cap share {cap_ours:.3f} vs {cap_ref:.3f}",
        width=40,
    )

    text = format_obj(mesh)
    parsed = parse_obj(text)
    ref_vertices, ref_faces = numpy_read_obj(text)
    assert np.array_equal(parsed.faces.numpy(), ref_faces)
    difference = float(np.abs(parsed.vertices.double().numpy() - ref_vertices).max())
    timings = _timing.time_alternately(
        {"ours": lambda: parse_obj(text), "numpy": lambda: numpy_read_obj(text)}, args.repeats, None
    )
    _timing.print_comparison(
        f"parse OBJ ({len(text) // 1024} KiB)", timings, note=f"max |diff| {difference:.1e}", width=40
    )

    chair = generate_shape("chair", 0, 0, noise=0.0)
    resolution = 24
    ours_grid = voxelize(chair, resolution)
    ref_grid = numpy_voxelize_parity(chair.vertices.double().numpy(), chair.faces.numpy(), resolution)
    timings = _timing.time_alternately(
        {
            "ours": lambda: voxelize(chair, resolution),
            "numpy": lambda: numpy_voxelize_parity(
                chair.vertices.double().numpy(), chair.faces.numpy(), resolution
            ),
        },
        max(2, args.repeats // 3),
        None,
    )
    _timing.print_comparison(
        f"solid voxels {resolution}^3, chair ({chair.num_faces} tri)",
        timings,
        note=f"occupied {int(ours_grid.sum())} vs {int(ref_grid.sum())} (parity)",
        width=40,
    )


if __name__ == "__main__":
    main()
