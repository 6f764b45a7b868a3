"""Llama 3's tokenizer: byte-level BPE over a tiktoken-style rank file (Dubey et al. 2024, Section 3.1).

Llama 3 replaced Llama 2's 32K SentencePiece vocabulary by 128K tokens: 100K from tiktoken plus 28K
for other languages, and 256 special tokens (ids 128000-128255). The released ``tokenizer.model`` is a
text file of ``<base64 of the token's bytes> <rank>`` lines; the rank is both the token id and the
merge priority. Encoding a text:

1. special tokens the caller allows (``allowed_special``) are cut out first and encoded as one id;
2. the rest is split into pieces by the pre-tokenizer regex ``LLAMA3_PATTERN`` (contractions, words
   with one optional leading non-letter, numbers of at most three digits, punctuation runs, newline
   runs, whitespace), as Meta's ``tokenizer.py`` does;
3. each piece's UTF-8 bytes are merged greedily: among adjacent parts, join the pair whose joined
   bytes have the lowest rank, until no joined pair is in the vocabulary; each part's rank is its id.

Decoding concatenates the tokens' bytes and decodes UTF-8 (invalid sequences, which a slice of ids
can end in, become U+FFFD unless ``errors`` says otherwise).

Departures: none in the algorithm. Meta's code splits very long inputs into 400,000-character
chunks (and runs of 25,000 spaces) only to bound tiktoken's running time; that changes nothing in
the result for ordinary text and is not done here. This is a pure-Python merge, fine for the
experiments here (thousands of tokens), slower than tiktoken's Rust for corpora.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Collection, Iterable, Mapping
from typing import Literal

import regex

from aicanon.core.checks import check_int

__all__ = [
    "LLAMA3_NUM_RESERVED_SPECIAL_TOKENS",
    "LLAMA3_PATTERN",
    "BPETokenizer",
    "dump_tiktoken_bpe",
    "llama3_special_token_names",
    "parse_tiktoken_bpe",
]

# Meta's llama3 tokenizer.py pat_str (the cl100k pattern with numbers of 1-3 digits).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_NUM_RESERVED_SPECIAL_TOKENS = 256


def llama3_special_token_names(num_reserved: int = LLAMA3_NUM_RESERVED_SPECIAL_TOKENS) -> list[str]:
    """The names of Llama 3's special tokens in id order (first id = the number of BPE tokens, 128000).

    ``<|begin_of_text|>`` 128000, ``<|end_of_text|>`` 128001, ``<|start_header_id|>`` 128006,
    ``<|end_header_id|>`` 128007, ``<|eot_id|>`` 128009; the rest are reserved (Llama 3.1 renamed
    three of them: ``<|finetune_right_pad_id|>``, ``<|eom_id|>``, ``<|python_tag|>``).
    """
    check_int("num_reserved", num_reserved, 10, note="the named tokens")
    names = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>",
        "<|reserved_special_token_3|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_4|>",
        "<|eot_id|>",
    ]
    names += [f"<|reserved_special_token_{i}|>" for i in range(5, num_reserved - 5)]
    return names


def parse_tiktoken_bpe(data: str | bytes) -> dict[bytes, int]:
    """Parse a tiktoken rank file (``<base64 token> <rank>`` per line) into ``{token bytes: rank}``."""
    if isinstance(data, bytes):
        data = data.decode("ascii")
    if not isinstance(data, str):
        raise TypeError(f"data must be the file's text (str or bytes), got {type(data).__name__}")
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"line {number} must be '<base64 token> <rank>', got {line[:60]!r}")
        try:
            token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
        except (ValueError, base64.binascii.Error) as error:
            raise ValueError(f"line {number} must be '<base64 token> <rank>', got {line[:60]!r}") from error
        if token in ranks:
            raise ValueError(f"line {number}: token {token!r} already has rank {ranks[token]}")
        ranks[token] = rank
    if len(set(ranks.values())) != len(ranks):
        raise ValueError("ranks must be distinct: two tokens share a rank")
    return ranks


def dump_tiktoken_bpe(ranks: Mapping[bytes, int]) -> str:
    """The rank file text of ``ranks`` (inverse of :func:`parse_tiktoken_bpe`), ordered by rank."""
    return "".join(
        f"{base64.b64encode(token).decode('ascii')} {rank}\n"
        for token, rank in sorted(ranks.items(), key=lambda item: item[1])
    )


class BPETokenizer:
    """Byte-level BPE with tiktoken's rank-ordered merges, a split regex and special tokens.

    ``BPETokenizer.llama3(ranks)`` builds Llama 3's tokenizer from the ranks of its
    ``tokenizer.model`` (:meth:`from_file` reads the file): its pattern, and its 256 special tokens
    numbered after the BPE tokens.
    """

    def __init__(
        self,
        mergeable_ranks: Mapping[bytes, int],
        special_tokens: Mapping[str, int] | None = None,
        pattern: str = LLAMA3_PATTERN,
    ) -> None:
        if not isinstance(mergeable_ranks, Mapping) or not mergeable_ranks:
            raise TypeError("mergeable_ranks must be a non-empty mapping {token bytes: rank}")
        for token, rank in mergeable_ranks.items():
            if not isinstance(token, bytes) or isinstance(rank, bool) or not isinstance(rank, int):
                raise TypeError(f"mergeable_ranks must map bytes to int, got {token!r}: {rank!r}")
        missing = [b for b in range(256) if bytes([b]) not in mergeable_ranks]
        if missing:
            # Every byte must be a token, or some texts could not be encoded at all.
            raise ValueError(
                f"mergeable_ranks must hold all 256 single bytes, missing {len(missing)} (e.g. {missing[:5]})"
            )
        special_tokens = dict(special_tokens or {})
        clash = set(special_tokens.values()) & set(mergeable_ranks.values())
        if clash:
            raise ValueError(
                f"special token ids must differ from BPE ranks, got shared ids {sorted(clash)[:5]}"
            )
        self.mergeable_ranks = dict(mergeable_ranks)
        self.special_tokens = special_tokens
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self._decoder: dict[int, bytes] = {rank: token for token, rank in self.mergeable_ranks.items()}
        self._decoder.update({i: name.encode("utf-8") for name, i in special_tokens.items()})
        self._cache: dict[bytes, list[int]] = {}
        self.vocab_size = max(self._decoder) + 1

    @classmethod
    def llama3(cls, mergeable_ranks: Mapping[bytes, int]) -> BPETokenizer:
        """Llama 3's tokenizer over ``mergeable_ranks``: its regex and 256 special tokens after the ranks."""
        first = len(mergeable_ranks)
        names = llama3_special_token_names()
        return cls(mergeable_ranks, {name: first + i for i, name in enumerate(names)}, LLAMA3_PATTERN)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> BPETokenizer:
        """Llama 3's tokenizer from a ``tokenizer.model`` rank file (text; nothing is unpickled)."""
        with open(path, encoding="ascii") as f:
            return cls.llama3(parse_tiktoken_bpe(f.read()))

    @property
    def bos_id(self) -> int | None:
        return self.special_tokens.get("<|begin_of_text|>")

    @property
    def eos_id(self) -> int | None:
        return self.special_tokens.get("<|end_of_text|>")

    @property
    def eot_id(self) -> int | None:
        return self.special_tokens.get("<|eot_id|>")

    def _merge(self, piece: bytes) -> list[int]:
        """Ranks of ``piece`` after greedy lowest-rank merging (step 3 of the module docstring)."""
        ranks = self.mergeable_ranks
        whole = ranks.get(piece)
        if whole is not None:
            return [whole]
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        parts = [piece[i : i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, best_rank = -1, None
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = i, rank
            if best_rank is None:
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        out = [ranks[p] for p in parts]
        if len(self._cache) < 100_000:
            self._cache[piece] = out
        return out

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text`` with every special-token string treated as plain text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        for match in self._split.finditer(text):
            ids.extend(self._merge(match.group().encode("utf-8")))
        return ids

    def encode(
        self,
        text: str,
        *,
        bos: bool = False,
        eos: bool = False,
        allowed_special: Literal["all"] | Collection[str] = (),
    ) -> list[int]:
        """Ids of ``text``; ``bos``/``eos`` add ``<|begin_of_text|>``/``<|end_of_text|>``.

        Special-token strings in ``text`` become their single id only when named in
        ``allowed_special`` (or ``"all"``); otherwise they are encoded as ordinary text, Meta's default,
        so that text from users cannot inject control tokens.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif isinstance(allowed_special, str):
            raise TypeError(
                f"allowed_special must be 'all' or a collection of names, got {allowed_special!r}"
            )
        else:
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(f"allowed_special names unknown special tokens: {sorted(unknown)}")
        ids: list[int] = []
        if bos:
            ids.append(self._special("<|begin_of_text|>", "bos"))
        if allowed:
            splitter = regex.compile(
                "|".join(regex.escape(name) for name in sorted(allowed, key=len, reverse=True))
            )
            start = 0
            for match in splitter.finditer(text):
                ids.extend(self.encode_ordinary(text[start : match.start()]))
                ids.append(self.special_tokens[match.group()])
                start = match.end()
            ids.extend(self.encode_ordinary(text[start:]))
        else:
            ids.extend(self.encode_ordinary(text))
        if eos:
            ids.append(self._special("<|end_of_text|>", "eos"))
        return ids

    def _special(self, name: str, argument: str) -> int:
        if name not in self.special_tokens:
            raise ValueError(f"{argument}=True needs the special token {name}, which this tokenizer lacks")
        return self.special_tokens[name]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The concatenated bytes of ``ids`` (special tokens as their names)."""
        out = []
        for position, i in enumerate(ids):
            token = self._decoder.get(int(i)) if not isinstance(i, bool) else None
            if token is None:
                raise ValueError(
                    f"ids[{position}] must be a token id of this vocabulary (0..{self.vocab_size - 1}), got {i!r}"
                )
            out.append(token)
        return b"".join(out)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of ``ids``; bytes that are not valid UTF-8 follow ``errors`` (as ``bytes.decode``)."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def __len__(self) -> int:
        return len(self._decoder)
