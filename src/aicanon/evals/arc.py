r"""ARC (Clark et al., 2018, "Think you have Solved Question Answering? Try ARC"): the paper's
scoring, its two corpus baselines (the IR solver and the PMI solver of Clark et al., 2016, which
defined the Challenge Set) and a harness that scores any :class:`~aicanon.language.completion.LanguageModel`.

**Scoring** (section "Baseline Systems"). A system answers a question with one label or with a
k-way tie of labels; the question's points are

    points = 1      if it chose the single correct answer,
             1/k    if it reported a k-way tie that includes the correct answer,
             0      otherwise (a wrong answer, a tie without the correct one, or no answer),

and a set's score is the mean of the points (the paper reports it as a percentage).
:func:`question_points` is that rule, :func:`guess_all_score` the "Guess-all (random)" baseline
(every option chosen: 1/k_q points for a question with k_q options; 25.02 % on both test sets).

**IR solver** (section "Identifying Challenge Questions"). For every answer option a_i, send q + a_i
as a query to a search engine over a sentence corpus and take the engine's score of the top
retrieved sentence s that has at least one non-stopword in common with q and at least one with a_i;
choose the option with the highest score. The paper's engine is Elasticsearch, whose default
similarity is Okapi BM25 (Lucene's form):

    score(Q, s) = Σ_{t ∈ Q} idf(t) · tf(t, s) / (tf(t, s) + k1 · (1 − b + b · |s| / avgdl))     (BM25)
    idf(t)      = ln(1 + (N − n_t + 0.5) / (n_t + 0.5))

(Lucene 8+ drops the constant factor k1 + 1 of the textbook numerator; rankings are the same)
with k1 = 1.2, b = 0.75, N sentences, n_t of them containing t, a query term repeated in Q counted
as often as it appears (Lucene sums one clause per query token). :class:`SentenceIndex` also offers
TF-IDF cosine similarity with scikit-learn's defaults (smoothed idf = ln((1 + N)/(1 + n_t)) + 1,
raw term counts, rows L2-normalised), which the tests check against ``TfidfVectorizer``.

**PMI solver** (same section). For n-grams x and y,

    PMI(x, y) = log p(x, y) / (p(x) p(y))                                                     (PMI)

where p(x, y) is the probability that x and y occur together within a 10-word window. The solver
extracts unigrams, bigrams, trigrams and skip-bigrams from q and from each a_i and chooses the
option with the largest average PMI over all (question n-gram, answer n-gram) pairs.

**Language models.** :func:`evaluate_language_model` prompts any backend with the question and its
labelled options (:data:`PROMPT_TEMPLATE`), generates a few tokens greedily and reads the first
option label in the output (:func:`parse_label`); an output without a label earns 0 points and is
counted as invalid.

Departures from the paper (all forced by what is staged here or unstated in the paper):

* The corpus. The paper's solvers ran over the Waterloo corpus (5 × 10^10 tokens of Web text); the
  14M-sentence ARC Corpus is not staged either. The experiment builds its corpus from staged text
  (ARC training questions with their correct answers; WikiText-2's Wikipedia sentences) and says so.
* Tokens: lower-cased alphanumeric runs, a fixed English stopword list (:data:`STOPWORDS`) and a
  light plural stemmer (:func:`stem`) stand in for Elasticsearch's English analyser; the list adds
  a few words nearly every ARC stem uses ("best", "following", "likely", "student").
* The IR filter (overlap with q and with a_i) is applied to every sentence, not to the top hits an
  engine returns: the top qualifying sentence is found exactly, however far down the ranking.
* PMI details the paper leaves open: n-grams are built over the sentence's non-stopword tokens
  (a trigram "speed light travel", a skip-bigram skips one content word); the window is 10 content
  words either side of an n-gram's first token (the paper: "a 10 word window"), never crossing a
  sentence; p(x) = c(x)/N and p(x, y) = c(x, y)/M, with N the corpus's content tokens, c(x, y)
  the number of occurrence pairs (x at i, y at j, 1 <= |i - j| <= W) and M the number of such
  position pairs in the corpus (so PMI = 0 is the count expected if words were placed
  independently); n-grams absent from the corpus are left out of the average (their PMI is
  undefined) and a pair that never co-occurs counts as PMI 0 (no evidence either way).
* Ties: options whose scores are equal (to a relative 1e-9) are a tie, which the scoring rule gives
  partial credit; an option with no qualifying sentence scores 0 (IR), so a question none of whose
  options the corpus supports is a full tie (1/k points, chance).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sparse

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.datasets.arc import ArcQuestion
from aicanon.evals.intervals import Interval, bootstrap_interval, wilson_interval
from aicanon.language.completion import LanguageModel

__all__ = [
    "PROMPT_TEMPLATE",
    "STOPWORDS",
    "ArcEvaluation",
    "IRSolver",
    "PMISolver",
    "SentenceIndex",
    "content_words",
    "evaluate_language_model",
    "evaluate_solver",
    "format_prompt",
    "guess_all_score",
    "ngrams",
    "parse_label",
    "question_points",
    "score_interval",
    "stem",
    "tied_best",
    "tokenize",
]

# A fixed English stopword list (articles, pronouns, auxiliaries, prepositions, conjunctions and
# question words: what carries no science content in an ARC stem).
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either few for from
    further had has have having he her here hers herself him himself his how i if in into is it its
    itself just least less made make many may me might more most much must my myself near neither no
    nor not now of off on once one only or other our ours ourselves out over own same shall she
    should so some such than that the their theirs them themselves then there these they this those
    through thus to too under until up upon us very was we were what when where which while who whom
    whose why will with would you your yours yourself yourselves best following likely student
    students""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A light plural stemmer: ``"leaves"`` stays, ``"bodies"`` → ``"body"``, ``"plants"`` →
    ``"plant"``, words ending in ``ss``/``us``/``is`` or of three letters or fewer are kept."""
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s"):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric runs of ``text`` (every word, stopwords included)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def content_words(text: str) -> list[str]:
    """The stemmed non-stopword tokens of ``text``, in order (repeats kept)."""
    return [stem(t) for t in tokenize(text) if t not in STOPWORDS]


