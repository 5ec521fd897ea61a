"""The demo origin's HTTP application: test routes served with h11 over any byte stream.

Routes (all deterministic, so tests can check bytes by sha256):
`/` small HTML; `/bytes/N` N pseudo-random bytes with `X-Sha256` and Range
support; `/redirect/N`; `/redirect-to?url=&status=`; `/status/CODE` (with
`?retry_after=S`); `/flaky/KEY/N` (503 N times per key, then 200);
`/chunked/N`; `/gzip`; `/deflate`; `/echo`; `/headers`; `/upload`;
`/basic-auth/USER/PASS`; `/slow/SECONDS` (at most 30); `/empty` (closes
without a reply); `/partial/N` (announces N bytes, sends half, closes);
`/dns-query` (DoH for the demo zone).
Every response carries `X-Connection-Id` so clients can count reuse.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import itertools
import json
import re
import ssl
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import h11

from smolmix_cli.testnet.origin.dns import DemoZone, answer_bytes

BLOCK = 65536
MAX_BYTES = 256 * 1024 * 1024
MAX_SLOW = 30.0
_ECHO_BODY_LIMIT = 1 << 20


def pseudo_random_bytes(n: int, offset: int = 0, seed: bytes = b"smolmix-demo") -> bytes:
    """Bytes [offset, offset+n) of a fixed stream: 64 KiB blocks of SHAKE-128(seed || index)."""
    out = bytearray()
    pos = offset
    end = offset + n
    while pos < end:
        index, within = divmod(pos, BLOCK)
        block = _block(seed, index)
        take = min(BLOCK - within, end - pos)
        out += block[within : within + take]
        pos += take
    return bytes(out)


@lru_cache(maxsize=64)
def _block(seed: bytes, index: int) -> bytes:
    return hashlib.shake_128(seed + index.to_bytes(8, "big")).digest(BLOCK)


@lru_cache(maxsize=32)
def bytes_sha256(n: int) -> str:
    digest = hashlib.sha256()
    for start in range(0, n, BLOCK):
        digest.update(pseudo_random_bytes(min(BLOCK, n - start), start))
    return digest.hexdigest()


@dataclass
class OriginRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body_sha256: str
    body_length: int
    body_head: bytes
    connection_id: int
    scheme: str

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class OriginResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes] = b""
    length: int | None = None
    """Content-Length for iterator bodies; None means chunked."""
    delay: float = 0.0
    raw: bytes | None = None
    """If set: write these bytes verbatim and close (broken-server routes)."""


HTML = (
    b"<!doctype html>\n<html><head><title>smolmix demo origin</title></head>\n"
    b"<body><h1>smolmix demo origin</h1><p>It works.</p></body></html>\n"
)


class OriginApp:
    """Routes to responses; holds the little state some routes need (flaky counters).

    With a `zone`, `/dns-query` answers DNS over HTTPS (RFC 8484, POST or GET ?dns=).
    """

    def __init__(self, zone: DemoZone | None = None) -> None:
        self.zone = zone
        self.flaky_counts: dict[str, int] = {}
        self.requests_served = 0
        self.connections = 0

    def route(self, req: OriginRequest) -> OriginResponse:
        parts = urlsplit(req.target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            return self._route(req, path, query)
        except (ValueError, KeyError):
            return _text(400, "bad request\n")

    def _route(self, req: OriginRequest, path: str, query: dict[str, str]) -> OriginResponse:
        if path == "/":
            return OriginResponse(200, [("Content-Type", "text/html; charset=utf-8")], HTML)
        if m := re.fullmatch(r"/bytes/(\d+)", path):
            return _bytes_route(req, int(m.group(1)))
        if m := re.fullmatch(r"/redirect/(\d+)", path):
            n = int(m.group(1))
            location = f"/redirect/{n - 1}" if n > 1 else "/echo"
            return OriginResponse(302, [("Location", location), ("Content-Length", "0")])
        if path == "/redirect-to":
            status = int(query.get("status", "302"))
            if not 300 <= status < 400:
                return _text(400, "status must be 3xx\n")
            return OriginResponse(status, [("Location", query["url"])])
        if m := re.fullmatch(r"/status/(\d{3})", path):
            status = int(m.group(1))
            headers = [("Content-Type", "text/plain")]
            if "retry_after" in query:
                headers.append(("Retry-After", query["retry_after"]))
            if 300 <= status < 400:
                headers.append(("Location", "/echo"))
            return OriginResponse(status, headers, f"status {status}\n".encode())
        if m := re.fullmatch(r"/flaky/([A-Za-z0-9_-]+)/(\d+)", path):
            key, failures = m.group(1), int(m.group(2))
            seen = self.flaky_counts.get(key, 0)
            self.flaky_counts[key] = seen + 1
            if seen < failures:
                headers = [("Content-Type", "text/plain")]
                if "retry_after" in query:
                    headers.append(("Retry-After", query["retry_after"]))
                return OriginResponse(503, headers, b"try again\n")
            return _text(200, f"ok after {seen} failures\n")
        if m := re.fullmatch(r"/chunked/(\d+)", path):
            n = min(int(m.group(1)), MAX_BYTES)
            return OriginResponse(
                200,
                [("Content-Type", "application/octet-stream"), ("X-Sha256", bytes_sha256(n))],
                _stream_bytes(0, n, chunk=4096),
                length=None,
            )
        if path in ("/gzip", "/deflate"):
            payload = json.dumps({"compressed": path[1:], "data": "smolmix " * 200}).encode()
            gz = path == "/gzip"
            data = gzip.compress(payload, mtime=0) if gz else zlib.compress(payload)
            return OriginResponse(
                200,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", path[1:]),
                    ("X-Plain-Sha256", hashlib.sha256(payload).hexdigest()),
                ],
                data,
            )
        if path == "/echo":
            return _json(200, _echo(req))
        if path == "/dns-query" and self.zone is not None:
            return _doh(self.zone, req, query)
        if path == "/headers":
            return _json(200, {"headers": [[k, v] for k, v in req.headers]})
        if path == "/upload":
            if req.method not in ("PUT", "POST"):
                return _text(405, "PUT or POST\n")
            return _json(200, {"sha256": req.body_sha256, "length": req.body_length})
        if m := re.fullmatch(r"/basic-auth/([^/]+)/([^/]+)", path):
            expected = base64.b64encode(f"{m.group(1)}:{m.group(2)}".encode()).decode()
            if req.header("authorization") == f"Basic {expected}":
                return _json(200, {"authenticated": True, "user": m.group(1)})
            return OriginResponse(
                401,
                [("WWW-Authenticate", 'Basic realm="demo"'), ("Content-Type", "text/plain")],
                b"unauthorized\n",
            )
        if m := re.fullmatch(r"/slow/(\d+(?:\.\d+)?)", path):
            seconds = min(float(m.group(1)), MAX_SLOW)
            resp = _text(200, f"slept {seconds}\n")
            resp.delay = seconds
            return resp
        if path == "/empty":
            return OriginResponse(0, raw=b"")
        if m := re.fullmatch(r"/partial/(\d+)", path):
            n = int(m.group(1))
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
            return OriginResponse(0, raw=head.encode() + pseudo_random_bytes(n // 2))
        return _text(404, "not found\n")


def _text(status: int, text: str) -> OriginResponse:
    return OriginResponse(status, [("Content-Type", "text/plain; charset=utf-8")], text.encode())


def _json(status: int, obj: object) -> OriginResponse:
    body = json.dumps(obj, sort_keys=True).encode()
    return OriginResponse(status, [("Content-Type", "application/json")], body)


def _echo(req: OriginRequest) -> dict[str, object]:
    body_text: str | None
    try:
        body_text = req.body_head.decode()
    except UnicodeDecodeError:
        body_text = None
    return {
        "method": req.method,
        "target": req.target,
        "scheme": req.scheme,
        "headers": [[k, v] for k, v in req.headers],
        "body": body_text,
        "body_sha256": req.body_sha256,
        "body_length": req.body_length,
    }


def _doh(zone: DemoZone, req: OriginRequest, query: dict[str, str]) -> OriginResponse:
    if req.method == "POST":
        if (req.header("content-type") or "").lower() != "application/dns-message":
            return _text(415, "application/dns-message only\n")
        wire = req.body_head
    elif req.method == "GET" and "dns" in query:
        text = query["dns"]
        try:
            wire = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            return _text(400, "bad dns parameter\n")
    else:
        return _text(400, "POST a DNS message or GET ?dns=\n")
    answer = answer_bytes(zone, wire, udp=False)
    if answer is None:
        return _text(400, "not a DNS query\n")
    return OriginResponse(200, [("Content-Type", "application/dns-message")], answer)


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _bytes_route(req: OriginRequest, n: int) -> OriginResponse:
    if n > MAX_BYTES:
        return _text(400, "too many bytes\n")
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("X-Sha256", bytes_sha256(n)),
        ("Accept-Ranges", "bytes"),
    ]
    range_header = req.header("range")
    if range_header is not None and (m := _RANGE.fullmatch(range_header.strip())):
        first, last = m.group(1), m.group(2)
        if first == "" and last == "":
            return _text(400, "bad range\n")
        if first == "":
            start, end = max(0, n - int(last)), n - 1
        else:
            start = int(first)
            end = min(int(last), n - 1) if last else n - 1
        if start >= n or start > end:
            return OriginResponse(
                416, [("Content-Range", f"bytes */{n}"), ("Content-Type", "text/plain")]
            )
        headers.append(("Content-Range", f"bytes {start}-{end}/{n}"))
        return OriginResponse(206, headers, _stream_bytes(start, end + 1), length=end + 1 - start)
    return OriginResponse(200, headers, _stream_bytes(0, n), length=n)


async def _stream_bytes(start: int, end: int, chunk: int = BLOCK) -> AsyncIterator[bytes]:
    pos = start
    while pos < end:
        take = min(chunk, end - pos)
        yield pseudo_random_bytes(take, pos)
        pos += take


_connection_ids = itertools.count(1)


async def serve_http_connection(
    stream: anyio.abc.ByteStream, app: OriginApp, *, scheme: str = "http"
) -> None:
    """Serve requests on one connection until either side closes; never raises on bad input."""
    conn_id = next(_connection_ids)
    app.connections += 1
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            req = await _read_request(stream, conn, conn_id, scheme)
            if req is None:
                return
            resp = app.route(req)
            app.requests_served += 1
            if resp.delay:
                await anyio.sleep(resp.delay)
            if resp.raw is not None:
                if resp.raw:
                    await stream.send(resp.raw)
                return
            await _send_response(stream, conn, req, resp, conn_id)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
    except (h11.RemoteProtocolError, h11.LocalProtocolError):
        with contextlib.suppress(Exception):
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await stream.send(
                    conn.send(h11.Response(status_code=400, headers=[("Content-Length", "0")]))
                    or b""
                )
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
        pass
    finally:
        await _close(stream)


async def _close(stream: anyio.abc.ByteStream) -> None:
    """Graceful close (TLS close_notify) when the peer is still there, bounded."""
    with anyio.move_on_after(1.0, shield=True) as scope:
        try:
            await stream.aclose()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError):
            scope.cancel()
    if scope.cancelled_caught:
        await anyio.aclose_forcefully(stream)


async def _read_request(
    stream: anyio.abc.ByteStream, conn: h11.Connection, conn_id: int, scheme: str
) -> OriginRequest | None:
    request: h11.Request | None = None
    digest = hashlib.sha256()
    length = 0
    head = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(65536)
            except anyio.EndOfStream:
                data = b""
            conn.receive_data(data)
            continue
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            digest.update(event.data)
            length += len(event.data)
            if len(head) < _ECHO_BODY_LIMIT:
                head += event.data[: _ECHO_BODY_LIMIT - len(head)]
        elif isinstance(event, h11.EndOfMessage):
            if request is None:
                return None
            return OriginRequest(
                method=request.method.decode(),
                target=request.target.decode(),
                headers=[(k.decode().lower(), v.decode("latin-1")) for k, v in request.headers],
                body_sha256=digest.hexdigest(),
                body_length=length,
                body_head=bytes(head),
                connection_id=conn_id,
                scheme=scheme,
            )


async def _send_response(
    stream: anyio.abc.ByteStream,
    conn: h11.Connection,
    req: OriginRequest,
    resp: OriginResponse,
    conn_id: int,
) -> None:
    headers = list(resp.headers)
    headers.append(("X-Connection-Id", str(conn_id)))
    names = {k.lower() for k, _ in headers}
    head_only = req.method == "HEAD" or resp.status in (204, 304)
    if isinstance(resp.body, bytes):
        if "content-length" not in names and resp.status not in (204, 304):
            headers.append(("Content-Length", str(len(resp.body))))
    elif resp.length is not None:
        headers.append(("Content-Length", str(resp.length)))
    else:
        headers.append(("Transfer-Encoding", "chunked"))
    try:
        reason = HTTPStatus(resp.status).phrase
    except ValueError:
        reason = ""
    await stream.send(
        conn.send(h11.Response(status_code=resp.status, headers=headers, reason=reason))
    )
    if not head_only:
        if isinstance(resp.body, bytes):
            if resp.body:
                await stream.send(conn.send(h11.Data(data=resp.body)))
        else:
            async for chunk in resp.body:
                await stream.send(conn.send(h11.Data(data=chunk)))
    elif not isinstance(resp.body, bytes):
        await resp.body.aclose()  # type: ignore[attr-defined]
    await stream.send(conn.send(h11.EndOfMessage()))
