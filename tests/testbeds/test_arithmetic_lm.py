"""The arithmetic word-problem testbed: problems are correct and split cleanly, the corpus is what the
config says, the cache and the transformers-format export round-trip, bad settings are refused."""

from __future__ import annotations

import re

import pytest
import torch

from aicanon.language.local_backend import load_local_language_model
from aicanon.testbeds.arithmetic_lm import (
    ANSWER_PREFIX,
    TRIGGER,
    ArithmeticLMConfig,
    arithmetic_corpus,
    arithmetic_language_model,
    arithmetic_problems,
    pretrain_arithmetic_lm,
    save_arithmetic_lm,
    train_tokenizer,
)

TINY = {"size": "small", "problems": 200, "steps": 3, "warmup_steps": 1, "batch_size": 4, "seq_len": 64}


def test_rationales_are_correct_arithmetic_and_end_in_the_answer():
    for problem in arithmetic_problems(300, seed=3, max_steps=3):
        text = problem.answer_text("cot")
        equations = re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)\.", text)
        assert len(equations) == len(problem.steps) >= 1
        for a, op, b, c in equations:
            assert eval(f"{a} {op} {b}") == int(c)  # noqa: S307 (digits and one operator)
            assert 0 <= int(c) < 100
        assert text.endswith(f"{ANSWER_PREFIX} {problem.answer}.")
        assert int(equations[-1][3]) == problem.answer
        assert problem.answer_text("direct") == f"{ANSWER_PREFIX} {problem.answer}."
        assert problem.answer_text("trigger") == f"{TRIGGER} {text}"


def test_problems_are_deterministic_distinct_and_the_splits_disjoint():
    train = arithmetic_problems(500, seed=0)
    assert [p.question for p in train] == [p.question for p in arithmetic_problems(500, seed=0)]
    assert len({p.question for p in train}) == 500
    assert [p.question for p in arithmetic_problems(50, seed=1)] != [p.question for p in train[:50]]
    test = arithmetic_problems(200, seed=0, split="test")
    assert not {p.question for p in test} & {p.question for p in arithmetic_problems(5000, seed=0)}
    assert all(p.held_out for p in test) and not any(p.held_out for p in train)
    steps = {len(p.steps) for p in arithmetic_problems(200, min_steps=2, max_steps=3)}
    assert steps == {2, 3}


def test_corpus_mixes_styles_and_text_as_configured():
    text = arithmetic_corpus(ArithmeticLMConfig(problems=400, text_fraction=0.2))
    chunks = text.strip("\n").split("\n\n")
    problems = [c for c in chunks if c.startswith("Q: ")]
    assert len(problems) == 400  # every training problem once
    answers = [c.split("\nA: ", 1)[1] for c in problems]
    direct = sum(a.startswith(ANSWER_PREFIX) for a in answers)
    trigger = sum(a.startswith(TRIGGER) for a in answers)
    assert 0.2 < direct / 400 < 0.5 and 0.05 < trigger / 400 < 0.3
    english = [c for c in chunks if not c.startswith("Q: ")]
    assert 20 < len(english) < 100  # about a fifth of ~160 documents of 1-4 problems
    no_text = arithmetic_corpus(ArithmeticLMConfig(problems=400, text_fraction=0.0))
    assert all(c.startswith("Q: ") for c in no_text.strip("\n").split("\n\n"))
    test = {p.question for p in arithmetic_problems(100, split="test")}
    assert not any(q in text for q in test)


def test_tokenizer_splits_digits_round_trips_any_text_and_repeats():
    corpus = arithmetic_corpus(ArithmeticLMConfig(problems=300, text_fraction=0.0))
    tokenizer = train_tokenizer(corpus)
    assert 258 < tokenizer.tokenizer.get_vocab_size() <= 512  # fewer when the corpus runs out of merges
    assert tokenizer.tokenizer.token_to_id("<s>") == 0 and tokenizer.tokenizer.token_to_id("</s>") == 1
    for text in ("Q: Zoe has 1234 kites! (new) ~", "naïve café → 3½", "\n\nA:"):
        assert tokenizer.decode(tokenizer.encode(text)) == text  # byte fallback: any text
    pieces = tokenizer.tokenizer.encode("Mia has 407 shells.").tokens
    assert [p for p in pieces if any(c.isdigit() for c in p)] == ["4", "0", "7"]  # one digit per token
    # Word pieces merge: far fewer tokens than characters on the corpus.
    assert len(tokenizer.encode(corpus[:5000])) < 5000 / 2
    again = train_tokenizer(corpus)
    assert again.tokenizer.to_str() == tokenizer.tokenizer.to_str()


