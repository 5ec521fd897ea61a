"""A failing stream in one line of words, the way curl names socket errors."""

from __future__ import annotations

import sys


def stream_failure(exc: BaseException) -> str:
    """A failing stream in words, as curl puts a socket error ("Connection reset by peer").

    The OS error behind anyio's wrapper says it best; else the first text along the chain;
    never a repr.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    texts: list[str] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionResetError):
            return "Connection reset by peer"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        text = next((line for line in str(current).splitlines() if line.strip()), "")
        if text:
            texts.append(text.strip())
        current = current.__cause__ or current.__context__
    if texts:
        return texts[0]
    anyio = sys.modules.get("anyio")  # not loaded: a blocking shell's error, never anyio's
    if anyio is not None and isinstance(exc, anyio.ClosedResourceError):
        return "the connection was closed here"
    return "the connection broke"
