"""WebSocket client for `smolmix ws`: ws:// and wss:// over a Connector.

The framing, close handshake, auto-pong and keepalive live in
`smolmix_cli.websocket` (one wsproto engine for the gateway link and
for this command); this module adds what the command needs around it: curl-
style URL and -H handling, --protocol, --origin, TLS through `apps.tls`, and
errors mapped to the apps' typed errors with exit codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc

from smolmix_cli.apps import tls
from smolmix_cli.apps.connector import Connector
from smolmix_cli.apps.errors import (
    AppError,
    ConnectError,
    MalformedUrl,
    OperationTimeout,
    UnsupportedProtocol,
    UsageError,
    WsClosed,
    WsHandshakeError,
)
from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.apps.http_headers import HeaderEdit, apply_edits
from smolmix_cli.apps.http_url import Url, parse_url
from smolmix_cli.websocket import (
    CLOSE_ABNORMAL,
    CLOSE_NORMAL,
    WebSocketClosed,
    WebSocketConnection,
    WebSocketHandshakeError,
    WebSocketTimeout,
    client_handshake,
)

DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_MAX_MESSAGE = 16 << 20
DEFAULT_PING_INTERVAL = 15.0
DEFAULT_PING_TIMEOUT = 45.0
"""Mixnet-sized: a round trip is 1-2 s, so a websocat-style 1 s ping would misfire."""

_RESERVED = {
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
}


@dataclass
class WsOptions:
    header_edits: list[HeaderEdit] = field(default_factory=list)
    subprotocols: list[str] = field(default_factory=list)
    origin: str | None = None
    verify: bool = True
    cafile: str | None = None
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    """Covers TCP, TLS and the upgrade."""
    max_message_size: int = DEFAULT_MAX_MESSAGE


def parse_ws_url(text: str) -> tuple[bool, Url]:
    """(secure, url) for ws:// or wss://; no scheme means ws:// as websocat assumes."""
    if "://" not in text:
        text = "ws://" + text
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme not in ("ws", "wss"):
        raise UnsupportedProtocol(f"websocket URL must be ws:// or wss://, got {scheme}://")
    secure = scheme == "wss"
    return secure, parse_url(("https://" if secure else "http://") + rest)


@contextmanager
def _as_app_errors(timeout_text: str | None = None) -> Iterator[None]:
    """WebSocket failures (and the tunnel stream's own) as the ws command's typed errors."""
    try:
        yield
    except WebSocketClosed as exc:
        raise WsClosed(exc.code, exc.reason, local=exc.local) from None
    except WebSocketTimeout as exc:
        raise OperationTimeout(timeout_text or str(exc)) from None
    except WebSocketHandshakeError as exc:
        raise WsHandshakeError(str(exc), exc.status_code) from None
    except AppError:
        raise
    except Exception as exc:  # any other WebSocket error, the tunnel's own stream errors
        raise WsClosed(CLOSE_ABNORMAL, f"connection lost: {stream_failure(exc)}") from None


class WsSession:
    """An open WebSocket; every failure surfaces as WsClosed / OperationTimeout."""

    def __init__(self, conn: WebSocketConnection, url: str) -> None:
        self._conn = conn
        self.url = url
        self.subprotocol = conn.subprotocol

    async def __aenter__(self) -> WsSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> WsClosed | None:
        c = self._conn.closed
        return None if c is None else WsClosed(c.code, c.reason, local=c.local)

    async def send(self, message: str | bytes, *, timeout: float | None = None) -> None:
        with _as_app_errors():
            if isinstance(message, str):
                await self._conn.send_text(message, timeout=timeout)
            else:
                await self._conn.send_binary(message, timeout=timeout)

    async def receive(self, *, timeout: float | None = None) -> str | bytes:
        """Next message (str text / bytes binary); WsClosed when the connection ends."""
        with _as_app_errors():
            return await self._conn.receive(timeout=timeout)

    async def ping(self, *, timeout: float = DEFAULT_PING_TIMEOUT) -> float:
        """Round trip of one ping in seconds (for --print-ping-rtts)."""
        with _as_app_errors(f"no pong within {timeout} s"):
            return await self._conn.ping(timeout=timeout)

    async def keepalive(
        self,
        interval: float = DEFAULT_PING_INTERVAL,
        timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        """Ping every `interval`; a late pong closes with 1011 and raises OperationTimeout.

        Run next to a task that keeps receiving.
        """
        with _as_app_errors(f"ping timeout: no pong within {timeout} s"):
            await self._conn.keepalive(interval, timeout)

    async def close(
        self, code: int = CLOSE_NORMAL, reason: str = "", *, timeout: float = 5.0, idle: bool = True
    ) -> None:
        """Close, reading on until the server answers: with `idle`, `timeout` is how long it
        may stay silent, so a reply still arriving is printed, as websocat does, not cut off;
        without, it bounds the whole wait (ws -E leaves soon after stdin ends)."""
        if not (code == 1000 or 3000 <= code <= 4999):
            raise UsageError(f"close code {code} may not be sent (use 1000 or 3000-4999)")
        await self._conn.aclose(code, reason, timeout=timeout, idle=idle)


async def connect(connector: Connector, url: str, options: WsOptions | None = None) -> WsSession:
    """Open a WebSocket: TCP via the connector, TLS for wss, then the upgrade."""
    opts = options or WsOptions()
    secure, parsed = parse_ws_url(url)
    extra = _extra_headers(opts)
    for proto in opts.subprotocols:
        if not proto or any(c in proto for c in ' ,;"\r\n'):
            raise UsageError(f"bad subprotocol name {proto!r}")
    stream: anyio.abc.ByteStream | None = None
    timed_out = f"WebSocket connect to {url} timed out"
    try:
        with anyio.fail_after(opts.connect_timeout):
            try:
                stream = await connector.open_tcp(parsed.host, parsed.port)
            except AppError:
                raise
            except Exception as exc:  # OS or tunnel errors
                raise ConnectError(
                    f"Failed to connect to {parsed.host} port {parsed.port}: {exc}"
                ) from None
            if secure:
                context = tls.client_context(verify=opts.verify, cafile=opts.cafile)
                stream = await tls.wrap_client(stream, parsed.host, context)
            with _as_app_errors(timed_out):
                conn = await client_handshake(
                    stream,
                    host=parsed.host_header,
                    target=parsed.target,
                    subprotocols=opts.subprotocols,
                    extra_headers=extra,
                    timeout=opts.connect_timeout or 3600.0,
                    max_message_size=opts.max_message_size,
                )
    except TimeoutError:
        if stream is not None:
            await anyio.aclose_forcefully(stream)
        raise OperationTimeout(timed_out) from None
    return WsSession(conn, url)


def _extra_headers(opts: WsOptions) -> list[tuple[bytes, bytes]]:
    defaults: list[tuple[str, str]] = []
    if opts.origin:
        defaults.append(("Origin", opts.origin))
    headers = apply_edits(defaults, opts.header_edits)
    for name, _ in headers:
        if name.lower() in _RESERVED:
            raise UsageError(f"header {name!r} is set by the WebSocket handshake")
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


__all__ = ["MalformedUrl", "WsOptions", "WsSession", "connect", "parse_ws_url"]
