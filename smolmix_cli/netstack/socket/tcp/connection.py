"""Sans-io TCP connection (RFC 9293) with the loss recovery a mixnet needs.

One `TcpConnection` is one connection: segments and explicit time go in
(`handle_segment`, `handle_timeout`), segments come out (`poll_transmit`,
with `poll_deadline` saying when to call again), the application reads and
writes byte buffers. No sockets, no clocks, no sleeps.

The connection is the state machine: the handshake and its options, whether
an arriving segment is acceptable (PAWS, the window, the RST and SYN rules of
RFC 5961), the FIN exchange and the timers. The data moves in its two halves,
`receiver.Receiver` and `sender.Sender`; the sender's loss recovery is
SACK-based (RFC 2018, RFC 6675 pipe) with RACK-TLP (RFC 8985) as the loss
detector, because the mixnet reorders nearly every packet and three duplicate
ACKs would fire constantly (peers without SACK get RFC 5681/6582 duplicate-ACK
NewReno). Each part lists its deliberate departures from the RFCs; the
connection's own:
- PAWS (RFC 7323 §5) tolerates TSvals up to 60 s of ticks older than
  TS.Recent: strictly applied, it discards late originals once a
  retransmission has filled the hole before them.
"""

from __future__ import annotations

import secrets
from typing import Final

from smolmix_cli.netstack.errors import (
    ConnectionClosed,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    NetstackError,
)
from smolmix_cli.netstack.socket.tcp.config import DEFAULT_MSS, TS_OPTION_LEN, TcpConfig, TcpStats
from smolmix_cli.netstack.socket.tcp.receiver import Receiver, window_scale
from smolmix_cli.netstack.socket.tcp.rtt import RttEstimator
from smolmix_cli.netstack.socket.tcp.sender import Sender
from smolmix_cli.netstack.socket.tcp.seq import HALF, MASK, unwrap
from smolmix_cli.netstack.socket.tcp.state import (
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    ESTABLISHED,
    ESTABLISHED_LIKE,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    RECV_DATA_STATES,
    SEND_STATES,
    SYN_RECEIVED,
    SYN_SENT,
    TIME_WAIT,
)
from smolmix_cli.netstack.wire.ip import Endpoint
from smolmix_cli.netstack.wire.tcp import ACK, FIN, RST, SYN, TcpSegment

_PAWS_TOLERANCE: Final = 60_000  # timestamp ticks (60 s at 1 ms); see handle_segment
_CHALLENGE_ACKS_PER_S: Final = 10
_OOW_ACK_INTERVAL: Final = 0.5  # seconds between ACKs answering out-of-window pure ACKs


