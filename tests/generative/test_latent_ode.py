"""Latent ODE: irregular observations read as if alone, ELBO, ablation, bad input."""

import pytest
import torch

from aicanon.generative.ode.latent_ode import LatentODE, RecurrentBaseline, gaussian_kl

pytestmark = pytest.mark.paper("neural-ode")


def test_masked_encoder_equals_reading_only_the_observations():
    torch.manual_seed(0)
    model = LatentODE(2)
    t = torch.linspace(0, 1, 6)
    x = torch.randn(1, 6, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
    keep = mask[0] > 0
    full = model.encode(x, t, mask)
    # The same sequence stored on its own grid (plus the last time so the gaps are measured alike).
    own_t = torch.cat([t[keep], t[-1:]])
    own_x = torch.cat([x[:, keep], torch.zeros(1, 1, 2)], dim=1)
    own_mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    alone = model.encode(own_x, own_t, own_mask)
    assert torch.allclose(full[0], alone[0], atol=1e-6) and torch.allclose(full[1], alone[1], atol=1e-6)


def test_elbo_shape_and_kl_golden_value():
    torch.manual_seed(0)
    model = LatentODE(2)
    t = torch.linspace(0, 1, 5)
    x = torch.randn(3, 5, 2)
    elbo = model.elbo(x[:, :3], t[:3], None, x, t)
    assert elbo.shape == (3,) and torch.isfinite(elbo).all()
    assert gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0
    assert gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)


def test_constant_latent_ablation_predicts_a_constant():
    torch.manual_seed(0)
    model = LatentODE(2, constant_latent=True)
    t = torch.linspace(0, 1, 5)
    out = model.predict(torch.randn(2, 5, 2), t, None, t)
    assert torch.allclose(out, out[:, :1].expand_as(out))


def test_baseline_predicts_at_the_requested_times():
    model = RecurrentBaseline(2)
    out = model.predict(torch.randn(3, 4, 2), torch.linspace(0, 1, 4), None, torch.linspace(1.1, 2, 5))
    assert out.shape == (3, 5, 2)


def test_baseline_loss_reads_only_the_observations():
    torch.manual_seed(0)
    model = RecurrentBaseline(2)
    t = torch.linspace(0, 1, 6)
    x = torch.randn(1, 6, 2)
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])
    keep = mask[0] > 0
    assert torch.allclose(model.loss(x, t, mask), model.loss(x[:, keep], t[keep]), atol=1e-6)
    # One-step-ahead targets only: the first observation is never predicted.
    with torch.no_grad():
        model.readout.weight.zero_()
        model.readout.bias.zero_()
    assert model.loss(x, t, mask).item() == pytest.approx(x[0, [2, 3, 5]].square().mean().item(), rel=1e-5)


def test_bad_input_is_rejected():
    model = LatentODE(2)
    t = torch.linspace(0, 1, 4)
    with pytest.raises(ValueError, match="x must be \\[B, T, 2\\]"):
        model.encode(torch.randn(2, 4, 3), t)
    with pytest.raises(ValueError, match="one time per step"):
        model.encode(torch.randn(2, 5, 2), t)
    with pytest.raises(ValueError, match="t must be increasing"):
        model.encode(torch.randn(2, 4, 2), t.flip(0))
    with pytest.raises(ValueError, match="at least one observation"):
        model.encode(torch.randn(2, 4, 2), t, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="method must be one of"):
        LatentODE(2, method="adams")
    with pytest.raises(ValueError, match="t_out must be non-empty and start at or after"):
        RecurrentBaseline(2).predict(torch.randn(2, 4, 2), t, None, torch.linspace(0.5, 2, 3))
