"""UDP (RFC 768) codec and sans-io UDP socket state with a bounded receive queue."""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from .checksum import internet_checksum
from .errors import NetstackError
from .ip import Endpoint, IPAddress, PacketError

_HEAD = struct.Struct("!HHHH")

# WASM stream.rs: 16 metadata slots, 65 535 payload bytes per UDP socket (spec §2.6)
DEFAULT_QUEUE_DATAGRAMS = 16
DEFAULT_QUEUE_BYTES = 65535


class DatagramTooLarge(NetstackError):
    """A datagram does not fit the interface MTU (the stack never fragments on send)."""


def decode_udp(data: bytes, pseudo: bytes) -> tuple[int, int, bytes]:
    """(src port, dst port, payload). A zero checksum is 'none' on IPv4, invalid on IPv6."""
    if len(data) < 8:
        raise PacketError("truncated", "UDP header")
    sport, dport, length, csum = _HEAD.unpack_from(data, 0)
    if length < 8 or length > len(data):
        raise PacketError("bad_length", "UDP length")
    data = data[:length]
    if csum == 0:
        if len(pseudo) != 12:
            raise PacketError("bad_checksum", "zero UDP checksum over IPv6")
    elif int.from_bytes(pseudo + data + (b"\x00" if length & 1 else b""), "big") % 0xFFFF:
        raise PacketError("bad_checksum", "UDP")
    if dport == 0:
        raise PacketError("bad_port", "UDP destination port 0")
    return sport, dport, data[8:]


def encode_udp(src_port: int, dst_port: int, payload: bytes, pseudo: bytes) -> bytes:
    """`pseudo` must already carry the UDP length (8 + len(payload))."""
    head = _HEAD.pack(src_port, dst_port, 8 + len(payload), 0)
    csum = internet_checksum(pseudo, head, payload) or 0xFFFF
    return head[:6] + csum.to_bytes(2, "big") + payload


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
