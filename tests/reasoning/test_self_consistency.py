"""Self-consistency's aggregation rules (Table 1) on hand-computed paths, the sampling call on a
scripted model and on a real (tiny) local model, and bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicanon.language.completion import Completion
from aicanon.reasoning.self_consistency import (
    AGGREGATIONS,
    aggregate,
    path_probability,
    sample_reasoning_paths,
    self_consistency,
)
from aicanon.testbeds.arithmetic_lm import ArithmeticLMConfig, arithmetic_language_model

pytestmark = pytest.mark.paper("self-consistency")

TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}


def path(text: str, logprobs: tuple[float, ...]) -> Completion:
    return Completion(text, "stop", tuple("x" for _ in logprobs), logprobs)


def test_path_probability_is_eq1_normalised_or_the_sequence_probability():
    p = path("The answer is 3.", (-1.0, -3.0))
    assert path_probability(p) == pytest.approx(math.exp(-2.0))
    assert path_probability(p, normalized=False) == pytest.approx(math.exp(-4.0))
    assert path_probability(path("", ())) == 1.0


def test_majority_vote_and_the_weighted_rules_on_hand_computed_paths():
    answers = ["7", "7", "9"]
    # sequence probabilities 0.3, 0.3, 0.5 (one token each)
    paths = [path("", (math.log(0.3),)), path("", (math.log(0.3),)), path("", (math.log(0.5),))]
    assert aggregate(answers) == ("7", {"7": 2.0, "9": 1.0})
    answer, scores = aggregate(answers, paths, "unnormalized_weighted_sum")
    assert answer == "7" and scores == pytest.approx({"7": 0.6, "9": 0.5})
    answer, scores = aggregate(answers, paths, "unnormalized_weighted_average")
    assert answer == "9" and scores == pytest.approx({"7": 0.3, "9": 0.5})
    # normalisation by length: a long likely path vs a short less likely one
    long_a = path("", (-0.1,) * 10)  # normalised e^-0.1 = 0.905, sequence e^-1 = 0.368
    short_b = path("", (-0.5,))  # both e^-0.5 = 0.607
    assert aggregate(["a", "b"], [long_a, short_b], "normalized_weighted_sum")[0] == "a"
    assert aggregate(["a", "b"], [long_a, short_b], "unnormalized_weighted_sum")[0] == "b"
    assert aggregate(["a", "b"], [long_a, short_b], "normalized_weighted_average")[0] == "a"


def test_unparsed_paths_do_not_vote_and_ties_go_to_the_first_answer():
    assert aggregate([None, "4", "5", None]) == ("4", {"4": 1.0, "5": 1.0})
    assert aggregate([None, None]) == (None, {})
    paths = [path("", (-1.0,)), path("", (-1.0,))]
    for rule in AGGREGATIONS:
        assert aggregate([None, None], paths, rule)[0] is None
        assert aggregate(["2", "1"], paths, rule)[0] == "2"


@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=30))
def test_equal_path_probabilities_make_every_sum_rule_a_majority_vote(answers):
    paths = [path("", (-0.7,)) for _ in answers]
    winner, counts = aggregate(answers)
    for rule in ("unnormalized_weighted_sum", "normalized_weighted_sum"):
        assert aggregate(answers, paths, rule)[0] == winner
    if winner is not None:
        assert counts[winner] == max(counts.values()) == max(answers.count(a) for a in counts)


class Scripted:
    """A LanguageModel that returns fixed texts and records its calls."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.calls = texts, []

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        self.calls.append((list(prompts), max_tokens, temperature, n, stop))
        return [[path(self.texts[i % len(self.texts)], (-1.0,)) for i in range(n)] for _ in prompts]


def test_self_consistency_samples_all_paths_in_one_call_and_votes():
    model = Scripted(["3 + 4 = 7. The answer is 7.", "3 + 4 = 8. The answer is 8.", "The answer is 7."])
    results = self_consistency(model, ["Q: a\nA:", "Q: b\nA:"], k=5, temperature=0.5, max_tokens=20)
    assert len(model.calls) == 1 and model.calls[0][1:4] == (20, 0.5, 5)
    assert [r.answer for r in results] == ["7", "7"]
    assert results[0].answers == ("7", "8", "7", "7", "8") and len(results[0].paths) == 5
    assert results[0].scores == {"7": 3.0, "8": 2.0}


def test_top_k_reaches_the_model_only_when_set():
    class WithTopK(Scripted):
        def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None, top_k=None):
            self.top_k = top_k
            return super().complete(prompts, max_tokens, temperature, n, stop)

    model = WithTopK(["The answer is 7."])
    self_consistency(model, ["Q: a\nA:"], k=3, temperature=0.5, top_k=40)
    assert model.top_k == 40
    # A model written before the protocol's top_k (Scripted takes none) still runs without it...
    self_consistency(Scripted(["The answer is 7."]), ["Q: a\nA:"], k=3)
    # ... and asking it for top-k truncation it cannot do is an error, not a silent drop.
    with pytest.raises(TypeError, match="top_k"):
        self_consistency(Scripted(["The answer is 7."]), ["Q: a\nA:"], k=3, top_k=40)
    with pytest.raises(ValueError, match="top_k"):
        self_consistency(model, ["Q: a\nA:"], k=3, top_k=0)


def test_sampling_a_real_local_model_gives_k_scored_paths_and_repeats_with_its_seed(tmp_path):
    cfg = ArithmeticLMConfig(**TINY)
    first = arithmetic_language_model(cfg, cache=tmp_path, seed=3)
    paths = sample_reasoning_paths(first, ["Q: Ann has 3 cats.\nA:"], 4, temperature=1.0, max_tokens=8)
    assert len(paths) == 1 and len(paths[0]) == 4
    assert all(p.token_logprobs is not None and len(p.token_logprobs) == len(p.tokens) for p in paths[0])
    assert all(0.0 < path_probability(p) <= 1.0 for p in paths[0])
    again = arithmetic_language_model(cfg, cache=tmp_path, seed=3)
    repeat = sample_reasoning_paths(again, ["Q: Ann has 3 cats.\nA:"], 4, temperature=1.0, max_tokens=8)
    assert [p.text for p in repeat[0]] == [p.text for p in paths[0]]
    results = self_consistency(
        again, ["Q: Ann has 3 cats.\nA:"], k=3, max_tokens=8, method="normalized_weighted_sum"
    )
    assert len(results[0].paths) == 3


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="method must be one of"):
        aggregate(["1"], method="mode")
    with pytest.raises(ValueError, match="needs paths, one per answer"):
        aggregate(["1", "2"], [path("", (-1.0,))], "normalized_weighted_sum")
    with pytest.raises(ValueError, match="no token_logprobs"):
        aggregate(["1"], [Completion("x")], "normalized_weighted_sum")
    with pytest.raises(TypeError, match="answers must be a list"):
        aggregate("12")
    with pytest.raises(TypeError, match="completion must be a Completion"):
        path_probability("The answer is 3.")
    with pytest.raises(ValueError, match="k must be"):
        self_consistency(Scripted(["1"]), ["Q"], k=0)
    with pytest.raises(TypeError, match="model must be a LanguageModel"):
        sample_reasoning_paths(object(), ["Q"], 2)
    with pytest.raises(TypeError, match="extract must be a callable"):
        self_consistency(Scripted(["1"]), ["Q"], k=2, extract="last")
