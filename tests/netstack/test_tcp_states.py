"""TCP state machine (RFC 9293) driven segment by segment, no simulator in between."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.errors import (
    ConnectionClosed,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
)
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection, reset_for
from smolmix_cli.netstack.socket.tcp.receiver import _STRETCH_ACK_SEGMENTS
from smolmix_cli.netstack.socket.tcp.sim import check_invariants
from smolmix_cli.netstack.socket.tcp.state import TcpState
from smolmix_cli.netstack.wire.tcp import ACK, FIN, RST, SYN, TcpSegment

A = (IPv4Address("192.0.2.1"), 40000)
B = (IPv4Address("192.0.2.2"), 80)
MASK = 0xFFFFFFFF


def cfg(**kw: object) -> TcpConfig:
    base: dict[str, object] = {"time_wait": 2.0, "delayed_ack": 0.0}
    base.update(kw)
    return TcpConfig(**base)  # type: ignore[arg-type]


def deliver(src: TcpConnection, dst: TcpConnection, now: float) -> list[TcpSegment]:
    segs = src.poll_transmit(now)
    for s in segs:
        dst.handle_segment(s, now)
    return segs


def settle(a: TcpConnection, b: TcpConnection, now: float) -> None:
    for _ in range(200):
        if not deliver(a, b, now) and not deliver(b, a, now):
            check_invariants(a)
            check_invariants(b)
            return
    raise AssertionError("segments kept flowing")


def handshake(
    ca: TcpConfig | None = None, cb: TcpConfig | None = None, now: float = 0.0
) -> tuple[TcpConnection, TcpConnection]:
    a = TcpConnection.connect(A, B, ca or cfg(), now, iss=1000)
    (syn,) = a.poll_transmit(now)
    assert syn.flags == SYN and syn.seq == 1000
    b = TcpConnection.accept(syn, B, A, cb or cfg(), now, iss=0xFFFFFF00)
    assert b.state is TcpState.SYN_RECEIVED
    (synack,) = b.poll_transmit(now)
    assert synack.flags == SYN | ACK and synack.ack == 1001 and synack.seq == 0xFFFFFF00
    a.handle_segment(synack, now)
    assert a.state is TcpState.ESTABLISHED and a.is_established
    (ack,) = a.poll_transmit(now)
    b.handle_segment(ack, now)
    assert b.state is TcpState.ESTABLISHED
    return a, b


def test_handshake_negotiates_options() -> None:
    a, b = handshake(cfg(recv_buffer=1 << 20), cfg(mss=1200))
    # A's MSS: min(1380, peer 1200) minus the 12 timestamp option bytes.
    assert a.effective_mss == 1200 - 12 and b.effective_mss == 1200 - 12
    assert a._rx.ts_ok and b._rx.ts_ok and a._rx.sack_ok and b._rx.sack_ok
    assert a._rx.rcv_wscale == 5 and b._tx.snd_wscale == 5  # 1 MiB >> 5 fits 16 bits


def test_options_off_and_default_mss() -> None:
    a, b = handshake(cfg(timestamps=False, sack=False, window_scaling=False), cfg())
    assert not a._rx.ts_ok and not b._rx.ts_ok and not b._rx.sack_ok
    assert a._tx.snd_wscale == 0 and b._tx.snd_wscale == 0
    assert a.effective_mss == 1380
    # No MSS option at all: RFC 9293 default of 536.
    syn = TcpSegment(5, 80, 77, 0, SYN, 1000)
    c = TcpConnection.accept(syn, B, A, cfg(), 0.0)
    assert c.effective_mss == 536


def test_data_both_ways_and_sequence_wrap() -> None:
    a, b = handshake()  # B's ISS is just below 2**32: its data wraps
    payload = bytes(range(256)) * 40
    assert a.send(payload) == len(payload)
    assert b.send(payload[::-1]) == len(payload)
    settle(a, b, 0.01)
    assert b.recv(1 << 20) == payload and a.recv(1 << 20) == payload[::-1]
    assert a._tx.snd_una == a._tx.snd_nxt and b._tx.snd_una == b._tx.snd_nxt
    assert b._tx.snd_nxt > 1 << 32  # unwrapped past the 32-bit boundary


def test_simultaneous_open() -> None:
    a = TcpConnection.connect(A, B, cfg(), 0.0, iss=100)
    b = TcpConnection.connect(B, A, cfg(), 0.0, iss=300)
    (sa,) = a.poll_transmit(0.0)
    (sb,) = b.poll_transmit(0.0)
    a.handle_segment(sb, 0.001)
    b.handle_segment(sa, 0.001)
    assert a.state is TcpState.SYN_RECEIVED and b.state is TcpState.SYN_RECEIVED
    (sa2,) = a.poll_transmit(0.001)
    (sb2,) = b.poll_transmit(0.001)
    assert sa2.flags == SYN | ACK and sa2.seq == 100 and sa2.ack == 301
    a.handle_segment(sb2, 0.002)
    b.handle_segment(sa2, 0.002)
    assert a.state is TcpState.ESTABLISHED and b.state is TcpState.ESTABLISHED
    a.send(b"ping")
    settle(a, b, 0.003)
    assert b.recv(10) == b"ping"


def test_half_close_each_way_and_time_wait_expiry() -> None:
    a, b = handshake()
    a.send(b"request")
    a.close()
    assert a.state is TcpState.FIN_WAIT_1
    with pytest.raises(ConnectionClosed):
        a.send(b"more")
    settle(a, b, 0.1)
    assert a.state is TcpState.FIN_WAIT_2 and b.state is TcpState.CLOSE_WAIT
    assert b.recv(100) == b"request" and b.at_eof and not a.at_eof
    # B keeps sending after A's half-close; A still receives.
    b.send(b"response" * 1000)
    settle(a, b, 0.2)
    assert a.recv(1 << 20) == b"response" * 1000
    b.close()
    assert b.state is TcpState.LAST_ACK
    settle(a, b, 0.3)
    assert b.is_closed and b.error is None
    assert a.state is TcpState.TIME_WAIT and a.at_eof
    assert a.poll_deadline() == pytest.approx(2.3)
    a.handle_timeout(2.29)
    assert a.state is TcpState.TIME_WAIT
    a.handle_timeout(2.3)
    assert a.is_closed and a.error is None


def test_time_wait_acks_retransmitted_fin_and_restarts_timer() -> None:
    a, b = handshake()
    a.close()
    settle(a, b, 0.0)
    b.close()
    (fin,) = b.poll_transmit(0.0)
    a.handle_segment(fin, 0.0)
    assert a.state is TcpState.TIME_WAIT
    (ack1,) = a.poll_transmit(0.0)
    a.handle_segment(fin, 1.0)  # our ACK was "lost": the FIN comes again
    (ack2,) = a.poll_transmit(1.0)
    assert ack2.flags == ACK and ack2.ack == ack1.ack == (fin.seq + 1) & MASK
    assert a.poll_deadline() == pytest.approx(3.0)


def test_simultaneous_close() -> None:
    a, b = handshake()
    a.close()
    b.close()
    (fa,) = a.poll_transmit(0.0)
    (fb,) = b.poll_transmit(0.0)
    assert fa.flags & FIN and fb.flags & FIN
    a.handle_segment(fb, 0.01)
    b.handle_segment(fa, 0.01)
    assert a.state is TcpState.CLOSING and b.state is TcpState.CLOSING
    settle(a, b, 0.02)
    assert a.state is TcpState.TIME_WAIT and b.state is TcpState.TIME_WAIT
    a.handle_timeout(5.0)
    b.handle_timeout(5.0)
    assert a.is_closed and b.is_closed


def test_connection_refused() -> None:
    a = TcpConnection.connect(A, B, cfg(), 0.0)
    (syn,) = a.poll_transmit(0.0)
    rst = reset_for(syn)
    assert rst is not None and rst.flags == RST | ACK and rst.ack == (syn.seq + 1) & MASK
    a.handle_segment(rst, 0.001)
    assert a.is_closed and isinstance(a.error, ConnectionRefused)
    with pytest.raises(ConnectionRefused):
        a.send(b"x")
    with pytest.raises(ConnectionRefused):
        a.recv(1)


def test_syn_sent_ignores_rst_with_bad_ack_and_resets_bad_synack() -> None:
    a = TcpConnection.connect(A, B, cfg(), 0.0, iss=5000)
    a.poll_transmit(0.0)
    a.handle_segment(TcpSegment(80, 40000, 0, 4000, RST | ACK, 0), 0.0)
    assert a.state is TcpState.SYN_SENT
    a.handle_segment(TcpSegment(80, 40000, 9, 7777, SYN | ACK, 100), 0.0)
    (rst,) = a.poll_transmit(0.0)
    assert rst.flags == RST and rst.seq == 7777 and a.state is TcpState.SYN_SENT


def test_reset_mid_stream_keeps_received_data_readable() -> None:
    a, b = handshake()
    b.send(b"last words")
    settle(a, b, 0.0)
    b.abort()
    (rst,) = b.poll_transmit(0.0)
    assert rst.flags & RST and b.is_closed
    with pytest.raises(ConnectionClosed):
        b.send(b"x")
    a.handle_segment(rst, 0.0)
    assert a.is_closed and isinstance(a.error, ConnectionReset)
    assert a.recv(100) == b"last words"
    with pytest.raises(ConnectionReset):
        a.recv(100)


def test_rfc5961_rst_in_window_but_not_exact_gets_challenge_ack() -> None:
    a, _b = handshake()
    nxt = a._rx.rcv_nxt
    a.handle_segment(TcpSegment(80, 40000, (nxt + 10) & MASK, 0, RST, 0), 0.0)
    assert a.state is TcpState.ESTABLISHED
    (chal,) = a.poll_transmit(0.0)
    assert chal.flags == ACK and chal.ack == nxt & MASK
    # Outside the window: silently dropped.
    a.handle_segment(TcpSegment(80, 40000, (nxt + 10_000_000) & MASK, 0, RST, 0), 0.0)
    assert a.poll_transmit(0.0) == [] and a.state is TcpState.ESTABLISHED
    # Exactly RCV.NXT: accepted.
    a.handle_segment(TcpSegment(80, 40000, nxt & MASK, 0, RST, 0), 0.0)
    assert isinstance(a.error, ConnectionReset)


def test_rfc5961_syn_in_established_gets_challenge_ack() -> None:
    a, _b = handshake()
    a.handle_segment(TcpSegment(80, 40000, (a._rx.rcv_nxt + 5) & MASK, 0, SYN, 1000), 0.0)
    assert a.state is TcpState.ESTABLISHED
    (chal,) = a.poll_transmit(0.0)
    assert chal.flags == ACK and a.stats.challenge_acks == 1


def test_rfc5961_ack_validation() -> None:
    a, b = handshake()
    una = a._tx.snd_una
    # ACK for data never sent: answered with an ACK, segment dropped (data ignored).
    a.handle_segment(
        TcpSegment(80, 40000, b._tx.snd_nxt & MASK, (una + 5000) & MASK, ACK, 100, b"zz"), 0.0
    )
    assert a.readable == 0 and len(a.poll_transmit(0.0)) == 1
    # ACK far below SND.UNA - MAX.SND.WND: challenge ACK.
    before = a.stats.challenge_acks
    a.handle_segment(
        TcpSegment(80, 40000, b._tx.snd_nxt & MASK, (una - 10**6) & MASK, ACK, 100), 0.0
    )
    assert a.stats.challenge_acks == before + 1


def test_reset_for() -> None:
    assert reset_for(TcpSegment(1, 2, 3, 4, RST, 0)) is None
    r = reset_for(TcpSegment(1, 2, 3, 4, ACK, 0, b"abc"))
    assert r is not None and (r.src_port, r.dst_port, r.seq, r.flags) == (2, 1, 4, RST)
    r = reset_for(TcpSegment(1, 2, MASK, 0, SYN | FIN, 0, b"ab"))
    assert r is not None and r.ack == 3 and r.flags == RST | ACK and r.seq == 0


def test_syn_retransmit_backoff_then_timeout() -> None:
    a = TcpConnection.connect(A, B, cfg(syn_retransmits=3, rto_initial=1.0), 0.0)
    times = []
    now = 0.0
    assert len(a.poll_transmit(now)) == 1
    while a.error is None:
        d = a.poll_deadline()
        assert d is not None
        now = d
        a.handle_timeout(now)
        segs = a.poll_transmit(now)
        if segs:
            assert segs[0].flags == SYN
            times.append(now)
    assert times == [1.0, 3.0, 7.0]
    assert now == 15.0 and isinstance(a.error, ConnectionTimedOut)


def test_rto_backoff_retransmit_limit_and_clamp() -> None:
    a, _b = handshake(cfg(max_retransmits=4, rto_min=0.2, rto_max=1.0, keepalive_idle=None))
    a.send(b"x" * 100)
    (seg,) = a.poll_transmit(0.0)
    assert seg.payload == b"x" * 100
    times = []
    now = 0.0
    while a.error is None:
        d = a.poll_deadline()
        assert d is not None
        now = d
        a.handle_timeout(now)
        for s in a.poll_transmit(now):
            if s.payload:
                times.append(round(now, 3))
    # A tail loss probe at 2*SRTT (+ the peer delayed-ACK allowance for a lone
    # segment) restarts the RTO (RFC 8985 §7.3); then RTOs from the 0.2 s floor
    # double until rto_max clamps them, and the fifth exceeds max_retransmits.
    assert times == [0.052, 0.252, 0.652, 1.452, 2.452]
    assert a.stats.tlp_probes == 1 and a.stats.rto_events == 4
    assert now == pytest.approx(3.452) and isinstance(a.error, ConnectionTimedOut)


def test_keepalive_probes_then_timeout() -> None:
    c = cfg(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_probes=3)
    a, b = handshake(c, cfg(keepalive_idle=None))
    assert a.poll_deadline() == pytest.approx(10.0)
    # An answered probe keeps the connection alive.
    a.handle_timeout(10.0)
    (probe,) = a.poll_transmit(10.0)
    assert probe.flags == ACK and not probe.payload and probe.seq == (a._tx.snd_una - 1) & MASK
    b.handle_segment(probe, 10.0)
    (answer,) = b.poll_transmit(10.0)
    a.handle_segment(answer, 10.0)
    assert a.poll_deadline() == pytest.approx(20.0)
    # Now the peer vanishes.
    now = 20.0
    sent = 0
    while True:
        a.handle_timeout(now)
        sent += len(a.poll_transmit(now))
        d = a.poll_deadline()
        if d is None:
            break
        now = d
    assert sent == 3 and isinstance(a.error, ConnectionTimedOut)
    assert now == pytest.approx(26.0)


def test_zero_window_persist_probes_with_slow_reader() -> None:
    ca = cfg(keepalive_idle=None)
    cb = cfg(recv_buffer=4000, keepalive_idle=None, window_scaling=False)
    a, b = handshake(ca, cb)
    data = bytes(i % 251 for i in range(20000))
    sent = a.send(data)
    now = 0.0
    settle(a, b, now)
    # Sender SWS avoidance keeps back the runt that would fill the window; the
    # persist timer then sends it, and afterwards probes a window that is shut.
    assert b.readable == 2 * a.effective_mss and a._tx.snd_una == a._tx.snd_nxt
    probes = []
    while len(probes) < 3:
        d = a.poll_deadline()
        assert d is not None
        now = d
        a.handle_timeout(now)
        segs = a.poll_transmit(now)
        assert len(segs) == 1
        if not segs[0].payload:
            assert segs[0].seq == (a._tx.snd_una - 1) & MASK
            probes.append(now)
        b.handle_segment(segs[0], now)
        settle(a, b, now)
    assert b.readable == 4000 and a._tx.snd_wnd == 0
    assert probes[2] - probes[1] > probes[1] - probes[0]
    got = bytearray()
    while len(got) < len(data):
        got += b.recv(1000)  # the app reads: window updates reopen the flow
        if sent < len(data):
            sent += a.send(data[sent:])
        settle(a, b, now)
        now += 0.01
    assert bytes(got) == data


def test_window_update_sent_only_after_meaningful_read() -> None:
    a, b = handshake(cfg(), cfg(recv_buffer=20000, window_scaling=False))
    a.send(b"y" * 20000)
    settle(a, b, 0.0)
    assert b.readable == 20000
    b.recv(100)
    assert b.poll_transmit(0.0) == []  # SWS avoidance: 100 bytes is not worth a segment
    b.recv(5000)
    (upd,) = b.poll_transmit(0.0)
    assert upd.window >= 5100


def test_nagle_on_coalesces_small_writes_and_off_sends_each() -> None:
    for nagle, expect in ((True, [b"a", b"bcd"]), (False, [b"a", b"b", b"c", b"d"])):
        a, b = handshake(cfg(nagle=nagle))
        sent: list[bytes] = []
        for ch in b"abcd":
            a.send(bytes([ch]))
            for seg in a.poll_transmit(0.0):
                sent.append(seg.payload)
                b.handle_segment(seg, 0.001)
        # B's ACK for "a" releases what Nagle held back, as one segment.
        for seg in b.poll_transmit(0.001):
            a.handle_segment(seg, 0.002)
        sent += [seg.payload for seg in a.poll_transmit(0.002) if seg.payload]
        assert sent == expect, (nagle, sent)


def test_nagle_minshall_tail_of_bulk_write_is_not_held() -> None:
    # Only an unacknowledged runt holds the next one back (Minshall, as Linux):
    # the tail of a bulk write goes out with full-sized segments still in flight,
    # instead of waiting for the peer's (possibly delayed) ACK.
    a, _b = handshake(cfg(nagle=True))
    mss = a.effective_mss
    a.send(b"x" * (mss * 2 + 100))
    sizes = [len(s.payload) for s in a.poll_transmit(0.0)]
    assert sizes == [mss, mss, 100]
    a.send(b"y" * 10)  # the 100-byte runt is unacked: this one waits
    assert a.poll_transmit(0.0) == []


def test_delayed_ack_every_second_segment_or_timer() -> None:
    a, b = handshake(cfg(), cfg(delayed_ack=0.04))
    b._rx.quickacks = 0
    b._tx.rtt.srtt = 0.5  # a mixnet-like round trip: the configured delay applies in full
    a.send(b"z" * a.effective_mss)
    (s1,) = a.poll_transmit(0.0)
    b.handle_segment(s1, 0.0)
    assert b.poll_transmit(0.0) == [] and b.poll_deadline() == pytest.approx(0.04)
    a.send(b"z" * a.effective_mss)
    (s2,) = a.poll_transmit(0.0)
    b.handle_segment(s2, 0.001)
    (ack,) = b.poll_transmit(0.001)  # second full segment: ACK at once
    assert ack.ack == a._tx.snd_nxt & MASK
    a.handle_segment(ack, 0.001)
    a.send(b"q")
    (s3,) = a.poll_transmit(0.002)
    b.handle_segment(s3, 0.002)
    assert b.poll_transmit(0.002) == []
    b.handle_timeout(0.042)
    assert len(b.poll_transmit(0.042)) == 1


def test_delayed_ack_never_waits_longer_than_a_round_trip() -> None:
    # Past 2*SRTT the sender's tail-loss probe would fire first; and when our last
    # ACK was lost, the sender's one-segment probe would wait out the whole delay.
    a, b = handshake(cfg(), cfg(delayed_ack=0.04))
    b._rx.quickacks = 0
    for srtt, expect in ((0.003, 0.003), (0.0001, 0.001), (None, 0.04)):
        b._tx.rtt.srtt = srtt
        a.send(b"z" * a.effective_mss)
        (seg,) = a.poll_transmit(1.0)
        b.handle_segment(seg, 1.0)
        assert b.poll_transmit(1.0) == []
        assert b.poll_deadline() == pytest.approx(1.0 + expect), srtt
        b.handle_timeout(1.0 + expect)
        (ack,) = b.poll_transmit(1.0 + expect)
        a.handle_segment(ack, 1.0 + expect)


def test_coalesced_ack_covers_a_batch_up_to_the_stretch_limit() -> None:
    # Segments handled before one poll (a receive batch): the first ACK leaves as
    # soon as two segments are unacked, the rest of the batch shares one more,
    # and never more than _STRETCH_ACK_SEGMENTS go unacknowledged.
    assert _STRETCH_ACK_SEGMENTS == 8
    mss = 0
    for n, expect in ((4, [2, 4]), (10, [2, 10]), (13, [2, 10, 13]), (3, [2])):
        a, b = handshake(cfg(nagle=False), cfg(delayed_ack=0.04))
        b._rx.quickacks = 0
        a._tx.cc.cwnd = 100 * a.effective_mss
        mss = a.effective_mss
        a.send(b"s" * (mss * n))
        segs = a.poll_transmit(0.0)
        assert len(segs) == n
        for seg in segs:
            b.handle_segment(seg, 0.001)
        acks = b.poll_transmit(0.001)
        base = segs[0].seq
        assert [((x.ack - base) & MASK) // mss for x in acks] == expect, n
        if n == 3:  # the odd one waits for the (SRTT-capped) delayed-ACK timer
            assert b.poll_deadline() is not None


def test_quickack_acks_every_segment_inside_a_batch() -> None:
    # At start and after a hole fills, each segment is acked on arrival, so a
    # single lost ACK cannot stall a small window.
    a, b = handshake(cfg(nagle=False), cfg(delayed_ack=0.04))
    mss = a.effective_mss
    a.send(b"q" * (mss * 4))
    segs = a.poll_transmit(0.0)
    for seg in segs:
        b.handle_segment(seg, 0.001)
    acks = b.poll_transmit(0.001)
    assert [x.ack for x in acks] == [s.seq + mss & MASK for s in segs]


def test_out_of_order_generates_sack_newest_first_and_dsack() -> None:
    a, b = handshake(cfg(nagle=False))
    mss = a.effective_mss
    a.send(b"m" * (mss * 6))
    segs = a.poll_transmit(0.0)
    assert len(segs) == 6
    b._rx.quickacks = 0
    b.handle_segment(segs[1], 0.0)
    b.handle_segment(segs[3], 0.0)
    b.handle_segment(segs[5], 0.0)
    acks = b.poll_transmit(0.0)
    # With SACK the first out-of-order segment of a batch is acked at once and the
    # rest share one ACK at the poll (its first block names the newest range).
    assert len(acks) == 2
    ack = acks[-1]
    base = segs[0].seq
    rel = [((lo - base) & MASK, (r - base) & MASK) for lo, r in ack.sack_blocks]
    assert rel == [(5 * mss, 6 * mss), (3 * mss, 4 * mss), (mss, 2 * mss)]
    assert ack.ack == base
    b.handle_segment(segs[3], 0.0)  # a duplicate of held data: DSACK first
    (dup,) = b.poll_transmit(0.0)
    assert len(dup.sack_blocks) == 3  # the D-SACK block plus the two newest
    assert ((dup.sack_blocks[0][0] - base) & MASK) == 3 * mss
    b.handle_segment(segs[0], 0.0)
    (ack2,) = b.poll_transmit(0.0)
    assert (ack2.ack - base) & MASK == 2 * mss
    # Sender scoreboard: SACKed segments leave the pipe; only holes are retransmitted.
    a.handle_segment(ack, 0.001)
    a.handle_segment(ack2, 0.001)
    check_invariants(a)
    assert [r.sacked for r in a._tx.sb.sent] == [False, True, False, True]
    a.handle_timeout(0.01)  # past any RACK reordering window
    retx = a.poll_transmit(0.01)
    assert [s.seq for s in retx if s.payload] == [segs[2].seq, segs[4].seq]
    assert a.stats.retransmits == 2


def _warm_rtt(a: TcpConnection, b: TcpConnection, rtt: float) -> float:
    """Exchanges until A's SRTT is about `rtt` (the handshake sampled 0); returns the time."""
    t = 0.5
    for _ in range(30):
        a.send(b"w" * 10)
        deliver(a, b, t)
        deliver(b, a, t + rtt)
        t += rtt
    assert a._tx.rack.min_rtt == pytest.approx(rtt) and a.srtt == pytest.approx(rtt, rel=0.05)
    return t


