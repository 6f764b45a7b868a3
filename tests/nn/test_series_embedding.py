"""The time-series input embedding: scalar projection + position + time stamp (Informer, Appendix B)."""

import math

import pytest
import torch

from aicanon.nn.series_embedding import DataEmbedding, PositionalEmbedding, TemporalEmbedding, sinusoid_table


def test_sinusoid_table_by_hand():
    table = sinusoid_table(3, 4)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(table[2], torch.tensor([math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)]))
    assert sinusoid_table(5, 3).shape == (5, 3)  # odd widths work too


def test_token_embedding_is_a_circular_convolution_over_time():
    torch.manual_seed(0)
    embedding = DataEmbedding(2, 8, dropout=0.0, positional=False, bias=False)
    x = torch.randn(1, 5, 2)
    marks = torch.zeros(1, 5, 4)
    out = embedding(x, marks)
    weight = embedding.value.conv.weight  # [8, 2, 3]
    # Step 0 sees steps 4 (wrapped), 0 and 1.
    window = torch.stack([x[0, 4], x[0, 0], x[0, 1]], dim=1)  # [2, 3]
    assert torch.allclose(out[0, 0], (weight * window).sum(dim=(1, 2)), atol=1e-6)


def test_position_and_time_stamp_parts_add_up():
    torch.manual_seed(0)
    embedding = DataEmbedding(3, 6, dropout=0.0).eval()
    x, marks = torch.randn(2, 7, 3), torch.rand(2, 7, 4) - 0.5
    expected = embedding.value(x) + sinusoid_table(7, 6) + embedding.temporal.linear(marks)
    assert torch.allclose(embedding(x, marks), expected, atol=1e-6)
    assert torch.allclose(embedding(x, None), embedding.value(x) + sinusoid_table(7, 6), atol=1e-6)


def test_fixed_temporal_embedding_is_frozen_and_learned_is_not():
    fixed, learned = TemporalEmbedding(4, "fixed"), TemporalEmbedding(4, "learned")
    assert not any(p.requires_grad for p in fixed.parameters())
    assert all(p.requires_grad for p in learned.parameters())
    marks = torch.tensor([[[12, 31, 6, 23]]])
    expected = sum(sinusoid_table(size, 4)[i] for size, i in ((13, 12), (32, 31), (7, 6), (24, 23)))
    assert torch.allclose(fixed(marks)[0, 0], expected)
    embedding = DataEmbedding(1, 4, embed="fixed", dropout=0.0)
    assert embedding(torch.randn(1, 1, 1), marks).shape == (1, 1, 4)


def test_bad_input_is_refused():
    embedding = DataEmbedding(3, 8)
    with pytest.raises(ValueError, match="x must have 3 channels \\(last axis\\), got shape \\(2, 5, 4\\)"):
        embedding(torch.randn(2, 5, 4), None)
    with pytest.raises(ValueError, match="marks must match x's batch and time axes"):
        embedding(torch.randn(2, 5, 3), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="marks must hold 4 time features"):
        embedding(torch.randn(2, 5, 3), torch.randn(2, 5, 3))
    with pytest.raises(TypeError, match="marks must be a non-floating-point"):
        TemporalEmbedding(4)(torch.rand(1, 2, 4))
    with pytest.raises(ValueError, match="embed must be one of"):
        DataEmbedding(3, 8, embed="sinusoid")
    with pytest.raises(ValueError, match="max_len=5000"):
        PositionalEmbedding(4)(torch.zeros(1, 5001, 1))
