"""LIME and SP-LIME: golden values, invariants (kernel, surrogate, sampling, submodular coverage),
parity with the authors' ``lime`` package on identical samples and with independent sampling, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.explain.lime import (
    FEATURE_SELECTIONS,
    TabularExplainer,
    TabularSamples,
    cosine_distances,
    coverage,
    explain_image,
    explain_text,
    exponential_kernel,
    feature_importance,
    fit_surrogate,
    image_samples,
    segment_image,
    select_features,
    submodular_pick,
    text_samples,
    weighted_r2,
    weighted_ridge,
)

pytestmark = pytest.mark.paper("lime")

ATOL = 1e-6  # the tolerance for surrogate weights against the package


# =============================================================================== fixtures
def tabular_problem(seed: int = 0, n: int = 300, w=(2.0, -1.5, 1.0, 0.5, 0.0, 0.0)):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 5] = rng.integers(0, 3, size=n)  # a categorical column
    w = np.asarray(w)

    def predict(Z):
        p = 1 / (1 + np.exp(-(Z @ w)))
        return np.stack([1 - p, p], axis=1)

    return X, predict


SENTIMENT = {"good": 2.0, "great": 3.0, "bad": -2.0, "awful": -3.0, "not": -0.5}
TEXT = "a good movie , not great but not awful ; the plot is bad and the acting is good enough for me"


def sentiment(docs):
    score = np.array([sum(SENTIMENT.get(word, 0.0) for word in set(doc.split())) for doc in docs])
    p = 1 / (1 + np.exp(-score))
    return np.stack([1 - p, p], axis=1)


def block_image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((48, 48, 3))
    for i, j in itertools.product(range(4), range(4)):
        image[12 * i : 12 * i + 12, 12 * j : 12 * j + 12] = rng.random(3)
    return image


def corner_classifier(images):
    score = images[:, :12, :12, 0].mean((1, 2)) - images[:, 36:, 36:, 1].mean((1, 2))
    p = 1 / (1 + np.exp(-3 * score))
    return np.stack([1 - p, p], axis=1)


# =============================================================================== the package
def test_package_re_exports_every_submodule_name():
    """``aicanon.explain.lime`` is a package of one-idea modules; its ``__all__`` is exactly theirs."""
    import importlib

    import aicanon.explain.lime as lime

    modules = ("kernel", "surrogate", "tabular", "text", "image", "submodular", "plots")
    owners = {}
    for module in modules:
        submodule = importlib.import_module(f"aicanon.explain.lime.{module}")
        for name in submodule.__all__:
            owners[name] = submodule
    assert set(lime.__all__) == set(owners) - {"plot_bars", "plot_superpixels"}
    for name in lime.__all__:
        assert getattr(lime, name) is getattr(owners[name], name)
    assert callable(lime.submodular_pick)  # the function, not a submodule of the same name


# =============================================================================== kernel and distances
def test_kernel_golden_values():
    np.testing.assert_allclose(exponential_kernel([0.0, 2.0], 2.0, "paper"), [1.0, np.exp(-1.0)])
    np.testing.assert_allclose(exponential_kernel([0.0, 2.0], 2.0, "lime"), [1.0, np.exp(-0.5)])


@given(
    st.lists(st.floats(0, 50, allow_nan=False), min_size=2, max_size=20),
    st.floats(0.05, 30),
)
def test_kernel_invariants(distances, width):
    d = np.sort(np.asarray(distances))
    paper, package = exponential_kernel(d, width, "paper"), exponential_kernel(d, width, "lime")
    assert ((paper > 0) | (d > 0)).all() and (paper <= 1).all() and (package <= 1).all()
    assert (np.diff(paper) <= 0).all() and (np.diff(package) <= 0).all()  # decreasing in distance
    np.testing.assert_allclose(package, np.sqrt(paper), atol=1e-12)  # the package's form is the root
    assert exponential_kernel([0.0], width)[0] == 1.0


def test_cosine_distances_golden():
    data = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    expected = [0.0, 1 - 1 / np.sqrt(2), 1.0, 1.0]
    np.testing.assert_allclose(cosine_distances(data, data[0]), expected, atol=1e-12)


# =============================================================================== surrogate
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 3.0))
def test_weighted_ridge_equals_repeated_rows(seed, alpha):
    """Integer kernel weights are the same as repeating rows: a property of Eq. 2's weighted loss."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    counts = rng.integers(1, 4, size=12)
    coef, intercept = weighted_ridge(X, y, counts.astype(float), alpha)
    repeated = np.repeat(np.arange(12), counts)
    coef_r, intercept_r = weighted_ridge(X[repeated], y[repeated], np.ones(len(repeated)), alpha)
    np.testing.assert_allclose(coef, coef_r, atol=1e-9)
    assert intercept == pytest.approx(intercept_r, abs=1e-9)
    fitted = X @ coef + intercept
    assert weighted_r2(y, fitted, counts.astype(float)) == pytest.approx(
        weighted_r2(y[repeated], fitted[repeated], np.ones(len(repeated))), abs=1e-9
    )


