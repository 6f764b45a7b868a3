"""aicanon.rl.buffers: the ring buffer stores, wraps, samples uniformly, refuses bad input, round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aicanon.rl.buffers import ReplayBuffer, space_spec

gym = pytest.importorskip("gymnasium")
pytestmark = pytest.mark.paper("gym")


def _buffer(capacity=5):
    spaces = gym.spaces
    return ReplayBuffer.for_spaces(spaces.Box(-1, 1, (3,)), spaces.Discrete(4), capacity)


def _transition(value, n=None):
    lead = () if n is None else (n,)
    return {
        "observation": np.full((*lead, 3), value, dtype=np.float32),
        "action": np.full(lead, int(value) % 4),
        "reward": np.full(lead, float(value)),
        "next_observation": np.full((*lead, 3), value + 1, dtype=np.float32),
        "terminated": np.zeros(lead),
    }


def test_fields_follow_the_spaces():
    spaces = gym.spaces
    assert space_spec(spaces.Discrete(3)) == ((), np.dtype(np.int64))
    assert space_spec(spaces.Box(-1, 1, (2, 3))) == ((2, 3), np.dtype(np.float32))
    with pytest.raises(TypeError, match="space must be"):
        space_spec(spaces.Text(4))


def test_ring_overwrites_the_oldest_and_batches_are_stored_in_order():
    buffer = _buffer(capacity=5)
    for value in range(3):
        buffer.add(**_transition(value))
    buffer.add(**_transition(10, 2))
    buffer.add(**_transition(20))
    assert len(buffer) == 5 and buffer.position == 1
    assert buffer.storage["reward"].tolist() == [20.0, 1.0, 2.0, 10.0, 10.0]


def test_sampling_is_uniform_seeded_and_typed():
    buffer = _buffer(capacity=100)
    buffer.add(**_transition(0, 100) | {"reward": np.arange(100.0)})
    g, h = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a = [buffer.sample(100, g) for _ in range(50)]
    b = [buffer.sample(100, h) for _ in range(50)]
    assert all(torch.equal(x["reward"], y["reward"]) for x, y in zip(a, b, strict=True))
    assert a[0]["action"].dtype == torch.int64 and a[0]["observation"].shape == (100, 3)
    rewards = torch.cat([x["reward"] for x in a])
    counts = torch.bincount(rewards.long(), minlength=100).float()
    assert counts.min() > 20 and counts.max() < 85  # about 50 each


def test_bad_input_is_refused():
    buffer = _buffer()
    with pytest.raises(ValueError, match="fewer than batch_size=2"):
        buffer.sample(2)
    with pytest.raises(ValueError, match="missing \\['terminated'\\]"):
        buffer.add(**{k: v for k, v in _transition(0).items() if k != "terminated"})
    with pytest.raises(ValueError, match="observation must have shape"):
        buffer.add(**_transition(0) | {"observation": np.zeros(4)})
    with pytest.raises(ValueError, match="reward must be finite"):
        buffer.add(**_transition(0) | {"reward": np.array(np.nan)})
    with pytest.raises(ValueError, match="capacity"):
        buffer.add(**_transition(0, 6))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, {"x": ((), np.float32)})


def test_state_dict_round_trip():
    buffer = _buffer(capacity=4)
    for value in range(6):
        buffer.add(**_transition(value))
    copy = _buffer(capacity=4)
    copy.load_state_dict(buffer.state_dict())
    assert (copy.position, copy.size) == (buffer.position, buffer.size)
    for name in buffer.fields:
        np.testing.assert_array_equal(copy.storage[name], buffer.storage[name])
    with pytest.raises(ValueError, match="does not fit"):
        _buffer(capacity=2).load_state_dict(buffer.state_dict())
