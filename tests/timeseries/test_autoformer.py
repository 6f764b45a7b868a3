"""Autoformer's blocks: golden values and invariants of Eq. 1-6, parity with transformers, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.timeseries.autocorrelation import (
    AutoCorrelation,
    auto_correlation,
    correlation_scores,
    number_of_lags,
    time_delay_aggregation,
)
from aicanon.timeseries.autoformer import Autoformer, AutoformerDecoderLayer, AutoformerEncoderLayer
from aicanon.timeseries.decomposition import SeasonalLayerNorm, SeriesDecomposition, moving_average

pytestmark = pytest.mark.paper("autoformer")


# ---------------------------------------------------------------- decomposition (Eq. 1)


def test_moving_average_pads_the_ends_by_repetition():
    x = torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1)
    # padded: 1 1 2 4 4 -> means of 3: 4/3, 7/3, 10/3
    expected = torch.tensor([4 / 3, 7 / 3, 10 / 3]).view(1, 3, 1)
    torch.testing.assert_close(moving_average(x, 3), expected)
    seasonal, trend = SeriesDecomposition(3)(x)
    torch.testing.assert_close(trend, expected)
    torch.testing.assert_close(seasonal, x - expected)


def test_a_period_of_the_kernel_size_averages_to_its_mean():
    # A series periodic with period = kernel has a flat trend away from the ends (Eq. 1).
    t = torch.arange(200, dtype=torch.float32)
    x = (torch.sin(2 * math.pi * t / 25) + 0.5 * torch.cos(4 * math.pi * t / 25) + 3.0).view(1, -1, 1)
    seasonal, trend = SeriesDecomposition(25)(x)
    torch.testing.assert_close(trend[0, 12:-12], torch.full((176, 1), 3.0), atol=1e-5, rtol=0)
    assert seasonal[0, 12 : 12 + 175].mean().abs() < 1e-5  # seven whole periods


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(1, 40),
    kernel=st.sampled_from([1, 3, 5, 25]),
    shift=st.floats(-5, 5),
    data_seed=st.integers(0, 1000),
)
def test_decomposition_sums_to_the_input_and_commutes_with_shifts(length, kernel, shift, data_seed):
    x = torch.randn(2, length, 3, generator=torch.Generator().manual_seed(data_seed))
    seasonal, trend = SeriesDecomposition(kernel)(x)
    torch.testing.assert_close(seasonal + trend, x)
    _, shifted = SeriesDecomposition(kernel)(x + shift)
    torch.testing.assert_close(shifted, trend + shift, atol=1e-5, rtol=1e-5)
    if length >= 2:  # a linear series is its own centred average away from the ends
        line = torch.arange(length, dtype=torch.float32).view(1, -1, 1)
        inner = slice((kernel - 1) // 2, length - (kernel - 1) // 2)
        torch.testing.assert_close(moving_average(line, kernel)[:, inner], line[:, inner])


def test_seasonal_layer_norm_has_zero_time_mean():
    norm = SeasonalLayerNorm(16)
    x = torch.randn(3, 20, 16) * 4 + 2
    out = norm(x)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(3, 16), atol=1e-6, rtol=0)
    normed = torch.nn.functional.layer_norm(x, (16,))
    torch.testing.assert_close(out, normed - normed.mean(dim=1, keepdim=True))


def test_disabled_decomposition_keeps_everything_seasonal():
    x = torch.randn(2, 10, 3)
    seasonal, trend = SeriesDecomposition(5, enabled=False)(x)
    assert torch.equal(seasonal, x) and torch.equal(trend, torch.zeros_like(x))


# ---------------------------------------------------------------- auto-correlation (Eq. 5-6)


def test_correlation_scores_match_the_direct_sum():
    q, k = torch.randn(2, 12, 3), torch.randn(2, 12, 3)
    direct = torch.stack(
        [(torch.roll(q, shifts=-tau, dims=1) * k).sum(dim=1) for tau in range(12)], dim=1
    )  # R(tau) = sum_t q[t + tau] k[t]
    torch.testing.assert_close(correlation_scores(q, k), direct, atol=1e-5, rtol=1e-5)


def test_number_of_lags_is_floor_c_log_length():
    assert number_of_lags(1, 96) == 4 and number_of_lags(3, 96) == 13 and number_of_lags(1, 144) == 4
    assert number_of_lags(1, 2) == 1  # floor(ln 2) = 0, clamped to one lag
    assert number_of_lags(10, 3) == 3  # at most L


def test_lags_of_a_periodic_series_are_multiples_of_its_period():
    t = torch.arange(48, dtype=torch.float32)
    x = torch.sin(2 * math.pi * t / 12).view(1, 48, 1).repeat(2, 1, 4)
    _, lags, weights = auto_correlation(x, x, x, factor=1.0)  # k = floor(ln 48) = 3
    assert lags.shape == (2, 3) and torch.all(lags % 12 == 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))


def test_aggregation_is_the_weighted_sum_of_rolled_values():
    values, scores = torch.randn(3, 10, 4), torch.randn(3, 10, 4)
    for shared in (False, True):
        out, lags, weights = time_delay_aggregation(values, scores, 3, shared=shared)
        expected = torch.stack(
            [
                sum(weights[b, i] * torch.roll(values[b], shifts=-int(lags[b, i]), dims=0) for i in range(3))
                for b in range(3)
            ]
        )
        torch.testing.assert_close(out, expected)
    mean = scores.mean(dim=2)
    _, own = time_delay_aggregation(values, scores, 3, shared=False)[:2]
    torch.testing.assert_close(own, torch.topk(mean, 3, dim=1).indices)
    _, shared_lags = time_delay_aggregation(values, scores, 3, shared=True)[:2]
    assert torch.equal(shared_lags, torch.topk(mean.mean(0), 3).indices.expand(3, -1))


def test_auto_aggregation_shares_lags_in_training_and_not_in_evaluation():
    layer = AutoCorrelation(8, 2, aggregation="auto")
    assert layer.shared_lags()
    layer.eval()
    assert not layer.shared_lags()
    assert AutoCorrelation(8, 2, aggregation="sample").shared_lags() is False
    # one sample: both paths are the same computation
    x = torch.randn(1, 16, 8)
    with torch.no_grad():
        a = AutoCorrelation(8, 2, aggregation="batch")
        b = AutoCorrelation(8, 2, aggregation="sample")
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(a(x, x, x), b(x, x, x))


def test_shorter_keys_are_zero_padded_and_longer_ones_truncated():
    q = torch.randn(2, 10, 3)
    short, long = torch.randn(2, 6, 3), torch.randn(2, 14, 3)
    padded = torch.cat([short, torch.zeros(2, 4, 3)], dim=1)
    torch.testing.assert_close(auto_correlation(q, short, short)[0], auto_correlation(q, padded, padded)[0])
    torch.testing.assert_close(
        auto_correlation(q, long, long)[0], auto_correlation(q, long[:, :10], long[:, :10])[0]
    )


# ---------------------------------------------------------------- the model (Eq. 2-4)


def small_model(**overrides) -> Autoformer:
    kwargs = dict(pred_len=8, label_len=6, d_model=16, n_heads=2, d_ff=32, moving_avg=5, dropout=0.0)
    kwargs.update(overrides)
    return Autoformer(3, 3, kwargs.pop("c_out", 3), **kwargs)


def test_decoder_initialisation_follows_eq_2():
    model = small_model()
    x = torch.randn(2, 12, 3)
    seasonal, trend = model.initialisation(x)
    full_seasonal, full_trend = SeriesDecomposition(5)(x)
    torch.testing.assert_close(seasonal[:, :6], full_seasonal[:, -6:])
    torch.testing.assert_close(trend[:, :6], full_trend[:, -6:])
    assert torch.equal(seasonal[:, 6:], torch.zeros(2, 8, 3))
    torch.testing.assert_close(trend[:, 6:], x.mean(dim=1, keepdim=True).expand(-1, 8, -1))


def test_forward_shapes_gradients_and_ignored_decoder_input():
    torch.manual_seed(0)
    model = small_model()
    x, marks, decoder_marks = torch.randn(4, 12, 3), torch.rand(4, 12, 4) - 0.5, torch.rand(4, 14, 4) - 0.5
    out = model(x, marks, torch.zeros(4, 14, 3), decoder_marks)
    assert out.shape == (4, 8, 3)
    out.square().sum().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad
    )
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model(x, marks, None, decoder_marks), model(x, marks, torch.randn(4, 14, 3), decoder_marks)
        )
    target_only = small_model(c_out=1)
    assert target_only(x, marks, None, decoder_marks).shape == (4, 8, 1)
    for variant in (small_model(decomposition=False), small_model(mechanism="attention")):
        assert variant(x, marks, None, decoder_marks).shape == (4, 8, 3)


def test_a_constant_series_is_all_trend():
    # Eq. 2: the trend initialisation of a constant input is that constant, the seasonal part zero.
    model = small_model()
    seasonal, trend = model.initialisation(torch.full((1, 12, 3), 2.5))
    assert seasonal.abs().max() < 1e-6 and (trend - 2.5).abs().max() < 1e-6


# ---------------------------------------------------------------- bad input


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        SeriesDecomposition(4)
    with pytest.raises(ValueError, match="moving_avg must be odd"):
        small_model(moving_avg=4)
    with pytest.raises(ValueError, match="dec_in must equal enc_in"):
        Autoformer(3, 4, 3, pred_len=8, label_len=4)
    with pytest.raises(ValueError, match="c_out must be at most dec_in"):
        Autoformer(3, 3, 4, pred_len=8, label_len=4)
    with pytest.raises(ValueError, match="d_model must be divisible by n_heads"):
        AutoCorrelation(10, 3)
    with pytest.raises(ValueError, match="factor must be"):
        AutoCorrelation(8, 2, factor=0)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        AutoCorrelation(8, 2, aggregation="mean")
    with pytest.raises(ValueError, match="mechanism must be one of"):
        small_model(mechanism="prob")
    model = small_model()
    x, marks = torch.randn(2, 12, 3), torch.rand(2, 12, 4)
    with pytest.raises(ValueError, match="x must have enc_in=3 channels"):
        model(torch.randn(2, 12, 4), marks, None, torch.rand(2, 14, 4))
    with pytest.raises(ValueError, match="decoder_input must have shape"):
        model(x, marks, torch.zeros(2, 10, 3), torch.rand(2, 14, 4))
    with pytest.raises(ValueError, match="decoder_marks must be"):
        model(x, marks, None, torch.rand(2, 10, 4))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        model(torch.zeros(2, 12, 3, dtype=torch.long), marks, None, torch.rand(2, 14, 4))
    with pytest.raises(ValueError, match="keys and values must have the same shape"):
        auto_correlation(torch.randn(1, 5, 2), torch.randn(1, 5, 2), torch.randn(1, 4, 2))
    with pytest.raises(ValueError, match="x must be a 3-D tensor"):
        moving_average(torch.randn(5, 2), 3)


# ---------------------------------------------------------------- parity with transformers

transformers = pytest.importorskip("transformers")


def hf_config(d_model=16, heads=4, ffn=32, kernel=5, factor=2):
    from transformers import AutoformerConfig

    return AutoformerConfig(
        prediction_length=8,
        context_length=12,
        d_model=d_model,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        moving_average=kernel,
        autocorrelation_factor=factor,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="gelu",
    )


ATTENTION_NAMES = {"q_proj": "query", "k_proj": "key", "v_proj": "value", "out_proj": "output"}
LAYER_NAMES = {
    "self_attn": "self_correlation",
    "encoder_attn": "cross_correlation",
    "fc1": "feed_forward.fc1",
    "fc2": "feed_forward.fc2",
    "final_layer_norm": "final_norm",
    "trend_projection": "trend_projection",
}


def rename(state: dict, layer_names: dict, norm_names: dict) -> dict:
    """transformers' parameter names -> ours."""
    out = {}
    for name, value in state.items():
        parts = name.split(".")
        if parts[0] in norm_names:
            parts[0] = norm_names[parts[0]]
        elif parts[0] in layer_names:
            parts[0] = layer_names[parts[0]]
        if len(parts) > 2 and parts[1] in ATTENTION_NAMES:
            parts[1] = ATTENTION_NAMES[parts[1]]
        if len(parts) == 2 and parts[0] in ATTENTION_NAMES:
            parts[0] = ATTENTION_NAMES[parts[0]]
        out[".".join(parts)] = value
    return out