def ngrams(words: Sequence[str], orders: Sequence[str] = ("1", "2", "3", "skip2")) -> list[str]:
    """The distinct n-grams of a content-word sequence, in first-occurrence order: unigrams ``"1"``,
    bigrams ``"2"``, trigrams ``"3"`` and skip-bigrams ``"skip2"`` (w_i, w_{i+2}, written
    ``"w_i * w_{i+2}"``), as the PMI solver extracts them."""
    seen: dict[str, None] = {}
    for gram, _ in _ngram_positions(list(words), orders):
        seen.setdefault(gram, None)
    return list(seen)


def _ngram_positions(words: list[str], orders: Sequence[str]) -> list[tuple[str, int]]:
    """(n-gram, position of its first word) for every n-gram occurrence in ``words``."""
    out = []
    for order in orders:
        check_choice("order", order, ("1", "2", "3", "skip2"))
        if order == "1":
            out += [(w, i) for i, w in enumerate(words)]
        elif order == "2":
            out += [(f"{words[i]} {words[i + 1]}", i) for i in range(len(words) - 1)]
        elif order == "3":
            out += [(f"{words[i]} {words[i + 1]} {words[i + 2]}", i) for i in range(len(words) - 2)]
        else:
            out += [(f"{words[i]} * {words[i + 2]}", i) for i in range(len(words) - 2)]
    return out


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def question_points(chosen: Sequence[str], answer_key: str) -> float:
    """The paper's points for one question: 1 for the single correct label, 1/k for a k-way tie
    including it, 0 otherwise (an empty ``chosen`` is no answer: 0)."""
    if isinstance(chosen, str):
        raise TypeError(f"chosen must be a sequence of labels (one answer: [label]), got str {chosen!r}")
    labels = list(chosen)
    if len(set(labels)) != len(labels):
        raise ValueError(f"chosen must not repeat a label, got {labels}")
    if not isinstance(answer_key, str):
        raise TypeError(f"answer_key must be a str, got {type(answer_key).__name__}")
    return 1.0 / len(labels) if answer_key in labels else 0.0


