"""HTTP/1.1 client engine for `smolmix fetch`: h11 over a Connector, curl's rules.

One `HttpClient` per invocation holds a per-origin pool, so several URLs to
the same origin ride one connection (over the mixnet a new connection costs
TCP and TLS round trips of a second or more each). Bodies stream from their
source and to the caller's sink in pieces; nothing large is buffered.

Timing follows curl's -w names; all times are seconds since the start of the
(last) attempt. Every failure is an `AppError` with curl's exit number and the
`Transfer` record attached as `.transfer`.
"""

from __future__ import annotations

import base64
import email.utils
import math
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h11

from smolmix_cli.apps import tls
from smolmix_cli.apps.connector import Connector
from smolmix_cli.apps.errors import (
    AppError,
    BadContentEncoding,
    BadResponse,
    ConnectError,
    EmptyReply,
    HttpStatusError,
    MalformedUrl,
    OperationTimeout,
    PartialFile,
    RangeError,
    ReadError,
    RecvError,
    SendError,
    TooManyRedirects,
    UsageError,
    WriteError,
)
from smolmix_cli.apps.http_body import Body
from smolmix_cli.apps.http_headers import (
    DEFAULT_USER_AGENT,
    HeaderEdit,
    apply_edits,
    get_header,
    has_header,
    without,
)
from smolmix_cli.apps.http_url import Url, join_url, parse_url

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_RETRY_DELAY = 600.0
_READ_SIZE = 65536
_MAX_IDLE_PER_ORIGIN = 4
_DISCARD_LIMIT = 1 << 20
"""Redirect/retry bodies up to this size are read and dropped to keep the connection."""

BodySink = Callable[[bytes], Awaitable[None]]


@dataclass
class FetchOptions:
    method: str | None = None
    """Explicit -X; None picks GET, or POST when there is a body."""
    header_edits: list[HeaderEdit] = field(default_factory=list)
    body: Body | None = None
    follow_redirects: bool = False
    max_redirects: int = 5
    compressed: bool = False
    connect_timeout: float | None = None
    max_time: float | None = None
    retry: int = 0
    retry_delay: float | None = None
    """Fixed delay between retries; None: 1 s doubling up to 10 min (curl)."""
    retry_max_time: float | None = None
    retry_all_errors: bool = False
    fail: bool = False
    fail_with_body: bool = False
    user: str | None = None
    """`user:password` for basic auth (-u)."""
    user_agent: str | None = DEFAULT_USER_AGENT
    referer: str | None = None
    range: str | None = None
    """Byte range as curl's -r `a-b`."""
    resume_from: int | None = None
    """Offset already on disk (-C); adds `Range: bytes=N-` and requires 206."""
    verify: bool = True
    cafile: str | None = None
    head_only: bool = False
    """-I: send HEAD (unless -X) and expect no body."""


@dataclass
class ResponseHead:
    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    url: Url

    def header(self, name: str) -> str | None:
        return get_header(self.headers, name)

    def raw(self) -> bytes:
        """Status line and headers as received (case preserved), for -i / -D."""
        lines = [f"HTTP/{self.http_version} {self.status} {self.reason}".rstrip()]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


