"""One interface to a language model, whatever serves it: ``complete(prompts, ...) -> completions``.

The prompting, search and evaluation methods (chain of thought, self-consistency, Tree of Thoughts,
ReAct, the benchmark harnesses) are programs over text completion, so they are written against
:class:`LanguageModel` and run unchanged on any backend:

* :class:`~aicanon.language.local_backend.LocalLanguageModel`: a causal LM of ``aicanon.language``
  (or any module with the same call signature) in this process;
* :func:`~aicanon.language.transformers_backend.load_transformers_language_model`: a transformers
  causal LM (local files) through the same local backend;
* :class:`~aicanon.language.http_backend.OpenAICompatibleLanguageModel`: an OpenAI-compatible
  ``/v1/completions`` endpoint (vLLM, llama.cpp's server, Ollama, hosted APIs, ``aicanon serve``).

``complete(prompts, max_tokens, temperature, n, stop, top_k=None)`` returns, for every prompt, ``n``
:class:`Completion` objects (a list of lists, in prompt order). A completion carries its text, why it
ended (``"stop"``: a stop sequence or the end-of-sequence token; ``"length"``: ``max_tokens`` reached)
and, where the backend provides them, the log-probability of each generated token under the model
(natural log, at temperature 1, i.e. of the unmodified distribution), so sequence probabilities can
be compared (self-consistency's weighted votes). ``top_k`` truncates sampling to the ``k`` most
likely tokens at each step (None: no truncation; ignored at temperature 0; the reported
log-probabilities stay those of the unmodified distribution). The OpenAI completions API has no
``top_k``; vLLM, llama.cpp's server and ``aicanon serve`` accept it as an extra field. Callers that
must also run on models written before ``top_k`` pass it only when they set it.

Scoring given continuations (multiple-choice benchmarks such as MMLU score each answer's
log-probability, which ``complete`` cannot give) is a second protocol, :class:`ScoringLanguageModel`:
``loglikelihood(contexts, continuations) -> list[Loglikelihood]``, one ``(logprob, is_greedy)`` pair
per request, as lm-evaluation-harness's ``loglikelihood`` requests return:

* ``logprob``: log P(continuation | context), the sum of the continuation tokens' log-probabilities
  (natural log, temperature 1);
* ``is_greedy``: whether greedy decoding from the context would produce exactly those tokens (every
  continuation token is the argmax at its position); ``None`` where the backend cannot tell (an HTTP
  server that reports no alternatives).

Tokenisation (every backend, as lm-evaluation-harness's ``_encode_pair``): trailing whitespace of
the context moves to the front of the continuation (``"Answer: " + "A"`` is scored as ``"Answer:"``
+ ``" A"``: BPE vocabularies hold ``" A"`` as one token); the continuation's tokens are those of
``encode(context + continuation)`` after the first ``len(encode(context))``, so they are exactly the
tokens the model would see in the joined text. :func:`split_trailing_whitespace` is that first step.
Backends that also serve ``echo`` requests expose :class:`PromptLogprobs` for whole prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

from aicanon.core.checks import check_float, check_int

__all__ = [
    "Completion",
    "LanguageModel",
    "Loglikelihood",
    "PromptLogprobs",
    "ScoringLanguageModel",
    "check_completion_request",
    "check_loglikelihood_request",
    "split_trailing_whitespace",
    "truncate_at_stop",
]

FINISH_REASONS = ("stop", "length")


@dataclass(frozen=True)
class Completion:
    """One generated continuation of a prompt.

    ``tokens``/``token_logprobs``: the generated tokens' text pieces and log-probabilities (None when
    the backend gives none); the pieces concatenate to ``text``.
    """

    text: str
    finish_reason: str = "length"
    tokens: tuple[str, ...] | None = None
    token_logprobs: tuple[float, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Completion.text must be a str, got {type(self.text).__name__}")
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(
                f"Completion.finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}"
            )
        if (self.tokens is None) != (self.token_logprobs is None):
            raise ValueError("Completion.tokens and token_logprobs must be given together")
        if self.tokens is not None and len(self.tokens) != len(self.token_logprobs):
            raise ValueError(
                f"Completion has {len(self.tokens)} tokens but {len(self.token_logprobs)} token_logprobs"
            )

    @property
    def logprob(self) -> float | None:
        """The sum of the token log-probabilities (the sequence's log-probability), if known."""
        return None if self.token_logprobs is None else float(sum(self.token_logprobs))


@runtime_checkable
class LanguageModel(Protocol):
    """Anything that completes prompts (see the module docstring)."""

    def complete(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        n: int = 1,
        stop: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> list[list[Completion]]: ...


def check_completion_request(
    prompts: Sequence[str],
    max_tokens: int,
    temperature: float,
    n: int,
    stop: Sequence[str] | None,
    top_k: int | None = None,
) -> tuple[list[str], list[str]]:
    """Validate a ``complete`` call's arguments (``top_k``: None or an int >= 1); the prompts and stop
    sequences as lists.

    ``n`` > 1 at temperature 0 is allowed (n identical greedy completions), as in the OpenAI API.
    """
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be a list of str (one prompt: [prompt]), got {type(prompts).__name__}")
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompts must be a non-empty list of str")
    check_int("max_tokens", max_tokens, 0)
    check_float("temperature", temperature, 0.0, finite=True)
    check_int("n", n, 1)
    check_int("top_k", top_k, 1, allow_none=True)
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    else:
        stops = list(stop)
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be None, a non-empty str or a list of them, got {stop!r}")
    return prompts, stops


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to (not including) the earliest occurrence of any stop sequence; whether one occurred."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


class Loglikelihood(NamedTuple):
    """One scored continuation: ``logprob`` = log P(continuation | context) (natural log) and
    ``is_greedy`` (the continuation is what greedy decoding gives; None when unknown). A tuple, so
    ``logprob, is_greedy = result`` reads as lm-evaluation-harness's ``(logprob, is_greedy)``."""

    logprob: float
    is_greedy: bool | None


@runtime_checkable
class ScoringLanguageModel(Protocol):
    """Anything that scores given continuations of contexts (see the module docstring)."""

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[Loglikelihood]: ...


@dataclass(frozen=True)
class PromptLogprobs:
    """A prompt's own tokens scored by the model (the ``echo`` of ``/v1/completions``).

    ``tokens``: text pieces that concatenate to the prompt; ``token_logprobs[i]``: log P(token i |
    tokens before it) (None for a first token with nothing before it: no BOS); ``top_logprobs[i]``:
    the most likely alternatives at position i as ``{piece: logprob}`` (None where the logprob is)."""

    tokens: tuple[str, ...]
    token_logprobs: tuple[float | None, ...]
    top_logprobs: tuple[dict[str, float] | None, ...]

    def __post_init__(self) -> None:
        if not len(self.tokens) == len(self.token_logprobs) == len(self.top_logprobs):
            raise ValueError(
                f"PromptLogprobs has {len(self.tokens)} tokens, {len(self.token_logprobs)} token_logprobs "
                f"and {len(self.top_logprobs)} top_logprobs: they must be equal"
            )


def check_loglikelihood_request(
    contexts: Sequence[str], continuations: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Validate a ``loglikelihood`` call: two equally long, non-empty lists of str, every
    continuation non-empty (an empty continuation has no tokens to score)."""
    for name, value in (("contexts", contexts), ("continuations", continuations)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of str (one request: [text]), got {type(value).__name__}")
        if not all(isinstance(v, str) for v in value):
            raise TypeError(f"{name} must hold only str, got {sorted({type(v).__name__ for v in value})}")
    contexts, continuations = list(contexts), list(continuations)
    if not contexts:
        raise ValueError("contexts must be a non-empty list of str")
    if len(contexts) != len(continuations):
        raise ValueError(
            "contexts and continuations must have the same length, got "
            f"{len(contexts)} and {len(continuations)}"
        )
    empty = [i for i, c in enumerate(continuations) if not c]
    if empty:
        raise ValueError(f"continuations must be non-empty strings; continuations[{empty[0]}] is ''")
    return contexts, continuations


def split_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the front of the continuation (lm-evaluation-harness's
    ``_encode_pair``): ``("Answer: ", "A")`` → ``("Answer:", " A")``; the joined text is unchanged."""
    stripped = context.rstrip()
    return stripped, context[len(stripped) :] + continuation
