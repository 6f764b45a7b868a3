"""aicanon.language.beam_search: Eq. 14 scoring, exhaustive-search agreement, pruning, bad input."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest
import torch

from aicanon.language.beam_search import beam_search, coverage_penalty, greedy_search, length_penalty
from aicanon.language.gnmt import GNMT, GNMTConfig

pytestmark = pytest.mark.paper("gnmt")

BOS, EOS = 2, 3


@dataclass
class _State:
    prefixes: list[tuple[int, ...]]

    def index_select(self, index: torch.Tensor) -> _State:
        return _State([self.prefixes[i] for i in index.tolist()])


class TableModel:
    """A decoder whose next-token distribution and attention are looked up by prefix (tokens after [BOS])."""

    def __init__(
        self, table: dict[tuple[int, ...], tuple[dict[int, float], list[float]]], vocab: int, source_len: int
    ):
        self.table, self.vocab, self.source_len = table, vocab, source_len

    def encode(self, source):
        return _State([()] * source.size(0))

    def decode_step(self, state, tokens):
        prefixes = [p if t == BOS else p + (t,) for p, t in zip(state.prefixes, tokens.tolist())]
        log_probs = torch.full((len(prefixes), self.vocab), -1e9)
        attention = torch.full((len(prefixes), self.source_len), 1.0 / self.source_len)
        for row, prefix in enumerate(prefixes):
            if prefix in self.table:
                probs, attn = self.table[prefix]
                for token, p in probs.items():
                    log_probs[row, token] = math.log(p)
                attention[row] = torch.tensor(attn)
        return log_probs, attention, _State(prefixes)


def _short_or_long() -> TableModel:
    # [EOS] at once (p 0.5) against "4 5 [EOS]" (0.5 * 0.8 * 0.8 = 0.32): plain search takes the empty
    # translation; lp with alpha = 2 prefers the longer one (-1.139 / ((5+3)/6)^2 = -0.641 > -0.693).
    uniform = [0.5, 0.5]
    table = {
        (): ({EOS: 0.5, 4: 0.5}, uniform),
        (4,): ({5: 0.8, EOS: 0.2}, uniform),
        (4, 5): ({EOS: 0.8, 4: 0.2}, uniform),
        (4, 5, 4): ({EOS: 1.0}, uniform),
    }
    return TableModel(table, 6, 2)


def test_length_and_coverage_penalties_golden():
    assert length_penalty(1, 0.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(3, 0.2) == pytest.approx((8 / 6) ** 0.2)
    coverage = torch.tensor([[0.5, 2.0, 0.25], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    expected = torch.tensor([0.2 * (math.log(0.5) + math.log(0.25)), 0.0])
    assert torch.allclose(coverage_penalty(coverage, mask, 0.2), expected)
    assert torch.equal(coverage_penalty(coverage, mask, 0.0), torch.zeros(2))


def test_length_normalisation_prefers_the_longer_translation():
    model, source = _short_or_long(), torch.tensor([[7, 8]])
    plain = beam_search(model, source, bos_id=BOS, eos_id=EOS, beam_size=2)[0]
    assert plain.tokens == [] and plain.log_prob == pytest.approx(math.log(0.5))
    normalised = beam_search(model, source, bos_id=BOS, eos_id=EOS, beam_size=2, alpha=2.0)[0]
    assert normalised.tokens == [4, 5]
    log_p = math.log(0.5 * 0.8 * 0.8)
    assert normalised.log_prob == pytest.approx(log_p)
    assert normalised.score == pytest.approx(log_p / ((5 + 3) / 6) ** 2.0)


def test_coverage_penalty_prefers_the_translation_that_covers_the_source():
    # Two equally probable translations; after "4" the model attends only to source word 1.
    table = {
        (): ({4: 0.5, 5: 0.5}, [0.5, 0.5]),
        (4,): ({EOS: 1.0}, [1.0, 0.0]),
        (5,): ({EOS: 1.0}, [0.5, 0.5]),
    }
    # coverage of "4 [EOS]": (1.5, 0.5) -> cp = log 0.5; of "5 [EOS]": (1.0, 1.0) -> cp = 0.
    model, source = TableModel(table, 6, 2), torch.tensor([[7, 8]])
    covered = beam_search(model, source, bos_id=BOS, eos_id=EOS, beam_size=2, beta=1.0)[0]
    assert covered.tokens == [5] and covered.score == pytest.approx(math.log(0.5) + 0.0)
    plain = beam_search(model, source, bos_id=BOS, eos_id=EOS, beam_size=2)[0]
    assert plain.score == pytest.approx(math.log(0.5))


def _tiny_gnmt(seed: int = 0) -> GNMT:
    torch.manual_seed(seed)
    config = GNMTConfig(
        source_vocab_size=9, target_vocab_size=6, hidden_size=8, encoder_layers=2, decoder_layers=2,
        dropout=0.0, init_scale=1.0,
    )  # fmt: skip
    return GNMT(config).eval()


def _eq14(model: GNMT, source: torch.Tensor, tokens: list[int], finished: bool, alpha: float, beta: float):
    """Eq. 14 of one output sequence by teacher forcing (``tokens`` without [EOS])."""
    sequence = tokens + ([EOS] if finished else [])
    decoder_input = torch.tensor([[BOS] + sequence[:-1]])
    with torch.no_grad():
        logits, attention = model(source, decoder_input, return_attention=True)
    log_p = logits.log_softmax(-1)[0, torch.arange(len(sequence)), torch.tensor(sequence)].sum().item()
    coverage = attention[0].sum(dim=0, keepdim=True)
    penalty = coverage_penalty(coverage, source != 0, beta).item()
    return log_p / length_penalty(len(sequence), alpha) + penalty


@pytest.mark.parametrize("alpha,beta", [(0.0, 0.0), (0.6, 0.0), (0.2, 0.4), (1.0, 1.0)])
def test_a_wide_beam_finds_the_exhaustive_optimum_of_eq14(alpha, beta):
    model, source = _tiny_gnmt(), torch.tensor([[4, 5, 6, 0]])
    max_length, vocab = 3, 6
    best = beam_search(
        model, source, bos_id=BOS, eos_id=EOS, beam_size=400, alpha=alpha, beta=beta, max_length=max_length
    )[0]
    candidates = []
    for length in range(0, max_length + 1):
        for tokens in itertools.product([t for t in range(vocab) if t != EOS], repeat=length):
            if length < max_length:
                candidates.append((list(tokens), True))
            else:
                candidates.append((list(tokens), False))
    scores = {(tuple(t), f): _eq14(model, source, t, f, alpha, beta) for t, f in candidates}
    optimum = max(scores, key=scores.get)
    assert (tuple(best.tokens), best.finished) == optimum
    assert best.score == pytest.approx(scores[optimum], abs=1e-4)


def test_beam_of_one_is_greedy_search_whatever_alpha_and_beta():
    model = _tiny_gnmt(1)
    source = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0], [5, 0, 0, 0]])
    greedy = greedy_search(model, source, bos_id=BOS, eos_id=EOS, max_length=6)
    for alpha, beta in [(0.0, 0.0), (0.2, 0.2), (1.0, 0.6)]:
        hypotheses = beam_search(
            model, source, bos_id=BOS, eos_id=EOS, beam_size=1, alpha=alpha, beta=beta, max_length=6
        )
        assert [h.tokens for h in hypotheses] == greedy


def test_batched_search_equals_one_sentence_at_a_time():
    model = _tiny_gnmt(2)
    source = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0], [5, 0, 0, 0]])
    together = beam_search(
        model, source, bos_id=BOS, eos_id=EOS, beam_size=3, alpha=0.4, beta=0.2, max_length=6
    )
    for row, hypothesis in enumerate(together):
        single = source[row : row + 1, : int((source[row] != 0).sum())]
        alone = beam_search(
            model, single, bos_id=BOS, eos_id=EOS, beam_size=3, alpha=0.4, beta=0.2, max_length=6
        )[0]
        assert alone.tokens == hypothesis.tokens and alone.score == pytest.approx(hypothesis.score, abs=1e-5)


def test_pruning_keeps_the_best_translation_when_the_margin_is_wide():
    model, source = _tiny_gnmt(3), torch.tensor([[4, 5, 6, 7]])
    unpruned = beam_search(
        model, source, bos_id=BOS, eos_id=EOS, beam_size=4, alpha=0.2, beta=0.2, max_length=5
    )[0]
    wide = beam_search(
        model,
        source,
        bos_id=BOS,
        eos_id=EOS,
        beam_size=4,
        alpha=0.2,
        beta=0.2,
        max_length=5,
        score_margin=1e6,
    )[0]
    assert wide.tokens == unpruned.tokens
    # A margin that leaves only the locally best token at each step is greedy search.
    narrow = beam_search(model, source, bos_id=BOS, eos_id=EOS, beam_size=4, max_length=5, score_margin=1e-9)[
        0
    ]
    assert narrow.tokens == greedy_search(model, source, bos_id=BOS, eos_id=EOS, max_length=5)[0]


def test_bad_input():
    model, source = _tiny_gnmt(), torch.tensor([[4, 5]])
    with pytest.raises(ValueError, match="beam_size must be >= 1, got 0"):
        beam_search(model, source, bos_id=BOS, eos_id=EOS, beam_size=0)
    with pytest.raises(ValueError, match="alpha must be finite and >= 0, got -0.1"):
        beam_search(model, source, bos_id=BOS, eos_id=EOS, alpha=-0.1)
    with pytest.raises(ValueError, match="score_margin must be > 0"):
        beam_search(model, source, bos_id=BOS, eos_id=EOS, score_margin=0.0)
    with pytest.raises(ValueError, match="source must be a 2-D tensor"):
        beam_search(model, torch.tensor([4, 5]), bos_id=BOS, eos_id=EOS)
    with pytest.raises(TypeError, match="source must be a torch.int64 or torch.int32 tensor"):
        greedy_search(model, source.float(), bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match="max_length must be >= 1 or None, got 0"):
        greedy_search(model, source, bos_id=BOS, eos_id=EOS, max_length=0)
