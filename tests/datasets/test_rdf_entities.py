"""AIFB and MUTAG as the R-GCN paper builds them: sizes of Table 1, no label leak, PyG's Entities parity."""

from __future__ import annotations

import os
import warnings
from collections import Counter

import pytest
import torch

from aicanon.core.data import fetch
from aicanon.datasets.rdf_entities import LEAKING_RELATIONS, load_rdf_entities

pytestmark = pytest.mark.paper("rgcn")

# Table 1 of the paper: entities, relations (predicates), edges (triples), labelled, classes;
# the split sizes are the label files' (80/20).
TABLE_1 = {
    "aifb": (8285, 45, 29043, 176, 4, 140, 36),
    "mutag": (23644, 23, 74227, 340, 2, 272, 68),
}


@pytest.mark.parametrize("name", ["aifb", "mutag"])
def test_sizes_match_table_1(name):
    data = load_rdf_entities(name)
    nodes, predicates, triples, labelled, classes, train, test = TABLE_1[name]
    assert data.num_nodes == nodes == len(data.nodes)
    assert data.num_relations == 2 * predicates  # inverse relations added (Section 2.1)
    assert data.num_triples == triples and data.edge_index.shape == (2, 2 * triples)
    assert data.num_classes == classes
    assert (data.train_index.numel(), data.test_index.numel()) == (train, test)
    assert train + test == labelled
    assert not set(data.train_index.tolist()) & set(data.test_index.tolist())
    assert int(data.train_labels.max()) < classes and int(data.test_labels.max()) < classes
    assert int(data.edge_index.max()) < nodes and int(data.edge_type.max()) == 2 * predicates - 1


@pytest.mark.parametrize("name", ["aifb", "mutag"])
def test_no_label_leaking_relation(name):
    data = load_rdf_entities(name)
    # The staged *_stripped files were already stripped by the paper's strip_targets.py.
    assert data.removed_leaking_triples == 0
    for iri in LEAKING_RELATIONS[name]:
        assert iri not in data.relations and f"{iri}^-1" not in data.relations
    # The leaking IRIs survive only as nodes of schema triples (e.g. employs owl:inverseOf affiliation).
    assert f"<{LEAKING_RELATIONS[name][0]}>" in data.nodes


def test_inverse_edges_mirror_the_forward_edges_and_frequency_order():
    data = load_rdf_entities("aifb")
    t = data.num_triples
    forward, backward = data.edge_index[:, :t], data.edge_index[:, t:]
    assert torch.equal(backward, forward.flip(0))
    assert torch.equal(data.edge_type[t:], data.edge_type[:t] + 1) and bool(
        (data.edge_type[:t] % 2 == 0).all()
    )
    counts = torch.bincount(data.edge_type[:t] // 2).tolist()
    assert counts == sorted(counts, reverse=True)  # relations by decreasing frequency (the paper's code)
    assert data.relations[:2] == [
        "http://swrc.ontoware.org/ontology#publication",
        "http://swrc.ontoware.org/ontology#publication^-1",
    ]


def test_deterministic_and_independent_copies():
    first, second = load_rdf_entities("aifb"), load_rdf_entities("aifb")
    assert torch.equal(first.edge_index, second.edge_index) and first.nodes == second.nodes
    first.edge_index.zero_()  # the per-process parse cache hands out copies
    assert int(load_rdf_entities("aifb").edge_index.max()) > 0


def test_mutag_labels_compare_by_value():
    # completeDataset.tsv writes 0/1, the split files 0.0/1.0 (pandas in the paper's code: 0 == 0.0).
    data = load_rdf_entities("mutag")
    assert data.classes == ["0", "1"]
    assert Counter(data.train_labels.tolist()) == {0: 166, 1: 106}


@pytest.mark.parity
def test_parity_with_torch_geometric_entities(tmp_path):
    """PyG's Entities parses the same files (rdflib, pandas): same graph, same labelled split."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.datasets import Entities
    raw = tmp_path / "aifb" / "raw"
    raw.mkdir(parents=True)
    for name in ("aifb_stripped.nt.gz", "completeDataset.tsv", "trainingSet.tsv", "testSet.tsv"):
        os.symlink(fetch("rgcn-entity-classification", f"aifb/{name}"), raw / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = Entities(str(tmp_path), "AIFB")[0]
    ours = load_rdf_entities("aifb")
    assert reference.num_nodes == ours.num_nodes
    assert reference.edge_index.size(1) == ours.edge_index.size(1)
    # Same relation sizes (PyG orders relations by frequency too; ties may differ in order).
    assert sorted(torch.bincount(reference.edge_type).tolist()) == sorted(
        torch.bincount(ours.edge_type).tolist()
    )

    # Both read trainingSet.tsv / testSet.tsv row by row, so position k is the same entity in both:
    # its label must map one-to-one (PyG numbers classes in set order, we in sorted order) and its
    # neighbourhood must be the same (in-degree and the sizes of its incoming relation groups).
    for ref_index, ref_labels, our_index, our_labels in (
        (reference.train_idx, reference.train_y, ours.train_index, ours.train_labels),
        (reference.test_idx, reference.test_y, ours.test_index, ours.test_labels),
    ):
        pairs = set(zip(ref_labels.tolist(), our_labels.tolist()))
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
        for k in range(ref_index.numel()):
            ref_profile = sorted(
                Counter(reference.edge_type[reference.edge_index[1] == ref_index[k]].tolist()).values()
            )
            our_profile = sorted(
                Counter(ours.edge_type[ours.edge_index[1] == our_index[k]].tolist()).values()
            )
            assert ref_profile == our_profile, k


def test_bad_names():
    with pytest.raises(ValueError, match=r"name must be one of \('aifb', 'mutag'\), got 'am'"):
        load_rdf_entities("am")
    with pytest.raises(TypeError, match="name must be a str, one of .* got int"):
        load_rdf_entities(3)
