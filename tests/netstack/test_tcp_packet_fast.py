"""Fast paths for established IPv4 segments: the encoder matches the general one byte for
byte, and the receive shortcut takes only plain packets for open connections."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.iface.handles import TcpSocket
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.wire.checksum import internet_checksum
from smolmix_cli.netstack.wire.ip import PROTO_TCP, decode_ip, encode_ip, pseudo_header_raw
from smolmix_cli.netstack.wire.tcp import TcpSegment, decode_tcp, encode_tcp
from smolmix_cli.netstack.wire.tcp_ip import encode_tcp_ip, ipv4_tcp_base_sum

from .relay import Impairment, SimLink

SRC, DST = IPv4Address("192.0.2.1").packed, IPv4Address("198.51.100.7").packed
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)


@given(
    ports=st.tuples(U16, U16),
    seq=U32,
    ack=U32,
    flags=st.integers(0, 0xFF),
    window=U16,
    urgent=U16,
    ts=st.tuples(U32, U32),
    payload=st.binary(max_size=1400),
)
def test_fast_path_bytes_equal_general_encoder(
    ports: tuple[int, int],
    seq: int,
    ack: int,
    flags: int,
    window: int,
    urgent: int,
    ts: tuple[int, int],
    payload: bytes,
) -> None:
    seg = TcpSegment(*ports, seq, ack, flags, window, payload, urgent=urgent)
    seg.timestamps = ts
    fast = encode_tcp_ip(
        SRC, DST, seg, pseudo_header_raw(SRC, DST, PROTO_TCP, 0), ipv4_tcp_base_sum(SRC, DST)
    )
    tcp = encode_tcp(seg, pseudo_header_raw(SRC, DST, PROTO_TCP, 32 + len(payload)))
    assert fast == encode_ip(SRC, DST, PROTO_TCP, tcp)
    # and it parses back, both checksums valid
    pkt = decode_ip(fast)
    back = decode_tcp(pkt.payload, pseudo_header_raw(pkt.src, pkt.dst, PROTO_TCP, len(pkt.payload)))
    assert (back.seq, back.ack, back.payload, back.timestamps) == (seq, ack, payload, ts)


def _established() -> tuple[NetStack, NetStack, TcpSocket, TcpSocket, SimLink]:
    a = NetStack([IPv4Address("192.0.2.1")], tcp_config=TcpConfig(delayed_ack=0.0))
    b = NetStack([IPv4Address("192.0.2.2")], tcp_config=TcpConfig(delayed_ack=0.0))
    link = SimLink(a, b, Impairment(), Impairment())
    client, server = link.open_tcp(IPv4Address("192.0.2.2"), 80, 1.0)
    return a, b, client, server, link


def test_receive_fast_path_takes_only_plain_packets_for_open_connections() -> None:
    a, b, client, server, link = _established()
    client.send(b"hello", link.now)
    (pkt,) = a.poll_transmit(link.now)
    assert b._fast_tcp4(pkt, link.now) and server.conn.readable == 5

    def variant(i: int, value: int) -> bytes:
        raw = bytearray(pkt)
        raw[i] = value
        raw[10:12] = b"\0\0"  # recompute the header checksum so only the change matters
        raw[10:12] = internet_checksum(bytes(raw[:20])).to_bytes(2, "big")
        return bytes(raw)

    others = [
        variant(6, 0x20),  # more fragments
        variant(7, 1),  # fragment offset
        variant(12, 224),  # multicast source
        variant(19, 9),  # not our address (NAT mode goes the general way)
        variant(9, 17),  # UDP
        bytes(pkt[:10]) + b"\0\0" + bytes(pkt[12:]),  # bad header checksum
        bytes(pkt[:39]),  # truncated
    ]
    before = dict(b.counters)
    for p in others:
        assert not b._fast_tcp4(p, link.now)
    assert dict(b.counters) == before  # the general path does the counting
    for p in others:
        b.receive_packet(p, link.now)  # and it never raises
    assert server.conn.readable == 5
