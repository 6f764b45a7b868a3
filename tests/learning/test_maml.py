"""MAML in torch.func: meta-gradients against direct double-backward computations, invariants, the
episode sampler and the sinusoid tasks, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from aicanon.learning.few_shot import EpisodeSampler
from aicanon.learning.maml import (
    MAML,
    BatchStatisticsNorm2d,
    ConvNet,
    SinusoidRegressor,
    TaskBatch,
    adapt,
    inner_learning_rates,
    meta_gradient,
)
from aicanon.learning.sinusoid import SinusoidTasks

pytestmark = pytest.mark.paper("maml")


def _direct_meta_gradient(model, tasks, rates, first_order, loss_fn):
    """The meta-gradient by plain autograd: a Python loop over tasks, the inner steps with
    create_graph=True (second order) or detached inner gradients (first order), one backward."""
    params = dict(model.named_parameters())
    total = 0.0
    for t in range(tasks.num_tasks):
        p = params
        for rate in rates:
            loss = loss_fn(functional_call(model, p, (tasks.support_x[t],)), tasks.support_y[t])
            grads = torch.autograd.grad(loss, list(p.values()), create_graph=not first_order)
            p = {k: v - rate * (g.detach() if first_order else g) for (k, v), g in zip(p.items(), grads)}
        total = total + loss_fn(functional_call(model, p, (tasks.query_x[t],)), tasks.query_y[t])
    return dict(zip(params, torch.autograd.grad(total / tasks.num_tasks, list(params.values()))))


def _tiny_conv(bn_module=True):
    norm = BatchStatisticsNorm2d(3) if bn_module else nn.BatchNorm2d(3, track_running_stats=False)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), norm, nn.ReLU(), nn.Flatten(), nn.Linear(3 * 25, 3))


def _image_tasks(tasks=3, support=6, query=4, side=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(tasks, support, 1, side, side, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (tasks, support), generator=g),
        torch.randn(tasks, query, 1, side, side, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (tasks, query), generator=g),
    )


def _sine_tasks(tasks=4, seed=0):
    batch, _, _ = SinusoidTasks().sample(tasks, 5, 7, torch.Generator().manual_seed(seed))
    return TaskBatch(*(t.double() for t in batch))


@pytest.mark.parity
@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("rates", [[0.05], [0.05, 0.02, 0.1]])
def test_meta_gradient_equals_direct_double_backward_mlp(first_order, rates):
    torch.manual_seed(0)
    model = SinusoidRegressor(8).double()
    tasks = _sine_tasks()
    ours, loss, _ = meta_gradient(
        model, dict(model.named_parameters()), tasks, F.mse_loss, rates, first_order
    )
    reference = _direct_meta_gradient(model, tasks, rates, first_order, F.mse_loss)
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-9, atol=1e-11)


@pytest.mark.parity
@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_equals_direct_double_backward_with_batch_norm(first_order):
    """The conv net with batch-statistics batch norm, vmapped over tasks; the reference uses torch's
    own fused batch norm (nn.BatchNorm2d without running stats) in a plain loop, same weights."""
    torch.manual_seed(1)
    ours_model = _tiny_conv(bn_module=True).double()
    reference_model = _tiny_conv(bn_module=False).double()
    with torch.no_grad():
        ours_model[1].weight.uniform_(0.5, 1.5)
        ours_model[1].bias.normal_()
    reference_model.load_state_dict(ours_model.state_dict())
    tasks = _image_tasks()
    rates = [0.3, 0.1]
    ours, _, _ = meta_gradient(
        ours_model, dict(ours_model.named_parameters()), tasks, F.cross_entropy, rates, first_order
    )
    reference = _direct_meta_gradient(reference_model, tasks, rates, first_order, F.cross_entropy)
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-8, atol=1e-10)


@pytest.mark.parity
def test_first_order_is_second_order_without_the_hessian_term():
    """One inner step: grad_theta L_q(theta') = (I - alpha H_s) g_q with g_q = grad L_q at theta'.
    FOMAML must be g_q; second order minus alpha H_s g_q (a Hessian-vector product) must be the same."""
    torch.manual_seed(2)
    model = SinusoidRegressor(6).double()
    tasks = TaskBatch(*(t[:1] for t in _sine_tasks(1, seed=3)))
    alpha = 0.07
    params = {k: p.detach() for k, p in model.named_parameters()}
    second, _, _ = meta_gradient(model, params, tasks, F.mse_loss, [alpha], False)
    first, _, _ = meta_gradient(model, params, tasks, F.mse_loss, [alpha], True)

    def support_loss(p):
        return F.mse_loss(functional_call(model, p, (tasks.support_x[0],)), tasks.support_y[0])

    adapted = adapt(model, params, tasks.support_x[0], tasks.support_y[0], F.mse_loss, [alpha], True)
    query_gradient = torch.func.grad(
        lambda p: F.mse_loss(functional_call(model, p, (tasks.query_x[0],)), tasks.query_y[0])
    )(adapted)
    # H_s v by double backward: d/dtheta (grad L_s(theta) . v)
    leaves = {k: p.clone().requires_grad_() for k, p in params.items()}
    support_gradient = torch.autograd.grad(support_loss(leaves), list(leaves.values()), create_graph=True)
    dot = sum((g * query_gradient[k]).sum() for k, g in zip(leaves, support_gradient))
    hessian_times_g = dict(zip(leaves, torch.autograd.grad(dot, list(leaves.values()))))
    for name in params:
        torch.testing.assert_close(first[name], query_gradient[name], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(
            second[name], query_gradient[name] - alpha * hessian_times_g[name], rtol=1e-9, atol=1e-11
        )
    assert max((second[k] - first[k]).abs().max() for k in params) > 1e-6  # the term is not zero here


def test_batch_statistics_norm_matches_torch_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(7, 4, 5, 3)
    norm = BatchStatisticsNorm2d(4)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.normal_()
    expected = F.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    norm.eval()  # no running statistics: evaluation still uses the batch's
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)


def test_zero_inner_rate_makes_maml_plain_multi_task_training():
    """alpha = 0: theta' = theta, so the meta-gradient is the gradient of the mean query loss."""
    torch.manual_seed(0)
    model = SinusoidRegressor(5).double()
    tasks = _sine_tasks()
    ours, _, _ = meta_gradient(model, dict(model.named_parameters()), tasks, F.mse_loss, [0.0, 0.0], False)
    loss = torch.stack(
        [F.mse_loss(model(tasks.query_x[t]), tasks.query_y[t]) for t in range(tasks.num_tasks)]
    ).mean()
    reference = torch.autograd.grad(loss, list(model.parameters()))
    for (name, _), g in zip(model.named_parameters(), reference):
        torch.testing.assert_close(ours[name], g)


def test_adapt_one_step_golden_value():
    """A linear model y = w x, MSE on one point (x=2, y=1), w=0: grad = 2 (w x - y) x = -4, so
    w' = 0 - 0.1 * (-4) = 0.4, then w'' = 0.4 - 0.05 * 2 (0.8 - 1) 2 = 0.44."""
    model = nn.Linear(1, 1, bias=False)
    params = {"weight": torch.zeros(1, 1)}
    out = adapt(model, params, torch.tensor([[2.0]]), torch.tensor([[1.0]]), F.mse_loss, [0.1, 0.05])
    torch.testing.assert_close(out["weight"], torch.tensor([[0.44]]))


def test_meta_step_reduces_the_meta_loss_on_fixed_tasks():
    torch.manual_seed(0)
    model = SinusoidRegressor(20)
    maml = MAML(model, 0.01, 1, loss="mse")
    tasks, _, _ = SinusoidTasks().sample(10, 10, 10, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), 0.01)
    first = maml.meta_step(tasks, optimizer)
    for _ in range(30):
        last = maml.meta_step(tasks, optimizer)
    assert last < 0.7 * first


