"""Scoring given continuations (the ScoringLanguageModel protocol): the local backend against a
direct forward pass, the HTTP backend through our real server on 127.0.0.1 (echo, max_tokens=0,
logprobs=1) against the local one, the transformers backend against transformers' own logits, and
bad input."""

from __future__ import annotations

import httpx
import pytest
import torch
from fastapi import FastAPI

from aicanon.language.completion import (
    Completion,
    Loglikelihood,
    ScoringLanguageModel,
    check_loglikelihood_request,
    split_trailing_whitespace,
)
from aicanon.language.http_backend import LanguageModelError, OpenAICompatibleLanguageModel
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.local_backend import LocalLanguageModel
from aicanon.language.server import BackgroundServer, create_app

CHARS = sorted(set("abcdefghijklmnopqrstuvwxyzABCD 0123456789+=?:.,\n"))


class CharTokenizer:
    """One id per character; 0 is BOS."""

    def encode(self, text: str) -> list[int]:
        return [CHARS.index(c) + 1 for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(CHARS[i - 1] if i > 0 else "<s>" for i in ids)


def _llama(max_seq_len: int = 96) -> Llama:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(CHARS) + 1,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        max_seq_len=max_seq_len,
    )
    return Llama(cfg).eval()


@pytest.fixture(scope="module")
def local() -> LocalLanguageModel:
    return LocalLanguageModel(_llama(), CharTokenizer(), bos_token_id=0)


@pytest.fixture(scope="module")
def server(local):
    with BackgroundServer(create_app(local, "tiny")) as running:
        yield running


CONTEXTS = ["what is 1+1?\nAnswer:"] * 4 + ["the cat", "ab", "", "x y "]
CONTINUATIONS = [" A", " B", " C", " D", " sat on the mat", "c", "hello", "z"]


