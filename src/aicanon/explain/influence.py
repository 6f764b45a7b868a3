"""Influence functions (Koh & Liang, "Understanding Black-box Predictions via Influence Functions",
ICML 2017, arXiv 1703.04730).

With empirical risk ``R(θ) = (1/n) Σ_i L(z_i, θ) + (λ_2/2)‖θ‖²`` minimised at ``θ̂`` and its Hessian
``H = ∇²R(θ̂)`` (positive definite for a strictly convex ``R``), up-weighting one training point
``z`` by a small ``ε`` moves the parameters by ``dθ̂/dε = −H⁻¹ ∇_θ L(z, θ̂)`` (Eq. 1) and a test loss by

    I_up,loss(z, z_test) = −∇_θ L(z_test, θ̂)ᵀ H⁻¹ ∇_θ L(z, θ̂)                      (Eq. 2)

Removing ``z`` is up-weighting it by ``ε = −1/n``, so the predicted leave-one-out loss change is
``−I_up,loss(z, z_test)/n`` (Section 2.1; the quantity Figure 2 plots against retraining).
Perturbing the training input ``x`` of ``z`` changes the test loss at the rate

    I_pert,loss(z, z_test)ᵀ = −∇_θ L(z_test, θ̂)ᵀ H⁻¹ ∇_x ∇_θ L(z, θ̂)                  (Eq. 5)

and the self-influence ``I_up,loss(z, z) = −∇_θ L(z)ᵀ H⁻¹ ∇_θ L(z)`` ranks training points for
checking their labels (Section 5.4).

``s_test = H⁻¹ ∇_θ L(z_test)`` is computed once per test loss (Section 3) by one of:

* ``"exact"``: the dense Hessian from ``torch.func.hessian`` and an LU solve (``torch.linalg.solve``; small models);
* ``"cg"``: conjugate gradients on Hessian-vector products (Section 3, Martens 2010), the products
  by forward-over-reverse differentiation (``torch.func.jvp`` of ``torch.func.grad``), no Hessian formed;
* ``"lissa"``: the stochastic recursion of Agarwal et al. (2016) used in Section 3,
  ``H⁻¹v ≈ (1/scale) Σ_{j≥0} (I − H/scale)^j v``, unrolled as ``h_j = v + (I − H_j/scale) h_{j−1}``
  for ``depth`` steps with ``H_j`` the Hessian of a random mini-batch, averaged over ``repeats``.
  It converges when ``scale`` exceeds the largest eigenvalue of ``H + damping·I``.

Departures from the paper, and why:

* ``damping`` (``λ`` added to ``H``): the paper adds a damping term to the Hessian of non-convex
  models (Section 4.2, "we add a damping term λI") so that ``H`` is positive definite; here it is
  an explicit argument (default 0), applied by every solver alike.
* The L2 term ``λ_2`` belongs to the risk ``R`` (hence to ``H``) but not to the per-point gradient
  ``∇_θ L(z)``: removing a training point removes its data term and keeps the regulariser, which is
  what leave-one-out retraining does. (The authors' code adds the regulariser to each training
  point's gradient; for ``λ_2 ≪ 1`` and many points the difference is small.)
* ``parameters`` may name a subset of the model's parameters (e.g. the last layer, as the paper does
  for Inception in Section 5.1); the others are held fixed, so ``H`` is the Hessian over that subset.
* Per-point gradients use ``torch.func.vmap``; models with batch-coupled layers (batch norm in
  training mode) must be put in eval mode first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from aicanon.core.checks import check_float, check_int
from aicanon.explain.explanation import Explanation

__all__ = ["SOLVERS", "InfluenceFunction", "conjugate_gradient", "lissa", "plot_influence"]

SOLVERS = ("exact", "cg", "lissa")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_vector(name: str, v: Any) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if v.ndim != 1 or v.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {tuple(v.shape)}")
    if not v.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {v.dtype}")
    return v


def conjugate_gradient(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    v: torch.Tensor,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Solve ``A x = v`` for a symmetric positive-definite ``A`` given only ``hvp(p) = A p``.

    Plain conjugate gradients (Hestenes & Stiefel), stopped when ``‖r‖ ≤ tol·‖v‖`` or after
    ``max_iter`` steps. Returns ``x`` and ``{"iterations", "relative_residual"}``. Raises
    ``ValueError`` on a direction of non-positive curvature (``A`` not positive definite: add damping).
    """
    v = _check_vector("v", v)
    tol = float(check_float("tol", tol, 0, min_inclusive=False, finite=True))
    max_iter = check_int("max_iter", max_iter, minimum=1)
    x = torch.zeros_like(v)
    r = v.clone()
    p = r.clone()
    rr = r @ r
    v_norm = torch.linalg.vector_norm(v)
    iterations = 0
    if v_norm == 0:
        return x, {"iterations": 0.0, "relative_residual": 0.0}
    for iterations in range(1, max_iter + 1):
        ap = hvp(p)
        curvature = p @ ap
        if curvature <= 0:
            raise ValueError(
                f"conjugate_gradient needs a positive-definite matrix, got curvature pᵀAp = {float(curvature):.3g} "
                "<= 0; add damping"
            )
        alpha = rr / curvature
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r @ r
        if torch.sqrt(rr_new) <= tol * v_norm:
            rr = rr_new
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, {"iterations": float(iterations), "relative_residual": float(torch.sqrt(rr) / v_norm)}


