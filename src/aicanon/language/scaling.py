"""Predictable scaling (OpenAI 2023, GPT-4 Technical Report, Section 3): fit the final losses of small
runs with a power law in training compute and predict a much larger run before it is trained.

Loss (Section 3.1, Figure 1). The report fits "a scaling law with an irreducible loss term"

    L(C) = a * C^b + c                                                    (Section 3.1)

to the final losses of models trained with the same methodology and at most 1/10,000 of GPT-4's
compute, and predicts GPT-4's final loss. ``c`` is the loss no amount of compute removes (the
entropy of the text under the model class), ``b < 0`` the rate at which the rest falls.
:func:`fit_scaling_law` fits it; ``irreducible=False`` fits the pure power law ``L = a * C^b``
(``c = 0``), the ablation that shows why the report keeps ``c``.

Capability (Section 3.2, Figure 2). For HumanEval the report fits the mean log pass rate over a
set of problems P,

    -E_P[log(pass_rate(C))] = alpha * C^(-k)        (k, alpha > 0)     (Section 3.2)

a pure power law (:func:`fit_capability_law`, with :func:`mean_negative_log_pass_rate` for the
left-hand side).

Uncertainty (beyond the report, which gives none): :func:`bootstrap_prediction` resamples the small
runs with replacement, refits, and takes percentile intervals of the predicted value.

Compute (Kaplan et al. 2020, Section 2.1 and Table 1). Training costs ``C = 6 N D`` FLOPs for ``N``
non-embedding parameters and ``D`` tokens (:func:`training_flops`): 2 N per token forward, twice that
backward. :func:`llama_training_flops` counts instead every matrix multiplication of our Llama
(:class:`aicanon.language.llama.Llama`) exactly, attention scores included:

    forward  = 2 * tokens * N_matmul + 4 * L * B * T^2 * (H * d_head)
    training = 3 * forward

``N_matmul`` counts the weights of the q/k/v/o, gate/up/down projections of every layer and of the
output head (the embedding is a lookup, not a product); ``4 L B T^2 H d_head`` are ``Q K^T`` and
``softmax(.) V`` over all ``T x T`` score entries (what a dense kernel computes and what
``torch.utils.flop_counter`` counts; causal masking would halve it in an ideal kernel). The backward
pass of every product costs two products of the same size (the gradients of both operands; the
embedding's gradient makes the first layer's input gradient necessary too), hence ``3 x forward``.
Norms, activations, softmax and the optimiser are not counted (a few ``O(N)`` element-wise terms).
:func:`llama_non_embedding_parameters` gives Kaplan's ``N`` of a config without building the model.

Departures from the report:

* The report does not say how it fitted ``a, b, c``. We minimise squared error of ``log L`` (relative
  error, so small and large runs weigh alike) with SciPy's bounded trust-region least squares,
  started from the best of a grid over ``c`` (for fixed ``c`` the fit of ``log(L - c)`` on
  ``log C`` is linear, so each grid point has a closed-form start). ``c`` is bounded to
  ``[0, min(L))`` so that every ``L - c`` is positive; ``b`` only to ``|b| <= 5`` (real exponents
  are far smaller; a loss that rises with compute gives ``b > 0``, which says the runs are not one
  family).
* Compute is in whatever unit the caller gives (the report normalises GPT-4's compute to 1); the
  fit is done on ``C / C_ref`` (the geometric mean) for conditioning and ``a`` is returned in the
  caller's unit.
* Fits need at least 3 runs at distinct compute for the pure power law (2 parameters) and 4 for
  ``L = a C^b + c`` (3 parameters), so that at least one degree of freedom checks the form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

__all__ = [
    "BootstrapInterval",
    "PowerLawFit",
    "bootstrap_prediction",
    "fit_capability_law",
    "fit_scaling_law",
    "llama_forward_flops",
    "llama_non_embedding_parameters",
    "llama_training_flops",
    "mean_negative_log_pass_rate",
    "relative_error",
    "training_flops",
]


# ----------------------------------------------------------------------------- compute accounting


def training_flops(parameters: float, tokens: float) -> float:
    """``C = 6 N D``: training FLOPs of ``parameters`` (N, non-embedding) on ``tokens`` (D).

    Kaplan et al. 2020, Section 2.1: a forward pass costs about ``2N`` FLOPs per token and the
    backward pass twice that; the context-dependent attention term is left out (small when
    ``d_model >> n_ctx / 12``).
    """
    from aicanon.core.checks import check_float

    n = float(check_float("parameters", parameters, 0, min_inclusive=False, finite=True))
    d = float(check_float("tokens", tokens, 0, min_inclusive=False, finite=True))
    return 6.0 * n * d


def _llama_sizes(cfg: Any) -> tuple[int, int]:
    """(weights that enter a matmul per token, ``H * d_head``) of a LlamaConfig."""
    from aicanon.language.llama import LlamaConfig

    if not isinstance(cfg, LlamaConfig):
        raise TypeError(f"cfg must be a LlamaConfig, got {type(cfg).__name__}")
    d, hd = cfg.hidden_size, cfg.head_dim
    attention = d * cfg.num_heads * hd * 2 + d * cfg.num_kv_heads * hd * 2  # q, o and k, v
    mlp = 3 * d * cfg.intermediate_size  # gate, up, down
    head = d * cfg.vocab_size  # the output head (tied or not, it is a product)
    return cfg.num_layers * (attention + mlp) + head, cfg.num_heads * hd


def llama_non_embedding_parameters(cfg: Any) -> int:
    """``N`` of Kaplan et al. for ``Llama(cfg)`` without building it: every weight but the token
    (and learned position) embeddings; an untied output head counts, a tied one is the embedding.

    Equals ``Llama(cfg).num_parameters(exclude_embeddings=True)``.
    """
    weights, _ = _llama_sizes(cfg)
    d = cfg.hidden_size
    norms = (2 * cfg.num_layers + 1) * d  # two RMSNorm gains per block and the final one
    return weights + norms - (d * cfg.vocab_size if cfg.tie_embeddings else 0)


def llama_forward_flops(cfg: Any, batch_size: int, seq_len: int) -> int:
    """Exact matmul FLOPs of one forward pass of ``Llama(cfg)`` on ``[batch_size, seq_len]`` tokens.

    ``2 * B * T * N_matmul + 4 * L * B * T^2 * H * d_head`` (see the module docstring).
    """
    from aicanon.core.checks import check_int

    check_int("batch_size", batch_size)
    check_int("seq_len", seq_len)
    weights, attn_width = _llama_sizes(cfg)
    if seq_len > cfg.max_seq_len:
        raise ValueError(f"seq_len must be <= cfg.max_seq_len={cfg.max_seq_len}, got {seq_len}")
    tokens = batch_size * seq_len
    return 2 * tokens * weights + 4 * cfg.num_layers * batch_size * seq_len * seq_len * attn_width


def llama_training_flops(cfg: Any, batch_size: int, seq_len: int, steps: int = 1) -> int:
    """Exact matmul FLOPs of ``steps`` training steps (forward + backward): ``3 x`` the forward."""
    from aicanon.core.checks import check_int

    check_int("steps", steps)
    return 3 * steps * llama_forward_flops(cfg, batch_size, seq_len)


# ----------------------------------------------------------------------------- fits

MAX_EXPONENT = 5.0
"""``|b|`` bound of the fit with an irreducible term (scaling exponents are of order 0.05 to 0.5; the
bound keeps fits to runs that follow no law finite)."""


def _as_vector(name: str, values: Any) -> np.ndarray:
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}") from error
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _check_runs(
    compute: Any, loss: Any, minimum: int, loss_name: str = "loss"
) -> tuple[np.ndarray, np.ndarray]:
    x = _as_vector("compute", compute)
    y = _as_vector(loss_name, loss)
    if x.shape != y.shape:
        raise ValueError(f"compute and {loss_name} must have the same length, got {x.size} and {y.size}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"compute must be positive and finite, got {x.tolist()}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{loss_name} must be finite (no NaN or inf), got {y.tolist()}")
    if np.any(y <= 0):
        raise ValueError(f"{loss_name} must be positive (it is fitted in log space), got {y.tolist()}")
    distinct = np.unique(x).size
    if distinct < minimum:
        raise ValueError(
            f"compute must hold at least {minimum} distinct values for this fit, got {distinct} "
            f"({x.size} runs)"
        )
    return x, y


@dataclass(frozen=True)
class PowerLawFit:
    """``L(C) = a * C^b + c`` fitted to runs (``c = 0`` for a pure power law).

    For a capability fit (Section 3.2) ``alpha = a`` and ``k = -b``.
    """

    a: float
    b: float
    c: float
    irreducible: bool
    """Whether ``c`` was fitted (False: the pure power law, ``c = 0``)."""
    n_runs: int
    rms_log_residual: float
    """Root mean square of ``log L_fit - log L`` over the fitted runs."""

    def predict(self, compute: Any) -> Any:
        """``a * C^b + c`` at ``compute`` (a number or an array; positive)."""
        x = np.asarray(compute, dtype=np.float64)
        if not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise ValueError(f"compute must be positive and finite, got {compute!r}")
        value = self.a * np.power(x, self.b) + self.c
        return float(value) if value.ndim == 0 else value

    @property
    def alpha(self) -> float:
        return self.a

    @property
    def k(self) -> float:
        return -self.b

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "irreducible": self.irreducible,
            "n_runs": self.n_runs,
            "rms_log_residual": self.rms_log_residual,
        }


def _linear_fit(x: np.ndarray, z: np.ndarray) -> tuple[float, float, float]:
    """Least squares ``z = alpha + b x``: (alpha, b, sum of squared residuals)."""
    xm, zm = x.mean(), z.mean()
    sxx = float(np.sum((x - xm) ** 2))
    b = float(np.sum((x - xm) * (z - zm)) / sxx)
    alpha = float(zm - b * xm)
    return alpha, b, float(np.sum((alpha + b * x - z) ** 2))


def _fit_log(x: np.ndarray, y: np.ndarray, irreducible: bool) -> tuple[float, float, float, float]:
    """Fit on centred log compute ``x``: (alpha = log a at the reference, b, c, sse in log space)."""
    log_y = np.log(y)
    if not irreducible:
        alpha, b, sse = _linear_fit(x, log_y)
        return alpha, b, 0.0, sse
    upper = float(y.min()) * (1.0 - 1e-9)

    def residuals(theta: np.ndarray) -> np.ndarray:
        alpha, b, c = theta
        return np.log(np.exp(alpha + b * x) + c) - log_y

    def jacobian(theta: np.ndarray) -> np.ndarray:
        alpha, b, c = theta
        power = np.exp(alpha + b * x)
        total = power + c
        return np.stack([power / total, power * x / total, 1.0 / total], axis=1)

    # For a fixed c, log(L - c) = alpha + b log C is linear: a closed-form start for every c on a
    # grid below min(L) (all at once); the two best starts are refined jointly (the surface can be
    # flat along c, and the best grid point may sit in the wrong basin).
    grid = np.linspace(0.0, 0.995, 48)[:, None] * upper
    z = np.log(y[None, :] - grid)
    xm = x - x.mean()
    slopes = (z - z.mean(axis=1, keepdims=True)) @ xm / float(xm @ xm)
    intercepts = z.mean(axis=1) - slopes * x.mean()
    fitted = np.log(np.exp(intercepts[:, None] + slopes[:, None] * x[None, :]) + grid)
    order = np.argsort(np.sum((fitted - log_y[None, :]) ** 2, axis=1))
    best: tuple[float, float, float, float] | None = None
    for row in order[:2]:
        solution = least_squares(
            residuals,
            np.array([intercepts[row], np.clip(slopes[row], -MAX_EXPONENT, MAX_EXPONENT), grid[row, 0]]),
            jac=jacobian,
            bounds=([-np.inf, -MAX_EXPONENT, 0.0], [np.inf, MAX_EXPONENT, upper]),
            method="trf",
            x_scale="jac",
            ftol=1e-13,
            xtol=1e-13,
            gtol=1e-13,
            max_nfev=500,
        )
        sse = float(np.sum(solution.fun**2))
        if best is None or sse < best[3]:
            best = (float(solution.x[0]), float(solution.x[1]), float(solution.x[2]), sse)
    assert best is not None
    return best


def fit_scaling_law(compute: Any, loss: Any, irreducible: bool = True) -> PowerLawFit:
    """Fit ``L(C) = a * C^b + c`` (Section 3.1; ``irreducible=False``: ``c = 0``) to runs.

    ``compute`` and ``loss``: 1-D, one entry per run, positive and finite; at least 4 runs at
    distinct compute with ``irreducible`` (3 parameters), 3 without. Least squares on ``log L``.
    """
    if not isinstance(irreducible, bool):
        raise TypeError(f"irreducible must be a bool, got {type(irreducible).__name__}")
    x_raw, y = _check_runs(compute, loss, 4 if irreducible else 3)
    log_x = np.log(x_raw)
    reference = float(log_x.mean())  # centre log compute: a at C_ref = exp(mean log C)
    alpha, b, c, sse = _fit_log(log_x - reference, y, irreducible)
    a = math.exp(alpha - b * reference)
    return PowerLawFit(
        a=a, b=b, c=c, irreducible=irreducible, n_runs=int(y.size), rms_log_residual=math.sqrt(sse / y.size)
    )


def mean_negative_log_pass_rate(pass_rates: Any) -> float:
    """``-E_P[log(pass_rate)]`` over problems P (Section 3.2), from a 1-D array of per-problem pass rates.

    Every pass rate must lie in ``(0, 1]``: the mean is infinite when one problem is never solved
    (the report fits only problems every model solves at least sometimes).
    """
    rates = _as_vector("pass_rates", pass_rates)
    if rates.size == 0:
        raise ValueError("pass_rates must hold at least one problem, got an empty array")
    if not np.all(np.isfinite(rates)) or np.any(rates <= 0) or np.any(rates > 1):
        raise ValueError(
            f"pass_rates must lie in (0, 1], got min {float(rates.min())} and max {float(rates.max())}"
        )
    return float(-np.mean(np.log(rates)))


def fit_capability_law(compute: Any, metric: Any) -> PowerLawFit:
    """Fit ``-E_P[log(pass_rate(C))] = alpha * C^(-k)`` (Section 3.2): a pure power law.

    ``metric``: the left-hand side per run (:func:`mean_negative_log_pass_rate`); the fit's
    ``alpha`` and ``k`` properties give the report's constants. At least 3 runs at distinct compute.
    """
    x, y = _check_runs(compute, metric, 3, loss_name="metric")
    return fit_scaling_law(x, y, irreducible=False)


def relative_error(predicted: float, actual: float) -> float:
    """``|predicted - actual| / |actual|``."""
    predicted = float(predicted)
    actual = float(actual)
    if not math.isfinite(actual) or actual == 0:
        raise ValueError(f"actual must be finite and non-zero, got {actual!r}")
    return abs(predicted - actual) / abs(actual)


# ----------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile bootstrap interval of a predicted value."""

    estimate: float
    """The prediction of the fit on all runs."""
    low: float
    high: float
    level: float
    samples: np.ndarray = field(repr=False)
    """The prediction of every accepted resample."""
    rejected: int
    """Resamples drawn but not fitted (too few distinct compute values for the form)."""

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "resamples": int(self.samples.size),
            "rejected": self.rejected,
        }


