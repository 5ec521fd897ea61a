"""The sender's scoreboard: every segment sent and not yet cumulatively acknowledged.

Each record is SACKed (RFC 2018), judged lost, or in flight, and `pipe` counts
the bytes in flight (RFC 6675). `xmit_q` holds the records in transmission
order, a resent record queued again, which is the order in which RACK looks
for losses; `lost_q` holds the records waiting to be resent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import TYPE_CHECKING

from smolmix_cli.netstack.socket.tcp.seq import unwrap

if TYPE_CHECKING:
    from smolmix_cli.netstack.socket.tcp.rack import RackTlp


class SentSegment:
    """One transmitted segment in the retransmission queue (unwrapped seqs)."""

    __slots__ = (
        "delivered",
        "end",
        "fin",
        "first_xmit",
        "in_flight",
        "lost",
        "rack_retx",
        "retrans",
        "sacked",
        "start",
        "xmit_ts",
    )

    def __init__(self, start: int, end: int, xmit_ts: float, fin: bool) -> None:
        self.start = start
        self.end = end
        self.xmit_ts = xmit_ts
        self.first_xmit = xmit_ts
        self.rack_retx = False  # last retransmission came from RACK, not RTO/TLP
        self.fin = fin
        self.sacked = False
        self.lost = False
        self.in_flight = True
        self.retrans = 0
        self.delivered = False


def _sent_start(s: SentSegment) -> int:
    return s.start


def _sent_xmit(s: SentSegment) -> float:
    return s.xmit_ts


class Scoreboard:
    """The records of what is outstanding, and the bytes of it in flight."""

    def __init__(self) -> None:
        self.sent: list[SentSegment] = []
        self.xmit_q: deque[tuple[float, SentSegment]] = deque()  # in transmission order
        self.lost_q: deque[SentSegment] = deque()
        self.pipe = 0  # bytes believed in the network (RFC 6675)
        self.sack_seen: dict[int, int] = {}  # SACK block left edge -> right edge taken

    def add(self, start: int, end: int, now: float, fin: bool) -> None:
        """A new segment [start, end) left now."""
        rec = SentSegment(start, end, now, fin)
        self.sent.append(rec)
        self.xmit_q.append((now, rec))
        self.pipe += end - start

    def resend(self, rec: SentSegment, now: float, rack_retx: bool) -> None:
        """`rec` is retransmitted now: back in flight, queued again for RACK."""
        if rec.lost:
            rec.lost = False
        if not rec.in_flight:
            rec.in_flight = True
            self.pipe += rec.end - rec.start
        rec.retrans += 1
        rec.rack_retx = rack_retx
        rec.xmit_ts = now
        self.xmit_q.append((now, rec))

    def mark_lost(self, rec: SentSegment) -> None:
        rec.lost = True
        if rec.in_flight:
            rec.in_flight = False
            self.pipe -= rec.end - rec.start
        self.lost_q.append(rec)

    def sack(
        self,
        blocks: tuple[tuple[int, int], ...],
        skip: int,
        snd_una: int,
        snd_nxt: int,
        now: float,
        rack: RackTlp,
    ) -> None:
        """Mark what the SACK blocks (wire values) cover, from block `skip` on.

        Every newly SACKed record is a delivery RACK learns from. `sack_seen`
        remembers how far each block was already walked, so a block repeated
        in every ACK of a long reordering episode costs nothing after the first.
        """
        sent = self.sent
        seen = self.sack_seen
        for left32, right32 in blocks:
            if skip:
                skip -= 1
                continue
            left = unwrap(snd_una, left32)
            right = unwrap(snd_una, right32)
            if right <= left or right > snd_nxt or right <= snd_una:
                continue
            start_from = seen.get(left, left)
            if start_from >= right:
                continue
            seen[left] = right
            i = bisect_left(sent, start_from, key=_sent_start)
            if i and sent[i - 1].end > start_from:
                i -= 1
            n = len(sent)
            while i < n:
                rec = sent[i]
                if rec.start >= right:
                    break
                if not rec.sacked and rec.start >= left and rec.end <= right:
                    rec.sacked = True
                    if rec.in_flight:
                        rec.in_flight = False
                        self.pipe -= rec.end - rec.start
                    rec.lost = False
                    rack.update(rec, now)
                i += 1
        if len(seen) > 64:
            self.sack_seen = {k: v for k, v in seen.items() if v > snd_una}

    def split(self, mss: int) -> None:
        """The path MTU dropped: cut unSACKed records larger than `mss` into lost pieces.

        The path dropped (or will drop) them, so they are resent at once without a
        congestion response, as Linux's tcp_simple_retransmit does.
        """
        if not any(r.end - r.start - r.fin > mss and not r.sacked for r in self.sent):
            return
        pieces: list[SentSegment] = []
        for rec in self.sent:
            data_len = rec.end - rec.start - (1 if rec.fin else 0)
            if rec.sacked or data_len <= mss:
                pieces.append(rec)
                continue
            if rec.in_flight:
                rec.in_flight = False
                self.pipe -= rec.end - rec.start
            end, fin = rec.end, rec.fin
            start = rec.start
            first = True
            while start < end:
                stop = min(start + mss, end - (1 if fin else 0))
                last = stop >= end - (1 if fin else 0)
                if last:
                    stop = end
                piece = rec if first else SentSegment(start, stop, rec.xmit_ts, False)
                piece.start, piece.end, piece.fin = start, stop, fin and last
                piece.first_xmit, piece.retrans = rec.first_xmit, rec.retrans
                piece.lost = True
                piece.in_flight = False
                pieces.append(piece)
                first = False
                start = stop
        self.sent = pieces
        self.lost_q = deque(r for r in pieces if r.lost and not r.sacked)

    def restore_lost(self) -> None:
        """A recovery proved spurious: what it judged lost is in flight again."""
        if not self.lost_q:
            return
        for rec in self.lost_q:
            if rec.lost and not rec.delivered and not rec.sacked:
                rec.lost = False
                rec.in_flight = True
                self.pipe += rec.end - rec.start
        self.lost_q.clear()
        live = [r for r in self.sent if r.in_flight and not r.sacked and not r.delivered]
        live.sort(key=_sent_xmit)
        self.xmit_q = deque((r.xmit_ts, r) for r in live)

    def clear(self) -> None:
        self.sent.clear()
        self.xmit_q.clear()
        self.lost_q.clear()
        self.pipe = 0