def test_evaluate_matches_adapt_per_task():
    torch.manual_seed(0)
    maml = MAML(ConvNet(3, filters=4), [0.4, 0.2], 2)
    tasks = TaskBatch(*(t.float() if t.is_floating_point() else t for t in _image_tasks(tasks=2, side=12)))
    losses, predictions = maml.evaluate(tasks, steps=3)
    for t in range(2):
        adapted = maml.adapt(tasks.support_x[t], tasks.support_y[t], steps=3)
        expected = maml.predict(adapted, tasks.query_x[t])
        torch.testing.assert_close(predictions[t], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            losses[t], F.cross_entropy(expected, tasks.query_y[t]), rtol=1e-4, atol=1e-5
        )


def test_convnet_shapes_follow_the_paper():
    net = ConvNet(5)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 5)
    assert [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)] == [64] * 4
    pooled = ConvNet(5, in_channels=3, filters=32, downsample="max_pool")
    assert pooled(torch.randn(2, 3, 84, 84)).shape == (2, 5)
    assert sum(p.numel() for p in SinusoidRegressor().parameters()) == 40 + 40 + 40 * 40 + 40 + 40 + 1


def test_inner_learning_rates_per_step():
    assert inner_learning_rates(0.4, 3) == [0.4, 0.4, 0.4]
    assert inner_learning_rates([0.4, 0.2], 3) == [0.4, 0.2, 0.2]