def assert_same_gradients(ours, reference, names: dict[str, str], atol=1e-5):
    reference_grads = dict(reference.named_parameters())
    for reference_name, our_name in names.items():
        ours_grad = dict(ours.named_parameters())[our_name].grad
        torch.testing.assert_close(ours_grad, reference_grads[reference_name].grad, atol=atol, rtol=1e-4)


@pytest.mark.parity
def test_series_decomposition_and_layernorm_match_transformers():
    from transformers.models.autoformer.modeling_autoformer import (
        AutoformerLayernorm,
        AutoformerSeriesDecompositionLayer,
    )

    config = hf_config(kernel=25)
    x = torch.randn(3, 40, 16, requires_grad=True)
    for ours_out, ref_out in zip(SeriesDecomposition(25)(x), AutoformerSeriesDecompositionLayer(config)(x)):
        torch.testing.assert_close(ours_out, ref_out, atol=1e-6, rtol=0)
    reference = AutoformerLayernorm(config)
    torch.nn.init.normal_(reference.layernorm.weight)
    torch.nn.init.normal_(reference.layernorm.bias)
    ours = SeasonalLayerNorm(16)
    ours.load_state_dict(reference.state_dict())
    x_ours = x.detach().clone().requires_grad_()
    (ours(x_ours) * torch.linspace(-1, 1, 16)).sum().backward()
    (reference(x) * torch.linspace(-1, 1, 16)).sum().backward()
    torch.testing.assert_close(x_ours.grad, x.grad, atol=1e-5, rtol=1e-5)