def guess_all_score(questions: Sequence[ArcQuestion]) -> float:
    """The Guess-all ("random") baseline: every option chosen, 1/k_q points per question."""
    questions = _check_questions(questions)
    return float(np.mean([1.0 / q.num_choices for q in questions]))


def tied_best(scores: Sequence[float], labels: Sequence[str], rel_tol: float = 1e-9) -> list[str]:
    """The labels whose score equals the maximum (to a relative ``rel_tol``): a solver's answer,
    a tie when several share the top score."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size != len(labels) or values.size == 0:
        raise ValueError(f"scores must be one number per label ({len(labels)}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"scores must be finite, got {values.tolist()}")
    top = values.max()
    return [label for label, v in zip(labels, values) if math.isclose(v, top, rel_tol=rel_tol, abs_tol=1e-12)]


def score_interval(points: Sequence[float], confidence: float = 0.95, seed: int = 0) -> Interval:
    """The interval of a set's score: Wilson's when every point is 0 or 1, the percentile bootstrap
    (2,000 resamples) when partial credit (1/k ties) occurs."""
    values = np.asarray(points, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"points must be a non-empty 1-D sequence, got shape {values.shape}")
    if ((values < 0) | (values > 1)).any():
        raise ValueError("points must lie in [0, 1]")
    if np.isin(values, (0.0, 1.0)).all():
        return wilson_interval(float(values.sum()), int(values.size), confidence)
    return bootstrap_interval(values, confidence=confidence, seed=seed)


def _check_questions(questions: Sequence[ArcQuestion]) -> list[ArcQuestion]:
    if isinstance(questions, ArcQuestion) or not isinstance(questions, Sequence):
        raise TypeError(f"questions must be a list of ArcQuestion, got {type(questions).__name__}")
    questions = list(questions)
    if not questions:
        raise ValueError("questions must not be empty")
    for i, q in enumerate(questions):
        if not isinstance(q, ArcQuestion):
            raise TypeError(f"questions[{i}] must be an ArcQuestion, got {type(q).__name__}")
    return questions


# ---------------------------------------------------------------------------------------------
# Retrieval
# ---------------------------------------------------------------------------------------------


class SentenceIndex:
    """An inverted index of ``sentences`` (each a text) scoring queries by BM25 or TF-IDF cosine
    (module docstring). ``analyzer`` turns a text into terms (default :func:`content_words`)."""

    def __init__(
        self,
        sentences: Sequence[str],
        weighting: str = "bm25",
        k1: float = 1.2,
        b: float = 0.75,
        analyzer: Any = None,
    ) -> None:
        if isinstance(sentences, str) or not isinstance(sentences, Sequence):
            raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}")
        if not sentences or not all(isinstance(s, str) for s in sentences):
            raise ValueError("sentences must be a non-empty list of str")
        check_choice("weighting", weighting, ("bm25", "tfidf"))
        check_float("k1", k1, 0.0, finite=True)
        check_float("b", b, 0.0, 1.0)
        self.analyzer = content_words if analyzer is None else analyzer
        if not callable(self.analyzer):
            raise TypeError(f"analyzer must be callable, got {type(analyzer).__name__}")
        self.weighting, self.k1, self.b = weighting, float(k1), float(b)
        self.vocabulary: dict[str, int] = {}
        rows, cols = [], []
        for i, sentence in enumerate(sentences):
            for term in self.analyzer(sentence):
                rows.append(i)
                cols.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
        n, v = len(sentences), max(len(self.vocabulary), 1)
        counts = sparse.csr_matrix(
            (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(n, v),
        )
        counts.sum_duplicates()
        self.num_sentences = n
        self.presence = counts.copy()
        self.presence.data[:] = 1.0
        document_frequency = np.asarray(self.presence.sum(axis=0)).ravel()
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        counts = counts.tocoo()
        tf = counts.data
        if weighting == "bm25":
            self.idf = np.log1p((n - document_frequency + 0.5) / (document_frequency + 0.5))
            average = max(lengths.mean(), 1e-12)
            norm = self.k1 * (1.0 - self.b + self.b * lengths[counts.row] / average)
            weights = self.idf[counts.col] * tf / (tf + norm)
        else:
            self.idf = np.log((1.0 + n) / (1.0 + document_frequency)) + 1.0
            weights = tf * self.idf[counts.col]
        matrix = sparse.csr_matrix((weights, (counts.row, counts.col)), shape=(n, v))
        if weighting == "tfidf":
            row_norm = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
            matrix = sparse.diags(1.0 / np.where(row_norm > 0, row_norm, 1.0)) @ matrix
        # Sentence-major term weights, transposed once so queries @ weights_t is (queries x sentences).
        self.weights_t = matrix.T.tocsr()
        self.presence_t = self.presence.T.tocsr()

    def query_matrix(self, queries: Sequence[str], binary: bool = False) -> sparse.csr_matrix:
        """Term counts (or presence when ``binary``) of ``queries`` over the index's vocabulary;
        TF-IDF queries are weighted and L2-normalised like the sentences. Unknown terms drop out."""
        rows, cols = [], []
        for i, text in enumerate(queries):
            for term in self.analyzer(text):
                j = self.vocabulary.get(term)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        matrix = sparse.csr_matrix(
            (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(len(queries), self.weights_t.shape[0]),
        )
        matrix.sum_duplicates()
        if binary:
            matrix.data[:] = 1.0
        elif self.weighting == "tfidf":
            matrix = matrix @ sparse.diags(self.idf)
            norm = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
            matrix = sparse.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ matrix
        return matrix.tocsr()

    def scores(self, queries: Sequence[str]) -> sparse.csr_matrix:
        """(queries x sentences) scores of every query against every sentence (sparse: a sentence
        sharing no term with a query scores 0)."""
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise TypeError(f"queries must be a list of str, got {type(queries).__name__}")
        if not all(isinstance(q, str) for q in queries):
            raise TypeError("queries must be a list of str")
        return (self.query_matrix(queries) @ self.weights_t).tocsr()

    def top_scores_with_overlap(self, questions: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        """For each pair (q, a): the top score of the query q + a over the sentences that share at
        least one term with q and one with a (the IR solver's filter); 0 where none does."""
        if len(questions) != len(answers):
            raise ValueError(f"questions and answers must pair up, got {len(questions)} and {len(answers)}")
        joined = [f"{q} {a}" for q, a in zip(questions, answers)]
        score = self.scores(joined)
        has_question = (self.query_matrix(list(questions), binary=True) @ self.presence_t).tocsr()
        has_answer = (self.query_matrix(list(answers), binary=True) @ self.presence_t).tocsr()
        has_question.data[:] = 1.0
        has_answer.data[:] = 1.0
        kept = score.multiply(has_question).multiply(has_answer).tocsr()
        best = np.zeros(len(joined))
        if kept.nnz:
            # BM25 and cosine scores are >= 0, so the row maximum over stored entries is the top score.
            best = np.asarray(kept.max(axis=1).todense()).ravel()
        return best


class IRSolver:
    """The IR solver: option score = top BM25 (or TF-IDF) score of a sentence retrieved by q + a_i
    that overlaps both q and a_i (module docstring). ``batch_size`` questions are scored at once."""

    name = "IR"

    def __init__(self, index: SentenceIndex, batch_size: int = 256) -> None:
        if not isinstance(index, SentenceIndex):
            raise TypeError(f"index must be a SentenceIndex, got {type(index).__name__}")
        check_int("batch_size", batch_size)
        self.index, self.batch_size = index, batch_size

    def option_scores(self, questions: Sequence[ArcQuestion]) -> list[np.ndarray]:
        questions = _check_questions(questions)
        out: list[np.ndarray] = []
        for start in range(0, len(questions), self.batch_size):
            batch = questions[start : start + self.batch_size]
            stems = [q.stem for q in batch for _ in q.choices]
            answers = [c for q in batch for c in q.choices]
            flat = self.index.top_scores_with_overlap(stems, answers)
            offset = 0
            for q in batch:
                out.append(flat[offset : offset + q.num_choices])
                offset += q.num_choices
        return out


class PMISolver:
    """The PMI solver over a sentence corpus: option score = the average PMI (eq. PMI) over all
    pairs of question n-grams and option n-grams present in the corpus (module docstring)."""

    name = "PMI"

    def __init__(
        self, sentences: Sequence[str], window: int = 10, orders: Sequence[str] = ("1", "2", "3", "skip2")
    ) -> None:
        if isinstance(sentences, str) or not isinstance(sentences, Sequence):
            raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}")
        if not sentences or not all(isinstance(s, str) for s in sentences):
            raise ValueError("sentences must be a non-empty list of str")
        check_int("window", window)
        if isinstance(orders, str) or not orders:
            raise ValueError(f"orders must be a non-empty list of n-gram kinds, got {orders!r}")
        for order in orders:
            check_choice("orders[i]", order, ("1", "2", "3", "skip2"))
        self.window, self.orders = window, tuple(orders)
        self.vocabulary: dict[str, int] = {}
        ids, positions = [], []
        offset, window_pairs = 0, 0
        for sentence in sentences:
            words = content_words(sentence)
            reach = min(window, len(words) - 1)
            window_pairs += reach * (2 * len(words) - reach - 1)  # 2 * sum_{d=1..reach} (L - d)
            for gram, position in _ngram_positions(words, self.orders):
                ids.append(self.vocabulary.setdefault(gram, len(self.vocabulary)))
                positions.append(offset + position)
            # A gap wider than the window keeps co-occurrence inside a sentence.
            offset += len(words) + window + 1
        ids_array = np.asarray(ids, dtype=np.int64)
        positions_array = np.asarray(positions, dtype=np.int64)
        v = max(len(self.vocabulary), 1)
        self.num_positions = offset + 1
        self.occurrences = sparse.csr_matrix(
            (np.ones(len(ids)), (ids_array, positions_array)), shape=(v, self.num_positions)
        )
        self.counts = np.asarray(self.occurrences.sum(axis=1)).ravel()
        # N: the corpus's content tokens (unigram occurrences).
        unigram_total = sum(c for g, c in zip(self.vocabulary, self.counts) if " " not in g)
        self.total = float(max(unigram_total, 1))
        self.window_pairs = float(max(window_pairs, 1))

    def cooccurrences(self, xs: Sequence[int], ys: Sequence[int]) -> sparse.csr_matrix:
        """c(x, y) for n-gram ids ``xs`` (rows) and ``ys`` (columns): occurrence pairs whose first
        words lie 1..window positions apart, either order."""
        rows = self.occurrences[np.asarray(xs, dtype=np.int64)]
        columns = self.occurrences[np.asarray(ys, dtype=np.int64)].tocoo()
        # Smear every y occurrence over the positions within the window (offset 0 excluded).
        offsets = np.concatenate([np.arange(-self.window, 0), np.arange(1, self.window + 1)])
        spread_rows = np.repeat(columns.row, offsets.size)
        spread_cols = (columns.col[:, None] + offsets[None, :]).ravel()
        inside = (spread_cols >= 0) & (spread_cols < self.num_positions)
        smeared = sparse.csr_matrix(
            (np.ones(int(inside.sum())), (spread_rows[inside], spread_cols[inside])),
            shape=(len(ys), self.num_positions),
        )
        return (rows @ smeared.T).tocsr()

    def option_scores(self, questions: Sequence[ArcQuestion]) -> list[np.ndarray]:
        questions = _check_questions(questions)
        known = self.vocabulary

        def grams(text: str) -> list[int]:
            return [known[g] for g in ngrams(content_words(text), self.orders) if g in known]

        question_grams = [grams(q.stem) for q in questions]
        answer_grams = [[grams(c) for c in q.choices] for q in questions]
        xs = sorted({x for gs in question_grams for x in gs})
        ys = sorted({y for options in answer_grams for gs in options for y in gs})
        if not xs or not ys:
            return [np.zeros(q.num_choices) for q in questions]
        x_index = {x: i for i, x in enumerate(xs)}
        y_index = {y: j for j, y in enumerate(ys)}
        counts = self.cooccurrences(xs, ys).tocsr()
        out = []
        for q, q_grams, options in zip(questions, question_grams, answer_grams):
            scores = np.zeros(q.num_choices)
            if not q_grams:
                out.append(scores)
                continue
            question_rows = counts[[x_index[x] for x in q_grams]].toarray()
            for k, a_grams in enumerate(options):
                if not a_grams:
                    continue
                joint = question_rows[:, [y_index[y] for y in a_grams]]
                cx = self.counts[np.asarray(q_grams)][:, None]
                cy = self.counts[np.asarray(a_grams)][None, :]
                with np.errstate(divide="ignore"):
                    pmi = np.where(
                        joint > 0, np.log(joint * self.total**2 / (self.window_pairs * cx * cy)), 0.0
                    )
                scores[k] = pmi.mean()
            out.append(scores)
        return out


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@dataclass
class ArcEvaluation:
    """A system's answers on a question set: per question the chosen labels and points (and, for a
    language model, the prompt and raw output), the score and its interval."""

    system: str
    subset: str
    ids: list[str]
    chosen: list[list[str]]
    points: np.ndarray
    interval: Interval
    chance: float
    prompts: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return float(self.points.mean())

    @property
    def invalid(self) -> int:
        """Questions answered with no label at all."""
        return sum(1 for c in self.chosen if not c)

    def by_grade(
        self, questions: Sequence[ArcQuestion], confidence: float = 0.95
    ) -> dict[str, dict[str, float]]:
        """Score per school grade (the paper's Table 2 breakdown): {grade: {"n", "score", "low",
        "high"}}, the interval as :func:`score_interval` gives it; ``questions`` in the evaluation's order."""
        if [q.id for q in questions] != self.ids:
            raise ValueError("questions must be the evaluated questions, in the evaluation's order")
        table: dict[str, list[float]] = {}
        for q, p in zip(questions, self.points):
            table.setdefault(str(q.grade) if q.grade is not None else "unknown", []).append(float(p))
        out = {}
        for grade, values in sorted(table.items()):
            interval = score_interval(values, confidence)
            out[grade] = {
                "n": len(values),
                "score": interval.estimate,
                "low": interval.low,
                "high": interval.high,
            }
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "subset": self.subset,
            "n": len(self.ids),
            "score": self.score,
            "interval": self.interval.as_dict(),
            "chance": self.chance,
            "ties": sum(1 for c in self.chosen if len(c) > 1),
            "invalid": self.invalid,
        }


