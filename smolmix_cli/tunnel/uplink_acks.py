"""Coalescing lone TCP ACKs queued for the tunnel before they become Nym messages.

Each uplink IP packet is its own Nym message (a data packet, a SURB-ACK and reply
SURBs: several Sphinx headers). A lone ACK still waiting in the queue when a newer
ACK-bearing segment of the same flow is queued behind it carries no news the newer
one lacks (cumulative ACK, window, the newest SACK blocks), so it is dropped, as
receive offload merges ACKs in a NIC. Segments with data, SYN, FIN or RST are never
dropped, and nothing is reordered.

A lone ACK reporting a duplicate segment (a D-SACK, RFC 2883) is kept too
(ipr/lone_ack.py says why).
"""

from __future__ import annotations

from smolmix_cli.ipr.lone_ack import reports_dsack, tcp_segment

_ACK = 0x10
_NOT_LONE = 0x07  # FIN, SYN, RST


def _flow_and_lone(packet: bytes) -> tuple[bytes, int] | None:
    """(flow key, where its TCP header starts if it is a lone ACK, else -1) of a TCP
    segment that carries an ACK, else None (ipr/lone_ack.tcp_segment reads the headers)."""
    found = tcp_segment(packet)
    if found is None:
        return None
    addresses, tcp, end = found
    flags = packet[tcp + 13]
    if not flags & _ACK or flags & _NOT_LONE:
        return None
    offset = (packet[tcp + 12] >> 4) * 4
    return addresses + packet[tcp : tcp + 4], tcp if end == tcp + offset else -1


def coalesce_lone_acks(packets: list[bytes]) -> list[bytes]:
    """`packets` without each lone ACK that a later ACK-bearing segment of its flow follows."""
    if len(packets) < 2:
        return packets
    seen: set[bytes] = set()
    keep = [True] * len(packets)
    dropped = False
    for i in range(len(packets) - 1, -1, -1):
        info = _flow_and_lone(packets[i])
        if info is None:
            continue
        flow, tcp = info
        if tcp >= 0 and flow in seen and not reports_dsack(packets[i][tcp:]):
            keep[i] = False
            dropped = True
        seen.add(flow)
    if not dropped:
        return packets
    return [p for p, k in zip(packets, keep, strict=True) if k]
