"""aicanon.language.scaling: the GPT-4 report's scaling-law fits (Section 3), bootstrap intervals and
FLOP accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from aicanon.language import llama as llama_module
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.scaling import (
    BootstrapInterval,
    PowerLawFit,
    bootstrap_prediction,
    fit_capability_law,
    fit_scaling_law,
    llama_forward_flops,
    llama_non_embedding_parameters,
    llama_training_flops,
    mean_negative_log_pass_rate,
    relative_error,
    training_flops,
)

pytestmark = pytest.mark.paper("gpt4-scaling")


def law(compute, a, b, c):
    return a * np.power(compute, b) + c


def log_sse(fit: PowerLawFit, compute, loss) -> float:
    return float(np.sum((np.log(fit.predict(compute)) - np.log(loss)) ** 2))


# ----------------------------------------------------------------------------- golden values


def test_noiseless_offset_law_is_recovered_exactly():
    compute = np.geomspace(1e9, 1e14, 7)
    loss = law(compute, 40.0, -0.15, 1.2)
    fit = fit_scaling_law(compute, loss)
    assert fit.a == pytest.approx(40.0, rel=1e-7)
    assert fit.b == pytest.approx(-0.15, rel=1e-7)
    assert fit.c == pytest.approx(1.2, rel=1e-7)
    assert fit.irreducible and fit.n_runs == 7 and fit.rms_log_residual < 1e-10
    assert fit.predict(1e16) == pytest.approx(law(1e16, 40.0, -0.15, 1.2), rel=1e-9)


def test_noiseless_pure_power_law_is_recovered_exactly_with_or_without_c():
    compute = np.geomspace(1e3, 1e8, 6)
    loss = law(compute, 5.0, -0.3, 0.0)
    pure = fit_scaling_law(compute, loss, irreducible=False)
    assert (pure.a, pure.b, pure.c) == pytest.approx((5.0, -0.3, 0.0), rel=1e-10)
    offset = fit_scaling_law(compute, loss)  # c = 0 lies on the bound: the fit must find it
    assert offset.c == pytest.approx(0.0, abs=1e-6)
    assert offset.b == pytest.approx(-0.3, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    b=st.floats(-0.6, -0.05),
    c=st.floats(0.3, 4.0),
    reducible=st.floats(0.5, 5.0),
    decades=st.floats(1.5, 6.0),
    start=st.floats(0.0, 15.0),
)
def test_noiseless_recovery_holds_across_laws(b, c, reducible, decades, start):
    compute = np.geomspace(10.0**start, 10.0 ** (start + decades), 6)
    a = reducible / compute[0] ** b  # a C^b = ``reducible`` at the smallest run
    loss = law(compute, a, b, c)
    fit = fit_scaling_law(compute, loss)
    assert fit.b == pytest.approx(b, rel=1e-4, abs=1e-6)
    assert fit.c == pytest.approx(c, rel=1e-4, abs=1e-6)
    assert fit.predict(compute[-1] * 100) == pytest.approx(law(compute[-1] * 100, a, b, c), rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), b=st.floats(-0.4, -0.1), c=st.floats(0.5, 2.0))
def test_noisy_fit_stays_within_tolerance(seed, b, c):
    rng = np.random.default_rng(seed)
    compute = np.geomspace(1e10, 1e14, 12)
    a = 2.0 / compute[0] ** b
    truth = law(compute, a, b, c)
    loss = truth * np.exp(rng.normal(0.0, 0.003, compute.size))  # 0.3 % noise
    fit = fit_scaling_law(compute, loss)
    # inside the data, the fitted curve is within 1 % of the truth; at 3x the largest run within 3 %
    assert np.max(np.abs(fit.predict(compute) / truth - 1)) < 0.01
    target = 3 * compute[-1]
    assert fit.predict(target) == pytest.approx(law(target, a, b, c), rel=0.03)
    assert 0.0 <= fit.c < loss.min()


def test_fit_is_the_optimum_of_the_log_space_objective():
    # For every c on a fine grid, the best (a, b) is a linear fit of log(L - c): a profile that
    # samples the objective; ours must be at least as good as the best profile point.
    rng = np.random.default_rng(3)
    compute = np.geomspace(1e6, 1e11, 8)
    loss = law(compute, 20.0, -0.2, 1.5) * np.exp(rng.normal(0, 0.01, 8))
    fit = fit_scaling_law(compute, loss)
    best = math.inf
    for c in np.linspace(0, loss.min() * 0.999, 2000):
        b, log_a = np.polyfit(np.log(compute), np.log(loss - c), 1)
        candidate = PowerLawFit(math.exp(log_a), b, c, True, 8, 0.0)
        best = min(best, log_sse(candidate, compute, loss))
    assert log_sse(fit, compute, loss) <= best + 1e-12
    assert fit.rms_log_residual == pytest.approx(math.sqrt(log_sse(fit, compute, loss) / 8), rel=1e-9)


def test_capability_law_golden_values():
    # -E_P[log pass_rate] of pass rates 1, 1/e, 1/e^2 is (0 + 1 + 2) / 3 = 1.
    assert mean_negative_log_pass_rate([1.0, math.exp(-1), math.exp(-2)]) == pytest.approx(1.0)
    compute = np.geomspace(1e2, 1e6, 5)
    metric = 3.0 * compute**-0.25  # alpha = 3, k = 0.25
    fit = fit_capability_law(compute, metric)
    assert (fit.alpha, fit.k, fit.c) == pytest.approx((3.0, 0.25, 0.0), rel=1e-10)
    assert not fit.irreducible


def test_relative_error_golden_value():
    assert relative_error(2.06, 2.0) == pytest.approx(0.03)
    assert relative_error(1.94, 2.0) == pytest.approx(0.03)


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_covers_the_truth_at_about_its_nominal_rate():
    # Pure power law (closed-form fits: cheap), 10 runs with 2 % noise, prediction at 3x the
    # largest run; a 90 % percentile interval from 10 points covers the truth roughly 80-95 % of
    # the time (percentile intervals from small samples are a little narrow).
    rng = np.random.default_rng(0)
    compute = np.geomspace(1e8, 1e12, 10)
    target = 3e12
    truth = law(target, 10.0, -0.1, 0.0)
    trials, covered = 150, 0
    for _ in range(trials):
        loss = law(compute, 10.0, -0.1, 0.0) * np.exp(rng.normal(0, 0.02, compute.size))
        interval = bootstrap_prediction(compute, loss, target, irreducible=False, n_resamples=150, seed=rng)
        covered += interval.contains(truth)
    assert 0.75 <= covered / trials <= 0.97


def test_bootstrap_interval_invariants_and_repeatability():
    rng = np.random.default_rng(1)
    compute = np.geomspace(1e8, 1e12, 7)
    loss = law(compute, 30.0, -0.12, 1.3) * np.exp(rng.normal(0, 0.005, 7))
    narrow = bootstrap_prediction(compute, loss, 1e13, n_resamples=100, level=0.5, seed=4)
    wide = bootstrap_prediction(compute, loss, 1e13, n_resamples=100, level=0.98, seed=4)
    assert isinstance(narrow, BootstrapInterval)
    assert narrow.samples.shape == (100,)
    assert wide.low <= narrow.low <= narrow.high <= wide.high  # same resamples, wider level
    assert narrow.estimate == fit_scaling_law(compute, loss).predict(1e13)
    again = bootstrap_prediction(compute, loss, 1e13, n_resamples=100, level=0.5, seed=4)
    assert np.array_equal(again.samples, narrow.samples)
    assert again.to_dict()["resamples"] == 100
    assert narrow.contains(narrow.low) and not narrow.contains(narrow.high + 1.0)


# ----------------------------------------------------------------------------- FLOPs


def test_training_flops_golden_values():
    assert training_flops(1e6, 2e7) == 1.2e14  # 6 N D
    # Chinchilla (70B parameters, 1.4T tokens): about 5.9e23 FLOPs (its Table 3 row: 5.76e23 at 67B)
    assert training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)


def test_llama_flops_golden_value_by_hand():
    cfg = LlamaConfig(vocab_size=10, hidden_size=8, intermediate_size=16, num_layers=1, num_heads=2,
                      num_kv_heads=1, max_seq_len=4)  # fmt: skip
    # weights in products: q 8x8, o 8x8, k 8x4, v 8x4, gate/up/down 3 x 8x16, head 8x10 = 656
    # forward: 2 * 4 tokens * 656 + 4 * 1 layer * 1 * 4^2 * 8 = 5248 + 512
    assert llama_forward_flops(cfg, 1, 4) == 5760
    assert llama_training_flops(cfg, 1, 4) == 3 * 5760
    assert llama_training_flops(cfg, 3, 4, steps=5) == 15 * 3 * 5760


@pytest.mark.parametrize(
    "kv_heads, tied, position",
    [(4, False, "rope"), (2, True, "rope"), (1, False, "learned"), (2, True, "learned")],
)
def test_non_embedding_parameters_match_the_built_model(kv_heads, tied, position):
    cfg = LlamaConfig(vocab_size=37, hidden_size=32, intermediate_size=88, num_layers=3, num_heads=4,
                      num_kv_heads=kv_heads, max_seq_len=24, tie_embeddings=tied, position=position)  # fmt: skip
    assert llama_non_embedding_parameters(cfg) == Llama(cfg).num_parameters(exclude_embeddings=True)
    # golden: 3 blocks of q, o (32x32), k, v (32x16 each: 2 kv heads of 8), 3 x 32x88, two gains; the final gain (the tied head is the embedding)
    if (kv_heads, tied) == (2, True):
        assert llama_non_embedding_parameters(cfg) == 3 * (2 * 1024 + 2 * 32 * 16 + 3 * 32 * 88 + 64) + 32


def _explicit_attention(
    q, k, v, *, causal, key_padding_mask=None, segment_ids=None, dropout_p=0.0, scale=None
):
    """softmax(Q K^T / sqrt(d)) V with plain matmuls, so that torch's FLOP counter sees them."""
    repeat = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    t, s = scores.shape[-2:]
    mask = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
    return F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