def test_weighted_r2_golden():
    y = np.array([0.0, 1.0, 2.0])
    assert weighted_r2(y, y, np.ones(3)) == 1.0
    assert weighted_r2(y, np.ones(3), np.ones(3)) == 0.0  # the mean predicts nothing
    assert weighted_r2(np.ones(3), np.ones(3), np.ones(3)) == 1.0


@pytest.mark.parametrize("method", ["forward_selection", "highest_weights", "lasso_path"])
def test_surrogate_recovers_an_exactly_linear_model(method):
    """Targets linear in 3 of 8 binary features: every selection method finds them, R^2 = 1 (alpha 0)."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 2, size=(400, 8)).astype(float)
    data[0] = 1.0
    targets = 0.3 + data @ np.array([0, 1.5, 0, -2.0, 0, 0, 0.8, 0])
    weights = rng.uniform(0.1, 1.0, size=400)
    surrogate = fit_surrogate(data, targets, weights, 3, method, alpha=0.0)
    assert sorted(surrogate.features.tolist()) == [1, 3, 6]
    np.testing.assert_allclose(surrogate.dense(8)[[1, 3, 6]], [1.5, -2.0, 0.8], atol=1e-9)
    assert surrogate.intercept == pytest.approx(0.3)
    assert surrogate.score == pytest.approx(1.0)
    assert surrogate.local_prediction == pytest.approx(targets[0])
    assert list(np.abs(surrogate.weights)) == sorted(np.abs(surrogate.weights), reverse=True)


def test_select_features_auto_and_none():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 2, size=(200, 9)).astype(float)
    targets = data @ rng.normal(size=9)
    weights = np.ones(200)
    np.testing.assert_array_equal(select_features(data, targets, weights, 3, "none"), np.arange(9))
    np.testing.assert_array_equal(
        select_features(data, targets, weights, 4, "auto"),
        select_features(data, targets, weights, 4, "forward_selection"),
    )
    np.testing.assert_array_equal(
        select_features(data, targets, weights, 7, "auto"),
        select_features(data, targets, weights, 7, "highest_weights"),
    )


# =============================================================================== sampling invariants
def test_tabular_samples_are_consistent_with_the_bins():
    X, _ = tabular_problem()
    explainer = TabularExplainer(X, categorical_features=[5])
    samples = explainer.sample(X[3], 2000, seed=0)
    assert samples.data.shape == samples.inverse.shape == (2000, 6)
    np.testing.assert_array_equal(samples.inverse[0], X[3])
    np.testing.assert_array_equal(samples.data[0], np.ones(6))
    assert set(np.unique(samples.data)) <= {0.0, 1.0}
    # a binary feature is 1 exactly when the queried value lies in the instance's quartile bin
    same_bin = explainer.encode(samples.inverse) == explainer.encode(X[3])
    np.testing.assert_array_equal(samples.data.astype(bool), same_bin)
    # bins are drawn by training frequency: about a quarter of samples share each quartile
    assert 0.2 < samples.data[1:, 0].mean() < 0.3
    # drawn values stay inside the training range
    assert (samples.inverse[:, :5] >= X[:, :5].min(0) - 1e-9).all()
    assert (samples.inverse[:, :5] <= X[:, :5].max(0) + 1e-9).all()
    np.testing.assert_array_equal(
        explainer.sample(X[3], 50, seed=4).inverse, explainer.sample(X[3], 50, seed=4).inverse
    )


def test_text_samples_remove_whole_words():
    data = text_samples(7, 500, seed=0)
    np.testing.assert_array_equal(data[0], np.ones(7))
    assert (data[1:].sum(1) <= 6).all() and (data[1:].sum(1) >= 0).all()
    seen = []
    explain_text(
        TEXT, lambda docs: seen.extend(docs) or sentiment(docs), num_features=3, num_samples=50, seed=0
    )
    assert seen[0] == TEXT
    explanation = explain_text(TEXT, sentiment, num_features=3, num_samples=50, seed=0)
    words = explanation.feature_names
    assert words[:4] == ["a", "good", "movie", "not"] and len(words) == len(set(words))
    masks = text_samples(len(words), 50, seed=0)
    for doc, row in zip(seen, masks):
        present = set(doc.split())
        for j, word in enumerate(words):  # a removed word loses every occurrence
            assert (word in present) == bool(row[j])


def test_image_samples_hide_superpixels_with_the_fill():
    image, segments = block_image(), np.repeat(np.repeat(np.arange(16).reshape(4, 4), 12, 0), 12, 1)
    data = image_samples(16, 30, seed=1)
    np.testing.assert_array_equal(data[0], np.ones(16))
    batches = []
    explain_image(
        image,
        lambda images: batches.append(images) or corner_classifier(images),
        segments=segments,
        hide_color=0.25,
        num_samples=30,
        samples=data,
        batch_size=8,
    )
    images = np.concatenate(batches)
    assert images.shape == (30, 48, 48, 3) and len(batches) == 4
    hidden = data[:, segments] == 0
    assert (images[hidden] == 0.25).all()
    np.testing.assert_array_equal(images[~hidden], np.broadcast_to(image, images.shape)[~hidden])


def test_segmentations_give_superpixel_maps():
    image = block_image()
    for method, kwargs in [("quickshift", {}), ("slic", {"n_segments": 16, "compactness": 1})]:
        segments = segment_image(image * 255, method, **kwargs)
        assert segments.shape == (48, 48)
        assert np.array_equal(np.unique(segments), np.arange(segments.max() + 1)) and segments.max() >= 8


def test_lime_finds_the_informative_superpixels():
    image = block_image()
    segments = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 12, 0), 12, 1)
    explanation = explain_image(image, corner_classifier, segments=segments, label=1, hide_color=0.0, seed=0)
    assert set(explanation.extras["features"][:2]) == {0, 15}
    assert explanation.values[0] > 0 > explanation.values[15]  # red top-left for, green bottom-right against


def test_explanations_plot():
    X, predict = tabular_problem()
    for explanation in [
        TabularExplainer(X).explain(X[0], predict, num_features=3, num_samples=300, seed=0),
        explain_text(TEXT, sentiment, num_features=4, num_samples=300, seed=0),
        explain_image(
            block_image(),
            corner_classifier,
            segments=np.repeat(np.arange(4), 12)[:, None].repeat(48, 1),
            seed=0,
        ),
    ]:
        figure = explanation.plot()
        assert figure.axes and explanation.extras["score"] <= 1.0


# =============================================================================== SP-LIME
explanation_matrices = st.integers(0, 10_000).map(
    lambda seed: (
        np.random.default_rng(seed).normal(size=(7, 6))
        * (np.random.default_rng(seed + 1).random((7, 6)) < 0.35)
    )
)


@settings(max_examples=40, deadline=None)
@given(explanation_matrices, st.data())
def test_coverage_is_monotone_and_submodular(W, data):
    """Eq. 3: c(A + i) >= c(A), and the gain of i shrinks as the set grows (A subset of B)."""
    rows = list(range(W.shape[0]))
    B = data.draw(st.lists(st.sampled_from(rows), unique=True, max_size=6))
    A = data.draw(st.lists(st.sampled_from(B), unique=True)) if B else []
    i = data.draw(st.sampled_from([r for r in rows if r not in B]))
    assert coverage(W, A) <= coverage(W, B) + 1e-12
    assert coverage(W, A + [i]) >= coverage(W, A) - 1e-12
    assert coverage(W, A + [i]) - coverage(W, A) >= coverage(W, B + [i]) - coverage(W, B) - 1e-12
    assert coverage(W, rows) == pytest.approx(feature_importance(W)[(W != 0).any(0)].sum())


@settings(max_examples=30, deadline=None)
@given(explanation_matrices, st.integers(1, 4))
def test_greedy_pick_is_within_one_minus_one_over_e_of_optimal(W, budget):
    picked = submodular_pick(W, budget)
    assert len(set(picked)) == budget
    best = max(coverage(W, list(V)) for V in itertools.combinations(range(W.shape[0]), budget))
    assert coverage(W, picked) >= (1 - 1 / np.e) * best - 1e-12


def test_submodular_pick_golden():
    # importance: I = sqrt(column sums of |W|) = [2, 1, 1, 3]
    W = np.array([[4.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 9], [0, 0, 0, 0]])
    np.testing.assert_allclose(feature_importance(W), [2, 1, 1, 3])
    assert submodular_pick(W, 3) == [2, 0, 1]  # gains 4, then 2, then 1
    assert coverage(W, [2, 0, 1]) == 7.0 and coverage(W, []) == 0.0


# =============================================================================== parity with the lime package
@pytest.mark.parity
@pytest.mark.parametrize("discretize", [True, False])
@pytest.mark.parametrize("method", FEATURE_SELECTIONS)
def test_tabular_parity_on_identical_samples(discretize, method):
    from lime.lime_tabular import LimeTabularExplainer

    X, predict = tabular_problem()
    categorical = [5]

    def reference():
        return LimeTabularExplainer(
            X,
            categorical_features=categorical,
            discretize_continuous=discretize,
            random_state=3,
            feature_selection=method,
        )

    # the package's own sampler, seeded as explain_instance seeds it: both then see the same neighbourhood
    data, inverse = reference()._LimeTabularExplainer__data_inverse(X[7], 600)
    expected = reference().explain_instance(X[7], predict, num_features=4, num_samples=600)
    ours = TabularExplainer(
        X, categorical_features=categorical, discretize="quartile" if discretize else None
    ).explain(
        X[7],
        predict,
        label=1,
        num_features=4,
        feature_selection=method,
        samples=TabularSamples(data, inverse),
    )
    reference_weights = dict(expected.local_exp[1])
    assert sorted(reference_weights) == sorted(ours.extras["features"])
    for feature, weight in reference_weights.items():
        assert ours.values[feature] == pytest.approx(weight, abs=ATOL)
    assert ours.extras["intercept"] == pytest.approx(expected.intercept[1], abs=ATOL)
    assert ours.extras["score"] == pytest.approx(expected.score, abs=ATOL)
    assert ours.extras["local_prediction"] == pytest.approx(float(expected.local_pred[0]), abs=ATOL)


@pytest.mark.parity
def test_discretiser_matches_the_package():
    from lime.discretize import QuartileDiscretizer

    X, _ = tabular_problem(2)
    reference = QuartileDiscretizer(X, [5], [str(i) for i in range(6)])
    ours = TabularExplainer(X, categorical_features=[5])
    np.testing.assert_array_equal(ours.encode(X), reference.discretize(X))
    for column in range(5):
        np.testing.assert_allclose(ours.bin_stats[column]["mean"], reference.means[column])
        np.testing.assert_allclose(ours.bin_stats[column]["std"], reference.stds[column])
    assert ours.bin_names(X[0])[0] == reference.names[0][int(reference.discretize(X[0])[0])]


@pytest.mark.parity
@pytest.mark.parametrize("method", FEATURE_SELECTIONS)
def test_text_parity_on_identical_samples(method):
    from lime.lime_text import IndexedString, LimeTextExplainer

    data, _, _ = LimeTextExplainer(random_state=1)._LimeTextExplainer__data_labels_distances(
        IndexedString(TEXT), sentiment, 400
    )
    expected = LimeTextExplainer(random_state=1, feature_selection=method).explain_instance(
        TEXT, sentiment, num_features=5, num_samples=400
    )
    ours = explain_text(TEXT, sentiment, label=1, num_features=5, feature_selection=method, samples=data)
    assert ours.feature_names == IndexedString(TEXT).inverse_vocab
    for feature, weight in expected.local_exp[1]:
        assert ours.values[feature] == pytest.approx(weight, abs=ATOL)
    assert ours.extras["score"] == pytest.approx(expected.score, abs=ATOL)


@pytest.mark.parity
@pytest.mark.parametrize("hide_color", [None, 0.5])
def test_image_parity_on_identical_samples(hide_color):
    from lime.lime_image import LimeImageExplainer

    # noise inside the blocks, and a classifier on squared values, so that a mean-colour fill matters
    image = block_image() + 0.1 * np.random.default_rng(3).random((48, 48, 3))
    segments = segment_image(image, "slic", n_segments=16, compactness=1)

    def classifier(images):
        return corner_classifier(10 * images**2)

    expected = LimeImageExplainer(random_state=2).explain_instance(
        image,
        classifier,
        labels=(1,),
        top_labels=None,
        hide_color=hide_color,
        num_features=5,
        num_samples=200,
        segmentation_fn=lambda _: segments,
    )
    # explain_instance draws a segmentation seed, then the samples: replay that order
    state = np.random.RandomState(2)
    state.randint(0, high=1000)
    data = state.randint(0, 2, 200 * (segments.max() + 1)).reshape(200, -1)
    data[0] = 1
    ours = explain_image(
        image, classifier, segments=segments, label=1, num_features=5, hide_color=hide_color, samples=data
    )
    assert ours.extras["score"] > 0.5
    for feature, weight in expected.local_exp[1]:
        assert ours.values[feature] == pytest.approx(weight, abs=ATOL)
    assert ours.extras["score"] == pytest.approx(expected.score, abs=ATOL)


@pytest.mark.parity
@pytest.mark.parametrize("seed", range(4))
def test_fit_surrogate_matches_lime_base(seed):
    from lime.lime_base import LimeBase

    rng = np.random.default_rng(seed)
    data = rng.integers(0, 2, size=(300, 12)).astype(float)
    data[0] = 1.0
    labels = rng.random((300, 2))
    distances = rng.random(300) * 2
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / 0.75**2)))
    for method in FEATURE_SELECTIONS:
        intercept, weights, score, local = base.explain_instance_with_data(
            data, labels, distances, 1, 5, method
        )
        ours = fit_surrogate(data, labels[:, 1], exponential_kernel(distances, 0.75), 5, method)
        assert ours.features.tolist() == [f for f, _ in weights]
        np.testing.assert_allclose(ours.weights, [w for _, w in weights], atol=ATOL)
        assert ours.intercept == pytest.approx(intercept, abs=ATOL)
        assert ours.score == pytest.approx(score, abs=ATOL)
        assert ours.local_prediction == pytest.approx(float(local[0]), abs=ATOL)


class _StubExplanation:
    """What lime.submodular_pick reads from an explanation: its labels and (feature, weight) list."""

    mode = "classification"

    def __init__(self, row):
        self.row = row

    def available_labels(self):
        return [1]

    def as_list(self, label):
        return [(f"f{j}", w) for j, w in enumerate(self.row) if w != 0]


@pytest.mark.parity
@pytest.mark.parametrize("seed", range(3))
def test_submodular_pick_matches_the_package(seed):
    from lime.submodular_pick import SubmodularPick

    rng = np.random.default_rng(seed)
    W = rng.normal(size=(20, 30)) * (rng.random((20, 30)) < 0.15)
    W[:, 0] = 0.1  # every explanation uses feature 0 first, so the package's columns keep our order

    class Explainer:
        def explain_instance(self, row, predict_fn, **kwargs):
            return _StubExplanation(row)

    pick = SubmodularPick(Explainer(), W, None, method="full", num_exps_desired=4)
    columns = [j for j in range(30) if (W[:, j] != 0).any()]
    compact = W[:, columns]
    order = {}  # the package numbers features in order of first appearance
    for row in compact:
        for j in np.flatnonzero(row):
            order.setdefault(j, len(order))
    permuted = np.zeros_like(compact)
    permuted[:, list(order.values())] = compact[:, list(order.keys())]
    assert submodular_pick(permuted, 4) == pick.V


@pytest.mark.parity
def test_independent_sampling_agrees_on_the_top_features():
    """Different random neighbourhoods: the top-3 feature sets agree on >= 90 % of instances
    (a model that uses 3 of the 6 features, so that the top 3 is well defined; the 4th feature of
    a middle-quartile instance makes the top 3 ambiguous even between two seeds of the package)."""
    from lime.lime_tabular import LimeTabularExplainer

    X, predict = tabular_problem(5, w=(3.0, -2.0, 1.5, 0.0, 0.0, 0.0))
    reference = LimeTabularExplainer(X, categorical_features=[5], random_state=11)
    ours = TabularExplainer(X, categorical_features=[5])
    agree = []
    for i in range(20):
        expected = reference.explain_instance(X[i], predict, num_features=3, num_samples=3000)
        got = ours.explain(X[i], predict, label=1, num_features=3, num_samples=3000, seed=100 + i)
        agree.append({f for f, _ in expected.local_exp[1]} == set(got.extras["features"]))
    assert np.mean(agree) >= 0.9, agree


@pytest.mark.parity
def test_independent_text_sampling_agrees_on_the_top_words():
    """Sentences mixing sentiment words with filler: the top-3 words agree with the package's on >= 90 %."""
    from lime.lime_text import LimeTextExplainer

    rng = np.random.default_rng(0)
    filler = [
        "the",
        "plot",
        "of",
        "this",
        "film",
        "was",
        "long",
        "and",
        "its",
        "cast",
        "seemed",
        "to",
        "know",
        "it",
        "well",
        "enough",
    ]
    reference = LimeTextExplainer(random_state=5)
    agree = []
    for i in range(10):
        words = list(rng.choice(filler, size=10, replace=False)) + ["great", "bad", "awful"]
        text = " ".join(rng.permutation(words))
        expected = reference.explain_instance(text, sentiment, num_features=3, num_samples=2000)
        got = explain_text(text, sentiment, label=1, num_features=3, num_samples=2000, seed=i)
        agree.append({f for f, _ in expected.local_exp[1]} == set(got.extras["features"]))
    assert np.mean(agree) >= 0.9, agree


