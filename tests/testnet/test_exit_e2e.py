"""The exit IPR end to end: a client tunnel through a real local network to loopback servers.

Every byte crosses real Sphinx packets (entry gateway, three mix nodes, exit
gateway), the exit's IprRouter and its userspace NAT, and real OS sockets.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import anyio.abc
import pytest

from smolmix_cli.config import Network
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.mixnet.nym_api import NymApiClient
from smolmix_cli.mixnet.topology import Topology
from smolmix_cli.netstack.errors import ConnectionRefused
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from tests.testnet.exit_tunnel import MiniTunnel, mini_tunnel, read_all

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class ExitNet:
    local: LocalNetwork
    network: Network
    topology: Topology
    client: MixnetClient

    def ipr(self, index: int = 0) -> Recipient:
        return Recipient.parse(self.network.exits[index].ipr_address)


@asynccontextmanager
async def exit_net(tmp_path: Path, **options: object) -> AsyncIterator[ExitNet]:
    opts = LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, **options)  # type: ignore[arg-type]
    local = LocalNetwork(opts)
    async with anyio.create_task_group() as tg:
        network: Network = await tg.start(local.serve)
        api = NymApiClient(network.api_urls, ssl_context=network.ssl_context(), timeout=5)
        topology = await api.topology()
        assert network.entry_gateway is not None
        entry = decode_key_base58(network.entry_gateway.identity, "entry")
        async with MixnetClient.start(
            topology,
            gateway=entry,
            ssl_context=network.ssl_context(),
            config=ClientConfig.fast(keepalive_interval=None),
        ) as client:
            yield ExitNet(local, network, topology, client)
        tg.cancel_scope.cancel()


@asynccontextmanager
async def serve_tcp(
    handler: object,
) -> AsyncIterator[int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)  # type: ignore[arg-type]
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


def _runner(tunnel: MiniTunnel):  # type: ignore[no-untyped-def]
    assert tunnel.runner is not None
    return tunnel.runner


async def test_http_get_to_a_loopback_server_through_the_exit(tmp_path: Path) -> None:
    async def http(stream: anyio.abc.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive()
        body = b"hello " + request.split(b" ")[1]
        await stream.send(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await stream.aclose()

    with anyio.fail_after(40):
        async with exit_net(tmp_path) as net, serve_tcp(http) as port:
            async with mini_tunnel(net.client, net.ipr()) as tunnel:
                stream = await _runner(tunnel).connect_tcp(IPv4Address("127.0.0.1"), port)
                await stream.send(b"GET /through-the-mixnet HTTP/1.0\r\nHost: x\r\n\r\n")
                response = await read_all(stream)
                assert response.startswith(b"HTTP/1.0 200 OK")
                assert response.endswith(b"hello /through-the-mixnet")
            stats = net.local.exits[2].stats()
            assert stats["nat_tcp spliced"] == 1
            assert stats["exit_replies sent"] >= 2  # connect success, then bundled packets


async def test_one_mebibyte_download_is_byte_exact(tmp_path: Path) -> None:
    blob = hashlib.shake_256(b"smolmix").digest(1 << 20)

    async def source(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(blob)
        await stream.aclose()

    with anyio.fail_after(60):
        async with exit_net(tmp_path) as net, serve_tcp(source) as port:
            async with mini_tunnel(net.client, net.ipr()) as tunnel:
                stream = await _runner(tunnel).connect_tcp(IPv4Address("127.0.0.1"), port)
                await stream.send(b"go")
                data = await read_all(stream)
                assert len(data) == len(blob)
                assert data == blob
