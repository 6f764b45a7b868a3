"""aicanon.evals.arena: Elo by hand, Bradley-Terry against scikit-learn's logistic regression (the
LMSYS notebook's fit), bootstrap intervals, the simulation, Kendall's tau, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from aicanon.evals.arena import (
    Battles,
    bootstrap_ratings,
    bradley_terry,
    expected_score,
    kendall_tau,
    online_elo,
    simulate_battles,
)

pytestmark = pytest.mark.paper("llm-judge-arena")


def test_expected_score_golden():
    assert expected_score(1000, 1000) == 0.5
    assert expected_score(1400, 1000) == pytest.approx(10 / 11)
    assert expected_score(1000, 1400) == pytest.approx(1 / 11)
    assert expected_score(1200, 1000, scale=200, base=math.e) == pytest.approx(1 / (1 + math.exp(-1)))


def test_online_elo_against_a_hand_computation():
    battles = Battles.from_records([("x", "y", "model_a"), ("y", "z", "tie"), ("x", "z", "model_b")])
    # Battle 1: both at 1000, E = 1/2: x 1002, y 998.
    x, y, z = 1002.0, 998.0, 1000.0
    # Battle 2: y (998) ties z (1000).
    e_y = 1 / (1 + 10 ** ((z - y) / 400))
    y, z = y + 4 * (0.5 - e_y), z + 4 * (0.5 - (1 - e_y))
    # Battle 3: z beats x.
    e_x = 1 / (1 + 10 ** ((z - x) / 400))
    x, z = x + 4 * (0 - e_x), z + 4 * (1 - (1 - e_x))
    assert online_elo(battles) == pytest.approx({"x": x, "y": y, "z": z}, abs=1e-12)
    assert sum(online_elo(battles).values()) == pytest.approx(3000)  # zero-sum updates


def test_online_elo_depends_on_the_order_bradley_terry_does_not():
    battles = simulate_battles({"a": 1100, "b": 1000, "c": 900}, 400, tie_rate=0.3, seed=1)
    reordered = battles.take(np.random.default_rng(0).permutation(len(battles)))
    assert online_elo(battles) != pytest.approx(online_elo(reordered), abs=0.5)
    assert bradley_terry(battles) == pytest.approx(bradley_terry(reordered), abs=1e-9)


def test_bradley_terry_two_models_closed_form():
    # a beats b 3 times of 4: P = 3/4 = 1/(1 + 10^(-d/400)) so d = 400 log10(3).
    battles = Battles.from_records([("a", "b", "model_a")] * 3 + [("b", "a", "model_a")])
    ratings = bradley_terry(battles)
    assert ratings["a"] - ratings["b"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert ratings["a"] + ratings["b"] == pytest.approx(2000)
    # A tie is half a win: 2 wins + 2 ties of 4 is again 3 of 4.
    tied = Battles.from_records(
        [("a", "b", "model_a")] * 2 + [("a", "b", "tie"), ("b", "a", "tie (bothbad)")]
    )
    assert bradley_terry(tied) == pytest.approx(ratings, abs=1e-6)
    # Dropping the ties leaves 2 wins of 2: no finite MLE (a warning, a huge gap).
    with pytest.warns(RuntimeWarning, match="did not converge"):
        dropped = bradley_terry(tied, ties="drop", max_iterations=20)
    assert dropped["a"] - dropped["b"] > 1000


def test_bradley_terry_anchor_and_scale():
    battles = simulate_battles({"a": 1100, "b": 1000, "c": 900}, 600, seed=2)
    free = bradley_terry(battles)
    anchored = bradley_terry(battles, anchor=("b", 1114.0))
    assert anchored["b"] == pytest.approx(1114.0)
    assert anchored["a"] - anchored["c"] == pytest.approx(free["a"] - free["c"])
    # Natural-log scale 1: the gaps are the logistic regression's coefficient differences.
    natural = bradley_terry(battles, scale=1.0, base=math.e, initial=0.0)
    assert (free["a"] - free["c"]) * math.log(10) / 400 == pytest.approx(
        natural["a"] - natural["c"], abs=1e-6
    )


def _notebook_design(battles: Battles) -> tuple[np.ndarray, np.ndarray]:
    """The LMSYS notebook's compute_mle_elo design: every battle twice; a tie once as an a win and
    once as a b win; columns +ln(10) for model_a and -ln(10) for model_b."""
    n, p = len(battles), len(battles.models)
    a = np.concatenate([battles.model_a, battles.model_a])
    b = np.concatenate([battles.model_b, battles.model_b])
    score = np.concatenate([battles.score, battles.score])
    x = np.zeros((2 * n, p))
    x[np.arange(2 * n), a] = math.log(10)
    x[np.arange(2 * n), b] = -math.log(10)
    y = (score == 1.0).astype(float)
    tie = score == 0.5
    tie[n:] = False  # the first copy of a tie is an a win, the second a b win
    y[tie] = 1.0
    return x, y


@pytest.mark.parity
@pytest.mark.parametrize("tie_rate", [0.0, 0.4])
def test_bradley_terry_matches_scikit_learn_logistic_regression(tie_rate):
    sklearn = pytest.importorskip("sklearn.linear_model")
    truth = {f"m{i}": 1000 + 45 * i for i in range(7)}
    battles = simulate_battles(truth, 3000, tie_rate=tie_rate, seed=3)
    x, y = _notebook_design(battles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # penalty's deprecation in newer scikit-learn
        model = sklearn.LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10, max_iter=10_000)
        model.fit(x, y)
    reference = 400 * model.coef_[0] + 1000
    ours = bradley_terry(battles)
    assert [ours[m] for m in battles.models] == pytest.approx(reference.tolist(), abs=1e-3)
    # Both stay on sum(beta) = 0: ratings average the initial 1000.
    assert reference.mean() == pytest.approx(1000, abs=1e-6)


@pytest.mark.parity
def test_ties_drop_is_the_fit_without_ties():
    battles = simulate_battles({"a": 1050, "b": 1000, "c": 950, "d": 900}, 2000, tie_rate=0.5, seed=4)
    assert bradley_terry(battles, ties="drop") == pytest.approx(
        bradley_terry(battles.without_ties()), abs=1e-9
    )


def test_bootstrap_intervals_are_seeded_and_contain_the_truth_usually():
    truth = {f"m{i}": 1000 + 40 * (i - 2) for i in range(5)}
    battles = simulate_battles(truth, 3000, tie_rate=0.2, seed=5)
    first = bootstrap_ratings(battles, rounds=100, seed=7)
    assert first == bootstrap_ratings(battles, rounds=100, seed=7)
    assert first != bootstrap_ratings(battles, rounds=100, seed=8)
    fitted = bradley_terry(battles)
    for model, interval in first.items():
        assert interval.estimate == fitted[model]
        assert interval.low < interval.estimate < interval.high and interval.confidence == 0.95
    covered = sum(first[m].low <= truth[m] <= first[m].high for m in truth)
    assert covered >= 4  # 95 % intervals, 5 models
    elo = bootstrap_ratings(battles, lambda b: online_elo(b), rounds=20, seed=0)
    assert set(elo) == set(truth)


def test_simulated_expected_scores_follow_the_model():
    battles = simulate_battles({"a": 1200, "b": 1000}, 40_000, tie_rate=0.5, seed=6)
    a_first = battles.model_a == 0
    score_a = np.where(a_first, battles.score, 1 - battles.score)
    assert score_a.mean() == pytest.approx(expected_score(1200, 1000), abs=0.01)
    # tie probability 0.5 * 2 * min(p, 1 - p)
    assert np.mean(battles.score == 0.5) == pytest.approx(
        0.5 * 2 * (1 - expected_score(1200, 1000)), abs=0.01
    )
    assert set(np.unique(battles.score)) <= {0.0, 0.5, 1.0} and np.all(battles.model_a != battles.model_b)


def test_kendall_tau_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 5, 9), rng.integers(0, 5, 9)
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0


def test_bad_input():
    with pytest.raises(ValueError, match="cannot battle itself"):
        Battles(("a", "b"), np.array([0]), np.array([0]), np.array([1.0]))
    with pytest.raises(ValueError, match="score must hold only"):
        Battles(("a", "b"), np.array([0]), np.array([1]), np.array([0.3]))
    with pytest.raises(ValueError, match="model indices"):
        Battles(("a", "b"), np.array([0]), np.array([2]), np.array([1.0]))
    with pytest.raises(TypeError, match="integer indices"):
        Battles(("a", "b"), np.array([0.0]), np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="winner must be one of"):
        Battles.from_records([("a", "b", "a")])
    with pytest.raises(ValueError, match="not one of models"):
        Battles.from_records([("a", "c", "tie")], models=("a", "b"))
    battles = Battles.from_records([("a", "b", "model_a"), ("b", "a", "model_a")])
    with pytest.raises(TypeError, match="battles must be a Battles"):
        bradley_terry([("a", "b", "model_a")])
    with pytest.raises(ValueError, match="ties"):
        bradley_terry(battles, ties="ignore")
    with pytest.raises(ValueError, match="anchor"):
        bradley_terry(battles, anchor=("c", 1000.0))
    with pytest.raises(ValueError, match="k must be"):
        online_elo(battles, k=0)
    with pytest.raises(ValueError, match="base must be"):
        online_elo(battles, base=1.0)
    with pytest.raises(ValueError, match="rounds"):
        bootstrap_ratings(battles, rounds=0)
    with pytest.raises(ValueError, match="ratings must map"):
        simulate_battles({"a": 1000}, 10)
    with pytest.raises(ValueError, match="tie_rate"):
        simulate_battles({"a": 1000, "b": 900}, 10, tie_rate=1.5)
    with pytest.raises(ValueError, match="x and y"):
        kendall_tau([1], [1])
