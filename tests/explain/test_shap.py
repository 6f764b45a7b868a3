"""SHAP explainers: golden values, the paper's properties (Eq. 5-8) with hypothesis, parity with the
shap library (Exact, Kernel, Linear, Deep), bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.explain.shap import (
    DeepExplainer,
    ExactExplainer,
    KernelExplainer,
    LinearExplainer,
    ShapleySamplingExplainer,
    coalition_values,
    shapley_kernel_weight,
)

pytestmark = pytest.mark.paper("shap")

ATOL = 1e-5  # float32 parity tolerance (DESIGN); float64 identities are checked at 1e-10


def mlp(n_features: int, outputs: int = 1, seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(n_features, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, outputs)]
    return nn.Sequential(*layers).to(dtype).eval()


def scalar(model: nn.Module):
    return lambda t: model(t)[:, 0]


def data(rows: int, n_features: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(rows, n_features, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def small_cnn(softmax: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3),
    ]
    if softmax:
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers).eval()


# =============================================================================== golden values
def test_golden_interaction_and_linear_term_by_hand():
    """f = x0 x1 + 2 x2 against the zero background: the product splits evenly (symmetry), 2 x2 is its own."""
    model = lambda t: t[:, 0] * t[:, 1] + 2 * t[:, 2]
    background = torch.zeros(1, 3, dtype=torch.float64)
    x = torch.tensor([[3.0, 4.0, 5.0]], dtype=torch.float64)
    expected = np.array([[6.0, 6.0, 10.0]])
    for explanation in (
        ExactExplainer(model, background)(x),
        KernelExplainer(model, background)(x, n_samples=6),
    ):
        np.testing.assert_allclose(explanation.values, expected, atol=1e-10, err_msg=explanation.method)
        assert explanation.base_value == 0.0
    # sampling: each marginal of x0 is 0 or 12 (mean 6, std 6 / sqrt(1000) per feature); 2 x2 is exact
    sampled = ShapleySamplingExplainer(model, background)(x, n_evaluations=6000)
    np.testing.assert_allclose(sampled.values, expected, atol=1.0)
    assert sampled.values[0, 2] == pytest.approx(10.0)
    assert sampled.extras["permutations_per_feature"] == 1000


def test_golden_two_background_rows_average_the_game():
    """f = max(x0, x1), background {(0, 0), (2, 2)}, x = (1, 3): E over rows of each coalition by hand."""
    model = lambda t: t.max(1).values
    background = torch.tensor([[0.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    # v(∅) = (0 + 2)/2 = 1; v({0}) = (max(1,0) + max(1,2))/2 = 1.5; v({1}) = 3; v({0,1}) = 3
    phi0 = 0.5 * (1.5 - 1) + 0.5 * (3 - 3)
    phi1 = 0.5 * (3 - 1) + 0.5 * (3 - 1.5)
    explanation = ExactExplainer(model, background)(x)
    np.testing.assert_allclose(explanation.values, [[phi0, phi1]], atol=1e-12)
    assert explanation.base_value == pytest.approx(1.0)
    masks = torch.tensor([[False, False], [True, False], [False, True], [True, True]])
    values = coalition_values(model, x[0], background, masks)[:, 0]
    np.testing.assert_allclose(values.numpy(), [1.0, 1.5, 3.0, 3.0])


def test_shapley_kernel_weights_by_hand():
    """Theorem 2: π(M=4, |z|=1) = 3 / (4·1·3) = 1/4, π(4, 2) = 3 / (6·2·2) = 1/8; symmetric in |z| ↔ M − |z|."""
    assert shapley_kernel_weight(4, 1) == pytest.approx(0.25)
    assert shapley_kernel_weight(4, 2) == pytest.approx(0.125)
    assert shapley_kernel_weight(4, 3) == pytest.approx(0.25)
    assert shapley_kernel_weight(10, 3) == pytest.approx(9 / (math.comb(10, 3) * 3 * 7))


def test_linear_shap_by_hand_and_equal_to_exact():
    weight = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    bias = torch.tensor([0.25], dtype=torch.float64)
    background = torch.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]], dtype=torch.float64)
    x = torch.tensor([[3.0, 0.0, 1.0]], dtype=torch.float64)
    explanation = LinearExplainer((weight, bias), background)(x)
    # Corollary 1: w (x − E[x]) with E[x] = (1, 2, 3)
    np.testing.assert_allclose(explanation.values, [[2.0, 4.0, -1.0]])
    assert explanation.base_value == pytest.approx(1 - 4 + 1.5 + 0.25)
    exact = ExactExplainer(lambda t: t @ weight[0] + bias, background)(x)
    np.testing.assert_allclose(explanation.values, exact.values, atol=1e-12)


def test_deep_shap_golden_relu_and_maxpool_rules():
    # one ReLU: x = 2, reference −1: multiplier (2 − 0)/(2 + 1), φ = 2 = ReLU(2) − ReLU(−1)
    relu = nn.Sequential(nn.ReLU())
    explanation = DeepExplainer(relu, torch.tensor([[-1.0]]))(torch.tensor([[2.0]]))
    np.testing.assert_allclose(explanation.values, [[2.0]], atol=1e-7)
    # max pool of x = (1, 3) against r = (2, 0): y − r = 3 − 2 = 1; max(y, r) − r = 1 goes to x's
    # arg-max (position 1), y − max(y, r) = 0 to r's arg-max (position 0)
    pool = nn.Sequential(nn.MaxPool1d(2), nn.Flatten())
    explanation = DeepExplainer(pool, torch.tensor([[[2.0, 0.0]]]))(torch.tensor([[[1.0, 3.0]]]))
    np.testing.assert_allclose(explanation.values, [[[0.0, 1.0]]], atol=1e-7)
    # a linear network: Deep SHAP = Linear SHAP (the multipliers are the weights)
    linear = nn.Sequential(nn.Linear(4, 1)).double()
    background, x = data(5, 4, 1), data(3, 4, 2)
    deep = DeepExplainer(linear, background)(x)
    np.testing.assert_allclose(deep.values, LinearExplainer(linear[0], background)(x).values, atol=1e-12)


def test_kernel_shap_is_exact_at_full_budget_and_improves_with_budget():
    model = mlp(6)
    background, x = data(8, 6, 1), data(4, 6, 2)
    exact = ExactExplainer(scalar(model), background)(x)
    full = KernelExplainer(scalar(model), background)(x, n_samples=2**6 - 2)
    np.testing.assert_allclose(full.values, exact.values, atol=1e-10)
    assert full.extras["evaluations"] == 2**6
    errors = []
    for budget in (8, 24, 48):
        kernel = KernelExplainer(scalar(model), background)(x, n_samples=budget)
        errors.append(np.abs(kernel.values - exact.values).mean())
    assert errors[0] > errors[2]
    assert kernel.extras["enumerated_sizes"] == [1, 5]  # 12 coalitions of sizes 1 and 5 fit in 48 · 0.6


def test_shapley_sampling_converges():
    model = mlp(5)
    background, x = data(6, 5, 1), data(2, 5, 2)
    exact = ExactExplainer(scalar(model), background)(x).values
    coarse = ShapleySamplingExplainer(scalar(model), background)(x, n_evaluations=20).values
    fine = ShapleySamplingExplainer(scalar(model), background)(x, n_evaluations=20000).values
    assert np.abs(fine - exact).mean() < 0.2 * np.abs(coarse - exact).mean()


def test_explanation_plots_draw_figures():
    model = mlp(4)
    explanation = ExactExplainer(scalar(model), data(3, 4, 1), feature_names=["a", "b", "c", "d"])(
        data(2, 4, 2)
    )
    figure = explanation.plot()
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()]
    image = DeepExplainer(small_cnn(), torch.randn(3, 1, 8, 8))(torch.randn(2, 1, 8, 8), target=1).plot()
    assert len(image.axes[0].images) == 2


# =============================================================================== properties (hypothesis)
def random_case(seed: int, n_features: int, outputs: int = 1):
    return mlp(n_features, outputs, seed), data(4, n_features, seed + 1), data(2, n_features, seed + 2)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_features=st.integers(2, 6), budget_share=st.floats(0.0, 1.0))
def test_local_accuracy_eq5(seed, n_features, budget_share):
    """Eq. 5: φ_0 + Σ φ_i = f(x), for exact and Kernel SHAP at any budget and for Deep SHAP."""
    model, background, x = random_case(seed, n_features, outputs=2)
    fx = model(x).detach().numpy()
    minimum = min(n_features, 2**n_features - 2)
    budget = minimum + round(budget_share * (2**n_features - 2 - minimum))
    generator = torch.Generator().manual_seed(seed)
    for explanation in (
        ExactExplainer(model, background)(x),
        KernelExplainer(model, background)(x, n_samples=budget, generator=generator),
        DeepExplainer(model, background)(x),
    ):
        total = explanation.values.sum(1) + explanation.base_value
        np.testing.assert_allclose(total, fx, atol=1e-10, err_msg=explanation.method)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_features=st.integers(3, 6), feature=st.integers(0, 5))
def test_missingness_eq6_and_dummy(seed, n_features, feature):
    """Eq. 6: a feature whose value equals every background row's gets φ = 0; so does one f ignores."""
    feature = feature % n_features
    model, background, x = random_case(seed, n_features)
    background[:, feature] = 0.7
    x[:, feature] = 0.7  # missing: x_i carries no information relative to the background
    dummy = (feature + 1) % n_features
    with torch.no_grad():
        model[0].weight[:, dummy] = 0.0  # f does not read feature ``dummy``
    f = scalar(model)
    for explanation in (
        ExactExplainer(f, background)(x),
        KernelExplainer(f, background)(x, n_samples=2**n_features - 2),
        ShapleySamplingExplainer(f, background)(x, n_evaluations=4 * n_features),
        DeepExplainer(model, background)(x, target=0),
    ):
        np.testing.assert_allclose(
            explanation.values[:, feature], 0.0, atol=1e-10, err_msg=explanation.method
        )
        np.testing.assert_allclose(explanation.values[:, dummy], 0.0, atol=1e-10, err_msg=explanation.method)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_features=st.integers(3, 6), c=st.floats(0.0, 5.0))