@pytest.mark.parity
@pytest.mark.parametrize("kv_heads, tied", [(4, False), (2, True)])
def test_llama_flops_equal_torch_flop_counter(monkeypatch, kv_heads, tied):
    # Reference: torch.utils.flop_counter on our Llama, forward and forward + backward, with the
    # attention written as matmuls (the CPU SDPA kernel is not counted by the reference).
    monkeypatch.setattr(llama_module, "attention", _explicit_attention)
    cfg = LlamaConfig(vocab_size=37, hidden_size=32, intermediate_size=88, num_layers=3, num_heads=4,
                      num_kv_heads=kv_heads, max_seq_len=24, tie_embeddings=tied)  # fmt: skip
    torch.manual_seed(0)
    model = Llama(cfg)
    x = torch.randint(0, 37, (3, 24))
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == llama_forward_flops(cfg, 3, 24)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
    assert counter.get_total_flops() == llama_training_flops(cfg, 3, 24)


@pytest.mark.parity
def test_pure_power_law_equals_numpy_polyfit_in_log_space():
    rng = np.random.default_rng(5)
    compute = np.geomspace(1e5, 1e10, 9)
    loss = law(compute, 7.0, -0.2, 0.0) * np.exp(rng.normal(0, 0.05, 9))
    b, log_a = np.polyfit(np.log(compute), np.log(loss), 1)
    fit = fit_scaling_law(compute, loss, irreducible=False)
    assert fit.b == pytest.approx(b, rel=1e-10)
    assert fit.a == pytest.approx(math.exp(log_a), rel=1e-9)


