"""ShapeNet's data model, the OBJ loader, surface sampling and voxelisation: golden values, geometric
invariants (trimesh is not a dependency: parity is with exact geometry), bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.datasets.meshes import (
    SHAPENETCORE_SYNSETS,
    Alignment,
    ObjError,
    ShapeModel,
    Synset,
    Taxonomy,
    TriangleMesh,
    format_obj,
    load_obj,
    parse_obj,
    save_obj,
)
from aicanon.testbeds.procedural_shapes import box, cone, cylinder
from aicanon.vision.shapenet import (
    face_areas,
    normalize_points,
    sample_points,
    surface_area,
    voxelize,
    winding_number,
)

pytestmark = pytest.mark.paper("shapenet")

UNIT_SQUARE = """# a unit square as one quad, in the z = 0 plane
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
f 1 2 3 4
"""


# ------------------------------------------------------------------------------------------- taxonomy


def test_shapenetcore_lists_55_distinct_synsets():
    assert len(SHAPENETCORE_SYNSETS) == 55
    assert SHAPENETCORE_SYNSETS["02691156"] == "airplane"
    assert SHAPENETCORE_SYNSETS["03001627"] == "chair"
    assert SHAPENETCORE_SYNSETS["04379243"] == "table"
    assert all(len(s) == 8 and s.isdigit() for s in SHAPENETCORE_SYNSETS)


def _taxonomy():
    return Taxonomy.from_json(
        [
            {
                "synsetId": "03001627",
                "name": "chair",
                "children": ["04331277", "02738535"],
                "numInstances": 3,
            },
            {"synsetId": "04331277", "name": "straight chair,side chair", "children": ["03002096"]},
            {"synsetId": "02738535", "name": "armchair", "children": [], "numInstances": 1},
            {"synsetId": "03002096", "name": "chair of state", "children": [], "numInstances": 1},
            {"synsetId": "04379243", "name": "table", "children": [], "numInstances": 2},
        ]
    )


def test_taxonomy_hierarchy_queries():
    taxonomy = _taxonomy()
    assert len(taxonomy) == 5 and "03001627" in taxonomy
    assert taxonomy.roots() == ["03001627", "04379243"]
    assert taxonomy.parent("03002096") == "04331277"
    assert taxonomy.parent("03001627") is None
    assert taxonomy.ancestors("03002096") == ["04331277", "03001627"]
    assert taxonomy.descendants("03001627") == ["04331277", "03002096", "02738535"]
    assert taxonomy["04331277"].short_name == "straight chair"
    # the JSON written is the JSON read
    assert Taxonomy.from_json(taxonomy.to_json()).to_json() == taxonomy.to_json()


@pytest.mark.parametrize(
    "records, message",
    [
        ({"synsetId": "1"}, "JSON list"),
        ([{"name": "chair"}], "lacks synsetId"),
        ([{"synsetId": "3001627", "name": "chair"}], "8-digit WordNet offset"),
        ([{"synsetId": "03001627", "name": "chair"}, {"synsetId": "03001627", "name": "x"}], "listed twice"),
        ([{"synsetId": "03001627", "name": "chair", "children": "x"}], "must be a list"),
    ],
)
def test_bad_taxonomy_is_rejected(records, message):
    with pytest.raises(ValueError, match=message):
        Taxonomy.from_json(records)


def test_unknown_synset_lookup_names_it():
    with pytest.raises(KeyError, match="99999999"):
        _taxonomy()["99999999"]
    with pytest.raises(ValueError, match="non-empty string"):
        Synset("03001627", "")
    with pytest.raises(ValueError, match="8-digit"):
        ShapeModel("abc", "chair", "x.obj")


# ------------------------------------------------------------------------------------------- alignment


def test_alignment_rotation_maps_up_and_front_to_the_canonical_frame():
    alignment = Alignment(up=(0.0, 0.0, 1.0), front=(0.0, -1.0, 0.0))  # ShapeNetSem's usual raw frame
    rotation = alignment.rotation()
    torch.testing.assert_close(
        rotation @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        rotation @ torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64),
        torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64),
    )
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(3, dtype=torch.float64))
    assert torch.linalg.det(rotation).item() == pytest.approx(1.0)
    torch.testing.assert_close(Alignment().rotation(), torch.eye(3, dtype=torch.float64))


def test_alignment_rejects_bad_vectors():
    with pytest.raises(ValueError, match="orthogonal"):
        Alignment(up=(0.0, 1.0, 0.0), front=(0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="non-zero"):
        Alignment(up=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="3-vector"):
        Alignment(front=(0.0, 1.0))


# ------------------------------------------------------------------------------------------- OBJ


def test_quad_is_fan_triangulated_with_the_right_area():
    mesh = parse_obj(UNIT_SQUARE)
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert surface_area(mesh) == pytest.approx(1.0)
    assert mesh.group_names == ["default"]


def test_corner_formats_negative_indices_groups_and_continuations():
    text = """
    # comment line
    mtllib model.mtl
    o body
    v 0 0 0
    v 1 0 0 1.0   # a w component is ignored
    v 0 1 0
    vt 0 0
    vt 1 0
    vt 0 1
    vn 0 0 1
    usemtl red
    s off
    f 1/1/1 2/2/1 3/3/1
    g wing
    v 0 0 1
    f -4//1 -3//1 \\
      -1//1
    f 1/1 2/2 4/3
    l 1 2
    """
    mesh = parse_obj(text)
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 1, 3], [0, 1, 3]]
    assert mesh.group_names == ["body", "wing"]
    assert mesh.face_groups.tolist() == [0, 1, 1]
    assert mesh.part("wing").tolist() == [1, 2]
    assert mesh.face_normals.tolist() == [[0, 0, 0], [0, 0, 0], [-1, -1, -1]]
    assert mesh.face_texcoords.tolist() == [[0, 1, 2], [-1, -1, -1], [0, 1, 2]]
    assert mesh.texcoords.shape == (3, 3)


@pytest.mark.parametrize(
    "text, message",
    [
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", r"model.obj:4: vertex index 4 is out of range \(3 vertexs"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "model.obj:4: vertex index 0 is invalid"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -4 1 2\n", "model.obj:4: vertex index -4 is out of range"),
        ("v 0 0\n", "model.obj:1: 'v' needs at least 3 finite numbers"),
        ("v 0 zero 0\n", "model.obj:1: 'v' needs numbers"),
        ("v 0 0 nan\n", "model.obj:1: 'v' needs at least 3 finite"),
        ("v 0 0 0\nv 1 0 0\nf 1 2\n", "model.obj:3: a face needs at least 3 corners"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/a 2 3\n", "model.obj:4: texture index 'a' is not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1//1 2 3\n", "model.obj:4: normal index 1 is out of range"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1/1/1 2 3\n", "is not v, v/vt, v//vn or v/vt/vn"),
        ("v 0 0 0\nbogus 1 2\n", "model.obj:2: unknown OBJ statement 'bogus'"),
        ("# nothing\nv 0 0 0\n", "model.obj: no faces found"),
    ],
)
def test_malformed_obj_errors_name_file_and_line(text, message):
    with pytest.raises(ObjError, match=message):
        parse_obj(text, source="model.obj")


def test_load_obj_names_the_path(tmp_path):
    path = tmp_path / "broken.obj"
    path.write_text("v 0 0 0\nf 1 1 2\n")
    with pytest.raises(ObjError, match=f"{path}:2:"):
        load_obj(path)
    with pytest.raises(TypeError, match="text must be a str"):
        parse_obj(b"v 0 0 0")


def test_obj_round_trip_keeps_geometry_parts_normals_and_texcoords(tmp_path):
    mesh = parse_obj(
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvt 0 0\nvt 1 0\nvt 0 1\nvn 0 0 1\n"
        "g a\nf 1/1/1 2/2/1 3/3/1\ng b\nf 1/1 2/2 4/3\n"
    )
    save_obj(tmp_path / "m.obj", mesh)
    again = load_obj(tmp_path / "m.obj")
    assert torch.equal(again.vertices, mesh.vertices) and torch.equal(again.faces, mesh.faces)
    assert again.group_names == ["a", "b"] and torch.equal(again.face_groups, mesh.face_groups)
    assert torch.equal(again.face_texcoords, mesh.face_texcoords)
    assert torch.equal(again.face_normals, mesh.face_normals)
    with pytest.raises(TypeError, match="mesh must be a TriangleMesh"):
        format_obj("mesh")


def test_triangle_mesh_rejects_bad_indices():
    with pytest.raises(ValueError, match=r"faces must index vertices in \[0, 3\)"):
        TriangleMesh(torch.zeros(3, 3), torch.tensor([[0, 1, 3]]))
    with pytest.raises(TypeError, match="faces must be a torch.int64 tensor"):
        TriangleMesh(torch.zeros(3, 3), torch.tensor([[0, 1, 2]], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"vertices must be a tensor of shape \[\*, 3\]"):
        TriangleMesh(torch.zeros(3, 2), torch.tensor([[0, 1, 2]]))


# ------------------------------------------------------------------------------------------- geometry


def test_primitive_areas_are_exact():
    assert surface_area(box((0, 0, 0), (1.0, 2.0, 3.0))) == pytest.approx(2 * (2 + 3 + 6))
    # a 64-gon cylinder: the exact area of the prism it is
    r, h, n = 0.3, 0.5, 64
    side = n * 2 * r * math.sin(math.pi / n) * h
    caps = 2 * 0.5 * n * r * r * math.sin(2 * math.pi / n)
    assert surface_area(cylinder((0, 0, 0), r, h, n)) == pytest.approx(side + caps, rel=1e-5)
    slant = math.sqrt(h**2 + (r * math.cos(math.pi / n)) ** 2)
    cone_area = n * r * math.sin(math.pi / n) * slant + 0.5 * n * r * r * math.sin(2 * math.pi / n)
    assert surface_area(cone((0, 0, 0), r, h, n)) == pytest.approx(cone_area, rel=1e-5)
    assert face_areas(parse_obj(UNIT_SQUARE)).tolist() == [0.5, 0.5]


def test_samples_lie_on_the_faces_they_name():
    mesh = cone((0.1, -0.2, 0.3), 0.4, 0.7, 12)
    points, faces, normals = sample_points(
        mesh, 2000, generator=torch.Generator().manual_seed(0), return_normals=True
    )
    corners = mesh.vertices[mesh.faces[faces]].double()
    # on the plane of its face, and inside the triangle (barycentric coordinates in [0, 1])
    offset = ((points.double() - corners[:, 0]) * normals.double()).sum(1)
    assert offset.abs().max() < 1e-5
    e1, e2, p = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], points.double() - corners[:, 0]
    d11, d12, d22 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    dp1, dp2 = (p * e1).sum(1), (p * e2).sum(1)
    det = d11 * d22 - d12 * d12
    v, w = (d22 * dp1 - d12 * dp2) / det, (d11 * dp2 - d12 * dp1) / det
    assert (v > -1e-6).all() and (w > -1e-6).all() and (v + w < 1 + 1e-6).all()


def test_sampling_is_area_weighted_and_uniform_inside_a_triangle():
    # a 1x1 square and a 3x1 rectangle side by side: 1/4 of the points on the first
    mesh = parse_obj("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 4 0 0\nv 4 1 0\nf 1 2 3 4\nf 2 5 6 3\n")
    points, _ = sample_points(mesh, 40_000, generator=torch.Generator().manual_seed(1))
    assert (points[:, 0] < 1).float().mean().item() == pytest.approx(0.25, abs=0.01)
    # uniform: within the square, the x < 0.5 half holds half its points
    inside = points[points[:, 0] < 1]
    assert (inside[:, 0] < 0.5).float().mean().item() == pytest.approx(0.5, abs=0.015)
    assert inside[:, 1].mean().item() == pytest.approx(0.5, abs=0.01)


def test_sampling_is_seeded():
    mesh = box((0, 0, 0), (1, 1, 1))
    a, _ = sample_points(mesh, 64, generator=torch.Generator().manual_seed(3))
    b, _ = sample_points(mesh, 64, generator=torch.Generator().manual_seed(3))
    c, _ = sample_points(mesh, 64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@settings(max_examples=20, deadline=None)
@given(
    size=st.tuples(*[st.floats(0.05, 2.0)] * 3),
    centre=st.tuples(*[st.floats(-1.0, 1.0)] * 3),
)
def test_box_samples_lie_on_its_boundary(size, centre):
    mesh = box(centre, size)
    assert surface_area(mesh) == pytest.approx(
        2 * (size[0] * size[1] + size[1] * size[2] + size[0] * size[2]), rel=1e-5
    )
    points, _ = sample_points(mesh, 200, generator=torch.Generator().manual_seed(0))
    distance = ((points - torch.tensor(centre)).abs() - torch.tensor(size) / 2).abs().amin(dim=1)
    assert distance.max() < 1e-5  # every point sits on one of the six sides


def test_winding_number_is_one_inside_zero_outside():
    mesh = cylinder((0, 0, 0), 0.5, 1.0, 24)
    queries = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.3, -0.1], [0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(
        winding_number(mesh, queries), torch.tensor([1.0, 1.0, 0.0, 0.0]), atol=1e-5, rtol=0
    )
    corner = winding_number(box((0, 0, 0), (1, 1, 1)), torch.tensor([[0.5, 0.5, 0.5]]))
    assert corner.item() == pytest.approx(1 / 8, abs=1e-6)  # an octant of the sphere of directions


def test_voxel_counts_of_cubes():
    # centres of an 8^3 grid over [-0.5, 0.5] sit at +-0.0625, +-0.1875, ...: four per axis inside |x| < 0.3
    cube = box((0, 0, 0), (0.6, 0.6, 0.6))
    assert int(voxelize(cube, 8).sum()) == 4**3
    # its surface at +-0.3 falls in voxels 1 and 6 of every axis: the shell of a 6^3 block
    surface = voxelize(cube, 8, mode="surface", generator=torch.Generator().manual_seed(0))
    assert int(surface.sum()) == 6**3 - 4**3
    assert not surface[2:6, 2:6, 2:6].any() and surface[1:7, 1, 1:7].all()
    # the whole grid
    assert bool(voxelize(box((0, 0, 0), (1.02, 1.02, 1.02)), 4).all())
    # an off-centre box fills exactly the voxels whose centres it holds
    grid = voxelize(box((0.25, 0.0, 0.0), (0.5, 0.6, 0.6)), 4, bounds=(-1.0, 1.0))
    assert grid.nonzero().tolist() == [[2, 1, 1], [2, 1, 2], [2, 2, 1], [2, 2, 2]]


def test_solid_voxels_approach_the_volume():
    mesh = cylinder((0, 0, 0), 0.4, 0.8, 48)
    grid = voxelize(mesh, 24)
    volume = grid.sum().item() / 24**3
    assert volume == pytest.approx(math.pi * 0.4**2 * 0.8, rel=0.05)
    # the mesh's bounding cube when bounds=None
    assert voxelize(mesh, 8, bounds=None).any()


def test_normalize_points_centres_and_scales():
    points = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(0)) * 5 + 3
    out = normalize_points(points)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.norm(dim=-1).amax(dim=1), torch.ones(2))


def test_geometry_rejects_bad_input():
    mesh = box((0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="num_points must be >= 1"):
        sample_points(mesh, 0)
    with pytest.raises(TypeError, match="mesh must be a TriangleMesh"):
        sample_points(torch.zeros(3, 3), 5)
    with pytest.raises(ValueError, match="positive surface area"):
        sample_points(TriangleMesh(torch.zeros(3, 3), torch.tensor([[0, 1, 2]])), 5)
    with pytest.raises(ValueError, match=r"mode must be one of \('solid', 'surface'\)"):
        voxelize(mesh, 8, mode="hollow")
    with pytest.raises(ValueError, match="resolution must be in"):
        voxelize(mesh, 0)
    with pytest.raises(ValueError, match="high > low"):
        voxelize(mesh, 8, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"queries must be a tensor of shape \[\*, 3\]"):
        winding_number(mesh, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"points must be \[..., N, 3\]"):
        normalize_points(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least one face"):
        surface_area(TriangleMesh(torch.zeros(3, 3), torch.zeros(0, 3, dtype=torch.int64)))
