"""Lone TCP ACKs whose news a later ACK repeats: a message holding only such packets is
sent once (`ClientConfig.resend_lone_acks`), and the tunnel drops one a newer ACK of its
flow supersedes in the uplink queue (tunnel/uplink_acks.py).

Not such an ACK: one reporting a duplicate segment (a D-SACK, RFC 2883). The receiver
reports each duplicate in one ACK only, and the sender undoes a spurious recovery on it;
lost or dropped, it left the sender's halved window standing.
"""

from __future__ import annotations

_SACK = 5
_MASK = 0xFFFFFFFF
_HALF = 1 << 31


def is_lone_tcp_ack(packet: bytes) -> bool:
    """An IPv4/IPv6 TCP segment with no data whose only flag is ACK (no SYN, FIN, RST),
    and no D-SACK report.

    IPv6 extension headers are not walked: such a packet is simply not a lone ACK.
    """
    if len(packet) >= 20 and packet[0] >> 4 == 4:
        if packet[9] != 6:
            return False
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        tcp = packet[ihl:total]
    elif len(packet) >= 40 and packet[0] >> 4 == 6:
        if packet[6] != 6:
            return False
        tcp = packet[40 : 40 + int.from_bytes(packet[4:6], "big")]
    else:
        return False
    if len(tcp) < 20:
        return False
    offset = (tcp[12] >> 4) * 4
    lone = tcp[13] & 0x17 == 0x10 and offset >= 20 and len(tcp) == offset
    return lone and not reports_dsack(tcp)


def reports_dsack(tcp: bytes) -> bool:
    """Whether a TCP header's first SACK block reports a duplicate (RFC 2883 §4): it lies
    below the ACK number, or inside the second block. Options are read no further than
    the header and the bytes given."""
    if len(tcp) < 20:
        return False
    end = min((tcp[12] >> 4) * 4, len(tcp))
    i = 20
    while i < end:
        kind = tcp[i]
        if kind == 0:
            return False
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end:
            return False
        size = tcp[i + 1]
        if size < 2 or i + size > end:
            return False
        if kind == _SACK and size >= 10:
            left = int.from_bytes(tcp[i + 2 : i + 6], "big")
            right = int.from_bytes(tcp[i + 6 : i + 10], "big")
            if (left - int.from_bytes(tcp[8:12], "big")) & _MASK >= _HALF:
                return True  # below the cumulative ACK
            if size >= 18:
                left2 = int.from_bytes(tcp[i + 10 : i + 14], "big")
                right2 = int.from_bytes(tcp[i + 14 : i + 18], "big")
                return (left - left2) & _MASK < _HALF and (right2 - right) & _MASK < _HALF
            return False
        i += size
    return False
