"""The selective scan: the chunked and Triton paths against the step-by-step reference, golden values,
invariants, recurrent steps, and bad input."""

import math
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.language.selective_scan import (
    compile_available,
    selective_scan,
    selective_scan_chunked,
    selective_scan_compiled,
    selective_scan_reference,
    selective_state_update,
    triton_available,
)

pytestmark = pytest.mark.paper("mamba")


def make_inputs(batch=2, length=13, channels=5, state=4, dtype=torch.float64, seed=0, gate=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, channels, generator=g, dtype=dtype)
    delta = 0.5 * torch.randn(batch, length, channels, generator=g, dtype=dtype)
    A = -(torch.rand(channels, state, generator=g, dtype=dtype) * 3 + 0.1)
    B = torch.randn(batch, length, state, generator=g, dtype=dtype)
    C = torch.randn(batch, length, state, generator=g, dtype=dtype)
    D = torch.randn(channels, generator=g, dtype=dtype)
    z = torch.randn(batch, length, channels, generator=g, dtype=dtype) if gate else None
    bias = 0.3 * torch.randn(channels, generator=g, dtype=dtype)
    return dict(x=x, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=bias, delta_softplus=True)


def test_golden_values_of_a_scalar_recurrence():
    # One channel, one state: h_t = exp(Δ a) h_{t-1} + Δ b x_t, y_t = c h_t + d x_t, by hand.
    x = torch.tensor([[[1.0], [2.0], [0.0]]], dtype=torch.float64)
    delta = torch.full_like(x, 0.5)
    A = torch.tensor([[-2.0]], dtype=torch.float64)
    B = torch.full((1, 3, 1), 3.0, dtype=torch.float64)
    C = torch.full((1, 3, 1), 0.5, dtype=torch.float64)
    D = torch.tensor([0.25], dtype=torch.float64)
    decay = math.exp(-1.0)
    h1 = 0.5 * 3 * 1
    h2 = decay * h1 + 0.5 * 3 * 2
    h3 = decay * h2
    expected = torch.tensor([[[0.5 * h1 + 0.25], [0.5 * h2 + 0.5], [0.5 * h3]]], dtype=torch.float64)
    for scan in (selective_scan_reference, selective_scan_chunked):
        y, last = scan(x, delta, A, B, C, D, return_final_state=True)
        torch.testing.assert_close(y, expected)
        assert last.item() == pytest.approx(h3)


