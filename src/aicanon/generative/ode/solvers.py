"""ODE initial value solvers: Euler, RK4 and adaptive Dormand-Prince (dopri5) (Chen et al. 2018, Section 2).

A neural ODE defines its hidden state by the initial value problem

    dz(t)/dt = f(z(t), t, theta),   z(t_0) = z_0                                    (Eq. 2)

and its output by ``z(t_1) = ODESolve(z(t_0), f, t_0, t_1, theta)``. :func:`odeint` returns
``z`` at every time of a strictly monotone grid ``t = (t_0, ..., t_N)`` (increasing or decreasing),
as a tensor ``[N + 1, *z_0.shape]``, computed by one of:

* ``euler``: ``z_{n+1} = z_n + h f(z_n, t_n)``, first order, one evaluation per step;
* ``rk4``: Kutta's 3/8 rule, fourth order, four evaluations per step (torchdiffeq's ``rk4``: the
  classical 1/6-2/6-2/6-1/6 scheme is ``rk4_classic``);
* ``dopri5``: the Dormand-Prince 5(4) pair (Dormand & Prince 1980) with first-same-as-last (six new
  evaluations per accepted step), local extrapolation (the fifth-order solution is kept), the
  embedded fourth-order solution of Dormand & Prince as error estimate (Hairer's DOPRI5 code;
  torchdiffeq uses Shampine's alternative embedded weights, so step counts differ slightly), and
  the usual controller (Hairer, Norsett & Wanner, *Solving ODEs I*, Section II.4): a step is accepted when

      err = RMS( (z5 - z4) / (atol + rtol max(|z_n|, |z_{n+1}|)) ) <= 1,

  and the next step is ``h * min(10, max(0.2, 0.9 err^(-1/5)))`` (no shrinking after an accepted
  step); the first step follows Hairer's algorithm (``II.4``, "starting step size"). Outputs between
  steps come from the fourth-order dense output through ``z_n``, ``z_{n+1}``, the midpoint
  ``z_{n+1/2}`` (Shampine 1986's coefficients) and the two end derivatives.

Fixed-step methods step on ``t`` itself, or, with ``step_size``, on the grid
``t_0, t_0 + h, ..., t_N`` (last point moved to ``t_N``) with linear interpolation to the outputs,
as torchdiffeq does. A decreasing grid is solved as ``dz/ds = -f(z, -s)`` on ``s = -t``.

:class:`SolverStats` counts function evaluations (``nfe``), accepted and rejected steps.

Step sizes and error estimates are computed without gradient: backpropagating through the solver
differentiates the steps taken, not the choice of steps (torchdiffeq also differentiates the step
size; the difference vanishes as the tolerance does).

Departures: only a single tensor state (no tuples of tensors); no event handling, no ``jump_t``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from aicanon.core.checks import check_choice, check_float, check_int, check_tensor

__all__ = ["METHODS", "SolverStats", "check_time_grid", "odeint"]

METHODS = ("euler", "rk4", "rk4_classic", "dopri5")
FIXED_METHODS = ("euler", "rk4", "rk4_classic")

# Dormand-Prince 5(4) Butcher tableau: nodes c, stages a, fifth-order weights b5 and the
# difference b5 - b4 (the error estimate); b5's last stage weight is 0 (FSAL).
_C = (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_B_ERROR = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4))
# Shampine's weights for z(t_n + h/2): z_mid = z_n + h sum_i mid_i k_i.
_MID = (
    6025192743 / 30085553152 / 2,
    0.0,
    51252292925 / 65400821598 / 2,
    -2691868925 / 45128329728 / 2,
    187940372067 / 1594534317056 / 2,
    -1776094331 / 19743644256 / 2,
    11237099 / 235043384 / 2,
)
_SAFETY, _GROW, _SHRINK, _ORDER = 0.9, 10.0, 0.2, 5


@dataclass
class SolverStats:
    """Filled in by :func:`odeint` when passed: function evaluations and steps taken."""

    nfe: int = 0
    accepted: int = 0
    rejected: int = 0


def check_time_grid(t: Tensor) -> int:
    """Check that ``t`` is a 1-D floating tensor of at least two strictly monotone, finite times;
    return +1 (increasing) or -1 (decreasing)."""
    check_tensor("t", t, dim=1, floating=True)
    if t.numel() < 2:
        raise ValueError(f"t must hold at least 2 times (t_0 and an output time), got {t.numel()}")
    if not torch.isfinite(t).all():
        raise ValueError(f"t must be finite, got {t.tolist()}")
    steps = t[1:] - t[:-1]
    if (steps > 0).all():
        return 1
    if (steps < 0).all():
        return -1
    raise ValueError(f"t must be strictly increasing or strictly decreasing, got {t.tolist()}")


def odeint(
    func: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    *,
    step_size: float | None = None,
    max_steps: int = 100_000,
    stats: SolverStats | None = None,
) -> Tensor:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0``; return ``y`` at every time of ``t``,
    ``[len(t), *y0.shape]``. ``func`` takes a 0-D time tensor and a tensor shaped like ``y0``.

    ``rtol``/``atol`` (both > 0) set dopri5's error control (fixed-step methods check and ignore
    them); ``step_size`` (> 0) gives fixed-step methods their step (default: the grid ``t`` itself);
    ``max_steps`` bounds dopri5's steps (accepted and rejected); ``stats`` counts evaluations.
    """
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
    check_tensor("y0", y0, floating=True)
    direction = check_time_grid(t)
    check_choice("method", method, METHODS)
    check_float("rtol", rtol, 0, min_inclusive=False, finite=True)
    check_float("atol", atol, 0, min_inclusive=False, finite=True)
    check_float("step_size", step_size, 0, min_inclusive=False, finite=True, allow_none=True)
    check_int("max_steps", max_steps, 1)
    if stats is None:
        stats = SolverStats()

    def counted(time: Tensor, y: Tensor) -> Tensor:
        stats.nfe += 1
        # dopri5 keeps time in float64; func sees it in the state's dtype (torchdiffeq's behaviour).
        out = func(time.to(y.dtype) if y.dtype.is_floating_point else time, y)
        if not isinstance(out, Tensor) or out.shape != y.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"func(t, y) must return a tensor shaped like y0 {tuple(y.shape)}, got {got}")
        return out

    rhs = counted
    if direction < 0:  # solve dz/ds = -f(z, -s) on the increasing grid s = -t
        t = -t

        def rhs(time: Tensor, y: Tensor) -> Tensor:
            return -counted(-time, y)

    if method in FIXED_METHODS:
        return _fixed_grid(rhs, y0, t, method, step_size, stats)
    return _dopri5(rhs, y0, t, float(rtol), float(atol), max_steps, stats)


