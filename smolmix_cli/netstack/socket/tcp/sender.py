"""The send half of a TCP connection: SND.*, the send buffer, and getting it delivered.

The sender cuts the buffer into segments within both windows, processes the
ACK field of what arrives, and resends what is lost. Its parts: `scoreboard`
(what is outstanding, SACKed, in flight), `rack` (which of it is lost, and
tail loss probes), `congestion` (how much may be in flight, and undoing
spurious reductions) and `rtt` (the retransmission timeout).

Deliberate departure: Nagle follows Minshall's variant (as Linux), a runt
waits only while an earlier runt is unacknowledged.
"""

from __future__ import annotations

from smolmix_cli.netstack.socket.tcp.config import DEFAULT_MSS, TS_OPTION_LEN, TcpConfig, TcpStats
from smolmix_cli.netstack.socket.tcp.congestion import CongestionControl
from smolmix_cli.netstack.socket.tcp.rack import RackTlp
from smolmix_cli.netstack.socket.tcp.receiver import Receiver
from smolmix_cli.netstack.socket.tcp.rtt import RttEstimator
from smolmix_cli.netstack.socket.tcp.scoreboard import Scoreboard, SentSegment
from smolmix_cli.netstack.socket.tcp.seq import HALF, MASK, unwrap
from smolmix_cli.netstack.wire.tcp import ACK, FIN, PSH, SYN, TcpSegment


def _dsack_in_later(left: int, right: int, blocks: tuple[tuple[int, int], ...]) -> bool:
    """RFC 2883: a first block inside the second reports a duplicate."""
    if len(blocks) < 2:
        return False
    l2, r2 = blocks[1]
    return ((left - l2) & MASK) < HALF and ((r2 - right) & MASK) < HALF


