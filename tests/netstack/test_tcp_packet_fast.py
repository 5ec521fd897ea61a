"""The one-pack IPv4+TCP encoder used for established segments matches the general one."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.ip import PROTO_TCP, decode_ip, encode_ip, pseudo_header_raw
from smolmix_cli.netstack.stack import _ipv4_base_sum, _tcp_packet
from smolmix_cli.netstack.tcp_wire import TcpSegment, decode_tcp, encode_tcp

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
    fast = _tcp_packet(
        SRC, DST, seg, pseudo_header_raw(SRC, DST, PROTO_TCP, 0), _ipv4_base_sum(SRC, DST)
    )
    tcp = encode_tcp(seg, pseudo_header_raw(SRC, DST, PROTO_TCP, 32 + len(payload)))
    assert fast == encode_ip(SRC, DST, PROTO_TCP, tcp)
    # and it parses back, both checksums valid
    pkt = decode_ip(fast)
    back = decode_tcp(pkt.payload, pseudo_header_raw(pkt.src, pkt.dst, PROTO_TCP, len(pkt.payload)))
    assert (back.seq, back.ack, back.payload, back.timestamps) == (seq, ack, payload, ts)
