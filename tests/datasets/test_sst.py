"""aicanon.datasets.sst: the staged SST tree files."""

from __future__ import annotations

import numpy as np
import pytest

from aicanon.datasets.sst import load_sst, load_sst_binary

pytestmark = pytest.mark.paper("lime")


def test_split_sizes_and_first_sentence():
    texts, labels = load_sst("train")
    assert len(texts) == 8544 and set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert texts[0].startswith("The Rock is destined to be the 21st Century 's new")
    assert labels[0] == 3
    assert [len(load_sst(s)[0]) for s in ("dev", "test")] == [1101, 2210]


def test_binary_task_sizes():
    sizes = [len(load_sst_binary(s)[0]) for s in ("train", "dev", "test")]
    assert sizes == [6920, 872, 1821]
    texts, labels = load_sst_binary("test")
    assert texts[0] == texts[0].lower() and "(" not in texts[0] and 0.45 < labels.mean() < 0.55


def test_bad_split():
    with pytest.raises(ValueError, match="split must be train, dev or test, got 'valid'"):
        load_sst("valid")
