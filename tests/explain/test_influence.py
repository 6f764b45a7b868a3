import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.explain.influence import InfluenceFunction, conjugate_gradient, lissa

pytestmark = pytest.mark.paper("influence-functions")


def _logistic_problem(seed: int = 0, n: int = 60, d: int = 4, classes: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, classes, generator=g, dtype=torch.float64)
    y = (x @ w + 0.5 * torch.randn(n, classes, generator=g, dtype=torch.float64)).argmax(1)
    return x, y


def _fit(model: nn.Module, x, y, l2: float, weights=None) -> nn.Module:
    """Minimise (1/n) Σ w_i L(z_i) + (λ/2)‖θ‖² to high precision (LBFGS, float64)."""
    weights = torch.ones(len(y), dtype=torch.float64) if weights is None else weights
    params = list(model.parameters())
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=500,
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = (weights * F.cross_entropy(model(x), y, reduction="none")).sum() / len(y)
        loss = loss + 0.5 * l2 * sum((p * p).sum() for p in params)
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return model


def _trained_logistic(seed=0, l2=0.05, **kw):
    x, y = _logistic_problem(seed, **kw)
    torch.manual_seed(seed)
    model = nn.Linear(x.shape[1], int(y.max()) + 1).double()
    return _fit(model, x, y, l2), x, y


# --- golden values and invariants ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hvp_equals_autograd_hessian_products_on_an_mlp(dtype):
    torch.manual_seed(0)
    x = torch.randn(20, 3, dtype=dtype)
    y = torch.randint(0, 3, (20,))
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)
    inf = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.01)
    params = dict(model.named_parameters())
    names = list(params)

    def risk(*flat):
        out = torch.func.functional_call(model, dict(zip(names, flat)), (x,))
        return F.cross_entropy(out, y) + 0.005 * sum((p * p).sum() for p in flat)

    blocks = torch.autograd.functional.hessian(risk, tuple(p.detach() for p in params.values()))
    sizes = [p.numel() for p in params.values()]
    full = torch.cat(
        [
            torch.cat([blocks[i][j].reshape(sizes[i], sizes[j]) for j in range(len(sizes))], 1)
            for i in range(len(sizes))
        ],
        0,
    )
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(inf.hessian(), full, atol=atol, rtol=0)
    for _ in range(3):
        v = torch.randn(inf.n_parameters, dtype=dtype)
        torch.testing.assert_close(inf.hvp(v), full @ v, atol=atol, rtol=0)


def test_cg_and_lissa_agree_with_the_exact_solve_on_a_convex_problem():
    model, x, y = _trained_logistic(l2=0.05, classes=3)
    exact = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.05)
    v = exact.test_gradient(x[:3], y[:3])
    reference = exact.inverse_hvp(v)
    cg = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.05, solver="cg", cg_tol=1e-12)
    # CG: relative error 1e-8 (it is exact in p steps in exact arithmetic)
    assert torch.linalg.vector_norm(cg.inverse_hvp(v) - reference) <= 1e-8 * torch.linalg.vector_norm(
        reference
    )
    # LiSSA, full-batch Hessian: the truncated Neumann series; the error after `depth` steps is at most
    # (1 − λ_min/scale)^depth · ‖H⁻¹v‖, so scale = 1.1·λ_max and depth 3000 give below 1e-4 here.
    eig = torch.linalg.eigvalsh(exact.hessian())
    scale = float(1.1 * eig.max())
    ls = InfluenceFunction(
        model, F.cross_entropy, x, y, l2=0.05, solver="lissa", lissa_scale=scale, lissa_depth=3000
    )
    assert torch.linalg.vector_norm(ls.inverse_hvp(v) - reference) <= 1e-4 * torch.linalg.vector_norm(
        reference
    )
    # LiSSA with stochastic mini-batch Hessians, averaged over repeats: a stated 10 % relative tolerance
    stochastic = InfluenceFunction(
        model,
        F.cross_entropy,
        x,
        y,
        l2=0.05,
        solver="lissa",
        lissa_scale=2 * scale,
        lissa_depth=600,
        lissa_repeats=8,
        lissa_batch_size=20,
        generator=torch.Generator().manual_seed(0),
    )
    estimate = stochastic.inverse_hvp(v)
    assert torch.linalg.vector_norm(estimate - reference) <= 0.1 * torch.linalg.vector_norm(reference)


def test_damping_is_added_to_the_hessian_by_every_solver():
    model, x, y = _trained_logistic(l2=0.01)
    v = torch.randn(10, dtype=torch.float64)
    h = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.01).hessian()
    expected = torch.linalg.solve(h + 0.3 * torch.eye(10, dtype=torch.float64), v)
    for solver in ("exact", "cg", "lissa"):
        inf = InfluenceFunction(
            model,
            F.cross_entropy,
            x,
            y,
            l2=0.01,
            damping=0.3,
            solver=solver,
            lissa_scale=float(torch.linalg.eigvalsh(h).max()) + 1.0,
            lissa_depth=400,
        )
        torch.testing.assert_close(inf.inverse_hvp(v), expected, atol=1e-7, rtol=1e-6)