def _warmed_pair() -> tuple[TcpConnection, TcpConnection, float, int]:
    """A pair past the handshake with A's RTT at 0.1 s and B out of quickack mode."""
    a, b = handshake(cfg(nagle=False))
    t = _warm_rtt(a, b, 0.1)
    b._rx.quickacks = 0
    return a, b, t, a.effective_mss


def test_rack_hole_waits_the_reordering_window_before_any_reordering_is_seen() -> None:
    # A deliberate departure from RFC 8985 §6.2 step 4 (see rack.py): no window of 0
    # before reordering is seen; the hole is lost min_RTT/4 after the RACK RTT.
    a, b, t, mss = _warmed_pair()
    a.send(b"m" * (mss * 6))
    segs = a.poll_transmit(t)
    assert len(segs) == 6
    for seg in segs[1:]:
        b.handle_segment(seg, t + 0.05)
    for ack in b.poll_transmit(t + 0.05):
        a.handle_segment(ack, t + 0.1)
    assert not [x for x in a.poll_transmit(t + 0.1) if x.payload]
    deadline = a.poll_deadline()
    assert deadline == pytest.approx(t + 0.1 + 0.1 / 4)
    a.handle_timeout(deadline)
    retx = a.poll_transmit(deadline)
    assert [x.seq for x in retx if x.payload] == [segs[0].seq]
    assert a.stats.recoveries == 1


