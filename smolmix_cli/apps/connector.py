"""The seam between the application protocols and whatever carries their bytes.

The tunnel implements it over the mixnet; tests implement it over loopback
sockets. Name resolution is the connector's job: apps hand it names and never
call the OS resolver. Connectors report failures with the transport errors of
`smolmix_cli.apps.errors` (ResolveError, ConnectError, OperationTimeout);
engines also accept OSError and anyio stream errors and map them themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio.abc


@runtime_checkable
class Connector(Protocol):
    """Opens TCP streams and does UDP request/response exchanges to host:port."""

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        """A connected byte stream to host:port; `host` is a name or an IP literal."""
        ...

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        """Send one datagram and return the first reply; raise OperationTimeout if none."""
        ...


@dataclass(frozen=True, slots=True)
class OriginStream:
    """A stream for HTTP/1.1 to one origin, TCP and TLS done by whoever holds it."""

    stream: anyio.abc.ByteStream
    reused: bool
    """A warm connection an earlier command left (it may have gone stale meanwhile)."""
    tls_version: str
    tcp_seconds: float
    tls_seconds: float
    remote: tuple[str, int] | None


@runtime_checkable
class OriginConnector(Protocol):
    """A connector that also opens (and may keep warm) HTTP origin connections itself:
    a background session, where a connection can outlive the command (session/warm.py)."""

    async def open_origin(
        self,
        host: str,
        port: int,
        *,
        server_name: str | None,
        verify: bool,
        cafile: str | None,
        fresh: bool,
    ) -> OriginStream:
        """`host:port` is where to dial; `server_name` the TLS name (None: plain HTTP).

        Fails with the transport errors above (typed), or with an error that already
        carries its final exit code (a TLS failure in the session: 35 or 60)."""
        ...
