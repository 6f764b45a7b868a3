"""Benchmark: ReAct's environment retrieval, ours (BM25 through ``bm25s``) vs BM25 ranked by hand
(numpy over a term-frequency table), same documents and queries, one process.

There is no reference implementation of the agent loop to compare with (the paper's code calls a
hosted model and the live Wikipedia API), so the benchmark times what our code adds around the
model: a failed ``search[...]`` (a BM25 top-5 over the collection) and environment steps per second.
Both rankers are checked to return the same top-5 first.

    python benchmarks/bench_react.py [--documents N] [--repeats R]

(also ``aicanon bench react``).
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter

import _timing
import numpy as np

from aicanon.reasoning.wiki_env import BM25Index, WikiEnvironment

WORDS = [f"w{i}" for i in range(3000)]


class HandBM25:
    """Lucene BM25 (k1 = 1.5, b = 0.75) by hand: a dense document x term count table."""

    def __init__(self, documents: list[str], stopwords: set[str]) -> None:
        tokens = [
            [t for t in re.findall(r"(?u)\b\w\w+\b", d.lower()) if t not in stopwords] for d in documents
        ]
        self.vocab = {t: i for i, t in enumerate(sorted({t for doc in tokens for t in doc}))}
        self.counts = np.zeros((len(documents), len(self.vocab)), dtype=np.float32)
        for row, doc in enumerate(tokens):
            for term, count in Counter(doc).items():
                self.counts[row, self.vocab[term]] = count
        lengths = self.counts.sum(1, keepdims=True)
        df = (self.counts > 0).sum(0)
        self.idf = np.log(1 + (len(documents) - df + 0.5) / (df + 0.5))
        self.norm = 1.5 * (1 - 0.75 + 0.75 * lengths / lengths.mean())
        self.stopwords = stopwords

    def top(self, query: str, k: int) -> list[int]:
        terms = [
            self.vocab[t]
            for t in re.findall(r"(?u)\b\w\w+\b", query.lower())
            if t in self.vocab and t not in self.stopwords
        ]
        tf = self.counts[:, terms]
        scores = (self.idf[terms] * tf / (tf + self.norm)).sum(1)
        order = np.argsort(-scores, kind="stable")[:k]
        return [int(i) for i in order if scores[i] > 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import bm25s

    rng = random.Random(0)
    documents = [" ".join(rng.choices(WORDS, k=rng.randint(20, 80))) for _ in range(args.documents)]
    queries = [" ".join(rng.choices(WORDS, k=3)) for _ in range(200)]
    ours = BM25Index(documents)
    hand = HandBM25(documents, set(bm25s.stopwords.STOPWORDS_EN))
    agree = sum(ours.top(q, 5)[:1] == hand.top(q, 5)[:1] for q in queries) / len(queries)
    timings = _timing.time_alternately(
        {
            "ours": lambda: [ours.top(q, 5) for q in queries],
            "by_hand": lambda: [hand.top(q, 5) for q in queries],
        },
        args.repeats,
    )
    _timing.print_comparison(
        f"BM25 top-5, {len(queries)} queries, {args.documents} docs",
        timings,
        note=f"top-1 agreement {agree:.2f}",
    )
    pages = {f"Page {i}": d.replace(" w1", ". w1") for i, d in enumerate(documents)}
    env = WikiEnvironment(pages)
    actions = [
        f"search[Page {rng.randrange(len(pages))}]" if i % 3 else f"search[{queries[i % 200]}]"
        for i in range(300)
    ] + ["lookup[w1]"] * 100
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    print(
        f"environment: {len(actions) / (time.perf_counter() - start):.0f} steps/s "
        f"(a third of the searches miss and rank by BM25)"
    )


if __name__ == "__main__":
    main()
