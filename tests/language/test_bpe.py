"""Llama 3's BPE tokenizer: against tiktoken and HF tokenizers on a vocabulary trained here on Tiny Shakespeare."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.core.data import fetch
from aicanon.language.bpe import (
    LLAMA3_PATTERN,
    BPETokenizer,
    dump_tiktoken_bpe,
    llama3_special_token_names,
    parse_tiktoken_bpe,
)

pytestmark = pytest.mark.paper("llama3")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map that HF's ByteLevel pre-tokenizer uses for token strings."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


@pytest.fixture(scope="module")
def corpus() -> str:
    return fetch("tinyshakespeare", "input.txt").read_text()[:200_000]


@pytest.fixture(scope="module")
def trained(corpus):
    """A 1,000-token byte-level BPE trained by HF tokenizers with Llama 3's split regex, and its ranks."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    hf.train_from_iterator([corpus], trainer)
    decode = {c: b for b, c in _bytes_to_unicode().items()}

    def to_bytes(token: str) -> bytes:
        return bytes(decode[c] for c in token)

    # Rank = merge order: the 256 bytes, then each merge's result (tiktoken's convention).
    ranks = {bytes([b]): b for b in range(256)}
    import json

    merges = json.loads(hf.to_str())["model"]["merges"]
    for merge in merges:
        left, right = merge if isinstance(merge, list) else merge.split(" ")
        token = to_bytes(left) + to_bytes(right)
        ranks.setdefault(token, len(ranks))
    return hf, ranks, to_bytes


@pytest.fixture(scope="module")
def ours(trained):
    return BPETokenizer.llama3(trained[1])


@pytest.fixture(scope="module")
def reference(trained):
    tiktoken = pytest.importorskip("tiktoken")
    ranks = trained[1]
    names = llama3_special_token_names()
    return tiktoken.Encoding(
        name="llama3-tiny",
        pat_str=LLAMA3_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={name: len(ranks) + i for i, name in enumerate(names)},
    )


SAMPLES = [
    "",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "  leading spaces,\ttabs\r\n\r\nand CRLF   \n",
    "Numbers 1234567 and 3.14159, don't you'll I'd WE'RE",
    "Ünïcödé — ελληνικά 中文 😀 emoji\u200b",
    "trailing spaces    ",
]


@pytest.mark.parity
@pytest.mark.parametrize("text", SAMPLES)
def test_encode_equals_tiktoken_on_samples(ours, reference, text):
    assert ours.encode(text) == reference.encode(text, disallowed_special=())
    assert ours.decode(ours.encode(text)) == text


@pytest.mark.parity
def test_encode_equals_tiktoken_on_held_out_shakespeare(ours, reference):
    text = fetch("tinyshakespeare", "input.txt").read_text()[500_000:520_000]
    ids = ours.encode(text)
    assert ids == reference.encode(text)
    assert len(ids) < len(text.encode()) / 2  # the merges do compress


@pytest.mark.parity
def test_encode_equals_hf_tokenizers_that_trained_the_vocabulary(trained, ours):
    hf, ranks, to_bytes = trained
    text = fetch("tinyshakespeare", "input.txt").read_text()[600_000:605_000]
    hf_ids = [ranks[to_bytes(token)] for token in hf.encode(text).tokens]
    assert ours.encode(text) == hf_ids


@pytest.mark.parity
@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_encode_equals_tiktoken_on_any_text(ours, reference, text):
    ids = ours.encode(text)
    assert ids == reference.encode(text, disallowed_special=())
    assert ours.decode(ids) == text  # lossless on any Unicode


@pytest.mark.parity
def test_special_tokens_match_tiktoken_and_llama3_ids(ours, reference, trained):
    text = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
    assert ours.encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")
    first = len(trained[1])
    # Llama 3's layout: 128000 + offset in the released vocabulary.
    assert ours.special_tokens["<|begin_of_text|>"] == first
    assert ours.special_tokens["<|end_of_text|>"] == first + 1
    assert ours.special_tokens["<|start_header_id|>"] == first + 6
    assert ours.special_tokens["<|end_header_id|>"] == first + 7
    assert ours.special_tokens["<|eot_id|>"] == first + 9
    assert ours.special_tokens["<|reserved_special_token_250|>"] == first + 255
    assert len(ours.special_tokens) == 256 and ours.vocab_size == first + 256
    # Not allowed: the same string is ordinary text, never a control token (Meta's default).
    plain = ours.encode(text)
    assert not set(plain) & set(ours.special_tokens.values())
    assert plain == reference.encode(text, disallowed_special=())


def test_golden_merges_by_lowest_rank():
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"ab"] = 256
    ranks[b"bc"] = 257
    ranks[b"abc"] = 258
    ranks[b"cd"] = 259
    tok = BPETokenizer(ranks, pattern=r"\S+|\s+")
    # "abcd": ab (256) beats bc (257) and cd (259); then ab+c -> abc (258); abc+d unknown.
    assert tok.encode("abcd") == [258, ord("d")]
    assert tok.encode("bcd") == [257, ord("d")]  # bc (257) before cd (259)
    assert tok.encode("cd ab") == [259, ord(" "), 256]


def test_rank_file_round_trip(trained, tmp_path):
    ranks = trained[1]
    text = dump_tiktoken_bpe(ranks)
    assert text.splitlines()[65] == f"{base64.b64encode(b'A').decode()} 65"
    assert parse_tiktoken_bpe(text) == ranks
    path = tmp_path / "tokenizer.model"
    path.write_text(text)
    loaded = BPETokenizer.from_file(path)
    assert loaded.encode("To be, or not to be") == BPETokenizer.llama3(ranks).encode("To be, or not to be")


def test_bos_eos_and_pre_tokenizer_pieces(ours):
    import regex

    pieces = regex.findall(LLAMA3_PATTERN, "I'LL pay 12345 dollars!!\n\n  ok")
    assert pieces == ["I", "'LL", " pay", " ", "123", "45", " dollars", "!!\n\n", " ", " ok"]
    ids = ours.encode("hi", bos=True, eos=True)
    assert ids[0] == ours.bos_id and ids[-1] == ours.eos_id
    assert ours.decode(ids) == "<|begin_of_text|>hi<|end_of_text|>"


def test_bad_input_is_rejected(ours):
    with pytest.raises(TypeError, match="text must be a str"):
        ours.encode(b"bytes")
    with pytest.raises(ValueError, match="allowed_special names unknown special tokens"):
        ours.encode("x", allowed_special={"<|nope|>"})
    with pytest.raises(ValueError, match=r"ids\[1\] must be a token id"):
        ours.decode([1, 10**9])
    with pytest.raises(ValueError, match="line 2 must be '<base64 token> <rank>'"):
        parse_tiktoken_bpe("QQ== 65\nnot-a-line\n")
    with pytest.raises(ValueError, match="mergeable_ranks must hold all 256 single bytes"):
        BPETokenizer({b"a": 0})
    with pytest.raises(ValueError, match="special token ids must differ from BPE ranks"):
        BPETokenizer({bytes([b]): b for b in range(256)}, {"<|x|>": 3})
    with pytest.raises(ValueError, match="bos=True needs the special token"):
        BPETokenizer({bytes([b]): b for b in range(256)}).encode("x", bos=True)