def test_sack_blocks_of_one_ack_are_not_mistaken_for_reordering() -> None:
    # One ACK names two new ranges, newest first: walking them in that order must
    # not look like the older range arriving late.
    a, b, t, mss = _warmed_pair()
    a.send(b"m" * (mss * 2))
    segs = a.poll_transmit(t)
    a.send(b"n" * (mss * 4))
    segs += a.poll_transmit(t + 0.01)  # later: the older range's RTT is longer
    assert len(segs) == 6
    for seg in (segs[1], segs[3], segs[4]):
        b.handle_segment(seg, t + 0.05)
    last = b.poll_transmit(t + 0.05)[-1]
    assert len(last.sack_blocks) == 2  # [3, 5) then [1, 2)
    a.handle_segment(last, t + 0.1)
    assert a._tx.rack.reo_meas == 0.0  # no reordering learnt
    check_invariants(a)


def test_out_of_order_without_sack_one_duplicate_ack_per_segment() -> None:
    # RFC 5681 §4.2: a peer without SACK counts duplicate ACKs, so none are merged.
    a, b = handshake(cfg(nagle=False, sack=False), cfg(sack=False))
    mss = a.effective_mss
    a.send(b"m" * (mss * 6))
    segs = a.poll_transmit(0.0)
    b._rx.quickacks = 0
    for seg in (segs[1], segs[3], segs[5]):
        b.handle_segment(seg, 0.0)
    acks = b.poll_transmit(0.0)
    assert [x.ack for x in acks] == [segs[0].seq] * 3 and not acks[0].sack_blocks


