"""The packet device interface: where a stack's IP packets enter and leave.

A device moves whole IP packets; the anyio shell (`netstack.aio`) drives a
stack with one. The kinds live beside this module: `memory` (in-process links),
`tun` (a Linux TUN interface), `datagram` (a packet socket to another process)
and `callback` (outbound only, for stacks fed from outside).
"""

from __future__ import annotations

from typing import Protocol

MAX_PACKET = 65535


class PacketDevice(Protocol):
    async def receive(self) -> bytes:
        """The next packet; raises anyio.EndOfStream when the device is gone."""
        ...

    def receive_nowait(self) -> bytes | None:
        """A packet if one is ready now, else None (lets the shell batch work)."""
        ...

    def send_nowait(self, packet: bytes) -> bool:
        """Send (or drop) now; False when the device would block and the packet was not taken."""
        ...

    async def send(self, packet: bytes) -> None: ...

    async def aclose(self) -> None: ...
