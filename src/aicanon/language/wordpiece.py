"""Wordpiece model (Wu et al. 2016, Section 4.1; Schuster & Nakajima 2012), trained with ``tokenizers``.

GNMT splits words into a fixed inventory of sub-word units ("wordpieces") shared by the source and
the target language, so that rare words are spelled out of frequent pieces and identical strings
(names, numbers) are segmented the same way on both sides, which lets the model learn to copy them.
The paper marks the *start* of every word with a special character ("_") so that the wordpiece
sequence decodes back to the original text without ambiguity:

    Word:      Jet makers feud over seat width with big orders at stake
    wordpieces: _J et _makers _fe ud _over _seat _width _with _big _orders _at _stake

Here: ``tokenizers``' Metaspace pre-tokenizer puts the marker ``▁`` before every word (split on
whitespace), and ``tokenizers``' WordPiece model/trainer segments each marked word greedily,
longest piece first, writing word-internal pieces with the continuing-subword prefix ``##``:
``▁Jet makers`` -> ``▁J ##et ▁make ##rs``. Decoding concatenates the pieces (dropping ``##``) and
turns each ``▁`` back into a space, which restores the text up to runs of whitespace.

Piece ids: specials 0-3, then the pieces in sorted order (``tokenizers``' trainer numbers them in
an order that changes from run to run; renumbering gives one set of pieces the same ids every
time). The set itself can still differ between runs where merge counts tie: the trainer breaks
ties in hash-map order, which Python cannot fix; on Multi30k we have not seen it differ.

Departures from the paper: the paper's wordpiece model is trained by greedily adding the piece
that most increases the training data's language-model likelihood (Schuster & Nakajima); the
``tokenizers`` WordPiece trainer picks pieces with BPE-style merges scored by pair frequency. The
segmentation of a word at encoding time (longest match first) is the same kind. The paper keeps
8k-32k pieces; the vocabulary size is a parameter here. Characters never seen in training become
``[UNK]`` (the paper maps rare characters to a special unknown symbol too).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from aicanon.core.checks import check_int

__all__ = ["SPECIAL_TOKENS", "WORD_BOUNDARY", "WordPieceTokenizer"]

WORD_BOUNDARY = "▁"
"""Marks the start of a word (the paper's "_")."""
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
"""Ids 0-3, in this order: padding, unknown piece, start and end of sentence."""
_CONTINUATION = "##"


class WordPieceTokenizer:
    """A trained wordpiece segmentation: ``encode`` text to ids, ``decode`` ids to text.

    Build one with :meth:`train` (from sentences) or :meth:`load` (a saved ``tokenizer.json``).
    ``pad_id``, ``unk_id``, ``bos_id`` and ``eos_id`` are 0-3.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer, got {type(tokenizer).__name__}")
        ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise ValueError(
                f"tokenizer must have the special tokens {SPECIAL_TOKENS} as ids 0-3, got ids {ids}"
            )
        self._tokenizer = tokenizer
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = range(len(SPECIAL_TOKENS))

    @staticmethod
    def _blank(vocab: dict[str, int] | None = None) -> Tokenizer:
        tokenizer = Tokenizer(
            models.WordPiece(
                vocab,
                unk_token="[UNK]",
                continuing_subword_prefix=_CONTINUATION,
                max_input_chars_per_word=100,
            )
        )
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=WORD_BOUNDARY, prepend_scheme="always", split=True
        )
        return tokenizer

    @classmethod
    def train(
        cls, sentences: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2
    ) -> WordPieceTokenizer:
        """Learn ``vocab_size`` wordpieces (specials and single characters included) from ``sentences``
        (for GNMT: the source and the target side together, one shared model)."""
        check_int("vocab_size", vocab_size, len(SPECIAL_TOKENS) + 1)
        check_int("min_frequency", min_frequency, 1)
        sentences = list(sentences)
        if not sentences or not all(isinstance(s, str) for s in sentences):
            raise ValueError("sentences must be a non-empty collection of strings")
        tokenizer = cls._blank()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            continuing_subword_prefix=_CONTINUATION,
            show_progress=False,
        )
        tokenizer.train_from_iterator(sentences, trainer=trainer, length=len(sentences))
        # The trainer numbers the pieces in an order that varies from run to run (hash-map order),
        # though the set of pieces is the same: renumber them (specials, then sorted) so that the
        # same sentences always give the same ids.
        pieces = sorted(set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS))
        vocab = {token: index for index, token in enumerate([*SPECIAL_TOKENS, *pieces])}
        return cls(cls._blank(vocab))

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def tokenize(self, text: str) -> list[str]:
        """The wordpieces of ``text`` as strings (``▁`` starts a word, ``##`` continues one)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Ids of ``text``'s wordpieces, optionally framed by ``[BOS]``/``[EOS]``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def encode_batch(
        self, texts: Sequence[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """:meth:`encode` of many texts at once (``tokenizers`` runs them in parallel)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a sequence of str")
        head, tail = [self.bos_id] if add_bos else [], [self.eos_id] if add_eos else []
        return [
            head + e.ids + tail for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids: special tokens dropped (decoding stops at the first ``[EOS]``), pieces
        concatenated without ``##``, every ``▁`` a space; the result is stripped."""
        pieces = []
        for index in ids:
            index = int(index)
            if index == self.eos_id:
                break
            if index < len(SPECIAL_TOKENS) and index != self.unk_id:
                continue
            token = self._tokenizer.id_to_token(index)
            if token is None:
                raise ValueError(f"ids must be below the vocabulary size {self.vocab_size}, got {index}")
            pieces.append(token[len(_CONTINUATION) :] if token.startswith(_CONTINUATION) else token)
        return " ".join("".join(pieces).replace(WORD_BOUNDARY, " ").split())

    def save(self, path: str | os.PathLike) -> None:
        """Write ``tokenizer.json`` (the ``tokenizers`` format) to ``path``."""
        self._tokenizer.save(str(path))

    def to_json(self) -> str:
        """The ``tokenizer.json`` text (what :meth:`save` writes)."""
        return self._tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str) -> WordPieceTokenizer:
        """The tokenizer of a ``tokenizer.json`` text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str (tokenizer.json), got {type(text).__name__}")
        return cls(Tokenizer.from_str(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordPieceTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"path must name a saved tokenizer.json, got {str(path)!r} (no such file)"
            )
        return cls(Tokenizer.from_file(str(path)))
