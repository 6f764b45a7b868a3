"""Additive attention against a direct computation of Bahdanau et al.'s Eq. 6, masks and bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.nn.additive_attention import AdditiveAttention


def test_matches_the_equation_by_hand():
    torch.manual_seed(0)
    attention = AdditiveAttention(3, 5, 7)
    q, k, v = torch.randn(2, 3), torch.randn(2, 4, 5), torch.randn(2, 4, 6)
    context, weights = attention(q, k, values=v)
    W_q, W_k, b, w = (
        attention.query_proj.weight,
        attention.key_proj.weight,
        attention.key_proj.bias,
        attention.score.weight[0],
    )
    for i in range(2):
        scores = torch.stack([w @ torch.tanh(W_q @ q[i] + W_k @ k[i, j] + b) for j in range(4)])
        alpha = scores.softmax(0)
        torch.testing.assert_close(weights[i], alpha)
        torch.testing.assert_close(context[i], alpha @ v[i])


def test_many_queries_equal_one_at_a_time_and_projected_keys_are_reused():
    torch.manual_seed(1)
    attention = AdditiveAttention(3, 5, 7)
    q, k = torch.randn(2, 6, 3), torch.randn(2, 4, 5)
    context, weights = attention(q, k)
    projected = attention.project_keys(k)
    for t in range(6):
        c, w = attention(q[:, t], k, projected_keys=projected)
        torch.testing.assert_close(c, context[:, t])
        torch.testing.assert_close(w, weights[:, t])


def test_mask_zeroes_padding_and_weights_sum_to_one():
    torch.manual_seed(2)
    attention = AdditiveAttention(3, 5, 7)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    k = torch.randn(2, 4, 5)
    _, weights = attention(torch.randn(2, 3), k, mask=mask)
    assert (weights[0, 2:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    # Padding content does not change the result.
    k2 = k.clone()
    k2[0, 2:] = 100.0
    torch.testing.assert_close(
        attention(torch.zeros(2, 3), k, mask=mask)[0][0], attention(torch.zeros(2, 3), k2, mask=mask)[0][0]
    )


def test_gradients_flow_to_every_parameter():
    attention = AdditiveAttention(3, 5, 7)
    context, _ = attention(torch.randn(2, 3), torch.randn(2, 4, 5))
    context.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attention.parameters())


def test_bad_input():
    attention = AdditiveAttention(3, 5, 7)
    with pytest.raises(ValueError, match="keys"):
        attention(torch.randn(2, 3), torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="query"):
        attention(torch.randn(3, 3), torch.randn(2, 4, 5))
    with pytest.raises(TypeError, match="mask"):
        attention(torch.randn(2, 3), torch.randn(2, 4, 5), mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="at least one"):
        attention(torch.randn(2, 3), torch.randn(2, 4, 5), mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="hidden_size"):
        AdditiveAttention(3, 5, 0)
