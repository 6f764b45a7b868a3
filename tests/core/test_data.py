import hashlib
import re
import shutil
from pathlib import Path

import pytest

from aicanon.core import data

SOURCES = Path(__file__).resolve().parents[3] / "shared" / "data" / "SOURCES.md"


def test_registry_matches_sources_md():
    if not SOURCES.exists():
        pytest.skip("shared/data/SOURCES.md is not beside this checkout")
    text = SOURCES.read_text()
    rows = re.findall(
        r"^\| (\S+?)(?: \(converted\))? \| .+? \| [0-9a-f]{12} \| \d+ \| ([0-9a-f]{64}) \|$",
        text,
        re.MULTILINE,
    )
    expected = {local: sha for local, sha in rows}
    registered = {
        f"{ds}/{name}": f.sha256
        for ds, files in data.registry().items()
        for name, f in files.items()
        if f.sha256
    }
    assert registered == expected


def test_every_verifiable_file_has_an_https_url():
    for files in data.registry().values():
        for entry in files.values():
            assert entry.url.startswith("https://"), entry


def test_fetch_finds_staged_file_and_verifies_it():
    path = data.fetch("planetoid", "ind.cora.y")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == data.data_file("planetoid", "ind.cora.y").sha256


def _stage(tmp_path, monkeypatch, content: bytes | None):
    monkeypatch.setenv("AICANON_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AICANON_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "data" / "planetoid" / "ind.cora.y"
    if content is not None:
        target.parent.mkdir(parents=True)
        target.write_bytes(content)
    return target


def test_missing_file_raises_data_unavailable_naming_everything(tmp_path, monkeypatch):
    _stage(tmp_path, monkeypatch, None)
    with pytest.raises(data.DataUnavailable) as info:
        data.fetch("planetoid", "ind.cora.y")
    message = str(info.value)
    entry = data.data_file("planetoid", "ind.cora.y")
    assert "planetoid/ind.cora.y" in message and entry.url in message
    assert entry.sha256 in message and "AICANON_DATA" in message


def test_corrupt_file_raises_data_unavailable(tmp_path, monkeypatch):
    original = data.fetch("planetoid", "ind.cora.y").read_bytes()
    _stage(tmp_path, monkeypatch, original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(data.DataUnavailable, match="does not match the registered sha256"):
        data.fetch("planetoid", "ind.cora.y")


def test_good_copy_elsewhere_is_found(tmp_path, monkeypatch):
    source = data.fetch("planetoid", "ind.cora.y")
    target = _stage(tmp_path, monkeypatch, None)
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    assert data.fetch("planetoid", "ind.cora.y") == target


def test_unstaged_file_without_hash_is_refused():
    with pytest.raises(data.DataUnavailable, match="no hash is registered"):
        data.fetch("planetoid", "ind.pubmed.allx")


def test_converted_file_cannot_be_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    monkeypatch.setenv("AICANON_CACHE", str(tmp_path))
    with pytest.raises(data.DataUnavailable, match="lossless conversion"):
        data.fetch("mnist", "mnist_train.npz")


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.fetch("imagenet", "x")
    with pytest.raises(ValueError, match="has no registered file 'ind.cora.z'"):
        data.fetch("planetoid", "ind.cora.z")


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " Yes "])
def test_offline_accepts_the_usual_true_values(value, monkeypatch, tmp_path):
    # Only "1" was honoured: AICANON_OFFLINE=true still downloaded.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("AICANON_OFFLINE", value)
    assert data.offline()
    _stage(tmp_path, monkeypatch, None)
    monkeypatch.setattr(data, "_download", lambda entry: pytest.fail("downloaded although offline"))
    with pytest.raises(data.DataUnavailable, match="downloads are off"):
        data.fetch("planetoid", "ind.cora.y")


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_offline_is_off_for_false_values(value, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("AICANON_OFFLINE", value)
    assert not data.offline()
