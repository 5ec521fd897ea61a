"""Helpers for the node tests: a recording frame sink and packet builders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.packet.framing import Frame, FrameDecoder
from smolmix_cli.mixnet.packet.size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import Destination, RouteHop, build_packet
from smolmix_cli.testnet.nodes.node_spec import NodeSpec


@dataclass
class Arrival:
    at: float
    frame: Frame


@dataclass
class FrameSink:
    """A stand-in next hop: accepts framed TCP, records every frame with its arrival time."""

    key: X25519KeyPair = field(default_factory=X25519KeyPair.generate)
    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    _event: anyio.Event = field(default_factory=anyio.Event)
    _scope: anyio.CancelScope | None = None

    @property
    def address(self) -> NodeAddress:
        return NodeAddress.from_host_port("127.0.0.1", self.port)

    @property
    def route_hop(self) -> RouteHop:
        return RouteHop(self.address.to_bytes(), self.key.public_bytes)

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(SocketAttribute.local_port)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with listener, anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, self._handle, tg)
                task_status.started()

    def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        decoder = FrameDecoder()
        async with stream:
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                for frame in decoder.feed(data):
                    self.arrivals.append(Arrival(anyio.current_time(), frame))
                    self._event.set()
                    self._event = anyio.Event()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Arrival]:
        with anyio.fail_after(timeout):
            while len(self.arrivals) < count:
                await self._event.wait()
        return self.arrivals


def hops(specs: Sequence[NodeSpec]) -> list[RouteHop]:
    return [s.route_hop for s in specs]


def make_packet(
    route: Sequence[RouteHop],
    plaintext: bytes = b"hello mixnet",
    delays: Sequence[int] | None = None,
    size: PacketSize = PacketSize.REGULAR,
    destination: bytes = bytes(range(32)),
) -> bytes:
    return build_packet(
        route,
        Destination(destination),
        list(delays) if delays is not None else [0] * len(route),
        plaintext,
        size.payload_size,
    )


def frame_bytes(
    packet: bytes,
    version: FrameVersion = FrameVersion.INITIAL,
    rotation: SphinxKeyRotation = SphinxKeyRotation.UNKNOWN,
) -> bytes:
    return Frame.for_packet(packet, key_rotation=rotation, version=version).to_bytes()


async def send_raw(port: int, data: bytes, *, wait_close: bool = False) -> bool:
    """Write bytes to a node's port; with wait_close, True once the node closed the stream
    (whatever it answered before closing)."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        if not wait_close:
            return False
        with anyio.fail_after(3):
            try:
                while True:
                    await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return True