def evaluate_solver(
    solver: IRSolver | PMISolver, questions: Sequence[ArcQuestion], confidence: float = 0.95, seed: int = 0
) -> ArcEvaluation:
    """Run ``solver`` on ``questions`` and score its (possibly tied) answers by the paper's rule."""
    questions = _check_questions(questions)
    if not hasattr(solver, "option_scores"):
        raise TypeError(f"solver must have option_scores(questions), got {type(solver).__name__}")
    chosen = [tied_best(s, q.labels) for s, q in zip(solver.option_scores(questions), questions)]
    points = np.array([question_points(c, q.answer_key) for c, q in zip(chosen, questions)])
    return ArcEvaluation(
        system=getattr(solver, "name", type(solver).__name__),
        subset=_subset_name(questions),
        ids=[q.id for q in questions],
        chosen=chosen,
        points=points,
        interval=score_interval(points, confidence, seed),
        chance=guess_all_score(questions),
    )


def _subset_name(questions: Sequence[ArcQuestion]) -> str:
    subsets = sorted({q.subset for q in questions})
    return subsets[0] if len(subsets) == 1 else "+".join(subsets)


PROMPT_TEMPLATE = "Question: {stem}\n{options}\nAnswer:"
"""The zero-shot prompt: the stem, one ``"<label>. <text>"`` line per option, then ``Answer:``
(the model is asked to generate the label)."""


