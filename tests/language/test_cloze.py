"""The anonymised cloze construction (Hermann et al. 2015, Section 3) and its frequency baselines."""

import random
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.datasets.vocabulary import Vocabulary
from aicanon.language.cloze import (
    DELIMITER,
    PLACEHOLDER,
    ClozeExample,
    anonymise,
    build_cloze_dataset,
    cloze_examples,
    cloze_specials,
    detect_entities,
    encode_cloze,
    entity_marker,
    exclusive_frequency,
    marker_index,
    maximum_frequency,
    split_sentences,
    tag_entities,
)

pytestmark = pytest.mark.paper("attentive-reader")

DOCUMENT = (
    "In 1990 , John Smith joined the Bank of England . Smith left the Bank of England in 1995 . "
    "He then moved to Paris , where Smith met Marie Curie ."
).split()
SUMMARY = "John Smith worked at the Bank of England before Paris .".split()


def test_split_sentences_cuts_after_sentence_ends():
    assert split_sentences("a b . c ! d ? e".split()) == [["a", "b", "."], ["c", "!"], ["d", "?"], ["e"]]
    assert split_sentences([]) == []


def test_detect_entities_by_capitalisation():
    entities = detect_entities(split_sentences(DOCUMENT))
    # "In" and "He" start sentences and are function words; "Smith" starts a sentence but also
    # appears capitalised in mid-sentence, so it is kept; "of" joins "Bank of England".
    assert entities == {
        ("John", "Smith"),
        ("Bank", "of", "England"),
        ("Smith",),
        ("Paris",),
        ("Marie", "Curie"),
    }


def test_sentence_initial_word_is_kept_only_when_seen_capitalised_mid_sentence():
    assert detect_entities([["Rain", "fell", "on", "Oslo", "."]]) == {("Oslo",)}
    assert detect_entities([["Rain", "fell", "."], ["It", "was", "Rain", "Man", "."]]) == {
        ("Rain",),
        ("Rain", "Man"),
    }
    # WikiText's "@-@" joins the halves of a hyphenated name; a trailing connector is not part of it.
    assert detect_entities([["the", "Anglo", "@-@", "Saxon", "king", "of"]]) == {("Anglo", "@-@", "Saxon")}


def test_tag_entities_takes_the_longest_match():
    tagged = tag_entities("the Bank of England and Bank".split(), [("Bank",), ("Bank", "of", "England")])
    assert tagged == ["the", 1, "and", 0]


def test_one_query_per_summary_entity_found_in_the_document():
    entities = detect_entities(split_sentences(DOCUMENT) + [SUMMARY])
    examples = cloze_examples(DOCUMENT, SUMMARY, entities, random.Random(0), num_entity_ids=10)
    # John Smith, Bank of England and Paris occur in the document: three queries.
    assert len(examples) == 3
    answers = [dict(e.names)[e.answer] for e in examples]
    assert answers == ["John Smith", "Bank of England", "Paris"]
    for example in examples:
        assert example.query.count(PLACEHOLDER) == 1
        assert example.answer in example.document and example.answer in example.candidates
        # Five distinct entities in the document, each one marker.
        assert len(example.candidates) == 5
        assert set(example.candidates) == {t for t in example.document if t.startswith("@entity")}


def test_anonymisation_is_consistent_and_reversible():
    entities = detect_entities(split_sentences(DOCUMENT) + [SUMMARY])
    for example in cloze_examples(DOCUMENT, SUMMARY, entities, random.Random(1), num_entity_ids=10):
        names = dict(example.names)
        assert len(set(names.values())) == len(names)  # distinct entities, distinct markers
        restored = " ".join(names.get(t, t) for t in example.document)
        assert restored == " ".join(DOCUMENT)
        query = " ".join(
            names[example.answer] if t == PLACEHOLDER else names.get(t, t) for t in example.query
        )
        assert query == " ".join(SUMMARY)


def test_markers_are_permuted_for_every_example():
    entities = {("Paris",), ("Rome",)}
    document = "Paris and Rome .".split()
    rng = random.Random(0)
    answers = Counter(
        cloze_examples(document, ["Paris", "."], entities, rng, num_entity_ids=8)[0].answer
        for _ in range(400)
    )
    assert set(answers) == {entity_marker(i) for i in range(8)}  # every id drawn
    assert max(answers.values()) < 100  # about uniform (expected 50 each)


def test_too_many_entities_or_an_absent_answer_gives_no_example():
    entities = {("A",), ("B",), ("C",)}
    assert cloze_examples("x A B C .".split(), ["A", "."], entities, random.Random(0), num_entity_ids=2) == []
    assert cloze_examples("x A B .".split(), ["C", "."], entities, random.Random(0), num_entity_ids=8) == []
    assert anonymise(["x", 0], [PLACEHOLDER], [("A",), ("B",)], 1, random.Random(0), 4) is None


