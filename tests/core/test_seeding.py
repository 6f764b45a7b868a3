"""aicanon.core.seeding: seeds and the thread-count context experiments and the CLI share."""

from __future__ import annotations

import pytest
import torch

from aicanon.core import seed, torch_threads


def test_seed_repeats_draws():
    a = torch.randn(3, generator=seed(7))
    b = torch.randn(3, generator=seed(7))
    assert torch.equal(a, b)


def test_torch_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 3
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(wanted):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    for leave_alone in (None, 0):
        with torch_threads(leave_alone):
            assert torch.get_num_threads() == before


def test_torch_threads_bad_input():
    with pytest.raises(ValueError, match="threads must be >= 0 or None, got -1"), torch_threads(-1):
        pass
