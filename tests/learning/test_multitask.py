"""Multi-task learning API: hard sharing, cross-stitch units, loss weightings (equal, fixed,
uncertainty, GradNorm), the auxiliary-task objective and the taxonomy; golden values, invariants,
bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aicanon.learning.cross_stitch import CrossStitchNetwork, CrossStitchUnit
from aicanon.learning.loss_weighting import (
    EqualWeighting,
    FixedWeighting,
    GradNorm,
    UncertaintyWeighting,
    make_weighting,
)
from aicanon.learning.multitask import (
    TAXONOMY,
    AuxiliaryTaskObjective,
    HardSharingNetwork,
    Task,
    check_tasks,
    task_losses,
)

pytestmark = pytest.mark.paper("multitask-learning")

TASKS = (Task("digit", "classification", 10), Task("angle", "regression", 1))


def _network(seed=0):
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU())
    return HardSharingNetwork(trunk, 5, TASKS)


def _batch(seed=0, n=7):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    targets = {"digit": torch.randint(0, 10, (n,), generator=gen), "angle": torch.randn(n, generator=gen)}
    return x, targets


# --- hard sharing -------------------------------------------------------------------------------


def test_hard_sharing_outputs_and_last_shared_weight():
    model = _network()
    x, _ = _batch()
    outputs = model(x)
    assert outputs["digit"].shape == (7, 10) and outputs["angle"].shape == (7, 1)
    assert model.last_shared_weight is model.trunk[2].weight


def test_a_head_only_gets_gradient_from_its_own_task():
    model = _network()
    x, targets = _batch()
    losses = task_losses(model(x), targets, TASKS)
    losses[1].backward()
    assert model.heads["digit"].weight.grad is None or model.heads["digit"].weight.grad.abs().max() == 0
    assert model.heads["angle"].weight.grad.abs().max() > 0
    assert model.trunk[0].weight.grad.abs().max() > 0  # the trunk is shared


def test_task_losses_golden():
    model = _network()
    x, targets = _batch()
    outputs = model(x)
    digit, angle = task_losses(outputs, targets, TASKS)
    assert torch.equal(digit, F.cross_entropy(outputs["digit"], targets["digit"]))
    assert torch.allclose(angle, ((outputs["angle"][:, 0] - targets["angle"]) ** 2).mean())


def test_task_losses_bad_input():
    model = _network()
    x, targets = _batch()
    outputs = model(x)
    with pytest.raises(ValueError, match="targets must hold an entry for task 'angle'"):
        task_losses(outputs, {"digit": targets["digit"]}, TASKS)
    with pytest.raises(TypeError, match=r"targets\['digit'\] must be a torch.int64 tensor"):
        task_losses(outputs, {**targets, "digit": targets["digit"].float()}, TASKS)
    with pytest.raises(ValueError, match=r"targets\['angle'\] must have shape"):
        task_losses(outputs, {**targets, "angle": torch.zeros(7, 3)}, TASKS)


def test_task_and_tasks_validation():
    with pytest.raises(ValueError, match="kind must be one of"):
        Task("a", "ranking", 2)
    with pytest.raises(ValueError, match="outputs must be >= 2"):
        Task("a", "classification", 1)
    with pytest.raises(ValueError, match="at least one Task"):
        check_tasks([])
    with pytest.raises(ValueError, match="distinct"):
        check_tasks([Task("a", "regression", 1), Task("a", "regression", 1)])
    with pytest.raises(TypeError, match="trunk must be an nn.Module"):
        HardSharingNetwork("trunk", 5, TASKS)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        _network()(torch.zeros(2, 6, dtype=torch.long))


# --- cross-stitch --------------------------------------------------------------------------------


def test_cross_stitch_unit_golden_two_tasks():
    """Misra et al. Eq. 1: [x~_A; x~_B] = [[a_AA, a_AB], [a_BA, a_BB]] [x_A; x_B]."""
    unit = CrossStitchUnit(2, self_weight=0.9)
    assert torch.allclose(unit.alpha, torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[10.0, 20.0]])
    mixed_a, mixed_b = unit([a, b])
    assert torch.allclose(mixed_a, torch.tensor([[1.9, 3.8]]))
    assert torch.allclose(mixed_b, torch.tensor([[9.1, 18.2]]))


def test_cross_stitch_rows_sum_to_one_for_three_tasks():
    unit = CrossStitchUnit(3, self_weight=0.8)
    assert torch.allclose(unit.alpha.sum(1), torch.ones(3))
    assert torch.allclose(unit.alpha.diagonal(), torch.full((3,), 0.8))


def _stitched(self_weight):
    torch.manual_seed(0)
    columns = [
        [nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Sequential(nn.Linear(8, 5), nn.ReLU())] for _ in TASKS
    ]
    return CrossStitchNetwork(columns, 5, TASKS, self_weight=self_weight)


def test_identity_cross_stitch_is_two_separate_networks():
    model = _stitched(1.0)
    x, targets = _batch()
    losses = task_losses(model(x), targets, TASKS)
    losses[0].backward()
    network_grads = [p.grad for p in model.columns[1].parameters()]
    assert all(g is None or g.abs().max() == 0 for g in network_grads)
    assert model.columns[0][0][0].weight.grad.abs().max() > 0
    # ... but alpha still learns: its gradient says how much mixing in the other column would help.
    assert model.units[0].alpha.grad[0, 1] != 0


def test_cross_stitch_network_parameter_groups_and_outputs():
    model = _stitched(0.9)
    x, _ = _batch()
    outputs = model(x)
    assert outputs["digit"].shape == (7, 10) and outputs["angle"].shape == (7, 1)
    stitch, network = model.stitch_parameters(), model.network_parameters()
    assert len(stitch) == 2 and len(stitch) + len(network) == len(list(model.parameters()))


def test_cross_stitch_bad_input():
    with pytest.raises(ValueError, match="num_tasks must be >= 2"):
        CrossStitchUnit(1)
    with pytest.raises(ValueError, match="self_weight must be in"):
        CrossStitchUnit(2, self_weight=1.5)
    with pytest.raises(ValueError, match="activations must hold 2 tensors"):
        CrossStitchUnit(2)([torch.zeros(1, 2)])
    with pytest.raises(ValueError, match=r"activations\[1\] must be a tensor of shape"):
        CrossStitchUnit(2)([torch.zeros(1, 2), torch.zeros(1, 3)])
    with pytest.raises(ValueError, match="columns must hold one column per task"):
        CrossStitchNetwork([[nn.Identity()]], 5, TASKS)
    with pytest.raises(ValueError, match="same non-zero number of stages"):
        CrossStitchNetwork([[nn.Identity()], [nn.Identity(), nn.Identity()]], 5, TASKS)


# --- loss weightings ------------------------------------------------------------------------------


def test_equal_and_fixed_weighting_golden():
    losses = [torch.tensor(2.0), torch.tensor(3.0)]
    assert EqualWeighting(2)(losses).item() == 5.0
    assert FixedWeighting([0.5, 2.0])(losses).item() == 7.0


def test_auxiliary_objective_is_main_plus_lambda_auxiliary():
    objective = AuxiliaryTaskObjective([0.3, 0.0])
    losses = [torch.tensor(2.0), torch.tensor(10.0), torch.tensor(100.0)]
    assert math.isclose(objective(losses).item(), 2.0 + 0.3 * 10.0)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: AuxiliaryTaskObjective([-0.1]), r"auxiliary_weights\[0\] must be finite and >= 0"),
        (lambda: AuxiliaryTaskObjective([]), "one lambda per auxiliary task"),
        (lambda: FixedWeighting([1.0, -2.0]), r"weights\[1\] must be finite and >= 0 \(lambda >= 0\)"),
        (lambda: FixedWeighting([]), r"len\(weights\) must be >= 1"),
        (lambda: UncertaintyWeighting(["classification", "ranking"]), r"kinds\[1\] must be one of"),
        (lambda: GradNorm(2, alpha=-1.0), "alpha must be finite and >= 0"),
        (lambda: make_weighting("dwa", ["regression"]), "weighting must be one of"),
    ],
)
def test_weightings_reject_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "weighting", [EqualWeighting(3), UncertaintyWeighting(["regression"] * 3), GradNorm(3)]
)
def test_mismatched_number_of_losses_is_rejected(weighting):
    with pytest.raises(ValueError, match="losses must hold 3 losses"):
        weighting([torch.tensor(1.0), torch.tensor(2.0)])
    with pytest.raises(ValueError, match=r"losses\[0\] must be a 0-D tensor"):
        weighting([torch.ones(2), torch.tensor(1.0), torch.tensor(1.0)])


def test_uncertainty_weighting_golden_and_its_optimum():
    weighting = UncertaintyWeighting(["regression", "classification"])
    losses = [torch.tensor(4.0), torch.tensor(3.0)]
    # s = 0: 1/(2 sigma^2) L_1 + 1/sigma^2 L_2 + log sigma_1 + log sigma_2 = 0.5*4 + 3
    assert math.isclose(weighting(losses).item(), 5.0)
    # d/ds [c exp(-s) L + s/2] = 0 at exp(s) = 2 c L: the effective weight c exp(-s) is 1/(2L).
    with torch.no_grad():
        weighting.log_variance.copy_(torch.log(torch.tensor([2 * 0.5 * 4.0, 2 * 1.0 * 3.0])))
    weighting(losses).backward()
    assert torch.allclose(weighting.log_variance.grad, torch.zeros(2), atol=1e-6)
    assert torch.allclose(weighting.task_weights(), torch.tensor([1 / 8, 1 / 6]))


def test_uncertainty_weighting_makes_the_step_invariant_to_a_loss_scale():
    """At its optimum, multiplying a task's loss by 1000 leaves the weighted gradient unchanged."""
    model = _network()
    x, targets = _batch()
    gradients = []
    for scale in (1.0, 1000.0):
        model.zero_grad()
        losses = task_losses(model(x), targets, TASKS)
        losses = [losses[0], losses[1] * scale]
        weighting = UncertaintyWeighting(["classification", "regression"])
        with torch.no_grad():
            weighting.log_variance.copy_(torch.log(torch.stack([2 * losses[0], losses[1]]).detach()))
        weighting(losses).backward()
        gradients.append(model.trunk[0].weight.grad.clone())
    assert torch.allclose(gradients[0], gradients[1], rtol=1e-4, atol=1e-7)