# =============================================================================== bad input
def test_bad_tabular_input():
    X, predict = tabular_problem()
    with pytest.raises(ValueError, match=r"training_data must be 2-D"):
        TabularExplainer(X[:, 0])
    with pytest.raises(ValueError, match=r"categorical_features must be column indices in \[0, 6\)"):
        TabularExplainer(X, categorical_features=[6])
    with pytest.raises(ValueError, match="discretize must be one of"):
        TabularExplainer(X, discretize="entropy")
    with pytest.raises(ValueError, match="feature_names must have one name per column"):
        TabularExplainer(X, feature_names=["a"])
    explainer = TabularExplainer(X)
    with pytest.raises(ValueError, match=r"instance must have shape \(6,\), got \(5,\)"):
        explainer.explain(X[0, :5], predict)
    with pytest.raises(ValueError, match=r"num_features must be >= 1, got 0"):
        explainer.explain(X[0], predict, num_features=0)
    with pytest.raises(
        ValueError, match=r"num_features must be <= the number of interpretable features \(6\), got 7"
    ):
        explainer.explain(X[0], predict, num_features=7)
    with pytest.raises(TypeError, match="num_features must be an int"):
        explainer.explain(X[0], predict, num_features=2.5)
    with pytest.raises(ValueError, match="feature_selection must be one of .* got 'lasso'"):
        explainer.explain(X[0], predict, feature_selection="lasso")
    with pytest.raises(TypeError, match="predict_fn must be callable"):
        explainer.explain(X[0], "model")
    with pytest.raises(TypeError, match="samples must be TabularSamples"):
        explainer.explain(X[0], predict, samples=np.ones((5, 6)))
    with pytest.raises(ValueError, match=r"samples must be \[N, 6\]"):
        explainer.explain(X[0], predict, samples=TabularSamples(np.ones((5, 4)), np.ones((5, 4))))
    with pytest.raises(ValueError, match=r"predict_fn must return \[50, classes\]"):
        explainer.explain(X[0], lambda Z: np.ones((3, 2)), num_samples=50)
    with pytest.raises(ValueError, match=r"label must be a class index in \[0, 2\), got 2"):
        explainer.explain(X[0], predict, label=2, num_samples=50)
    with pytest.raises(TypeError, match="seed must be an int >= 0"):
        explainer.explain(X[0], predict, seed=-1)