@pytest.mark.parametrize("chunk", [1, 3, 4, 13, 40])
def test_chunked_equals_reference_forward_and_backward(chunk):
    inputs = make_inputs()
    leaves = {k: v.clone().requires_grad_() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    y_ref, h_ref = selective_scan_reference(**leaves, return_final_state=True)
    grad = torch.randn_like(y_ref)
    ref_grads = torch.autograd.grad(
        (y_ref * grad).sum() + h_ref.sum(), [leaves[k] for k in "x delta A B C D z".split()]
    )
    y, h = selective_scan_chunked(**leaves, return_final_state=True, chunk_size=chunk)
    grads = torch.autograd.grad((y * grad).sum() + h.sum(), [leaves[k] for k in "x delta A B C D z".split()])
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(grads, ref_grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


needs_compiler = pytest.mark.skipif(not compile_available(), reason="torch.compile needs a C++ compiler")


def _compiled_case():
    # Length 13 with chunks of 4: three full chunks and one padded with Δ = 0 steps; an initial state.
    inputs = make_inputs(batch=2, length=13, channels=3, state=4)
    start = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return inputs, start


@needs_compiler
def test_compiled_equals_reference_forward_in_float64():
    # One compile (no grad, float64: about 5 s); the backward's compile is in the slow test below.
    inputs, start = _compiled_case()
    with torch.no_grad():
        y_ref, h_ref = selective_scan_reference(**inputs, initial_state=start, return_final_state=True)
        y, h = selective_scan_compiled(**inputs, initial_state=start, return_final_state=True, chunk_size=4)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)


@needs_compiler
@pytest.mark.slow  # compiling the forward and backward graphs takes ~20 s on 2 shared cores
def test_compiled_equals_reference_forward_and_backward():
    inputs, start = _compiled_case()
    leaves = {k: v.clone().requires_grad_() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    names = "x delta A B C D z delta_bias".split()
    y_ref, h_ref = selective_scan_reference(**leaves, initial_state=start, return_final_state=True)
    grad = torch.randn_like(y_ref)
    ref_grads = torch.autograd.grad((y_ref * grad).sum() + h_ref.sum(), [leaves[k] for k in names])
    y, h = selective_scan_compiled(**leaves, initial_state=start, return_final_state=True, chunk_size=4)
    grads = torch.autograd.grad((y * grad).sum() + h.sum(), [leaves[k] for k in names])
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
    for name, ours, theirs in zip(names, grads, ref_grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10, msg=name)
    with torch.no_grad():  # float32 through the dispatcher, without a gate (another compiled graph)
        small = {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        small["z"] = None
        compiled = selective_scan(**small, method="compiled")
        torch.testing.assert_close(compiled, selective_scan_reference(**small), rtol=1e-5, atol=1e-5)


def test_auto_takes_the_compiled_path_only_on_long_cpu_sequences(monkeypatch):
    from aicanon.language import selective_scan as module

    calls = []
    monkeypatch.setattr(module, "selective_scan_compiled", lambda *a, **k: calls.append("compiled"))
    monkeypatch.setattr(module, "compile_available", lambda: True)
    inputs = make_inputs(batch=1, length=module.COMPILE_MIN_LENGTH, channels=1, state=1)
    module.selective_scan(**inputs)
    assert calls == ["compiled"]
    short = make_inputs(batch=1, length=module.COMPILE_MIN_LENGTH - 1, channels=1, state=1)
    module.selective_scan(**short)
    assert calls == ["compiled"]
    monkeypatch.setattr(module, "compile_available", lambda: False)  # no C++ compiler: the step loop
    torch.testing.assert_close(module.selective_scan(**inputs), selective_scan_reference(**inputs))


def test_chunked_scan_passes_gradcheck():
    inputs = make_inputs(batch=1, length=6, channels=2, state=3)
    names = ["x", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    leaves = [inputs[k].clone().requires_grad_() for k in names]

    def fn(*tensors):
        return selective_scan_chunked(*tensors, delta_softplus=True, chunk_size=4)

    assert torch.autograd.gradcheck(fn, leaves)


@settings(max_examples=20, deadline=None)
@given(
    length=st.integers(1, 30),
    chunk=st.integers(1, 12),
    channels=st.integers(1, 4),
    state=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
def test_chunked_equals_reference_on_random_shapes(length, chunk, channels, state, seed):
    inputs = make_inputs(batch=2, length=length, channels=channels, state=state, seed=seed)
    start = torch.randn(
        2, channels, state, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    y_ref, h_ref = selective_scan_reference(**inputs, initial_state=start, return_final_state=True)
    y, h = selective_scan_chunked(**inputs, initial_state=start, return_final_state=True, chunk_size=chunk)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-10)


def test_a_long_strongly_decaying_sequence_stays_finite():
    # Δ A summed over a chunk far below -88 would overflow exp(-S) in a pure cumsum formulation.
    inputs = make_inputs(batch=1, length=256, channels=3, state=4, dtype=torch.float32)
    inputs["delta"] = torch.full_like(inputs["delta"], 30.0)
    y = selective_scan_chunked(**inputs, chunk_size=64)
    y_ref = selective_scan_reference(**inputs)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)


def test_splitting_a_sequence_with_the_carried_state_changes_nothing():
    inputs = make_inputs(length=20)
    y_full, h_full = selective_scan_chunked(**inputs, return_final_state=True)
    first = {k: (v[:, :8] if isinstance(v, torch.Tensor) and v.dim() == 3 else v) for k, v in inputs.items()}
    second = {k: (v[:, 8:] if isinstance(v, torch.Tensor) and v.dim() == 3 else v) for k, v in inputs.items()}
    y1, h1 = selective_scan_chunked(**first, return_final_state=True)
    y2, h2 = selective_scan_chunked(**second, initial_state=h1, return_final_state=True)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_full)
    torch.testing.assert_close(h2, h_full)


def test_recurrent_steps_equal_the_scan():
    inputs = make_inputs(length=9)
    y_ref = selective_scan_reference(**inputs)
    state = torch.zeros(2, 5, 4, dtype=torch.float64)
    outputs = []
    for t in range(9):
        y, state = selective_state_update(
            state,
            inputs["x"][:, t],
            inputs["delta"][:, t],
            inputs["A"],
            inputs["B"][:, t],
            inputs["C"][:, t],
            inputs["D"],
            inputs["z"][:, t],
            delta_bias=inputs["delta_bias"],
            delta_softplus=True,
        )
        outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs, 1), y_ref)


def test_causality_a_later_input_does_not_change_earlier_outputs():
    inputs = make_inputs(length=12)
    y = selective_scan(**inputs)
    changed = dict(inputs)
    changed["x"] = inputs["x"].clone()
    changed["x"][:, 7:] += 5.0
    y2 = selective_scan(**changed)
    torch.testing.assert_close(y2[:, :7], y[:, :7])
    assert not torch.allclose(y2[:, 7:], y[:, 7:])


def test_half_precision_inputs_are_scanned_in_float32():
    inputs = make_inputs(dtype=torch.float32, length=10)
    half = {k: v.bfloat16() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    y = selective_scan(**half)
    assert y.dtype == torch.bfloat16
    reference = selective_scan_reference(
        **{k: v.float() if isinstance(v, torch.Tensor) else v for k, v in half.items()}
    )
    torch.testing.assert_close(y.float(), reference, rtol=2e-2, atol=2e-2)


def test_dispatch_on_cpu_and_triton_rejects_a_state():
    inputs = make_inputs(length=10)
    torch.testing.assert_close(selective_scan(**inputs), selective_scan_reference(**inputs), rtol=0, atol=0)
    torch.testing.assert_close(selective_scan(**inputs, method="chunked"), selective_scan_chunked(**inputs))
    with pytest.raises(ValueError, match="method='triton' takes no initial_state"):
        selective_scan(**inputs, method="triton", return_final_state=True)


def test_bad_inputs_are_rejected_with_clear_messages():
    inputs = make_inputs()
    with pytest.raises(ValueError, match="x must be a 3-D tensor"):
        selective_scan(**{**inputs, "x": inputs["x"][0]})
    with pytest.raises(ValueError, match=r"delta must be a tensor of shape \[2, 13, 5\]"):
        selective_scan(**{**inputs, "delta": inputs["delta"][:, :3]})
    with pytest.raises(ValueError, match=r"A must be \[channels=5, state\]"):
        selective_scan(**{**inputs, "A": inputs["A"][:2]})
    with pytest.raises(ValueError, match=r"B must be a tensor of shape \[2, 13, 4\]"):
        selective_scan(**{**inputs, "B": inputs["B"][..., :2]})
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        selective_scan(**{**inputs, "x": inputs["x"].long()})
    with pytest.raises(ValueError, match="method must be one of"):
        selective_scan(**inputs, method="fast")
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        selective_scan_chunked(**inputs, chunk_size=0)
    with pytest.raises(ValueError, match=r"initial_state must be a tensor of shape \[2, 5, 4\]"):
        selective_scan(**inputs, initial_state=torch.zeros(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"B must be a tensor of shape \[2, 4\]"):
        selective_state_update(
            torch.zeros(2, 5, 4),
            torch.zeros(2, 5),
            torch.zeros(2, 5),
            torch.zeros(5, 4),
            torch.zeros(2, 3),
            torch.zeros(2, 4),
        )


# The Triton kernel under Triton's interpreter (TRITON_INTERPRET=1 runs kernels on CPU tensors with
# numpy). The variable must be set before triton is imported, so the check runs in a fresh process.
_TRITON_CHECK = r"""
import torch
from aicanon.language.selective_scan import selective_scan_reference, selective_scan_triton
torch.manual_seed(0)
for batch, length, channels, state, chunk, gate in [(2, 11, 6, 5, 4, True), (1, 7, 3, 16, 8, False)]:
    x = torch.randn(batch, length, channels)
    delta = 0.5 * torch.randn(batch, length, channels)
    A = -(torch.rand(channels, state) * 3 + 0.1)
    B, C = torch.randn(batch, length, state), torch.randn(batch, length, state)
    D, bias = torch.randn(channels), 0.3 * torch.randn(channels)
    z = torch.randn(batch, length, channels) if gate else None
    leaves = [t.clone().requires_grad_() if t is not None else None for t in (x, delta, A, B, C, D, z, bias)]
    refs = [t.clone().requires_grad_() if t is not None else None for t in (x, delta, A, B, C, D, z, bias)]
    y = selective_scan_triton(*leaves, delta_softplus=True, chunk_size=chunk)
    y_ref = selective_scan_reference(*refs, delta_softplus=True)
    grad = torch.randn_like(y)
    (y * grad).sum().backward()
    (y_ref * grad).sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    for ours, theirs in zip(leaves, refs):
        if ours is not None:
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-4)
print("TRITON-INTERPRETER-OK")
"""


@pytest.mark.skipif(not triton_available(), reason="triton is not installed")
def test_triton_kernel_matches_the_reference_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _TRITON_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRITON-INTERPRETER-OK" in result.stdout


def test_triton_refuses_cpu_tensors_without_the_interpreter():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter is on in this process")
    if not triton_available():
        pytest.skip("triton is not installed")
    from aicanon.language.selective_scan import selective_scan_triton

    inputs = make_inputs(dtype=torch.float32)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        selective_scan_triton(**inputs)
