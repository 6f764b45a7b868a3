"""ODE solvers: golden values, convergence orders, torchdiffeq parity, bad input."""

import math

import pytest
import torch
from torch import nn

from aicanon.generative.ode.solvers import SolverStats, odeint

pytestmark = pytest.mark.paper("neural-ode")


def decay(t, y):
    return -y


class _Field(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


def test_euler_golden_value():
    # y' = -y, y(0) = 1, two Euler steps of 0.5: (1 - 0.5)^2 = 0.25.
    out = odeint(decay, torch.tensor([1.0]), torch.tensor([0.0, 0.5, 1.0]), method="euler")
    assert out[:, 0].tolist() == [1.0, 0.5, 0.25]


@pytest.mark.parametrize("method,order", [("euler", 1), ("rk4", 4), ("rk4_classic", 4)])
def test_fixed_step_convergence_order(method, order):
    y0, t = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    errors = [
        abs(odeint(decay, y0, t, method=method, step_size=h)[-1, 0].item() - math.exp(-1))
        for h in (0.1, 0.05)
    ]
    assert math.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.2)


def test_dopri5_meets_its_tolerance_and_counts_evaluations():
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    loose, tight = SolverStats(), SolverStats()
    a = odeint(decay, y0, t, rtol=1e-4, atol=1e-6, stats=loose)
    b = odeint(decay, y0, t, rtol=1e-10, atol=1e-12, stats=tight)
    exact = y0 * torch.exp(-t).unsqueeze(1)
    assert (a - exact).abs().max() < 1e-3
    assert (b - exact).abs().max() < 1e-9
    assert tight.nfe > loose.nfe > 0
    assert loose.nfe == 2 + 6 * (loose.accepted + loose.rejected)  # FSAL: 6 new stages per step


def test_decreasing_grid_runs_backwards():
    y0 = torch.tensor([1.0], dtype=torch.float64)
    out = odeint(decay, y0, torch.tensor([1.0, 0.0], dtype=torch.float64), rtol=1e-10, atol=1e-12)
    assert out[-1, 0].item() == pytest.approx(math.e, rel=1e-8)


@pytest.mark.parity
@pytest.mark.parametrize("method", ["euler", "rk4"])
@pytest.mark.parametrize("step_size", [None, 0.13])
def test_fixed_grid_equals_torchdiffeq_exactly(method, step_size):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    f = _Field()
    y0, t = torch.randn(5, 3), torch.linspace(0, 2, 5)
    options = None if step_size is None else {"step_size": step_size}
    ours = odeint(f, y0, t, method=method, step_size=step_size)
    reference = torchdiffeq.odeint(f, y0, t, method=method, options=options)
    assert torch.equal(ours, reference)


@pytest.mark.parity
@pytest.mark.parametrize("tol", [1e-5, 1e-8])
def test_dopri5_equals_torchdiffeq_to_tolerance(tol):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    f = _Field().double()
    y0, t = torch.randn(5, 3, dtype=torch.float64), torch.linspace(0, 2, 5, dtype=torch.float64)
    ours = odeint(f, y0, t, rtol=tol, atol=tol)
    reference = torchdiffeq.odeint(f, y0, t, method="dopri5", rtol=tol, atol=tol)
    assert (ours - reference).abs().max() < 200 * tol
    exact = odeint(f, y0, t, rtol=1e-12, atol=1e-12)
    assert (ours - exact).abs().max() < 200 * tol


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(rtol=0.0), ValueError, "rtol must be finite and > 0"),
        (dict(atol=-1e-3), ValueError, "atol must be finite and > 0"),
        (dict(method="rk45"), ValueError, "method must be one of"),
        (dict(t=torch.tensor([0.0, 1.0, 0.5])), ValueError, "strictly increasing or strictly decreasing"),
        (dict(t=torch.tensor([0.0, 0.0])), ValueError, "strictly increasing"),
        (dict(t=torch.tensor([0.0])), ValueError, "at least 2 times"),
        (dict(t=torch.tensor([0, 1])), TypeError, "t must be a floating-point tensor"),
        (dict(y0=torch.tensor([1])), TypeError, "y0 must be a floating-point tensor"),
        (dict(step_size=0.0, method="rk4"), ValueError, "step_size must be finite and > 0"),
    ],
)
def test_bad_input_is_rejected(kwargs, error, match):
    args = dict(func=decay, y0=torch.tensor([1.0]), t=torch.tensor([0.0, 1.0]))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        odeint(**args)


def test_func_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="func\\(t, y\\) must return a tensor shaped like y0"):
        odeint(lambda t, y: y.sum(), torch.ones(3), torch.tensor([0.0, 1.0]), method="euler")
