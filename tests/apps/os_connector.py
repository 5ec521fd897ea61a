"""Test-only Connector over OS loopback sockets (production code never opens these).

Names resolve through a fixed map, never the OS resolver, mirroring the rule
that apps hand names to the connector.
"""

from __future__ import annotations

import ipaddress

import anyio
import anyio.abc

from smolmix_cli.apps.errors import ConnectError, OperationTimeout, ResolveError


class OsConnector:
    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = dict(names or {})
        self.tcp_opened = 0
        self.udp_exchanges = 0

    def _resolve(self, host: str) -> str:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return host
        try:
            return self.names[host.lower().rstrip(".")]
        except KeyError:
            raise ResolveError(f"Could not resolve host: {host}") from None

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        address = self._resolve(host)
        try:
            stream = await anyio.connect_tcp(address, port)
        except OSError as exc:
            raise ConnectError(f"Failed to connect to {host} port {port}: {exc}") from None
        self.tcp_opened += 1
        return stream

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        address = self._resolve(host)
        self.udp_exchanges += 1
        async with await anyio.create_connected_udp_socket(
            remote_host=address, remote_port=port
        ) as sock:
            await sock.send(payload)
            with anyio.move_on_after(timeout):
                return await sock.receive()
        raise OperationTimeout(f"no UDP reply from {host}:{port} within {timeout} s")
