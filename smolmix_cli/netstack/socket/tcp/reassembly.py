"""Receive-side reassembly: out-of-order ranges and the SACK blocks they imply.

Sequence numbers here are *unwrapped* (plain Python ints that never wrap), so
ordering is ordinary integer comparison. The connection converts at its edge.
"""

from __future__ import annotations

from bisect import bisect_left


class _Range:
    """Contiguous received bytes [start, end) held as a list of chunks."""

    __slots__ = ("chunks", "end", "start")

    def __init__(self, start: int, end: int, chunks: list[bytes]) -> None:
        self.start = start
        self.end = end
        self.chunks = chunks


def _range_end(r: _Range) -> int:
    return r.end


class OutOfOrderQueue:
    """Data received beyond RCV.NXT, merged into disjoint sorted ranges.

    Memory is bounded by the caller, which only inserts bytes inside the
    advertised receive window.
    """

    __slots__ = ("_recent", "bytes", "ranges")

    def __init__(self) -> None:
        self.ranges: list[_Range] = []
        self.bytes = 0
        self._recent: list[int] = []  # starts of recently received segments, newest last

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def insert(self, start: int, data: bytes) -> bool:
        """Add a segment; returns False when every byte was already held (a duplicate)."""
        end = start + len(data)
        ranges = self.ranges
        i = bisect_left(ranges, start, key=_range_end)  # first range with end >= start
        j = i
        while j < len(ranges) and ranges[j].start <= end:
            j += 1
        recent = self._recent
        if start in recent:
            recent.remove(start)
        recent.append(start)
        if len(recent) > 4:
            del recent[0]
        if i == j:
            ranges.insert(i, _Range(start, end, [data]))
            self.bytes += len(data)
            return True
        first, last = ranges[i], ranges[j - 1]
        if i + 1 == j and first.start <= start and end <= first.end:
            return False
        if i + 1 == j and first.start <= start:
            # The common reordering case: the segment extends one range at its end.
            tail = data[first.end - start :]
            first.chunks.append(tail)
            first.end = end
            self.bytes += len(tail)
            return True
        chunks: list[bytes] = []
        pos = min(start, first.start)
        view = memoryview(data)
        added = 0
        for r in ranges[i:j]:
            if pos < r.start:
                piece = bytes(view[pos - start : r.start - start])
                chunks.append(piece)
                added += len(piece)
            chunks.extend(r.chunks)
            pos = r.end
        if end > pos:
            piece = bytes(view[pos - start :])
            chunks.append(piece)
            added += len(piece)
        new = _Range(min(start, first.start), max(end, last.end), chunks)
        ranges[i:j] = [new]
        self.bytes += added
        return added > 0

    def pop_ready(self, rcv_nxt: int) -> tuple[int, list[bytes]]:
        """Remove ranges that now start at or below `rcv_nxt`; return new RCV.NXT and bytes."""
        out: list[bytes] = []
        ranges = self.ranges
        while ranges and ranges[0].start <= rcv_nxt:
            r = ranges.pop(0)
            self.bytes -= r.end - r.start
            if r.end > rcv_nxt:
                data = b"".join(r.chunks)
                out.append(data[rcv_nxt - r.start :])
                rcv_nxt = r.end
        return rcv_nxt, out

    def sack_blocks(self, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` blocks, the one holding the newest segment first (RFC 2018 §4)."""
        ranges = self.ranges
        blocks: list[tuple[int, int]] = []
        for seq in reversed(self._recent):
            i = bisect_left(ranges, seq + 1, key=_range_end)
            if i < len(ranges) and ranges[i].start <= seq:
                block = (ranges[i].start, ranges[i].end)
                if block not in blocks:
                    blocks.append(block)
                    if len(blocks) >= limit:
                        return blocks
        for r in ranges:
            block = (r.start, r.end)
            if block not in blocks:
                blocks.append(block)
                if len(blocks) >= limit:
                    break
        return blocks

    def clear(self) -> None:
        self.ranges.clear()
        self.bytes = 0
        self._recent.clear()
