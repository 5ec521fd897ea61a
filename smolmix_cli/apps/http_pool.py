"""Keep-alive connections per origin, opened through the Connector.

Over the mixnet a new connection costs TCP and TLS round trips of a second or more
each, so connections h11 says can carry another request wait here for the next URL
to the same origin (and the same TLS settings). A background session's connector
(OriginConnector) opens the connection and does TLS itself, so that the connection
can stay warm in the session for the next command; then this process never
imports ssl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from smolmix_cli.apps.connector import Connector, OriginConnector, OriginStream
from smolmix_cli.apps.errors import AppError, ConnectError, OperationTimeout
from smolmix_cli.apps.http_connection import HttpConnection
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_origin import describe, origin_key, record_idle, record_session_origin
from smolmix_cli.apps.http_route import route
from smolmix_cli.apps.http_transfer import Transfer
from smolmix_cli.apps.http_url import Url

if TYPE_CHECKING:
    import ssl

_MAX_IDLE_PER_ORIGIN = 4


class ConnectionPool:
    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._idle: dict[tuple[Any, ...], list[HttpConnection]] = {}
        self.opened = 0
        """New TCP connections made (keep-alive reuse shows as a small number)."""

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await conn.aclose()

    async def acquire(
        self, url: Url, opts: FetchOptions, transfer: Transfer, *, fresh: bool = False
    ) -> tuple[HttpConnection, bool]:
        """An idle connection to the origin, else a new one; and whether it was reused."""
        key = origin_key(url, opts)
        idle = self._idle.get(key)
        if idle and not fresh:
            conn = idle.pop()
            record_idle(transfer, url)
            describe(transfer, url, conn)
            return conn, True
        if isinstance(self._connector, OriginConnector):
            return await self._acquire_origin(self._connector, url, opts, transfer, fresh)
        from smolmix_cli.apps import tls

        context: ssl.SSLContext | None = None
        if url.scheme == "https":
            context = tls.client_context(verify=opts.verify, cafile=opts.cafile)
        try:
            with anyio.fail_after(opts.connect_timeout):
                stream = await self._open(url, opts)
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
        self.opened += 1
        transfer.num_connects += 1
        transfer.reused_connection = False
        conn = HttpConnection(stream, key, tls_version)
        conn.remote_ip = _address(stream, anyio.abc.SocketAttribute.remote_address)[0]
        conn.local_ip, conn.local_port = _address(stream, anyio.abc.SocketAttribute.local_address)
        describe(transfer, url, conn)
        return conn, False

    async def _acquire_origin(
        self,
        connector: OriginConnector,
        url: Url,
        opts: FetchOptions,
        transfer: Transfer,
        fresh: bool,
    ) -> tuple[HttpConnection, bool]:
        """The session's connection: a warm one (-w counts it as reused) or one it opened."""
        host, port = route(url.host, url.port, opts.connect_to, opts.resolve)
        https = url.scheme == "https"
        try:
            with anyio.fail_after(opts.connect_timeout):
                origin: OriginStream = await connector.open_origin(
                    host,
                    port,
                    server_name=url.host if https else None,
                    verify=opts.verify,
                    cafile=opts.cafile,
                    fresh=fresh,
                )
        except TimeoutError:
            raise OperationTimeout(
                f"Connection timed out after {transfer.elapsed() * 1000:.0f} milliseconds"
            ) from None
        # Anything else passes as raised: the session's failures come back typed (AppError)
        # or final with their exit code (a TLS failure's 35 or 60), never as raw transport errors.
        record_session_origin(transfer, url, reused=origin.reused, tls_seconds=origin.tls_seconds)
        if not origin.reused:
            self.opened += 1
        conn = HttpConnection(origin.stream, origin_key(url, opts), origin.tls_version)
        conn.remote_ip = origin.remote[0] if origin.remote else ""
        describe(transfer, url, conn)
        return conn, origin.reused

    async def _open(self, url: Url, opts: FetchOptions) -> anyio.abc.ByteStream:
        host, port = route(url.host, url.port, opts.connect_to, opts.resolve)
        try:
            return await self._connector.open_tcp(host, port)
        except AppError:
            raise
        except TimeoutError:
            raise OperationTimeout(
                f"Failed to connect to {url.host} port {url.port}: timed out"
            ) from None
        except Exception as exc:  # the tunnel's own error types included
            raise ConnectError(f"Failed to connect to {url.host} port {url.port}: {exc}") from None

    def _release(self, conn: HttpConnection) -> bool:
        """Back to the pool if h11 says the connection can carry another request."""
        if conn.exchange.next_cycle():
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < _MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
                return True
        return False

    async def finish(self, conn: HttpConnection) -> None:
        """A request is done with `conn`: keep it for the next one, or close it."""
        if not self._release(conn):
            await conn.aclose()


def _address(stream: anyio.abc.ByteStream, attribute: object) -> tuple[str, int]:
    """(ip, port) of one end if the stream reports it (a TLS stream asks the one below)."""
    try:
        address = stream.extra(attribute, None)
    except Exception:
        return "", 0
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0
