"""aicanon.datasets.sst: the staged SST tree files."""

from __future__ import annotations

import numpy as np
import pytest

from aicanon.datasets.sst import SSTTree, load_sst, load_sst_binary, load_sst_trees, parse_tree

pytestmark = pytest.mark.paper("lime")


def test_split_sizes_and_first_sentence():
    texts, labels = load_sst("train")
    assert len(texts) == 8544 and set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert texts[0].startswith("The Rock is destined to be the 21st Century 's new")
    assert labels[0] == 3
    assert [len(load_sst(s)[0]) for s in ("dev", "test")] == [1101, 2210]


def test_binary_task_sizes():
    sizes = [len(load_sst_binary(s)[0]) for s in ("train", "dev", "test")]
    assert sizes == [6920, 872, 1821]
    texts, labels = load_sst_binary("test")
    assert texts[0] == texts[0].lower() and "(" not in texts[0] and 0.45 < labels.mean() < 0.55


def test_bad_split():
    with pytest.raises(ValueError, match="split must be train, dev or test, got 'valid'"):
        load_sst("valid")


# ---------------------------------------------------------------------------------------------
# The tree reader (Tree-LSTM's): every node's label, children and words.


@pytest.mark.paper("tree-lstm")
def test_parse_tree_golden():
    tree = parse_tree("(3 (2 Not) (4 (3 very) (4 good)))")
    # Post-order: leaves and inner nodes as they close; the root last.
    assert tree == SSTTree(
        labels=(2, 3, 4, 4, 3),
        children=((), (), (), (1, 2), (0, 3)),
        words=("Not", "very", "good", None, None),
    )
    assert (tree.root, tree.label, len(tree), tree.depth()) == (4, 3, 5, 2)
    assert tree.tokens == ["Not", "very", "good"]
    one_word = parse_tree("  (1 bad)\n")
    assert one_word == SSTTree((1,), ((),), ("bad",)) and one_word.depth() == 0


@pytest.mark.paper("tree-lstm")
def test_parse_tree_keeps_words_with_no_break_spaces_and_escaped_brackets():
    # train.txt has the word "8\xa01\/2"; PTB brackets in words are -LRB- / -RRB-.
    tree = parse_tree("(2 (2 8\xa01\\/2) (2 -LRB-))")
    assert tree.tokens == ["8\xa01\\/2", "-LRB-"]


@pytest.mark.paper("tree-lstm")
def test_trees_match_the_flat_reader_and_are_binary():
    for split, count in (("train", 8544), ("dev", 1101), ("test", 2210)):
        trees = load_sst_trees(split)
        texts, labels = load_sst(split)
        assert len(trees) == count
        assert [" ".join(t.tokens) for t in trees] == texts
        assert [t.label for t in trees] == labels.tolist()
        for tree in trees[:300]:
            assert all(len(kids) in (0, 2) for kids in tree.children)
            assert len(tree) == 2 * len(tree.tokens) - 1
            assert all(child < node for node, kids in enumerate(tree.children) for child in kids)
            assert all((w is None) == bool(kids) for w, kids in zip(tree.words, tree.children))
    train = load_sst_trees("train")
    assert sum(len(t) for t in train) == 318582  # labelled phrases (nodes) of the training trees
    assert max(t.depth() for t in train) == 29


@pytest.mark.paper("tree-lstm")
@pytest.mark.parametrize(
    "line, why",
    [
        ("(3 (2 a) (1 b)", "left open"),
        ("(3 (2 a) (1 b)))", "after the root"),
        ("(7 a)", "one digit 0-4, got '7'"),
        ("(x a)", "one digit 0-4, got 'x'"),
        ("(3 a b)", "a second one"),
        ("(3 a (2 b))", "holds a word"),
        ("(3 (2 a) b)", "child nodes and a word"),
        ("(3 )", "neither a word nor children"),
        ("((2 a))", "no label"),
        ("a (2 b)", "outside the tree"),
        ("", "empty"),
    ],
)
def test_malformed_lines_name_the_line(line, why):
    with pytest.raises(ValueError, match="malformed SST tree line") as error:
        parse_tree(line)
    assert why in str(error.value) and repr(line)[:20] in str(error.value)


@pytest.mark.paper("tree-lstm")
def test_malformed_file_names_file_and_line(tmp_path, monkeypatch):
    import aicanon.datasets.sst as sst

    (tmp_path / "dev.txt").write_text("(3 (2 a) (1 b))\n\n(2 (2 c)\n", encoding="utf-8")
    monkeypatch.setattr(sst, "fetch", lambda dataset, name: tmp_path / name)
    with pytest.raises(ValueError, match=r"dev.txt, line 3: malformed SST tree line '\(2 \(2 c\)'"):
        load_sst_trees("dev")
    with pytest.raises(ValueError, match="split must be train, dev or test"):
        load_sst_trees("valid")
    with pytest.raises(TypeError, match="line must be a str"):
        parse_tree(b"(2 a)")