@dataclass
class Transfer:
    """What curl's -w variables report about one URL."""

    url: str
    url_effective: str = ""
    method: str = "GET"
    http_code: int = 0
    http_version: str = ""
    num_redirects: int = 0
    num_connects: int = 0
    num_retries: int = 0
    redirect_url: str = ""
    content_type: str = ""
    size_download: int = 0
    size_upload: int = 0
    size_header: int = 0
    size_request: int = 0
    time_connect: float = 0.0
    time_appconnect: float = 0.0
    time_pretransfer: float = 0.0
    time_starttransfer: float = 0.0
    time_redirect: float = 0.0
    time_total: float = 0.0
    remote_host: str = ""
    remote_ip: str = ""
    """Peer address if the stream reports one (the tunnel may, or may not)."""
    remote_port: int = 0
    scheme: str = ""
    tls_version: str = ""
    reused_connection: bool = False
    exitcode: int = 0
    errormsg: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Headers of the last response (for %header{name})."""
    _t0: float = 0.0

    @property
    def speed_download(self) -> float:
        return self.size_download / self.time_total if self.time_total > 0 else 0.0

    @property
    def speed_upload(self) -> float:
        return self.size_upload / self.time_total if self.time_total > 0 else 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def as_dict(self) -> dict[str, Any]:
        """curl's %{json} keys (those we can know)."""
        return {
            "url": self.url,
            "url_effective": self.url_effective,
            "method": self.method,
            "http_code": self.http_code,
            "response_code": self.http_code,
            "http_version": self.http_version,
            "num_redirects": self.num_redirects,
            "num_connects": self.num_connects,
            "num_retries": self.num_retries,
            "redirect_url": self.redirect_url or None,
            "content_type": self.content_type or None,
            "size_download": self.size_download,
            "size_upload": self.size_upload,
            "size_header": self.size_header,
            "size_request": self.size_request,
            "speed_download": round(self.speed_download),
            "speed_upload": round(self.speed_upload),
            "time_namelookup": 0.0,
            "time_connect": round(self.time_connect, 6),
            "time_appconnect": round(self.time_appconnect, 6),
            "time_pretransfer": round(self.time_pretransfer, 6),
            "time_starttransfer": round(self.time_starttransfer, 6),
            "time_redirect": round(self.time_redirect, 6),
            "time_total": round(self.time_total, 6),
            "remote_ip": self.remote_ip or None,
            "remote_port": self.remote_port,
            "scheme": self.scheme.upper(),
            "exitcode": self.exitcode,
            "errormsg": self.errormsg or None,
        }


class _Conn:
    """One pooled HTTP/1.1 connection: stream plus its h11 state."""

    def __init__(self, stream: anyio.abc.ByteStream, key: tuple[Any, ...], tls_version: str):
        self.stream = stream
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT)
        self.requests = 0
        self.received = 0
        """Bytes received since the current request was sent (0 at EOF = empty reply)."""
        self.tls_version = tls_version
        self.remote_ip = ""

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


@dataclass
class _Request:
    url: Url
    method: str
    headers: list[tuple[str, str]]
    body: Body | None


