"""LinkPool over loopback: per-hop queues, bounded, reconnecting, bytes unchanged."""

from __future__ import annotations

import anyio
import pytest

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.packet.size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.testnet.nodes.links import LinkPool
from tests.testnet.nodes_util import FrameSink, frame_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]


def packet(i: int) -> bytes:
    return bytes([i % 256]) * PacketSize.ACK.size


async def free_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return int(port)


async def test_frames_arrive_unchanged_and_in_order_per_hop() -> None:
    sinks = [FrameSink(), FrameSink()]
    pool = LinkPool()
    async with anyio.create_task_group() as tg:
        for sink in sinks:
            await tg.start(sink.serve)
        await tg.start(pool.run)
        for i in range(50):
            data = frame_bytes(packet(i), FrameVersion.KEY_ROTATION, SphinxKeyRotation.EVEN)
            assert pool.send(sinks[i % 2].address, data)
        for sink in sinks:
            await sink.wait_for(25)
        tg.cancel_scope.cancel()
    for n, sink in enumerate(sinks):
        assert [a.frame.packet for a in sink.arrivals] == [packet(i) for i in range(n, 50, 2)]
        assert all(a.frame.key_rotation is SphinxKeyRotation.EVEN for a in sink.arrivals)
    assert pool.counters["link_connects"] == 2
    assert pool.counters["link_sent"] == 50


async def test_queue_is_bounded_while_the_hop_is_unreachable_and_drains_when_it_appears() -> None:
    port = await free_port()
    address = NodeAddress.from_host_port("127.0.0.1", port)
    pool = LinkPool(queue_size=4, backoff_initial=0.02, backoff_max=0.05)
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        accepted = [pool.send(address, frame_bytes(packet(i))) for i in range(10)]
        with anyio.fail_after(3):
            while pool.counters["link_connect_failures"] < 2:
                await anyio.sleep(0.01)
        sink = FrameSink(port=port)
        await tg.start(sink.serve)
        arrivals = await sink.wait_for(sum(accepted))
        tg.cancel_scope.cancel()
    # the link task may hold one frame out of the queue while it connects
    assert 4 <= sum(accepted) <= 5
    assert pool.counters["dropped_queue_full"] == 10 - sum(accepted)
    assert [a.frame.packet for a in arrivals] == [packet(i) for i in range(sum(accepted))]


async def test_send_before_run_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        LinkPool().send(NodeAddress.from_host_port("127.0.0.1", 1), b"x")


async def test_idle_links_close_and_come_back_on_demand() -> None:
    sink = FrameSink()
    dead = NodeAddress.from_host_port("127.0.0.1", await free_port())
    pool = LinkPool(idle_timeout=0.1, backoff_initial=0.02, backoff_max=0.02)
    async with anyio.create_task_group() as tg:
        await tg.start(sink.serve)
        await tg.start(pool.run)
        assert pool.send(sink.address, frame_bytes(packet(1)))
        assert pool.send(dead, frame_bytes(packet(2)))  # never connects
        await sink.wait_for(1)
        with anyio.fail_after(3):
            while pool.counters["link_idle_closed"] < 1:
                await anyio.sleep(0.02)
        assert not pool.is_connected(sink.address)
        assert pool.send(sink.address, frame_bytes(packet(3)))
        await sink.wait_for(2)
        tg.cancel_scope.cancel()
    assert pool.counters["link_connects"] == 2
    # an unreachable hop keeps its queued frame (and keeps retrying) rather than idling out
    assert pool.counters["link_idle_closed"] == 1


async def test_number_of_links_is_bounded() -> None:
    pool = LinkPool(max_links=2, backoff_initial=0.5)
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        ports = [await free_port() for _ in range(3)]
        results = [
            pool.send(NodeAddress.from_host_port("127.0.0.1", p), frame_bytes(packet(0)))
            for p in ports
        ]
        tg.cancel_scope.cancel()
    assert results == [True, True, False]
    assert pool.counters["dropped_too_many_links"] == 1
