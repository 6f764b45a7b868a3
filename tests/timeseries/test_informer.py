"""Informer: ProbSparse attention invariants, parity with transformers' Informer blocks, bad input."""

import math

import pytest
import torch

from aicanon.timeseries.informer import (
    DistillingLayer,
    Informer,
    InformerAttention,
    InformerDecoderLayer,
    InformerEncoderLayer,
    InformerStack,
    full_attention,
    probsparse_attention,
    sample_size,
    total_dot_products,
)

pytestmark = pytest.mark.paper("informer")


def _qkv(seed=0, batch=2, heads=3, length=20, dim=8, key_length=None):
    gen = torch.Generator().manual_seed(seed)
    key_length = length if key_length is None else key_length
    q = torch.randn(batch, heads, length, dim, generator=gen)
    k = torch.randn(batch, heads, key_length, dim, generator=gen)
    v = torch.randn(batch, heads, key_length, dim, generator=gen)
    return q, k, v


def _inputs(batch=2, seq_len=24, label_len=8, pred_len=6, channels=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq_len, channels, generator=gen)
    x_marks = torch.rand(batch, seq_len, 4, generator=gen) - 0.5
    dec = torch.cat([x[:, -label_len:], torch.zeros(batch, pred_len, channels)], dim=1)
    dec_marks = torch.rand(batch, label_len + pred_len, 4, generator=gen) - 0.5
    return x, x_marks, dec, dec_marks


# -- golden values and invariants ---------------------------------------------------------------


def test_sample_size_is_c_ceil_ln_l_capped_at_l():
    assert sample_size(96, 5) == 5 * 5  # ln 96 = 4.56
    assert sample_size(1536, 5) == 5 * 8  # ln 1536 = 7.34
    assert sample_size(48, 3) == 3 * 4
    assert sample_size(10, 5) == 10  # capped at L
    assert sample_size(1, 5) == 1  # at least one


@pytest.mark.parametrize("causal", [False, True])
def test_every_query_active_equals_full_attention(causal):
    q, k, v = _qkv()
    result = probsparse_attention(q, k, v, causal=causal, n_top=q.size(2))
    reference, count = full_attention(q, k, v, causal=causal)
    torch.testing.assert_close(result.output, reference, atol=1e-5, rtol=0)
    assert count == 20 * 20


def test_lazy_queries_get_the_mean_of_the_values():
    q, k, v = _qkv(length=30)
    result = probsparse_attention(q, k, v, factor=2)
    u = sample_size(30, 2)
    assert result.top_queries.shape == (2, 3, u) and u < 30
    lazy = torch.ones(2, 3, 30, dtype=torch.bool).scatter(2, result.top_queries, False)
    mean = v.mean(dim=2, keepdim=True).expand_as(v)
    torch.testing.assert_close(result.output[lazy], mean[lazy])
    # The active ones attend: their rows equal full attention's.
    reference, _ = full_attention(q, k, v)
    active = ~lazy
    torch.testing.assert_close(result.output[active], reference[active], atol=1e-5, rtol=0)


def test_masked_lazy_queries_get_the_running_sum_of_the_values():
    q, k, v = _qkv(length=30)
    result = probsparse_attention(q, k, v, factor=2, causal=True)
    lazy = torch.ones(2, 3, 30, dtype=torch.bool).scatter(2, result.top_queries, False)
    torch.testing.assert_close(result.output[lazy], v.cumsum(dim=2)[lazy])
    reference, _ = full_attention(q, k, v, causal=True)
    torch.testing.assert_close(result.output[~lazy], reference[~lazy], atol=1e-5, rtol=0)


def test_the_measurement_picks_the_peaked_queries():
    """A query aligned with one key (a peaked distribution) has a large M; a zero query has M = 0."""
    gen = torch.Generator().manual_seed(1)
    k = torch.randn(1, 1, 40, 8, generator=gen)
    q = torch.zeros(1, 1, 40, 8)
    peaked = [3, 17, 29]
    q[0, 0, peaked] = 10 * k[0, 0, peaked]
    every_key = torch.arange(40).expand(40, 40)  # sample every key: the exact measurement
    result = probsparse_attention(q, k, k, sample_index=every_key, n_top=3)
    assert sorted(result.top_queries.flatten().tolist()) == peaked


def test_dot_product_count_is_l_log_l():
    q, k, v = _qkv(length=96, heads=1, batch=1)
    result = probsparse_attention(q, k, v, factor=5)
    assert result.dot_products == 96 * 25 + 25 * 96
    layer = InformerAttention(16, 2, attention="prob", factor=5)
    layer(torch.randn(1, 1536, 16))
    assert layer.dot_products == 2 * (1536 * 40 + 40 * 1536)
    full = InformerAttention(16, 2, attention="full")
    full(torch.randn(1, 1536, 16))
    assert full.dot_products == 2 * 1536**2