def _gradnorm_reference(weights, losses, shared, initial, alpha):
    """GradNorm's L_grad written with a second-order graph: G_t = ||grad_W (w_t L_t)||."""
    norms = torch.stack(
        [
            torch.autograd.grad(w * loss, shared, retain_graph=True, create_graph=True)[0].norm()
            for w, loss in zip(weights, losses)
        ]
    )
    ratio = torch.stack([loss.detach() for loss in losses]) / initial
    target = (norms.mean() * (ratio / ratio.mean()) ** alpha).detach()
    return (norms - target).abs().sum()


def test_gradnorm_weight_gradient_matches_a_second_order_reference():
    model = _network()
    gradnorm = GradNorm(2, alpha=1.5)
    x, targets = _batch()
    losses = task_losses(model(x), targets, TASKS)
    gradnorm.backward(losses, model.last_shared_weight)  # first call records L(0)
    model.zero_grad()
    gradnorm.weights.grad = None
    with torch.no_grad():
        gradnorm.weights.copy_(torch.tensor([0.7, 1.3]))
    x, targets = _batch(seed=1)
    losses = task_losses(model(x), targets, TASKS)
    weights = gradnorm.weights.detach().clone().requires_grad_()
    reference = _gradnorm_reference(weights, losses, model.last_shared_weight, gradnorm.initial_losses, 1.5)
    (expected,) = torch.autograd.grad(reference, weights, retain_graph=True)
    expected_network = torch.autograd.grad(
        0.7 * losses[0] + 1.3 * losses[1], model.trunk[0].weight, retain_graph=True
    )[0]
    gradnorm.backward(losses, model.last_shared_weight)
    assert torch.allclose(gradnorm.weights.grad, expected, atol=1e-6)
    assert torch.allclose(model.trunk[0].weight.grad, expected_network, atol=1e-6)


