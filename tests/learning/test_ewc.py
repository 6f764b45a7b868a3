"""EWC's pieces: the diagonal Fisher against per-example autograd loops, the penalty's value and
gradient, the learner's anchors (per task, online, L2), and bad input."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.learning.ewc import EWC, Anchor, L2Anchor, diagonal_fisher, ewc_penalty
from aicanon.learning.streams import FineTuning, Task, TaskStream

pytestmark = pytest.mark.paper("ewc")


def tiny_model(seed: int = 0, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, classes)).double()


def tiny_inputs(count: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 4, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (count,), generator=generator)
    return x, y


def example_gradient(model: nn.Module, x: torch.Tensor, label: int, classes=None) -> dict[str, torch.Tensor]:
    """∂ log p(label | x) / ∂θ for one example, by plain autograd (no torch.func)."""
    model.zero_grad()
    logits = model(x.unsqueeze(0)).squeeze(0)
    if classes is not None:
        logits = logits[list(classes)]
    F.log_softmax(logits, dim=-1)[label].backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def loop_fisher(model, x, y=None, mode="exact", classes=None) -> dict[str, torch.Tensor]:
    """The Fisher by a loop over examples (and, for ``exact``, over classes): the hand computation."""
    total = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for n in range(x.size(0)):
        if mode == "empirical":
            for name, g in example_gradient(model, x[n], int(y[n]), classes).items():
                total[name] += g.square()
            continue
        with torch.no_grad():
            logits = model(x[n : n + 1]).squeeze(0)
            if classes is not None:
                logits = logits[list(classes)]
            probs = logits.softmax(-1)
        for label in range(probs.numel()):
            for name, g in example_gradient(model, x[n], label, classes).items():
                total[name] += probs[label] * g.square()
    return {name: value / x.size(0) for name, value in total.items()}


@pytest.mark.parity
def test_empirical_fisher_equals_a_per_example_autograd_loop():
    model = tiny_model()
    x, y = tiny_inputs()
    ours = diagonal_fisher(model, x, y, mode="empirical", chunk_size=4)
    reference = loop_fisher(model, x, y, mode="empirical")
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], atol=1e-12, rtol=1e-10)


@pytest.mark.parity
def test_exact_fisher_equals_the_expectation_over_the_predictive_distribution():
    model = tiny_model()
    x, _ = tiny_inputs()
    ours = diagonal_fisher(model, x, mode="exact", chunk_size=4)
    reference = loop_fisher(model, x, mode="exact")
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], atol=1e-12, rtol=1e-10)


@pytest.mark.parity
def test_fisher_restricted_to_a_tasks_classes():
    model = tiny_model(classes=5)
    x, _ = tiny_inputs()
    y = torch.tensor([3, 1, 1, 3, 3, 1])
    ours = diagonal_fisher(model, x, mode="exact", classes=(1, 3))
    reference = loop_fisher(model, x, mode="exact", classes=(1, 3))
    empirical = diagonal_fisher(model, x, y, mode="empirical", classes=(1, 3))
    positions = torch.tensor([1, 0, 0, 1, 1, 0])  # label 1 is unit 0 of the task's head, 3 is unit 1
    empirical_reference = loop_fisher(model, x, positions, mode="empirical", classes=(1, 3))
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(empirical[name], empirical_reference[name], atol=1e-12, rtol=1e-10)
        # units outside the task's head carry no information about it
    assert ours["2.weight"][[0, 2, 4]].abs().max() == 0


def test_true_fisher_is_an_unbiased_monte_carlo_estimate_of_the_exact_one():
    model = tiny_model()
    x, _ = tiny_inputs(count=4)
    repeated = x.repeat(1500, 1)  # 1500 label draws per example
    sampled = diagonal_fisher(model, repeated, mode="true", generator=torch.Generator().manual_seed(0))
    exact = diagonal_fisher(model, x, mode="exact")
    for name in exact:
        error = (sampled[name] - exact[name]).abs().sum() / exact[name].abs().sum()
        assert error < 0.08, f"{name}: relative error {error:.3f}"


def test_fisher_subsamples_reproducibly_and_restores_the_training_mode():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 3)).double()
    model.train()
    x, _ = tiny_inputs(count=50)
    first = diagonal_fisher(model, x, samples=10, generator=torch.Generator().manual_seed(3))
    second = diagonal_fisher(model, x, samples=10, generator=torch.Generator().manual_seed(3))
    assert model.training
    for name in first:
        assert torch.equal(first[name], second[name])
        assert (first[name] >= 0).all()
    assert set(first) == {name for name, _ in model.named_parameters()}


def test_penalty_is_zero_at_the_anchor_and_its_gradient_is_lambda_f_times_the_displacement():
    model = tiny_model()
    x, _ = tiny_inputs()
    fisher = diagonal_fisher(model, x, mode="exact")
    anchor = Anchor(0, fisher, {name: p.detach().clone() for name, p in model.named_parameters()})
    assert ewc_penalty(model, [anchor], lam=7.0).item() == 0.0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    lam = 7.0
    penalty = ewc_penalty(model, [anchor], lam)
    penalty.backward()
    expected_value = 0.0
    for name, p in model.named_parameters():
        displacement = p.detach() - anchor.params[name]
        torch.testing.assert_close(p.grad, lam * fisher[name] * displacement)
        expected_value += 0.5 * lam * (fisher[name] * displacement.square()).sum().item()
    assert penalty.item() == pytest.approx(expected_value, rel=1e-12)


def test_penalty_sums_one_term_per_anchor():
    model = tiny_model()
    anchors = []
    for task_id in range(3):
        generator = torch.Generator().manual_seed(task_id)
        anchors.append(
            Anchor(
                task_id,
                {
                    n: torch.rand(p.shape, generator=generator, dtype=p.dtype)
                    for n, p in model.named_parameters()
                },
                {
                    n: torch.randn(p.shape, generator=generator, dtype=p.dtype)
                    for n, p in model.named_parameters()
                },
            )
        )
    total = ewc_penalty(model, anchors, 2.0)
    parts = sum(ewc_penalty(model, [a], 2.0) for a in anchors)
    torch.testing.assert_close(total, parts)
    assert ewc_penalty(model, [], 2.0).item() == 0.0


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 1e3), st.integers(0, 10_000))
def test_penalty_is_nonnegative_and_linear_in_lambda(lam, seed):
    model = tiny_model()
    generator = torch.Generator().manual_seed(seed)
    anchor = Anchor(
        0,
        {n: torch.rand(p.shape, generator=generator, dtype=p.dtype) for n, p in model.named_parameters()},
        {n: torch.randn(p.shape, generator=generator, dtype=p.dtype) for n, p in model.named_parameters()},
    )
    value = ewc_penalty(model, [anchor], lam).item()
    assert value >= 0
    assert value == pytest.approx(lam * ewc_penalty(model, [anchor], 1.0).item(), rel=1e-9, abs=1e-12)


def make_task(task_id: int, seed: int, classes=None) -> Task:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 4, generator=generator)
    labels = torch.tensor(classes) if classes else torch.arange(3)
    y = labels[torch.randint(0, len(labels), (40,), generator=generator)]
    return Task(task_id, f"task {task_id}", x[:30], y[:30], x[30:], y[30:], classes)


def float_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))


def test_end_task_anchors_the_current_parameters_with_the_tasks_fisher():
    model = float_model()
    learner = EWC(model, lr=0.1, lam=10.0, fisher="exact", fisher_samples=30)
    task = make_task(0, 0)
    for _ in range(5):
        learner.observe(task.x_train, task.y_train, task)
    learner.end_task(task)
    assert learner.penalty().item() == 0.0
    expected = diagonal_fisher(model, task.x_train, mode="exact")
    for name, p in model.named_parameters():
        torch.testing.assert_close(learner.importance(0)[name], expected[name])
        assert torch.equal(learner.anchors[0].params[name], p.detach())
    second = make_task(1, 1)
    learner.observe(second.x_train, second.y_train, second)
    assert learner.penalty().item() > 0.0
    learner.end_task(second)
    assert [a.task_id for a in learner.anchors] == [0, 1]


def test_online_ewc_keeps_one_decayed_running_fisher():
    model = float_model()
    learner = EWC(model, lr=0.1, lam=1.0, fisher="exact", fisher_samples=30, online=True, gamma=0.5)
    first, second = make_task(0, 0), make_task(1, 1)
    learner.end_task(first)
    fisher_first = learner.importance(0)
    learner.observe(second.x_train, second.y_train, second)
    fisher_second = diagonal_fisher(model, second.x_train, mode="exact")
    learner.end_task(second)
    assert len(learner.anchors) == 1 and learner.anchors[0].task_id == 1
    for name, p in model.named_parameters():
        torch.testing.assert_close(
            learner.importance(1)[name], 0.5 * fisher_first[name] + fisher_second[name]
        )
        assert torch.equal(learner.anchors[0].params[name], p.detach())


def test_l2_anchor_uses_unit_importances():
    model = float_model()
    learner = L2Anchor(model, lr=0.1, lam=2.0)
    task = make_task(0, 0)
    learner.end_task(task)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    count = sum(p.numel() for p in model.parameters())
    assert learner.penalty().item() == pytest.approx(0.5 * 2.0 * 0.25 * count, rel=1e-6)


def test_zero_lambda_is_plain_sgd():
    task = make_task(0, 0, classes=(0, 2))
    ewc_model, sgd_model = float_model(), float_model()
    ewc, sgd = EWC(ewc_model, lr=0.1, lam=0.0), FineTuning(sgd_model, lr=0.1)
    ewc.end_task(task)
    for _ in range(3):
        assert ewc.observe(task.x_train, task.y_train, task) == pytest.approx(
            sgd.observe(task.x_train, task.y_train, task), rel=1e-6
        )
    for a, b in zip(ewc_model.parameters(), sgd_model.parameters()):
        torch.testing.assert_close(a, b)


def test_ewc_holds_an_important_parameter_that_sgd_moves():
    """After task A, training on B moves A's parameters less under EWC than under plain SGD."""
    task_a, task_b = make_task(0, 0), make_task(1, 5)
    shifts = {}
    for lam in (0.0, 50.0):
        model = float_model()
        learner = EWC(copy.deepcopy(model), lr=0.1, lam=lam, fisher="exact")
        for _ in range(30):
            learner.observe(task_a.x_train, task_a.y_train, task_a)
        learner.end_task(task_a)
        start = torch.cat([p.detach().flatten() for p in learner.model.parameters()])
        for _ in range(30):
            learner.observe(task_b.x_train, task_b.y_train, task_b)
        end = torch.cat([p.detach().flatten() for p in learner.model.parameters()])
        fisher = torch.cat([f.flatten() for f in learner.anchors[0].fisher.values()])
        shifts[lam] = float((fisher * (end - start).square()).sum())
    assert shifts[50.0] < 0.5 * shifts[0.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lam": -1.0}, ValueError, r"lam must be finite and >= 0.0, got -1.0"),
        ({"lam": float("inf")}, ValueError, "lam"),
        ({"lr": 0.0}, ValueError, "lr must be > 0"),
        ({"fisher_samples": 0}, ValueError, "fisher_samples must be >= 1"),
        ({"fisher_samples": 2.5}, TypeError, "fisher_samples must be an int"),
        ({"fisher": "diagonal"}, ValueError, "fisher must be one of"),
        ({"gamma": 1.5}, ValueError, "gamma must be in"),
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"online": 1}, TypeError, "online must be a bool"),
    ],
)
def test_bad_learner_arguments_are_rejected(kwargs, error, match):
    arguments = {"lr": 0.1, "lam": 1.0} | kwargs
    lr, lam = arguments.pop("lr"), arguments.pop("lam")
    with pytest.raises(error, match=match):
        EWC(float_model(), lr, lam, **arguments)


