"""PReLU (Eq. 1-4), He initialisation (Eq. 10, 14, 15), the paper's "Xavier" and param_groups."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.vision.rectifiers import PReLU, fans, he_init_, he_std, param_groups, xavier_init_, xavier_std

pytestmark = pytest.mark.paper("prelu-he-init")


# --- golden values and invariants ------------------------------------------------------------


def test_prelu_golden_values():
    act = PReLU(1, init=0.25)
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0])
    # Eq. 1 by hand: max(0, y) + 0.25 min(0, y)
    assert torch.equal(act(x), torch.tensor([-0.5, -0.125, 0.0, 1.5, 3.0]))


def test_prelu_channelwise_golden_values():
    act = PReLU(3, init=0.25)
    with torch.no_grad():
        act.weight.copy_(torch.tensor([0.0, 0.5, 1.0]))
    x = torch.tensor([[[-2.0, 2.0]], [[-2.0, 2.0]], [[-2.0, 2.0]]]).reshape(1, 3, 2)
    expected = torch.tensor([[[0.0, 2.0], [-1.0, 2.0], [-2.0, 2.0]]])
    assert torch.equal(act(x), expected)


@pytest.mark.parametrize("num_parameters", [1, 4])
def test_prelu_coefficient_gradient_is_eq_2_and_3(num_parameters):
    """dE/da_i = sum over channel i of dE/df(y) * (y if y <= 0 else 0); shared sums all channels (Eq. 4)."""
    torch.manual_seed(0)
    act = PReLU(num_parameters, init=0.3)
    y = torch.randn(5, 4, 3, 3)
    y[0, :, 0, 0] = 0.0  # the y = 0 boundary belongs to the y <= 0 branch
    upstream = torch.randn_like(y)
    (act(y) * upstream).sum().backward()
    contribution = upstream * torch.where(y > 0, torch.zeros_like(y), y)
    if num_parameters == 1:
        expected = contribution.sum().reshape(1)
    else:
        expected = contribution.sum(dim=(0, 2, 3))
    torch.testing.assert_close(act.weight.grad, expected, rtol=1e-5, atol=1e-5)


def test_prelu_input_gradient_is_one_or_a():
    act = PReLU(1, init=0.3)
    y = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    act(y).sum().backward()
    assert torch.allclose(y.grad, torch.tensor([0.3, 0.3, 1.0]))


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=40),
    scale=st.floats(0.01, 100.0),
)
def test_prelu_special_cases_and_homogeneity(values, scale):
    x = torch.tensor(values, dtype=torch.float32)
    relu_like, linear = PReLU(1, init=0.0), PReLU(1, init=1.0)
    assert torch.equal(relu_like(x), torch.relu(x))  # a = 0 is ReLU
    assert torch.equal(linear(x), x)  # a = 1 is the identity
    act = PReLU(1, init=0.25)
    # Eq. 1 is positively homogeneous: f(c y) = c f(y) for c > 0.
    torch.testing.assert_close(act(scale * x), scale * act(x), rtol=1e-5, atol=1e-4)


def test_fans_are_k2c_and_k2d():
    assert fans(torch.empty(8, 3, 5, 5)) == (75, 200)
    assert fans(torch.empty(10, 64)) == (64, 10)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("slope", [0.0, 0.25, 1.0])
def test_he_init_empirical_std_matches_formula(mode, slope):
    weight = torch.empty(512, 256, 2, 2)
    he_init_(weight, mode=mode, negative_slope=slope, generator=torch.Generator().manual_seed(1))
    n = 256 * 4 if mode == "fan_in" else 512 * 4
    sigma = math.sqrt(2.0 / ((1 + slope**2) * n))
    samples = weight.numel()
    # For a Gaussian the sample std has standard error sigma / sqrt(2 N) and the mean sigma / sqrt(N);
    # allow 5 standard errors each.
    assert abs(weight.std().item() - sigma) < 5 * sigma / math.sqrt(2 * samples)
    assert abs(weight.mean().item()) < 5 * sigma / math.sqrt(samples)


def test_he_std_golden():
    assert he_std(50) == pytest.approx(0.2)  # sqrt(2 / 50)
    assert he_std(50, 1.0) == pytest.approx(math.sqrt(1 / 50))  # a = 1: the linear case
    assert xavier_std(100, 300, "fan_in") == pytest.approx(0.1)
    assert xavier_std(100, 300, "fan_avg") == pytest.approx(math.sqrt(2 / 400))


def test_he_init_module_zeroes_biases_and_skips_other_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), PReLU(8), nn.Flatten(), nn.Linear(8, 4), nn.LayerNorm(4))
    he_init_(model)
    assert torch.count_nonzero(model[0].bias) == 0 and torch.count_nonzero(model[3].bias) == 0
    assert torch.equal(model[1].weight, torch.full((8,), 0.25))  # the coefficients are not weights
    assert torch.equal(model[4].weight, torch.ones(4))


def _signal_variance_ratio(init: str, slope: float, seed: int, depth: int = 30, width: int = 256) -> float:
    """Var[y_L] / Var[y_1] of the responses of a deep Linear+PReLU(a) stack with zero biases (Eq. 9)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(256, width, generator=generator)
    weight = torch.empty(width, width)
    variances = []
    for _ in range(depth):
        if init == "he":
            he_init_(weight, negative_slope=slope, generator=generator)
        else:
            xavier_init_(weight, generator=generator)
        y = x @ weight.T
        variances.append(y.var().item())
        x = torch.where(y > 0, y, slope * y)
    return variances[-1] / variances[0]


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), slope=st.sampled_from([0.0, 0.25, 0.5]))
def test_he_init_keeps_forward_signal_variance_and_xavier_collapses_it(seed, slope):
    # Eq. 10/15: each layer multiplies Var[y] by 1/2 (1 + a^2) n Var[w] = 1 with He init; at width
    # 256 the product over 29 layers fluctuates by about e^(+-0.5) per seed (0.12..2.7 over 100
    # seeds for ReLU), so the bounds are loose, yet a per-layer variance gain off by 20 % (1.2^29 ~ 200) leaves them.
    assert 1 / 16 < _signal_variance_ratio("he", slope, seed) < 16
    # With std sqrt(1/n) the per-layer factor is (1 + a^2) / 2 <= 0.625: below 1e-5 over 30 layers.
    assert _signal_variance_ratio("xavier", slope, seed) < 1e-3


