"""`connect_sync()`: the same tunnel for code without an event loop.

The async tunnel runs on an event loop in a thread of its own (an anyio
blocking portal); every method here is a call into it that blocks the caller,
so there is one implementation and the sync face only moves calls across.
A body still streams piece by piece: each piece is one call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

from smolmix_cli.api.records import Record
from smolmix_cli.api.response import Headers, ProgressCallback, Response
from smolmix_cli.api.tunnel import PhaseCallback, SessionMode, Tunnel, connect
from smolmix_cli.api.websocket import WebSocket
from smolmix_cli.options import DEFAULT_BOOT_TIMEOUT, GlobalOptions

P = ParamSpec("P")
R = TypeVar("R")


class SyncResponse:
    """`Response` for blocking code: `iter_bytes`, `read`, `close`."""

    def __init__(self, portal: BlockingPortal, response: Response) -> None:
        self._portal = portal
        self._response = response
        self.status = response.status
        self.reason = response.reason
        self.http_version = response.http_version
        self.headers = response.headers
        self.url = response.url

    def header(self, name: str) -> str | None:
        return self._response.header(name)

    def iter_bytes(self) -> Iterator[bytes]:
        while (piece := self._portal.call(self._response.receive_piece)) is not None:
            yield piece

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def close(self) -> None:
        self._portal.call(self._response.aclose)

    def __enter__(self) -> SyncResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncWebSocket:
    def __init__(self, portal: BlockingPortal, socket: WebSocket) -> None:
        self._portal = portal
        self._socket = socket
        self.subprotocol = socket.subprotocol

    def send(self, message: str | bytes, *, timeout: float | None = None) -> None:
        self._portal.call(lambda: self._socket.send(message, timeout=timeout))

    def receive(self, *, timeout: float | None = None) -> str | bytes:
        return self._portal.call(lambda: self._socket.receive(timeout=timeout))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._portal.call(self._socket.aclose, code, reason)

    def __enter__(self) -> SyncWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncTunnel:
    """`Tunnel` for blocking code; `tunnel` is the async one (for the httpx transports)."""

    def __init__(self, portal: BlockingPortal, tunnel: Tunnel) -> None:
        self.portal = portal
        self.tunnel = tunnel

    def _call(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.portal.call(lambda: func(*args, **kwargs))

    @property
    def network(self) -> str:
        return self.tunnel.network

    @property
    def attached(self) -> bool:
        return self.tunnel.attached

    @property
    def tcp_opened(self) -> int:
        return self.tunnel.tcp_opened

    def status(self) -> dict[str, object]:
        return self.tunnel.status()

    def fetch(
        self,
        url: str,
        *,
        method: str | None = None,
        headers: Headers = (),
        body: bytes | None = None,
        follow_redirects: bool = False,
        max_redirects: int = 50,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        verify: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> SyncResponse:
        response: Response = self._call(
            self.tunnel.fetch,
            url,
            method=method,
            headers=headers,
            body=body,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            timeout=timeout,
            connect_timeout=connect_timeout,
            verify=verify,
            on_progress=on_progress,
        )
        return SyncResponse(self.portal, response)

    def websocket(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: Headers = (),
        connect_timeout: float | None = 30.0,
        verify: bool = True,
    ) -> SyncWebSocket:
        socket: WebSocket = self._call(
            self.tunnel.websocket,
            url,
            subprotocols=subprotocols,
            headers=headers,
            connect_timeout=connect_timeout,
            verify=verify,
        )
        return SyncWebSocket(self.portal, socket)

    def resolve(self, name: str, record_type: str = "A", **kwargs: Any) -> list[Record]:
        records: list[Record] = self._call(self.tunnel.resolve, name, record_type, **kwargs)
        return records

    def addresses(self, name: str) -> list[str]:
        found: list[str] = self._call(self.tunnel.addresses, name)
        return found

    def udp_exchange(self, host: str, port: int, payload: bytes, *, timeout: float = 5.0) -> bytes:
        reply: bytes = self._call(self.tunnel.udp_exchange, host, port, payload, timeout=timeout)
        return reply

    def open_tcp(self, host: str, port: int, *, tls: bool = False) -> SyncStream:
        stream: anyio.abc.ByteStream = self._call(self.tunnel.open_tcp, host, port, tls=tls)
        return SyncStream(self.portal, stream)


class SyncStream:
    """A TCP (or TLS) stream through the tunnel, for blocking code."""

    def __init__(self, portal: BlockingPortal, stream: anyio.abc.ByteStream) -> None:
        self._portal = portal
        self._stream = stream

    def send(self, data: bytes) -> None:
        self._portal.call(self._stream.send, data)

    def receive(self, max_bytes: int = 65536) -> bytes:
        """The next bytes; b"" once the peer has finished sending."""
        try:
            data: bytes = self._portal.call(self._stream.receive, max_bytes)
        except anyio.EndOfStream:
            return b""
        return data

    def close(self) -> None:
        self._portal.call(self._stream.aclose)

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def connect_sync(
    network: str | os.PathLike[str] | None = None,
    *,
    session: SessionMode | None = None,
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
    on_phase: PhaseCallback | None = None,
    options: GlobalOptions | None = None,
) -> Iterator[SyncTunnel]:
    """`connect()` for blocking code (same arguments). The tunnel's event loop runs in a
    thread of its own, so `on_phase` and `on_progress` are called on that thread."""
    with start_blocking_portal() as portal:
        opened = connect(
            network, session=session, boot_timeout=boot_timeout, on_phase=on_phase, options=options
        )
        with portal.wrap_async_context_manager(opened) as tunnel:
            yield SyncTunnel(portal, tunnel)
