"""Corpus BLEU-4 (Papineni et al., 2002) with sacrebleu's defaults (Post, 2018): the metric of GNMT's
tables (Wu et al. 2016 report BLEU; we follow sacrebleu's standardised version).

For a corpus of hypotheses h and reference sets R (one or more references per sentence), with
every sentence tokenised by mteval-v13a's rules (:func:`tokenize_13a`):

    p_n = sum_h sum_{g in n-grams(h)} min(count_h(g), max_r count_r(g)) / sum_h |n-grams(h)|
    BP  = 1 if c >= r else exp(1 - r / c)            c: total hypothesis length,
                                                     r: total of the closest reference lengths
    BLEU = 100 * BP * exp(sum_{n=1}^{4} log(p_n) / 4)

The closest reference length of a sentence is the one nearest to its hypothesis length (the
shorter on a tie). As sacrebleu's default ("exp" smoothing, mteval's NIST method): an order with
no match at all gets p_n = 1 / (2^k * total_n), k counting the orders without matches so far; if
no n-gram of any order matches, BLEU is 0; an order with no n-gram in the hypotheses ends the
product there (its precision and those above stay 0, so BLEU is 0). Case-sensitive.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BleuScore", "corpus_bleu", "tokenize_13a"]

MAX_ORDER = 4

# mteval-v13a's language-independent rules (as sacrebleu's "13a"): pad most ASCII punctuation
# with spaces; periods and commas unless between digits; a dash after a digit.
_RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tokenize_13a(line: str) -> str:
    """Tokenise one segment as mteval-v13a (and sacrebleu's ``13a``) does; tokens joined by spaces."""
    if not isinstance(line, str):
        raise TypeError(f"line must be a str, got {type(line).__name__}")
    line = line.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def _ngrams(tokens: list[str]) -> Counter:
    counts: Counter = Counter()
    for n in range(1, MAX_ORDER + 1):
        for i in range(len(tokens) - n + 1):
            counts[tuple(tokens[i : i + n])] += 1
    return counts


@dataclass(frozen=True)
class BleuScore:
    """Corpus BLEU (0-100) and its parts: n-gram precisions (%), brevity penalty, lengths."""

    score: float
    precisions: tuple[float, ...]
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int
    correct: tuple[int, ...]
    total: tuple[int, ...]

    @property
    def length_ratio(self) -> float:
        """hypothesis_length / reference_length (below 1: translations too short)."""
        return self.hypothesis_length / self.reference_length if self.reference_length else float("nan")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> BleuScore:
    """BLEU of ``hypotheses`` (one string a sentence) against ``references``: a list of reference
    streams, each with one string per hypothesis (``[refs]`` for one reference a sentence), as
    ``sacrebleu.corpus_bleu(hypotheses, references)``."""
    if isinstance(hypotheses, str) or not all(isinstance(h, str) for h in hypotheses):
        raise TypeError("hypotheses must be a sequence of str (one per sentence)")
    if isinstance(references, str) or len(references) == 0:
        raise ValueError("references must be a non-empty list of reference streams (e.g. [refs])")
    for index, stream in enumerate(references):
        if isinstance(stream, str) or not all(isinstance(r, str) for r in stream):
            raise TypeError(f"references[{index}] must be a sequence of str, one per hypothesis")
        if len(stream) != len(hypotheses):
            raise ValueError(
                f"references[{index}] must hold one reference per hypothesis ({len(hypotheses)}), "
                f"got {len(stream)}"
            )
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    hypothesis_length = reference_length = 0
    for index, hypothesis in enumerate(hypotheses):
        tokens = tokenize_13a(hypothesis).split()
        reference_counts: Counter = Counter()
        lengths = []
        for stream in references:
            reference_tokens = tokenize_13a(stream[index]).split()
            lengths.append(len(reference_tokens))
            for gram, count in _ngrams(reference_tokens).items():
                reference_counts[gram] = max(reference_counts[gram], count)
        hypothesis_length += len(tokens)
        # The closest reference length; the shorter one on a tie.
        reference_length += min(lengths, key=lambda length: (abs(len(tokens) - length), length))
        for gram, count in _ngrams(tokens).items():
            total[len(gram) - 1] += count
            correct[len(gram) - 1] += min(count, reference_counts.get(gram, 0))
    return _score(correct, total, hypothesis_length, reference_length)


def _score(correct: list[int], total: list[int], hypothesis_length: int, reference_length: int) -> BleuScore:
    penalty = 1.0
    if hypothesis_length < reference_length:
        penalty = math.exp(1 - reference_length / hypothesis_length) if hypothesis_length > 0 else 0.0
    precisions = [0.0] * MAX_ORDER
    parts = (tuple(correct), tuple(total))
    if not any(correct):
        return BleuScore(0.0, tuple(precisions), penalty, hypothesis_length, reference_length, *parts)
    halvings = 1.0
    for n in range(MAX_ORDER):
        if total[n] == 0:
            break
        if correct[n] == 0:
            halvings *= 2  # exp smoothing (mteval's NIST smoothing)
            precisions[n] = 100.0 / (halvings * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    if any(p == 0.0 for p in precisions):
        score = 0.0
    else:
        score = penalty * math.exp(sum(math.log(p) for p in precisions) / MAX_ORDER)
    return BleuScore(score, tuple(precisions), penalty, hypothesis_length, reference_length, *parts)