def test_bad_text_and_surrogate_input():
    with pytest.raises(TypeError, match="text must be a str, got list"):
        explain_text(["good"], sentiment)
    with pytest.raises(ValueError, match="text must contain at least one word"):
        explain_text(" , ; ", sentiment)
    with pytest.raises(
        ValueError, match=r"num_features must be <= the number of interpretable features \(2\)"
    ):
        explain_text("good movie", sentiment, num_features=3)
    with pytest.raises(ValueError, match=r"samples must be a binary \[N, 2\] matrix"):
        explain_text("good movie", sentiment, num_features=1, samples=np.ones((4, 3)))
    with pytest.raises(ValueError, match="feature_selection must be one of"):
        explain_text("good movie", sentiment, num_features=1, feature_selection="greedy")
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\), got \(2,\)"):
        fit_surrogate(np.ones((3, 2)), np.ones(2), np.ones(3), 1)
    with pytest.raises(ValueError, match="data must be 2-D"):
        fit_surrogate(np.ones(3), np.ones(3), np.ones(3), 1)
    with pytest.raises(ValueError, match="weights must be >= 0"):
        select_features(np.ones((3, 2)), np.ones(3), -np.ones(3), 1)
    with pytest.raises(ValueError, match="kernel must be one of"):
        exponential_kernel([1.0], 1.0, "gaussian")
    with pytest.raises(ValueError, match="width must be finite and > 0, got 0"):
        exponential_kernel([1.0], 0)
    with pytest.raises(TypeError, match="width must be a number, got str"):
        exponential_kernel([1.0], "1")
    with pytest.raises(ValueError, match="kernel_width must be finite and > 0, got inf"):
        TabularExplainer(np.ones((3, 2)), kernel_width=float("inf"))


