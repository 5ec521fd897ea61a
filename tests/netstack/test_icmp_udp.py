"""ICMP and UDP codecs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.socket.udp import Datagram, UdpSocket
from smolmix_cli.netstack.wire import icmp
from smolmix_cli.netstack.wire.ip import (
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    PacketError,
    encode_ipv4,
    encode_ipv6,
    pseudo_header_raw,
)
from smolmix_cli.netstack.wire.udp import decode_udp, encode_udp

A4, B4 = IPv4Address("192.0.2.1").packed, IPv4Address("192.0.2.2").packed
A6, B6 = IPv6Address("fd00:e7a1::1").packed, IPv6Address("fd00:e7a1::2").packed


def test_icmpv4_echo_known_bytes() -> None:
    # echo request id 1 seq 1 payload "abcd": checksum worked out by hand (0xFFFF-folded sum)
    msg = icmp.IcmpMessage(icmp.V4_ECHO_REQUEST, 0, 0x00010001, b"abcd")
    raw = icmp.encode_icmp(msg)
    words = [0x0800, 0, 0x0001, 0x0001, 0x6162, 0x6364]
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert raw[2:4] == ((~total) & 0xFFFF).to_bytes(2, "big")
    back = icmp.decode_icmp(raw)
    assert (back.type, back.echo_id, back.echo_seq, back.body) == (8, 1, 1, b"abcd")


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**32 - 1), st.binary(max_size=200))
def test_icmpv6_roundtrip_and_checksum_covers_pseudo_header(
    typ: int, code: int, rest: int, body: bytes
) -> None:
    pseudo = pseudo_header_raw(A6, B6, PROTO_ICMPV6, 8 + len(body))
    raw = icmp.encode_icmp(icmp.IcmpMessage(typ, code, rest, body), pseudo)
    assert icmp.decode_icmp(raw, pseudo) == icmp.IcmpMessage(typ, code, rest, body)
    other = pseudo_header_raw(A6, A6, PROTO_ICMPV6, 8 + len(body))
    with pytest.raises(PacketError):
        icmp.decode_icmp(raw, other)


def test_icmp_truncated_and_bad_checksum() -> None:
    with pytest.raises(PacketError):
        icmp.decode_icmp(b"\x08\x00\x00")
    raw = bytearray(icmp.encode_icmp(icmp.IcmpMessage(8, 0, 5, b"x")))
    raw[-1] ^= 1
    with pytest.raises(PacketError) as info:
        icmp.decode_icmp(bytes(raw))
    assert info.value.reason == "bad_checksum"


@pytest.mark.parametrize("version", [4, 6])
def test_quote_parsing(version: int) -> None:
    tcp_head = b"\xc0\x01\x00\x50" + b"\x00" * 16
    if version == 4:
        original = encode_ipv4(A4, B4, PROTO_TCP, tcp_head)
    else:
        original = encode_ipv6(A6, B6, PROTO_TCP, tcp_head)
    err = icmp.port_unreachable(original, version)
    quote = icmp.parse_quote(err.body, version)
    assert (quote.protocol, quote.src_port, quote.dst_port) == (PROTO_TCP, 0xC001, 80)
    assert quote.src == (A4 if version == 4 else A6)
    with pytest.raises(PacketError):
        icmp.parse_quote(err.body[:22], version)


def test_error_quote_fits_minimum_mtu() -> None:
    big = encode_ipv6(A6, B6, PROTO_UDP, b"u" * 1400)
    err = icmp.frag_needed(big, 6, 1280)
    assert 40 + 8 + len(err.body) <= 1280 and err.rest == 1280
    assert icmp.next_hop_mtu(err, 6) == 1280
    v4 = icmp.frag_needed(encode_ipv4(A4, B4, PROTO_UDP, b"u" * 1400), 4, 1000)
    assert 20 + 8 + len(v4.body) <= 576 and icmp.next_hop_mtu(v4, 4) == 1000


@given(st.binary(max_size=300), st.integers(1, 65535), st.integers(1, 65535), st.booleans())
def test_udp_roundtrip(payload: bytes, sport: int, dport: int, v6: bool) -> None:
    src, dst = (A6, B6) if v6 else (A4, B4)
    pseudo = pseudo_header_raw(src, dst, PROTO_UDP, 8 + len(payload))
    raw = encode_udp(sport, dport, payload, pseudo)
    assert raw[6:8] != b"\x00\x00"
    assert decode_udp(raw + b"pad", pseudo[:-2] + pseudo[-2:]) == (sport, dport, payload)


def test_udp_errors() -> None:
    pseudo4 = pseudo_header_raw(A4, B4, PROTO_UDP, 12)
    raw = encode_udp(1, 2, b"abcd", pseudo4)
    no_sum = raw[:6] + b"\x00\x00" + raw[8:]
    assert decode_udp(no_sum, pseudo4) == (1, 2, b"abcd")  # IPv4: zero means no checksum
    pseudo6 = pseudo_header_raw(A6, B6, PROTO_UDP, 12)
    with pytest.raises(PacketError):
        decode_udp(no_sum, pseudo6)  # IPv6: a zero checksum is invalid
    with pytest.raises(PacketError):
        decode_udp(raw[:4] + b"\x00\x04" + raw[6:], pseudo4)  # length < 8
    with pytest.raises(PacketError):
        decode_udp(raw[:4] + b"\x00\x40" + raw[6:], pseudo4)  # length > data
    with pytest.raises(PacketError):
        decode_udp(raw[:-1] + b"\x00", pseudo4)


def test_udp_socket_queue_bounds() -> None:
    sock = UdpSocket(None, 5000, max_datagrams=3, max_bytes=100)
    src = (IPv4Address("192.0.2.9"), 9)
    dst = (IPv4Address("192.0.2.1"), 5000)
    assert sock.deliver(Datagram(b"a" * 60, src, dst))
    assert not sock.deliver(Datagram(b"b" * 60, src, dst))  # bytes bound
    assert sock.deliver(Datagram(b"c", src, dst)) and sock.deliver(Datagram(b"d", src, dst))
    assert not sock.deliver(Datagram(b"e", src, dst))  # count bound
    assert sock.dropped == 2
    got = [sock.recv(), sock.recv(), sock.recv(), sock.recv()]
    assert [g.data if g else None for g in got] == [b"a" * 60, b"c", b"d", None]
    assert sock.queued_bytes == 0
