"""aicanon.datasets.wikitext: WikiText-2's tokenised files, read with <eos> at every line end."""

from __future__ import annotations

import pytest

from aicanon.core.data import DataUnavailable, registry
from aicanon.datasets.wikitext import EOS, TRAIN_URL, load_wikitext2, tokenize_lines

pytestmark = pytest.mark.paper("pointer-sentinel")


def test_tokenize_lines_appends_eos_to_every_line_blank_ones_included():
    assert tokenize_lines("a b\n\n c  d \n") == ["a", "b", EOS, EOS, "c", "d", EOS]
    assert tokenize_lines("") == []
    assert tokenize_lines("x") == ["x", EOS]


@pytest.mark.parametrize(("split", "count"), [("valid", 217_646), ("test", 245_569)])
def test_token_counts_match_the_papers_table_3(split, count):
    tokens = load_wikitext2(split)
    assert len(tokens) == count
    assert tokens[-1] == EOS
    assert "<unk>" in tokens[:200]  # WikiText marks its own out-of-vocabulary words


def test_valid_starts_with_the_first_article():
    tokens = load_wikitext2("valid")
    # The file opens with a blank line, then the heading " = Homarus gammarus = ".
    assert tokens[:6] == [EOS, "=", "Homarus", "gammarus", "=", EOS]


def test_train_split_without_a_registry_entry_names_the_canonical_url():
    if "train.txt" in registry()["wikitext-2"]:
        pytest.skip("train.txt is registered now; fetch() handles it like the other files")
    with pytest.raises(DataUnavailable) as info:
        load_wikitext2("train")
    assert info.value.url == TRAIN_URL
    assert "train.txt" in str(info.value) and TRAIN_URL in str(info.value)


def test_bad_input():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'valid', 'test'\), got 'dev'"):
        load_wikitext2("dev")
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        tokenize_lines(b"a b")
