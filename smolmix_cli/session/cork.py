"""The TLS 1.3 client Finished held back until the first request, so both leave as one segment.

A TLS 1.3 client's handshake ends with its own flight (Finished), which the server
needs before it answers the request written right after it. Sent apart, the two are
two TCP segments, so two Nym messages with independent mix delays: the request's
answer waits for the slower of the two, about one extra mixnet round trip at 50 ms
per hop (bench/roundtrips.py). `Cork` sits between the TLS layer and the tunnel's TCP
stream: while the handshake runs, what TLS writes leaves as soon as TLS waits to read
(so every flight that expects an answer goes at once); the last flight, written with
nothing left to read for, waits for the next write (the request, then one segment)
or for `release` (the session calls it when no request comes in time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio.abc

HOLD_FOR_REQUEST = 0.5
"""Seconds the session waits for a command's first bytes before sending a held flight
alone: a command writes its request at once, so this only bounds the odd one that
does not (it then costs what an uncorked connection costs)."""


class Cork(anyio.abc.ByteStream):
    """Writes are held until a read (during the handshake), the next write, or `release`."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner
        self._held = b""
        self._handshaking = True

    @property
    def holding(self) -> int:
        """Bytes written but not yet sent."""
        return len(self._held)

    def handshake_done(self) -> None:
        """From now on a read does not send what is held: the session's reader runs beside
        the request's writer, and the request is what the held flight waits for."""
        self._handshaking = False

    async def release(self) -> None:
        held, self._held = self._held, b""
        if held:
            await self.inner.send(held)

    async def send(self, item: bytes) -> None:
        if self._held:
            item, self._held = self._held + item, b""
            await self.inner.send(item)
        elif self._handshaking:
            self._held = bytes(item)
        else:
            await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._handshaking:
            await self.release()  # a flight that waits for an answer goes now
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.release()
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes
