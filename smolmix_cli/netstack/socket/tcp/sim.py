"""A virtual-clock link between two `TcpConnection`s, for tests and benchmarks.

Time never passes for real: the loop jumps to the next segment delivery, the
next connection timer or the next application wake-up. The link can drop,
duplicate and delay segments (a fixed one-way delay plus an exponential
extra per segment, which reorders them as a Poisson mixnet does), all from a
seeded RNG so runs repeat exactly. Optionally every segment goes through the
wire codec (`encode_tcp`/`decode_tcp`) so the codec is exercised too.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection, reset_for
from smolmix_cli.netstack.socket.tcp.state import CLOSED
from smolmix_cli.netstack.wire.ip import Endpoint
from smolmix_cli.netstack.wire.tcp import ACK, SYN, TcpSegment, decode_tcp, encode_tcp

A_END: Endpoint = (IPv4Address("192.0.2.1"), 40000)
B_END: Endpoint = (IPv4Address("192.0.2.2"), 80)
_PSEUDO = b"\xc0\x00\x02\x01\xc0\x00\x02\x02\x00\x06\x00\x00"  # fixed: the sim has no IP


def check_invariants(conn: TcpConnection) -> None:
    """Internal consistency checks for tests (pipe accounting, queue order, buffers)."""
    tx = conn._tx
    sb = tx.sb
    pipe = sum(r.end - r.start for r in sb.sent if r.in_flight)
    assert pipe == sb.pipe, (pipe, sb.pipe)
    prev = tx.snd_una
    for r in sb.sent:
        assert r.start >= prev and r.end > r.start, (r.start, r.end, prev)
        assert not (r.sacked and r.in_flight) and not (r.lost and r.in_flight)
        prev = r.end
    assert prev <= tx.snd_nxt
    assert tx.snd_una <= tx.snd_nxt
    assert conn._rx.rcv_adv >= conn._rx.rcv_nxt or conn.state is CLOSED
    assert len(tx.buf) <= conn.config.send_buffer


class SimTimeout(Exception):
    """The scenario did not finish within its virtual-time budget."""


@dataclass
class LinkParams:
    one_way: float = 0.0005  # seconds, each direction (base RTT = 2 * one_way)
    loss: float = 0.0
    dup: float = 0.0
    exp_delay: float = 0.0  # mean of the exponential extra delay per segment (per hop)
    exp_hops: int = 1  # that many independent exponential delays (mix hops) per segment
    rate: float | None = None  # bytes/second per direction; None = unlimited


@dataclass
class LinkStats:
    sent: list[int] = field(default_factory=lambda: [0, 0])
    dropped: list[int] = field(default_factory=lambda: [0, 0])
    payload_bytes: list[int] = field(default_factory=lambda: [0, 0])


App = Callable[[float], float | None]


class SimLink:
    """Two connections, index 0 and 1, joined by an impaired virtual link."""

    def __init__(
        self,
        params: LinkParams,
        seed: int = 0,
        wire: bool = False,
        filter_fn: Callable[[int, TcpSegment], bool] | None = None,
        check: bool = False,
    ) -> None:
        self.check = check  # run internal invariant checks after every step
        self.params = params
        self.rng = random.Random(seed)
        self.wire = wire
        self.filter_fn = filter_fn  # return False to drop a segment (direction, segment)
        self.conns: list[TcpConnection | None] = [None, None]
        self.now = 0.0
        self.apps: list[App] = []
        self._app_wake: list[float | None] = []
        self._heap: list[tuple[float, int, int, TcpSegment]] = []
        self._n = 0
        self._link_free = [0.0, 0.0]
        self.stats = LinkStats()

    # -------------------------------------------------------------- wiring
    def connect(
        self,
        cfg_a: TcpConfig,
        cfg_b: TcpConfig,
        iss_a: int | None = None,
        iss_b: int | None = None,
    ) -> tuple[TcpConnection, TcpConnection]:
        """A connects to B; B accepts when A's SYN arrives. Returns (a, b) once B exists."""
        a = TcpConnection.connect(A_END, B_END, cfg_a, self.now, iss=iss_a)
        self.conns[0] = a
        self._cfg_b = cfg_b
        self._iss_b = iss_b
        self.flush()
        self.run_until(lambda: self.conns[1] is not None, 120.0)
        b = self.conns[1]
        assert b is not None
        return a, b

    def add_app(self, app: App) -> None:
        self.apps.append(app)
        self._app_wake.append(self.now)

    # -------------------------------------------------------------- link
    def _transmit(self, direction: int, seg: TcpSegment) -> None:
        p = self.params
        rng = self.rng
        self.stats.sent[direction] += 1
        self.stats.payload_bytes[direction] += len(seg.payload)
        if self.filter_fn is not None and not self.filter_fn(direction, seg):
            self.stats.dropped[direction] += 1
            return
        if p.loss and rng.random() < p.loss:
            self.stats.dropped[direction] += 1
            return
        if self.wire:
            seg = decode_tcp(encode_tcp(seg, _PSEUDO), _PSEUDO)
        copies = 2 if p.dup and rng.random() < p.dup else 1
        for _ in range(copies):
            t = self.now
            if p.rate:
                start = max(t, self._link_free[direction])
                t = start + (len(seg.payload) + 52) / p.rate
                self._link_free[direction] = t
            t += p.one_way
            if p.exp_delay:
                for _ in range(p.exp_hops):
                    t += rng.expovariate(1.0 / p.exp_delay)
            self._n += 1
            heapq.heappush(self._heap, (t, self._n, 1 - direction, seg))

    def flush(self) -> None:
        for i, conn in enumerate(self.conns):
            if conn is not None:
                for seg in conn.poll_transmit(self.now):
                    self._transmit(i, seg)

    def _deliver(self, dst: int, seg: TcpSegment) -> None:
        conn = self.conns[dst]
        if conn is None and dst == 1:
            if seg.flags & SYN and not seg.flags & ACK:
                conn = TcpConnection.accept(
                    seg, B_END, A_END, self._cfg_b, self.now, iss=self._iss_b
                )
                self.conns[1] = conn
            return
        if conn is None:
            return
        if conn.is_closed:
            # The connection is forgotten; a stack answers with a RST (RFC 9293 §3.10.7.1).
            rst = reset_for(seg)
            if rst is not None:
                self._transmit(dst, rst)
            return
        conn.handle_segment(seg, self.now)

    def step(self) -> bool:
        """Advance to the next event; False when nothing is left to happen."""
        t: float | None = self._heap[0][0] if self._heap else None
        for conn in self.conns:
            if conn is not None:
                d = conn.poll_deadline()
                if d is not None and (t is None or d < t):
                    t = d
        for w in self._app_wake:
            if w is not None and (t is None or w < t):
                t = w
        if t is None:
            return False
        if t > self.now:
            self.now = t
        now = self.now
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, dst, seg = heapq.heappop(heap)
            self._deliver(dst, seg)
            # Poll the receiving connection after every input: one-segment batches,
            # the finest grain (the stack polls once per received batch, so segments
            # arriving together may share an ACK there).
            conn = self.conns[dst]
            if conn is not None:
                for out in conn.poll_transmit(now):
                    self._transmit(dst, out)
        for conn in self.conns:
            if conn is not None:
                d = conn.poll_deadline()
                if d is not None and d <= now:
                    conn.handle_timeout(now)
        for i, app in enumerate(self.apps):
            self._app_wake[i] = app(now)
        self.flush()
        if self.check:
            for conn in self.conns:
                if conn is not None:
                    check_invariants(conn)
        return True

    def run_until(self, cond: Callable[[], bool], budget: float) -> float:
        """Step until `cond()`; raise SimTimeout past `budget` virtual seconds from now."""
        limit = self.now + budget
        while not cond():
            if not self.step():
                if cond():
                    break
                raise SimTimeout(f"idle at t={self.now:.3f} before condition held")
            if self.now > limit:
                raise SimTimeout(f"not done after {budget} virtual seconds")
        return self.now