def test_shared_sample_index_and_generator_repeat():
    q, k, v = _qkv()
    first = probsparse_attention(q, k, v, generator=torch.Generator().manual_seed(3))
    second = probsparse_attention(q, k, v, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first.output, second.output)
    shared = probsparse_attention(q, k, v, sample_index=torch.arange(20), n_top=5)
    assert shared.dot_products == 20 * 20 + 5 * 20


def test_distilling_halves_the_length():
    layer = DistillingLayer(8)
    for length, expected in ((96, 48), (48, 24), (7, 4)):
        assert layer(torch.randn(2, length, 8)).shape == (2, expected, 8)


@pytest.mark.parametrize("attention", ["prob", "full"])
def test_informer_shapes_and_gradients(attention):
    torch.manual_seed(0)
    model = Informer(3, 3, 2, pred_len=6, label_len=8, d_model=16, n_heads=2, d_ff=32, attention=attention)
    x, x_marks, dec, dec_marks = _inputs()
    out = model(x, x_marks, dec, dec_marks)
    assert out.shape == (2, 6, 2)
    out.square().mean().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad
    )
    # Encoder (2 layers, distilled 24 -> 12), decoder self- and cross-attention all counted.
    assert total_dot_products(model) > 0


def test_informer_without_marks_and_without_distilling():
    model = Informer(3, 3, 3, pred_len=6, label_len=8, d_model=16, n_heads=2, d_ff=32, distil=False).eval()
    x, _, dec, _ = _inputs()
    assert model(x, None, dec, None).shape == (2, 6, 3)
    assert model.encoder.distilling is None


def test_informer_stack_reads_halving_suffixes():
    model = InformerStack(
        3, 3, 3, pred_len=6, label_len=8, d_model=16, n_heads=2, d_ff=32, e_layers=(3, 2, 1)
    )
    model.eval()
    x, x_marks, dec, dec_marks = _inputs()
    assert model(x, x_marks, dec, dec_marks).shape == (2, 6, 3)
    memory = model.encoder(model.encoder_embedding(x, x_marks))
    # 24 steps, 3 layers (two halvings) -> 6; 12 steps, 2 layers -> 6; 6 steps, 1 layer -> 6.
    assert memory.shape == (2, 18, 16)


def test_eval_mode_full_attention_is_deterministic_and_changes_with_the_input():
    torch.manual_seed(0)
    model = Informer(
        3, 3, 3, pred_len=6, label_len=8, d_model=16, n_heads=2, d_ff=32, attention="full"
    ).eval()
    x, x_marks, dec, dec_marks = _inputs()
    first, second = model(x, x_marks, dec, dec_marks), model(x, x_marks, dec, dec_marks)
    assert torch.equal(first, second)
    assert not torch.allclose(model(x + 1, x_marks, dec, dec_marks), first)


# -- parity with transformers' Informer blocks ----------------------------------------------------


def _hf_config(d_model=16, heads=4, d_ff=24, factor=2, attention_type="prob"):
    from transformers import InformerConfig

    config = InformerConfig(
        prediction_length=4,
        d_model=d_model,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=d_ff,
        decoder_ffn_dim=d_ff,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="gelu",
        attention_type=attention_type,
        sampling_factor=factor,
    )
    config._attn_implementation = "eager"
    return config


def _copy_attention(ours: InformerAttention, reference) -> None:
    with torch.no_grad():
        for mine, theirs in (
            ("query", "q_proj"),
            ("key", "k_proj"),
            ("value", "v_proj"),
            ("out", "out_proj"),
        ):
            getattr(ours, mine).weight.copy_(getattr(reference, theirs).weight)
            getattr(ours, mine).bias.copy_(getattr(reference, theirs).bias)


def _copy(target: torch.nn.Module, source: torch.nn.Module) -> None:
    with torch.no_grad():
        target.weight.copy_(source.weight)
        target.bias.copy_(source.bias)


def _hf_sampling(query_len: int, key_len: int, factor: int, seed: int) -> tuple[torch.Tensor, int]:
    """The keys transformers samples (one draw of ``c L_Q ceil(ln(1 + L_K))`` capped at L_K, shared
    by every query) and its active-query count, drawn from the seeded global RNG as it does."""
    torch.manual_seed(seed)
    samples = min(factor * query_len * math.ceil(math.log1p(key_len)), key_len)
    index = torch.randint(0, key_len, (samples,))
    return index, min(factor * math.ceil(math.log1p(query_len)), query_len)


def _causal_mask(batch: int, length: int) -> torch.Tensor:
    return torch.triu(torch.full((length, length), torch.finfo(torch.float32).min), 1).expand(
        batch, 1, -1, -1
    )


