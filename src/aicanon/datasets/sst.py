"""The Stanford Sentiment Treebank (Socher et al. 2013) in its PTB tree files (``sst``: train.txt,
dev.txt, test.txt; 8,544 / 1,101 / 2,210 sentences).

Each line is one sentence as a binarised parse tree ``(3 (2 The) (4 (3 gorgeously) ...))`` whose
every node carries a sentiment from 0 (very negative) to 4 (very positive); the root's is the
sentence's. :func:`load_sst` returns the sentences (leaves joined by spaces, PTB tokenisation as
stored) with their root labels; :func:`load_sst_binary` the usual binary task (0-1 negative, 3-4
positive, neutral 2 dropped: 6,920 / 872 / 1,821 sentences).

The trees themselves (Tree-LSTM trains on a label at every node): :func:`parse_tree` reads one line
into an :class:`SSTTree` (its nodes in post-order, children before their parent, the root last; each
with its label, its children and, at a leaf, its word), :func:`load_sst_trees` reads a split. A
malformed line raises ``ValueError`` naming the line (and the file and line number when read from a
split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from aicanon.core.data import fetch

__all__ = ["SPLITS", "SSTTree", "load_sst", "load_sst_binary", "load_sst_trees", "parse_tree"]

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


# ---------------------------------------------------------------------------------------------
# The trees: every node's label, for models that learn from all of them (Tree-LSTM, Section 5.1).

# Words are split at ASCII white space only: one SST word holds a no-break space ("8\xa01\/2").
_TOKEN = re.compile(r"\(|\)|[^ \t\r\n\f\v()]+")


@dataclass(frozen=True)
class SSTTree:
    """One sentence's parse tree with a sentiment (0..4) at every node.

    Nodes are numbered in post-order: every child comes before its parent and the root is the last
    node. ``words[i]`` is the word at leaf ``i`` (``None`` at an inner node); ``children[i]`` lists
    node ``i``'s children from left to right (empty at a leaf). The SST files are binarised, so an
    inner node has two children, but the reader accepts any number.
    """

    labels: tuple[int, ...]
    children: tuple[tuple[int, ...], ...]
    words: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def root(self) -> int:
        """Index of the root node (the last one)."""
        return len(self.labels) - 1

    @property
    def label(self) -> int:
        """The sentence's sentiment: the root's label."""
        return self.labels[-1]

    @property
    def tokens(self) -> list[str]:
        """The sentence: the leaves' words from left to right (post-order keeps their order)."""
        return [w for w in self.words if w is not None]

    def depth(self) -> int:
        """Edges on the longest root-to-leaf path (0 for a one-word sentence)."""
        height = [0] * len(self)
        for node, kids in enumerate(self.children):
            if kids:
                height[node] = 1 + max(height[k] for k in kids)
        return height[-1]


def _malformed(line: str, why: str) -> ValueError:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return ValueError(f"malformed SST tree line {shown!r}: {why}")


def parse_tree(line: str) -> SSTTree:
    """Parse one PTB-style line ``(3 (2 The) (4 (3 gorgeously) ...))`` into an :class:`SSTTree`.

    A node is ``(LABEL WORD)`` (a leaf) or ``(LABEL NODE NODE ...)``; LABEL is one digit 0-4. Raises
    ``ValueError`` naming the line and what is wrong with it (unbalanced brackets, a missing or bad
    label, a word beside child nodes, text after the root).
    """
    if not isinstance(line, str):
        raise TypeError(f"line must be a str, got {type(line).__name__}")
    tokens = _TOKEN.findall(line)
    if not tokens:
        raise _malformed(line, "it is empty")
    labels: list[int] = []
    children: list[tuple[int, ...]] = []
    words: list[str | None] = []
    # One frame per open node: [label, child indices, word]. Iterative, so deep trees need no recursion.
    stack: list[list] = []
    position = 0
    finished = False
    while position < len(tokens):
        token = tokens[position]
        if finished:
            raise _malformed(line, f"text after the root's closing bracket: {token!r}")
        if token == "(":
            if position + 1 >= len(tokens) or tokens[position + 1] in "()":
                raise _malformed(line, "a node must start with its label, '(' is followed by no label")
            label = tokens[position + 1]
            if not (len(label) == 1 and label in "01234"):
                raise _malformed(line, f"labels are one digit 0-4, got {label!r}")
            if stack and stack[-1][2] is not None:
                raise _malformed(line, f"a node holds a word ({stack[-1][2]!r}) and a child node")
            stack.append([int(label), [], None])
            position += 2
        elif token == ")":
            if not stack:
                raise _malformed(line, "a ')' closes no open node")
            label, kids, word = stack.pop()
            if not kids and word is None:
                raise _malformed(line, "a node has neither a word nor children")
            index = len(labels)
            labels.append(label)
            children.append(tuple(kids))
            words.append(word)
            if stack:
                stack[-1][1].append(index)
            else:
                finished = True
            position += 1
        else:
            if not stack:
                raise _malformed(line, f"text outside the tree: {token!r}")
            frame = stack[-1]
            if frame[1]:
                raise _malformed(line, f"a node holds child nodes and a word ({token!r})")
            if frame[2] is not None:
                raise _malformed(line, f"a leaf holds one word, got a second one ({token!r})")
            frame[2] = token
            position += 1
    if stack:
        raise _malformed(line, f"{len(stack)} node(s) left open (missing ')')")
    return SSTTree(tuple(labels), tuple(children), tuple(words))


def load_sst_trees(split: str) -> list[SSTTree]:
    """Every tree of one split (8,544 / 1,101 / 2,210), in file order; blank lines are skipped."""
    if split not in SPLITS:
        raise ValueError(f"split must be train, dev or test, got {split!r}")
    trees = []
    path = fetch("sst", f"{split}.txt")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            trees.append(parse_tree(line))
        except ValueError as error:
            raise ValueError(f"{path.name}, line {number}: {error}") from error
    return trees
