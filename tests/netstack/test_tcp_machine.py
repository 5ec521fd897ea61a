"""Hypothesis drives the application API and the link in random orders.

Rules write, read, half-close, abort, deliver/drop/duplicate/reorder segments
and advance the virtual clock; after every step the engine's internal
invariants must hold and no call may raise anything but the documented
errors. At the end the link is healed and both sides must finish: every
byte written before close() arrives exactly once and in order (unless a side
aborted, when the other sees a prefix and a reset).
"""

from __future__ import annotations

import contextlib
import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from smolmix_cli.netstack.errors import ConnectionClosed, NetstackError
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection, reset_for
from smolmix_cli.netstack.socket.tcp.sim import A_END, B_END, check_invariants
from smolmix_cli.netstack.wire.tcp import ACK, SYN, TcpSegment
from tests.fuzzing import scaled


class TcpPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.cfg = TcpConfig(
            time_wait=0.5,
            send_buffer=3000,
            recv_buffer=3000,
            rto_max=2.0,
            max_retransmits=40,
            syn_retransmits=40,
            keepalive_idle=None,
            delayed_ack=0.01,
        )
        a = TcpConnection.connect(A_END, B_END, self.cfg, 0.0, iss=0xFFFFF000)
        self.conns: list[TcpConnection | None] = [a, None]
        self.wire: list[tuple[int, TcpSegment]] = []  # (destination, segment) in flight
        self.sent = [bytearray(), bytearray()]
        self.got = [bytearray(), bytearray()]
        self.closed = [False, False]
        self.aborted = [False, False]
        self.pump()

    # -- plumbing ---------------------------------------------------------
    def pump(self) -> None:
        for i, conn in enumerate(self.conns):
            if conn is not None:
                for seg in conn.poll_transmit(self.now):
                    self.wire.append((1 - i, seg))

    def deliver(self, dst: int, seg: TcpSegment) -> None:
        conn = self.conns[dst]
        if conn is None:
            if seg.flags & SYN and not seg.flags & ACK:
                self.conns[1] = TcpConnection.accept(seg, B_END, A_END, self.cfg, self.now)
            return
        if conn.is_closed:
            rst = reset_for(seg)
            if rst is not None:
                self.wire.append((1 - dst, rst))
            return
        conn.handle_segment(seg, self.now)

    def read(self, i: int) -> None:
        conn = self.conns[i]
        if conn is None:
            return
        with contextlib.suppress(NetstackError):
            self.got[i] += conn.recv(1 << 20)

    # -- rules --------------------------------------------------------------
    @rule(side=st.integers(0, 1), n=st.integers(1, 5000))
    def write(self, side: int, n: int) -> None:
        conn = self.conns[side]
        if conn is None:
            return
        data = bytes((len(self.sent[side]) + k) % 251 for k in range(n))
        try:
            taken = conn.send(data)
        except (ConnectionClosed, NetstackError):
            assert self.closed[side] or self.aborted[side] or conn.error is not None
            return
        assert 0 <= taken <= n
        self.sent[side] += data[:taken]
        self.pump()

    @rule(side=st.integers(0, 1))
    def read_rule(self, side: int) -> None:
        self.read(side)
        self.pump()

    @rule(side=st.integers(0, 1))
    def close(self, side: int) -> None:
        conn = self.conns[side]
        if conn is None:
            return
        conn.close()
        self.closed[side] = True
        self.pump()

    @precondition(lambda self: not any(self.aborted))
    @rule(side=st.integers(0, 1), chance=st.integers(0, 19))
    def abort(self, side: int, chance: int) -> None:
        conn = self.conns[side]
        if conn is None or chance:  # rare
            return
        conn.abort()
        self.aborted[side] = True
        self.pump()

    @rule(
        picks=st.lists(st.integers(0, 1000), max_size=8),
        drop=st.integers(0, 9),
        dup=st.booleans(),
    )
    def link(self, picks: list[int], drop: int, dup: bool) -> None:
        for p in picks:
            if not self.wire:
                break
            dst, seg = self.wire.pop(p % len(self.wire))  # any order: reordering
            if drop == 0:
                continue
            self.deliver(dst, seg)
            if dup:
                self.deliver(dst, seg)
        self.pump()

    @rule(dt=st.sampled_from([0.001, 0.01, 0.05, 0.3, 1.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        for conn in self.conns:
            if conn is not None:
                d = conn.poll_deadline()
                if d is not None and d <= self.now:
                    conn.handle_timeout(self.now)
        self.pump()

    @invariant()
    def consistent(self) -> None:
        for i, conn in enumerate(self.conns):
            if conn is not None:
                check_invariants(conn)
                assert self.sent[1 - i].startswith(self.got[i])

    def teardown(self) -> None:
        # Heal the link: deliver in order, no loss, until both sides are done.
        for side in (0, 1):
            conn = self.conns[side]
            if conn is not None and not self.closed[side]:
                conn.close()
                self.closed[side] = True
        rng = random.Random(0)
        self.pump()
        for _ in range(20000):
            if all(c is not None and c.is_closed for c in self.conns):
                break
            if self.wire:
                dst, seg = self.wire.pop(0)
                self.deliver(dst, seg)
            else:
                deadlines = [
                    d for c in self.conns if c is not None for d in [c.poll_deadline()] if d
                ]
                if not deadlines:
                    break
                self.now = max(self.now, min(deadlines)) + rng.random() * 1e-4
                for conn in self.conns:
                    if conn is not None and (conn.poll_deadline() or 1e18) <= self.now:
                        conn.handle_timeout(self.now)
            self.read(0)
            self.read(1)
            self.pump()
        self.read(0)
        self.read(1)  # data stays readable after the connection has closed
        a, b = self.conns
        assert a is not None
        if any(self.aborted) or b is None:
            return
        assert a.is_closed and b.is_closed, (a.state, b.state)
        if a.error is None and b.error is None:
            assert bytes(self.got[1]) == bytes(self.sent[0])
            assert bytes(self.got[0]) == bytes(self.sent[1])


TcpPair.TestCase.settings = settings(
    max_examples=scaled(60, fuzz=1500),
    stateful_step_count=scaled(40, fuzz=80),
    deadline=None,
)
test_tcp_pair = TcpPair.TestCase
