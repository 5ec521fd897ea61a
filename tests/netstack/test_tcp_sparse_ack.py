"""The sparse ACK policy of tunnel paths (`TcpConfig.ack_every`), in the sans-io engine."""

from __future__ import annotations

import os

import pytest

from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection
from smolmix_cli.netstack.socket.tcp.sim import BulkSender, LinkParams, Reader, SimLink
from smolmix_cli.netstack.wire.tcp import TcpSegment
from tests.netstack.test_tcp_states import MASK, cfg, handshake


def _pair() -> tuple[TcpConnection, int, list[TcpSegment]]:
    """A receiver with the sparse policy, its peer's MSS and 12 segments sent to it."""
    a, b = handshake(cfg(nagle=False), cfg(delayed_ack=0.04, ack_every=2))
    a._tx.cc.cwnd = 100 * a.effective_mss
    mss = a.effective_mss
    a.send(b"s" * (mss * 12))
    return b, mss, a.poll_transmit(0.0)


def _acked(ack_segments: list[TcpSegment], base: int, mss: int) -> list[int]:
    return [((x.ack - base) & MASK) // mss for x in ack_segments]


def test_in_order_segments_one_by_one_get_every_second_acked_from_the_start() -> None:
    # No quickack: the first segments of a connection are acked in pairs too.
    b, mss, segs = _pair()
    acks = []
    for i, seg in enumerate(segs[:6]):
        b.handle_segment(seg, 0.01 * i)
        acks += b.poll_transmit(0.01 * i)
    assert _acked(acks, segs[0].seq, mss) == [2, 4, 6]


def test_odd_segment_waits_a_quarter_of_srtt_capped_by_srtt() -> None:
    for srtt, expect in ((0.8, 0.2), (0.1, 0.04), (0.02, 0.02), (None, 0.04)):
        b, _, segs = _pair()
        b._tx.rtt.srtt = srtt
        b.handle_segment(segs[0], 1.0)
        assert b.poll_transmit(1.0) == []
        assert b.poll_deadline() == pytest.approx(1.0 + expect), srtt
        b.handle_timeout(1.0 + expect)
        (ack,) = b.poll_transmit(1.0 + expect)
        assert ack.ack == segs[1].seq


def test_out_of_order_segments_are_counted_not_each_acked() -> None:
    b, mss, segs = _pair()
    base = segs[0].seq
    b.handle_segment(segs[1], 0.0)  # a new hole: the sender's loss detection starts here
    (first,) = b.poll_transmit(0.0)
    assert first.ack == base and first.sack_blocks
    b.handle_segment(segs[3], 0.01)
    assert b.poll_transmit(0.01) == []  # one more out-of-order segment waits
    b.handle_segment(segs[4], 0.02)
    (pair,) = b.poll_transmit(0.02)  # the second since the last ACK
    rel = [((lo - base) & MASK) // mss for lo, _ in pair.sack_blocks]
    assert rel == [3, 1]
    b.handle_segment(segs[0], 0.03)  # fills the first hole: acked at once
    (filled,) = b.poll_transmit(0.03)
    assert _acked([filled], base, mss) == [2]


def test_a_long_batch_gets_a_stretch_ack_and_one_at_the_poll() -> None:
    b, mss, segs = _pair()
    for seg in segs[:10]:
        b.handle_segment(seg, 0.0)
    assert _acked(b.poll_transmit(0.0), segs[0].seq, mss) == [8, 10]


def test_duplicate_is_acked_at_once_with_dsack() -> None:
    b, _, segs = _pair()
    for seg in segs[:2]:
        b.handle_segment(seg, 0.0)
    b.poll_transmit(0.0)
    b.handle_segment(segs[0], 0.1)
    (dup,) = b.poll_transmit(0.1)
    assert dup.sack_blocks and dup.sack_blocks[0] == (segs[0].seq, segs[1].seq)


def _acks_for(data: bytes, seed: int, every: int) -> int:
    """ACKs the receiver sent for `data` over a mixnet-like lossy link (checked byte-exact)."""
    link = SimLink(LinkParams(one_way=0.4, exp_delay=0.15, loss=0.05), seed=seed)
    config = TcpConfig(time_wait=1.0, rto_min=1.0, rto_initial=3.0, mss=1200)
    a, b = link.connect(config, TcpConfig(time_wait=1.0, mss=1200, ack_every=every))
    link.run_until(lambda: a.is_established and b.is_established, 600.0)
    reader = Reader(b)
    link.add_app(BulkSender(a, data))
    link.add_app(reader)
    link.run_until(lambda: reader.eof_at is not None, 600.0)
    assert bytes(reader.buf) == data
    return b.stats.segments_out


def test_mixnet_like_lossy_link_is_byte_exact_with_fewer_acks() -> None:
    """Reordering (exp 150 ms per segment) and 5 % loss each way: recovery still
    completes, byte-exact, with far fewer ACKs than the LAN policy on the same seeds."""
    data = os.urandom(256 << 10)
    lan = sum(_acks_for(data, seed, 0) for seed in (1, 2, 3, 4))
    sparse = sum(_acks_for(data, seed, 2) for seed in (1, 2, 3, 4))
    assert sparse < 0.8 * lan, (sparse, lan)