def test_abort_and_close_idempotence() -> None:
    a, b = handshake()
    a.close()
    a.close()
    assert a.state is TcpState.FIN_WAIT_1
    a.abort()
    (rst,) = a.poll_transmit(0.0)
    assert rst.flags & RST
    b.handle_segment(rst, 0.0)
    assert isinstance(b.error, ConnectionReset)
    with pytest.raises(ConnectionClosed):
        a.recv(1)


def test_paws_drops_old_timestamp() -> None:
    a, b = handshake()
    b.send(b"new")
    (seg,) = b.poll_transmit(5.0)
    a.handle_segment(seg, 5.0)
    a.poll_transmit(5.0)
    old = TcpSegment(80, 40000, seg.seq, seg.ack, ACK, 100, b"old", timestamps=(0, 0))
    assert seg.timestamps is not None
    old.timestamps = ((seg.timestamps[0] - 100_000) & MASK, 0)
    old.seq = (seg.seq + 3) & MASK
    a.handle_segment(old, 5.0)
    assert a.recv(100) == b"new"


def test_icmp_unreachable_is_fatal_only_while_connecting() -> None:
    a = TcpConnection.connect(A, B, cfg(), 0.0)
    a.poll_transmit(0.0)
    a.on_unreachable(0.1)
    assert isinstance(a.error, ConnectionRefused) and a.is_closed
    c, _d = handshake()
    c.on_unreachable(0.1)
    assert c.state is TcpState.ESTABLISHED and c.error is None


