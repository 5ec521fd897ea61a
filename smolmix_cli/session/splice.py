"""Joining two byte streams: what an attached TCP stream costs in the daemon (one copy)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import anyio
import anyio.abc

from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.session import protocol as proto

SPLICE_CHUNK = 65536


@dataclass
class Counters:
    bytes_up: int = 0
    bytes_down: int = 0
    streams_open: int = 0
    streams_total: int = 0
    udp_exchanges: int = 0
    resolves: int = 0
    requests: int = 0
    refused_peers: int = 0
    peer_failures: int = 0  # connections that ended in an error we contained


async def splice(
    local: anyio.abc.ByteStream,
    remote: anyio.abc.ByteStream,
    first: bytes,
    counters: Counters | None = None,
    *,
    end_mark: bool = False,
) -> tuple[int, int]:
    """Copy both ways until both directions ended; EOF is passed on as a half-close.

    Returns (bytes local->remote, bytes remote->local). One copy per chunk: the
    bytes a receive returns are the bytes the send takes. With `end_mark` the way
    back is framed (protocol.data_frame) and ends with an end frame that tells the
    remote's FIN from its failure.
    """
    moved = [0, 0]
    if counters is not None:
        counters.streams_open += 1
        counters.streams_total += 1

    async def pump(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream, index: int) -> None:
        try:
            while True:
                try:
                    chunk = await src.receive(SPLICE_CHUNK)
                except anyio.EndOfStream:
                    with contextlib.suppress(Exception):
                        await dst.send_eof()
                    return
                await dst.send(chunk)
                moved[index] += len(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            tg.cancel_scope.cancel()  # one side broke: the stream is over both ways

    async def pump_marked(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
        try:
            while True:
                try:
                    chunk = await src.receive(SPLICE_CHUNK)
                except anyio.EndOfStream:
                    await dst.send(proto.end_frame())
                    with contextlib.suppress(Exception):
                        await dst.send_eof()
                    return
                except Exception as exc:  # the destination reset, the tunnel broke
                    with contextlib.suppress(Exception):
                        await dst.send(proto.end_frame(stream_failure(exc)))
                    tg.cancel_scope.cancel()
                    return
                await dst.send(proto.data_frame(chunk))
                moved[1] += len(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            tg.cancel_scope.cancel()

    try:
        if first:
            await remote.send(first)
            moved[0] += len(first)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, local, remote, 0)
            if end_mark:
                tg.start_soon(pump_marked, remote, local)
            else:
                tg.start_soon(pump, remote, local, 1)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        if counters is not None:
            counters.streams_open -= 1
    return moved[0], moved[1]
