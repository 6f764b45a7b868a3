"""The weight EMA: the recurrence by hand, warm-up, buffers, state round trip, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aicanon.core.ema import EMA


def test_update_is_the_recurrence():
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.average.weight, 0.9 * start + 0.1 * model.weight)
    assert not ema.average.weight.requires_grad


def test_warmup_and_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)
    model.train()(torch.randn(4, 2))
    ema.update(model)
    assert ema.average[1].num_batches_tracked.item() == 1  # copied, not averaged
    assert ema.current_decay() == pytest.approx(2 / 11)


def test_state_round_trip():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.mul_(3)
    ema.update(model)
    other = EMA(nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(ema.state_dict())
    torch.testing.assert_close(other.average.weight, ema.average.weight)
    assert other.updates == 1


def test_bad_input():
    with pytest.raises(ValueError, match="decay"):
        EMA(nn.Linear(1, 1), decay=1.5)
    with pytest.raises(TypeError, match="model"):
        EMA("net")
    with pytest.raises(ValueError, match="parameters"):
        EMA(nn.Linear(1, 1)).update(nn.Linear(1, 2, bias=False))
