"""Influence functions (Koh & Liang, ICML 2017): predicted loss changes agree with leave-one-out
retraining (Figure 2), and self-influence finds mislabelled training points (Section 5.4, Figure 6).

(a) Figure 2. The paper trains L2-regularised logistic regression on MNIST 1 vs 7 and, for a test
    point, compares the predicted change of its loss when a training point is removed,
    ``−I_up,loss(z, z_test)/n`` (Eq. 2), with the actual change after retraining without that point,
    over the 500 (here ``top_k``) training points of largest |influence|. Here: scikit-learn's 8x8
    digits, the same binary task (1 vs 7; pixels in [0, 1]), logistic regression ``nn.Linear(64, 1)``
    with the risk ``mean BCE + (l2/2)‖θ‖²`` (the bias regularised too), in float64. The test points
    are the ``test_points`` of highest test loss (a confidently right 1-vs-7 test point has a loss
    near 0 and leave-one-out changes near rounding). The model and every leave-one-out model are
    solved by Newton's method to a gradient norm below 1e-12, warm-started at θ̂ for the retraining;
    influences come from :class:`aicanon.explain.influence.InfluenceFunction` (generic autograd code)
    with the exact solve, conjugate gradients and LiSSA. Metric: Pearson's R between predicted and
    actual changes, averaged over the test points. Ablation (reported, and a test that it fails the
    claim): the Hessian replaced by the identity (plain gradient dot products, ``∇L_testᵀ∇L(z)/n``),
    each variant choosing its own top points.

(b) Section 5.4. Multinomial logistic regression on all ten digits (``nn.Linear(64, 10)``, same
    L2 risk, fitted by L-BFGS in float64); ``flip_fraction`` of the training labels are replaced by
    a random other class. Checking training points in order of self-influence
    ``|I_up,loss(z_i, z_i)|`` (Section 5.4), of training loss, or at random, we report the fraction
    of flipped labels found after checking 10, 20 and 30 % of the training data.

Departures from the paper, and why:

* Data: scikit-learn's digits (1,797 8x8 images, bundled) stand for MNIST (not staged here) in (a)
  and for the Enron spam data in (b); the full config keeps the digits and adds test points and seeds.
* (a) ranks ``top_k = 100`` training points (of about 270) instead of the paper's 500 (of about 13,000).
* (a) leave-one-out retraining uses Newton's method instead of the paper's warm-started L-BFGS: for
  a 65-parameter strictly convex problem it reaches the exact minimiser in a few steps, fast.
* (b) uses a multinomial model on digits where the paper uses binary spam classification; with
  this convex model the training-loss ordering is as good as or slightly better than self-influence
  (the paper's Figure 6 finds influence ≥ loss): we report both and claim only influence ≫ random.

Paper numbers: Figure 2 shows close agreement graphically for logistic regression without printing
Pearson's R (the CNN panel of Figure 2 prints R ≈ 0.86, recalled and unverified: not re-read);
Figure 6's curves are graphical too, so no paper number is quoted for (b). Ours (R for every solver
and the identity-Hessian ablation, the recovered fractions of every ordering), per seed, are in the
run's record (``results/influence-functions/``) and in RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.datasets.digits import load_digits_split
from aicanon.explain.influence import InfluenceFunction


@dataclass
class Config(ExperimentConfig):
    test_fraction: float = 0.25
    """Share of the digits held out for testing (stratified split, seeded by the run's seed)."""
    pair: tuple[int, int] = (1, 7)
    """The two digits of the binary task of part (a) (the paper: MNIST 1 vs 7); the second is label 1."""
    l2: float = 0.01
    """λ of the (λ/2)‖θ‖² term of the training risk (both parts)."""
    test_points: int = 1
    """Part (a): how many test points (those of highest test loss) to explain; R is averaged over them."""
    top_k: int = 100
    """Part (a): leave-one-out retraining for the top_k training points of largest |influence|."""
    newton_tol: float = 1e-12
    """Part (a): Newton's method stops when the risk's gradient norm falls below this."""
    cg_tol: float = 1e-10
    """Relative residual at which conjugate gradients stop."""
    lissa_depth: int = 2000
    """LiSSA recursion depth (scale set to 1.1x the Hessian's largest eigenvalue, found by power iteration)."""
    lissa_repeats: int = 1
    """LiSSA repeats averaged (the full-batch Hessian makes one repeat deterministic)."""
    flip_fraction: float = 0.1
    """Part (b): share of training labels replaced by a random other class (Section 5.4: 10 %)."""
    checked_fractions: tuple[float, ...] = (0.1, 0.2, 0.3)
    """Part (b): shares of the training data checked, in each ordering, at which recovery is reported."""

    @classmethod
    def quick(cls) -> Config:
        return cls(scale="quick", seeds=2, test_points=1, lissa_depth=500)

    @classmethod
    def full(cls) -> Config:
        return cls(scale="full", seeds=5, test_points=5, lissa_repeats=1)


CLAIMS = [
    Claim(
        metric="loo_pearson_exact",
        description="predicted loss change −I_up,loss/n (exact inverse Hessian) vs leave-one-out retraining, "
        "Pearson's R over the most influential training points (logistic regression, digits 1 vs 7)",
        paper=None,
        source="Figure 2 (left; close agreement shown graphically)",
        quick=0.95,
        full=0.95,
    ),
    Claim(
        metric="loo_pearson_cg",
        description="as above with s_test by conjugate gradients on Hessian-vector products",
        paper=None,
        source="Figure 2; Section 3 (conjugate gradients)",
        quick=0.9,
        full=0.9,
    ),
    Claim(
        metric="loo_pearson_lissa",
        description="as above with s_test by the LiSSA recursion",
        paper=None,
        source="Figure 2 (middle); Section 3 (stochastic estimation)",
    ),
    Claim(
        metric="loo_pearson_identity_hessian",
        description="ablation: the Hessian replaced by the identity (gradient dot products)",
        paper=None,
        source="ours (cf. Section 5.1, Figure 3: dropping H⁻¹ or the loss term misleads)",
    ),
    Claim(
        metric="flip_recovered_influence_at_10",
        description="fraction of flipped labels found after checking 10 % of training points by self-influence",
        paper=None,
        source="Section 5.4, Figure 6",
    ),
    Claim(
        metric="flip_recovered_loss_at_10",
        description="the same, checking points in order of training loss",
        paper=None,
        source="Section 5.4, Figure 6",
    ),
    Claim(
        metric="flip_recovered_random_at_10",
        description="the same, checking points at random",
        paper=None,
        source="Section 5.4, Figure 6",
    ),
    Claim(
        metric="flip_margin_influence_vs_random_at_10",
        description="self-influence ordering finds more flipped labels than random checking, at 10 % checked "
        "(difference of the recovered fractions)",
        paper=None,
        source="Section 5.4, Figure 6",
        quick=0.5,
        full=0.5,
    ),
    Claim(
        metric="flip_margin_influence_vs_loss_at_10",
        description="self-influence minus training-loss ordering, recovered fraction at 10 % checked "
        "(the paper finds influence ≥ loss; reported only)",
        paper=None,
        source="Section 5.4, Figure 6",
    ),
]


# --------------------------------------------------------------------------- part (a): Figure 2
def binary_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss of ``nn.Linear(d, 1)`` outputs against 0/1 targets."""
    return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets)


def newton_logistic(
    x: torch.Tensor, y: torch.Tensor, l2: float, theta: torch.Tensor | None = None, tol: float = 1e-12
) -> torch.Tensor:
    """Minimise ``mean BCE(x̃θ, y) + (l2/2)‖θ‖²`` (``x̃ = [x, 1]``) by Newton's method; return ``θ = [w, b]``.

    The risk is strictly convex, so Newton's steps from a warm start converge quadratically; a
    backtracking halving guards the first steps from a cold start.
    """
    xt = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    theta = torch.zeros(xt.shape[1], dtype=x.dtype) if theta is None else theta.clone()
    m = len(y)
    eye = torch.eye(xt.shape[1], dtype=x.dtype)

    def risk(t: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(xt @ t, y) + 0.5 * l2 * (t @ t)

    for _ in range(100):
        p = torch.sigmoid(xt @ theta)
        gradient = xt.T @ (p - y) / m + l2 * theta
        if torch.linalg.vector_norm(gradient) < tol:
            break
        hessian = (xt.T * (p * (1 - p))) @ xt / m + l2 * eye
        step = torch.linalg.solve(hessian, gradient)
        size, current = 1.0, risk(theta)
        while risk(theta - size * step) > current + 1e-15 and size > 1e-8:
            size /= 2
        theta = theta - size * step
    return theta


def _linear_from(theta: torch.Tensor) -> nn.Linear:
    model = nn.Linear(theta.numel() - 1, 1).double()
    with torch.no_grad():
        model.weight.copy_(theta[:-1][None])
        model.bias.copy_(theta[-1:])
    return model


def _largest_eigenvalue(inf: InfluenceFunction, iterations: int = 100) -> float:
    """Power iteration on Hessian-vector products (LiSSA's scale needs it; no Hessian formed)."""
    v = torch.ones(inf.n_parameters, dtype=inf.theta.dtype)
    value = 0.0
    for _ in range(iterations):
        hv = inf.hvp(v)
        value = float(torch.linalg.vector_norm(hv))
        v = hv / value
    return value


def leave_one_out(cfg: Config, split) -> tuple[dict[str, float], dict, Figure]:
    a, b = cfg.pair

    def select(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = (y == a) | (y == b)
        return x[keep].double(), (y[keep] == b).double()

    x_train, y_train = select(split.x_train, split.y_train)
    x_test, y_test = select(split.x_test, split.y_test)
    n = len(y_train)
    theta = newton_logistic(x_train, y_train, cfg.l2, tol=cfg.newton_tol)
    model = _linear_from(theta)
    with torch.no_grad():
        test_losses = F.binary_cross_entropy_with_logits(model(x_test).squeeze(-1), y_test, reduction="none")
    chosen = torch.argsort(test_losses, descending=True)[: cfg.test_points].tolist()

    solvers = {
        "exact": InfluenceFunction(model, binary_loss, x_train, y_train, l2=cfg.l2),
        "cg": InfluenceFunction(
            model, binary_loss, x_train, y_train, l2=cfg.l2, solver="cg", cg_tol=cfg.cg_tol
        ),
    }
    scale = 1.1 * _largest_eigenvalue(solvers["exact"])
    solvers["lissa"] = InfluenceFunction(
        model,
        binary_loss,
        x_train,
        y_train,
        l2=cfg.l2,
        solver="lissa",
        lissa_scale=scale,
        lissa_depth=cfg.lissa_depth,
        lissa_repeats=cfg.lissa_repeats,
    )
    gradients = solvers["exact"].train_gradients()
    pearson: dict[str, list[float]] = {k: [] for k in ("exact", "cg", "lissa", "identity_hessian")}
    per_point = []
    figure_explanation = None
    refits: dict[int, torch.Tensor] = {}  # θ̂ without point j; shared by test points and variants

    def refit_without(j: int) -> torch.Tensor:
        if j not in refits:
            keep = torch.ones(n, dtype=torch.bool)
            keep[j] = False
            refits[j] = newton_logistic(x_train[keep], y_train[keep], cfg.l2, theta=theta, tol=cfg.newton_tol)
        return refits[j]

    for t in track(chosen, "leave-one-out retraining (Figure 2)", total=len(chosen)):
        zx, zy = x_test[t : t + 1], y_test[t : t + 1]
        with torch.no_grad():
            base = float(binary_loss(model(zx), zy))
        explanations = {k: inf.up_loss(zx, zy) for k, inf in solvers.items()}
        predicted = {k: e.extras["predicted_loss_change"] for k, e in explanations.items()}
        # ablation: H replaced by the identity, I = −∇L_testᵀ∇L(z), predicted change = −I/n
        predicted["identity_hessian"] = (gradients @ solvers["exact"].test_gradient(zx, zy)).numpy() / n
        record = {"test_index": t, "test_loss": base}
        for name, values in predicted.items():
            top = np.argsort(-np.abs(values), kind="stable")[: cfg.top_k]
            refitted = torch.stack([refit_without(int(j)) for j in top])
            logits = refitted[:, :-1] @ zx[0] + refitted[:, -1]
            losses = F.binary_cross_entropy_with_logits(logits, zy.expand(len(top)), reduction="none")
            actual = losses.numpy() - base
            r = float(np.corrcoef(values[top], actual)[0, 1])
            pearson[name].append(r)
            record[f"pearson_{name}"] = r
            if name == "exact":
                record["top_indices"] = top.tolist()
                record["predicted"] = values[top].tolist()
                record["actual"] = actual.tolist()
                if figure_explanation is None:
                    explanation = explanations["exact"]
                    explanation.extras["actual_loss_change"] = actual
                    explanation.extras["actual_positions"] = top
                    figure_explanation = explanation
        per_point.append(record)
    metrics = {f"loo_pearson_{k}": float(np.mean(v)) for k, v in pearson.items()}
    metrics["loo_test_loss"] = float(np.mean([r["test_loss"] for r in per_point]))
    figure = figure_explanation.plot()
    figure.axes[0].set_title(
        f"digits {a} vs {b}, test point {chosen[0]}: R = {per_point[0]['pearson_exact']:.3f} (exact)"
    )
    details = {"n_train": n, "n_test": len(y_test), "lissa_scale": scale, "test_points": per_point}
    return metrics, details, figure


# --------------------------------------------------------------------------- part (b): Section 5.4
def fit_multinomial(x: torch.Tensor, y: torch.Tensor, l2: float, classes: int) -> nn.Linear:
    """L2-regularised multinomial logistic regression by L-BFGS in float64."""
    model = nn.Linear(x.shape[1], classes).double()
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=500,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        history_size=30,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y) + 0.5 * l2 * sum((p * p).sum() for p in model.parameters())
        loss.backward()
        return loss

    for _ in range(3):
        optimizer.step(closure)
    return model


def mislabel_detection(
    cfg: Config, split, generator: torch.Generator
) -> tuple[dict[str, float], dict, Figure]:
    x_train = split.x_train.double()
    y_train = split.y_train.clone()
    n = len(y_train)
    classes = int(split.y_train.max()) + 1
    flipped = torch.randperm(n, generator=generator)[: round(cfg.flip_fraction * n)]
    # a random *other* class: shift by 1..classes-1
    y_train[flipped] = (
        y_train[flipped] + torch.randint(1, classes, (len(flipped),), generator=generator)
    ) % classes
    is_flipped = torch.zeros(n, dtype=torch.bool)
    is_flipped[flipped] = True
    model = fit_multinomial(x_train, y_train, cfg.l2, classes)
    inf = InfluenceFunction(model, F.cross_entropy, x_train, y_train, l2=cfg.l2)
    self_influence = inf.self_influence()
    with torch.no_grad():
        train_loss = F.cross_entropy(model(x_train), y_train, reduction="none").numpy()
        test_accuracy = float((model(split.x_test.double()).argmax(1) == split.y_test).double().mean())
    orders = {
        # Section 5.4: check the points of largest |I_up,loss(z_i, z_i)| first (it is ≤ 0 for convex R)
        "influence": np.argsort(-np.abs(self_influence.values), kind="stable"),
        "loss": np.argsort(-train_loss, kind="stable"),
        "random": torch.randperm(n, generator=generator).numpy(),
    }
    flipped_np = is_flipped.numpy()
    curves = {k: np.cumsum(flipped_np[o]) / flipped_np.sum() for k, o in orders.items()}
    metrics: dict[str, float] = {"flip_test_accuracy": test_accuracy}
    for fraction in cfg.checked_fractions:
        checked = round(fraction * n)
        tag = f"{round(100 * fraction)}"
        for name, curve in curves.items():
            metrics[f"flip_recovered_{name}_at_{tag}"] = float(curve[checked - 1])
        metrics[f"flip_margin_influence_vs_random_at_{tag}"] = (
            metrics[f"flip_recovered_influence_at_{tag}"] - metrics[f"flip_recovered_random_at_{tag}"]
        )
        metrics[f"flip_margin_influence_vs_loss_at_{tag}"] = (
            metrics[f"flip_recovered_influence_at_{tag}"] - metrics[f"flip_recovered_loss_at_{tag}"]
        )
    figure = Figure(figsize=(5, 4))
    ax = figure.add_subplot()
    share = np.arange(1, n + 1) / n
    for name, curve in curves.items():
        ax.plot(share, curve, label=name)
    ax.set_xlim(0, 0.35)
    ax.set_xlabel("fraction of training data checked")
    ax.set_ylabel("fraction of flipped labels found")
    ax.set_title("Section 5.4: fixing mislabelled examples (digits)")
    ax.legend()
    details = {"n_flipped": len(flipped), "n_train": n}
    return metrics, details, figure


def run(cfg: Config) -> Result:
    generator = seed(cfg.seed)
    select_device(cfg.device)  # influence on these small convex models runs on the CPU in float64
    split = load_digits_split(cfg.test_fraction, seed=cfg.seed)
    metrics_a, details_a, figure_a = leave_one_out(cfg, split)
    metrics_b, details_b, figure_b = mislabel_detection(cfg, split, generator)
    return Result(
        metrics={**metrics_a, **metrics_b},
        figures={"loo_scatter": figure_a, "mislabel_recovery": figure_b},
        details={"leave_one_out": details_a, "mislabel": details_b},
        notes=[
            "scikit-learn's 8x8 digits stand for MNIST (Figure 2) and the spam data (Section 5.4)",
            f"Figure 2: top {cfg.top_k} training points by |influence| (the paper: 500); Newton retraining",
            "computed on the CPU in float64 whatever the device (small convex models)",
        ],
    )
