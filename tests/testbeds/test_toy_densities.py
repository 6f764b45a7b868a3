"""The 2-D targets: Rezende & Mohamed's U1-U4 by hand, quadrature of log Z, the sample sets."""

import math

import pytest
import torch

from aicanon.testbeds.toy_densities import ENERGIES, TOY_SETS, energy, grid, log_normaliser, sample_toy


def test_energies_by_hand():
    z = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    u1 = 0.5 * ((2 - 2) / 0.4) ** 2 - math.log(math.exp(0) + math.exp(-0.5 * (4 / 0.6) ** 2))
    assert math.isclose(float(energy("U1", z)[0]), u1, abs_tol=1e-12)
    w1 = math.sin(2 * math.pi * 1 / 4)  # = 1 at z1 = 1
    assert math.isclose(float(energy("U2", z)[1]), 0.5 * ((1 - w1) / 0.4) ** 2, abs_tol=1e-12)
    w2 = 3.0  # at z1 = 1
    u3 = -math.log(math.exp(-0.5 * ((1 - w1) / 0.35) ** 2) + math.exp(-0.5 * ((1 - w1 + w2) / 0.35) ** 2))
    assert math.isclose(float(energy("U3", z)[1]), u3, abs_tol=1e-12)
    w3 = 1.5  # 3 * sigmoid(0)
    u4 = -math.log(math.exp(-0.5 * ((1 - w1) / 0.4) ** 2) + math.exp(-0.5 * ((1 - w1 + w3) / 0.35) ** 2))
    assert math.isclose(float(energy("U4", z)[1]), u4, abs_tol=1e-12)


def test_log_normaliser_converges_for_u1_and_grid_covers_the_box():
    points, area = grid(4.0, 10)
    assert points.shape == (100, 2) and math.isclose(area, 0.64)
    assert math.isclose(float(points.min()), -3.6) and math.isclose(float(points.max()), 3.6)
    coarse, fine = log_normaliser("U1", resolution=400), log_normaliser("U1", limit=6.0, resolution=1200)
    assert abs(coarse - fine) < 1e-3  # U1's mass lies inside [-4, 4]^2
    assert set(ENERGIES) == {"U1", "U2", "U3", "U4"}


@pytest.mark.parametrize("name", TOY_SETS)
def test_sample_sets_are_seeded_and_unit_scale(name):
    a = sample_toy(name, 500, torch.Generator().manual_seed(1))
    b = sample_toy(name, 500, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (500, 2) and a.dtype == torch.float32
    assert a.abs().max() < 4 and 0.5 < float(a.std()) < 2


def test_bad_names_and_points_are_refused():
    with pytest.raises(ValueError, match="name must be one of \\('U1', 'U2', 'U3', 'U4'\\), got 'U5'"):
        energy("U5", torch.zeros(1, 2))
    with pytest.raises(ValueError, match="z must be a tensor of shape \\[\\*, 2\\]"):
        energy("U1", torch.zeros(3))
    with pytest.raises(ValueError, match="name must be one of"):
        sample_toy("spirals", 10)
