"""The word vocabulary: deterministic order, cuts, unknown tokens, JSON round trip; padding."""

from __future__ import annotations

import pytest
import torch

from aicanon.datasets.vocabulary import Vocabulary, pad_sequences


def test_order_is_specials_then_count_then_alphabet():
    vocabulary = Vocabulary.build([["b", "a", "c", "a"], ["c", "d"]])
    assert vocabulary.tokens == ["<pad>", "<unk>", "a", "c", "b", "d"]
    assert vocabulary.counts == {"a": 2, "c": 2, "b": 1, "d": 1}
    assert vocabulary.pad_id == 0 and vocabulary.unk_id == 1


def test_cuts_and_unknown_tokens():
    vocabulary = Vocabulary.build([["a", "a", "b", "c", "c", "c"]], min_count=2)
    assert vocabulary.tokens == ["<pad>", "<unk>", "c", "a"]
    assert vocabulary.encode(["a", "zzz"]).tolist() == [3, 1]
    assert len(Vocabulary.build([["a", "b", "c"]], max_size=3)) == 3
    strict = Vocabulary.build([["a"]], specials=(), unk=None, pad=None)
    with pytest.raises(KeyError, match="zzz"):
        strict.encode(["zzz"])


def test_round_trip(tmp_path):
    vocabulary = Vocabulary.build([["der", "Hund", "ß", "der"]])
    vocabulary.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.tokens == vocabulary.tokens and loaded.unk == "<unk>"
    ids = loaded.encode(["Hund", "ß"])
    assert loaded.decode(ids) == ["Hund", "ß"]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a saved Vocabulary"):
        Vocabulary.load(tmp_path / "bad.json")


def test_padding():
    padded, lengths = pad_sequences([torch.tensor([5, 6, 7]), torch.tensor([8])], pad_id=0)
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match=r"sequences\[1\]"):
        pad_sequences([torch.tensor([1]), torch.tensor([[1]])], 0)


def test_bad_input():
    with pytest.raises(TypeError, match="got a str"):
        Vocabulary.build(["not tokenised"])
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(["a", "a"], unk=None, pad=None)
    with pytest.raises(ValueError, match="unk token"):
        Vocabulary(["a"], pad=None)
    with pytest.raises(ValueError, match="ids must be"):
        Vocabulary.build([["a"]]).decode([7])
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build([["a"]], min_count=0)
