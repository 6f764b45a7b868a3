"""aicanon.nn.rotary (RoFormer, Section 3.4): relativity, the long-term decay bound, the two layouts,
norm preservation, Llama 3.1 scaling against transformers, golden values, the cos/sin cache, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.language.roformer import relative_upper_bound, score_and_bound
from aicanon.nn.rotary import (
    RotaryEmbedding,
    apply_rotary,
    interleaved_to_half_permutation,
    llama3_scaled_frequencies,
    rope_frequencies,
)

pytestmark = pytest.mark.paper("roformer")

LLAMA31_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def rotate_at(rope: RotaryEmbedding, x: torch.Tensor, position: int) -> torch.Tensor:
    """``R_position x`` for one vector ``x [D]`` (through the [B, H, T, D] entry point)."""
    cos, sin = rope.cos_sin(torch.tensor([position]))
    return apply_rotary(x.view(1, 1, 1, -1), cos, sin, interleaved=rope.interleaved).view(-1)


# ----------------------------------------------------------------------------------- golden values


def test_golden_two_dimensional_rotation():
    """d = 2 (Eq. 13): theta_0 = 1, so position m rotates (x0, x1) by m radians, counter-clockwise."""
    for interleaved in (True, False):
        rope = RotaryEmbedding(2, base=10000.0, interleaved=interleaved)
        x = torch.tensor([1.0, 0.0])
        torch.testing.assert_close(rotate_at(rope, x, 1), torch.tensor([math.cos(1.0), math.sin(1.0)]))
        y = torch.tensor([0.5, 2.0])
        m = 3
        expected = torch.tensor(
            [0.5 * math.cos(m) - 2.0 * math.sin(m), 0.5 * math.sin(m) + 2.0 * math.cos(m)]
        )
        torch.testing.assert_close(rotate_at(rope, y, m), expected)
        torch.testing.assert_close(rotate_at(rope, y, 0), y)


def test_golden_four_dimensional_frequencies_and_layouts():
    """d = 4, base 100: theta = (1, 1/10) (Eq. 15); adjacent pairs vs half-split pairs."""
    torch.testing.assert_close(rope_frequencies(4, 100.0), torch.tensor([1.0, 0.1]))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    c1, s1, c2, s2 = math.cos(2.0), math.sin(2.0), math.cos(0.2), math.sin(0.2)
    interleaved = rotate_at(RotaryEmbedding(4, 100.0, interleaved=True), x, 2)
    # pairs (x0, x1) by 2 rad and (x2, x3) by 0.2 rad
    expected = torch.tensor([1 * c1 - 2 * s1, 1 * s1 + 2 * c1, 3 * c2 - 4 * s2, 3 * s2 + 4 * c2])
    torch.testing.assert_close(interleaved, expected)
    half = rotate_at(RotaryEmbedding(4, 100.0, interleaved=False), x, 2)
    # pairs (x0, x2) by 2 rad and (x1, x3) by 0.2 rad
    expected = torch.tensor([1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 1 * s1 + 3 * c1, 2 * s2 + 4 * c2])
    torch.testing.assert_close(half, expected)


def test_frequencies_follow_eq_15():
    theta = rope_frequencies(128)
    i = torch.arange(64, dtype=torch.float64)
    torch.testing.assert_close(theta.double(), 10000.0 ** (-2 * i / 128), rtol=1e-6, atol=0)
    assert theta[0] == 1.0 and torch.all(theta[1:] < theta[:-1])


# ------------------------------------------------------------------------------------- invariants


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(0, 300),
    n=st.integers(0, 300),
    shift=st.integers(0, 300),
    half_dim=st.integers(1, 16),
    interleaved=st.booleans(),
    data_seed=st.integers(0, 2**16),
)
def test_score_depends_only_on_relative_position(m, n, shift, half_dim, interleaved, data_seed):
    """Eq. (16): <R_m q, R_n k> = <R_{m+s} q, R_{n+s} k> for every shift s, in both layouts."""
    g = torch.Generator().manual_seed(data_seed)
    d = 2 * half_dim
    q, k = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    rope = RotaryEmbedding(d, interleaved=interleaved)

    def score(a: int, b: int) -> float:
        cos, sin = rope.cos_sin(torch.tensor([a, b]))
        cos, sin = cos.double(), sin.double()
        x = torch.stack((q, k)).view(1, 1, 2, d)
        rotated = apply_rotary(x, cos, sin, interleaved=interleaved).view(2, d)
        return float(rotated[0] @ rotated[1])

    # float32 angles (m * theta in float32, as every implementation) limit agreement to ~1e-4 relative
    assert score(m, n) == pytest.approx(score(m + shift, n + shift), rel=1e-4, abs=1e-4 * d)


@settings(max_examples=25, deadline=None)
@given(
    half_dim=st.integers(1, 32),
    position=st.integers(0, 5000),
    interleaved=st.booleans(),
    seed=st.integers(0, 999),
)
def test_rotation_preserves_norms(half_dim, position, interleaved, seed):
    x = torch.randn(2, 3, 1, 2 * half_dim, generator=torch.Generator().manual_seed(seed))
    rope = RotaryEmbedding(2 * half_dim, interleaved=interleaved)
    cos, sin = rope.cos_sin(torch.tensor([position]))
    out = apply_rotary(x, cos, sin, interleaved=interleaved)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-6)
    # pairwise too: each 2-D block is a rotation (Eq. 15), not only the whole vector
    pairs = (
        (lambda t: t.unflatten(-1, (-1, 2))) if interleaved else (lambda t: torch.stack(t.chunk(2, -1), -1))
    )
    torch.testing.assert_close(pairs(out).norm(dim=-1), pairs(x).norm(dim=-1), rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(half_dim=st.integers(1, 32), base=st.floats(2.0, 1e6), seed=st.integers(0, 999))
def test_layouts_equal_after_permutation(half_dim, base, seed):
    """Half-split RoPE on permuted features gives the interleaved scores (and permuted outputs)."""
    d = 2 * half_dim
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 3, 7, d, generator=g), torch.randn(2, 3, 7, d, generator=g)
    positions = torch.randint(0, 500, (7,), generator=g)
    permutation = interleaved_to_half_permutation(d)
    paper, llama = RotaryEmbedding(d, base, interleaved=True), RotaryEmbedding(d, base, interleaved=False)
    ci, si = paper.cos_sin(positions)
    ch, sh = llama.cos_sin(positions)
    q_i, k_i = apply_rotary(q, ci, si, interleaved=True), apply_rotary(k, ci, si, interleaved=True)
    q_h = apply_rotary(q[..., permutation], ch, sh, interleaved=False)
    k_h = apply_rotary(k[..., permutation], ch, sh, interleaved=False)
    torch.testing.assert_close(q_h, q_i[..., permutation], rtol=0, atol=1e-5)
    torch.testing.assert_close(q_h @ k_h.transpose(-1, -2), q_i @ k_i.transpose(-1, -2), rtol=1e-5, atol=1e-4)


def test_permutation_is_the_documented_one():
    assert interleaved_to_half_permutation(6).tolist() == [0, 2, 4, 1, 3, 5]
    assert sorted(interleaved_to_half_permutation(64).tolist()) == list(range(64))


def test_permuting_projection_rows_converts_a_paper_model_to_half_layout():
    """Meta-style conversion: rows of W_q, W_k permuted per head give identical attention scores."""
    torch.manual_seed(0)
    heads, d, hidden, t = 2, 8, 16, 5
    w_q, w_k, x = torch.randn(heads * d, hidden), torch.randn(heads * d, hidden), torch.randn(1, t, hidden)
    per_head = interleaved_to_half_permutation(d)
    rows = torch.cat([h * d + per_head for h in range(heads)])
    positions = torch.arange(t)

    def scores(wq, wk, interleaved):
        cos, sin = RotaryEmbedding(d, interleaved=interleaved).cos_sin(positions)
        q = (x @ wq.T).view(1, t, heads, d).transpose(1, 2)
        k = (x @ wk.T).view(1, t, heads, d).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin, interleaved), apply_rotary(k, cos, sin, interleaved)
        return q @ k.transpose(-1, -2)

    torch.testing.assert_close(
        scores(w_q[rows], w_k[rows], False), scores(w_q, w_k, True), rtol=1e-5, atol=1e-4
    )


def test_long_term_decay_figure_2():
    """Section 3.4.3: the relative upper bound (Eq. 37, d = 128) falls with distance, on average."""
    distances = torch.arange(0, 256)
    bound = relative_upper_bound(distances, 128)
    assert bound[0].item() == pytest.approx((64 + 1) / 2)  # S_j = j at distance 0: mean of 1..64
    window_means = bound.view(8, 32).mean(-1)
    assert torch.all(window_means[1:] < window_means[:-1]), window_means
    assert window_means[-1] < 0.5 * window_means[0]
    # It oscillates (Figure 2 is not monotone), which is why the test is on window means.
    assert torch.any(bound[1:] > bound[:-1])


@settings(max_examples=30, deadline=None)
@given(half_dim=st.integers(2, 64), distance=st.integers(0, 2000), seed=st.integers(0, 999))
def test_eq_36_bounds_the_rotated_score(half_dim, distance, seed):
    """|sum h_i e^{i r theta_i}| <= max|h_{i+1} - h_i| * sum|S_j|, and its real part is the RoPE score."""
    g = torch.Generator().manual_seed(seed)
    d = 2 * half_dim
    q, k = torch.randn(d, generator=g), torch.randn(d, generator=g)
    value, bound = score_and_bound(q, k, distance)
    assert value <= bound * (1 + 1e-9) + 1e-9
    rope = RotaryEmbedding(d, interleaved=True)
    # <R_m q, R_n k> = Re sum h_i e^{i (m-n) theta_i}, so with m - n = r its modulus is at most the sum's
    score = float(rotate_at(rope, q, distance) @ rotate_at(rope, k, 0))
    assert abs(score) <= value + 1e-3


def test_cos_sin_cache_consistent_as_positions_grow():
    rope = RotaryEmbedding(16, interleaved=True)
    cos_short, sin_short = rope.cos_sin(torch.arange(10))
    cos_long, sin_long = rope.cos_sin(torch.arange(3000))  # beyond the first table (256): regrown
    torch.testing.assert_close(cos_long[:10], cos_short, rtol=0, atol=0)
    torch.testing.assert_close(sin_long[:10], sin_short, rtol=0, atol=0)
    fresh_cos, fresh_sin = RotaryEmbedding(16, interleaved=True).cos_sin(torch.tensor([2999, 7]))
    torch.testing.assert_close(fresh_cos, cos_long[[2999, 7]], rtol=0, atol=0)
    torch.testing.assert_close(fresh_sin, sin_long[[2999, 7]], rtol=0, atol=0)
    # against the formula: cos(m theta_i), theta repeated per adjacent pair
    angles = 2999 * rope_frequencies(16).repeat_interleave(2)
    torch.testing.assert_close(cos_long[2999], angles.cos(), rtol=0, atol=1e-6)
    # batched positions [B, T] give [B, T, D]
    cos_b, _ = rope.cos_sin(torch.tensor([[0, 1], [5, 6]]))
    assert cos_b.shape == (2, 2, 16)
    torch.testing.assert_close(cos_b[1, 0], cos_short[5])


def test_cast_to_bfloat16_keeps_float32_angles():
    reference, _ = RotaryEmbedding(64).cos_sin(torch.arange(3000))
    rope = RotaryEmbedding(64)
    rope.to(torch.bfloat16)
    cos, _ = rope.cos_sin(torch.arange(3000))
    torch.testing.assert_close(cos, reference, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------ parity


@pytest.mark.parity
@pytest.mark.parametrize("theta, head_dim", [(500000.0, 128), (10000.0, 64), (500000.0, 32)])
def test_llama3_scaling_equals_transformers(theta, head_dim):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import _compute_llama3_parameters

    config = LlamaConfig(
        hidden_size=head_dim * 4,
        num_attention_heads=4,
        max_position_embeddings=131072,
        rope_parameters={**LLAMA31_SCALING, "rope_theta": theta},
    )
    reference, attention_factor = _compute_llama3_parameters(config)
    assert attention_factor == 1.0
    ours = RotaryEmbedding(head_dim, theta, LLAMA31_SCALING).inv_freq
    torch.testing.assert_close(ours, reference.float(), rtol=1e-6, atol=0)
    # the bands really differ: some kept, some divided by 8, some blended
    ratio = rope_frequencies(head_dim, theta) / ours
    assert torch.any(ratio == 1.0) and torch.any((ratio - 8.0).abs() < 1e-4)


@pytest.mark.parity
def test_half_layout_equals_transformers_llama_rotary():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    config = LlamaConfig(
        hidden_size=64, num_attention_heads=2, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}
    )
    reference = LlamaRotaryEmbedding(config)
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 9, 32), torch.randn(2, 2, 9, 32)
    positions = torch.arange(3, 12).expand(2, 9)
    cos_r, sin_r = reference(q, positions)
    q_r, k_r = apply_rotary_pos_emb(q, k, cos_r, sin_r)
    cos, sin = RotaryEmbedding(32).cos_sin(positions)
    torch.testing.assert_close(apply_rotary(q, cos, sin), q_r, rtol=0, atol=1e-5)
    torch.testing.assert_close(apply_rotary(k, cos, sin), k_r, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("head_dim", "error", "message"),
    [
        (3, ValueError, r"head_dim must be even \(rotations act on pairs\), got 3"),
        (0, ValueError, "head_dim must be >= 2, got 0"),
        (-2, ValueError, "head_dim must be >= 2, got -2"),
        (2.0, TypeError, "head_dim must be an int, got float"),
        (True, TypeError, "head_dim must be an int, got bool"),
    ],
)
def test_rejects_bad_head_dim(head_dim, error, message):
    with pytest.raises(error, match=message):
        RotaryEmbedding(head_dim)
    with pytest.raises(error, match=message):
        rope_frequencies(head_dim)


@pytest.mark.parametrize("base", [1.0, 0.5, 0.0, -10.0, float("nan")])
def test_rejects_base_not_above_one(base):
    with pytest.raises(ValueError, match="base must be > 1"):
        RotaryEmbedding(8, base=base)


def test_rejects_bad_positions():
    rope = RotaryEmbedding(8)
    with pytest.raises(ValueError, match="positions must be >= 0"):
        rope.cos_sin(torch.tensor([0, -1]))
    with pytest.raises(ValueError, match="positions must be an integer tensor"):
        rope.cos_sin(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="positions must be an integer tensor"):
        rope.cos_sin([0, 1])
    with pytest.raises(ValueError, match="positions must be an integer tensor"):
        rope.cos_sin(torch.zeros(1, 2, 3, dtype=torch.long))


def test_rejects_mismatched_cos_sin():
    x = torch.randn(1, 2, 4, 8)
    cos, sin = RotaryEmbedding(8).cos_sin(torch.arange(4))
    with pytest.raises(ValueError, match="cos and sin must have the head dimension"):
        apply_rotary(x, cos[..., :6], sin[..., :6])
    with pytest.raises(ValueError, match="cos and sin"):
        apply_rotary(x, cos, sin[:3])


def test_rejects_unknown_or_incomplete_scaling():
    with pytest.raises(ValueError, match="rope_type must be 'llama3'"):
        RotaryEmbedding(8, scaling={"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ValueError, match="missing"):
        RotaryEmbedding(8, scaling={"rope_type": "llama3", "factor": 8.0})
    with pytest.raises(ValueError, match="factor"):
        llama3_scaled_frequencies(
            rope_frequencies(8),
            factor=0.5,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=8192,
        )


def test_relative_upper_bound_and_score_bound_reject_bad_input():
    with pytest.raises(ValueError, match="head_dim"):
        relative_upper_bound(torch.arange(4), 7)
    with pytest.raises(ValueError, match="distances must be a real tensor"):
        relative_upper_bound([1, 2], 8)
    with pytest.raises(ValueError, match="q and k must be 1-D"):
        score_and_bound(torch.randn(8), torch.randn(6), 3)


def test_table_sized_by_a_caller_bound_gives_the_same_values():
    # The GPU path: the table is sized by the model's context instead of reading positions back.
    positions = torch.tensor([[0, 5, 17], [3, 3, 1]])
    for interleaved in (False, True):
        want = RotaryEmbedding(16, interleaved=interleaved).cos_sin(positions)
        got = RotaryEmbedding(16, interleaved=interleaved).cos_sin(positions, max_length=1024)
        for a, b in zip(want, got, strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
