"""The data registry: dataset -> files -> canonical URL and sha256.

Lookup order for ``fetch(dataset, name)``:

1. ``$AICANON_DATA/<dataset>/<name>`` (CI and the tests point it at the staged ``shared/data``);
2. the user cache, ``$AICANON_CACHE`` or ``~/.cache/aicanon``;
3. a download from the canonical URL with pooch, verified against the sha256.

Every file found is verified (sha256, cached per path, size and mtime). Anything missing,
corrupt, offline or without a verifiable hash raises :class:`DataUnavailable`, whose message names
the file, its URL, the expected hash and ``AICANON_DATA``. Loaders never unpickle arbitrary
objects: a format that is a pickle (Planetoid's ``ind.*`` files) is read only after its hash is
verified, through a restricted unpickler that admits a fixed list of names.

The registry (``datasets.toml``) is generated from ``shared/data/SOURCES.md`` by
``scripts/gen_data_registry.py``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ENV_DATA = "AICANON_DATA"
ENV_CACHE = "AICANON_CACHE"
ENV_OFFLINE = "AICANON_OFFLINE"


class DataUnavailable(RuntimeError):
    """A registered data file is missing, corrupt, or cannot be fetched."""

    def __init__(self, dataset: str, name: str, url: str, sha256: str, reason: str):
        self.dataset, self.name, self.url, self.sha256, self.reason = dataset, name, url, sha256, reason
        super().__init__(
            f"{dataset}/{name} is unavailable: {reason}.\n"
            f"  URL: {url}\n"
            f"  expected sha256: {sha256 or '(none registered: this file cannot be verified)'}\n"
            f"  Put the file at ${ENV_DATA}/{dataset}/{name} (set {ENV_DATA} to the folder holding "
            f"the datasets; now {os.environ.get(ENV_DATA, 'unset')!r}) or in the cache {cache_dir()}."
        )


@dataclass(frozen=True)
class DataFile:
    dataset: str
    name: str
    url: str
    sha256: str
    size: int
    converted: bool

    @property
    def verifiable(self) -> bool:
        return bool(self.sha256)


@functools.cache
def registry() -> dict[str, dict[str, DataFile]]:
    """All registered datasets: ``{dataset: {file name: DataFile}}``."""
    text = resources.files("aicanon.core").joinpath("datasets.toml").read_text()
    raw = tomllib.loads(text)
    out: dict[str, dict[str, DataFile]] = {}
    for dataset, entry in raw.items():
        out[dataset] = {
            f["name"]: DataFile(dataset, f["name"], f["url"], f["sha256"], f["size"], f["converted"])
            for f in entry["files"]
        }
    return out


def dataset_titles() -> dict[str, str]:
    raw = tomllib.loads(resources.files("aicanon.core").joinpath("datasets.toml").read_text())
    return {k: v["title"] for k, v in raw.items()}


TRUE_VALUES = ("1", "true", "yes", "on", "y", "t")


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_VALUES


def offline() -> bool:
    """Downloads are off when ``AICANON_OFFLINE`` holds a usual true value (1, true, yes, on, in any
    case) and on CI (``CI`` set)."""
    return _is_true(os.environ.get(ENV_OFFLINE)) or bool(os.environ.get("CI"))


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "aicanon")


def data_file(dataset: str, name: str) -> DataFile:
    reg = registry()
    if dataset not in reg:
        raise ValueError(f"dataset must be one of {sorted(reg)}, got {dataset!r}")
    if name not in reg[dataset]:
        raise ValueError(f"{dataset} has no registered file {name!r}; files: {sorted(reg[dataset])}")
    return reg[dataset][name]


@functools.cache
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def candidates(dataset: str, name: str) -> list[Path]:
    """Where ``fetch`` looks, in order."""
    paths = []
    if os.environ.get(ENV_DATA):
        paths.append(Path(os.environ[ENV_DATA]) / dataset / name)
    paths.append(cache_dir() / dataset / name)
    return paths


def locate(dataset: str, name: str) -> tuple[Path | None, str]:
    """Return (path, state) with state ``ok``, ``missing``, ``corrupt`` or ``unverifiable``."""
    entry = data_file(dataset, name)
    state = "missing"
    for path in candidates(dataset, name):
        if not path.is_file():
            continue
        if not entry.verifiable:
            return path, "unverifiable"
        if sha256(path) == entry.sha256:
            return path, "ok"
        state = "corrupt"
        corrupt_path = path
    return (corrupt_path if state == "corrupt" else None), state


def fetch(dataset: str, name: str) -> Path:
    """Return a verified local path to ``dataset/name``, downloading it when allowed."""
    entry = data_file(dataset, name)
    path, state = locate(dataset, name)
    if state == "ok":
        assert path is not None
        return path
    if not entry.verifiable:
        raise DataUnavailable(
            dataset, name, entry.url, "", "it is not staged and no hash is registered for it"
        )
    if state == "corrupt":
        reason = f"{path} does not match the registered sha256 (corrupt or a different version)"
        raise DataUnavailable(dataset, name, entry.url, entry.sha256, reason)
    if entry.converted:
        reason = (
            "it was made by a lossless conversion (see shared/data/SOURCES.md), so it cannot be "
            "downloaded as one file"
        )
        raise DataUnavailable(dataset, name, entry.url, entry.sha256, reason)
    if offline():
        raise DataUnavailable(
            dataset, name, entry.url, entry.sha256, "it is not found locally and downloads are off"
        )
    return _download(entry)


def _download(entry: DataFile) -> Path:
    import pooch

    target = cache_dir() / entry.dataset
    target.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = pooch.retrieve(
            entry.url, known_hash=f"sha256:{entry.sha256}", fname=entry.name.replace("/", "__"), path=target
        )
    except Exception as error:  # network errors, HTTP errors, hash mismatch
        raise DataUnavailable(
            entry.dataset, entry.name, entry.url, entry.sha256, f"download failed ({error})"
        ) from error
    final = target / entry.name
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(downloaded, final)
    return final
