"""A :class:`~aicanon.language.completion.LanguageModel` over an OpenAI-compatible HTTP API.

Works against anything that speaks the OpenAI completions or chat-completions protocol: vLLM,
llama.cpp's server, Ollama, hosted APIs, and ``aicanon serve``.

* ``endpoint="completions"`` posts ``/v1/completions`` with all prompts in one request (or one per
  prompt with ``batch_prompts=False``, for servers that take a single prompt) and asks for token
  log-probabilities (``logprobs: 1``) unless ``logprobs=False``; choice ``i·n + j`` is prompt i's
  j-th sample, as the API defines.
* ``endpoint="chat"`` posts ``/v1/chat/completions``, one request per prompt, the prompt as one user
  message; log-probabilities from ``choices[].logprobs.content`` when the server gives them.
* ``top_k`` is sent as the ``top_k`` field only when given: vLLM, llama.cpp's server and ``aicanon
  serve`` take it; OpenAI's own API has no top-k and refuses or ignores it.
* ``loglikelihood(contexts, continuations)`` (the
  :class:`~aicanon.language.completion.ScoringLanguageModel` protocol) posts ``/v1/completions`` with
  ``prompt = context + continuation``, ``echo: true, max_tokens: 0, logprobs: 1`` (what vLLM and the
  legacy OpenAI API support; ``aicanon serve`` too), after moving the context's trailing whitespace to
  the continuation as every backend does. The server returns the prompt's tokens with their
  log-probabilities; the continuation's tokens are the shortest run of final tokens whose text covers
  the continuation (counted from the end, so a BOS token the server lists first does not shift it;
  a token straddling the boundary counts as the continuation's, matching a local backend whenever the
  tokenizer splits at the boundary, as BPE does before " A"). ``is_greedy``: every such token's
  log-probability equals the best of its ``top_logprobs``; None if the server gives no alternatives.

Reliability: every request has a timeout; connection errors, timeouts and the statuses 429, 500,
502, 503 and 504 are retried at most ``max_retries`` times with exponential backoff (honouring a
``Retry-After`` header up to ``max_backoff``); any other failure raises :class:`LanguageModelError`
at once. The API key is read from the environment variable ``api_key_env`` when the request is made
and sent only in the ``Authorization`` header: it is never stored on the object, logged, or put into
an error message.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx

from aicanon.core.checks import check_choice, check_float, check_int
from aicanon.language.completion import (
    Completion,
    Loglikelihood,
    check_completion_request,
    check_loglikelihood_request,
    split_trailing_whitespace,
)

__all__ = ["LanguageModelError", "OpenAICompatibleLanguageModel"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class LanguageModelError(RuntimeError):
    """A request to a language-model server failed (after the retries, where retrying applies)."""


class OpenAICompatibleLanguageModel:
    """Complete prompts through an OpenAI-compatible server at ``base_url`` (e.g.
    ``http://127.0.0.1:8000/v1``) with model name ``model`` (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        endpoint: str = "completions",
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        batch_prompts: bool = True,
        logprobs: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty str (the server's model name), got {model!r}")
        check_choice("endpoint", endpoint, ("completions", "chat"))
        check_float("timeout", timeout, 0.0, min_inclusive=False, finite=True)
        check_int("max_retries", max_retries, 0)
        check_float("backoff", backoff, 0.0, finite=True)
        check_float("max_backoff", max_backoff, 0.0, finite=True)
        if extra_body is not None and not isinstance(extra_body, dict):
            raise TypeError(f"extra_body must be a dict or None, got {type(extra_body).__name__}")
        self.base_url = base_url.rstrip("/")
        self.model, self.endpoint, self.api_key_env = model, endpoint, api_key_env
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.batch_prompts, self.logprobs = batch_prompts, logprobs
        self.extra_body = dict(extra_body or {})
        self._client = httpx.Client(timeout=timeout)

    def __repr__(self) -> str:  # never shows a key: none is stored
        fields = f"base_url={self.base_url!r}, model={self.model!r}, endpoint={self.endpoint!r}"
        return f"OpenAICompatibleLanguageModel({fields})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAICompatibleLanguageModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{path}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._client.post(url, json=body, headers=self._headers())
            except httpx.TransportError as error:  # connection refused/reset, timeouts
                if last:
                    raise LanguageModelError(
                        f"POST {url} failed after {attempt + 1} attempt(s): {type(error).__name__}: {error}"
                    ) from None
                self._sleep(attempt, None, f"{type(error).__name__}")
                continue
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError:
                    raise LanguageModelError(
                        f"POST {url} returned a body that is not JSON: {response.text[:200]!r}"
                    ) from None
            if response.status_code in RETRY_STATUSES and not last:
                self._sleep(attempt, response.headers.get("retry-after"), f"HTTP {response.status_code}")
                continue
            raise LanguageModelError(
                f"POST {url} returned HTTP {response.status_code} after {attempt + 1} attempt(s): "
                f"{response.text[:300]!r}"
            )
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None, reason: str) -> None:
        delay = self.backoff * 2**attempt
        if retry_after is not None:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        delay = min(delay, self.max_backoff)
        log.warning(
            "%s from %s; retry %d of %d in %.2f s",
            reason,
            self.base_url,
            attempt + 1,
            self.max_retries,
            delay,
        )
        time.sleep(delay)

    # -- the protocol --------------------------------------------------------------------------------

    def complete(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        n: int = 1,
        stop: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> list[list[Completion]]:
        prompts, stops = check_completion_request(prompts, max_tokens, temperature, n, stop, top_k)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": float(temperature),
            "n": n,
            **self.extra_body,
        }
        if stops:
            body["stop"] = stops
        if top_k is not None:  # not in the OpenAI API; vLLM, llama.cpp's server and aicanon serve take it
            body["top_k"] = top_k
        if self.endpoint == "chat":
            return [self._chat(prompt, body) for prompt in prompts]
        if self.logprobs:
            body["logprobs"] = 1
        groups = [prompts] if self.batch_prompts else [[p] for p in prompts]
        results: list[list[Completion]] = []
        for group in groups:
            data = self._post("completions", {**body, "prompt": group if self.batch_prompts else group[0]})
            results.extend(_completion_choices(data, len(group), n))
        return results

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[Loglikelihood]:
        """log P(continuation | context) and whether it is greedy, per request, scored by the server's
        ``echo`` (module docstring). One request for all pairs (one per pair with ``batch_prompts=False``)."""
        contexts, continuations = check_loglikelihood_request(contexts, continuations)
        pairs = [split_trailing_whitespace(c, x) for c, x in zip(contexts, continuations, strict=True)]
        texts = [context + continuation for context, continuation in pairs]
        body = {
            "model": self.model,
            "max_tokens": 0,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
            **self.extra_body,
        }
        groups = [list(range(len(texts)))] if self.batch_prompts else [[i] for i in range(len(texts))]
        results: list[Loglikelihood] = []
        for group in groups:
            prompt: Any = [texts[i] for i in group] if self.batch_prompts else texts[group[0]]
            choices = _choices(self._post("completions", {**body, "prompt": prompt}), n=1, prompts=len(group))
            results.extend(_echo_loglikelihood(c, pairs[i][1]) for c, i in zip(choices, group, strict=True))
        return results

    def _chat(self, prompt: str, body: dict[str, Any]) -> list[Completion]:
        request = {**body, "messages": [{"role": "user", "content": prompt}]}
        if self.logprobs:
            request["logprobs"] = True
        data = self._post("chat/completions", request)
        choices = _choices(data, n=body["n"], prompts=1)
        out = []
        for choice in choices:
            message = choice.get("message") or {}
            content = message.get("content")
            if not isinstance(content, str):
                raise LanguageModelError(f"a chat choice has no text content: {str(choice)[:200]}")
            tokens = logprobs = None
            entries = (choice.get("logprobs") or {}).get("content")
            if isinstance(entries, list) and entries:
                tokens = tuple(str(e.get("token", "")) for e in entries)
                logprobs = tuple(float(e.get("logprob", 0.0)) for e in entries)
                if "".join(tokens) != content:
                    tokens = logprobs = None  # the server's pieces do not spell the text: drop them
            out.append(Completion(content, _finish(choice), tokens, logprobs))
        return out


def _choices(data: Any, n: int, prompts: int) -> list[dict[str, Any]]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or len(choices) != n * prompts:
        got = len(choices) if isinstance(choices, list) else type(choices).__name__
        raise LanguageModelError(f"the server returned {got} choices for {prompts} prompt(s) x n={n}")
    if all(isinstance(c, dict) and isinstance(c.get("index"), int) for c in choices):
        choices = sorted(choices, key=lambda c: c["index"])
    return choices


def _finish(choice: dict[str, Any]) -> str:
    # Servers also say "eos", "end_turn", "content_filter", …: everything but "length" ended by itself.
    return "length" if choice.get("finish_reason") == "length" else "stop"


def _completion_choices(data: Any, prompts: int, n: int) -> list[list[Completion]]:
    choices = _choices(data, n, prompts)
    completions = []
    for choice in choices:
        text = choice.get("text")
        if not isinstance(text, str):
            raise LanguageModelError(f"a completion choice has no text: {str(choice)[:200]}")
        tokens = logprobs = None
        info = choice.get("logprobs")
        if isinstance(info, dict) and isinstance(info.get("tokens"), list):
            tokens = tuple(str(t) for t in info["tokens"])
            values = info.get("token_logprobs") or []
            logprobs = tuple(float(v) if v is not None else 0.0 for v in values)
            if len(tokens) != len(logprobs) or "".join(tokens) != text:
                tokens = logprobs = (
                    None  # inconsistent pieces (e.g. a stop sequence cut mid-token): drop them
                )
        completions.append(Completion(text, _finish(choice), tokens, logprobs))
    return [completions[i * n : (i + 1) * n] for i in range(prompts)]


def _echo_loglikelihood(choice: dict[str, Any], continuation: str) -> Loglikelihood:
    """The continuation's log-probability from an echoed prompt's token log-probabilities (module
    docstring: the continuation's tokens are the shortest final run covering its text)."""
    info = choice.get("logprobs")
    tokens = info.get("tokens") if isinstance(info, dict) else None
    values = info.get("token_logprobs") if isinstance(info, dict) else None
    if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
        raise LanguageModelError(
            "the server did not echo the prompt's token log-probabilities (it needs echo=true with "
            f"max_tokens=0 and logprobs): {str(choice)[:200]}"
        )
    count, covered = 0, 0
    while covered < len(continuation) and count < len(tokens):
        count += 1
        covered += len(str(tokens[-count]))
    if covered < len(continuation):
        raise LanguageModelError(f"the echoed tokens do not cover the continuation {continuation!r}")
    scored = values[len(values) - count :]
    if any(v is None for v in scored):
        raise LanguageModelError(
            "the server gave no log-probability for a continuation token (an empty context without BOS?)"
        )
    tops = info.get("top_logprobs")
    is_greedy: bool | None = None
    if isinstance(tops, list) and len(tops) == len(tokens):
        final = tops[len(tops) - count :]
        if all(isinstance(t, dict) and t for t in final):
            is_greedy = all(float(v) >= max(float(x) for x in t.values()) for v, t in zip(scored, final))
    return Loglikelihood(float(sum(float(v) for v in scored)), is_greedy)
