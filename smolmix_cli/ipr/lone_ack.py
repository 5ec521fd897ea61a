"""Whether an IP packet is a lone TCP ACK: a message holding only such packets is sent
once (the next ACK carries the same cumulative news), see `ClientConfig.resend_lone_acks`."""

from __future__ import annotations


def is_lone_tcp_ack(packet: bytes) -> bool:
    """An IPv4/IPv6 TCP segment with no data whose only flag is ACK (no SYN, FIN, RST).

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
    return tcp[13] & 0x17 == 0x10 and offset >= 20 and len(tcp) == offset
