"""Planar and radial flows: log-determinants against autograd, the û constraint, normflows parity,
the stacked density and the flow VAE, bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.generative.flows.base import FlowSequence, NotInvertible
from aicanon.generative.flows.flow_vi import (
    FlowDensity,
    FlowVAE,
    PlanarDensity,
    free_energy,
    make_flows,
)
from aicanon.generative.flows.planar import (
    NonInvertibleFlow,
    Planar,
    Radial,
    constrained_u,
    planar_transform,
    radial_transform,
)

pytestmark = pytest.mark.paper("normalizing-flows")


def _jacobian_logdet(layer, x: torch.Tensor) -> torch.Tensor:
    """log|det J| per example by torch.func.jacrev (float64)."""
    jac = torch.func.vmap(torch.func.jacrev(lambda v: layer(v.unsqueeze(0))[0].squeeze(0)))(x)
    return torch.linalg.slogdet(jac).logabsdet


@pytest.mark.parametrize("dim", [1, 2, 5])
@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_logdet_equals_autograd_jacobian(kind, dim):
    torch.manual_seed(dim)
    layer = (Planar(dim, init_scale=1.0) if kind == "planar" else Radial(dim)).double()
    if kind == "radial":
        with torch.no_grad():
            layer.beta.fill_(1.3)
            layer.log_alpha.fill_(-0.5)
    x = torch.randn(16, dim, dtype=torch.float64)
    _, logdet = layer(x)
    torch.testing.assert_close(logdet, _jacobian_logdet(layer, x), rtol=1e-9, atol=1e-9)


def test_golden_planar_value():
    # D = 1, w = 1, u = 0.5 (w.u = 0.5 > -1: left as is without the constraint), b = 0, z = 0.3.
    z = torch.tensor([[0.3]], dtype=torch.float64)
    one = torch.ones(1, dtype=torch.float64)
    out, logdet = planar_transform(z, 0.5 * one, one, torch.zeros(1, dtype=torch.float64), constrain=False)
    assert out.item() == pytest.approx(0.3 + 0.5 * math.tanh(0.3))
    assert logdet.item() == pytest.approx(math.log(1 + 0.5 * (1 - math.tanh(0.3) ** 2)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=3, max_size=3),
    st.lists(st.floats(-50, 50).filter(lambda v: abs(v) > 1e-3), min_size=3, max_size=3),
)
def test_constraint_gives_w_dot_u_hat_above_minus_one(u, w):
    u = torch.tensor(u, dtype=torch.float64)
    w = torch.tensor(w, dtype=torch.float64)
    u_hat = constrained_u(u, w)
    wu = float((w * u).sum())
    # w.û = m(w.u) = -1 + softplus(w.u) >= -1 (strictly, up to rounding when w.u is very negative).
    assert float((w * u_hat).sum()) >= -1 - 1e-9
    assert float((w * u_hat).sum()) == pytest.approx(
        -1 + float(torch.nn.functional.softplus(torch.tensor(wu, dtype=torch.float64))), abs=1e-6
    )


def test_constrained_planar_is_injective_along_w():
    # Along w the map is t -> t + w.û tanh(t ‖w‖ + b) ...: monotone because w.û > -1.
    torch.manual_seed(0)
    u, w = torch.tensor([-5.0, 0.0]), torch.tensor([2.0, 0.0])
    t = torch.linspace(-3, 3, 2001).unsqueeze(1) * torch.tensor([[1.0, 0.0]])
    out, _ = planar_transform(t, u, w, torch.zeros(1))
    assert bool((out[1:, 0] > out[:-1, 0]).all())


def test_unconstrained_non_invertible_planar_is_refused():
    layer = Planar(2, constrain=False)
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 0.0]))
        layer.u.copy_(torch.tensor([-2.0, 0.0]))
    with pytest.raises(NonInvertibleFlow, match="w.u must be >= -1"):
        layer(torch.randn(4, 2))
    assert issubclass(NonInvertibleFlow, ValueError)
    # The same parameters are fine with the û reparameterisation.
    layer.constrain = True
    _, logdet = layer(torch.randn(4, 2))
    assert torch.isfinite(logdet).all()


def test_planar_inverse_is_refused_and_radial_inverse_round_trips():
    with pytest.raises(NotInvertible):
        Planar(2).inverse(torch.randn(3, 2))
    torch.manual_seed(1)
    layer = Radial(3).double()
    with torch.no_grad():
        layer.beta.fill_(-0.4)
        layer.log_alpha.fill_(0.2)
    x = torch.randn(32, 3, dtype=torch.float64) * 2
    y, logdet = layer(x)
    back, inverse_logdet = layer.inverse(y)
    torch.testing.assert_close(back, x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inverse_logdet, -logdet, rtol=1e-10, atol=1e-10)


@pytest.mark.parity
@pytest.mark.parametrize("dim", [2, 10])
def test_planar_matches_normflows(dim):
    normflows = pytest.importorskip("normflows")
    torch.manual_seed(dim)
    reference = normflows.flows.Planar((dim,))
    with torch.no_grad():
        reference.u.mul_(3.0)  # also exercises w.u < -1, where the constraint changes u
        reference.b.fill_(0.3)
    ours = Planar(dim)
    with torch.no_grad():
        ours.u.copy_(reference.u[0])
        ours.w.copy_(reference.w[0])
        ours.b.copy_(reference.b)
    z = torch.randn(64, dim, requires_grad=True)
    ref_out, ref_logdet = reference(z)
    out, logdet = ours(z)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(logdet, ref_logdet, rtol=0, atol=1e-5)
    (ref_grad,) = torch.autograd.grad((ref_out.sum() + ref_logdet.sum()), z)
    (grad,) = torch.autograd.grad((out.sum() + logdet.sum()), z)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("dim", [2, 10])
def test_radial_matches_normflows(dim):
    normflows = pytest.importorskip("normflows")
    torch.manual_seed(dim)
    reference = normflows.flows.Radial((dim,))
    with torch.no_grad():
        reference.alpha.fill_(-0.7)  # theirs uses |alpha|
        reference.beta.fill_(0.4)
    ours = Radial(dim)
    with torch.no_grad():
        ours.z0.copy_(reference.z_0[0])
        ours.log_alpha.fill_(math.log(0.7))
        ours.beta.copy_(reference.beta)
    z = torch.randn(64, dim)
    ref_out, ref_logdet = reference(z)
    out, logdet = ours(z)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(logdet, ref_logdet, rtol=0, atol=1e-5)


def test_per_example_parameters_equal_one_layer_per_example():
    torch.manual_seed(0)
    z, u, w, b = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3), torch.randn(5)
    out, logdet = planar_transform(z, u, w, b)
    for i in range(5):
        one, one_logdet = planar_transform(z[i : i + 1], u[i], w[i], b[i : i + 1])
        torch.testing.assert_close(out[i], one[0])
        torch.testing.assert_close(logdet[i], one_logdet[0])


def test_stacked_density_equals_a_sequence_of_planar_layers():
    torch.manual_seed(0)
    stacked = PlanarDensity(2, 4, copies=3, init_scale=0.8).double()
    z = torch.randn(3, 10, 2, dtype=torch.float64)
    out, logdet = stacked.flow(z)
    for c in range(3):
        layers = []
        for k in range(4):
            layer = Planar(2).double()
            with torch.no_grad():
                layer.u.copy_(stacked.u[k, c])
                layer.w.copy_(stacked.w[k, c])
                layer.b.copy_(stacked.b[k, c : c + 1])
            layers.append(layer)
        ref, ref_logdet = FlowSequence(layers)(z[c])
        torch.testing.assert_close(out[c], ref)
        torch.testing.assert_close(logdet[c], ref_logdet)


def test_free_energy_of_the_exact_density_is_minus_log_z():
    # q0 = N(0, I) and U = |z|²/2: q = p, so F = -log Z = -log(2 pi) exactly for every sample.
    density = FlowDensity(make_flows(2, 0), 2)
    value = free_energy(density, lambda z: 0.5 * z.square().sum(-1), 100)
    assert value.item() == pytest.approx(-math.log(2 * math.pi), abs=1e-5)


def test_flow_vae_bound_and_importance_estimate():
    torch.manual_seed(0)
    model = FlowVAE(data_dim=12, latent_dim=3, hidden_units=8, flow_length=2)
    x = torch.bernoulli(torch.full((4, 12), 0.5))
    bound = model.free_energy(x)
    assert bound.shape == (4,) and torch.isfinite(bound).all()
    bound.mean().backward()
    assert model.flow_head.weight.grad is not None and model.flow_head.weight.grad.abs().sum() > 0
    # The importance estimate of -log p(x) is below the average single-sample bound.
    averaged = torch.stack([model.free_energy(x).detach() for _ in range(200)]).mean(0)
    assert (model.importance_nll(x, 500) <= averaged + 0.05).all()


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="length must be >= 0"):
        make_flows(2, -1)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_flows(2, 1, kind="sylvester")
    with pytest.raises(ValueError, match="dim must be >= 1"):
        Planar(0)
    with pytest.raises(ValueError, match=r"z must be \[..., B, 3\]"):
        Planar(3)(torch.randn(4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        Planar(2)(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="u must be"):
        planar_transform(torch.randn(4, 2), torch.randn(3, 2), torch.randn(2), torch.zeros(1))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        radial_transform(torch.randn(4, 2), torch.zeros(2), torch.tensor([0.0]), torch.zeros(1))
    with pytest.raises(ValueError, match="flow_length must be >= 0"):
        FlowVAE(flow_length=-2)
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        FlowVAE(data_dim=5, latent_dim=2, hidden_units=3).free_energy(torch.rand(2, 6))
    with pytest.raises(ValueError, match="inverse_temperature must be"):
        free_energy(FlowDensity(make_flows(2, 1), 2), lambda z: z.sum(-1), 4, inverse_temperature=-1.0)
    with pytest.raises(ValueError, match="energy must return one value per sample"):
        free_energy(FlowDensity(make_flows(2, 1), 2), lambda z: z, 4)