@dataclass(frozen=True)
class RequestHead:
    """A request head exactly as it went on the wire (after every header the client adds)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes


class HttpClient:
    """Fetches URLs over a Connector with a shared keep-alive pool; use as async context.

    `on_request` sees every request head as sent (redirect hops and retries too),
    so `-v` shows what reached the server, not what the caller asked for.
    """

    def __init__(
        self, connector: Connector, *, on_request: Callable[[RequestHead], None] | None = None
    ) -> None:
        self._connector = connector
        self._on_request = on_request
        self._idle: dict[tuple[Any, ...], list[_Conn]] = {}
        self.connections_opened = 0
        """New TCP connections made (keep-alive reuse shows as a small number)."""

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await conn.aclose()

    # -- public entry ------------------------------------------------------------

    async def fetch(
        self,
        url: str,
        sink: BodySink,
        options: FetchOptions | None = None,
        *,
        on_head: Callable[[ResponseHead], Awaitable[None]] | None = None,
    ) -> Transfer:
        """Fetch one URL, writing the final body to `sink`; returns the Transfer record.

        `on_head` sees every response head (redirect hops and retried attempts too),
        for -i / -D / -v. Raises an AppError subclass (with `.transfer`) on failure.
        """
        opts = options or FetchOptions()
        transfer = Transfer(url=url)
        start = time.monotonic()
        try:
            parsed = parse_url(url)
            attempt = 0
            while True:
                transfer._t0 = time.monotonic()
                written = [False]

                async def guarded_sink(data: bytes, _w: list[bool] = written) -> None:
                    _w[0] = True
                    await sink(data)

                def may_retry(retry_after: float | None, _attempt: int = attempt) -> bool:
                    if _attempt >= opts.retry:
                        return False
                    delay = _retry_delay(opts, _attempt, retry_after)
                    spent = time.monotonic() - start
                    return opts.retry_max_time is None or spent + delay <= opts.retry_max_time

                try:
                    await self._attempt(parsed, guarded_sink, opts, transfer, on_head, may_retry)
                    break
                except _RetryableStatus as exc:
                    delay = _retry_delay(opts, attempt, exc.retry_after)
                except AppError as exc:
                    transient = isinstance(exc, OperationTimeout) or (
                        opts.retry_all_errors and not isinstance(exc, UsageError | MalformedUrl)
                    )
                    if not transient or written[0] or not may_retry(None):
                        raise
                    delay = _retry_delay(opts, attempt, None)
                attempt += 1
                transfer.num_retries = attempt
                await anyio.sleep(delay)
        except AppError as exc:
            transfer.time_total = transfer.elapsed()
            transfer.errormsg = str(exc)  # exitcode: the CLI's classification fills it in
            exc.transfer = transfer
            raise
        transfer.time_total = transfer.elapsed()
        return transfer

    # -- one attempt: the redirect chain -------------------------------------------

    async def _attempt(
        self,
        url: Url,
        sink: BodySink,
        opts: FetchOptions,
        transfer: Transfer,
        on_head: Callable[[ResponseHead], Awaitable[None]] | None,
        may_retry: Callable[[float | None], bool],
    ) -> None:
        transfer.num_redirects = 0
        transfer.time_redirect = 0.0
        transfer.size_header = 0
        transfer.size_download = 0
        try:
            with anyio.fail_after(opts.max_time):
                await self._chain(url, sink, opts, transfer, on_head, may_retry)
        except TimeoutError:
            raise OperationTimeout(
                f"Operation timed out after {transfer.elapsed() * 1000:.0f} milliseconds "
                f"with {transfer.size_download} bytes received"
            ) from None

    async def _chain(
        self,
        url: Url,
        sink: BodySink,
        opts: FetchOptions,
        transfer: Transfer,
        on_head: Callable[[ResponseHead], Awaitable[None]] | None,
        may_retry: Callable[[float | None], bool],
    ) -> None:
        request = self._first_request(url, opts)
        while True:
            conn, head = await self._exchange(request, opts, transfer)
            transfer.url_effective = str(request.url)
            transfer.method = request.method
            transfer.http_code = head.status
            transfer.http_version = head.http_version
            transfer.headers = head.headers
            transfer.content_type = head.header("content-type") or ""
            transfer.size_header += len(head.raw())
            if on_head is not None:
                try:
                    await on_head(head)
                except BaseException as exc:
                    await conn.aclose()
                    if isinstance(exc, OSError):
                        raise WriteError(f"Failure writing output to destination: {exc}") from None
                    raise
            location = head.header("location")
            transfer.redirect_url = ""
            if location is not None and 300 <= head.status < 400 and head.status != 304:
                try:
                    transfer.redirect_url = str(join_url(request.url, location))
                except AppError:
                    transfer.redirect_url = ""
            if (
                opts.follow_redirects
                and head.status in REDIRECT_STATUS | {300}
                and location is not None
            ):
                await self._discard(conn, request)
                if transfer.num_redirects >= opts.max_redirects:
                    raise TooManyRedirects(f"Maximum ({opts.max_redirects}) redirects followed")
                transfer.num_redirects += 1
                transfer.time_redirect = transfer.elapsed()
                request = self._redirect(request, head, location)
                continue
            if head.status in RETRYABLE_STATUS:
                retry_after = _parse_retry_after(head.header("retry-after"))
                if may_retry(retry_after):
                    await self._discard(conn, request)
                    raise _RetryableStatus(retry_after)
            await self._deliver(conn, request, head, sink, opts, transfer)
            return

    def _first_request(self, url: Url, opts: FetchOptions) -> _Request:
        body = opts.body
        method = opts.method or ("HEAD" if opts.head_only else "POST" if body else "GET")
        headers: list[tuple[str, str]] = [("Host", url.host_header)]
        credentials = opts.user
        if credentials is None and url.user is not None:
            credentials = f"{url.user}:{url.password or ''}"
        if credentials is not None:
            token = base64.b64encode(credentials.encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        if opts.user_agent:
            headers.append(("User-Agent", opts.user_agent))
        headers.append(("Accept", "*/*"))
        if opts.resume_from:
            headers.append(("Range", f"bytes={opts.resume_from}-"))
        elif opts.range:
            headers.append(("Range", f"bytes={opts.range}"))
        if opts.compressed:
            headers.append(("Accept-Encoding", "deflate, gzip"))
        if opts.referer:
            headers.append(("Referer", opts.referer))
        headers = apply_edits(headers, opts.header_edits)
        if body is not None and body.content_type and not has_header(headers, "content-type"):
            headers.append(("Content-Type", body.content_type))
        return _Request(url, method, headers, body)

    def _redirect(self, request: _Request, head: ResponseHead, location: str) -> _Request:
        new_url = join_url(request.url, location)
        method, body, headers = request.method, request.body, list(request.headers)
        if (head.status == 303 and method != "HEAD") or (
            head.status in (301, 302) and method == "POST"
        ):
            method, body = "GET", None
            headers = without(headers, "content-type", "content-length", "transfer-encoding")
        if body is not None and not body.replayable:
            raise ReadError("cannot resend a one-shot upload body after a redirect")
        if new_url.origin != request.url.origin:
            # Credentials belong to the origin they were given for (curl without
            # --location-trusted; seed client strips cookies too).
            headers = without(headers, "authorization", "cookie", "proxy-authorization")
        headers = [(k, new_url.host_header) if k.lower() == "host" else (k, v) for k, v in headers]
        return _Request(new_url, method, headers, body)

    # -- connections -----------------------------------------------------------------

    def _pool_key(self, url: Url, opts: FetchOptions) -> tuple[Any, ...]:
        tls_key = (opts.verify, opts.cafile) if url.scheme == "https" else None
        return (url.scheme, url.host, url.port, tls_key)

    async def _acquire(
        self, url: Url, opts: FetchOptions, transfer: Transfer, *, fresh: bool = False
    ) -> tuple[_Conn, bool]:
        key = self._pool_key(url, opts)
        idle = self._idle.get(key)
        if idle and not fresh:
            conn = idle.pop()
            now = transfer.elapsed()
            transfer.time_connect = now
            transfer.time_appconnect = now if url.scheme == "https" else 0.0
            transfer.reused_connection = True
            self._describe(transfer, url, conn)
            return conn, True
        context: ssl.SSLContext | None = None
        if url.scheme == "https":
            context = tls.client_context(verify=opts.verify, cafile=opts.cafile)
        try:
            with anyio.fail_after(opts.connect_timeout):
                stream = await self._open(url)
                transfer.time_connect = transfer.elapsed()
                tls_version = ""
                if context is not None:
                    stream = await tls.wrap_client(stream, url.host, context)
                    tls_version = tls.negotiated(stream).get("tls_version", "")
                    transfer.time_appconnect = transfer.elapsed()
                else:
                    transfer.time_appconnect = 0.0
        except TimeoutError:
            raise OperationTimeout(
                f"Connection timed out after {transfer.elapsed() * 1000:.0f} milliseconds"
            ) from None
        self.connections_opened += 1
        transfer.num_connects += 1
        transfer.reused_connection = False
        conn = _Conn(stream, key, tls_version)
        conn.remote_ip = _remote_ip(stream)
        self._describe(transfer, url, conn)
        return conn, False

    @staticmethod
    def _describe(transfer: Transfer, url: Url, conn: _Conn) -> None:
        transfer.remote_host, transfer.remote_port, transfer.scheme = url.host, url.port, url.scheme
        transfer.remote_ip = conn.remote_ip
        transfer.tls_version = conn.tls_version

    async def _open(self, url: Url) -> anyio.abc.ByteStream:
        try:
            return await self._connector.open_tcp(url.host, url.port)
        except AppError:
            raise
        except TimeoutError:
            raise OperationTimeout(
                f"Failed to connect to {url.host} port {url.port}: timed out"
            ) from None
        except Exception as exc:  # the tunnel's own error types included
            raise ConnectError(f"Failed to connect to {url.host} port {url.port}: {exc}") from None

    def _release(self, conn: _Conn) -> bool:
        """Back to the pool if h11 says the connection can carry another request."""
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                return False
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < _MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
                return True
        return False

    async def _finish(self, conn: _Conn) -> None:
        if not self._release(conn):
            await conn.aclose()

    # -- one request/response ------------------------------------------------------

    async def _exchange(
        self, request: _Request, opts: FetchOptions, transfer: Transfer
    ) -> tuple[_Conn, ResponseHead]:
        conn, reused = await self._acquire(request.url, opts, transfer)
        try:
            return conn, await self._send_and_read_head(conn, request, transfer)
        except (EmptyReply, SendError, RecvError):
            await conn.aclose()
            if not reused or (request.body is not None and not request.body.replayable):
                raise
        # A kept-alive connection the server had already closed: one fresh try (seed rule).
        conn, _ = await self._acquire(request.url, opts, transfer, fresh=True)
        try:
            return conn, await self._send_and_read_head(conn, request, transfer)
        except BaseException:
            await conn.aclose()
            raise

    async def _send_and_read_head(
        self, conn: _Conn, request: _Request, transfer: Transfer
    ) -> ResponseHead:
        headers = list(request.headers)
        body = request.body
        if body is not None and not has_header(headers, "content-length"):
            if body.length is not None:
                headers.append(("Content-Length", str(body.length)))
            elif not has_header(headers, "transfer-encoding"):
                headers.append(("Transfer-Encoding", "chunked"))
        try:
            data = conn.h11.send(
                h11.Request(method=request.method, target=request.url.target, headers=headers)
            )
        except h11.LocalProtocolError as exc:
            raise UsageError(f"cannot send this request: {exc}") from None
        conn.requests += 1
        conn.received = 0
        transfer.size_request = len(data or b"")
        if self._on_request is not None:
            self._on_request(_request_head(data or b""))
        transfer.size_upload = 0
        await self._send(conn, data or b"")
        if body is not None:
            async for chunk in body.chunks():
                try:
                    out = conn.h11.send(h11.Data(data=chunk))
                except h11.LocalProtocolError:
                    raise ReadError("upload source changed size while sending") from None
                await self._send(conn, out or b"")
                transfer.size_upload += len(chunk)
        try:
            end = conn.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            raise ReadError("upload source is shorter than its announced size") from None
        await self._send(conn, end or b"")
        transfer.time_pretransfer = transfer.elapsed()
        while True:
            event = await self._next_event(conn, transfer, head=True)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                transfer.time_starttransfer = transfer.elapsed()
                return ResponseHead(
                    status=event.status_code,
                    reason=event.reason.decode("latin-1"),
                    http_version=event.http_version.decode(),
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in event.headers.raw_items()
                    ],
                    url=request.url,
                )
            raise BadResponse(f"unexpected event before the response: {event!r}")

    async def _send(self, conn: _Conn, data: bytes) -> None:
        if not data:
            return
        try:
            await conn.stream.send(data)
        except AppError:
            raise
        except Exception as exc:  # anyio, OS, TLS or tunnel errors alike
            raise SendError(f"Failure when sending data to the peer: {exc!r}") from None

    async def _next_event(self, conn: _Conn, transfer: Transfer, *, head: bool) -> Any:
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if not head:
                    raise PartialFile(
                        f"transfer closed with outstanding read data remaining ({exc})"
                    ) from None
                if head and conn.received == 0:
                    raise EmptyReply("Empty reply from server") from None
                raise BadResponse(f"Weird server reply: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    data = await conn.stream.receive(_READ_SIZE)
                except anyio.EndOfStream:
                    data = b""
                except AppError:
                    raise
                except Exception as exc:  # anyio, OS, TLS or tunnel errors alike
                    if head and conn.received == 0:
                        raise EmptyReply(f"Empty reply from server ({exc!r})") from None
                    raise RecvError(f"Failure when receiving data from the peer: {exc!r}") from None
                conn.received += len(data)
                try:
                    conn.h11.receive_data(data)
                except h11.RemoteProtocolError as exc:
                    raise BadResponse(f"Weird server reply: {exc}") from None
                continue
            if isinstance(event, h11.ConnectionClosed):
                if head and conn.received == 0:
                    raise EmptyReply("Empty reply from server")
                if head:
                    raise BadResponse("connection closed in the middle of the response head")
                return event
            return event

    async def _discard(self, conn: _Conn, request: _Request) -> None:
        """Drop a redirect/retry body: read small ones to keep the connection, else close."""
        total = 0
        try:
            while conn.h11.their_state is not h11.DONE:
                event = await self._next_event(conn, Transfer(url=""), head=False)
                if isinstance(event, h11.Data):
                    total += len(event.data)
                    if total > _DISCARD_LIMIT:
                        await conn.aclose()
                        return
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except AppError:
            await conn.aclose()
            return
        await self._finish(conn)

    async def _deliver(
        self,
        conn: _Conn,
        request: _Request,
        head: ResponseHead,
        sink: BodySink,
        opts: FetchOptions,
        transfer: Transfer,
    ) -> None:
        failed = head.status >= 400 and (opts.fail or opts.fail_with_body)
        if opts.resume_from and head.status == 416:
            # curl: resuming a file that is already complete is not an error.
            await self._discard(conn, request)
            return
        if opts.resume_from and head.status == 200:
            await conn.aclose()
            raise RangeError("HTTP server doesn't seem to support byte ranges. Cannot resume.")
        if failed and not opts.fail_with_body:
            await conn.aclose()
            raise HttpStatusError(f"The requested URL returned error: {head.status}", head.status)
        decoder = _decoder(head.header("content-encoding")) if opts.compressed else None
        try:
            while True:
                event = await self._next_event(conn, transfer, head=False)
                if isinstance(event, h11.Data):
                    transfer.size_download += len(event.data)
                    data = bytes(event.data)
                    if decoder is not None:
                        data = decoder.feed(data)
                    if data:
                        await _write(sink, data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            if decoder is not None:
                tail = decoder.flush()
                if tail:
                    await _write(sink, tail)
        except BaseException:
            await conn.aclose()
            raise
        await self._finish(conn)
        if failed:
            raise HttpStatusError(f"The requested URL returned error: {head.status}", head.status)


def _request_head(raw: bytes) -> RequestHead:
    """Parse back the head h11 serialised: the request line and headers as they were sent."""
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = tuple(
        (name, value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    )
    return RequestHead(method, target, headers, raw)


def _remote_ip(stream: anyio.abc.ByteStream) -> str:
    try:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
    except Exception:
        return ""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return ""


async def _write(sink: BodySink, data: bytes) -> None:
    try:
        await sink(data)
    except AppError:
        raise
    except OSError as exc:
        raise WriteError(f"Failure writing output to destination: {exc}") from None


class _RetryableStatus(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("retryable HTTP status")
        self.retry_after = retry_after


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retry_delay(opts: FetchOptions, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_DELAY)
    if opts.retry_delay is not None:
        return opts.retry_delay
    return float(min(MAX_RETRY_DELAY, math.pow(2, attempt)))


class _Decoder:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._z.decompress(data)
        except zlib.error as exc:
            if self.encoding == "deflate" and not self._started:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._started = True
                return self.feed(data)
            raise BadContentEncoding(f"Error while processing content unencoding: {exc}") from None
        self._started = True
        return out

    def flush(self) -> bytes:
        try:
            return self._z.flush()
        except zlib.error as exc:
            raise BadContentEncoding(f"Error while processing content unencoding: {exc}") from None


def _decoder(encoding: str | None) -> _Decoder | None:
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Decoder(encoding)
    return None


__all__ = [
    "BodySink",
    "FetchOptions",
    "HttpClient",
    "MalformedUrl",
    "ResponseHead",
    "Transfer",
]
