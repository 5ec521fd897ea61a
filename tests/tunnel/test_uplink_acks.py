"""Lone TCP ACKs superseded in the tunnel's uplink queue are dropped before the mixnet."""

from __future__ import annotations

from smolmix_cli.netstack.wire.ip import encode_ipv4, encode_ipv6, pseudo_header_raw
from smolmix_cli.netstack.wire.tcp import ACK, FIN, SYN, TcpSegment, encode_tcp
from smolmix_cli.tunnel.ipr_link import IprDevice
from smolmix_cli.tunnel.uplink_acks import coalesce_lone_acks

V4 = (bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1]))
V6 = (bytes(15) + b"\x02", bytes(15) + b"\x01")


def packet(
    ack: int, flags: int = ACK, payload: bytes = b"", sport: int = 40000, v6: bool = False
) -> bytes:
    src, dst = V6 if v6 else V4
    seg = TcpSegment(sport, 443, 1000, ack, flags, 500, payload)
    seg.sack_blocks = ((ack + 100, ack + 200),)
    seg.timestamps = (1, 2)
    pseudo = pseudo_header_raw(src, dst, 6, 0)  # checksums are not checked here
    body = encode_tcp(seg, pseudo)
    return encode_ipv6(src, dst, 6, body) if v6 else encode_ipv4(src, dst, 6, body)


def test_older_lone_acks_of_a_flow_give_way_to_the_newest() -> None:
    a1, a2, a3 = packet(1), packet(2), packet(3)
    other = packet(7, sport=40001)
    assert coalesce_lone_acks([a1, other, a2, a3]) == [other, a3]


def test_a_data_segment_behind_a_lone_ack_supersedes_it_but_is_never_dropped() -> None:
    lone, data, later = packet(1), packet(2, payload=b"GET /"), packet(3)
    assert coalesce_lone_acks([lone, data]) == [data]
    assert coalesce_lone_acks([data, later]) == [data, later]


def test_syn_fin_and_other_protocols_are_left_alone() -> None:
    fin, syn = packet(1, ACK | FIN), packet(1, SYN)
    lone = packet(2)
    assert coalesce_lone_acks([fin, lone]) == [fin, lone]
    assert coalesce_lone_acks([packet(0), fin]) == [
        packet(0),
        fin,
    ]  # only data or ACK segments supersede
    assert coalesce_lone_acks([syn, lone]) == [syn, lone]
    udp = encode_ipv4(*V4, 17, b"\x00" * 12)
    assert coalesce_lone_acks([udp, udp, lone]) == [udp, udp, lone]
    assert coalesce_lone_acks([b"\x45", lone]) == [b"\x45", lone]


def test_ipv6_flows_are_coalesced_too() -> None:
    old, new = packet(1, v6=True), packet(2, v6=True)
    v4 = packet(1)
    assert coalesce_lone_acks([old, v4, new]) == [v4, new]


def test_the_device_coalesces_what_it_hands_the_link_and_counts_it() -> None:
    device = IprDevice()
    for n in range(5):
        assert device.send_nowait(packet(n))
    assert device.take_uplink(64) == [packet(4)]
    assert device.acks_coalesced == 4
    plain = IprDevice(coalesce_acks=False)
    for n in range(3):
        plain.send_nowait(packet(n))
    assert len(plain.take_uplink(64)) == 3


def _with_sack(ack: int, *blocks: tuple[int, int]) -> bytes:
    src, dst = V4
    seg = TcpSegment(40000, 443, 1000, ack & 0xFFFFFFFF, ACK, 500)
    seg.sack_blocks = tuple((a & 0xFFFFFFFF, b & 0xFFFFFFFF) for a, b in blocks)
    seg.timestamps = (1, 2)
    return encode_ipv4(src, dst, 6, encode_tcp(seg, pseudo_header_raw(src, dst, 6, 0)))


def test_a_lone_ack_reporting_a_duplicate_is_never_coalesced_away() -> None:
    # RFC 2883: the duplicate is reported once; the sender's undo of a spurious
    # retransmission waits for that report.
    below = _with_sack(5000, (3000, 4000))  # D-SACK below the cumulative ACK
    inside = _with_sack(5000, (6000, 7000), (6000, 9000))  # D-SACK inside the next block
    plain = _with_sack(5000, (6000, 7000), (8000, 9000))  # news the newer ACK repeats
    newer = _with_sack(9000)
    assert coalesce_lone_acks([below, newer]) == [below, newer]
    assert coalesce_lone_acks([inside, newer]) == [inside, newer]
    assert coalesce_lone_acks([plain, newer]) == [newer]
    wrapped = _with_sack(100, (0xFFFFFF00, 50))  # below the ACK across the wrap
    assert coalesce_lone_acks([wrapped, newer]) == [wrapped, newer]


def test_dsack_detection_reads_only_the_options_present() -> None:
    # a truncated or odd option list is read as no D-SACK, never past the header
    from smolmix_cli.ipr.lone_ack import is_lone_tcp_ack, reports_dsack

    good = _with_sack(5000, (3000, 4000))
    assert reports_dsack(good[20:])
    for cut in range(0, len(good) - 20):
        reports_dsack(good[20 : 20 + cut])  # no exception on any truncation
    assert not reports_dsack(packet(1)[20:])
    # and the mixnet client resends a lost one (a lone ACK otherwise goes once)
    assert not is_lone_tcp_ack(good) and is_lone_tcp_ack(packet(1))


def test_both_readers_skip_fragments_and_truncated_packets() -> None:
    # One header reader (ipr/lone_ack.tcp_segment) for the coalescer and the resend rule.
    from smolmix_cli.ipr.lone_ack import is_lone_tcp_ack

    lone = packet(1)
    fragment = lone[:6] + bytes([lone[6] | 0x20]) + lone[7:]  # more fragments follow
    cut = lone[:-4]  # shorter than its total length says
    newer = packet(2)
    for odd in (fragment, cut):
        assert not is_lone_tcp_ack(odd)
        assert coalesce_lone_acks([odd, newer]) == [odd, newer]
    assert is_lone_tcp_ack(lone) and coalesce_lone_acks([lone, newer]) == [newer]
