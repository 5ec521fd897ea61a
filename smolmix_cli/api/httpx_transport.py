"""httpx transports over a smolmix tunnel (the `[httpx]` extra).

    async with api.connect() as tunnel:
        async with httpx.AsyncClient(transport=AsyncTransport(tunnel)) as client: ...
    with api.connect_sync() as tunnel:
        with httpx.Client(transport=SyncTransport(tunnel)) as client: ...

httpx builds the request (headers, cookies, auth, redirects are its own); the
transport sends it as `smolmix fetch` sends its own: through the apps HTTP
client's `exchange` (its keep-alive pool, a stale kept-alive connection retried
once), names resolved through the tunnel, TLS with curl's ClientHello verified
against certifi's roots plus the network's CA. Failures are httpx's exception
types with the API error (and its CLI exit code) as `__cause__`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
import h11
import httpx

from smolmix_cli.api.errors import error_for
from smolmix_cli.api.sync import SyncTunnel
from smolmix_cli.api.tunnel import Tunnel
from smolmix_cli.apps import errors as app
from smolmix_cli.apps.http_body import Body
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_connection import HttpConnection
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_request import OutgoingRequest
from smolmix_cli.apps.http_transfer import RequestHead, Transfer
from smolmix_cli.apps.http_url import parse_url

_AS_HTTPX: list[tuple[type[Exception], type[httpx.TransportError]]] = [
    (app.MalformedUrl, httpx.UnsupportedProtocol),
    (app.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (app.OperationTimeout, httpx.ConnectTimeout),
    (app.ResolveError, httpx.ConnectError),
    (app.ConnectError, httpx.ConnectError),
    (app.TlsError, httpx.ConnectError),
    (app.SendError, httpx.WriteError),
    (app.RecvError, httpx.ReadError),
    (app.EmptyReply, httpx.RemoteProtocolError),
    (app.BadResponse, httpx.RemoteProtocolError),
    (app.PartialFile, httpx.RemoteProtocolError),
    (app.ReadError, httpx.WriteError),  # the upload source failed
    (app.UsageError, httpx.LocalProtocolError),
]


@contextmanager
def _as_httpx(
    request: httpx.Request, timeout: type[httpx.TimeoutException], seconds: float | None = None
) -> Iterator[None]:
    """smolmix failures as httpx's types (the API error, with its exit code, as the cause)."""
    try:
        yield
    except httpx.HTTPError:
        raise
    except TimeoutError as exc:
        text = str(exc) or f"no answer within {seconds:g} s" if seconds else "timed out"
        raise timeout(text, request=request) from error_for(exc)
    except Exception as exc:
        kind: type[httpx.TransportError] = httpx.ReadError
        for app_type, httpx_type in _AS_HTTPX:
            if isinstance(exc, app_type):
                kind = httpx_type
                break
        else:
            kind = httpx.ConnectError if timeout is httpx.ConnectTimeout else httpx.ReadError
        error = error_for(exc)
        raise kind(str(error), request=request) from error


class _RequestBody(Body):
    """httpx's request stream as the apps' upload body (sent as is, never replayed)."""

    replayable = False

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            if chunk:
                yield chunk


class _ResponseStream(httpx.AsyncByteStream):
    """The body as h11 hands it over; the connection goes back to the pool at its end."""

    def __init__(
        self, client: HttpClient, conn: HttpConnection, request: httpx.Request, read: float | None
    ) -> None:
        self._client = client
        self._conn: HttpConnection | None = conn
        self._request = request
        self._read_timeout = read

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (piece := await self.receive_piece()) is not None:
            yield piece

    async def receive_piece(self) -> bytes | None:
        conn = self._conn
        if conn is None:
            return None
        try:
            with (
                _as_httpx(self._request, httpx.ReadTimeout, self._read_timeout),
                anyio.fail_after(self._read_timeout),
            ):
                while True:
                    event = await conn.next_event(head=False)
                    if isinstance(event, h11.Data):
                        return bytes(event.data)
                    if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        self._conn = None
                        await self._client.release(conn)
                        return None
        except BaseException:
            self._conn = None
            await conn.aclose()
            raise

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()  # not read to its end: the connection cannot be reused


