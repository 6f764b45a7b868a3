"""Chat prompt formats of Llama 2-Chat and Llama 3 Instruct.

**Llama 2-Chat** (Touvron et al. 2023, Section 3 and the reference ``chat_completion``; model card
"Intended use"): every user turn is wrapped in ``[INST]`` ... ``[/INST]``; an optional system prompt
sits inside the first user turn between ``<<SYS>>\\n`` and ``\\n<</SYS>>\\n\\n``; each completed
(user, assistant) exchange is its own sequence, ``BOS`` + text + ``EOS``::

    <s>[INST] <<SYS>>
    {system}
    <</SYS>>

    {user 1} [/INST] {assistant 1} </s><s>[INST] {user 2} [/INST]

Contents are stripped of surrounding whitespace; the prompt ends after the last ``[/INST]``, where the
model writes its answer. ``BOS``/``EOS`` are SentencePiece control tokens, never text: as a string
they are shown as ``<s>``/``</s>``, and :func:`encode_llama2_chat` inserts their ids around each
exchange as the reference code does.

**Llama 3** (Dubey et al. 2024, Section 4.1.1 "Chat dialog format"; model card "Prompt format"):
every message is a header naming its role between ``<|start_header_id|>`` and
``<|end_header_id|>``, two newlines, the stripped content and ``<|eot_id|>``; the dialog starts with
``<|begin_of_text|>`` and a prompt ends with an empty assistant header::

    <|begin_of_text|><|start_header_id|>system<|end_header_id|>

    {system}<|eot_id|><|start_header_id|>user<|end_header_id|>

    {user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>

These header tokens are special tokens of the Llama 3 vocabulary (ids 128000-128009, see
:mod:`aicanon.language.bpe`); :func:`encode_llama3_chat` encodes them as single ids and the text
between them as ordinary text, so a user who types ``<|eot_id|>`` cannot forge a turn.

Departures: none in the formats. Meta's Llama 2 code replies with an error message when a message
contains the tags ``[INST]``, ``[/INST]``, ``<<SYS>>`` or ``<</SYS>>``; here that is a ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "B_INST",
    "B_SYS",
    "E_INST",
    "E_SYS",
    "encode_llama2_chat",
    "encode_llama3_chat",
    "format_llama2_chat",
    "format_llama3_chat",
]

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
_LLAMA2_TAGS = (B_INST, E_INST, "<<SYS>>", "<</SYS>>")
LLAMA3_ROLES = ("system", "user", "assistant", "ipython")

Message = Mapping[str, str]


def _check_messages(messages: Sequence[Message], roles: Sequence[str]) -> list[tuple[str, str]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(
            f"messages must be a sequence of {{'role': ..., 'content': ...}} dicts, got {type(messages).__name__}"
        )
    if len(messages) == 0:
        raise ValueError("messages must hold at least one message, got an empty sequence")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise TypeError(f"messages[{i}] must be a mapping with 'role' and 'content', got {message!r}")
        role, content = message["role"], message["content"]
        if role not in roles:
            raise ValueError(f"messages[{i}]['role'] must be one of {tuple(roles)}, got {role!r}")
        if not isinstance(content, str):
            raise TypeError(f"messages[{i}]['content'] must be a str, got {type(content).__name__}")
        out.append((role, content))
    return out


def _llama2_exchanges(messages: Sequence[Message]) -> tuple[list[tuple[str, str]], str | None]:
    """The (user, assistant) pairs and the final user prompt (None when the dialog ends with an answer)."""
    turns = _check_messages(messages, ("system", "user", "assistant"))
    for i, (_, content) in enumerate(turns):
        for tag in _LLAMA2_TAGS:
            if tag in content:
                raise ValueError(f"messages[{i}]['content'] must not contain the chat tag {tag!r}")
    if turns[0][0] == "system":
        if len(turns) < 2 or turns[1][0] != "user":
            raise ValueError(
                "a system message must be followed by a user message (Llama 2 puts it in that turn)"
            )
        # The system prompt goes inside the first user turn (reference chat_completion).
        turns = [("user", B_SYS + turns[0][1] + E_SYS + turns[1][1]), *turns[2:]]
    for i, (role, _) in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            raise ValueError(
                "messages must alternate user/assistant after an optional system message; "
                f"turn {i} (after merging the system prompt) should be {expected!r}, got {role!r}"
            )
    pairs = [(turns[i][1], turns[i + 1][1]) for i in range(0, len(turns) - 1, 2)]
    last = turns[-1][1] if len(turns) % 2 == 1 else None
    return pairs, last


def format_llama2_chat(messages: Sequence[Message], bos: str = "<s>", eos: str = "</s>") -> str:
    """The Llama 2-Chat prompt of ``messages`` as one string, ``bos``/``eos`` shown as text."""
    pairs, last = _llama2_exchanges(messages)
    text = "".join(f"{bos}{B_INST} {user.strip()} {E_INST} {answer.strip()} {eos}" for user, answer in pairs)
    if last is not None:
        text += f"{bos}{B_INST} {last.strip()} {E_INST}"
    return text


def encode_llama2_chat(
    messages: Sequence[Message], encode: Callable[[str], list[int]], bos_id: int, eos_id: int
) -> list[int]:
    """Token ids of the Llama 2-Chat prompt: ``encode`` (a SentencePiece-style text encoder without
    BOS/EOS) applied to each exchange, with ``bos_id``/``eos_id`` around it (reference ``chat_completion``)."""
    if not callable(encode):
        raise TypeError(f"encode must be a callable str -> list[int], got {type(encode).__name__}")
    pairs, last = _llama2_exchanges(messages)
    ids: list[int] = []
    for user, answer in pairs:
        ids += [bos_id, *encode(f"{B_INST} {user.strip()} {E_INST} {answer.strip()} "), eos_id]
    if last is not None:
        ids += [bos_id, *encode(f"{B_INST} {last.strip()} {E_INST}")]
    return ids


def _llama3_turns(messages: Sequence[Message], add_generation_prompt: bool) -> list[tuple[str, str]]:
    turns = _check_messages(messages, LLAMA3_ROLES)
    if not isinstance(add_generation_prompt, bool):
        raise TypeError(f"add_generation_prompt must be a bool, got {type(add_generation_prompt).__name__}")
    return turns


def format_llama3_chat(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """The Llama 3 dialog of ``messages`` as one string; with ``add_generation_prompt`` it ends with an
    empty assistant header, where the model answers (Meta's ``encode_dialog_prompt``)."""
    turns = _llama3_turns(messages, add_generation_prompt)
    text = "<|begin_of_text|>"
    for role, content in turns:
        text += f"<|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>"
    if add_generation_prompt:
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return text


def encode_llama3_chat(
    messages: Sequence[Message],
    encode: Callable[[str], list[int]],
    special_tokens: Mapping[str, int],
    add_generation_prompt: bool = True,
) -> list[int]:
    """Token ids of the Llama 3 dialog: header/turn tokens from ``special_tokens`` (name -> id, e.g.
    ``Llama3Tokenizer.special_tokens``), roles and contents through ``encode`` as ordinary text."""
    if not callable(encode):
        raise TypeError(f"encode must be a callable str -> list[int], got {type(encode).__name__}")
    needed = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    missing = [name for name in needed if name not in special_tokens]
    if missing:
        raise ValueError(f"special_tokens must map {needed} to ids, missing {missing}")
    turns = _llama3_turns(messages, add_generation_prompt)
    start, end, eot = (special_tokens[n] for n in needed[1:])

    def header(role: str) -> list[int]:
        return [start, *encode(role), end, *encode("\n\n")]

    ids = [special_tokens["<|begin_of_text|>"]]
    for role, content in turns:
        ids += [*header(role), *encode(content.strip()), eot]
    if add_generation_prompt:
        ids += header("assistant")
    return ids
