"""aicanon.evals.intervals: Wilson intervals against tabulated values and statsmodels,
coverage by simulation, bootstrap determinism and agreement with the normal interval, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aicanon.evals.intervals import bootstrap_interval, chance_interval_contains, wilson_interval


def test_wilson_interval_known_values():
    # 81 of 263 at 95 %: (0.2553, 0.3662) (Wilson 1927's example as tabulated by Newcombe 1998, case 1
    # gives 81/263 -> 0.2553-0.3662).
    interval = wilson_interval(81, 263)
    assert interval.estimate == pytest.approx(81 / 263)
    assert interval.low == pytest.approx(0.2553, abs=5e-5)
    assert interval.high == pytest.approx(0.3662, abs=5e-5)
    # 0 of 10: the interval starts at 0 and is not degenerate (the Wald interval would be [0, 0]).
    zero = wilson_interval(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.2775, abs=5e-5)
    assert wilson_interval(10, 10).high == 1.0


@pytest.mark.parity
def test_wilson_interval_equals_statsmodels():
    statsmodels = pytest.importorskip("statsmodels.stats.proportion")
    for successes, n, confidence in [(81, 263, 0.95), (3, 7, 0.9), (0, 10, 0.99), (49, 50, 0.95)]:
        low, high = statsmodels.proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
        interval = wilson_interval(successes, n, confidence)
        assert interval.low == pytest.approx(low, abs=1e-12)
        assert interval.high == pytest.approx(high, abs=1e-12)


def test_wilson_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    p, n = 0.25, 40
    hits = sum(p in wilson_interval(int(k), n) for k in rng.binomial(n, p, size=4000))
    assert 0.93 <= hits / 4000 <= 0.97


def test_bootstrap_is_seeded_and_close_to_the_normal_interval():
    rng = np.random.default_rng(1)
    scores = (rng.random(2000) < 0.6).astype(float)
    a = bootstrap_interval(scores, seed=3)
    b = bootstrap_interval(scores, seed=3)
    assert a == b
    half = 1.96 * math.sqrt(scores.mean() * (1 - scores.mean()) / scores.size)
    assert a.high - a.low == pytest.approx(2 * half, rel=0.1)
    assert a.low < scores.mean() < a.high


def test_chance_and_bad_input():
    assert chance_interval_contains(wilson_interval(26, 100), 0.25)
    assert not chance_interval_contains(wilson_interval(60, 100), 0.25)
    with pytest.raises(ValueError, match="successes must be"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence must be"):
        wilson_interval(1, 10, confidence=1.0)
    with pytest.raises(ValueError, match="scores must be a non-empty 1-D"):
        bootstrap_interval([])
    with pytest.raises(ValueError, match="scores must be finite"):
        bootstrap_interval([1.0, float("nan")])
