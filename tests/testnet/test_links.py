"""LinkPool over loopback: per-hop queues, bounded, reconnecting, bytes unchanged."""

from __future__ import annotations

import anyio
import pytest

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.packet_size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.testnet.links import LinkPool
from tests.testnet.nodes_util import FrameSink, frame_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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