def test_consistency_eq7_and_symmetry(seed, n_features, c):
    """Eq. 7: adding c·(x_0 − b_0)-increasing terms raises every marginal contribution of feature 0, so φ_0
    cannot fall. Symmetry: features 1 and 2 enter f only through x_1 + x_2 and agree in x and every row."""
    torch.manual_seed(seed)
    background = data(4, n_features, seed)
    background[:, 2] = background[:, 1]
    x = data(1, n_features, seed + 1)
    x[:, 0] = background[:, 0].max() + 0.5  # x_0 above every background value of feature 0
    x[:, 2] = x[:, 1]
    net = mlp(n_features - 1, 1, seed)

    def f(t):
        merged = torch.cat([t[:, :1], t[:, 1:2] + t[:, 2:3], t[:, 3:]], 1)
        return net(merged)[:, 0]

    def g(t):  # f plus c · x_0 · (1 + x_1²): each marginal contribution of feature 0 grows by ≥ 0
        return f(t) + c * t[:, 0] * (1 + t[:, 1] ** 2)

    exact_f = ExactExplainer(f, background)(x).values
    exact_g = ExactExplainer(g, background)(x).values
    assert exact_g[0, 0] >= exact_f[0, 0] - 1e-10
    np.testing.assert_allclose(exact_f[:, 1], exact_f[:, 2], atol=1e-10)
    kernel_f = KernelExplainer(f, background)(x, n_samples=2**n_features).values
    np.testing.assert_allclose(kernel_f[:, 1], kernel_f[:, 2], atol=1e-10)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), a=st.floats(-3, 3), b=st.floats(-3, 3), budget=st.integers(5, 30))
