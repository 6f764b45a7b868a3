"""aicanon.testbeds.sentiment: the ground-truth sentiment reward, prompts, completions and pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aicanon.datasets.sst import load_sst, load_sst_binary
from aicanon.datasets.text import CharTokenizer
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.testbeds.sentiment import (
    PreferencePair,
    SentimentScorer,
    preference_pairs,
    sample_completions,
    sentiment_prompts,
    train_sentiment_scorer,
)

pytestmark = pytest.mark.paper("dpo")


@pytest.fixture(scope="module")
def scorer():
    return train_sentiment_scorer(seed=0)


def test_scorer_is_a_sentiment_classifier_on_held_out_sentences(scorer):
    texts, labels = load_sst_binary("dev")
    accuracy = float(((scorer(texts) > 0).long().numpy() == labels).mean())
    assert accuracy >= 0.75  # dev is 51 % positive: chance is about 0.5
    untrained = SentimentScorer(scorer.vocabulary)
    assert float(((untrained(texts) > 0).long().numpy() == labels).mean()) < 0.55
    good, bad = scorer(["a moving , funny and beautiful film", "a dull , tedious and boring mess"])
    assert good > 0 > bad


def test_scorer_golden_values_count_presence_and_ignore_unknown_words(scorer):
    hand = SentimentScorer(["great", "film", "great film", "dull"])
    with torch.no_grad():
        hand.weight.weight.copy_(torch.tensor([[2.0], [0.5], [1.0], [-3.0]]))
        hand.bias.fill_(-0.25)
    # "a great film": great + film + "great film" + bias; repeats and unknown words add nothing.
    expected = torch.tensor([3.25, 3.25, -3.25, -0.25])
    got = hand(["a great film", "A GREAT film great film zzz", "dull", "zzqx"])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(hand.prob(["dull"]), torch.sigmoid(torch.tensor([-3.25])))
    indices, offsets = hand.encode(["great great", ""])
    assert indices.tolist() == [0] and offsets.tolist() == [0, 1]


def test_prompts_are_distinct_sentence_prefixes():
    prompts = sentiment_prompts(50, min_words=2, max_words=4, seed=3)
    assert len(set(prompts)) == 50
    sentences = [s.lower() for s in load_sst("train")[0]]
    for prompt in prompts[:10]:
        assert prompt.endswith(" ") and 2 <= len(prompt.split()) <= 4
        assert any(s.startswith(prompt) for s in sentences)
    assert sentiment_prompts(50, seed=3) == sentiment_prompts(50, seed=3) != sentiment_prompts(50, seed=4)


@pytest.fixture(scope="module")
def tiny_lm():
    tokenizer = CharTokenizer("abc \n")
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=5, hidden_size=16, intermediate_size=24, num_layers=1,
                              num_heads=2, max_seq_len=64))  # fmt: skip
    return model, tokenizer


def test_completions_are_k_per_prompt_cut_at_stop_and_seeded(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = ["ab ", "c", "abc a"]
    draw = lambda seed: sample_completions(
        model, tokenizer, prompts, 3, max_new_tokens=10, batch_size=4,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    out = draw(0)
    assert [len(c) for c in out] == [3, 3, 3]
    assert all("\n" not in t and len(t) <= 10 for c in out for t in c)
    assert out == draw(0) and out != draw(1)
    greedy = sample_completions(model, tokenizer, prompts, 2, max_new_tokens=10, temperature=0.0)
    assert all(c[0] == c[1] for c in greedy)
    # A left-padded batch gives each prompt the completion it gets alone (greedy).
    alone = [
        sample_completions(model, tokenizer, [p], 1, max_new_tokens=10, temperature=0.0)[0][0]
        for p in prompts
    ]
    assert [c[0] for c in greedy] == alone
    model.train()
    sample_completions(model, tokenizer, prompts[:1], 1, max_new_tokens=2)
    assert model.training
    model.eval()


def test_pairs_are_every_comparison_with_the_higher_reward_chosen():
    pairs = preference_pairs(["p", "q"], [["a", "b", "c"], ["x", "y"]], [[0.1, 0.5, 0.3], [2.0, 2.0]])
    assert len(pairs) == 3  # C(3,2) for p; the tie of q is dropped
    assert pairs[0] == PreferencePair("p", "b", "a", 0.5, 0.1)
    assert all(p.reward_chosen > p.reward_rejected for p in pairs)
    assert {(p.chosen, p.rejected) for p in pairs} == {("b", "a"), ("c", "a"), ("b", "c")}
    rng = np.random.default_rng(0)
    k = 5
    rewards = [rng.normal(size=k).tolist() for _ in range(4)]
    assert len(preference_pairs(["w"] * 4, [[str(i) for i in range(k)]] * 4, rewards)) == 4 * k * (k - 1) // 2


def test_bad_input(tiny_lm):
    model, tokenizer = tiny_lm
    with pytest.raises(ValueError, match="prompts, completions and rewards must have equal lengths"):
        preference_pairs(["p"], [["a"]], [])
    with pytest.raises(ValueError, match=r"completions\[0\] and rewards\[0\]"):
        preference_pairs(["p"], [["a", "b"]], [[1.0]])
    with pytest.raises(ValueError, match="prompts must be a non-empty list"):
        sample_completions(model, tokenizer, "abc", 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        sample_completions(model, tokenizer, ["a"], 0)
    with pytest.raises(ValueError, match="stop must be a single token"):
        sample_completions(model, tokenizer, ["a"], 1, stop="ab")
    with pytest.raises(ValueError, match="n must be >= 1"):
        sentiment_prompts(0)
    with pytest.raises(ValueError, match="max_words must be >= 3"):
        sentiment_prompts(5, min_words=3, max_words=2)
    with pytest.raises(ValueError, match="distinct prompts"):
        sentiment_prompts(10**6, split="dev")
    with pytest.raises(TypeError, match="texts must be a list of str"):
        SentimentScorer(["a"])("a film")
    with pytest.raises(ValueError, match="vocabulary must be a non-empty"):
        SentimentScorer([])
    with pytest.raises(TypeError, match="seed must be an int"):
        train_sentiment_scorer(seed=1.5)