def test_idle_connection_survives_with_keepalives() -> None:
    c = cfg(keepalive_idle=1.0, keepalive_interval=1.0, keepalive_probes=2)
    a, b = handshake(c, c)
    now = 0.0
    while now < 100.0:
        deadlines = [x for x in (a.poll_deadline(), b.poll_deadline()) if x is not None]
        now = min(deadlines)
        for conn in (a, b):
            conn.handle_timeout(now)
        settle(a, b, now)
    assert a.state is TcpState.ESTABLISHED and b.state is TcpState.ESTABLISHED
    a.send(b"still here")
    settle(a, b, now)
    assert b.recv(100) == b"still here"


def test_segments_with_bad_numbers_never_raise() -> None:
    a, b = handshake()
    junk = [
        TcpSegment(80, 40000, 0, 0, 0, 0),
        TcpSegment(80, 40000, 123, 456, ACK | SYN | FIN | RST, 65535, b"x" * 3000),
        TcpSegment(80, 40000, MASK, MASK, ACK, 0, b"y", sack_blocks=((5, 1), (MASK, 0))),
        TcpSegment(
            80, 40000, b._tx.snd_nxt & MASK, a._tx.snd_nxt & MASK, ACK, 0, sack_blocks=((1, 2),)
        ),
        TcpSegment(
            80, 40000, b._tx.snd_nxt & MASK, a._tx.snd_nxt & MASK, ACK | FIN, 7, timestamps=(0, 0)
        ),
    ]
    for seg in junk:
        a.handle_segment(seg, 0.5)
        a.poll_transmit(0.5)
        check_invariants(a)


