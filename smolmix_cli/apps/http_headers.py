"""curl's -H rules and the default request headers.

`-H "K: V"` adds or replaces, `-H "K:"` removes (also a default header),
`-H "K;"` sends K with an empty value. Names and values are checked here so a
bad header is a usage error (exit 2), never a protocol error later.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from smolmix_cli.apps.errors import UsageError

DEFAULT_USER_AGENT = "curl/8.5.0"
"""A common curl string: blends in, and names neither smolmix nor its version."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HeaderEdit(NamedTuple):
    name: str
    value: str | None
    """None: remove the header (default or earlier)."""


def parse_header_arg(arg: str) -> HeaderEdit:
    """Parse one -H argument by curl's rules; raises UsageError (2)."""
    colon = arg.find(":")
    semi = arg.find(";")
    if colon < 0 and semi < 0:
        raise UsageError(f"bad header (no ':'): {arg!r}")
    if semi >= 0 and (colon < 0 or semi < colon):
        name, rest = arg[:semi], arg[semi + 1 :]
        if rest.strip():
            raise UsageError(f"bad header: {arg!r}")
        _check_name(name, arg)
        return HeaderEdit(name.strip(), "")
    name, value = arg[:colon], arg[colon + 1 :].strip()
    _check_name(name, arg)
    if _BAD_VALUE.search(value):
        raise UsageError(f"bad header value (control characters): {arg!r}")
    return HeaderEdit(name.strip(), value if value else None)


def _check_name(name: str, arg: str) -> None:
    if not _TOKEN.fullmatch(name.strip()):
        raise UsageError(f"bad header name: {arg!r}")


def apply_edits(defaults: list[tuple[str, str]], edits: list[HeaderEdit]) -> list[tuple[str, str]]:
    """Apply edits in order: each drops earlier headers of its name, then adds itself.

    A replaced default header therefore moves after the defaults, as in curl;
    repeating a name keeps only the last value.
    """
    out = list(defaults)
    for edit in edits:
        key = edit.name.lower()
        out = [(k, v) for k, v in out if k.lower() != key]
        if edit.value is not None:
            out.append((edit.name, edit.value))
    return out


def has_header(headers: list[tuple[str, str]], name: str) -> bool:
    name = name.lower()
    return any(k.lower() == name for k, _ in headers)


def get_header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]
