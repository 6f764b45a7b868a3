"""Continuous normalising flows: inverse, log-determinant against the Jacobian, traces, bad input."""

import pytest
import torch

from aicanon.generative.flows.base import Flow
from aicanon.generative.ode.cnf import CNF, PlanarDynamics, exact_trace, hutchinson_trace

pytestmark = pytest.mark.paper("neural-ode")


def _cnf(hidden=None, **kwargs):
    torch.manual_seed(0)
    options = dict(rtol=1e-10, atol=1e-10)
    options.update(kwargs)
    return CNF(PlanarDynamics(2, 4, hidden=hidden, init_scale=1.0).double(), 2, **options)


@pytest.mark.parametrize("hidden", [None, 8])
def test_inverse_of_forward_is_identity(hidden):
    cnf = _cnf(hidden)
    x = torch.randn(5, 2, dtype=torch.float64)
    z, logdet = cnf(x)
    back, inverse_logdet = cnf.inverse(z)
    assert isinstance(cnf, Flow)
    assert torch.allclose(back, x, atol=1e-8)
    assert torch.allclose(logdet, -inverse_logdet, atol=1e-8)


@pytest.mark.parametrize("hidden", [None, 8])
def test_logdet_equals_log_abs_det_of_the_jacobian(hidden):
    # torch.func.jacrev cannot trace the trace's inner autograd.grad; autograd.functional can.
    cnf = _cnf(hidden)
    x = torch.randn(3, 2, dtype=torch.float64)
    _, logdet = cnf(x)
    for i in range(3):
        jacobian = torch.autograd.functional.jacobian(lambda v: cnf(v.unsqueeze(0))[0][0], x[i])
        assert torch.linalg.slogdet(jacobian)[1].item() == pytest.approx(logdet[i].item(), abs=1e-7)


def test_exact_trace_equals_the_closed_form_of_eq_10():
    dynamics = PlanarDynamics(3, 5, hidden=8, init_scale=1.0).double()
    z = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.4, dtype=torch.float64)
    assert torch.allclose(exact_trace(dynamics(t, z), z, False), dynamics.trace(t, z), atol=1e-12)


def test_hutchinson_estimate_is_unbiased():
    dynamics = PlanarDynamics(3, 5, hidden=None, init_scale=1.0).double()
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.2, dtype=torch.float64)
    f = dynamics(t, z)
    torch.manual_seed(0)
    estimates = torch.stack([hutchinson_trace(f, z, torch.randn_like(z).sign(), True) for _ in range(4000)])
    assert torch.allclose(estimates.mean(0), dynamics.trace(t, z), atol=0.05)


def test_adjoint_gives_the_same_gradients_as_backprop():
    x = torch.randn(4, 2, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        cnf = _cnf(None, adjoint=adjoint, rtol=1e-9, atol=1e-9)
        z, logdet = cnf(x)
        (z.square().sum() + logdet.sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in cnf.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_bad_input_is_rejected():
    dynamics = PlanarDynamics(2, 3)
    with pytest.raises(ValueError, match="trace must be one of"):
        CNF(dynamics, 2, trace="approximate")
    with pytest.raises(ValueError, match="rtol must be finite and > 0"):
        CNF(dynamics, 2, rtol=0.0)
    with pytest.raises(ValueError, match="integration_time must be finite and > 0"):
        CNF(dynamics, 2, integration_time=0.0)
    with pytest.raises(TypeError, match="dynamics must be an nn.Module"):
        CNF(lambda t, z: z, 2)
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        CNF(dynamics, 2)(torch.randn(4, 3))