def test_bad_image_input():
    image = block_image()
    with pytest.raises(ValueError, match=r"image must be H x W or H x W x 3, got shape \(48, 48, 4\)"):
        explain_image(np.zeros((48, 48, 4)), corner_classifier)
    with pytest.raises(ValueError, match=r"image must be H x W or H x W x 3, got shape \(48,\)"):
        explain_image(np.zeros(48), corner_classifier)
    with pytest.raises(TypeError, match="image must be a numpy array or torch.Tensor, got list"):
        explain_image([[0.0]], corner_classifier)
    with pytest.raises(ValueError, match=r"segments must be an integer map of shape \(48, 48\)"):
        explain_image(image, corner_classifier, segments=np.zeros((4, 4), dtype=int))
    with pytest.raises(ValueError, match="method must be one of"):
        segment_image(image, "felzenszwalb")
    segments = np.repeat(np.arange(4), 12)[:, None].repeat(48, 1)
    with pytest.raises(
        ValueError, match=r"num_features must be <= the number of interpretable features \(4\)"
    ):
        explain_image(image, corner_classifier, segments=segments, num_features=5)
    with pytest.raises(ValueError, match=r"samples must be a binary \[N, 4\] matrix"):
        explain_image(image, corner_classifier, segments=segments, samples=np.full((5, 4), 2.0))


def test_bad_submodular_input():
    W = np.eye(3)
    with pytest.raises(ValueError, match=r"W must be 2-D \[instances, features\], got shape \(3,\)"):
        submodular_pick(np.ones(3), 1)
    with pytest.raises(ValueError, match=r"budget must be <= the number of explanations \(3\), got 4"):
        submodular_pick(W, 4)
    with pytest.raises(ValueError, match="budget must be >= 1, got 0"):
        submodular_pick(W, 0)
    with pytest.raises(ValueError, match=r"picked must be row indices of W in \[0, 3\)"):
        coverage(W, [3])
    with pytest.raises(ValueError, match=r"importance must have shape \(3,\)"):
        coverage(W, [0], importance=np.ones(2))
