"""aicanon.datasets.text: Tiny Shakespeare by character."""

from __future__ import annotations

import pytest
import torch

from aicanon.datasets.text import CharTokenizer, char_splits, load_tinyshakespeare, random_batch

pytestmark = pytest.mark.paper("llama2")


def test_tinyshakespeare_splits_and_round_trips():
    text = load_tinyshakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    train, val, tok = char_splits(text)
    assert tok.vocab_size == 65
    assert train.numel() + val.numel() == len(text)
    assert tok.decode(val[:50]) == text[train.numel() : train.numel() + 50]


def test_random_batch_targets_are_shifted_inputs():
    ids = torch.arange(100)
    x, y = random_batch(ids, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10)
    assert torch.equal(y, x + 1)
    x2, _ = random_batch(ids, 4, 10, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)


def test_bad_input():
    tok = CharTokenizer.fit("abc")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("abd")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\)"):
        tok.decode([3])
    with pytest.raises(ValueError, match="val_fraction"):
        char_splits("abc", 1.5)
    with pytest.raises(ValueError, match="more than seq_len"):
        random_batch(torch.arange(5), 2, 5)
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        CharTokenizer.fit("")