def test_linearity(seed, a, b, budget):
    """φ(a f + b g) = a φ(f) + b φ(g): exact; Kernel SHAP too on the same coalitions (same generator)."""
    n_features = 5
    f, background, x = random_case(seed, n_features)
    g = mlp(n_features, 1, seed + 7)
    h = lambda t: a * f(t)[:, 0] + b * g(t)[:, 0]
    exact = ExactExplainer(h, background)(x).values
    exact_f = ExactExplainer(scalar(f), background)(x).values
    exact_g = ExactExplainer(scalar(g), background)(x).values
    np.testing.assert_allclose(exact, a * exact_f + b * exact_g, atol=1e-10)

    def kernel(model):
        generator = torch.Generator().manual_seed(seed)
        return KernelExplainer(model, background)(x, n_samples=budget, generator=generator).values

    np.testing.assert_allclose(kernel(h), a * kernel(scalar(f)) + b * kernel(scalar(g)), atol=1e-9)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_deep_shap_local_accuracy_on_a_cnn(seed):
    """Summation to delta through Conv2d, ReLU, max and average pooling, Flatten, Linear (and a final softmax)."""
    torch.manual_seed(seed)
    background, x = torch.randn(5, 1, 8, 8), torch.randn(3, 1, 8, 8)
    for softmax in (False, True):
        explanation = DeepExplainer(small_cnn(softmax, seed), background)(x)
        assert explanation.extras["local_accuracy_gap"] < 1e-5


