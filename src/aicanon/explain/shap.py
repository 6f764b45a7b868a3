"""SHAP: additive feature attributions by Shapley values (Lundberg & Lee, "A Unified Approach to
Interpreting Model Predictions", NeurIPS 2017, arXiv 1705.07874).

An additive feature attribution method explains ``f(x)`` by a linear function of binary
simplified inputs ``z' ∈ {0, 1}^M`` (feature present or missing):

    g(z') = φ_0 + Σ_{i=1}^{M} φ_i z'_i                                                       (Eq. 1)

Theorem 1: the only such ``g`` with local accuracy (Eq. 5, ``f(x) = φ_0 + Σ φ_i``), missingness
(Eq. 6, ``x'_i = 0 ⇒ φ_i = 0``) and consistency (Eq. 7) is given by the Shapley values

    φ_i(f, x) = Σ_{z' ⊆ x'} |z'|! (M − |z'| − 1)! / M! · [f_x(z') − f_x(z' \\ i)]                (Eq. 8)

with ``f_x(z') = E[f(z) | z_S]`` the expected output when only the features in ``S`` (those with
``z'_i = 1``) are known (Eq. 9). Under feature independence (Eq. 11) this is the *interventional*
expectation ``f_x(S) = E_{b ∼ background}[f(x_S, b_S̄)]``: the missing features are taken from each
background row and the outputs averaged; φ_0 = E_b[f(b)], the base value. Every explainer here
uses that value function over a background set.

* :class:`ExactExplainer`: Eq. 8 by enumerating all ``2^M`` coalitions (up to ``max_features``,
  default 16).
* :class:`KernelExplainer`, Kernel SHAP (Theorem 2): the Shapley values are the solution of the
  weighted linear regression of ``f_x(z')`` on ``z'`` with the Shapley kernel

      π_x(z') = (M − 1) / [ C(M, |z'|) · |z'| · (M − |z'|) ]                                    (Theorem 2)

  where the empty and full coalitions (infinite weight) become the constraints ``g(0) = φ_0`` and
  ``g(1) = f(x)`` (local accuracy): we eliminate ``φ_M`` with them and solve the weighted least
  squares in the other ``M − 1`` unknowns. With a budget of ``n_samples`` coalitions it enumerates
  whole coalition sizes, from the heaviest (``|z'| = 1`` and ``M − 1``) inwards, while the budget
  covers a size's share of the kernel's mass, then samples the remaining sizes from the kernel,
  each sampled coalition with its complement (paired sampling); a budget of ``2^M − 2`` covers every
  coalition and the regression is then exact (Theorem 2).
* :class:`ShapleySamplingExplainer`, Shapley sampling values (Štrumbelj & Kononenko 2014): for each
  feature, random permutations ``π``; ``φ_i ≈ mean_π [f_x(Pre_i(π) ∪ {i}) − f_x(Pre_i(π))]``; the
  baseline Kernel SHAP is compared with in Figure 3.
* :class:`LinearExplainer`, Linear SHAP (Corollary 1): for ``f(x) = Σ w_j x_j + b`` with independent
  features, ``φ_i = w_i (x_i − E[x_i])`` and ``φ_0 = f(E[x])``.
* :class:`DeepExplainer`, Deep SHAP (Section 4.2): each component's SHAP values give multipliers
  ``m_{x_j f_j} = φ_j(f_j, x) / (x_j − E[x_j])`` (Eq. 13), composed through the network by the chain
  rule ``m_{y_i f_3} = Σ_j m_{y_i f_j} m_{f_j f_3}`` (Eq. 14-15) and turned back into attributions
  ``φ_i(f_3, y) ≈ m_{y_i f_3} (y_i − E[y_i])`` (Eq. 16); for single-input components these are
  DeepLIFT's multipliers ``m_{Δx Δy} = Δy / Δx`` (the Rescale rule). Each background row serves
  as DeepLIFT's reference and the attributions are averaged over the background:
  ``φ = mean_b (x − b) ⊙ m(x, b)``. The component rules: Linear, Conv1d/2d, pooling by
  averaging, batch norm in eval mode, Flatten, Dropout (eval): their own gradient (a linear map's
  multiplier is its weight); elementwise activations (ReLU, LeakyReLU, ELU, Sigmoid, Tanh,
  Softplus, GELU, SELU): the Rescale rule (Eq. 13) ``Δy/Δx`` (the plain derivative where ``|Δx| < 1e-6``);
  max pooling: the output difference ``y − r`` split as ``max(y, r) − r`` to the input that is the
  maximum for ``x`` and ``y − max(y, r)`` to the one that is the maximum for the reference, each
  divided by that input's ``Δx``; Softmax: the Rescale rule applied entrywise (see departures).
  Computed in one backward pass per output by replacing these modules' gradients.

(Equation numbers follow the NeurIPS version: Eq. 8 is Theorem 1's Shapley formula, Eq. 9-12 the
chain of approximations of ``E[f(z) | z_S]``; those of Section 4.2 were recalled, not re-read.)

Every explainer returns an :class:`~aicanon.explain.explanation.Explanation` with ``values`` of
shape ``[N, M]`` (``[N, *input_shape]`` for Deep SHAP) for a scalar output and with an extra last
axis ``K`` for ``K`` outputs, ``base_value`` φ_0 (a float or ``[K]``) and a plotter drawing the
paper's kind of figure (Figure 1: bars from the base value to the output; Figure 5: a red/blue map
over the image for image inputs).

Models. The tabular explainers take any callable mapping a float tensor ``[n, M]`` to outputs
``[n]`` or ``[n, K]`` (a torch module, or a wrapper around a scikit-learn model); they only call it,
in float32 or float64 as the inputs come. Deep SHAP needs an ``nn.Module`` built from modules.

Departures from the paper, and why:

* Kernel SHAP solves the plain weighted least squares; the paper's Figure 3 uses a debiased lasso
  (an L1 feature selection before the regression) and shap's default selects at most 10 features.
  For the ≤ 16 features this module targets the selection is not needed, and without it the
  estimator is exact at full budget.
* Shapley sampling values take the expectation over the whole background for every coalition
  (as Kernel SHAP does), where Štrumbelj & Kononenko draw one background instance per sample: the
  two estimators then differ only in how they choose and combine coalitions (the paper's point),
  and the baseline loses the extra variance of drawing background rows (a stricter comparison).
  Both budgets count coalition values ``f_x(S)``; each costs ``len(background)`` model calls.
* Softmax is not elementwise; Deep SHAP applies the Rescale rule to each output against its own
  input (as the reference implementation, shap, does): the change of probability ``s_k`` is
  credited through its own logit ``z_k`` only, so local accuracy holds for a final softmax but the
  effect of the other logits on ``s_k`` is not separated out (a softmax inside the network would
  break additivity). Figure 5 explains log-odds, which are linear in the logits, and avoids this.
* Deep SHAP changes the gradients of *modules*; nonlinearities called as functions (``F.relu``)
  inside ``forward`` keep their plain gradient and break local accuracy (visible in
  ``local_accuracy_gap``). Module types it has no rule for raise ``TypeError``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aicanon.core.checks import check_int
from aicanon.explain.explanation import Explanation

__all__ = [
    "DeepExplainer",
    "ExactExplainer",
    "KernelExplainer",
    "LinearExplainer",
    "ShapleySamplingExplainer",
    "coalition_values",
    "shapley_kernel_weight",
]

Model = Callable[[Tensor], Tensor]
MAX_EXACT_FEATURES = 16
ROWS_PER_CALL = 1 << 16  # model rows evaluated per call (bounds memory; results do not depend on it)


# =============================================================================== checks
def _check_model(model: Any) -> Model:
    if not callable(model):
        raise TypeError(
            f"model must be callable (tensor [n, M] -> outputs [n] or [n, K]), got {type(model).__name__}"
        )
    return model


def _check_matrix(name: str, value: Any, width: int | None = None) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [n, M], got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.ndim != 2 or value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(
            f"{name} must have shape [n, M] with n >= 1 and M >= 1, got shape {tuple(value.shape)}"
        )
    if width is not None and value.shape[1] != width:
        raise ValueError(
            f"{name} must have {width} features (the background's width), got shape {tuple(value.shape)}"
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    return value


def _as_rows(x: Any, width: int) -> Tensor:
    """Explained inputs: ``[N, M]`` or one row ``[M]``."""
    if isinstance(x, Tensor) and x.ndim == 1:
        x = x[None]
    return _check_matrix("x", x, width)


def _model_outputs(model: Model, inputs: Tensor) -> Tensor:
    """Call ``model`` in chunks; return ``[n, K]`` (a scalar output becomes ``K = 1``)."""
    parts = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], ROWS_PER_CALL):
            out = model(inputs[start : start + ROWS_PER_CALL])
            if not isinstance(out, Tensor):
                raise TypeError(f"model must return a torch.Tensor, got {type(out).__name__}")
            rows = min(ROWS_PER_CALL, inputs.shape[0] - start)
            if out.ndim == 1:
                out = out[:, None]
            if out.ndim != 2 or out.shape[0] != rows:
                raise ValueError(
                    f"model must map [n, M] to outputs [n] or [n, K], got {tuple(out.shape)} for n={rows}"
                )
            parts.append(out.to(torch.float64))
    return torch.cat(parts)


def coalition_values(model: Model, x: Tensor, background: Tensor, masks: Tensor) -> Tensor:
    """``f_x(S) = E_b[f(x_S, b_S̄)]`` (Eq. 9 under Eq. 11) for each boolean mask ``S`` ``[C, M]``; ``[C, K]`` float64.

    ``x`` is one row ``[M]``; each coalition costs ``len(background)`` model rows.
    """
    if masks.ndim != 2 or masks.shape[1] != x.shape[-1]:
        raise ValueError(f"masks must have shape [C, {x.shape[-1]}], got {tuple(masks.shape)}")
    n_background = background.shape[0]
    per_chunk = max(1, ROWS_PER_CALL // n_background)
    values = []
    for start in range(0, masks.shape[0], per_chunk):
        chunk = masks[start : start + per_chunk]
        mixed = torch.where(chunk[:, None, :], x[None, None, :], background[None])  # [c, B, M]
        out = _model_outputs(model, mixed.reshape(-1, x.shape[-1]))
        values.append(out.reshape(chunk.shape[0], n_background, -1).mean(1))
    return torch.cat(values)


def _finish(
    values: list[Tensor], base: Tensor, x: Tensor, method: str, names: Any, extras: dict
) -> Explanation:
    """Stack per-row ``[M, K]`` values; drop ``K`` when the model has one output."""
    stacked = torch.stack(values)  # [N, M, K]
    single = stacked.shape[-1] == 1
    out_values = stacked[..., 0] if single else stacked
    base_value: Any = float(base[0]) if single else base.numpy()
    return Explanation(
        values=out_values.numpy(),
        base_value=base_value,
        feature_names=names,
        data=x.detach().cpu().numpy(),
        method=method,
        extras=extras,
        plotter=_plot_additive,
    )


def _check_names(names: Any, width: int) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"feature_names must be a sequence of str, got {type(names).__name__}")
    if len(names) != width:
        raise ValueError(f"feature_names must hold {width} names (one per feature), got {len(names)}")
    return [str(n) for n in names]


class _TabularExplainer:
    """Shared set-up: the model, the background (``[B, M]``), the base value φ_0 = E_b f(b)."""

    method = ""

    def __init__(self, model: Model, background: Tensor, feature_names: Sequence[str] | None = None) -> None:
        self.model = _check_model(model)
        self.background = _check_matrix("background", background)
        self.n_features = self.background.shape[1]
        self.feature_names = _check_names(feature_names, self.n_features)
        self.base_value = _model_outputs(self.model, self.background).mean(0)  # φ_0, [K]

    def _prepare(self, x: Any) -> Tensor:
        return _as_rows(x, self.n_features).to(self.background.dtype)


# =============================================================================== exact (Eq. 8)
def _bit_masks(n_features: int, codes: Tensor) -> Tensor:
    """Boolean masks ``[len(codes), M]``: bit ``i`` of each integer code is feature ``i``."""
    bits = torch.arange(n_features)
    return ((codes[:, None] >> bits) & 1).bool()


def _shapley_weights(n_features: int) -> Tensor:
    """Eq. 8's weight ``|S|! (M − |S| − 1)! / M!`` for ``|S| = 0..M−1`` (float64)."""
    m = n_features
    return torch.tensor(
        [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)],
        dtype=torch.float64,
    )