def test_gradnorm_renormalises_to_the_number_of_tasks_and_stays_positive():
    gradnorm = GradNorm(3)
    with torch.no_grad():
        gradnorm.weights.copy_(torch.tensor([2.0, -1.0, 4.0]))
    gradnorm.after_step()
    assert math.isclose(gradnorm.weights.sum().item(), 3.0, rel_tol=1e-6)
    assert (gradnorm.weights > 0).all()


def test_gradnorm_lowers_the_weight_of_a_loud_task():
    model = _network()
    gradnorm = GradNorm(2)
    optimizer = torch.optim.Adam(list(gradnorm.parameters()), lr=0.05)
    for step in range(30):
        x, targets = _batch(seed=step)
        losses = task_losses(model(x), targets, TASKS)
        losses = [losses[0], 1000.0 * losses[1]]
        optimizer.zero_grad()
        model.zero_grad()
        gradnorm.backward(losses, model.last_shared_weight)
        optimizer.step()
        gradnorm.after_step()
    assert gradnorm.weights[1] < 0.1 * gradnorm.weights[0]


def test_gradnorm_needs_the_shared_weight():
    gradnorm = GradNorm(2)
    losses = [torch.tensor(1.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)]
    with pytest.raises(ValueError, match="shared_weight must be the last shared layer's weight"):
        gradnorm.backward(losses)
    with pytest.raises(ValueError, match="shared_weight must require grad"):
        gradnorm.backward(losses, torch.zeros(3))


# --- taxonomy -------------------------------------------------------------------------------------


def test_every_category_of_the_taxonomy_has_a_working_method():
    assert set(TAXONOMY) == {
        "hard parameter sharing",
        "soft parameter sharing",
        "loss weighting",
        "auxiliary tasks",
    }
    assert all(len(methods) >= 1 for methods in TAXONOMY.values())
    assert TAXONOMY["soft parameter sharing"]["cross-stitch network"] is CrossStitchNetwork
    assert set(TAXONOMY["loss weighting"]) == {"equal", "fixed", "uncertainty", "gradnorm"}
    assert TAXONOMY["auxiliary tasks"]["related task"] is AuxiliaryTaskObjective
