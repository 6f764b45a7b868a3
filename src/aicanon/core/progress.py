"""Progress reporting: a rich bar on a terminal, silence elsewhere (tests, CI logs, --json)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("AICANON_PROGRESS", "1") != "0"


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a transient progress bar on stderr when it is a terminal."""
    if not enabled():
        yield from iterable
        return
    from rich.progress import track as rich_track

    yield from rich_track(iterable, description=description, total=total, console=console(), transient=True)


_console = None


def console():
    """The one stderr console the CLI and the progress bars share (rich allows one live display each)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console
