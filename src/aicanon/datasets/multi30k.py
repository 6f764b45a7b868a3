"""Multi30k task 1 (Elliott et al., 2016): Flickr30k image captions translated into German and French.

29,000 training, 1,014 validation and 1,000 test (``test_2016_flickr``) sentence pairs; the files of
one split are aligned line by line across English (``en``), German (``de``) and French (``fr``).
They are read through the data registry (``multi30k/<split>.<language>.gz``, raw gzip text, one
sentence a line) and returned as untokenised strings.

A file that does not decompress or decode raises ``DataUnavailable`` naming it; two files of one
split whose line counts differ (misaligned) raise ``ValueError`` naming both.
"""

from __future__ import annotations

import gzip
import zlib

from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["LANGUAGES", "SPLITS", "load_multi30k", "pair_lines", "read_lines"]

LANGUAGES = ("en", "de", "fr")
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr", "test_2016_flickr": "test_2016_flickr"}
"""Split names accepted by :func:`load_multi30k` -> the files' stem (``test`` is the 2016 Flickr test set)."""


def read_lines(name: str) -> list[str]:
    """The sentences of the registered file ``multi30k/<name>`` (trailing whitespace stripped)."""
    path = fetch("multi30k", name)
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        entry = data_file("multi30k", name)
        raise DataUnavailable(
            "multi30k", name, entry.url, entry.sha256, f"{path} is corrupt: {error}"
        ) from error
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last sentence
    return [line.rstrip() for line in lines]


def pair_lines(
    sources: list[str], targets: list[str], source_name: str = "source", target_name: str = "target"
) -> list[tuple[str, str]]:
    """Zip two aligned sentence lists; a difference in length raises ``ValueError`` naming both."""
    if len(sources) != len(targets):
        raise ValueError(
            f"misaligned parallel files: {source_name} has {len(sources)} lines, "
            f"{target_name} has {len(targets)}"
        )
    return list(zip(sources, targets))


def load_multi30k(split: str = "train", source: str = "en", target: str = "de") -> list[tuple[str, str]]:
    """Multi30k ``split`` (``train``, ``val`` or ``test``) as (source sentence, target sentence) pairs."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    for name, language in (("source", source), ("target", target)):
        if language not in LANGUAGES:
            raise ValueError(f"{name} must be one of {LANGUAGES}, got {language!r}")
    if source == target:
        raise ValueError(f"source and target must be different languages, got {source!r} twice")
    stem = SPLITS[split]
    source_file, target_file = f"{stem}.{source}.gz", f"{stem}.{target}.gz"
    return pair_lines(read_lines(source_file), read_lines(target_file), source_file, target_file)
