"""A loopback listener that keeps the first bytes each client sends: a request head, a
ClientHello. What a client puts on the wire before any answer is what servers see of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc


@asynccontextmanager
async def first_bytes_catcher(
    complete: Callable[[bytes], bool], answer: bytes = b""
) -> AsyncIterator[tuple[int, Callable[[], Awaitable[bytes]]]]:
    """A loopback port, and a function returning what the next client sent until
    `complete(bytes)` held (or it hung up, or 5 s passed); `answer` goes back before the
    listener hangs up."""
    send, receive = anyio.create_memory_object_stream[bytes](4)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        wire = b""
        async with stream:
            with anyio.move_on_after(5):
                while not complete(wire):
                    try:
                        wire += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
                if answer:
                    await stream.send(answer)
        await send.send(wire)

    async def next_bytes() -> bytes:
        with anyio.fail_after(10):
            return await receive.receive()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_address)[1])
    async with listener, send, receive, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield port, next_bytes
        tg.cancel_scope.cancel()
