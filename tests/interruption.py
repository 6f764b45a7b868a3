"""A run killed part-way and run again: the helper the resume tests of long experiments share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def interrupt_and_resume(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    attribute: str,
    run: Callable[[], Any],
    *,
    kill_at: int,
    record: Callable[..., Any] = lambda *args, **kwargs: None,
) -> tuple[Any, list[Any]]:
    """Call ``run()`` with ``owner.attribute`` raising ``KeyboardInterrupt`` at its ``kill_at``-th
    call (before doing its work: a kill), then ``run()`` again with the original. Returns the second
    run's result and ``record(*args)`` of each call it made (what the resumed run had to redo).
    A function patched onto a class receives ``self`` first."""
    original, calls = getattr(owner, attribute), []

    def killed(*args, **kwargs):
        calls.append(record(*args, **kwargs))
        if len(calls) == kill_at:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    def counted(*args, **kwargs):
        calls.append(record(*args, **kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, killed)
    with pytest.raises(KeyboardInterrupt):
        run()
    calls.clear()
    monkeypatch.setattr(owner, attribute, counted)
    try:
        result = run()
    finally:
        monkeypatch.setattr(owner, attribute, original)
    return result, calls