class ExactExplainer(_TabularExplainer):
    """Shapley values by enumerating all ``2^M`` coalitions (Eq. 8, interventional Eq. 11).

    Cost: ``2^M · len(background)`` model rows per explained row; ``M`` is limited to
    ``max_features`` (default 16). ``extras["evaluations"]``: coalition values computed per row.
    """

    method = "exact_shap"

    def __init__(
        self,
        model: Model,
        background: Tensor,
        feature_names: Sequence[str] | None = None,
        max_features: int = MAX_EXACT_FEATURES,
    ) -> None:
        check_int("max_features", max_features, minimum=1)
        if max_features > 24:
            raise ValueError(f"max_features must be <= 24 (2^24 coalitions), got {max_features}")
        if isinstance(background, Tensor) and background.ndim == 2 and background.shape[1] > max_features:
            raise ValueError(
                f"exact enumeration needs at most max_features={max_features} features (2^M coalitions), "
                f"got background with {background.shape[1]}; use KernelExplainer for more features"
            )
        super().__init__(model, background, feature_names)

    def __call__(self, x: Tensor) -> Explanation:
        x = self._prepare(x)
        m = self.n_features
        codes = torch.arange(2**m)
        masks = _bit_masks(m, codes)
        sizes = masks.sum(1)
        weights = _shapley_weights(m)
        values = []
        for row in x:
            v = coalition_values(self.model, row, self.background, masks)  # [2^M, K]
            phi = torch.zeros(m, v.shape[1], dtype=torch.float64)
            for i in range(m):
                without = codes[(codes >> i) & 1 == 0]  # S ⊆ F \ {i}
                marginal = v[without | (1 << i)] - v[without]  # f_x(S ∪ i) − f_x(S)
                phi[i] = (weights[sizes[without]][:, None] * marginal).sum(0)  # Eq. 8
            values.append(phi)
        return _finish(values, self.base_value, x, self.method, self.feature_names, {"evaluations": 2**m})


