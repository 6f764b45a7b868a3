"""ARC retrieval: our sparse TF-IDF/BM25 index against scikit-learn's TfidfVectorizer cosine and a
naive Python scan, on the same corpus (ARC training questions + answers) and queries (question +
option of the Challenge dev set), in one process.

Timed: indexing the corpus and scoring every query against every sentence. TF-IDF scores are
checked equal to scikit-learn's first (a benchmark of two different functions means nothing), BM25
scores equal to the naive scan's on the queries it has time for.
"""

from __future__ import annotations

import argparse
import math
import warnings

import _timing
import numpy as np

from aicanon.datasets.arc import SUBSETS, load_arc
from aicanon.evals.arc import SentenceIndex, content_words


def naive_bm25(
    docs: list[list[str]], queries: list[list[str]], k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    """BM25 one sentence and one query token at a time (dictionary lookups, no matrices)."""
    df: dict[str, int] = {}
    for doc in docs:
        for term in set(doc):
            df[term] = df.get(term, 0) + 1
    n, average = len(docs), sum(map(len, docs)) / len(docs)
    counts = [{t: doc.count(t) for t in set(doc)} for doc in docs]
    out = np.zeros((len(queries), len(docs)))
    for i, query in enumerate(queries):
        for j, (doc, tf) in enumerate(zip(docs, counts)):
            norm = k1 * (1 - b + b * len(doc) / average)
            for term in query:
                f = tf.get(term, 0)
                if f:
                    out[i, j] += math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5)) * f / (f + norm)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=5, device="cpu")
    warnings.filterwarnings("ignore")
    from sklearn.feature_extraction.text import TfidfVectorizer

    corpus = [f"{q.stem} {q.answer}" for s in SUBSETS for q in load_arc(s, "train")]
    queries = [f"{q.stem} {c}" for q in load_arc("Challenge", "dev") for c in q.choices]
    _timing.print_setup(args, "median", f"index {len(corpus)} sentences + score {len(queries)} queries")

    def ours_tfidf():
        return SentenceIndex(corpus, weighting="tfidf").scores(queries)

    def sklearn_tfidf():
        vectorizer = TfidfVectorizer(analyzer=content_words).fit(corpus)
        return vectorizer.transform(queries) @ vectorizer.transform(corpus).T

    difference = abs(ours_tfidf() - sklearn_tfidf()).max()
    timings = _timing.time_alternately({"ours": ours_tfidf, "sklearn": sklearn_tfidf}, args.repeats)
    _timing.print_comparison("TF-IDF cosine", timings, "median", note=f"max |diff| {difference:.1e}")

    few = queries[:40]
    docs, tokenized = [content_words(s) for s in corpus], [content_words(q) for q in few]
    difference = np.abs(SentenceIndex(corpus).scores(few).toarray() - naive_bm25(docs, tokenized)).max()
    timings = _timing.time_alternately(
        {
            "ours": lambda: SentenceIndex(corpus).scores(few),
            "naive": lambda: naive_bm25([content_words(s) for s in corpus], [content_words(q) for q in few]),
        },
        max(1, args.repeats // 2),
    )
    _timing.print_comparison(
        f"BM25, {len(few)} queries", timings, "median", note=f"max |diff| {difference:.1e}"
    )


if __name__ == "__main__":
    main()
