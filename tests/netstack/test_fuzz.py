"""Hypothesis fuzzing of `NetStack.receive_packet`: nothing a peer sends may raise.

Random bytes exercise the IP layer; mutated valid packets with checksums
repaired after mutation reach the transport parsers, listeners, established
connections, ICMP error handling and fragment reassembly.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.netstack.iface.fragments import Reassembler
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.wire import icmp
from smolmix_cli.netstack.wire.checksum import internet_checksum
from smolmix_cli.netstack.wire.ip import (
    PROTO_FRAGMENT,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    encode_ip,
    encode_ipv6,
    pseudo_header_raw,
)
from smolmix_cli.netstack.wire.tcp import ACK, PSH, SYN, TcpSegment, encode_tcp
from smolmix_cli.netstack.wire.udp import encode_udp
from tests.fuzzing import scaled

from .relay import Impairment, SimLink

A4, B4 = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
A6, B6 = IPv6Address("fd00:e7a1::1"), IPv6Address("fd00:e7a1::2")

DEFAULT = settings(
    max_examples=scaled(300, fuzz=20_000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _tcp(src: bytes, dst: bytes, seg: TcpSegment) -> bytes:
    probe = encode_tcp(seg, pseudo_header_raw(src, dst, PROTO_TCP, 0))
    return encode_ip(
        src, dst, PROTO_TCP, encode_tcp(seg, pseudo_header_raw(src, dst, PROTO_TCP, len(probe)))
    )


def _udp(src: bytes, dst: bytes, dport: int, data: bytes) -> bytes:
    pseudo = pseudo_header_raw(src, dst, PROTO_UDP, 8 + len(data))
    return encode_ip(src, dst, PROTO_UDP, encode_udp(40000, dport, data, pseudo))


def _icmp(src: bytes, dst: bytes, msg: icmp.IcmpMessage) -> bytes:
    if len(src) == 4:
        return encode_ip(src, dst, PROTO_ICMP, icmp.encode_icmp(msg))
    pseudo = pseudo_header_raw(src, dst, PROTO_ICMPV6, 8 + len(msg.body))
    return encode_ip(src, dst, PROTO_ICMPV6, icmp.encode_icmp(msg, pseudo))


def _live_stack() -> tuple[NetStack, list[bytes]]:
    """A stack with a listener, a UDP socket and established v4/v6 connections,
    plus a corpus of valid packets that reach each of them."""
    cfg = TcpConfig(delayed_ack=0.0)
    a = NetStack([A4, A6], tcp_config=cfg)
    b = NetStack([B4, B6], tcp_config=cfg)
    link = SimLink(a, b, Impairment(), Impairment())
    b.tcp_listen(80)
    b.udp_bind(53)
    socks = [a.tcp_connect((B4, 80), 0.0), a.tcp_connect((B6, 80), 0.0)]
    link.run(lambda now: all(s.conn.is_established for s in socks), 1.0)
    corpus: list[bytes] = []
    for s in socks:
        s.send(b"hello world", link.now)
        corpus.extend(a.poll_transmit(link.now))  # data segments to established connections
    for src, dst in ((A4.packed, B4.packed), (A6.packed, B6.packed)):
        corpus.append(
            _tcp(
                src,
                dst,
                TcpSegment(
                    41000,
                    80,
                    1,
                    0,
                    SYN,
                    65535,
                    mss=1200,
                    wscale=7,
                    sack_permitted=True,
                    timestamps=(1, 0),
                ),
            )
        )
        corpus.append(_tcp(src, dst, TcpSegment(41001, 81, 1, 0, SYN, 65535)))
        corpus.append(
            _tcp(
                src,
                dst,
                TcpSegment(41002, 80, 5, 9, ACK | PSH, 100, b"data", sack_blocks=((1, 2),)),
            )
        )
        corpus.append(_udp(src, dst, 53, b"query"))
        corpus.append(_udp(src, dst, 54, b"closed"))
        v = 4 if len(src) == 4 else 6
        req = icmp.IcmpMessage(8 if v == 4 else 128, 0, 0x10001, b"ping")
        corpus.append(_icmp(src, dst, req))
        quoted = corpus[0] if v == 4 else corpus[1]
        corpus.append(_icmp(src, dst, icmp.frag_needed(quoted, v, 1280)))
        corpus.append(_icmp(src, dst, icmp.port_unreachable(quoted, v)))
    frag = struct.pack("!BBHI", PROTO_UDP, 0, 1, 77) + b"f" * 16
    corpus.append(encode_ipv6(A6.packed, B6.packed, PROTO_FRAGMENT, frag))
    corpus.append(
        encode_ipv6(
            A6.packed, B6.packed, 0, bytes([PROTO_UDP, 0, 1, 4, 0, 0, 0, 0]) + corpus[-6][40:]
        )
    )
    b.poll_transmit(link.now)
    return b, corpus


def _repair(packet: bytes) -> bytes:
    """Recompute IP and transport checksums of a (mutated) packet where the layout allows."""
    p = bytearray(packet)
    try:
        if p[0] >> 4 == 4:
            ihl = (p[0] & 15) * 4
            if ihl < 20 or len(p) < ihl:
                return bytes(p)
            p[10:12] = b"\x00\x00"
            p[10:12] = internet_checksum(bytes(p[:ihl])).to_bytes(2, "big")
            proto, src, dst, body = p[9], bytes(p[12:16]), bytes(p[16:20]), ihl
        else:
            if len(p) < 40:
                return bytes(p)
            proto, src, dst, body = p[6], bytes(p[8:24]), bytes(p[24:40]), 40
        offsets = {PROTO_TCP: 16, PROTO_UDP: 6, PROTO_ICMP: 2, PROTO_ICMPV6: 2}
        off = offsets.get(proto)
        if off is None or len(p) < body + off + 2:
            return bytes(p)
        seg = p[body:]
        seg[off : off + 2] = b"\x00\x00"
        pseudo = b"" if proto == PROTO_ICMP else pseudo_header_raw(src, dst, proto, len(seg))
        p[body + off : body + off + 2] = internet_checksum(pseudo, bytes(seg)).to_bytes(2, "big")
    except IndexError:
        pass
    return bytes(p)


_STACK, _CORPUS = _live_stack()


def _check(stack: NetStack, packets: list[bytes]) -> None:
    for i, packet in enumerate(packets):
        stack.receive_packet(packet, 1.0 + i * 0.001)
        stack.poll_transmit(1.0)
    stack.handle_timeout(2.0)
    assert stack.counters["internal_error"] == 0
    assert stack.reassembler.buffered_bytes <= stack.reassembler.max_total_bytes


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    packet = bytearray(draw(st.sampled_from(_CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert"]))
        pos = draw(st.integers(0, max(len(packet) - 1, 0)))
        if kind == "flip" and packet:
            packet[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and packet:
            packet[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del packet[pos:]
        elif kind == "extend":
            packet += draw(st.binary(min_size=1, max_size=40))
        else:
            packet[pos:pos] = draw(st.binary(min_size=1, max_size=12))
    data = bytes(packet)
    return _repair(data) if draw(st.booleans()) else data


def test_corpus_is_accepted() -> None:
    stack, corpus = _live_stack()
    before = sum(v for k, v in stack.counters.items())
    for packet in corpus:
        stack.receive_packet(packet, 1.0)
    bad = {k: v for k, v in stack.counters.items() if k.startswith("bad") or k == "truncated"}
    assert bad == {} and sum(stack.counters.values()) > before


@DEFAULT
@given(st.lists(st.binary(max_size=scaled(120, fuzz=1500)), max_size=8))
def test_random_bytes(packets: list[bytes]) -> None:
    _check(_STACK, packets)


@DEFAULT
@given(st.lists(mutated(), min_size=1, max_size=scaled(6, fuzz=8)))
def test_mutated_packets(packets: list[bytes]) -> None:
    _check(_STACK, packets)


def test_fragment_flood_stays_bounded() -> None:
    stack = NetStack([B6], reassembler=Reassembler(max_datagrams=8, max_total_bytes=10_000))
    for ident in range(2000):
        frag = struct.pack("!BBHI", PROTO_UDP, 0, 1, ident) + b"z" * 1200
        stack.receive_packet(encode_ipv6(A6.packed, B6.packed, PROTO_FRAGMENT, frag), 0.0)
    assert len(stack.reassembler) <= 8 and stack.reassembler.buffered_bytes <= 10_000
    assert stack.counters["fragments"] == 2000
    stack.handle_timeout(100.0)
    assert len(stack.reassembler) == 0 and stack.counters["fragment_timeout"] >= 1
