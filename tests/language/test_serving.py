"""The LanguageModel protocol end to end: our model in process, behind `aicanon serve`'s app on
127.0.0.1, and the OpenAI-compatible HTTP client talking to it (real HTTP, no mocks); retries,
timeouts and the API key's handling against scripted servers."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
import pytest
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from aicanon.language.completion import Completion, LanguageModel, check_completion_request, truncate_at_stop
from aicanon.language.http_backend import LanguageModelError, OpenAICompatibleLanguageModel
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.llama_weights import save_pretrained
from aicanon.language.local_backend import LocalLanguageModel, TokenizersAdapter, load_local_language_model
from aicanon.language.server import BackgroundServer, create_app, default_chat_template

CHARS = sorted(set("abcdefghijklmnopqrstuvwxyz 0123456789+=?:\n.,"))


def _char_tokenizer() -> Tokenizer:
    vocab = {"<s>": 0, "</s>": 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="</s>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(CHARS) + 2,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        max_seq_len=128,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    save_pretrained(Llama(cfg), folder)
    _char_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "generation_config.json").write_text('{"bos_token_id": 0, "eos_token_id": 1}')
    return folder


@pytest.fixture(scope="module")
def local(model_folder):
    return load_local_language_model(model_folder)


@pytest.fixture(scope="module")
def server(model_folder):
    with BackgroundServer(create_app(load_local_language_model(model_folder), "tiny")) as running:
        yield running


def test_local_backend_is_a_language_model_and_greedy_is_repeatable(local):
    assert isinstance(local, LanguageModel)
    first = local.complete(["1+2=", "ab"], max_tokens=6)
    assert len(first) == 2 and all(len(group) == 1 for group in first)
    again = local.complete(["1+2=", "ab"], max_tokens=6)
    assert [g[0].text for g in first] == [g[0].text for g in again]
    for group in first:
        c = group[0]
        assert "".join(c.tokens) == c.text and len(c.tokens) == len(c.token_logprobs)
        assert all(lp <= 0 for lp in c.token_logprobs)


def test_local_logprobs_equal_a_direct_forward_pass(local):
    (c,) = local.complete(["abc"], max_tokens=5)[0]
    ids = [0] + local.tokenizer.encode("abc")
    generated = local.tokenizer.encode(c.text)
    full = torch.tensor([ids + generated])
    with torch.no_grad():
        logits = local.model(full, use_cache=False)
    logp = logits[0, len(ids) - 1 : -1].log_softmax(-1).gather(-1, full[0, len(ids) :, None]).squeeze(-1)
    torch.testing.assert_close(torch.tensor(c.token_logprobs), logp, atol=1e-5, rtol=1e-5)
    # Greedy: each generated token is the argmax of its distribution.
    assert torch.equal(logits[0, len(ids) - 1 : -1].argmax(-1), full[0, len(ids) :])


def test_sampling_n_is_seeded_and_varies(model_folder):
    a = load_local_language_model(model_folder, seed=3).complete(["a"], max_tokens=8, temperature=1.0, n=4)
    b = load_local_language_model(model_folder, seed=3).complete(["a"], max_tokens=8, temperature=1.0, n=4)
    assert [c.text for c in a[0]] == [c.text for c in b[0]]
    assert len({c.text for c in a[0]}) > 1  # a random model sampled at T=1 does not repeat itself


def test_top_k_truncates_sampling_locally_and_over_http(model_folder, local, server):
    prompts = ["1+2=", "abc"]
    greedy = [g[0].text for g in local.complete(prompts, max_tokens=8)]
    # top_k = 1 at T = 1 is greedy decoding; the reported log-probs stay those of the full distribution.
    top1 = load_local_language_model(model_folder, seed=5).complete(
        prompts, max_tokens=8, temperature=1.0, n=3, top_k=1
    )
    assert all(c.text == g for group, g in zip(top1, greedy, strict=True) for c in group)
    assert any(lp < -1e-3 for group in top1 for c in group for lp in c.token_logprobs)
    # Every token sampled with top_k = 3 is among its step's three most likely (checked against the
    # full forward pass), while T = 1 without truncation leaves the top three somewhere.
    model, vocab = local.model, _char_tokenizer().get_vocab()  # one piece per token id ("<s>" too)

    def ranks(c, prompt):
        ids = local._encode(prompt) + [vocab[piece] for piece in c.tokens]
        with torch.no_grad():
            out = model(torch.tensor([ids]))
        logits = (out[0] if isinstance(out, tuple) else out)[0]
        start = len(local._encode(prompt))
        return [int((logits[t - 1] > logits[t - 1, ids[t]]).sum()) for t in range(start, len(ids))]

    sampled = load_local_language_model(model_folder, seed=5).complete(
        ["q"], max_tokens=12, temperature=1.0, n=8, top_k=3
    )[0]
    assert max(r for c in sampled for r in ranks(c, "q")) < 3
    free = load_local_language_model(model_folder, seed=5)
    free = free.complete(["q"], max_tokens=12, temperature=1.0, n=8)[0]
    assert max(r for c in free for r in ranks(c, "q")) >= 3
    # Over HTTP the field reaches the model (top_k = 1 is greedy there too), and is validated.
    client = OpenAICompatibleLanguageModel(server.base_url, "tiny", api_key_env=None)
    assert [g[0].text for g in client.complete(prompts, max_tokens=8, temperature=1.0, top_k=1)] == greedy
    body = {"model": "tiny", "prompt": "ab", "max_tokens": 3, "top_k": 0}
    bad = httpx.post(f"{server.base_url}/completions", json=body)
    assert bad.status_code == 400 and "top_k" in bad.json()["error"]["message"]
    with pytest.raises(ValueError, match="top_k"):
        local.complete(prompts, max_tokens=2, temperature=1.0, top_k=0)


def test_stop_sequences_cut_text_and_tokens(local):
    (c,) = local.complete(["q"], max_tokens=12)[0]
    assert len(c.text) >= 4
    stop = c.text[2:4]
    (cut,) = local.complete(["q"], max_tokens=12, stop=[stop])[0]
    assert cut.text == c.text[: c.text.find(stop)] and cut.finish_reason == "stop"
    assert "".join(cut.tokens) == cut.text and len(cut.token_logprobs) == len(cut.tokens)
    assert truncate_at_stop("abcabc", ["ca", "b"]) == ("a", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)


def test_eos_ends_a_completion():
    class EosAfterTwo(torch.nn.Module):
        """Emits token 5, 6, then EOS (1), whatever the prompt."""

        def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False):
            step = 0 if past_key_values is None else past_key_values + 1
            logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], 8)
            logits[:, -1, [5, 6, 1][min(step, 2)]] = 10.0
            if past_key_values is None and not use_cache:  # the scoring pass
                logits[:] = 0
                logits[..., 1] = 1.0
            return logits, step

    class Digits:
        def encode(self, text):
            return [int(ch) for ch in text]

        def decode(self, ids):
            return "".join(str(i) for i in ids)

    backend = LocalLanguageModel(EosAfterTwo(), Digits(), eos_token_id=1)
    (c,) = backend.complete(["3"], max_tokens=10)[0]
    assert c.text == "56" and c.finish_reason == "stop"
    (short,) = backend.complete(["3"], max_tokens=1)[0]
    assert short.text == "5" and short.finish_reason == "length"


def test_http_client_equals_the_local_backend(local, server):
    client = OpenAICompatibleLanguageModel(server.base_url, "tiny", api_key_env=None)
    prompts = ["1+2=", "abc", "q"]
    over_http = client.complete(prompts, max_tokens=6)
    in_process = local.complete(prompts, max_tokens=6)
    for h, p in zip(over_http, in_process, strict=True):
        assert h[0].text == p[0].text and h[0].finish_reason == p[0].finish_reason
        assert h[0].tokens == p[0].tokens
        torch.testing.assert_close(torch.tensor(h[0].token_logprobs), torch.tensor(p[0].token_logprobs))
    # One prompt at a time and the chat endpoint also work.
    single = OpenAICompatibleLanguageModel(server.base_url, "tiny", api_key_env=None, batch_prompts=False)
    assert [g[0].text for g in single.complete(prompts, max_tokens=6)] == [g[0].text for g in in_process]
    chat = OpenAICompatibleLanguageModel(server.base_url, "tiny", endpoint="chat", api_key_env=None)
    (reply,) = chat.complete(["ab"], max_tokens=5)[0]
    (expected,) = local.complete([default_chat_template([{"role": "user", "content": "ab"}])], max_tokens=5)[
        0
    ]
    assert reply.text == expected.text and reply.tokens == expected.tokens


def test_server_speaks_the_openai_format(server):
    models = httpx.get(f"{server.base_url}/models").json()
    assert models["data"][0]["id"] == "tiny"
    body = {"model": "tiny", "prompt": ["ab", "cd"], "max_tokens": 3, "n": 2, "temperature": 0, "logprobs": 1}
    data = httpx.post(f"{server.base_url}/completions", json=body).json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3]
    assert data["object"] == "text_completion" and data["choices"][0]["logprobs"]["text_offset"][0] == 0
    wrong = httpx.post(f"{server.base_url}/completions", json={**body, "model": "gpt-5"})
    assert wrong.status_code == 404 and "not served" in wrong.json()["error"]["message"]
    bad = httpx.post(f"{server.base_url}/completions", json={**body, "max_tokens": -1})
    assert bad.status_code == 400 and "max_tokens" in bad.json()["error"]["message"]
    missing = httpx.post(f"{server.base_url}/completions", json={"model": "tiny"})
    assert missing.status_code == 400
    too_long = httpx.post(f"{server.base_url}/completions", json={**body, "max_tokens": 500})
    assert too_long.status_code == 400 and "context" in too_long.json()["error"]["message"]


def _scripted(failures: int, status: int = 503, delay: float = 0.0):
    """A real server whose first `failures` requests fail with `status`; it records the headers."""
    app = FastAPI()
    seen: list[dict] = []

    @app.post("/v1/completions")
    async def completions(request: Request):
        seen.append(dict(request.headers))
        if delay:
            time.sleep(delay)
        if len(seen) <= failures:
            return JSONResponse(
                status_code=status, content={"error": {"message": "busy"}}, headers={"Retry-After": "0"}
            )
        body = await request.json()
        return {
            "choices": [
                {"index": i, "text": "ok", "finish_reason": "length", "logprobs": None}
                for i in range(len(body["prompt"]) * body["n"])
            ]
        }

    return app, seen


def test_retries_with_backoff_then_succeeds(caplog):
    app, seen = _scripted(failures=2)
    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "m", backoff=0.01, max_retries=3)
        with caplog.at_level(logging.WARNING, logger="aicanon.language.http_backend"):
            out = client.complete(["x"], max_tokens=2)
    assert out[0][0].text == "ok" and len(seen) == 3
    assert sum("HTTP 503" in r.getMessage() for r in caplog.records) == 2


def test_retries_are_bounded_and_client_errors_are_not_retried():
    app, seen = _scripted(failures=10)
    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "m", backoff=0.0, max_retries=2)
        with pytest.raises(LanguageModelError, match="HTTP 503 after 3 attempt"):
            client.complete(["x"])
    assert len(seen) == 3
    app, seen = _scripted(failures=10, status=401)
    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "m", backoff=0.0, max_retries=2)
        with pytest.raises(LanguageModelError, match="HTTP 401 after 1 attempt"):
            client.complete(["x"])
    assert len(seen) == 1


def test_timeouts_and_refused_connections_raise_after_retries():
    app, _ = _scripted(failures=0, delay=1.0)
    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(running.base_url, "m", timeout=0.2, backoff=0.0, max_retries=1)
        with pytest.raises(LanguageModelError, match="ReadTimeout"):
            client.complete(["x"])
    closed = OpenAICompatibleLanguageModel("http://127.0.0.1:9/v1", "m", backoff=0.0, max_retries=1)
    with pytest.raises(LanguageModelError, match="2 attempt"):
        closed.complete(["x"])


def test_api_key_is_sent_but_never_shown(monkeypatch, caplog):
    secret = "sk-test-SECRET-123456"
    monkeypatch.setenv("AICANON_TEST_KEY", secret)
    app, seen = _scripted(failures=5, status=500)
    with BackgroundServer(app) as running:
        client = OpenAICompatibleLanguageModel(
            running.base_url, "m", api_key_env="AICANON_TEST_KEY", backoff=0.0, max_retries=1
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(LanguageModelError) as error:
            client.complete(["x"])
    assert seen[0]["authorization"] == f"Bearer {secret}"
    assert secret not in str(error.value) and secret not in repr(client) and secret not in caplog.text
    assert secret not in str(vars(client))


def test_bad_requests_are_refused_before_sending():
    with pytest.raises(TypeError, match="prompts must be a list"):
        check_completion_request("one prompt", 4, 0.0, 1, None)
    with pytest.raises(ValueError, match="temperature"):
        check_completion_request(["a"], 4, -1.0, 1, None)
    with pytest.raises(ValueError, match="n must be"):
        check_completion_request(["a"], 4, 0.0, 0, None)
    with pytest.raises(ValueError, match="stop"):
        check_completion_request(["a"], 4, 0.0, 1, [""])
    with pytest.raises(ValueError, match="base_url"):
        OpenAICompatibleLanguageModel("localhost:8000", "m")
    with pytest.raises(ValueError, match="endpoint"):
        OpenAICompatibleLanguageModel("http://x/v1", "m", endpoint="embeddings")
    with pytest.raises(ValueError, match="finish_reason"):
        Completion("a", "eos")
    with pytest.raises(ValueError, match="together"):
        Completion("a", "stop", tokens=("a",))
    with pytest.raises(TypeError, match="tokenizer must have an encode"):
        LocalLanguageModel(torch.nn.Linear(1, 1), object())


def test_folder_errors_are_clear(tmp_path, model_folder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_local_language_model(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_local_language_model(tmp_path)
    (tmp_path / "tokenizer.json").write_text("not json")
    with pytest.raises(ValueError, match="tokenizer.json"):
        TokenizersAdapter.from_file(tmp_path / "tokenizer.json")


def test_aicanon_serve_command(model_folder):
    port = BackgroundServer(FastAPI()).port  # a free port
    env = {**os.environ, "AICANON_PROGRESS": "0"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aicanon",
            "serve",
            str(model_folder),
            "--port",
            str(port),
            "--name",
            "tiny",
            "--device",
            "cpu",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/models", timeout=1.0)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "aicanon serve did not start in 60 s"
                time.sleep(0.2)
        client = OpenAICompatibleLanguageModel(url, "tiny", api_key_env=None)
        assert len(client.complete(["ab"], max_tokens=3)[0][0].tokens) == 3
    finally:
        process.terminate()
        process.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "aicanon", "serve", "/nonexistent"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr


@pytest.mark.parity
def test_greedy_completions_equal_transformers_generate(model_folder, local):
    transformers = pytest.importorskip("transformers")
    reference = transformers.LlamaForCausalLM.from_pretrained(model_folder).eval()
    for prompt in ["1+2=", "abc"]:
        ids = [0] + local.tokenizer.encode(prompt)
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([ids]), max_new_tokens=6, do_sample=False, eos_token_id=1, pad_token_id=1
            )
        new = out[0, len(ids) :].tolist()
        new = new[: new.index(1)] if 1 in new else new
        (ours,) = local.complete([prompt], max_tokens=6)[0]
        assert ours.text == local.tokenizer.decode(new)


@pytest.mark.parity
def test_transformers_backend_equals_ours_on_the_same_weights(model_folder, local):
    transformers = pytest.importorskip("transformers")
    from aicanon.language.transformers_backend import TransformersCausalLM

    reference = transformers.LlamaForCausalLM.from_pretrained(model_folder).eval()
    backend = LocalLanguageModel(
        TransformersCausalLM(reference), local.tokenizer, eos_token_id=1, bos_token_id=0, max_context=128
    )
    prompts = ["1+2=", "a", "the cat sat"]  # different lengths: left padding is exercised
    theirs, ours = backend.complete(prompts, max_tokens=8), local.complete(prompts, max_tokens=8)
    for t, o in zip(theirs, ours, strict=True):
        assert t[0].text == o[0].text and t[0].finish_reason == o[0].finish_reason
        torch.testing.assert_close(
            torch.tensor(t[0].token_logprobs), torch.tensor(o[0].token_logprobs), atol=1e-5, rtol=1e-5
        )