def lissa(
    hvp_sample: Callable[[torch.Tensor], torch.Tensor],
    v: torch.Tensor,
    scale: float,
    depth: int,
    repeats: int = 1,
    damping: float = 0.0,
) -> torch.Tensor:
    """LiSSA estimate of ``(H + damping·I)⁻¹ v`` (Agarwal et al. 2016; Koh & Liang Section 3).

    ``hvp_sample(u)`` returns ``H_j u`` for a (possibly stochastic, mini-batch) estimate ``H_j`` of
    ``H``, drawn afresh at each call. The recursion ``h_0 = v``,
    ``h_j = v + h_{j−1} − (H_j + damping·I) h_{j−1} / scale`` gives ``h_depth/scale → (H+damping·I)⁻¹ v``
    when ``scale`` exceeds the largest eigenvalue of ``H + damping·I``; the estimate is averaged
    over ``repeats`` independent recursions.
    """
    v = _check_vector("v", v)
    scale = float(check_float("scale", scale, 0, min_inclusive=False, finite=True))
    depth = check_int("depth", depth, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    damping = float(check_float("damping", damping, 0, finite=True))
    total = torch.zeros_like(v)
    for _ in range(repeats):
        h = v.clone()
        for _ in range(depth):
            h = v + h - (hvp_sample(h) + damping * h) / scale
        total = total + h / scale
    return total / repeats


class InfluenceFunction:
    """Influence of training points on test losses for any ``nn.Module`` trained to a minimum.

    Args:
        model: the trained model; ``model(x)`` gives the outputs ``loss_fn`` takes.
        loss_fn: ``loss_fn(outputs, targets)`` returning the **mean** loss over the batch (as
            ``F.cross_entropy`` does); called on batches of one for per-point losses.
        x_train, y_train: the training set the model minimised the risk on (first axes of length n).
        parameters: names of the parameters ``θ`` to analyse (default: every parameter that
            requires grad); the others are held fixed.
        l2: the coefficient ``λ_2`` of the ``(λ_2/2)‖θ‖²`` term of the training risk (over ``parameters``).
        damping: ``λ`` added to the Hessian (Section 4.2, for non-convex models).
        solver: ``"exact"``, ``"cg"`` or ``"lissa"`` (see the module docstring).
        cg_tol, cg_max_iter: stopping rule of conjugate gradients.
        lissa_scale, lissa_depth, lissa_repeats: the LiSSA recursion's scale, depth and repeats.
        lissa_batch_size: training points per stochastic Hessian in LiSSA (None: all, deterministic).
        generator: draws LiSSA's mini-batches (seeded for repeatable estimates).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        parameters: Sequence[str] | None = None,
        l2: float = 0.0,
        damping: float = 0.0,
        solver: str = "exact",
        cg_tol: float = 1e-10,
        cg_max_iter: int = 1000,
        lissa_scale: float = 10.0,
        lissa_depth: int = 1000,
        lissa_repeats: int = 1,
        lissa_batch_size: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        for name, t in (("x_train", x_train), ("y_train", y_train)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.ndim == 0 or t.shape[0] == 0:
                raise ValueError(
                    f"{name} must have a non-empty first (sample) axis, got shape {tuple(t.shape)}"
                )
        if x_train.shape[0] != y_train.shape[0]:
            raise ValueError(
                f"x_train and y_train must have the same number of samples, got {x_train.shape[0]} and {y_train.shape[0]}"
            )
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        self.l2 = float(check_float("l2", l2, 0, finite=True))
        self.damping = float(check_float("damping", damping, 0, finite=True))
        self.cg_tol = float(check_float("cg_tol", cg_tol, 0, min_inclusive=False, finite=True))
        self.cg_max_iter = check_int("cg_max_iter", cg_max_iter, minimum=1)
        self.lissa_scale = float(check_float("lissa_scale", lissa_scale, 0, min_inclusive=False, finite=True))
        self.lissa_depth = check_int("lissa_depth", lissa_depth, minimum=1)
        self.lissa_repeats = check_int("lissa_repeats", lissa_repeats, minimum=1)
        n = x_train.shape[0]
        if lissa_batch_size is not None:
            check_int("lissa_batch_size", lissa_batch_size, minimum=1)
            if lissa_batch_size > n:
                raise ValueError(
                    f"lissa_batch_size must be <= the {n} training points, got {lissa_batch_size}"
                )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.lissa_batch_size = lissa_batch_size
        self.generator = generator
        self.solver = solver
        self.model = model
        self.loss_fn = loss_fn
        self.x_train = x_train
        self.y_train = y_train

        named = dict(model.named_parameters())
        if parameters is None:
            names = [k for k, p in named.items() if p.requires_grad]
        else:
            if isinstance(parameters, str) or not all(isinstance(k, str) for k in parameters):
                raise TypeError("parameters must be a sequence of parameter names (str)")
            names = list(parameters)
            unknown = [k for k in names if k not in named]
            if unknown:
                raise ValueError(
                    f"parameters {unknown} are not parameters of the model; it has {sorted(named)}"
                )
        if not names:
            raise ValueError("parameters must name at least one parameter of the model, got none")
        self.names = names
        self._shapes = [named[k].shape for k in names]
        self._sizes = [named[k].numel() for k in names]
        self.theta = torch.cat([named[k].detach().reshape(-1) for k in names])
        self._fixed = {
            k: v.detach() for k, v in {**named, **dict(model.named_buffers())}.items() if k not in names
        }
        self.n_parameters = int(self.theta.numel())
        self._hessian: torch.Tensor | None = None
        self.last_cg_info: dict[str, float] | None = None
        """Iterations and relative residual of the latest conjugate-gradient solve (solver "cg")."""

    # --- the risk as a function of the flat parameter vector -------------------------------------
    def _unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = torch.split(theta, self._sizes)
        return {k: c.reshape(s) for k, c, s in zip(self.names, chunks, self._shapes)}

    def _loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean data loss of a batch (no regulariser)."""
        out = functional_call(self.model, {**self._fixed, **self._unflatten(theta)}, (x,))
        return self.loss_fn(out, y)

    def _point_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(theta, x.unsqueeze(0), y.unsqueeze(0))

    def _risk(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """R(θ) on a batch: mean loss + (λ_2/2)‖θ‖² (Section 2's empirical risk)."""
        return self._loss(theta, x, y) + 0.5 * self.l2 * (theta @ theta)

    # --- Hessian, Hessian-vector products, inverse-Hessian-vector products ----------------------
    def hessian(self) -> torch.Tensor:
        """The dense Hessian ``∇²R(θ̂)`` over ``parameters`` (without damping), ``[p, p]``."""
        if self._hessian is None:
            h = torch.func.hessian(self._risk)(self.theta, self.x_train, self.y_train)
            self._hessian = 0.5 * (h + h.T)  # symmetric up to rounding
        return self._hessian

    def hvp(self, v: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        """``∇²R(θ̂) v`` by forward-over-reverse differentiation (no Hessian formed; no damping).

        ``indices`` restricts the data term to a subset of training points (LiSSA's mini-batches).
        """
        v = self._check_parameter_vector("v", v)
        x, y = (
            (self.x_train, self.y_train)
            if indices is None
            else (self.x_train[indices], self.y_train[indices])
        )
        _, hv = jvp(lambda t: grad(self._risk)(t, x, y), (self.theta,), (v,))
        return hv

    def inverse_hvp(self, v: torch.Tensor) -> torch.Tensor:
        """``(H + damping·I)⁻¹ v`` by the configured solver; ``v`` may be ``[p]`` or ``[k, p]``."""
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"v must be a torch.Tensor, got {type(v).__name__}")
        if v.ndim == 2:
            if v.shape[1] != self.n_parameters:
                raise ValueError(
                    f"v must have {self.n_parameters} columns (one per parameter), got shape {tuple(v.shape)}"
                )
            if self.solver == "exact":
                return self._exact_solve(v.T).T
            return torch.stack([self.inverse_hvp(row) for row in v])
        v = self._check_parameter_vector("v", v)
        if self.solver == "exact":
            return self._exact_solve(v[:, None])[:, 0]
        if self.solver == "cg":
            solution, self.last_cg_info = conjugate_gradient(
                lambda p: self.hvp(p) + self.damping * p, v, tol=self.cg_tol, max_iter=self.cg_max_iter
            )
            return solution
        n = self.x_train.shape[0]

        def sample(u: torch.Tensor) -> torch.Tensor:
            if self.lissa_batch_size is None:
                return self.hvp(u)
            idx = torch.randperm(n, generator=self.generator)[: self.lissa_batch_size]
            return self.hvp(u, idx)

        return lissa(sample, v, self.lissa_scale, self.lissa_depth, self.lissa_repeats, self.damping)

    def _exact_solve(self, rhs: torch.Tensor) -> torch.Tensor:
        h = self.hessian() + self.damping * torch.eye(
            self.n_parameters, dtype=self.theta.dtype, device=self.theta.device
        )
        return torch.linalg.solve(h, rhs)

    def _check_parameter_vector(self, name: str, v: torch.Tensor) -> torch.Tensor:
        v = _check_vector(name, v)
        if v.shape[0] != self.n_parameters:
            raise ValueError(
                f"{name} must have {self.n_parameters} entries (one per parameter), got {v.shape[0]}"
            )
        return v.to(self.theta)

    # --- gradients ----------------------------------------------------------------------------
    def _check_indices(self, indices: Any) -> torch.Tensor:
        n = self.x_train.shape[0]
        if indices is None:
            return torch.arange(n)
        idx = torch.as_tensor(indices)
        if idx.ndim != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
            raise TypeError(
                f"indices must be a 1-D sequence of ints, got {idx.dtype} of shape {tuple(idx.shape)}"
            )
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise ValueError(
                f"indices must lie in [0, {n}) (the training points), got range [{int(idx.min())}, {int(idx.max())}]"
            )
        return idx.long()

    def _check_test(self, x_test: Any, y_test: Any) -> tuple[torch.Tensor, torch.Tensor]:
        for name, t in (("x_test", x_test), ("y_test", y_test)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if tuple(x_test.shape[1:]) != tuple(self.x_train.shape[1:]) or x_test.shape[0] == 0:
            raise ValueError(
                f"x_test must have shape [k, {', '.join(map(str, self.x_train.shape[1:]))}] like x_train's points, "
                f"got {tuple(x_test.shape)}"
            )
        if y_test.shape[0] != x_test.shape[0] or tuple(y_test.shape[1:]) != tuple(self.y_train.shape[1:]):
            raise ValueError(
                f"y_test must have shape [{x_test.shape[0]}, ...] like y_train's, got {tuple(y_test.shape)}"
            )
        return x_test, y_test

    def train_gradients(self, indices: Any = None) -> torch.Tensor:
        """Per-point gradients ``∇_θ L(z_i, θ̂)`` (data loss only), ``[len(indices), p]``."""
        idx = self._check_indices(indices)
        return vmap(grad(self._point_loss), in_dims=(None, 0, 0))(
            self.theta, self.x_train[idx], self.y_train[idx]
        )

    def test_gradient(self, x_test: torch.Tensor, y_test: torch.Tensor) -> torch.Tensor:
        """``∇_θ`` of the mean test loss over the given test points, ``[p]``."""
        x_test, y_test = self._check_test(x_test, y_test)
        return grad(self._loss)(self.theta, x_test, y_test)

    def s_test(self, x_test: torch.Tensor, y_test: torch.Tensor) -> torch.Tensor:
        """``s_test = (H + damping·I)⁻¹ ∇_θ L(z_test)`` (Section 3)."""
        return self.inverse_hvp(self.test_gradient(x_test, y_test))

    # --- the influence functions ----------------------------------------------------------------
    def up_loss(self, x_test: torch.Tensor, y_test: torch.Tensor, indices: Any = None) -> Explanation:
        """``I_up,loss(z_i, z_test)`` (Eq. 2) for the training points ``indices`` (default all).

        ``extras["predicted_loss_change"]`` holds ``−I_up,loss/n``, the first-order change of the test
        loss when the point is removed and the model retrained (Figure 2's x-axis).
        """
        idx = self._check_indices(indices)
        s = self.s_test(x_test, y_test)
        values = -(self.train_gradients(idx) @ s)
        n = self.x_train.shape[0]
        return Explanation(
            values=values,
            data=self.x_train[idx],
            method="influence_up_loss",
            extras={
                "indices": idx.numpy(),
                "predicted_loss_change": (-values / n).detach().cpu().numpy(),
                "solver": self.solver,
                "damping": self.damping,
                "s_test": s.detach().cpu().numpy(),
            },
            plotter=plot_influence,
        )

    def pert_loss(self, x_test: torch.Tensor, y_test: torch.Tensor, indices: Any = None) -> Explanation:
        """``I_pert,loss(z_i, z_test)`` (Eq. 5): one gradient w.r.t. each training input, shaped like it.

        Computed as ``−∇_x [s_testᵀ ∇_θ L(z_i, θ̂)]`` (the mixed derivative, by double differentiation).
        """
        idx = self._check_indices(indices)
        if not self.x_train.is_floating_point():
            raise TypeError(
                f"pert_loss needs floating-point training inputs, got x_train of dtype {self.x_train.dtype}"
            )
        s = self.s_test(x_test, y_test)

        def directional(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return grad(self._point_loss)(self.theta, x, y) @ s

        values = -vmap(grad(directional), in_dims=(0, 0))(self.x_train[idx], self.y_train[idx])
        return Explanation(
            values=values,
            data=self.x_train[idx],
            method="influence_pert_loss",
            extras={"indices": idx.numpy(), "solver": self.solver, "damping": self.damping},
        )

    def self_influence(self, indices: Any = None) -> Explanation:
        """``I_up,loss(z_i, z_i) = −∇_θ L(z_i)ᵀ H⁻¹ ∇_θ L(z_i)`` (Section 5.4); most negative = most influential."""
        idx = self._check_indices(indices)
        g = self.train_gradients(idx)
        values = -(g * self.inverse_hvp(g)).sum(dim=1)
        return Explanation(
            values=values,
            data=self.x_train[idx],
            method="influence_self",
            extras={"indices": idx.numpy(), "solver": self.solver, "damping": self.damping},
            plotter=plot_influence,
        )


def plot_influence(explanation: Explanation, ax: Any) -> None:
    """Figure 2's scatter (predicted vs actual loss change) when ``extras["actual_loss_change"]``
    is present, else a bar chart of the 20 training points of largest |influence|."""
    extras = explanation.extras
    values = np.asarray(explanation.values).reshape(-1)
    indices = np.asarray(extras.get("indices", np.arange(values.shape[0])))
    if "actual_loss_change" in extras:
        actual = np.asarray(extras["actual_loss_change"]).reshape(-1)
        chosen = np.asarray(extras.get("actual_positions", np.arange(actual.shape[0])))
        predicted = np.asarray(extras["predicted_loss_change"]).reshape(-1)[chosen]
        ax.scatter(actual, predicted, s=10)
        lo = float(min(actual.min(), predicted.min()))
        hi = float(max(actual.max(), predicted.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_xlabel("actual diff in loss (leave-one-out retraining)")
        ax.set_ylabel("predicted diff in loss (−I_up,loss / n)")
        ax.set_title(f"influence ({extras.get('solver', '')})")
        return
    order = np.argsort(np.abs(values))[::-1][:20]
    ax.barh([str(int(indices[i])) for i in order][::-1], values[order][::-1])
    ax.set_ylabel("training point")
    ax.set_xlabel(f"influence ({explanation.method})")