class Sender:
    """Send sequence space, buffer and timers (RTO, persist), and the loss recovery parts.

    Segments are built by the receive half (`rx.segment`), which stamps them.
    """

    def __init__(
        self, config: TcpConfig, stats: TcpStats, rtt: RttEstimator, rx: Receiver, iss: int
    ) -> None:
        self.config = config
        self.stats = stats
        self.rtt = rtt
        self.rx = rx
        self.sb = Scoreboard()
        self.cc = CongestionControl(config)
        self.rack = RackTlp(config, rtt)
        self.snd_una = iss
        self.small_end = iss  # end of the last sub-MSS segment sent (Nagle/Minshall)
        self.snd_nxt = iss  # next new sequence number; never moves back
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = iss
        self.max_snd_wnd = 0
        self.snd_wscale = 0
        self.buf = bytearray()
        self.buf_start = iss + 1  # sequence number of buf[0]
        self.fin_pending = False  # close() called: FIN goes after the queued data
        self.fin_sent = False
        self.fin_seq = 0
        self.mss = min(config.mss, DEFAULT_MSS)
        self.mss_clamp = config.mss  # lowered by set_mss (path MTU)
        self.retries = 0
        self.rto_at: float | None = None
        self.persist_at: float | None = None
        self.persist_backoff = 0
        self.persist_unanswered = 0
        self.probe_pending = False  # a keepalive or zero-window probe is due

    # ------------------------------------------------------------------ buffer

    def space(self) -> int:
        return max(0, self.config.send_buffer - len(self.buf))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue what fits in the send buffer; returns the count (0 when full)."""
        room = self.config.send_buffer - len(self.buf)
        n = min(len(data), room)
        if n <= 0:
            return 0
        if n == len(data):
            self.buf += data
        else:
            self.buf += memoryview(data)[:n]
        return n

    def unsent(self) -> int:
        return self.buf_start + len(self.buf) - self.snd_nxt

    def use_mss(self, mss: int) -> None:
        self.mss = mss
        self.rx.snd_mss = mss

    def set_mss(self, mss: int) -> None:
        """Path MTU dropped: see `TcpConnection.set_mss`."""
        self.mss_clamp = min(self.mss_clamp, mss)  # applies at negotiation too
        new = max(mss - (TS_OPTION_LEN if self.rx.ts_ok else 0), 64)
        if new >= self.mss:
            return
        self.use_mss(new)
        cc = self.cc
        if cc.cwnd > 0:
            cc.cwnd = max(cc.cwnd, 2 * new)
        self.sb.split(new)

    # ------------------------------------------------------------------ timers

    def deadline(self) -> float | None:
        """The earliest of the send-side timers (RTO, RACK, TLP, persist)."""
        best = self.rto_at
        rack = self.rack
        t = rack.tlp_at
        if t is not None and (best is None or t < best):
            best = t
        t = rack.rack_at
        if t is not None and (best is None or t < best):
            best = t
        t = self.persist_at
        if t is not None and (best is None or t < best):
            best = t
        return best

    def stop_timers(self) -> None:
        rack = self.rack
        self.rto_at = None
        rack.tlp_at = None
        rack.rack_at = None
        self.persist_at = None
        rack.tlp_pending = False
        self.probe_pending = False

    def on_loss_timers(self, now: float) -> None:
        """Fire the RACK reordering timer and the tail loss probe when due."""
        rack = self.rack
        if rack.rack_at is not None and now >= rack.rack_at:
            rack.rack_at = None
            self._detect_loss(now)
            if rack.idle():  # (a method: _detect_loss may have re-armed rack_at)
                self.arm_tlp(now)
        if rack.tlp_at is not None and now >= rack.tlp_at:
            rack.tlp_at = None
            if self.snd_una < self.snd_nxt:
                rack.tlp_pending = True
                self.rto_at = now + self.rtt.current_rto()  # RFC 8985 §7.3

    def on_rto(self, now: float) -> bool:
        """The retransmission timer fired on data; False once retransmissions are exhausted."""
        if self.snd_una >= self.snd_nxt:
            return True
        self.retries += 1
        if self.retries > self.config.max_retransmits:
            return False
        self.stats.rto_events += 1
        self.rtt.backoff += 1
        self.cc.on_rto(now, self.snd_una, self.snd_nxt, self.mss)
        # RFC 8985 §6.3: on RTO every unSACKed segment is lost; resend oldest first.
        sb = self.sb
        sb.lost_q.clear()
        for rec in sb.sent:
            if not rec.sacked:
                sb.mark_lost(rec)
        rack = self.rack
        rack.tlp_at = None
        rack.tlp_pending = False
        rack.rack_at = None
        self.rto_at = now + self.rtt.current_rto()
        return True

    def on_persist(self) -> bool:
        """The persist timer fired; False once zero-window probes went unanswered too long."""
        self.persist_at = None
        self.persist_unanswered += 1
        if self.persist_unanswered > self.config.max_retransmits:
            return False
        self.probe_pending = True
        self.persist_backoff += 1
        return True

    def arm_tlp(self, now: float) -> None:
        self.rack.arm_tlp(now, self.snd_nxt - self.snd_una, self.mss, self.rto_at)

    # ------------------------------------------------------------------ ACK side

    def on_ack(self, seg: TcpSegment, seq: int, ack: int, now: float) -> None:
        """The ACK field (`ack` unwrapped, already checked against SND.UNA and SND.NXT)."""
        snd_una = self.snd_una
        self.persist_unanswered = 0
        rack = self.rack
        rack.fack_before = rack.fack
        cc = self.cc
        sb = self.sb
        sack_ok = self.rx.sack_ok
        newly = ack > snd_una
        if newly:
            cc.dupacks = 0
            self._on_new_ack(ack, seg, now)
            if cc.in_recovery and not sack_ok and sb.sent:
                # RFC 6582 NewReno: a partial ACK means the next segment was lost too.
                head = sb.sent[0]
                if not head.retrans and not head.lost:
                    sb.mark_lost(head)
        elif (
            not sack_ok
            and ack == snd_una
            and snd_una < self.snd_nxt
            and not seg.payload
            and not seg.flags & (SYN | FIN)
            and sb.sent
        ):
            # Without SACK only duplicate ACKs reveal loss (RFC 5681 §3.2).
            cc.dupacks += 1
            if cc.dupacks == 3 and not cc.in_recovery:
                head = sb.sent[0]
                if not head.lost:
                    sb.mark_lost(head)
                self._enter_recovery(now)
        if sack_ok and seg.sack_blocks:
            self._process_sack(seg.sack_blocks, ack, now)
        # Window update (RFC 9293 §3.10.7.4), guarded against old segments.
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            wnd = seg.window << self.snd_wscale
            self.snd_wnd = wnd
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if wnd > self.max_snd_wnd:
                self.max_snd_wnd = wnd
            if wnd > 0:
                self.persist_at = None
                self.persist_backoff = 0
        if sb.sent and (newly or seg.sack_blocks):
            self._detect_loss(now)
        if newly:
            if self.snd_una >= self.snd_nxt:
                self.rto_at = None
                rack.tlp_at = None
                rack.rack_at = None
            else:
                self.rto_at = now + self.rtt.current_rto()  # RFC 6298 (5.3)
                self.arm_tlp(now)

    def _on_new_ack(self, ack: int, seg: TcpSegment, now: float) -> None:
        sb = self.sb
        sent = sb.sent
        rack = self.rack
        k = 0
        n = len(sent)
        sample_rec: SentSegment | None = None
        pipe = sb.pipe
        while k < n:
            rec = sent[k]
            if rec.end > ack:
                if rec.start < ack:  # the peer acked part of a segment
                    if rec.in_flight:
                        pipe -= ack - rec.start
                    rec.start = ack
                break
            if rec.in_flight:
                pipe -= rec.end - rec.start
            was_sacked = rec.sacked
            rec.delivered = True  # before any undo below, which must skip it
            rec.lost = False
            rec.in_flight = False
            if not was_sacked:
                rack.update(rec, now)
                if rec.retrans and self.cc.undo_retrans > 0:
                    sb.pipe = pipe  # an undo re-adds segments to the pipe
                    self._eifel_check(rec, seg, now)
                    pipe = sb.pipe
                sample_rec = rec  # SACKed ones were delivered earlier: no RTT sample
            k += 1
        if k:
            del sent[:k]
        sb.pipe = pipe
        acked = ack - self.snd_una
        self.snd_una = ack
        # Free acknowledged bytes from the send buffer.
        drop = min(ack, self.buf_start + len(self.buf)) - self.buf_start
        if drop > 0:
            del self.buf[:drop]
            self.buf_start += drop
        # RTT sample: the newest fully acked segment if never retransmitted (Karn),
        # else the echoed timestamp, which is unambiguous.
        rx = self.rx
        ts = seg.timestamps
        if sample_rec is not None and not sample_rec.retrans:
            self.rtt.sample(now - sample_rec.xmit_ts)
        elif ts is not None and rx.ts_ok:
            ticks = (rx.ts_val(now) - ts[1]) & MASK
            if ticks < HALF:
                self.rtt.sample(ticks / 1000.0)
        self.retries = 0
        self.rtt.backoff = 0
        rack.tlp_out = False
        echo = ts if rx.ts_ok else None
        if self.cc.on_ack(acked, ack, echo, now, self.mss, self.rtt.srtt, self.max_snd_wnd):
            self._undo()

    def _eifel_check(self, rec: SentSegment, seg: TcpSegment, now: float) -> None:
        """RFC 3522: an ACK echoing a TSval older than the retransmission acks the original."""
        ts = seg.timestamps
        rx = self.rx
        if ts is None or not rx.ts_ok:
            return
        if (ts[1] - rx.ts_val(rec.xmit_ts)) & MASK >= HALF:
            if rec.rack_retx:
                # RACK gave up on the original too early: it was late, not lost.
                rack = self.rack
                rack.learn_reordering(now - rec.first_xmit - rack.rtt)
            if self.cc.retrans_delivered(rec.retrans):
                self._undo()

    def _undo(self) -> None:
        """The recovery was spurious: restore cwnd and un-mark segments judged lost."""
        self.stats.undos += 1
        self.cc.undo()
        self.sb.restore_lost()

    def _process_sack(self, blocks: tuple[tuple[int, int], ...], ack: int, now: float) -> None:
        snd_una = self.snd_una
        snd_nxt = self.snd_nxt
        left32, right32 = blocks[0]
        left = unwrap(snd_una, left32)
        right = unwrap(snd_una, right32)
        skip = 0
        if left < right <= snd_nxt and (right <= ack or _dsack_in_later(left, right, blocks)):
            self._on_dsack(left)
            skip = 1
        self.sb.sack(blocks, skip, snd_una, snd_nxt, now, self.rack)

    def _on_dsack(self, left: int) -> None:
        """A duplicate arrived at the peer: our retransmission was spurious."""
        self.stats.dsacks_in += 1
        if self.cc.on_dsack(left):
            self._undo()
        self.rack.on_dsack(self.snd_una, self.snd_nxt)

    def _detect_loss(self, now: float) -> None:
        if self.rack.detect_loss(now, self.sb) and self.sb.lost_q and not self.cc.in_recovery:
            self._enter_recovery(now)

    def _enter_recovery(self, now: float) -> None:
        self.stats.recoveries += 1
        self.cc.enter_recovery(now, self.snd_una, self.snd_nxt, self.mss)

    # ------------------------------------------------------------------ output

    def send_probe(self, now: float, out: list[TcpSegment]) -> None:
        """Keepalive or zero-window probe: persist sends data if any window is open."""
        room = self.snd_una + self.snd_wnd - self.snd_nxt
        if self.persist_backoff and room > 0 and self.unsent() > 0:
            self._send_new(now, out, min(room, self.mss, self.unsent()))
        else:
            out.append(self.rx.segment(self.snd_una - 1, ACK, b"", now))
        if self.persist_backoff and self.snd_una >= self.snd_nxt:
            rto = self.rtt.current_rto() * (1 << min(self.persist_backoff, 16))
            self.persist_at = now + min(rto, self.config.rto_max)

    def send_data(self, now: float, out: list[TcpSegment]) -> None:
        """Retransmissions, then new data and the FIN, as the windows allow."""
        sb = self.sb
        rack = self.rack
        if (
            not sb.lost_q
            and not rack.tlp_pending
            and self.buf_start + len(self.buf) <= self.snd_nxt
            and (self.fin_sent or not self.fin_pending)
        ):
            if self.persist_at is not None:  # nothing waits to be sent (fast path)
                self.persist_at = None
                self.persist_backoff = 0
            return
        cc = self.cc
        mss = self.mss
        # 1. Retransmit segments marked lost, within the congestion window.
        lost_q = sb.lost_q
        while lost_q and sb.pipe < cc.cwnd:
            rec = lost_q.popleft()
            if rec.lost and not rec.sacked and not rec.delivered:
                self._retransmit(rec, now, out, rack_retx=not cc.rto_recovery)
        # 2. New data (and the FIN) within both windows.
        fin_wanted = self.fin_pending and not self.fin_sent
        if out and rack.tlp_pending:
            rack.tlp_pending = False  # retransmissions already elicit ACKs
            self.arm_tlp(now)
        # A probe carries new data unless lost segments wait (then it resends one).
        tlp = rack.tlp_pending and not lost_q
        while True:
            unsent = self.unsent()
            if unsent <= 0 and not (fin_wanted and not self.fin_sent):
                break
            wnd_room = self.snd_una + self.snd_wnd - self.snd_nxt
            cwnd_room = cc.cwnd - sb.pipe
            if tlp:
                cwnd_room = max(cwnd_room, mss)  # the probe may exceed cwnd by one segment
            n = min(unsent, mss, wnd_room, cwnd_room)
            if unsent > 0:
                if n <= 0:
                    break
                if n < mss and n < unsent:
                    # Window- or cwnd-limited runt: wait (sender SWS avoidance).
                    if wnd_room < cwnd_room and n < self.max_snd_wnd // 2:
                        break
                    if cwnd_room <= wnd_room and sb.pipe > 0:
                        break
                elif (
                    n < mss
                    and self.config.nagle
                    and self.small_end > self.snd_una
                    and not self.fin_pending
                ):
                    # Nagle, Minshall's variant (as Linux): a runt waits only while an
                    # earlier runt is unacknowledged, so the tail of a bulk write does
                    # not wait for the peer's delayed ACK of full-sized segments.
                    break
            elif wnd_room < 1:
                break  # the FIN needs one sequence number of window (as Linux)
            self._send_new(now, out, max(n, 0))
            if tlp:
                tlp = False
                rack.tlp_pending = False
                self.stats.tlp_probes += 1
                rack.tlp_out = True
            if self.fin_sent:
                break
        if rack.tlp_pending:
            # TLP with nothing new to send: retransmit a segment already judged lost
            # (cwnd kept it back and no ACK came), else the highest unSACKed one.
            rack.tlp_pending = False
            while lost_q and not (
                lost_q[0].lost and not lost_q[0].sacked and not lost_q[0].delivered
            ):
                lost_q.popleft()
            candidates = [lost_q.popleft()] if lost_q else reversed(sb.sent)
            for rec in candidates:
                if not rec.sacked:
                    self.stats.tlp_probes += 1
                    rack.tlp_out = True
                    self._retransmit(rec, now, out)
                    break
        # 3. Persist timer: data waiting, nothing in flight, window shut.
        if self.snd_una >= self.snd_nxt and (
            self.unsent() > 0 or (self.fin_pending and not self.fin_sent)
        ):
            if self.persist_at is None:
                rto = self.rtt.current_rto() * (1 << min(self.persist_backoff, 16))
                self.persist_at = now + min(rto, self.config.rto_max)
        else:
            self.persist_at = None
            self.persist_backoff = 0

    def _send_new(self, now: float, out: list[TcpSegment], n: int) -> None:
        start = self.snd_nxt
        off = start - self.buf_start
        payload = bytes(self.buf[off : off + n]) if n else b""
        end = start + n
        fin = (
            self.fin_pending
            and end == self.buf_start + len(self.buf)
            and end < self.snd_una + self.snd_wnd  # the FIN needs window too
        )
        flags = ACK
        if fin:
            flags |= FIN
            self.fin_sent = True
            self.fin_seq = end
        if n and end == self.buf_start + len(self.buf):
            flags |= PSH
        if n < self.mss:
            self.small_end = end
        seq_end = end + (1 if fin else 0)
        self.sb.add(start, seq_end, now, fin)
        self.snd_nxt = seq_end
        out.append(self.rx.segment(start, flags, payload, now))
        if self.rto_at is None:
            self.rto_at = now + self.rtt.current_rto()
        rack = self.rack
        if not rack.tlp_pending:
            rack.arm_tlp(now, seq_end - self.snd_una, self.mss, self.rto_at)

    def _retransmit(
        self, rec: SentSegment, now: float, out: list[TcpSegment], rack_retx: bool = False
    ) -> None:
        start = rec.start
        data_end = rec.end - (1 if rec.fin else 0)
        off = start - self.buf_start
        payload = bytes(self.buf[off : off + data_end - start])
        flags = ACK | (FIN if rec.fin else 0)
        self.sb.resend(rec, now, rack_retx)
        seg = self.rx.segment(start, flags, payload, now)
        out.append(seg)
        self.stats.retransmits += 1
        self.stats.bytes_retransmitted += len(payload)
        cc = self.cc
        cc.on_retransmit(seg.timestamps)
        sent = self.sb.sent
        if self.rto_at is None or (not cc.rto_recovery and sent and sent[0] is rec):
            # Resending the oldest segment restarts the RTO (as Linux does): its ACK
            # needs a round trip from now, and with RTTs near the RTO (the mixnet)
            # the old deadline would fire spuriously and collapse cwnd.
            self.rto_at = now + self.rtt.current_rto()
        if not cc.rto_recovery and not self.rack.tlp_pending:
            self.arm_tlp(now)  # a lost retransmission is then found before the RTO
