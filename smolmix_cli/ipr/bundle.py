"""MultiIpPacketCodec: IP packets as `len:u16 BE || packet`, repeated (spec §5.6).

The published client sends one packet per DataRequest; upstream's exit bundles its
replies into buffers of at most 1500 bytes, flushed every `buffer_timeout`. There is
no count and no terminator, so a bundle may hold any number of packets either way
(upstream's IPR decodes every packet of a DataRequest). Upstream's decoder silently
ignores a torn tail; ours reports it as `MalformedBundle` (the caller decides whether
to keep the whole packets). `FragmentPacker` sizes bundles to whole Sphinx packets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from smolmix_cli.ipr.bincode import encode_varint
from smolmix_cli.ipr.errors import MalformedBundle

LENGTH_PREFIX_SIZE = 2
MAX_PACKET_LEN = 0xFFFF
MAX_BUNDLE_SIZE = 1500  # the exit's MAX_PACKET_SIZE
BUFFER_TIMEOUT_S = 0.020
SMALLEST_ITEM = LENGTH_PREFIX_SIZE + 20  # a bare IPv4 header, prefixed
BULK_PACKET = 1000
"""IP packets this large are taken for bulk data segments (not ACKs, handshakes or
requests): both ends hold a partial bundle only for those, since more follow."""


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


def data_message_fragments(fragments: Callable[[int], int], head: int) -> Callable[[int], int]:
    """The Sphinx packets a message carrying an n-byte bundle takes, for a `FragmentPacker`:
    `head` envelope bytes, the bundle's varint length, the bundle; `fragments` prices
    a payload of that many bytes (the mixnet layer's rule, passed in)."""

    def cost(bundle_len: int) -> int:
        return fragments(head + len(encode_varint(bundle_len)) + bundle_len)

    return cost


class FragmentPacker:
    """Bundles sized to whole Sphinx packets: packets in, bundles out.

    One packet per message puts a 1,420-byte packet in a 1,604-byte fragment (1.13
    fragments per fragment's worth of data); upstream's 1,500-byte bundles never hold
    two such packets either. A bundle crossing fragment boundaries does better: 9 of
    them fit 8 reply fragments, 10 fit 9 request fragments (a request's envelope is
    larger). `fragments(n)` is what a message carrying an n-byte bundle costs, envelope
    included (the caller's mixnet layer knows it).

    A bundle is emitted once the next packet would take it past `max_fragments`, or
    once no packet fits any more. `flush` emits a partial one: as one bundle only where
    that costs fewer fragments than its packets one per message, else one per message,
    so a lost fragment holds back one packet, not several, where bundling saves nothing.
    """

    __slots__ = ("_items", "_size", "fragments", "max_fragments")

    def __init__(self, fragments: Callable[[int], int], max_fragments: int) -> None:
        if max_fragments < 1:
            raise ValueError("max_fragments must be at least 1")
        self.fragments = fragments
        self.max_fragments = max_fragments
        self._items: list[bytes] = []
        self._size = 0

    @property
    def buffered(self) -> int:
        """Packets held for the bundle being filled."""
        return len(self._items)

    @property
    def size(self) -> int:
        """Bytes held (length prefixes included)."""
        return self._size

    def push(self, packet: bytes) -> list[bytes]:
        item = _prefixed(bytes(packet))
        out: list[bytes] = []
        if self._items and self.fragments(self._size + len(item)) > self.max_fragments:
            out = self.flush()
        self._items.append(item)
        self._size += len(item)
        if self.fragments(self._size + SMALLEST_ITEM) > self.max_fragments:
            out += self.flush()
        return out

    def flush(self) -> list[bytes]:
        items, size = self._items, self._size
        if not items:
            return []
        self._items, self._size = [], 0
        if len(items) == 1:
            return items
        if self.fragments(size) < sum(self.fragments(len(item)) for item in items):
            return [b"".join(items)]
        return items


class LossGate:
    """Whether bundles may cross fragment boundaries: a lost fragment holds back its whole
    bundle, so only while nearly every fragment arrives.

    The share is taken over fragments whose fate is known (acked, or resent or given up
    for want of an ack), per `sample` of them, smoothed. Against fragments sent it read a growing
    flight as loss: a transfer's first samples fell below half at no loss."""

    __slots__ = ("_mark", "sample", "share", "threshold")

    def __init__(self, threshold: float = 0.9, sample: int = 64) -> None:
        self.threshold = threshold
        self.sample = sample
        self.share = 1.0
        self._mark: tuple[int, int] | None = None

    def observe(self, acked: int, resent: int) -> None:
        """Totals so far of acks received and of fragments unacked in time."""
        mark = self._mark
        if mark is None or acked < mark[0] or resent < mark[1]:
            self._mark = (acked, resent)
            return
        new_acks, new_resends = acked - mark[0], resent - mark[1]
        if new_acks + new_resends < self.sample:
            return
        self.share = 0.75 * self.share + 0.25 * new_acks / (new_acks + new_resends)
        self._mark = (acked, resent)

    @property
    def open(self) -> bool:
        return self.share >= self.threshold