def format_prompt(question: ArcQuestion, template: str = PROMPT_TEMPLATE) -> str:
    """``template`` filled with the question's stem and its labelled options."""
    if not isinstance(question, ArcQuestion):
        raise TypeError(f"question must be an ArcQuestion, got {type(question).__name__}")
    if not isinstance(template, str) or "{stem}" not in template or "{options}" not in template:
        raise ValueError(f"template must be a str with {{stem}} and {{options}}, got {template!r}")
    options = "\n".join(f"{label}. {text}" for label, text in zip(question.labels, question.choices))
    return template.format(stem=question.stem, options=options)


def parse_label(output: str, labels: Sequence[str]) -> str | None:
    """The first option label in ``output`` standing alone (``"B"``, ``" (B)"``, ``"B. water"``,
    ``"The answer is B"``), or None when the output names none. A label inside a word (the "A" of
    "Answer") does not count."""
    if not isinstance(output, str):
        raise TypeError(f"output must be a str, got {type(output).__name__}")
    wanted = set(labels)
    for match in re.finditer(r"(?<![A-Za-z0-9])([A-Za-z0-9])(?![A-Za-z0-9])", output):
        if match.group(1) in wanted:
            return match.group(1)
    return None


def evaluate_language_model(
    model: LanguageModel,
    questions: Sequence[ArcQuestion],
    template: str = PROMPT_TEMPLATE,
    max_tokens: int = 4,
    batch_size: int = 16,
    confidence: float = 0.95,
    seed: int = 0,
    name: str = "language model",
) -> ArcEvaluation:
    """Ask ``model`` (any :class:`LanguageModel` backend) every question zero-shot, greedily, and
    score the label its output names (module docstring); prompts and raw outputs are kept."""
    if not callable(getattr(model, "complete", None)):
        raise TypeError(f"model must be a LanguageModel (with complete()), got {type(model).__name__}")
    questions = _check_questions(questions)
    check_int("max_tokens", max_tokens)
    check_int("batch_size", batch_size)
    prompts = [format_prompt(q, template) for q in questions]
    outputs: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        completions = model.complete(batch, max_tokens=max_tokens, temperature=0.0, n=1, stop=["\n"])
        if len(completions) != len(batch):
            raise ValueError(f"model returned {len(completions)} completion lists for {len(batch)} prompts")
        outputs += [c[0].text for c in completions]
    chosen = []
    for q, output in zip(questions, outputs):
        label = parse_label(output, q.labels)
        chosen.append([] if label is None else [label])
    points = np.array([question_points(c, q.answer_key) for c, q in zip(chosen, questions)])
    return ArcEvaluation(
        system=name,
        subset=_subset_name(questions),
        ids=[q.id for q in questions],
        chosen=chosen,
        points=points,
        interval=score_interval(points, confidence, seed),
        chance=guess_all_score(questions),
        prompts=prompts,
        outputs=outputs,
    )