# ----------------------------------------------------------------------------------------- fixed grid


def _euler_step(func, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> Tensor:
    return dt * func(t0, y0)


def _rk4_step(func, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> Tensor:
    # Kutta's 3/8 rule: nodes 0, 1/3, 2/3, 1 and weights 1/8, 3/8, 3/8, 1/8.
    k1 = func(t0, y0)
    k2 = func(t0 + dt * (1 / 3), y0 + dt * k1 * (1 / 3))
    k3 = func(t0 + dt * (2 / 3), y0 + dt * (k2 - k1 * (1 / 3)))
    k4 = func(t1, y0 + dt * (k1 - k2 + k3))
    return (k1 + 3 * (k2 + k3) + k4) * dt * 0.125


def _rk4_classic_step(func, t0: Tensor, dt: Tensor, t1: Tensor, y0: Tensor) -> Tensor:
    half = dt * 0.5
    k1 = func(t0, y0)
    k2 = func(t0 + half, y0 + half * k1)
    k3 = func(t0 + half, y0 + half * k2)
    k4 = func(t1, y0 + dt * k3)
    return (k1 + 2 * (k2 + k3) + k4) * dt * (1 / 6)


_STEPS = {"euler": _euler_step, "rk4": _rk4_step, "rk4_classic": _rk4_classic_step}


def _fixed_grid(func, y0: Tensor, t: Tensor, method: str, step_size: float | None, stats) -> Tensor:
    if step_size is None:
        grid = t
    else:
        count = int(torch.ceil((t[-1] - t[0]) / step_size + 1).item())
        grid = torch.arange(count, dtype=t.dtype, device=t.device) * step_size + t[0]
        grid[-1] = t[-1]
    step = _STEPS[method]
    outputs = [y0]
    j = 1
    y = y0
    for t0, t1 in zip(grid[:-1], grid[1:]):
        y1 = y + step(func, t0, t1 - t0, t1, y)
        stats.accepted += 1
        while j < len(t) and t1 >= t[j]:
            if t[j] == t1:
                outputs.append(y1)
            elif t[j] == t0:
                outputs.append(y)
            else:  # between grid points: linear interpolation (torchdiffeq's default)
                outputs.append(y + (t[j] - t0) / (t1 - t0) * (y1 - y))
            j += 1
        y = y1
    return torch.stack(outputs)


# --------------------------------------------------------------------------------------------- dopri5


def _rms(x: Tensor) -> Tensor:
    return x.square().mean().sqrt()


def _initial_step(func, t0: Tensor, y0: Tensor, f0: Tensor, rtol: float, atol: float) -> Tensor:
    """Hairer, Norsett & Wanner II.4: h0 from |y0| and |f0|, refined by one Euler probe."""
    scale = atol + y0.abs() * rtol
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = torch.full_like(d0, 1e-6) if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    f1 = func(t0 + h0.to(t0.dtype), y0 + h0 * f0)
    d2 = _rms((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = torch.clamp(h0 * 1e-3, min=1e-6)
    else:
        h1 = (0.01 / torch.maximum(d1, d2)) ** (1.0 / _ORDER)
    return torch.minimum(100 * h0, h1).to(t0.dtype)


def _dense(y0: Tensor, y1: Tensor, y_mid: Tensor, f0: Tensor, f1: Tensor, h: Tensor) -> list[Tensor]:
    """Coefficients of the quartic p(x), x in [0, 1], with p(0)=y0, p(1)=y1, p(1/2)=y_mid,
    p'(0)=h f0, p'(1)=h f1; returned lowest degree first."""
    a4 = 2 * h * (f1 - f0) - 8 * (y1 + y0) + 16 * y_mid
    a3 = h * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * y_mid
    a2 = h * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * y_mid
    return [y0, h * f0, a2, a3, a4]


def _evaluate(coefficients: list[Tensor], x: Tensor) -> Tensor:
    total = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        total = c + x * total
    return total


def _dopri5(func, y0: Tensor, t: Tensor, rtol: float, atol: float, max_steps: int, stats) -> Tensor:
    # Time is kept in float64 (or t's own dtype if wider) so small steps on long grids stay exact.
    t = t.to(torch.promote_types(t.dtype, torch.float64))
    t0 = t[0]
    f0 = func(t0, y0)
    with torch.no_grad():  # step sizes are the solver's choice, not part of the model: no gradient
        h = _initial_step(func, t0, y0, f0, rtol, atol)
    outputs = [y0]
    y = y0
    coefficients = None
    t_prev = t0
    taken = 0
    for target in t[1:]:
        while target > t0:
            if taken >= max_steps:
                raise RuntimeError(f"dopri5 took max_steps={max_steps} steps before t={float(target):g}")
            taken += 1
            if not torch.isfinite(h) or h <= 0:
                raise RuntimeError(f"dopri5 step size became {float(h):g} at t={float(t0):g}")
            if t0 + h <= t0:
                raise RuntimeError(f"dopri5 step size underflow ({float(h):g}) at t={float(t0):g}")
            hy = h.to(y.dtype)
            k = [f0]
            for c, row in zip(_C, _A):
                increment = sum(a * ki for a, ki in zip(row, k) if a != 0.0)
                k.append(func(t0 + c * h, y + hy * increment))
            y1 = y + hy * sum(b * ki for b, ki in zip(_B5, k[:6]) if b != 0.0)
            with torch.no_grad():
                error = hy * sum(b * ki for b, ki in zip(_B_ERROR, k))
            f1 = k[6]  # the last stage is evaluated at (t0 + h, y1): first same as last
            with torch.no_grad():
                scale = atol + rtol * torch.maximum(y.abs(), y1.abs())
                ratio = _rms(error / scale).to(h.dtype)
            if not torch.isfinite(ratio):
                raise RuntimeError(f"dopri5 met a non-finite error estimate at t={float(t0):g}")
            if ratio <= 1:
                stats.accepted += 1
                y_mid = y + hy * sum(m * ki for m, ki in zip(_MID, k) if m != 0.0)
                coefficients = _dense(y, y1, y_mid, f0, f1, hy)
                t_prev, t0, y, f0 = t0, t0 + h, y1, f1
            else:
                stats.rejected += 1
            if ratio == 0:
                factor = _GROW
            else:
                floor = 1.0 if ratio < 1 else _SHRINK
                factor = min(_GROW, max(_SAFETY * float(ratio) ** (-1.0 / _ORDER), floor))
            h = h * factor
        x = ((target - t_prev) / (t0 - t_prev)).to(y.dtype)
        outputs.append(y if target == t0 else _evaluate(coefficients, x))
    return torch.stack(outputs)
