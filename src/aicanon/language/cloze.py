"""Entity-anonymised cloze queries built from (document, summary) pairs (Hermann et al. 2015, Section 3).

The paper turns a news article and its summary bullet points into reading-comprehension examples
``(document d, query q, answer a)``:

1. every entity mention of a summary point that also occurs in the document yields one query: the
   summary point with that mention replaced by a placeholder (``@placeholder``); its answer is the
   entity;
2. every entity of the document and the query is replaced by an abstract marker ``@entityN``, and the
   markers are **permuted at random for every example**, so that an entity's id carries no
   knowledge across examples: "the answer must come from reading, not from world knowledge" (the
   paper's motivation for anonymisation, Section 3, Table 3);
3. the answer is one of the entities that occur in the document (the candidates).

The two frequency baselines of Section 4.1 work on the anonymised example alone:

* **maximum frequency**: the entity most often observed in the document;
* **exclusive frequency**: the entity most often observed in the document that the query does not
  mention.

This module holds the construction (library code: no file I/O); an experiment supplies the text.

Departures from the paper, and why:

* **Entity detection.** The paper found entities and their coreferent mentions with a coreference
  system and a named-entity tagger; no such model is available here. :func:`detect_entities` uses
  a stated heuristic instead: a maximal run of capitalised tokens (``of``/``de``/``von``/``@-@`` and
  a few other connectors allowed inside a run when another capitalised token follows), with
  leading function words (``The``, ``In``, ``He`` ...) stripped, and a run that starts a sentence
  kept only when its first token also appears capitalised in mid-sentence somewhere in the text.
  There is no coreference: "Barack Obama" and "Obama" are two entities, pronouns are not entities.
* The caller chooses what a "document" and a "summary" are (the paper: a CNN/Daily Mail article
  and one of its bullet points).
* Ties in the frequency baselines go to the entity seen first in the document (the paper does not
  say how it broke ties).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from aicanon.core.checks import check_int
from aicanon.datasets.vocabulary import Vocabulary, pad_sequences

__all__ = [
    "DELIMITER",
    "PLACEHOLDER",
    "ClozeBatch",
    "ClozeExample",
    "anonymise",
    "build_cloze_dataset",
    "cloze_examples",
    "cloze_specials",
    "detect_entities",
    "encode_cloze",
    "entity_marker",
    "exclusive_frequency",
    "marker_index",
    "maximum_frequency",
    "split_sentences",
    "tag_entities",
]

PLACEHOLDER = "@placeholder"
"""The token that stands for the answer in a query."""
ENTITY_PREFIX = "@entity"
DELIMITER = "|||"
"""The token between document and query in the Deep LSTM Reader's input (Section 4.1)."""

SENTENCE_ENDS = frozenset({".", "!", "?"})
# Lower-case tokens that may sit inside a name when a capitalised token follows them
# ("Bank of England", "Ludwig van Beethoven", "Anglo @-@ Saxon" in WikiText's tokenisation).
CONNECTORS = frozenset({"of", "de", "du", "da", "del", "der", "van", "von", "la", "le", "@-@", "y"})
# Capitalised function words that start sentences and names ("The Beatles") but are not entities.
FUNCTION_WORDS = frozenset(
    "The A An In On At It He She They We I You This That These Those His Her Their Its Our My After "
    "Before During As But And Or If When While However Although Following There Here From By For With "
    "Despite Since Of To One Some Many Most Other Both Each All Such Then Thus Also Later Under Over "
    "Between Into Upon What Which Who Where Why How No Not Nor So Yet Because Until Unlike Like Although "
    "Among Against Through Throughout Within Without About Around Near Once Another".split()
)


def entity_marker(index: int) -> str:
    """``@entity<index>``: the abstract marker of an anonymised entity."""
    check_int("index", index, 0)
    return f"{ENTITY_PREFIX}{index}"