# =============================================================================== Kernel SHAP (Theorem 2)
def shapley_kernel_weight(n_features: int, size: int) -> float:
    """Theorem 2's ``π_x(z') = (M − 1) / (C(M, |z'|) |z'| (M − |z'|))`` for ``0 < |z'| < M``."""
    m = check_int("n_features", n_features, minimum=2)
    s = check_int("size", size, minimum=1)
    if s >= m:
        raise ValueError(f"size must be in [1, n_features - 1] = [1, {m - 1}], got {s}")
    return (m - 1) / (math.comb(m, s) * s * (m - s))


class KernelExplainer(_TabularExplainer):
    """Kernel SHAP (Theorem 2): Shapley-kernel weighted linear regression with the efficiency constraint.

    ``explainer(x, n_samples=..., generator=...)``: ``n_samples`` coalitions beyond the empty and
    full ones (each costs ``len(background)`` model rows); at least ``min(M, 2^M − 2)`` (fewer
    cannot determine the ``M − 1`` free values); ``2^M − 2`` or more enumerates every coalition and
    gives the exact Shapley values. ``extras``: ``evaluations`` (coalition values per row, with
    the empty and full ones), ``enumerated_sizes`` (coalition sizes enumerated whole).
    """

    method = "kernel_shap"

    def minimum_samples(self) -> int:
        m = self.n_features
        return min(m, 2**m - 2)

    def kernel_weight(self, size: int) -> float:
        """The regression weight of one coalition of ``size`` features (Theorem 2's kernel)."""
        return shapley_kernel_weight(self.n_features, size)

    def coalitions(self, n_samples: int, generator: torch.Generator) -> tuple[Tensor, Tensor, list[int]]:
        """Masks ``[C, M]``, their regression weights ``[C]`` and the sizes enumerated whole."""
        m = self.n_features
        mass = {s: math.comb(m, s) * self.kernel_weight(s) for s in range(1, m)}  # kernel mass per size
        if n_samples >= 2**m - 2:  # every coalition: the exact regression of Theorem 2
            codes = torch.arange(1, 2**m - 1)
            masks = _bit_masks(m, codes)
            weights = torch.tensor([self.kernel_weight(int(s)) for s in masks.sum(1)], dtype=torch.float64)
            return masks, weights, list(range(1, m))
        masks_list: list[Tensor] = []
        weights_list: list[Tensor] = []
        enumerated: list[int] = []
        left = n_samples
        remaining = dict(mass)
        # Enumerate whole sizes from the heaviest pair (1 and M − 1) inwards while the budget's share
        # of the remaining kernel mass covers all their coalitions (shap's scheme, Section 4.1's kernel).
        for s in range(1, m // 2 + 1):
            pair = sorted({s, m - s})
            count = sum(math.comb(m, t) for t in pair)
            share = sum(remaining[t] for t in pair) / sum(remaining.values())
            if left * share + 1e-9 < count:
                break
            for t in pair:
                members = torch.tensor(list(itertools.combinations(range(m), t)), dtype=torch.long)
                masks = torch.zeros(len(members), m, dtype=torch.bool).scatter_(1, members, True)
                masks_list.append(masks)
                weights_list.append(torch.full((len(masks),), self.kernel_weight(t), dtype=torch.float64))
                enumerated.append(t)
                del remaining[t]
            left -= count
        if remaining and left > 0:
            sizes = sorted(remaining)
            probabilities = torch.tensor([remaining[t] for t in sizes], dtype=torch.float64)
            probabilities = probabilities / probabilities.sum()
            powers = 2 ** torch.arange(m, dtype=torch.long)  # a coalition's integer code (M <= 62)
            codes = torch.empty(0, dtype=torch.long)
            # Paired sampling: each drawn coalition comes with its complement; a repeated draw adds
            # weight instead of a new evaluation, so the budget buys ``left`` distinct coalitions.
            for _ in range(100):
                pairs = max(1, left)
                drawn = torch.multinomial(probabilities, pairs, replacement=True, generator=generator)
                size = torch.tensor(sizes)[drawn]
                order = torch.rand(pairs, m, generator=generator).argsort(1).argsort(1)
                mask = order < size[:, None]  # a uniformly random subset of each drawn size
                both = torch.stack([mask, ~mask], 1).reshape(-1, m)  # mask, complement, mask, ...
                codes = torch.cat([codes, (both.long() * powers).sum(1)])
                if torch.unique(codes).numel() >= left:
                    break
            unique, inverse = torch.unique(codes, return_inverse=True)
            first = torch.full((len(unique),), len(codes), dtype=torch.long)
            first.scatter_reduce_(0, inverse, torch.arange(len(codes)), reduce="amin")
            if len(unique) > left:  # stop at the draw that brought the ``left``-th new coalition
                cutoff = int(first.sort().values[left - 1])
                inverse = inverse[: cutoff + 1]
            counted = torch.bincount(inverse, minlength=len(unique)).to(torch.float64)
            keep = counted > 0
            unique, counted = unique[keep], counted[keep]
            sampled = (unique[:, None] & powers) != 0
            weight = counted
            # sampled coalitions share the kernel mass not enumerated, in proportion to their draws
            weight = weight / weight.sum() * sum(remaining.values())
            masks_list.append(sampled)
            weights_list.append(weight)
        return torch.cat(masks_list), torch.cat(weights_list), enumerated

    def __call__(
        self, x: Tensor, n_samples: int | None = None, generator: torch.Generator | None = None
    ) -> Explanation:
        x = self._prepare(x)
        m = self.n_features
        total = 2**m - 2
        if n_samples is None:
            n_samples = min(total, 2 * m + 2048)  # shap's default budget
        check_int("n_samples", n_samples, minimum=0)
        if m > 62:
            raise ValueError(
                f"KernelExplainer handles at most 62 features (coalition codes are int64), got {m}"
            )
        if n_samples < self.minimum_samples():
            raise ValueError(
                f"n_samples must be >= {self.minimum_samples()} (at least M coalitions to determine "
                f"M - 1 free values) for M={m} features, got {n_samples}"
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        values, evaluations, enumerated = [], 0, []
        for row in x:
            fx = _model_outputs(self.model, row[None])[0]  # f(x), [K]
            if m == 1:
                values.append((fx - self.base_value)[None])
                evaluations = 2
                continue
            masks, weights, enumerated = self.coalitions(n_samples, generator)
            v = coalition_values(self.model, row, self.background, masks)  # [C, K]
            values.append(self._regression(masks, weights, v, fx))
            evaluations = masks.shape[0] + 2
        extras = {"evaluations": evaluations, "enumerated_sizes": enumerated}
        return _finish(values, self.base_value, x, self.method, self.feature_names, extras)

    def _regression(self, masks: Tensor, weights: Tensor, v: Tensor, fx: Tensor) -> Tensor:
        """Weighted least squares of Theorem 2 with ``Σφ_i = f(x) − φ_0`` (eliminating ``φ_M``)."""
        z = masks.to(torch.float64)
        delta = fx - self.base_value  # [K]
        # y − φ_0 − z_M Δ = Σ_{j<M} φ_j (z_j − z_M)
        target = v - self.base_value - z[:, -1:] * delta  # [C, K]
        design = z[:, :-1] - z[:, -1:]  # [C, M − 1]
        root = weights.sqrt()[:, None]
        solution = torch.linalg.lstsq(design * root, target * root, driver="gelsd").solution  # [M − 1, K]
        last = delta - solution.sum(0)
        return torch.cat([solution, last[None]])


# =============================================================================== Shapley sampling values
class ShapleySamplingExplainer(_TabularExplainer):
    """Shapley sampling values (Štrumbelj & Kononenko 2014): random permutations per feature.

    ``explainer(x, n_evaluations=..., generator=...)``: ``n_evaluations`` coalition values per row
    (each costs ``len(background)`` model rows), at least ``2M``; every feature gets
    ``n_evaluations // (2M)`` permutations, each costing two coalition values.
    """

    method = "shapley_sampling"

    def __call__(
        self, x: Tensor, n_evaluations: int, generator: torch.Generator | None = None
    ) -> Explanation:
        x = self._prepare(x)
        m = self.n_features
        check_int("n_evaluations", n_evaluations, minimum=0)
        if n_evaluations < 2 * m:
            raise ValueError(
                f"n_evaluations must be >= 2M = {2 * m} (one permutation, two coalition values, per feature), "
                f"got {n_evaluations}"
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        per_feature = n_evaluations // (2 * m)
        features = torch.arange(m).repeat_interleave(per_feature)  # [m · per_feature]
        values = []
        for row in x:
            order = torch.rand(features.shape[0], m, generator=generator).argsort(1)  # random permutations
            rank = order.argsort(1)  # position of every feature in its permutation
            own = rank.gather(1, features[:, None])
            before = rank < own  # Pre_i(π): the features that precede i
            with_i = before.clone()
            with_i[torch.arange(features.shape[0]), features] = True
            v = coalition_values(self.model, row, self.background, torch.cat([with_i, before]))
            marginal = v[: features.shape[0]] - v[features.shape[0] :]  # f_x(Pre ∪ i) − f_x(Pre)
            phi = (
                torch.zeros(m, v.shape[1], dtype=torch.float64).index_add_(0, features, marginal)
                / per_feature
            )
            values.append(phi)
        extras = {"evaluations": 2 * per_feature * m, "permutations_per_feature": per_feature}
        return _finish(values, self.base_value, x, self.method, self.feature_names, extras)


# =============================================================================== Linear SHAP (Corollary 1)
class LinearExplainer:
    """Linear SHAP (Corollary 1): ``φ_i = w_i (x_i − E[x_i])``, ``φ_0 = f(E[x])``, independent features.

    ``model``: an ``nn.Linear`` or a pair ``(weight, bias)`` with ``weight`` ``[M]`` or ``[K, M]``
    and ``bias`` a scalar or ``[K]``; ``background``: ``[B, M]`` rows whose mean is ``E[x]``.
    """

    method = "linear_shap"

    def __init__(self, model: Any, background: Tensor, feature_names: Sequence[str] | None = None) -> None:
        if isinstance(model, nn.Linear):
            weight = model.weight.detach()
            bias = model.bias.detach() if model.bias is not None else torch.zeros(weight.shape[0])
        elif isinstance(model, (tuple, list)) and len(model) == 2:
            weight, bias = (torch.as_tensor(t) for t in model)
        else:
            raise TypeError(
                f"model must be an nn.Linear or a (weight, bias) pair, got {type(model).__name__}"
            )
        if not weight.is_floating_point() or weight.ndim not in (1, 2):
            raise ValueError(
                f"weight must be a float tensor [M] or [K, M], got {weight.dtype} {tuple(weight.shape)}"
            )
        self.single = weight.ndim == 1
        self.weight = (weight[None] if self.single else weight).to(torch.float64)  # [K, M]
        bias = bias.to(torch.float64).reshape(-1)
        if bias.numel() == 1 and self.weight.shape[0] > 1:
            bias = bias.expand(self.weight.shape[0])
        if bias.numel() != self.weight.shape[0]:
            raise ValueError(
                f"bias must have {self.weight.shape[0]} entries (one per output), got {bias.numel()}"
            )
        self.bias = bias
        self.background = _check_matrix("background", background, self.weight.shape[1])
        self.n_features = self.weight.shape[1]
        self.feature_names = _check_names(feature_names, self.n_features)
        self.mean = self.background.to(torch.float64).mean(0)
        self.base_value = self.mean @ self.weight.T + self.bias  # φ_0 = f(E[x]), [K]

    def __call__(self, x: Tensor) -> Explanation:
        x = _as_rows(x, self.n_features)
        phi = (x.to(torch.float64) - self.mean)[:, :, None] * self.weight.T[None]  # [N, M, K]
        return _finish(list(phi), self.base_value, x, self.method, self.feature_names, {})


# =============================================================================== Deep SHAP (Section 4.2)
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.GELU, nn.SELU, nn.Softmax)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d)
LINEAR = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
)
RESCALE_EPSILON = 1e-6  # below this |Δx| the Rescale rule takes the derivative (Δy/Δx → f'(x))
MAXPOOL_EPSILON = 1e-7