_HEAD_WAIT: ContextVar[tuple[anyio.CancelScope, float | None] | None] = ContextVar(
    "_HEAD_WAIT", default=None
)
"""The request being sent in this task: the scope its response head is awaited in, and
httpx's read timeout."""


def _request_sent(_head: RequestHead) -> None:
    """The request is on its connection: its response head gets httpx's read timeout."""
    waiting = _HEAD_WAIT.get()
    if waiting is not None and waiting[1] is not None:
        waiting[0].deadline = anyio.current_time() + waiting[1]


def _client(tunnel: Tunnel) -> HttpClient:
    return HttpClient(tunnel.connector, on_request=_request_sent)


def _has_body(request: httpx.Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


async def _send(
    client: HttpClient,
    tunnel: Tunnel,
    verify: bool,
    request: httpx.Request,
    body: AsyncIterator[bytes] | None,
) -> httpx.Response:
    timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
    options = FetchOptions(
        verify=verify,
        cafile=tunnel.cafile if verify else None,
        connect_timeout=timeouts.get("connect"),
    )
    with _as_httpx(request, httpx.ConnectTimeout):
        url = parse_url(str(request.url))
    outgoing = OutgoingRequest(
        url,
        request.method,
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
        _RequestBody(body) if body is not None and _has_body(request) else None,
    )
    read = timeouts.get("read")
    with _as_httpx(request, httpx.ReadTimeout, read), anyio.CancelScope() as head_wait:
        # no deadline while connecting (the pool bounds that: ConnectTimeout); `read` from
        # the moment the request is out (_request_sent)
        waiting = _HEAD_WAIT.set((head_wait, read))
        try:
            conn, head = await client.exchange(outgoing, options, Transfer(url=str(request.url)))
        finally:
            _HEAD_WAIT.reset(waiting)
    if head_wait.cancelled_caught:
        text = f"no answer within {read:g} s"
        raise httpx.ReadTimeout(text, request=request) from error_for(TimeoutError(text))
    return httpx.Response(
        head.status,
        headers=head.headers,
        stream=_ResponseStream(client, conn, request, read),
        extensions={
            "http_version": f"HTTP/{head.http_version}".encode(),
            "reason_phrase": head.reason.encode("latin-1"),
        },
    )


class AsyncTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AsyncTransport(tunnel))`: requests through the tunnel.

    `verify=False` skips certificate checks (as fetch -k). Connections are kept alive
    per origin; `tunnel.tcp_opened` counts the TCP streams the tunnel opened.
    """

    def __init__(self, tunnel: Tunnel, *, verify: bool = True) -> None:
        self._tunnel = tunnel
        self._verify = verify
        self._client = _client(tunnel)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        stream = request.stream
        body = stream.__aiter__() if isinstance(stream, httpx.AsyncByteStream) else None
        return await _send(self._client, self._tunnel, self._verify, request, body)

    async def aclose(self) -> None:
        await self._client.aclose()


class _SyncResponseStream(httpx.SyncByteStream):
    def __init__(self, tunnel: SyncTunnel, stream: _ResponseStream) -> None:
        self._portal = tunnel.portal
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        while (piece := self._portal.call(self._stream.receive_piece)) is not None:
            yield piece

    def close(self) -> None:
        self._portal.call(self._stream.aclose)


async def _pulled(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A blocking upload source read from a worker thread, piece by piece."""
    done = object()
    while (chunk := await anyio.to_thread.run_sync(next, chunks, done)) is not done:
        assert isinstance(chunk, bytes)
        yield chunk


class SyncTransport(httpx.BaseTransport):
    """`httpx.Client(transport=SyncTransport(tunnel))` for a `connect_sync()` tunnel."""

    def __init__(self, tunnel: SyncTunnel, *, verify: bool = True) -> None:
        self._tunnel = tunnel
        self._verify = verify
        self._client = _client(tunnel.tunnel)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        stream: Any = request.stream
        body = _pulled(iter(stream)) if isinstance(stream, httpx.SyncByteStream) else None
        response = self._tunnel.portal.call(
            _send, self._client, self._tunnel.tunnel, self._verify, request, body
        )
        assert isinstance(response.stream, _ResponseStream)
        response.stream = _SyncResponseStream(self._tunnel, response.stream)
        return response

    def close(self) -> None:
        self._tunnel.portal.call(self._client.aclose)