def test_up_loss_matches_reweighted_retraining_by_finite_difference():
    """Golden check of Eq. 2: retrain with point j's weight 1 + δ in (1/n) Σ w_i L(z_i) + (λ/2)‖θ‖²
    (the paper's ε is δ/n) and take a central difference: dL_test/dδ = I_up,loss(z_j, z_test)/n."""
    l2 = 0.1
    model, x, y = _trained_logistic(seed=1, l2=l2)
    inf = InfluenceFunction(model, F.cross_entropy, x, y, l2=l2)
    n = len(y)
    test_x, test_y = x[5:6] + 0.3, y[5:6]
    for j in (0, 7, 33):
        predicted = float(inf.up_loss(test_x, test_y, [j]).values[0]) / n
        losses = []
        for delta in (1e-2, -1e-2):
            w = torch.ones(n, dtype=torch.float64)
            w[j] += delta
            refit = nn.Linear(4, 2).double()
            refit.load_state_dict(model.state_dict())  # warm start at θ̂
            _fit(refit, x, y, l2, w)
            with torch.no_grad():
                losses.append(float(F.cross_entropy(refit(test_x), test_y)))
        actual = (losses[0] - losses[1]) / 2e-2
        assert actual == pytest.approx(predicted, rel=1e-4, abs=1e-9)


def test_self_influence_is_up_loss_on_the_point_itself_and_non_positive():
    model, x, y = _trained_logistic(l2=0.05, classes=3)
    inf = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.05)
    own = inf.self_influence([2, 9]).values
    for k, j in enumerate((2, 9)):
        assert own[k] == pytest.approx(
            float(inf.up_loss(x[j : j + 1], y[j : j + 1], [j]).values[0]), rel=1e-10
        )
    assert np.all(inf.self_influence().values <= 0)  # −gᵀH⁻¹g with H positive definite


def test_pert_loss_equals_the_mixed_second_derivative():
    model, x, y = _trained_logistic(l2=0.05)
    inf = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.05)
    s = inf.s_test(x[:2], y[:2])
    names = inf.names
    for j in (0, 4):

        def directional(xj, j=j):
            out = model(xj[None])
            g = torch.autograd.grad(
                F.cross_entropy(out, y[j : j + 1]),
                [dict(model.named_parameters())[k] for k in names],
                create_graph=True,
            )
            return torch.cat([t.reshape(-1) for t in g]) @ s

        expected = -torch.autograd.functional.jacobian(directional, x[j])
        got = inf.pert_loss(x[:2], y[:2], [j]).values[0]
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-10)


def test_a_parameter_subset_uses_its_hessian_block():
    torch.manual_seed(0)
    x = torch.randn(30, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (30,))
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    full = InfluenceFunction(model, F.cross_entropy, x, y)
    last = InfluenceFunction(model, F.cross_entropy, x, y, parameters=["2.weight", "2.bias"])
    assert last.n_parameters == 10
    torch.testing.assert_close(last.hessian(), full.hessian()[-10:, -10:])
    torch.testing.assert_close(last.train_gradients([1, 2]), full.train_gradients([1, 2])[:, -10:])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), l2=st.floats(0.01, 1.0), damping=st.floats(0.0, 1.0))
def test_cg_solves_random_convex_problems(seed, l2, damping):
    x, y = _logistic_problem(seed, n=25, d=3)
    torch.manual_seed(seed)
    model = nn.Linear(3, 2).double()  # influence is defined at any θ for a convex risk's Hessian
    exact = InfluenceFunction(model, F.cross_entropy, x, y, l2=l2, damping=damping)
    cg = InfluenceFunction(model, F.cross_entropy, x, y, l2=l2, damping=damping, solver="cg", cg_tol=1e-12)
    a = exact.up_loss(x[:1], y[:1]).values
    b = cg.up_loss(x[:1], y[:1]).values
    np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9)
    assert np.all(exact.self_influence().values <= 1e-12)


def test_conjugate_gradient_and_lissa_on_a_known_matrix():
    a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0], dtype=torch.float64)
    golden = torch.tensor([1 / 11, 7 / 11], dtype=torch.float64)  # solved by hand
    x, info = conjugate_gradient(lambda p: a @ p, v)
    torch.testing.assert_close(x, golden)
    assert info["iterations"] <= 2
    torch.testing.assert_close(lissa(lambda p: a @ p, v, scale=5.0, depth=500), golden)
    with pytest.raises(ValueError, match="positive-definite"):
        conjugate_gradient(lambda p: -p, v)