def _halves(t: Tensor) -> tuple[Tensor, Tensor]:
    n = t.shape[0] // 2
    return t[:n], t[n:]


class _Rescale(torch.autograd.Function):
    """Identity on the module's output; backward gives the Rescale multiplier ``Δy/Δx`` (Eq. 13 for one input).

    The batch holds inputs then references: ``[x; r]``. Both halves get the inputs' multipliers.
    """

    @staticmethod
    def forward(ctx: Any, inputs: Tensor, outputs: Tensor, module: nn.Module) -> Tensor:
        ctx.save_for_backward(inputs, outputs)
        ctx.module = module
        return outputs.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        inputs, outputs = ctx.saved_tensors
        x, r = _halves(inputs)
        y, yr = _halves(outputs)
        dx = (x - r).repeat(2, *([1] * (x.ndim - 1)))
        ratio = ((y - yr) / (x - r)).repeat(2, *([1] * (x.ndim - 1)))
        with torch.enable_grad():  # the plain derivative, where Δx ≈ 0
            leaf = inputs.detach().requires_grad_(True)
            plain = torch.autograd.grad(ctx.module.forward(leaf), leaf, grad)[0]
        return torch.where(dx.abs() < RESCALE_EPSILON, plain, grad * ratio), None, None


class _MaxPoolRule(torch.autograd.Function):
    """Max pooling: ``y − r = [max(y, r) − r] + [y − max(y, r)]``, the first part to the inputs'
    arg-max, the second to the references' arg-max, each divided by that position's ``Δx``."""

    @staticmethod
    def forward(ctx: Any, inputs: Tensor, outputs: Tensor, module: nn.Module) -> Tensor:
        ctx.save_for_backward(inputs, outputs)
        ctx.module = module
        return outputs.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        inputs, outputs = ctx.saved_tensors
        module = ctx.module
        pool = F.max_pool1d if isinstance(module, nn.MaxPool1d) else F.max_pool2d
        _, indices = pool(
            inputs, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode, True
        )
        y, yr = _halves(outputs)
        g, _ = _halves(grad)  # both halves carry the same upstream multipliers
        top = torch.maximum(y, yr)
        index_x, index_r = _halves(indices)
        x, r = _halves(inputs)

        def place(values: Tensor, index: Tensor) -> Tensor:
            # scatter each pooled value to its arg-max (indices are flat over the spatial dims)
            out = torch.zeros(*x.shape[:2], math.prod(x.shape[2:]), dtype=values.dtype)
            out.scatter_add_(2, index.flatten(2), values.flatten(2))
            return out.reshape(x.shape)

        share = place(g * (top - yr), index_x) + place(g * (y - top), index_r)
        delta = x - r
        multiplier = torch.where(delta.abs() < MAXPOOL_EPSILON, torch.zeros_like(delta), share / delta)
        return multiplier.repeat(2, *([1] * (x.ndim - 1))), None, None


