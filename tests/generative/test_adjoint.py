"""The adjoint method: gradients equal backprop through the solver and torchdiffeq's adjoint; O(1) memory."""

import pytest
import torch
from torch import nn

from aicanon.generative.ode.adjoint import odeint_adjoint
from aicanon.generative.ode.solvers import SolverStats, odeint

pytestmark = pytest.mark.paper("neural-ode")


class _Field(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


def _gradients(solve, f, y0, t, weights, **kwargs):
    f.zero_grad()
    y0 = y0.clone().requires_grad_(True)
    out = solve(f, y0, t, **kwargs)
    (out * weights).sum().backward()
    return out.detach(), torch.cat([y0.grad.flatten()] + [p.grad.flatten() for p in f.parameters()])


def _problem():
    f = _Field().double()
    torch.manual_seed(1)
    y0 = torch.randn(4, 3, dtype=torch.float64)
    t = torch.linspace(0, 2, 4, dtype=torch.float64)
    return f, y0, t, torch.randn(4, 4, 3, dtype=torch.float64)


def test_adjoint_gradients_equal_backprop_through_our_solver():
    f, y0, t, w = _problem()
    options = dict(method="dopri5", rtol=1e-10, atol=1e-10)
    out_a, grad_a = _gradients(odeint_adjoint, f, y0, t, w, **options)
    out_b, grad_b = _gradients(odeint, f, y0, t, w, **options)
    assert torch.equal(out_a, out_b)  # same forward solve
    assert (grad_a - grad_b).abs().max() < 1e-7


def test_adjoint_of_linear_ode_is_exact():
    # dz/dt = A z: z(1) = exp(A) z0, so dL/dz0 = exp(A)^T dL/dz(1).
    layer = nn.Linear(2, 2, bias=False).double()
    f = lambda t, z: layer(z)  # noqa: E731
    z0 = torch.tensor([[1.0, -0.5]], dtype=torch.float64, requires_grad=True)
    out = odeint_adjoint(
        f,
        z0,
        torch.tensor([0.0, 1.0], dtype=torch.float64),
        rtol=1e-11,
        atol=1e-11,
        adjoint_params=tuple(layer.parameters()),
    )
    out[-1].sum().backward()
    expected = torch.linalg.matrix_exp(layer.weight.detach()).T @ torch.ones(2, dtype=torch.float64)
    assert torch.allclose(z0.grad[0], expected, atol=1e-8)


@pytest.mark.parity
@pytest.mark.parametrize("options", [dict(method="rk4"), dict(method="dopri5", rtol=1e-9, atol=1e-9)])
def test_adjoint_gradients_equal_torchdiffeq(options):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    f, y0, t, w = _problem()
    out, ours = _gradients(odeint_adjoint, f, y0, t, w, **options)
    ref_out, reference = _gradients(torchdiffeq.odeint_adjoint, f, y0, t, w, **options)
    tolerance = 1e-12 if options["method"] == "rk4" else 1e-6
    assert (out - ref_out).abs().max() < max(tolerance, 1e-7)
    assert (ours - reference).abs().max() < tolerance


def test_adjoint_memory_does_not_grow_with_steps():
    f = _Field()
    sizes = {}
    for steps in (4, 16):
        total = [0]

        def pack(x, total=total):
            total[0] += x.numel() * x.element_size()
            return x

        for name, solve in (("adjoint", odeint_adjoint), ("backprop", odeint)):
            total[0] = 0
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
                solve(
                    f,
                    torch.randn(2, 3, requires_grad=True),
                    torch.tensor([0.0, 1.0]),
                    method="rk4",
                    step_size=1 / steps,
                )
            sizes[name, steps] = total[0]
    assert sizes["adjoint", 4] == sizes["adjoint", 16]
    assert sizes["backprop", 16] > 3 * sizes["backprop", 4]


def test_backward_solves_are_counted():
    f, y0, t, w = _problem()
    forward, backward = SolverStats(), SolverStats()
    out = odeint_adjoint(f, y0.requires_grad_(), t, method="rk4", stats=forward, adjoint_stats=backward)
    out.sum().backward()
    assert forward.nfe == 4 * 3 and backward.nfe == 4 * 3


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="nn.Module, or its learnable tensors"):
        odeint_adjoint(lambda t, y: y, torch.ones(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="t must not require grad"):
        odeint_adjoint(_Field(), torch.ones(3), torch.tensor([0.0, 1.0], requires_grad=True))
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        odeint_adjoint(_Field(), torch.ones(3), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="adjoint_rtol must be finite and > 0"):
        odeint_adjoint(_Field(), torch.ones(3), torch.tensor([0.0, 1.0]), adjoint_rtol=0.0)