# transformers' time-delay aggregation tiles the per-sample weights (and, in evaluation, the lags)
# over its [batch * heads] axis in heads-major order while the values are batch-major, so with
# several heads *and* several samples it mixes samples (see the test below). Parity is therefore
# checked with one head and a batch, and with several heads and one sample; with lags shared by all
# heads (official code) the heads are only a reshape, so that covers every case.
HEADS_AND_BATCH = [(1, 3), (4, 1)]


@pytest.mark.parity
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("key_length", [24, 40])  # equal to, and longer than, the queries
@pytest.mark.parametrize("heads, batch", HEADS_AND_BATCH)
def test_auto_correlation_matches_transformers_attention(training, key_length, heads, batch):
    from transformers.models.autoformer.modeling_autoformer import AutoformerAttention

    torch.manual_seed(0)
    reference = AutoformerAttention(embed_dim=16, num_heads=heads, autocorrelation_factor=2).train(training)
    ours = AutoCorrelation(16, heads, factor=2).train(training)
    ours.load_state_dict(rename(reference.state_dict(), {}, {}))
    queries = torch.randn(batch, 24, 16, requires_grad=True)
    keys = torch.randn(batch, key_length, 16, requires_grad=True) if key_length != 24 else queries
    weights = torch.randn(batch, 24, 16)
    kv = None if key_length == 24 else keys
    reference_out, _ = reference(queries, key_value_states=kv)
    q2 = queries.detach().clone().requires_grad_()
    k2 = q2 if key_length == 24 else keys.detach().clone().requires_grad_()
    ours_out = ours(q2, k2, k2)
    torch.testing.assert_close(ours_out, reference_out, atol=1e-5, rtol=1e-5)
    (reference_out * weights).sum().backward()
    (ours_out * weights).sum().backward()
    torch.testing.assert_close(q2.grad, queries.grad, atol=1e-5, rtol=1e-4)
    if key_length != 24:
        torch.testing.assert_close(k2.grad, keys.grad, atol=1e-5, rtol=1e-4)
    assert_same_gradients(ours, reference, {f"{a}.weight": f"{b}.weight" for a, b in ATTENTION_NAMES.items()})


