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


def tcp_segment(packet: bytes) -> tuple[bytes, int, int] | None:
    """(source and destination addresses, where the TCP header starts, where the segment
    ends) of a whole, unfragmented IPv4 or IPv6 TCP packet, else None.

    IPv6 extension headers are not walked: such a packet is left alone.
    """
    if len(packet) >= 40 and packet[0] >> 4 == 4:
        if packet[9] != 6 or packet[6] & 0x3F or packet[7]:
            return None  # not TCP, or a fragment
        tcp = (packet[0] & 0x0F) * 4
        end = int.from_bytes(packet[2:4], "big")
        addresses = packet[12:20]
    elif len(packet) >= 60 and packet[0] >> 4 == 6:
        if packet[6] != 6:
            return None
        tcp = 40
        end = 40 + int.from_bytes(packet[4:6], "big")
        addresses = packet[8:40]
    else:
        return None
    if end > len(packet) or end < tcp + 20:
        return None
    return addresses, tcp, end


def is_lone_tcp_ack(packet: bytes) -> bool:
    """A TCP segment with no data whose only flag is ACK (no SYN, FIN, RST), and no
    D-SACK report (`tcp_segment` says which packets are read)."""
    found = tcp_segment(packet)
    if found is None:
        return False
    _, tcp, end = found
    offset = (packet[tcp + 12] >> 4) * 4
    lone = packet[tcp + 13] & 0x17 == 0x10 and offset >= 20 and end == tcp + offset
    return lone and not reports_dsack(packet[tcp:end])


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