def test_fin_waits_for_window_and_is_sent_after_probe() -> None:
    a, b = handshake(cfg(keepalive_idle=None), cfg(recv_buffer=2000, window_scaling=False))
    a.send(b"w" * 2000)
    settle(a, b, 0.0)
    assert b.readable == 2000 and a._tx.snd_wnd == 0
    a.close()
    assert not any(s.flags & FIN for s in a.poll_transmit(0.0))
    d = a.poll_deadline()
    assert d is not None  # persist timer armed for the FIN alone
    a.handle_timeout(d)
    (probe,) = a.poll_transmit(d)
    assert not probe.flags & FIN
    b.recv(2000)
    settle(a, b, d)
    assert b.at_eof and a.state is TcpState.FIN_WAIT_2


def test_challenge_acks_rate_limited() -> None:
    a, _b = handshake()
    nxt = a._rx.rcv_nxt
    for i in range(50):
        a.handle_segment(TcpSegment(80, 40000, (nxt + 10 + i) & MASK, 0, RST, 0), 0.5)
    assert a.stats.challenge_acks == 10 and a.state is TcpState.ESTABLISHED
    a.handle_segment(TcpSegment(80, 40000, (nxt + 5) & MASK, 0, RST, 0), 1.6)
    assert a.stats.challenge_acks == 11


