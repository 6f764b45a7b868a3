"""Discrete Bayesian networks: sampling, variable elimination, Dirichlet updating, EM."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs.bayesnet import (
    BayesianNetwork,
    DirichletPosterior,
    as_data,
    expectation_maximization,
    family_counts,
    maximum_likelihood_cpts,
    topological_order,
)

pytestmark = pytest.mark.paper("bayesian-networks")


def sprinkler() -> BayesianNetwork:
    """Cloudy -> Sprinkler, Cloudy -> Rain, (Sprinkler, Rain) -> WetGrass; state 1 = true."""
    return BayesianNetwork(
        ["cloudy", "sprinkler", "rain", "wet"],
        [2, 2, 2, 2],
        {"sprinkler": ["cloudy"], "rain": ["cloudy"], "wet": ["sprinkler", "rain"]},
        {
            "cloudy": [0.5, 0.5],
            "sprinkler": [[0.5, 0.5], [0.9, 0.1]],
            "rain": [[0.8, 0.2], [0.2, 0.8]],
            "wet": [[[1.0, 0.0], [0.1, 0.9]], [[0.1, 0.9], [0.01, 0.99]]],
        },
    )


def random_network(seed: int, n_vars: int, max_card: int = 3, edge_p: float = 0.5) -> BayesianNetwork:
    """A random DAG (edges respect a random order) with random CPTs."""
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(n_vars)]
    cards = rng.integers(2, max_card + 1, size=n_vars).tolist()
    perm = rng.permutation(n_vars)
    parents = {
        names[perm[j]]: [names[perm[i]] for i in range(j) if rng.random() < edge_p] for j in range(n_vars)
    }
    net = BayesianNetwork(names, cards, parents)
    cpts = {
        v: rng.dirichlet(np.ones(net.family_shape(i)[-1]), size=net.family_shape(i)[:-1])
        for i, v in enumerate(names)
    }
    return BayesianNetwork(names, cards, parents, cpts)


# ------------------------------------------------------------------------------ golden values
def test_sprinkler_posterior_golden():
    # P(rain | wet) = 0.4581/0.6471 = 0.7079 (hand-computed by enumeration of the 16-entry joint)
    net = sprinkler()
    p_wet = sum(
        0.5 * net.cpts[1][c, s] * net.cpts[2][c, r] * net.cpts[3][s, r, 1]
        for c, s, r in itertools.product(range(2), repeat=3)
    )
    assert p_wet == pytest.approx(0.6471, abs=1e-12)
    assert net.probability_of_evidence({"wet": 1}) == pytest.approx(0.6471, abs=1e-12)
    assert net.query(["rain"], {"wet": 1})[1] == pytest.approx(0.4581 / 0.6471, abs=1e-12)
    assert net.query(["sprinkler"], {"wet": 1})[1] == pytest.approx(0.2781 / 0.6471, abs=1e-12)


def test_counts_and_ml_golden():
    data = np.array([[0, 0], [0, 1], [0, 1], [1, 1]])
    net = BayesianNetwork(["a", "b"], [2, 2], {"b": ["a"]})
    np.testing.assert_array_equal(family_counts(data, 1, [0], [2, 2]), [[1, 2], [0, 1]])
    a, b = maximum_likelihood_cpts(data, net)
    np.testing.assert_allclose(a, [0.75, 0.25])
    np.testing.assert_allclose(b, [[1 / 3, 2 / 3], [0.0, 1.0]])


def test_ml_unseen_parent_configuration_is_uniform():
    data = np.array([[0, 0], [0, 1]])
    net = BayesianNetwork(["a", "b"], [2, 3], {"b": ["a"]})
    np.testing.assert_allclose(maximum_likelihood_cpts(data, net)[1][1], [1 / 3] * 3)


def test_topological_order_parents_first():
    net = random_network(3, 7)
    position = {v: k for k, v in enumerate(net.order)}
    for child, pa in enumerate(net.parents):
        assert all(position[p] < position[child] for p in pa)


# ------------------------------------------------------------------------------ sampling
def test_forward_sampling_matches_joint():
    net = random_network(1, 4)
    x = net.sample(200_000, np.random.default_rng(0))
    flat = np.ravel_multi_index(x.T, net.cardinalities)
    empirical = np.bincount(flat, minlength=int(np.prod(net.cardinalities))) / len(x)
    assert np.abs(empirical - net.joint().ravel()).max() < 0.01


def test_sampling_generators_repeat():
    net = sprinkler()
    a = net.sample(100, np.random.default_rng(5))
    np.testing.assert_array_equal(a, net.sample(100, np.random.default_rng(5)))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    np.testing.assert_array_equal(net.sample(100, g1), net.sample(100, g2))
    assert a.dtype == np.int64 and a.shape == (100, 4)


def test_deterministic_cpt_never_samples_zero_probability_state():
    net = sprinkler()
    x = net.sample(20_000, np.random.default_rng(1))
    # wet is never true when neither sprinkler nor rain is
    assert not ((x[:, 1] == 0) & (x[:, 2] == 0) & (x[:, 3] == 1)).any()


# ------------------------------------------------------------------------------ inference invariants
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_vars=st.integers(2, 6), data=st.data())
def test_variable_elimination_equals_enumeration(seed, n_vars, data):
    net = random_network(seed, n_vars)
    names = net.names
    n_query = data.draw(st.integers(1, min(2, n_vars)))
    picked = data.draw(st.permutations(range(n_vars)))
    query = [names[i] for i in picked[:n_query]]
    evidence_vars = picked[n_query : n_query + data.draw(st.integers(0, n_vars - n_query))]
    evidence = {names[i]: data.draw(st.integers(0, net.cardinalities[i] - 1)) for i in evidence_vars}
    order = data.draw(st.sampled_from(["min_fill", "min_degree"]))
    joint = net.joint()
    index = tuple(evidence.get(v, slice(None)) for v in names)
    sliced_axes = [i for i, v in enumerate(names) if v not in evidence]
    reduced = joint[index]
    keep = [sliced_axes.index(names.index(q)) for q in query]
    brute = reduced.sum(axis=tuple(k for k in range(reduced.ndim) if k not in keep))
    brute = np.transpose(brute, np.argsort(np.argsort(keep)))  # axes in query order
    brute = brute / brute.sum()
    np.testing.assert_allclose(net.query(query, evidence, elimination_order=order), brute, atol=1e-12)


def test_elimination_orders_agree_and_explicit_order():
    net = random_network(11, 7)
    hidden = net.names[2:]
    a = net.query(net.names[:2], elimination_order="min_fill")
    b = net.query(net.names[:2], elimination_order=list(reversed(hidden)))
    np.testing.assert_allclose(a, b, atol=1e-14)


def test_marginals_sum_to_one():
    net = random_network(2, 6)
    for table in net.marginals({net.names[0]: 1}).values():
        assert table.sum() == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------------------ Dirichlet updating
def test_sequential_updating_equals_batch_exactly():
    net = random_network(4, 5)
    data = net.sample(500, np.random.default_rng(0))
    seq = DirichletPosterior.bdeu(net, 3.0)
    for case in data:
        seq.update(case)
    batch = DirichletPosterior.bdeu(net, 3.0).update_batch(data)
    for a, b in zip(seq.alpha, batch.alpha):
        assert np.abs(a - b).max() <= 1e-12
    for a, b in zip(seq.mean(), batch.mean()):
        assert np.abs(a - b).max() <= 1e-15


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), ess=st.floats(0.1, 20.0))
def test_chain_rule_equals_eq35(seed, n, ess):
    from aicanon.graphs.bayesnet_structure import FamilyScorer

    net = random_network(seed, 4)
    data = net.sample(n, np.random.default_rng(seed))
    post = DirichletPosterior.bdeu(net, ess)
    chain = sum(post.update(case) for case in data)
    eq35 = FamilyScorer(data, net.cardinalities, "bdeu", ess).total(net.adjacency())
    assert chain == pytest.approx(eq35, rel=1e-10, abs=1e-10)


def test_posterior_mean_golden():
    net = BayesianNetwork(["a"], [2])
    post = DirichletPosterior(net, [np.array([1.0, 3.0])]).update_batch(np.array([[0], [0], [1]]))
    np.testing.assert_allclose(post.alpha[0], [3.0, 4.0])
    np.testing.assert_allclose(post.mean()[0], [3 / 7, 4 / 7])


# ------------------------------------------------------------------------------ EM
def test_em_without_missing_values_is_ml():
    net = random_network(5, 5)
    data = net.sample(300, np.random.default_rng(0))
    em = expectation_maximization(data, net, max_iterations=3)
    for a, b in zip(em.network.cpts, maximum_likelihood_cpts(data, net)):
        np.testing.assert_allclose(a, b, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_em_log_likelihood_non_decreasing(seed):
    net = random_network(seed, 4)
    rng = np.random.default_rng(seed)
    data = net.sample(150, rng)
    mask = rng.random(data.shape) < 0.3
    em = expectation_maximization(
        data, net, mask=mask, init="random", generator=rng, max_iterations=15, tolerance=0
    )
    lls = np.asarray(em.log_likelihoods)
    assert np.all(np.diff(lls) >= -1e-9 * np.abs(lls[:-1]))


def test_em_log_likelihood_matches_inference():
    net = sprinkler()
    data = np.array([[1, -1, -1, 1], [0, 1, -1, -1], [1, 0, 1, 1]])
    em = expectation_maximization(data, net, max_iterations=1)
    expected = (
        np.log(net.probability_of_evidence({"cloudy": 1, "wet": 1}))
        + np.log(net.probability_of_evidence({"cloudy": 0, "sprinkler": 1}))
        + net.log_likelihood(data[2:])
    )
    assert em.log_likelihoods[0] == pytest.approx(expected, abs=1e-12)


def test_em_map_with_unit_alpha_is_ml_and_mask_equals_minus_one():
    net = random_network(6, 4)
    rng = np.random.default_rng(1)
    data = net.sample(200, rng)
    mask = rng.random(data.shape) < 0.2
    ones = [np.ones(net.family_shape(i)) for i in range(net.n_vars)]
    by_mask = expectation_maximization(data, net, mask=mask, max_iterations=5, alpha=ones)
    coded = np.where(mask, -1, data)
    by_code = expectation_maximization(coded, net, max_iterations=5)
    for a, b in zip(by_mask.network.cpts, by_code.network.cpts):
        np.testing.assert_allclose(a, b, atol=1e-12)


# ------------------------------------------------------------------------------ parity with pgmpy
def _pgmpy_model(net: BayesianNetwork):
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    model = DiscreteBayesianNetwork(net.edges)
    model.add_nodes_from(net.names)
    for i, v in enumerate(net.names):
        pa = [net.names[p] for p in net.parents[i]]
        values = net.cpts[i].reshape(-1, net.cardinalities[i]).T  # [r_i, q_i], first parent slowest
        model.add_cpds(
            TabularCPD(
                v,
                net.cardinalities[i],
                values,
                evidence=pa or None,
                evidence_card=[net.cardinalities[p] for p in net.parents[i]] or None,
                state_names={u: list(range(net.cardinalities[net.index(u)])) for u in [v, *pa]},
            )
        )
    return model


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_parity_variable_elimination_pgmpy(seed):
    pytest.importorskip("pgmpy")
    from pgmpy.inference import VariableElimination

    net = random_network(seed, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ve = VariableElimination(_pgmpy_model(net))
        rng = np.random.default_rng(seed)
        order = rng.permutation(6)
        query = [net.names[order[0]], net.names[order[1]]]
        evidence = {net.names[i]: int(rng.integers(net.cardinalities[i])) for i in order[2:4]}
        theirs = ve.query(query, evidence=evidence, joint=True, show_progress=False)
        theirs_values = np.transpose(theirs.values, [theirs.variables.index(q) for q in query])
        marginal = ve.query([query[0]], evidence=evidence, show_progress=False).values
    np.testing.assert_allclose(net.query(query, evidence), theirs_values, atol=1e-12)
    np.testing.assert_allclose(net.query([query[0]], evidence), marginal, atol=1e-12)


@pytest.mark.parity
def test_parity_parameter_estimators_pgmpy():
    pytest.importorskip("pgmpy")
    import pandas as pd
    from pgmpy.estimators import BayesianEstimator, MaximumLikelihoodEstimator

    net = random_network(7, 5)
    data = net.sample(400, np.random.default_rng(0))
    frame = pd.DataFrame(data, columns=net.names)
    states = {v: list(range(c)) for v, c in zip(net.names, net.cardinalities)}
    model = _pgmpy_model(net)
    ml = maximum_likelihood_cpts(data, net)
    bayes = DirichletPosterior.bdeu(net, 5.0).update_batch(data).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mle = MaximumLikelihoodEstimator(model, frame, state_names=states)
        be = BayesianEstimator(model, frame, state_names=states)
        for i, v in enumerate(net.names):
            ml_cpd = mle.estimate_cpd(v)
            bayes_cpd = be.estimate_cpd(v, prior_type="BDeu", equivalent_sample_size=5.0)
            np.testing.assert_allclose(ml[i], _ours_layout(ml_cpd, net, i), atol=1e-12)
            np.testing.assert_allclose(bayes[i], _ours_layout(bayes_cpd, net, i), atol=1e-12)


def _ours_layout(cpd, net: BayesianNetwork, i: int) -> np.ndarray:
    """A pgmpy CPD ``[r_i, q_i]`` (its own parent order) as our ``[r_p1, .., r_pm, r_i]``."""
    theirs = list(cpd.variables[1:])
    values = cpd.get_values().reshape(
        [net.cardinalities[i]] + [net.cardinalities[net.index(u)] for u in theirs]
    )
    ours = [net.names[p] for p in net.parents[i]]
    return np.transpose(values, [1 + theirs.index(u) for u in ours] + [0])


# ------------------------------------------------------------------------------ bad input
def test_bad_network_definitions():
    with pytest.raises(ValueError, match="parents must describe a DAG"):
        BayesianNetwork(["a", "b"], [2, 2], {"a": ["b"], "b": ["a"]})
    with pytest.raises(ValueError, match=r"cpts\['b'\] rows must sum to 1"):
        BayesianNetwork(["a", "b"], [2, 2], {"b": ["a"]}, {"b": [[0.5, 0.6], [0.5, 0.5]]})
    with pytest.raises(ValueError, match=r"cpts\['b'\] must have shape \(2, 2\)"):
        BayesianNetwork(["a", "b"], [2, 2], {"b": ["a"]}, {"b": [0.5, 0.5]})
    with pytest.raises(ValueError, match="non-negative"):
        BayesianNetwork(["a"], [2], None, {"a": [1.5, -0.5]})
    with pytest.raises(ValueError, match="cardinalities must have one entry per variable"):
        BayesianNetwork(["a", "b"], [2])
    with pytest.raises(ValueError, match="cardinalities must all be >= 1"):
        BayesianNetwork(["a"], [0])
    with pytest.raises(ValueError, match="names must be unique"):
        BayesianNetwork(["a", "a"], [2, 2])
    with pytest.raises(ValueError, match="unknown variables"):
        BayesianNetwork(["a"], [2], {"a": ["z"]})
    with pytest.raises(TypeError, match="names must be"):
        BayesianNetwork("ab", [2, 2])
    with pytest.raises(ValueError, match="parents must describe a DAG"):
        topological_order([[1], [0]])


def test_bad_data():
    cards = [2, 3]
    with pytest.raises(ValueError, match=r"data column 1 holds state 3, out of range for cardinality 3"):
        as_data(np.array([[0, 3]]), cards)
    with pytest.raises(ValueError, match=r"data must have shape \[n_samples, 2\]"):
        as_data(np.zeros((4, 3), dtype=int), cards)
    with pytest.raises(TypeError, match="data must hold integers"):
        as_data(np.zeros((4, 2)), cards)
    with pytest.raises(TypeError, match="data must be a numpy array or torch tensor"):
        as_data([[0, 1]], cards)
    with pytest.raises(ValueError, match="data must be complete"):
        as_data(np.array([[0, -1]]), cards)
    with pytest.raises(ValueError, match="negative states other than -1"):
        as_data(np.array([[0, -2]]), cards, allow_missing=True)
    with pytest.raises(ValueError, match="mask must be a boolean array"):
        as_data(np.array([[0, 1]]), cards, mask=np.array([[1, 0]]))
    np.testing.assert_array_equal(as_data(torch.tensor([[1, 2]]), cards), [[1, 2]])
    with pytest.raises(ValueError, match="child must be variable indices in 0..1, got 5"):
        family_counts(np.array([[0, 1]]), 5, [0], cards)
    with pytest.raises(ValueError, match="parents must be distinct and exclude child"):
        family_counts(np.array([[0, 1]]), 1, [1], cards)
    with pytest.raises(TypeError, match="network must be a BayesianNetwork"):
        maximum_likelihood_cpts(np.array([[0, 1]]), "net")


def test_bad_queries_and_sampling():
    net = sprinkler()
    with pytest.raises(ValueError, match="unknown variable 'nope'"):
        net.query(["nope"])
    with pytest.raises(ValueError, match=r"evidence\['wet'\] must be a state in 0..1, got 2"):
        net.query(["rain"], {"wet": 2})
    with pytest.raises(ValueError, match="also in evidence"):
        net.query(["rain"], {"rain": 1})
    with pytest.raises(TypeError, match="variables must be a non-empty sequence"):
        net.query("rain")
    with pytest.raises(ValueError, match="elimination_order must be"):
        net.query(["rain"], elimination_order="fastest")
    with pytest.raises(ValueError, match="elimination_order must include every hidden variable"):
        net.query(["wet"], elimination_order=["rain"])
    with pytest.raises(ValueError, match="probability zero"):
        net.query(["cloudy"], {"sprinkler": 0, "rain": 0, "wet": 1})
    with pytest.raises(ValueError, match="n_samples must be a non-negative int"):
        net.sample(-1)
    with pytest.raises(TypeError, match="generator must be a numpy Generator or torch.Generator"):
        net.sample(3, generator=0)


def test_bad_learning_arguments():
    net = sprinkler()
    with pytest.raises(ValueError, match="equivalent_sample_size must be > 0"):
        DirichletPosterior.bdeu(net, 0.0)
    with pytest.raises(ValueError, match=r"alpha\[0\] must have shape \(2,\)"):
        DirichletPosterior(net, [np.ones(3)] + [np.ones(net.family_shape(i)) for i in range(1, 4)])
    with pytest.raises(ValueError, match="alpha must be >= 1 everywhere"):
        expectation_maximization(
            np.zeros((2, 4), dtype=int), net, alpha=DirichletPosterior.bdeu(net, 1.0).alpha
        )
    with pytest.raises(ValueError, match="init must be 'network' or 'random'"):
        expectation_maximization(np.zeros((2, 4), dtype=int), net, init="zeros")
    with pytest.raises(ValueError, match="tolerance must be >= 0, got -1.0"):
        expectation_maximization(np.zeros((2, 4), dtype=int), net, tolerance=-1.0)
    with pytest.raises(ValueError, match="max_iterations must be >= 1, got 0"):
        expectation_maximization(np.zeros((2, 4), dtype=int), net, max_iterations=0)
    with pytest.raises(TypeError, match="network must be a BayesianNetwork"):
        expectation_maximization(np.zeros((2, 4), dtype=int), "net")
    with pytest.raises(ValueError, match="case column 0 holds state 2"):
        DirichletPosterior.bdeu(net).update(np.array([2, 0, 0, 0]))
