"""The seam between the application protocols and whatever carries their bytes.

The tunnel implements it over the mixnet; tests implement it over loopback
sockets. Name resolution is the connector's job: apps hand it names and never
call the OS resolver. Connectors report failures with the transport errors of
`smolmix_cli.apps.errors` (ResolveError, ConnectError, OperationTimeout);
engines also accept OSError and anyio stream errors and map them themselves.
"""

from __future__ import annotations

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