class TcpConnection:
    """One TCP connection, sans-io. See the module docstring and the netstack contract."""

    def __init__(
        self,
        local: Endpoint,
        remote: Endpoint,
        config: TcpConfig,
        now: float,
        iss: int | None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.config = config
        self.state = CLOSED
        self.error: NetstackError | None = None
        self.stats = TcpStats()
        self._lport = local[1]
        self._rport = remote[1]
        iss = secrets.randbits(32) if iss is None else iss & MASK
        self._iss = iss
        self._irs = 0
        self._app_closed = False
        self._aborted = False
        self._syn_pending = False
        self._syn_xmit: float | None = None
        self._syn_retries = 0
        self._ws_ok = False
        self._ctrl: list[TcpSegment] = []  # segments built outside poll_transmit
        rtt = RttEstimator(config)
        ts_offset = secrets.randbits(32)
        self._rx = Receiver(
            config, rtt, self.stats, self._ctrl, self._lport, self._rport, ts_offset
        )
        self._tx = Sender(config, self.stats, rtt, self._rx, iss)
        self._tw_at: float | None = None
        self._last_rx = now
        self._ka_probes = 0
        self._ka_last = now
        self._chal_window = -1.0
        self._chal_count = 0
        self._oow_ack_time = -1.0

    # ------------------------------------------------------------------ opening

    @classmethod
    def connect(
        cls,
        local: Endpoint,
        remote: Endpoint,
        config: TcpConfig,
        now: float,
        iss: int | None = None,
    ) -> TcpConnection:
        """Active open: SYN_SENT with the SYN queued for `poll_transmit`."""
        conn = cls(local, remote, config, now, iss)
        conn.state = SYN_SENT
        conn._open(now)
        return conn

    @classmethod
    def accept(
        cls,
        syn: TcpSegment,
        local: Endpoint,
        remote: Endpoint,
        config: TcpConfig,
        now: float,
        iss: int | None = None,
    ) -> TcpConnection:
        """Passive open from a received SYN: SYN_RECEIVED with the SYN-ACK queued."""
        conn = cls(local, remote, config, now, iss)
        conn._take_syn(syn)
        conn.state = SYN_RECEIVED
        conn._open(now)
        return conn

    def _open(self, now: float) -> None:
        tx = self._tx
        tx.snd_nxt = self._iss + 1
        self._syn_pending = True
        tx.rto_at = now + tx.rtt.rto

    def _take_syn(self, syn: TcpSegment) -> None:
        """Record the peer's ISN and negotiate options from its SYN (or SYN-ACK)."""
        cfg = self.config
        rx = self._rx
        tx = self._tx
        self._irs = syn.seq
        rx.rcv_nxt = syn.seq + 1
        rx.last_ack_sent = rx.rcv_nxt
        rx.ts_ok = cfg.timestamps and syn.timestamps is not None
        if rx.ts_ok and syn.timestamps is not None:
            rx.ts_recent = syn.timestamps[0]
        self._ws_ok = cfg.window_scaling and syn.wscale is not None
        if self._ws_ok and syn.wscale is not None:
            tx.snd_wscale = syn.wscale
            rx.rcv_wscale = window_scale(cfg.recv_buffer)
        else:
            tx.snd_wscale = 0
            rx.rcv_wscale = 0
            rx.rcv_space = min(cfg.recv_buffer, 0xFFFF)
        rx.sack_ok = cfg.sack and syn.sack_permitted
        peer_mss = syn.mss if syn.mss else DEFAULT_MSS
        mss = min(cfg.mss, peer_mss, tx.mss_clamp) - (TS_OPTION_LEN if rx.ts_ok else 0)
        mss = max(mss, 64)
        tx.use_mss(mss)
        rx.rcv_mss = mss
        tx.cc.cwnd = min(cfg.initial_window_segments * mss, max(2 * mss, 14600))
        tx.snd_wnd = syn.window  # never scaled in a SYN (RFC 7323 §2.2)
        tx.max_snd_wnd = max(tx.max_snd_wnd, tx.snd_wnd)
        tx.snd_wl1 = syn.seq
        rx.rcv_adv = rx.rcv_nxt + min(rx.rcv_space, 0xFFFF)

    # ------------------------------------------------------------------ app side

    @property
    def readable(self) -> int:
        """Bytes recv() can return now."""
        return len(self._rx.buf)

    @property
    def at_eof(self) -> bool:
        """The peer sent FIN and every byte before it has been read."""
        return self._rx.fin_received and not self._rx.buf

    @property
    def is_established(self) -> bool:
        """The handshake completed (any state from ESTABLISHED on)."""
        st = self.state
        return st is ESTABLISHED or st in ESTABLISHED_LIKE

    @property
    def is_closed(self) -> bool:
        """Nothing left to do: the stack may forget the connection."""
        return self.state is CLOSED

    @property
    def effective_mss(self) -> int:
        """Payload bytes per segment after negotiation (options excluded)."""
        return self._tx.mss

    @property
    def srtt(self) -> float | None:
        """Smoothed RTT in seconds (None before the first sample)."""
        return self._tx.rtt.srtt

    @property
    def rto(self) -> float:
        """Current retransmission timeout, backoff included."""
        return self._tx.rtt.current_rto()

    @property
    def cwnd(self) -> int:
        """Congestion window in bytes."""
        return self._tx.cc.cwnd

    @property
    def unsent(self) -> int:
        """Queued bytes not sent yet (the windows hold them): more segments will follow."""
        return self._tx.unsent()

    def send_space(self) -> int:
        """Free bytes in the send buffer (0 after close)."""
        if self._app_closed or self.state is CLOSED:
            return 0
        return self._tx.space()

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue what fits in the send buffer; returns the count (0 when full)."""
        if self.error is not None:
            raise self.error
        if self._app_closed or self.state is CLOSED:
            raise ConnectionClosed("send() after close()")
        return self._tx.write(data)

    def recv(self, max_bytes: int) -> bytes:
        """In-order bytes; b"" when none now. Buffered data outlives a reset."""
        rx = self._rx
        if not rx.buf:
            if self.error is not None:
                raise self.error
            if self._aborted:
                raise ConnectionClosed("recv() after abort()")
            return b""
        out = rx.read(max_bytes)
        if self.state is ESTABLISHED or self.state in RECV_DATA_STATES:
            rx.window_update_due()
        return out

    def close(self) -> None:
        """Half-close: FIN after the queued data; receiving continues."""
        if self._app_closed:
            return
        self._app_closed = True
        st = self.state
        if st is SYN_SENT:
            self._enter_closed()
        elif st is ESTABLISHED:
            self._tx.fin_pending = True
            self.state = FIN_WAIT_1
        elif st is CLOSE_WAIT:
            self._tx.fin_pending = True
            self.state = LAST_ACK
        elif st is SYN_RECEIVED:
            self._tx.fin_pending = True  # sent once the handshake completes

    def abort(self) -> None:
        """Send RST now and forget the connection."""
        if self.state is CLOSED:
            self._aborted = True
            return
        if self.state is not SYN_SENT:
            self._ctrl.append(self._mk_rst(self._tx.snd_nxt, with_ack=True))
        self._aborted = True
        self._app_closed = True
        self._enter_closed()

    def handle_icmp_unreachable(self, error: NetstackError, now: float) -> None:
        """An ICMP destination-unreachable (or similar hard error) for this connection.

        RFC 1122 §4.2.3.9: fatal only while connecting (the stack chooses the
        error, e.g. ConnectionRefused for port unreachable); in synchronized
        states it is a soft error and retransmission carries on.
        """
        if self.state is SYN_SENT or self.state is SYN_RECEIVED:
            self._fail(error)

    def on_unreachable(self, now: float) -> None:
        """Shorthand for `handle_icmp_unreachable(ConnectionRefused(...), now)`."""
        self.handle_icmp_unreachable(ConnectionRefused(f"{self.remote} unreachable"), now)

    def set_mss(self, mss: int) -> None:
        """Path MTU dropped (ICMP fragmentation-needed / packet-too-big): lower the MSS.

        `mss` counts payload without options, like the MSS option and
        `TcpConfig.mss`; the timestamp option is subtracted as at negotiation.
        Larger unacknowledged segments are split and resent (`Scoreboard.split`).
        """
        self._tx.set_mss(mss)

    # ------------------------------------------------------------------ timers

    def poll_deadline(self) -> float | None:
        """Earliest timer as an absolute time, or None."""
        # Unrolled: the stack asks after every packet.
        best = self._tx.deadline()
        t = self._rx.delack_at
        if t is not None and (best is None or t < best):
            best = t
        t = self._tw_at
        if t is not None and (best is None or t < best):
            best = t
        if self.config.keepalive_idle is not None:
            t = self._keepalive_at()
            if t is not None and (best is None or t < best):
                best = t
        return best

    def _keepalive_at(self) -> float | None:
        idle = self.config.keepalive_idle
        if idle is None or self.state not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2):
            return None
        if self._ka_probes:
            return self._ka_last + self.config.keepalive_interval
        return self._last_rx + idle

    def handle_timeout(self, now: float) -> None:
        """Fire every timer due at `now`; poll_transmit then sends what they queued."""
        if self.state is CLOSED:
            return
        if self._tw_at is not None and now >= self._tw_at:
            self._tw_at = None
            self._enter_closed()
            return
        rx = self._rx
        if rx.delack_at is not None and now >= rx.delack_at:
            rx.delack_fired()
        tx = self._tx
        tx.on_loss_timers(now)
        if tx.rto_at is not None and now >= tx.rto_at:
            tx.rto_at = None
            self._on_rto(now)
            if self.state is CLOSED:
                return
        if tx.persist_at is not None and now >= tx.persist_at and not tx.on_persist():
            self._fail(ConnectionTimedOut("zero-window probes unanswered"))
            return
        ka = self._keepalive_at()
        if ka is not None and now >= ka:
            if tx.snd_una < tx.snd_nxt or tx.unsent() > 0:
                self._last_rx = now  # retransmission timers cover a busy connection
                self._ka_probes = 0
            elif self._ka_probes >= self.config.keepalive_probes:
                self._fail(ConnectionTimedOut("keepalive probes unanswered"))
                return
            else:
                self._ka_probes += 1
                self._ka_last = now
                tx.probe_pending = True

    def _on_rto(self, now: float) -> None:
        st = self.state
        tx = self._tx
        if st is SYN_SENT or st is SYN_RECEIVED:
            self._syn_retries += 1
            if self._syn_retries > self.config.syn_retransmits:
                self._fail(ConnectionTimedOut("SYN retransmissions unanswered"))
                return
            tx.rtt.backoff += 1
            self._syn_pending = True
            tx.rto_at = now + tx.rtt.current_rto()
            return
        if not tx.on_rto(now):
            self._fail(ConnectionTimedOut("retransmissions unanswered"))

    # ------------------------------------------------------------------ input

    def handle_segment(self, seg: TcpSegment, now: float) -> None:
        """Process one segment addressed to this connection. Never raises on bad input."""
        st = self.state
        self.stats.segments_in += 1
        if st is CLOSED:
            return
        if st is SYN_SENT:
            self._handle_syn_sent(seg, now)
            return
        flags = seg.flags
        payload = seg.payload
        rx = self._rx
        tx = self._tx
        rcv_nxt = rx.rcv_nxt
        seq = unwrap(rcv_nxt, seg.seq)
        if st is SYN_RECEIVED and flags & SYN and seq == self._irs:
            if flags & ACK and unwrap(tx.snd_una, seg.ack) == tx.snd_nxt:
                # Simultaneous open: the peer's SYN-ACK completes our handshake.
                self._established(seg, now)
                return
            if not flags & (ACK | RST):
                self._syn_pending = True  # the peer did not see our SYN-ACK
                return
        plen = len(payload)
        seglen = plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        ts = seg.timestamps
        # PAWS (RFC 7323 §5), with a tolerance: on a reordering link a retransmission
        # that fills a hole raises TS.Recent above originals still in flight, and
        # strict PAWS would discard those as "old" although they carry new data.
        # Old duplicates from a previous trip round the sequence space are far older.
        if (
            ts is not None
            and rx.ts_ok
            and not flags & RST
            and _PAWS_TOLERANCE < (rx.ts_recent - ts[0]) & MASK < HALF
        ):
            rx.ack_now = True
            return
        wnd = rx.rcv_adv - rcv_nxt
        if seglen == 0:
            acceptable = seq == rcv_nxt if wnd == 0 else rcv_nxt <= seq <= rcv_nxt + wnd
        else:
            end = seq + seglen
            acceptable = (wnd > 0 and seq < rcv_nxt + wnd and end > rcv_nxt) or (
                not plen and seq == rcv_nxt  # a bare FIN takes no buffer space
            )
        if not acceptable:
            if flags & RST:
                return
            if seglen == 0 and rcv_nxt - self.config.recv_buffer <= seq < rcv_nxt:
                # An old pure ACK (reordered, or a keepalive/window probe at RCV.NXT-1):
                # its ACK field is still news; probes need an answer.
                if flags & ACK:
                    self._last_rx = now
                    self._ka_probes = 0
                    self._process_ack(seg, seq, now)
                if seq == rcv_nxt - 1:
                    self._oow_ack(now)
                return
            if plen and seq + plen <= rcv_nxt and rx.sack_ok:
                rx.report_dsack(seq, seq + plen, now, tx.snd_nxt)  # RFC 2883
            if st is TIME_WAIT and flags & FIN:
                self._tw_at = now + self.config.time_wait  # retransmitted FIN: restart 2MSL
            if seglen == 0:
                self._oow_ack(now)
            else:
                rx.ack_now = True
            return
        self._last_rx = now
        self._ka_probes = 0
        if flags & RST:
            if seq == rcv_nxt:
                self._on_rst()
            else:
                self._challenge_ack(now)  # RFC 5961 §3.2
            return
        if flags & SYN:
            self._challenge_ack(now)  # RFC 5961 §4.2
            return
        if not flags & ACK:
            return
        if (
            ts is not None
            and rx.ts_ok
            and seq <= rx.last_ack_sent
            and (ts[0] - rx.ts_recent) & MASK < HALF  # never move TS.Recent back
        ):
            rx.ts_recent = ts[0]
        if st is SYN_RECEIVED:
            ack = unwrap(tx.snd_una, seg.ack)
            if not tx.snd_una < ack <= tx.snd_nxt:
                self._ctrl.append(self._mk_rst(ack, with_ack=False))
                return
            self._established(seg, now)
            st = self.state
        if not self._process_ack(seg, seq, now):
            return
        st = self.state
        if plen and (st is ESTABLISHED or st in RECV_DATA_STATES):
            rx.receive(seq, payload, now, tx.snd_nxt)
        if flags & FIN:
            fin_seq = seq + plen
            if rx.fin_received:
                if fin_seq + 1 == rx.rcv_nxt:
                    rx.ack_now = True  # retransmitted FIN: our ACK was lost
                    if self.state is TIME_WAIT:
                        self._tw_at = now + self.config.time_wait
            elif st in RECV_DATA_STATES and fin_seq <= rx.rcv_adv:
                rx.peer_fin_seq = fin_seq
        if rx.peer_fin_seq is not None and rx.peer_fin_seq == rx.rcv_nxt:
            self._on_fin(now)

    def _handle_syn_sent(self, seg: TcpSegment, now: float) -> None:
        flags = seg.flags
        tx = self._tx
        ack = 0
        if flags & ACK:
            ack = unwrap(self._iss, seg.ack)
            if ack <= self._iss or ack > tx.snd_nxt:
                if not flags & RST:
                    self._ctrl.append(self._mk_rst(ack, with_ack=False))
                return
        if flags & RST:
            if flags & ACK:
                self._fail(ConnectionRefused(f"connection refused by {self.remote}"))
            return
        if not flags & SYN:
            return
        self._take_syn(seg)
        self._last_rx = now
        if flags & ACK:
            if self._syn_xmit is not None and self._syn_retries == 0:
                tx.rtt.sample(now - self._syn_xmit)
            tx.snd_una = ack
            tx.snd_wl2 = ack
            tx.retries = 0
            tx.rtt.backoff = 0
            tx.rto_at = None
            self.state = ESTABLISHED
            rx = self._rx
            rx.ack_now = True
            if seg.payload:
                rx.receive(rx.rcv_nxt, seg.payload, now, tx.snd_nxt)
        else:
            self.state = SYN_RECEIVED  # simultaneous open (RFC 9293 §3.5, figure 8)
            self._syn_pending = True

    def _established(self, seg: TcpSegment, now: float) -> None:
        """SYN_RECEIVED -> ESTABLISHED when our SYN is acknowledged."""
        tx = self._tx
        if self._syn_xmit is not None and self._syn_retries == 0:
            tx.rtt.sample(now - self._syn_xmit)
        tx.snd_una = self._iss + 1
        tx.snd_wnd = seg.window << tx.snd_wscale
        tx.max_snd_wnd = max(tx.max_snd_wnd, tx.snd_wnd)
        tx.snd_wl1 = unwrap(self._rx.rcv_nxt, seg.seq)
        tx.snd_wl2 = tx.snd_una
        tx.retries = 0
        tx.rtt.backoff = 0
        tx.rto_at = None
        self._syn_pending = False
        self.state = FIN_WAIT_1 if tx.fin_pending else ESTABLISHED

    def _process_ack(self, seg: TcpSegment, seq: int, now: float) -> bool:
        """Handle the ACK field; False when the segment must be dropped."""
        tx = self._tx
        snd_una = tx.snd_una
        ack = unwrap(snd_una, seg.ack)
        if ack > tx.snd_nxt:
            self._rx.ack_now = True  # acks something not yet sent (RFC 9293 §3.10.7.4)
            return False
        if ack < snd_una - max(tx.max_snd_wnd, 1):
            self._challenge_ack(now)  # RFC 5961 §5.2
            return False
        tx.on_ack(seg, seq, ack, now)
        if tx.fin_sent and tx.snd_una > tx.fin_seq:
            st = self.state
            if st is FIN_WAIT_1:
                self.state = FIN_WAIT_2
            elif st is CLOSING:
                self._enter_time_wait(now)
                return False
            elif st is LAST_ACK:
                self._enter_closed()
                return False
        return True

    def _oow_ack(self, now: float) -> None:
        """ACK an out-of-window segment without data, at most every 0.5 s.

        Two ends that each find the other's ACKs out of window would otherwise
        answer every ACK with an ACK forever (Linux: tcp_oow_rate_limited).
        """
        if now - self._oow_ack_time >= _OOW_ACK_INTERVAL:
            self._oow_ack_time = now
            self._rx.ack_now = True

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: challenge ACKs are rate-limited so they cannot be used to flood."""
        if now - self._chal_window >= 1.0:
            self._chal_window = now
            self._chal_count = 0
        if self._chal_count >= _CHALLENGE_ACKS_PER_S:
            return
        self._chal_count += 1
        self.stats.challenge_acks += 1
        self._rx.ack_now = True

    def _on_rst(self) -> None:
        st = self.state
        if st is SYN_RECEIVED:
            self._fail(ConnectionRefused("connection reset during handshake"))
        elif st in (CLOSING, LAST_ACK, TIME_WAIT):
            self._enter_closed()
        else:
            self._fail(ConnectionReset(f"connection reset by {self.remote}"))

    def _on_fin(self, now: float) -> None:
        self._rx.take_fin()
        st = self.state
        if st is ESTABLISHED:
            self.state = CLOSE_WAIT
        elif st is FIN_WAIT_1:
            self.state = CLOSING
        elif st is FIN_WAIT_2:
            self._enter_time_wait(now)

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self._tx.stop_timers()
        self._tw_at = now + self.config.time_wait

    def _enter_closed(self) -> None:
        self.state = CLOSED
        tx = self._tx
        rx = self._rx
        tx.stop_timers()
        rx.delack_at = None
        self._tw_at = None
        self._syn_pending = False
        rx.ack_now = False
        tx.sb.clear()
        tx.buf.clear()
        rx.ooo.clear()

    def _fail(self, err: NetstackError) -> None:
        self.error = err
        self._enter_closed()

    # ------------------------------------------------------------------ output

    def poll_transmit(self, now: float) -> list[TcpSegment]:
        """Segments to send now, in order. Call after every input, app call and timeout."""
        out: list[TcpSegment] = []
        rx = self._rx
        rx.batch_acked = False  # a poll ends the batch of input (see Receiver.receive)
        if self._ctrl:
            out.extend(self._ctrl)
            self._ctrl.clear()
        st = self.state
        if st is CLOSED:
            return out
        tx = self._tx
        if self._syn_pending:
            self._syn_pending = False
            out.append(self._mk_syn(now))
            if tx.rto_at is None:
                tx.rto_at = now + tx.rtt.current_rto()
            return out
        if st is SYN_SENT or st is SYN_RECEIVED:
            return out
        if st is ESTABLISHED or st in SEND_STATES:
            sent = tx.snd_nxt
            tx.send_data(now, out)
            if tx.snd_nxt != sent and self.config.pingpong:
                rx.sent_data(now)
        if tx.probe_pending:
            tx.probe_pending = False
            tx.send_probe(now, out)
        if rx.ack_now:  # every segment built since the flag was set clears it
            out.append(rx.segment(tx.snd_nxt, ACK, b"", now))
        return out

    def _mk_rst(self, seq: int, with_ack: bool) -> TcpSegment:
        if with_ack:
            ack = self._rx.rcv_nxt & MASK
            return TcpSegment(self._lport, self._rport, seq & MASK, ack, RST | ACK, 0)
        return TcpSegment(self._lport, self._rport, seq & MASK, 0, RST, 0)

    def _mk_syn(self, now: float) -> TcpSegment:
        cfg = self.config
        rx = self._rx
        st = self.state
        flags = SYN if st is SYN_SENT else SYN | ACK
        seg = TcpSegment(
            self._lport,
            self._rport,
            self._iss,
            rx.rcv_nxt & MASK if flags & ACK else 0,
            flags,
            min(rx.rcv_space, 0xFFFF),
            mss=cfg.mss,
        )
        if st is SYN_SENT:
            if cfg.window_scaling:
                seg.wscale = window_scale(cfg.recv_buffer)
            seg.sack_permitted = cfg.sack
            if cfg.timestamps:
                seg.timestamps = (rx.ts_val(now), 0)
        else:
            if self._ws_ok:
                seg.wscale = rx.rcv_wscale
            seg.sack_permitted = rx.sack_ok
            if rx.ts_ok:
                seg.timestamps = (rx.ts_val(now), rx.ts_recent)
            rx.ack_now = False
        self._syn_xmit = now
        self.stats.segments_out += 1
        return seg


def reset_for(seg: TcpSegment) -> TcpSegment | None:
    """RFC 9293 §3.10.7.1: the RST answering a segment that matches no connection."""
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return TcpSegment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
    ack = (seg.seq + seg.seg_len) & MASK
    return TcpSegment(seg.dst_port, seg.src_port, 0, ack, RST | ACK, 0)
