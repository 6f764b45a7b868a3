"""A local Wikipedia-like environment with ReAct's action space (Yao et al. 2022, Section 3.1).

ReAct's agent acts on Wikipedia through three actions (the paper's Section 3.1; the reference
``wikienv.py`` of ``ysymyth/ReAct`` fixes their observation strings):

* ``search[entity]``: the first five sentences of the page titled ``entity`` if it exists; otherwise
  ``Could not find <entity>. Similar: [<top-5 titles>].``
* ``lookup[string]``: the next sentence of the current page that contains ``string``
  (case-insensitive), written ``(Result i / n) <sentence>``; ``No more results.`` after the last one.
  A new keyword restarts the count; a new search resets it.
* ``finish[answer]``: ends the episode with ``answer``.

Anything else is answered ``Invalid action: <action>``. Sentences are split as the reference does:
paragraphs at newlines, sentences at ``". "``, each stripped and given back its full stop.

:class:`WikiEnvironment` serves any document collection (a mapping ``title -> text``): a user plugs
a Wikipedia dump, the HotpotQA contexts, or the synthetic world of the experiment.

Departures from the paper: the live Wikipedia API is replaced by the collection (no network
here); an exact title match stands for Wikipedia's "go to page" (case-insensitive, as Wikipedia
capitalises a title's first letter), and the "similar" titles are the top five of a BM25 ranking
(Robertson et al.; the ``bm25s`` library) over the titles and texts, where the paper shows the
titles of Wikipedia's own search results. Disambiguation pages are not modelled. Reward: the
reference environment returns 0 and its wrapper scores the answer; :meth:`WikiEnvironment.step`
does the same (0), and the evaluation scores answers (:mod:`aicanon.reasoning.react`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BM25Index", "StepResult", "WikiEnvironment", "page_sentences", "parse_action"]

OBSERVATION_SENTENCES = 5
"""Sentences a successful search shows (the reference ``get_page_obs``)."""
SIMILAR_TITLES = 5
"""Titles listed after an unsuccessful search (the reference's ``result_titles[:5]``)."""


def page_sentences(text: str) -> list[str]:
    """The sentences of ``text`` as the reference environment splits them (module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        if paragraph.strip():
            sentences += paragraph.strip().split(". ")
    return [s.strip() + "." for s in sentences if s.strip()]


def parse_action(action: str) -> tuple[str, str] | None:
    """``"search[Ann]"`` -> ``("search", "Ann")``; the name is lower-cased in its first letter as the
    reference notebook does (``Search[...]`` is accepted). None for anything else."""
    if not isinstance(action, str):
        raise TypeError(f"action must be a str, got {type(action).__name__}")
    action = action.strip()
    if not action:
        return None
    action = action[0].lower() + action[1:]
    for name in ("search", "lookup", "finish"):
        if action.startswith(name + "[") and action.endswith("]"):
            return name, action[len(name) + 1 : -1]
    return None


class BM25Index:
    """BM25 ranking (``bm25s``, default Lucene variant, k1 = 1.5, b = 0.75) of documents."""

    def __init__(self, documents: list[str], k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            raise TypeError("documents must be a list of str")
        if not documents:
            raise ValueError("documents must not be empty")
        self.size = len(documents)
        self._bm25s = bm25s
        self.retriever = bm25s.BM25(k1=k1, b=b)
        self.retriever.index(
            bm25s.tokenize(documents, stopwords="en", show_progress=False), show_progress=False
        )

    def top(self, query: str, k: int) -> list[int]:
        """Indices of the ``k`` best documents for ``query`` (fewer if the collection is smaller; only
        documents that share a term with the query)."""
        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not any(len(ids) for ids in tokens.ids):
            return []
        k = min(k, self.size)
        ids, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        return [int(i) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query``."""
        tokens = self._bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        return np.asarray(self.retriever.get_scores(tokens[0]), dtype=np.float64)


@dataclass
class StepResult:
    observation: str
    done: bool
    answer: str | None = None


@dataclass
class WikiEnvironment:
    """The three-action environment over ``pages`` (``title -> text``; module docstring)."""

    pages: Mapping[str, str]
    _lookup_keyword: str | None = field(default=None, init=False)
    _lookup_list: list[str] = field(default_factory=list, init=False)
    _lookup_count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pages, Mapping) or not self.pages:
            raise ValueError("pages must be a non-empty mapping of title -> text")
        for title, text in self.pages.items():
            if not isinstance(title, str) or not isinstance(text, str):
                raise TypeError(
                    f"pages must map str -> str, got {type(title).__name__} -> {type(text).__name__}"
                )
        self.titles = list(self.pages)
        self._by_lower = {t.lower(): t for t in self.titles}
        self._index: BM25Index | None = None
        self.reset()

    @property
    def index(self) -> BM25Index:
        """BM25 over titles and texts, built at the first search that misses."""
        if self._index is None:
            self._index = BM25Index([f"{t}\n{self.pages[t]}" for t in self.titles])
        return self._index

    def reset(self) -> str:
        """Start an episode; returns the reference's first observation."""
        self.page: str | None = None
        self.answer: str | None = None
        self._lookup_keyword, self._lookup_list, self._lookup_count = None, [], 0
        return "Interact with Wikipedia using search[], lookup[], and finish[]."

    def search(self, entity: str) -> str:
        title = self._by_lower.get(entity.strip().lower())
        if title is None:
            similar = [self.titles[i] for i in self.index.top(entity, SIMILAR_TITLES)]
            return f"Could not find {entity}. Similar: {similar}."
        self.page = self.pages[title]
        self._lookup_keyword, self._lookup_list, self._lookup_count = None, [], 0
        return " ".join(page_sentences(self.page)[:OBSERVATION_SENTENCES])

    def lookup(self, keyword: str) -> str:
        if keyword != self._lookup_keyword:
            self._lookup_keyword, self._lookup_count = keyword, 0
            sentences = page_sentences(self.page) if self.page is not None else []
            self._lookup_list = [s for s in sentences if keyword.lower() in s.lower()]
        if self._lookup_count >= len(self._lookup_list):
            return "No more results."
        self._lookup_count += 1
        return (
            f"(Result {self._lookup_count} / {len(self._lookup_list)}) "
            + self._lookup_list[self._lookup_count - 1]
        )

    def step(self, action: str) -> StepResult:
        """Carry out ``action`` (``search[...]``, ``lookup[...]`` or ``finish[...]``)."""
        if self.answer is not None:
            return StepResult("Episode finished.", True, self.answer)
        parsed = parse_action(action)
        if parsed is None:
            return StepResult(f"Invalid action: {action.strip()}", False)
        name, argument = parsed
        if name == "search":
            return StepResult(self.search(argument), False)
        if name == "lookup":
            return StepResult(self.lookup(argument), False)
        self.answer = argument
        return StepResult("Episode finished, reward = 0", True, argument)
