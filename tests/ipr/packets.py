"""Small IP packets for exit-logic tests."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address


def udp_packet(
    src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address, size: int = 8
) -> bytes:
    """A minimal IPv4/IPv6 UDP packet to port 53 (checksums are not looked at by the exit)."""
    udp = (1234).to_bytes(2, "big") + (53).to_bytes(2, "big") + (8 + size).to_bytes(2, "big")
    udp += bytes(2) + bytes(size)
    if isinstance(src, IPv4Address):
        header = bytes([0x45, 0]) + (20 + len(udp)).to_bytes(2, "big") + bytes(4)
        header += bytes([64, 17]) + bytes(2) + src.packed + dst.packed
    else:
        header = bytes([0x60, 0, 0, 0]) + len(udp).to_bytes(2, "big") + bytes([17, 64])
        header += src.packed + dst.packed
    return header + udp