@pytest.mark.parity
def test_transformers_attention_mixes_samples_with_several_heads():
    """The reason for HEADS_AND_BATCH: in evaluation every sample is independent (its own lags), so a
    batch must give what its samples give one by one. Ours does; transformers' does not."""
    from transformers.models.autoformer.modeling_autoformer import AutoformerAttention

    torch.manual_seed(0)
    reference = AutoformerAttention(embed_dim=16, num_heads=4, autocorrelation_factor=2).eval()
    ours = AutoCorrelation(16, 4, factor=2).eval()
    ours.load_state_dict(rename(reference.state_dict(), {}, {}))
    x = torch.randn(3, 24, 16)
    with torch.no_grad():
        reference_alone = torch.cat([reference(x[i : i + 1])[0] for i in range(3)])
        torch.testing.assert_close(ours(x, x, x), reference_alone, atol=1e-5, rtol=1e-5)
        assert (reference(x)[0] - reference_alone).abs().max() > 1e-2


@pytest.mark.parity
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("heads, batch", HEADS_AND_BATCH)
def test_encoder_layer_matches_transformers(training, heads, batch):
    from transformers.models.autoformer.modeling_autoformer import AutoformerEncoderLayer as Reference

    torch.manual_seed(1)
    config = hf_config(heads=heads)
    reference = Reference(config).train(training)
    ours = AutoformerEncoderLayer(
        16, heads, 32, moving_avg=5, factor=2, dropout=0.0, activation="gelu", transformers_layout=True
    ).train(training)
    norms = {"self_attn_layer_norm": "correlation_norm"}
    ours.load_state_dict(rename(reference.state_dict(), LAYER_NAMES, norms))
    x = torch.randn(batch, 30, 16, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    reference_out, ours_out = reference(x), ours(x2)
    torch.testing.assert_close(ours_out, reference_out, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(ours_out)
    (reference_out * weights).sum().backward()
    (ours_out * weights).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, atol=1e-5, rtol=1e-4)
    reference_names = [n for n, _ in reference.named_parameters()]
    ours_names = rename({n: None for n in reference_names}, LAYER_NAMES, norms)
    assert_same_gradients(ours, reference, dict(zip(reference_names, ours_names)))


@pytest.mark.parity
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("heads, batch", HEADS_AND_BATCH)
def test_decoder_layer_matches_transformers(training, heads, batch):
    from transformers.models.autoformer.modeling_autoformer import AutoformerDecoderLayer as Reference

    torch.manual_seed(2)
    config = hf_config(heads=heads)
    reference = Reference(config).train(training)
    c_out = reference.trend_projection.out_channels
    ours = AutoformerDecoderLayer(
        16, c_out, heads, 32, moving_avg=5, factor=2, dropout=0.0, activation="gelu", transformers_layout=True
    ).train(training)
    norms = {"self_attn_layer_norm": "self_norm", "encoder_attn_layer_norm": "cross_norm"}
    ours.load_state_dict(rename(reference.state_dict(), LAYER_NAMES, norms))
    # Encoder output at least as long as the decoder's span: transformers' cross auto-correlation
    # truncates the queries when the keys are shorter (the official code pads the keys instead).
    x = torch.randn(batch, 20, 16, requires_grad=True)
    cross = torch.randn(batch, 28, 16, requires_grad=True)
    x2, cross2 = (t.detach().clone().requires_grad_() for t in (x, cross))
    reference_out = reference(x, encoder_hidden_states=cross, use_cache=False)
    ours_out = ours(x2, cross2)
    for a, b in zip(ours_out, reference_out[:2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    (reference_out[0].sum() + reference_out[1].square().sum()).backward()
    (ours_out[0].sum() + ours_out[1].square().sum()).backward()
    torch.testing.assert_close(x2.grad, x.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cross2.grad, cross.grad, atol=1e-5, rtol=1e-4)
    reference_names = [n for n, _ in reference.named_parameters()]
    ours_names = rename({n: None for n in reference_names}, LAYER_NAMES, norms)
    assert_same_gradients(ours, reference, dict(zip(reference_names, ours_names)))
