"""aicanon.datasets.multi30k: the staged Multi30k files, corrupt and misaligned files, bad input."""

from __future__ import annotations

import gzip

import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets import multi30k
from aicanon.datasets.multi30k import load_multi30k, pair_lines

pytestmark = pytest.mark.paper("gnmt")


def test_split_sizes_and_first_pairs():
    assert [len(load_multi30k(split)) for split in ("train", "val", "test")] == [29000, 1014, 1000]
    train = load_multi30k("train")
    assert train[0] == (
        "Two young, White males are outside near many bushes.",
        "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
    )
    assert (
        load_multi30k("test_2016_flickr", "en", "fr")[0][0] == "A man in an orange hat starring at something."
    )
    assert all(source and target for source, target in load_multi30k("val", "de", "fr"))


def test_corrupt_file_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "multi30k").mkdir()
    (tmp_path / "multi30k" / "val.en.gz").write_bytes(b"not gzip")
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    monkeypatch.setenv("AICANON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AICANON_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="val.en.gz"):
        load_multi30k("val")


def test_undecodable_content_raises_data_unavailable(tmp_path, monkeypatch):
    bad = tmp_path / "val.de.gz"
    bad.write_bytes(gzip.compress(b"\xff\xfe broken"))
    monkeypatch.setattr(multi30k, "fetch", lambda dataset, name: bad)
    with pytest.raises(DataUnavailable, match="val.de.gz"):
        multi30k.read_lines("val.de.gz")


def test_misaligned_files_raise_value_error_naming_both():
    with pytest.raises(ValueError, match="misaligned parallel files: val.en.gz has 2 lines, val.de.gz has 1"):
        pair_lines(["a", "b"], ["c"], "val.en.gz", "val.de.gz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        load_multi30k("dev")
    with pytest.raises(ValueError, match=r"target must be one of \('en', 'de', 'fr'\), got 'cs'"):
        load_multi30k("val", "en", "cs")
    with pytest.raises(ValueError, match="source and target must be different languages"):
        load_multi30k("val", "de", "de")