# ----------------------------------------------------------------------------- bad input


def test_too_few_runs_are_rejected():
    with pytest.raises(ValueError, match="at least 4 distinct values.*got 3"):
        fit_scaling_law([1.0, 10.0, 100.0], [3.0, 2.0, 1.5])
    with pytest.raises(ValueError, match="at least 3 distinct values.*got 2"):
        fit_scaling_law([1.0, 10.0], [3.0, 2.0], irreducible=False)
    with pytest.raises(ValueError, match="at least 4 distinct values.*got 2 \\(5 runs\\)"):
        fit_scaling_law([1.0, 1.0, 1.0, 10.0, 10.0], [3.0, 3.0, 3.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="at least 3 distinct values"):
        fit_capability_law([1.0, 10.0], [3.0, 2.0])


@pytest.mark.parametrize(
    "bad", [[0.0, 1.0, 2.0, 3.0], [-1.0, 1.0, 2.0, 3.0], [1.0, math.inf, 2.0, 3.0], [1.0, math.nan, 2.0, 3.0]]
)
def test_non_positive_or_non_finite_compute_is_rejected(bad):
    with pytest.raises(ValueError, match="compute must be positive and finite"):
        fit_scaling_law(bad, [4.0, 3.0, 2.0, 1.5])


def test_bad_losses_are_rejected():
    with pytest.raises(ValueError, match=r"loss must be finite \(no NaN or inf\), got \[3.0, nan"):
        fit_scaling_law([1.0, 2.0, 3.0, 4.0], [3.0, math.nan, 2.0, 1.0])
    with pytest.raises(ValueError, match="loss must be positive"):
        fit_scaling_law([1.0, 2.0, 3.0, 4.0], [3.0, 0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="compute and loss must have the same length, got 4 and 3"):
        fit_scaling_law([1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="loss must be 1-D, got shape \\(2, 2\\)"):
        fit_scaling_law([1.0, 2.0, 3.0, 4.0], [[3.0, 2.0], [1.0, 0.5]])
    with pytest.raises(TypeError, match="loss must be a 1-D sequence of numbers, got str"):
        fit_scaling_law([1.0, 2.0, 3.0, 4.0], "abcd")
    with pytest.raises(TypeError, match="irreducible must be a bool, got str"):
        fit_scaling_law([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], irreducible="yes")
    with pytest.raises(ValueError, match="metric must be finite"):
        fit_capability_law([1.0, 2.0, 3.0], [3.0, math.inf, 1.0])


def test_bad_pass_rates_predictions_and_errors_are_rejected():
    with pytest.raises(ValueError, match=r"pass_rates must lie in \(0, 1\], got min 0.0"):
        mean_negative_log_pass_rate([0.0, 0.5])
    with pytest.raises(ValueError, match=r"pass_rates must lie in \(0, 1\].*max 1.5"):
        mean_negative_log_pass_rate([0.5, 1.5])
    with pytest.raises(ValueError, match="pass_rates must hold at least one problem"):
        mean_negative_log_pass_rate([])
    fit = fit_scaling_law([1.0, 10.0, 100.0], [3.0, 2.0, 1.5], irreducible=False)
    with pytest.raises(ValueError, match="compute must be positive and finite, got -1.0"):
        fit.predict(-1.0)
    with pytest.raises(ValueError, match="actual must be finite and non-zero, got 0.0"):
        relative_error(1.0, 0.0)


def test_bad_bootstrap_arguments_are_rejected():
    compute, loss = [1.0, 10.0, 100.0, 1000.0, 1e4], [3.0, 2.5, 2.2, 2.0, 1.9]
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        bootstrap_prediction(compute, loss, 1e5, level=1.5)
    with pytest.raises(ValueError, match="n_resamples must be >= 1, got 0"):
        bootstrap_prediction(compute, loss, 1e5, n_resamples=0)
    with pytest.raises(ValueError, match="target_compute must be finite and > 0, got -5"):
        bootstrap_prediction(compute, loss, -5)
    with pytest.raises(TypeError, match="seed must be an int or a numpy Generator, got str"):
        bootstrap_prediction(compute, loss, 1e5, seed="0")


def test_bad_flop_arguments_are_rejected():
    cfg = LlamaConfig(
        vocab_size=10, hidden_size=8, intermediate_size=16, num_layers=1, num_heads=2, max_seq_len=4
    )
    with pytest.raises(ValueError, match="parameters must be finite and > 0, got 0"):
        training_flops(0, 10)
    with pytest.raises(TypeError, match="tokens must be a number, got str"):
        training_flops(10, "10")
    with pytest.raises(TypeError, match="cfg must be a LlamaConfig, got dict"):
        llama_forward_flops({"hidden_size": 8}, 1, 4)
    with pytest.raises(TypeError, match="cfg must be a LlamaConfig, got NoneType"):
        llama_non_embedding_parameters(None)
    with pytest.raises(ValueError, match="seq_len must be <= cfg.max_seq_len=4, got 8"):
        llama_forward_flops(cfg, 1, 8)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        llama_forward_flops(cfg, 0, 4)
    with pytest.raises(TypeError, match="steps must be an int, got float"):
        llama_training_flops(cfg, 1, 4, steps=2.0)
