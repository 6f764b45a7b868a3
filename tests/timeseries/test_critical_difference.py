"""Average ranks, Friedman, Wilcoxon-Holm, cliques and the CD diagram: golden values, parity with
scipy.stats and aeon, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from aicanon.timeseries.critical_difference import (
    CriticalDifference,
    average_ranks,
    critical_difference,
    friedman_test,
    holm,
    maximal_cliques,
    plot_critical_difference,
    rank_rows,
    wilcoxon_signed_rank,
)

pytestmark = pytest.mark.paper("tsc-review")

# The review's Table 4 rows for five problems (MLP, FCN, ResNet, Encoder; 10-run mean accuracy, %).
TABLE = np.array(
    [
        [92.7, 100.0, 99.1, 93.6],  # Gun_Point
        [77.8, 84.3, 84.5, 80.4],  # ArrowHead
        [95.4, 96.1, 96.3, 96.5],  # ItalyPowerDemand
        [55.7, 97.7, 97.9, 57.6],  # OSULeaf
        [99.6, 100.0, 100.0, 97.9],  # Coffee
    ]
)


def test_ranks_by_hand_with_ties():
    ranks = rank_rows(TABLE)
    assert ranks[0].tolist() == [4.0, 1.0, 2.0, 3.0]
    assert ranks[4].tolist() == [3.0, 1.5, 1.5, 4.0]  # FCN and ResNet tie at 100 %
    assert average_ranks(TABLE) == pytest.approx([3.8, 1.9, 1.5, 2.8])
    assert average_ranks(-TABLE, higher_is_better=False) == pytest.approx([3.8, 1.9, 1.5, 2.8])


def test_friedman_golden_value():
    # k = 3, n = 2, no ties: ranks (1,2,3) twice; chi2 = 12/(3*2*4) * (4+16+36) - 3*2*4 = 4.0.
    result = friedman_test([[3.0, 2.0, 1.0], [30.0, 20.0, 10.0]])
    assert result.statistic == pytest.approx(4.0)
    assert result.p_value == pytest.approx(np.exp(-2.0))  # chi-square with 2 dof: sf(x) = exp(-x/2)


def test_wilcoxon_exact_golden_value():
    # All 5 differences positive and distinct: R- = 0, P(T = 0) = 1/32, two-sided p = 1/16.
    result = wilcoxon_signed_rank([2, 3, 4, 5, 6], [1.5, 2.4, 3.3, 4.2, 5.1])
    assert result.method == "exact"
    assert result.statistic == 0.0
    assert result.p_value == pytest.approx(1 / 16)
    assert wilcoxon_signed_rank([1, 2], [1, 2]).p_value == 1.0


def test_holm_step_down_by_hand():
    # alpha 0.05, m = 4: thresholds 0.0125, 0.0167, 0.025, 0.05; stops at the third smallest.
    assert holm([0.01, 0.04, 0.015, 0.03], 0.05).tolist() == [True, False, True, False]
    assert holm([0.2, 0.001], 0.05).tolist() == [False, True]
    assert holm([0.06, 0.01, 0.02], 0.01).tolist() == [False, False, False]  # 0.01 > 0.01 / 3


def test_maximal_cliques():
    connected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 0, 0, 1],
        ],
        dtype=bool,
    )
    assert maximal_cliques(connected) == [[0, 1, 2], [1, 2, 3], [4]]


def test_critical_difference_on_the_reviews_table():
    scores = np.loadtxt(_review_rows(), delimiter=",")
    result = critical_difference(scores, ["MLP", "FCN", "ResNet"])
    assert result.names == ["ResNet", "FCN", "MLP"]
    assert result.average_ranks == pytest.approx([1.4353, 1.9, 2.6647], abs=1e-4)
    assert result.friedman.p_value < 1e-10
    # Over 85 problems every pair differs (Wilcoxon-Holm at 0.05); no clique joins any two.
    assert result.significant[~np.eye(3, dtype=bool)].all()
    assert result.cliques == []


def test_friedman_not_rejected_gives_one_clique():
    scores = np.array([[0.8, 0.81, 0.79], [0.7, 0.69, 0.71], [0.9, 0.9, 0.91]])
    result = critical_difference(scores, ["a", "b", "c"])
    assert result.friedman.p_value > 0.05
    assert not result.significant.any()
    assert len(result.cliques) == 1 and sorted(result.cliques[0]) == ["a", "b", "c"]


def test_plot_returns_a_figure_with_every_name():
    result = critical_difference(TABLE, ["MLP", "FCN", "ResNet", "Encoder"])
    figure = plot_critical_difference(result, title="five problems")
    assert isinstance(figure, Figure)
    texts = " ".join(t.get_text() for t in figure.axes[0].texts)
    for name in ["MLP", "FCN", "ResNet", "Encoder"]:
        assert name in texts


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(3, 6), st.integers(0, 2**31 - 1))
def test_average_ranks_sum_to_k_k_plus_1_over_2(n, k, seed):
    scores = np.round(np.random.default_rng(seed).random((n, k)), 1)  # rounded: many ties
    ranks = rank_rows(scores)
    assert ranks.sum(axis=1) == pytest.approx(np.full(n, k * (k + 1) / 2))
    assert average_ranks(scores).sum() == pytest.approx(k * (k + 1) / 2)


def _review_rows():
    """Table 4's MLP, FCN and ResNet columns over the 85 problems, as CSV text lines."""
    import io

    return io.StringIO(REVIEW_85)


