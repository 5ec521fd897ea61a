"""IP fragment reassembly: interface state with bounded memory and a timeout."""

from __future__ import annotations

from dataclasses import dataclass

from smolmix_cli.netstack.wire.ip import IpPacket, PacketError, skip_ipv6_extensions


@dataclass(slots=True)
class _Pending:
    started: float
    pieces: dict[int, bytes]
    size: int  # bytes buffered
    total: int | None  # known once the last fragment arrived
    first: IpPacket | None  # the offset-0 fragment (carries the header we keep)


class Reassembler:
    """Fragment reassembly with bounded memory and a timeout (RFC 791, RFC 8200 §4.5).

    Overlapping fragments discard the whole datagram (RFC 5722 for IPv6; done for
    IPv4 too since overlaps are only ever an attack or a bug). Exact duplicates
    are ignored.
    """

    def __init__(
        self,
        max_datagrams: int = 64,
        max_total_bytes: int = 1 << 20,
        timeout: float = 30.0,
    ) -> None:
        self.max_datagrams = max_datagrams
        self.max_total_bytes = max_total_bytes
        self.timeout = timeout
        self._pending: dict[tuple[object, ...], _Pending] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def add(self, packet: IpPacket, now: float) -> IpPacket | None:
        """Take one fragment; returns the reassembled packet when it completes.

        Raises `PacketError` (the datagram so far is discarded where it is the cause).
        """
        assert packet.frag is not None
        ident, offset, more = packet.frag
        data = packet.payload
        if packet.version == 4:
            key: tuple[object, ...] = (4, packet.src, packet.dst, packet.protocol, ident)
        else:
            key = (6, packet.src, packet.dst, ident)
        if more and (len(data) == 0 or len(data) % 8):
            self._drop(key)
            raise PacketError("fragment_bad_length", "non-final fragment not a multiple of 8")
        end = offset + len(data)
        if end > 65535:
            self._drop(key)
            raise PacketError("fragment_too_big", "reassembled size over 65535")
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_datagrams:
                self._evict_oldest()
            entry = _Pending(now, {}, 0, None, None)
            self._pending[key] = entry
        if offset in entry.pieces and entry.pieces[offset] == data:
            return None  # exact duplicate
        for start, piece in entry.pieces.items():
            if start < end and offset < start + len(piece):
                self._drop(key)
                raise PacketError("fragment_overlap")
        if not more:
            if entry.total is not None and entry.total != end:
                self._drop(key)
                raise PacketError("fragment_bad_length", "two different last fragments")
            entry.total = end
        if entry.total is not None and end > entry.total:
            self._drop(key)
            raise PacketError("fragment_bad_length", "fragment beyond the last one")
        entry.pieces[offset] = data
        entry.size += len(data)
        self._bytes += len(data)
        if offset == 0:
            entry.first = packet
        while self._bytes > self.max_total_bytes and self._pending:
            self._evict_oldest()
        if key not in self._pending:
            raise PacketError("fragment_evicted", "reassembly memory exhausted")
        if entry.total is None or entry.size != entry.total or entry.first is None:
            return None
        del self._pending[key]
        self._bytes -= entry.size
        payload = b"".join(entry.pieces[k] for k in sorted(entry.pieces))
        first = entry.first
        if first.version == 4:
            return IpPacket(4, first.src, first.dst, first.protocol, payload, first.ttl, first.raw)
        nh, off, frag = skip_ipv6_extensions(payload, 0, len(payload), first.frag_next, first=False)
        if frag is not None:  # pragma: no cover - skip_ipv6_extensions raises instead
            raise PacketError("bad_ext_header", "nested fragment header")
        return IpPacket(6, first.src, first.dst, nh, payload[off:], first.ttl, first.raw)

    def _drop(self, key: tuple[object, ...]) -> None:
        entry = self._pending.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _evict_oldest(self) -> None:
        key = min(self._pending, key=lambda k: self._pending[k].started)
        self._drop(key)

    def poll_deadline(self) -> float | None:
        if not self._pending:
            return None
        return min(e.started for e in self._pending.values()) + self.timeout

    def expire(self, now: float) -> int:
        """Forget datagrams older than the timeout; returns how many were dropped."""
        old = [k for k, e in self._pending.items() if now >= e.started + self.timeout]
        for key in old:
            self._drop(key)
        return len(old)
