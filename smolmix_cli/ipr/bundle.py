"""MultiIpPacketCodec: IP packets as `len:u16 BE || packet`, repeated (spec §5.6).

The client sends one packet per DataRequest; the exit bundles its replies into
buffers of at most 1500 bytes, flushed every `buffer_timeout`. There is no count
and no terminator. Upstream's decoder silently ignores a torn tail; ours reports
it as `MalformedBundle` (the caller decides whether to keep the whole packets).
"""

from __future__ import annotations

from collections.abc import Iterable

from smolmix_cli.ipr.errors import MalformedBundle

LENGTH_PREFIX_SIZE = 2
MAX_PACKET_LEN = 0xFFFF
MAX_BUNDLE_SIZE = 1500  # the exit's MAX_PACKET_SIZE
BUFFER_TIMEOUT_S = 0.020


def _prefixed(packet: bytes) -> bytes:
    if len(packet) > MAX_PACKET_LEN:
        raise MalformedBundle(f"a {len(packet)}-byte packet does not fit a u16 length prefix")
    return len(packet).to_bytes(LENGTH_PREFIX_SIZE, "big") + packet


def encode_bundle(packets: Iterable[bytes]) -> bytes:
    """All packets in one bundle, no size limit (what a client may send in one DataRequest)."""
    return b"".join(_prefixed(bytes(p)) for p in packets)


class BundleDecoder:
    """Incremental decoder: feed bytes, get every packet completed so far."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    @property
    def pending(self) -> int:
        """Bytes held back because they do not yet form a whole packet."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._pending + bytes(data)
        packets: list[bytes] = []
        pos = 0
        while len(buffer) - pos >= LENGTH_PREFIX_SIZE:
            size = int.from_bytes(buffer[pos : pos + LENGTH_PREFIX_SIZE], "big")
            end = pos + LENGTH_PREFIX_SIZE + size
            if end > len(buffer):
                break
            packets.append(buffer[pos + LENGTH_PREFIX_SIZE : end])
            pos = end
        self._pending = buffer[pos:]
        return packets

    def finish(self) -> None:
        """The input must have ended on a packet boundary."""
        if self._pending:
            raise MalformedBundle(
                f"bundle ends inside a length prefix or packet ({len(self._pending)} bytes left)"
            )


def decode_bundle(data: bytes) -> list[bytes]:
    """Every packet of one complete bundle; a torn tail raises `MalformedBundle`."""
    decoder = BundleDecoder()
    packets = decoder.feed(data)
    decoder.finish()
    return packets


class BundleEncoder:
    """The exit's bundler: packets in, bundles (each at most `max_size` unless a packet is larger) out.

    A packet goes into the current buffer; if that would push the buffer past
    `max_size`, the buffer is emitted first. A packet too large for any buffer is
    emitted on its own at once. `flush` emits whatever is buffered (the caller runs
    it every `buffer_timeout`).
    """

    __slots__ = ("_buffer", "max_size")

    def __init__(self, max_size: int = MAX_BUNDLE_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def push(self, packet: bytes) -> list[bytes]:
        item = _prefixed(bytes(packet))
        out: list[bytes] = []
        if self._buffer and len(self._buffer) + len(item) > self.max_size:
            out.append(bytes(self._buffer))
            self._buffer.clear()
        if not self._buffer and len(item) > self.max_size:
            out.append(item)
        else:
            self._buffer += item
        return out

    def flush(self) -> bytes | None:
        if not self._buffer:
            return None
        bundle = bytes(self._buffer)
        self._buffer.clear()
        return bundle
