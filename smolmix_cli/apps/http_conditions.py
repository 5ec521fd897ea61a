"""curl's conditional and pacing options as pure functions: -z, --etag-*, --limit-rate, -C N.

They only turn command-line text into header values and numbers; the CLI
checks them before the tunnel boots, and the client sends what they return.
email.utils (with socket, random and the email package) and datetime are imported
only when a date is parsed: most fetches have no -z.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from smolmix_cli.apps.errors import ReadError, UsageError

if TYPE_CHECKING:
    from datetime import datetime


class HasHeaders(Protocol):
    def header(self, name: str) -> str | None: ...


_RATE = re.compile(r"(\d+(?:\.\d+)?)([kKmMgG]?)")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def time_condition(arg: str) -> tuple[str, str] | None:
    """-z DATE|FILE, `-DATE` for "unmodified since": the header to send, or None when the
    text is neither a date nor a file (curl then sends no condition and warns)."""
    name = "If-Modified-Since"
    if arg.startswith("-"):
        name, arg = "If-Unmodified-Since", arg[1:]
    import email.utils
    from datetime import UTC, datetime

    when: datetime | None = None
    try:
        when = email.utils.parsedate_to_datetime(arg)
    except (TypeError, ValueError):
        when = None
    if when is None:
        try:
            when = datetime.fromtimestamp(os.stat(arg).st_mtime, UTC)
        except OSError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return name, email.utils.format_datetime(when.astimezone(UTC), usegmt=True)


def meets_time_condition(condition: tuple[str, str] | None, head: HasHeaders) -> bool:
    """Whether a response honours -z, judged by its Last-Modified as curl does (a server
    that ignores the condition gets its body dropped and a simulated 304)."""
    if condition is None:
        return True
    stamp = head.header("last-modified")
    if stamp is None:
        return True
    import email.utils

    try:
        modified = email.utils.parsedate_to_datetime(stamp)
        wanted = email.utils.parsedate_to_datetime(condition[1])
    except (TypeError, ValueError):
        return True
    if condition[0] == "If-Modified-Since":
        return modified > wanted
    return modified <= wanted


def etag_to_send(path: str) -> str:
    """--etag-compare FILE: the tag in its first line (curl exits 26 if the file is missing)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        raise ReadError(f"Failed to open {path}") from None
    return text.splitlines()[0].strip() if text.strip() else '""'


def parse_rate(text: str) -> int:
    """--limit-rate 200k: bytes per second (k, M, G are powers of 1024, as in curl)."""
    m = _RATE.fullmatch(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise UsageError(f"unsupported rate unit or bad number: {text!r}")
    return max(1, int(float(m.group(1)) * _UNITS[m.group(2).lower()]))


def resume_offset(arg: str) -> int | None:
    """-C N: the byte offset to resume from; None for `-` (the size of the output file)."""
    if arg == "-":
        return None
    if not arg.isdigit():
        raise UsageError(f"-C needs '-' or a byte offset, not {arg!r}")
    return int(arg)