def bootstrap_prediction(
    compute: Any,
    loss: Any,
    target_compute: float,
    *,
    irreducible: bool = True,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int | np.random.Generator = 0,
) -> BootstrapInterval:
    """Percentile bootstrap interval of the fitted law's prediction at ``target_compute``.

    Each resample draws ``len(compute)`` runs with replacement and refits; a draw with fewer
    distinct compute values than the form needs (4 with ``irreducible``, else 3) is redrawn and
    counted in ``rejected``. The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles of the accepted predictions.
    """
    from aicanon.core.checks import check_float, check_int

    check_int("n_resamples", n_resamples)
    check_float("level", level, 0, 1, min_inclusive=False, max_inclusive=False)
    target = float(check_float("target_compute", target_compute, 0, min_inclusive=False, finite=True))
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        rng = np.random.default_rng(int(seed))
    else:
        raise TypeError(f"seed must be an int or a numpy Generator, got {type(seed).__name__}")
    fit = fit_scaling_law(compute, loss, irreducible=irreducible)
    x = np.asarray(compute, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64)
    minimum = 4 if irreducible else 3
    samples: list[float] = []
    rejected = 0
    while len(samples) < n_resamples:
        if rejected > 100 * n_resamples:
            raise ValueError(
                f"compute has too few distinct runs to bootstrap: {rejected} resamples drawn had fewer "
                f"than {minimum} distinct compute values"
            )
        index = rng.integers(0, x.size, size=x.size)
        if np.unique(x[index]).size < minimum:
            rejected += 1
            continue
        samples.append(float(fit_scaling_law(x[index], y[index], irreducible=irreducible).predict(target)))
    values = np.asarray(samples)
    low, high = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return BootstrapInterval(
        estimate=float(fit.predict(target)),
        low=float(low),
        high=float(high),
        level=float(level),
        samples=values,
        rejected=rejected,
    )