def test_build_cloze_dataset_repeats_with_its_seed_and_detects_entities():
    triples = [(DOCUMENT, SUMMARY, None), (DOCUMENT, "Marie Curie lived in Paris .".split(), None)]
    first = build_cloze_dataset(triples, num_entity_ids=12, seed=3)
    assert first == build_cloze_dataset(triples, num_entity_ids=12, seed=3)
    assert first != build_cloze_dataset(triples, num_entity_ids=12, seed=4)
    assert len(first) == 5


def _example(document: str, query: str, answer: str) -> ClozeExample:
    document_tokens = tuple(document.split())
    candidates = tuple(sorted({t for t in document_tokens if t.startswith("@entity")}, key=marker_index))
    return ClozeExample(document_tokens, tuple(query.split()), answer, candidates)


def test_frequency_baselines():
    example = _example(
        "@entity3 met @entity1 . @entity3 and @entity2 saw @entity1 . @entity3 left .",
        "@entity3 met @placeholder",
        "@entity1",
    )
    assert maximum_frequency(example) == "@entity3"  # three mentions
    assert exclusive_frequency(example) == "@entity1"  # the query mentions @entity3
    # Ties go to the entity seen first in the document.
    tie = _example("@entity5 x @entity4 y @entity4 @entity5", "@placeholder z", "@entity4")
    assert maximum_frequency(tie) == "@entity5"
    # When the query names every candidate, exclusive frequency falls back to maximum frequency.
    every = _example("@entity0 @entity1 @entity1", "@entity0 and @entity1 @placeholder", "@entity0")
    assert exclusive_frequency(every) == maximum_frequency(every) == "@entity1"


def test_encode_cloze_pads_and_marks_candidates():
    examples = [
        _example("@entity2 met @entity0 .", "@entity2 met @placeholder", "@entity0"),
        _example("@entity1 .", "@placeholder", "@entity1"),
    ]
    vocabulary = Vocabulary.build([["met", "."]], specials=cloze_specials(4))
    batch = encode_cloze(examples, vocabulary, 4)
    assert batch.document.shape == (2, 4) and batch.query.shape == (2, 3)
    assert batch.document_lengths.tolist() == [4, 2] and batch.query_lengths.tolist() == [3, 1]
    assert batch.document[1, 2:].tolist() == [vocabulary.pad_id] * 2
    assert batch.candidates.tolist() == [[True, False, True, False], [False, True, False, False]]
    assert batch.answers.tolist() == [0, 1]
    assert vocabulary.decode(batch.query[0]) == ["@entity2", "met", PLACEHOLDER]
    assert len(batch) == 2 and batch.to("cpu").answers.dtype == torch.long
    assert cloze_specials(2) == ("<pad>", "<unk>", DELIMITER, PLACEHOLDER, "@entity0", "@entity1")


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(st.sampled_from(["a", "b", "c", "Xa", "Yb", "Zc", "."]), min_size=1, max_size=30),
    seed=st.integers(0, 1000),
)
def test_every_example_is_valid_and_restores_its_text(words, seed):
    document = ["start", *words]
    summary = ["so", *reversed(words)]
    entities = {("Xa",), ("Yb",), ("Zc",), ("Xa", "Yb")}
    for example in cloze_examples(document, summary, entities, random.Random(seed), num_entity_ids=6):
        names = dict(example.names)
        assert " ".join(names.get(t, t) for t in example.document) == " ".join(document)
        assert example.answer in example.candidates and example.query.count(PLACEHOLDER) == 1
        assert all(0 <= marker_index(c) < 6 for c in example.candidates)


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="tokens must be a sequence of tokens"):
        split_sentences("a b .")
    with pytest.raises(TypeError, match="sentences must be a sequence of token sequences"):
        detect_entities(["a", "b"])
    with pytest.raises(TypeError, match="entities must be non-empty tuples"):
        tag_entities(["a"], ["a"])
    with pytest.raises(TypeError, match="document and summary must be sequences of tokens"):
        cloze_examples("a b", ["a"], set(), random.Random(0), num_entity_ids=4)
    with pytest.raises(ValueError, match="num_entity_ids must be >= 2"):
        cloze_examples(["a"], ["a"], set(), random.Random(0), num_entity_ids=1)
    with pytest.raises(ValueError, match="marker must be a token '@entity<N>'"):
        marker_index("@placeholder")
    with pytest.raises(ValueError, match="query must contain '@placeholder' exactly once"):
        ClozeExample(("@entity0",), ("x",), "@entity0", ("@entity0",))
    with pytest.raises(ValueError, match="must be one of the candidates"):
        ClozeExample(("@entity0",), (PLACEHOLDER,), "@entity1", ("@entity0",))
    with pytest.raises(TypeError, match="example must be a ClozeExample"):
        maximum_frequency("@entity0")
    with pytest.raises(ValueError, match="vocabulary must contain the cloze specials"):
        encode_cloze([_example("@entity0 .", "@placeholder", "@entity0")], Vocabulary.build([["a"]]), 2)
    with pytest.raises(ValueError, match="examples must not be empty"):
        encode_cloze([], Vocabulary.build([["a"]], specials=cloze_specials(2)), 2)
    with pytest.raises(ValueError, match="answer must be in"):
        anonymise([0], [PLACEHOLDER], [("A",)], 3, random.Random(0), 4)