def test_param_groups_exempt_prelu_coefficients_from_weight_decay():
    model = nn.Sequential(nn.Linear(4, 4), PReLU(4), nn.Linear(4, 2), nn.PReLU())
    groups = param_groups(model, 0.1)
    decayed = {id(p) for p in groups[0]["params"]}
    exempt = {id(p) for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert exempt == {id(model[1].weight), id(model[3].weight)}
    assert decayed == {id(model[0].weight), id(model[0].bias), id(model[2].weight), id(model[2].bias)}
    no_bias_decay = param_groups(model, 0.1, decay_biases=False)
    assert {id(p) for p in no_bias_decay[1]["params"]} == exempt | {id(model[0].bias), id(model[2].bias)}
    # A step with zero gradients: decayed weights shrink, PReLU coefficients stay at 0.25.
    optimizer = torch.optim.SGD(groups, lr=1.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = model[0].weight.detach().clone()
    optimizer.step()
    assert torch.allclose(model[0].weight, 0.9 * before)
    assert torch.equal(model[1].weight, torch.full((4,), 0.25))


def test_param_groups_leave_out_empty_groups():
    groups = param_groups(nn.Linear(3, 3), 1e-4)
    assert len(groups) == 1 and len(groups[0]["params"]) == 2


# --- reference parity: torch.nn.PReLU and torch.nn.init ----------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize(
    "shape, channelwise",
    [((7,), False), ((6, 5), False), ((3, 5, 4, 4), False)]
    + [(shape, True) for shape in [(6, 5), (4, 5, 9), (3, 5, 4, 4), (2, 5, 3, 3, 3)]],
)
def test_prelu_matches_torch_prelu(shape, channelwise):
    torch.manual_seed(0)
    n = shape[1] if channelwise else 1
    ours, reference = PReLU(n), nn.PReLU(n)
    with torch.no_grad():
        coefficients = torch.rand(n) * 0.8
        ours.weight.copy_(coefficients)
        reference.weight.copy_(coefficients)
    x = torch.randn(shape)
    x.view(-1)[::5] = 0.0  # exact zeros: the kink must be handled the same way
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(shape)
    out_ours, out_ref = ours(x_ours), reference(x_ref)
    torch.testing.assert_close(out_ours, out_ref, rtol=0, atol=1e-5)
    (out_ours * upstream).sum().backward()
    (out_ref * upstream).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parity
def test_prelu_state_dict_loads_into_torch_prelu():
    ours = PReLU(6)
    with torch.no_grad():
        ours.weight.uniform_()
    reference = nn.PReLU(6)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6, 2)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


