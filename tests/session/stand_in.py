"""A stand-in tunnel for session tests: the Connector over real loopback sockets.

Tests only: it opens OS sockets to 127.0.0.1, which production code never
does for destinations. Names resolve through a dict (no OS resolver), every
IP literal maps to loopback, and the hosts asked for are recorded so tests can
check what the daemon passed on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from smolmix_cli.apps.errors import ResolveError
from smolmix_cli.errors_map import classify
from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon
from smolmix_cli.session.paths import SessionPaths
from smolmix_cli.tunnel.errors import TunnelClosed, TunnelConnectError, TunnelTimeout
from smolmix_cli.tunnel.status import TunnelStatus


class LoopbackTunnel:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.state = "ready"
        self.reason = "stand-in"
        self.asked: list[tuple[str, str, int]] = []

    def _ip(self, host: str) -> str:
        try:
            ip_address(host.strip("[]"))
        except ValueError:
            if host not in self.names:
                raise ResolveError(f"Could not resolve host: {host}") from None
            return self.names[host]
        return "127.0.0.1"

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        self.asked.append(("tcp", host, port))
        if self.state != "ready":
            raise TunnelClosed("the tunnel session ended while connecting")
        ip = self._ip(host)
        try:
            return await anyio.connect_tcp(ip, port)
        except OSError:
            raise TunnelConnectError(f"connection to {ip}:{port} refused") from None

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        self.asked.append(("udp", host, port))
        ip = self._ip(host)
        async with await anyio.create_connected_udp_socket(ip, port) as sock:
            await sock.send(payload)
            with anyio.move_on_after(timeout):
                return await sock.receive()
        raise TunnelTimeout(f"no UDP reply from {ip}:{port} within {timeout:g} s")

    async def resolve(self, name: str) -> list[str]:
        self._ip(name)
        return [self.names.get(name, name)]

    def snapshot(self) -> TunnelStatus:
        return TunnelStatus(self.state, self.reason, exit="stand-in-exit", ipv4="10.0.0.2")


@dataclass
class Booted:
    tunnel: LoopbackTunnel
    ca_pem: str | None = None


@dataclass
class Source:
    """Counts boots; each boot yields a fresh LoopbackTunnel (or fails, or takes a while)."""

    names: dict[str, str]
    delay: float = 0.0
    fail: BaseException | None = None
    boots: int = 0
    tunnels: list[LoopbackTunnel] = field(default_factory=list)

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Booted]:
        self.boots += 1
        await anyio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        tunnel = LoopbackTunnel(self.names)
        self.tunnels.append(tunnel)
        yield Booted(tunnel)


def short_runtime_dir() -> Path:
    """A short path: Unix socket paths must fit in 108 bytes."""
    return Path(tempfile.mkdtemp(prefix="smx-", dir="/tmp"))


@asynccontextmanager
async def running_daemon(
    paths: SessionPaths, source: Callable[[], Any], **config: Any
) -> AsyncIterator[SessionDaemon]:
    daemon = SessionDaemon(
        paths, DaemonConfig(network_name="test", **config), source, classify=classify
    )
    async with anyio.create_task_group() as tg:
        await tg.start(daemon.serve)
        try:
            yield daemon
        finally:
            daemon.stop()


async def echo_tcp_server(
    *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Echo every byte; at EOF, send a trailer then close (so half-close is observable)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def handle(conn: anyio.abc.SocketStream) -> None:
        async with conn:
            total = 0
            while True:
                try:
                    data = await conn.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
                total += len(data)
                await conn.send(data)
            await conn.send(f"<eof after {total}>".encode())

    async with listener:
        task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(handle)


async def echo_udp_server(
    *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
        task_status.started(sock.extra(anyio.abc.SocketAttribute.local_port))
        async for data, (host, port) in sock:
            await sock.sendto(b"re:" + data, host, port)


def unused_paths(directory: Path, name: str = "test") -> SessionPaths:
    os.chmod(directory, 0o700)
    return SessionPaths(name, directory)