def _assert_grads(pairs):
    for name, (mine, theirs) in pairs.items():
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0, msg=lambda m: f"{name}: {m}")


@pytest.mark.parity
@pytest.mark.parametrize("causal", [False, True])
def test_parity_probsparse_attention(causal):
    modeling = pytest.importorskip("transformers.models.informer.modeling_informer")
    torch.manual_seed(int(causal))
    batch, length, d_model, heads, factor = 3, 24, 16, 4, 2
    reference = modeling.InformerProbSparseAttention(
        d_model, heads, sampling_factor=factor, is_decoder=causal, layer_idx=0
    ).eval()
    ours = InformerAttention(d_model, heads, attention="prob", factor=factor, causal=causal).eval()
    _copy_attention(ours, reference)
    x = torch.randn(batch, length, d_model)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    index, n_top = _hf_sampling(length, length, factor, seed=11)
    torch.manual_seed(11)  # transformers draws the same keys now
    out_ref, _ = reference(x_ref, attention_mask=_causal_mask(batch, length) if causal else None)
    out = ours(x_ours, sample_index=index, n_top=n_top)
    assert n_top < length  # the lazy queries are exercised
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    pairs = {"x": (x_ours.grad, x_ref.grad)}
    for mine, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"), ("out", "out_proj")):
        pairs[mine] = (getattr(ours, mine).weight.grad, getattr(reference, theirs).weight.grad)
        pairs[mine + ".bias"] = (getattr(ours, mine).bias.grad, getattr(reference, theirs).bias.grad)
    _assert_grads(pairs)


@pytest.mark.parity
@pytest.mark.parametrize("training", [False, True])
def test_parity_distilling_layer(training):
    modeling = pytest.importorskip("transformers.models.informer.modeling_informer")
    torch.manual_seed(2)
    reference = modeling.InformerConvLayer(8).train(training)
    ours = DistillingLayer(8).train(training)
    _copy(ours.conv, reference.downConv)
    with torch.no_grad():
        reference.norm.weight.uniform_(0.5, 1.5)
        reference.norm.bias.normal_()
    _copy(ours.norm, reference.norm)
    x = torch.randn(4, 21, 8)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, out_ref = ours(x_ours), reference(x_ref)
    assert out.shape == out_ref.shape == (4, 11, 8)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    _assert_grads(
        {
            "x": (x_ours.grad, x_ref.grad),
            "conv": (ours.conv.weight.grad, reference.downConv.weight.grad),
            "norm": (ours.norm.weight.grad, reference.norm.weight.grad),
        }
    )
    torch.testing.assert_close(ours.norm.running_mean, reference.norm.running_mean)


def _copy_feed_forward(ours, reference):
    _copy(ours.linear1, reference.fc1)
    _copy(ours.linear2, reference.fc2)


@pytest.mark.parity
@pytest.mark.parametrize("attention", ["prob", "full"])
def test_parity_encoder_layer(attention):
    modeling = pytest.importorskip("transformers.models.informer.modeling_informer")
    torch.manual_seed(3)
    config = _hf_config(attention_type=attention)
    reference = modeling.InformerEncoderLayer(config).eval()
    ours = InformerEncoderLayer(16, 4, 24, attention=attention, factor=2, dropout=0.0).eval()
    _copy_attention(ours.attention, reference.self_attn)
    _copy_feed_forward(ours, reference)
    _copy(ours.norm1, reference.self_attn_layer_norm)
    _copy(ours.norm2, reference.final_layer_norm)
    batch, length = 2, 30
    x = torch.randn(batch, length, 16)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    index, n_top = _hf_sampling(length, length, 2, seed=5)
    torch.manual_seed(5)
    out_ref = reference(x_ref, attention_mask=None)
    out = ours(x_ours, sample_index=index, n_top=n_top)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    _assert_grads(
        {
            "x": (x_ours.grad, x_ref.grad),
            "query": (ours.attention.query.weight.grad, reference.self_attn.q_proj.weight.grad),
            "value": (ours.attention.value.weight.grad, reference.self_attn.v_proj.weight.grad),
            "linear1": (ours.linear1.weight.grad, reference.fc1.weight.grad),
            "norm2": (ours.norm2.weight.grad, reference.final_layer_norm.weight.grad),
        }
    )


