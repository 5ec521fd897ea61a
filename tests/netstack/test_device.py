"""In-memory links: order, bounded queues (drop or wait), and both ends closing."""

from __future__ import annotations

import anyio
import pytest

from smolmix_cli.netstack.phy.memory import memory_link

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]


async def test_packets_arrive_in_order_and_receive_waits() -> None:
    a, b = memory_link(8)
    got: list[bytes] = []

    async def reader() -> None:
        for _ in range(3):
            got.append(await b.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.01)  # the reader is now waiting on an empty queue
        for p in (b"1", b"2", b"3"):
            assert a.send_nowait(p)
    assert got == [b"1", b"2", b"3"]
    assert b.receive_nowait() is None


async def test_full_queue_drops_or_applies_backpressure() -> None:
    a, b = memory_link(2, drop_when_full=True)
    assert all(a.send_nowait(p) for p in (b"1", b"2", b"3"))
    assert a.dropped == 1
    assert [b.receive_nowait(), b.receive_nowait(), b.receive_nowait()] == [b"1", b"2", None]

    a, b = memory_link(2)
    assert a.send_nowait(b"1") and a.send_nowait(b"2")
    assert not a.send_nowait(b"3")  # not taken: the caller keeps it
    sent = anyio.Event()

    async def writer() -> None:
        await a.send(b"3")
        sent.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        await anyio.sleep(0.01)
        assert not sent.is_set()  # blocked on the full queue
        assert await b.receive() == b"1"  # room again: the writer goes on
        await sent.wait()
    assert [await b.receive(), await b.receive()] == [b"2", b"3"]


async def test_close_ends_the_far_side_and_drops_later_sends() -> None:
    a, b = memory_link(4)
    a.send_nowait(b"last")

    async def reader() -> list[bytes]:
        out = []
        while True:
            try:
                out.append(await b.receive())
            except anyio.EndOfStream:
                return out

    result: list[bytes] = []

    async def run_reader() -> None:
        result.extend(await reader())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_reader)
        await anyio.sleep(0.01)
        await a.aclose()  # a reader blocked on the empty queue must wake up
    assert result == [b"last"]
    assert b.send_nowait(b"to nowhere") and b.dropped == 1
    await b.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await b.receive()


async def test_reader_callback_hears_every_arrival_and_the_close() -> None:
    a, b = memory_link(4, drop_when_full=True)
    calls: list[int] = []
    b.set_reader_callback(lambda: calls.append(len(calls)))
    assert a.send_nowait(b"one") and a.send_nowait(b"two")
    assert len(calls) == 2  # synchronously, once per packet
    assert b.receive_nowait() == b"one"
    assert not b.at_eof
    await a.aclose()
    assert len(calls) == 3  # the far end hung up
    assert not b.at_eof  # "two" is still queued
    assert b.receive_nowait() == b"two" and b.receive_nowait() is None
    assert b.at_eof
    b.set_reader_callback(None)
    c, d = memory_link(4)
    d.set_reader_callback(lambda: calls.append(-1))
    d.set_reader_callback(None)
    c.send_nowait(b"unheard")
    assert -1 not in calls