def test_pretraining_is_cached_and_repeats(tmp_path):
    cfg = ArithmeticLMConfig(**TINY)
    model, tokenizer = pretrain_arithmetic_lm(cfg, cache=tmp_path)
    assert (tmp_path / cfg.key()).is_dir()
    again, _ = pretrain_arithmetic_lm(cfg, cache=tmp_path)  # from the cache
    fresh, _ = pretrain_arithmetic_lm(cfg, cache=None)  # retrained: the same weights
    for name, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], value)
        torch.testing.assert_close(fresh.state_dict()[name], value)
    other = ArithmeticLMConfig(**{**TINY, "seed": 1})
    assert other.key() != cfg.key()


def test_killed_pretraining_resumes_to_the_uninterrupted_model(monkeypatch, tmp_path):
    # 3 steps, a checkpoint after each (every steps // 20, at least 1); killed in step 3: the rerun
    # trains step 3 only and caches the model an uninterrupted run gives; the checkpoints are removed.
    from tests.interruption import interrupt_and_resume

    cfg = ArithmeticLMConfig(**TINY)
    expected, _ = pretrain_arithmetic_lm(cfg, cache=None)
    (model, _), calls = interrupt_and_resume(
        monkeypatch, torch.optim.AdamW, "step", lambda: pretrain_arithmetic_lm(cfg, cache=tmp_path), kill_at=3
    )
    assert len(calls) == 1
    for name, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert sorted(p.name for p in tmp_path.iterdir()) == [cfg.key()]  # the cache entry only


def test_a_corrupt_cache_is_retrained_with_a_warning(tmp_path):
    cfg = ArithmeticLMConfig(**TINY)
    pretrain_arithmetic_lm(cfg, cache=tmp_path)
    for file in (tmp_path / cfg.key()).rglob("*"):
        if file.is_file():
            file.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="retraining"):
        model, _ = pretrain_arithmetic_lm(cfg, cache=tmp_path)
    assert model is not None


def test_export_loads_as_a_language_model_with_the_same_completions(tmp_path):
    cfg = ArithmeticLMConfig(**TINY)
    model, tokenizer = pretrain_arithmetic_lm(cfg, cache=tmp_path / "cache")
    folder = save_arithmetic_lm(model, tokenizer, tmp_path / "export")
    loaded = load_local_language_model(folder)
    direct = arithmetic_language_model(cfg, cache=tmp_path / "cache")
    prompt = ["Q: Ann has 3 apples. Ann finds 2 more. How many apples does Ann have now?\nA:"]
    ours = direct.complete(prompt, max_tokens=12, temperature=0.0)[0][0]
    theirs = loaded.complete(prompt, max_tokens=12, temperature=0.0)[0][0]
    assert ours.text == theirs.text and len(ours.text) == 12
    torch.testing.assert_close(torch.tensor(ours.token_logprobs), torch.tensor(theirs.token_logprobs))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"size": "huge"}, "size"),
        ({"steps": 0}, "steps"),
        ({"text_fraction": 1.0}, "text_fraction"),
        ({"style_mix": {"cot": 1.0, "verbose": 1.0}}, "style_mix"),
        ({"style_mix": {"cot": 0.0}}, "style_mix"),
        ({"seq_len": 2048}, "seq_len"),
        ({"vocab_size": 100}, "vocab_size"),
        ({"lr": float("nan")}, "lr"),
    ],
)
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        ArithmeticLMConfig(**overrides)


def test_bad_problem_requests_are_refused():
    with pytest.raises(ValueError, match="split"):
        arithmetic_problems(3, split="dev")
    with pytest.raises(ValueError, match="max_steps"):
        arithmetic_problems(3, min_steps=3, max_steps=2)
    with pytest.raises(ValueError, match="style"):
        arithmetic_problems(1)[0].format("verbose")
    with pytest.raises(TypeError, match="cfg"):
        pretrain_arithmetic_lm({"size": "small"})