def marker_index(marker: str) -> int:
    """The N of ``@entityN``; ``ValueError`` for any other token."""
    if not (
        isinstance(marker, str)
        and marker.startswith(ENTITY_PREFIX)
        and marker[len(ENTITY_PREFIX) :].isdigit()
    ):
        raise ValueError(f"marker must be a token '@entity<N>', got {marker!r}")
    return int(marker[len(ENTITY_PREFIX) :])


def cloze_specials(num_entity_ids: int) -> tuple[str, ...]:
    """The special tokens a cloze vocabulary starts with: pad, unk, the delimiter, the placeholder and
    the ``num_entity_ids`` markers ``@entity0 ..`` (so the markers' vocabulary ids are contiguous)."""
    check_int("num_entity_ids", num_entity_ids, 2)
    return ("<pad>", "<unk>", DELIMITER, PLACEHOLDER, *(entity_marker(i) for i in range(num_entity_ids)))


def split_sentences(tokens: Sequence[str]) -> list[list[str]]:
    """Split a tokenised text after each ``.``, ``!`` or ``?`` token (a last unterminated piece is kept)."""
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of tokens (e.g. text.split()), got a str")
    sentences: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        current.append(token)
        if token in SENTENCE_ENDS:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def _capitalised(token: str) -> bool:
    return token[:1].isupper() and any(c.isalpha() for c in token)


