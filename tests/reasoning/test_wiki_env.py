import numpy as np
import pytest

from aicanon.reasoning.wiki_env import BM25Index, WikiEnvironment, page_sentences, parse_action

pytestmark = pytest.mark.paper("react")

PAGES = {
    "Milhouse": "Milhouse is a character in The Simpsons. He is Bart's friend.\n"
    "Milhouse was named after Richard Nixon. The name was unfortunate",
    "Richard Nixon": "Richard Nixon was the 37th president of the United States",
    "The Simpsons": "The Simpsons is an animated sitcom. It was created by Matt Groening",
}


def test_page_sentences_split_as_the_reference():
    # paragraphs at newlines, sentences at ". ", each given back its full stop (wikienv.py)
    assert page_sentences("A b. C d.\n\nE f") == ["A b.", "C d..", "E f."]
    assert page_sentences("") == []


def test_search_exact_title_returns_first_five_sentences():
    env = WikiEnvironment(PAGES)
    out = env.step("search[Milhouse]")
    assert out.observation == (
        "Milhouse is a character in The Simpsons. He is Bart's friend.. "
        "Milhouse was named after Richard Nixon. The name was unfortunate."
    )
    assert not out.done
    long_page = {"X": ". ".join(f"s{i}" for i in range(9))}
    assert WikiEnvironment(long_page).step("search[X]").observation == "s0. s1. s2. s3. s4."


def test_search_miss_lists_similar_titles_by_bm25():
    env = WikiEnvironment(PAGES)
    obs = env.step("Search[Nixon president]").observation
    assert obs.startswith("Could not find Nixon president. Similar: ['Richard Nixon'")
    assert env.step("search[zzzz]").observation == "Could not find zzzz. Similar: []."


def test_lookup_counts_results_and_resets():
    env = WikiEnvironment(PAGES)
    env.step("search[Milhouse]")
    assert (
        env.step("lookup[named after]").observation
        == "(Result 1 / 1) Milhouse was named after Richard Nixon."
    )
    assert env.step("lookup[named after]").observation == "No more results."
    assert env.step("lookup[MILHOUSE]").observation.startswith("(Result 1 / 2) Milhouse is a character")
    assert env.step("lookup[MILHOUSE]").observation.startswith("(Result 2 / 2) Milhouse was named")
    env.step("search[Richard Nixon]")
    assert env.step("lookup[president]").observation.startswith("(Result 1 / 1) Richard Nixon")


def test_lookup_before_search_and_invalid_and_finish():
    env = WikiEnvironment(PAGES)
    assert env.step("lookup[x]").observation == "No more results."
    assert env.step("jump[x]").observation == "Invalid action: jump[x]"
    out = env.step("finish[Richard Nixon]")
    assert out.done and out.answer == "Richard Nixon"
    assert env.step("search[Milhouse]").done  # finished episodes stay finished
    env.reset()
    assert env.answer is None


def test_parse_action():
    assert parse_action(" Search[High Plains (United States)] ") == ("search", "High Plains (United States)")
    assert parse_action("finish[]") == ("finish", "")
    assert parse_action("think[x]") is None and parse_action("") is None


def test_bm25_matches_hand_computed_scores():
    docs = ["red apple pie", "green apple", "blue sky today", "red red car"]
    index = BM25Index(docs)
    # Lucene BM25 by hand: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), k1 = 1.5, b = 0.75
    lengths = [3, 2, 3, 3]
    avg = sum(lengths) / 4

    def term(tf, df, length):
        idf = np.log(1 + (4 - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * length / avg))

    expected = [term(1, 2, 3) + term(1, 2, 3), term(1, 2, 2), 0.0, term(2, 2, 3)]
    np.testing.assert_allclose(index.scores("red apple"), expected, rtol=1e-5)
    assert index.top("red apple", 2) == [int(i) for i in np.argsort(expected)[::-1][:2]]


def test_bad_input():
    with pytest.raises(ValueError, match="pages"):
        WikiEnvironment({})
    with pytest.raises(TypeError, match="pages"):
        WikiEnvironment({"a": 3})
    with pytest.raises(TypeError, match="action"):
        parse_action(3)
    with pytest.raises(ValueError, match="documents"):
        BM25Index([])
