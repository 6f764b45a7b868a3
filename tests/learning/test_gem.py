"""GEM and A-GEM: golden projections, the dual QP against a direct primal solve (scipy), the episodic
memory, the learner's first-order guarantee, and bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from torch import nn

from aicanon.learning.gem import (
    GEM,
    EpisodicMemory,
    agem_project,
    flat_gradient,
    project_gradient,
    solve_dual,
    violated,
)
from aicanon.learning.streams import ContinualLearner, Task

pytestmark = pytest.mark.paper("gem")


def _task(task_id=0, n=40, features=6, classes=None, seed=0):
    gen = torch.Generator().manual_seed(seed + 100 * task_id)
    labels = torch.tensor(classes) if classes else torch.arange(3)
    y = labels[torch.randint(0, len(labels), (n,), generator=gen)]
    x = torch.randn(n, features, generator=gen) + y[:, None].float()
    return Task(task_id, f"task {task_id}", x, y, x.clone(), y.clone(), classes)


def _violating_gradients(seed, count=4, size=30):
    """Random memory gradients G [K, p] and a gradient g that violates at least one constraint."""
    gen = torch.Generator().manual_seed(seed)
    memories = torch.randn(count, size, generator=gen, dtype=torch.float64)
    gradient = torch.randn(size, generator=gen, dtype=torch.float64) - 0.8 * memories[0]
    assert violated(gradient, memories).any()
    return gradient, memories


def _primal(gradient, memories, margin, eps):
    """min_{z,s} 1/2 |z - (g + margin G^T 1)|^2 + |s|^2 / (2 eps)  s.t.  G z + s >= -eps margin,
    solved directly in R^p (R^(p+K) with the slack) by scipy's SLSQP; no slack when eps = 0."""
    g = gradient.numpy()
    G = memories.numpy()
    K, p = G.shape
    target = g + margin * G.sum(0)
    if eps == 0:
        objective = lambda z: 0.5 * np.sum((z - target) ** 2)  # noqa: E731
        jac = lambda z: z - target  # noqa: E731
        constraints = {"type": "ineq", "fun": lambda z: G @ z, "jac": lambda z: G}
        start = g
    else:

        def objective(w):
            return 0.5 * np.sum((w[:p] - target) ** 2) + np.sum(w[p:] ** 2) / (2 * eps)

        def jac(w):
            return np.concatenate([w[:p] - target, w[p:] / eps])

        constraints = {
            "type": "ineq",
            "fun": lambda w: G @ w[:p] + w[p:] + eps * margin,
            "jac": lambda w: np.hstack([G, np.eye(K)]),
        }
        start = np.concatenate([g, np.zeros(K)])
    solution = minimize(
        objective,
        start,
        jac=jac,
        constraints=[constraints],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert solution.success, solution.message
    return torch.from_numpy(solution.x[:p])


# --- golden values ---------------------------------------------------------------------------------


def test_one_constraint_by_hand():
    # g = (1, 0), g_1 = (-1, 1): <g, g_1> = -1 < 0. Dual: min 1/2 * 2 v^2 - v, v >= margin.
    g = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g1 = torch.tensor([[-1.0, 1.0]], dtype=torch.float64)
    # margin 0: v* = 1/2, g~ = g + v g_1 = (0.5, 0.5), orthogonal to g_1 (the plain projection).
    assert torch.allclose(
        project_gradient(g, g1, margin=0.0, eps=0.0), torch.tensor([0.5, 0.5], dtype=torch.float64)
    )
    # margin 1: the bound is active, v* = 1, g~ = (0, 1): <g~, g_1> = 1 > 0, towards the memory.
    assert torch.allclose(
        project_gradient(g, g1, margin=1.0, eps=0.0), torch.tensor([0.0, 1.0], dtype=torch.float64)
    )
    # eps = 1: v* = 1 / (2 + 1) (soft constraint), g~ = (2/3, 1/3).
    assert torch.allclose(solve_dual(g, g1, margin=0.0, eps=1.0), torch.tensor([1 / 3], dtype=torch.float64))
    # A-GEM with g_ref = g_1: the same orthogonal projection as GEM with one constraint and no margin.
    assert torch.allclose(agem_project(g, g1[0]), torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_unchanged_when_no_constraint_is_violated():
    gen = torch.Generator().manual_seed(1)
    memories = torch.rand(3, 20, generator=gen)  # nonnegative entries: every <g, g_k> >= 0
    gradient = torch.rand(20, generator=gen)
    assert not violated(gradient, memories).any()
    assert project_gradient(gradient, memories, margin=0.5) is gradient
    # nothing to protect (K = 0): unchanged too
    assert project_gradient(gradient, memories[:0]) is gradient
    first = memories[0]
    assert agem_project(first, first) is first


@pytest.mark.parametrize("seed", range(5))
def test_constraints_hold_after_projection(seed):
    gradient, memories = _violating_gradients(seed)
    for margin in (0.0, 0.5):
        projected = project_gradient(gradient, memories, margin=margin, eps=0.0)
        assert (memories @ projected >= -1e-9).all()
    # with the paper's eps = 1e-3 the constraints are soft: violated by at most eps * (margin + u)
    projected = project_gradient(gradient, memories, margin=0.5, eps=1e-3)
    v = solve_dual(gradient, memories, 0.5, 1e-3)
    assert (memories @ projected >= -1e-3 * v - 1e-9).all()
    # A-GEM: exactly orthogonal to the reference gradient after a violation
    reference = memories.mean(0)
    if torch.dot(gradient, reference) < 0:
        assert abs(float(torch.dot(agem_project(gradient, reference), reference))) < 1e-9


def test_margin_pushes_along_the_memories():
    gradient, memories = _violating_gradients(7)
    plain = project_gradient(gradient, memories, margin=0.0, eps=0.0)
    strong = project_gradient(gradient, memories, margin=0.5, eps=0.0)
    assert (memories @ strong).sum() > (memories @ plain).sum()
    # the dual solution respects its bound
    assert (solve_dual(gradient, memories, 0.5, 0.0) >= 0.5 - 1e-9).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.floats(0.0, 2.0))
def test_kkt_conditions_of_the_projection(seed, count, margin):
    """KKT of the primal: g~ = g' + G^T u with u >= 0, G g~ >= 0 and u_k (G g~)_k = 0 (complementary
    slackness), where g' = g + margin G^T 1."""
    gen = torch.Generator().manual_seed(seed)
    memories = torch.randn(count, 25, generator=gen, dtype=torch.float64)
    gradient = torch.randn(25, generator=gen, dtype=torch.float64)
    v = solve_dual(gradient, memories, margin, 0.0)
    u = v - margin
    projected = gradient + memories.T @ v
    slack = memories @ projected
    assert (u >= -1e-7).all()
    assert (slack >= -1e-7).all()
    assert (u * slack).abs().max() < 1e-6


# --- parity with a direct primal solve ---------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("margin", "eps"), [(0.0, 0.0), (0.5, 0.0), (0.5, 1e-3)])
def test_dual_solution_matches_a_direct_primal_solve(seed, margin, eps):
    gradient, memories = _violating_gradients(seed, count=1 + seed)
    ours = project_gradient(gradient, memories, margin=margin, eps=eps)
    reference = _primal(gradient, memories, margin, eps)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_float32_gradients_match_the_primal_too():
    gradient, memories = _violating_gradients(11, count=3)
    ours = project_gradient(gradient.float(), memories.float(), margin=0.5, eps=0.0)
    assert ours.dtype == torch.float32
    reference = _primal(gradient.float().double(), memories.float().double(), 0.5, 0.0)
    torch.testing.assert_close(ours.double(), reference, atol=1e-5, rtol=0)


# --- episodic memory ---------------------------------------------------------------------------------


def test_memory_keeps_the_last_examples_of_each_task():
    memory = EpisodicMemory(5)
    first, second = _task(0), _task(1)
    for start in range(0, 12, 3):  # batches of 3: 12 examples, the last 5 remain
        memory.add(first, first.x_train[start : start + 3], first.y_train[start : start + 3])
    memory.add(second, second.x_train[:2], second.y_train[:2])
    x, y = memory.examples(0)
    kept = {tuple(row.tolist()) for row in x}
    assert kept == {tuple(row.tolist()) for row in first.x_train[7:12]}
    assert len(y) == 5 and len(memory.examples(1)[1]) == 2 and len(memory) == 7
    assert memory.task_ids == [0, 1] and memory.task(1) is second
    # a batch larger than the memory leaves its last M examples
    memory.add(second, second.x_train[:20], second.y_train[:20])
    assert {tuple(r.tolist()) for r in memory.examples(1)[0]} == {
        tuple(r.tolist()) for r in second.x_train[15:20]
    }
    assert memory.nbytes == 2 * 5 * (6 * 4 + 8)


def test_flat_gradient_matches_autograd_and_fills_unused_parameters_with_zeros():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    unused = nn.Parameter(torch.ones(2))
    x = torch.randn(5, 4)
    loss = model(x).square().mean()
    params = [*model.parameters(), unused]
    flat = flat_gradient(loss, params)
    loss = model(x).square().mean()
    loss.backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()] + [torch.zeros(2)])
    torch.testing.assert_close(flat, expected)


