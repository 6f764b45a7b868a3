"""WN18RR and FB15k-237, the link-prediction benchmarks without inverse-relation leakage.

FB15k-237 (Toutanova & Chen, 2015) and WN18RR (Dettmers et al., 2018) remove from FB15k and WN18
the relations whose inverse is in the training set, which let a trivial rule score highly. The files
are those of the ConvE repository (registry dataset ``kg-link-prediction``): one ``.tar.gz`` per
dataset holding ``train.txt``, ``valid.txt`` and ``test.txt``, one triple a line,
``head<TAB>relation<TAB>tail``.

=============  ========  =========  ======  =====  =====
dataset        entities  relations  train   valid  test
=============  ========  =========  ======  =====  =====
WN18RR         40,943    11         86,835  3,034  3,134
FB15k-237      14,541    237        272,115 17,535 20,466
=============  ========  =========  ======  =====  =====

Reading: the archive is opened in memory (:mod:`tarfile`, nothing extracted to disk) after
:func:`aicanon.core.data.fetch` has checked its sha256. FB15k-237's files end their lines with
``\\r\\n``; every line is stripped of its line ending before it is split on tabs. Every line must have
exactly three non-empty fields; anything else raises ``ValueError`` naming the file and line.

Ids: entities and relations are numbered in order of first appearance, reading ``train.txt`` line
by line (head before tail), then ``valid.txt``, then ``test.txt`` — the order of the ComplEx
paper's loader. So the training entities come first; the valid and test files mention entities that
never occur in training (384 on WN18RR, 36 on FB15k-237, a known property of these splits), which
get the last ids and keep their initial, untrained embeddings. pykeen numbers the sorted labels instead, so its ids differ from ours (the
triples are the same).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field

import torch
from torch import Tensor

from aicanon.core.data import fetch

__all__ = ["NAMES", "KnowledgeGraph", "index_triples", "load_knowledge_graph", "parse_triples"]

_DATASET = "kg-link-prediction"
NAMES: dict[str, str] = {"WN18RR": "WN18RR.tar.gz", "FB15k-237": "FB15k-237.tar.gz"}
SPLITS = ("train", "valid", "test")


@dataclass
class KnowledgeGraph:
    """A link-prediction dataset: triples as int64 ``[T, 3]`` tensors of ``(head, relation, tail)`` ids."""

    name: str
    train: Tensor
    valid: Tensor
    test: Tensor
    entities: list[str] = field(repr=False)
    """Entity label of each id."""
    relations: list[str] = field(repr=False)
    """Relation label of each id."""

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def all_triples(self) -> Tensor:
        """Train, valid and test stacked: the known true triples that filtered ranking removes."""
        return torch.cat([self.train, self.valid, self.test])


def parse_triples(text: str, source: str = "text") -> list[tuple[str, str, str]]:
    """Parse ``head<TAB>relation<TAB>tail`` lines (``\\n`` or ``\\r\\n`` endings; blank lines skipped)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    triples = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise ValueError(
                f"{source} line {number} must be 'head<TAB>relation<TAB>tail' (3 non-empty tab-separated "
                f"fields), got {len(fields)} field(s): {line[:80]!r}"
            )
        triples.append((fields[0].strip(), fields[1].strip(), fields[2].strip()))
    return triples


def index_triples(
    splits: dict[str, list[tuple[str, str, str]]],
) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """Number entities and relations by first appearance over ``splits`` in their order; ``[T, 3]`` ids."""
    entity_ids: dict[str, int] = {}
    relation_ids: dict[str, int] = {}
    out: dict[str, Tensor] = {}
    for split, triples in splits.items():
        rows = []
        for head, relation, tail in triples:
            h = entity_ids.setdefault(head, len(entity_ids))
            r = relation_ids.setdefault(relation, len(relation_ids))
            t = entity_ids.setdefault(tail, len(entity_ids))
            rows.append((h, r, t))
        out[split] = torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)
    return out, list(entity_ids), list(relation_ids)


def _read_archive(data: bytes, source: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            split = base[: -len(".txt")] if base.endswith(".txt") else None
            if split in SPLITS and member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                texts[split] = handle.read().decode("utf-8")
    missing = [s for s in SPLITS if s not in texts]
    if missing:
        raise ValueError(f"{source} must hold train.txt, valid.txt and test.txt; missing {missing}")
    return texts


def load_knowledge_graph(name: str) -> KnowledgeGraph:
    """Load ``WN18RR`` or ``FB15k-237`` (case-insensitive) from the registry's verified archive."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {sorted(NAMES)}, got {type(name).__name__}")
    canonical = {k.lower(): k for k in NAMES}.get(name.lower())
    if canonical is None:
        raise ValueError(f"name must be one of {sorted(NAMES)}, got {name!r}")
    path = fetch(_DATASET, NAMES[canonical])
    texts = _read_archive(path.read_bytes(), NAMES[canonical])
    parsed = {split: parse_triples(texts[split], f"{NAMES[canonical]}:{split}.txt") for split in SPLITS}
    tensors, entities, relations = index_triples(parsed)
    return KnowledgeGraph(canonical, tensors["train"], tensors["valid"], tensors["test"], entities, relations)