def test_explanation_and_plots():
    model, x, y = _trained_logistic()
    inf = InfluenceFunction(model, F.cross_entropy, x, y, l2=0.05)
    e = inf.up_loss(x[:1], y[:1])
    assert e.values.shape == (60,) and e.method == "influence_up_loss"
    np.testing.assert_allclose(e.extras["predicted_loss_change"], -e.values / 60)
    fig = e.plot()
    assert len(fig.axes[0].patches) == 20
    e.extras["actual_loss_change"] = e.extras["predicted_loss_change"][:5]
    e.extras["actual_positions"] = np.arange(5)
    fig = e.plot()
    assert "actual" in fig.axes[0].get_xlabel()


# --- reference parity: captum's NaiveInfluenceFunction --------------------------------------------


@pytest.mark.parity
def test_parity_with_captum_naive_influence_function(tmp_path):
    captum_influence = pytest.importorskip("captum.influence")
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = torch.randn(40, 3)
    y = torch.randint(0, 2, (40,))
    model = nn.Linear(3, 2)
    path = tmp_path / "checkpoint.pt"
    torch.save(model.state_dict(), path)
    loader = DataLoader(TensorDataset(x, y), batch_size=40)
    # captum sums the loss over the data (our risk averages it), so its Hessian is n·H and its
    # score ∇L_testᵀ (nH + reg)⁻¹ ∇L_train equals our −I_up,loss/n with damping reg/n.
    reference = captum_influence.NaiveInfluenceFunction(
        model,
        loader,
        str(path),
        loss_fn=nn.CrossEntropyLoss(reduction="none"),
        batch_size=40,
        projection_dim=6,
        hessian_reg=1e-6,
    )
    ours = InfluenceFunction(model, F.cross_entropy, x, y, damping=1e-6 / 40)
    ref_scores = reference.influence((x[:3], y[:3]))
    for i in range(3):
        got = ours.up_loss(x[i : i + 1], y[i : i + 1]).extras["predicted_loss_change"]
        np.testing.assert_allclose(got, ref_scores[i].numpy(), atol=1e-5, rtol=0)
    ref_self = reference.self_influence(loader)
    np.testing.assert_allclose(-ours.self_influence().values / 40, ref_self.numpy(), atol=1e-5, rtol=0)
    # gradients: the per-point parameter gradients both build on
    for i in (0, 5):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        expected = torch.cat([model.weight.grad.reshape(-1), model.bias.grad])
        torch.testing.assert_close(ours.train_gradients([i])[0], expected, atol=1e-6, rtol=0)


# --- bad input ------------------------------------------------------------------------------------


def test_bad_input_is_rejected_with_the_argument_named():
    model, x, y = _trained_logistic()
    ok = {"model": model, "loss_fn": F.cross_entropy, "x_train": x, "y_train": y}
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        InfluenceFunction(**{**ok, "model": lambda t: t})
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        InfluenceFunction(**{**ok, "loss_fn": 3})
    with pytest.raises(TypeError, match="x_train must be a torch.Tensor"):
        InfluenceFunction(**{**ok, "x_train": x.numpy()})
    with pytest.raises(ValueError, match="same number of samples"):
        InfluenceFunction(**{**ok, "y_train": y[:-1]})
    with pytest.raises(ValueError, match="solver must be one of"):
        InfluenceFunction(**ok, solver="newton")
    with pytest.raises(ValueError, match="lissa_scale must be finite and > 0, got 0"):
        InfluenceFunction(**ok, lissa_scale=0.0)
    with pytest.raises(ValueError, match="lissa_depth must be >= 1, got 0"):
        InfluenceFunction(**ok, lissa_depth=0)
    with pytest.raises(ValueError, match="damping must be finite and >= 0"):
        InfluenceFunction(**ok, damping=-1.0)
    with pytest.raises(ValueError, match="lissa_batch_size must be <= the 60"):
        InfluenceFunction(**ok, lissa_batch_size=61)
    with pytest.raises(ValueError, match=r"parameters \['fc.weight'\] are not parameters"):
        InfluenceFunction(**ok, parameters=["fc.weight"])
    inf = InfluenceFunction(**ok)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 60\)"):
        inf.up_loss(x[:1], y[:1], [60])
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 60\)"):
        inf.self_influence([-1])
    with pytest.raises(TypeError, match="indices must be a 1-D sequence of ints"):
        inf.up_loss(x[:1], y[:1], [0.5])
    with pytest.raises(ValueError, match=r"x_test must have shape \[k, 4\]"):
        inf.up_loss(x[:1, :3], y[:1])
    with pytest.raises(ValueError, match="y_test must have shape"):
        inf.pert_loss(x[:2], y[:1])
    with pytest.raises(ValueError, match="v must have 10 entries"):
        inf.hvp(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="v must have 10 columns"):
        inf.inverse_hvp(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        lissa(lambda p: p, torch.ones(2), scale=-1.0, depth=3)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        lissa(lambda p: p, torch.ones(2), scale=1.0, depth=0)
    with pytest.raises(ValueError, match="v must be a non-empty 1-D vector"):
        conjugate_gradient(lambda p: p, torch.ones(2, 2))
