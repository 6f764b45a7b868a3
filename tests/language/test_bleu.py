"""aicanon.language.bleu: corpus BLEU-4 against hand-computed values and against sacrebleu."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.language.bleu import corpus_bleu, tokenize_13a

pytestmark = pytest.mark.paper("gnmt")


def test_identical_corpus_scores_100():
    sentences = ["a man rides a horse on the beach .", "two dogs play in the snow ."]
    result = corpus_bleu(sentences, [sentences])
    assert result.score == pytest.approx(100.0)
    assert result.brevity_penalty == 1.0 and result.length_ratio == 1.0


def test_hand_computed_value_with_brevity_penalty():
    # hypothesis "a b c d" against reference "a b c d e f": every n-gram matches, c = 4, r = 6.
    result = corpus_bleu(["a b c d"], [["a b c d e f"]])
    assert result.precisions == (100.0, 100.0, 100.0, 100.0)
    assert result.brevity_penalty == pytest.approx(math.exp(1 - 6 / 4))
    assert result.score == pytest.approx(100 * math.exp(1 - 6 / 4))


def test_exp_smoothing_and_zero_cases():
    # 3 unigrams, 2 bigrams, 1 trigram, no 4-gram in the hypothesis: BLEU is 0 (order 4 has no n-gram).
    assert corpus_bleu(["a b c"], [["a b c"]]).score == 0.0
    # no match at all: 0
    assert corpus_bleu(["x y z w v"], [["a b c d e"]]).score == 0.0
    # unigrams match, no higher order: p2 = 100/(2*4), p3 = 100/(4*3), p4 = 100/(8*2)
    result = corpus_bleu(["a c e g i"], [["a b c d e f g h i"]])
    assert result.precisions == pytest.approx((100.0, 100 / 8, 100 / 12, 100 / 16))
    assert result.brevity_penalty == pytest.approx(math.exp(1 - 9 / 5))
    # the empty hypothesis
    assert corpus_bleu([""], [["a b"]]).score == 0.0


def test_13a_tokenisation():
    assert tokenize_13a("Hello, world! It's 3.5-4 km.") == "Hello , world ! It's 3.5 - 4 km ."
    assert tokenize_13a("a&amp;b &quot;c&quot;") == 'a & b " c "'
    assert tokenize_13a("well-known (x)") == "well-known ( x )"


def test_closest_reference_length_prefers_the_shorter_on_a_tie():
    result = corpus_bleu(["a b c d e"], [["a b c d"], ["a b c d e f"]])
    assert result.reference_length == 4


_WORDS = [
    "a",
    "the",
    "man",
    "dog",
    "runs",
    ",",
    ".",
    "3.5",
    "-",
    "Ein",
    "Mann",
    "läuft",
    "(",
    ")",
    "&amp;",
    "it's",
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(0, 12))]
    glue = [rng.choice([" ", "", "  "]) for _ in words]
    return "".join(w + g for w, g in zip(words, glue))


@pytest.mark.parity
@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 12), st.integers(1, 3))
def test_matches_sacrebleu_on_random_corpora(seed, sentences, streams):
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = random.Random(seed)
    hypotheses = [_sentence(rng) for _ in range(sentences)]
    references = [[_sentence(rng) for _ in range(sentences)] for _ in range(streams)]
    # Mix in near-copies so that higher orders match too.
    references[0] = [h if rng.random() < 0.4 else r for h, r in zip(hypotheses, references[0])]
    ours = corpus_bleu(hypotheses, references)
    theirs = sacrebleu.corpus_bleu(hypotheses, references)
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert (ours.hypothesis_length, ours.reference_length) == (theirs.sys_len, theirs.ref_len)
    assert ours.brevity_penalty == pytest.approx(theirs.bp)


@pytest.mark.parity
def test_matches_sacrebleu_on_multi30k_sentences():
    sacrebleu = pytest.importorskip("sacrebleu")
    from aicanon.datasets.multi30k import load_multi30k

    pairs = load_multi30k("val")[:300]
    references = [t for _, t in pairs]
    rng = random.Random(0)
    hypotheses = [
        " ".join(rng.sample(r.split(), k=max(1, len(r.split()) - rng.randint(0, 3)))) for r in references
    ]
    ours, theirs = corpus_bleu(hypotheses, [references]), sacrebleu.corpus_bleu(hypotheses, [references])
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert list(ours.precisions) == pytest.approx(theirs.precisions, abs=1e-9)


def test_bad_input():
    with pytest.raises(TypeError, match="hypotheses must be a sequence of str"):
        corpus_bleu("a b", [["a b"]])
    with pytest.raises(ValueError, match="references must be a non-empty list"):
        corpus_bleu(["a"], [])
    with pytest.raises(
        ValueError, match=r"references\[0\] must hold one reference per hypothesis \(2\), got 1"
    ):
        corpus_bleu(["a", "b"], [["a"]])
    with pytest.raises(TypeError, match=r"references\[0\] must be a sequence of str"):
        corpus_bleu(["a"], ["a"])
    with pytest.raises(TypeError, match="line must be a str"):
        tokenize_13a(3)
