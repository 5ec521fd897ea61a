"""curl's -w / --write-out format: `%{var}`, `%header{name}`, `%{json}` and escapes.

Rendering returns (stream, text) pieces because `%{stderr}` / `%{stdout}`
switch the destination mid-format; the CLI writes them out. Times print with
six decimals, sizes as integers and status codes with three digits (`000`
when no response came), as curl does. Unknown variables render as
nothing and are reported in `unknown`, so the CLI can warn like curl.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from smolmix_cli.apps.http_transfer import Transfer

_TOKEN = re.compile(r"%%|%\{([a-z_]+)\}|%header\{([^}]*)\}|\\[nrt\\]")
_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\\\": "\\"}
_STATUS_VARS = {"http_code", "response_code"}
"""Three digits in text, as curl prints them; %{json} keeps the number."""
_TIME_VARS = {
    "time_namelookup",
    "time_connect",
    "time_appconnect",
    "time_pretransfer",
    "time_starttransfer",
    "time_redirect",
    "time_total",
}


@dataclass
class WriteOut:
    pieces: list[tuple[str, str]] = field(default_factory=list)
    """(stream, text) with stream "stdout" or "stderr"."""
    unknown: list[str] = field(default_factory=list)

    def text(self, stream: str = "stdout") -> str:
        return "".join(t for s, t in self.pieces if s == stream)


def variables(transfer: Transfer, extra: dict[str, object] | None = None) -> dict[str, object]:
    """All values a format may name; `extra` adds tunnel phases (time_tunnel, exit_gateway...)."""
    values: dict[str, object] = dict(transfer.as_dict())
    values["speed_download"] = transfer.speed_download
    values["speed_upload"] = transfer.speed_upload
    if extra:
        values.update(extra)
    return values


def _format(name: str, value: object) -> str:
    if value is None:
        return ""
    if name in _STATUS_VARS and isinstance(value, int):
        return f"{value:03d}"  # curl's "000": no response at all
    if name in _TIME_VARS and isinstance(value, int | float):
        return f"{float(value):.6f}"
    if name.startswith("speed_") and isinstance(value, int | float):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def render(fmt: str, transfer: Transfer, extra: dict[str, object] | None = None) -> WriteOut:
    values = variables(transfer, extra)
    out = WriteOut()
    stream = "stdout"
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.pieces.append((stream, "".join(buf)))
            buf.clear()

    pos = 0
    for m in _TOKEN.finditer(fmt):
        buf.append(fmt[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token == "%%":
            buf.append("%")
        elif token in _ESCAPES:
            buf.append(_ESCAPES[token])
        elif m.group(2) is not None:
            wanted = m.group(2).lower()
            found = [v for k, v in transfer.headers if k.lower() == wanted]
            buf.append(", ".join(found))
        else:
            name = m.group(1)
            if name in ("stdout", "stderr"):
                flush()
                stream = name
            elif name == "onerror":
                if transfer.exitcode == 0:
                    pos = len(fmt)
                    break
            elif name == "json":
                buf.append(json.dumps(values, sort_keys=True))
            elif name == "header_json":
                merged: dict[str, list[str]] = {}
                for k, v in transfer.headers:
                    merged.setdefault(k.lower(), []).append(v)
                buf.append(json.dumps(merged))
            elif name in values:
                buf.append(_format(name, values[name]))
            else:
                out.unknown.append(name)
    buf.append(fmt[pos:])
    flush()
    return out
