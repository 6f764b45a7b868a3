"""The graph-networks experiment: spring-mass simulator, models, quick reproduction, ablations."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import aicanon.experiments.graph_networks as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config
from aicanon.graphs.graphs_tuple import GraphsTuple

pytestmark = pytest.mark.paper("graph-networks")

SLUG = "graph-networks"
# a shortened config for the repeatability test (the pipeline end to end, a fraction of the cost)
SHORT = {
    "train_steps": 40,
    "batch_systems": 16,
    "test_systems": 40,
    "rollout_systems": 8,
    "rollout_steps": 5,
    "extra_test_bodies": (3,),
}


def _claim(reproduction, metric):
    return next(c for c in reproduction.claims if c.metric == metric)


# ------------------------------------------------------------------------------ the simulator
def _two_bodies(positions, masses, stiffness, rest) -> GraphsTuple:
    nodes = torch.tensor([[*positions[0], 0.0, 0.0, masses[0]], [*positions[1], 0.0, 0.0, masses[1]]])
    return GraphsTuple.from_edge_index(
        nodes, torch.tensor([[0, 1], [1, 0]]), torch.tensor([[stiffness, rest]] * 2), torch.zeros(1)
    )


def test_hookes_law_golden():
    # |d| = 2, L = 1.5, k = 3: tension 1.5 pulls the bodies together; a = F / m.
    graph = _two_bodies([(0.0, 0.0), (2.0, 0.0)], (0.5, 1.5), 3.0, 1.5)
    assert torch.allclose(experiment.spring_accelerations(graph), torch.tensor([[3.0, 0.0], [-1.0, 0.0]]))
    # compressed spring (|d| = 0.5 < L = 1.5) pushes them apart, along the diagonal here
    graph = _two_bodies([(0.0, 0.0), (0.3, 0.4)], (1.0, 1.0), 2.0, 1.5)
    assert torch.allclose(experiment.spring_accelerations(graph), torch.tensor([[-1.2, -1.6], [1.2, 1.6]]))


def test_semi_implicit_euler_step():
    graph = _two_bodies([(0.0, 0.0), (2.0, 0.0)], (0.5, 1.5), 3.0, 1.5)
    graph = graph.replace(
        nodes=graph.nodes.index_put((torch.tensor([0]), torch.tensor([2])), torch.tensor([1.0]))
    )
    stepped = experiment.integrate(graph, torch.tensor([[3.0, 0.0], [-1.0, 0.0]]), dt=0.1)
    # v = 1 + 0.1 * 3 = 1.3 then x = 0 + 0.1 * 1.3 (the new velocity: semi-implicit)
    assert torch.allclose(stepped.nodes[0], torch.tensor([0.13, 0.0, 1.3, 0.0, 0.5]))
    assert torch.allclose(stepped.nodes[1], torch.tensor([2.0 - 0.01, 0.0, -0.1, 0.0, 1.5]))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), bodies=st.integers(2, 9))
def test_momentum_is_conserved_and_edges_come_in_pairs(seed, bodies):
    cfg = experiment.Config.quick()
    graph, accelerations = experiment.sample_systems(6, bodies, cfg, torch.Generator().manual_seed(seed))
    assert graph.n_node.tolist() == [bodies] * 6 and graph.nodes.shape == (6 * bodies, 5)
    # Newton's third law: sum_i m_i a_i = 0 in every system
    momentum = (graph.nodes[:, 4:5] * accelerations).view(6, bodies, 2).sum(1)
    assert torch.allclose(momentum, torch.zeros_like(momentum), atol=1e-4)
    # every spring is two directed edges with the same attributes
    assert torch.equal(graph.senders[0::2], graph.receivers[1::2]) and torch.equal(
        graph.edges[0::2], graph.edges[1::2]
    )
    low, high = cfg.stiffness_range
    assert graph.num_edges == 0 or (graph.edges[:, 0].min() >= low and graph.edges[:, 0].max() <= high)


def test_symplectic_euler_keeps_energy_bounded():
    cfg = experiment.Config.quick()
    graph, _ = experiment.sample_systems(20, 5, cfg, torch.Generator().manual_seed(0))

    def energy(g: GraphsTuple) -> torch.Tensor:
        x, v, m = g.nodes[:, :2], g.nodes[:, 2:4], g.nodes[:, 4]
        kinetic = 0.5 * (m * v.pow(2).sum(1)).sum()
        length = (x[g.senders] - x[g.receivers]).norm(dim=1)
        potential = (
            0.5 * 0.5 * (g.edges[:, 0] * (length - g.edges[:, 1]) ** 2).sum()
        )  # each spring counted twice
        return kinetic + potential

    start = energy(graph)
    for _ in range(100):
        graph = experiment.integrate(graph, experiment.spring_accelerations(graph), cfg.dt)
    assert abs(float(energy(graph) / start) - 1) < 0.02


def test_sampling_is_seeded():
    cfg = experiment.Config.quick()
    a, ta = experiment.sample_systems(5, 8, cfg, torch.Generator().manual_seed(3))
    b, tb = experiment.sample_systems(5, 8, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.senders, b.senders) and torch.equal(ta, tb)


# ------------------------------------------------------------------------------ the models
def test_concatenated_state_mlp_cannot_take_another_size():
    cfg = experiment.Config.quick()
    generator = torch.Generator().manual_seed(0)
    mlp = experiment.ConcatenatedStateMLP(5, (16,))
    five, _ = experiment.sample_systems(4, 5, cfg, generator)
    assert mlp(five).shape == (20, 2)
    eight, _ = experiment.sample_systems(4, 8, cfg, generator)
    with pytest.raises(ValueError, match=r"exactly 5 bodies .* got systems of \[8\] bodies"):
        mlp(eight)


def test_graph_simulators_take_any_size():
    cfg = dataclasses.replace(experiment.Config.quick(), latent_size=8, hidden=(8,))
    generator = torch.Generator().manual_seed(0)
    for core in ("full", "deep_sets"):
        model = experiment.GraphSimulator(cfg, core)
        for bodies in (3, 5, 8, 11):
            graph, _ = experiment.sample_systems(2, bodies, cfg, generator)
            assert model(graph).shape == (2 * bodies, 2)
    with pytest.raises(ValueError, match="core must be 'full' or 'deep_sets', got 'transformer'"):
        experiment.GraphSimulator(cfg, "transformer")
    with pytest.raises(ValueError, match="core must be"):
        experiment.run(make_config(experiment, "quick", core="mlp"))


def test_deep_sets_simulator_is_blind_to_springs():
    cfg = dataclasses.replace(experiment.Config.quick(), latent_size=8, hidden=(8,))
    model = experiment.GraphSimulator(cfg, "deep_sets")
    graph, _ = experiment.sample_systems(3, 5, cfg, torch.Generator().manual_seed(0))
    stiffer = graph.replace(edges=graph.edges * 3)
    assert torch.equal(model(graph), model(stiffer))
    full = experiment.GraphSimulator(cfg, "full")
    assert not torch.equal(full(graph), full(stiffer))


def test_configs():
    quick, full = experiment.Config.quick(), experiment.Config.full()
    assert (quick.scale, full.scale) == ("quick", "full")
    assert (quick.train_bodies, quick.test_bodies) == (5, 8) and full.rollout_steps == 50 and full.seeds >= 3
    assert {c.metric for c in experiment.CLAIMS if c.quick is not None} == {
        "gn_error_ratio_test_over_train",
        "gn_error_train_bodies",
        "deep_sets_over_gn_error",
        "mlp_applicable_to_test_bodies",
    }


# ------------------------------------------------------------------------------ reproduction
def test_quick_reproduction_passes_every_quick_claim():
    result = reproduce(SLUG, make_config(experiment, "quick"))
    claimed = [c for c in result.claims if c.threshold is not None]
    failed = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failed, failed
    assert result.metrics["mlp_applicable_to_test_bodies"] == 0.0
    assert "not applicable" in result.details["mlp_error_test_bodies"]
    # the baselines are far off, and the GN's rollout error is small at both sizes
    assert (
        result.metrics["deep_sets_error_test_bodies"] > 0.3 and result.metrics["mlp_error_train_bodies"] > 0.3
    )
    assert result.metrics["gn_rollout_error_test_bodies"] < 0.2
    assert "graph_networks" in result.figures


@pytest.mark.parametrize(
    "ablation",
    [
        {"train_steps": 0},  # untrained: every model predicts noise
        {"core": "deep_sets", "baselines": False, "train_steps": 300},  # the main model without relations
        {"aggregation": "mean", "baselines": False},  # rho^{e->v} a mean: cannot add up a body's springs
    ],
)
def test_ablations_fail_the_quick_claims(ablation):
    result = reproduce(SLUG, make_config(experiment, "quick", **ablation))
    assert _claim(result, "gn_error_train_bodies").passed is False
    assert result.passed is False
    if ablation == {"train_steps": 0}:
        assert _claim(result, "deep_sets_over_gn_error").passed is False


def test_same_seed_same_metrics():
    a = reproduce(SLUG, make_config(experiment, "quick", **SHORT, seed=7))
    b = reproduce(SLUG, make_config(experiment, "quick", **SHORT, seed=7))
    assert a.metrics == b.metrics
    assert "gn_error_ratio_3_bodies" in a.metrics
    assert a.details["rollout_curves"] == b.details["rollout_curves"]
