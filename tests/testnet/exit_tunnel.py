"""A minimal client tunnel for testing the exit: IprClient over a MixnetClient plus a NetStack.

Only what the exit tests need (the real client is `smolmix_cli.tunnel`): connect
with SURBs, every IP packet of the client stack in its own Data message, replies
fed back into the stack, Info responses kept for inspection.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import anyio.abc

from smolmix_cli.config import Network
from smolmix_cli.ipr.client_logic import (
    ClientConfig,
    Connected,
    ConnectFailed,
    InfoReceived,
    IprClient,
    PacketsReceived,
    SendAdditionalSurbs,
    SendToIpr,
)
from smolmix_cli.ipr.messages import V9, InfoResponse
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client.client import ClientConfig as MixnetConfig
from smolmix_cli.mixnet.client.client import MixnetClient
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.mixnet.topology.topology import Topology
from smolmix_cli.netstack.aio import StackRunner
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.callback import CallbackDevice
from smolmix_cli.netstack.wire.ip import PROTO_UDP, encode_ip, pseudo_header_raw
from smolmix_cli.netstack.wire.udp import encode_udp
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions


@dataclass
class MiniTunnel:
    client: MixnetClient
    ipr: Recipient
    ipr_client: IprClient
    runner: StackRunner | None = None
    ipv4: IPv4Address | None = None
    infos: list[InfoResponse] = field(default_factory=list)
    packets_in: int = 0
    _outbox: list[bytes] = field(default_factory=list)
    _wake: anyio.Event = field(default_factory=anyio.Event)

    def _uplink(self, packet: bytes) -> None:
        self._outbox.append(packet)
        self._wake.set()

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            now = anyio.current_time()
            for packet in self._outbox:
                self.ipr_client.send_packet(packet, now)
            self._outbox.clear()
            await self._flush()

    async def _flush(self) -> None:
        for transmit in self.ipr_client.pop_transmits():
            if isinstance(transmit, SendToIpr):
                await self.client.send(
                    self.ipr, transmit.payload, reply_surbs=transmit.reply_surbs, repliable=True
                )
            elif isinstance(transmit, SendAdditionalSurbs):
                pass  # the mixnet client answers SURB requests by itself

    async def _receive_loop(self, connected: anyio.Event, failed: list[str]) -> None:
        while True:
            message = await self.client.receive()
            now = anyio.current_time()
            self.ipr_client.on_reply(message.data, now)
            for event in self.ipr_client.pop_events():
                if isinstance(event, Connected):
                    self.ipv4 = event.ipv4
                    connected.set()
                elif isinstance(event, ConnectFailed):
                    failed.append(event.reason)
                    connected.set()
                elif isinstance(event, PacketsReceived) and self.runner is not None:
                    for packet in event.packets:
                        self.packets_in += 1
                        self.runner.stack.receive_packet(packet, now)
                    self.runner.flush()
                elif isinstance(event, InfoReceived):
                    self.infos.append(event.response)
            await self._flush()


@asynccontextmanager
async def mini_tunnel(
    client: MixnetClient,
    ipr: Recipient,
    *,
    version: int = V9,
    seed: int | None = None,
    config: ClientConfig | None = None,
) -> AsyncIterator[MiniTunnel]:
    """Connect to the exit at `ipr` and run a client stack on the address it gives."""
    rng = random.Random(seed) if seed is not None else None
    tunnel = MiniTunnel(client, ipr, IprClient(rng, config))
    connected = anyio.Event()
    failed: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(tunnel._receive_loop, connected, failed)
        tunnel.ipr_client.connect(anyio.current_time(), datetime.now(UTC), version=version)
        await tunnel._flush()
        with anyio.fail_after(20):
            await connected.wait()
        if failed:
            raise RuntimeError(f"connect failed: {failed[0]}")
        assert tunnel.ipv4 is not None
        mtu = tunnel.ipr_client.mtu or 1420
        stack = NetStack([tunnel.ipv4], mtu=mtu)
        runner = StackRunner(stack, CallbackDevice(tunnel._uplink))
        tunnel.runner = runner
        await tg.start(runner.run)
        tg.start_soon(tunnel._send_loop)
        try:
            yield tunnel
        finally:
            tg.cancel_scope.cancel()


async def read_all(stream: anyio.abc.ByteStream) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(await stream.receive())
        except anyio.EndOfStream:
            return b"".join(chunks)


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
            config=MixnetConfig.fast(keepalive_interval=None),
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


def udp_packet(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, data: bytes) -> bytes:
    s, d = src.packed, dst.packed
    pseudo = pseudo_header_raw(s, d, PROTO_UDP, 8 + len(data))
    return encode_ip(s, d, PROTO_UDP, encode_udp(sport, dport, data, pseudo))


@asynccontextmanager
async def second_client(net: ExitNet) -> AsyncIterator[MixnetClient]:
    assert net.network.entry_gateway is not None
    async with MixnetClient.start(
        net.topology,
        gateway=decode_key_base58(net.network.entry_gateway.identity, "entry"),
        ssl_context=net.network.ssl_context(),
        config=MixnetConfig.fast(keepalive_interval=None),
    ) as client:
        yield client


@asynccontextmanager
async def udp_sink() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A loopback UDP server that records and echoes what it gets."""
    seen: list[bytes] = []
    sock = await anyio.create_udp_socket(local_host="127.0.0.1")
    port = int(sock.extra(anyio.abc.SocketAttribute.local_port))

    async def serve() -> None:
        async for data, peer in sock:
            seen.append(data)
            await sock.sendto(data, *peer)

    async with sock, anyio.create_task_group() as tg:
        tg.start_soon(serve)
        try:
            yield port, seen
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def victim_and_rogue(
    tmp_path: Path,
) -> AsyncIterator[tuple[ExitNet, int, list[bytes], MiniTunnel, MiniTunnel]]:
    """The network, a loopback UDP sink (port, what it got) and two tunnels through the same
    exit: the test client's (victim) and a second client's (rogue), for attacks between them."""
    async with (
        exit_net(tmp_path) as net,
        udp_sink() as (port, seen),
        second_client(net) as intruder,
        mini_tunnel(net.client, net.ipr()) as victim,
        mini_tunnel(intruder, net.ipr()) as rogue,
    ):
        yield net, port, seen, victim, rogue
