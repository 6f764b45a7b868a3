"""WN18RR / FB15k-237 loader: official counts, CRLF endings, id order, bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.datasets.knowledge_graphs import index_triples, load_knowledge_graph, parse_triples

pytestmark = pytest.mark.paper("complex-embeddings")

# Sizes as published with the datasets (Toutanova & Chen 2015; Dettmers et al. 2018, Table 2).
COUNTS = {
    "WN18RR": (40943, 11, 86835, 3034, 3134),
    "FB15k-237": (14541, 237, 272115, 17535, 20466),
}


@pytest.fixture(scope="module", params=sorted(COUNTS))
def graph(request):
    return load_knowledge_graph(request.param)


def test_counts_dtypes_and_ranges(graph):
    entities, relations, train, valid, test = COUNTS[graph.name]
    assert (graph.num_entities, graph.num_relations) == (entities, relations)
    assert (
        graph.train.shape == (train, 3) and graph.valid.shape == (valid, 3) and graph.test.shape == (test, 3)
    )
    for split in (graph.train, graph.valid, graph.test):
        assert split.dtype == torch.int64
        assert int(split.min()) >= 0
        assert (
            int(split[:, [0, 2]].max()) < graph.num_entities and int(split[:, 1].max()) < graph.num_relations
        )
    assert graph.all_triples().shape == (train + valid + test, 3)
    # no label keeps a line ending (FB15k-237's files use CRLF)
    assert not any("\r" in x or "\n" in x for x in graph.entities + graph.relations)
    # every relation occurs in training
    assert set(graph.train[:, 1].tolist()) == set(range(graph.num_relations))


def test_ids_follow_first_appearance_in_training(graph):
    h, r, t = graph.train[0].tolist()
    assert (h, r) == (0, 0) and t in (0, 1)
    seen = torch.unique(graph.train[:, [0, 2]])
    # training entities take the first ids, contiguously
    assert torch.equal(seen, torch.arange(seen.numel()))


def test_known_first_lines():
    wn = load_knowledge_graph("wn18rr")
    h, r, t = wn.train[0].tolist()
    assert (wn.entities[h], wn.relations[r], wn.entities[t]) == ("00260881", "_hypernym", "00260622")
    fb = load_knowledge_graph("FB15K-237")
    h, r, t = fb.train[0].tolist()
    assert (fb.entities[h], fb.relations[r], fb.entities[t]) == (
        "/m/027rn",
        "/location/country/form_of_government",
        "/m/06cx9",
    )


def test_parse_triples_handles_crlf_and_blank_lines():
    text = "a\tr\tb\r\nb\tq\tc\r\n\r\n"
    assert parse_triples(text) == [("a", "r", "b"), ("b", "q", "c")]
    tensors, entities, relations = index_triples({"train": parse_triples(text), "test": [("c", "r", "d")]})
    assert entities == ["a", "b", "c", "d"] and relations == ["r", "q"]
    assert tensors["train"].tolist() == [[0, 0, 1], [1, 1, 2]] and tensors["test"].tolist() == [[2, 0, 3]]


def test_bad_input():
    with pytest.raises(ValueError, match="name must be one of \\['FB15k-237', 'WN18RR'\\], got 'WN18'"):
        load_knowledge_graph("WN18")
    with pytest.raises(TypeError, match="name must be a str"):
        load_knowledge_graph(18)
    with pytest.raises(
        ValueError, match="train.txt line 2 must be 'head<TAB>relation<TAB>tail'.*got 2 field"
    ):
        parse_triples("a\tr\tb\nb\tq\n", "train.txt")
    with pytest.raises(ValueError, match="line 1 must be .*got 3 field"):
        parse_triples("a\t\tb\n")
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        parse_triples(b"a\tr\tb")
