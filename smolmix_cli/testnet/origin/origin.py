"""The demo origin: real HTTP, HTTPS, WebSocket (ws/wss) and DNS servers on loopback.

DNS is served over UDP, TCP, TLS (DoT) and HTTPS (DoH, `/dns-query`).
The local network's exit maps the demo zone's addresses onto these servers,
so `smolmix fetch https://demo.smolmix.test/` exercises every layer end to
end. The HTTPS/wss certificate comes from the caller (the network's CA issues
it); without an SSLContext only the plain services start.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from smolmix_cli.accept import serve_contained
from smolmix_cli.testnet.origin.dns import DemoZone, serve_dns_tcp_connection, serve_dns_udp
from smolmix_cli.testnet.origin.http import OriginApp, serve_http_connection
from smolmix_cli.testnet.origin.ws import serve_ws_echo

_HANDSHAKE_TIMEOUT = 10.0


class DemoOrigin:
    """All demo servers in one task group; ports are known once entered.

    `ipv4` / `ipv6` are the addresses the DNS zone hands out for the demo names.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
        ipv4: list[str] | None = None,
        ipv6: list[str] | None = None,
    ) -> None:
        self.host = host
        self.ssl_context = ssl_context
        self.zone = DemoZone(ipv4=ipv4 or ["10.0.0.1"], ipv6=ipv6 or ["fd00::1"])
        self.app = OriginApp(self.zone)
        self.http_port = 0
        self.https_port = 0
        self.ws_port = 0
        self.wss_port = 0
        self.dns_port = 0
        """UDP and TCP on the same port number."""
        self.dot_port = 0
        """DNS over TLS (with an SSLContext); DoH is `/dns-query` on the HTTP(S) ports."""
        self.failures = 0
        """Connections whose handler raised (contained: each cost one connection)."""
        self._tg: anyio.abc.TaskGroup | None = None
        self._closers: list[anyio.abc.AsyncResource] = []

    async def __aenter__(self) -> DemoOrigin:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._start()
        except BaseException:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            for resource in self._closers:
                await anyio.aclose_forcefully(resource)

    def ports(self) -> dict[str, int]:
        """Loopback port per demo service name (0: not serving it)."""
        return {
            "http": self.http_port,
            "https": self.https_port,
            "ws": self.ws_port,
            "wss": self.wss_port,
            "dns": self.dns_port,
            "dot": self.dot_port,
        }

    async def _start(self) -> None:
        assert self._tg is not None
        tg = self._tg
        self.http_port = await self._serve(self._plain_http)
        self.ws_port = await self._serve(self._plain_ws)
        if self.ssl_context is not None:
            self.https_port = await self._serve(self._tls_http)
            self.wss_port = await self._serve(self._tls_ws)
            self.dot_port = await self._serve(self._dot)
        udp, tcp = await self._dns_sockets()
        self.dns_port = _port(tcp)
        tg.start_soon(serve_dns_udp, udp, self.zone)
        tg.start_soon(serve_contained, tcp, self._dns_tcp, self._failed)

    async def _serve(
        self, handler: Callable[[anyio.abc.SocketStream], Coroutine[Any, Any, None]]
    ) -> int:
        """A fresh loopback listener handing each connection to `handler`; its port."""
        assert self._tg is not None
        listener = await self._listen()
        self._tg.start_soon(serve_contained, listener, handler, self._failed)
        return _port(listener)

    def _failed(self, exc: BaseException) -> None:
        del exc  # serve_contained logs it at debug
        self.failures += 1

    async def _listen(self) -> anyio.abc.SocketListener:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=0)
        self._closers.append(listener)
        return listener  # type: ignore[return-value]

    async def _dns_sockets(self) -> tuple[anyio.abc.UDPSocket, anyio.abc.SocketListener]:
        for _ in range(20):
            tcp = await self._listen()
            try:
                udp = await anyio.create_udp_socket(local_host=self.host, local_port=_port(tcp))
            except OSError:
                self._closers.remove(tcp)
                await tcp.aclose()
                continue
            self._closers.append(udp)
            return udp, tcp
        raise OSError("no port free for DNS on both UDP and TCP")

    async def _plain_http(self, stream: anyio.abc.SocketStream) -> None:
        await serve_http_connection(stream, self.app)

    async def _tls_http(self, stream: anyio.abc.SocketStream) -> None:
        tls = await self._tls(stream)
        if tls is not None:
            await serve_http_connection(tls, self.app, scheme="https")

    async def _plain_ws(self, stream: anyio.abc.SocketStream) -> None:
        await serve_ws_echo(stream)

    async def _tls_ws(self, stream: anyio.abc.SocketStream) -> None:
        await serve_ws_echo(stream, ssl_context=self.ssl_context)

    async def _dns_tcp(self, stream: anyio.abc.SocketStream) -> None:
        await serve_dns_tcp_connection(stream, self.zone)

    async def _dot(self, stream: anyio.abc.SocketStream) -> None:
        tls = await self._tls(stream)
        if tls is not None:
            await serve_dns_tcp_connection(tls, self.zone)

    async def _tls(self, stream: anyio.abc.SocketStream) -> TLSStream | None:
        assert self.ssl_context is not None
        try:
            with anyio.fail_after(_HANDSHAKE_TIMEOUT):
                return await TLSStream.wrap(
                    stream,
                    server_side=True,
                    ssl_context=self.ssl_context,
                    standard_compatible=False,
                )
        except (
            TimeoutError,
            ssl.SSLError,
            OSError,
            anyio.EndOfStream,
            anyio.BrokenResourceError,
        ):
            with contextlib.suppress(Exception):
                await anyio.aclose_forcefully(stream)
            return None


def _port(resource: anyio.abc.SocketListener | anyio.abc.UDPSocket) -> int:
    address = resource.extra(anyio.abc.SocketAttribute.local_address)
    return int(address[1])
