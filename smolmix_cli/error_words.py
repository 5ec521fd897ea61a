"""A failure in one line of words for people: -v trails, `session status`, handshake errors.

A leaf, so the gateway client, the WebSocket engine and the tunnel describe failures the same
way without importing each other.
"""

from __future__ import annotations


def failure_words(exc: BaseException, fallback: str | None = None) -> str:
    """A failure in words for -v and `session status`: the OS's text, else the first line
    along the cause chain; `fallback` (else the class name) only when nothing says more
    (never a repr)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        text = next((line.strip() for line in str(current).splitlines() if line.strip()), "")
        if text:
            return text
        current = current.__cause__ or current.__context__
    return fallback if fallback is not None else type(exc).__name__