def test_episode_sampler_shapes_labels_and_classes():
    # class c's images all equal c, so the class behind each example can be read off its pixels
    images = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 6, 4, 4).contiguous()
    sampler = EpisodeSampler(images, ways=5, shots=2, queries=3)
    batch = sampler.sample(7, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (7, 10, 4, 4) and batch.query_x.shape == (7, 15, 4, 4)
    assert batch.support_y.tolist()[0] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for t in range(7):
        support_class = batch.support_x[t, :, 0, 0].view(5, 2)
        query_class = batch.query_x[t, :, 0, 0].view(5, 3)
        assert (support_class == support_class[:, :1]).all() and (query_class == support_class[:, :1]).all()
        assert len(set(support_class[:, 0].tolist())) == 5  # five distinct classes


def test_episode_sampler_rotations_make_new_classes():
    images = torch.zeros(2, 3, 4, 4)
    images[:, :, 0, 0] = 1.0  # a mark in the top-left corner: each rotation moves it to another corner
    sampler = EpisodeSampler(images, ways=8, shots=1, queries=2, rotations=True)
    assert sampler.num_classes == 8
    batch = sampler.sample(3, torch.Generator().manual_seed(1))
    for t in range(3):
        corners = batch.support_x[t][:, [0, 0, 3, 3], [0, 3, 0, 3]].argmax(1)
        assert sorted(corners.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]  # each rotation twice (2 images x 4)
        query_corners = batch.query_x[t][:, [0, 0, 3, 3], [0, 3, 0, 3]].argmax(1).view(8, 2)
        assert (query_corners == corners.view(8, 1)).all()


def test_episode_sampler_examples_are_distinct():
    images = torch.arange(4 * 5.0).view(4, 5, 1, 1)  # every example unique
    batch = EpisodeSampler(images, ways=2, shots=2, queries=3).sample(20, torch.Generator().manual_seed(0))
    for t in range(20):
        values = torch.cat([batch.support_x[t].flatten(), batch.query_x[t].flatten()])
        assert values.unique().numel() == 10


def test_sinusoid_tasks_follow_section_5_1():
    batch, amplitude, phase = SinusoidTasks().sample(500, 5, 10, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (500, 5, 1) and batch.query_y.shape == (500, 10, 1)
    assert 0.1 <= amplitude.min() and amplitude.max() <= 5.0
    assert 0.0 <= phase.min() and phase.max() <= math.pi
    assert batch.support_x.abs().max() <= 5.0
    torch.testing.assert_close(
        batch.query_y, amplitude.view(-1, 1, 1) * torch.sin(batch.query_x - phase.view(-1, 1, 1))
    )


def test_bad_input_is_rejected():
    images = torch.rand(3, 4, 2, 2)
    with pytest.raises(ValueError, match="ways must be <= the 3 classes"):
        EpisodeSampler(images, ways=4, shots=1)
    with pytest.raises(ValueError, match="ways must be <= the 12 classes"):
        EpisodeSampler(images, ways=13, shots=1, rotations=True)
    with pytest.raises(ValueError, match="shots \\+ queries must be <= the 4 examples"):
        EpisodeSampler(images, ways=2, shots=3, queries=2)
    with pytest.raises(ValueError, match="shots must be >= 1"):
        EpisodeSampler(images, ways=2, shots=0)
    with pytest.raises(TypeError, match="images must be a floating-point tensor"):
        EpisodeSampler(torch.zeros(3, 4, 2, 2, dtype=torch.uint8), ways=2, shots=1)
    with pytest.raises(ValueError, match="inner_steps must be >= 1"):
        MAML(SinusoidRegressor(), 0.01, 0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        MAML(SinusoidRegressor(), 0.01, 1).rates_for(0)
    with pytest.raises(ValueError, match="inner_lr must be finite and >= 0"):
        MAML(SinusoidRegressor(), -0.1, 1)
    with pytest.raises(ValueError, match="loss must be one of"):
        MAML(SinusoidRegressor(), 0.01, 1, loss="hinge")
    with pytest.raises(ValueError, match="model must have no buffers"):
        MAML(nn.BatchNorm2d(3), 0.1, 1)
    with pytest.raises(TypeError, match="tasks must be a TaskBatch"):
        MAML(SinusoidRegressor(), 0.01).meta_gradient((torch.zeros(1, 2, 1),) * 4)
    bad = TaskBatch(torch.zeros(2, 3, 1), torch.zeros(2, 4, 1), torch.zeros(2, 3, 1), torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="support_x and tasks.support_y must have as many examples"):
        MAML(SinusoidRegressor(), 0.01, loss="mse").meta_gradient(bad)
    with pytest.raises(ValueError, match="x must be \\[batch, 1, height, width\\]"):
        ConvNet(5)(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="ways must be >= 2"):
        ConvNet(1)
    with pytest.raises(ValueError, match="amplitude\\[1\\] must be finite and >= 5"):
        SinusoidTasks(amplitude=(5.0, 1.0))