def _runs(sentence: Sequence[str]) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` of capitalised tokens, connectors allowed between two of them."""
    runs = []
    i = 0
    while i < len(sentence):
        if not _capitalised(sentence[i]):
            i += 1
            continue
        start = end = i
        while end < len(sentence):
            if _capitalised(sentence[end]):
                end += 1
            elif sentence[end] in CONNECTORS and end + 1 < len(sentence) and _capitalised(sentence[end + 1]):
                end += 2
            else:
                break
        runs.append((start, end))
        i = end
    return runs


def detect_entities(sentences: Sequence[Sequence[str]]) -> set[tuple[str, ...]]:
    """The entities of a text (a list of tokenised sentences) by the capitalisation heuristic (module
    docstring): each entity is the tuple of its tokens.

    Leading function words are stripped from a run; a run at the start of a sentence is kept only
    when its first token also appears capitalised after the start of some sentence of ``sentences``.
    """
    if isinstance(sentences, str) or any(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a sequence of token sequences (e.g. split_sentences(tokens))")
    mid_sentence = {t for s in sentences for t in s[1:] if _capitalised(t)}
    entities: set[tuple[str, ...]] = set()
    for sentence in sentences:
        for start, end in _runs(sentence):
            if start == 0 and sentence[0] not in mid_sentence:
                start += 1
            while start < end and (sentence[start] in FUNCTION_WORDS or not _capitalised(sentence[start])):
                start += 1
            while end > start and not _capitalised(sentence[end - 1]):
                end -= 1
            if start < end:
                entities.add(tuple(sentence[start:end]))
    return entities


def tag_entities(tokens: Sequence[str], entities: Sequence[tuple[str, ...]]) -> list[str | int]:
    """``tokens`` with every mention of an entity (longest match first, left to right) replaced by the
    entity's index into ``entities``; the other tokens stay as they are."""
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of tokens (e.g. text.split()), got a str")
    starts: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for i, entity in enumerate(entities):
        if not isinstance(entity, tuple) or not entity:
            raise TypeError(f"entities must be non-empty tuples of tokens, got {entity!r}")
        starts.setdefault(entity[0], []).append((entity, i))
    for candidates in starts.values():
        candidates.sort(key=lambda pair: -len(pair[0]))
    tagged: list[str | int] = []
    i = 0
    while i < len(tokens):
        for entity, index in starts.get(tokens[i], ()):
            if tuple(tokens[i : i + len(entity)]) == entity:
                tagged.append(index)
                i += len(entity)
                break
        else:
            tagged.append(tokens[i])
            i += 1
    return tagged


@dataclass(frozen=True)
class ClozeExample:
    """One anonymised example: the document and the query as tokens, the answer's marker, the
    candidates (the markers of the entities in the document, by marker id) and, for display, which
    marker stands for which entity (``names``: marker -> the entity's tokens joined by spaces)."""

    document: tuple[str, ...]
    query: tuple[str, ...]
    answer: str
    candidates: tuple[str, ...]
    names: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.query.count(PLACEHOLDER) != 1:
            raise ValueError(
                f"query must contain {PLACEHOLDER!r} exactly once, got {self.query.count(PLACEHOLDER)}"
            )
        if self.answer not in self.candidates:
            raise ValueError(f"answer {self.answer!r} must be one of the candidates {self.candidates}")
        if self.answer not in self.document:
            raise ValueError(f"answer {self.answer!r} must occur in the document")


def anonymise(
    document: Sequence[str | int],
    query: Sequence[str | int],
    entities: Sequence[tuple[str, ...]],
    answer: int,
    rng: random.Random,
    num_entity_ids: int,
) -> ClozeExample | None:
    """Replace the entities of ``document`` and ``query`` by markers under one random permutation.

    ``document``/``query``: tokens whose entity mentions are already replaced by their index into
    ``entities`` (:func:`tag_entities`), the answer's mention in the query by :data:`PLACEHOLDER`;
    ``answer``: the answer's index into ``entities``. The distinct entities of document and query get
    the markers of a random sample (without replacement) of ``range(num_entity_ids)``, drawn from
    ``rng``: a new permutation for every example. Returns ``None`` when there are more distinct
    entities than ids or when the answer does not occur in the document (no valid example).
    """
    check_int("num_entity_ids", num_entity_ids, 2)
    check_int("answer", answer, 0, len(entities) - 1)
    if query.count(PLACEHOLDER) != 1:
        raise ValueError(f"query must contain {PLACEHOLDER!r} exactly once")
    present = list(dict.fromkeys(t for t in [*document, *query] if isinstance(t, int)))
    if answer not in document or len(present) > num_entity_ids:
        return None
    ids = rng.sample(range(num_entity_ids), len(present))
    marker = {entity: entity_marker(i) for entity, i in zip(present, ids)}

    def render(tokens: Sequence[str | int]) -> tuple[str, ...]:
        return tuple(marker[t] if isinstance(t, int) else t for t in tokens)

    document_markers = {marker[t] for t in document if isinstance(t, int)}
    names = sorted(((marker[e], " ".join(entities[e])) for e in present), key=lambda p: marker_index(p[0]))
    return ClozeExample(
        document=render(document),
        query=render(query),
        answer=marker[answer],
        candidates=tuple(sorted(document_markers, key=marker_index)),
        names=tuple(names),
    )


def cloze_examples(
    document: Sequence[str],
    summary: Sequence[str],
    entities: Collection[tuple[str, ...]],
    rng: random.Random,
    *,
    num_entity_ids: int,
) -> list[ClozeExample]:
    """All queries of one ``summary`` about one ``document`` (Section 3): one per entity mention of
    the summary whose entity also occurs in the document, that mention replaced by the placeholder,
    each example anonymised under its own random permutation (:func:`anonymise`).

    ``document``/``summary``: token sequences; ``entities``: the entities (token tuples) to find and
    anonymise, e.g. ``detect_entities`` of both texts' sentences.
    """
    if isinstance(document, str) or isinstance(summary, str):
        raise TypeError("document and summary must be sequences of tokens (e.g. text.split()), got a str")
    check_int("num_entity_ids", num_entity_ids, 2)
    ordered = sorted(entities)
    tagged_document = tag_entities(document, ordered)
    tagged_summary = tag_entities(summary, ordered)
    examples = []
    for position, token in enumerate(tagged_summary):
        if not isinstance(token, int):
            continue
        query = [*tagged_summary[:position], PLACEHOLDER, *tagged_summary[position + 1 :]]
        example = anonymise(tagged_document, query, ordered, token, rng, num_entity_ids)
        if example is not None:
            examples.append(example)
    return examples


def build_cloze_dataset(
    triples: Iterable[tuple[Sequence[str], Sequence[str], Collection[tuple[str, ...]] | None]],
    *,
    num_entity_ids: int,
    seed: int = 0,
) -> list[ClozeExample]:
    """Cloze examples from ``(document, summary, entities)`` triples (tokens, tokens, entity tuples or
    ``None`` to detect them in both texts with :func:`detect_entities`); the random permutations of
    the entity markers come from ``random.Random(seed)``, so a seed fixes the dataset."""
    check_int("num_entity_ids", num_entity_ids, 2)
    check_int("seed", seed, 0)
    rng = random.Random(seed)
    examples: list[ClozeExample] = []
    for document, summary, entities in triples:
        if entities is None:
            entities = detect_entities(split_sentences(document) + split_sentences(summary))
        examples.extend(cloze_examples(document, summary, entities, rng, num_entity_ids=num_entity_ids))
    return examples


def _check_example(example: ClozeExample) -> None:
    if not isinstance(example, ClozeExample):
        raise TypeError(f"example must be a ClozeExample, got {type(example).__name__}")


def maximum_frequency(example: ClozeExample) -> str:
    """The candidate observed most often in the document (Section 4.1; ties: the first seen)."""
    _check_example(example)
    candidates = set(example.candidates)
    counts = Counter(t for t in example.document if t in candidates)
    first = {t: i for i, t in reversed(list(enumerate(example.document)))}
    return min(counts, key=lambda t: (-counts[t], first[t]))


def exclusive_frequency(example: ClozeExample) -> str:
    """The candidate observed most often in the document that the query does not mention (Section
    4.1; ties: the first seen); the maximum-frequency answer when the query mentions every candidate."""
    _check_example(example)
    in_query = set(example.query)
    allowed = set(example.candidates) - in_query
    if not allowed:
        return maximum_frequency(example)
    counts = Counter(t for t in example.document if t in allowed)
    first = {t: i for i, t in reversed(list(enumerate(example.document)))}
    return min(counts, key=lambda t: (-counts[t], first[t]))


@dataclass
class ClozeBatch:
    """Padded tensors of a list of examples (what the readers take).

    ``document``/``query``: token ids ``long [B, L]`` padded with the vocabulary's pad id, their
    lengths ``long [B]``; ``candidates``: ``bool [B, num_entity_ids]``, True for the entities in the
    document; ``answers``: the answer's marker index ``long [B]``.
    """

    document: Tensor
    document_lengths: Tensor
    query: Tensor
    query_lengths: Tensor
    candidates: Tensor
    answers: Tensor

    def to(self, device: torch.device | str) -> ClozeBatch:
        return ClozeBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return self.document.size(0)


def encode_cloze(examples: Sequence[ClozeExample], vocabulary: Vocabulary, num_entity_ids: int) -> ClozeBatch:
    """Encode ``examples`` with ``vocabulary`` (which must hold the :func:`cloze_specials` of
    ``num_entity_ids``) into one padded :class:`ClozeBatch`."""
    check_int("num_entity_ids", num_entity_ids, 2)
    if not examples:
        raise ValueError("examples must not be empty")
    missing = [t for t in cloze_specials(num_entity_ids) if t not in vocabulary]
    if missing:
        raise ValueError(
            f"vocabulary must contain the cloze specials (cloze_specials), missing {missing[:5]}"
        )
    for example in examples:
        _check_example(example)
    documents, document_lengths = pad_sequences(
        [vocabulary.encode(e.document) for e in examples], vocabulary.pad_id
    )
    queries, query_lengths = pad_sequences([vocabulary.encode(e.query) for e in examples], vocabulary.pad_id)
    candidates = torch.zeros(len(examples), num_entity_ids, dtype=torch.bool)
    for row, example in enumerate(examples):
        ids = [marker_index(c) for c in example.candidates]
        if max(ids) >= num_entity_ids:
            raise ValueError(f"examples[{row}] uses a marker beyond num_entity_ids={num_entity_ids}")
        candidates[row, ids] = True
    answers = torch.tensor([marker_index(e.answer) for e in examples], dtype=torch.long)
    return ClozeBatch(documents, document_lengths, queries, query_lengths, candidates, answers)
