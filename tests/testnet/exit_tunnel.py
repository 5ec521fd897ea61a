"""A minimal client tunnel for testing the exit: IprClient over a MixnetClient plus a NetStack.

Only what the exit tests need (the real client is `smolmix_cli.tunnel`): connect
with SURBs, every IP packet of the client stack in its own Data message, replies
fed back into the stack, Info responses kept for inspection.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address

import anyio
import anyio.abc

from smolmix_cli.ipr.client_logic import (
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
from smolmix_cli.mixnet.client import MixnetClient
from smolmix_cli.netstack.aio import StackRunner
from smolmix_cli.netstack.stack import NetStack


class _Device:
    """The client stack's device: sent packets go to the IPR, nothing arrives by itself."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._closed = anyio.Event()

    async def receive(self) -> bytes:
        await self._closed.wait()
        raise anyio.EndOfStream

    def receive_nowait(self) -> bytes | None:
        return None

    def send_nowait(self, packet: bytes) -> bool:
        self._send(packet)
        return True

    async def send(self, packet: bytes) -> None:
        self._send(packet)

    async def aclose(self) -> None:
        self._closed.set()


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
                await self.client.send(self.ipr, transmit.payload, reply_surbs=transmit.reply_surbs)
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
    client: MixnetClient, ipr: Recipient, *, version: int = V9, seed: int | None = None
) -> AsyncIterator[MiniTunnel]:
    """Connect to the exit at `ipr` and run a client stack on the address it gives."""
    rng = random.Random(seed) if seed is not None else None
    tunnel = MiniTunnel(client, ipr, IprClient(rng))
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
        runner = StackRunner(stack, _Device(tunnel._uplink))
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