@contextmanager
def _deeplift_rules(model: nn.Module) -> Iterator[None]:
    """Route the output of every nonlinear module through its DeepLIFT rule; restore on exit."""

    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        rule = _MaxPoolRule if isinstance(module, MAX_POOLS) else _Rescale
        return rule.apply(args[0], output.detach(), module)

    handles = []
    try:
        for module in model.modules():
            if isinstance(module, ELEMENTWISE + MAX_POOLS):
                handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _check_network(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module (Deep SHAP replaces module gradients), got {type(model).__name__}"
        )
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue  # containers: their leaves are checked
        if getattr(module, "inplace", False):
            raise TypeError(
                f"model.{name} is an in-place {type(module).__name__} (inplace=True), which overwrites the "
                "input Deep SHAP needs; build it with inplace=False"
            )
        if isinstance(module, ELEMENTWISE + MAX_POOLS + LINEAR):
            if isinstance(module, MAX_POOLS) and module.return_indices:
                raise TypeError(f"model.{name}: max pooling with return_indices is not supported")
            continue
        if name == "" and type(module).forward is not nn.Module.forward:
            continue  # a single custom module with functional code: allowed, see departures
        raise TypeError(
            f"model.{name or '(root)'} is a {type(module).__name__}, which Deep SHAP has no rule for; "
            f"supported: {sorted({t.__name__ for t in ELEMENTWISE + MAX_POOLS + LINEAR})}"
        )
    return model


