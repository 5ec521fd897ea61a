"""An outbound-only device for stacks fed from outside (`NetStack.receive_packet`)."""

from __future__ import annotations

from collections.abc import Callable

import anyio


class CallbackDevice:
    """A device whose sent packets go straight to a callback and that never receives.

    For stacks fed from outside (`NetStack.receive_packet` called by whoever holds the
    far end, as the exit NAT and test clients do): only the outbound half is a device.
    """

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._closed = anyio.Event()

    async def receive(self) -> bytes:
        await self._closed.wait()
        raise anyio.EndOfStream

    def receive_nowait(self) -> bytes | None:
        return None

    def send_nowait(self, packet: bytes) -> bool:
        self._deliver(packet)
        return True

    async def send(self, packet: bytes) -> None:
        self._deliver(packet)

    async def aclose(self) -> None:
        self._closed.set()
