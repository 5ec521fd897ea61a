"""NetStack glue: demux, ports, listeners, ICMP, UDP, RST, counters (virtual time)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from smolmix_cli.netstack.errors import AddressInUse, ConnectionRefused
from smolmix_cli.netstack.iface.stack import EPHEMERAL_FIRST, NetStack
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.udp import DatagramTooLarge
from smolmix_cli.netstack.wire import icmp
from smolmix_cli.netstack.wire.ip import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    IPAddress,
    decode_ip,
    encode_ip,
    pseudo_header_raw,
)
from smolmix_cli.netstack.wire.tcp import ACK, RST, SYN, TcpSegment, decode_tcp, encode_tcp
from smolmix_cli.netstack.wire.udp import decode_udp, encode_udp

from .relay import Impairment, SimLink

A4, B4 = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
A6, B6 = IPv6Address("fd00:e7a1::1"), IPv6Address("fd00:e7a1::2")
ADDRS = {4: (A4, B4), 6: (A6, B6)}


def _cfg() -> TcpConfig:
    return TcpConfig(time_wait=0.5, delayed_ack=0.0, rto_min=0.05, rto_initial=0.2)


def _pair(**kw: object) -> tuple[NetStack, NetStack, SimLink]:
    a = NetStack([A4, A6], tcp_config=_cfg(), **kw)  # type: ignore[arg-type]
    b = NetStack([B4, B6], tcp_config=_cfg(), **kw)  # type: ignore[arg-type]
    return a, b, SimLink(a, b, Impairment(base_delay=0.005), Impairment(base_delay=0.005))


def _udp_packet(src: IPAddress, dst: IPAddress, sport: int, dport: int, data: bytes) -> bytes:
    pseudo = pseudo_header_raw(src.packed, dst.packed, PROTO_UDP, 8 + len(data))
    return encode_ip(src.packed, dst.packed, PROTO_UDP, encode_udp(sport, dport, data, pseudo))


def _tcp_packet(src: IPAddress, dst: IPAddress, seg: TcpSegment) -> bytes:
    probe = encode_tcp(seg, pseudo_header_raw(src.packed, dst.packed, PROTO_TCP, 0))
    pseudo = pseudo_header_raw(src.packed, dst.packed, PROTO_TCP, len(probe))
    return encode_ip(src.packed, dst.packed, PROTO_TCP, encode_tcp(seg, pseudo))


def _parse_tcp(packet: bytes) -> TcpSegment:
    ip = decode_ip(packet)
    assert ip.protocol == PROTO_TCP
    return decode_tcp(ip.payload, pseudo_header_raw(ip.src, ip.dst, PROTO_TCP, len(ip.payload)))


def test_mss_clamped_from_mtu() -> None:
    s = NetStack([A4, A6], mtu=1420)
    assert s.tcp_config_v4.mss == 1380 and s.tcp_config_v6.mss == 1360
    s = NetStack([A4], mtu=1000, tcp_config=TcpConfig(mss=1460))
    assert s.tcp_config_v4.mss == 960


def test_ephemeral_ports_shared_counter_wraps_and_skips() -> None:
    s = NetStack([A4])
    u = s.udp_bind()
    assert u.port == EPHEMERAL_FIRST
    sock = s.tcp_connect((B4, 80), 0.0)
    assert sock.local[1] == EPHEMERAL_FIRST + 1  # TCP continues the same counter
    s.udp_bind(EPHEMERAL_FIRST + 2)  # taken explicitly: the counter must skip it
    assert s.allocate_port() == EPHEMERAL_FIRST + 3
    s._next_port = 65535
    assert s.allocate_port() == 65535
    assert s.allocate_port() == EPHEMERAL_FIRST + 3  # wrapped, skipped 49152..49154 in use
    with pytest.raises(AddressInUse):
        s.udp_bind(EPHEMERAL_FIRST)


@pytest.mark.parametrize("version", [4, 6])
def test_echo_request_answered(version: int) -> None:
    a, b, link = _pair()
    a.icmp_echo(ADDRS[version][1], 7, 3, b"ping")
    link.run(lambda now: a.counters["icmp_echo_reply"] == 1, 1.0)
    assert b.counters["icmp_echo_answered"] == 1


@pytest.mark.parametrize("version", [4, 6])
def test_udp_exchange_and_port_unreachable(version: int) -> None:
    a, b, link = _pair()
    ua, ub = a.udp_bind(), b.udp_bind(5353)
    a.udp_sendto(ua, b"question", (ADDRS[version][1], 5353))
    link.run(lambda now: ub.readable == 1, 1.0)
    got = ub.recv()
    assert got is not None and got.data == b"question" and got.src == (ADDRS[version][0], ua.port)
    b.udp_sendto(ub, b"answer", got.src)
    link.run(lambda now: ua.readable == 1, 1.0)
    assert ua.recv().data == b"answer"  # type: ignore[union-attr]
    # closed port: ICMP port unreachable comes back and is counted
    a.udp_sendto(ua, b"nobody", (ADDRS[version][1], 9))
    link.run(lambda now: a.counters["icmp_error_udp"] == 1, 1.0)
    assert b.counters["udp_no_socket"] == 1 and b.counters["icmp_sent"] == 1


def test_udp_too_large_rejected() -> None:
    s = NetStack([A4, A6], mtu=1420)
    u = s.udp_bind()
    s.udp_sendto(u, b"x" * (1420 - 28), (B4, 1))
    with pytest.raises(DatagramTooLarge):
        s.udp_sendto(u, b"x" * (1420 - 27), (B4, 1))
    with pytest.raises(DatagramTooLarge):
        s.udp_sendto(u, b"x" * (1420 - 47), (B6, 1))


def test_udp_any_destination() -> None:
    exit_ = NetStack([IPv4Address("10.0.0.1")])
    catch = exit_.udp_bind_any()
    dst = IPv4Address("203.0.113.5")
    exit_.receive_packet(_udp_packet(A4, dst, 40000, 53, b"q"), 0.0)
    got = catch.recv()
    assert got is not None and got.dst == (dst, 53) and got.src == (A4, 40000)
    exit_.udp_sendto(catch, b"r", got.src, src=got.dst)
    (reply,) = exit_.poll_transmit(0.0)
    ip = decode_ip(reply)
    assert (ip.src, ip.dst) == (dst.packed, A4.packed)
    pseudo = pseudo_header_raw(ip.src, ip.dst, PROTO_UDP, len(ip.payload))
    assert decode_udp(ip.payload, pseudo) == (53, 40000, b"r")


def test_protocol_unreachable_and_not_ours() -> None:
    s = NetStack([A4])
    s.receive_packet(encode_ip(B4.packed, A4.packed, 132, b"sctp?"), 0.0)
    assert s.counters["unknown_protocol"] == 1
    (err,) = s.poll_transmit(0.0)
    ip = decode_ip(err)
    assert ip.protocol == PROTO_ICMP
    msg = icmp.decode_icmp(ip.payload)
    assert (msg.type, msg.code) == (3, 2)
    s.receive_packet(_udp_packet(B4, IPv4Address("192.0.2.77"), 1, 2, b"x"), 0.0)
    assert s.counters["not_ours"] == 1 and s.poll_transmit(0.0) == []


@pytest.mark.parametrize("version", [4, 6])
def test_rst_for_unknown_segment(version: int) -> None:
    a_addr, b_addr = ADDRS[version]
    s = NetStack([a_addr])
    syn = TcpSegment(40000, 81, 1000, 0, SYN, 65535, mss=1000)
    s.receive_packet(_tcp_packet(b_addr, a_addr, syn), 0.0)
    (out,) = s.poll_transmit(0.0)
    rst = _parse_tcp(out)
    assert rst.flags & RST and rst.flags & ACK and rst.ack == 1001
    assert (rst.src_port, rst.dst_port) == (81, 40000)
    # a stray ACK gets a RST with seq = its ack
    s.receive_packet(_tcp_packet(b_addr, a_addr, TcpSegment(40000, 81, 5, 777, ACK, 100)), 0.0)
    (out,) = s.poll_transmit(0.0)
    assert _parse_tcp(out).seq == 777 and _parse_tcp(out).flags & RST
    # a RST is never answered
    s.receive_packet(_tcp_packet(b_addr, a_addr, TcpSegment(40000, 81, 5, 0, RST, 0)), 0.0)
    assert s.poll_transmit(0.0) == []
    assert s.counters["tcp_no_socket"] == 3


@pytest.mark.parametrize("version", [4, 6])
def test_connect_to_closed_port_refused(version: int) -> None:
    a, _b, link = _pair()
    sock = a.tcp_connect((ADDRS[version][1], 81), 0.0)
    link.run(lambda now: sock.conn.error is not None, 2.0)
    assert isinstance(sock.conn.error, ConnectionRefused)
    assert link.now < 0.1  # the RST, not a timeout
    assert a.connections == []  # forgotten, port freed


@pytest.mark.parametrize("version", [4, 6])
def test_handshake_data_and_close_through_listener(version: int) -> None:
    a, b, link = _pair()
    listener = b.tcp_listen(8080)
    client = a.tcp_connect((ADDRS[version][1], 8080), 0.0)
    link.run(lambda now: client.conn.is_established and bool(listener.ready), 1.0)
    server = listener.accept()
    assert server is not None and server.remote == client.local
    assert client.send(b"hello", link.now) == 5
    link.run(lambda now: server.conn.readable == 5, 1.0)
    assert server.recv(100, link.now) == b"hello"
    client.close(link.now)
    link.run(lambda now: server.conn.at_eof, 1.0)
    server.send(b"bye", link.now)
    server.close(link.now)
    link.run(lambda now: client.conn.readable == 3, 1.0)
    assert client.recv(100, link.now) == b"bye"
    link.run(lambda now: client.conn.at_eof, 1.0)
    client.release(link.now)
    server.release(link.now)
    link.run(lambda now: not a.connections and not b.connections, 5.0)


def test_listener_any_destination() -> None:
    exit_ = NetStack([IPv4Address("10.0.0.1"), IPv6Address("fd00::1")], tcp_config=_cfg())
    client = NetStack([A4, A6], tcp_config=_cfg())
    link = SimLink(client, exit_, Impairment(), Impairment())
    catch = exit_.tcp_listen_any()
    targets = [(IPv4Address("203.0.113.7"), 443), (IPv6Address("2001:db8::7"), 80)]
    socks = [client.tcp_connect(t, 0.0) for t in targets]
    link.run(lambda now: len(catch.ready) == 2, 1.0)
    accepted = {s.local: s for s in (catch.accept(), catch.accept()) if s is not None}
    assert set(accepted) == set(targets)
    assert all(s.conn.is_established for s in socks)
    socks[0].send(b"GET", link.now)
    link.run(lambda now: accepted[targets[0]].conn.readable == 3, 1.0)
    # the exit's own address is not a NAT target: a closed port there is refused
    own = client.tcp_connect((IPv4Address("10.0.0.1"), 22), link.now)
    link.run(lambda now: own.conn.error is not None, 1.0)
    assert isinstance(own.conn.error, ConnectionRefused) and not catch.ready


def test_backlog_full_drops_syn() -> None:
    a, b, link = _pair()
    listener = b.tcp_listen(80, backlog=1)
    first = a.tcp_connect((B4, 80), 0.0)
    link.run(lambda now: first.conn.is_established, 1.0)
    second = a.tcp_connect((B4, 80), link.now)
    link.run(lambda now: b.counters["tcp_backlog_full"] >= 1, 1.0)
    assert not second.conn.is_established
    assert listener.accept() is first_peer(b, first)
    link.run(lambda now: second.conn.is_established, 5.0)  # SYN retransmit succeeds


def first_peer(stack: NetStack, client: object) -> object:
    for s in stack.connections:
        if s.remote == client.local:  # type: ignore[attr-defined]
            return s
    return None


@pytest.mark.parametrize("version", [4, 6])
def test_icmp_unreachable_fails_connect_fast(version: int) -> None:
    a_addr, b_addr = ADDRS[version]
    a = NetStack([a_addr], tcp_config=_cfg())
    sock = a.tcp_connect((b_addr, 443), 0.0)
    (syn_packet,) = a.poll_transmit(0.0)
    err = icmp.port_unreachable(syn_packet, version)
    if version == 4:
        reply = encode_ip(b_addr.packed, a_addr.packed, PROTO_ICMP, icmp.encode_icmp(err))
    else:
        pseudo = pseudo_header_raw(b_addr.packed, a_addr.packed, PROTO_ICMPV6, 8 + len(err.body))
        reply = encode_ip(b_addr.packed, a_addr.packed, PROTO_ICMPV6, icmp.encode_icmp(err, pseudo))
    a.receive_packet(reply, 0.01)
    assert a.counters["icmp_unreachable_connect"] == 1
    assert isinstance(sock.conn.error, ConnectionRefused)
    assert a.connections == []


@pytest.mark.parametrize("version", [4, 6])
def test_packet_too_big_lowers_mss(version: int) -> None:
    a, b, link = _pair()
    b.tcp_listen(80)
    sock = a.tcp_connect((ADDRS[version][1], 80), 0.0)
    link.run(lambda now: sock.conn.is_established, 1.0)
    sock.send(b"d" * 4000, link.now)
    big = next(p for p in a.poll_transmit(link.now) if len(p) > 1300)
    err = icmp.frag_needed(big, version, 1280)
    src, dst = ADDRS[version][1].packed, ADDRS[version][0].packed
    if version == 4:
        packet = encode_ip(src, dst, PROTO_ICMP, icmp.encode_icmp(err))
    else:
        pseudo = pseudo_header_raw(src, dst, PROTO_ICMPV6, 8 + len(err.body))
        packet = encode_ip(src, dst, PROTO_ICMPV6, icmp.encode_icmp(err, pseudo))
    a.receive_packet(packet, link.now)
    assert a.counters["icmp_packet_too_big"] == 1
    sizes: list[int] = []
    link.tap = lambda side, p: sizes.append(len(p)) if side == 0 else None
    sock.send(b"e" * 4000, link.now)
    full = a.config_for(version).send_buffer
    link.run(lambda now: sock.conn.send_space() == full, 3.0)  # everything acknowledged
    assert sizes and max(sizes) <= 1280
    assert b.connections[0].conn.readable == 8000


def test_malformed_counted_not_raised() -> None:
    s = NetStack([A4, A6])
    good = _udp_packet(B4, A4, 1, 2, b"hello")
    cases = {
        "bad_version": b"\x70" + good[1:],
        "truncated": good[:12],
        "bad_checksum": good[:10] + b"\x00\x00" + good[12:],
        "bad_length": good[:2] + struct.pack("!H", 9999) + good[4:],
    }
    for reason, packet in cases.items():
        s.receive_packet(packet, 0.0)
        assert s.counters[reason] >= 1, reason
    tcp_bad = _tcp_packet(B4, A4, TcpSegment(1, 2, 3, 4, ACK, 5))
    tcp_bad = tcp_bad[:-1] + bytes([tcp_bad[-1] ^ 0xFF])
    s.receive_packet(tcp_bad, 0.0)
    assert s.counters["bad_checksum"] >= 2
    assert s.counters["internal_error"] == 0


def test_multicast_never_answered_even_in_any_destination_mode() -> None:
    exit_ = NetStack([IPv4Address("10.0.0.1"), IPv6Address("fd00::1")])
    exit_.tcp_listen_any()
    catch = exit_.udp_bind_any()
    mdns6 = IPv6Address("ff02::fb")
    exit_.receive_packet(_udp_packet(A6, mdns6, 5353, 5353, b"mdns"), 0.0)
    exit_.receive_packet(_udp_packet(A4, IPv4Address("224.0.0.251"), 5353, 5353, b"mdns"), 0.0)
    syn = TcpSegment(40000, 80, 1, 0, SYN, 1000)
    exit_.receive_packet(_tcp_packet(A4, IPv4Address("255.255.255.255"), syn), 0.0)
    exit_.receive_packet(_tcp_packet(IPv4Address("0.0.0.0"), B4, syn), 0.0)
    assert catch.readable == 0 and exit_.connections == []
    assert exit_.poll_transmit(0.0) == []
    assert exit_.counters["not_unicast"] == 3 and exit_.counters["bad_source"] == 1


def test_icmp_errors_rate_limited() -> None:
    s = NetStack([A4], icmp_error_rate=(10.0, 5.0))
    for _ in range(20):
        s.receive_packet(_udp_packet(B4, A4, 1000, 9, b"x"), 0.0)
    assert len(s.poll_transmit(0.0)) == 5  # the burst
    assert s.counters["icmp_rate_limited"] == 15
    for i in range(20):
        s.receive_packet(_udp_packet(B4, A4, 1000, 9, b"x"), 1.0 + i * 0.01)
    assert len(s.poll_transmit(1.2)) == 5 + 1  # refilled to the burst, +10/s for 0.19 s


def test_released_connection_is_reaped_after_orphan_timeout() -> None:
    a = NetStack([A4], tcp_config=_cfg(), orphan_timeout=2.0)
    b = NetStack([B4], tcp_config=TcpConfig(keepalive_idle=None, delayed_ack=0.0))
    link = SimLink(a, b, Impairment(base_delay=0.005), Impairment(base_delay=0.005))
    b.tcp_listen(80)
    sock = a.tcp_connect((B4, 80), 0.0)
    link.run(lambda now: sock.conn.is_established, 1.0)
    port = sock.local[1]
    sock.release(link.now)  # FIN sent; the peer application never closes its side
    link.run(lambda now: now > 1.0, 2.0)
    assert a.connections == [sock]  # half-closed, waiting for the peer's FIN
    link.run(lambda now: not a.connections, 5.0)
    assert a.counters["tcp_orphan_aborted"] == 1
    assert not a._ports[port]  # the ephemeral port is free again
    link.run(lambda now: not b.connections, 5.0)  # our RST closed the peer's side too


def test_blocked_writer_is_told_once_a_third_of_the_buffer_is_free() -> None:
    # As Linux's sk_stream_min_wspace: no event per ACK while the room trickles back.
    a, _, link = _pair()
    sock, server = link.open_tcp(B4, 80, 1.0)
    full = a.config_for(4).send_buffer
    assert sock.send(b"x" * (2 * full), link.now) == full
    a.take_events()
    rooms: list[int] = []

    def step(now: float) -> bool:
        while server.recv(1 << 20, now):
            pass
        if sock in a.take_events():
            rooms.append(sock.conn.send_space())
        return sock.conn.send_space() == full

    link.run(step, 5.0)
    assert len(rooms) == 1 and rooms[0] * 3 >= full, rooms


def test_has_unsent_names_connections_whose_windows_hold_data_back() -> None:
    a, _, link = _pair()
    assert not a.has_unsent()
    sock, server = link.open_tcp(B4, 80, 1.0)
    assert not a.has_unsent()
    sock.send(b"x" * a.config_for(4).send_buffer, link.now)  # more than the first window
    assert a.has_unsent() and a.has_unsent({B4}) and not a.has_unsent({B6})

    def drained(now: float) -> bool:
        while server.recv(1 << 20, now):
            pass
        return not a.has_unsent()

    link.run(drained, 5.0)
    assert not a.has_unsent({B4})
