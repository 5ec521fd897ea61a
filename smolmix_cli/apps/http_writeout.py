"""curl's -w / --write-out format: `%{var}`, `%header{name}`, `%{json}`, `%{url.part}`, escapes.

Rendering returns (stream, text) pieces because `%{stderr}` / `%{stdout}`
switch the destination mid-format; the CLI writes them out. Values print as
curl 8 prints them: times with six decimals, sizes and speeds as integers,
status codes with three digits (`000` when no response came). `%{json}` has
curl's keys in curl's order, compact, times as six-decimal numbers, unknown
values as null, then smolmix's own (tunnel) keys. Unknown variables render as
nothing and are reported in `unknown`, so the CLI can warn with curl's words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from smolmix_cli.apps.http_transfer import Transfer

_TOKEN = re.compile(r"%%|%\{([a-z_.]+)\}|%header\{([^}]*)\}|\\[nrt\\]")
_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\\\": "\\"}
_STATUS_VARS = {"http_code", "response_code", "http_connect"}
"""Three digits in text, as curl prints them; %{json} keeps the number."""
_TIME_VARS = {
    "time_namelookup",
    "time_connect",
    "time_appconnect",
    "time_pretransfer",
    "time_posttransfer",
    "time_starttransfer",
    "time_redirect",
    "time_queue",
    "time_total",
}
JSON_KEYS = [
    "certs",
    "content_type",
    "conn_id",
    "errormsg",
    "exitcode",
    "filename_effective",
    "ftp_entry_path",
    "http_code",
    "http_connect",
    "http_version",
    "local_ip",
    "local_port",
    "method",
    "num_certs",
    "num_connects",
    "num_headers",
    "num_redirects",
    "num_retries",
    "proxy_ssl_verify_result",
    "proxy_used",
    "redirect_url",
    "referer",
    "remote_ip",
    "remote_port",
    "response_code",
    "scheme",
    "size_delivered",
    "size_download",
    "size_header",
    "size_request",
    "size_upload",
    "speed_download",
    "speed_upload",
    "ssl_verify_result",
    "time_appconnect",
    "time_connect",
    "time_namelookup",
    "time_posttransfer",
    "time_pretransfer",
    "time_queue",
    "time_redirect",
    "time_starttransfer",
    "time_total",
    "url",
    "url_effective",
    "urlnum",
    "xfer_id",
    "curl_version",
]
"""curl 8's %{json} keys in the order curl prints them (curl_version last)."""
_URL_PARTS = (
    "scheme",
    "user",
    "password",
    "options",
    "host",
    "port",
    "path",
    "query",
    "fragment",
    "zoneid",
)
"""curl 8.1's %{url.PART} and %{urle.PART} (of the given and of the effective URL)."""


@dataclass
class WriteOut:
    pieces: list[tuple[str, str]] = field(default_factory=list)
    """(stream, text) with stream "stdout" or "stderr"."""
    unknown: list[str] = field(default_factory=list)

    def text(self, stream: str = "stdout") -> str:
        return "".join(t for s, t in self.pieces if s == stream)


def _url_parts(prefix: str, url: str) -> dict[str, object]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {}
    default = {"http": 80, "https": 443}.get(parts.scheme)
    values: dict[str, object] = {
        "scheme": parts.scheme,
        "user": parts.username or "",
        "password": parts.password or "",
        "options": "",
        "host": parts.hostname or "",
        "port": port if port is not None else default or "",
        "path": parts.path or "/",
        "query": parts.query,
        "fragment": parts.fragment,
        "zoneid": "",
    }
    return {f"{prefix}.{k}": values[k] for k in _URL_PARTS}


def variables(transfer: Transfer, extra: dict[str, object] | None = None) -> dict[str, object]:
    """All values a format may name; `extra` adds tunnel phases (time_tunnel, exit_gateway...)
    and curl_version (the CLI knows its version; apps/ does not import the package root)."""
    values: dict[str, object] = dict(transfer.as_dict())
    values.update(
        certs="",
        conn_id=transfer.num_connects - 1 if transfer.num_connects else -1,
        ftp_entry_path=None,
        http_connect=0,
        num_certs=0,
        proxy_ssl_verify_result=0,
        proxy_used=0,
        size_delivered=transfer.size_download,
        time_posttransfer=values.get("time_pretransfer", 0.0),
        time_queue=0.0,
        xfer_id=transfer.urlnum,
    )
    values.update(_url_parts("url", transfer.url))
    values.update(_url_parts("urle", transfer.url_effective or transfer.url))
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


def _json_value(name: str, value: object) -> str:
    if name in _TIME_VARS and isinstance(value, int | float):
        return f"{float(value):.6f}"
    if name.startswith("speed_") and isinstance(value, int | float):
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def json_object(values: dict[str, object]) -> str:
    """%{json}: curl's keys in curl's order, then smolmix's extra keys, compact like curl."""
    names = [k for k in JSON_KEYS if k in values]
    names += sorted(k for k in values if k not in JSON_KEYS and "." not in k)
    return "{" + ",".join(f"{json.dumps(k)}:{_json_value(k, values[k])}" for k in names) + "}"


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
                buf.append(json_object(values))
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


def unknown_warning(name: str) -> str:
    """curl's words for a variable it does not know (printed, the rest still renders)."""
    return f"unknown --write-out variable: '{name}'"
