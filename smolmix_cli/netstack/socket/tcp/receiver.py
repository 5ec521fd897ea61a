"""The receive half of a TCP connection: RCV.NXT, the window we offer, and when to ACK.

In-order data goes to the receive buffer, the rest to the out-of-order queue
(reported in SACK blocks, duplicates in D-SACK blocks, RFC 2018 and 2883).
Every segment the connection sends carries the receive half's state (ACK
number, window, SACK blocks, the echoed timestamp), so `Receiver.segment`
builds them all.

Deliberate departures, each measured with bench/tcp_sim.py on a reordering
link (exponential per-packet delay):
- The receiver acks immediately for 16 segments at start and after a hole is
  filled (Linux's quickack), so coalesced ACKs and delayed ACKs do not stall
  a small window.
- Segments taken in one batch (the stack polls once per received batch) share
  ACKs: the first leaves once two segments are unacked, the rest of the batch
  gets one more at the poll, never more than 8 segments per ACK (RFC 5681 asks
  for every second segment; NIC receive coalescing gives kernels the same
  stretch ACKs). For SACK peers out-of-order segments of a batch likewise get
  one immediate duplicate ACK and one at the poll.
- With `TcpConfig.ack_every` (the tunnel's setting) the receiver acks every
  N-th data segment, in order or not, or after the delayed-ACK time: on the
  mixnet each ACK costs a message, reordering makes nearly every segment
  out-of-order or hole-filling (so the LAN policy acked each one), and the
  sender's RACK needs the SACK news within a reordering window, not at once.
  A new hole and a closed one are still acked at the poll (recovery waits on
  them). bench/tcp_sim.py's mixnet-like cases: 31-37 % fewer ACKs, the same
  retransmissions, RTOs and median completion time.
- With `TcpConfig.pingpong` (Linux's interactive mode, off by default) a receiver that
  answers data within a delayed-ACK time stops acking in-order data at once, so the
  ACK rides on the answer: the local exit's NAT, standing in for an origin's kernel,
  otherwise sent every request's ACK alone just before the response (a reply message
  of its own, and the exit's 20 ms bundle timer then held the response behind it).
- A delayed ACK waits at most SRTT (RFC 5681's 500 ms and the 40 ms default
  both exceed 2*SRTT on a LAN, where the peer's tail-loss probe would fire first).
"""

from __future__ import annotations

from typing import Final

from smolmix_cli.netstack.socket.tcp.config import DEFAULT_MSS, TcpConfig, TcpStats
from smolmix_cli.netstack.socket.tcp.reassembly import OutOfOrderQueue
from smolmix_cli.netstack.socket.tcp.rtt import G, RttEstimator
from smolmix_cli.netstack.socket.tcp.seq import MASK
from smolmix_cli.netstack.wire.tcp import ACK, TcpSegment

_STRETCH_ACK_SEGMENTS: Final = 8  # in-order segments one coalesced ACK may cover at most
_MAX_OOO_RANGES: Final = 256  # bounds per-segment work on hostile out-of-order patterns


def window_scale(recv_buffer: int) -> int:
    """The window scale (RFC 7323) that lets the window field cover the whole buffer."""
    s = 0
    while (recv_buffer >> s) > 0xFFFF and s < 14:
        s += 1
    return s


