"""WikiText-2 (Merity et al., 2016): word-level language modelling on Wikipedia's Good and Featured articles.

The files are the tokenised WikiText-2 of pytorch/examples (``word_language_model/data/wikitext-2``):
one paragraph or heading per line, tokens separated by spaces, words outside the 33,278-word
vocabulary already replaced by ``<unk>`` and numbers split (``@,@``, ``@.@``). We read them with the
standard word-level convention (pytorch/examples' ``data.py``, and the paper's token counts): every
line, blank ones included, is ``line.split()`` followed by one ``"<eos>"`` token. That gives the
paper's Table 3 counts: 217,646 validation tokens and 245,569 test tokens (2,088,628 for training).

``valid.txt`` and ``test.txt`` are in the data registry. ``train.txt`` is not (it is not staged in
``shared/data``): :func:`load_wikitext2` raises :class:`~aicanon.core.data.DataUnavailable` for it,
naming :data:`TRAIN_URL`, until the registry gains an entry for it.
"""

from __future__ import annotations

from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["EOS", "SPLITS", "TRAIN_URL", "load_wikitext2", "tokenize_lines"]

EOS = "<eos>"
"""The token appended at the end of every line (pytorch/examples' word-level convention)."""
SPLITS = ("train", "valid", "test")
TRAIN_URL = (
    "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/"
    "word_language_model/data/wikitext-2/train.txt"
)
"""Where ``train.txt`` comes from: the same pytorch/examples commit as the registered valid/test files."""


def tokenize_lines(text: str) -> list[str]:
    """Split ``text`` into tokens: each line's whitespace-separated words, then ``"<eos>"``.

    A trailing newline does not start a line of its own (``"a b\\n"`` is ``["a", "b", "<eos>"]``).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    tokens: list[str] = []
    for line in text.splitlines():
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def load_wikitext2(split: str) -> list[str]:
    """The tokens of WikiText-2's ``split`` (``"train"``, ``"valid"`` or ``"test"``), ``"<eos>"`` at
    every line end.

    Raises ``DataUnavailable`` when the file cannot be had: for ``"train"``, which the data
    registry does not list, the error names :data:`TRAIN_URL`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    name = f"{split}.txt"
    try:
        data_file("wikitext-2", name)
    except ValueError as error:
        reason = (
            f"{name} is not in the data registry ({error}); download it from the URL and ask for a "
            "registry entry (aicanon/core/datasets.toml) with its sha256"
        )
        raise DataUnavailable(
            "wikitext-2", name, TRAIN_URL if split == "train" else "", "", reason
        ) from error
    return tokenize_lines(fetch("wikitext-2", name).read_text(encoding="utf-8"))
