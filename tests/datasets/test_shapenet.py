"""ShapeNetCore's layout: the reader finds v1 and v2 models and reads taxonomy.json; the procedural writer
produces that layout, deterministically, with closed meshes and part labels; bad roots and names fail
clearly."""

import json

import pytest
import torch

from aicanon.datasets.shapenet import ShapeNetCore, read_taxonomy, write_model
from aicanon.testbeds.procedural_shapes import CATEGORIES, generate_shape, model_id, write_procedural_shapenet
from aicanon.vision.shapenet import surface_area, winding_number

pytestmark = pytest.mark.paper("shapenet")

TRIANGLE = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def test_reader_finds_v2_and_v1_models_and_reads_taxonomy(tmp_path):
    (tmp_path / "taxonomy.json").write_text(
        json.dumps(
            [
                {"synsetId": "03001627", "name": "chair", "children": [], "numInstances": 2},
                {"synsetId": "04379243", "name": "table", "children": [], "numInstances": 1},
            ]
        )
    )
    for synset, model, parts in [
        ("03001627", "b", ("models", "model_normalized.obj")),  # v2
        ("03001627", "a", ("model.obj",)),  # v1
        ("04379243", "c", ("models", "model_normalized.obj")),
    ]:
        path = tmp_path.joinpath(synset, model, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TRIANGLE)
    (tmp_path / "04379243" / "empty").mkdir()  # a model folder without an OBJ is skipped
    (tmp_path / "README").write_text("not a synset")
    (tmp_path / "notes").mkdir()  # nor is a folder whose name is no synset id
    dataset = ShapeNetCore(tmp_path)
    assert dataset.synset_ids == ["03001627", "04379243"]
    assert dataset.class_names == ["chair", "table"]
    assert [m.model_id for m in dataset.models] == ["a", "b", "c"]
    assert dataset.labels == [0, 0, 1]
    assert dataset.counts() == {"03001627": 2, "04379243": 1}
    assert dataset.load_mesh(0).num_faces == 1
    assert len(ShapeNetCore(tmp_path, version="v2")) == 2
    assert len(ShapeNetCore(tmp_path, version="v1")) == 1
    assert len(ShapeNetCore(tmp_path, synsets=["table"])) == 1


def test_reader_without_taxonomy_names_synsets_from_shapenetcore(tmp_path):
    path = tmp_path / "02691156" / "m" / "models" / "model_normalized.obj"
    path.parent.mkdir(parents=True)
    path.write_text(TRIANGLE)
    assert ShapeNetCore(tmp_path).class_names == ["airplane"]


def test_reader_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder.*shapenet.org"):
        ShapeNetCore(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no synset folders"):
        ShapeNetCore(tmp_path)
    (tmp_path / "03001627").mkdir()
    with pytest.raises(FileNotFoundError, match=r"synset folders \['04379243'\] are not in"):
        ShapeNetCore(tmp_path, synsets=["04379243"])
    with pytest.raises(ValueError, match="unknown 'sofa chair'"):
        ShapeNetCore(tmp_path, synsets=["sofa chair"])
    with pytest.raises(ValueError, match="version must be one of"):
        ShapeNetCore(tmp_path, version="v3")
    (tmp_path / "taxonomy.json").write_text("{not json")
    with pytest.raises(ValueError, match="taxonomy.json: not a ShapeNet taxonomy.json"):
        read_taxonomy(tmp_path / "taxonomy.json")


def test_writer_produces_the_v2_layout(tmp_path):
    taxonomy = write_procedural_shapenet(tmp_path, 2, seed=5, categories=("chair", "can"))
    assert [s.synset_id for s in taxonomy.synsets.values()] == ["03001627", "02946921"]
    assert read_taxonomy(tmp_path / "taxonomy.json").to_json() == taxonomy.to_json()
    folder = tmp_path / "03001627" / model_id(5, "chair", 0) / "models"
    summary = json.loads((folder / "model_normalized.json").read_text())
    assert set(summary) == {"min", "max", "centroid", "id", "numVertices"}
    dataset = ShapeNetCore(tmp_path)
    assert dataset.class_names == ["can", "chair"] and len(dataset) == 4
    chair = dataset.load_mesh(dataset.labels.index(1))
    assert {"seat", "leg", "back"} <= set(chair.group_names)


def test_written_model_reads_back_identically(tmp_path):
    mesh = generate_shape("lamp", seed=1, index=3)
    model = write_model(tmp_path, "03636649", "x" * 32, mesh)
    again = ShapeNetCore(tmp_path).load_mesh(0)
    assert model.mesh_path.endswith("models/model_normalized.obj")
    torch.testing.assert_close(again.vertices, mesh.vertices, atol=1e-6, rtol=0)
    assert torch.equal(again.faces, mesh.faces) and again.group_names == ["base", "pole", "shade"]


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_generated_shapes_are_closed_normalised_and_deterministic(category):
    mesh = generate_shape(category, seed=0, index=1, noise=0.0)
    low, high = mesh.vertices.min(0).values, mesh.vertices.max(0).values
    assert (high - low).norm().item() == pytest.approx(1.0, abs=1e-5)  # unit bounding-box diagonal
    torch.testing.assert_close((low + high) / 2, torch.zeros(3), atol=1e-5, rtol=0)
    # closed, outward-oriented parts: winding number far outside is 0, and >= 1 at some inner point
    assert abs(winding_number(mesh, torch.tensor([[3.0, 3.0, 3.0]])).item()) < 1e-6
    points = mesh.vertices.mean(0, keepdim=True)
    assert surface_area(mesh) > 0 and winding_number(mesh, points).item() > -1e-6
    assert torch.equal(generate_shape(category, 0, 1).vertices, generate_shape(category, 0, 1).vertices)
    assert not torch.equal(generate_shape(category, 0, 1).vertices, generate_shape(category, 0, 2).vertices)


def test_generator_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="category must be one of"):
        generate_shape("sofa")
    with pytest.raises(ValueError, match="noise must be finite and >= 0"):
        generate_shape("can", noise=-1.0)
    with pytest.raises(ValueError, match="categories must be among"):
        write_procedural_shapenet(tmp_path, 1, categories=("can", "sofa"))
    with pytest.raises(ValueError, match="models_per_category must be >= 1"):
        write_procedural_shapenet(tmp_path, 0)
    with pytest.raises(ValueError, match="8-digit WordNet offset"):
        write_model(tmp_path, "chair", "abc", generate_shape("can"))