def test_rtt_sample_from_timestamp_echo_after_retransmission() -> None:
    ca = cfg(rto_initial=1.0, rto_min=0.2, tlp=False)
    a = TcpConnection.connect(A, B, ca, 0.0, iss=1)
    (syn,) = a.poll_transmit(0.0)
    b = TcpConnection.accept(syn, B, A, cfg(), 0.0)
    (synack,) = b.poll_transmit(0.3)
    a.handle_segment(synack, 0.6)  # SYN RTT 0.6 s
    b.handle_segment(a.poll_transmit(0.6)[0], 0.9)
    assert a.srtt == pytest.approx(0.6)
    a.send(b"data")
    (lost,) = a.poll_transmit(1.0)
    d = a.poll_deadline()
    assert d is not None
    a.handle_timeout(d)
    (retx,) = a.poll_transmit(d)
    assert retx.payload == lost.payload and a.stats.rto_events == 1
    b.handle_segment(retx, d + 0.05)
    (ack,) = b.poll_transmit(d + 0.05)
    a.handle_segment(ack, d + 0.1)
    # Karn forbids a sample from the retransmitted segment's send time; the echoed
    # timestamp is unambiguous: about 0.1 s, pulling SRTT down from 0.6 s.
    assert a.srtt is not None and 0.5 < a.srtt < 0.6


def test_handle_icmp_unreachable_uses_the_stacks_error() -> None:
    a = TcpConnection.connect(A, B, cfg(), 0.0)
    a.poll_transmit(0.0)
    err = ConnectionTimedOut("host unreachable")
    a.handle_icmp_unreachable(err, 0.1)
    assert a.error is err and a.is_closed and a.poll_transmit(0.1) == []


def test_set_mss_lowers_segment_size_for_new_data() -> None:
    a, _b = handshake(cfg(nagle=False))
    assert a.effective_mss == 1368
    a.set_mss(1000)
    assert a.effective_mss == 1000 - 12
    a.set_mss(1400)  # never raised again
    assert a.effective_mss == 988
    a.send(b"p" * 5000)
    sizes = [len(s.payload) for s in a.poll_transmit(0.0)]
    assert sizes == [988] * 5 + [5000 - 988 * 5]


