"""Sans-io TCP connection (RFC 9293) with the loss recovery a mixnet needs.

One `TcpConnection` is one connection's state machine: segments and explicit
time go in (`handle_segment`, `handle_timeout`), segments come out
(`poll_transmit`), the application reads and writes byte buffers. No sockets,
no clocks, no sleeps.

Inside, every sequence number is *unwrapped*: a plain int that keeps growing
past 2**32, so comparisons are ordinary `<`. Wire values are converted at the
edge (`_unwrap` on input, `& MASK` on output), which keeps mod-2**32 arithmetic
in two places instead of scattered through every comparison.

Loss recovery is SACK-based (RFC 2018, RFC 6675 pipe) with RACK-TLP
(RFC 8985) as the loss detector, because the mixnet reorders nearly every
packet and three duplicate ACKs would fire constantly (peers without SACK
get RFC 5681/6582 duplicate-ACK NewReno). Congestion control is RFC 5681
with one reduction per recovery episode and the RFC 6928 initial window;
RTO per RFC 6298.

Deliberate departures, each measured with bench/tcp_sim.py on a reordering
link (exponential per-packet delay):
- RACK's reordering window also learns from reordering it sees (late
  originals, Eifel-proven spurious retransmissions) and may reach
  SRTT + 2*RTTVAR instead of RFC 8985's SRTT cap.
- Before any reordering is seen the window is still min_RTT/4, where RFC 8985
  §6.2 makes it 0 in recovery or once DupThresh segments are SACKed: on a
  reordering link (the mixnet) the first holes are late segments, and
  declaring them lost at once cost spurious retransmissions and reductions
  (bench/tcp_sim.py: exp(100 ms) 2.14 -> 2.25 s, mixnet-like 27.6 -> 28.4 s).
- Spurious recoveries are undone (Eifel on TSecr, RFC 3522, and DSACK
  counting, RFC 2883); an episode starting within 2 SRTT of one still
  awaiting its DSACKs keeps the earlier saved cwnd/ssthresh.
- PAWS (RFC 7323 §5) tolerates TSvals up to 60 s of ticks older than
  TS.Recent: strictly applied, it discards late originals once a
  retransmission has filled the hole before them.
- Slow start counts all newly acked bytes (no RFC 3465 L limit), and the
  receiver acks immediately for 16 segments at start and after a hole is
  filled (Linux's quickack), so coalesced ACKs and delayed ACKs do not stall
  a small window.
- Segments taken in one batch (the stack polls once per received batch) share
  ACKs: the first leaves once two segments are unacked, the rest of the batch
  gets one more at the poll, never more than 8 segments per ACK (RFC 5681 asks
  for every second segment; NIC receive coalescing gives kernels the same
  stretch ACKs). For SACK peers out-of-order segments of a batch likewise get
  one immediate duplicate ACK and one at the poll.
- A delayed ACK waits at most SRTT (RFC 5681's 500 ms and the 40 ms default
  both exceed 2*SRTT on a LAN, where the peer's tail-loss probe would fire first).
- Nagle follows Minshall's variant (as Linux): a runt waits only while an
  earlier runt is unacknowledged.
"""

from __future__ import annotations

import enum
import secrets
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from smolmix_cli.netstack.errors import (
    ConnectionClosed,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    NetstackError,
)
from smolmix_cli.netstack.socket.tcp.reassembly import OutOfOrderQueue
from smolmix_cli.netstack.wire.tcp import ACK, FIN, PSH, RST, SYN, TcpSegment

IPAddress = IPv4Address | IPv6Address
Endpoint = tuple[IPAddress, int]

MASK = 0xFFFFFFFF
HALF = 0x80000000
DEFAULT_MSS = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
TS_OPTION_LEN = 12  # NOP NOP + 10-byte timestamp option on every segment
_G = 0.001  # clock granularity for RFC 6298
_PAWS_TOLERANCE = 60_000  # timestamp ticks (60 s at 1 ms); see handle_segment
_CHALLENGE_ACKS_PER_S = 10
_OOW_ACK_INTERVAL = 0.5  # seconds between ACKs answering out-of-window pure ACKs
_STRETCH_ACK_SEGMENTS = 8  # in-order segments one coalesced ACK may cover at most
_MAX_OOO_RANGES = 256  # bounds per-segment work on hostile out-of-order patterns  # immediate ACKs at start and after loss, as Linux does