class Receiver:
    """Receive sequence space, buffers and ACK policy; stamps every outgoing segment.

    `ctrl` is the connection's list of segments built outside `poll_transmit`
    (immediate ACKs go there). `snd_mss` is the sender's MSS, the step by which
    the offered window grows (RFC 9293 §3.8.6.2.2); the connection keeps it current.
    """

    def __init__(
        self,
        config: TcpConfig,
        rtt: RttEstimator,
        stats: TcpStats,
        ctrl: list[TcpSegment],
        lport: int,
        rport: int,
        ts_offset: int,
    ) -> None:
        self.config = config
        self._rtt = rtt
        self._stats = stats
        self.ctrl = ctrl
        self._lport = lport
        self._rport = rport
        self.rcv_nxt = 0
        self.rcv_adv = 0  # right edge of the window we advertised
        self.rcv_wscale = 0
        self.rcv_space = config.recv_buffer
        self.buf = bytearray()
        self.ooo = OutOfOrderQueue()
        self.peer_fin_seq: int | None = None
        self.fin_received = False
        self.unacked = 0
        self.quickacks = config.quickack_segments  # ack each segment in slow start
        self.pingpong = False  # interactive: in-order data waits for the delayed ACK
        self.data_at = float("-inf")  # when in-order data last arrived (LAN policy)
        self.rcv_mss = DEFAULT_MSS
        self.snd_mss = min(config.mss, DEFAULT_MSS)
        self.ack_now = False
        self.sparse_every = config.ack_every
        self.segs_unacked = 0  # data segments since the last ACK (sparse policy)
        self.batch_acked = False  # an ACK already left during this batch of input
        self.last_ack_sent = 0
        self.dsack: tuple[int, int] | None = None
        self.delack_at: float | None = None
        self.ts_ok = False
        self.ts_recent = 0
        self.ts_offset = ts_offset
        self.sack_ok = False

    def ts_val(self, now: float) -> int:
        return (int(now * 1000) + self.ts_offset) & MASK

    def receive(self, seq: int, payload: bytes, now: float, snd_nxt: int) -> None:
        """Take the data of an acceptable segment (`seq` unwrapped); ACK as the policy says."""
        rcv_nxt = self.rcv_nxt
        end = seq + len(payload)
        right = self.rcv_adv
        if end > right:
            payload = payload[: max(0, right - seq)]
            end = seq + len(payload)
            self.ack_now = True
        if seq < rcv_nxt:
            if self.sack_ok:
                self.report_dsack(seq, min(end, rcv_nxt), now, snd_nxt)
            payload = payload[rcv_nxt - seq :]
            seq = rcv_nxt
            self.ack_now = True
        n = len(payload)
        if n <= 0:
            return
        if n > self.rcv_mss:
            self.rcv_mss = n
        if seq == rcv_nxt:
            self.buf += payload
            rcv_nxt += n
            if self.sparse_every:
                if self.ooo:
                    filled = self.ooo.ranges[0].start <= rcv_nxt
                    rcv_nxt, chunks = self.ooo.pop_ready(rcv_nxt)
                    for chunk in chunks:
                        self.buf += chunk
                    if filled:
                        self.ack_now = True  # a hole closed: the recovering sender waits
                self.rcv_nxt = rcv_nxt
                self.unacked += n
                self._sparse_ack(now, snd_nxt)
                return
            if self.ooo:
                rcv_nxt, chunks = self.ooo.pop_ready(rcv_nxt)
                for chunk in chunks:
                    self.buf += chunk
                self.ack_now = True  # a hole was filled: tell the sender at once
                # The sender is recovering with a small window; delayed ACKs would
                # stall it for a whole delayed-ACK timeout per round (cf. Linux quickack).
                self.quickacks = self.config.quickack_segments
                self.pingpong = False
            self.rcv_nxt = rcv_nxt
            self.unacked += n
            self.data_at = now
            if (self.quickacks > 0 and not self.pingpong) or self.ooo:
                # Recovering or starting: every segment is acked at once, even inside
                # a batch, so one lost ACK cannot stall a small window.
                if self.quickacks > 0:
                    self.quickacks -= 1
                self._ack_at_once(now, snd_nxt)
            elif self.unacked >= 2 * self.rcv_mss and not self.batch_acked:
                # The first ACK of a batch goes at once and the last at the poll, so
                # a batch of 3+ segments is never covered by a single (losable) ACK.
                self._ack_at_once(now, snd_nxt)
            elif self.unacked >= _STRETCH_ACK_SEGMENTS * self.rcv_mss:
                self._ack_at_once(now, snd_nxt)
            elif self.unacked >= 2 * self.rcv_mss or self.config.delayed_ack <= 0:
                # Acked at the next poll: the rest of a batch of segments taken
                # together (the stack polls once per batch) gets one cumulative ACK,
                # as with a NIC's receive coalescing.
                self.ack_now = True
            elif self.delack_at is None:
                self.delack_at = now + self._delack_delay()
        else:
            if len(self.ooo.ranges) >= _MAX_OOO_RANGES:
                pass  # a peer slicing the window into crumbs: drop, it will resend
            else:
                new_hole = not self.ooo
                self.pingpong = False  # as Linux: out-of-order data ends interactive mode
                if not self.ooo.insert(seq, payload) and self.sack_ok:
                    self.report_dsack(seq, end, now, snd_nxt)
                elif new_hole and self.sparse_every:
                    self.ack_now = True  # the sender's loss detection starts here
            if self.sparse_every and self.sack_ok:
                self._sparse_ack(now, snd_nxt)
            elif self.sack_ok and self.batch_acked:
                # The rest of the batch shares one ACK at the poll: its first SACK
                # block covers the newest range.
                self.ack_now = True
            elif self.sack_ok:
                self._ack_at_once(now, snd_nxt)
            else:
                # RFC 5681 §4.2: one immediate duplicate ACK per out-of-order
                # segment, even inside a batch: peers without SACK count them.
                self._ack_at_once(now, snd_nxt)

    def take_fin(self) -> None:
        """The peer's FIN is next in sequence: it takes one sequence number."""
        self.peer_fin_seq = None
        self.fin_received = True
        self.rcv_nxt += 1
        if self.rcv_adv < self.rcv_nxt:
            self.rcv_adv = self.rcv_nxt  # a FIN just past a full window
        self.ack_now = True

    def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of the in-order data (the caller checks there is some)."""
        buf = self.buf
        if max_bytes >= len(buf):
            out = bytes(buf)
            buf.clear()
        else:
            out = bytes(buf[:max_bytes])
            del buf[:max_bytes]
        return out

    def sent_data(self, now: float) -> None:
        """New data left: an answer within a delayed-ACK time of data makes the
        connection interactive (`TcpConfig.pingpong`)."""
        if now - self.data_at < self._delack_delay():
            self.pingpong = True

    def delack_fired(self) -> None:
        """The delayed ACK leaves alone: no answer came to carry it, so interactive
        mode ends (as Linux's delayed-ACK timer does)."""
        self.delack_at = None
        self.ack_now = True
        self.pingpong = False

    def _delack_delay(self) -> float:
        """Never hold an ACK longer than a round trip: past 2*SRTT the sender's
        tail-loss probe fires first (one wasted segment), and when our last ACK was
        lost the sender's lone probe would wait the whole delay."""
        delay = self.config.delayed_ack
        srtt = self._rtt.srtt
        if srtt is not None and srtt < delay:
            delay = max(srtt, G)
        return delay

    def _sparse_ack(self, now: float, snd_nxt: int) -> None:
        """One more data segment under the sparse policy (`TcpConfig.ack_every`)."""
        self.segs_unacked += 1
        if self.segs_unacked >= _STRETCH_ACK_SEGMENTS:
            self._ack_at_once(now, snd_nxt)  # a long batch: never one ACK for all of it
        elif self.segs_unacked >= self.sparse_every or self.config.delayed_ack <= 0:
            self.ack_now = True  # at the poll, once per batch
        elif self.delack_at is None:
            delay = self.config.delayed_ack
            srtt = self._rtt.srtt
            if srtt is not None:
                delay = min(max(delay, srtt * self.config.ack_delay_rtt), srtt)
            self.delack_at = now + delay

    def _ack_at_once(self, now: float, snd_nxt: int) -> None:
        self.ctrl.append(self.segment(snd_nxt, ACK, b"", now))
        self.batch_acked = True

    def report_dsack(self, left: int, right: int, now: float, snd_nxt: int) -> None:
        """One D-SACK block per ACK: flush a pending one first, so the sender's
        undo bookkeeping sees every duplicate."""
        if self.dsack is not None and self.dsack != (left, right):
            self.ctrl.append(self.segment(snd_nxt, ACK, b"", now))
        self.dsack = (left, right)

    def _window_to_advertise(self) -> int:
        """Raw window field; the right edge never shrinks, grows in SWS-safe steps."""
        s = self.rcv_wscale
        rcv_nxt = self.rcv_nxt
        cur = self.rcv_adv - rcv_nxt
        free = self.rcv_space - len(self.buf)
        thresh = min(self.rcv_space // 2, self.snd_mss)
        target = free if free >= cur + thresh else cur
        raw = (target + (1 << s) - 1) >> s
        if raw > 0xFFFF:
            raw = 0xFFFF
        edge = rcv_nxt + (raw << s)
        if edge > self.rcv_adv:
            self.rcv_adv = edge
        return raw

    def window_update_due(self) -> None:
        """After a read: ACK now if the window opened enough to be worth telling."""
        cur = self.rcv_adv - self.rcv_nxt
        free = self.rcv_space - len(self.buf)
        if 2 * cur <= self.rcv_space and free >= 2 * cur and free - cur >= self.snd_mss:
            self.ack_now = True

    def segment(self, seq: int, flags: int, payload: bytes, now: float) -> TcpSegment:
        """A segment to send, stamped with ACK, window, timestamps and SACK blocks."""
        seg = TcpSegment(
            self._lport,
            self._rport,
            seq & MASK,
            self.rcv_nxt & MASK,
            flags,
            self._window_to_advertise(),
            payload,
        )
        if self.ts_ok:
            seg.timestamps = (self.ts_val(now), self.ts_recent)
        if self.sack_ok and (self.ooo or self.dsack is not None):
            blocks: list[tuple[int, int]] = []
            if self.dsack is not None:
                blocks.append(self.dsack)
                self.dsack = None
            limit = 3 if self.ts_ok else 4
            blocks.extend(self.ooo.sack_blocks(limit - len(blocks)))
            seg.sack_blocks = tuple((a & MASK, b & MASK) for a, b in blocks)
        self.ack_now = False
        self.delack_at = None
        self.unacked = 0
        self.segs_unacked = 0
        self.last_ack_sent = self.rcv_nxt
        self._stats.segments_out += 1
        return seg