# =============================================================================== parity with shap
def _numpy_model(model: nn.Module):
    def f(array):
        with torch.no_grad():
            return model(torch.as_tensor(np.asarray(array), dtype=torch.float32)).numpy()

    return f


@pytest.mark.parity
def test_parity_exact_explainer():
    shap = pytest.importorskip("shap")
    model = mlp(5, 2, dtype=torch.float32)
    background, x = data(6, 5, 1, torch.float32), data(3, 5, 2, torch.float32)
    ours = ExactExplainer(model, background)(x)
    masker = shap.maskers.Independent(background.numpy(), max_samples=len(background))
    reference = shap.ExactExplainer(_numpy_model(model), masker)(x.numpy())
    np.testing.assert_allclose(ours.values, reference.values, atol=ATOL)
    np.testing.assert_allclose(ours.base_value, reference.base_values[0], atol=ATOL)


@pytest.mark.parity
def test_parity_kernel_explainer_full_budget():
    """With a budget covering all 2^M − 2 coalitions both solve the same regression: equal values."""
    shap = pytest.importorskip("shap")
    model = mlp(6, 2, dtype=torch.float32)
    background, x = data(7, 6, 1, torch.float32), data(3, 6, 2, torch.float32)
    ours = KernelExplainer(model, background)(x, n_samples=2**6 - 2)
    reference = shap.KernelExplainer(_numpy_model(model), background.numpy())
    values = reference.shap_values(x.numpy(), nsamples=2**6 - 2, l1_reg=False, silent=True)
    np.testing.assert_allclose(ours.values, values, atol=ATOL)
    np.testing.assert_allclose(ours.base_value, reference.expected_value, atol=ATOL)


# Kernel SHAP at partial budgets (n_samples well below 2^M − 2): how the budget is split between
# enumerated coalition sizes and sampled ones, and the rescaling of the sampled coalitions' weights
# to the kernel mass left over (shap's scheme). Full-budget parity cannot see either.
PARTIAL_M = 10


def _shap_kernel_coalitions(shap, background: torch.Tensor, x: torch.Tensor, n_samples: int, seed: int):
    """shap's coalition masks ``[C, M]``, their weights normalised to sum 1, and how many were enumerated.

    shap adds enumerated coalitions with their kernel weight and sampled ones with weight 1.0 (then
    rescaled), enumerated first: recording ``addsample`` calls tells the two apart.
    """
    explainer = shap.KernelExplainer(lambda a: a.sum(1), background.numpy())
    enumerated: list[int] = []
    add = explainer.addsample

    def recording(instance, mask, weight):
        if weight != 1.0:
            enumerated.append(explainer.nsamplesAdded)
        add(instance, mask, weight)

    explainer.addsample = recording
    np.random.seed(seed)
    explainer.explain(x.numpy()[None], nsamples=n_samples, l1_reg=False)
    count = explainer.nsamplesAdded
    assert enumerated == list(range(len(enumerated)))  # enumerated coalitions come first
    weights = explainer.kernelWeights[:count]
    return explainer.maskMatrix[:count].astype(bool), weights / weights.sum(), len(enumerated)


def _codes(masks) -> np.ndarray:
    return (np.asarray(masks, dtype=np.int64) << np.arange(np.asarray(masks).shape[1])).sum(1)


def _codes_t(masks: torch.Tensor) -> torch.Tensor:
    return (masks.long() << torch.arange(masks.shape[1])).sum(1)


