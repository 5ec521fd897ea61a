"""curl's request-data options as pure functions: -d, --data-raw, --data-binary,
--data-urlencode, --json and -G.

People rely on the details (scripts post files with -d and expect newlines
gone), so they follow curl 7.88's rules: `-d @file` keeps each line up to its
first CR or NUL (curl reads lines as C strings); repeated data joins with `&`;
`--data-urlencode` sends spaces as `+`; `--json` pieces concatenate; `-G` moves
the data into the query string. `@-` reads stdin through the callable the CLI
passes, so nothing here touches sys.stdin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from smolmix_cli.apps.errors import ReadError, UsageError

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
JSON_ACCEPT = "application/json"

Stdin = Callable[[], bytes]


def _load(name: str, stdin: Stdin | None) -> bytes:
    if name == "-":
        if stdin is None:
            raise UsageError("reading data from stdin is not possible here")
        try:
            return stdin()
        except OSError as exc:
            raise ReadError(f"can't read stdin: {exc}") from None
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise ReadError(f"Failed to open {name}: {exc.strerror}") from None


def data_ascii(arg: str, stdin: Stdin | None = None) -> bytes:
    """-d / --data: `@file` is read line by line, each cut at its first CR or NUL and
    the LF dropped (curl's fgets + strchr); else the text as is."""
    if arg.startswith("@"):
        raw = _load(arg[1:], stdin)
        return b"".join(line.split(b"\r", 1)[0].split(b"\x00", 1)[0] for line in raw.split(b"\n"))
    return arg.encode()


def data_raw(arg: str) -> bytes:
    """--data-raw: like -d but `@` has no meaning."""
    return arg.encode()


def data_binary(arg: str, stdin: Stdin | None = None) -> bytes:
    """--data-binary: `@file` read verbatim."""
    if arg.startswith("@"):
        return _load(arg[1:], stdin)
    return arg.encode()


def _escape(data: bytes) -> bytes:
    """curl's form escaping: unreserved bytes stay, a space is `+`, the rest `%XX`."""
    return quote(data, safe="-._~ ").replace(" ", "+").encode()


def data_urlencode(arg: str, stdin: Stdin | None = None) -> bytes:
    """--data-urlencode in its five forms: `content`, `=content`, `name=content`,
    `@file`, `name@file` (the name is sent as given, the content percent-encoded)."""
    eq = arg.find("=")
    at = arg.find("@")
    if eq >= 0 and (at < 0 or eq < at):
        name, content = arg[:eq], arg[eq + 1 :].encode()
        return (name.encode() + b"=" if name else b"") + _escape(content)
    if at >= 0:
        name, content = arg[:at], _load(arg[at + 1 :], stdin)
        return (name.encode() + b"=" if name else b"") + _escape(content)
    return _escape(arg.encode())


def url_query(arg: str, stdin: Stdin | None = None) -> bytes:
    """--url-query: --data-urlencode's forms for the query string (curl escapes these with
    lower-case hex); a leading `+` sends the rest as it is."""
    if arg.startswith("+"):
        return arg[1:].encode()
    piece = data_urlencode(arg, stdin)
    return re.sub(rb"%[0-9A-F]{2}", lambda m: m.group(0).lower(), piece)


def json_data(arg: str, stdin: Stdin | None = None) -> bytes:
    """--json: like --data-binary (no validation); pieces are concatenated by `join_json`."""
    return data_binary(arg, stdin)


def join_form(pieces: list[bytes]) -> bytes:
    return b"&".join(pieces)


def join_json(pieces: list[bytes]) -> bytes:
    return b"".join(pieces)


def url_with_query(url: str, data: bytes) -> str:
    """-G: append the data to the URL's query (before any fragment)."""
    if not data:
        return url
    base, hash_sign, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    text = data.decode("latin-1")
    return f"{base}{sep}{text}{hash_sign}{fragment}"
