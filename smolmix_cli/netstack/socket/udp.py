"""Sans-io UDP socket state: one bound port with a bounded receive queue."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from smolmix_cli.netstack.errors import NetstackError
from smolmix_cli.netstack.wire.ip import Endpoint, IPAddress

# WASM stream.rs: 16 metadata slots, 65 535 payload bytes per UDP socket (spec §2.6)
DEFAULT_QUEUE_DATAGRAMS = 16
DEFAULT_QUEUE_BYTES = 65535


class DatagramTooLarge(NetstackError):
    """A datagram does not fit the interface MTU (the stack never fragments on send)."""


@dataclass(slots=True)
class Datagram:
    data: bytes
    src: Endpoint  # the sender
    dst: Endpoint  # where it was addressed (differs from ours in any-destination mode)


class UdpSocket:
    """Sans-io state of one bound UDP port.

    `address` None means every address of the stack; `any_destination` makes
    the socket receive datagrams to any address and port (the exit's NAT).
    The queue is bounded by datagram count and bytes; overflow is dropped and
    counted in `dropped`, like a kernel socket buffer.
    """

    def __init__(
        self,
        address: IPAddress | None,
        port: int,
        any_destination: bool = False,
        max_datagrams: int = DEFAULT_QUEUE_DATAGRAMS,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.address = address
        self.port = port
        self.any_destination = any_destination
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.queue: deque[Datagram] = deque()
        self.queued_bytes = 0
        self.dropped = 0
        self.closed = False

    def deliver(self, dgram: Datagram) -> bool:
        """Queue a received datagram; False (and counted) when the queue is full."""
        size = len(dgram.data)
        if len(self.queue) >= self.max_datagrams or self.queued_bytes + size > self.max_bytes:
            self.dropped += 1
            return False
        self.queue.append(dgram)
        self.queued_bytes += size
        return True

    def recv(self) -> Datagram | None:
        if not self.queue:
            return None
        dgram = self.queue.popleft()
        self.queued_bytes -= len(dgram.data)
        return dgram

    @property
    def readable(self) -> int:
        return len(self.queue)