class DeepExplainer:
    """Deep SHAP (Section 4.2): DeepLIFT multipliers composed through the network, averaged over a background.

    ``explainer(x, target=None)``: ``x`` ``[N, *input_shape]``; ``target`` an output index (values
    ``[N, *input_shape]``) or None for every output (``[N, *input_shape, K]``; a model with one
    output drops ``K``). ``extras["local_accuracy_gap"]``: the largest ``|Σφ − (f(x) − E_b f(b))|``.
    ``batch_pairs``: (input, reference) pairs per forward pass.
    """

    method = "deep_shap"

    def __init__(self, model: nn.Module, background: Tensor, batch_pairs: int = 4096) -> None:
        self.model = _check_network(model)
        if not isinstance(background, Tensor) or not background.is_floating_point():
            raise TypeError(
                f"background must be a floating-point torch.Tensor, got {type(background).__name__}"
            )
        if background.ndim < 2 or background.shape[0] == 0:
            raise ValueError(
                f"background must have shape [B, *input_shape] with B >= 1, got {tuple(background.shape)}"
            )
        self.background = background
        self.batch_pairs = check_int("batch_pairs", batch_pairs, minimum=1)
        with torch.no_grad(), _eval(model):
            outputs = model(background)
        if (
            not isinstance(outputs, Tensor)
            or outputs.ndim not in (1, 2)
            or outputs.shape[0] != background.shape[0]
        ):
            shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
            raise ValueError(f"model must map [B, ...] to outputs [B] or [B, K], got {shape}")
        self.single_output = outputs.ndim == 1
        outputs = outputs[:, None] if self.single_output else outputs
        self.n_outputs = outputs.shape[1]
        self.base_value = outputs.double().mean(0)  # φ_0 = E_b f(b), [K]

    def __call__(self, x: Tensor, target: int | None = None) -> Explanation:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
        if x.ndim != self.background.ndim or x.shape[1:] != self.background.shape[1:]:
            raise ValueError(
                f"x must have shape [N, {', '.join(map(str, self.background.shape[1:]))}] (the background's "
                f"input shape), got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"x must hold at least one input, got shape {tuple(x.shape)}")
        if target is not None:
            check_int("target", target, minimum=0)
            if target >= self.n_outputs:
                raise ValueError(f"target must be an output index in [0, {self.n_outputs}), got {target}")
        outputs = [target] if target is not None else list(range(self.n_outputs))
        phis = torch.stack([self._attribute(x, k) for k in outputs], -1)  # [N, *shape, K']
        with torch.no_grad(), _eval(self.model):
            fx = self.model(x).double()
        fx = fx[:, None] if fx.ndim == 1 else fx
        delta = fx[:, outputs] - self.base_value[outputs]
        gap = float((phis.flatten(1, -2).sum(1) - delta).abs().max())
        base = self.base_value[outputs]
        if len(outputs) == 1:
            phis, base_value = phis[..., 0], float(base[0])
        else:
            base_value = base.numpy()
        return Explanation(
            values=phis.numpy(),
            base_value=base_value,
            data=x.detach().cpu().numpy(),
            method=self.method,
            extras={"local_accuracy_gap": gap, "target": target},
            plotter=_plot_additive if x.ndim == 2 else _plot_image,
        )

    def _attribute(self, x: Tensor, output: int) -> Tensor:
        """``mean_b (x − b) ⊙ m(x, b)`` for one output: ``[N, *shape]`` float64."""
        n, b = x.shape[0], self.background.shape[0]
        pairs_x = x.repeat_interleave(b, 0)  # pair (i, j): input i with reference j
        pairs_r = self.background.repeat(n, *([1] * (x.ndim - 1)))
        multipliers = []
        with _eval(self.model), _deeplift_rules(self.model), torch.enable_grad():
            for start in range(0, n * b, self.batch_pairs):
                xs = pairs_x[start : start + self.batch_pairs]
                rs = pairs_r[start : start + self.batch_pairs]
                leaf = torch.cat([xs, rs]).detach().requires_grad_(True)
                out = self.model(leaf)
                out = out[:, None] if out.ndim == 1 else out
                # Eq. 14-16: back-propagating the output through the replaced gradients composes the
                # multipliers; only the inputs' half is summed, so each pair gets its own multipliers.
                grad = torch.autograd.grad(out[: xs.shape[0], output].sum(), leaf)[0]
                multipliers.append(grad[: xs.shape[0]])
        m = torch.cat(multipliers).double()
        contributions = (pairs_x - pairs_r).double() * m  # φ ≈ m (x − b) (Eq. 16)
        return contributions.reshape(n, b, *x.shape[1:]).mean(1)


@contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.train(training)


# =============================================================================== plots
def _plot_additive(explanation: Explanation, ax: Any, index: int = 0, output: int = 0) -> None:
    """Figure 1's kind: each feature's φ_i as a bar pushing from the base value E[f] towards f(x)."""
    values = np.asarray(explanation.values)
    row = values[index]
    if row.ndim == 2:  # several outputs: draw one
        row = row[:, output]
    row = row.reshape(-1)
    base = explanation.base_value
    base = float(np.asarray(base).reshape(-1)[output]) if base is not None else 0.0
    names = explanation.feature_names or [f"x{i}" for i in range(row.shape[0])]
    order = np.argsort(np.abs(row))[::-1][:12]
    position = base
    for rank, i in enumerate(order):
        ax.barh(rank, row[i], left=position, color="#d62728" if row[i] > 0 else "#1f77b4")
        position += row[i]
    ax.set_yticks(range(len(order)), [names[i] for i in order])
    ax.invert_yaxis()
    ax.axvline(base, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel(f"model output: base value E[f] = {base:.3g}, pushed by φ (red up, blue down)")
    ax.set_title(explanation.method)


def _plot_image(explanation: Explanation, ax: Any, index: int = 0, output: int = 0) -> None:
    """Figure 5's kind: the input in gray, φ in red (raises the output) and blue (lowers it)."""
    values = np.asarray(explanation.values)[index]
    data = np.asarray(explanation.data)[index]
    if values.ndim == data.ndim + 1:
        values = values[..., output]
    image = data.sum(0) if data.ndim == 3 else data
    phi = values.sum(0) if values.ndim == 3 else values
    limit = float(np.abs(phi).max()) or 1.0
    ax.imshow(image, cmap="gray_r", alpha=0.35)
    ax.imshow(phi, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.8)
    ax.set_title(explanation.method)
    ax.set_axis_off()
