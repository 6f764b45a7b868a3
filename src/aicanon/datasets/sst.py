"""The Stanford Sentiment Treebank (Socher et al. 2013) in its PTB tree files (``sst``: train.txt,
dev.txt, test.txt; 8,544 / 1,101 / 2,210 sentences).

Each line is one sentence as a binarised parse tree ``(3 (2 The) (4 (3 gorgeously) ...))`` whose
every node carries a sentiment from 0 (very negative) to 4 (very positive); the root's is the
sentence's. :func:`load_sst` returns the sentences (leaves joined by spaces, PTB tokenisation as
stored) with their root labels; :func:`load_sst_binary` the usual binary task (0-1 negative, 3-4
positive, neutral 2 dropped: 6,920 / 872 / 1,821 sentences).
"""

from __future__ import annotations

import re

import numpy as np

from aicanon.core.data import fetch

__all__ = ["SPLITS", "load_sst", "load_sst_binary"]

SPLITS = ("train", "dev", "test")
_LEAF = re.compile(r"\(\d ([^()]+)\)")


def load_sst(split: str) -> tuple[list[str], np.ndarray]:
    """Sentences and their root sentiment (int 0..4) of one split."""
    if split not in SPLITS:
        raise ValueError(f"split must be train, dev or test, got {split!r}")
    texts, labels = [], []
    for line in fetch("sst", f"{split}.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        texts.append(" ".join(_LEAF.findall(line)))
        labels.append(int(line[1]))  # "(3 (2 ...": the root's sentiment
    return texts, np.array(labels, dtype=np.int64)


def load_sst_binary(split: str, lowercase: bool = True) -> tuple[list[str], np.ndarray]:
    """The binary task: sentences with root 0-1 (label 0) or 3-4 (label 1); neutral ones dropped."""
    texts, labels = load_sst(split)
    keep = labels != 2
    chosen = [t.lower() if lowercase else t for t, k in zip(texts, keep, strict=True) if k]
    return chosen, (labels[keep] > 2).astype(np.int64)
