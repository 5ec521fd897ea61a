"""Error types of the mixnet packet layer.

Every parser and cryptographic check in `smolmix_cli.mixnet` raises a subclass
of `MixnetError`, never a bare ValueError or IndexError, so that nodes and the
client can drop bad input with one `except` clause.
"""

from __future__ import annotations


class MixnetError(Exception):
    """Base class of every error the mixnet layer raises."""


class MalformedData(MixnetError):
    """Bytes that do not parse as the structure expected (length, tag, field)."""


class IntegrityError(MixnetError):
    """A MAC, digest or authenticated-encryption tag did not verify."""


class InvalidKey(MixnetError):
    """A key or address of the wrong length, alphabet or curve encoding."""


class ReplayDetected(MixnetError):
    """A packet whose replay tag was already seen in this key epoch."""


def failure_words(exc: BaseException) -> str:
    """A failure in words for -v and `session status`: the OS's text, else the first line
    along the cause chain; the class name only when nothing says more (never a repr)."""
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
    return type(exc).__name__