# --- the learner --------------------------------------------------------------------------------------


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("variant", ["gem", "agem"])
def test_learner_steps_never_point_against_a_memory(variant):
    first, second = _task(0), _task(1, seed=5)
    learner = GEM(_model(), lr=0.05, memory_size=16, margin=0.0, variant=variant, eps=0.0, agem_samples=16)
    assert isinstance(learner, ContinualLearner)
    for start in range(0, 40, 8):
        learner.observe(first.x_train[start : start + 8], first.y_train[start : start + 8], first)
    learner.end_task(first)
    # labels flipped so that the new task's gradient fights the old one's
    flipped = Task(1, "flipped", second.x_train, (second.y_train + 1) % 3, second.x_test, second.y_test)
    for start in range(0, 40, 8):
        x, y = flipped.x_train[start : start + 8], flipped.y_train[start : start + 8]
        params = list(learner.model.parameters())
        before = torch.cat([p.detach().reshape(-1) for p in params])
        mx, my = learner.memory.examples(0)
        memory_gradient = flat_gradient(nn.functional.cross_entropy(learner.model(mx), my), params)
        learner.observe(x, y, flipped)
        after = torch.cat([p.detach().reshape(-1) for p in params])
        step = (before - after) / 0.05  # the update direction g~
        if variant == "gem":  # GEM: <g~, g_0> >= 0 on the whole memory of task 0
            assert torch.dot(step, memory_gradient) >= -1e-5
    assert learner.steps == 10
    assert learner.projections > 0  # the flipped labels force projections


