"""The session control protocol (version 1), sans-io: frames in, frames out, no sockets.

One Unix-socket connection carries one request. The client sends one frame,
the daemon answers with one frame; after a successful `open_tcp` answer the
connection stops being framed and becomes the TCP stream itself (raw bytes
both ways, half-close by shutdown), so a stream costs one copy in the daemon
and nothing else; with `end_mark` the way back is framed so that its end can
tell a FIN from a broken stream (see the end of this module).

A frame is a 12-byte header, then a JSON object, then opaque data:

    magic "SMX" | version u8 | json length u32 BE | data length u32 BE | JSON | data

Requests (`op`): `open_tcp` {host, port}; `open_http` {host, port, server_name?,
verify, cafile?, reuse, fresh}: a stream for HTTP/1.1 exchanges whose TCP (and TLS,
with `server_name`) the session holds and may keep warm (session/warm.py); `udp_exchange` {host, port, timeout}
with the datagram as data; `resolve` {name}; `status` {wait?: seconds to wait
for the tunnel to be ready}; `stop`. Answers:
{"ok": true, ...} (for udp_exchange the reply datagram as data), or
{"ok": false, "error": {"type", "message", "exit_code"}}. docs/session-protocol.md
is the reference; a test checks its examples against this module.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

MAGIC = b"SMX"
VERSION = 1
HEADER = struct.Struct(">3sBII")
MAX_JSON = 64 * 1024
MAX_DATA = 1024 * 1024
OPS = ("open_tcp", "open_http", "udp_exchange", "resolve", "status", "stop")


class ProtocolError(Exception):
    """The peer sent bytes that are not a version-1 frame (or not a valid request)."""


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version (a daemon from another smolmix release)."""


class Frame(NamedTuple):
    header: dict[str, Any]
    data: bytes = b""


def encode(header: dict[str, Any], data: bytes = b"") -> bytes:
    body = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_JSON or len(data) > MAX_DATA:
        raise ProtocolError("frame too large")
    return HEADER.pack(MAGIC, VERSION, len(body), len(data)) + body + data


@dataclass
class FrameDecoder:
    """Feed bytes; take whole frames; after the last frame, `rest()` is the stream's first bytes."""

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        buf = self._buffer
        if len(buf) < HEADER.size:
            if buf[: len(MAGIC)] != MAGIC[: len(buf[: len(MAGIC)])]:
                raise ProtocolError("not a smolmix session frame")
            return None
        magic, version, json_len, data_len = HEADER.unpack_from(buf)
        if magic != MAGIC:
            raise ProtocolError("not a smolmix session frame")
        if version != VERSION:
            raise VersionMismatch(f"session protocol version {version}, expected {VERSION}")
        if json_len > MAX_JSON or data_len > MAX_DATA:
            raise ProtocolError("frame too large")
        end = HEADER.size + json_len + data_len
        if len(buf) < end:
            return None
        try:
            header = json.loads(bytes(buf[HEADER.size : HEADER.size + json_len]))
        except (UnicodeDecodeError, ValueError):
            raise ProtocolError("frame header is not JSON") from None
        if not isinstance(header, dict):
            raise ProtocolError("frame header is not a JSON object")
        data = bytes(buf[HEADER.size + json_len : end])
        del buf[:end]
        return Frame(header, data)

    def rest(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


# -- requests --------------------------------------------------------------------------------


class Request(NamedTuple):
    op: str
    host: str = ""
    port: int = 0
    name: str = ""
    timeout: float = 0.0
    payload: bytes = b""
    end_mark: bool = False
    """open_tcp: frame the stream's way back so that its end says FIN or broken (see below)."""
    server_name: str | None = None
    """open_http: TLS to this name (SNI and certificate check); None: plain HTTP."""
    verify: bool = True
    cafile: str | None = None
    """open_http: a CA bundle trusted beside certifi's roots (a path on this host)."""
    reuse: bool = False
    """open_http: the session may hand out a warm connection and keep this one after."""
    fresh: bool = False
    """open_http: a new connection even if a warm one is idle (a retry after a stale one)."""


def open_http(
    host: str,
    port: int,
    *,
    server_name: str | None,
    verify: bool,
    cafile: str | None,
    reuse: bool,
    fresh: bool,
) -> Request:
    """The one way both clients (blocking attach, async remote) ask for an origin."""
    return Request(
        "open_http",
        host=host,
        port=port,
        server_name=server_name,
        verify=verify,
        cafile=cafile,
        reuse=reuse,
        fresh=fresh,
    )


def request_frame(request: Request) -> bytes:
    header: dict[str, Any] = {"op": request.op}
    if request.op in ("open_tcp", "open_http", "udp_exchange"):
        header |= {"host": request.host, "port": request.port}
    if request.op == "open_http":
        header |= {"verify": request.verify, "reuse": request.reuse, "fresh": request.fresh}
        if request.server_name is not None:
            header["server_name"] = request.server_name
        if request.cafile is not None:
            header["cafile"] = request.cafile
    if request.op == "open_tcp" and request.end_mark:
        header["end_mark"] = True
    if request.op == "udp_exchange":
        header["timeout"] = request.timeout
    if request.op == "resolve":
        header["name"] = request.name
    if request.op == "status" and request.timeout > 0:
        header["wait"] = request.timeout
    return encode(header, request.payload)


def parse_request(frame: Frame) -> Request:
    """A validated request; ProtocolError names what is wrong."""
    h = frame.header
    op = h.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r}")
    if op in ("open_tcp", "open_http", "udp_exchange"):
        host, port = h.get("host"), h.get("port")
        if not isinstance(host, str) or not host or len(host) > 255:
            raise ProtocolError("host must be a non-empty string")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
            raise ProtocolError("port must be an integer in 1..65535")
        timeout = 0.0
        if op == "udp_exchange":
            timeout = _seconds(h.get("timeout"), "timeout")
        if op == "open_http":
            return _http_request(h, host, port)
        end_mark = op == "open_tcp" and h.get("end_mark") is True
        return Request(
            op, host=host, port=port, timeout=timeout, payload=frame.data, end_mark=end_mark
        )
    if op == "resolve":
        name = h.get("name")
        if not isinstance(name, str) or not name or len(name) > 255:
            raise ProtocolError("name must be a non-empty string")
        return Request(op, name=name)
    if op == "status" and "wait" in h:
        return Request(op, timeout=_seconds(h.get("wait"), "wait"))
    return Request(op)