def test_bad_fisher_and_penalty_input_is_rejected():
    model = tiny_model()
    x, y = tiny_inputs()
    with pytest.raises(ValueError, match="mode must be one of"):
        diagonal_fisher(model, x, mode="fake")
    with pytest.raises(ValueError, match="y must hold the labels"):
        diagonal_fisher(model, x, mode="empirical")
    with pytest.raises(ValueError, match="samples must be >= 1"):
        diagonal_fisher(model, x, samples=0)
    with pytest.raises(ValueError, match="one label per example"):
        diagonal_fisher(model, x, y[:3], mode="empirical")
    with pytest.raises(ValueError, match="x must be a batch"):
        diagonal_fisher(model, x[0])
    with pytest.raises(TypeError, match="x must be"):
        diagonal_fisher(model, x.long())
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        diagonal_fisher(lambda t: t, x)
    with pytest.raises(ValueError, match="outside classes"):
        diagonal_fisher(model, x, torch.zeros(6, dtype=torch.long), mode="empirical", classes=(1, 2))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        ewc_penalty(model, [], -0.5)
    bad = Anchor(0, {"nope": torch.zeros(1)}, {"nope": torch.zeros(1)})
    with pytest.raises(KeyError, match="'nope'"):
        ewc_penalty(model, [bad], 1.0)


def test_unknown_task_ids_and_repeated_consolidation_are_errors():
    learner = EWC(float_model(), lr=0.1, lam=1.0, fisher_samples=5)
    task = make_task(0, 0)
    learner.end_task(task)
    with pytest.raises(KeyError, match=r"task id 7 has no anchor; anchored ids: \[0\]"):
        learner.importance(7)
    with pytest.raises(ValueError, match="already has an anchor"):
        learner.end_task(task)
    with pytest.raises(TypeError, match="task must be a Task"):
        learner.observe(task.x_train, task.y_train, 0)
    with pytest.raises(ValueError, match="same, nonzero number"):
        learner.observe(task.x_train, task.y_train[:3], task)
    stream = TaskStream((task,), num_classes=3)
    with pytest.raises(KeyError, match="task id 4 is not in the stream"):
        stream.task(4)


def test_fisher_of_a_diverged_model_says_so():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="not finite \\(NaN or inf\\): its parameters diverged"):
        diagonal_fisher(model, torch.randn(4, 3))
