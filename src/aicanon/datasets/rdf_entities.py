"""AIFB and MUTAG, the RDF entity-classification benchmarks of R-GCN (Section 5.1, Table 1).

Each dataset is an RDF graph in N-Triples (``<name>/<name>_stripped.nt.gz``) and three label files
from the paper's code (github.com/tkipf/relational-gcn): ``completeDataset.tsv`` (every labelled
entity), ``trainingSet.tsv`` and ``testSet.tsv`` (the fixed 80/20 stratified split the paper reports
test accuracy on). We build the graph as the paper's code (``rgcn/data_utils.py``) does:

* nodes are the distinct RDF terms that occur as subject or object (IRIs, blank nodes and literals;
  a literal and an IRI with the same text are different nodes);
* relations are the distinct predicates, ordered by decreasing frequency; relation ``k`` gives edge
  type ``2k`` in the triple's direction (message from subject to object) and ``2k + 1`` for its
  inverse (object to subject), so ``num_relations = 2 |predicates|`` (Section 2.1);
* the labels come from the TSV files (the entity IRI column and the label column), classes indexed
  in sorted order of their label text.

Label leakage. The task relations must not be in the graph: for AIFB
``http://swrc.ontoware.org/ontology#affiliation`` and its inverse ``#employs`` (the label *is* the
affiliation), for MUTAG ``http://dl-learner.org/carcinogenesis#isMutagenic``. The paper's data
preparation (``strip_targets.py``) removed every triple with those predicates before writing the
``*_stripped.nt.gz`` files, and the staged files are those: they hold no triple with a leaking
predicate (the IRIs still occur as subjects/objects of a few schema triples such as
``employs owl:inverseOf affiliation``, which the paper's files keep too). The loader still drops any
triple whose predicate leaks and reports how many it dropped (``removed_leaking_triples``, 0 for the
staged files), so a non-stripped graph cannot leak the labels.

Sizes (paper's Table 1): AIFB 8,285 entities, 45 relations, 29,043 edges, 176 labelled, 4 classes
(train 140 / test 36); MUTAG 23,644 entities, 23 relations, 74,227 edges, 340 labelled, 2 classes
(train 272 / test 68).

Departures: node and tie order are made deterministic (sorted) where the paper's code used Python
set order; the model does not depend on the order except through the random initialisation.
The N-Triples are parsed with rdflib's N-Triples parser into a list (no graph store), which is
several times faster than ``rdflib.Graph.parse`` and gives the same triples (duplicates removed).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["LEAKING_RELATIONS", "NAMES", "RDFEntities", "load_rdf_entities"]

_DATASET = "rgcn-entity-classification"
NAMES = ("aifb", "mutag")

LEAKING_RELATIONS: dict[str, tuple[str, ...]] = {
    "aifb": ("http://swrc.ontoware.org/ontology#affiliation", "http://swrc.ontoware.org/ontology#employs"),
    "mutag": ("http://dl-learner.org/carcinogenesis#isMutagenic",),
}
"""Predicates removed because they state the label (the paper's ``strip_targets.py``)."""

# (entity column, label column) of the TSV files, as in the paper's code.
_COLUMNS = {"aifb": ("person", "label_affiliation"), "mutag": ("bond", "label_mutagenic")}


@dataclass
class RDFEntities:
    """One entity-classification dataset as a relational graph.

    Attributes:
        name: ``aifb`` or ``mutag``.
        num_nodes: entities (distinct subjects and objects).
        edge_index: int64 ``[2, 2T]``: the ``T`` triples subject -> object, then their inverses.
        edge_type: int64 ``[2T]``: ``2k`` for predicate ``k``, ``2k + 1`` for its inverse.
        relations: ``2 |predicates|`` names in edge-type order: each predicate IRI, then ``<IRI>^-1``.
        train_index, test_index: int64 node ids of the labelled training / test entities.
        train_labels, test_labels: int64 class ids of those entities.
        classes: the label texts, in class-id order.
        removed_leaking_triples: triples dropped for having a label-leaking predicate.
        nodes: each node's RDF term in N-Triples syntax (``<iri>``, ``"literal"``, ``_:blank``).
    """

    name: str
    num_nodes: int
    edge_index: Tensor
    edge_type: Tensor
    relations: list[str]
    train_index: Tensor
    train_labels: Tensor
    test_index: Tensor
    test_labels: Tensor
    classes: list[str]
    removed_leaking_triples: int
    nodes: list[str] = field(default_factory=list, repr=False)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_triples(self) -> int:
        return int(self.edge_type.numel()) // 2

    def to(self, device: torch.device | str) -> RDFEntities:
        """A copy with every tensor on ``device``."""
        return RDFEntities(
            self.name,
            self.num_nodes,
            self.edge_index.to(device),
            self.edge_type.to(device),
            list(self.relations),
            self.train_index.to(device),
            self.train_labels.to(device),
            self.test_index.to(device),
            self.test_labels.to(device),
            list(self.classes),
            self.removed_leaking_triples,
            list(self.nodes),
        )


class _TripleList:
    """rdflib sink: collects the parsed triples."""

    def __init__(self) -> None:
        self.triples: list[tuple] = []

    def triple(self, subject, predicate, obj) -> None:  # rdflib's sink interface
        self.triples.append((subject, predicate, obj))


def _parse_ntriples(name: str) -> list[tuple]:
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser

    filename = f"{name}/{name}_stripped.nt.gz"
    path = fetch(_DATASET, filename)
    sink = _TripleList()
    try:
        with gzip.open(path, "rb") as handle:
            W3CNTriplesParser(sink).parse(handle)
    except Exception as error:  # rdflib raises ParseError, gzip OSError/EOFError
        entry = data_file(_DATASET, filename)
        raise DataUnavailable(
            _DATASET, filename, entry.url, entry.sha256, f"it could not be parsed ({error})"
        ) from error
    return sink.triples


def _read_labels(name: str, part: str) -> list[tuple[str, str]]:
    filename = f"{name}/{part}.tsv"
    path = fetch(_DATASET, filename)
    entity_column, label_column = _COLUMNS[name]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))
    if not rows or entity_column not in rows[0] or label_column not in rows[0]:
        entry = data_file(_DATASET, filename)
        raise DataUnavailable(
            _DATASET,
            filename,
            entry.url,
            entry.sha256,
            f"it lacks the columns {entity_column!r} and {label_column!r}",
        )
    return [(row[entity_column], _label_key(row[label_column])) for row in rows]


