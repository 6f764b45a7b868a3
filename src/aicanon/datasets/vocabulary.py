"""A word-level vocabulary: tokens to ids and back, built from counts, saved as JSON; and padding.

The word-level papers (pointer sentinel on WikiText-2, Tree-LSTM on SST, the Attentive Reader's
cloze sets) index whitespace-tokenised text. :class:`Vocabulary` keeps the special tokens first, then
the other tokens by decreasing count (ties alphabetical, so the ids repeat across runs and machines),
cut at ``min_count`` and ``max_size``; tokens outside it map to ``unk`` when the vocabulary has one
and are an error otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from aicanon.core.checks import check_int

__all__ = ["Vocabulary", "pad_sequences"]


class Vocabulary:
    """An ordered token list; ``specials`` (e.g. ``("<pad>", "<unk>")``) come first.

    ``unk``: the token that unknown tokens map to (must be among the tokens), or ``None`` to raise
    on unknown tokens.
    """

    def __init__(
        self, tokens: Sequence[str], *, unk: str | None = "<unk>", pad: str | None = "<pad>"
    ) -> None:
        tokens = list(tokens)
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise ValueError("tokens must be a non-empty sequence of str")
        if len(set(tokens)) != len(tokens):
            duplicates = sorted(t for t, c in Counter(tokens).items() if c > 1)
            raise ValueError(f"tokens must be distinct, got duplicates {duplicates[:10]}")
        self.tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}
        for name, token in (("unk", unk), ("pad", pad)):
            if token is not None and token not in self._index:
                raise ValueError(f"{name} token {token!r} is not among the vocabulary's tokens")
        self.unk, self.pad = unk, pad
        self.counts: dict[str, int] = {}  # filled by build(): the kept tokens' training counts

    @classmethod
    def build(
        cls,
        texts: Iterable[Sequence[str]],
        *,
        min_count: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = ("<pad>", "<unk>"),
        unk: str | None = "<unk>",
        pad: str | None = "<pad>",
    ) -> Vocabulary:
        """Count the tokens of ``texts`` (each a sequence of tokens) and keep the frequent ones.

        ``max_size`` bounds the whole vocabulary, specials included.
        """
        check_int("min_count", min_count, 1)
        check_int("max_size", max_size, len(specials) + 1, allow_none=True)
        counts: Counter[str] = Counter()
        for text in texts:
            if isinstance(text, str):
                raise TypeError("texts must be sequences of tokens (e.g. text.split()), got a str")
            counts.update(text)
        special_set = set(specials)
        kept = [t for t, c in counts.items() if c >= min_count and t not in special_set]
        kept.sort(key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        vocabulary = cls([*specials, *kept], unk=unk, pad=pad)
        vocabulary.counts = {t: counts[t] for t in kept}
        return vocabulary

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    @property
    def unk_id(self) -> int:
        if self.unk is None:
            raise ValueError("this vocabulary has no unk token")
        return self._index[self.unk]

    @property
    def pad_id(self) -> int:
        if self.pad is None:
            raise ValueError("this vocabulary has no pad token")
        return self._index[self.pad]

    def index(self, token: str) -> int:
        """The id of ``token``: its own, else unk's; a ``KeyError`` naming it when there is no unk."""
        found = self._index.get(token)
        if found is not None:
            return found
        if self.unk is None:
            raise KeyError(f"token {token!r} is not in the vocabulary (and it has no unk token)")
        return self._index[self.unk]

    def encode(self, tokens: Sequence[str]) -> Tensor:
        """Ids ``long [len(tokens)]``."""
        if isinstance(tokens, str):
            raise TypeError("tokens must be a sequence of tokens (e.g. text.split()), got a str")
        return torch.tensor([self.index(t) for t in tokens], dtype=torch.long)

    def decode(self, ids: Iterable[int] | Tensor) -> list[str]:
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        bad = [i for i in values if not (isinstance(i, int) and 0 <= i < len(self.tokens))]
        if bad:
            raise ValueError(f"ids must be ints in [0, {len(self.tokens)}), got {bad[:10]}")
        return [self.tokens[i] for i in values]

    def save(self, path: str | Path) -> None:
        """Write ``{"tokens": [...], "unk": ..., "pad": ...}`` as JSON (UTF-8)."""
        data = {"tokens": self.tokens, "unk": self.unk, "pad": self.pad}
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["tokens"], unk=data["unk"], pad=data["pad"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a saved Vocabulary: {error}") from error


def pad_sequences(sequences: Sequence[Tensor], pad_id: int) -> tuple[Tensor, Tensor]:
    """Stack 1-D id tensors into ``[B, max_len]`` filled with ``pad_id``; and their lengths ``[B]``."""
    if not sequences:
        raise ValueError("sequences must not be empty")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor) or s.dim() != 1:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"sequences[{i}] must be a 1-D tensor, got {got}")
    lengths = torch.tensor([s.numel() for s in sequences], dtype=torch.long)
    out = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=sequences[0].dtype)
    for i, s in enumerate(sequences):
        out[i, : s.numel()] = s
    return out, lengths
