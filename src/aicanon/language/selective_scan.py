"""The selective scan of Mamba (Gu & Dao 2023, Section 3, Algorithm 2): three implementations of one function.

For every channel ``d`` of the input ``x`` (``[batch, length, channels]``) and every state dimension
``n`` the selective SSM runs the discretised recurrence (Eq. 2a, 2b) with input-dependent step
``Δ``, input and output matrices ``B``, ``C`` (Section 3.2, Algorithm 2)::

    Δ_t     = softplus(delta_t + delta_bias)             (s_Δ and τ_Δ of Algorithm 2; optional)
    Ā_t     = exp(Δ_t A)                                 (zero-order hold, Eq. 4)
    B̄_t x_t ≈ Δ_t B_t x_t                                (the Euler simplification of Section 3.5.2
                                                          used by the paper's kernel, not the exact ZOH
                                                          (Δ A)^-1 (exp(Δ A) - I) Δ B)
    h_t     = Ā_t h_{t-1} + Δ_t B_t x_t                   (Eq. 2a)
    y_t     = C_t h_t + D x_t                             (Eq. 2b, with the skip D of Figure 3)
    out_t   = y_t · silu(z_t)                             (the gate of the Mamba block, Figure 3; optional)

``A`` is ``[channels, state]`` (diagonal per channel), ``B`` and ``C`` are ``[batch, length, state]``
(shared by the channels, as in the paper's S6: ``s_B(x) = Linear_N(x)``), ``D`` is ``[channels]``.

Implementations (one signature, :func:`selective_scan` picks one by device: Triton on CUDA; on CPU the
compiled step loop from length 1,024 on and the step loop below, where both measured faster than the
chunked scan):

* :func:`selective_scan_reference`: the recurrence step by step, a Python loop over time. The
  definition, used by the tests.
* :func:`selective_scan_chunked`: for CPU. The sequence is cut into chunks of ``T`` steps; (1) in all
  chunks at once the recurrence runs from a zero state (``T`` vectorised steps); (2) the chunks' last
  states are carried across chunks (``L / T`` small steps); (3) every state gets its carried-in state
  times ``exp(cumsum(Δ A))`` over the chunk so far (cumulative sums of the log-decays, always
  ``<= 0``, so the factor never overflows). ``T ≈ sqrt(L)`` makes ``2 sqrt(L)`` Python steps instead
  of ``L``; the arithmetic is the same as the loop's. (The pure cumsum formulation
  ``h_t = exp(S_t) Σ_s exp(-S_s) u_s`` would need ``exp(-S_s)``, which overflows float32 once the
  log-decay of a chunk passes 88; the carried-state form does not.)
* :func:`selective_scan_compiled`: for CPU, long sequences. The step loop's own arithmetic (Δ's
  softplus, the recurrence, ``C h``, the skip and the gate), ``T = 32`` steps per call of a
  ``torch.compile``-d function (Inductor writes the ``T`` steps as one vectorised C++ loop over the
  state, then the ``T`` contractions with ``C``: a chunk's states, 1 MB at the benchmark's shape, stay
  in cache), the state carried from call to call. The per-step cost of the Python loop (a few tensor
  operations of ~10 us each, ``L`` times) and the ``[batch, length, channels, state]`` tensors of the
  other paths both disappear; what remains is ~0.4 ms per call (32 calls at ``L = 1024``) and the
  ``exp`` of every state element. Compiling costs seconds per new shape (forward) and tens of seconds
  (backward); Inductor caches the result on disk across processes.
* :func:`selective_scan_triton`: for CUDA, a Triton kernel with the discretisation, the scan, the skip
  and the gate fused (Section 3.3.2): each program holds the state of a block of channels in
  registers and walks the sequence; the ``[batch, length, channels, state]`` states are never written
  out. Backward recomputes them (Section 3.3.2, "recomputation"): the forward pass stores only one
  state per chunk of ``CHUNK`` steps, and the backward kernel walks the chunks in reverse, recomputing
  each chunk's states from its stored first state into a small scratch buffer, then running the
  adjoint recurrence through them. Triton is imported only when this path runs; with
  ``TRITON_INTERPRET=1`` the same kernels run on CPU tensors (the tests use it).

:func:`selective_state_update` is one step of the recurrence, for recurrent inference with constant
state (Section 3.4's "recurrent mode").

Departures from the paper: ``B̄ = Δ B`` (as the paper's own kernel and transformers do) rather than the
exact ZOH formula for ``B``; everything runs in float32 (inputs of other dtypes are cast, outputs
keep the input's dtype); the Triton kernel stores one state per chunk for the backward pass (the
CUDA kernel of the paper keeps them in SRAM), and reduces the gradients of ``B``, ``C`` and ``A``
across channel blocks and the batch in PyTorch afterwards.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checks import check_choice, check_int, check_tensor

__all__ = [
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_compiled",
    "selective_scan_reference",
    "selective_scan_triton",
    "selective_state_update",
    "triton_available",
    "compile_available",
]


# ---------------------------------------------------------------------------------------------------
# Input checks and the shared pieces of the discretisation
# ---------------------------------------------------------------------------------------------------


def _check_inputs(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    initial_state: Tensor | None = None,
) -> None:
    check_tensor("x", x, dim=3, floating=True, note="[batch, length, channels]")
    batch, length, channels = x.shape
    check_tensor("delta", delta, shape=(batch, length, channels), floating=True, note="like x")
    check_tensor("A", A, dim=2, floating=True, note="[channels, state]")
    if A.size(0) != channels:
        raise ValueError(f"A must be [channels={channels}, state], got {tuple(A.shape)}")
    state = A.size(1)
    check_tensor("B", B, shape=(batch, length, state), floating=True, note="[batch, length, state]")
    check_tensor("C", C, shape=(batch, length, state), floating=True, note="[batch, length, state]")
    if D is not None:
        check_tensor("D", D, shape=(channels,), floating=True)
    if z is not None:
        check_tensor("z", z, shape=(batch, length, channels), floating=True, note="the gate, like x")
    if delta_bias is not None:
        check_tensor("delta_bias", delta_bias, shape=(channels,), floating=True)
    if initial_state is not None:
        check_tensor("initial_state", initial_state, shape=(batch, channels, state), floating=True)


def _wide(t: Tensor) -> Tensor:
    """At least float32: the recurrence is never run in half precision (float64 stays float64)."""
    return t if t.dtype == torch.float64 else t.float()


def _step_sizes(delta: Tensor, delta_bias: Tensor | None, delta_softplus: bool) -> Tensor:
    """Δ in at least float32: ``softplus(delta + delta_bias)`` (Algorithm 2's τ_Δ(Parameter + s_Δ(x)))."""
    delta = _wide(delta)
    if delta_bias is not None:
        delta = delta + _wide(delta_bias)
    return F.softplus(delta) if delta_softplus else delta


def _finish(y: Tensor, x: Tensor, D: Tensor | None, z: Tensor | None) -> Tensor:
    """Add the skip ``D x`` and apply the gate ``silu(z)``; back to the input's dtype."""
    if D is not None:
        y = y + _wide(x) * _wide(D)
    if z is not None:
        y = y * F.silu(_wide(z))
    return y.to(x.dtype)


# ---------------------------------------------------------------------------------------------------
# Reference: the recurrence step by step
# ---------------------------------------------------------------------------------------------------


def selective_scan_reference(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan as a loop over time (Eq. 2a, 2b): the definition the fast paths are tested on.

    Shapes: ``x``, ``delta``, ``z``: ``[batch, length, channels]``; ``A``: ``[channels, state]``;
    ``B``, ``C``: ``[batch, length, state]``; ``D``, ``delta_bias``: ``[channels]``;
    ``initial_state``: ``[batch, channels, state]`` (zeros when None). Returns ``y`` (``[batch, length,
    channels]``, the dtype of ``x``) and, with ``return_final_state``, the last state (float32).
    """
    _check_inputs(x, delta, A, B, C, D, z, delta_bias, initial_state)
    batch, length, channels = x.shape
    step = _step_sizes(delta, delta_bias, delta_softplus)
    A32, B32, C32, x32 = _wide(A), _wide(B), _wide(C), _wide(x)
    h = _wide(initial_state) if initial_state is not None else x32.new_zeros(batch, channels, A.size(1))
    outputs = []
    for step_t, x_t, B_t, C_t in zip(step.unbind(1), x32.unbind(1), B32.unbind(1), C32.unbind(1)):
        decay = torch.exp(step_t[:, :, None] * A32)  # Ā_t, [batch, channels, state]
        h = decay * h + (step_t * x_t)[:, :, None] * B_t[:, None, :]
        outputs.append(torch.einsum("bdn,bn->bd", h, C_t))
    y = torch.stack(outputs, dim=1) if outputs else x32.new_zeros(batch, 0, channels)
    y = _finish(y, x, D, z)
    return (y, h) if return_final_state else y


# ---------------------------------------------------------------------------------------------------
# CPU: chunks scanned in parallel, a carried state across them
# ---------------------------------------------------------------------------------------------------


def _default_chunk(length: int) -> int:
    # T + L/T Python steps are fewest at T = sqrt(L).
    return max(1, math.isqrt(max(length, 1)))


def selective_scan_chunked(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan in chunks of ``chunk_size`` steps (default ``isqrt(length)``); same
    arguments and result as :func:`selective_scan_reference`. Differentiable by autograd.

    With ``L`` steps cut into ``K`` chunks of ``T`` (the last padded with ``Δ = 0``, which leaves the
    state unchanged), chunk ``k``'s states are ``h_t = h^local_t + exp(S_t) h_{k-1}`` where
    ``h^local`` is the recurrence started from zero inside the chunk, ``S_t`` the cumulative sum of
    ``Δ A`` within the chunk up to ``t``, and ``h_{k-1}`` the state carried out of the previous chunk.
    """
    _check_inputs(x, delta, A, B, C, D, z, delta_bias, initial_state)
    batch, length, channels = x.shape
    state = A.size(1)
    T = _default_chunk(length) if chunk_size is None else check_int("chunk_size", chunk_size, 1)
    T = min(T, max(length, 1))
    K = -(-length // T)
    pad = K * T - length
    step = _step_sizes(delta, delta_bias, delta_softplus)
    x32, B32, C32 = _wide(x), _wide(B), _wide(C)
    if pad:
        # Δ = 0 on padded steps: Ā = 1 and Δ B x = 0, so the state passes through unchanged.
        step = F.pad(step, (0, 0, 0, pad))
        x32 = F.pad(x32, (0, 0, 0, pad))
        B32 = F.pad(B32, (0, 0, 0, pad))
        C32 = F.pad(C32, (0, 0, 0, pad))
    log_decay = (step[..., None] * _wide(A)).view(batch, K, T, channels, state)  # Δ A <= 0
    inputs = ((step * x32)[..., None] * B32[:, :, None, :]).view(batch, K, T, channels, state)
    decay = torch.exp(log_decay)

    # (1) Inside every chunk at once, from a zero state: T vectorised steps. (unbind, not indexing:
    # the backward of one unbind is one stack, that of T indexings T full-size zero tensors.)
    decays, drives = decay.unbind(2), inputs.unbind(2)
    h = drives[0]
    local = [h]
    for t in range(1, T):
        h = torch.addcmul(drives[t], decays[t], h)  # one op per step: Ā_t h + Δ_t B_t x_t
        local.append(h)
    local_states = torch.stack(local, dim=2)  # [batch, K, T, channels, state]

    # (2) Across chunks: the state entering chunk k. exp(S) over the whole chunk is its total decay.
    cumulative = torch.exp(torch.cumsum(log_decay, dim=2))  # exp(S_t) in (0, 1]
    carried = _wide(initial_state) if initial_state is not None else x32.new_zeros(batch, channels, state)
    entering = []
    for total, last in zip(cumulative[:, :, -1].unbind(1), h.unbind(1)):
        entering.append(carried)
        carried = total * carried + last
    carried_in = torch.stack(entering, dim=1)  # [batch, K, channels, state]

    # (3) Each state = its local part + the carried-in state decayed to it; y_t = C_t h_t.
    states = local_states + cumulative * carried_in[:, :, None]
    y = torch.einsum("bktdn,bktn->bktd", states, C32.view(batch, K, T, state))
    y = y.reshape(batch, K * T, channels)[:, :length]
    y = _finish(y, x, D, z)
    return (y, carried) if return_final_state else y


# ---------------------------------------------------------------------------------------------------
# CPU, long sequences: the step loop fused by torch.compile, a chunk of steps per compiled call
# ---------------------------------------------------------------------------------------------------

COMPILE_CHUNK = 32
"""Steps per call of the compiled chunk (:func:`selective_scan_compiled`): 32 measured fastest of 16, 32
and 64 (fewer steps: more calls of ~50-100 us overhead each; more: a longer compile, no faster)."""
COMPILE_MIN_LENGTH = 1024
"""From this length on, ``method="auto"`` on CPU takes the compiled path. Its compile (about 8 s per new
shape forward, 30-45 s with backward, on 2 shared cores) pays off only on long sequences or many calls:
the quick Mamba experiment (lengths up to 512, a few evaluation batches) stays on the step loop."""
_COMPILED: dict[str, object] = {}


def _chunk_recurrence(
    h: Tensor,
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> tuple[Tensor, Tensor]:
    """``T`` steps of the whole scan from the state ``h`` (``[batch, channels, state]``): ``x``,
    ``delta``, ``z`` ``[batch, T, channels]``, ``B``, ``C`` ``[batch, T, state]``, all of one float
    dtype. Returns the ``T`` outputs (skip and gate applied) and the last state. Compiled, the ``T``
    steps, Δ's softplus, the skip and the gate become a few C++ loops: the per-step states stay in
    cache and only ``[batch, T, channels]`` outputs are written."""
    step = _step_sizes(delta, delta_bias, delta_softplus)
    drive = step * x
    outputs = []
    for t in range(step.size(1)):
        h = torch.exp(step[:, t, :, None] * A) * h + drive[:, t, :, None] * B[:, t, None, :]
        outputs.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(outputs, dim=1)
    if D is not None:
        y = y + x * D
    if z is not None:
        y = y * F.silu(z)
    return y, h


def compile_available() -> bool:
    """True when ``torch.compile`` can generate CPU code here: dynamo supported and a C++ compiler found."""
    try:
        import shutil

        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return False
    except Exception:
        return False
    compiler = os.environ.get("CXX")
    return any(shutil.which(name) for name in ([compiler] if compiler else []) + ["g++", "c++", "clang++"])


def _compiled_chunk():
    if "chunk" not in _COMPILED:
        _COMPILED["chunk"] = torch.compile(_chunk_recurrence, dynamic=False)
    return _COMPILED["chunk"]


def selective_scan_compiled(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
    chunk_size: int = COMPILE_CHUNK,
) -> Tensor | tuple[Tensor, Tensor]:
    """The step loop of :func:`selective_scan_reference` fused by ``torch.compile`` (Inductor's C++
    code on CPU), ``chunk_size`` steps per compiled call and the state carried between calls; same
    arguments and result. Differentiable (the compiled backward). The arithmetic is the loop's, in the
    same order, so it matches the reference to rounding.

    The first call for a new shape, dtype or grad mode compiles (seconds); the length is padded to a
    multiple of ``chunk_size`` with ``Δ = 0`` steps (the state passes through them unchanged), so one
    compiled chunk serves every length.
    """
    _check_inputs(x, delta, A, B, C, D, z, delta_bias, initial_state)
    T = check_int("chunk_size", chunk_size, 1)
    batch, length, channels = x.shape
    wide = [_wide(t) if t is not None else None for t in (x, delta, A, B, C, D, z, delta_bias)]
    dtype = wide[0].dtype
    for t in wide[1:]:
        dtype = torch.promote_types(dtype, t.dtype) if t is not None else dtype
    xs, delta_s, A_s, B_s, C_s, D_s, z_s, bias_s = [t.to(dtype) if t is not None else None for t in wide]
    pad = -length % T
    if pad:
        # Padded steps have Δ = 0 (softplus(-inf) = 0): Ā = 1 and Δ B x = 0, the state passes through.
        xs, B_s, C_s = (F.pad(t, (0, 0, 0, pad)) for t in (xs, B_s, C_s))
        delta_s = F.pad(delta_s, (0, 0, 0, pad), value=-math.inf if delta_softplus else 0.0)
        z_s = F.pad(z_s, (0, 0, 0, pad)) if z_s is not None else None
    h = (
        _wide(initial_state).to(dtype)
        if initial_state is not None
        else xs.new_zeros(batch, channels, A.size(1))
    )
    chunk = _compiled_chunk()
    outputs = []
    for start in range(0, length + pad, T):
        part = slice(start, start + T)
        y_part, h = chunk(
            h,
            xs[:, part],
            delta_s[:, part],
            A_s,
            B_s[:, part],
            C_s[:, part],
            D_s,
            z_s[:, part] if z_s is not None else None,
            bias_s,
            bool(delta_softplus),
        )
        outputs.append(y_part)
    y = torch.cat(outputs, dim=1)[:, :length] if outputs else xs.new_zeros(batch, 0, channels)
    y = y.to(x.dtype)
    return (y, h) if return_final_state else y


# ---------------------------------------------------------------------------------------------------
# Recurrent inference: one step
# ---------------------------------------------------------------------------------------------------


def selective_state_update(
    state: Tensor,
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> tuple[Tensor, Tensor]:
    """One step of the recurrence (Section 3.4, recurrent mode): ``(y_t, h_t)`` from ``h_{t-1}``.

    ``state``: ``[batch, channels, state]``; ``x``, ``delta``, ``z``: ``[batch, channels]``;
    ``B``, ``C``: ``[batch, state]``. The state is not modified in place; the new one is returned
    (float32).
    """
    check_tensor("state", state, dim=3, floating=True, note="[batch, channels, state]")
    batch, channels, size = state.shape
    check_tensor("x", x, shape=(batch, channels), floating=True)
    check_tensor("delta", delta, shape=(batch, channels), floating=True)
    check_tensor("A", A, shape=(channels, size), floating=True)
    check_tensor("B", B, shape=(batch, size), floating=True)
    check_tensor("C", C, shape=(batch, size), floating=True)
    if z is not None:
        check_tensor("z", z, shape=(batch, channels), floating=True)
    step = _step_sizes(delta, delta_bias, delta_softplus)
    drive = (step * _wide(x))[..., None] * _wide(B)[:, None, :]
    new_state = torch.exp(step[..., None] * _wide(A)) * _wide(state) + drive
    y = torch.einsum("bdn,bn->bd", new_state, _wide(C))
    return _finish(y, x, D, z), new_state


# ---------------------------------------------------------------------------------------------------
# CUDA: the Triton kernel with recomputation in backward
# ---------------------------------------------------------------------------------------------------

_KERNELS: dict[str, object] = {}
TRITON_CHUNK = 64
"""Steps between the states the Triton forward pass stores for its backward pass."""


def triton_available() -> bool:
    """True when triton imports (it needs no GPU to import; running it needs CUDA or TRITON_INTERPRET=1)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # an old or broken triton install: the chunked path serves instead
        return False
    return True


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _kernels() -> dict[str, object]:
    """Compile (define) the Triton kernels on first use, so importing this module never needs triton."""
    if _KERNELS:
        return _KERNELS
    import triton
    import triton.language as tl

    # Triton resolves the names a kernel uses in its module's globals (not in this function's scope).
    globals()["tl"] = tl

    @triton.jit
    def scan_forward(
        x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr, checkpoint_ptr,
        length, channels, states, chunks,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        pid_b = tl.program_id(0)
        pid_d = tl.program_id(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        mask_d = offs_d < channels
        mask_n = offs_n < states
        mask_dn = mask_d[:, None] & mask_n[None, :]
        A = tl.load(A_ptr + offs_d[:, None] * states + offs_n[None, :], mask=mask_dn, other=0.0).to(
            tl.float32
        )
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        for c in range(0, chunks):
            # The state entering chunk c: all that backward needs to recompute the chunk.
            ck = (
                checkpoint_ptr
                + ((pid_b * chunks + c) * channels + offs_d[:, None]) * states
                + offs_n[None, :]
            )
            tl.store(ck, h, mask=mask_dn)
            for k in range(0, CHUNK):
                t = c * CHUNK + k
                valid = t < length
                row = pid_b * length + t
                m_d = mask_d & valid
                m_n = mask_n & valid
                x = tl.load(x_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                dt = tl.load(dt_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                if HAS_BIAS:
                    dt = dt + bias
                if SOFTPLUS:
                    dt = tl.where(dt > 20.0, dt, tl.log(1.0 + tl.exp(tl.minimum(dt, 20.0))))
                dt = tl.where(m_d, dt, 0.0)
                Bt = tl.load(B_ptr + row * states + offs_n, mask=m_n, other=0.0).to(tl.float32)
                Ct = tl.load(C_ptr + row * states + offs_n, mask=m_n, other=0.0).to(tl.float32)
                decay = tl.exp(dt[:, None] * A)
                h = decay * h + (dt * x)[:, None] * Bt[None, :]
                y = tl.sum(h * Ct[None, :], axis=1)
                if HAS_D:
                    y += Dv * x
                if HAS_Z:
                    zt = tl.load(z_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                    y = y * zt * tl.sigmoid(zt)
                tl.store(y_ptr + row * channels + offs_d, y, mask=m_d)

    @triton.jit
    def scan_backward(
        x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, checkpoint_ptr, grad_ptr, scratch_ptr,
        dx_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
        length, channels, states, chunks, channel_blocks,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        pid_b = tl.program_id(0)
        pid_d = tl.program_id(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        mask_d = offs_d < channels
        mask_n = offs_n < states
        mask_dn = mask_d[:, None] & mask_n[None, :]
        tile = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + offs_n[None, :]
        scratch = scratch_ptr + (pid_b * channel_blocks + pid_d) * CHUNK * BLOCK_D * BLOCK_N
        A = tl.load(A_ptr + offs_d[:, None] * states + offs_n[None, :], mask=mask_dn, other=0.0).to(
            tl.float32
        )
        Dv = tl.zeros([BLOCK_D], dtype=tl.float32)
        bias = tl.zeros([BLOCK_D], dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        dh = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
        dD_acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        dbias_acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        partial = pid_b * channel_blocks + pid_d  # row of this program's partial dB, dC
        for cc in range(0, chunks):
            c = chunks - 1 - cc
            ck = (
                checkpoint_ptr
                + ((pid_b * chunks + c) * channels + offs_d[:, None]) * states
                + offs_n[None, :]
            )
            h0 = tl.load(ck, mask=mask_dn, other=0.0)
            # Recompute the chunk's states (Section 3.3.2) into the scratch tile.
            h = h0
            for k in range(0, CHUNK):
                t = c * CHUNK + k
                valid = t < length
                row = pid_b * length + t
                m_d = mask_d & valid
                m_n = mask_n & valid
                x = tl.load(x_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                dt = tl.load(dt_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32) + bias
                if SOFTPLUS:
                    dt = tl.where(dt > 20.0, dt, tl.log(1.0 + tl.exp(tl.minimum(dt, 20.0))))
                dt = tl.where(m_d, dt, 0.0)
                Bt = tl.load(B_ptr + row * states + offs_n, mask=m_n, other=0.0).to(tl.float32)
                h = tl.exp(dt[:, None] * A) * h + (dt * x)[:, None] * Bt[None, :]
                tl.store(scratch + k * BLOCK_D * BLOCK_N + tile, h)
            tl.debug_barrier()
            # The adjoint recurrence through the chunk, last step first.
            for kk in range(0, CHUNK):
                k = CHUNK - 1 - kk
                t = c * CHUNK + k
                valid = t < length
                row = pid_b * length + t
                m_d = mask_d & valid
                m_n = mask_n & valid
                h_t = tl.load(scratch + k * BLOCK_D * BLOCK_N + tile)
                prev = tl.load(
                    scratch + (k - 1) * BLOCK_D * BLOCK_N + tile, mask=(tile >= 0) & (k > 0), other=0.0
                )
                h_prev = tl.where(k > 0, prev, h0)
                x = tl.load(x_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                raw = tl.load(dt_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32) + bias
                dt = raw
                if SOFTPLUS:
                    dt = tl.where(raw > 20.0, raw, tl.log(1.0 + tl.exp(tl.minimum(raw, 20.0))))
                dt = tl.where(m_d, dt, 0.0)
                Bt = tl.load(B_ptr + row * states + offs_n, mask=m_n, other=0.0).to(tl.float32)
                Ct = tl.load(C_ptr + row * states + offs_n, mask=m_n, other=0.0).to(tl.float32)
                g = tl.load(grad_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                decay = tl.exp(dt[:, None] * A)
                y = tl.sum(h_t * Ct[None, :], axis=1) + Dv * x
                if HAS_Z:
                    zt = tl.load(z_ptr + row * channels + offs_d, mask=m_d, other=0.0).to(tl.float32)
                    sig = tl.sigmoid(zt)
                    dz = g * y * sig * (1.0 + zt * (1.0 - sig))
                    tl.store(dz_ptr + row * channels + offs_d, dz, mask=m_d)
                    g = g * zt * sig
                dD_acc += g * x
                tl.store(
                    dC_ptr + (partial * length + t) * states + offs_n,
                    tl.sum(g[:, None] * h_t, axis=0),
                    mask=m_n,
                )
                dh = dh + g[:, None] * Ct[None, :]
                ddt = tl.sum(dh * (A * decay * h_prev + x[:, None] * Bt[None, :]), axis=1)
                dx = g * Dv + dt * tl.sum(dh * Bt[None, :], axis=1)
                tl.store(
                    dB_ptr + (partial * length + t) * states + offs_n,
                    tl.sum(dh * (dt * x)[:, None], axis=0),
                    mask=m_n,
                )
                dA_acc += dh * dt[:, None] * decay * h_prev
                if SOFTPLUS:
                    ddt = ddt * tl.sigmoid(raw)
                ddt = tl.where(m_d, ddt, 0.0)
                dbias_acc += ddt
                tl.store(dx_ptr + row * channels + offs_d, dx, mask=m_d)
                tl.store(ddt_ptr + row * channels + offs_d, ddt, mask=m_d)
                dh = dh * decay
            tl.debug_barrier()
        tl.store(
            dA_ptr + (pid_b * channels + offs_d[:, None]) * states + offs_n[None, :], dA_acc, mask=mask_dn
        )
        tl.store(dD_ptr + pid_b * channels + offs_d, dD_acc, mask=mask_d)
        tl.store(dbias_ptr + pid_b * channels + offs_d, dbias_acc, mask=mask_d)

    _KERNELS.update(triton=triton, forward=scan_forward, backward=scan_backward)
    return _KERNELS


def _blocks(channels: int, states: int) -> tuple[int, int, int]:
    """``(BLOCK_D, BLOCK_N, num_warps)``: a small tile per program, so that many programs (batch x
    channel blocks) walk the sequence at once and hide each other's memory latency."""
    import triton

    block_n = triton.next_power_of_2(states)
    block_d = max(1, min(triton.next_power_of_2(channels), max(1, 512 // block_n)))
    warps = 1 if block_d * block_n <= 512 else 4
    return block_d, block_n, warps


class _TritonSelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, delta, A, B, C, D, z, delta_bias, delta_softplus, chunk):
        kernels = _kernels()
        triton = kernels["triton"]
        batch, length, channels = x.shape
        states = A.size(1)
        inputs = [t.contiguous() if t is not None else None for t in (x, delta, A, B, C, D, z, delta_bias)]
        x, delta, A, B, C, D, z, delta_bias = inputs
        block_d, block_n, warps = _blocks(channels, states)
        chunks = max(1, triton.cdiv(length, chunk))
        y = torch.empty(batch, length, channels, device=x.device, dtype=torch.float32)
        checkpoints = torch.empty(batch, chunks, channels, states, device=x.device, dtype=torch.float32)
        grid = (batch, triton.cdiv(channels, block_d))
        dummy = x  # never read when the matching HAS_* flag is off
        kernels["forward"][grid](
            x, delta, A, B, C,
            D if D is not None else dummy, z if z is not None else dummy,
            delta_bias if delta_bias is not None else dummy,
            y, checkpoints, length, channels, states, chunks,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), CHUNK=chunk, BLOCK_D=block_d, BLOCK_N=block_n, num_warps=warps,
        )  # fmt: skip
        ctx.save_for_backward(x, delta, A, B, C, D, z, delta_bias, checkpoints)
        ctx.flags = (delta_softplus, chunk, block_d, block_n, warps, chunks)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        kernels = _kernels()
        triton = kernels["triton"]
        x, delta, A, B, C, D, z, delta_bias, checkpoints = ctx.saved_tensors
        delta_softplus, chunk, block_d, block_n, warps, chunks = ctx.flags
        batch, length, channels = x.shape
        states = A.size(1)
        channel_blocks = triton.cdiv(channels, block_d)
        device, f32 = x.device, torch.float32
        grad = grad.contiguous()
        scratch = torch.empty(batch * channel_blocks * chunk * block_d * block_n, device=device, dtype=f32)
        dx = torch.empty(batch, length, channels, device=device, dtype=f32)
        ddt = torch.empty_like(dx)
        dz = torch.empty_like(dx) if z is not None else dx
        dB = torch.empty(batch, channel_blocks, length, states, device=device, dtype=f32)
        dC = torch.empty_like(dB)
        dA = torch.empty(batch, channels, states, device=device, dtype=f32)
        dD = torch.empty(batch, channels, device=device, dtype=f32)
        dbias = torch.empty(batch, channels, device=device, dtype=f32)
        dummy = x
        kernels["backward"][(batch, channel_blocks)](
            x, delta, A, B, C,
            D if D is not None else dummy, z if z is not None else dummy,
            delta_bias if delta_bias is not None else dummy,
            checkpoints, grad, scratch, dx, ddt, dz, dB, dC, dA, dD, dbias,
            length, channels, states, chunks, channel_blocks,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), CHUNK=chunk, BLOCK_D=block_d, BLOCK_N=block_n, num_warps=warps,
        )  # fmt: skip
        return (
            dx.to(x.dtype),
            ddt.to(delta.dtype),
            dA.sum(0).to(A.dtype),
            dB.sum(1).to(B.dtype),
            dC.sum(1).to(C.dtype),
            dD.sum(0).to(D.dtype) if D is not None else None,
            dz.to(z.dtype) if z is not None else None,
            dbias.sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
            None,
            None,
        )


def selective_scan_triton(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    chunk_size: int = TRITON_CHUNK,
) -> Tensor:
    """The fused Triton selective scan (forward and backward kernels); same arguments and result as
    :func:`selective_scan_reference` without the initial and final states.

    Runs on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1`` (slow: for tests). Under
    ``torch.autocast`` the inputs are cast to float32 (the recurrence is always float32). The backward
    pass recomputes the states from one stored state per ``chunk_size`` steps.
    """
    _check_inputs(x, delta, A, B, C, D, z, delta_bias)
    check_int("chunk_size", chunk_size, 1)
    if not triton_available():
        raise RuntimeError("selective_scan_triton needs triton; install it or use selective_scan_chunked")
    if x.device.type != "cuda" and not _interpreting():
        raise ValueError(
            f"selective_scan_triton needs CUDA tensors (or TRITON_INTERPRET=1 for CPU), got device {x.device}"
        )
    if x.device.type == "cuda" and torch.is_autocast_enabled("cuda"):
        with torch.autocast("cuda", enabled=False):
            cast = [t.float() if t is not None else None for t in (x, delta, A, B, C, D, z, delta_bias)]
            return _TritonSelectiveScan.apply(*cast, bool(delta_softplus), chunk_size)
    return _TritonSelectiveScan.apply(x, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), chunk_size)


# ---------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------

METHODS = ("auto", "reference", "chunked", "compiled", "triton")


def selective_scan(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
    method: str = "auto",
) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan by the fastest path for the device: ``method="auto"`` takes the Triton kernel
    for CUDA tensors when triton imports and no initial or final state is asked for (else the chunked
    scan); on CPU the compiled step loop (:func:`selective_scan_compiled`) from length
    ``COMPILE_MIN_LENGTH`` on when a C++ compiler is found, else the step loop (both faster there than
    the chunked scan in our measurements: see ``benchmarks/bench_mamba.py``); ``"reference"``,
    ``"chunked"``, ``"compiled"`` or ``"triton"`` force one.
    Arguments as :func:`selective_scan_reference`."""
    check_choice("method", method, METHODS)
    if method == "auto":
        stateless = initial_state is None and not return_final_state
        if x.device.type == "cuda":
            method = "triton" if stateless and triton_available() else "chunked"
        elif x.size(1) >= COMPILE_MIN_LENGTH and compile_available():
            # Measured on CPU (1 thread, batch 2, 256 channels, N 16, length 1,024, forward): the
            # compiled chunks 14 ms, the step loop 61 ms, the chunked scan 259 ms, transformers'
            # loop 122 ms; compiling takes seconds per new shape, worth it only on long sequences
            # (see benchmarks/bench_mamba.py).
            method = "compiled"
        else:
            # Measured on 2 CPU cores (training, widths 32-128, lengths 20-256): the step loop, whose
            # state stays in cache, beats the chunked scan, which writes [B, L, E, N] tensors several
            # times over; the chunked scan remains for GPUs without Triton and for method="chunked".
            method = "reference"
    if method == "triton":
        if initial_state is not None or return_final_state:
            raise ValueError(
                "method='triton' takes no initial_state and returns no final state; use 'chunked'"
            )
        return selective_scan_triton(x, delta, A, B, C, D, z, delta_bias, delta_softplus)
    scan = {
        "chunked": selective_scan_chunked,
        "compiled": selective_scan_compiled,
        "reference": selective_scan_reference,
    }[method]
    return scan(x, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, return_final_state)