@pytest.mark.parity
@pytest.mark.parametrize(
    "n_features, n_samples", [(10, 30), (10, 60), (10, 200), (10, 300), (10, 1000), (9, 150)]
)
def test_parity_kernel_partial_budget_split_and_weights(n_features, n_samples):
    """Same enumerated sizes as shap, the same (normalised) weight on each enumerated coalition, and the
    sampled coalitions rescaled to the kernel mass left: Σ_{sampled} w = Σ_{s not enumerated} C(M, s) π(s)."""
    shap = pytest.importorskip("shap")
    m = n_features
    background, x = data(4, m, 1), data(1, m, 2)[0]
    masks, weights, enumerated = KernelExplainer(lambda t: t.sum(1), background).coalitions(
        n_samples, torch.Generator().manual_seed(0)
    )
    ref_masks, ref_weights, ref_enumerated = _shap_kernel_coalitions(shap, background, x, n_samples, seed=0)
    assert masks.shape[0] == len(ref_masks) == n_samples  # the budget buys n_samples distinct coalitions
    assert len(torch.unique(_codes_t(masks))) == n_samples
    n_enum = sum(math.comb(m, s) for s in enumerated)
    assert n_enum == ref_enumerated
    assert sorted(enumerated) == sorted(set(ref_masks[:ref_enumerated].sum(1).tolist()))
    weights = (weights / weights.sum()).numpy()
    # enumerated coalitions: each the normalised kernel weight π(|z|) / Σ_s C(M, s) π(s), as shap
    ours_enum = dict(zip(_codes(masks[:n_enum].numpy()).tolist(), weights[:n_enum]))
    ref_enum = dict(zip(_codes(ref_masks[:ref_enumerated]).tolist(), ref_weights[:ref_enumerated]))
    assert ours_enum.keys() == ref_enum.keys()
    np.testing.assert_allclose([ours_enum[c] for c in ref_enum], list(ref_enum.values()), rtol=1e-10)
    # sampled coalitions: sizes never enumerated, total weight = the kernel mass left (rescaling)
    assert not set(masks[n_enum:].sum(1).tolist()) & set(enumerated)
    mass = {s: math.comb(m, s) * shapley_kernel_weight(m, s) for s in range(1, m)}
    left = sum(v for s, v in mass.items() if s not in enumerated) / sum(mass.values())
    assert weights[n_enum:].sum() == pytest.approx(left, rel=1e-10)
    assert ref_weights[ref_enumerated:].sum() == pytest.approx(left, rel=1e-10)


@pytest.mark.parity
@pytest.mark.parametrize("n_samples", [100, 300])
def test_parity_kernel_partial_budget_sampled_weight_per_size(n_samples):
    """Averaged over seeds, each sampled size carries the same share of the weight as in shap (≈ its kernel mass)."""
    shap = pytest.importorskip("shap")
    m = PARTIAL_M
    background, x = data(4, m, 1), data(1, m, 2)[0]
    explainer = KernelExplainer(lambda t: t.sum(1), background)
    ours, reference = np.zeros(m + 1), np.zeros(m + 1)
    seeds = range(20)
    for seed in seeds:
        masks, weights, enumerated = explainer.coalitions(n_samples, torch.Generator().manual_seed(seed))
        n_enum = sum(math.comb(m, s) for s in enumerated)
        np.add.at(ours, masks[n_enum:].sum(1).numpy(), (weights[n_enum:] / weights.sum()).numpy())
        ref_masks, ref_weights, ref_enumerated = _shap_kernel_coalitions(shap, background, x, n_samples, seed)
        np.add.at(reference, ref_masks[ref_enumerated:].sum(1), ref_weights[ref_enumerated:])
    np.testing.assert_allclose(ours / len(seeds), reference / len(seeds), atol=0.015)


def _interactions(t: torch.Tensor) -> torch.Tensor:
    """Non-additive in every feature: a partial-budget regression's answer depends on its weights."""
    return (
        t[:, 0] * t[:, 1] * t[:, 2]
        + 2 * t[:, 3] * t[:, 4]
        + torch.sin(3 * t[:, 5]) * t[:, 6]
        + t[:, 7:].prod(1)
    )