class TcpState(enum.Enum):
    """RFC 9293 §3.3.2 states (LISTEN is the stack's business: accept() starts in SYN-RECEIVED)."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


CLOSED = TcpState.CLOSED
SYN_SENT = TcpState.SYN_SENT
SYN_RECEIVED = TcpState.SYN_RECEIVED
ESTABLISHED = TcpState.ESTABLISHED
FIN_WAIT_1 = TcpState.FIN_WAIT_1
FIN_WAIT_2 = TcpState.FIN_WAIT_2
CLOSE_WAIT = TcpState.CLOSE_WAIT
CLOSING = TcpState.CLOSING
LAST_ACK = TcpState.LAST_ACK
TIME_WAIT = TcpState.TIME_WAIT

# States in which the peer may still send us data.
_RECV_DATA_STATES = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})
# States in which our send machinery (data, retransmissions, FIN) runs.
_SEND_STATES = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})
_ESTABLISHED_LIKE = frozenset(
    {ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT}
)


@dataclass
class TcpConfig:
    """Per-connection tunables; defaults suit a LAN-ish path, the mixnet raises the RTO floor."""

    mss: int = 1380  # clamp from path MTU; stack computes mtu - 40 (v4) / - 60 (v6)
    send_buffer: int = 65536
    recv_buffer: int = 65536
    rto_initial: float = 1.0
    rto_min: float = 0.2  # configurable floor (mixnet RTTs are seconds)
    rto_max: float = 60.0
    max_retransmits: int = 12  # then ConnectionTimedOut
    syn_retransmits: int = 6
    keepalive_idle: float | None = 10.0  # seconds; None disables
    keepalive_interval: float = 10.0
    keepalive_probes: int = 6
    nagle: bool = True
    delayed_ack: float = 0.04  # seconds; 0 = ack immediately
    time_wait: float = 60.0  # 2*MSL; tests set small
    window_scaling: bool = True
    timestamps: bool = True
    sack: bool = True
    initial_window_segments: int = 10  # RFC 6928
    peer_delayed_ack: float = 0.05  # RFC 8985 WCDelAckT: added to the PTO for 1-segment flights
    tlp: bool = True  # tail loss probes (RFC 8985 §7)
    rack: bool = True  # time-based loss detection; False = 3 SACKed segments above a hole
    # Immediate ACKs at start and after a hole fills (Linux's quickack). Each ACK is a
    # packet; over the mixnet a lower value saves reply SURBs at some cost in ramp-up.
    quickack_segments: int = 16


@dataclass
class TcpStats:
    """Counters for benchmarks and debugging; never used for decisions."""

    segments_out: int = 0
    segments_in: int = 0
    bytes_retransmitted: int = 0
    retransmits: int = 0
    rto_events: int = 0
    tlp_probes: int = 0
    recoveries: int = 0
    undos: int = 0
    dsacks_in: int = 0
    challenge_acks: int = 0


class _Sent:
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


def _sent_start(s: _Sent) -> int:
    return s.start


def _sent_xmit(s: _Sent) -> float:
    return s.xmit_ts


def _unwrap(ref: int, value: int) -> int:
    """The unwrapped sequence number nearest to `ref` whose low 32 bits are `value`."""
    return ref + ((value - ref + HALF) & MASK) - HALF


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
        # --- send sequence space (unwrapped) ---
        self._snd_una = iss
        self._small_end = iss  # end of the last sub-MSS segment sent (Nagle/Minshall)
        self._snd_nxt = iss  # next new sequence number; never moves back
        self._snd_wnd = 0
        self._snd_wl1 = 0
        self._snd_wl2 = iss
        self._max_snd_wnd = 0
        self._snd_wscale = 0
        self._sndbuf = bytearray()
        self._sndbuf_start = iss + 1  # sequence number of _sndbuf[0]
        self._fin_pending = False  # close() called: FIN goes after the queued data
        self._fin_sent = False
        self._fin_seq = 0
        self._app_closed = False
        self._aborted = False
        self._sent: list[_Sent] = []
        self._xmit_q: deque[tuple[float, _Sent]] = deque()  # in transmission order
        self._lost_q: deque[_Sent] = deque()
        self._pipe = 0  # bytes believed in the network (RFC 6675)
        self._syn_pending = False
        self._syn_xmit: float | None = None
        self._syn_retries = 0
        # --- receive sequence space (unwrapped) ---
        self._irs = 0
        self._rcv_nxt = 0
        self._rcv_adv = 0  # right edge of the window we advertised
        self._rcv_wscale = 0
        self._rcv_space = config.recv_buffer
        self._rcvbuf = bytearray()
        self._ooo = OutOfOrderQueue()
        self._peer_fin_seq: int | None = None
        self._fin_received = False
        self._rcv_unacked = 0
        self._quickacks = config.quickack_segments  # ack each segment in slow start
        self._rcv_mss = DEFAULT_MSS
        self._ack_now = False
        self._batch_acked = False  # an ACK already left during this batch of input
        self._last_ack_sent = 0
        self._dsack: tuple[int, int] | None = None
        # --- negotiated options ---
        self._mss = min(config.mss, DEFAULT_MSS)
        self._mss_clamp = config.mss  # lowered by set_mss (path MTU)
        self._ts_ok = False
        self._ts_recent = 0
        self._ts_offset = secrets.randbits(32)
        self._sack_ok = False
        self._ws_ok = False
        # --- RTT / RTO (RFC 6298) ---
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._rto = config.rto_initial
        self._backoff = 0
        self._retries = 0
        self._min_rtt = float("inf")
        # --- congestion control ---
        self._cwnd = 0
        self._ssthresh = 1 << 30
        self._ca_acc = 0
        self._dupacks = 0
        self._in_recovery = False
        self._recovery_point = 0
        self._rto_recovery = False
        self._prior_cwnd = 0
        self._prior_ssthresh = 0
        self._undo_retrans = -1  # -1: nothing to undo
        self._undo_marker = 0  # SND.UNA when the undoable episode began
        self._undo_expires = 0.0  # a new episode before this extends the old one
        self._first_retrans_tsval: int | None = None
        # --- RACK-TLP ---
        self._rack_xmit_ts = -1.0
        self._rack_end = 0
        self._rack_rtt = 0.0
        self._rack_fack = 0
        self._fack_before = 0  # RACK.fack as it was before the ACK being processed
        self._reo_mult = 1
        self._reo_meas = 0.0
        self._dsack_round = 0
        self._tlp_pending = False
        self._tlp_out = False
        self._sack_seen: dict[int, int] = {}
        # --- timers (absolute times, None when off) ---
        self._rto_at: float | None = None
        self._tlp_at: float | None = None
        self._rack_at: float | None = None
        self._delack_at: float | None = None
        self._persist_at: float | None = None
        self._persist_backoff = 0
        self._persist_unanswered = 0
        self._probe_pending = False
        self._tw_at: float | None = None
        self._last_rx = now
        self._ka_probes = 0
        self._ka_last = now
        self._ctrl: list[TcpSegment] = []
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
        conn._snd_nxt = conn._iss + 1
        conn._syn_pending = True
        conn._rto_at = now + conn._rto
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
        conn._snd_nxt = conn._iss + 1
        conn._syn_pending = True
        conn._rto_at = now + conn._rto
        return conn

    def _take_syn(self, syn: TcpSegment) -> None:
        """Record the peer's ISN and negotiate options from its SYN (or SYN-ACK)."""
        cfg = self.config
        self._irs = syn.seq
        self._rcv_nxt = syn.seq + 1
        self._last_ack_sent = self._rcv_nxt
        self._ts_ok = cfg.timestamps and syn.timestamps is not None
        if self._ts_ok and syn.timestamps is not None:
            self._ts_recent = syn.timestamps[0]
        self._ws_ok = cfg.window_scaling and syn.wscale is not None
        if self._ws_ok and syn.wscale is not None:
            self._snd_wscale = syn.wscale
            s = 0
            while (cfg.recv_buffer >> s) > 0xFFFF and s < 14:
                s += 1
            self._rcv_wscale = s
        else:
            self._snd_wscale = 0
            self._rcv_wscale = 0
            self._rcv_space = min(cfg.recv_buffer, 0xFFFF)
        self._sack_ok = cfg.sack and syn.sack_permitted
        peer_mss = syn.mss if syn.mss else DEFAULT_MSS
        mss = min(cfg.mss, peer_mss, self._mss_clamp) - (TS_OPTION_LEN if self._ts_ok else 0)
        self._mss = max(mss, 64)
        self._rcv_mss = self._mss
        self._cwnd = min(cfg.initial_window_segments * self._mss, max(2 * self._mss, 14600))
        self._snd_wnd = syn.window  # never scaled in a SYN (RFC 7323 §2.2)
        self._max_snd_wnd = max(self._max_snd_wnd, self._snd_wnd)
        self._snd_wl1 = syn.seq
        self._rcv_adv = self._rcv_nxt + min(self._rcv_space, 0xFFFF)

    # ------------------------------------------------------------------ app side

    @property
    def readable(self) -> int:
        """Bytes recv() can return now."""
        return len(self._rcvbuf)

    @property
    def at_eof(self) -> bool:
        """The peer sent FIN and every byte before it has been read."""
        return self._fin_received and not self._rcvbuf

    @property
    def is_established(self) -> bool:
        """The handshake completed (any state from ESTABLISHED on)."""
        st = self.state
        return st is ESTABLISHED or st in _ESTABLISHED_LIKE

    @property
    def is_closed(self) -> bool:
        """Nothing left to do: the stack may forget the connection."""
        return self.state is CLOSED

    @property
    def effective_mss(self) -> int:
        """Payload bytes per segment after negotiation (options excluded)."""
        return self._mss

    @property
    def srtt(self) -> float | None:
        """Smoothed RTT in seconds (None before the first sample)."""
        return self._srtt

    @property
    def rto(self) -> float:
        """Current retransmission timeout, backoff included."""
        return self._current_rto()

    @property
    def cwnd(self) -> int:
        """Congestion window in bytes."""
        return self._cwnd

    def send_space(self) -> int:
        """Free bytes in the send buffer (0 after close)."""
        if self._app_closed or self.state is CLOSED:
            return 0
        return max(0, self.config.send_buffer - len(self._sndbuf))

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue what fits in the send buffer; returns the count (0 when full)."""
        if self.error is not None:
            raise self.error
        if self._app_closed or self.state is CLOSED:
            raise ConnectionClosed("send() after close()")
        room = self.config.send_buffer - len(self._sndbuf)
        n = min(len(data), room)
        if n <= 0:
            return 0
        if n == len(data):
            self._sndbuf += data
        else:
            self._sndbuf += memoryview(data)[:n]
        return n

    def recv(self, max_bytes: int) -> bytes:
        """In-order bytes; b"" when none now. Buffered data outlives a reset."""
        buf = self._rcvbuf
        if not buf:
            if self.error is not None:
                raise self.error
            if self._aborted:
                raise ConnectionClosed("recv() after abort()")
            return b""
        if max_bytes >= len(buf):
            out = bytes(buf)
            buf.clear()
        else:
            out = bytes(buf[:max_bytes])
            del buf[:max_bytes]
        if self.state is ESTABLISHED or self.state in _RECV_DATA_STATES:
            self._maybe_window_update()
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
            self._fin_pending = True
            self.state = FIN_WAIT_1
        elif st is CLOSE_WAIT:
            self._fin_pending = True
            self.state = LAST_ACK
        elif st is SYN_RECEIVED:
            self._fin_pending = True  # sent once the handshake completes

    def abort(self) -> None:
        """Send RST now and forget the connection."""
        if self.state is CLOSED:
            self._aborted = True
            return
        if self.state is not SYN_SENT:
            self._ctrl.append(self._mk_rst(self._snd_nxt, with_ack=True))
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
        Unacknowledged segments larger than the new size were (or will be)
        dropped by the path, so they are split and resent at once without a
        congestion response, as Linux's tcp_simple_retransmit does.
        """
        self._mss_clamp = min(self._mss_clamp, mss)  # applies at negotiation too
        new = max(mss - (TS_OPTION_LEN if self._ts_ok else 0), 64)
        if new >= self._mss:
            return
        self._mss = new
        if self._cwnd > 0:
            self._cwnd = max(self._cwnd, 2 * new)
        if not any(r.end - r.start - r.fin > new and not r.sacked for r in self._sent):
            return
        pieces: list[_Sent] = []
        for rec in self._sent:
            data_len = rec.end - rec.start - (1 if rec.fin else 0)
            if rec.sacked or data_len <= new:
                pieces.append(rec)
                continue
            if rec.in_flight:
                rec.in_flight = False
                self._pipe -= rec.end - rec.start
            end, fin = rec.end, rec.fin
            start = rec.start
            first = True
            while start < end:
                stop = min(start + new, end - (1 if fin else 0))
                last = stop >= end - (1 if fin else 0)
                if last:
                    stop = end
                piece = rec if first else _Sent(start, stop, rec.xmit_ts, False)
                piece.start, piece.end, piece.fin = start, stop, fin and last
                piece.first_xmit, piece.retrans = rec.first_xmit, rec.retrans
                piece.lost = True
                piece.in_flight = False
                pieces.append(piece)
                first = False
                start = stop
        self._sent = pieces
        self._lost_q = deque(r for r in pieces if r.lost and not r.sacked)

    # ------------------------------------------------------------------ timers

    def poll_deadline(self) -> float | None:
        """Earliest timer as an absolute time, or None."""
        # Unrolled: the stack asks after every packet.
        best = self._rto_at
        t = self._tlp_at
        if t is not None and (best is None or t < best):
            best = t
        t = self._rack_at
        if t is not None and (best is None or t < best):
            best = t
        t = self._delack_at
        if t is not None and (best is None or t < best):
            best = t
        t = self._persist_at
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

    def _no_loss_timer(self) -> bool:
        return self._tlp_at is None and self._rack_at is None

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
        if self._delack_at is not None and now >= self._delack_at:
            self._delack_at = None
            self._ack_now = True
        if self._rack_at is not None and now >= self._rack_at:
            self._rack_at = None
            self._detect_loss(now)
            if self._no_loss_timer():  # (a method: _detect_loss may have re-armed _rack_at)
                self._arm_tlp(now)
        if self._tlp_at is not None and now >= self._tlp_at:
            self._tlp_at = None
            if self._snd_una < self._snd_nxt:
                self._tlp_pending = True
                self._rto_at = now + self._current_rto()  # RFC 8985 §7.3
        if self._rto_at is not None and now >= self._rto_at:
            self._rto_at = None
            self._on_rto(now)
            if self.state is CLOSED:
                return
        if self._persist_at is not None and now >= self._persist_at:
            self._persist_at = None
            self._persist_unanswered += 1
            if self._persist_unanswered > self.config.max_retransmits:
                self._fail(ConnectionTimedOut("zero-window probes unanswered"))
                return
            self._probe_pending = True
            self._persist_backoff += 1
        ka = self._keepalive_at()
        if ka is not None and now >= ka:
            if self._snd_una < self._snd_nxt or self._unsent() > 0:
                self._last_rx = now  # retransmission timers cover a busy connection
                self._ka_probes = 0
            elif self._ka_probes >= self.config.keepalive_probes:
                self._fail(ConnectionTimedOut("keepalive probes unanswered"))
                return
            else:
                self._ka_probes += 1
                self._ka_last = now
                self._probe_pending = True

    def _current_rto(self) -> float:
        cfg = self.config
        return min(self._rto * (1 << min(self._backoff, 30)), cfg.rto_max)

    def _on_rto(self, now: float) -> None:
        cfg = self.config
        st = self.state
        if st is SYN_SENT or st is SYN_RECEIVED:
            self._syn_retries += 1
            if self._syn_retries > cfg.syn_retransmits:
                self._fail(ConnectionTimedOut("SYN retransmissions unanswered"))
                return
            self._backoff += 1
            self._syn_pending = True
            self._rto_at = now + self._current_rto()
            return
        if self._snd_una >= self._snd_nxt:
            return
        self._retries += 1
        if self._retries > cfg.max_retransmits:
            self._fail(ConnectionTimedOut("retransmissions unanswered"))
            return
        self.stats.rto_events += 1
        self._backoff += 1
        if not self._rto_recovery:
            if not self._in_recovery:
                self._save_undo(now)
            flight = self._snd_nxt - self._snd_una
            self._ssthresh = max(min(self._cwnd, flight) // 2, 2 * self._mss)
        self._cwnd = self._mss
        self._ca_acc = 0
        self._in_recovery = True
        self._rto_recovery = True
        self._recovery_point = self._snd_nxt
        self._first_retrans_tsval = None
        # RFC 8985 §6.3: on RTO every unSACKed segment is lost; resend oldest first.
        self._lost_q.clear()
        for rec in self._sent:
            if not rec.sacked:
                self._mark_lost(rec)
        self._tlp_at = None
        self._tlp_pending = False
        self._rack_at = None
        self._rto_at = now + self._current_rto()

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
        rcv_nxt = self._rcv_nxt
        seq = _unwrap(rcv_nxt, seg.seq)
        if st is SYN_RECEIVED and flags & SYN and seq == self._irs:
            if flags & ACK and _unwrap(self._snd_una, seg.ack) == self._snd_nxt:
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
            and self._ts_ok
            and not flags & RST
            and _PAWS_TOLERANCE < (self._ts_recent - ts[0]) & MASK < HALF
        ):
            self._ack_now = True
            return
        wnd = self._rcv_adv - rcv_nxt
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
            if plen and seq + plen <= rcv_nxt and self._sack_ok:
                self._report_dsack(seq, seq + plen, now)  # RFC 2883
            if st is TIME_WAIT and flags & FIN:
                self._tw_at = now + self.config.time_wait  # retransmitted FIN: restart 2MSL
            if seglen == 0:
                self._oow_ack(now)
            else:
                self._ack_now = True
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
            and self._ts_ok
            and seq <= self._last_ack_sent
            and (ts[0] - self._ts_recent) & MASK < HALF  # never move TS.Recent back
        ):
            self._ts_recent = ts[0]
        if st is SYN_RECEIVED:
            ack = _unwrap(self._snd_una, seg.ack)
            if not self._snd_una < ack <= self._snd_nxt:
                self._ctrl.append(self._mk_rst(ack, with_ack=False))
                return
            self._established(seg, now)
            st = self.state
        if not self._process_ack(seg, seq, now):
            return
        st = self.state
        if plen and (st is ESTABLISHED or st in _RECV_DATA_STATES):
            self._receive_data(seq, payload, now)
        if flags & FIN:
            fin_seq = seq + plen
            if self._fin_received:
                if fin_seq + 1 == self._rcv_nxt:
                    self._ack_now = True  # retransmitted FIN: our ACK was lost
                    if self.state is TIME_WAIT:
                        self._tw_at = now + self.config.time_wait
            elif st in _RECV_DATA_STATES and fin_seq <= self._rcv_adv:
                self._peer_fin_seq = fin_seq
        if self._peer_fin_seq is not None and self._peer_fin_seq == self._rcv_nxt:
            self._on_fin(now)

    def _handle_syn_sent(self, seg: TcpSegment, now: float) -> None:
        flags = seg.flags
        ack = 0
        if flags & ACK:
            ack = _unwrap(self._iss, seg.ack)
            if ack <= self._iss or ack > self._snd_nxt:
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
                self._rtt_sample(now - self._syn_xmit)
            self._snd_una = ack
            self._snd_wl2 = ack
            self._retries = 0
            self._backoff = 0
            self._rto_at = None
            self.state = ESTABLISHED
            self._ack_now = True
            if seg.payload:
                self._receive_data(self._rcv_nxt, seg.payload, now)
        else:
            self.state = SYN_RECEIVED  # simultaneous open (RFC 9293 §3.5, figure 8)
            self._syn_pending = True

    def _established(self, seg: TcpSegment, now: float) -> None:
        """SYN_RECEIVED -> ESTABLISHED when our SYN is acknowledged."""
        if self._syn_xmit is not None and self._syn_retries == 0:
            self._rtt_sample(now - self._syn_xmit)
        self._snd_una = self._iss + 1
        self._snd_wnd = seg.window << self._snd_wscale
        self._max_snd_wnd = max(self._max_snd_wnd, self._snd_wnd)
        self._snd_wl1 = _unwrap(self._rcv_nxt, seg.seq)
        self._snd_wl2 = self._snd_una
        self._retries = 0
        self._backoff = 0
        self._rto_at = None
        self._syn_pending = False
        self.state = FIN_WAIT_1 if self._fin_pending else ESTABLISHED

    def _oow_ack(self, now: float) -> None:
        """ACK an out-of-window segment without data, at most every 0.5 s.

        Two ends that each find the other's ACKs out of window would otherwise
        answer every ACK with an ACK forever (Linux: tcp_oow_rate_limited).
        """
        if now - self._oow_ack_time >= _OOW_ACK_INTERVAL:
            self._oow_ack_time = now
            self._ack_now = True

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: challenge ACKs are rate-limited so they cannot be used to flood."""
        if now - self._chal_window >= 1.0:
            self._chal_window = now
            self._chal_count = 0
        if self._chal_count >= _CHALLENGE_ACKS_PER_S:
            return
        self._chal_count += 1
        self.stats.challenge_acks += 1
        self._ack_now = True

    def _on_rst(self) -> None:
        st = self.state
        if st is SYN_RECEIVED:
            self._fail(ConnectionRefused("connection reset during handshake"))
        elif st in (CLOSING, LAST_ACK, TIME_WAIT):
            self._enter_closed()
        else:
            self._fail(ConnectionReset(f"connection reset by {self.remote}"))

    def _on_fin(self, now: float) -> None:
        self._peer_fin_seq = None
        self._fin_received = True
        self._rcv_nxt += 1
        if self._rcv_adv < self._rcv_nxt:
            self._rcv_adv = self._rcv_nxt  # a FIN just past a full window
        self._ack_now = True
        st = self.state
        if st is ESTABLISHED:
            self.state = CLOSE_WAIT
        elif st is FIN_WAIT_1:
            self.state = CLOSING
        elif st is FIN_WAIT_2:
            self._enter_time_wait(now)

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self._stop_send_timers()
        self._tw_at = now + self.config.time_wait

    def _stop_send_timers(self) -> None:
        self._rto_at = None
        self._tlp_at = None
        self._rack_at = None
        self._persist_at = None
        self._tlp_pending = False
        self._probe_pending = False

    def _enter_closed(self) -> None:
        self.state = CLOSED
        self._stop_send_timers()
        self._delack_at = None
        self._tw_at = None
        self._syn_pending = False
        self._ack_now = False
        self._sent.clear()
        self._xmit_q.clear()
        self._lost_q.clear()
        self._sndbuf.clear()
        self._ooo.clear()
        self._pipe = 0

    def _fail(self, err: NetstackError) -> None:
        self.error = err
        self._enter_closed()

    # ------------------------------------------------------------------ ACK side

    def _process_ack(self, seg: TcpSegment, seq: int, now: float) -> bool:
        """Handle the ACK field; False when the segment must be dropped."""
        snd_una = self._snd_una
        ack = _unwrap(snd_una, seg.ack)
        if ack > self._snd_nxt:
            self._ack_now = True  # acks something not yet sent (RFC 9293 §3.10.7.4)
            return False
        if ack < snd_una - max(self._max_snd_wnd, 1):
            self._challenge_ack(now)  # RFC 5961 §5.2
            return False
        self._persist_unanswered = 0
        self._fack_before = self._rack_fack
        newly = ack > snd_una
        if newly:
            self._dupacks = 0
            self._on_new_ack(ack, seg, now)
            if self._in_recovery and not self._sack_ok and self._sent:
                # RFC 6582 NewReno: a partial ACK means the next segment was lost too.
                head = self._sent[0]
                if not head.retrans and not head.lost:
                    self._mark_lost(head)
        elif (
            not self._sack_ok
            and ack == snd_una
            and snd_una < self._snd_nxt
            and not seg.payload
            and not seg.flags & (SYN | FIN)
            and self._sent
        ):
            # Without SACK only duplicate ACKs reveal loss (RFC 5681 §3.2).
            self._dupacks += 1
            if self._dupacks == 3 and not self._in_recovery:
                head = self._sent[0]
                if not head.lost:
                    self._mark_lost(head)
                self._enter_recovery(now)
        if self._sack_ok and seg.sack_blocks:
            self._process_sack(seg.sack_blocks, ack, now)
        # Window update (RFC 9293 §3.10.7.4), guarded against old segments.
        if self._snd_wl1 < seq or (self._snd_wl1 == seq and self._snd_wl2 <= ack):
            wnd = seg.window << self._snd_wscale
            self._snd_wnd = wnd
            self._snd_wl1 = seq
            self._snd_wl2 = ack
            if wnd > self._max_snd_wnd:
                self._max_snd_wnd = wnd
            if wnd > 0:
                self._persist_at = None
                self._persist_backoff = 0
        if self._sent and (newly or seg.sack_blocks):
            self._detect_loss(now)
        if newly:
            self._after_new_ack(ack, seg, now)
        if self._fin_sent and self._snd_una > self._fin_seq:
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

    def _on_new_ack(self, ack: int, seg: TcpSegment, now: float) -> None:
        sent = self._sent
        k = 0
        n = len(sent)
        sample_rec: _Sent | None = None
        pipe = self._pipe
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
                self._rack_update(rec, now)
                if rec.retrans and self._undo_retrans > 0:
                    self._pipe = pipe  # an undo re-adds segments to the pipe
                    self._eifel_check(rec, seg, now)
                    pipe = self._pipe
                sample_rec = rec  # SACKed ones were delivered earlier: no RTT sample
            k += 1
        if k:
            del sent[:k]
        self._pipe = pipe
        acked = ack - self._snd_una
        self._snd_una = ack
        # Free acknowledged bytes from the send buffer.
        drop = min(ack, self._sndbuf_start + len(self._sndbuf)) - self._sndbuf_start
        if drop > 0:
            del self._sndbuf[:drop]
            self._sndbuf_start += drop
        # RTT sample: the newest fully acked segment if never retransmitted (Karn),
        # else the echoed timestamp, which is unambiguous.
        if sample_rec is not None and not sample_rec.retrans:
            self._rtt_sample(now - sample_rec.xmit_ts)
        elif seg.timestamps is not None and self._ts_ok:
            ticks = (self._ts_val(now) - seg.timestamps[1]) & MASK
            if ticks < HALF:
                self._rtt_sample(ticks / 1000.0)
        self._retries = 0
        self._backoff = 0
        self._tlp_out = False
        self._cc_on_ack(acked, ack, seg, now)

    def _after_new_ack(self, ack: int, seg: TcpSegment, now: float) -> None:
        if self._snd_una >= self._snd_nxt:
            self._rto_at = None
            self._tlp_at = None
            self._rack_at = None
        else:
            self._rto_at = now + self._current_rto()  # RFC 6298 (5.3)
            self._arm_tlp(now)

    def _cc_on_ack(self, acked: int, ack: int, seg: TcpSegment, now: float) -> None:
        mss = self._mss
        if self._in_recovery:
            if ack >= self._recovery_point:
                self._in_recovery = False
                self._rto_recovery = False
                spurious = self._undo_retrans == 0 or self._eifel_spurious(seg)
                if spurious and self._prior_cwnd:
                    self._undo()
                else:
                    self._cwnd = max(self._ssthresh, 2 * mss)
                    # DSACKs proving this episode spurious may still be on their way.
                    srtt = self._srtt if self._srtt is not None else 1.0
                    self._undo_expires = now + 2 * srtt
                return
            if self._rto_recovery:
                self._cwnd += min(acked, mss)  # slow start after the timeout
            return
        if self._cwnd < self._ssthresh:
            # Byte counting without RFC 3465's L limit: stretch ACKs (one per burst,
            # as after receive coalescing) must not slow down slow start.
            self._cwnd += acked
        else:
            self._ca_acc += acked
            if self._ca_acc >= self._cwnd:
                self._ca_acc -= self._cwnd
                self._cwnd += mss
        limit = 2 * max(self._max_snd_wnd, self.config.send_buffer) + 4 * mss
        if self._cwnd > limit:
            self._cwnd = limit

    def _eifel_check(self, rec: _Sent, seg: TcpSegment, now: float) -> None:
        """RFC 3522: an ACK echoing a TSval older than the retransmission acks the original."""
        ts = seg.timestamps
        if ts is None or not self._ts_ok:
            return
        if (ts[1] - self._ts_val(rec.xmit_ts)) & MASK >= HALF:
            if rec.rack_retx:
                # RACK gave up on the original too early: it was late, not lost.
                self._learn_reordering(now - rec.first_xmit - self._rack_rtt)
            self._undo_retrans = max(0, self._undo_retrans - rec.retrans)
            if self._undo_retrans == 0 and self._prior_cwnd:
                self._undo()

    def _eifel_spurious(self, seg: TcpSegment) -> bool:
        """RFC 3522: the ACK echoes a TSval older than our first retransmission."""
        first = self._first_retrans_tsval
        ts = seg.timestamps
        if first is None or ts is None or not self._ts_ok:
            return False
        return (ts[1] - first) & MASK >= HALF

    def _save_undo(self, now: float) -> None:
        if self._prior_cwnd and self._undo_retrans > 0 and now < self._undo_expires:
            # The previous episode may still prove spurious (its DSACKs are in
            # flight): keep its larger prior state and keep counting, so an undo
            # restores what the first spurious reduction took away.
            return
        self._prior_cwnd = self._cwnd
        self._prior_ssthresh = self._ssthresh
        self._undo_retrans = 0
        self._undo_marker = self._snd_una

    def _undo(self) -> None:
        """The recovery was spurious: restore cwnd and un-mark segments judged lost."""
        self.stats.undos += 1
        self._cwnd = max(self._cwnd, self._prior_cwnd)
        self._ssthresh = max(self._ssthresh, self._prior_ssthresh)
        self._prior_cwnd = 0
        self._undo_retrans = -1
        self._in_recovery = False
        self._rto_recovery = False
        if self._lost_q:
            for rec in self._lost_q:
                if rec.lost and not rec.delivered and not rec.sacked:
                    rec.lost = False
                    rec.in_flight = True
                    self._pipe += rec.end - rec.start
            self._lost_q.clear()
            live = [r for r in self._sent if r.in_flight and not r.sacked and not r.delivered]
            live.sort(key=_sent_xmit)
            self._xmit_q = deque((r.xmit_ts, r) for r in live)

    def _learn_reordering(self, excess: float) -> None:
        if excess > self._reo_meas:
            self._reo_meas = excess

    def _process_sack(self, blocks: tuple[tuple[int, int], ...], ack: int, now: float) -> None:
        snd_una = self._snd_una
        snd_nxt = self._snd_nxt
        sent = self._sent
        seen = self._sack_seen
        first = True
        for left32, right32 in blocks:
            left = _unwrap(snd_una, left32)
            right = _unwrap(snd_una, right32)
            was_first = first
            first = False
            if right <= left or right > snd_nxt:
                continue
            if was_first and (right <= ack or self._dsack_in_later(left, right, blocks)):
                self._on_dsack(left, right)
                continue
            if right <= snd_una:
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
                        self._pipe -= rec.end - rec.start
                    rec.lost = False
                    self._rack_update(rec, now)
                i += 1
        if len(seen) > 64:
            self._sack_seen = {k: v for k, v in seen.items() if v > snd_una}

    @staticmethod
    def _dsack_in_later(left: int, right: int, blocks: tuple[tuple[int, int], ...]) -> bool:
        if len(blocks) < 2:
            return False
        l2, r2 = blocks[1]
        return ((left - l2) & MASK) < HALF and ((r2 - right) & MASK) < HALF

    def _on_dsack(self, left: int, right: int) -> None:
        """A duplicate arrived at the peer: our retransmission was spurious."""
        self.stats.dsacks_in += 1
        if self._undo_retrans > 0 and left >= self._undo_marker:
            self._undo_retrans -= 1
            if self._undo_retrans == 0 and not self._in_recovery and self._prior_cwnd:
                self._undo()
        # RFC 8985 §6.2.4: widen the reordering window, once per round trip.
        if self._snd_una >= self._dsack_round:
            self._dsack_round = self._snd_nxt
            self._reo_mult = min(self._reo_mult + 1, 64)

    # ------------------------------------------------------------------ RACK-TLP

    def _rack_update(self, rec: _Sent, now: float) -> None:
        rtt = now - rec.xmit_ts
        if rec.retrans:
            if rtt < self._min_rtt:
                return  # likely acks the original transmission: ambiguous
        elif rtt < self._min_rtt:
            self._min_rtt = rtt
        if rec.end < self._fack_before and not rec.retrans:
            # Overtaken by a segment an earlier ACK covered: measure how late it was.
            # (Against the pre-ACK RACK.fack: one ACK's SACK blocks come newest first.)
            self._learn_reordering(rtt - self._rack_rtt)
        elif rec.end > self._rack_fack:
            self._rack_fack = rec.end
        if rec.xmit_ts > self._rack_xmit_ts or (
            rec.xmit_ts == self._rack_xmit_ts and rec.end > self._rack_end
        ):
            self._rack_xmit_ts = rec.xmit_ts
            self._rack_end = rec.end
            self._rack_rtt = rtt

    def _reo_wnd(self) -> float:
        """RACK reordering window: RFC 8985's min_RTT/4 steps, or measured reordering.

        RFC 8985 caps the window at SRTT; on a link whose per-packet delay is
        exponential that cap is hit constantly and every flight has a "loss".
        A window learnt from reordering actually seen may grow to SRTT + 2*RTTVAR,
        still well below the RTO, so real losses are found before a timeout.
        """
        if self._min_rtt == float("inf"):
            return 0.0
        srtt = self._srtt if self._srtt is not None else 0.0
        base = min(self._min_rtt / 4 * self._reo_mult, srtt)
        meas = self._reo_meas
        if meas > base:
            return min(meas, srtt + 2 * self._rttvar)
        return base

    def _detect_loss(self, now: float) -> None:
        """RFC 8985 §6.2: a segment sent before a delivered one is lost after a reorder window."""
        if not self.config.rack:
            q = self._xmit_q  # unused in this mode: keep it from growing
            while q and (q[0][1].delivered or q[0][1].sacked):
                q.popleft()
            self._detect_loss_dupthresh(now)
            return
        q = self._xmit_q
        rack_ts = self._rack_xmit_ts
        rack_end = self._rack_end
        if rack_ts < 0:
            return
        reo = self._reo_wnd()
        horizon = self._rack_rtt + reo
        while q:
            ts, rec = q[0]
            if rec.xmit_ts != ts or rec.sacked or rec.delivered or rec.lost:
                q.popleft()
                continue
            if ts > rack_ts or (ts == rack_ts and rec.end >= rack_end):
                break
            remaining = ts + horizon - now
            if remaining <= 0:
                q.popleft()
                self._mark_lost(rec)
            else:
                at = now + remaining
                if self._rack_at is None or at < self._rack_at:
                    self._rack_at = at
                break
        if self._lost_q and not self._in_recovery:
            self._enter_recovery(now)

    def _detect_loss_dupthresh(self, now: float) -> None:
        """Classic rule for comparison: lost once 3 segments above it are SACKed."""
        sacked_above = 0
        for rec in reversed(self._sent):
            if rec.sacked:
                sacked_above += 1
            elif sacked_above >= 3 and not rec.lost and rec.in_flight and not rec.retrans:
                self._mark_lost(rec)
        if self._lost_q and not self._in_recovery:
            self._enter_recovery(now)

    def _mark_lost(self, rec: _Sent) -> None:
        rec.lost = True
        if rec.in_flight:
            rec.in_flight = False
            self._pipe -= rec.end - rec.start
        self._lost_q.append(rec)

    def _enter_recovery(self, now: float) -> None:
        self.stats.recoveries += 1
        self._save_undo(now)
        flight = self._snd_nxt - self._snd_una
        self._ssthresh = max(min(self._cwnd, flight) // 2, 2 * self._mss)
        self._cwnd = self._ssthresh
        self._ca_acc = 0
        self._in_recovery = True
        self._recovery_point = self._snd_nxt
        self._first_retrans_tsval = None

    def _arm_tlp(self, now: float) -> None:
        """(Re)schedule the probe timeout from now (RFC 8985 §7.2)."""
        self._tlp_at = None
        if not self.config.tlp or self._tlp_out or self._srtt is None:
            return
        if self._rack_at is not None or self._snd_una >= self._snd_nxt:
            return
        pto = max(2 * self._srtt, 2 * _G)
        if self._snd_nxt - self._snd_una <= self._mss:
            pto += self.config.peer_delayed_ack
        at = now + pto
        if self._rto_at is not None and at >= self._rto_at:
            # As Linux: probe when the RTO would fire, and push the RTO back. With
            # long, variable RTTs (the mixnet) 2*SRTT often exceeds the RTO, and a
            # probe costs one segment where a timeout collapses cwnd to one.
            at = self._rto_at
        self._tlp_at = at

    # ------------------------------------------------------------------ RTT

    def _rtt_sample(self, r: float) -> None:
        if r < 0:
            return
        if self._srtt is None:
            self._srtt = r
            self._rttvar = r / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - r)
            self._srtt = 0.875 * self._srtt + 0.125 * r
        cfg = self.config
        rto = self._srtt + max(_G, 4 * self._rttvar)
        self._rto = min(max(rto, cfg.rto_min), cfg.rto_max)

    def _ts_val(self, now: float) -> int:
        return (int(now * 1000) + self._ts_offset) & MASK

    # ------------------------------------------------------------------ receive data

    def _receive_data(self, seq: int, payload: bytes, now: float) -> None:
        rcv_nxt = self._rcv_nxt
        end = seq + len(payload)
        right = self._rcv_adv
        if end > right:
            payload = payload[: max(0, right - seq)]
            end = seq + len(payload)
            self._ack_now = True
        if seq < rcv_nxt:
            if self._sack_ok:
                self._report_dsack(seq, min(end, rcv_nxt), now)
            payload = payload[rcv_nxt - seq :]
            seq = rcv_nxt
            self._ack_now = True
        n = len(payload)
        if n <= 0:
            return
        if n > self._rcv_mss:
            self._rcv_mss = n
        if seq == rcv_nxt:
            self._rcvbuf += payload
            rcv_nxt += n
            if self._ooo:
                rcv_nxt, chunks = self._ooo.pop_ready(rcv_nxt)
                for chunk in chunks:
                    self._rcvbuf += chunk
                self._ack_now = True  # a hole was filled: tell the sender at once
                # The sender is recovering with a small window; delayed ACKs would
                # stall it for a whole delayed-ACK timeout per round (cf. Linux quickack).
                self._quickacks = self.config.quickack_segments
            self._rcv_nxt = rcv_nxt
            self._rcv_unacked += n
            if self._quickacks > 0 or self._ooo:
                # Recovering or starting: every segment is acked at once, even inside
                # a batch, so one lost ACK cannot stall a small window.
                if self._quickacks > 0:
                    self._quickacks -= 1
                self._ack_at_once(now)
            elif self._rcv_unacked >= 2 * self._rcv_mss and not self._batch_acked:
                # The first ACK of a batch goes at once and the last at the poll, so
                # a batch of 3+ segments is never covered by a single (losable) ACK.
                self._ack_at_once(now)
            elif self._rcv_unacked >= _STRETCH_ACK_SEGMENTS * self._rcv_mss:
                self._ack_at_once(now)
            elif self._rcv_unacked >= 2 * self._rcv_mss or self.config.delayed_ack <= 0:
                # Acked at the next poll: the rest of a batch of segments taken
                # together (the stack polls once per batch) gets one cumulative ACK,
                # as with a NIC's receive coalescing.
                self._ack_now = True
            elif self._delack_at is None:
                # Never hold an ACK longer than a round trip: past 2*SRTT the sender's
                # tail-loss probe fires first (one wasted segment), and when our last
                # ACK was lost the sender's lone probe would wait the whole delay.
                delay = self.config.delayed_ack
                if self._srtt is not None and self._srtt < delay:
                    delay = max(self._srtt, _G)
                self._delack_at = now + delay
        else:
            if len(self._ooo.ranges) >= _MAX_OOO_RANGES:
                pass  # a peer slicing the window into crumbs: drop, it will resend
            elif not self._ooo.insert(seq, payload) and self._sack_ok:
                self._report_dsack(seq, end, now)
            if self._sack_ok and self._batch_acked:
                # The rest of the batch shares one ACK at the poll: its first SACK
                # block covers the newest range.
                self._ack_now = True
            elif self._sack_ok:
                self._ack_at_once(now)
            else:
                # RFC 5681 §4.2: one immediate duplicate ACK per out-of-order
                # segment, even inside a batch: peers without SACK count them.
                self._ack_at_once(now)

    def _ack_at_once(self, now: float) -> None:
        self._ctrl.append(self._mk(self._snd_nxt, ACK, b"", now))
        self._batch_acked = True

    def _report_dsack(self, left: int, right: int, now: float) -> None:
        """One D-SACK block per ACK: flush a pending one first, so the sender's
        undo bookkeeping sees every duplicate."""
        if self._dsack is not None and self._dsack != (left, right):
            self._ctrl.append(self._mk(self._snd_nxt, ACK, b"", now))
        self._dsack = (left, right)

    def _window_to_advertise(self) -> int:
        """Raw window field; the right edge never shrinks, grows in SWS-safe steps."""
        s = self._rcv_wscale
        rcv_nxt = self._rcv_nxt
        cur = self._rcv_adv - rcv_nxt
        free = self._rcv_space - len(self._rcvbuf)
        thresh = min(self._rcv_space // 2, self._mss)
        target = free if free >= cur + thresh else cur
        raw = (target + (1 << s) - 1) >> s
        if raw > 0xFFFF:
            raw = 0xFFFF
        edge = rcv_nxt + (raw << s)
        if edge > self._rcv_adv:
            self._rcv_adv = edge
        return raw

    def _maybe_window_update(self) -> None:
        cur = self._rcv_adv - self._rcv_nxt
        free = self._rcv_space - len(self._rcvbuf)
        if 2 * cur <= self._rcv_space and free >= 2 * cur and free - cur >= self._mss:
            self._ack_now = True

    # ------------------------------------------------------------------ output

    def _unsent(self) -> int:
        return self._sndbuf_start + len(self._sndbuf) - self._snd_nxt

    def _mk(self, seq: int, flags: int, payload: bytes, now: float) -> TcpSegment:
        seg = TcpSegment(
            self._lport,
            self._rport,
            seq & MASK,
            self._rcv_nxt & MASK,
            flags,
            self._window_to_advertise(),
            payload,
        )
        if self._ts_ok:
            seg.timestamps = (self._ts_val(now), self._ts_recent)
        if self._sack_ok and (self._ooo or self._dsack is not None):
            blocks: list[tuple[int, int]] = []
            if self._dsack is not None:
                blocks.append(self._dsack)
                self._dsack = None
            limit = 3 if self._ts_ok else 4
            blocks.extend(self._ooo.sack_blocks(limit - len(blocks)))
            seg.sack_blocks = tuple((a & MASK, b & MASK) for a, b in blocks)
        self._ack_now = False
        self._delack_at = None
        self._rcv_unacked = 0
        self._last_ack_sent = self._rcv_nxt
        self.stats.segments_out += 1
        return seg

    def _mk_rst(self, seq: int, with_ack: bool) -> TcpSegment:
        if with_ack:
            return TcpSegment(
                self._lport, self._rport, seq & MASK, self._rcv_nxt & MASK, RST | ACK, 0
            )
        return TcpSegment(self._lport, self._rport, seq & MASK, 0, RST, 0)

    def _mk_syn(self, now: float) -> TcpSegment:
        cfg = self.config
        st = self.state
        flags = SYN if st is SYN_SENT else SYN | ACK
        seg = TcpSegment(
            self._lport,
            self._rport,
            self._iss,
            self._rcv_nxt & MASK if flags & ACK else 0,
            flags,
            min(self._rcv_space, 0xFFFF),
            mss=cfg.mss,
        )
        if st is SYN_SENT:
            if cfg.window_scaling:
                s = 0
                while (cfg.recv_buffer >> s) > 0xFFFF and s < 14:
                    s += 1
                seg.wscale = s
            seg.sack_permitted = cfg.sack
            if cfg.timestamps:
                seg.timestamps = (self._ts_val(now), 0)
        else:
            if self._ws_ok:
                seg.wscale = self._rcv_wscale
            seg.sack_permitted = self._sack_ok
            if self._ts_ok:
                seg.timestamps = (self._ts_val(now), self._ts_recent)
            self._ack_now = False
        self._syn_xmit = now
        self.stats.segments_out += 1
        return seg

    def poll_transmit(self, now: float) -> list[TcpSegment]:
        """Segments to send now, in order. Call after every input, app call and timeout."""
        out: list[TcpSegment] = []
        self._batch_acked = False  # a poll ends the batch of input (see _receive_data)
        if self._ctrl:
            out.extend(self._ctrl)
            self._ctrl.clear()
        st = self.state
        if st is CLOSED:
            return out
        if self._syn_pending:
            self._syn_pending = False
            out.append(self._mk_syn(now))
            if self._rto_at is None:
                self._rto_at = now + self._current_rto()
            return out
        if st is SYN_SENT or st is SYN_RECEIVED:
            return out
        if st is ESTABLISHED or st in _SEND_STATES:
            self._send_data(now, out)
        if self._probe_pending:
            self._probe_pending = False
            self._send_probe(now, out)
        if self._ack_now:  # every segment built since the flag was set clears it
            out.append(self._mk(self._snd_nxt, ACK, b"", now))
        return out

    def _send_probe(self, now: float, out: list[TcpSegment]) -> None:
        """Keepalive or zero-window probe: persist sends data if any window is open."""
        room = self._snd_una + self._snd_wnd - self._snd_nxt
        if self._persist_backoff and room > 0 and self._unsent() > 0:
            self._send_new(now, out, min(room, self._mss, self._unsent()))
        else:
            out.append(self._mk(self._snd_una - 1, ACK, b"", now))
        if self._persist_backoff and self._snd_una >= self._snd_nxt:
            rto = self._current_rto() * (1 << min(self._persist_backoff, 16))
            self._persist_at = now + min(rto, self.config.rto_max)

    def _send_data(self, now: float, out: list[TcpSegment]) -> None:
        if (
            not self._lost_q
            and not self._tlp_pending
            and self._sndbuf_start + len(self._sndbuf) <= self._snd_nxt
            and (self._fin_sent or not self._fin_pending)
        ):
            if self._persist_at is not None:  # nothing waits to be sent (fast path)
                self._persist_at = None
                self._persist_backoff = 0
            return
        mss = self._mss
        # 1. Retransmit segments marked lost, within the congestion window.
        lost_q = self._lost_q
        while lost_q and self._pipe < self._cwnd:
            rec = lost_q.popleft()
            if rec.lost and not rec.sacked and not rec.delivered:
                self._retransmit(rec, now, out, rack=not self._rto_recovery)
        # 2. New data (and the FIN) within both windows.
        fin_wanted = self._fin_pending and not self._fin_sent
        if out and self._tlp_pending:
            self._tlp_pending = False  # retransmissions already elicit ACKs
            self._arm_tlp(now)
        # A probe carries new data unless lost segments wait (then it resends one).
        tlp = self._tlp_pending and not lost_q
        while True:
            unsent = self._unsent()
            if unsent <= 0 and not (fin_wanted and not self._fin_sent):
                break
            wnd_room = self._snd_una + self._snd_wnd - self._snd_nxt
            cwnd_room = self._cwnd - self._pipe
            if tlp:
                cwnd_room = max(cwnd_room, mss)  # the probe may exceed cwnd by one segment
            n = min(unsent, mss, wnd_room, cwnd_room)
            if unsent > 0:
                if n <= 0:
                    break
                if n < mss and n < unsent:
                    # Window- or cwnd-limited runt: wait (sender SWS avoidance).
                    if wnd_room < cwnd_room and n < self._max_snd_wnd // 2:
                        break
                    if cwnd_room <= wnd_room and self._pipe > 0:
                        break
                elif (
                    n < mss
                    and self.config.nagle
                    and self._small_end > self._snd_una
                    and not self._fin_pending
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
                self._tlp_pending = False
                self.stats.tlp_probes += 1
                self._tlp_out = True
            if self._fin_sent:
                break
        if self._tlp_pending:
            # TLP with nothing new to send: retransmit a segment already judged lost
            # (cwnd kept it back and no ACK came), else the highest unSACKed one.
            self._tlp_pending = False
            while lost_q and not (
                lost_q[0].lost and not lost_q[0].sacked and not lost_q[0].delivered
            ):
                lost_q.popleft()
            candidates = [lost_q.popleft()] if lost_q else reversed(self._sent)
            for rec in candidates:
                if not rec.sacked:
                    self.stats.tlp_probes += 1
                    self._tlp_out = True
                    self._retransmit(rec, now, out)
                    break
        # 3. Persist timer: data waiting, nothing in flight, window shut.
        if self._snd_una >= self._snd_nxt and (
            self._unsent() > 0 or (self._fin_pending and not self._fin_sent)
        ):
            if self._persist_at is None:
                rto = self._current_rto() * (1 << min(self._persist_backoff, 16))
                self._persist_at = now + min(rto, self.config.rto_max)
        else:
            self._persist_at = None
            self._persist_backoff = 0

    def _send_new(self, now: float, out: list[TcpSegment], n: int) -> None:
        start = self._snd_nxt
        off = start - self._sndbuf_start
        payload = bytes(self._sndbuf[off : off + n]) if n else b""
        end = start + n
        fin = (
            self._fin_pending
            and end == self._sndbuf_start + len(self._sndbuf)
            and end < self._snd_una + self._snd_wnd  # the FIN needs window too
        )
        flags = ACK
        if fin:
            flags |= FIN
            self._fin_sent = True
            self._fin_seq = end
        if n and end == self._sndbuf_start + len(self._sndbuf):
            flags |= PSH
        if n < self._mss:
            self._small_end = end
        seq_end = end + (1 if fin else 0)
        rec = _Sent(start, seq_end, now, fin)
        self._sent.append(rec)
        self._xmit_q.append((now, rec))
        self._pipe += seq_end - start
        self._snd_nxt = seq_end
        out.append(self._mk(start, flags, payload, now))
        if self._rto_at is None:
            self._rto_at = now + self._current_rto()
        if not self._tlp_pending:
            self._arm_tlp(now)

    def _retransmit(
        self, rec: _Sent, now: float, out: list[TcpSegment], rack: bool = False
    ) -> None:
        start = rec.start
        data_end = rec.end - (1 if rec.fin else 0)
        off = start - self._sndbuf_start
        payload = bytes(self._sndbuf[off : off + data_end - start])
        flags = ACK | (FIN if rec.fin else 0)
        if rec.lost:
            rec.lost = False
        if not rec.in_flight:
            rec.in_flight = True
            self._pipe += rec.end - start
        rec.retrans += 1
        rec.rack_retx = rack
        rec.xmit_ts = now
        self._xmit_q.append((now, rec))
        seg = self._mk(start, flags, payload, now)
        out.append(seg)
        self.stats.retransmits += 1
        self.stats.bytes_retransmitted += len(payload)
        if self._in_recovery:
            if self._undo_retrans >= 0:
                self._undo_retrans += 1
            if self._first_retrans_tsval is None and seg.timestamps is not None:
                self._first_retrans_tsval = seg.timestamps[0]
        if self._rto_at is None or (not self._rto_recovery and self._sent and self._sent[0] is rec):
            # Resending the oldest segment restarts the RTO (as Linux does): its ACK
            # needs a round trip from now, and with RTTs near the RTO (the mixnet)
            # the old deadline would fire spuriously and collapse cwnd.
            self._rto_at = now + self._current_rto()
        if not self._rto_recovery and not self._tlp_pending:
            self._arm_tlp(now)  # a lost retransmission is then found before the RTO


def check_invariants(conn: TcpConnection) -> None:
    """Internal consistency checks for tests (pipe accounting, queue order, buffers)."""
    pipe = sum(r.end - r.start for r in conn._sent if r.in_flight)
    assert pipe == conn._pipe, (pipe, conn._pipe)
    prev = conn._snd_una
    for r in conn._sent:
        assert r.start >= prev and r.end > r.start, (r.start, r.end, prev)
        assert not (r.sacked and r.in_flight) and not (r.lost and r.in_flight)
        prev = r.end
    assert prev <= conn._snd_nxt
    assert conn._snd_una <= conn._snd_nxt
    assert conn._rcv_adv >= conn._rcv_nxt or conn.state is CLOSED
    assert len(conn._sndbuf) <= conn.config.send_buffer


def reset_for(seg: TcpSegment) -> TcpSegment | None:
    """RFC 9293 §3.10.7.1: the RST answering a segment that matches no connection."""
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return TcpSegment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
    ack = (seg.seq + seg.seg_len) & MASK
    return TcpSegment(seg.dst_port, seg.src_port, 0, ack, RST | ACK, 0)
