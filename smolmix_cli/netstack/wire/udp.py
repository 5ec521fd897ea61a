"""UDP (RFC 768) header codec."""

from __future__ import annotations

import struct

from smolmix_cli.netstack.wire.checksum import internet_checksum
from smolmix_cli.netstack.wire.ip import PacketError

_HEAD = struct.Struct("!HHHH")


def decode_udp(data: bytes, pseudo: bytes) -> tuple[int, int, bytes]:
    """(src port, dst port, payload). A zero checksum is 'none' on IPv4, invalid on IPv6."""
    if len(data) < 8:
        raise PacketError("truncated", "UDP header")
    sport, dport, length, csum = _HEAD.unpack_from(data, 0)
    if length < 8 or length > len(data):
        raise PacketError("bad_length", "UDP length")
    data = data[:length]
    if csum == 0:
        if len(pseudo) != 12:
            raise PacketError("bad_checksum", "zero UDP checksum over IPv6")
    elif int.from_bytes(pseudo + data + (b"\x00" if length & 1 else b""), "big") % 0xFFFF:
        raise PacketError("bad_checksum", "UDP")
    if dport == 0:
        raise PacketError("bad_port", "UDP destination port 0")
    return sport, dport, data[8:]


def encode_udp(src_port: int, dst_port: int, payload: bytes, pseudo: bytes) -> bytes:
    """`pseudo` must already carry the UDP length (8 + len(payload))."""
    head = _HEAD.pack(src_port, dst_port, 8 + len(payload), 0)
    csum = internet_checksum(pseudo, head, payload) or 0xFFFF
    return head[:6] + csum.to_bytes(2, "big") + payload
