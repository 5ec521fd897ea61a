"""TCP segments in IP packets: the per-segment encoder of every packet the stack sends."""

from __future__ import annotations

import struct

from smolmix_cli.netstack.wire.checksum import ones_complement_sum
from smolmix_cli.netstack.wire.ip import DEFAULT_TTL, PROTO_TCP
from smolmix_cli.netstack.wire.tcp import TcpSegment, encode_tcp

_V4_TCP_HEAD = struct.Struct("!BBHHHBBH4s4s")
_V6_TCP_HEAD = struct.Struct("!IHBB16s16s")


def ipv4_tcp_base_sum(src: bytes, dst: bytes) -> int:
    """Ones'-complement sum of an IPv4+TCP header (ID 0, DF, TTL 64) without length and checksum."""
    head = _V4_TCP_HEAD.pack(0x45, 0, 0, 0, 0x4000, DEFAULT_TTL, PROTO_TCP, 0, src, dst)
    return int.from_bytes(head, "big") % 0xFFFF


def encode_tcp_ip(src: bytes, dst: bytes, seg: TcpSegment, pseudo0: bytes, base: int) -> bytes:
    """One IP+TCP packet, built with a single join (this is the per-segment hot path).

    encode_tcp runs with a length-0 pseudo header; the ones'-complement sum is
    linear, so adding the segment length to the sum gives the real checksum
    without knowing the option length beforehand. The IPv4 header checksum is
    likewise the per-connection base sum plus the total length.
    """
    ts = seg.timestamps
    if (
        base >= 0
        and ts is not None
        and not seg.sack_blocks
        and seg.mss is None
        and seg.wscale is None
        and not seg.sack_permitted
    ):
        return _tcp4_ts_packet(src, dst, seg, ts, pseudo0, base)
    raw = encode_tcp(seg, pseudo0)
    n = len(raw)
    total = ((~((raw[16] << 8) | raw[17])) & 0xFFFF) + n
    total = (total & 0xFFFF) + (total >> 16)
    csum = ((~total) & 0xFFFF).to_bytes(2, "big")
    if base >= 0:
        s = base + 20 + n
        s = (s & 0xFFFF) + (s >> 16)
        ip_csum = (~s) & 0xFFFF
        head = _V4_TCP_HEAD.pack(
            0x45, 0, 20 + n, 0, 0x4000, DEFAULT_TTL, PROTO_TCP, ip_csum, src, dst
        )
    else:
        head = _V6_TCP_HEAD.pack(0x60000000, n, PROTO_TCP, DEFAULT_TTL, src, dst)
    return b"".join((head, raw[:16], csum, raw[18:]))


# IPv4 header (ID 0, DF, TTL 64) + TCP header with NOP NOP TS: every data segment and
# plain ACK of an established IPv4 connection with timestamps.
_V4_TCP_TS = struct.Struct("!BBHHHBBH4s4sHHIIBBHHHBBBBII")
_CSUM = struct.Struct("!H")


def _tcp4_ts_packet(
    src: bytes, dst: bytes, seg: TcpSegment, ts: tuple[int, int], pseudo0: bytes, base: int
) -> bytes:
    """`encode_tcp_ip` for the common layout in one pack: no encode_tcp, no re-slicing.

    Same bytes as the general path (a property test compares them).
    """
    payload = seg.payload
    n = 32 + len(payload)
    buf = bytearray(
        _V4_TCP_TS.pack(
            0x45, 0, 20 + n, 0, 0x4000, DEFAULT_TTL, PROTO_TCP, 0, src, dst,
            seg.src_port, seg.dst_port, seg.seq & 0xFFFFFFFF, seg.ack & 0xFFFFFFFF,
            0x80, seg.flags & 0xFF, seg.window, 0, seg.urgent, 1, 1, 8, 10, ts[0], ts[1],
        )
    )  # fmt: skip
    # TCP checksum: pseudo header (its length word is n) + header + payload, each part
    # starting on a 16-bit boundary; an odd payload is padded with a zero byte.
    total = ones_complement_sum(pseudo0, buf[20:], payload) + n
    total = (total & 0xFFFF) + (total >> 16)
    _CSUM.pack_into(buf, 36, (~total) & 0xFFFF)
    s = base + 20 + n
    s = (s & 0xFFFF) + (s >> 16)
    _CSUM.pack_into(buf, 10, (~s) & 0xFFFF)
    return bytes(buf) + payload if payload else bytes(buf)