@pytest.mark.parity
@pytest.mark.parametrize("attention", ["prob", "full"])
def test_parity_decoder_layer(attention):
    modeling = pytest.importorskip("transformers.models.informer.modeling_informer")
    torch.manual_seed(4)
    config = _hf_config(attention_type=attention)
    reference = modeling.InformerDecoderLayer(config, layer_idx=0).eval()
    ours = InformerDecoderLayer(16, 4, 24, attention=attention, factor=2, dropout=0.0).eval()
    _copy_attention(ours.self_attention, reference.self_attn)
    _copy_attention(ours.cross_attention, reference.encoder_attn)
    _copy_feed_forward(ours, reference)
    _copy(ours.norm1, reference.self_attn_layer_norm)
    _copy(ours.norm2, reference.encoder_attn_layer_norm)
    _copy(ours.norm3, reference.final_layer_norm)
    batch, length, memory_length = 2, 20, 12
    x, memory = torch.randn(batch, length, 16), torch.randn(batch, memory_length, 16)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    m_ours, m_ref = memory.clone().requires_grad_(), memory.clone().requires_grad_()
    index, n_top = _hf_sampling(length, length, 2, seed=6)
    torch.manual_seed(6)
    out_ref = reference(
        x_ref, attention_mask=_causal_mask(batch, length), encoder_hidden_states=m_ref, use_cache=False
    )
    out_ref = out_ref[0] if isinstance(out_ref, tuple) else out_ref
    out = ours(x_ours, m_ours, sample_index=index, n_top=n_top)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    _assert_grads(
        {
            "x": (x_ours.grad, x_ref.grad),
            "memory": (m_ours.grad, m_ref.grad),
            "self.key": (ours.self_attention.key.weight.grad, reference.self_attn.k_proj.weight.grad),
            "cross.value": (
                ours.cross_attention.value.weight.grad,
                reference.encoder_attn.v_proj.weight.grad,
            ),
            "linear2": (ours.linear2.weight.grad, reference.fc2.weight.grad),
            "norm3": (ours.norm3.weight.grad, reference.final_layer_norm.weight.grad),
        }
    )


# -- bad input -------------------------------------------------------------------------------------


def test_probsparse_rejects_bad_input():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="q must be a 4-D tensor"):
        probsparse_attention(q[0], k, v)
    with pytest.raises(TypeError, match="k must be a floating-point tensor"):
        probsparse_attention(q, k.long(), v)
    with pytest.raises(ValueError, match="k must be"):
        probsparse_attention(q, k[..., :4], v)
    q2, k2, v2 = _qkv(key_length=12)
    with pytest.raises(ValueError, match="causal ProbSparse attention needs L_Q == L_K"):
        probsparse_attention(q2, k2, v2, causal=True)
    with pytest.raises(ValueError, match="sample_index must lie in"):
        probsparse_attention(q, k, v, sample_index=torch.tensor([0, 20]))
    with pytest.raises(ValueError, match=r"sample_index must be \[U\] or \[L_Q=20, U\]"):
        probsparse_attention(q, k, v, sample_index=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_top must be in"):
        probsparse_attention(q, k, v, n_top=21)
    with pytest.raises(ValueError, match="factor must be >= 1"):
        probsparse_attention(q, k, v, factor=0)


def test_informer_rejects_bad_configuration_and_input():
    with pytest.raises(ValueError, match="attention must be one of"):
        Informer(3, 3, 3, pred_len=6, label_len=8, attention="sparse")
    with pytest.raises(ValueError, match="d_model must be a multiple of n_heads=3"):
        Informer(3, 3, 3, pred_len=6, label_len=8, d_model=16, n_heads=3)
    with pytest.raises(ValueError, match="pred_len must be >= 1"):
        Informer(3, 3, 3, pred_len=0, label_len=8)
    with pytest.raises(TypeError, match="e_layers must be an int"):
        Informer(3, 3, 3, pred_len=6, label_len=8, e_layers=2.0)
    with pytest.raises(TypeError, match="e_layers must be a non-empty sequence"):
        InformerStack(3, 3, 3, pred_len=6, label_len=8, e_layers=3)
    with pytest.raises(ValueError, match="activation must be one of"):
        Informer(3, 3, 3, pred_len=6, label_len=8, activation="tanh")
    model = Informer(3, 3, 3, pred_len=6, label_len=8, d_model=16, n_heads=2, d_ff=32)
    x, x_marks, dec, dec_marks = _inputs()
    with pytest.raises(ValueError, match="decoder_input must hold label_len \\+ pred_len = 14"):
        model(x, x_marks, dec[:, :10], dec_marks[:, :10])
    with pytest.raises(ValueError, match="x must have 3 channels"):
        model(x[..., :2], x_marks, dec, dec_marks)
    with pytest.raises(ValueError, match="x must be a 3-D tensor"):
        model(x[0], x_marks, dec, dec_marks)
    with pytest.raises(ValueError, match="share the batch size"):
        model(x, x_marks, dec[:1], dec_marks[:1])
    with pytest.raises(ValueError, match="marks must match"):
        model(x, x_marks[:, :5], dec, dec_marks)
