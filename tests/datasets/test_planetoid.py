"""Planetoid loader: the well-known counts, the public split, parity with PyG's raw reader, safety."""

import io
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch

from aicanon.core import DataUnavailable
from aicanon.core.data import fetch
from aicanon.datasets import planetoid
from aicanon.datasets.planetoid import load_planetoid, row_normalize

pytestmark = pytest.mark.paper("gat")

# (nodes, features, classes, directed edges, train, val, test): PyG's Planetoid and the GCN paper.
KNOWN = {
    "cora": (2708, 1433, 7, 10556, 140, 500, 1000),
    "citeseer": (3327, 3703, 6, 9104, 120, 500, 1000),
}


@pytest.fixture(scope="module", params=sorted(KNOWN))
def dataset(request):
    return load_planetoid(request.param)


def test_counts_match_the_published_numbers(dataset):
    nodes, features, classes, edges, train, val, test = KNOWN[dataset.name]
    assert dataset.x.shape == (nodes, features) and dataset.x.dtype == torch.float32
    assert dataset.y.shape == (nodes,) and dataset.y.dtype == torch.int64
    assert dataset.num_classes == classes and int(dataset.y.max()) == classes - 1
    assert dataset.edge_index.shape == (2, edges) and dataset.edge_index.dtype == torch.int64
    assert (int(dataset.train_mask.sum()), int(dataset.val_mask.sum()), int(dataset.test_mask.sum())) == (
        train,
        val,
        test,
    )


def test_split_is_the_public_split(dataset):
    train, val, test = dataset.train_mask, dataset.val_mask, dataset.test_mask
    assert not (train & val).any() and not (train & test).any() and not (val & test).any()
    num_train = int(train.sum())
    assert train[:num_train].all() and val[num_train : num_train + 500].all()
    # 20 labelled nodes per class for training (Planetoid's protocol).
    assert torch.bincount(dataset.y[train]).tolist() == [20] * dataset.num_classes
    test_index = np.loadtxt(fetch("planetoid", f"ind.{dataset.name}.test.index"), dtype=np.int64)
    assert torch.equal(torch.nonzero(dataset.test_mask).flatten(), torch.from_numpy(np.sort(test_index)))


def test_edges_are_symmetric_unique_and_loop_free(dataset):
    source, target = dataset.edge_index
    assert not (source == target).any()
    keys = source * dataset.num_nodes + target
    assert keys.unique().numel() == keys.numel()
    reverse = target * dataset.num_nodes + source
    assert torch.equal(keys.sort().values, reverse.sort().values)


def test_features_are_binary_bag_of_words_and_normalise_to_one(dataset):
    assert set(dataset.x.unique().tolist()) <= {0.0, 1.0}
    normalised = load_planetoid(dataset.name, normalize_features=True).x
    sums = normalised.sum(1)
    nonempty = dataset.x.sum(1) > 0
    assert torch.allclose(sums[nonempty], torch.ones_like(sums[nonempty]), atol=1e-5)
    assert torch.all(sums[~nonempty] == 0)


def test_reordered_test_labels_come_from_ty_in_test_index_order():
    # Hand-check of the GCN reordering: row r of ty is the label of node test.index[r].
    data = load_planetoid("cora")
    ty = planetoid._read_part("cora", "ty")
    test_index = planetoid._read_part("cora", "test.index")
    for row in (0, 1, 500, 999):
        assert int(data.y[test_index[row]]) == int(ty[row].argmax())
    assert data.x[test_index[7]].equal(torch.from_numpy(planetoid._read_part("cora", "tx")[7]))


def test_citeseer_isolated_nodes_have_no_label_and_no_features():
    data = load_planetoid("citeseer")
    missing = data.y == -1
    assert int(missing.sum()) == 15
    assert data.x[missing].abs().sum() == 0
    assert not (data.train_mask | data.val_mask | data.test_mask)[missing].any()


@pytest.mark.parity
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_parity_with_torch_geometric_reader(name):
    pytest.importorskip("torch_geometric")
    from torch_geometric.io import read_planetoid_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = fetch("planetoid", f"ind.{name}.x").parent
        reference = read_planetoid_data(str(folder), name)
    ours = load_planetoid(name)
    assert torch.equal(ours.x, reference.x)
    labelled = ours.y >= 0
    assert torch.equal(ours.y[labelled], reference.y[labelled])
    assert torch.all(reference.y[~labelled] == 0)  # PyG's argmax of an all-zero one-hot row
    assert torch.equal(
        ours.edge_index,
        reference.edge_index[
            :, torch.argsort(reference.edge_index[0] * ours.num_nodes + reference.edge_index[1])
        ],
    )
    for mask in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(ours, mask), getattr(reference, mask)), mask


def test_pubmed_without_allx_raises_data_unavailable():
    with pytest.raises(DataUnavailable, match="ind.pubmed.allx"):
        load_planetoid("pubmed")


def _copy_staged(tmp_path, monkeypatch, name="cora"):
    target = tmp_path / "planetoid"
    target.mkdir()
    for part in planetoid._PARTS:
        shutil.copy(fetch("planetoid", f"ind.{name}.{part}"), target / f"ind.{name}.{part}")
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    monkeypatch.setenv("AICANON_CACHE", str(tmp_path / "cache"))
    return target


def test_corrupt_file_raises_data_unavailable(tmp_path, monkeypatch):
    target = _copy_staged(tmp_path, monkeypatch)
    path = target / "ind.cora.graph"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataUnavailable, match="ind.cora.graph"):
        load_planetoid("cora")


def test_copied_files_load_like_the_staged_ones(tmp_path, monkeypatch):
    reference = load_planetoid("cora")
    _copy_staged(tmp_path, monkeypatch)
    assert torch.equal(load_planetoid("cora").edge_index, reference.edge_index)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_restricted_unpickler_refuses_other_classes():
    hostile = pickle.dumps(_Payload(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        planetoid._unpickle(hostile)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        planetoid._unpickle(pickle.dumps(io.BytesIO(b""), protocol=2))


def test_restricted_unpickler_reads_the_allowed_types():
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert np.array_equal(planetoid._unpickle(pickle.dumps(array, protocol=3)), array)
    from collections import defaultdict

    graph = defaultdict(list, {0: [1, 2], 1: [0]})
    assert planetoid._unpickle(pickle.dumps(graph, protocol=2)) == graph


def test_bad_name_is_rejected():
    with pytest.raises(ValueError, match="name must be one of"):
        load_planetoid("reddit")
    with pytest.raises(TypeError, match="name must be a str"):
        load_planetoid(3)  # type: ignore[arg-type]


def test_row_normalize_rejects_bad_input_and_keeps_zero_rows():
    with pytest.raises(ValueError, match="x must be a 2-D floating-point tensor"):
        row_normalize(torch.ones(3, dtype=torch.int64))
    out = row_normalize(torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
    assert torch.equal(out, torch.tensor([[0.25, 0.75], [0.0, 0.0]]))
