"""Reading h11 events off a stream, for the testnet's small HTTP servers.

The directory and the demo origin both serve plain h11 connections; a peer that
goes away reads as end of input, which h11 turns into `ConnectionClosed`.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import h11

_READ_SIZE = 65536


async def next_event(conn: h11.Connection, stream: anyio.abc.ByteStream) -> Any:
    """h11's next event other than NEED_DATA, reading from `stream` as it needs."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            data = b""
        conn.receive_data(data)
