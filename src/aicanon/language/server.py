"""An OpenAI-compatible HTTP server for any :class:`~aicanon.language.completion.LanguageModel`.

``create_app(model, model_name)`` is a FastAPI application with the endpoints clients expect:

* ``GET /v1/models``: the one model served;
* ``POST /v1/completions``: ``prompt`` (a str or a list), ``max_tokens`` (default 16), ``temperature``
  (default 1), ``n``, ``stop``, ``top_k`` (vLLM's extension: sample among the k most likely tokens),
  ``logprobs`` (any integer asks for the sampled tokens' log-probabilities;
  alternatives are not reported: ``top_logprobs`` is null), ``echo`` (the prompt is returned before
  the completion; with ``logprobs: k`` its tokens come scored, with the ``k`` most likely alternatives
  at each position in ``top_logprobs``, null for the first token when there is no BOS and for
  generated tokens). ``echo: true, max_tokens: 0, logprobs: 1`` scores given text, as vLLM and the
  legacy OpenAI API do: the request ``OpenAICompatibleLanguageModel.loglikelihood`` makes. It needs a
  model with ``prompt_logprobs`` (:class:`~aicanon.language.local_backend.LocalLanguageModel`); others
  answer 400;
* ``POST /v1/chat/completions``: ``messages`` rendered to one prompt by ``chat_template`` (default:
  ``"role: content\\n"`` per message, then ``"assistant:"``), ``top_k``, ``logprobs: true`` for token
  log-probabilities.

``usage`` counts the generated tokens only (``prompt_tokens`` is 0: the protocol does not report the
prompt's tokenisation). A request naming another model gets 404, an invalid one 400 with an
OpenAI-style error body. Calls to the model are serialised by a lock (a torch model and its sampler
are not shared across threads).
:class:`BackgroundServer` runs an app with uvicorn in a thread (tests, notebooks); ``aicanon serve``
runs it in the foreground.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from aicanon.language.completion import Completion, LanguageModel, PromptLogprobs

__all__ = ["BackgroundServer", "create_app", "default_chat_template"]

Message = dict[str, str]


class CompletionRequest(BaseModel):
    model: str
    prompt: str | list[str]
    max_tokens: int = 16
    temperature: float = 1.0
    n: int = 1
    stop: str | list[str] | None = None
    top_k: int | None = Field(default=None, ge=1)
    logprobs: int | None = Field(default=None, ge=0)
    echo: bool = False


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = 16
    temperature: float = 1.0
    n: int = 1
    stop: str | list[str] | None = None
    top_k: int | None = Field(default=None, ge=1)
    logprobs: bool = False


def default_chat_template(messages: Sequence[Message]) -> str:
    """``"system: …\\nuser: …\\n"`` … then ``"assistant:"`` for the model to continue."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind}})


def create_app(
    model: LanguageModel,
    model_name: str,
    chat_template: Callable[[Sequence[Message]], str] = default_chat_template,
) -> Any:
    """The FastAPI application serving ``model`` as ``model_name`` (see the module docstring)."""
    if not callable(getattr(model, "complete", None)):
        raise TypeError(f"model must have a complete() method (a LanguageModel), got {type(model).__name__}")
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model_name must be a non-empty str, got {model_name!r}")

    app = FastAPI(title=f"aicanon serve: {model_name}")
    lock = threading.Lock()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Any:
        return _error(400, f"invalid request: {error.errors()}")

    def _complete(prompts: list[str], body: Any) -> list[list[Completion]] | Any:
        if body.model != model_name:
            return _error(
                404, f"model {body.model!r} is not served here (this server has {model_name!r})", "not_found"
            )
        try:
            # top_k only when asked: a served model written before top_k still answers other requests.
            extra = {} if body.top_k is None else {"top_k": body.top_k}
            with lock:
                return model.complete(prompts, body.max_tokens, body.temperature, body.n, body.stop, **extra)
        except (TypeError, ValueError) as error:
            return _error(400, str(error))

    def _usage(prompts: list[str], results: list[list[Completion]]) -> dict[str, int]:
        generated = sum(len(c.tokens or ()) for group in results for c in group)
        return {"prompt_tokens": 0, "completion_tokens": generated, "total_tokens": generated}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "aicanon"}]}

    def _echo(prompts: list[str], body: CompletionRequest) -> list[PromptLogprobs] | None | Any:
        """The prompts' own token log-probabilities for ``echo`` with ``logprobs`` (else None)."""
        if not body.echo or body.logprobs is None:
            return None
        if not callable(getattr(model, "prompt_logprobs", None)):
            return _error(400, "echo with logprobs needs a model that scores prompts (prompt_logprobs)")
        try:
            with lock:
                return model.prompt_logprobs(prompts, top=body.logprobs)
        except (TypeError, ValueError) as error:
            return _error(400, str(error))

    @app.post("/v1/completions")
    def completions(body: CompletionRequest) -> Any:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if body.echo and body.max_tokens == 0 and body.model == model_name:
            # Scoring given text: nothing to generate.
            results: Any = [[Completion("", "length", (), ())] * body.n for _ in prompts]
        else:
            results = _complete(prompts, body)
        if not isinstance(results, list):
            return results
        echoes = _echo(prompts, body)
        if echoes is not None and not isinstance(echoes, list):
            return echoes
        choices = []
        for i, group in enumerate(results):
            for completion in group:
                logprobs = None
                text, tokens = completion.text, completion.tokens
                token_logprobs, top_logprobs = completion.token_logprobs, None
                if body.echo:
                    text = prompts[i] + text
                if echoes is not None and tokens is not None:
                    tokens = echoes[i].tokens + tokens
                    token_logprobs = echoes[i].token_logprobs + token_logprobs
                    top_logprobs = list(echoes[i].top_logprobs) + [None] * len(completion.tokens)
                if body.logprobs is not None and tokens is not None:
                    offsets, at = [], 0
                    for token in tokens:
                        offsets.append(at)
                        at += len(token)
                    logprobs = {
                        "tokens": list(tokens),
                        "token_logprobs": list(token_logprobs),
                        "top_logprobs": top_logprobs,
                        "text_offset": offsets,
                    }
                choices.append(
                    {
                        "index": len(choices),
                        "text": text,
                        "logprobs": logprobs,
                        "finish_reason": completion.finish_reason,
                    }
                )
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": _usage(prompts, results),
        }

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest) -> Any:
        prompt = chat_template([m.model_dump() for m in body.messages])
        results = _complete([prompt], body)
        if not isinstance(results, list):
            return results
        choices = []
        for completion in results[0]:
            logprobs = None
            if body.logprobs and completion.tokens is not None:
                logprobs = {
                    "content": [
                        {"token": t, "logprob": lp, "top_logprobs": []}
                        for t, lp in zip(completion.tokens, completion.token_logprobs, strict=True)
                    ]
                }
            choices.append(
                {
                    "index": len(choices),
                    "message": {"role": "assistant", "content": completion.text},
                    "logprobs": logprobs,
                    "finish_reason": completion.finish_reason,
                }
            )
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": _usage([prompt], results),
        }

    return app


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """Run ``app`` with uvicorn on ``host``:``port`` (a free port when 0) in a daemon thread.

    Use as a context manager: ``with BackgroundServer(app) as server: server.base_url`` (e.g.
    ``http://127.0.0.1:53121/v1``); the server stops on exit.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0
    ) -> None:
        self.host, self.port = host, port or _free_port(host)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._startup_timeout = startup_timeout

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.host}:{self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