def _direct(model: torch.nn.Module, ids: list[int], n_targets: int) -> tuple[float, bool]:
    """log P of the last ``n_targets`` tokens of ``ids`` from one unbatched forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]))  # the last token is only predicted
    logits = logits[0] if not isinstance(logits, tuple) else logits[0][0]
    scores = logits[len(ids) - 1 - n_targets : len(ids) - 1].log_softmax(-1)
    targets = torch.tensor(ids[len(ids) - n_targets :])
    logprob = float(scores.gather(-1, targets[:, None]).sum())
    return logprob, bool((scores.argmax(-1) == targets).all())


def test_local_equals_a_direct_forward_pass(local):
    assert isinstance(local, ScoringLanguageModel)
    results = local.loglikelihood(CONTEXTS, CONTINUATIONS)
    assert len(results) == len(CONTEXTS)
    tokenizer = CharTokenizer()
    for context, continuation, result in zip(CONTEXTS, CONTINUATIONS, results, strict=True):
        assert isinstance(result, Loglikelihood) and result.logprob < 0
        ids = [0] + tokenizer.encode(context + continuation)
        n = len(split_trailing_whitespace(context, continuation)[1])  # "x y " + "z": " z" is scored
        expected, greedy = _direct(local.model, ids, n)
        assert result.logprob == pytest.approx(expected, abs=1e-4)
        assert result.is_greedy == greedy
    # One request alone scores as it does in the batch (shared rows and padding change nothing).
    alone = local.loglikelihood(CONTEXTS[4:5], CONTINUATIONS[4:5])[0]
    assert alone.logprob == pytest.approx(results[4].logprob, abs=1e-5)


def test_one_token_choices_share_one_row_and_equal_the_next_token_distribution(local):
    results = local.loglikelihood(["Answer:"] * 4, list("ABCD"))
    ids = [0] + CharTokenizer().encode("Answer:")
    with torch.no_grad():
        next_token = local.model(torch.tensor([ids]))[0, -1].log_softmax(-1)
    for letter, result in zip("ABCD", results, strict=True):
        assert result.logprob == pytest.approx(float(next_token[CHARS.index(letter) + 1]), abs=1e-5)
    best = CHARS[int(next_token.argmax()) - 1]
    assert [r.is_greedy for r in results] == [letter == best for letter in "ABCD"]


def test_greedy_continuation_is_flagged_and_scores_as_its_completion(local):
    (completion,) = local.complete(["the cat"], max_tokens=4)[0]
    result = local.loglikelihood(["the cat"], [completion.text])[0]
    assert result.is_greedy is True
    assert result.logprob == pytest.approx(completion.logprob, abs=1e-4)
    other = next(c for c in "abcdefgh" if c != completion.text[0])
    assert local.loglikelihood(["the cat"], [other])[0].is_greedy is False


def test_trailing_whitespace_moves_to_the_continuation(local):
    assert split_trailing_whitespace("Answer: \n", "A") == ("Answer:", " \nA")
    assert split_trailing_whitespace("Answer:", " A") == ("Answer:", " A")
    a, b = local.loglikelihood(["Answer: ", "Answer:"], ["A", " A"])
    assert a == b


def test_long_sequences_keep_their_last_tokens_as_the_harness_does():
    model = _llama(max_seq_len=16)
    backend = LocalLanguageModel(model, CharTokenizer(), bos_token_id=0)
    context, continuation = "abcdefghijklmnopqrstuvwxyz", " xyz"
    ids = [0] + CharTokenizer().encode(context + continuation)
    expected, _ = _direct(model, ids[-17:], len(continuation))
    (result,) = backend.loglikelihood([context], [continuation])
    assert result.logprob == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="more than the model's context of 16"):
        backend.loglikelihood(["a"], ["b" * 17])


def test_http_backend_equals_local_through_our_server(local, server):
    client = OpenAICompatibleLanguageModel(server.base_url, "tiny")
    assert isinstance(client, ScoringLanguageModel)
    ours, theirs = local.loglikelihood(CONTEXTS, CONTINUATIONS), client.loglikelihood(CONTEXTS, CONTINUATIONS)
    for o, t in zip(ours, theirs, strict=True):
        assert t.logprob == pytest.approx(o.logprob, abs=1e-4) and t.is_greedy == o.is_greedy
    one_by_one = OpenAICompatibleLanguageModel(server.base_url, "tiny", batch_prompts=False)
    assert [r.logprob for r in one_by_one.loglikelihood(CONTEXTS[:2], CONTINUATIONS[:2])] == pytest.approx(
        [r.logprob for r in theirs[:2]], abs=1e-5
    )


def test_server_echo_speaks_the_openai_format(local, server):
    body = {"model": "tiny", "prompt": ["ab c", "x"], "max_tokens": 0, "echo": True, "logprobs": 2}
    data = httpx.post(f"{server.base_url}/completions", json=body).json()
    first = data["choices"][0]
    assert first["text"] == "ab c" and "".join(first["logprobs"]["tokens"]) == "ab c"
    assert first["logprobs"]["text_offset"] == [0, 1, 2, 3]
    assert all(lp <= 0 for lp in first["logprobs"]["token_logprobs"])  # BOS: the first token is scored too
    assert all(len(top) == 2 for top in first["logprobs"]["top_logprobs"])
    expected = local.prompt_logprobs(["ab c"], top=2)[0]
    assert first["logprobs"]["token_logprobs"] == pytest.approx(list(expected.token_logprobs), abs=1e-6)
    # echo with generation: the prompt's tokens, then the generated ones (no alternatives for those).
    body = {"model": "tiny", "prompt": "ab", "max_tokens": 3, "temperature": 0, "echo": True, "logprobs": 1}
    choice = httpx.post(f"{server.base_url}/completions", json=body).json()["choices"][0]
    generated = local.complete(["ab"], max_tokens=3)[0][0]
    assert choice["text"] == "ab" + generated.text
    assert choice["logprobs"]["top_logprobs"][2:] == [None] * len(generated.tokens)


def test_prompt_logprobs_without_bos_leave_the_first_token_unscored():
    backend = LocalLanguageModel(_llama(), CharTokenizer())
    (scored,) = backend.prompt_logprobs(["abc"], top=1)
    assert scored.tokens == ("a", "b", "c") and scored.token_logprobs[0] is None
    assert scored.top_logprobs[0] is None and all(lp < 0 for lp in scored.token_logprobs[1:])
    with pytest.raises(ValueError, match="no bos_token_id"):
        backend.loglikelihood([""], ["a"])


@pytest.mark.parity
def test_transformers_backend_equals_transformers_logits():
    transformers = pytest.importorskip("transformers")
    from aicanon.language.transformers_backend import TransformersCausalLM

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(CHARS) + 1,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    reference = transformers.LlamaForCausalLM(config).eval()
    backend = LocalLanguageModel(TransformersCausalLM(reference), CharTokenizer(), bos_token_id=0)
    results = backend.loglikelihood(CONTEXTS, CONTINUATIONS)
    tokenizer = CharTokenizer()
    for context, continuation, result in zip(CONTEXTS, CONTINUATIONS, results, strict=True):
        ids = [0] + tokenizer.encode(context + continuation)
        with torch.no_grad():
            logits = reference(input_ids=torch.tensor([ids])).logits[0]
        n = len(split_trailing_whitespace(context, continuation)[1])
        scores = logits[len(ids) - 1 - n : len(ids) - 1].log_softmax(-1)
        targets = torch.tensor(ids[-n:])
        assert result.logprob == pytest.approx(float(scores.gather(-1, targets[:, None]).sum()), abs=1e-5)
        assert result.is_greedy == bool((scores.argmax(-1) == targets).all())


class _CompletesOnly:
    """A LanguageModel without prompt scoring: the server must refuse echo with logprobs."""

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        return [[Completion("x", "length", ("x",), (-0.5,))] * n for _ in prompts]


def test_bad_input_is_rejected(local):
    with pytest.raises(TypeError, match="contexts must be a list of str"):
        local.loglikelihood("a", ["b"])
    with pytest.raises(TypeError, match="continuations must hold only str"):
        local.loglikelihood(["a"], [3])
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        local.loglikelihood(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="non-empty list"):
        check_loglikelihood_request([], [])
    with pytest.raises(ValueError, match=r"continuations\[1\] is ''"):
        local.loglikelihood(["a", "b"], ["c", ""])
    with pytest.raises(ValueError, match="top must be"):
        local.prompt_logprobs(["a"], top=-1)
    with pytest.raises(ValueError, match="non-empty str"):
        local.prompt_logprobs([""])
    with BackgroundServer(create_app(_CompletesOnly(), "plain")) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "plain", max_retries=0)
        with pytest.raises(LanguageModelError, match="HTTP 400.*prompt_logprobs"):
            client.loglikelihood(["a"], ["b"])
        bad = {"model": "plain", "prompt": "a", "max_tokens": 0, "echo": True, "logprobs": -1}
        assert httpx.post(f"{running.base_url}/completions", json=bad).status_code == 400


def test_a_server_that_does_not_echo_is_an_error():
    app = FastAPI()

    @app.post("/v1/completions")
    def completions(body: dict) -> dict:
        return {"choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}]}

    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "m", max_retries=0)
        with pytest.raises(LanguageModelError, match="did not echo"):
            client.loglikelihood(["a"], ["b"])


def test_http_equals_local_with_a_byte_level_bpe_tokenizer():
    """The MMLU case with a real BPE (trained here): " A" is one token after "Answer:", and the HTTP
    backend's boundary (final tokens covering the continuation) picks the same tokens as the local
    backend's (encode(context + continuation) after encode(context))."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from aicanon.language.local_backend import TokenizersAdapter

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [
        "What is the capital of France?\nA. Paris\nB. Rome\nAnswer: A\n\n",
        "the cat sat on the mat",
    ] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus, trainer)
    adapter = TokenizersAdapter(tokenizer)
    assert len(adapter.encode("Answer: A")) == len(adapter.encode("Answer:")) + 1  # " A" is one token
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        max_seq_len=128,
    )
    backend = LocalLanguageModel(Llama(config), adapter, bos_token_id=tokenizer.token_to_id("<s>"))
    contexts = ["What is the capital of France?\nA. Paris\nB. Rome\nAnswer:"] * 2 + ["the cat", "the cat "]
    continuations = [" A", " B", " sat on the mat", "sat"]
    with BackgroundServer(create_app(backend, "bpe")) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "bpe")
        theirs = client.loglikelihood(contexts, continuations)
    ours = backend.loglikelihood(contexts, continuations)
    for o, t in zip(ours, theirs, strict=True):
        assert t.logprob == pytest.approx(o.logprob, abs=1e-4) and t.is_greedy == o.is_greedy


def test_completions_stop_early_at_stop_strings_with_the_same_text():
    """Rows whose text holds a stop string end decoding early; the completions equal cutting a full
    decode at the stop string."""
    backend = LocalLanguageModel(_llama(), CharTokenizer(), bos_token_id=0)
    calls = []
    backend.model.register_forward_hook(lambda module, args, output: calls.append(1))
    free = backend.complete(["ab", "ba"], max_tokens=20, temperature=0.0)
    free_calls = len(calls)
    stops = [row[0].text[3:5] for row in free]  # a string that occurs mid-way in each completion
    stopped = backend.complete(["ab", "ba"], max_tokens=20, temperature=0.0, stop=stops)
    assert len(calls) - free_calls < free_calls  # fewer decoding steps
    for row_free, row_stopped in zip(free, stopped, strict=True):
        text = row_free[0].text
        cut = min(text.index(s) for s in stops if s in text)
        assert row_stopped[0].text == text[:cut]
        assert row_stopped[0].finish_reason == "stop"