@pytest.mark.parity
@pytest.mark.parametrize("n_samples", [30, 100, 300])
def test_parity_kernel_partial_budget_additive_model_is_exact(n_samples):
    """An additive model is fitted exactly by any weighted regression of full rank: ours = shap = φ exactly."""
    shap = pytest.importorskip("shap")
    m = PARTIAL_M
    weight = torch.linspace(-2.0, 3.0, m, dtype=torch.float64)
    model = lambda t: t @ weight + torch.sin(t[:, 0]) + t[:, 1] ** 2  # additive, not linear
    background, x = data(5, m, 3), data(2, m, 4)
    exact = ExactExplainer(model, background)(x).values
    ours = KernelExplainer(model, background)(x, n_samples=n_samples).values
    np.random.seed(0)
    reference = shap.KernelExplainer(lambda a: model(torch.from_numpy(a)).numpy(), background.numpy())
    values = reference.shap_values(x.numpy(), nsamples=n_samples, l1_reg=False, silent=True)
    np.testing.assert_allclose(ours, exact, atol=1e-9)
    np.testing.assert_allclose(values, exact, atol=1e-9)


@pytest.mark.parity
@pytest.mark.parametrize("n_samples", [200, 300])
def test_parity_kernel_partial_budget_non_additive_model_mean_over_seeds(n_samples):
    """Interactions: averaged over 20 seeds ours agrees with shap (and the exact values) to ≈ 0.01, where
    mis-weighting the sampled coalitions against the enumerated ones shifts the mean by ≈ 0.05-0.08."""
    shap = pytest.importorskip("shap")
    m = PARTIAL_M
    generator = torch.Generator().manual_seed(1)
    background = torch.randn(4, m, generator=generator, dtype=torch.float64)
    x = torch.randn(1, m, generator=generator, dtype=torch.float64)
    exact = ExactExplainer(_interactions, background)(x).values[0]
    explainer = KernelExplainer(_interactions, background)
    reference = shap.KernelExplainer(lambda a: _interactions(torch.from_numpy(a)).numpy(), background.numpy())
    ours, theirs = [], []
    for seed in range(20):
        ours.append(
            explainer(x, n_samples=n_samples, generator=torch.Generator().manual_seed(seed)).values[0]
        )
        np.random.seed(seed)
        theirs.append(reference.shap_values(x.numpy(), nsamples=n_samples, l1_reg=False, silent=True)[0])
    ours, theirs = np.mean(ours, 0), np.mean(theirs, 0)
    np.testing.assert_allclose(ours, theirs, atol=0.025)
    np.testing.assert_allclose(ours, exact, atol=0.02)


@pytest.mark.parity
def test_parity_linear_explainer():
    shap = pytest.importorskip("shap")
    torch.manual_seed(0)
    layer = nn.Linear(5, 1)
    background, x = data(20, 5, 1, torch.float32), data(4, 5, 2, torch.float32)
    ours = LinearExplainer(layer, background)(x)
    coef, intercept = layer.weight.detach().numpy()[0], layer.bias.detach().numpy()[0]
    reference = shap.LinearExplainer((coef, intercept), background.numpy())
    np.testing.assert_allclose(ours.values, reference.shap_values(x.numpy()), atol=ATOL)
    np.testing.assert_allclose(ours.base_value, reference.expected_value, atol=ATOL)


@pytest.mark.parity
@pytest.mark.parametrize("network", ["mlp", "cnn_softmax", "cnn_logits"])
def test_parity_deep_explainer(network):
    """Same model, same background: shap.DeepExplainer's values (all outputs) within 1e-5 (float32)."""
    shap = pytest.importorskip("shap")
    torch.manual_seed(3)
    if network == "mlp":
        model, shape = mlp(6, 3, dtype=torch.float32), (6,)
    else:
        model, shape = small_cnn(softmax=network == "cnn_softmax"), (1, 8, 8)
    background, x = torch.randn(7, *shape), torch.randn(4, *shape)
    ours = DeepExplainer(model, background)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = shap.DeepExplainer(model, background)
        values = reference.shap_values(x, check_additivity=False)
    assert ours.values.shape == np.shape(values)
    np.testing.assert_allclose(ours.values, values, atol=ATOL)
    np.testing.assert_allclose(ours.base_value, reference.expected_value, atol=ATOL)
    single = DeepExplainer(model, background)(x, target=1)
    np.testing.assert_allclose(single.values, np.asarray(values)[..., 1], atol=ATOL)