def test_without_projection_the_learner_is_plain_sgd():
    first, second = _task(0), _task(1, seed=5)
    ablated = GEM(_model(), lr=0.1, memory_size=8, project=False)
    sgd = torch.optim.SGD((plain := _model()).parameters(), lr=0.1)
    for task in (first, second):
        for start in range(0, 40, 10):
            x, y = task.x_train[start : start + 10], task.y_train[start : start + 10]
            ablated.observe(x, y, task)
            sgd.zero_grad()
            nn.functional.cross_entropy(plain(x), y).backward()
            sgd.step()
    for a, b in zip(ablated.model.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)
    assert ablated.projections == 0


def test_class_incremental_memories_use_their_task_mask():
    first = _task(0, classes=(0, 1))
    learner = GEM(nn.Linear(6, 4), lr=0.1, memory_size=10)
    learner.observe(first.x_train[:10], first.y_train[:10], first)
    second = _task(1, classes=(2, 3))
    learner.observe(second.x_train[:10], second.y_train[:10], second)  # memory 0 masked to classes 0, 1
    assert learner.memory.task(0).classes == (0, 1)


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_input_is_rejected():
    g = torch.randn(4)
    with pytest.raises(ValueError, match="memory_size must be >= 1"):
        EpisodicMemory(0)
    with pytest.raises(ValueError, match="memory_size must be >= 1"):
        GEM(_model(), lr=0.1, memory_size=0)
    with pytest.raises(ValueError, match="margin must be finite and >= 0"):
        GEM(_model(), lr=0.1, margin=-0.5)
    with pytest.raises(ValueError, match="margin must be finite and >= 0"):
        project_gradient(g, -g[None], margin=-1.0)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        GEM(_model(), lr=0.0)
    with pytest.raises(ValueError, match="variant must be one of"):
        GEM(_model(), lr=0.1, variant="gem2")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        GEM("mlp", lr=0.1)
    with pytest.raises(ValueError, match=r"memory_gradients must have shape \[K, 4\]"):
        project_gradient(g, torch.randn(2, 5))
    with pytest.raises(ValueError, match="gradient must be a 1-D tensor"):
        project_gradient(g[None], torch.randn(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        project_gradient(torch.ones(4, dtype=torch.long), torch.randn(2, 4))
    with pytest.raises(ValueError, match="reference_gradient must be a tensor of shape"):
        agem_project(g, torch.randn(3))
    # linearly dependent memories without the ridge: a clear message, not quadprog's
    dependent = torch.stack([-g, -2 * g])
    with pytest.raises(ValueError, match="use eps > 0"):
        solve_dual(g, dependent, eps=0.0)
    assert torch.isfinite(project_gradient(g, dependent, eps=1e-3)).all()


def test_task_ids_outside_the_stream_are_rejected():
    learner = GEM(_model(), lr=0.1, num_tasks=2)
    task = _task(5)
    with pytest.raises(ValueError, match="task id 5 is not in the stream"):
        learner.observe(task.x_train[:4], task.y_train[:4], task)
    with pytest.raises(KeyError, match="task id 3 has no episodic memory"):
        learner.memory.examples(3)
    with pytest.raises(TypeError, match="task must be a Task"):
        learner.observe(task.x_train[:4], task.y_train[:4], 0)
    memory = EpisodicMemory(4)
    with pytest.raises(ValueError, match="x must be"):
        memory.add(_task(0), torch.randn(3, 6), torch.zeros(2, dtype=torch.long))