@pytest.mark.parity
@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3), (5, 7, 2, 2, 2)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("slope", [0.0, 0.25, 0.7])
def test_he_init_matches_kaiming_normal(shape, mode, slope):
    ours, reference = torch.empty(shape), torch.empty(shape)
    he_init_(ours, mode=mode, negative_slope=slope, generator=torch.Generator().manual_seed(3))
    nn.init.kaiming_normal_(
        reference, a=slope, mode=mode, nonlinearity="leaky_relu", generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(ours, reference)
    # The global generator (torch.manual_seed before each) gives the same tensors too.
    torch.manual_seed(11)
    he_init_(ours, mode=mode, negative_slope=slope)
    torch.manual_seed(11)
    nn.init.kaiming_normal_(reference, a=slope, mode=mode, nonlinearity="leaky_relu")
    assert torch.equal(ours, reference)


@pytest.mark.parity
def test_he_init_module_matches_kaiming_normal_layer_by_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Sequential(nn.Conv1d(6, 4, 2), nn.Linear(4, 2)))
    reference = [torch.empty_like(m.weight) for m in (model[0], model[2][0], model[2][1])]
    he_init_(model, mode="fan_out", negative_slope=0.25, generator=torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    for tensor in reference:
        nn.init.kaiming_normal_(tensor, a=0.25, mode="fan_out", generator=generator)
    for layer, tensor in zip((model[0], model[2][0], model[2][1]), reference):
        assert torch.equal(layer.weight, tensor)


@pytest.mark.parity
@pytest.mark.parametrize("shape", [(40, 30), (16, 8, 3, 3)])
def test_xavier_init_matches_torch(shape):
    generator_state = 9
    ours, reference = torch.empty(shape), torch.empty(shape)
    # The paper's form, std sqrt(1/n_l), equals kaiming_normal_ for a linear layer ...
    xavier_init_(ours, mode="fan_in", generator=torch.Generator().manual_seed(generator_state))
    nn.init.kaiming_normal_(
        reference, nonlinearity="linear", generator=torch.Generator().manual_seed(generator_state)
    )
    assert torch.equal(ours, reference)
    # ... and Glorot and Bengio's own normal form equals xavier_normal_.
    xavier_init_(ours, mode="fan_avg", generator=torch.Generator().manual_seed(generator_state))
    nn.init.xavier_normal_(reference, generator=torch.Generator().manual_seed(generator_state))
    assert torch.equal(ours, reference)


# --- bad input ------------------------------------------------------------------------------


def test_prelu_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_parameters must be >= 1.*got 0"):
        PReLU(0)
    with pytest.raises(TypeError, match="num_parameters must be an int.*float"):
        PReLU(2.0)
    with pytest.raises(ValueError, match="init must be a finite number.*nan"):
        PReLU(1, init=float("nan"))
    with pytest.raises(ValueError, match=r"input must have 4 channels in dim 1.*\(2, 3, 5\)"):
        PReLU(4)(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"input must have 4 channels.*\(4,\)"):
        PReLU(4)(torch.randn(4))
    with pytest.raises(TypeError, match="input must be a floating-point tensor.*int64"):
        PReLU(1)(torch.arange(3))
    with pytest.raises(TypeError, match="input must be a torch.Tensor.*list"):
        PReLU(1)([1.0, -1.0])


def test_init_functions_reject_bad_arguments():
    weight = torch.empty(4, 3)
    with pytest.raises(ValueError, match="mode must be one of.*'fan_avg'"):
        he_init_(weight, mode="fan_avg")
    with pytest.raises(ValueError, match=r"negative_slope must be finite and >= 0 \(0 = ReLU\), got -0.1"):
        he_init_(weight, negative_slope=-0.1)
    with pytest.raises(TypeError, match=r"negative_slope must be a number \(0 = ReLU\), got str"):
        he_init_(weight, negative_slope="0.1")
    with pytest.raises(ValueError, match=r"tensor must have >= 2 dims.*\(4,\)"):
        he_init_(torch.empty(4))
    with pytest.raises(TypeError, match="module_or_tensor must be floating point.*int64"):
        he_init_(torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="module_or_tensor must be a tensor or a module holding.*ReLU"):
        he_init_(nn.ReLU())
    with pytest.raises(TypeError, match="module_or_tensor must be an nn.Module or a torch.Tensor.*list"):
        he_init_([weight])
    with pytest.raises(TypeError, match="generator must be a torch.Generator.*int"):
        he_init_(weight, generator=3)
    with pytest.raises(ValueError, match="mode must be one of.*'fan_sum'"):
        xavier_init_(weight, mode="fan_sum")
    with pytest.raises(ValueError, match="fan must be >= 1, got 0"):
        he_std(0)


def test_param_groups_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weight_decay must be finite and >= 0, got -1"):
        param_groups(nn.Linear(2, 2), -1.0)
    with pytest.raises(TypeError, match="weight_decay must be a number, got NoneType"):
        param_groups(nn.Linear(2, 2), None)
    with pytest.raises(TypeError, match="model must be an nn.Module.*list"):
        param_groups([nn.Linear(2, 2)], 0.0)