def test_out_of_order_crumbs_are_bounded() -> None:
    _a, b = handshake(cfg(), cfg(recv_buffer=1 << 20))
    base = b._rx.rcv_nxt
    for i in range(1000):  # 1-byte segments with 1-byte gaps: 1000 ranges if kept
        b.handle_segment(
            TcpSegment(40000, 80, (base + 2 + 2 * i) & MASK, b._tx.snd_nxt & MASK, ACK, 100, b"c"),
            0.0,
        )
    assert len(b._rx.ooo.ranges) == 256
    b.poll_transmit(0.0)
    check_invariants(b)


def test_set_mss_splits_and_resends_segments_in_flight() -> None:
    a, b = handshake(cfg(nagle=False))
    data = bytes(range(256)) * 16
    a.send(data)
    a.close()
    first = a.poll_transmit(0.0)  # these never arrive: the path MTU shrank
    assert [len(s.payload) for s in first] == [1368, 1368, 1360]
    a.set_mss(600)
    check_invariants(a)
    resent = a.poll_transmit(0.001)
    assert resent and all(len(s.payload) <= 588 for s in resent)
    assert a.stats.recoveries == 0  # not a congestion signal
    for s in resent:
        b.handle_segment(s, 0.002)
    settle(a, b, 0.003)
    assert b.recv(1 << 16) == data and b.at_eof
    assert a.state is TcpState.FIN_WAIT_2


def test_fin_never_beyond_the_window_and_no_ack_storm() -> None:
    a, b = handshake(cfg(recv_buffer=3000, window_scaling=False), cfg(nagle=False))
    b.send(b"f" * 3000)
    b.close()
    segs = b.poll_transmit(0.0)
    assert sum(len(s.payload) for s in segs) == 3000
    assert not any(s.flags & FIN for s in segs)  # it would lie past A's window
    for s in segs:
        a.handle_segment(s, 0.0)
    settle(a, b, 0.0)
    assert not a.at_eof and a.readable == 3000
    a.recv(3000)
    settle(a, b, 0.01)
    assert a.at_eof and b.state is TcpState.FIN_WAIT_2
    # Pure ACKs beyond the window are answered at most every 0.5 s.
    beyond = TcpSegment(80, 40000, (a._rx.rcv_adv + 5) & MASK, a._tx.snd_nxt & MASK, ACK, 100)
    answers = 0
    for i in range(100):
        a.handle_segment(beyond, 1.0 + i * 0.01)
        answers += len(a.poll_transmit(1.0 + i * 0.01))
    assert answers == 2


def _conn_in_state(name: str) -> TcpConnection:
    if name == "SYN_SENT":
        c = TcpConnection.connect(A, B, cfg(), 0.0, iss=1000)
        c.poll_transmit(0.0)
        return c
    if name == "SYN_RECEIVED":
        a = TcpConnection.connect(A, B, cfg(), 0.0, iss=1000)
        (syn,) = a.poll_transmit(0.0)
        c = TcpConnection.accept(syn, B, A, cfg(), 0.0, iss=5)
        c.poll_transmit(0.0)
        return c
    a, b = handshake()
    a.send(b"q" * 5000)
    deliver(a, b, 0.0)
    if name == "FIN_WAIT_1":
        a.close()
        a.poll_transmit(0.0)  # the FIN is lost: not acknowledged yet
    if name in ("FIN_WAIT_2", "TIME_WAIT"):
        settle(a, b, 0.0)
        a.close()
        settle(a, b, 0.0)
    if name == "TIME_WAIT":
        b.close()
        settle(a, b, 0.0)
    assert a.state.name == name, a.state
    return a


@given(
    state=st.sampled_from(
        ["SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
    ),
    segs=st.lists(
        st.tuples(
            st.integers(0, MASK),
            st.integers(0, MASK),
            st.integers(0, 0xFF),
            st.integers(0, 0xFFFF),
            st.binary(max_size=64),
            st.none() | st.tuples(st.integers(0, MASK), st.integers(0, MASK)),
            st.lists(st.tuples(st.integers(0, MASK), st.integers(0, MASK)), max_size=4),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_arbitrary_segments_never_raise_in_any_state(
    state: str,
    segs: list[
        tuple[int, int, int, int, bytes, tuple[int, int] | None, list[tuple[int, int]], bool]
    ],
) -> None:
    c = _conn_in_state(state)
    now = 0.1
    for seq_off, ack_off, flags, window, payload, ts, sack, near in segs:
        # Half of the segments land near the live numbers, where the logic branches.
        seq = (c._rx.rcv_nxt + (seq_off % 200_000) - 100_000) & MASK if near else seq_off
        ack = (c._tx.snd_una + (ack_off % 200_000) - 100_000) & MASK if near else ack_off
        seg = TcpSegment(80, 40000, seq, ack, flags, window, payload, timestamps=ts)
        seg.sack_blocks = tuple(sack)
        c.handle_segment(seg, now)
        c.poll_transmit(now)
        check_invariants(c)
        d = c.poll_deadline()
        if d is not None and d < now + 1:
            c.handle_timeout(d)
            c.poll_transmit(d)
            check_invariants(c)
        now += 0.05