def _label_key(text: str) -> str:
    """MUTAG writes its labels as ``0``/``1`` in completeDataset.tsv and ``0.0``/``1.0`` in the split
    files (the paper's code reads them with pandas, where ``0 == 0.0``); numbers compare by value."""
    try:
        return format(float(text), "g")
    except ValueError:
        return text


@functools.lru_cache(maxsize=2)
def _build(name: str) -> tuple:
    """Parse once per process (the quick reproduction runs several seeds); returns numpy arrays and
    tuples only, which :func:`load_rdf_entities` copies into fresh tensors."""
    from rdflib import URIRef

    triples = set(_parse_ntriples(name))  # an RDF graph is a set of triples
    leaking = {URIRef(iri) for iri in LEAKING_RELATIONS[name]}
    kept = [t for t in triples if t[1] not in leaking]
    removed = len(triples) - len(kept)

    # Nodes: subjects and objects, in a deterministic order (kind, then N-Triples text).
    terms = {t[0] for t in kept} | {t[2] for t in kept}
    nodes = sorted(terms, key=lambda term: (type(term).__name__, term.n3()))
    node_id = {term: i for i, term in enumerate(nodes)}
    # Relations by decreasing frequency (the paper's relationList), ties by IRI.
    frequency: dict = {}
    for _, predicate, _ in kept:
        frequency[predicate] = frequency.get(predicate, 0) + 1
    predicates = sorted(frequency, key=lambda p: (-frequency[p], str(p)))
    relation_id = {p: k for k, p in enumerate(predicates)}

    subjects = np.fromiter((node_id[s] for s, _, _ in kept), dtype=np.int64, count=len(kept))
    objects = np.fromiter((node_id[o] for _, _, o in kept), dtype=np.int64, count=len(kept))
    kinds = np.fromiter((relation_id[p] for _, p, _ in kept), dtype=np.int64, count=len(kept))
    order = np.lexsort((objects, subjects, kinds))  # deterministic edge order
    subjects, objects, kinds = subjects[order], objects[order], kinds[order]
    # 2k: subject -> object; 2k + 1: object -> subject (inverse relation, Section 2.1).
    edge_index = np.concatenate([np.stack([subjects, objects]), np.stack([objects, subjects])], axis=1)
    edge_type = np.concatenate([2 * kinds, 2 * kinds + 1])
    relations = tuple(name for p in predicates for name in (str(p), f"{p}^-1"))

    all_labels = _read_labels(name, "completeDataset")
    classes = tuple(sorted({label for _, label in all_labels}))
    class_id = {label: c for c, label in enumerate(classes)}
    splits = []
    for part in ("trainingSet", "testSet"):
        index, labels = [], []
        for entity, label in _read_labels(name, part):
            term = URIRef(entity)
            if term not in node_id:
                entry = data_file(_DATASET, f"{name}/{part}.tsv")
                raise DataUnavailable(
                    _DATASET,
                    f"{name}/{part}.tsv",
                    entry.url,
                    entry.sha256,
                    f"its entity {entity!r} is not a node of the graph",
                )
            if label not in class_id:
                entry = data_file(_DATASET, f"{name}/{part}.tsv")
                raise DataUnavailable(
                    _DATASET,
                    f"{name}/{part}.tsv",
                    entry.url,
                    entry.sha256,
                    f"its label {label!r} is not in completeDataset.tsv",
                )
            index.append(node_id[term])
            labels.append(class_id[label])
        splits.append((np.array(index, dtype=np.int64), np.array(labels, dtype=np.int64)))
    names = tuple(term.n3() for term in nodes)
    return len(nodes), edge_index, edge_type, relations, splits, classes, removed, names


def load_rdf_entities(name: str) -> RDFEntities:
    """Load ``aifb`` or ``mutag`` with the paper's train/test split (see the module docstring).

    The parse is cached per process; every call returns fresh tensors. Raises
    :class:`aicanon.core.DataUnavailable` when a file is missing, corrupt or unparsable.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {NAMES}, got {type(name).__name__}")
    key = name.lower()
    if key not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    num_nodes, edge_index, edge_type, relations, splits, classes, removed, names = _build(key)
    (train_index, train_labels), (test_index, test_labels) = splits
    return RDFEntities(
        name=key,
        num_nodes=num_nodes,
        edge_index=torch.from_numpy(edge_index.copy()),
        edge_type=torch.from_numpy(edge_type.copy()),
        relations=list(relations),
        train_index=torch.from_numpy(train_index.copy()),
        train_labels=torch.from_numpy(train_labels.copy()),
        test_index=torch.from_numpy(test_index.copy()),
        test_labels=torch.from_numpy(test_labels.copy()),
        classes=list(classes),
        removed_leaking_triples=removed,
        nodes=list(names),
    )