@pytest.mark.parity
@pytest.mark.parametrize("zero_method", ["pratt", "wilcox", "zsplit"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_parity_with_scipy(zero_method, alternative):
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(0)
    checked = 0
    for n in (5, 9, 13, 20, 40, 60, 85):
        for decimals in (1, 3):
            x = np.round(rng.random(n), decimals)
            y = np.round(rng.random(n) * 0.8 + 0.1, decimals)
            y[: n // 4] = x[: n // 4]  # some zero differences
            for a, b in ((x, y), (x, x + np.arange(n) * 1e-3 + 1e-4)):  # with ties/zeros, and without
                ours = wilcoxon_signed_rank(a, b, zero_method, alternative)
                reference = wilcoxon(a, b, zero_method=zero_method, alternative=alternative)
                assert ours.statistic == pytest.approx(float(reference.statistic), abs=1e-9)
                assert ours.p_value == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-12)
                checked += 1
    assert checked == 28


@pytest.mark.parity
def test_friedman_parity_with_scipy():
    from scipy.stats import friedmanchisquare

    rng = np.random.default_rng(1)
    for n, k in ((2, 3), (7, 4), (30, 9), (85, 3)):
        scores = np.round(rng.random((n, k)), 1)
        ours = friedman_test(scores)
        reference = friedmanchisquare(*scores.T)
        assert ours.statistic == pytest.approx(reference.statistic, rel=1e-12)
        assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parity
def test_parity_with_aeon_ranks_friedman_and_wilcoxon():
    """aeon forms its cliques differently (one-sided tests against a control, Holm over k - 1), but
    its average ranks, Friedman p-value and pairwise Wilcoxon p-values (zero_method 'wilcox',
    one-sided) are the same statistics as ours."""
    pytest.importorskip("aeon")
    import warnings

    from aeon.benchmarking.stats import check_friedman, wilcoxon_test
    from aeon.visualisation.results._critical_difference import _compute_ranks

    scores = np.loadtxt(_review_rows(), delimiter=",")
    ranks = _compute_ranks(scores, lower_better=False)
    assert ranks.mean(axis=0) == pytest.approx(average_ranks(scores), abs=1e-12)
    assert check_friedman(ranks) == pytest.approx(friedman_test(scores).p_value, rel=1e-9)
    order = np.argsort(average_ranks(scores))
    ordered = scores[:, order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = wilcoxon_test(ordered, ["a", "b", "c"])
    for i in range(3):
        for j in range(i + 1, 3):
            ours = wilcoxon_signed_rank(ordered[:, i], ordered[:, j], "wilcox", "greater").p_value
            assert ours == pytest.approx(theirs[i, j], rel=1e-9, abs=1e-15)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="2-D array"):
        average_ranks([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        average_ranks([[1.0, np.nan, 3.0]])
    with pytest.raises(ValueError, match="at least 3 classifiers"):
        friedman_test([[1.0, 2.0]])
    with pytest.raises(ValueError, match="same|one length"):
        wilcoxon_signed_rank([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="zero_method"):
        wilcoxon_signed_rank([1.0, 2.0], [2.0, 1.0], zero_method="drop")
    with pytest.raises(ValueError, match="alternative"):
        wilcoxon_signed_rank([1.0, 2.0], [2.0, 1.0], alternative="bigger")
    with pytest.raises(ValueError, match="alpha"):
        holm([0.1, 0.2], alpha=1.5)
    with pytest.raises(ValueError, match="probabilities"):
        holm([0.1, 1.2])
    with pytest.raises(ValueError, match="names"):
        critical_difference(TABLE, ["a", "b", "c"])
    with pytest.raises(ValueError, match="names"):
        critical_difference(TABLE, ["a", "a", "b", "c"])
    with pytest.raises(TypeError, match="CriticalDifference"):
        plot_critical_difference({"names": []})
    with pytest.raises(ValueError, match="square"):
        maximal_cliques(np.ones((2, 3), dtype=bool))
    assert isinstance(critical_difference(TABLE, ["a", "b", "c", "d"]), CriticalDifference)


# Table 4 of the review (the authors' results-uea-avg-std.csv), columns MLP, FCN, ResNet, 85 problems.
REVIEW_85 = """\
68.4,62.7,74.0
39.7,84.4,82.9
77.8,84.3,84.5
72.0,69.7,75.3
87.0,86.0,85.0
77.5,95.5,88.5
87.2,99.4,99.5
76.7,90.5,92.5
80.2,81.4,84.4
84.0,82.4,82.6
99.6,100.0,100.0
56.3,82.2,81.5
59.1,79.2,79.1
60.0,78.7,80.3
61.7,81.1,81.2
91.0,31.3,30.1
65.7,71.0,71.7
72.6,76.0,77.1
61.7,69.0,66.5
91.6,88.9,87.4
92.9,94.0,93.4
97.0,98.7,97.5
71.7,72.7,71.2
59.2,70.2,72.9
84.8,95.8,97.9
79.3,94.5,83.9
84.0,92.8,95.5
83.3,94.6,95.5
73.0,90.4,92.0
60.3,87.8,91.3
92.7,100.0,99.1
69.1,71.8,75.7
91.8,80.6,91.1
43.3,48.0,51.9
52.8,60.8,61.9
33.7,33.9,37.3
60.7,39.3,50.7
95.4,96.1,96.3
47.3,90.2,90.0
67.0,73.9,77.0
63.0,82.7,84.5
91.8,96.7,97.2
89.7,85.3,96.8
72.1,77.9,77.0
53.1,55.3,56.9
77.0,80.1,80.9
53.4,51.2,48.4
85.8,93.7,92.8
91.6,95.6,94.5
91.7,95.3,94.6
55.7,97.7,97.9
66.7,72.3,83.0
73.5,82.0,83.9
9.6,32.5,33.4
97.8,100.0,100.0
85.6,83.1,85.3
73.3,90.3,92.1
76.7,76.7,78.0
37.9,50.8,52.5
40.3,62.5,62.2
50.3,72.4,77.9
77.1,89.5,92.1
37.1,78.3,78.6
67.2,96.0,95.8
83.4,97.9,97.8
94.9,96.1,97.2
96.1,97.2,98.1
85.1,96.9,95.6
83.2,95.5,90.6
58.3,96.1,96.3
74.5,88.0,90.6
80.7,100.0,100.0
76.2,100.0,100.0
94.6,87.1,100.0
95.5,81.7,86.0
56.5,58.7,74.4
59.8,56.4,62.2
45.7,76.5,79.1
60.1,72.6,74.7
97.6,98.5,99.8
76.7,75.4,78.0
69.8,63.9,67.0
69.7,72.6,75.0
99.6,99.7,99.9
85.5,83.9,87.0
"""