# =============================================================================== bad input
def test_bad_input_tabular_explainers():
    f = scalar(mlp(4))
    background = data(3, 4, 0)
    with pytest.raises(TypeError, match="model must be callable"):
        ExactExplainer("model", background)
    with pytest.raises(TypeError, match="background must be a torch.Tensor"):
        KernelExplainer(f, background.numpy())
    with pytest.raises(TypeError, match="background must be a floating-point tensor"):
        KernelExplainer(f, background.long())
    with pytest.raises(ValueError, match=r"background must have shape \[n, M\]"):
        KernelExplainer(f, background[0])
    with pytest.raises(ValueError, match="x must have 4 features .* got shape \\(2, 5\\)"):
        ExactExplainer(f, background)(data(2, 5, 1))
    with pytest.raises(ValueError, match="x must be finite"):
        ExactExplainer(f, background)(torch.full((1, 4), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="max_features=16 features .* got background with 17"):
        ExactExplainer(lambda t: t.sum(1), data(2, 17, 0))
    with pytest.raises(ValueError, match="model must map \\[n, M\\] to outputs"):
        ExactExplainer(lambda t: t[:, :, None], background)
    with pytest.raises(ValueError, match="feature_names must hold 4 names"):
        ExactExplainer(f, background, feature_names=["a"])


def test_bad_input_budgets():
    f = scalar(mlp(4))
    background, x = data(3, 4, 0), data(1, 4, 1)
    with pytest.raises(ValueError, match="n_samples must be >= 4 .* got 3"):
        KernelExplainer(f, background)(x, n_samples=3)
    with pytest.raises(TypeError, match="n_samples must be an int, got float"):
        KernelExplainer(f, background)(x, n_samples=10.0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        KernelExplainer(f, background)(x, n_samples=10, generator=0)
    with pytest.raises(ValueError, match="n_evaluations must be >= 2M = 8 .* got 7"):
        ShapleySamplingExplainer(f, background)(x, n_evaluations=7)
    with pytest.raises(ValueError, match="size must be in \\[1, n_features - 1\\]"):
        shapley_kernel_weight(4, 4)


def test_bad_input_linear_explainer():
    with pytest.raises(TypeError, match="model must be an nn.Linear or a \\(weight, bias\\) pair"):
        LinearExplainer("linear", data(2, 3, 0))
    with pytest.raises(ValueError, match="bias must have 2 entries"):
        LinearExplainer((torch.ones(2, 3), torch.ones(3)), data(2, 3, 0, torch.float32))
    with pytest.raises(ValueError, match="background must have 3 features"):
        LinearExplainer(nn.Linear(3, 1), data(2, 4, 0, torch.float32))


def test_bad_input_deep_explainer():
    background = torch.randn(3, 1, 8, 8)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        DeepExplainer(lambda t: t, background)
    with pytest.raises(TypeError, match="model.1 is a LSTM, which Deep SHAP has no rule for"):
        DeepExplainer(nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4)), torch.randn(3, 4))
    with pytest.raises(TypeError, match="model.1 is an in-place ReLU"):
        DeepExplainer(nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True)), torch.randn(3, 4))
    explainer = DeepExplainer(small_cnn(), background)
    with pytest.raises(ValueError, match="x must have shape \\[N, 1, 8, 8\\] .* got \\(2, 1, 6, 6\\)"):
        explainer(torch.randn(2, 1, 6, 6))
    with pytest.raises(TypeError, match="x must be a floating-point torch.Tensor"):
        explainer(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="target must be an output index in \\[0, 3\\), got 3"):
        explainer(torch.randn(2, 1, 8, 8), target=3)
    with pytest.raises(ValueError, match="x must hold at least one input, got shape \\(0, 1, 8, 8\\)"):
        explainer(torch.randn(0, 1, 8, 8))
    with pytest.raises(ValueError, match="background must have shape \\[B, \\*input_shape\\]"):
        DeepExplainer(small_cnn(), torch.randn(0, 1, 8, 8))
