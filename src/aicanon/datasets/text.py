"""Character-level language-modelling data: Tiny Shakespeare (Karpathy's char-rnn corpus, 1.1 MB).

The language-model experiments train small models on characters: a 65-symbol vocabulary needs no
tokenizer download and a model of a few hundred thousand parameters learns it in seconds on a CPU.
The text is read through the data registry (``tinyshakespeare/input.txt``), split into a training
head and a validation tail (contiguous, so no validation passage is seen in training), and sampled as
random windows ``(x, y)`` with ``y`` shifted by one.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from aicanon.core.data import fetch

__all__ = ["CharTokenizer", "char_splits", "load_tinyshakespeare", "random_batch"]


def load_tinyshakespeare() -> str:
    """The whole corpus as one string (raises ``DataUnavailable`` when the file cannot be had)."""
    return fetch("tinyshakespeare", "input.txt").read_text(encoding="utf-8")


class CharTokenizer:
    """One id per distinct character of the fitted text, in sorted order (so ids repeat across runs)."""

    def __init__(self, chars: Iterable[str] = ()) -> None:
        self.chars: list[str] = sorted(set(chars))
        self._index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty str")
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        unknown = sorted(set(text) - self._index.keys())
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown[:10]}")
        return torch.tensor([self._index[c] for c in text], dtype=torch.long)

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        bad = [i for i in values if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids must be in [0, {self.vocab_size}), got {bad[:10]}")
        return "".join(self.chars[i] for i in values)


def char_splits(text: str, val_fraction: float = 0.1) -> tuple[Tensor, Tensor, CharTokenizer]:
    """Encode ``text`` by character; the last ``val_fraction`` of it is the validation split."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    tokenizer = CharTokenizer.fit(text)
    ids = tokenizer.encode(text)
    cut = int(len(ids) * (1.0 - val_fraction))
    return ids[:cut], ids[cut:], tokenizer


def random_batch(
    ids: Tensor, batch_size: int, seq_len: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows of ``ids``: inputs ``[B, seq_len]`` and next-token targets."""
    if ids.dim() != 1 or ids.numel() < seq_len + 1:
        raise ValueError(
            f"ids must be 1-D with more than seq_len={seq_len} tokens, got shape {tuple(ids.shape)}"
        )
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
    starts = torch.randint(0, ids.numel() - seq_len, (batch_size,), generator=generator)
    windows = torch.stack([ids[s : s + seq_len + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]