def _http_request(h: dict[str, Any], host: str, port: int) -> Request:
    server_name, cafile = h.get("server_name"), h.get("cafile")
    if server_name is not None and (not isinstance(server_name, str) or not server_name):
        raise ProtocolError("server_name must be a non-empty string")
    if cafile is not None and (not isinstance(cafile, str) or not cafile):
        raise ProtocolError("cafile must be a non-empty string")
    flags = {name: h.get(name, default) for name, default in _HTTP_FLAGS.items()}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise ProtocolError("verify, reuse and fresh must be booleans")
    return Request(
        "open_http", host=host, port=port, server_name=server_name, cafile=cafile, **flags
    )


_HTTP_FLAGS = {"verify": True, "reuse": False, "fresh": False}


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ProtocolError(f"{what} must be a positive number")
    return min(float(value), 3600.0)


# -- answers ---------------------------------------------------------------------------------


def ok_frame(data: bytes = b"", **fields: Any) -> bytes:
    return encode({"ok": True, **fields}, data)


def error_frame(kind: str, message: str, exit_code: int) -> bytes:
    return encode(
        {"ok": False, "error": {"type": kind, "message": message, "exit_code": exit_code}}
    )


class RemoteError(NamedTuple):
    kind: str
    message: str
    exit_code: int


def parse_answer(frame: Frame) -> dict[str, Any] | RemoteError:
    """The answer's fields when ok, else the daemon's error."""
    h = frame.header
    ok = h.get("ok")
    if ok is True:
        return h
    if ok is not False:
        raise ProtocolError("answer without ok")
    err = h.get("error")
    if not isinstance(err, dict):
        raise ProtocolError("error answer without error object")
    kind, message, code = err.get("type"), err.get("message"), err.get("exit_code")
    if not isinstance(kind, str) or not isinstance(message, str):
        raise ProtocolError("error answer with bad fields")
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        raise ProtocolError("error answer with bad exit code")
    return RemoteError(kind, message, code)


# -- an open_tcp stream's way back, with `end_mark` --------------------------------------------
#
# Raw bytes end the same way whether the destination sent FIN or the tunnel broke: the
# daemon can only close. A client that asks for `end_mark` (daemons that do not know it
# ignore the field and answer without it) gets the way back as frames: `{}` with data, then
# one end frame, `{"end":"fin"}` or `{"end":"broken","message":M}`. The way there stays raw.

_DATA_JSON = b"{}"


def data_frame(chunk: bytes) -> bytes:
    """One piece of the stream (at most MAX_DATA; the splice reads less)."""
    return HEADER.pack(MAGIC, VERSION, len(_DATA_JSON), len(chunk)) + _DATA_JSON + chunk


def end_frame(broken: str | None = None) -> bytes:
    """The stream's end: the destination's FIN, or the words for why it broke."""
    if broken is None:
        return encode({"end": "fin"})
    return encode({"end": "broken", "message": broken})


def answer_address(value: Any) -> tuple[str, int] | None:
    """An answer's `remote` field ([ip, port]) as a tuple; None if absent or malformed."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        return (value[0], value[1])
    return None


def answer_seconds(value: Any) -> float:
    """An answer's duration field (`tcp_s`, `tls_s`); 0.0 if absent or malformed."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
