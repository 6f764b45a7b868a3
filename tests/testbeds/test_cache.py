"""aicanon.testbeds.cache: the cache folder follows the results folder; a cached state is used only
for its own configuration, and a damaged or foreign one warns and gives None."""

from __future__ import annotations

import pytest
import torch

from aicanon.core.checkpoint import save_checkpoint
from aicanon.testbeds.cache import cache_folder, load_cached


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path / "out"))
    assert cache_folder(None, "thing") == tmp_path / "out" / "_cache" / "thing"
    assert cache_folder("", "thing") is None
    assert cache_folder(tmp_path, "thing") == tmp_path


def test_load_cached_checks_the_config_and_survives_damage(tmp_path):
    save_checkpoint(tmp_path / "a", {"weights": torch.ones(2), "config": {"size": 1}})
    assert torch.equal(load_cached(tmp_path / "a", {"size": 1}, "toy", lambda s: s["weights"]), torch.ones(2))
    with pytest.warns(UserWarning, match="toy cache at .* could not be used .*differs.*; retraining"):
        assert load_cached(tmp_path / "a", {"size": 2}, "toy", lambda s: s["weights"]) is None
    with pytest.warns(UserWarning, match="could not be used .*KeyError|could not be used .*missing"):
        assert load_cached(tmp_path / "a", {"size": 1}, "toy", lambda s: s["missing"]) is None
    with pytest.warns(UserWarning, match="no complete checkpoint"):
        assert load_cached(tmp_path / "empty", {"size": 1}, "toy", lambda s: s) is None