class BulkSender:
    """App: writes `data` as buffer space allows, then closes (half-close)."""

    def __init__(self, conn: TcpConnection, data: bytes, close: bool = True) -> None:
        self.conn = conn
        self.view = memoryview(data)
        self.pos = 0
        self.close = close
        self.closed = False

    def __call__(self, now: float) -> float | None:
        conn = self.conn
        if conn.error is not None or self.closed:
            return None
        if self.pos < len(self.view) and conn.is_established:
            self.pos += conn.send(self.view[self.pos : self.pos + 262144])
        if self.pos >= len(self.view) and self.close and conn.is_established:
            conn.close()
            self.closed = True
        return None


class Reader:
    """App: reads everything available; optionally at most `chunk` bytes every `period`."""

    def __init__(self, conn: TcpConnection, chunk: int | None = None, period: float = 0.0) -> None:
        self.conn = conn
        self.buf = bytearray()
        self.chunk = chunk
        self.period = period
        self.next_read = 0.0
        self.eof_at: float | None = None

    def __call__(self, now: float) -> float | None:
        conn = self.conn
        if conn.error is not None:
            return None
        if self.chunk is None:
            if conn.readable:
                self.buf += conn.recv(1 << 30)
        elif now >= self.next_read and conn.readable:
            self.buf += conn.recv(self.chunk)
            self.next_read = now + self.period
        if conn.at_eof and self.eof_at is None:
            self.eof_at = now
        if self.chunk is not None and conn.readable:
            return max(self.next_read, now)
        return None
